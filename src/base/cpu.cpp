#include "base/cpu.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "base/log.h"

namespace m4 {
namespace {

constexpr int kArchReqXcompPerm  = 0x1023;  // from <asm/prctl.h>
constexpr int kXfeatureXtiledata = 18;

uint64_t read_xcr0() {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12);
    if (!osxsave) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_os   = (xcr0 & 0x6) == 0x6;
    const bool zmm_os   = ymm_os && (xcr0 & 0xe0) == 0xe0;
    const bool amx_os   = (xcr0 & (3ull << 17)) == (3ull << 17);

    unsigned max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2              = ymm_os && fma && (b & (1u << 5));
    f.avx512f           = zmm_os && (b & (1u << 16));
    f.avx512dq          = f.avx512f && (b & (1u << 17));
    f.avx512bw          = f.avx512f && (b & (1u << 30));
    f.avx512vl          = f.avx512f && (b & (1u << 31));
    f.avx512_vnni       = f.avx512f && (c & (1u << 11));
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512_bf16 = f.avx512f && (a1 & (1u << 5));

    if (amx_tile && amx_os) {
        // Linux keeps tile data disabled until the process asks for it; without this the first
        // tile instruction faults with SIGILL.
        if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0) {
            f.amx_tile = true;
            f.amx_int8 = amx_int8;
            f.amx_bf16 = amx_bf16;
        } else {
            log::warn("cpu: AMX present but the kernel refused tile-data permission; AMX kernels disabled");
        }
    }
    if (f.avx2) f.detected = Isa::Avx2;
    if (f.avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) f.detected = Isa::Avx512;
    if (f.detected == Isa::Avx512 && f.amx_tile && f.amx_int8 && f.amx_bf16) f.detected = Isa::Amx;
    return f;
}

std::atomic<int> g_ceiling{-1};

}  // namespace

const char * isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar:
            return "scalar";
        case Isa::Avx2:
            return "avx2";
        case Isa::Avx512:
            return "avx512";
        case Isa::Amx:
            return "amx";
    }
    return "?";
}

bool parse_isa(const std::string & name, Isa * out) {
    for (int i = 0; i < kIsaCount; ++i) {
        if (name == isa_name(static_cast<Isa>(i))) {
            *out = static_cast<Isa>(i);
            return true;
        }
    }
    return false;
}

std::string CpuFeatures::describe() const {
    std::string s;
    auto add = [&](bool on, const char * n) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += n;
    };
    add(avx2, "avx2");
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512vl, "avx512vl");
    add(avx512dq, "avx512dq");
    add(avx512_bf16, "avx512-bf16");
    add(avx512_vnni, "avx512-vnni");
    add(amx_tile, "amx-tile");
    add(amx_int8, "amx-int8");
    add(amx_bf16, "amx-bf16");
    return s.empty() ? "none" : s;
}

const CpuFeatures & cpu_features() {
    static const CpuFeatures f = detect();
    return f;
}

Isa selected_isa() {
    const Isa detected = cpu_features().detected;
    int ceiling        = g_ceiling.load();
    if (ceiling < 0) {
        static const int env_ceiling = [] {
            const char * env = std::getenv("M4_ISA");
            if (!env || !*env) return kIsaCount - 1;
            Isa isa;
            if (!parse_isa(env, &isa)) {
                log::warn("M4_ISA={} is not one of scalar|avx2|avx512|amx; ignored", env);
                return kIsaCount - 1;
            }
            return static_cast<int>(isa);
        }();
        ceiling = env_ceiling;
    }
    return static_cast<Isa>(std::min(static_cast<int>(detected), ceiling));
}

void set_isa_ceiling(Isa ceiling) {
    g_ceiling.store(static_cast<int>(ceiling));
}

}  // namespace m4
