// Every kernel of every ISA level against the scalar reference, over odd shapes: the rows of
// op_cases.cpp × {scalar, avx2, avx512, amx}. A level the CPU lacks, or one above M4_ISA, is
// reported as SKIPPED with the reason.
//
// Tolerances: matmul f32 / bf16 1e-5 relative to Σ|x·w| + |b| + |y₀| (the scale of the rounding
// error of any summation order); int8 1e-6 of the same (the kernels are exact up to how the
// compiler schedules the last float multiply); attention 2e-5 absolute (outputs are convex
// combinations of v ∈ [−1, 1]); row ops and activations a few ulp relative to the output. Ops
// without an optimised kernel must match their reference exactly.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/avx512/kernels.h"
#include "op_cases.h"
#include "tensor/tensor.h"

namespace m4 {
// Names ISA levels in gtest's parameter printouts.
void PrintTo(Isa isa, std::ostream * os) {
    *os << isa_name(isa);
}
}  // namespace m4

namespace m4::test {
namespace {

// The level the process would run at without the tests' overrides (M4_ISA and the CPU).
const Isa kStartIsa = selected_isa();

// Lowers the ISA ceiling for one test, then restores the start level.
struct IsaCeiling {
    explicit IsaCeiling(Isa isa) { set_isa_ceiling(isa); }
    ~IsaCeiling() { set_isa_ceiling(kStartIsa); }
};

std::vector<float> random_vec(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<size_t>(std::max<int64_t>(n, 1)));
    for (float & f : v) f = dist(rng);
    return v;
}

// |got − want| ≤ rtol·scale[i] + atol for every i (scale null: |want[i]|); NaN always fails.
void expect_close(const float * got, const float * want, int64_t n, float rtol, float atol, const float * scale,
                  const std::string & what) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        const float s   = scale ? scale[i] : std::fabs(want[i]);
        const float tol = rtol * s + atol;
        if (!(std::fabs(got[i] - want[i]) <= tol) && !(got[i] == want[i])) {
            if (++bad <= 5)
                ADD_FAILURE() << what << " [" << i << "]: got " << got[i] << ", want " << want[i] << " (tolerance "
                              << tol << ")";
        }
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << n << " elements out of tolerance";
}

void expect_equal(const std::vector<float> & got, const std::vector<float> & want, const std::string & what) {
    expect_close(got.data(), want.data(), static_cast<int64_t>(want.size()), 0.0f, 0.0f, nullptr, what);
}

// ---- matmul ---------------------------------------------------------------------------------

struct MatmulShape {
    int64_t M, N, K;
    bool bias, accumulate;
    int64_t ldx_pad, ldy_pad;
    bool ties = false;  // x = halves with max |x| = 127: every int8 quantisation is a tie
};

std::vector<MatmulShape> matmul_shapes() {
    std::vector<MatmulShape> shapes;
    const int64_t dims[] = {1, 7, 33, 257};
    int i                = 0;
    for (int64_t M : dims)
        for (int64_t N : dims)
            for (int64_t K : dims) {
                shapes.push_back({M, N, K, i % 2 == 0, (i / 2) % 2 == 0, i % 3 == 0 ? 5 : 0, i % 5 == 0 ? 3 : 0});
                ++i;
            }
    // Exact multiples of tile and vector widths, long K, wide GEMV, K = 0, quantisation ties, and
    // overlapping rows.
    shapes.push_back({4, 16, 64, true, false, 0, 0});
    shapes.push_back({8, 12, 512, false, true, 0, 0});
    shapes.push_back({1, 1000, 300, true, true, 0, 0});
    shapes.push_back({65, 70, 1031, true, false, 7, 1});
    shapes.push_back({3, 5, 0, true, false, 0, 0});
    shapes.push_back({9, 13, 100, true, true, 2, 0, true});
    shapes.push_back({1, 40, 77, false, false, 0, 0, true});
    shapes.push_back({6, 10, 64, true, false, -48, 0});  // overlapping rows of x (ldx = 16)
    // Packed GEMMs (M ≥ 16): K a multiple of the vector and pair widths, K across several f32 K
    // blocks (256), full and partial micro-tiles and panels.
    shapes.push_back({16, 32, 64, false, false, 0, 0});
    shapes.push_back({40, 96, 512, true, true, 0, 2});
    shapes.push_back({23, 45, 96, true, false, 3, 0});
    // More rows than one packed task (1024): two row blocks of the same panels.
    shapes.push_back({1030, 33, 70, true, true, 0, 0});
    return shapes;
}

struct MatmulData {
    std::vector<float> x, bias, y0;
    Tensor w, w_f32;  // w in the tested dtype, and dequantised
};

MatmulData make_matmul_data(const MatmulShape & s, DType dt, uint32_t seed) {
    MatmulData d;
    const int64_t ldx = s.K + s.ldx_pad, ldy = s.N + s.ldy_pad;
    // Rows may overlap (ldx < K: a strided view, e.g. audio frames at a hop shorter than the frame).
    d.x = random_vec(std::max(s.M * ldx, (s.M - 1) * ldx + s.K), seed);
    if (s.ties) {
        for (int64_t m = 0; m < s.M; ++m) {
            for (int64_t k = 0; k < s.K; ++k) d.x[m * ldx + k] = std::round(d.x[m * ldx + k] * 254.0f) / 2.0f;
            if (s.K > 0) d.x[m * ldx] = 127.0f;
        }
    }
    Tensor wf             = Tensor::empty(DType::F32, {s.N, s.K});
    std::vector<float> wv = random_vec(s.N * s.K, seed + 1);
    std::copy_n(wv.begin(), s.N * s.K, wf.f32());
    d.w     = convert(wf, dt);
    d.w_f32 = to_f32(d.w);
    d.bias  = random_vec(s.N, seed + 2);
    d.y0    = random_vec(s.M * ldy, seed + 3);
    return d;
}

