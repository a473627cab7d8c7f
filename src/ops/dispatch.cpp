// The one dispatch table and the public entry points of the firmware operator set.
//
// kernel_table(isa) merges one KernelTable per ISA level, built once (thread-safe static init):
//     level Scalar  = the scalar references of src/ops/<op>.cpp
//     level L > 0   = what kernels/<L>/register.cpp registers, every null entry taken from L − 1
// so a kernel missing at one level falls back to the best one below, ending at the reference.
// active_kernels() reads the table of selected_isa() = min(detected, M4_ISA, set_isa_ceiling).
//
// Each entry point records its OpKind (OpRecorder), checks its arguments with M4_CHECK (a bad
// shape or id is a programmer error upstream: the model validated its inputs as Status already),
// then calls through the table. Ops without an optimised kernel call their reference directly.
#include <array>
#include <atomic>

#include <fmt/format.h>

#include "base/log.h"
#include "base/status.h"
#include "ops/ops.h"

namespace m4::ops {
namespace {

void matmul_ref_f32(const kern::MatmulArgs & a) {
    matmul_forward_ref(a, DType::F32);
}
void matmul_ref_bf16(const kern::MatmulArgs & a) {
    matmul_forward_ref(a, DType::BF16);
}
void matmul_ref_i8(const kern::MatmulArgs & a) {
    matmul_forward_ref(a, DType::I8);
}

kern::KernelTable reference_table() {
    kern::KernelTable t;
    t.matmul[static_cast<int>(DType::F32)]  = matmul_ref_f32;
    t.matmul[static_cast<int>(DType::BF16)] = matmul_ref_bf16;
    t.matmul[static_cast<int>(DType::I8)]   = matmul_ref_i8;
    t.softmax                               = softmax_forward_ref;
    t.rmsnorm                               = rmsnorm_forward_ref;
    t.layernorm                             = layernorm_forward_ref;
    t.attention                             = attention_forward_ref;
    t.attention_bwd                         = attention_backward_ref;
    t.silu                                  = silu_forward_ref;
    t.gelu                                  = gelu_forward_ref;
    t.gelu_tanh                             = gelu_tanh_forward_ref;
    t.gelu_quick                            = gelu_quick_forward_ref;
    t.add                                   = add_forward_ref;
    t.mul                                   = mul_forward_ref;
    return t;
}

// Every null entry of `t` is taken from `below`.
void fill_from(kern::KernelTable & t, const kern::KernelTable & below) {
    for (int d = 0; d < kDTypeCount; ++d)
        if (!t.matmul[d]) t.matmul[d] = below.matmul[d];
    if (!t.softmax) t.softmax = below.softmax;
    if (!t.rmsnorm) t.rmsnorm = below.rmsnorm;
    if (!t.layernorm) t.layernorm = below.layernorm;
    if (!t.attention) t.attention = below.attention;
    if (!t.attention_bwd) t.attention_bwd = below.attention_bwd;
    if (!t.silu) t.silu = below.silu;
    if (!t.gelu) t.gelu = below.gelu;
    if (!t.gelu_tanh) t.gelu_tanh = below.gelu_tanh;
    if (!t.gelu_quick) t.gelu_quick = below.gelu_quick;
    if (!t.silu_bwd) t.silu_bwd = below.silu_bwd;
    if (!t.gelu_bwd) t.gelu_bwd = below.gelu_bwd;
    if (!t.add) t.add = below.add;
    if (!t.mul) t.mul = below.mul;
    for (int k = 0; k < kern::kTransposeKinds; ++k)
        if (!t.transpose[k]) t.transpose[k] = below.transpose[k];
    if (!t.adamw) t.adamw = below.adamw;
}

using Tables = std::array<kern::KernelTable, kIsaCount>;

Tables build_tables() {
    Tables tables;
    tables[static_cast<int>(Isa::Scalar)] = reference_table();
    // register_<isa>() lives in a translation unit compiled with that ISA's flags (the compiler may
    // use wide instructions even for its pointer stores), so it only runs on a CPU that has the
    // level; a level above the detected one is a plain copy of the level below.
    const int detected = static_cast<int>(cpu_features().detected);
    if (detected >= static_cast<int>(Isa::Avx2)) kern::register_avx2(tables[static_cast<int>(Isa::Avx2)]);
    if (detected >= static_cast<int>(Isa::Avx512)) kern::register_avx512(tables[static_cast<int>(Isa::Avx512)]);
    if (detected >= static_cast<int>(Isa::Amx)) kern::register_amx(tables[static_cast<int>(Isa::Amx)]);
    for (int level = 1; level < kIsaCount; ++level) fill_from(tables[level], tables[level - 1]);
    return tables;
}

const Tables & tables() {
    static const Tables t = build_tables();
    return t;
}

std::atomic<int> g_logged_isa{-1};

}  // namespace

const kern::KernelTable & kernel_table(Isa isa) {
    const int level = static_cast<int>(isa);
    M4_CHECK(level >= 0 && level < kIsaCount);
    return tables()[level];
}

const kern::KernelTable & active_kernels() {
    const Isa isa = selected_isa();
    // Log each newly selected level once (normally just once per process).
    if (g_logged_isa.exchange(static_cast<int>(isa)) != static_cast<int>(isa))
        ::m4::log::info("ops: kernels at isa={} (cpu: {})", isa_name(isa), cpu_features().describe());
    return kernel_table(isa);
}

// ---- entry points -----------------------------------------------------------------------------

void matmul(const float * x, int64_t ldx, const Tensor & w, const float * bias, float * y, int64_t ldy, int64_t M,
            bool accumulate) {
    record_op(OpKind::matmul);
    const DType dt = w.dtype();
    M4_CHECK_MSG(w.ndim() == 2, fmt::format("matmul: weight must be 2-D [N, K], got {}", w.shape().str()));
    M4_CHECK_MSG(dt == DType::F32 || dt == DType::BF16 || dt == DType::I8,
                 fmt::format("matmul: weight dtype {} is not f32, bf16 or i8", dtype_name(dt)));
    const int64_t N = w.dim(0), K = w.dim(1);
    // ldx < K is allowed: overlapping rows are a strided view (audio framing reads frames at stride hop).
    M4_CHECK_MSG(
        M >= 0 && ldx >= 1 && ldy >= N,
        fmt::format("matmul: M={} ldx={} ldy={} for weight {} (need ldx ≥ 1, ldy ≥ N)", M, ldx, ldy, w.shape().str()));
    if (M == 0 || N == 0) return;
    M4_CHECK(x != nullptr && y != nullptr && (K == 0 || w.data() != nullptr));
    M4_CHECK_MSG(dt != DType::I8 || w.scales() != nullptr, "matmul: int8 weight without per-row scales");
    kern::MatmulArgs a;
    a.x          = x;
    a.ldx        = ldx;
    a.w          = w.data();
    a.w_scale    = dt == DType::I8 ? w.scales() : nullptr;
    a.bias       = bias;
    a.y          = y;
    a.ldy        = ldy;
    a.M          = M;
    a.N          = N;
    a.K          = K;
    a.accumulate = accumulate;
    active_kernels().matmul[static_cast<int>(dt)](a);
}

void add(const float * a, const float * b, float * y, int64_t n, int64_t b_period) {
    record_op(OpKind::add);
    M4_CHECK_MSG(n >= 0 && b_period > 0, fmt::format("add: n={} b_period={}", n, b_period));
    active_kernels().add(a, b, y, n, b_period);
}

void mul(const float * a, const float * b, float * y, int64_t n, int64_t b_period) {
    record_op(OpKind::mul);
    M4_CHECK_MSG(n >= 0 && b_period > 0, fmt::format("mul: n={} b_period={}", n, b_period));
    active_kernels().mul(a, b, y, n, b_period);
}

void rmsnorm(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps) {
    record_op(OpKind::rmsnorm);
    M4_CHECK_MSG(M >= 0 && C > 0 && eps >= 0.0f, fmt::format("rmsnorm: M={} C={} eps={}", M, C, eps));
    active_kernels().rmsnorm(x, w, y, M, C, eps);
}

void layernorm(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C, float eps) {
    record_op(OpKind::layernorm);
    M4_CHECK_MSG(M >= 0 && C > 0 && eps >= 0.0f, fmt::format("layernorm: M={} C={} eps={}", M, C, eps));
    active_kernels().layernorm(x, w, b, y, M, C, eps);
}

void softmax(const float * x, float * y, int64_t M, int64_t N) {
    record_op(OpKind::softmax);
    M4_CHECK_MSG(M >= 0 && N > 0, fmt::format("softmax: M={} N={}", M, N));
    active_kernels().softmax(x, y, M, N);
}

void silu(const float * x, float * y, int64_t n) {
    record_op(OpKind::silu);
    M4_CHECK(n >= 0);
    active_kernels().silu(x, y, n);
}

void gelu(const float * x, float * y, int64_t n) {
    record_op(OpKind::gelu);
    M4_CHECK(n >= 0);
    active_kernels().gelu(x, y, n);
}

void gelu_tanh(const float * x, float * y, int64_t n) {
    record_op(OpKind::gelu);
    M4_CHECK(n >= 0);
    active_kernels().gelu_tanh(x, y, n);
}

void gelu_quick(const float * x, float * y, int64_t n) {
    record_op(OpKind::gelu);
    M4_CHECK(n >= 0);
    active_kernels().gelu_quick(x, y, n);
}

void gelu(GeluForm form, const float * x, float * y, int64_t n) {
    switch (form) {
        case GeluForm::Erf:
            return gelu(x, y, n);
        case GeluForm::Tanh:
            return gelu_tanh(x, y, n);
        case GeluForm::Quick:
            return gelu_quick(x, y, n);
    }
}

void rope(float * x, int64_t ldx, int64_t T, int64_t H, int64_t D, const int32_t * pos, float theta) {
    record_op(OpKind::rope);
    M4_CHECK_MSG(T >= 0 && H > 0 && D > 0 && D % 2 == 0 && ldx >= H * D && theta > 0.0f,
                 fmt::format("rope: T={} H={} D={} (must be even) ldx={} theta={}", T, H, D, ldx, theta));
    if (T > 0) M4_CHECK(x != nullptr && pos != nullptr);
    rope_forward_ref(x, ldx, T, H, D, pos, theta);
}

void attention(const kern::AttentionArgs & a) {
    record_op(OpKind::attention);
    M4_CHECK_MSG(a.T >= 0 && a.S >= 0 && a.H > 0 && a.G > 0 && a.D > 0 && a.H % a.G == 0,
                 fmt::format("attention: T={} S={} H={} G={} D={} (need H % G == 0)", a.T, a.S, a.H, a.G, a.D));
    M4_CHECK_MSG(a.ldq >= a.H * a.D && a.ldy >= a.H * a.D && (a.S == 0 || (a.ldk >= a.G * a.D && a.ldv >= a.G * a.D)),
                 fmt::format("attention: ldq={} ldk={} ldv={} ldy={} too small for H={} G={} D={}", a.ldq, a.ldk, a.ldv,
                             a.ldy, a.H, a.G, a.D));
    M4_CHECK_MSG(a.pos0 >= 0, fmt::format("attention: pos0={}", a.pos0));
    M4_CHECK_MSG(a.kv_dtype == DType::F32 || a.kv_dtype == DType::BF16,
                 fmt::format("attention: keys and values are {}, not f32 or bf16", dtype_name(a.kv_dtype)));
    if (a.T == 0) return;
    active_kernels().attention(a);
}

void attention_backward(const kern::AttentionArgs & a, const float * dy, float * dq, float * dk, float * dv) {
    M4_CHECK_MSG(
        a.T >= 0 && a.S >= 0 && a.H > 0 && a.G > 0 && a.D > 0 && a.H % a.G == 0,
        fmt::format("attention backward: T={} S={} H={} G={} D={} (need H % G == 0)", a.T, a.S, a.H, a.G, a.D));
    M4_CHECK_MSG(a.kv_dtype == DType::F32, "attention backward: training keeps keys and values in f32");
    if (a.T == 0 || a.S == 0) return;
    active_kernels().attention_bwd(a, dy, dq, dk, dv);
}

void gather(const Tensor & table, const int32_t * ids, int64_t T, float * y) {
    record_op(OpKind::gather);
    const DType dt = table.dtype();
    M4_CHECK_MSG(table.ndim() == 2, fmt::format("gather: table must be 2-D [V, C], got {}", table.shape().str()));
    M4_CHECK_MSG(dt == DType::F32 || dt == DType::BF16 || dt == DType::I8,
                 fmt::format("gather: table dtype {} is not f32, bf16 or i8", dtype_name(dt)));
    M4_CHECK_MSG(dt != DType::I8 || table.scales() != nullptr, "gather: int8 table without per-row scales");
    M4_CHECK(T >= 0);
    const int64_t V = table.dim(0);
    for (int64_t t = 0; t < T; ++t)
        M4_CHECK_MSG(ids[t] >= 0 && ids[t] < V, fmt::format("gather: ids[{}] = {} is outside [0, {})", t, ids[t], V));
    gather_forward_ref(table, ids, T, y);
}

void pool(const float * x, float * y, int64_t B, int64_t T, int64_t C) {
    record_op(OpKind::pool);
    M4_CHECK_MSG(B >= 0 && T > 0 && C >= 0, fmt::format("pool: B={} T={} C={}", B, T, C));
    pool_forward_ref(x, y, B, T, C);
}

void log(const float * x, float * y, int64_t n, float eps) {
    record_op(OpKind::log);
    M4_CHECK_MSG(n >= 0 && eps >= 0.0f, fmt::format("log: n={} eps={}", n, eps));
    log_forward_ref(x, y, n, eps);
}

}  // namespace m4::ops
