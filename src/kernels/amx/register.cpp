// register_amx — the AMX level of the dispatch table: the bf16 matmul on AMX tiles. Every other
// entry of this level falls back to the AVX-512 kernels (src/ops/dispatch.cpp). The int8 matmul
// (TDPBSSD) is not written yet: it stays on AVX-512-VNNI.
#include "base/cpu.h"
#include "kernels/amx/kernels.h"

namespace m4::kern {

void register_amx(KernelTable & table) {
    const CpuFeatures & cpu = cpu_features();
    if (cpu.amx_tile && cpu.amx_bf16 && cpu.avx512_bf16)
        table.matmul[static_cast<int>(DType::BF16)] = matmul_fwd_bf16_amx;
}

}  // namespace m4::kern
