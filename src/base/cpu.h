// CPU feature detection (cpuid + OS support via xgetbv) and the ISA level the kernels use.
//
// Isa levels are ordered: a level implies every level below it. The selected level is
//     min(detected level, M4_ISA)    with M4_ISA = scalar | avx2 | avx512 | amx
// (precedent: oneDNN's ONEDNN_MAX_CPU_ISA). AMX additionally needs the Linux permission
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), requested once by detect_cpu().
#pragma once

#include <string>

namespace m4 {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Amx = 3 };
inline constexpr int kIsaCount = 4;

const char * isa_name(Isa isa);
bool parse_isa(const std::string & name, Isa * out);

struct CpuFeatures {
    bool avx2        = false;  // AVX2 + FMA, OS saves YMM state
    bool avx512f     = false;  // OS saves ZMM + opmask state
    bool avx512bw    = false;
    bool avx512vl    = false;
    bool avx512dq    = false;
    bool avx512_bf16 = false;
    bool avx512_vnni = false;
    bool amx_tile    = false;  // includes the kernel's permission for tile data
    bool amx_int8    = false;
    bool amx_bf16    = false;
    Isa detected     = Isa::Scalar;  // highest level the CPU and OS support
    std::string describe() const;    // "avx2 avx512f … amx-int8"
};

// Detected once, thread-safe.
const CpuFeatures & cpu_features();

// The ISA kernels run at: min(detected, M4_ISA). An unknown M4_ISA value is reported once and ignored.
Isa selected_isa();

// Overrides the selection for this process (tests iterate over levels). Clamped to the detected level.
void set_isa_ceiling(Isa ceiling);

}  // namespace m4
