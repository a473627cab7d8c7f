#include "train/optim.h"

#include <cmath>

#include "base/status.h"
#include "base/thread_pool.h"

namespace m4::train {

float Schedule::lr_at(int64_t step) const {
    M4_CHECK(total >= 1 && warmup >= 0);
    if (step < warmup) return peak_lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
    const int64_t span    = std::max<int64_t>(1, total - warmup);
    const double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(span));
    const double min_lr   = double(peak_lr) * min_ratio;
    return static_cast<float>(min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

namespace {

struct AdamWConsts {
    float b1, b2, c1, c2, eps, bc1, bc2, lr, wd;
};

// Elements [0, n) of one parameter, constants in locals and pointers __restrict (GCC 12 at -O2
// still keeps this loop scalar: an AVX-512 AdamW kernel is left for later).
void adamw_range(float * __restrict w, const float * __restrict g, float * __restrict m, float * __restrict v,
                 int64_t n, const AdamWConsts & k) {
    const float b1 = k.b1, b2 = k.b2, c1 = k.c1, c2 = k.c2, eps = k.eps, bc1 = k.bc1, bc2 = k.bc2, lr = k.lr, wd = k.wd;
    for (int64_t i = 0; i < n; ++i) {
        m[i]          = b1 * m[i] + c1 * g[i];
        v[i]          = b2 * v[i] + c2 * g[i] * g[i];
        const float u = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
        w[i] -= lr * (u + wd * w[i]);
    }
}

}  // namespace

void adamw_step(ParamStore & params, const AdamW & opt, float lr, int64_t t) {
    M4_CHECK(t >= 1);
    const float bc1 = 1.0f - static_cast<float>(std::pow(double(opt.beta1), double(t)));
    const float bc2 = 1.0f - static_cast<float>(std::pow(double(opt.beta2), double(t)));
    for (auto & p : params.params()) {
        const AdamWConsts k{opt.beta1,
                            opt.beta2,
                            1.0f - opt.beta1,
                            1.0f - opt.beta2,
                            opt.eps,
                            bc1,
                            bc2,
                            lr,
                            p.decay ? opt.weight_decay : 0.0f};
        float * w = p.value.f32();
        float * g = p.grad.f32();
        float * m = p.m.f32();
        float * v = p.v.f32();
        // Elementwise, so any split over threads gives the same result.
        ThreadPool::global().parallel_for(
            p.numel(), [&](int64_t b, int64_t e) { adamw_range(w + b, g + b, m + b, v + b, e - b, k); }, 1 << 14);
    }
}

double clip_grad_norm(ParamStore & params, float max_norm) {
    const double norm = params.grad_norm();
    if (max_norm > 0 && norm > max_norm) params.scale_grads(static_cast<float>(max_norm / (norm + 1e-6)));
    return norm;
}

}  // namespace m4::train