// Scale of the rounding error of y[m, n]: Σ_k |x·w| + |b| + |y₀|; 0 on row padding (untouched).
std::vector<float> matmul_scale(const MatmulShape & s, const MatmulData & d) {
    const int64_t ldx = s.K + s.ldx_pad, ldy = s.N + s.ldy_pad;
    std::vector<float> scale(d.y0.size(), 0.0f);
    for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n) {
            double acc = 0.0;
            for (int64_t k = 0; k < s.K; ++k) acc += std::fabs(d.x[m * ldx + k] * d.w_f32.f32()[n * s.K + k]);
            if (s.bias) acc += std::fabs(d.bias[n]);
            if (s.accumulate) acc += std::fabs(d.y0[m * ldy + n]);
            scale[m * ldy + n] = static_cast<float>(acc);
        }
    return scale;
}

// One matmul kernel against the scalar reference on every shape of matmul_shapes().
void check_matmul_kernel(kern::MatmulFn fn, DType dt) {
    const float rtol = dt == DType::I8 ? 1e-6f : 1e-5f;
    uint32_t seed    = 100;
    for (const MatmulShape & s : matmul_shapes()) {
        const MatmulData d = make_matmul_data(s, dt, seed += 10);
        const int64_t ldy  = s.N + s.ldy_pad;
        kern::MatmulArgs a;
        a.x                     = d.x.data();
        a.ldx                   = s.K + s.ldx_pad;
        a.w                     = d.w.data();
        a.w_scale               = dt == DType::I8 ? d.w.scales() : nullptr;
        a.bias                  = s.bias ? d.bias.data() : nullptr;
        a.ldy                   = ldy;
        a.M                     = s.M;
        a.N                     = s.N;
        a.K                     = s.K;
        a.accumulate            = s.accumulate;
        std::vector<float> want = d.y0, got = d.y0;
        a.y = want.data();
        ops::matmul_forward_ref(a, dt);
        a.y = got.data();
        fn(a);
        const std::vector<float> scale = matmul_scale(s, d);
        expect_close(got.data(), want.data(), static_cast<int64_t>(want.size()), rtol, 0.0f, scale.data(),
                     fmt::format("matmul {} M={} N={} K={} bias={} acc={} ldx+{} ldy+{}{}", dtype_name(dt), s.M, s.N,
                                 s.K, s.bias, s.accumulate, s.ldx_pad, s.ldy_pad, s.ties ? " ties" : ""));
        if (::testing::Test::HasFailure()) return;
    }
}

}  // namespace

void check_matmul(Isa isa, DType dt) {
    const kern::MatmulFn fn = ops::kernel_table(isa).matmul[static_cast<int>(dt)];
    ASSERT_NE(fn, nullptr);
    check_matmul_kernel(fn, dt);
    if (::testing::Test::HasFailure()) return;
    // The dispatched entry point follows the ceiling (set by the caller to `isa`).
    const MatmulShape s{33, 65, 129, true, true, 3, 1};
    const MatmulData d     = make_matmul_data(s, dt, 7);
    std::vector<float> got = d.y0, want = d.y0;
    ops::matmul(d.x.data(), s.K + s.ldx_pad, d.w, d.bias.data(), got.data(), s.N + s.ldy_pad, s.M, true);
    fn(kern::MatmulArgs{d.x.data(), s.K + s.ldx_pad, d.w.data(), dt == DType::I8 ? d.w.scales() : nullptr,
                        d.bias.data(), want.data(), s.N + s.ldy_pad, s.M, s.N, s.K, true});
    expect_equal(got, want, "ops::matmul entry point vs kernel_table entry");
}

// ---- attention ------------------------------------------------------------------------------

