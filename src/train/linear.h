// Training GEMMs on the dispatching kernels, and the backward of the LoRA choke point.
//
// The forward of a linear layer is model::linear() itself (so training and inference cannot
// drift). Its backward, for y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ:
//     dx += dy·W̃ + s·(dy·B)·A          dW += dyᵀ·x        db += Σ_m dy
//     dB += s·dyᵀ·(x·Aᵀ)               dA += s·(dy·B)ᵀ·x
// with W̃ the dequantised weight (a frozen bf16 / int8 base passes gradients through, it never
// learns). Every product runs on ops::matmul (y = x·Wᵀ form): the other operand is transposed
// into a scratch block first, so the fast kernels of the machine do the work and nothing of
// the base weight is copied whole (blocks of at most kBlockElems values).
// Sums are split over output elements only, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "model/lora.h"
#include "train/params.h"

namespace m4::train {

// Matmul numerics of the backward GEMMs. Bf16: both operands rounded to bf16, f32 accumulation
// (the AVX-512-BF16 / AMX kernels); F32: exact f32 products.
enum class Precision { F32 = 0, Bf16 = 1 };

inline constexpr int64_t kBlockElems = int64_t{1} << 18;  // transposed weight block: 1 MiB of f32

// dx[M, K] += dy[M, N] · W̃[N, K]   (W f32 | bf16 | i8)
void matmul_dx(const float * dy, int64_t M, const Tensor & w, float * dx, Precision p);
// dw[N, K] += dy[M, N]ᵀ · x[M, K]   (x rows with stride ldx)
void matmul_dw(const float * dy, const float * x, int64_t ldx, int64_t M, int64_t N, int64_t K, float * dw,
               Precision p);
// db[N] += Σ_m dy[m, :]
void bias_grad(const float * dy, int64_t M, int64_t N, float * db);

// Where the gradients of the model's weights go: the parameter that owns a weight's memory (full
// mode: every f32 master and its bf16 shadow; adapter mode: LoRA, head, projector), or nowhere
// (a frozen base weight).
struct GradSink {
    const ParamStore * params          = nullptr;
    const model::AdapterWeights * lora = nullptr;  // the adapter being trained (its pairs are parameter views)
    Precision precision                = Precision::F32;
    float * grad_of(const void * data) const;  // null when frozen
};

// Backward of model::linear(l, x, M, y, {{0, M, sink.lora}}). dx may be null (nothing upstream
// learns); parameter gradients accumulate into their owners.
void linear_backward(const GradSink & sink, const model::Linear & l, const float * x, const float * dy, int64_t M,
                     float * dx);

}  // namespace m4::train
