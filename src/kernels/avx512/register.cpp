// register_avx512 — fills the AVX-512 level of the dispatch table (src/ops/dispatch.cpp merges
// it over the AVX2 level). The bf16 and int8 matmuls need finer features than the level itself
// (AVX-512 F/BW/VL/DQ) and are registered only when the CPU has them; otherwise those entries
// stay null and fall back to the level below.
#include "kernels/avx512/kernels.h"

namespace m4::kern {

void register_avx512(KernelTable & table) {
    const CpuFeatures & cpu                    = cpu_features();
    table.matmul[static_cast<int>(DType::F32)] = matmul_fwd_f32_avx512;
    if (cpu.avx512_bf16) table.matmul[static_cast<int>(DType::BF16)] = matmul_fwd_bf16_avx512;
    if (cpu.avx512_vnni) table.matmul[static_cast<int>(DType::I8)] = matmul_fwd_i8_avx512;
    table.softmax   = softmax_fwd_f32_avx512;
    table.rmsnorm   = rmsnorm_fwd_f32_avx512;
    table.layernorm = layernorm_fwd_f32_avx512;
    table.attention = attention_fwd_f32_avx512;
    table.silu      = silu_fwd_f32_avx512;
    table.gelu      = gelu_fwd_f32_avx512;
}

}  // namespace m4::kern
