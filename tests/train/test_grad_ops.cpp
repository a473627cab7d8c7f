// Every backward reference of the op set (src/ops/<op>.cpp, <op>_backward_ref) against central
// finite differences of its forward reference, on tiny odd shapes.
//
// For an op y = f(x, w, …) the test draws a random cotangent r and takes the scalar
// L = Σ r ⊙ y, accumulated in f64. The analytic gradient is the backward of dy = r; the numeric
// one is (L(p + h) − L(p − h)) / (2h) per element p of each input, with the actual f32 step h
// (f64 arithmetic on the f32 forward). The error is max|numeric − analytic| / max(max|analytic|, 0.05)
// (M4_GRAD_VERBOSE=1 prints it for every check).
// Gradients accumulate (+=) by contract, so the backward runs on buffers holding random values,
// which are subtracted again before the comparison.
//
// To add an op: a TEST here with its `kCovers_<op> = cover(OpKind::<op>)` line (EveryOpHasAGradientTest
// fails for an op of ops.def without one).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ops/ops.h"
#include "tensor/tensor.h"

namespace m4::ops {
namespace {

using Vec = std::vector<float>;

Vec random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Vec v(n);
    for (float & f : v) f = dist(rng);
    return v;
}

double dot64(const Vec & r, const float * y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += double(r[i]) * double(y[i]);
    return s;
}

// Runs `backward` into buffers pre-filled with noise and returns what it added.
struct Accum {
    Vec noise, buf;
    explicit Accum(size_t n, uint32_t seed) : noise(random_vec(n, seed, -3.0f, 3.0f)), buf(noise) {}
    float * data() { return buf.data(); }
    Vec added() const {
        Vec d(buf.size());
        for (size_t i = 0; i < d.size(); ++i) d[i] = buf[i] - noise[i];
        return d;
    }
};

// Compares `analytic` with central differences of `loss` over the elements of `param` (restored).
// `skip(i)` excludes elements the op does not read (padding of a strided row).
void fd_check(const std::string & what, Vec & param, const Vec & analytic, const std::function<double()> & loss,
              double tol = 1e-3, float eps = 1e-2f, const std::function<bool(size_t)> & skip = {}) {
    ASSERT_EQ(param.size(), analytic.size()) << what;
    double max_err = 0, max_g = 0.05;
    size_t worst = 0;
    for (size_t i = 0; i < param.size(); ++i) {
        if (skip && skip(i)) continue;
        const float p0       = param[i];
        param[i]             = p0 + eps;
        const double h_plus  = double(param[i]) - double(p0);
        const double l_plus  = loss();
        param[i]             = p0 - eps;
        const double h_minus = double(p0) - double(param[i]);
        const double l_minus = loss();
        param[i]             = p0;
        const double fd      = (l_plus - l_minus) / (h_plus + h_minus);
        max_g                = std::max(max_g, std::fabs(double(analytic[i])));
        const double err     = std::fabs(fd - double(analytic[i]));
        if (err > max_err) max_err = err, worst = i;
    }
    if (std::getenv("M4_GRAD_VERBOSE"))
        std::printf("%-44s rel err %.2e (max |grad| %.3f)\n", what.c_str(), max_err / max_g, max_g);
    EXPECT_LE(max_err / max_g, tol) << what << ": worst element " << worst << " analytic " << analytic[worst];
}

// Ops with a gradient test: each TEST below registers its op at static initialisation (so the
// registry is complete in every process, also when CTest runs one test per process).
std::set<OpKind> & covered() {
    static std::set<OpKind> s;
    return s;
}
bool cover(OpKind k) {
    covered().insert(k);
    return true;
}

kern::MatmulArgs margs(const float * x, int64_t ldx, const Tensor & w, const float * b, float * y, int64_t ldy,
                       int64_t M) {
    kern::MatmulArgs a;
    a.x = x, a.ldx = ldx, a.w = w.data(), a.w_scale = w.dtype() == DType::I8 ? w.scales() : nullptr;
    a.bias = b, a.y = y, a.ldy = ldy, a.M = M, a.N = w.dim(0), a.K = w.dim(1);
    return a;
}

[[maybe_unused]] const bool kCovers_matmul = cover(OpKind::matmul);
TEST(GradOps, MatmulF32PaddedStrides) {
    const int64_t M = 3, K = 5, N = 7, ldx = 6, ldy = 9;
    Vec x = random_vec(M * ldx, 1), wv = random_vec(N * K, 2), b = random_vec(N, 3), r = random_vec(M * ldy, 4);
    Vec y(M * ldy);
    auto loss = [&] {
        const Tensor w = Tensor::view(DType::F32, {N, K}, wv.data());
        matmul_forward_ref(margs(x.data(), ldx, w, b.data(), y.data(), ldy, M), DType::F32);
        double s = 0;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) s += double(r[m * ldy + n]) * y[m * ldy + n];
        return s;
    };
    const Tensor w = Tensor::view(DType::F32, {N, K}, wv.data());
    Accum dx(x.size(), 5), dw(wv.size(), 6), db(b.size(), 7);
    matmul_backward_ref(r.data(), ldy, x.data(), ldx, w, dx.data(), ldx, dw.data(), db.data(), M);
    fd_check("matmul dx", x, dx.added(), loss, 1e-3, 1e-2f, [&](size_t i) { return int64_t(i) % ldx >= K; });
    fd_check("matmul dw", wv, dw.added(), loss);
    fd_check("matmul db", b, db.added(), loss);
    // Padding columns of dx are never written.
    const Vec added = dx.added();
    for (int64_t m = 0; m < M; ++m) EXPECT_EQ(added[m * ldx + K], 0.0f);
}

