// mul — elementwise product (gating of the FFN, per-channel scales).
//
//     y[i] = a[i] · b[i mod P]        i ∈ [0, n),  P = b_period (P = n: plain elementwise product)
//
// a, y: (n)   b: (P). y may alias a.
//
// Backward (training issue): mul_backward_ref sits next to the forward, here.
#include "ops/ops.h"

namespace m4::ops {

// a: (n)  b: (b_period)  y: (n)
void mul_forward_ref(const float * a, const float * b, float * y, int64_t n, int64_t b_period) {
    int64_t j = 0;
    for (int64_t i = 0; i < n; ++i) {
        y[i] = a[i] * b[j];
        if (++j == b_period) j = 0;
    }
}

}  // namespace m4::ops
