// adamw — the optimiser's update of one parameter (training; not a firmware op, ops.def does not
// list it), with the gradient's clipping scale folded in and the bf16 copy of the weights that
// the bf16 matmuls read refreshed in the same pass:
//
//     g = grad·s;  m = β₁m + (1−β₁)g;  v = β₂v + ((1−β₂)g)g;  w −= lr·((m/bc1) / (√(v/bc2) + ε) + wd·w)
//     w_bf16 = bf16(w)                                   w, grad, m, v: [n]   w_bf16: [n] or null
//
// Every operation is rounded on its own (this file is compiled without FMA), so the kernels, which
// use the same sequence of correctly rounded operations, match this reference bit for bit.
#include <cmath>

#include "base/thread_pool.h"
#include "ops/ops.h"

namespace m4::ops {

void adamw_ref(float * __restrict w, const float * __restrict grad, float * __restrict m, float * __restrict v,
               uint16_t * __restrict w_bf16, int64_t n, const kern::AdamWArgs & k) {
    const float b1 = k.beta1, b2 = k.beta2, c1 = 1.0f - k.beta1, c2 = 1.0f - k.beta2, eps = k.eps, bc1 = k.bc1,
                bc2 = k.bc2, lr = k.lr, wd = k.weight_decay, s = k.grad_scale;
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad[i] * s;
        m[i]          = b1 * m[i] + c1 * g;
        v[i]          = b2 * v[i] + c2 * g * g;
        const float u = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
        w[i]          = w[i] - lr * (u + wd * w[i]);
        if (w_bf16) w_bf16[i] = f32_to_bf16(w[i]);
    }
}

void adamw(float * w, const float * grad, float * m, float * v, uint16_t * w_bf16, int64_t n,
           const kern::AdamWArgs & k) {
    M4_CHECK(n >= 0 && k.bc1 > 0 && k.bc2 > 0);
    const kern::AdamWFn fn = active_kernels().adamw;
    ThreadPool::global().parallel_for(
        n,
        [&](int64_t b, int64_t e) {
            if (fn)
                fn(w + b, grad + b, m + b, v + b, w_bf16 ? w_bf16 + b : nullptr, e - b, k);
            else
                adamw_ref(w + b, grad + b, m + b, v + b, w_bf16 ? w_bf16 + b : nullptr, e - b, k);
        },
        1 << 14);
}

}  // namespace m4::ops
