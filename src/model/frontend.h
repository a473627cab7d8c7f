// Modality front ends: turn a decoded input into patch vectors [T, P] for an encoder
// (docs/architecture.md, "Front ends"). Audio's log-mel runs on the firmware op set.
#pragma once

#include <vector>

#include "model/config.h"
#include "tensor/tensor.h"

namespace m4::model {

// Constant matrices of the audio front end, computed once from the config.
struct AudioFrontEnd {
    Tensor dft_cos;  // [n_bins, n_fft]  Hann window · cos(2πkn/N)
    Tensor dft_sin;  // [n_bins, n_fft]  Hann window · −sin(2πkn/N)
    Tensor mel_fb;   // [n_mels, n_bins] HTK triangles, unnormalised
};
AudioFrontEnd make_audio_front_end(const EncoderConfig & c);

// Checks an input's size for the encoder; the message says what is wrong ("audio: 48000 samples
// exceeds the encoder's clip of 16000 (1.00 s)").
Status check_modal_input(const EncoderConfig & c, int64_t n_values);

// image: values [S, S, 3] (already resized and normalised) → patches [T, P]
void image_patches(const EncoderConfig & c, const float * img, float * patches);
// audio: samples [n] (n ≤ clip) → log-mel [n_frames, n_mels] → patches [T, P]
void audio_log_mel(const EncoderConfig & c, const AudioFrontEnd & fe, const float * samples, int64_t n, float * logmel);
void audio_patches(const EncoderConfig & c, const AudioFrontEnd & fe, const float * samples, int64_t n,
                   float * patches);
// imu: samples [n, 6] (n ≤ window) → patches [T, P]
void imu_patches(const EncoderConfig & c, const float * samples, int64_t n, float * patches);

}  // namespace m4::model
