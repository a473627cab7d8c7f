// attention_fwd_f32_avx512 — fused scaled dot-product attention with grouped KV heads and an
// optional causal mask, one (query, head) pair at a time, keys in blocks of 16 with an online
// softmax (flash-attention style), so no T × S score matrix is ever stored:
//     for each block of keys:  s = q·kᵀ · scale;  m' = max(m, max s);  α = exp(m − m')
//                              l = l·α + Σ exp(s − m');  acc = acc·α + Σ exp(s − m')·v
//     y = acc / l
// Reference: ops::attention_forward_ref (src/ops/attention.cpp), which normalises once over all
// scores; the results agree to f32 rounding (exp512 is ~2 ulp).
// The (query, head) pairs are spread over the thread pool. Keys and values are f32 or bf16 (a
// compact KV cache, a.kv_dtype): bf16 is widened to f32 exactly in registers (a 16-bit shift).
//
// q: (T, H·D) ldq   k, v: (S, G·D) ldk, ldv   y: (T, H·D) ldy;  head h reads KV head h / (H/G)
#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include <math.h>  // expf, INFINITY: libm, not inline std:: code compiled with these flags

#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

constexpr int kKeyBlock = 16;

// 16 (masked) keys or values as f32.
inline __m512 load_kv(const float * p, __mmask16 mk) {
    return _mm512_maskz_loadu_ps(mk, p);
}
inline __m512 load_kv(const uint16_t * p, __mmask16 mk) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, p)), 16));
}

// y[t, h] for one query row and one head. acc: D floats of scratch (64-byte aligned). KV: float or
// uint16_t (bf16).
template <typename KV>
void attend_one(const AttentionArgs & a, int64_t t, int64_t h, float * acc) {
    using namespace avx512;
    const KV * keys = static_cast<const KV *>(a.k);
    const KV * vals = static_cast<const KV *>(a.v);
    const int64_t D = a.D, g = h / (a.H / a.G);
    const float * q      = a.q + t * a.ldq + h * D;
    float * y            = a.y + t * a.ldy + h * D;
    const int64_t n_keys = a.causal ? std::min(a.S, a.pos0 + t + 1) : a.S;
    if (n_keys <= 0) {
        for (int64_t d = 0; d < D; d += 16) _mm512_mask_storeu_ps(y + d, tail16(D - d), _mm512_setzero_ps());
        return;
    }
    for (int64_t d = 0; d < D; d += 16) _mm512_store_ps(acc + d, _mm512_setzero_ps());
    float m = -INFINITY, l = 0.0f;
    const __m512 scale             = _mm512_set1_ps(a.scale);
    alignas(64) float p[kKeyBlock] = {};

    for (int64_t s0 = 0; s0 < n_keys; s0 += kKeyBlock) {
        const int64_t nb = std::min<int64_t>(kKeyBlock, n_keys - s0);
        // Scores of the block, four keys at a time (keys past the end repeat the last one and are
        // masked out below).
        for (int64_t j0 = 0; j0 < nb; j0 += 4) {
            const KV * kr[4];
            for (int j = 0; j < 4; ++j) kr[j] = keys + std::min(s0 + j0 + j, n_keys - 1) * a.ldk + g * D;
            __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            for (int64_t d = 0; d < D; d += 16) {
                const __mmask16 mk = tail16(D - d);
                const __m512 qv    = _mm512_maskz_loadu_ps(mk, q + d);
                c0                 = _mm512_fmadd_ps(qv, load_kv(kr[0] + d, mk), c0);
                c1                 = _mm512_fmadd_ps(qv, load_kv(kr[1] + d, mk), c1);
                c2                 = _mm512_fmadd_ps(qv, load_kv(kr[2] + d, mk), c2);
                c3                 = _mm512_fmadd_ps(qv, load_kv(kr[3] + d, mk), c3);
            }
            _mm_store_ps(p + j0, reduce4(c0, c1, c2, c3));
        }
        const __mmask16 valid = tail16(nb);
        const __m512 sv       = _mm512_mul_ps(_mm512_load_ps(p), scale);
        const float bmax      = _mm512_mask_reduce_max_ps(valid, sv);
        const float m_new     = m > bmax ? m : bmax;
        const float alpha     = m == -INFINITY ? 0.0f : expf(m - m_new);
        const __m512 pv       = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(sv, _mm512_set1_ps(m_new))));
        l                     = l * alpha + hsum(pv);
        _mm512_store_ps(p, pv);
        m = m_new;

        // acc = acc·α + Σ_j p_j · v_j
        const __m512 va = _mm512_set1_ps(alpha);
        for (int64_t d = 0; d < D; d += 16) {
            const __mmask16 mk = tail16(D - d);
            __m512 av          = _mm512_mul_ps(_mm512_load_ps(acc + d), va);
            for (int64_t j = 0; j < nb; ++j)
                av = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), load_kv(vals + (s0 + j) * a.ldv + g * D + d, mk), av);
            _mm512_store_ps(acc + d, av);
        }
    }
    const __m512 inv = _mm512_set1_ps(1.0f / l);
    for (int64_t d = 0; d < D; d += 16)
        _mm512_mask_storeu_ps(y + d, tail16(D - d), _mm512_mul_ps(_mm512_load_ps(acc + d), inv));
}

}  // namespace

void attention_fwd_f32_avx512(const AttentionArgs & a) {
    using namespace avx512;
    if (a.T <= 0 || a.H <= 0) return;
    const int64_t pairs = a.T * a.H;
    const int64_t work  = std::max<int64_t>(1, a.S * a.D);
    ThreadPool::global().parallel_for(
        pairs,
        [&](int64_t i0, int64_t i1) {
            Scratch acc(static_cast<size_t>(round_up(a.D, 16)) * sizeof(float));
            for (int64_t i = i0; i < i1; ++i) {
                if (a.kv_dtype == DType::BF16)
                    attend_one<uint16_t>(a, i / a.H, i % a.H, acc.as<float>());
                else
                    attend_one<float>(a, i / a.H, i % a.H, acc.as<float>());
            }
        },
        std::max<int64_t>(1, (int64_t{1} << 14) / work));
}

}  // namespace m4::kern
