// matmul_fwd_i8_avx512 — W8A8 int8 matmul with VPDPBUSD (AVX-512-VNNI), registered only when
// the CPU has VNNI; matmul_fwd_i8_avx512bw — the same function for CPUs without VNNI, with x
// kept as s8 and both sides widened to s16 for VPMADDWD (exact too; no compensation needed).
// For M ≥ kPackedMinRows the AVX-512BW kernel packs W in panels of 32 rows as s16 pairs
// (Wp[k/2][32] of {w[j][k], w[j][k+1]}, like the f32 kernel's panels, see matmul_f32.cpp) and runs
// an 8 × 32 outer-product micro-kernel: one broadcast pair of x per row, two VPMADDWD per row
// and K pair, int32 accumulators for all of K (no K blocks, so the sums stay exact).
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::I8. Bit-exact by construction:
//   1. each row of x is quantised exactly as the reference does it (max|x|/127, IEEE division,
//      round half to even, clamp to ±127);
//   2. VPDPBUSD multiplies unsigned by signed bytes, so x is stored as u8 = qx + 128 and
//          Σ_k qx·qw = Σ_k (qx + 128)·qw − 128·Σ_k qw
//      with Σ_k qw computed per row of W (per tile of columns, before the tile's rows run; the
//      GEMV tile accumulates 128·qw alongside instead, so W is read once); every sum is exact
//      int32 arithmetic;
//   3. the epilogue does the reference's float operations in its order, with explicit
//      round-to-nearest instructions so the compiler cannot fuse them into an FMA:
//          v = float(dot) · (sx · w_scale[n]);  v = v + b[n];  y = y + v.
//
// x: (M, K) ldx   W: (N, K) int8, w_scale: (N)   b: (N)   y: (M, N) ldy
#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include "kernels/avx512/kernels.h"

#include <cstring>

namespace m4::kern {
namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// xq[0:K] = qx + offset for one row of x (offset 128: u8 for VPDPBUSD; 0: s8); returns sx.
float quantize_row(const float * x, uint8_t * xq, int64_t K, int32_t offset) {
    __m512 vmax = _mm512_setzero_ps();
    int64_t k   = 0;
    for (; k + 16 <= K; k += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
    if (k < K) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(avx512::tail16(K - k), x + k)));
    const float amax = _mm512_reduce_max_ps(vmax);
    const float sx   = amax > 0.0f ? amax / 127.0f : 1.0f;
    const __m512 vsx = _mm512_set1_ps(sx);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i bias = _mm512_set1_epi32(offset);
    for (k = 0; k < K; k += 16) {
        const __mmask16 mk = avx512::tail16(K - k);
        const __m512 q     = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(mk, x + k), vsx), kRne);
        const __m512i qi   = _mm512_cvtps_epi32(_mm512_min_ps(hi, _mm512_max_ps(lo, q)));
        _mm_mask_storeu_epi8(xq + k, mk, _mm512_cvtepi32_epi8(_mm512_add_epi32(qi, bias)));
    }
    return sx;
}

// Σ_k w[k] for one row of int8 weights (exact).
int32_t row_sum(const int8_t * w, int64_t K) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc        = _mm512_setzero_si512();
    for (int64_t k = 0; k < K; k += 64)
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(avx512::tail64(K - k), w + k));
    return _mm512_reduce_add_epi32(acc);
}

// Four outputs (the first `lanes` of dot) of row m: the reference's epilogue, in its order.
void store_i8x4(float * y, __m128i dot, float sx, const float * w_scale, const float * bias, int lanes,
                bool accumulate) {
    const __mmask16 mk = static_cast<__mmask16>((1u << lanes) - 1u);
    const __m512 d     = _mm512_cvt_roundepi32_ps(_mm512_zextsi128_si512(dot), kRne);
    const __m512 scale = _mm512_mul_round_ps(_mm512_set1_ps(sx), _mm512_maskz_loadu_ps(mk, w_scale), kRne);
    __m512 v           = _mm512_mul_round_ps(d, scale, kRne);
    if (bias) v = _mm512_add_round_ps(v, _mm512_maskz_loadu_ps(mk, bias), kRne);
    if (accumulate) v = _mm512_add_round_ps(_mm512_maskz_loadu_ps(mk, y), v, kRne);
    _mm512_mask_storeu_ps(y, mk, v);
}

// x quantised per row once per call: M rows of ldq bytes (qx + offset) plus one scale per row.
struct QuantizedRows {
    const int64_t ldq;
    avx512::Scratch bytes, scales;
    QuantizedRows(const MatmulArgs & a, int32_t offset)
        : ldq(avx512::round_up(std::max<int64_t>(a.K, 1), 64)),
          bytes(static_cast<size_t>(a.M * ldq)),
          scales(static_cast<size_t>(a.M) * sizeof(float)) {
        uint8_t * xq = bytes.as<uint8_t>();
        float * sx   = scales.as<float>();
        ThreadPool::global().parallel_for(
            a.M,
            [&](int64_t m0, int64_t m1) {
                for (int64_t m = m0; m < m1; ++m) sx[m] = quantize_row(a.x + m * a.ldx, xq + m * ldq, a.K, offset);
            },
            std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(a.K, 1)));
    }
};

