// img.super_resolution (docs/benchmark.md): stored 32×32 originals → (input, target) pairs, image
// metrics, and scoring an image-output adapter against the bicubic baseline.
//
//     auto pair = sr_pair(ds.at(i), *fw.config().image_decoder, 4, "test #i");  // ×4
//     pair->input   [S, S, 3]: the original reduced by 4 (box average), enlarged bicubically onto S×S
//     pair->target  [S, S, 3]: the original (sr_original), normalised like every image input
//
// Metrics, on 8-bit images (outputs rounded and clamped as `m4fw run --out` writes them):
//   psnr  10·log10(255² / MSE) per image (MSE over pixels and channels; identical images: 100 dB),
//         averaged over images
//   ssim  Wang et al. 2004 on each channel with a 7×7 uniform window over every position where it
//         fits, C1 = (0.01·255)², C2 = (0.03·255)², sample covariances (n − 1); the mean over
//         windows and channels, averaged over images
// The baseline is the input itself: bicubic enlargement of the reduced image (Keys a = −0.5).
#pragma once

#include <vector>

#include "bench/evaluate.h"

namespace m4::bench {

inline constexpr int kSrScales[] = {2, 4};

// The S×S RGB original of a stored image: its centred square crop (side min(h, w)), grey
// replicated; a smaller one centred on a black canvas (28×28 Fashion-MNIST), a larger one reduced
// by an integer factor (box average; 64×64 scenes); other sizes are refused.
Result<std::vector<uint8_t>> sr_original(const data::Example & ex, int64_t S, const std::string & where);

struct SrPair {
    std::vector<float> input, target;  // [S, S, 3] normalised
};
Result<SrPair> sr_pair(const data::Example & ex, const model::EncoderConfig & dec, int factor,
                       const std::string & where);

double psnr_u8(const uint8_t * a, const uint8_t * b, int64_t n);
double ssim_u8(const uint8_t * a, const uint8_t * b, int64_t h, int64_t w);  // [h, w, 3]

// Scores an image-output adapter (generator path) on the task: the headline is PSNR over both
// scales, `extra` holds psnr/ssim per scale for the adapter and for bicubic, `chance` the bicubic PSNR.
Result<EvalReport> evaluate_super_resolution(const model::Model & fw, const adapter::Adapter * ad,
                                             const std::string & ad_path, const TaskPlan & plan,
                                             const std::string & data_dir, const EvalOptions & o);

}  // namespace m4::bench
