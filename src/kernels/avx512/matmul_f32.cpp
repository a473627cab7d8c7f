// matmul_fwd_f32_avx512 — y[M, N] = x[M, K]·W[N, K]ᵀ (+ b) (+ y), W f32.
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::F32. Same products, f32
// accumulation in a different order, so results agree to f32 rounding of the sum.
//
// Two algorithms, chosen by M:
//  - M < kPackedMinRows (decode, small batches): dot-product tiles straight from W's rows
//    (matmul_tiles.h). The work is reading W once; nothing is worth packing.
//  - M ≥ kPackedMinRows (prefill, encoders, training): a packed outer-product GEMM. W is read in
//    panels of 32 rows × kKc of K, transposed once per panel into Wp[k][32] (16 × 16 register
//    transposes), and a micro-kernel of 8 rows × 32 columns keeps 16 accumulators in registers:
//    per k it loads two vectors of Wp and broadcasts one x value per row — 16 FMAs, no
//    horizontal sums. The packed panel (32 KiB) stays in L1/L2 while every row block of x passes
//    over it, the BLIS loop order.
//
// x: (M, K) ldx   W: (N, K)   b: (N)   y: (M, N) ldy
#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

using namespace avx512;

constexpr int64_t kPackedMinRows = 16;
constexpr int kPanel             = 32;    // columns of y (rows of W) per packed panel: two vectors
constexpr int kRows              = 8;     // rows of x per micro-tile
constexpr int64_t kKc            = 256;   // K per packed block: a panel is kKc × 32 floats = 32 KiB
constexpr int64_t kTaskRows      = 1024;  // rows of x per task: 1024 × kKc floats (1 MiB) in L2 or L3
constexpr int64_t kTaskCols      = 64;    // columns of y per task (two panels)

// wp[k][j] = w[j][k] for j < nr, k < kc; zero for nr ≤ j < 32. w: rows of W from the panel's
// first row and block's first k, row stride ldw.
// Like pack_panel_groups (matmul_packed.h), it prefetches its rows 4 cache lines ahead: they
// usually come from DRAM in short streams.
void pack_panel(const float * w, int64_t ldw, int nr, int64_t kc, float * wp) {
    constexpr int64_t kAhead = 64;  // floats
    for (int half = 0; half < 2; ++half) {
        const int rows = std::clamp(nr - 16 * half, 0, 16);
        for (int i = 0; i < rows; ++i)
            for (int64_t k = 0; k < std::min(kAhead, kc); k += 16)
                _mm_prefetch(reinterpret_cast<const char *>(w + (16 * half + i) * ldw + k), _MM_HINT_T0);
        for (int64_t k = 0; k < kc; k += 16) {
            for (int i = 0; i < rows; ++i)
                _mm_prefetch(reinterpret_cast<const char *>(w + (16 * half + i) * ldw + k + kAhead), _MM_HINT_T0);
            const __mmask16 mk = tail16(kc - k);
            __m512 r[16];
            for (int i = 0; i < 16; ++i)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(mk, w + (16 * half + i) * ldw + k) : _mm512_setzero_ps();
            transpose16x16(r);
            const int64_t cols = std::min<int64_t>(16, kc - k);
            for (int c = 0; c < cols; ++c) _mm512_storeu_ps(wp + (k + c) * kPanel + 16 * half, r[c]);
        }
    }
}

// y[0:MR, 0:nr] (+)= x[0:MR, 0:kc] · Wp[0:kc, 0:nr]. On the first K block the bias and, when
// accumulating, the old y are added; later blocks add to y.
template <int MR>
void micro_tile(const float * x, int64_t ldx, const float * wp, int64_t kc, float * y, int64_t ldy, int nr,
                bool first_block, const float * bias, bool accumulate) {
    __m512 c[MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 w0 = _mm512_loadu_ps(wp + k * kPanel), w1 = _mm512_loadu_ps(wp + k * kPanel + 16);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            const __m512 xv = _mm512_set1_ps(x[i * ldx + k]);
            c[i][0]         = _mm512_fmadd_ps(xv, w0, c[i][0]);
            c[i][1]         = _mm512_fmadd_ps(xv, w1, c[i][1]);
        }
    }
    const __mmask16 m0 = tail16(std::max(nr, 0)), m1 = tail16(std::max(nr - 16, 0));
    for (int h = 0; h < 2; ++h) {
        const __mmask16 mk = h == 0 ? m0 : m1;
        if (!mk) continue;
        const __m512 b = first_block && bias ? _mm512_maskz_loadu_ps(mk, bias + 16 * h) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            float * p = y + i * ldy + 16 * h;
            __m512 v  = _mm512_add_ps(c[i][h], b);
            if (!first_block || accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, p));
            _mm512_mask_storeu_ps(p, mk, v);
        }
    }
}

