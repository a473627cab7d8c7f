// layernorm_fwd_f32_avx512 — y[m, c] = ((x − μ) · 1/sqrt(σ² + eps)) · w[c] + b[c], per row.
// Reference: ops::layernorm_forward_ref (src/ops/layernorm.cpp): the same two passes (mean, then
// biased variance about the mean), with 16 f32 partial sums each.
//
// x: (M, C)   w, b: (C) or null (= 1, 0)   y: (M, C), may alias x
#include "kernels/avx512/vec_math.h"  // first: includes <immintrin.h>

#include <math.h>  // sqrtf: a libm call, not an inline std:: template compiled with these flags

#include "kernels/avx512/kernels.h"

namespace m4::kern {

void layernorm_fwd_f32_avx512(const float * x, const float * w, const float * b, float * y, int64_t M, int64_t C,
                              float eps) {
    using namespace avx512;
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        float * yr       = y + m * C;
        __m512 sum       = _mm512_setzero_ps();
        for (int64_t c = 0; c < C; c += 16) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(tail16(C - c), xr + c));
        const __m512 mean = _mm512_set1_ps(hsum(sum) / static_cast<float>(C));
        __m512 sq         = _mm512_setzero_ps();
        for (int64_t c = 0; c < C; c += 16) {
            const __mmask16 mk = tail16(C - c);
            const __m512 d     = _mm512_maskz_sub_ps(mk, _mm512_maskz_loadu_ps(mk, xr + c), mean);
            sq                 = _mm512_fmadd_ps(d, d, sq);
        }
        const __m512 r = _mm512_set1_ps(1.0f / sqrtf(hsum(sq) / static_cast<float>(C) + eps));
        for (int64_t c = 0; c < C; c += 16) {
            const __mmask16 mk = tail16(C - c);
            __m512 v           = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, xr + c), mean), r);
            if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, w + c));
            if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, b + c));
            _mm512_mask_storeu_ps(yr + c, mk, v);
        }
    }
}

}  // namespace m4::kern
