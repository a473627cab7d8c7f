// rmsnorm — the pre-norm of the decoder blocks.
//
//     r       = 1 / sqrt( (1/C) Σ_c x[m, c]² + eps )
//     y[m, c] = (x[m, c] · r) · w[c]
//
// M rows, C channels. x, y: (M, C) contiguous, y may alias x. w: (C); null means w = 1.
// Sums are f32, in index order.
//
// Backward (accumulating), with n = x·r (the normalised row) and g = dy ⊙ w:
//     dx[m, c] += r · (g[c] − n[c] · (1/C) Σ_j g[j]·n[j])
//     dw[c]    += Σ_m dy[m, c] · n[m, c]
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

// dy: (M, C)  x: (M, C)  w: (C) or null  dx: (M, C)  dw: (C) or null
void rmsnorm_backward_ref(const float * dy, const float * x, const float * w, float * dx, float * dw, int64_t M,
                          int64_t C, float eps) {
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        const float * gr = dy + m * C;
        float ss         = 0.0f;
        for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
        const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
        float dot     = 0.0f;  // Σ g·n
        for (int64_t c = 0; c < C; ++c) dot += gr[c] * (w ? w[c] : 1.0f) * (xr[c] * r);
        const float mean_dot = dot / static_cast<float>(C);
        for (int64_t c = 0; c < C; ++c) {
            const float n = xr[c] * r;
            if (dx) dx[m * C + c] += r * (gr[c] * (w ? w[c] : 1.0f) - n * mean_dot);
            if (dw) dw[c] += gr[c] * n;
        }
    }
}

}  // namespace m4::ops
