// register_avx512 — fills the AVX-512 level of the dispatch table (src/ops/dispatch.cpp merges
// it over the AVX2 level). The bf16 and int8 matmuls need finer features than the level itself
// (AVX-512 F/BW/VL/DQ): bf16 is registered only when the CPU has AVX-512-BF16 (otherwise the entry
// stays null and falls back to the level below); int8 uses VNNI when present, else VPMADDWD.
#include "kernels/avx512/kernels.h"

namespace m4::kern {

void register_avx512(KernelTable & table) {
    const CpuFeatures & cpu                    = cpu_features();
    table.matmul[static_cast<int>(DType::F32)] = matmul_fwd_f32_avx512;
    if (cpu.avx512_bf16) table.matmul[static_cast<int>(DType::BF16)] = matmul_fwd_bf16_avx512;
    table.matmul[static_cast<int>(DType::I8)] = cpu.avx512_vnni ? matmul_fwd_i8_avx512 : matmul_fwd_i8_avx512bw;
    table.softmax                             = softmax_fwd_f32_avx512;
    table.rmsnorm                             = rmsnorm_fwd_f32_avx512;
    table.layernorm                           = layernorm_fwd_f32_avx512;
    table.attention                           = attention_fwd_f32_avx512;
    table.attention_bwd                       = attention_bwd_f32_avx512;
    table.silu                                = silu_fwd_f32_avx512;
    table.gelu                                = gelu_fwd_f32_avx512;
    table.gelu_tanh                           = gelu_tanh_fwd_f32_avx512;
    table.gelu_quick                          = gelu_quick_fwd_f32_avx512;
    table.add                                 = add_fwd_f32_avx512;
    table.mul                                 = mul_fwd_f32_avx512;
    table.transpose[static_cast<int>(TransposeKind::F32)]       = transpose_f32_avx512;
    table.transpose[static_cast<int>(TransposeKind::F32ToBf16)] = transpose_f32_bf16_avx512;
    table.transpose[static_cast<int>(TransposeKind::U16)]       = transpose_u16_avx512;
    table.silu_bwd                                              = silu_bwd_f32_avx512;
    table.gelu_bwd                                              = gelu_bwd_f32_avx512;
    table.adamw                                                 = adamw_f32_avx512;
}

}  // namespace m4::kern
