// softmax_fwd_f32_avx512 — y[m, :] = exp(x[m, :] − max) / Σ exp(x[m, :] − max), per row.
// Reference: ops::softmax_forward_ref (src/ops/softmax.cpp). Three passes over the row as in the
// reference (max, exp + sum, scale by 1/sum); exp is the ~2-ulp vector exp512.
//
// x: (M, N)   y: (M, N), may alias x
#include "kernels/avx512/vec_math.h"  // first: includes <immintrin.h>

#include "kernels/avx512/kernels.h"

namespace m4::kern {

void softmax_fwd_f32_avx512(const float * x, float * y, int64_t M, int64_t N) {
    using namespace avx512;
    if (N <= 0) return;
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * N;
        float * yr       = y + m * N;
        __m512 vmax      = _mm512_set1_ps(xr[0]);
        for (int64_t n = 0; n < N; n += 16)
            vmax = _mm512_mask_max_ps(vmax, tail16(N - n), vmax, _mm512_maskz_loadu_ps(tail16(N - n), xr + n));
        const __m512 mx = _mm512_set1_ps(hmax(vmax));
        __m512 vsum     = _mm512_setzero_ps();
        for (int64_t n = 0; n < N; n += 16) {
            const __mmask16 mk = tail16(N - n);
            const __m512 e     = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, xr + n), mx));
            vsum               = _mm512_mask_add_ps(vsum, mk, vsum, e);
            _mm512_mask_storeu_ps(yr + n, mk, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / hsum(vsum));
        for (int64_t n = 0; n < N; n += 16) {
            const __mmask16 mk = tail16(N - n);
            _mm512_mask_storeu_ps(yr + n, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, yr + n), inv));
        }
    }
}

}  // namespace m4::kern
