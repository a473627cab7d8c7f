// TrainModel: the reconstruct objective on the generator path (docs/architecture.md, "Image
// decoder"), forward as Model::run_generator:
//     x = patches(input)                              [N, P]   N = B·T
//     y = x + out_proj(trunk(x))                      [N, P]   (the trunk is an encoder's)
//     L = (1/(N·P)) Σ (y − patches(target))²
// and its backward: dy → out_proj → trunk (nothing upstream of x learns).
#include "model/decoder.h"
#include "ops/ops.h"
#include "train/losses.h"
#include "train/train_model.h"

namespace m4::train {

Result<StepStats> TrainModel::run_reconstruct(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                                              std::vector<std::vector<float>> * outputs) {
    const model::EncoderConfig & dc = *base_.config().image_decoder;
    const model::DecoderWeights & w = weights_.image_decoder;
    const int64_t B = static_cast<int64_t>(batch.size()), T = dc.tokens(), P = dc.patch_dim(), N = B * T;
    const std::vector<model::RowSegment> seg{{0, N, &adapter_}};
    StepStats st;
    st.samples = B;
    st.tokens  = N;
    dec_.B     = B;
    dec_.patches.resize(static_cast<size_t>(N * P));
    for (int64_t b = 0; b < B; ++b) model::image_patches(dc, batch[b].signal.data(), dec_.patches.data() + b * T * P);
    dec_x_ = dec_.patches;
    encoder_train_forward(dc, w.trunk, seg, options_.recompute, &dec_);
    dec_y_.resize(static_cast<size_t>(N * P));
    model::linear(w.out_proj, dec_.tokens.data(), N, dec_y_.data(), seg);
    ops::add(dec_x_.data(), dec_y_.data(), dec_y_.data(), N * P, N * P);
    if (outputs) {
        for (int64_t b = 0; b < B; ++b) {
            auto & o = (*outputs)[b];
            o.resize(static_cast<size_t>(T * P));
            model::image_unpatchify(dc, dec_y_.data() + b * T * P, o.data());
        }
        return st;
    }
    Buf target(static_cast<size_t>(N * P)), dy;
    for (int64_t b = 0; b < B; ++b) model::image_patches(dc, batch[b].target.data(), target.data() + b * T * P);
    if (backward) dy.assign(static_cast<size_t>(N * P), 0.0f);
    const LossResult r = mse(dec_y_.data(), target.data(), N * P, weight, backward ? dy.data() : nullptr);
    st.loss            = r.loss;
    if (!backward || !decoder_learns()) return st;
    const GradSink sink{&params_, &adapter_, options_.bf16 ? Precision::Bf16 : Precision::F32};
    Buf dtokens(static_cast<size_t>(N * dc.width), 0.0f);
    linear_backward(sink, w.out_proj, dec_.tokens.data(), dy.data(), N, dtokens.data());
    encoder_train_backward(sink, dc, w.trunk, seg, &dec_, dtokens);
    return st;
}

}  // namespace m4::train
