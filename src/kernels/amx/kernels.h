// The AMX kernels (AMX-TILE with AMX-BF16 / AMX-INT8, on top of AVX-512). Each computes the same
// function as the reference named in its file's header; register.cpp puts them into the dispatch
// table when the CPU has what they need and Linux granted the tile data (base/cpu.cpp).
#pragma once

#include "kernels/abi.h"

namespace m4::kern {

void matmul_fwd_bf16_amx(const MatmulArgs & a);  // needs amx_bf16 and avx512_bf16

}  // namespace m4::kern
