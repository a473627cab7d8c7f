// gelu — the FFN activation of the encoders, exact (erf) form, not the tanh approximation.
//
//     y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))
//
// x, y: (n), y may alias x.
//
// Backward (training issue): gelu_backward_ref sits next to the forward, here.
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (n)  y: (n)
void gelu_forward_ref(const float * x, float * y, int64_t n) {
    constexpr float kInvSqrt2 = 0.70710678118654752f;
    for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

}  // namespace m4::ops
