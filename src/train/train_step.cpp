// TrainModel: the forward of one task's batch, its loss, and the backward (see train_model.h).
//
// Per path (docs/architecture.md, "Execution paths"):
//   encoder   patches → encoder → z = embed_proj(mean tokens) → head (or, contrastive, InfoNCE with
//             the text tower: normalise(text_proj(mean hn)) of the backbone over the text)
//   backbone  [BOS, text] → backbone → hn → LM head on the predicted positions, or a head on the
//             mean / last row
//   full      patches → encoder → projector → [BOS, modality tokens, text] → backbone → as above
// The backward runs only as far down as something learns (a frozen encoder is not differentiated).
#include <cstring>

#include "ops/ops.h"
#include "train/losses.h"
#include "train/train_model.h"

namespace m4::train {

using model::HeadType;
using model::Modality;
using model::Path;
using model::RowSegment;

namespace {

void zeros(Buf & b, int64_t n) {
    b.assign(static_cast<size_t>(n), 0.0f);
}

}  // namespace

Status TrainModel::validate(const TaskSpec & task, const Batch & batch) const {
    const model::ModelConfig & c = base_.config();
    if (batch.empty()) return invalid_argument("task '" + task.name + "': empty batch");
    if (task.objective == Objective::Draw) return Status::ok();  // validate_draw (train_draw.cpp)
    if (task.path == Path::Generator && task.modality == model::Modality::Audio) {
        const auto & sc = *c.speech_decoder;
        for (size_t i = 0; i < batch.size(); ++i) {
            const std::string where = "task '" + task.name + "': sample " + std::to_string(i) + ": ";
            const auto & s          = batch[i];
            if (s.tokens.empty() || static_cast<int64_t>(s.tokens.size()) > sc.max_chars)
                return invalid_argument(where + "the text has " + std::to_string(s.tokens.size()) +
                                        " characters, the speech decoder takes 1 to " + std::to_string(sc.max_chars));
            for (int32_t id : s.tokens)
                if (id <= 0 || id >= model::kSpeechSymbols)
                    return invalid_argument(where + "speech symbol " + std::to_string(id) + " out of range");
            if (!s.target.empty() && static_cast<int64_t>(s.target.size()) != sc.frames() * sc.n_mels)
                return invalid_argument(where + "the target log-mel has " + std::to_string(s.target.size()) +
                                        " values, the decoder's " + std::to_string(sc.frames()) + "x" +
                                        std::to_string(sc.n_mels));
        }
        return Status::ok();
    }
    if (task.path == Path::Generator) {
        const int64_t n = c.image_decoder->image_size * c.image_decoder->image_size * 3;
        for (size_t i = 0; i < batch.size(); ++i) {
            const std::string where = "task '" + task.name + "': sample " + std::to_string(i) + ": ";
            if (static_cast<int64_t>(batch[i].signal.size()) != n)
                return invalid_argument(where + "the input image has " + std::to_string(batch[i].signal.size()) +
                                        " values, the decoder's grid " + std::to_string(n));
        }
        return Status::ok();
    }
    const bool signal = task.path != Path::Backbone;
    const bool text   = task.path != Path::Encoder || task.objective == Objective::Contrastive;
    for (size_t i = 0; i < batch.size(); ++i) {
        const Sample & s = batch[i];
        auto bad         = [&](const std::string & m) {
            return invalid_argument("task '" + task.name + "': sample " + std::to_string(i) + ": " + m);
        };
        if (signal) {
            Status st = model::check_modal_input(c.encoder(task.modality), static_cast<int64_t>(s.signal.size()));
            if (!st.is_ok()) return bad(st.message());
        }
        if (text && task.path != Path::Full && s.tokens.empty()) return bad("no text tokens");
        for (int32_t id : s.tokens)
            if (id < 0 || id >= c.text.vocab_size) return bad("token id " + std::to_string(id) + " out of range");
        if (text) {
            const int64_t len = 1 + static_cast<int64_t>(s.tokens.size()) +
                                (task.path == Path::Full ? c.encoder(task.modality).tokens() : 0);
            if (len > c.backbone.max_seq)
                return bad(std::to_string(len) + " positions exceed max_seq " + std::to_string(c.backbone.max_seq));
        }
        if (!s.loss_mask.empty() && s.loss_mask.size() != s.tokens.size())
            return bad("loss_mask must have one entry per text token");
    }
    return Status::ok();
}

Status TrainModel::make_patches(Modality m, const Batch & batch, Buf * patches) const {
    const auto & ec = base_.config().encoder(m);
    const int64_t B = static_cast<int64_t>(batch.size()), T = ec.tokens(), P = ec.patch_dim();
    patches->resize(static_cast<size_t>(B * T * P));
    for (int64_t b = 0; b < B; ++b) {
        const Sample & s = batch[b];
        float * p        = patches->data() + b * T * P;
        const int64_t n  = static_cast<int64_t>(s.signal.size());
        if (m == Modality::Image) model::image_patches(ec, s.signal.data(), p);
        if (m == Modality::Audio) model::audio_patches(ec, audio_fe_.at(0), s.signal.data(), n, p);
        if (m == Modality::Imu) model::imu_patches(ec, s.signal.data(), n / 6, p);
    }
    return Status::ok();
}

Status TrainModel::encoder_z(Modality m, const Batch & batch, Buf * z) {
    const auto & ec = base_.config().encoder(m);
    const auto & ew = weights_.encoders[static_cast<int>(m)];
    const int64_t B = static_cast<int64_t>(batch.size()), T = ec.tokens(), W = ec.width;
    enc_.B = B;
    M4_RETURN_IF_ERROR(make_patches(m, batch, &enc_.patches));
    encoder_train_forward(ec, ew, {{0, B * T, &adapter_}}, options_.recompute, &enc_);
    if (!z) return Status::ok();
    enc_pooled_.resize(static_cast<size_t>(B * W));
    ops::pool(enc_.tokens.data(), enc_pooled_.data(), B, T, W);
    z->resize(static_cast<size_t>(B * base_.config().embed_dim));
    model::linear(ew.embed_proj, enc_pooled_.data(), B, z->data(), {{0, B, &adapter_}});
    return Status::ok();
}

void TrainModel::encoder_z_backward(Modality m, int64_t B, const Buf & dz) {
    if (!encoder_learns(m)) return;
    const auto & ec = base_.config().encoder(m);
    const auto & ew = weights_.encoders[static_cast<int>(m)];
    const int64_t T = ec.tokens(), W = ec.width;
    const GradSink sink{&params_, &adapter_, options_.bf16 ? Precision::Bf16 : Precision::F32};
    Buf dpooled, dtokens;
    zeros(dpooled, B * W), zeros(dtokens, B * T * W);
    linear_backward(sink, ew.embed_proj, enc_pooled_.data(), dz.data(), B, dpooled.data());
    ops::pool_backward_ref(dpooled.data(), dtokens.data(), B, T, W);
    encoder_train_backward(sink, ec, ew, {{0, B * T, &adapter_}}, &enc_, dtokens);
}

Status TrainModel::backbone_forward(const TaskSpec & task, const Batch & batch) {
    const model::ModelConfig & c = base_.config();
    const int64_t B = static_cast<int64_t>(batch.size()), C = c.backbone.width;
    int64_t Tm = 0;
    if (task.path == Path::Full) {
        Tm = c.encoder(task.modality).tokens();
        M4_RETURN_IF_ERROR(encoder_z(task.modality, batch, nullptr));
        prefix_.resize(static_cast<size_t>(B * Tm * C));
        model::linear(weights_.encoders[static_cast<int>(task.modality)].projector, enc_.tokens.data(), B * Tm,
                      prefix_.data(), {{0, B * Tm, &adapter_}});
    }
    bb_.seqs.clear();
    prefix_len_.assign(static_cast<size_t>(B), 1 + Tm);
    int64_t rows = 0;
    for (const auto & s : batch) {
        const int64_t n = 1 + Tm + static_cast<int64_t>(s.tokens.size());
        bb_.seqs.push_back({rows, n});
        rows += n;
    }
    bb_.x0.resize(static_cast<size_t>(rows * C));
    const int32_t bos = c.text.bos_id;
    row_ids_.assign(static_cast<size_t>(rows), -1);
    for (int64_t b = 0; b < B; ++b) {
        const int64_t r0 = bb_.seqs[b].row_begin;
        row_ids_[r0]     = bos;
        for (size_t i = 0; i < batch[b].tokens.size(); ++i) row_ids_[r0 + 1 + Tm + i] = batch[b].tokens[i];
        float * x = bb_.x0.data() + r0 * C;
        ops::gather(weights_.backbone.tok_embed, &bos, 1, x);
        if (Tm) std::memcpy(x + C, prefix_.data() + b * Tm * C, static_cast<size_t>(Tm * C) * sizeof(float));
        const auto & t = batch[b].tokens;
        if (!t.empty())
            ops::gather(weights_.backbone.tok_embed, t.data(), static_cast<int64_t>(t.size()), x + (1 + Tm) * C);
    }
    backbone_train_forward(c.backbone, weights_.backbone, {{0, rows, &adapter_}}, options_.recompute, &bb_);
    return Status::ok();
}

void TrainModel::backbone_backward(const TaskSpec & task, const Buf & dhn) {
    const model::ModelConfig & c = base_.config();
    const bool full_path         = task.path == Path::Full;
    const bool below             = full_path && (projector_learns(task.modality) || encoder_learns(task.modality));
    if (!backbone_learns() && !below) return;
    const GradSink sink{&params_, &adapter_, options_.bf16 ? Precision::Bf16 : Precision::F32};
    const int64_t C = c.backbone.width, rows = bb_.rows();
    Buf dx0;
    backbone_train_backward(sink, c.backbone, weights_.backbone, {{0, rows, &adapter_}}, &bb_, dhn, dx0);
    const int64_t Tm = full_path ? c.encoder(task.modality).tokens() : 0;
    if (float * dte = sink.grad_of(weights_.backbone.tok_embed.data()))
        for (int64_t r = 0; r < rows; ++r)  // embedding rows (BOS, text); modality rows have id −1
            if (row_ids_[r] >= 0) ops::gather_backward_ref(dx0.data() + r * C, &row_ids_[r], 1, C, dte);
    if (!below) return;
    const int64_t B = static_cast<int64_t>(bb_.seqs.size());
    const auto & ew = weights_.encoders[static_cast<int>(task.modality)];
    Buf dprefix(static_cast<size_t>(B * Tm * C));
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(dprefix.data() + b * Tm * C, dx0.data() + (bb_.seqs[b].row_begin + 1) * C,
                    static_cast<size_t>(Tm * C) * sizeof(float));
    const bool enc  = encoder_learns(task.modality);
    const auto & ec = c.encoder(task.modality);
    Buf dtokens;
    if (enc) zeros(dtokens, B * Tm * ec.width);
    linear_backward(sink, ew.projector, enc_.tokens.data(), dprefix.data(), B * Tm, enc ? dtokens.data() : nullptr);
    if (enc) encoder_train_backward(sink, ec, ew, {{0, B * Tm, &adapter_}}, &enc_, dtokens);
}

}  // namespace m4::train