TEST(GradOps, MatmulOverlappingRows) {
    // ldx < K: rows of x overlap (the audio framing view); their gradients add up.
    const int64_t M = 4, K = 5, N = 3, ldx = 2;
    Vec x = random_vec((M - 1) * ldx + K, 11), wv = random_vec(N * K, 12), r = random_vec(M * N, 13);
    Vec y(M * N);
    const Tensor w = Tensor::view(DType::F32, {N, K}, wv.data());
    auto loss      = [&] {
        matmul_forward_ref(margs(x.data(), ldx, w, nullptr, y.data(), N, M), DType::F32);
        return dot64(r, y.data(), y.size());
    };
    Accum dx(x.size(), 14);
    matmul_backward_ref(r.data(), N, x.data(), ldx, w, dx.data(), ldx, nullptr, nullptr, M);
    fd_check("matmul overlapping dx", x, dx.added(), loss);
}

TEST(GradOps, MatmulQuantisedWeightUsesDequantisedWeight) {
    // A bf16 / int8 weight is a frozen base: dx = dy·W̃ with W̃ the dequantised weight, which is
    // exactly the f32 backward on to_f32(W). Central differences of the f32 forward on W̃ check it.
    const int64_t M = 3, K = 9, N = 5;
    Vec wv = random_vec(N * K, 21);
    for (DType dt : {DType::BF16, DType::I8}) {
        const Tensor w32 = Tensor::view(DType::F32, {N, K}, wv.data());
        const Tensor wq  = convert(w32, dt);
        const Tensor wd  = to_f32(wq);
        Vec x = random_vec(M * K, 22), r = random_vec(M * N, 23), y(M * N);
        Accum dq(x.size(), 24), dd(x.size(), 24);
        matmul_backward_ref(r.data(), N, x.data(), K, wq, dq.data(), K, nullptr, nullptr, M);
        matmul_backward_ref(r.data(), N, x.data(), K, wd, dd.data(), K, nullptr, nullptr, M);
        const Vec a = dq.added(), b = dd.added();
        for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6f) << dtype_name(dt) << " " << i;
        auto loss = [&] {
            matmul_forward_ref(margs(x.data(), K, wd, nullptr, y.data(), N, M), DType::F32);
            return dot64(r, y.data(), y.size());
        };
        fd_check(std::string("matmul dx via ") + dtype_name(dt), x, a, loss);
    }
}

