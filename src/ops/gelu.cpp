// gelu — the FFN activation of the encoders, exact (erf) form, not the tanh approximation.
//
//     y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))
//
// x, y: (n), y may alias x.
//
// Backward (accumulating):  dx += dy · (Φ(x) + x·φ(x)),  φ(x) = exp(−x²/2) / √(2π)
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (n)  y: (n)
void gelu_forward_ref(const float * x, float * y, int64_t n) {
    constexpr float kInvSqrt2 = 0.70710678118654752f;
    for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

// dy: (n)  x: (n)  dx: (n)
void gelu_backward_ref(const float * dy, const float * x, float * dx, int64_t n) {
    constexpr float kInvSqrt2   = 0.70710678118654752f;
    constexpr float kInvSqrt2Pi = 0.39894228040143268f;
    for (int64_t i = 0; i < n; ++i) {
        const float cdf = 0.5f * (1.0f + std::erf(x[i] * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

}  // namespace m4::ops
