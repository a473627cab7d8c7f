// rmsnorm_fwd_f32_avx2 — y[m, c] = (x[m, c] · 1/sqrt(mean_c x² + eps)) · w[c].
// Reference: ops::rmsnorm_forward_ref (src/ops/rmsnorm.cpp); the sum of squares is taken in 8
// f32 partial sums, otherwise the same operations in the same order.
//
// x: (M, C)   w: (C) or null (= 1)   y: (M, C), may alias x
#include <math.h>  // sqrtf: a libm call, not an inline std:: template compiled with these flags

#include "kernels/avx2/kernels.h"
#include "kernels/avx2/vec_math.h"

namespace m4::kern {

void rmsnorm_fwd_f32_avx2(const float * x, const float * w, float * y, int64_t M, int64_t C, float eps) {
    using namespace avx2;
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * C;
        float * yr       = y + m * C;
        __m256 ss        = _mm256_setzero_ps();
        int64_t c        = 0;
        for (; c + 8 <= C; c += 8) {
            const __m256 v = _mm256_loadu_ps(xr + c);
            ss             = _mm256_fmadd_ps(v, v, ss);
        }
        if (c < C) {
            const __m256 v = load_tail(xr + c, C - c);
            ss             = _mm256_fmadd_ps(v, v, ss);
        }
        const __m256 r = _mm256_set1_ps(1.0f / sqrtf(hsum(ss) / static_cast<float>(C) + eps));
        for (c = 0; c + 8 <= C; c += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + c), r);
            if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + c));
            _mm256_storeu_ps(yr + c, v);
        }
        if (c < C) {
            __m256 v = _mm256_mul_ps(load_tail(xr + c, C - c), r);
            if (w) v = _mm256_mul_ps(v, load_tail(w + c, C - c));
            store_tail(yr + c, v, C - c);
        }
    }
}

}  // namespace m4::kern
