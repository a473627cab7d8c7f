// TTS-Dec forward and the Griffin-Lim vocoder of the generator path (see speech_decoder.h).
// Shapes: T = max_chars·frames_per_char frames, N = n_fft, K = N/2 + 1 bins, M = n_mels,
// L = (T − 1)·hop + N samples.
#include "model/speech_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/arena.h"
#include "model/encoder.h"
#include "ops/ops.h"

namespace m4::model {

namespace {
constexpr int64_t kMelRefineIters = 24;  // Richardson–Lucy steps of the mel inversion
}  // namespace

const std::string & speech_alphabet() {
    static const std::string a = std::string(1, '\0') + " abcdefghijklmnopqrstuvwxyz'-.,";
    return a;
}

Result<std::vector<int32_t>> speech_symbols(const SpeechDecoderConfig & c, const std::string & text) {
    if (text.empty()) return invalid_argument("text: empty (the speech decoder needs at least one character)");
    if (static_cast<int64_t>(text.size()) > c.max_chars)
        return invalid_argument("text: " + std::to_string(text.size()) + " characters exceed the speech decoder's " +
                                std::to_string(c.max_chars) + " (decoders.speech.max_chars)");
    const std::string & a = speech_alphabet();
    std::vector<int32_t> ids;
    for (size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        const size_t at = ch == '\0' ? std::string::npos : a.find(ch);
        if (at == std::string::npos)
            return invalid_argument("text: character '" + std::string(1, text[i]) + "' at " + std::to_string(i) +
                                    " is not in the speech decoder's alphabet (letters, space and '-.,)");
        ids.push_back(static_cast<int32_t>(at));
    }
    return ids;
}

void speech_inputs(const SpeechDecoderConfig & c, const int32_t * ids, size_t n, float * x) {
    const int64_t T = c.frames();
    M4_CHECK(static_cast<int64_t>(n) <= c.max_chars);
    std::fill(x, x + T * kSpeechSymbols, 0.0f);
    for (int64_t t = 0; t < T; ++t) {
        const size_t ch  = static_cast<size_t>(t / c.frames_per_char);
        const int32_t id = ch < n ? ids[ch] : 0;
        M4_CHECK(id >= 0 && id < kSpeechSymbols);
        x[t * kSpeechSymbols + id] = 1.0f;
    }
}

void speech_decoder_forward(const SpeechDecoderConfig & c, const DecoderWeights & w, const float * x, int64_t B,
                            const std::vector<RowSegment> & seg, float * logmel) {
    const EncoderConfig tc = c.trunk();
    const int64_t N        = B * tc.tokens();
    ArenaScope scope;
    float * tokens = scope.alloc<float>(N * tc.width);
    encoder_forward(tc, w.trunk, x, B, seg, tokens);  // [N, W]
    linear(w.out_proj, tokens, N, logmel, seg);       // [N, M]
}

SpeechVocoder make_speech_vocoder(const SpeechDecoderConfig & c) {
    SpeechVocoder v;
    v.fe            = make_audio_front_end(c.audio_view());
    const int64_t N = c.n_fft, K = N / 2 + 1, M = c.n_mels, T = c.frames(), L = c.samples();
    v.inv_cos = Tensor::empty(DType::F32, {N, K});
    v.inv_sin = Tensor::empty(DType::F32, {N, K});
    std::vector<double> win(N);
    for (int64_t n = 0; n < N; ++n) win[n] = 0.5 - 0.5 * std::cos(2.0 * M_PI * n / N);  // periodic Hann
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
            const double ck            = (k == 0 || 2 * k == N) ? 1.0 : 2.0;
            const double ang           = 2.0 * M_PI * double((k * n) % N) / N;
            v.inv_cos.f32()[n * K + k] = static_cast<float>(win[n] * ck * std::cos(ang) / N);
            v.inv_sin.f32()[n * K + k] = static_cast<float>(-win[n] * ck * std::sin(ang) / N);
        }
    // mel power m = F·p (F [M, K]); p̂_k = Σ_m F[m,k]·(m_m / a_m) / Σ_m F[m,k], a_m = Σ_k F[m,k]: each
    // band's mean power spread back over the bins it covers (a flat spectrum maps to itself).
    const float * F = v.fe.mel_fb.f32();
    std::vector<double> area(M, 0.0), cover(K, 0.0);
    for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k) area[m] += F[m * K + k], cover[k] += F[m * K + k];
    v.mel_inv = Tensor::zeros(DType::F32, {K, M});
    v.mel_rl  = Tensor::zeros(DType::F32, {K, M});
    for (int64_t k = 0; k < K; ++k)
        for (int64_t m = 0; m < M; ++m)
            if (cover[k] > 0) v.mel_rl.f32()[k * M + m] = static_cast<float>(F[m * K + k] / cover[k]);
    for (int64_t k = 0; k < K; ++k)
        for (int64_t m = 0; m < M; ++m)
            if (cover[k] > 0 && area[m] > 0)
                v.mel_inv.f32()[k * M + m] = static_cast<float>(F[m * K + k] / (area[m] * cover[k]));
    std::vector<double> wsum(L, 0.0);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < N; ++n) wsum[t * c.hop + n] += win[n] * win[n];
    v.ola_norm.resize(L);
    for (int64_t i = 0; i < L; ++i) v.ola_norm[i] = static_cast<float>(1.0 / std::max(wsum[i], 0.1));
    return v;
}

