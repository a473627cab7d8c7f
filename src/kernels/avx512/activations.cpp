// silu_fwd_f32_avx512, gelu_{,tanh_,quick_}fwd_f32_avx512 — elementwise activations; add_fwd_f32_avx512
// and mul_fwd_f32_avx512 — residual / gating / broadcast add and multiply.
// References: ops::silu_forward_ref (src/ops/silu.cpp)  y = x / (1 + exp(−x))
//             ops::gelu_forward_ref (src/ops/gelu.cpp)  y = 0.5 · x · (1 + erf(x / √2))
//             ops::gelu_tanh_forward_ref                y = 0.5 · x · (1 + tanh(u)) = x / (1 + exp(−2u)),
//                                                       u = √(2/π) · (x + 0.044715 · x³)
//             ops::gelu_quick_forward_ref               y = x / (1 + exp(−1.702 · x))
//             ops::add_forward_ref  (src/ops/add.cpp)   y[i] = a[i] + b[i mod b_period]
//             ops::mul_forward_ref  (src/ops/mul.cpp)   y[i] = a[i] · b[i mod b_period]
// Same formulas with the vector exp512 (~2 ulp) and erf512 (~1 ulp) in place of libm; add and mul
// round each element once, as the references do, so bit for bit. Long arrays (an encoder's whole batch of activations)
// are split over the thread pool: the residual adds (then the scalar reference) and GELU ran on the calling thread
// alone, about 5 % of a batch-8 ViT-B/16 bf16 encoder's cycles (perf) with the other core idle,
// and the SwiGLU gate's mul 4 % of the 110 M LLaMA benchmark's.
//
// x, a: (n)   b: (b_period)   y: (n), may alias x / a
#include "kernels/avx512/vec_math.h"  // first: includes <immintrin.h>

#include "kernels/avx512/kernels.h"

#include <algorithm>

#include "base/thread_pool.h"

namespace m4::kern {
namespace {

constexpr int64_t kGrain = int64_t{1} << 15;  // floats per thread at least: below, one thread is faster

template <typename F>
void map_serial(const float * x, float * y, int64_t n, F f) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 mk = avx512::tail16(n - i);
        _mm512_mask_storeu_ps(y + i, mk, f(_mm512_maskz_loadu_ps(mk, x + i)));
    }
}

// fn(i0, i1) over items [0, count) behind n floats: on this thread below 2·kGrain floats, else
// split over the thread pool, at least `grain` items per thread.
template <typename F>
void over_items(int64_t count, int64_t grain, int64_t n, const F & fn) {
    if (n < 2 * kGrain) return fn(0, count);
    ThreadPool::global().parallel_for(count, fn, grain);
}

template <typename F>
void map(const float * x, float * y, int64_t n, F f) {
    over_items(n, kGrain, n, [&](int64_t i0, int64_t i1) { map_serial(x + i0, y + i0, i1 - i0, f); });
}

// y[0:n] = a[0:n] ∘ b[0:n]
template <typename Op>
void binary_serial(const float * a, const float * b, float * y, int64_t n, Op op) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
        const __mmask16 mk = avx512::tail16(n - i);
        _mm512_mask_storeu_ps(y + i, mk, op(_mm512_maskz_loadu_ps(mk, a + i), _mm512_maskz_loadu_ps(mk, b + i)));
    }
}

// y[i] = a[i] ∘ b[i mod b_period]: a broadcast scalar, elementwise, or rows of b_period (the last
// one may be short) each combined with b.
template <typename Op>
void binary(const float * a, const float * b, float * y, int64_t n, int64_t b_period, Op op) {
    if (b_period == 1) {
        const __m512 b0 = _mm512_set1_ps(b[0]);
        return map(a, y, n, [&](__m512 v) { return op(v, b0); });
    }
    if (b_period >= n)
        return over_items(n, kGrain, n,
                          [&](int64_t i0, int64_t i1) { binary_serial(a + i0, b + i0, y + i0, i1 - i0, op); });
    const int64_t rows = (n + b_period - 1) / b_period;
    over_items(rows, std::max<int64_t>(1, kGrain / b_period), n, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            binary_serial(a + r * b_period, b, y + r * b_period, std::min(b_period, n - r * b_period), op);
    });
}

}  // namespace

