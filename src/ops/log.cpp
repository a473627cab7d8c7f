// log — natural logarithm with an offset (log-mel features of the audio encoder).
//
//     y = ln(x + eps)
//
// x, y: (n), y may alias x. eps ≥ 0 keeps silent frames finite.
//
// Backward (training issue): log_backward_ref (dy / (x + eps)) sits next to the forward, here.
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {

// x: (n)  y: (n)
void log_forward_ref(const float * x, float * y, int64_t n, float eps) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i] + eps);
}

}  // namespace m4::ops
