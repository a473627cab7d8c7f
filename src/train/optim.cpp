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

void adamw_step(ParamStore & params, const AdamW & opt, float lr, int64_t t) {
    M4_CHECK(t >= 1);
    const float bc1 = 1.0f - static_cast<float>(std::pow(double(opt.beta1), double(t)));
    const float bc2 = 1.0f - static_cast<float>(std::pow(double(opt.beta2), double(t)));
    for (auto & p : params.params()) {
        float * w      = p.value.f32();
        float * g      = p.grad.f32();
        float * m      = p.m.f32();
        float * v      = p.v.f32();
        const float wd = p.decay ? opt.weight_decay : 0.0f;
        // Elementwise, so any split over threads gives the same result.
        ThreadPool::global().parallel_for(
            p.numel(),
            [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) {
                    m[i]          = opt.beta1 * m[i] + (1.0f - opt.beta1) * g[i];
                    v[i]          = opt.beta2 * v[i] + (1.0f - opt.beta2) * g[i] * g[i];
                    const float u = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + opt.eps);
                    w[i] -= lr * (u + wd * w[i]);
                }
            },
            1 << 14);
    }
}

double clip_grad_norm(ParamStore & params, float max_norm) {
    const double norm = params.grad_norm();
    if (max_norm > 0 && norm > max_norm) params.scale_grads(static_cast<float>(max_norm / (norm + 1e-6)));
    return norm;
}

}  // namespace m4::train
