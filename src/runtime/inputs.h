// Decoding of user inputs into model inputs: images (PNG/JPEG/BMP/GIF via stb), audio (WAV/FLAC/OGG
// via libsndfile), IMU windows (CSV), and raw arrays (.npy). Errors name the file and the fault.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace m4::runtime {

// Decoded images larger than this (width × height, read from the file's header before any pixel
// is decoded) are refused: a small compressed file can claim a huge canvas.
inline constexpr int64_t kMaxImagePixels = 4096ll * 4096;

// Refuses NaN and ±inf in a decoded input, naming the input and the first bad value.
Status check_finite(const std::vector<float> & values, const std::string & name);

// Bytes an encoded input of this modality can need at most (a file larger than this cannot hold
// an input the encoder accepts): audio by the clip length, IMU CSV by the window, images by
// `image_limit` (their compression makes no tighter bound possible).
uint64_t max_encoded_bytes(const model::EncoderConfig & c, uint64_t image_limit);

// image → [S, S, 3] floats: RGB (grey replicated, alpha dropped), resized to S×S, (v/255 − 0.5)/0.5.
Result<std::vector<float>> load_image(const std::string & path, const model::EncoderConfig & c);
// audio → mono samples in [−1, 1] (channels averaged). The sample rate must be the encoder's.
Result<std::vector<float>> load_audio(const std::string & path, const model::EncoderConfig & c);
// IMU CSV → rows of 6 floats (ax, ay, az, gx, gy, gz). An optional header line is skipped; a
// leading time column (7 columns, seconds) is checked against the encoder's sample rate.
Result<std::vector<float>> load_imu_csv(const std::string & path, const model::EncoderConfig & c);

// The same decoders over bytes already in memory (a service request); `name` is used in errors.
Result<std::vector<float>> decode_image(const std::string & bytes, const std::string & name,
                                        const model::EncoderConfig & c);
Result<std::vector<float>> decode_audio(const std::string & bytes, const std::string & name,
                                        const model::EncoderConfig & c);
Result<std::vector<float>> decode_imu_csv(const std::string & text, const std::string & name,
                                          const model::EncoderConfig & c);

struct NpyArray {
    std::vector<int64_t> shape;
    std::vector<float> f32;    // float32 data (dtype '<f4')
    std::vector<int32_t> i32;  // int32 data (dtype '<i4')
    bool is_int = false;
};
Result<NpyArray> read_npy(const std::string & path);
Status write_npy_f32(const std::string & path, const float * data, const std::vector<int64_t> & shape);
Status write_npy_i32(const std::string & path, const int32_t * data, const std::vector<int64_t> & shape);

// A text input given on a command line: the contents of the file when `input` names an existing
// regular file (at most 1 MiB; a note goes to stderr saying so), otherwise the string itself.
Result<std::string> read_text_input(const std::string & input);

// Picks the modality from a file name's extension (text when it is not an existing file).
model::Modality guess_modality(const std::string & input);

// Loads any modality input for the given encoder: by extension, or .npy for raw arrays
// (image [S,S,3] normalised, audio [n], IMU [n,6]).
Result<std::vector<float>> load_modal_input(const std::string & path, const model::EncoderConfig & c);

}  // namespace m4::runtime