TEST(GradOps, MatmulWeightGradientNeedsF32Weight) {
    Vec wv = random_vec(6, 31), x = random_vec(3, 32), dy = random_vec(2, 33), dw(6);
    const Tensor wq = convert(Tensor::view(DType::F32, {2, 3}, wv.data()), DType::BF16);
    EXPECT_DEATH(matmul_backward_ref(dy.data(), 2, x.data(), 3, wq, nullptr, 3, dw.data(), nullptr, 1), "f32 weight");
}

[[maybe_unused]] const bool kCovers_add = cover(OpKind::add);
[[maybe_unused]] const bool kCovers_mul = cover(OpKind::mul);
TEST(GradOps, AddAndMulBroadcast) {
    const int64_t n = 21, P = 7;
    for (int64_t period : {n, P}) {
        Vec a = random_vec(n, 41), b = random_vec(period, 42), r = random_vec(n, 43), y(n);
        auto add_loss = [&] {
            add_forward_ref(a.data(), b.data(), y.data(), n, period);
            return dot64(r, y.data(), y.size());
        };
        Accum da(n, 44), db(period, 45);
        add_backward_ref(r.data(), da.data(), db.data(), n, period);
        fd_check("add da", a, da.added(), add_loss);
        fd_check("add db", b, db.added(), add_loss);
        auto mul_loss = [&] {
            mul_forward_ref(a.data(), b.data(), y.data(), n, period);
            return dot64(r, y.data(), y.size());
        };
        Accum ma(n, 46), mb(period, 47);
        mul_backward_ref(r.data(), a.data(), b.data(), ma.data(), mb.data(), n, period);
        fd_check("mul da", a, ma.added(), mul_loss);
        fd_check("mul db", b, mb.added(), mul_loss);
    }
}

[[maybe_unused]] const bool kCovers_rmsnorm = cover(OpKind::rmsnorm);
TEST(GradOps, Rmsnorm) {
    const int64_t M = 3, C = 11;
    for (bool with_w : {true, false}) {
        Vec x = random_vec(M * C, 51, -2.0f, 2.0f), w = random_vec(C, 52, 0.5f, 1.5f), r = random_vec(M * C, 53);
        Vec y(M * C);
        auto loss = [&] {
            rmsnorm_forward_ref(x.data(), with_w ? w.data() : nullptr, y.data(), M, C, 1e-5f);
            return dot64(r, y.data(), y.size());
        };
        Accum dx(x.size(), 54), dw(C, 55);
        rmsnorm_backward_ref(r.data(), x.data(), with_w ? w.data() : nullptr, dx.data(), with_w ? dw.data() : nullptr,
                             M, C, 1e-5f);
        fd_check("rmsnorm dx", x, dx.added(), loss);
        if (with_w) fd_check("rmsnorm dw", w, dw.added(), loss);
    }
}

[[maybe_unused]] const bool kCovers_layernorm = cover(OpKind::layernorm);
TEST(GradOps, Layernorm) {
    const int64_t M = 3, C = 13;
    Vec x = random_vec(M * C, 61, -2.0f, 2.0f), w = random_vec(C, 62, 0.5f, 1.5f), b = random_vec(C, 63);
    Vec r     = random_vec(M * C, 64), y(M * C);
    auto loss = [&] {
        layernorm_forward_ref(x.data(), w.data(), b.data(), y.data(), M, C, 1e-5f);
        return dot64(r, y.data(), y.size());
    };
    Accum dx(x.size(), 65), dw(C, 66), db(C, 67);
    layernorm_backward_ref(r.data(), x.data(), w.data(), dx.data(), dw.data(), db.data(), M, C, 1e-5f);
    fd_check("layernorm dx", x, dx.added(), loss);
    fd_check("layernorm dw", w, dw.added(), loss);
    fd_check("layernorm db", b, db.added(), loss);
}

[[maybe_unused]] const bool kCovers_softmax = cover(OpKind::softmax);
TEST(GradOps, Softmax) {
    const int64_t M = 3, N = 9;
    Vec x = random_vec(M * N, 71, -3.0f, 3.0f), r = random_vec(M * N, 72), y(M * N);
    auto loss = [&] {
        softmax_forward_ref(x.data(), y.data(), M, N);
        return dot64(r, y.data(), y.size());
    };
    loss();
    Accum dx(x.size(), 73);
    softmax_backward_ref(r.data(), y.data(), dx.data(), M, N);
    fd_check("softmax dx", x, dx.added(), loss);
}