void check_attention(Isa isa) {
    struct Shape {
        int64_t T, S, H, G, D;
        bool causal;
        int64_t pos0, pad;
    };
    // From {100, 100, …} on: the AVX-512 kernel's tiles of 16 query rows (fewer than 8 rows per KV
    // head take its row path): a prefill, a causal tile cut off by S, D = 1, a chunk continuing a
    // KV cache, 8 and 7 rows per KV head, S = 0.
    const Shape shapes[] = {
        {1, 1, 1, 1, 1, false, 0, 0},       {1, 257, 4, 2, 33, true, 256, 0},  // decoding with a KV cache
        {1, 257, 8, 1, 64, true, 256, 3},   {7, 7, 6, 2, 16, true, 0, 0},     {7, 40, 4, 1, 64, true, 33, 5},
        {33, 33, 2, 2, 7, false, 0, 0},     {5, 257, 3, 3, 40, false, 0, 1},  {64, 257, 2, 1, 32, true, 193, 0},
        {3, 10, 2, 1, 8, true, 20, 0},      {2, 0, 2, 1, 8, false, 0, 0},     {17, 100, 4, 4, 128, false, 0, 0},
        {100, 100, 2, 2, 64, true, 0, 0},   {40, 30, 2, 1, 24, true, 5, 2},   {20, 50, 1, 1, 1, true, 10, 0},
        {16, 300, 3, 1, 128, true, 284, 1}, {8, 8, 2, 2, 9, true, 0, 0},      {7, 19, 2, 2, 16, true, 12, 0},
        {2, 0, 8, 1, 8, true, 0, 0},
    };
    const kern::AttentionFn fn = ops::kernel_table(isa).attention;
    ASSERT_NE(fn, nullptr);
    uint32_t seed = 500;
    for (const Shape & s : shapes)
        for (DType kv_dtype : {DType::F32, DType::BF16}) {
            kern::AttentionArgs a;
            a.kv_dtype = kv_dtype;
            a.T = s.T, a.S = s.S, a.H = s.H, a.G = s.G, a.D = s.D;
            a.causal = s.causal, a.pos0 = s.pos0;
            a.ldq = s.H * s.D + s.pad, a.ldk = s.G * s.D + s.pad, a.ldv = s.G * s.D + 2 * s.pad,
            a.ldy                       = s.H * s.D + s.pad;
            a.scale                     = 1.0f / std::sqrt(static_cast<float>(s.D));
            const std::vector<float> q  = random_vec(s.T * a.ldq, seed += 10, -2.0f, 2.0f);
            const std::vector<float> k  = random_vec(s.S * a.ldk, seed + 1, -2.0f, 2.0f);
            const std::vector<float> v  = random_vec(s.S * a.ldv, seed + 2);
            const std::vector<float> y0 = random_vec(s.T * a.ldy, seed + 3);
            std::vector<float> want = y0, got = y0;
            // A bf16 KV cache: both sides read the same bf16 keys and values.
            std::vector<uint16_t> k16(k.size()), v16(v.size());
            for (size_t i = 0; i < k.size(); ++i) k16[i] = f32_to_bf16(k[i]);
            for (size_t i = 0; i < v.size(); ++i) v16[i] = f32_to_bf16(v[i]);
            a.q = q.data();
            a.k = kv_dtype == DType::BF16 ? static_cast<const void *>(k16.data()) : k.data();
            a.v = kv_dtype == DType::BF16 ? static_cast<const void *>(v16.data()) : v.data();
            a.y = want.data();
            ops::attention_forward_ref(a);
            a.y = got.data();
            fn(a);
            expect_close(got.data(), want.data(), static_cast<int64_t>(want.size()), 0.0f, 2e-5f, nullptr,
                         fmt::format("attention T={} S={} H={} G={} D={} causal={} pos0={} pad={} kv {}", s.T, s.S, s.H,
                                     s.G, s.D, s.causal, s.pos0, s.pad, dtype_name(kv_dtype)));
            std::vector<float> via_entry = y0;
            a.y                          = via_entry.data();
            ops::attention(a);
            expect_equal(via_entry, got, "ops::attention entry point vs kernel_table entry");
        }
}

// The backward (training): dq, dk, dv accumulate into random starting values; the kernel's exp
// and summation order differ from the reference's, so the bound is relative to the size of the
// terms: 1e-4 of (|want| + 1).
void check_attention_backward(Isa isa) {
    struct Shape {
        int64_t T, S, H, G, D;
        bool causal;
        int64_t pos0, pad;
    };
    const Shape shapes[] = {
        {1, 1, 1, 1, 1, false, 0, 0},    {7, 7, 6, 2, 16, true, 0, 0},   {7, 40, 4, 1, 64, true, 33, 5},
        {33, 33, 2, 2, 7, false, 0, 0},  {5, 21, 3, 3, 40, false, 0, 1}, {64, 64, 4, 2, 64, true, 0, 0},
        {17, 17, 4, 4, 32, false, 0, 3}, {3, 10, 2, 1, 8, true, 20, 0},  {20, 50, 1, 1, 1, true, 10, 0},
        {9, 9, 2, 2, 17, true, 0, 2},
    };
    const kern::AttentionBwdFn fn = ops::kernel_table(isa).attention_bwd;
    ASSERT_NE(fn, nullptr);
    uint32_t seed = 900;
    for (const Shape & s : shapes) {
        kern::AttentionArgs a;
        a.T = s.T, a.S = s.S, a.H = s.H, a.G = s.G, a.D = s.D;
        a.causal = s.causal, a.pos0 = s.pos0;
        a.ldq = s.H * s.D + s.pad, a.ldk = s.G * s.D + s.pad, a.ldv = s.G * s.D + 2 * s.pad;
        a.ldy                       = s.H * s.D + s.pad;
        a.scale                     = 1.0f / std::sqrt(static_cast<float>(s.D));
        const std::vector<float> q  = random_vec(s.T * a.ldq, seed += 10, -2.0f, 2.0f);
        const std::vector<float> k  = random_vec(s.S * a.ldk, seed + 1, -2.0f, 2.0f);
        const std::vector<float> v  = random_vec(s.S * a.ldv, seed + 2);
        const std::vector<float> dy = random_vec(s.T * a.ldy, seed + 3);
        std::vector<float> y(static_cast<size_t>(std::max<int64_t>(s.T * a.ldy, 1)));
        a.q = q.data(), a.k = k.data(), a.v = v.data(), a.y = y.data();
        const std::vector<float> dq0 = random_vec(s.T * a.ldq, seed + 4), dk0 = random_vec(s.S * a.ldk, seed + 5),
                                 dv0 = random_vec(s.S * a.ldv, seed + 6);
        std::vector<float> dq_want = dq0, dk_want = dk0, dv_want = dv0, dq_got = dq0, dk_got = dk0, dv_got = dv0;
        ops::attention_backward_ref(a, dy.data(), dq_want.data(), dk_want.data(), dv_want.data());
        fn(a, dy.data(), dq_got.data(), dk_got.data(), dv_got.data());
        const std::string what = fmt::format("attention backward T={} S={} H={} G={} D={} causal={} pos0={} pad={}",
                                             s.T, s.S, s.H, s.G, s.D, s.causal, s.pos0, s.pad);
        for (auto [got, want, name] : {std::tuple{&dq_got, &dq_want, "dq"}, std::tuple{&dk_got, &dk_want, "dk"},
                                       std::tuple{&dv_got, &dv_want, "dv"}}) {
            std::vector<float> scale(want->size());
            for (size_t i = 0; i < scale.size(); ++i) scale[i] = std::fabs((*want)[i]) + 1.0f;
            expect_close(got->data(), want->data(), static_cast<int64_t>(want->size()), 1e-4f, 0.0f, scale.data(),
                         what + " " + name);
        }
        // A null gradient is skipped; the entry point gives the kernel's result.
        std::vector<float> dq_entry = dq0;
        ops::attention_backward(a, dy.data(), dq_entry.data(), nullptr, nullptr);
        std::vector<float> dq_kernel = dq0;
        fn(a, dy.data(), dq_kernel.data(), nullptr, nullptr);
        expect_equal(dq_entry, dq_kernel, what + ": ops::attention_backward vs kernel_table entry");
        expect_equal(dq_kernel, dq_got, what + ": dq alone vs dq with dk, dv");
    }
}

