// add — residual connections and bias rows.
//
//     y[i] = a[i] + b[i mod P]        i ∈ [0, n),  P = b_period (P = n: plain elementwise add)
//
// a, y: (n)   b: (P). y may alias a. With a = x[T, C] and b = bias[C], P = C broadcasts one row.
//
// Backward (accumulating):  da[i] += dy[i],  db[i mod P] += dy[i]   (the broadcast sums over periods)
#include "ops/ops.h"

namespace m4::ops {

// a: (n)  b: (b_period)  y: (n)
void add_forward_ref(const float * a, const float * b, float * y, int64_t n, int64_t b_period) {
    int64_t j = 0;
    for (int64_t i = 0; i < n; ++i) {
        y[i] = a[i] + b[j];
        if (++j == b_period) j = 0;
    }
}

// dy: (n)  da: (n) or null  db: (b_period) or null
void add_backward_ref(const float * dy, float * da, float * db, int64_t n, int64_t b_period) {
    int64_t j = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (da) da[i] += dy[i];
        if (db) db[j] += dy[i];
        if (++j == b_period) j = 0;
    }
}

}  // namespace m4::ops