void silu_fwd_f32_avx512(const float * x, float * y, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    map(x, y, n, [&](__m512 v) {
        const __m512 e = avx512::exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
        return _mm512_div_ps(v, _mm512_add_ps(one, e));
    });
}

// dx += dy · f′(x) over [0, n), on the calling thread (the training graphs split rows themselves).
template <typename F>
void bwd_serial(const float * dy, const float * x, float * dx, int64_t n, F fprime) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dx + i, _mm512_add_ps(_mm512_loadu_ps(dx + i),
                                               _mm512_mul_ps(_mm512_loadu_ps(dy + i), fprime(_mm512_loadu_ps(x + i)))));
    if (i < n) {
        const __mmask16 mk = avx512::tail16(n - i);
        const __m512 d     = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, dy + i), fprime(_mm512_maskz_loadu_ps(mk, x + i)));
        _mm512_mask_storeu_ps(dx + i, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, dx + i), d));
    }
}

// silu′(x) = s·(1 + x·(1 − s)), s = σ(x)  (ops::silu_backward_ref)
void silu_bwd_f32_avx512(const float * dy, const float * x, float * dx, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    bwd_serial(dy, x, dx, n, [&](__m512 v) {
        const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, avx512::exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        return _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(v, _mm512_sub_ps(one, s))));
    });
}

// gelu′(x) = Φ(x) + x·φ(x) = 0.5·(1 + erf(x/√2)) + x·exp(−x²/2)/√(2π)  (ops::gelu_backward_ref)
void gelu_bwd_f32_avx512(const float * dy, const float * x, float * dx, int64_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), neg_half = _mm512_set1_ps(-0.5f);
    const __m512 inv_sqrt2 = _mm512_set1_ps(0.70710678118654752f), inv_sqrt2pi = _mm512_set1_ps(0.39894228040143268f);
    bwd_serial(dy, x, dx, n, [&](__m512 v) {
        const __m512 cdf = _mm512_mul_ps(half, _mm512_add_ps(one, avx512::erf512(_mm512_mul_ps(v, inv_sqrt2))));
        const __m512 pdf = _mm512_mul_ps(inv_sqrt2pi, avx512::exp512(_mm512_mul_ps(_mm512_mul_ps(neg_half, v), v)));
        return _mm512_add_ps(cdf, _mm512_mul_ps(v, pdf));
    });
}

void gelu_fwd_f32_avx512(const float * x, float * y, int64_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 inv_sqrt2 = _mm512_set1_ps(0.70710678118654752f);
    map(x, y, n, [&](__m512 v) {
        const __m512 e = avx512::erf512(_mm512_mul_ps(v, inv_sqrt2));
        return _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, e));
    });
}

// 0.5·(1 + tanh(u)) = σ(2u): one exp instead of a vector tanh. For x ≪ 0, exp(−2u) → +inf and
// y → −0, as the reference's 1 + tanh(u) → 0 gives.
void gelu_tanh_fwd_f32_avx512(const float * x, float * y, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f), c = _mm512_set1_ps(0.044715f);
    const __m512 m2k = _mm512_set1_ps(-2.0f * 0.79788456080286536f);  // −2·√(2/π)
    map(x, y, n, [&](__m512 v) {
        const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(c, v), _mm512_mul_ps(v, v), v);  // x + 0.044715·x³
        const __m512 e     = avx512::exp512(_mm512_mul_ps(m2k, inner));
        return _mm512_div_ps(v, _mm512_add_ps(one, e));
    });
}

void gelu_quick_fwd_f32_avx512(const float * x, float * y, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f), mk = _mm512_set1_ps(-1.702f);
    map(x, y, n, [&](__m512 v) {
        const __m512 e = avx512::exp512(_mm512_mul_ps(mk, v));
        return _mm512_div_ps(v, _mm512_add_ps(one, e));
    });
}

void add_fwd_f32_avx512(const float * a, const float * b, float * y, int64_t n, int64_t b_period) {
    binary(a, b, y, n, b_period, [](__m512 u, __m512 v) { return _mm512_add_ps(u, v); });
}

void mul_fwd_f32_avx512(const float * a, const float * b, float * y, int64_t n, int64_t b_period) {
    binary(a, b, y, n, b_period, [](__m512 u, __m512 v) { return _mm512_mul_ps(u, v); });
}

}  // namespace m4::kern
