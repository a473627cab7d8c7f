// rmsnorm — the pre-norm of the decoder blocks.
//
//     r       = 1 / sqrt( (1/C) Σ_c x[m, c]² + eps )
//     y[m, c] = (x[m, c] · r) · w[c]
//
// M rows, C channels. x, y: (M, C) contiguous, y may alias x. w: (C); null means w = 1.
// Sums are f32, in index order.
//
// Backward (training issue): rmsnorm_backward_ref sits next to the forward, here.
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (M, C)  w: (C)  y: (M, C)
void rmsnorm_forward_ref(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps) {
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        float * yr       = y + m * C;
        float ss         = 0.0f;
        for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
        const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
        for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] * r) * (w ? w[c] : 1.0f);
    }
}

}  // namespace m4::ops
