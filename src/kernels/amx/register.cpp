// register_amx — the AMX level of the dispatch table. It registers nothing yet: the AMX int8 /
// bf16 tile kernels (tile_config.cpp, repack.cpp, gemm_bf16.cpp, gemm_i8.cpp) come in a later
// issue, and the development machine has no AMX to test them on. Until then every entry of this
// level falls back to the AVX-512 kernels (src/ops/dispatch.cpp), so M4_ISA=amx behaves like avx512.
#include "kernels/abi.h"

namespace m4::kern {

void register_amx(KernelTable & table) {
    (void)table;
}

}  // namespace m4::kern