[[maybe_unused]] const bool kCovers_silu = cover(OpKind::silu);
[[maybe_unused]] const bool kCovers_gelu = cover(OpKind::gelu);
[[maybe_unused]] const bool kCovers_log  = cover(OpKind::log);
TEST(GradOps, SiluGeluLog) {
    const int64_t n = 23;
    Vec x = random_vec(n, 81, -4.0f, 4.0f), r = random_vec(n, 82), y(n);
    auto silu_loss = [&] {
        silu_forward_ref(x.data(), y.data(), n);
        return dot64(r, y.data(), n);
    };
    Accum ds(n, 83);
    silu_backward_ref(r.data(), x.data(), ds.data(), n);
    fd_check("silu dx", x, ds.added(), silu_loss);
    auto gelu_loss = [&] {
        gelu_forward_ref(x.data(), y.data(), n);
        return dot64(r, y.data(), n);
    };
    Accum dg(n, 84);
    gelu_backward_ref(r.data(), x.data(), dg.data(), n);
    fd_check("gelu dx", x, dg.added(), gelu_loss);
    // The tanh and quick forms (GeluForm), through the form-taking backward the encoder graph calls.
    using Fwd  = void (*)(const float *, float *, int64_t);
    using Case = std::tuple<GeluForm, Fwd, const char *>;
    for (auto [form, fwd, name] : {Case{GeluForm::Tanh, gelu_tanh_forward_ref, "gelu_tanh dx"},
                                   Case{GeluForm::Quick, gelu_quick_forward_ref, "gelu_quick dx"}}) {
        auto loss = [&, fwd = fwd] {
            fwd(x.data(), y.data(), n);
            return dot64(r, y.data(), n);
        };
        Accum d(n, 87);
        gelu_backward_ref(form, r.data(), x.data(), d.data(), n);
        fd_check(name, x, d.added(), loss);
    }
    Vec p         = random_vec(n, 85, 0.5f, 3.0f);  // log needs x + eps > 0
    auto log_loss = [&] {
        log_forward_ref(p.data(), y.data(), n, 1e-6f);
        return dot64(r, y.data(), n);
    };
    Accum dl(n, 86);
    log_backward_ref(r.data(), p.data(), dl.data(), n, 1e-6f);
    fd_check("log dx", p, dl.added(), log_loss);
}

[[maybe_unused]] const bool kCovers_rope = cover(OpKind::rope);
TEST(GradOps, RopeInPlace) {
    const int64_t T = 5, H = 3, D = 6, ldx = H * D + 2;
    const std::vector<int32_t> pos = {0, 3, 4, 9, 17};
    Vec x = random_vec(T * ldx, 91), r = random_vec(T * ldx, 92);
    auto loss = [&] {
        Vec y = x;
        rope_forward_ref(y.data(), ldx, T, H, D, pos.data(), 10000.0f);
        double s = 0;
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < H * D; ++c) s += double(r[t * ldx + c]) * y[t * ldx + c];
        return s;
    };
    Vec g = r;  // dy in, dx out
    rope_backward_ref(g.data(), ldx, T, H, D, pos.data(), 10000.0f);
    for (int64_t t = 0; t < T; ++t) g[t * ldx + H * D] = g[t * ldx + H * D + 1] = 0.0f;  // padding: not an input
    fd_check("rope dx", x, g, loss, 1e-3, 1e-2f, [&](size_t i) { return int64_t(i) % ldx >= H * D; });
}