// ---- packed GEMM, AVX-512BW (no VNNI), M ≥ kPackedMinRows ----------------------------------
constexpr int64_t kPackedMinRows = 16;
constexpr int kPanel             = 32;   // columns of y (rows of W) per packed panel
constexpr int kRows              = 8;    // rows of x per micro-tile
constexpr int64_t kTaskRows      = 256;  // rows of x per task
constexpr int64_t kTaskCols      = 64;   // columns of y per task (two panels)

// wp[p][j] = {w[j][2p], w[j][2p+1]} as two s16 in one int32, for j < nr and 2p < Kp (zero for
// j ≥ nr and k ≥ K). Kp = K rounded up to 32.
void pack_panel_s16(const int8_t * w, int64_t ldw, int nr, int64_t K, int32_t * wp) {
    using namespace avx512;
    for (int half = 0; half < 2; ++half) {
        const int rows = std::clamp(nr - 16 * half, 0, 16);
        for (int64_t k = 0; k < K; k += 32) {
            const __mmask32 mk = tail32(K - k);
            __m512 r[16];
            for (int i = 0; i < 16; ++i)
                r[i] = i < rows ? _mm512_castsi512_ps(
                                      _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mk, w + (16 * half + i) * ldw + k)))
                                : _mm512_setzero_ps();
            transpose16x16(r);  // r[c] = pair c of the 16 rows
            for (int c = 0; c < 16; ++c)
                _mm512_storeu_ps(reinterpret_cast<float *>(wp + (k / 2 + c) * kPanel + 16 * half), r[c]);
        }
    }
}

// y[0:MR, 0:nr] for rows with scales sx[0:MR]: exact int32 dots over all K pairs, then the
// reference's epilogue (see the top of this file).
template <int MR>
void micro_tile_s16(const int16_t * xw, int64_t ldxw, const int32_t * wp, int64_t pairs, const float * sx,
                    const float * w_scale, const float * bias, float * y, int64_t ldy, int nr, bool accumulate) {
    __m512i c[MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = _mm512_setzero_si512();
    for (int64_t p = 0; p < pairs; ++p) {
        const __m512i w0 = _mm512_loadu_si512(wp + p * kPanel), w1 = _mm512_loadu_si512(wp + p * kPanel + 16);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            int32_t pair;
            std::memcpy(&pair, xw + i * ldxw + 2 * p, sizeof pair);
            const __m512i xv = _mm512_set1_epi32(pair);
            c[i][0]          = _mm512_add_epi32(c[i][0], _mm512_madd_epi16(xv, w0));
            c[i][1]          = _mm512_add_epi32(c[i][1], _mm512_madd_epi16(xv, w1));
        }
    }
    for (int h = 0; h < 2; ++h) {
        const __mmask16 mk = avx512::tail16(std::max(nr - 16 * h, 0));
        if (!mk) continue;
        const __m512 ws = _mm512_maskz_loadu_ps(mk, w_scale + 16 * h);
        const __m512 b  = bias ? _mm512_maskz_loadu_ps(mk, bias + 16 * h) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            float * out        = y + i * ldy + 16 * h;
            const __m512 d     = _mm512_cvt_roundepi32_ps(c[i][h], kRne);
            const __m512 scale = _mm512_mul_round_ps(_mm512_set1_ps(sx[i]), ws, kRne);
            __m512 v           = _mm512_mul_round_ps(d, scale, kRne);
            if (bias) v = _mm512_add_round_ps(v, b, kRne);
            if (accumulate) v = _mm512_add_round_ps(_mm512_maskz_loadu_ps(mk, out), v, kRne);
            _mm512_mask_storeu_ps(out, mk, v);
        }
    }
}

using MicroTileS16 = void (*)(const int16_t *, int64_t, const int32_t *, int64_t, const float *, const float *,
                              const float *, float *, int64_t, int, bool);
constexpr MicroTileS16 kMicroTilesS16[kRows + 1] = {nullptr,           micro_tile_s16<1>, micro_tile_s16<2>,
                                                    micro_tile_s16<3>, micro_tile_s16<4>, micro_tile_s16<5>,
                                                    micro_tile_s16<6>, micro_tile_s16<7>, micro_tile_s16<8>};

