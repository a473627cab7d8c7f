#include "train/optim.h"

#include <cmath>

#include "base/status.h"
#include "ops/ops.h"

namespace m4::train {

float Schedule::lr_at(int64_t step) const {
    M4_CHECK(total >= 1 && warmup >= 0);
    if (step < warmup) return peak_lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
    const int64_t span    = std::max<int64_t>(1, total - warmup);
    const double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(span));
    const double min_lr   = double(peak_lr) * min_ratio;
    return static_cast<float>(min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

void adamw_step(ParamStore & params, const AdamW & opt, float lr, int64_t t, float grad_scale) {
    M4_CHECK(t >= 1);
    kern::AdamWArgs k;
    k.beta1      = opt.beta1;
    k.beta2      = opt.beta2;
    k.eps        = opt.eps;
    k.bc1        = 1.0f - static_cast<float>(std::pow(double(opt.beta1), double(t)));
    k.bc2        = 1.0f - static_cast<float>(std::pow(double(opt.beta2), double(t)));
    k.lr         = lr;
    k.grad_scale = grad_scale;
    for (auto & p : params.params()) {
        k.weight_decay = p.decay ? opt.weight_decay : 0.0f;
        ops::adamw(p.value.f32(), p.grad.f32(), p.m.f32(), p.v.f32(), p.bf16_copy, p.numel(), k);
    }
}

float clip_scale(double norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
}

double clip_grad_norm(ParamStore & params, float max_norm) {
    const double norm = params.grad_norm();
    const float s     = clip_scale(norm, max_norm);
    if (s != 1.0f) params.scale_grads(s);
    return norm;
}

}  // namespace m4::train
