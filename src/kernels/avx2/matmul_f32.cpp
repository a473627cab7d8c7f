// matmul_fwd_f32_avx2 — y[M, N] = x[M, K]·W[N, K]ᵀ (+ b) (+ y), W f32, AVX2 + FMA.
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::F32. Same products, f32
// accumulation in 8 partial sums per output, so results agree to f32 rounding of the sum.
//
// Register-blocked dot-product tiles as in the AVX-512 kernel (see avx512/matmul_tiles.h): MR = 4
// rows of x × NR = 3 rows of W keep 12 of the 16 ymm registers as accumulators; M = 1 (GEMV)
// uses 1 × 8. Blocks of the output are spread over the thread pool, N-major.
//
// x: (M, K) ldx   W: (N, K)   b: (N)   y: (M, N) ldy
#include <algorithm>

#include "base/thread_pool.h"
#include "kernels/avx2/kernels.h"
#include "kernels/avx2/vec_math.h"

namespace m4::kern {
namespace avx2 {
namespace {

constexpr int kMr = 4, kNr = 3, kNrGemv = 8;

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// y[i, j] for i < MR, j < NR of one tile.
template <int MR, int NR>
void tile(const float * x, int64_t ldx, const float * w, int64_t K, float * y, int64_t ldy, const float * bias,
          bool accumulate) {
    constexpr int kGroups = (NR + 3) / 4;
    __m256 c[MR][kGroups * 4];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < kGroups * 4; ++j) c[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[NR];
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) wv[j] = _mm256_loadu_ps(w + j * K + k);
#pragma GCC unroll 4
        for (int i = 0; i < MR; ++i) {
            const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
#pragma GCC unroll 8
            for (int j = 0; j < NR; ++j) c[i][j] = _mm256_fmadd_ps(xv, wv[j], c[i][j]);
        }
    }
    if (k < K) {
        const __m256i mk = tail8(K - k);
        __m256 wv[NR];
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) wv[j] = _mm256_maskload_ps(w + j * K + k, mk);
#pragma GCC unroll 4
        for (int i = 0; i < MR; ++i) {
            const __m256 xv = _mm256_maskload_ps(x + i * ldx + k, mk);
#pragma GCC unroll 8
            for (int j = 0; j < NR; ++j) c[i][j] = _mm256_fmadd_ps(xv, wv[j], c[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
        for (int q = 0; q < kGroups; ++q) {
            alignas(16) float s[4];
            _mm_store_ps(s, reduce4(c[i][4 * q], c[i][4 * q + 1], c[i][4 * q + 2], c[i][4 * q + 3]));
            for (int l = 0; l < 4 && 4 * q + l < NR; ++l) {
                const int j = 4 * q + l;
                float v     = bias ? s[l] + bias[j] : s[l];
                float & out = y[i * ldy + j];
                out         = accumulate ? out + v : v;
            }
        }
    }
}

using TileFn = void (*)(const float *, int64_t, const float *, int64_t, float *, int64_t, const float *, bool);

// tile<MR, NR> for run-time mr ∈ [1, 4], nr ∈ [1, 3] or (1, 8).
TileFn pick_tile(int mr, int nr) {
    static constexpr TileFn kTiles[4][3] = {
        {tile<1, 1>, tile<1, 2>, tile<1, 3>},
        {tile<2, 1>, tile<2, 2>, tile<2, 3>},
        {tile<3, 1>, tile<3, 2>, tile<3, 3>},
        {tile<4, 1>, tile<4, 2>, tile<4, 3>},
    };
    return nr == kNrGemv ? tile<1, kNrGemv> : kTiles[mr - 1][nr - 1];
}

}  // namespace
}  // namespace avx2

void matmul_fwd_f32_avx2(const MatmulArgs & a) {
    using namespace avx2;
    if (a.M <= 0 || a.N <= 0) return;
    const float * w   = static_cast<const float *>(a.w);
    const int nr_max  = a.M == 1 ? kNrGemv : kNr;
    ThreadPool & pool = ThreadPool::global();
    int64_t mb = 64, nb = 63;  // nb a multiple of kNr
    if (a.M <= kMr) {
        mb = a.M;
        nb = std::clamp<int64_t>(ceil_div(ceil_div(a.N, 4 * pool.size()), 24) * 24, 24, 1032);
    }
    const int64_t n_mb = ceil_div(a.M, mb), n_nb = ceil_div(a.N, nb), tasks = n_mb * n_nb;
    const int64_t grain = a.M * a.N * std::max<int64_t>(a.K, 1) < (int64_t{1} << 15) ? tasks : 1;
    pool.parallel_for(
        tasks,
        [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t m0 = (t % n_mb) * mb, n0 = (t / n_mb) * nb;
                const int64_t m1 = std::min(a.M, m0 + mb), n1 = std::min(a.N, n0 + nb);
                for (int64_t n = n0; n < n1;) {
                    const int nr = n1 - n >= nr_max ? nr_max : static_cast<int>(std::min<int64_t>(kNr, n1 - n));
                    for (int64_t m = m0; m < m1; m += kMr) {
                        const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
                        pick_tile(mr, nr)(a.x + m * a.ldx, a.ldx, w + n * a.K, a.K, a.y + m * a.ldy + n, a.ldy,
                                          a.bias ? a.bias + n : nullptr, a.accumulate);
                    }
                    n += nr;
                }
            }
        },
        grain, ThreadPool::site_hint(a.M, a.N, a.K));
}

}  // namespace m4::kern