using MicroTileFn = void (*)(const float *, int64_t, const float *, int64_t, float *, int64_t, int, bool, const float *,
                             bool);
constexpr MicroTileFn kMicroTiles[kRows + 1] = {nullptr,       micro_tile<1>, micro_tile<2>,
                                                micro_tile<3>, micro_tile<4>, micro_tile<5>,
                                                micro_tile<6>, micro_tile<7>, micro_tile<8>};

void matmul_f32_packed(const MatmulArgs & a) {
    const float * w    = static_cast<const float *>(a.w);
    const int64_t n_mb = ceil_div(a.M, kTaskRows), n_nb = ceil_div(a.N, kTaskCols);
    const int64_t tasks = n_mb * n_nb;
    ThreadPool::global().parallel_for(
        tasks,
        [&](int64_t t0, int64_t t1) {
            Scratch packed(static_cast<size_t>(kKc * kTaskCols) * sizeof(float));
            float * wp = packed.as<float>();
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t m0 = (t % n_mb) * kTaskRows, m1 = std::min(a.M, m0 + kTaskRows);
                const int64_t n0 = (t / n_mb) * kTaskCols, n1 = std::min(a.N, n0 + kTaskCols);
                // K = 0 still runs one (empty) block: y = bias (+ y).
                for (int64_t k0 = 0; k0 == 0 || k0 < a.K; k0 += kKc) {
                    const int64_t kc = std::min(kKc, a.K - k0);
                    for (int64_t n = n0; n < n1; n += kPanel) {
                        const int nr    = static_cast<int>(std::min<int64_t>(kPanel, n1 - n));
                        float * panel   = wp + (n - n0) * kKc;
                        const float * b = a.bias ? a.bias + n : nullptr;
                        pack_panel(w + n * a.K + k0, a.K, nr, kc, panel);
                        for (int64_t m = m0; m < m1; m += kRows) {
                            const int mr = static_cast<int>(std::min<int64_t>(kRows, m1 - m));
                            kMicroTiles[mr](a.x + m * a.ldx + k0, a.ldx, panel, kc, a.y + m * a.ldy + n, a.ldy, nr,
                                            k0 == 0, b, a.accumulate);
                        }
                    }
                }
            }
        },
        1, ThreadPool::site_hint(a.M, a.N, a.K));
}

}  // namespace

void matmul_fwd_f32_avx512(const MatmulArgs & a) {
    if (a.M <= 0 || a.N <= 0) return;
    if (a.M >= kPackedMinRows) return matmul_f32_packed(a);
    const float * w  = static_cast<const float *>(a.w);
    const int nr_max = a.M == 1 ? kNrGemv : kNr;
    for_each_block(a.M, a.N, a.K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
        for_each_tile(
            m0, m1, n0, n1, nr_max, [](int64_t, int) {},
            [&](int mr, int nr, int64_t m, int64_t n) {
                dot_tile_any<F32Traits>(mr, nr, a.x + m * a.ldx, a.ldx, w + n * a.K, a.K, a.K,
                                        [&](int i, int q, __m128 s) {
                                            const int64_t col = n + 4 * q;
                                            store_f32x4(a.y + (m + i) * a.ldy + col, s, std::min(4, nr - 4 * q),
                                                        a.bias ? a.bias + col : nullptr, a.accumulate);
                                        });
            });
    });
}

}  // namespace m4::kern