// ---- row-wise ops ---------------------------------------------------------------------------

namespace {

const int64_t kRows[] = {1, 7, 33};
const int64_t kCols[] = {1, 7, 16, 33, 257, 1000};

}  // namespace

void check_softmax(Isa isa) {
    const kern::SoftmaxFn fn = ops::kernel_table(isa).softmax;
    uint32_t seed            = 700;
    for (int64_t M : kRows)
        for (int64_t N : kCols) {
            std::vector<float> x = random_vec(M * N, seed++, -10.0f, 10.0f);
            for (int64_t n = 0; n < N; ++n) x[n] += 1000.0f;  // a shifted row: only max-subtraction survives
            std::vector<float> want(x.size()), got(x.size()), in_place = x;
            ops::softmax_forward_ref(x.data(), want.data(), M, N);
            fn(x.data(), got.data(), M, N);
            const std::string what = fmt::format("softmax M={} N={}", M, N);
            expect_close(got.data(), want.data(), M * N, 1e-5f, 1e-7f, nullptr, what);
            fn(in_place.data(), in_place.data(), M, N);
            expect_equal(in_place, got, what + " in place");
            std::vector<float> via_entry(x.size());
            ops::softmax(x.data(), via_entry.data(), M, N);
            expect_equal(via_entry, got, what + " entry point");
        }
}

void check_rmsnorm(Isa isa) {
    const kern::RmsnormFn fn = ops::kernel_table(isa).rmsnorm;
    uint32_t seed            = 800;
    for (int64_t M : kRows)
        for (int64_t C : kCols)
            for (bool with_w : {true, false}) {
                const std::vector<float> x = random_vec(M * C, seed++, -2.0f, 2.0f);
                const std::vector<float> w = random_vec(C, seed++);
                const float * wp           = with_w ? w.data() : nullptr;
                std::vector<float> want(x.size()), got(x.size()), in_place = x;
                ops::rmsnorm_forward_ref(x.data(), wp, want.data(), M, C, 1e-5f);
                fn(x.data(), wp, got.data(), M, C, 1e-5f);
                const std::string what = fmt::format("rmsnorm M={} C={} w={}", M, C, with_w);
                expect_close(got.data(), want.data(), M * C, 1e-5f, 1e-6f, nullptr, what);
                fn(in_place.data(), wp, in_place.data(), M, C, 1e-5f);
                expect_equal(in_place, got, what + " in place");
                std::vector<float> via_entry(x.size());
                ops::rmsnorm(x.data(), wp, via_entry.data(), M, C, 1e-5f);
                expect_equal(via_entry, got, what + " entry point");
            }
}

void check_layernorm(Isa isa) {
    const kern::LayernormFn fn = ops::kernel_table(isa).layernorm;
    uint32_t seed              = 900;
    for (int64_t M : kRows)
        for (int64_t C : kCols)
            for (bool affine : {true, false}) {
                std::vector<float> x = random_vec(M * C, seed++, -2.0f, 2.0f);
                for (float & f : x) f += 3.0f;  // a mean far from 0 exercises the two-pass variance
                const std::vector<float> w = random_vec(C, seed++), b = random_vec(C, seed++);
                const float * wp = affine ? w.data() : nullptr;
                const float * bp = affine ? b.data() : nullptr;
                std::vector<float> want(x.size()), got(x.size()), in_place = x;
                ops::layernorm_forward_ref(x.data(), wp, bp, want.data(), M, C, 1e-5f);
                fn(x.data(), wp, bp, got.data(), M, C, 1e-5f);
                const std::string what = fmt::format("layernorm M={} C={} affine={}", M, C, affine);
                // Centred values lose the bits of the mean: tolerance relative to the row scale.
                expect_close(got.data(), want.data(), M * C, 1e-5f, 1e-5f, nullptr, what);
                fn(in_place.data(), wp, bp, in_place.data(), M, C, 1e-5f);
                expect_equal(in_place, got, what + " in place");
                std::vector<float> via_entry(x.size());
                ops::layernorm(x.data(), wp, bp, via_entry.data(), M, C, 1e-5f);
                expect_equal(via_entry, got, what + " entry point");
            }
}

// ---- activations ----------------------------------------------------------------------------

