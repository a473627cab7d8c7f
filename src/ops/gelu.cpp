// gelu — the FFN activation of the encoders, in the three forms the public vision towers use
// (GeluForm; one op type, `gelu`, in the operator report):
//
//     Erf   (default, ViT / m4)       y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))
//     Tanh  (SigLIP gelu_pytorch_tanh) y = 0.5 · x · (1 + tanh(u)),  u = √(2/π) · (x + 0.044715 · x³)
//     Quick (CLIP quick_gelu)          y = x · σ(1.702 · x)
//
// x, y: (n), y may alias x.
//
// Backward (accumulating):
//     Erf    dx += dy · (Φ(x) + x·φ(x)),  φ(x) = exp(−x²/2) / √(2π)
//     Tanh   dx += dy · (0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)),  t = tanh(u)
//     Quick  dx += dy · (s + 1.702·x·s·(1 − s)),  s = σ(1.702·x)
#include <cmath>

#include "ops/ops.h"

namespace m4::ops {
namespace {
constexpr float kSqrt2OverPi = 0.79788456080286536f;  // √(2/π)
constexpr float kTanhCubic   = 0.044715f;
constexpr float kQuick       = 1.702f;
}  // namespace

// x: (n)  y: (n)
void gelu_forward_ref(const float * x, float * y, int64_t n) {
    constexpr float kInvSqrt2 = 0.70710678118654752f;
    for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

// x: (n)  y: (n)
void gelu_tanh_forward_ref(const float * x, float * y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i]          = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + kTanhCubic * v * v * v)));
    }
}

// x: (n)  y: (n)
void gelu_quick_forward_ref(const float * x, float * y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-kQuick * x[i]));
}

// dy: (n)  x: (n)  dx: (n)
void gelu_backward_ref(const float * dy, const float * x, float * dx, int64_t n) {
    constexpr float kInvSqrt2   = 0.70710678118654752f;
    constexpr float kInvSqrt2Pi = 0.39894228040143268f;
    for (int64_t i = 0; i < n; ++i) {
        const float cdf = 0.5f * (1.0f + std::erf(x[i] * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

// dy: (n)  x: (n)  dx: (n)
void gelu_tanh_backward_ref(const float * dy, const float * x, float * dx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float v  = x[i];
        const float t  = std::tanh(kSqrt2OverPi * (v + kTanhCubic * v * v * v));
        const float du = kSqrt2OverPi * (1.0f + 3.0f * kTanhCubic * v * v);
        dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

// dy: (n)  x: (n)  dx: (n)
void gelu_quick_backward_ref(const float * dy, const float * x, float * dx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float s = 1.0f / (1.0f + std::exp(-kQuick * x[i]));
        dx[i] += dy[i] * (s + kQuick * x[i] * s * (1.0f - s));
    }
}

void gelu_backward_ref(GeluForm form, const float * dy, const float * x, float * dx, int64_t n) {
    switch (form) {
        case GeluForm::Erf:
            return gelu_backward_ref(dy, x, dx, n);
        case GeluForm::Tanh:
            return gelu_tanh_backward_ref(dy, x, dx, n);
        case GeluForm::Quick:
            return gelu_quick_backward_ref(dy, x, dx, n);
    }
}

void gelu_backward(GeluForm form, const float * dy, const float * x, float * dx, int64_t n) {
    if (form == GeluForm::Erf)
        if (const kern::UnaryBwdFn fn = active_kernels().gelu_bwd) return fn(dy, x, dx, n);
    gelu_backward_ref(form, dy, x, dx, n);
}

}  // namespace m4::ops
