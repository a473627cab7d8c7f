// pool — mean pooling over time (sentence / clip embeddings of the encoders).
//
//     y[b, c] = (1/T) Σ_t x[b, t, c]
//
// B sequences, T steps (T ≥ 1), C channels. x: (B, T, C) contiguous; y: (B, C). Sums are f32 in
// order of t, then divided by T.
//
// Backward (accumulating):  dx[b, t, c] += dy[b, c] / T
#include "ops/ops.h"

namespace m4::ops {

// x: (B, T, C)  y: (B, C)
void pool_forward_ref(const float * x, float * y, int64_t B, int64_t T, int64_t C) {
    for (int64_t b = 0; b < B; ++b) {
        float * yr = y + b * C;
        for (int64_t c = 0; c < C; ++c) yr[c] = 0.0f;
        for (int64_t t = 0; t < T; ++t) {
            const float * xr = x + (b * T + t) * C;
            for (int64_t c = 0; c < C; ++c) yr[c] += xr[c];
        }
        for (int64_t c = 0; c < C; ++c) yr[c] /= static_cast<float>(T);
    }
}

// dy: (B, C)  dx: (B, T, C)
void pool_backward_ref(const float * dy, float * dx, int64_t B, int64_t T, int64_t C) {
    const float inv = 1.0f / static_cast<float>(T);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
            float * dxr = dx + (b * T + t) * C;
            for (int64_t c = 0; c < C; ++c) dxr[c] += dy[b * C + c] * inv;
        }
}

}  // namespace m4::ops
