// TrainModel: the mel_regress objective on the generator path over text (docs/architecture.md,
// "Speech decoder"), forward as Model::run_speech up to the log-mel:
//     x = one-hot frames of the text's symbols         [N, S]   N = B·T, S = kSpeechSymbols
//     y = out_proj(trunk(x))                          [N, M]   (the trunk is an encoder's)
//     L = (1/(N·M)) Σ (y − target log-mel)²
// and its backward: dy → out_proj → trunk. Griffin-Lim is not trained through (it has no weights).
#include "model/speech_decoder.h"
#include "ops/ops.h"
#include "train/losses.h"
#include "train/train_model.h"

namespace m4::train {

Result<StepStats> TrainModel::run_mel_regress(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                                              std::vector<std::vector<float>> * outputs) {
    const model::SpeechDecoderConfig & sc = *base_.config().speech_decoder;
    const model::EncoderConfig dc         = sc.trunk();
    const model::DecoderWeights & w       = weights_.speech_decoder;
    const int64_t B = static_cast<int64_t>(batch.size()), T = sc.frames(), M = sc.n_mels, N = B * T;
    constexpr int64_t S = model::kSpeechSymbols;
    if (!outputs)
        for (size_t i = 0; i < batch.size(); ++i)
            if (static_cast<int64_t>(batch[i].target.size()) != T * M)
                return invalid_argument("task '" + task.name + "': sample " + std::to_string(i) +
                                        ": the target log-mel has " + std::to_string(batch[i].target.size()) +
                                        " values, the decoder's " + std::to_string(T) + "x" + std::to_string(M));
    const std::vector<model::RowSegment> seg{{0, N, &adapter_}};
    StepStats st;
    st.samples = B;
    st.tokens  = N;
    dec_.B     = B;
    dec_.patches.resize(static_cast<size_t>(N * S));
    for (int64_t b = 0; b < B; ++b)
        model::speech_inputs(sc, batch[b].tokens.data(), batch[b].tokens.size(), dec_.patches.data() + b * T * S);
    encoder_train_forward(dc, w.trunk, seg, options_.recompute, &dec_);
    dec_y_.resize(static_cast<size_t>(N * M));
    model::linear(w.out_proj, dec_.tokens.data(), N, dec_y_.data(), seg);
    if (outputs) {
        for (int64_t b = 0; b < B; ++b)
            (*outputs)[b].assign(dec_y_.begin() + b * T * M, dec_y_.begin() + (b + 1) * T * M);
        return st;
    }
    Buf target(static_cast<size_t>(N * M)), dy;
    for (int64_t b = 0; b < B; ++b)
        std::copy(batch[b].target.begin(), batch[b].target.end(), target.begin() + b * T * M);
    if (backward) dy.assign(static_cast<size_t>(N * M), 0.0f);
    const LossResult r = mse(dec_y_.data(), target.data(), N * M, weight, backward ? dy.data() : nullptr);
    st.loss            = r.loss;
    if (!backward || !decoder_learns()) return st;
    const GradSink sink{&params_, &adapter_, options_.bf16 ? Precision::Bf16 : Precision::F32};
    Buf dtokens(static_cast<size_t>(N * dc.width), 0.0f);
    linear_backward(sink, w.out_proj, dec_.tokens.data(), dy.data(), N, dtokens.data());
    encoder_train_backward(sink, dc, w.trunk, seg, &dec_, dtokens);
    return st;
}

}  // namespace m4::train
