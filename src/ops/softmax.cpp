// softmax — per row, numerically stable.
//
//     y[m, n] = exp(x[m, n] − max_n x[m, :]) · (1 / Σ_n exp(x[m, n] − max))
//
// M rows, N entries per row. x, y: (M, N) contiguous, y may alias x.
//
// Backward (accumulating), from the forward's output y:
//     dx[m, n] += y[m, n] · (dy[m, n] − Σ_j dy[m, j]·y[m, j])
#include <algorithm>
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (M, N)  y: (M, N)
void softmax_forward_ref(const float * x, float * y, int64_t M, int64_t N) {
    if (N <= 0) return;
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * N;
        float * yr       = y + m * N;
        float mx         = xr[0];
        for (int64_t n = 1; n < N; ++n) mx = std::max(mx, xr[n]);
        float sum = 0.0f;
        for (int64_t n = 0; n < N; ++n) {
            yr[n] = std::exp(xr[n] - mx);
            sum += yr[n];
        }
        const float inv = 1.0f / sum;
        for (int64_t n = 0; n < N; ++n) yr[n] *= inv;
    }
}

// dy: (M, N)  y: (M, N)  dx: (M, N)
void softmax_backward_ref(const float * dy, const float * y, float * dx, int64_t M, int64_t N) {
    for (int64_t m = 0; m < M; ++m) {
        const float * g  = dy + m * N;
        const float * yr = y + m * N;
        float dot        = 0.0f;
        for (int64_t n = 0; n < N; ++n) dot += g[n] * yr[n];
        for (int64_t n = 0; n < N; ++n) dx[m * N + n] += yr[n] * (g[n] - dot);
    }
}

}  // namespace m4::ops
