// The firmware operator set (ops.def): the public entry points the model calls. Each entry point
// records its OpKind (for the operator-type report), then runs the kernel the dispatch table
// selected for this CPU and M4_ISA, or the scalar reference.
//
//     ops::matmul(x, K, w, bias, y, N, M);        // y[M,N] = x[M,K]·wᵀ + bias
//     ops::rmsnorm(x, w, y, M, C, 1e-5f);
//
// Activations are f32; weights of matmul and gather may be f32, bf16 or int8 (per-row scales).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/abi.h"
#include "tensor/tensor.h"

namespace m4::ops {

// The forms of the gelu op (src/ops/gelu.cpp): the exact erf GELU, its tanh approximation
// (SigLIP's gelu_pytorch_tanh) and its sigmoid approximation x·σ(1.702·x) (CLIP's quick_gelu).
enum class GeluForm { Erf = 0, Tanh = 1, Quick = 2 };

enum class OpKind {
#define M4_OP(name, formula) name,
#include "ops/ops.def"
#undef M4_OP
    Count
};
inline constexpr int kOpCount = static_cast<int>(OpKind::Count);
const char * op_name(OpKind op);
const char * op_formula(OpKind op);

// ---- entry points (dispatching) -------------------------------------------------------------
// y[M, N] (ldy) = x[M, K] (ldx) · w[N, K]ᵀ + bias[N]; accumulate adds into y.
void matmul(const float * x, int64_t ldx, const Tensor & w, const float * bias, float * y, int64_t ldy, int64_t M,
            bool accumulate = false);
// y[i] = a[i] + b[i % b_period]
void add(const float * a, const float * b, float * y, int64_t n, int64_t b_period);
// y[i] = a[i] · b[i % b_period]
void mul(const float * a, const float * b, float * y, int64_t n, int64_t b_period);
void rmsnorm(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps);
void layernorm(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C, float eps);
void softmax(const float * x, float * y, int64_t M, int64_t N);
void silu(const float * x, float * y, int64_t n);
void gelu(const float * x, float * y, int64_t n);  // erf form
void gelu_tanh(const float * x, float * y, int64_t n);
void gelu_quick(const float * x, float * y, int64_t n);
void gelu(GeluForm form, const float * x, float * y, int64_t n);
// In place on x[T, H·D] (row stride ldx): head vector pairs (2i, 2i+1) rotated by pos[t]·θ^(−2i/D).
void rope(float * x, int64_t ldx, int64_t T, int64_t H, int64_t D, const int32_t * pos, float theta);
void attention(const kern::AttentionArgs & args);
// out (C, R) ldo = conv(in (R, C) ldi transposed), on the fastest kernel: the training backward's
// data movement (src/ops/transpose.cpp; not a firmware op).
void transpose(kern::TransposeKind kind, const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo);
// The AdamW update of one parameter (kern::AdamWFn's definition), on the fastest kernel, split
// over the pool (elementwise: the same result for any split). src/ops/adamw.cpp; not a firmware op.
void adamw(float * w, const float * grad, float * m, float * v, uint16_t * w_bf16, int64_t n,
           const kern::AdamWArgs & k);
void adamw_ref(float * w, const float * grad, float * m, float * v, uint16_t * w_bf16, int64_t n,
               const kern::AdamWArgs & k);
// dx[0:n] += dy · f′(x) on the fastest kernel, on the calling thread (the training graphs split
// their rows over the pool themselves): silu, and gelu in any form (kernels for the erf form).
void silu_backward(const float * dy, const float * x, float * dx, int64_t n);
void gelu_backward(GeluForm form, const float * dy, const float * x, float * dx, int64_t n);
void transpose_ref(kern::TransposeKind kind, const void * in, int64_t ldi, int64_t R, int64_t C, void * out,
                   int64_t ldo);
// Its backward on the fastest kernel (training): see attention_backward_ref below.
void attention_backward(const kern::AttentionArgs & args, const float * dy, float * dq, float * dk, float * dv);
// y[T, C] = table[ids[t], :]; table may be f32, bf16 or int8. ids must be in range (checked).
void gather(const Tensor & table, const int32_t * ids, int64_t T, float * y);
// y[B, C] = mean over T of x[B, T, C]
void pool(const float * x, float * y, int64_t B, int64_t T, int64_t C);
// y = ln(x + eps)
void log(const float * x, float * y, int64_t n, float eps);

// ---- scalar references (the oracle; also used directly by tests) ----------------------------
void matmul_forward_ref(const kern::MatmulArgs & a, DType w_dtype);
void add_forward_ref(const float * a, const float * b, float * y, int64_t n, int64_t b_period);
void mul_forward_ref(const float * a, const float * b, float * y, int64_t n, int64_t b_period);
void rmsnorm_forward_ref(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps);
void layernorm_forward_ref(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C,
                           float eps);
void softmax_forward_ref(const float * x, float * y, int64_t M, int64_t N);
void silu_forward_ref(const float * x, float * y, int64_t n);
void gelu_forward_ref(const float * x, float * y, int64_t n);
void gelu_tanh_forward_ref(const float * x, float * y, int64_t n);
void gelu_quick_forward_ref(const float * x, float * y, int64_t n);
void rope_forward_ref(float * x, int64_t ldx, int64_t T, int64_t H, int64_t D, const int32_t * pos, float theta);
void attention_forward_ref(const kern::AttentionArgs & a);
void gather_forward_ref(const Tensor & table, const int32_t * ids, int64_t T, float * y);
void pool_forward_ref(const float * x, float * y, int64_t B, int64_t T, int64_t C);
void log_forward_ref(const float * x, float * y, int64_t n, float eps);

// ---- backward references (training; the oracle of src/train) --------------------------------
// Each sits next to its forward in src/ops/<op>.cpp with its formula. Gradients ACCUMULATE (+=)
// into the given buffers (a residual stream or a shared weight gets contributions from several
// places), and a null gradient pointer skips that gradient. rope_backward_ref is the exception: it
// works in place, like the forward (dy in, dx out). Only f32 tensors learn: the matmul and gather
// gradients of bf16 / int8 weights are refused; dx through them uses the dequantised weight.
void matmul_backward_ref(const float * dy, int64_t lddy, const float * x, int64_t ldx, const Tensor & w, float * dx,
                         int64_t lddx, float * dw, float * db, int64_t M);
void add_backward_ref(const float * dy, float * da, float * db, int64_t n, int64_t b_period);
void mul_backward_ref(const float * dy, const float * a, const float * b, float * da, float * db, int64_t n,
                      int64_t b_period);
void rmsnorm_backward_ref(const float * dy, const float * x, const float * w, float * dx, float * dw, int64_t M,
                          int64_t C, float eps);
void layernorm_backward_ref(const float * dy, const float * x, const float * w, float * dx, float * dw, float * db,
                            int64_t M, int64_t C, float eps);
// y: the forward's output
void softmax_backward_ref(const float * dy, const float * y, float * dx, int64_t M, int64_t N);
void silu_backward_ref(const float * dy, const float * x, float * dx, int64_t n);
void gelu_backward_ref(const float * dy, const float * x, float * dx, int64_t n);
void gelu_tanh_backward_ref(const float * dy, const float * x, float * dx, int64_t n);
void gelu_quick_backward_ref(const float * dy, const float * x, float * dx, int64_t n);
void gelu_backward_ref(GeluForm form, const float * dy, const float * x, float * dx, int64_t n);
void rope_backward_ref(float * dx, int64_t ldx, int64_t T, int64_t H, int64_t D, const int32_t * pos, float theta);
// dy: (T, H·D) row stride a.ldy; dq, dk, dv laid out like a.q, a.k, a.v (strides ldq, ldk, ldv)
void attention_backward_ref(const kern::AttentionArgs & a, const float * dy, float * dq, float * dk, float * dv);
// dtable: (V, C) f32
void gather_backward_ref(const float * dy, const int32_t * ids, int64_t T, int64_t C, float * dtable);
void pool_backward_ref(const float * dy, float * dx, int64_t B, int64_t T, int64_t C);
void log_backward_ref(const float * dy, const float * x, float * dx, int64_t n, float eps);

// ---- dispatch -------------------------------------------------------------------------------
// The merged table for an ISA level: each null entry is filled from the level below.
const kern::KernelTable & kernel_table(Isa isa);
// The table for selected_isa() (re-evaluated on each call, so tests can lower the ceiling).
const kern::KernelTable & active_kernels();

// ---- operator-type recording (m4fw inspect: which op types a path uses) --------------------
// While a recorder is alive on this thread, every entry point adds its OpKind.
class OpRecorder {
  public:
    OpRecorder();
    ~OpRecorder();
    const std::vector<bool> & used() const { return used_; }
    std::vector<std::string> used_names() const;

  private:
    std::vector<bool> used_;
    OpRecorder * prev_;
};
void record_op(OpKind op);

}  // namespace m4::ops
