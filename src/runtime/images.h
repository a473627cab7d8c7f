// Image inputs and outputs of the generator path (path 4, the image decoder alone):
// an input image is decoded at its own size and resampled bicubically onto the decoder's S×S grid
// (model::resample_bicubic, on the op set); the decoder's output image is written as PNG.
//
//     auto x = load_image_for_decoder("small.png", *fw.config().image_decoder);   // [S, S, 3]
//     … Model::run(Path::Generator, Modality::Image, …) → out.image …
//     write_image_png("big.png", out.image.data(), S, S);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/config.h"

namespace m4::runtime {

// Pixels [h, w, 3], normalised (v/255 − 0.5)/0.5, at the image's own size.
struct DecodedImage {
    int64_t height = 0, width = 0;
    std::vector<float> values;
};
// PNG/JPEG/BMP/GIF bytes (grey replicated, alpha dropped). Errors name `name`.
Result<DecodedImage> decode_image_native(const std::string & bytes, const std::string & name);

// An image for the decoder `dec`: at most S×S (the decoder enlarges, it does not shrink), resampled
// bicubically to S×S. `img` normalised [h, w, 3].
Result<std::vector<float>> image_to_decoder_grid(const DecodedImage & img, const model::EncoderConfig & dec,
                                                 const std::string & name);
// A file (image, or .npy [h, w, 3] float32 normalised) → [S, S, 3] for the decoder. `native`, when
// given, receives the file's own height and width.
Result<std::vector<float>> load_image_for_decoder(const std::string & path, const model::EncoderConfig & dec,
                                                  std::pair<int64_t, int64_t> * native = nullptr);

// Normalised [h, w, 3] → 8-bit RGB (clamped) → PNG at `path` (written to a temporary file, then
// renamed). Errors name the path. The file holds exactly the bytes encode_png gives.
Status write_image_png(const std::string & path, const float * img, int64_t h, int64_t w);
// Normalised [h, w, 3] → 8-bit RGB (image_to_u8) → PNG bytes, appended to *out (the service writes
// them straight into its reply's field).
Status encode_png(const float * img, int64_t h, int64_t w, std::string * out);
// Normalised values → 8-bit pixels: round((v·0.5 + 0.5)·255), clamped to [0, 255].
std::vector<uint8_t> image_to_u8(const float * img, int64_t n);

// Checks an output path before anything runs: the extension fits the output kind ("png" for an
// image, "wav" for audio) and the directory exists and is writable.
Status check_output_path(const std::string & path, const std::string & ext);

}  // namespace m4::runtime
