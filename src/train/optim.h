// AdamW with decoupled weight decay, the learning-rate schedule (linear warm-up, cosine decay),
// and global-norm gradient clipping.
//
//     Schedule sched{.peak_lr = 3e-3f, .warmup = 20, .total = 500};
//     double norm = clip_grad_norm(params, 1.0f);              // before the update
//     adamw_step(params, AdamW{}, sched.lr_at(step), step + 1);
// or, without a pass that rewrites the gradients (the trainer's way; the same result bit for bit):
//     const float s = clip_scale(params.grad_norm(), 1.0f);
//     adamw_step(params, AdamW{}, sched.lr_at(step), step + 1, s);
#pragma once

#include <cstdint>

#include "train/params.h"

namespace m4::train {

struct AdamW {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.01f;  // decoupled: w ← w − lr·wd·w, only for params with decay
};

// lr(step), step = 0 … total − 1:
//   step < warmup:  peak · (step + 1) / warmup
//   after:          min + (peak − min) · ½(1 + cos(π · progress)),  progress = (step − warmup) / (total − warmup)
// with min = peak · min_ratio.
struct Schedule {
    float peak_lr   = 1e-3f;
    int64_t warmup  = 0;
    int64_t total   = 1;
    float min_ratio = 0.1f;
    float lr_at(int64_t step) const;
};

// One AdamW update of every parameter from its gradient; t ≥ 1 is the update count (bias correction):
//   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  m̂ = m/(1−β1ᵗ),  v̂ = v/(1−β2ᵗ)
//   w ← w − lr·(m̂ / (√v̂ + eps) + wd·w)          (wd only where Param::decay)
// with g = the stored gradient × grad_scale, and each Param::bf16_copy refreshed from the new w.
// Runs on ops::adamw (the ISA's kernel; src/ops/adamw.cpp).
void adamw_step(ParamStore & params, const AdamW & opt, float lr, int64_t t, float grad_scale = 1.0f);

// The factor that brings a gradient of global norm `norm` to at most max_norm: max_norm / (norm +
// 1e-6) above it, else 1 (also for max_norm ≤ 0).
float clip_scale(double norm, float max_norm);

// Scales all gradients so their global L2 norm is at most max_norm (no-op for max_norm ≤ 0).
// Returns the norm before clipping.
double clip_grad_norm(ParamStore & params, float max_norm);

}  // namespace m4::train
