// TrainModel: the objectives of a batch — heads (classify / regress / embed), token-level language
// modelling, modality ↔ text contrastive alignment — on top of the path forwards of
// train_step.cpp, and their backward down the path.
#include <cstring>

#include "ops/ops.h"
#include "train/losses.h"
#include "train/train_model.h"

namespace m4::train {

using model::HeadType;
using model::Modality;
using model::Path;

namespace {

void zeros(Buf & b, int64_t n) {
    b.assign(static_cast<size_t>(n), 0.0f);
}

Status validate_targets(const TaskSpec & t, const Batch & batch) {
    for (size_t i = 0; i < batch.size(); ++i) {
        const Sample & s = batch[i];
        auto bad         = [&](const std::string & m) {
            return invalid_argument("task '" + t.name + "': sample " + std::to_string(i) + ": " + m);
        };
        if (t.objective == Objective::Classify && (s.label < 0 || s.label >= t.out_dim))
            return bad("label " + std::to_string(s.label) + " outside [0, " + std::to_string(t.out_dim) + ")");
        if (t.objective == Objective::Reconstruct && s.target.size() != s.signal.size())
            return bad("the target image has " + std::to_string(s.target.size()) + " values, the input " +
                       std::to_string(s.signal.size()));
        if ((t.objective == Objective::Regress || t.objective == Objective::Embed) &&
            static_cast<int64_t>(s.target.size()) != t.out_dim)
            return bad("target has " + std::to_string(s.target.size()) + " values, the head " +
                       std::to_string(t.out_dim));
    }
    return Status::ok();
}

}  // namespace

Result<StepStats> TrainModel::forward_backward(const TaskSpec & task, const Batch & batch, float loss_weight) {
    return run(task, batch, loss_weight, /*backward=*/true, nullptr);
}

Result<StepStats> TrainModel::evaluate(const TaskSpec & task, const Batch & batch) {
    return run(task, batch, 0.0f, /*backward=*/false, nullptr);
}

Result<std::vector<std::vector<float>>> TrainModel::infer(const TaskSpec & task, const Batch & batch) {
    std::vector<std::vector<float>> out;
    M4_RETURN_IF_ERROR(run(task, batch, 0.0f, /*backward=*/false, &out).status());
    return out;
}

Result<StepStats> TrainModel::run(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                                  std::vector<std::vector<float>> * outputs) {
    M4_RETURN_IF_ERROR(validate(task, batch));
    if (!outputs) M4_RETURN_IF_ERROR(validate_targets(task, batch));
    const model::ModelConfig & c = base_.config();
    const int64_t B = static_cast<int64_t>(batch.size()), E = c.embed_dim, C = c.backbone.width;
    const Modality m = task.modality;
    const GradSink sink{&params_, &adapter_, options_.bf16 ? Precision::Bf16 : Precision::F32};
    if (outputs) outputs->assign(static_cast<size_t>(B), {});
    if (task.objective == Objective::Reconstruct) return run_reconstruct(task, batch, weight, backward, outputs);
    if (task.objective == Objective::Draw) return run_draw(task, batch, weight, backward, outputs);
    if (task.objective == Objective::MelRegress) return run_mel_regress(task, batch, weight, backward, outputs);
    StepStats st;
    st.samples = B;

    // Pools the backbone rows of each sequence into out [B, C] (mean), or the last row; and back.
    auto pool_rows = [&](model::HeadPool pool, Buf & out) {
        out.resize(static_cast<size_t>(B * C));
        for (int64_t b = 0; b < B; ++b) {
            const Sequence & s = bb_.seqs[b];
            if (pool == model::HeadPool::Mean)
                ops::pool(bb_.hn.data() + s.row_begin * C, out.data() + b * C, 1, s.n, C);
            else
                std::memcpy(out.data() + b * C, bb_.hn.data() + (s.row_begin + s.n - 1) * C, C * sizeof(float));
        }
    };
    auto unpool_rows = [&](model::HeadPool pool, const Buf & dout, Buf & dhn) {
        zeros(dhn, bb_.rows() * C);
        for (int64_t b = 0; b < B; ++b) {
            const Sequence & s = bb_.seqs[b];
            if (pool == model::HeadPool::Mean)
                ops::pool_backward_ref(dout.data() + b * C, dhn.data() + s.row_begin * C, 1, s.n, C);
            else
                for (int64_t k = 0; k < C; ++k) dhn[(s.row_begin + s.n - 1) * C + k] += dout[b * C + k];
        }
    };
    const bool trunk_learns = task.path == Path::Encoder ? encoder_learns(m)
                              : task.path == Path::Backbone
                                  ? backbone_learns()
                                  : backbone_learns() || projector_learns(m) || encoder_learns(m);

    // ---- contrastive: encoder embedding ↔ text embedding of the backbone -------------------------
    if (task.objective == Objective::Contrastive) {
        Buf z, zm(static_cast<size_t>(B * E));
        M4_RETURN_IF_ERROR(encoder_z(m, batch, &z));
        normalize_rows(z.data(), B, E, zm.data());
        TaskSpec text_task = task;
        text_task.path     = Path::Backbone;
        text_task.modality = Modality::Text;
        M4_RETURN_IF_ERROR(backbone_forward(text_task, batch));
        Buf means, zt_raw(static_cast<size_t>(B * E)), zt(static_cast<size_t>(B * E));
        pool_rows(model::HeadPool::Mean, means);
        model::linear(weights_.backbone.text_proj, means.data(), B, zt_raw.data(), {{0, B, &adapter_}});
        normalize_rows(zt_raw.data(), B, E, zt.data());
        st.tokens = B * c.encoder(m).tokens() + bb_.rows();
        if (outputs) {
            for (int64_t b = 0; b < B; ++b) (*outputs)[b].assign(zm.begin() + b * E, zm.begin() + (b + 1) * E);
            return st;
        }
        Buf dzm(static_cast<size_t>(B * E)), dzt(static_cast<size_t>(B * E));
        const LossResult r = info_nce(zm.data(), zt.data(), B, E, logit_scale_->value.f32()[0], weight, dzm.data(),
                                      dzt.data(), backward ? logit_scale_->grad.f32() : nullptr);
        st.loss = r.loss, st.correct = r.correct, st.counted = B;
        if (!backward) return st;
        Buf dz, dzt_raw, dmeans, dhn;
        zeros(dz, B * E), zeros(dzt_raw, B * E), zeros(dmeans, B * C);
        normalize_rows_backward(dzm.data(), z.data(), B, E, dz.data());
        normalize_rows_backward(dzt.data(), zt_raw.data(), B, E, dzt_raw.data());
        linear_backward(sink, weights_.backbone.text_proj, means.data(), dzt_raw.data(), B,
                        backbone_learns() ? dmeans.data() : nullptr);
        if (backbone_learns()) {
            unpool_rows(model::HeadPool::Mean, dmeans, dhn);
            backbone_backward(text_task, dhn);
        }
        // The encoder last: its activations (enc_) were not touched by the text tower.
        encoder_z_backward(m, B, dz);
        return st;
    }

    // ---- the trunk: encoder → z [B, E], or backbone → hn -----------------------------------------
    Buf z;
    if (task.path == Path::Encoder) {
        M4_RETURN_IF_ERROR(encoder_z(m, batch, &z));
        st.tokens = B * c.encoder(m).tokens();
    } else {
        M4_RETURN_IF_ERROR(backbone_forward(task, batch));
        st.tokens = bb_.rows();
    }

    // ---- heads ----------------------------------------------------------------------------------
    if (task.has_head()) {
        const auto & head = adapter_.head;
        const int64_t in = head.in_dim(), n_out = head.w.dim(0);
        if (task.path != Path::Encoder) pool_rows(head.pool, z);
        // With a hidden layer: a = gelu(z·Whᵀ + bh) [B, H] is the output layer's input.
        const int64_t H = head.has_hidden() ? head.hidden_w.dim(0) : 0;
        Buf pre, act;
        if (H > 0) {
            pre.resize(static_cast<size_t>(B * H)), act.resize(static_cast<size_t>(B * H));
            ops::matmul(z.data(), in, head.hidden_w, head.hidden_bias, pre.data(), H, B);
            ops::gelu(pre.data(), act.data(), B * H);
        }
        const Buf & last_in = H > 0 ? act : z;
        Buf logits(static_cast<size_t>(B * n_out)), y;
        const float * bias = head.type == HeadType::Embed ? nullptr : head.bias;
        ops::matmul(last_in.data(), H > 0 ? H : in, head.w, bias, logits.data(), n_out, B);
        if (head.type == HeadType::Embed) {
            y.resize(logits.size());
            normalize_rows(logits.data(), B, n_out, y.data());
        }
        if (outputs) {
            const Buf & o = head.type == HeadType::Embed ? y : logits;
            for (int64_t b = 0; b < B; ++b) (*outputs)[b].assign(o.begin() + b * n_out, o.begin() + (b + 1) * n_out);
            return st;
        }
        Buf dlogits;
        zeros(dlogits, B * n_out);
        LossResult r;
        if (head.type == HeadType::Classify) {
            std::vector<int32_t> labels;
            for (const auto & s : batch) labels.push_back(s.label);
            r = cross_entropy(logits.data(), B, n_out, labels.data(), weight, dlogits.data());
        } else if (head.type == HeadType::Regress) {
            Buf t;
            for (const auto & s : batch) t.insert(t.end(), s.target.begin(), s.target.end());
            r = mse(logits.data(), t.data(), B * n_out, weight, dlogits.data());
        } else {
            // Embedding head: InfoNCE between the normalised outputs and the normalised targets.
            Buf t, tn(static_cast<size_t>(B * n_out)), dy(static_cast<size_t>(B * n_out));
            for (const auto & s : batch) t.insert(t.end(), s.target.begin(), s.target.end());
            normalize_rows(t.data(), B, n_out, tn.data());
            r = info_nce(y.data(), tn.data(), B, n_out, logit_scale_->value.f32()[0], weight, dy.data(), nullptr,
                         backward ? logit_scale_->grad.f32() : nullptr);
            normalize_rows_backward(dy.data(), logits.data(), B, n_out, dlogits.data());
        }
        st.loss    = r.loss;
        st.correct = head.type == HeadType::Regress ? 0 : r.correct;
        st.counted = head.type == HeadType::Regress ? 0 : B;
        if (!backward) return st;
        const model::Linear hl{"head", head.w, bias};
        Buf dz;
        zeros(dz, B * in);
        Buf dact, dpre;  // with a hidden layer: the gradient at its output and at its input
        if (H > 0) zeros(dact, B * H), zeros(dpre, B * H);
        linear_backward(sink, hl, last_in.data(), dlogits.data(), B,
                        H > 0          ? dact.data()
                        : trunk_learns ? dz.data()
                                       : nullptr);
        if (H > 0) {
            ops::gelu_backward(ops::GeluForm::Erf, dact.data(), pre.data(), dpre.data(), B * H);
            const model::Linear hidden{"head.hidden", head.hidden_w, head.hidden_bias};
            linear_backward(sink, hidden, z.data(), dpre.data(), B, trunk_learns ? dz.data() : nullptr);
        }
        if (!trunk_learns) return st;
        if (task.path == Path::Encoder) {
            encoder_z_backward(m, B, dz);
        } else {
            Buf dhn;
            unpool_rows(head.pool, dz, dhn);
            backbone_backward(task, dhn);
        }
        return st;
    }

    // ---- language modelling: position p predicts the token at p + 1 -----------------------------
    const int64_t V = c.text.vocab_size;
    const auto & lm = weights_.backbone.lm_head;
    if (outputs) {
        for (int64_t b = 0; b < B; ++b) {
            const Sequence & s = bb_.seqs[b];
            (*outputs)[b].resize(static_cast<size_t>(s.n * V));
            model::linear(lm, bb_.hn.data() + s.row_begin * C, s.n, (*outputs)[b].data(), {{0, s.n, &adapter_}});
        }
        return st;
    }
    std::vector<int64_t> sel;
    std::vector<int32_t> targets;
    for (int64_t b = 0; b < B; ++b) {
        const Sample & s = batch[b];
        for (size_t i = 0; i < s.tokens.size(); ++i) {
            if (!s.loss_mask.empty() && !s.loss_mask[i]) continue;
            sel.push_back(bb_.seqs[b].row_begin + prefix_len_[b] - 1 + static_cast<int64_t>(i));
            targets.push_back(s.tokens[i]);
        }
    }
    const int64_t R = static_cast<int64_t>(sel.size());
    if (R == 0) return st;  // nothing to predict in this batch
    Buf hsel(static_cast<size_t>(R * C)), logits(static_cast<size_t>(R * V)), dlogits;
    for (int64_t r = 0; r < R; ++r) std::memcpy(hsel.data() + r * C, bb_.hn.data() + sel[r] * C, C * sizeof(float));
    model::linear(lm, hsel.data(), R, logits.data(), {{0, R, &adapter_}});
    if (backward) zeros(dlogits, R * V);
    const LossResult r =
        cross_entropy(logits.data(), R, V, targets.data(), weight, backward ? dlogits.data() : nullptr);
    st.loss = r.loss, st.correct = r.correct, st.counted = R;
    if (!backward) return st;
    Buf dhsel, dhn;
    zeros(dhsel, R * C);
    linear_backward(sink, lm, hsel.data(), dlogits.data(), R, trunk_learns ? dhsel.data() : nullptr);
    if (!trunk_learns) return st;
    zeros(dhn, bb_.rows() * C);
    for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < C; ++k) dhn[sel[r] * C + k] += dhsel[r * C + k];
    backbone_backward(task, dhn);
    return st;
}

}  // namespace m4::train
