#include "model/preprocess.h"

#include <stb/stb_image_resize.h>

#include <algorithm>
#include <string>

#include "model/frontend.h"

namespace m4::model {

Result<std::vector<float>> image_input(const uint8_t * px, int64_t h, int64_t w, int channels,
                                       const EncoderConfig & c) {
    if (c.modality != Modality::Image) return invalid_argument("image input for a non-image encoder");
    if (h <= 0 || w <= 0 || channels < 1 || channels > 4)
        return invalid_argument("image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels with " +
                                std::to_string(channels) + " channels (need 1–4 channels and a non-empty canvas)");
    if (h > (1 << 15) || w > (1 << 15))
        return invalid_argument("image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is too large");
    // 1. RGB.
    const int64_t n_px = h * w;
    std::vector<uint8_t> rgb(static_cast<size_t>(n_px * 3));
    for (int64_t p = 0; p < n_px; ++p)
        for (int k = 0; k < 3; ++k) rgb[p * 3 + k] = px[p * channels + (channels >= 3 ? k : 0)];
    // 2. S × S: identity at the encoder's size, stb's default filters otherwise.
    const int64_t S = c.image_size;
    if (h != S || w != S) {
        std::vector<uint8_t> resized(static_cast<size_t>(S * S * 3));
        if (!stbir_resize_uint8(rgb.data(), static_cast<int>(w), static_cast<int>(h), 0, resized.data(),
                                static_cast<int>(S), static_cast<int>(S), 0, 3))
            return invalid_argument("image could not be resized to " + std::to_string(S) + "x" + std::to_string(S));
        rgb.swap(resized);
    }
    // 3. [−1, 1].
    std::vector<float> out(rgb.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = (rgb[i] / 255.0f - 0.5f) / 0.5f;
    return out;
}

float pcm16_to_float(int16_t v) {
    return static_cast<float>(v) / 32768.0f;
}

Result<std::vector<float>> audio_input(const float * samples, int64_t n, const EncoderConfig & c) {
    if (c.modality != Modality::Audio) return invalid_argument("audio input for a non-audio encoder");
    M4_RETURN_IF_ERROR(check_modal_input(c, n));
    std::vector<float> out(static_cast<size_t>(c.clip_samples), 0.0f);
    std::copy(samples, samples + n, out.begin());
    return out;
}

Result<std::vector<float>> imu_input(const float * rows, int64_t n, const EncoderConfig & c) {
    if (c.modality != Modality::Imu) return invalid_argument("IMU input for a non-IMU encoder");
    M4_RETURN_IF_ERROR(check_modal_input(c, n * 6));
    std::vector<float> out(static_cast<size_t>(c.window * 6), 0.0f);
    std::copy(rows, rows + n * 6, out.begin());
    return out;
}

std::string apply_prompt_template(const std::string & tmpl, std::string_view input) {
    std::string out = tmpl.empty() ? "{input}" : tmpl;
    const auto at   = out.find("{input}");
    if (at == std::string::npos) return out + std::string(input);
    return out.replace(at, 7, std::string(input));
}

}  // namespace m4::model