namespace {

// wav [L] → re, im [T, K] (windowed DFT of frames at hop strides).
void stft(const SpeechDecoderConfig & c, const SpeechVocoder & v, const float * wav, float * re, float * im) {
    const int64_t K = c.n_fft / 2 + 1, T = c.frames();
    ops::matmul(wav, c.hop, v.fe.dft_cos, nullptr, re, K, T);
    ops::matmul(wav, c.hop, v.fe.dft_sin, nullptr, im, K, T);
}

// re, im [T, K] → wav [L]: inverse DFT of each frame (windowed), overlap-added, normalised by Σ w².
void istft(const SpeechDecoderConfig & c, const SpeechVocoder & v, const float * re, const float * im, float * frames,
           float * tmp, float * wav) {
    const int64_t N = c.n_fft, K = N / 2 + 1, T = c.frames(), L = c.samples();
    ops::matmul(re, K, v.inv_cos, nullptr, frames, N, T);  // [T, N]
    ops::matmul(im, K, v.inv_sin, nullptr, tmp, N, T);
    ops::add(frames, tmp, frames, T * N, T * N);
    std::fill(wav, wav + L, 0.0f);
    for (int64_t t = 0; t < T; ++t) ops::add(wav + t * c.hop, frames + t * N, wav + t * c.hop, N, N);
    ops::mul(wav, v.ola_norm.data(), wav, L, L);
}

}  // namespace

void griffin_lim(const SpeechDecoderConfig & c, const SpeechVocoder & v, const float * logmel, float * wav) {
    const int64_t N = c.n_fft, K = N / 2 + 1, M = c.n_mels, T = c.frames(), L = c.samples();
    std::vector<float> mel(static_cast<size_t>(T * M)), mag(static_cast<size_t>(T * K));
    for (int64_t i = 0; i < T * M; ++i)
        mel[i] = std::max(std::exp(std::min(logmel[i], 30.0f)) - 1e-6f, 0.0f);  // log(p + 1e-6)⁻¹
    ops::matmul(mel.data(), M, v.mel_inv, nullptr, mag.data(), K, T);           // linear power [T, K]
    for (float & p : mag) p = std::max(p, 0.0f);
    // Richardson–Lucy refinement of the linear power so that its mel power approaches the target:
    // p ← p ⊙ Gᵀ(mel / F·p), G the filterbank normalised per bin (non-negative throughout).
    std::vector<float> q(mel.size()), ratio(static_cast<size_t>(T * K));
    for (int64_t it = 0; it < kMelRefineIters; ++it) {
        ops::matmul(mag.data(), K, v.fe.mel_fb, nullptr, q.data(), M, T);  // [T, M]
        for (int64_t i = 0; i < T * M; ++i) q[i] = q[i] > 1e-12f ? mel[i] / q[i] : 0.0f;
        ops::matmul(q.data(), M, v.mel_rl, nullptr, ratio.data(), K, T);  // [T, K]
        ops::mul(mag.data(), ratio.data(), mag.data(), T * K, T * K);
    }
    for (float & p : mag) p = std::sqrt(std::max(p, 0.0f));
    // A fixed pseudo-random starting phase (an LCG): the output depends on the input only.
    std::vector<float> re(static_cast<size_t>(T * K)), im(re.size()), frames(static_cast<size_t>(T * N)),
        tmp(frames.size());
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < T * K; ++i) {
        s                  = s * 6364136223846793005ull + 1442695040888963407ull;
        const double phase = 2.0 * M_PI * double(s >> 11) / double(1ull << 53);
        re[i]              = static_cast<float>(mag[i] * std::cos(phase));
        im[i]              = static_cast<float>(mag[i] * std::sin(phase));
    }
    for (int64_t it = 0; it < c.griffin_lim_iters; ++it) {
        istft(c, v, re.data(), im.data(), frames.data(), tmp.data(), wav);
        stft(c, v, wav, re.data(), im.data());
        for (int64_t i = 0; i < T * K; ++i) {  // keep the phase, impose the magnitude
            const float a = std::sqrt(re[i] * re[i] + im[i] * im[i]);
            const float g = a > 1e-8f ? mag[i] / a : 0.0f;
            re[i] *= g;
            im[i] *= g;
        }
    }
    istft(c, v, re.data(), im.data(), frames.data(), tmp.data(), wav);
    float peak = 0.0f;
    for (int64_t i = 0; i < L; ++i) peak = std::max(peak, std::fabs(wav[i]));
    if (peak > 0.9f)
        for (int64_t i = 0; i < L; ++i) wav[i] *= 0.9f / peak;
}

void speech_log_mel(const SpeechDecoderConfig & c, const SpeechVocoder & v, const float * wav, int64_t n,
                    float * logmel) {
    audio_log_mel(c.audio_view(), v.fe, wav, std::min(n, c.samples()), logmel);
}

}  // namespace m4::model
