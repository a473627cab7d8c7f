// The one preprocessing path from raw input to encoder input, per modality (docs/architecture.md,
// "Preprocessing"). Data building, training, evaluation (bench::model_signal over dataset
// examples), `m4fw run` / `m4fw demo` (runtime::load_modal_input) and the service
// (runtime::decode_* inside the engine) all end in these functions, so an app that sends a file
// gets exactly the encoder input the adapter was trained on.
//
//     std::vector<float> img = model::image_input(pixels, h, w, channels, ec).value();  // [S, S, 3]
//     std::vector<float> pcm = model::audio_input(samples, n, ec).value();             // [clip]
//     std::vector<float> imu = model::imu_input(rows, n, ec).value();                  // [window, 6]
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/config.h"

namespace m4::model {

// Pixels [h, w, channels] (row-major, 8 bits; channels 1 = grey, 2 = grey + alpha, 3 = RGB,
// 4 = RGBA) → [S, S, 3] floats, S = c.image_size:
//   1. RGB: grey replicated into R, G and B; alpha dropped (not composited).
//   2. Size: an S × S image is taken as it is (identity: no filter touches it); any other size is
//      resized to S × S by stb_image_resize's stbir_resize_uint8 (aspect ratio not kept; default
//      filters: Catmull-Rom when enlarging, Mitchell when shrinking; edges clamped; linear 8-bit
//      values, no sRGB conversion), rounding to 8 bits.
//   3. v ↦ (v / 255 − 0.5) / 0.5, in f32, so 0 ↦ −1 and 255 ↦ 1.
Result<std::vector<float>> image_input(const uint8_t * px, int64_t h, int64_t w, int channels, const EncoderConfig & c);

// Mono samples in [−1, 1] (n ≤ c.clip_samples; more is refused) → [clip_samples], zero-padded at
// the end. 16-bit PCM maps to floats as v / 32768 (pcm16_to_float; libsndfile's own rule for WAV).
Result<std::vector<float>> audio_input(const float * samples, int64_t n, const EncoderConfig & c);
float pcm16_to_float(int16_t v);

// IMU rows [n, 6] (ax, ay, az, gx, gy, gz; n ≤ c.window; more is refused) → [window, 6],
// zero-padded at the end.
Result<std::vector<float>> imu_input(const float * rows, int64_t n, const EncoderConfig & c);

// Prompt templating, the same in training data and serving: the first "{input}" of the template is
// replaced by the input; a template without it gets the input appended; an empty template is
// "{input}". No other substitution, no whitespace added or trimmed.
std::string apply_prompt_template(const std::string & tmpl, std::string_view input);

}  // namespace m4::model