namespace {

std::vector<float> activation_inputs(int64_t n, uint32_t seed) {
    std::vector<float> x  = random_vec(n, seed, -12.0f, 12.0f);
    const float special[] = {0.0f,   -0.0f,  1e-30f,  -1e-30f, 0.5f,  -0.5f,  30.0f, -30.0f, 88.0f,
                             -88.0f, 100.0f, -100.0f, 0.92f,   0.93f, -0.93f, 5.0f,  -5.0f};
    for (size_t i = 0; i < std::size(special) && i < x.size(); ++i) x[i] = special[i];
    x.resize(static_cast<size_t>(n));
    return x;
}

// relative_to_x: the reference's own cancellation (gelu's 1 + erf for x ≪ 0) leaves an absolute
// error proportional to |x|, so the tolerance scale includes 0.01·|x|.
void check_unary(kern::UnaryFn fn, void (*ref)(const float *, float *, int64_t),
                 void (*entry)(const float *, float *, int64_t), const char * name, bool relative_to_x) {
    uint32_t seed = 1000;
    for (int64_t n : {0, 1, 15, 16, 17, 1000, 70001}) {  // 70001: split over threads
        const std::vector<float> x = activation_inputs(n, seed++);
        std::vector<float> want(x.size()), got(x.size()), scale(x.size()), in_place = x;
        ref(x.data(), want.data(), n);
        fn(x.data(), got.data(), n);
        for (int64_t i = 0; i < n; ++i)
            scale[i] = std::fabs(want[i]) + (relative_to_x ? 0.01f * std::fabs(x[i]) : 0.0f);
        const std::string what = fmt::format("{} n={}", name, n);
        expect_close(got.data(), want.data(), n, 1e-5f, 1e-37f, scale.data(), what);
        fn(in_place.data(), in_place.data(), n);
        expect_equal(in_place, got, what + " in place");
        std::vector<float> via_entry(x.size());
        entry(x.data(), via_entry.data(), n);
        expect_equal(via_entry, got, what + " entry point");
    }
}

}  // namespace

void check_silu(Isa isa) {
    check_unary(ops::kernel_table(isa).silu, ops::silu_forward_ref, ops::silu, "silu", false);
}
void check_gelu(Isa isa) {
    check_unary(ops::kernel_table(isa).gelu, ops::gelu_forward_ref, ops::gelu, "gelu", true);
}
// The tanh and quick forms: the kernels compute x·σ(·) where the references use 1 + tanh / 1 + exp
// (the same function); both cancel for x ≪ 0, hence relative_to_x.
void check_gelu_tanh(Isa isa) {
    check_unary(ops::kernel_table(isa).gelu_tanh, ops::gelu_tanh_forward_ref, ops::gelu_tanh, "gelu_tanh", true);
}
void check_gelu_quick(Isa isa) {
    check_unary(ops::kernel_table(isa).gelu_quick, ops::gelu_quick_forward_ref, ops::gelu_quick, "gelu_quick", true);
}

namespace {

// dx = dx0 + dy·f′(x) against the reference, accumulating into random dx0, on the activation
// inputs (zeros, tiny, ±88, ±100, …). Tolerance 1e-5 relative to |dx0| + |dy|·(|each term of
// f′| + 0.01): the 0.01 covers the terms' own cancellation (1 + erf, 1 − σ at x ≪ 0) — absolute
// errors of a few 1e-8, as in the forward checks' relative_to_x.
void check_unary_backward(kern::UnaryBwdFn fn, void (*ref)(const float *, const float *, float *, int64_t),
                          void (*entry)(const float *, const float *, float *, int64_t), const char * name,
                          float (*term_scale)(float)) {
    ASSERT_NE(fn, nullptr);
    uint32_t seed = 1100;
    for (int64_t n : {0, 1, 15, 16, 17, 1000, 4099}) {
        const std::vector<float> x = activation_inputs(n, seed++), dy = random_vec(n, seed++, -2.0f, 2.0f),
                                 dx0 = random_vec(n, seed++, -1.0f, 1.0f);
        std::vector<float> want = dx0, got = dx0, scale(x.size());
        ref(dy.data(), x.data(), want.data(), n);
        fn(dy.data(), x.data(), got.data(), n);
        for (int64_t i = 0; i < n; ++i) scale[i] = std::fabs(dx0[i]) + std::fabs(dy[i]) * (term_scale(x[i]) + 0.01f);
        const std::string what = fmt::format("{} backward n={}", name, n);
        expect_close(got.data(), want.data(), n, 1e-5f, 0.0f, scale.data(), what);
        std::vector<float> via_entry = dx0;
        entry(dy.data(), x.data(), via_entry.data(), n);
        expect_equal(via_entry, got, what + " entry point");
    }
}

}  // namespace

void check_silu_backward(Isa isa) {
    check_unary_backward(ops::kernel_table(isa).silu_bwd, ops::silu_backward_ref, ops::silu_backward, "silu",
                         [](float x) {
                             const float s = 1.0f / (1.0f + std::exp(-x));
                             return s * (1.0f + std::fabs(x) * (1.0f - s));
                         });
}
void check_gelu_backward(Isa isa) {
    check_unary_backward(
        ops::kernel_table(isa).gelu_bwd, ops::gelu_backward_ref,
        [](const float * dy, const float * x, float * dx, int64_t n) {
            ops::gelu_backward(ops::GeluForm::Erf, dy, x, dx, n);
        },
        "gelu", [](float x) { return 1.0f + std::fabs(x) * 0.39894228f * std::exp(-0.5f * x * x); });
}

