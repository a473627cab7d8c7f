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
    const float b1 = opt.beta1, b2 = opt.beta2, eps = opt.eps, c1 = 1.0f - opt.beta1, c2 = 1.0f - opt.beta2;
    for (auto & p : params.params()) {
        float * w      = p.value.f32();
        float * g      = p.grad.f32();
        float * m      = p.m.f32();
        float * v      = p.v.f32();
        const float wd = p.decay ? opt.weight_decay : 0.0f;
        // One element; the same arithmetic in the vectorised blocks and the tail.
        auto update = [=](int64_t i) {
            m[i]          = b1 * m[i] + c1 * g[i];
            v[i]          = b2 * v[i] + c2 * g[i] * g[i];
            const float u = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
            w[i] -= lr * (u + wd * w[i]);
        };
        // Elementwise, so any split over threads gives the same result. Blocks of a fixed 16
        // elements let the compiler vectorise at -O2 (sqrt and division included).
        ThreadPool::global().parallel_for(
            p.numel(),
            [&](int64_t b, int64_t e) {
                int64_t i = b;
                for (; i + 16 <= e; i += 16)
                    for (int j = 0; j < 16; ++j) update(i + j);
                for (; i < e; ++i) update(i);
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
