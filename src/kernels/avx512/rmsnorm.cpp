// rmsnorm_fwd_f32_avx512 — y[m, c] = (x[m, c] · 1/sqrt(mean_c x² + eps)) · w[c].
// Reference: ops::rmsnorm_forward_ref (src/ops/rmsnorm.cpp); the sum of squares is taken in 16
// f32 partial sums, otherwise the same operations in the same order.
//
// x: (M, C)   w: (C) or null (= 1)   y: (M, C), may alias x
#include "kernels/avx512/vec_math.h"  // first: includes <immintrin.h>

#include <math.h>  // sqrtf: a libm call, not an inline std:: template compiled with these flags

#include "kernels/avx512/kernels.h"

namespace m4::kern {

void rmsnorm_fwd_f32_avx512(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps) {
    using namespace avx512;
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        float * yr       = y + m * C;
        __m512 ss        = _mm512_setzero_ps();
        for (int64_t c = 0; c < C; c += 16) {
            const __m512 v = _mm512_maskz_loadu_ps(tail16(C - c), xr + c);
            ss             = _mm512_fmadd_ps(v, v, ss);
        }
        const __m512 r = _mm512_set1_ps(1.0f / sqrtf(hsum(ss) / static_cast<float>(C) + eps));
        for (int64_t c = 0; c < C; c += 16) {
            const __mmask16 mk = tail16(C - c);
            __m512 v           = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xr + c), r);
            if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, w + c));
            _mm512_mask_storeu_ps(yr + c, mk, v);
        }
    }
}

}  // namespace m4::kern