namespace {

// add and mul round once per element, as the references do: bit for bit, out of place and in
// place, broadcast periods from 1 to n (and a short last row), and lengths that split over threads.
void check_binary(kern::BinaryFn fn, void (*ref)(const float *, const float *, float *, int64_t, int64_t),
                  void (*entry)(const float *, const float *, float *, int64_t, int64_t), const char * name) {
    ASSERT_NE(fn, nullptr);
    uint32_t seed = 1;
    for (int64_t n : {0, 1, 17, 100, 70001, 200000})
        for (int64_t period : {int64_t{1}, int64_t{7}, int64_t{100}, int64_t{768}, std::max<int64_t>(n, 1)}) {
            const std::vector<float> a = random_vec(n, seed++), b = random_vec(period, seed++);
            std::vector<float> want(n), got(n), in_place = a;
            ref(a.data(), b.data(), want.data(), n, period);
            fn(a.data(), b.data(), got.data(), n, period);
            const std::string what = fmt::format("{} n={} period={}", name, n, period);
            expect_equal(got, want, what);
            fn(in_place.data(), b.data(), in_place.data(), n, period);
            expect_equal(in_place, want, what + " in place");
            std::vector<float> via_entry(n);
            entry(a.data(), b.data(), via_entry.data(), n, period);
            expect_equal(via_entry, got, what + " entry point");
            if (::testing::Test::HasFailure()) return;
        }
}

}  // namespace

void check_add(Isa isa) {
    check_binary(ops::kernel_table(isa).add, ops::add_forward_ref, ops::add, "add");
}
void check_mul(Isa isa) {
    check_binary(ops::kernel_table(isa).mul, ops::mul_forward_ref, ops::mul, "mul");
}

// ---- ops without optimised kernels: the entry point must be the reference ------------------

void check_rope(Isa) {
    const int64_t T = 5, H = 3, D = 8, ldx = H * D + 2;
    const int32_t pos[T]    = {0, 1, 7, 100, 4095};
    std::vector<float> want = random_vec(T * ldx, 5), got = want;
    ops::rope_forward_ref(want.data(), ldx, T, H, D, pos, 10000.0f);
    ops::rope(got.data(), ldx, T, H, D, pos, 10000.0f);
    expect_equal(got, want, "rope");
}

void check_gather(Isa, DType dt) {
    const int64_t V = 11, C = 19;
    Tensor tf            = Tensor::empty(DType::F32, {V, C});
    std::vector<float> v = random_vec(V * C, 6);
    std::copy(v.begin(), v.end(), tf.f32());
    const Tensor table   = convert(tf, dt);
    const Tensor dequant = to_f32(table);
    const int32_t ids[]  = {0, 10, 3, 3, 7};
    const int64_t T      = 5;
    std::vector<float> want(T * C), got(T * C), direct(T * C);
    ops::gather_forward_ref(table, ids, T, want.data());
    ops::gather(table, ids, T, got.data());
    for (int64_t t = 0; t < T; ++t) std::copy_n(dequant.f32() + ids[t] * C, C, direct.data() + t * C);
    expect_equal(got, want, fmt::format("gather {}", dtype_name(dt)));
    expect_equal(want, direct, fmt::format("gather {} vs to_f32 rows", dtype_name(dt)));
}

void check_pool(Isa) {
    const int64_t B = 3, T = 5, C = 17;
    const std::vector<float> x = random_vec(B * T * C, 7);
    std::vector<float> want(B * C), got(B * C);
    ops::pool_forward_ref(x.data(), want.data(), B, T, C);
    ops::pool(x.data(), got.data(), B, T, C);
    expect_equal(got, want, "pool");
}

void check_log(Isa) {
    const std::vector<float> x = random_vec(37, 8, 0.0f, 10.0f);
    std::vector<float> want(37), got(37);
    ops::log_forward_ref(x.data(), want.data(), 37, 1e-6f);
    ops::log(x.data(), got.data(), 37, 1e-6f);
    expect_equal(got, want, "log");
}

// ---- the parametrised test over (row, ISA level) -------------------------------------------

