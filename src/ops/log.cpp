// log — natural logarithm with an offset (log-mel features of the audio encoder).
//
//     y = ln(x + eps)
//
// x, y: (n), y may alias x. eps ≥ 0 keeps silent frames finite.
//
// Backward (accumulating):  dx += dy / (x + eps)
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (n)  y: (n)
void log_forward_ref(const float * x, float * y, int64_t n, float eps) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i] + eps);
}

// dy: (n)  x: (n)  dx: (n)
void log_backward_ref(const float * dy, const float * x, float * dx, int64_t n, float eps) {
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] / (x[i] + eps);
}

}  // namespace m4::ops
