// silu_fwd_f32_avx512 and gelu_fwd_f32_avx512 — elementwise activations.
// References: ops::silu_forward_ref (src/ops/silu.cpp)  y = x / (1 + exp(−x))
//             ops::gelu_forward_ref (src/ops/gelu.cpp)  y = 0.5 · x · (1 + erf(x / √2))
// Same formulas with the vector exp512 (~2 ulp) and erf512 (~1 ulp) in place of libm.
//
// x: (n)   y: (n), may alias x
#include "kernels/avx512/vec_math.h"  // first: includes <immintrin.h>

#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

template <typename F>
void map(const float * x, float * y, int64_t n, F f) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 mk = avx512::tail16(n - i);
        _mm512_mask_storeu_ps(y + i, mk, f(_mm512_maskz_loadu_ps(mk, x + i)));
    }
}

}  // namespace

void silu_fwd_f32_avx512(const float * x, float * y, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    map(x, y, n, [&](__m512 v) {
        const __m512 e = avx512::exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
        return _mm512_div_ps(v, _mm512_add_ps(one, e));
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

}  // namespace m4::kern