namespace {

class OpCaseTest : public ::testing::TestWithParam<std::tuple<size_t, Isa>> {};

// The AVX-512BW int8 kernel serves CPUs without VNNI; on a VNNI CPU the table holds the VNNI one,
// so this tests the BW kernel directly wherever AVX-512 runs.
TEST(Kernels, Int8Avx512BwMatchesReference) {
    if (static_cast<int>(cpu_features().detected) < static_cast<int>(Isa::Avx512))
        GTEST_SKIP() << "this CPU lacks avx512 (it has: " << cpu_features().describe() << ")";
    check_matmul_kernel(kern::matmul_fwd_i8_avx512bw, DType::I8);
}

// The int8 kernels clamp quantised x by saturating packs where the row scale is not 0 and in
// float where it is. Rows at those edges — scale subnormal, x / sx out to ±190, scale 0 — next to
// ordinary rows, in the dot-product tiles (M = 3) and the packed GEMM (M = 20), K = 64·2 + 5. The
// edge rows' products underflow (their qx cannot show in y); what this checks is that neither
// path turns them into anything but the reference's y, nor disturbs the rows around them.
TEST(Kernels, Int8EdgeRowsMatchReference) {
    if (static_cast<int>(cpu_features().detected) < static_cast<int>(Isa::Avx512))
        GTEST_SKIP() << "this CPU lacks avx512 (it has: " << cpu_features().describe() << ")";
    const kern::MatmulFn vnni = ops::kernel_table(Isa::Avx512).matmul[static_cast<int>(DType::I8)];
    for (const kern::MatmulFn fn : {vnni, kern::MatmulFn{kern::matmul_fwd_i8_avx512bw}})
        for (const int64_t M : {3, 20}) {
            const MatmulShape s{M, 40, 133, true, true, 0, 0};
            MatmulData d             = make_matmul_data(s, DType::I8, 31);
            const float row_factor[] = {1e-37f, 0.0f, 0.0f, 1e-30f};  // sx subnormal, (below), zero row, small
            for (int64_t m = 0; m < std::min<int64_t>(M, 4); ++m)
                for (int64_t k = 0; k < s.K; ++k) d.x[m * s.K + k] *= row_factor[m];
            // Row 1: multiples of the smallest subnormal up to ±190 of them, so sx = 190/127 rounds
            // to 1 and x / sx reaches ±190.
            for (int64_t k = 0; k < s.K; ++k) d.x[s.K + k] = std::ldexp(std::round(d.x[k] * 1e37f * 190.0f), -149);
            d.x[s.K]                = std::ldexp(190.0f, -149);
            std::vector<float> want = d.y0, got = d.y0;
            kern::MatmulArgs a{d.x.data(), s.K, d.w.data(), d.w.scales(), d.bias.data(), want.data(),
                               s.N,        M,   s.N,        s.K,          true};
            ops::matmul_forward_ref(a, DType::I8);
            a.y = got.data();
            fn(a);
            expect_equal(got, want, fmt::format("int8 edge rows M={}", M));
        }
}

// The kernel a case's op runs at `isa`: its kernel-table entry (at Scalar the reference itself;
// always null for ops without table entries: rope, gather, pool, log, which run the reference).
const void * case_kernel(const OpCase & c, Isa isa) {
    const kern::KernelTable & t = ops::kernel_table(isa);
    using ops::OpKind;
    switch (c.op) {
        case OpKind::matmul: {
            DType d = DType::F32;
            EXPECT_TRUE(parse_dtype(c.variant, &d)) << c.variant;
            return reinterpret_cast<const void *>(t.matmul[static_cast<int>(d)]);
        }
        case OpKind::softmax:
            return reinterpret_cast<const void *>(t.softmax);
        case OpKind::rmsnorm:
            return reinterpret_cast<const void *>(t.rmsnorm);
        case OpKind::layernorm:
            return reinterpret_cast<const void *>(t.layernorm);
        case OpKind::attention:
            return std::string(c.variant) == "f32_backward" ? reinterpret_cast<const void *>(t.attention_bwd)
                                                            : reinterpret_cast<const void *>(t.attention);
        case OpKind::silu:
            return std::string(c.variant) == "f32_backward" ? reinterpret_cast<const void *>(t.silu_bwd)
                                                            : reinterpret_cast<const void *>(t.silu);
        case OpKind::gelu: {
            const std::string v = c.variant;
            if (v == "f32_backward") return reinterpret_cast<const void *>(t.gelu_bwd);
            return reinterpret_cast<const void *>(v == "f32_tanh"    ? t.gelu_tanh
                                                  : v == "f32_quick" ? t.gelu_quick
                                                                     : t.gelu);
        }
        case OpKind::add:
            return reinterpret_cast<const void *>(t.add);
        case OpKind::mul:
            return reinterpret_cast<const void *>(t.mul);
        default:
            return nullptr;
    }
}

TEST_P(OpCaseTest, Matches) {
    const auto [index, isa] = GetParam();
    const CpuFeatures & cpu = cpu_features();
    if (static_cast<int>(isa) > static_cast<int>(cpu.detected))
        GTEST_SKIP() << "this CPU lacks " << isa_name(isa) << " (it has: " << cpu.describe() << ")";
    if (static_cast<int>(isa) > static_cast<int>(kStartIsa))
        GTEST_SKIP() << "M4_ISA limits kernels to " << isa_name(kStartIsa);
    // A level without a kernel of its own would compare the reference (or the level below's kernel,
    // tested there) with itself: report it as not applicable, not as passed.
    const OpCase & c   = op_cases()[index];
    const void * own   = case_kernel(c, isa);
    const void * below = isa == Isa::Scalar ? nullptr : case_kernel(c, static_cast<Isa>(static_cast<int>(isa) - 1));
    if (isa == Isa::Scalar || own == nullptr || own == below)
        GTEST_SKIP() << "not applicable: " << ops::op_name(c.op) << " " << c.variant << " has no kernel of its own at "
                     << isa_name(isa) << " (it runs "
                     << (own && isa != Isa::Scalar ? "the level below's kernel, tested there"
                                                   : "the scalar reference, the oracle itself")
                     << ")";
    IsaCeiling ceiling(isa);
    ASSERT_EQ(selected_isa(), isa);
    op_cases()[index].check(isa);
}

INSTANTIATE_TEST_SUITE_P(OpCases, OpCaseTest,
                         ::testing::Combine(::testing::Range<size_t>(0, op_cases().size()),
                                            ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Amx)),
                         [](const ::testing::TestParamInfo<OpCaseTest::ParamType> & info) {
                             const OpCase & c = op_cases()[std::get<0>(info.param)];
                             return fmt::format("{}_{}_{}", ops::op_name(c.op), c.variant,
                                                isa_name(std::get<1>(info.param)));
                         });

