// silu — the FFN activation of the decoder (SwiGLU gate).
//
//     y = x · σ(x) = x / (1 + exp(−x))
//
// x, y: (n), y may alias x.
//
// Backward (training issue): silu_backward_ref sits next to the forward, here.
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (n)  y: (n)
void silu_forward_ref(const float * x, float * y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

}  // namespace m4::ops
