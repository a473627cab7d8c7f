// IMG-Dec, the firmware's image decoder (docs/architecture.md, "Image decoder"), and what path 4
// (`generator`) runs around it: bicubic resampling of the input to the decoder's grid, patches,
// the decoder, a residual, un-patchify.
//
//     std::vector<float> big(S * S * 3);
//     resample_bicubic(small.data(), h, w, S, S, big.data());     // the low-resolution input, on S×S
//     image_patches(dec_cfg, big.data(), x);                       // x [T, P]
//     image_decoder_forward(dec_cfg, dec_w, x, 1, seg, y);         // y [T, P] = out_proj(trunk(x))
//     add(x, y) → image_unpatchify(dec_cfg, …)                     // the generator path's output
#pragma once

#include <vector>

#include "model/lora.h"

namespace m4::model {

// patches [T, P] → img [S, S, 3], the inverse of image_patches (a pure view change).
void image_unpatchify(const EncoderConfig & c, const float * patches, float * img);

// Bicubic interpolation weights [n_out, n_in] (Keys' kernel with a = −0.5, sample centres at
// (i + 0.5)·n_in/n_out − 0.5, taps beyond the edge clamped to it). Rows sum to 1.
Tensor bicubic_matrix(int64_t n_in, int64_t n_out);

// src [h, w, 3] → dst [out_h, out_w, 3]: two matmuls with bicubic_matrix (columns, then rows).
void resample_bicubic(const float * src, int64_t h, int64_t w, int64_t out_h, int64_t out_w, float * dst);

// IMG-Dec: x [B·T, P] input tokens → y [B·T, P] patches = out_proj(trunk(x)), the trunk being an
// encoder's (patch embedding + positions, pre-norm bidirectional layers, final layernorm).
// `seg` maps the B·T rows to adapters (one segment per sample).
void image_decoder_forward(const EncoderConfig & c, const DecoderWeights & w, const float * x, int64_t B,
                           const std::vector<RowSegment> & seg, float * y);

}  // namespace m4::model
