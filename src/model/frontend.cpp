#include "model/frontend.h"

#include <cmath>
#include <cstring>
#include <string>

#include "ops/ops.h"

namespace m4::model {

AudioFrontEnd make_audio_front_end(const EncoderConfig & c) {
    AudioFrontEnd fe;
    const int64_t N = c.n_fft, bins = N / 2 + 1;
    fe.dft_cos = Tensor::empty(DType::F32, {bins, N});
    fe.dft_sin = Tensor::empty(DType::F32, {bins, N});
    for (int64_t k = 0; k < bins; ++k) {
        for (int64_t n = 0; n < N; ++n) {
            double win                  = 0.5 - 0.5 * std::cos(2.0 * M_PI * n / N);  // periodic Hann
            double ang                  = 2.0 * M_PI * double((k * n) % N) / N;
            fe.dft_cos.f32()[k * N + n] = static_cast<float>(win * std::cos(ang));
            fe.dft_sin.f32()[k * N + n] = static_cast<float>(-win * std::sin(ang));
        }
    }
    auto mel     = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
    auto hz      = [](double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); };
    double m_max = mel(c.sample_rate / 2.0);
    std::vector<double> pts(c.n_mels + 2);
    for (int64_t i = 0; i < c.n_mels + 2; ++i) pts[i] = hz(m_max * double(i) / double(c.n_mels + 1));
    fe.mel_fb = Tensor::zeros(DType::F32, {c.n_mels, bins});
    for (int64_t m = 0; m < c.n_mels; ++m) {
        for (int64_t k = 0; k < bins; ++k) {
            double f                      = double(k) * c.sample_rate / double(N);
            double up                     = (f - pts[m]) / (pts[m + 1] - pts[m]);
            double down                   = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
            fe.mel_fb.f32()[m * bins + k] = static_cast<float>(std::max(0.0, std::min(up, down)));
        }
    }
    return fe;
}

Status check_modal_input(const EncoderConfig & c, int64_t n) {
    switch (c.modality) {
        case Modality::Image:
            if (n != c.image_size * c.image_size * 3)
                return invalid_argument("image: expected " + std::to_string(c.image_size) + "x" +
                                        std::to_string(c.image_size) + "x3 values, got " + std::to_string(n));
            return Status::ok();
        case Modality::Audio:
            if (n <= 0) return invalid_argument("audio: the clip is empty");
            if (n > c.clip_samples)
                return invalid_argument("audio: " + std::to_string(n) + " samples exceeds the encoder's clip of " +
                                        std::to_string(c.clip_samples) + " (" +
                                        std::to_string(double(c.clip_samples) / c.sample_rate).substr(0, 4) + " s)");
            return Status::ok();
        case Modality::Imu:
            if (n <= 0 || n % 6 != 0)
                return invalid_argument("imu: expected rows of 6 values, got " + std::to_string(n));
            if (n / 6 > c.window)
                return invalid_argument("imu: " + std::to_string(n / 6) + " samples exceeds the window of " +
                                        std::to_string(c.window) + " (" + std::to_string(c.sample_rate) + " Hz)");
            return Status::ok();
        case Modality::Text:
            break;
    }
    return invalid_argument("no encoder for text");
}

// img [S, S, 3] → patches [T, P]: patch (gy, gx) holds img[gy·p + dy, gx·p + dx, c], c fastest.
void image_patches(const EncoderConfig & c, const float * img, float * patches) {
    const int64_t S = c.image_size, p = c.patch_size, g = S / p, P = c.patch_dim();
    for (int64_t gy = 0; gy < g; ++gy)
        for (int64_t gx = 0; gx < g; ++gx) {
            float * dst = patches + (gy * g + gx) * P;
            for (int64_t dy = 0; dy < p; ++dy) {
                std::memcpy(dst, img + ((gy * p + dy) * S + gx * p) * 3, static_cast<size_t>(p * 3) * 4);
                dst += p * 3;
            }
        }
}

// samples [n] → logmel [n_frames, n_mels]; framing is a strided view (row stride = hop).
void audio_log_mel(const EncoderConfig & c, const AudioFrontEnd & fe, const float * samples, int64_t n,
                   float * logmel) {
    const int64_t F = c.n_frames(), N = c.n_fft, bins = N / 2 + 1;
    std::vector<float> clip(static_cast<size_t>(c.clip_samples), 0.0f);
    std::memcpy(clip.data(), samples, static_cast<size_t>(std::min(n, c.clip_samples)) * 4);
    std::vector<float> re(static_cast<size_t>(F * bins)), im(re.size());
    ops::matmul(clip.data(), c.hop, fe.dft_cos, nullptr, re.data(), bins, F);  // re[F, bins]
    ops::matmul(clip.data(), c.hop, fe.dft_sin, nullptr, im.data(), bins, F);  // im[F, bins]
    ops::mul(re.data(), re.data(), re.data(), F * bins, F * bins);
    ops::mul(im.data(), im.data(), im.data(), F * bins, F * bins);
    ops::add(re.data(), im.data(), re.data(), F * bins, F * bins);          // power
    ops::matmul(re.data(), bins, fe.mel_fb, nullptr, logmel, c.n_mels, F);  // mel[F, n_mels]
    ops::log(logmel, logmel, F * c.n_mels, 1e-6f);
}

void audio_patches(const EncoderConfig & c, const AudioFrontEnd & fe, const float * samples, int64_t n,
                   float * patches) {
    std::vector<float> logmel(static_cast<size_t>(c.n_frames() * c.n_mels));
    audio_log_mel(c, fe, samples, n, logmel.data());
    // Patches are consecutive runs of patch_frames rows: a reshape of the first T·patch_frames rows.
    std::memcpy(patches, logmel.data(), static_cast<size_t>(c.patches() * c.patch_dim()) * 4);
}

void imu_patches(const EncoderConfig & c, const float * samples, int64_t n, float * patches) {
    const int64_t total = c.patches() * c.patch_dim();
    const int64_t have  = std::min(n * 6, total);
    std::memcpy(patches, samples, static_cast<size_t>(have) * 4);
    std::fill(patches + have, patches + total, 0.0f);
}

}  // namespace m4::model
