// The AVX2 + FMA kernels: the level for CPUs without AVX-512. Each computes the same function as
// the reference named in its file's header; register.cpp puts them into the dispatch table.
#pragma once

#include "kernels/abi.h"

namespace m4::kern {

void matmul_fwd_f32_avx2(const MatmulArgs & a);
void softmax_fwd_f32_avx2(const float * x, float * y, int64_t M, int64_t N);
void rmsnorm_fwd_f32_avx2(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps);

}  // namespace m4::kern
