// matmul_fwd_i8_avx512 — W8A8 int8 matmul with VPDPBUSD (AVX-512-VNNI), registered only when
// the CPU has VNNI; matmul_fwd_i8_avx512bw — the same function for CPUs without VNNI, with x
// kept as s8 and both sides widened to s16 for VPMADDWD (exact too; no compensation needed).
// M < 16 (decode): dot-product tiles straight from W's rows (matmul_tiles.h). M ≥ 16: the packed
// outer-product GEMM of matmul_packed.h, W in panels of 32 rows grouped 4 bytes per lane (VNNI)
// or 2 s16 per lane (BW), int32 accumulators for all of K (no K blocks, so the sums stay exact).
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::I8. Bit-exact by construction:
//   1. each row of x is quantised exactly as the reference does it (max|x|/127, IEEE division,
//      round half to even, clamp to ±127);
//   2. VPDPBUSD multiplies unsigned by signed bytes, so x is stored as u8 = qx + 128 and
//          Σ_k qx·qw = Σ_k (qx + 128)·qw − 128·Σ_k qw
//      with Σ_k qw computed per row of W (per tile of columns before the tile's rows run, or per
//      packed panel; the GEMV tile accumulates 128·qw alongside instead, so W is read once);
//      every sum is exact int32 arithmetic;
//   3. the epilogue does the reference's float operations in its order, with explicit
//      round-to-nearest instructions so the compiler cannot fuse them into an FMA:
//          v = float(dot) · (sx · w_scale[n]);  v = v + b[n];  y = y + v.
//
// x: (M, K) ldx   W: (N, K) int8, w_scale: (N)   b: (N)   y: (M, N) ldy
#include "kernels/avx512/matmul_packed.h"  // first: includes vec_math.h

#include "kernels/avx512/kernels.h"

#include <cstring>

