// The AVX-512 kernels (AVX-512 F/BW/VL/DQ; the bf16 and int8 matmuls also need AVX-512-BF16 and
// AVX-512-VNNI). Each computes the same function as the reference named in its file's header;
// register.cpp puts them into the dispatch table when the CPU has what they need.
#pragma once

#include "kernels/abi.h"

namespace m4::kern {

void matmul_fwd_f32_avx512(const MatmulArgs & a);
void matmul_fwd_bf16_avx512(const MatmulArgs & a);  // needs avx512_bf16
void matmul_fwd_i8_avx512(const MatmulArgs & a);    // needs avx512_vnni
void matmul_fwd_i8_avx512bw(const MatmulArgs & a);  // AVX-512BW only: for CPUs without VNNI
void softmax_fwd_f32_avx512(const float * x, float * y, int64_t M, int64_t N);
void rmsnorm_fwd_f32_avx512(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps);
void layernorm_fwd_f32_avx512(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C,
                              float eps);
void attention_fwd_f32_avx512(const AttentionArgs & a);
void attention_bwd_f32_avx512(const AttentionArgs & a, const float * dy, float * dq, float * dk, float * dv);
void silu_fwd_f32_avx512(const float * x, float * y, int64_t n);
void gelu_fwd_f32_avx512(const float * x, float * y, int64_t n);
void gelu_tanh_fwd_f32_avx512(const float * x, float * y, int64_t n);
void gelu_quick_fwd_f32_avx512(const float * x, float * y, int64_t n);
void silu_bwd_f32_avx512(const float * dy, const float * x, float * dx, int64_t n);
void gelu_bwd_f32_avx512(const float * dy, const float * x, float * dx, int64_t n);
void add_fwd_f32_avx512(const float * a, const float * b, float * y, int64_t n, int64_t b_period);
void mul_fwd_f32_avx512(const float * a, const float * b, float * y, int64_t n, int64_t b_period);

void adamw_f32_avx512(float * w, const float * grad, float * m, float * v, uint16_t * w_bf16, int64_t n,
                      const AdamWArgs & k);
void transpose_f32_avx512(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo);
void transpose_f32_bf16_avx512(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo);
void transpose_u16_avx512(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo);

}  // namespace m4::kern
