// silu — the FFN activation of the decoder (SwiGLU gate).
//
//     y = x · σ(x) = x / (1 + exp(−x))
//
// x, y: (n), y may alias x.
//
// Backward (accumulating):  dx += dy · σ(x) · (1 + x·(1 − σ(x)))
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (n)  y: (n)
void silu_forward_ref(const float * x, float * y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

// dy: (n)  x: (n)  dx: (n)
void silu_backward_ref(const float * dy, const float * x, float * dx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float s = 1.0f / (1.0f + std::exp(-x[i]));
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

void silu_backward(const float * dy, const float * x, float * dx, int64_t n) {
    if (const kern::UnaryBwdFn fn = active_kernels().silu_bwd) return fn(dy, x, dx, n);
    silu_backward_ref(dy, x, dx, n);
}

}  // namespace m4::ops