// The backward's transposes (not a firmware op, so no op_cases row): every level's kernel against
// ops::transpose_ref, bit for bit, on odd shapes and strides; the f32 → bf16 inputs include ties,
// a NaN, infinities and a denormal.
TEST(Transpose, KernelsMatchReferenceBitForBit) {
    struct Shape {
        int64_t R, C, pad_in, pad_out;
    };
    const Shape shapes[] = {{1, 1, 0, 0},   {17, 5, 3, 1},  {16, 16, 0, 0},
                            {33, 47, 2, 5}, {5, 100, 0, 7}, {64, 31, 1, 0}};
    int tested           = 0;
    for (int level = 1; level < kIsaCount; ++level) {
        const Isa isa = static_cast<Isa>(level);
        if (level > static_cast<int>(cpu_features().detected)) continue;
        for (int kind = 0; kind < kern::kTransposeKinds; ++kind) {
            const kern::TransposeFn fn = ops::kernel_table(isa).transpose[kind];
            if (!fn) continue;
            ++tested;
            const auto k = static_cast<kern::TransposeKind>(kind);
            for (const Shape & s : shapes) {
                const int64_t ldi = s.C + s.pad_in, ldo = s.R + s.pad_out;
                std::vector<float> in  = random_vec(s.R * ldi, static_cast<uint32_t>(7 * s.R + s.C), -3.0f, 3.0f);
                const float specials[] = {std::nanf(""),       INFINITY, -INFINITY, 1e-40f, 1.0f + 1.0f / 256.0f,
                                          1.0f + 3.0f / 256.0f};
                for (size_t i = 0; i < std::size(specials) && i < in.size(); ++i) in[i * 7 % in.size()] = specials[i];
                std::vector<uint16_t> in16(in.size());
                for (size_t i = 0; i < in.size(); ++i) in16[i] = f32_to_bf16(in[i]);
                const void * src   = k == kern::TransposeKind::U16 ? static_cast<const void *>(in16.data()) : in.data();
                const size_t bytes = k == kern::TransposeKind::F32 ? 4 : 2;
                std::vector<uint8_t> want(static_cast<size_t>(s.C * ldo) * bytes, 0xab), got = want;
                ops::transpose_ref(k, src, ldi, s.R, s.C, want.data(), ldo);
                fn(src, ldi, s.R, s.C, got.data(), ldo);
                EXPECT_EQ(got, want) << isa_name(isa) << " kind " << kind << " R=" << s.R << " C=" << s.C;
            }
        }
    }
    if (tested == 0) GTEST_SKIP() << "no optimised transpose on this CPU (" << cpu_features().describe() << ")";
}

// The optimiser's update (not a firmware op, so no op_cases row): every level's kernel against
// ops::adamw_ref, bit for bit — moments, weights and the bf16 copy — on odd lengths, with clipping
// scale and weight decay on and off, a zero gradient, a denormal weight (the bf16 copy keeps it:
// no flush to zero) and a huge one.
TEST(AdamW, KernelsMatchReferenceBitForBit) {
    const int64_t lengths[] = {1, 15, 16, 17, 100, 1031};
    int tested              = 0;
    for (int level = 1; level < kIsaCount; ++level) {
        const Isa isa = static_cast<Isa>(level);
        if (level > static_cast<int>(cpu_features().detected)) continue;
        const kern::AdamWFn fn    = ops::kernel_table(isa).adamw;
        const kern::AdamWFn below = ops::kernel_table(static_cast<Isa>(level - 1)).adamw;
        if (!fn || fn == below) continue;
        ++tested;
        for (int64_t n : lengths)
            for (int variant = 0; variant < 2; ++variant) {
                const uint32_t seed  = static_cast<uint32_t>(31 * n + variant);
                std::vector<float> w = random_vec(n, seed, -2.0f, 2.0f), g = random_vec(n, seed + 1, -5.0f, 5.0f);
                std::vector<float> m = random_vec(n, seed + 2, -0.5f, 0.5f), v = random_vec(n, seed + 3, 0.0f, 2.0f);
                const float specials[] = {1e-40f, 3.0e38f, 0.0f};
                for (size_t i = 0; i < std::size(specials) && i < w.size(); ++i) w[i * 5 % w.size()] = specials[i];
                g[static_cast<size_t>(n / 2)] = 0.0f;
                kern::AdamWArgs k;
                k.beta1               = 0.9f;
                k.beta2               = 0.98f;
                k.eps                 = 1e-8f;
                k.bc1                 = 1.0f - 0.9f * 0.9f * 0.9f;
                k.bc2                 = 1.0f - 0.98f * 0.98f * 0.98f;
                k.lr                  = 3e-3f;
                k.weight_decay        = variant ? 0.1f : 0.0f;
                k.grad_scale          = variant ? 0.37f : 1.0f;
                std::vector<float> w2 = w, m2 = m, v2 = v;
                std::vector<uint16_t> c_want(static_cast<size_t>(n), 0xabcd), c_got = c_want;
                ops::adamw_ref(w.data(), g.data(), m.data(), v.data(), variant ? c_want.data() : nullptr, n, k);
                fn(w2.data(), g.data(), m2.data(), v2.data(), variant ? c_got.data() : nullptr, n, k);
                const std::string where = fmt::format("{} n={} variant {}", isa_name(isa), n, variant);
                EXPECT_EQ(0, std::memcmp(w.data(), w2.data(), w.size() * 4)) << where << " weights";
                EXPECT_EQ(0, std::memcmp(m.data(), m2.data(), m.size() * 4)) << where << " first moments";
                EXPECT_EQ(0, std::memcmp(v.data(), v2.data(), v.size() * 4)) << where << " second moments";
                EXPECT_EQ(c_got, c_want) << where << " bf16 copy";
            }
    }
    if (tested == 0) GTEST_SKIP() << "no optimised AdamW on this CPU (" << cpu_features().describe() << ")";
}

TEST(OpCases, EveryOpHasARow) {
    for (int k = 0; k < ops::kOpCount; ++k) {
        const auto op = static_cast<ops::OpKind>(k);
        EXPECT_TRUE(std::any_of(op_cases().begin(), op_cases().end(), [&](const OpCase & c) { return c.op == op; }))
            << ops::op_name(op) << " has no row in tests/ops/op_cases.cpp";
    }
}

}  // namespace
}  // namespace m4::test
