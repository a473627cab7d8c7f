// mul — elementwise product (gating of the FFN, per-channel scales).
//
//     y[i] = a[i] · b[i mod P]        i ∈ [0, n),  P = b_period (P = n: plain elementwise product)
//
// a, y: (n)   b: (P). y may alias a.
//
// Backward (accumulating):  da[i] += dy[i]·b[i mod P],  db[i mod P] += dy[i]·a[i]
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

// dy: (n)  a: (n)  b: (b_period)  da: (n) or null  db: (b_period) or null
void mul_backward_ref(const float * dy, const float * a, const float * b, float * da, float * db, int64_t n,
                      int64_t b_period) {
    int64_t j = 0;
    for (int64_t i = 0; i < n; ++i) {
        const float g = dy[i];
        if (da) da[i] += g * b[j];
        if (db) db[j] += g * a[i];
        if (++j == b_period) j = 0;
    }
}

}  // namespace m4::ops