// Attention over (T queries, S keys), causal with a pos0 offset or not, grouped kv heads.
void check_attention_grad(int64_t T, int64_t S, int64_t H, int64_t G, int64_t D, bool causal, int64_t pos0,
                          uint32_t seed) {
    kern::AttentionArgs a;
    a.T = T, a.S = S, a.H = H, a.G = G, a.D = D, a.causal = causal, a.pos0 = pos0;
    a.ldq = H * D + 1, a.ldk = G * D + 3, a.ldv = G * D + 2, a.ldy = H * D;
    a.scale = 1.0f / std::sqrt(float(D));
    Vec q = random_vec(T * a.ldq, seed, -1.5f, 1.5f), k = random_vec(S * a.ldk, seed + 1, -1.5f, 1.5f);
    Vec v = random_vec(S * a.ldv, seed + 2), r = random_vec(T * a.ldy, seed + 3), y(T * a.ldy);
    auto loss = [&] {
        kern::AttentionArgs b = a;
        b.q = q.data(), b.k = k.data(), b.v = v.data(), b.y = y.data();
        attention_forward_ref(b);
        return dot64(r, y.data(), y.size());
    };
    Accum dq(q.size(), seed + 4), dk(k.size(), seed + 5), dv(v.size(), seed + 6);
    kern::AttentionArgs b = a;
    b.q = q.data(), b.k = k.data(), b.v = v.data(), b.y = y.data();
    attention_backward_ref(b, r.data(), dq.data(), dk.data(), dv.data());
    const std::string tag = (causal ? "causal" : "bidirectional") + std::string(" T=") + std::to_string(T);
    fd_check("attention dq " + tag, q, dq.added(), loss, 1e-3, 1e-2f,
             [&](size_t i) { return int64_t(i) % a.ldq >= H * D; });
    fd_check("attention dk " + tag, k, dk.added(), loss, 1e-3, 1e-2f,
             [&](size_t i) { return int64_t(i) % a.ldk >= G * D; });
    fd_check("attention dv " + tag, v, dv.added(), loss, 1e-3, 1e-2f,
             [&](size_t i) { return int64_t(i) % a.ldv >= G * D; });
}

[[maybe_unused]] const bool kCovers_attention = cover(OpKind::attention);
TEST(GradOps, Attention) {
    check_attention_grad(5, 5, 4, 2, 3 * 2, /*causal=*/true, 0, 101);
    check_attention_grad(3, 7, 4, 1, 4, /*causal=*/true, 4, 111);   // decode-like: queries after a cache
    check_attention_grad(5, 5, 2, 2, 5, /*causal=*/false, 0, 121);  // encoder: bidirectional, odd D
}

[[maybe_unused]] const bool kCovers_gather = cover(OpKind::gather);
TEST(GradOps, GatherScatterAdds) {
    const int64_t V = 6, C = 5, T = 7;
    const std::vector<int32_t> ids = {3, 0, 3, 5, 1, 3, 0};  // repeated ids sum their rows
    Vec table = random_vec(V * C, 131), r = random_vec(T * C, 132), y(T * C);
    auto loss = [&] {
        gather_forward_ref(Tensor::view(DType::F32, {V, C}, table.data()), ids.data(), T, y.data());
        return dot64(r, y.data(), y.size());
    };
    Accum dt(table.size(), 133);
    gather_backward_ref(r.data(), ids.data(), T, C, dt.data());
    fd_check("gather dtable", table, dt.added(), loss);
    const Vec added = dt.added();
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(added[2 * C + c], 0.0f);  // id 2 unused: no gradient
}

[[maybe_unused]] const bool kCovers_pool = cover(OpKind::pool);
TEST(GradOps, Pool) {
    const int64_t B = 2, T = 5, C = 3;
    Vec x = random_vec(B * T * C, 141), r = random_vec(B * C, 142), y(B * C);
    auto loss = [&] {
        pool_forward_ref(x.data(), y.data(), B, T, C);
        return dot64(r, y.data(), y.size());
    };
    Accum dx(x.size(), 143);
    pool_backward_ref(r.data(), dx.data(), B, T, C);
    fd_check("pool dx", x, dx.added(), loss);
}

TEST(GradOps, EveryOpHasAGradientTest) {
    for (int i = 0; i < kOpCount; ++i)
        EXPECT_TRUE(covered().count(static_cast<OpKind>(i))) << op_name(static_cast<OpKind>(i)) << " has no grad test";
}

}  // namespace
}  // namespace m4::ops