namespace m4::kern {
namespace {

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// xq[0:K] = qx + offset for one row of x (offset 128: u8 for VPDPBUSD; 0: s8); returns sx.
// Quantising is about a tenth of a 512³ int8 GEMM's time, so the loops are tuned: four
// independent maxima; a round-to-nearest conversion instead of a separate rounding; 64 values
// narrowed at a time by saturating packs and one permute, where a VPMOVDB per 16 values costs
// more; and the ±127 clamp done on those bytes (below). x / sx stays a division: the reference
// divides, and a reciprocal plus Markstein's correction measured no faster.
float quantize_row(const float * x, uint8_t * xq, int64_t K, int32_t offset) {
    __m512 max0 = _mm512_setzero_ps(), max1 = max0, max2 = max0, max3 = max0;
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
        max0 = _mm512_max_ps(max0, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
        max1 = _mm512_max_ps(max1, _mm512_abs_ps(_mm512_loadu_ps(x + k + 16)));
        max2 = _mm512_max_ps(max2, _mm512_abs_ps(_mm512_loadu_ps(x + k + 32)));
        max3 = _mm512_max_ps(max3, _mm512_abs_ps(_mm512_loadu_ps(x + k + 48)));
    }
    for (; k < K; k += 16)
        max0 = _mm512_max_ps(max0, _mm512_abs_ps(_mm512_maskz_loadu_ps(avx512::tail16(K - k), x + k)));
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(max0, max1), _mm512_max_ps(max2, max3)));
    const float sx   = amax > 0.0f ? amax / 127.0f : 1.0f;
    const __m512 vsx = _mm512_set1_ps(sx);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    auto quantize16 = [&](__m512 v) {
        return _mm512_cvt_roundps_epi32(_mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_div_ps(v, vsx))), kRne);
    };
    // Whole blocks of 64 clamp in the integer domain: the packs saturate to [-128, 127] and a
    // byte max raises -128 to -127, the reference's float clamp exactly, as long as the quotient
    // converts to int32 — it does whenever sx > 0, as then |x / sx| ≤ 2·127 (sx is amax/127
    // rounded, to at least the smallest subnormal). A NaN converts to INT32_MIN and ends at -127,
    // as in the reference. (sx = 0, max|x| below 64 smallest subnormals, keeps the float clamp.)
    int64_t k_blocks = 0;
    if (sx > 0.0f) {
        // + offset as a byte operation: XOR 0x80 adds 128 modulo 256, and qx + 128 is in [1, 255].
        const __m512i flip  = _mm512_set1_epi8(offset == 128 ? static_cast<char>(0x80) : 0);
        const __m512i min_q = _mm512_set1_epi8(-127);
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        auto round16        = [&](int64_t at) {
            return _mm512_cvt_roundps_epi32(_mm512_div_ps(_mm512_loadu_ps(x + at), vsx), kRne);
        };
        for (; k_blocks + 64 <= K; k_blocks += 64) {
            // packs work per 128-bit lane: bytes come out as lanes (a0 b0 c0 d0)(a1 b1 c1 d1)…
            const int64_t at    = k_blocks;
            const __m512i ab    = _mm512_packs_epi32(round16(at), round16(at + 16));
            const __m512i cd    = _mm512_packs_epi32(round16(at + 32), round16(at + 48));
            const __m512i bytes = _mm512_permutexvar_epi32(order, _mm512_max_epi8(_mm512_packs_epi16(ab, cd), min_q));
            _mm512_storeu_si512(xq + at, _mm512_xor_si512(bytes, flip));
        }
    }
    k                  = k_blocks;
    const __m512i bias = _mm512_set1_epi32(offset);
    for (; k < K; k += 16) {
        const __mmask16 mk = avx512::tail16(K - k);
        const __m512i qi   = quantize16(_mm512_maskz_loadu_ps(mk, x + k));
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

// The reference's dequantisation, float(dot) · (sx · w_scale), per lane; the bias and y are added
// after it (store_i8 below, PanelOutput::store for the packed tiles).
inline __m512 dequantize(__m512i dot, float sx, __m512 w_scale) {
    const __m512 scale = _mm512_mul_round_ps(_mm512_set1_ps(sx), w_scale, kRne);
    return _mm512_mul_round_ps(_mm512_cvt_roundepi32_ps(dot, kRne), scale, kRne);
}

// The reference's epilogue, in its order, for the outputs of one row selected by mk, from exact
// int32 dots (lane i ↔ y[i], w_scale[i], bias[i]).
inline void store_i8(float * y, __m512i dot, __mmask16 mk, float sx, const float * w_scale, const float * bias,
                     bool accumulate) {
    __m512 v = dequantize(dot, sx, _mm512_maskz_loadu_ps(mk, w_scale));
    if (bias) v = _mm512_add_round_ps(v, _mm512_maskz_loadu_ps(mk, bias), kRne);
    if (accumulate) v = _mm512_add_round_ps(_mm512_maskz_loadu_ps(mk, y), v, kRne);
    _mm512_mask_storeu_ps(y, mk, v);
}

// Four outputs (the first `lanes` of dot) of one row (the dot-product tiles).
void store_i8x4(float * y, __m128i dot, float sx, const float * w_scale, const float * bias, int lanes,
                bool accumulate) {
    store_i8(y, _mm512_zextsi128_si512(dot), static_cast<__mmask16>((1u << lanes) - 1u), sx, w_scale, bias, accumulate);
}

// x quantised per row once per call: M rows of ldq bytes (qx + offset) plus one scale per row;
// quantize(m0, m1) fills rows m0 … m1-1, quantize_all() all of them over the thread pool.
struct QuantizedRows {
    const MatmulArgs & a;
    const int32_t offset;
    const int64_t ldq;
    avx512::Scratch bytes, scales;
    QuantizedRows(const MatmulArgs & args, int32_t offset_)
        : a(args),
          offset(offset_),
          ldq(avx512::round_up(std::max<int64_t>(args.K, 1), 64)),
          bytes(static_cast<size_t>(args.M * ldq)),
          scales(static_cast<size_t>(args.M) * sizeof(float)) {}
    void quantize(int64_t m0, int64_t m1) {
        uint8_t * xq = bytes.as<uint8_t>();
        float * sx   = scales.as<float>();
        for (int64_t m = m0; m < m1; ++m) {
            sx[m] = quantize_row(a.x + m * a.ldx, xq + m * ldq, a.K, offset);
            std::memset(xq + m * ldq + a.K, 0, static_cast<size_t>(ldq - a.K));  // read by the packed GEMM
        }
    }
    void quantize_all() {
        ThreadPool::global().parallel_for(
            a.M, [&](int64_t m0, int64_t m1) { quantize(m0, m1); },
            std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(a.K, 1)));
    }
};

// ---- packed GEMMs, M ≥ kPackedMinRows (matmul_packed.h) ------------------------------------

// AVX-512BW: x and W widened to s16, two k per lane, VPMADDWD (exact int32 over all of K).
struct PairsS16 {
    using Acc = __m512i;
    static Acc zero() { return _mm512_setzero_si512(); }
    static Acc madd(Acc c, __m512i x, __m512i w) { return _mm512_add_epi32(c, _mm512_madd_epi16(x, w)); }
};

// VNNI: x as u8 = qx + 128, W as s8, four k per lane, VPDPBUSD (exact int32; the caller
// subtracts 128·Σqw per column).
struct QuadsU8S8 {
    using Acc = __m512i;
    static Acc zero() { return _mm512_setzero_si512(); }
    static Acc madd(Acc c, __m512i x, __m512i w) { return _mm512_dpbusd_epi32(c, x, w); }
};

