// The kernel ABI: argument structs and function-pointer types shared by the scalar reference
// kernels (src/ops/) and the optimised kernels (src/kernels/<isa>/), and the one dispatch table.
//
// Dimension letters: M rows of x, N output features, K input features (GEMM);
// T query tokens, S key tokens, H query heads, G key/value heads (H % G == 0), D head dim.
// All matrices are row-major with an explicit leading dimension (elements between rows).
//
// Every optimised kernel must compute the same function as its reference in src/ops/<op>.cpp;
// tests/ops compares them on odd shapes for every ISA the machine has.
#pragma once

#include <cstdint>

#include "base/cpu.h"
#include "tensor/dtype.h"

namespace m4::kern {

// y[M, N] (ldy) = x[M, K] (ldx) · W[N, K]ᵀ  (+ bias[N])  (+ y if accumulate)
// W dtype:
//   F32  — exact f32 products, f32 accumulation
//   BF16 — x is rounded to bf16, products of bf16 pairs accumulated in f32
//   I8   — W8A8 dynamic: each x row is quantised symmetrically, sx = max|x_row| / 127,
//          qx = round_half_even(x / sx) ∈ [-127, 127]; y = sx · w_scale[n] · Σ_k qx·qw (exact int32)
struct MatmulArgs {
    const float * x       = nullptr;
    int64_t ldx           = 0;
    const void * w        = nullptr;  // [N, K], contiguous
    const float * w_scale = nullptr;  // I8 only: [N]
    const float * bias    = nullptr;  // optional [N]
    float * y             = nullptr;
    int64_t ldy           = 0;
    int64_t M = 0, N = 0, K = 0;
    bool accumulate = false;
};
using MatmulFn = void (*)(const MatmulArgs &);

// y[M, N] = softmax over each row of x[M, N] (y may alias x)
using SoftmaxFn = void (*)(const float * x, float * y, int64_t M, int64_t N);

// y[M, C] = x / sqrt(mean(x²) + eps) · w[C]   (y may alias x)
using RmsnormFn = void (*)(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps);

// y[M, C] = (x − mean) / sqrt(var + eps) · w[C] + b[C]   (biased variance; y may alias x)
using LayernormFn = void (*)(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C,
                             float eps);

// Scaled dot-product attention for one sequence.
//   q[T, H·D] (ldq)  k[S, G·D] (ldk)  v[S, G·D] (ldv)  →  y[T, H·D] (ldy)
//   head h reads key/value head h / (H / G)
//   causal: query t sits at absolute position pos0 + t and sees keys s ≤ pos0 + t
//   y = softmax(q·kᵀ · scale) · v
//   kv_dtype: F32, or BF16 for a compact KV cache (keys and values widened to f32 on load; q, y
//   and all arithmetic stay f32). Strides count elements of kv_dtype.
struct AttentionArgs {
    const float * q = nullptr;
    const void * k  = nullptr;
    const void * v  = nullptr;
    float * y       = nullptr;
    DType kv_dtype  = DType::F32;
    int64_t ldq = 0, ldk = 0, ldv = 0, ldy = 0;
    int64_t T = 0, S = 0, H = 0, G = 0, D = 0;
    bool causal  = false;
    int64_t pos0 = 0;
    float scale  = 1.0f;
};
using AttentionFn = void (*)(const AttentionArgs &);
// Its backward (training; keys and values f32): dy[T, H·D] (ldy) in; dq, dk, dv laid out like q, k,
// v ACCUMULATE (+=), a null one is skipped. Definition: ops::attention_backward_ref.
using AttentionBwdFn = void (*)(const AttentionArgs &, const float * dy, float * dq, float * dk, float * dv);

// Elementwise on n floats (y may alias x).
using UnaryFn = void (*)(const float * x, float * y, int64_t n);

// Elementwise backward on n floats, accumulating: dx[i] += dy[i] · f′(x[i]) (training).
// Definitions: ops::silu_backward_ref, ops::gelu_backward_ref (erf form).
using UnaryBwdFn = void (*)(const float * dy, const float * x, float * dx, int64_t n);

// y[i] = a[i] ∘ b[i mod b_period] for i < n, ∘ = + (add) or · (mul) (y may alias a): residual
// adds and gates (b_period = n) and per-feature broadcasts (b_period = row width).
using BinaryFn = void (*)(const float * a, const float * b, float * y, int64_t n, int64_t b_period);

// Transposes for the training backward (data movement, not a firmware op):
// out[c·ldo + r] = conv(in[r·ldi + c]) for r < R, c < C, in (R, C) and out (C, R) row-major.
// TransposeKind: F32 (f32 → f32), F32ToBf16 (f32 → bf16, nearest even, NaN stays NaN), U16 (16-bit
// elements as they are: bf16 → bf16). Definition: ops::transpose_ref.
enum class TransposeKind { F32 = 0, F32ToBf16 = 1, U16 = 2 };
inline constexpr int kTransposeKinds = 3;
using TransposeFn = void (*)(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo);

// AdamW on one parameter (training; not a firmware op). For i < n, with g = grad[i]·grad_scale:
//   m = b1·m + (1−b1)·g;  v = b2·v + ((1−b2)·g)·g;  u = (m / bc1) / (sqrt(v / bc2) + eps);
//   w = w − lr·(u + wd·w);  and, if w_bf16 is not null, w_bf16[i] = bf16(w) (f32_to_bf16's rule)
// — each operation rounded on its own (no fused multiply-add), so every kernel matches the
// reference bit for bit. Definition: ops::adamw_ref.
struct AdamWArgs {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float bc1 = 1.0f, bc2 = 1.0f;  // bias corrections 1 − β₁ᵗ, 1 − β₂ᵗ
    float lr = 0.0f, weight_decay = 0.0f, grad_scale = 1.0f;
};
using AdamWFn = void (*)(float * w, const float * grad, float * m, float * v, uint16_t * w_bf16, int64_t n,
                         const AdamWArgs & k);

// One table of kernels for one ISA level. A null entry means "not implemented at this level":
// the dispatcher fills it from the level below, ending at the scalar reference.
struct KernelTable {
    MatmulFn matmul[kDTypeCount]           = {};  // indexed by the weight DType (F32, BF16, I8)
    SoftmaxFn softmax                      = nullptr;
    RmsnormFn rmsnorm                      = nullptr;
    LayernormFn layernorm                  = nullptr;
    AttentionFn attention                  = nullptr;
    AttentionBwdFn attention_bwd           = nullptr;
    UnaryFn silu                           = nullptr;
    UnaryFn gelu                           = nullptr;  // erf form
    UnaryFn gelu_tanh                      = nullptr;  // tanh approximation
    UnaryFn gelu_quick                     = nullptr;  // x·σ(1.702·x)
    UnaryBwdFn silu_bwd                    = nullptr;
    UnaryBwdFn gelu_bwd                    = nullptr;  // erf form
    BinaryFn add                           = nullptr;
    BinaryFn mul                           = nullptr;
    TransposeFn transpose[kTransposeKinds] = {};  // indexed by TransposeKind
    AdamWFn adamw                          = nullptr;
};

// Filled in by each ISA folder (they check finer CPU features, e.g. AVX-512-BF16, themselves).
void register_avx2(KernelTable & table);
void register_avx512(KernelTable & table);
void register_amx(KernelTable & table);

}  // namespace m4::kern