void matmul_i8_packed_avx512bw(const MatmulArgs & a) {
    using namespace avx512;
    const QuantizedRows x(a, 0);
    const int64_t Kp = round_up(a.K, 32), pairs = Kp / 2;
    // x widened to s16 once (zero for k ≥ K), so a row's pair is one 32-bit broadcast.
    Scratch widened(static_cast<size_t>(std::max<int64_t>(a.M * Kp, 1)) * sizeof(int16_t));
    int16_t * xw = widened.as<int16_t>();
    ThreadPool::global().parallel_for(a.M, [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m)
            for (int64_t k = 0; k < Kp; ++k) xw[m * Kp + k] = k < a.K ? x.bytes.as<int8_t>()[m * x.ldq + k] : 0;
    });
    const float * sx   = x.scales.as<float>();
    const int8_t * w   = static_cast<const int8_t *>(a.w);
    const int64_t n_mb = ceil_div(a.M, kTaskRows), n_nb = ceil_div(a.N, kTaskCols);
    ThreadPool::global().parallel_for(n_mb * n_nb, [&](int64_t t0, int64_t t1) {
        Scratch packed(static_cast<size_t>(std::max<int64_t>(pairs, 1) * kPanel) * sizeof(int32_t));
        int32_t * wp = packed.as<int32_t>();
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t m0 = (t % n_mb) * kTaskRows, m1 = std::min(a.M, m0 + kTaskRows);
            const int64_t n0 = (t / n_mb) * kTaskCols, n1 = std::min(a.N, n0 + kTaskCols);
            for (int64_t n = n0; n < n1; n += kPanel) {
                const int nr = static_cast<int>(std::min<int64_t>(kPanel, n1 - n));
                pack_panel_s16(w + n * a.K, a.K, nr, a.K, wp);
                for (int64_t m = m0; m < m1; m += kRows) {
                    const int mr = static_cast<int>(std::min<int64_t>(kRows, m1 - m));
                    kMicroTilesS16[mr](xw + m * Kp, Kp, wp, pairs, sx + m, a.w_scale + n, a.bias ? a.bias + n : nullptr,
                                       a.y + m * a.ldy + n, a.ldy, nr, a.accumulate);
                }
            }
        }
    });
}

}  // namespace

void matmul_fwd_i8_avx512bw(const MatmulArgs & a) {
    using namespace avx512;
    if (a.M <= 0 || a.N <= 0) return;
    if (a.M >= kPackedMinRows) return matmul_i8_packed_avx512bw(a);
    const QuantizedRows x(a, 0);
    const int64_t ldq = x.ldq;
    const int8_t * xq = x.bytes.as<int8_t>();
    const float * sx  = x.scales.as<float>();
    const int8_t * w  = static_cast<const int8_t *>(a.w);
    const int nr_max  = a.M == 1 ? kNrGemv : kNr;
    for_each_block(a.M, a.N, a.K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
        for_each_tile(
            m0, m1, n0, n1, nr_max, [](int64_t, int) {},
            [&](int mr, int nr, int64_t m, int64_t n) {
                dot_tile_any<S8S8WideTraits>(
                    mr, nr, xq + m * ldq, ldq, w + n * a.K, a.K, a.K, [&](int i, int q, __m128i s) {
                        const int64_t col = n + 4 * q;
                        store_i8x4(a.y + (m + i) * a.ldy + col, s, sx[m + i], a.w_scale + col,
                                   a.bias ? a.bias + col : nullptr, std::min(4, nr - 4 * q), a.accumulate);
                    });
            });
    });
}

void matmul_fwd_i8_avx512(const MatmulArgs & a) {
    using namespace avx512;
    if (a.M <= 0 || a.N <= 0) return;
    const QuantizedRows x(a, 128);  // u8 = qx + 128
    const int64_t ldq  = x.ldq;
    const uint8_t * xq = x.bytes.as<uint8_t>();
    const float * sx   = x.scales.as<float>();

    const int8_t * w = static_cast<const int8_t *>(a.w);
    for_each_block(a.M, a.N, a.K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
        alignas(16) int32_t comp[kNrGemv] = {};  // 128·Σ_k qw of the current columns (GEMM only)

        auto epi = [&](int64_t m, int64_t n, int nr, int i, int q, __m128i s) {
            const int64_t col = n + 4 * q;
            const __m128i dot = _mm_sub_epi32(s, _mm_load_si128(reinterpret_cast<const __m128i *>(comp + 4 * q)));
            store_i8x4(a.y + (m + i) * a.ldy + col, dot, sx[m + i], a.w_scale + col, a.bias ? a.bias + col : nullptr,
                       std::min(4, nr - 4 * q), a.accumulate);
        };
        if (a.M == 1) {
            // GEMV: the tile folds the compensation in (one pass over W); comp stays 0.
            for_each_tile(
                m0, m1, n0, n1, kNrGemv, [](int64_t, int) {},
                [&](int mr, int nr, int64_t m, int64_t n) {
                    dot_tile_any<U8S8CompensatedTraits>(mr, nr, xq + m * ldq, ldq, w + n * a.K, a.K, a.K,
                                                        [&](int i, int q, __m128i s) { epi(m, n, nr, i, q, s); });
                });
            return;
        }
        for_each_tile(
            m0, m1, n0, n1, kNr,
            [&](int64_t n, int nr) {
                for (int j = 0; j < kNrGemv; ++j) comp[j] = j < nr ? 128 * row_sum(w + (n + j) * a.K, a.K) : 0;
            },
            [&](int mr, int nr, int64_t m, int64_t n) {
                dot_tile_any<U8S8Traits>(mr, nr, xq + m * ldq, ldq, w + n * a.K, a.K, a.K,
                                         [&](int i, int q, __m128i s) { epi(m, n, nr, i, q, s); });
            });
    });
}

}  // namespace m4::kern
