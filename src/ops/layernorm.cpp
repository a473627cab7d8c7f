// layernorm — the norm of the modality encoders.
//
//     μ       = (1/C) Σ_c x[m, c]
//     σ²      = (1/C) Σ_c (x[m, c] − μ)²            (biased variance, two passes)
//     y[m, c] = ((x[m, c] − μ) · 1/sqrt(σ² + eps)) · w[c] + b[c]
//
// M rows, C channels. x, y: (M, C) contiguous, y may alias x. w, b: (C); null means w = 1, b = 0.
//
// Backward (training issue): layernorm_backward_ref sits next to the forward, here.
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (M, C)  w: (C)  b: (C)  y: (M, C)
void layernorm_forward_ref(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C,
                           float eps) {
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        float * yr       = y + m * C;
        float sum        = 0.0f;
        for (int64_t c = 0; c < C; ++c) sum += xr[c];
        const float mean = sum / static_cast<float>(C);
        float sq         = 0.0f;
        for (int64_t c = 0; c < C; ++c) sq += (xr[c] - mean) * (xr[c] - mean);
        const float r = 1.0f / std::sqrt(sq / static_cast<float>(C) + eps);
        for (int64_t c = 0; c < C; ++c) yr[c] = ((xr[c] - mean) * r) * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
    }
}

}  // namespace m4::ops