void matmul_i8_packed_avx512bw(const MatmulArgs & a) {
    using namespace avx512;
    QuantizedRows x(a, 0);
    const int64_t groups = round_up(a.K, 32) / 2, ldw16 = 2 * groups;  // k pairs; s16 per row of xw
    // x quantised, then widened to s16 (zero for k ≥ K), so a row's pair is one 32-bit broadcast.
    Scratch widened(static_cast<size_t>(std::max<int64_t>(a.M * ldw16, 1)) * sizeof(int16_t));
    int16_t * xw     = widened.as<int16_t>();
    const float * sx = x.scales.as<float>();
    const int8_t * w = static_cast<const int8_t *>(a.w);
    run_packed_gemm(
        a.M, a.N, groups,
        [&](int64_t m, int mr) {
            x.quantize(m, m + mr);
            for (int64_t r = m; r < m + mr; ++r)
                for (int64_t k = 0; k < ldw16; ++k)
                    xw[r * ldw16 + k] = k < a.K ? x.bytes.as<int8_t>()[r * x.ldq + k] : 0;
        },
        [&](int64_t n, int nr, int32_t * wp) {
            pack_panel_groups(
                nr, groups, reinterpret_cast<const uint8_t *>(w + n * a.K), a.K, 2,
                [](const uint8_t * p, int64_t left) {
                    return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(tail32(left), p));
                },
                wp);
        },
        [&](int mr, int64_t m, int64_t n, int nr, const int32_t * wp) {
            const PanelOutput out(a, m, n, nr);
            const float * w_scale   = a.w_scale + n;
            const float * row_scale = sx + m;
            outer_tile_any<PairsS16>(
                mr, reinterpret_cast<const uint8_t *>(xw + m * ldw16), 2 * ldw16, wp, groups,
                [&](int i, int h, __m512i dot) {
                    out.store(i, h,
                              dequantize(dot, row_scale[i], _mm512_maskz_loadu_ps(out.mask[h], w_scale + 16 * h)));
                });
        });
}

void matmul_i8_packed_vnni(const MatmulArgs & a) {
    using namespace avx512;
    QuantizedRows x(a, 128);  // u8 = qx + 128, rows of ldq = round_up(K, 64) bytes
    const int64_t groups = x.ldq / 4;
    const float * sx     = x.scales.as<float>();
    const int8_t * w     = static_cast<const int8_t *>(a.w);
    run_packed_gemm(
        a.M, a.N, groups, [&](int64_t m, int mr) { x.quantize(m, m + mr); },
        [&](int64_t n, int nr, int32_t * wp) {
            pack_panel_groups(
                nr, groups, reinterpret_cast<const uint8_t *>(w + n * a.K), a.K, 4,
                [](const uint8_t * p, int64_t left) { return _mm512_maskz_loadu_epi8(tail64(left), p); }, wp);
            // After the groups: 128·Σ_k qw per column, summed from the packed bytes (exact).
            const __m512i ones = _mm512_set1_epi8(1);
            __m512i comp0 = _mm512_setzero_si512(), comp1 = _mm512_setzero_si512();
            for (int64_t p = 0; p < groups; ++p) {
                comp0 = _mm512_dpbusd_epi32(comp0, ones, _mm512_loadu_si512(wp + p * kPanelCols));
                comp1 = _mm512_dpbusd_epi32(comp1, ones, _mm512_loadu_si512(wp + p * kPanelCols + 16));
            }
            _mm512_storeu_si512(wp + groups * kPanelCols, _mm512_slli_epi32(comp0, 7));
            _mm512_storeu_si512(wp + groups * kPanelCols + 16, _mm512_slli_epi32(comp1, 7));
        },
        [&](int mr, int64_t m, int64_t n, int nr, const int32_t * wp) {
            const PanelOutput out(a, m, n, nr);
            const int32_t * comp    = wp + groups * kPanelCols;
            const float * w_scale   = a.w_scale + n;
            const float * row_scale = sx + m;
            outer_tile_any<QuadsU8S8>(
                mr, x.bytes.as<uint8_t>() + m * x.ldq, x.ldq, wp, groups, [&](int i, int h, __m512i dot) {
                    const __m512i exact = _mm512_sub_epi32(dot, _mm512_loadu_si512(comp + 16 * h));
                    out.store(i, h,
                              dequantize(exact, row_scale[i], _mm512_maskz_loadu_ps(out.mask[h], w_scale + 16 * h)));
                });
        });
}

}  // namespace

void matmul_fwd_i8_avx512bw(const MatmulArgs & a) {
    using namespace avx512;
    if (a.M <= 0 || a.N <= 0) return;
    if (a.M >= kPackedMinRows) return matmul_i8_packed_avx512bw(a);
    QuantizedRows x(a, 0);
    x.quantize_all();
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
    if (a.M >= kPackedMinRows) return matmul_i8_packed_vnni(a);
    QuantizedRows x(a, 128);  // u8 = qx + 128
    x.quantize_all();
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
