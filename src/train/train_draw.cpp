// TrainModel: the draw objective on the full path into the image decoder (docs/architecture.md,
// "Image decoder"), forward as model::Model::run_draw (model_draw.cpp):
//     x  = [BOS, tok_embed(text), queries]       per sample, T query rows
//     hn = backbone(x);  q = hn[query rows]      [N, C]   N = B·T
//     d  = from_backbone(q)                      [N, P]
//     y  = out_proj(trunk(d))                    [N, P]
//     L  = (1/(N·P)) Σ w·(y − patches(target))²  w = 1, or foreground_weight where the target pixel
//                                                 differs from its image's top-left (background) pixel
// and its backward: dy → out_proj → trunk → d → from_backbone → the query rows of the backbone →
// tok_embed and the queries (full mode).
#include <cstring>

#include "model/decoder.h"
#include "ops/ops.h"
#include "train/losses.h"
#include "train/train_model.h"

namespace m4::train {

Status TrainModel::validate_draw(const TaskSpec & task, const Batch & batch, bool targets) const {
    const model::ModelConfig & c = base_.config();
    const int64_t T = c.image_decoder->tokens(), n_img = c.image_decoder->image_size * c.image_decoder->image_size * 3;
    for (size_t i = 0; i < batch.size(); ++i) {
        const Sample & s = batch[i];
        auto bad         = [&](const std::string & m) {
            return invalid_argument("task '" + task.name + "': sample " + std::to_string(i) + ": " + m);
        };
        if (!s.signal.empty()) return bad("the full path into the image decoder takes text only");
        if (s.tokens.empty()) return bad("no text tokens");
        for (int32_t id : s.tokens)
            if (id < 0 || id >= c.text.vocab_size) return bad("token id " + std::to_string(id) + " out of range");
        const int64_t len = 1 + static_cast<int64_t>(s.tokens.size()) + T;
        if (len > c.backbone.max_seq)
            return bad(std::to_string(len) + " positions (prompt + " + std::to_string(T) +
                       " decoder queries) exceed max_seq " + std::to_string(c.backbone.max_seq));
        if (targets && static_cast<int64_t>(s.target.size()) != n_img)
            return bad("the target image has " + std::to_string(s.target.size()) + " values, the decoder's grid " +
                       std::to_string(n_img));
    }
    return Status::ok();
}

Result<StepStats> TrainModel::run_draw(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                                       std::vector<std::vector<float>> * outputs) {
    M4_RETURN_IF_ERROR(validate_draw(task, batch, outputs == nullptr));
    const model::ModelConfig & c    = base_.config();
    const model::EncoderConfig & dc = *c.image_decoder;
    const model::DecoderWeights & w = weights_.image_decoder;
    const int64_t B = static_cast<int64_t>(batch.size()), T = dc.tokens(), P = dc.patch_dim(), N = B * T,
                  C = c.backbone.width;
    const std::vector<model::RowSegment> seg{{0, N, &adapter_}};
    StepStats st;
    st.samples = B;
    // 1. backbone over [BOS, text, queries]
    bb_.seqs.clear();
    int64_t rows = 0;
    for (const auto & s : batch) {
        const int64_t n = 1 + static_cast<int64_t>(s.tokens.size()) + T;
        bb_.seqs.push_back({rows, n});
        rows += n;
    }
    st.tokens = rows;
    bb_.x0.resize(static_cast<size_t>(rows * C));
    const int32_t bos = c.text.bos_id;
    row_ids_.assign(static_cast<size_t>(rows), -1);
    for (int64_t b = 0; b < B; ++b) {
        const int64_t r0 = bb_.seqs[b].row_begin, n = static_cast<int64_t>(batch[b].tokens.size());
        row_ids_[r0] = bos;
        for (int64_t i = 0; i < n; ++i) row_ids_[r0 + 1 + i] = batch[b].tokens[i];
        float * x = bb_.x0.data() + r0 * C;
        ops::gather(weights_.backbone.tok_embed, &bos, 1, x);
        ops::gather(weights_.backbone.tok_embed, batch[b].tokens.data(), n, x + C);
        std::memcpy(x + (1 + n) * C, w.queries, static_cast<size_t>(T * C) * sizeof(float));
    }
    backbone_train_forward(c.backbone, weights_.backbone, {{0, rows, &adapter_}}, options_.recompute, &bb_);
    // 2. the query rows' states → the decoder's input tokens
    draw_q_.resize(static_cast<size_t>(N * C));
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(draw_q_.data() + b * T * C, bb_.hn.data() + (bb_.seqs[b].row_begin + bb_.seqs[b].n - T) * C,
                    static_cast<size_t>(T * C) * sizeof(float));
    dec_.B = B;
    dec_.patches.resize(static_cast<size_t>(N * P));
    model::linear(w.from_backbone, draw_q_.data(), N, dec_.patches.data(), seg);
    // 3. the decoder, no residual
    encoder_train_forward(dc, w.trunk, seg, options_.recompute, &dec_);
    dec_y_.resize(static_cast<size_t>(N * P));
    model::linear(w.out_proj, dec_.tokens.data(), N, dec_y_.data(), seg);
    if (outputs) {
        for (int64_t b = 0; b < B; ++b) {
            auto & o = (*outputs)[b];
            o.resize(static_cast<size_t>(T * P));
            model::image_unpatchify(dc, dec_y_.data() + b * T * P, o.data());
        }
        return st;
    }
    // 4. loss
    Buf target(static_cast<size_t>(N * P)), dy;
    for (int64_t b = 0; b < B; ++b) model::image_patches(dc, batch[b].target.data(), target.data() + b * T * P);
    if (backward) dy.assign(static_cast<size_t>(N * P), 0.0f);
    const float fw = task.foreground_weight;
    if (fw == 1.0f) {
        const LossResult r = mse(dec_y_.data(), target.data(), N * P, weight, backward ? dy.data() : nullptr);
        st.loss            = r.loss;
    } else {  // weighted: foreground pixels (≠ the image's top-left pixel) count fw times
        Buf wt(static_cast<size_t>(N * P));
        const int64_t S = dc.image_size;
        for (int64_t b = 0; b < B; ++b) {
            const float * t = batch[b].target.data();
            Buf img(static_cast<size_t>(S * S * 3));
            for (int64_t px = 0; px < S * S; ++px) {
                const bool fg = t[px * 3] != t[0] || t[px * 3 + 1] != t[1] || t[px * 3 + 2] != t[2];
                for (int k = 0; k < 3; ++k) img[px * 3 + k] = fg ? fw : 1.0f;
            }
            model::image_patches(dc, img.data(), wt.data() + b * T * P);
        }
        double sum = 0, wsum = 0;
        for (int64_t i = 0; i < N * P; ++i) {
            const double e = double(dec_y_[i]) - target[i];
            sum += wt[i] * e * e;
            wsum += wt[i];
        }
        st.loss = sum / wsum;
        if (backward)
            for (int64_t i = 0; i < N * P; ++i)
                dy[i] = static_cast<float>(weight * 2.0 * wt[i] * (double(dec_y_[i]) - target[i]) / wsum);
    }
    if (!backward) return st;
    // 5. backward, as far down as something learns
    const bool full  = options_.mode == Mode::Full;
    bool proj_learns = full;
    for (const auto & t : targets_) proj_learns = proj_learns || t == "decoders.image.from_backbone.proj";
    const bool bb_learns = backbone_learns();
    const bool below     = proj_learns || bb_learns;
    if (!decoder_learns() && !below) return st;
    const GradSink sink{&params_, &adapter_, options_.bf16 ? Precision::Bf16 : Precision::F32};
    Buf dtokens(static_cast<size_t>(N * dc.width), 0.0f), dd;
    linear_backward(sink, w.out_proj, dec_.tokens.data(), dy.data(), N, dtokens.data());
    if (below) dd.assign(static_cast<size_t>(N * P), 0.0f);
    encoder_train_backward(sink, dc, w.trunk, seg, &dec_, dtokens, below ? dd.data() : nullptr);
    if (!below) return st;
    Buf dq(static_cast<size_t>(N * C), 0.0f);
    linear_backward(sink, w.from_backbone, draw_q_.data(), dd.data(), N, bb_learns || full ? dq.data() : nullptr);
    if (!bb_learns && !full) return st;
    Buf dhn(static_cast<size_t>(rows * C), 0.0f), dx0;
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(dhn.data() + (bb_.seqs[b].row_begin + bb_.seqs[b].n - T) * C, dq.data() + b * T * C,
                    static_cast<size_t>(T * C) * sizeof(float));
    backbone_train_backward(sink, c.backbone, weights_.backbone, {{0, rows, &adapter_}}, &bb_, dhn, dx0);
    if (float * dte = sink.grad_of(weights_.backbone.tok_embed.data()))
        for (int64_t r = 0; r < rows; ++r)
            if (row_ids_[r] >= 0) ops::gather_backward_ref(dx0.data() + r * C, &row_ids_[r], 1, C, dte);
    if (float * dqe = sink.grad_of(w.queries))
        for (int64_t b = 0; b < B; ++b) {
            const float * src = dx0.data() + (bb_.seqs[b].row_begin + bb_.seqs[b].n - T) * C;
            for (int64_t i = 0; i < T * C; ++i) dqe[i] += src[i];
        }
    return st;
}

}  // namespace m4::train
