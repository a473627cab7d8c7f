// register_avx2 — fills the AVX2 level of the dispatch table (src/ops/dispatch.cpp merges it over
// the scalar references): f32 matmul, softmax, rmsnorm. The other entries fall back to scalar.
#include "kernels/avx2/kernels.h"

namespace m4::kern {

void register_avx2(KernelTable & table) {
    table.matmul[static_cast<int>(DType::F32)] = matmul_fwd_f32_avx2;
    table.softmax                              = softmax_fwd_f32_avx2;
    table.rmsnorm                              = rmsnorm_fwd_f32_avx2;
}

}  // namespace m4::kern
