// layernorm — the norm of the modality encoders.
//
//     μ       = (1/C) Σ_c x[m, c]
//     σ²      = (1/C) Σ_c (x[m, c] − μ)²            (biased variance, two passes)
//     y[m, c] = ((x[m, c] − μ) · 1/sqrt(σ² + eps)) · w[c] + b[c]
//
// M rows, C channels. x, y: (M, C) contiguous, y may alias x. w, b: (C); null means w = 1, b = 0.
//
// Backward (accumulating), with n = (x − μ)·r (the normalised row) and g = dy ⊙ w:
//     dx[m, c] += r · (g[c] − mean_j g[j] − n[c] · mean_j (g[j]·n[j]))
//     dw[c]    += Σ_m dy[m, c] · n[m, c]        db[c] += Σ_m dy[m, c]
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

// dy: (M, C)  x: (M, C)  w: (C) or null  dx: (M, C)  dw, db: (C) or null
void layernorm_backward_ref(const float * dy, const float * x, const float * w, float * dx, float * dw, float * db,
                            int64_t M, int64_t C, float eps) {
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        const float * gr = dy + m * C;
        float sum        = 0.0f;
        for (int64_t c = 0; c < C; ++c) sum += xr[c];
        const float mean = sum / static_cast<float>(C);
        float sq         = 0.0f;
        for (int64_t c = 0; c < C; ++c) sq += (xr[c] - mean) * (xr[c] - mean);
        const float r = 1.0f / std::sqrt(sq / static_cast<float>(C) + eps);
        float g_mean = 0.0f, gn_mean = 0.0f;
        for (int64_t c = 0; c < C; ++c) {
            const float g = gr[c] * (w ? w[c] : 1.0f);
            g_mean += g;
            gn_mean += g * (xr[c] - mean) * r;
        }
        g_mean /= static_cast<float>(C);
        gn_mean /= static_cast<float>(C);
        for (int64_t c = 0; c < C; ++c) {
            const float n = (xr[c] - mean) * r;
            if (dx) dx[m * C + c] += r * (gr[c] * (w ? w[c] : 1.0f) - g_mean - n * gn_mean);
            if (dw) dw[c] += gr[c] * n;
            if (db) db[c] += gr[c];
        }
    }
}

}  // namespace m4::ops
