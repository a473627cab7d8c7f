// softmax_fwd_f32_avx2 — y[m, :] = exp(x[m, :] − max) / Σ exp(x[m, :] − max), per row.
// Reference: ops::softmax_forward_ref (src/ops/softmax.cpp): the same three passes, with the
// vector exp256 (~2 ulp) and 8 partial sums.
//
// x: (M, N)   y: (M, N), may alias x
#include "kernels/avx2/kernels.h"
#include "kernels/avx2/vec_math.h"

namespace m4::kern {

void softmax_fwd_f32_avx2(const float * x, float * y, int64_t M, int64_t N) {
    using namespace avx2;
    if (N <= 0) return;
    for (int64_t m = 0; m < M; ++m) {
        const float * xr = x + m * N;
        float * yr       = y + m * N;
        __m256 vmax      = _mm256_set1_ps(xr[0]);
        int64_t n        = 0;
        for (; n + 8 <= N; n += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(xr + n));
        // Tail lanes load 0 from the mask; blend the running max back in over them.
        if (n < N)
            vmax = _mm256_max_ps(vmax,
                                 _mm256_blendv_ps(vmax, load_tail(xr + n, N - n), _mm256_castsi256_ps(tail8(N - n))));
        const __m256 mx = _mm256_set1_ps(hmax(vmax));
        __m256 vsum     = _mm256_setzero_ps();
        for (n = 0; n + 8 <= N; n += 8) {
            const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(xr + n), mx));
            vsum           = _mm256_add_ps(vsum, e);
            _mm256_storeu_ps(yr + n, e);
        }
        if (n < N) {
            const __m256 mk = _mm256_castsi256_ps(tail8(N - n));
            const __m256 e  = _mm256_and_ps(mk, exp256(_mm256_sub_ps(load_tail(xr + n, N - n), mx)));
            vsum            = _mm256_add_ps(vsum, e);
            store_tail(yr + n, e, N - n);
        }
        const __m256 inv = _mm256_set1_ps(1.0f / hsum(vsum));
        for (n = 0; n + 8 <= N; n += 8) _mm256_storeu_ps(yr + n, _mm256_mul_ps(_mm256_loadu_ps(yr + n), inv));
        if (n < N) store_tail(yr + n, _mm256_mul_ps(load_tail(yr + n, N - n), inv), N - n);
    }
}

}  // namespace m4::kern
