// AVX2 helpers shared by the kernels of this folder: tail masks, horizontal reductions, exp.
//
// Include only from src/kernels/avx2/*.cpp (compiled with -mavx2 -mfma). Everything here lives in
// m4::kern::avx2 and is inline, so no copy of it can be picked by the linker for a translation
// unit compiled for a lower ISA.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace m4::kern::avx2 {

// Mask for _mm256_maskload_ps / _mm256_maskstore_ps: lanes [0, min(n, 8)) on.
inline __m256i tail8(int64_t n) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 8 ? n : 8)), iota);
}
inline __m256 load_tail(const float * p, int64_t n) {
    return _mm256_maskload_ps(p, tail8(n));
}
inline void store_tail(float * p, __m256 v, int64_t n) {
    _mm256_maskstore_ps(p, tail8(n), v);
}

// {Σa, Σb, Σc, Σd} of four vectors.
inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b);  // [a01 a23 b01 b23 | a45 a67 b45 b67]
    const __m256 cd = _mm256_hadd_ps(c, d);
    const __m256 s  = _mm256_hadd_ps(ab, cd);  // [a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7]
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// exp(x) for x ≤ 88.3, max error about 2 ulp (Cephes expf). Inputs below −87.3 give
// exp(−87.3) ≈ 1e-38 instead of a denormal or 0: negligible for softmax, the only user.
inline __m256 exp256(__m256 x) {
    x              = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    x              = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r       = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r              = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p       = _mm256_set1_ps(1.9875691500e-4f);
    p              = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p              = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p              = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p              = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p              = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p              = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n built in the exponent field (n ∈ [−126, 127] after the clamp).
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

}  // namespace m4::kern::avx2
