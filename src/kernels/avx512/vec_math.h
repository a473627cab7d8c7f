// AVX-512 helpers shared by the kernels of this folder: masks for row tails, horizontal
// reductions, and vector exp / erf.
//
// Include only from src/kernels/avx512/*.cpp (compiled with the AVX-512 flags). Everything here
// lives in m4::kern::avx512, so no copy of it can be picked by the linker for a translation unit
// compiled for a lower ISA. For the same reason these files avoid inline std:: functions on
// floats (std::max<float>, std::sqrt(float), …): an unoptimised build emits them as weak
// symbols, and the linker may keep the AVX-512 copy for every caller. libm calls are safe.
#pragma once

// GCC 12 warns falsely inside its own AVX-512 intrinsic headers about _mm512_undefined_*()
// (GCC PR 105593). Diagnostics are classified by source location, so silencing them while the
// header is parsed silences exactly those; this header must be the TU's first to pull it in.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

namespace m4::kern::avx512 {

// Lanes of f32 bits → bf16 bits in the low 16 bits of each lane (f32_to_bf16's rule).
inline __m512i round_bf16_lanes(__m512i b) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    const __m512i rounded =
        _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __m512i abs   = _mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
}

// Mask of the first n lanes (n ≤ 16 / 32 / 64).
inline __mmask16 tail16(int64_t n) {
    return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
}
inline __mmask32 tail32(int64_t n) {
    return n >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << n) - 1u);
}
inline __mmask64 tail64(int64_t n) {
    return n >= 64 ? ~__mmask64(0) : __mmask64((uint64_t{1} << n) - 1u);
}

// Horizontal sums of four vectors at once: returns {Σa, Σb, Σc, Σd}.
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c, d.
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    // Per lane: [Σa, Σb, Σc, Σd] over that lane's 4 elements.
    const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// The same for int32 sums (exact).
inline __m128i reduce4_epi32(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    const __m512i s  = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    const __m256i h  = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// exp(x), max error about 2 ulp (Cephes expf polynomial; 2^n applied with scalef, so results
// underflow gracefully to denormals / 0 and overflow to +inf like std::exp).
inline __m512 exp512(__m512 x) {
    x              = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    x              = _mm512_min_ps(x, _mm512_set1_ps(88.8f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x − n·ln2 in two steps (ln2 = 0.693359375 − 2.12194440e-4, the first part exact).
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r        = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p        = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p        = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p        = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p        = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p        = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p        = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// erf(x), max error about 1 ulp: two minimax fits (N. Juffa's erff), |x| ≤ 0.9277 as an odd
// polynomial, above it as 1 − exp(poly(|x|)) with the sign restored.
inline __m512 erf512(__m512 x) {
    const __m512 t = _mm512_abs_ps(x);
    const __m512 s = _mm512_mul_ps(x, x);
    // Small |x|.
    __m512 lo = _mm512_set1_ps(-5.96761703e-4f);
    lo        = _mm512_fmadd_ps(lo, s, _mm512_set1_ps(4.99119423e-3f));
    lo        = _mm512_fmadd_ps(lo, s, _mm512_set1_ps(-2.67681349e-2f));
    lo        = _mm512_fmadd_ps(lo, s, _mm512_set1_ps(1.12819925e-1f));
    lo        = _mm512_fmadd_ps(lo, s, _mm512_set1_ps(-3.76125336e-1f));
    lo        = _mm512_fmadd_ps(lo, s, _mm512_set1_ps(1.28379166e-1f));
    lo        = _mm512_fmadd_ps(lo, x, x);
    // Large |x|.
    __m512 hi      = _mm512_fmadd_ps(_mm512_set1_ps(-1.72853470e-5f), t, _mm512_set1_ps(3.83197126e-4f));
    const __m512 u = _mm512_fmadd_ps(_mm512_set1_ps(-3.88396438e-3f), t, _mm512_set1_ps(2.42546219e-2f));
    hi             = _mm512_fmadd_ps(hi, s, u);
    hi             = _mm512_fmadd_ps(hi, t, _mm512_set1_ps(-1.06777877e-1f));
    hi             = _mm512_fmadd_ps(hi, t, _mm512_set1_ps(-6.34846687e-1f));
    hi             = _mm512_fmadd_ps(hi, t, _mm512_set1_ps(-1.28717512e-1f));
    hi             = _mm512_fmadd_ps(hi, t, _mm512_sub_ps(_mm512_setzero_ps(), t));
    hi             = _mm512_sub_ps(_mm512_set1_ps(1.0f), exp512(hi));
    // copysign(hi, x)
    const __m512 sign   = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
    hi                  = _mm512_or_ps(_mm512_abs_ps(hi), sign);
    const __mmask16 big = _mm512_cmp_ps_mask(t, _mm512_set1_ps(0.927734375f), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(big, lo, hi);
}

// Horizontal sum / max of one vector.
inline float hsum(__m512 v) {
    return _mm512_reduce_add_ps(v);
}
inline float hmax(__m512 v) {
    return _mm512_reduce_max_ps(v);
}

}  // namespace m4::kern::avx512
