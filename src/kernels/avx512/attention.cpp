// attention_fwd_f32_avx512 — fused scaled dot-product attention (grouped KV heads, optional causal
// mask), flash-attention style: no T × S score matrix is ever stored. Reference and definition:
// ops::attention_forward_ref (src/ops/attention.cpp).
//     q: (T, H·D) ldq   k, v: (S, G·D) ldk, ldv, f32 or bf16 (a.kv_dtype)   y: (T, H·D) ldy
//     query head h reads KV head g = h / (H/G); query t sees the keys s ≤ lim_t, lim_t =
//     min(S, pos0 + t + 1) − 1 (S − 1 if not causal); a query that sees no key gets y = 0.
//
// Tiled path (prefill, or 8 or more query heads on one KV head). The query rows of KV head g, the
// pairs (t, h) t-major, go in tiles of L = 16 or 32 rows, one per vector lane: each key and value
// element loaded serves L queries, and the per-query state is a vector (no horizontal reductions).
//     qt[d][i] = q[t_i, h_i·D + d] · scale                      (D × L, once per tile)
//     for each block of 16 keys s0 … s0+15, up to the last key the tile sees:
//         sc[j][i] = Σ_d qt[d][i] · k[s0+j, g·D + d]           (broadcast k × L lanes of q)
//         m' = max(m, max of the visible sc[j]);   α = exp(m − m')
//         p[j] = s0 + j ≤ lim_i ? exp(sc[j] − m') : 0;   l = l·α + Σ_j p[j];   m = m'
//         acc[d] = acc[d]·α + Σ_j p[j] · v[s0+j, g·D + d]      (acc: D × L; broadcast v × p)
//     y[t_i, h_i·D + d] = acc[d][i] / l_i
// bf16 keys and values are widened exactly (a 16-bit shift) into 16 × D f32 blocks first. D is a
// scalar loop index: no masks. Scratch per thread: (2·D + 16) × L floats, + 2 · 16 × D for bf16.
//
// Row path (fewer than 8 query rows per KV head: decoding): one (query, head) at a time, lanes
// along D (tail16 masks), q·k of four keys at once reduced horizontally, the same online softmax
// per block of 16 keys. Each key is read once per query anyway; a tile would waste its lanes.
//
// Work items, (KV head, tile) or (query, head), are spread over the thread pool; a head's tiles go
// in the order 0, n−1, 1, n−2, … so that contiguous chunks of causal (triangular) work cost about
// the same. Key indices are int32 in the tiled path (S < 2^31).
#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include <float.h>  // FLT_MAX
#include <math.h>   // expf, INFINITY: libm, not inline std:: code compiled with these flags

#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

using namespace avx512;

constexpr int kLanes    = 16;  // query rows per tile (one per lane)
constexpr int kKeyBlock = 16;  // keys per online-softmax step
constexpr int kMinRows  = 8;   // fewer query rows per KV head than this: the row path

// 16 (masked) keys or values as f32.
inline __m512 load_kv(const float * p, __mmask16 mk) {
    return _mm512_maskz_loadu_ps(mk, p);
}
inline __m512 load_kv(const uint16_t * p, __mmask16 mk) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, p)), 16));
}

// ---- tiled path -------------------------------------------------------------------------------

// sc[j] (j < 8) = Σ_d qt[d] · kr_j[d] for QV vectors of 16 queries (qt, sc: QV vectors per d or
// key), key j's row at k + min(j, n − 1)·ldk (rows past n repeat the last one; masked later).
template <int QV>
inline void scores8(const float * qt, const float * k, int64_t ldk, int64_t n, int64_t D, float * sc) {
    const float * kr[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) kr[j] = k + std::min<int64_t>(j, n - 1) * ldk;
    __m512 c[8][QV];
#pragma GCC unroll 16
    for (int x = 0; x < 8 * QV; ++x) c[x / QV][x % QV] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; ++d) {
        __m512 qd[QV];
#pragma GCC unroll 2
        for (int u = 0; u < QV; ++u) qd[u] = _mm512_load_ps(qt + (d * QV + u) * kLanes);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
            const __m512 kd = _mm512_set1_ps(kr[j][d]);
#pragma GCC unroll 2
            for (int u = 0; u < QV; ++u) c[j][u] = _mm512_fmadd_ps(qd[u], kd, c[j][u]);
        }
    }
#pragma GCC unroll 16
    for (int x = 0; x < 8 * QV; ++x) _mm512_store_ps(sc + x * kLanes, c[x / QV][x % QV]);
}

// acc[d] = acc[d]·α + Σ_{j<n} p[j] · v[j·ldv + d] for d ∈ [d0, d0 + ND), QV vectors of queries.
template <int ND, int QV>
inline void accumulate(float * acc, const __m512 * alpha, const float * p, const float * v, int64_t ldv, int64_t n,
                       int64_t d0) {
    __m512 c[ND][QV];
#pragma GCC unroll 16
    for (int x = 0; x < ND * QV; ++x)
        c[x / QV][x % QV] = _mm512_mul_ps(_mm512_load_ps(acc + (d0 * QV + x) * kLanes), alpha[x % QV]);
    const float * vr = v + d0;
    for (int64_t j = 0; j < n; ++j, vr += ldv) {
        __m512 pj[QV];
#pragma GCC unroll 2
        for (int u = 0; u < QV; ++u) pj[u] = _mm512_load_ps(p + (j * QV + u) * kLanes);
#pragma GCC unroll 8
        for (int e = 0; e < ND; ++e) {
            const __m512 ve = _mm512_set1_ps(vr[e]);
#pragma GCC unroll 2
            for (int u = 0; u < QV; ++u) c[e][u] = _mm512_fmadd_ps(pj[u], ve, c[e][u]);
        }
    }
#pragma GCC unroll 16
    for (int x = 0; x < ND * QV; ++x) _mm512_store_ps(acc + (d0 * QV + x) * kLanes, c[x / QV][x % QV]);
}

// n rows of D bf16 → f32 rows of stride Dp (a multiple of 16).
inline void widen_rows(const uint16_t * src, int64_t ld, int64_t n, int64_t D, int64_t Dp, float * dst) {
    for (int64_t j = 0; j < n; ++j)
        for (int64_t d = 0; d < D; d += 16) _mm512_store_ps(dst + j * Dp + d, load_kv(src + j * ld + d, tail16(D - d)));
}

// Query rows [r0, r1) (at most L = 16·QV) of KV head g; row r is query t = r / hpg, head
// g·hpg + r % hpg; lane i of vector u holds row r0 + 16·u + i. mem: tile_floats<KV, QV>(D) floats.
template <typename KV, int QV>
void attend_tile(const AttentionArgs & a, int64_t g, int64_t r0, int64_t r1, float * mem) {
    constexpr int L = kLanes * QV;
    const int64_t D = a.D, Dp = round_up(D, 16), hpg = a.H / a.G, nl = r1 - r0;
    float *qt = mem, *acc = qt + Dp * L, *sc = acc + Dp * L, *kw = sc + kKeyBlock * L, *vw = kw + kKeyBlock * Dp;
    float * yrow[L]            = {};
    alignas(64) int32_t lim[L] = {};
    for (int64_t i = 0; i < L; ++i) {
        if (i >= nl) {
            lim[i] = -1;  // an empty lane sees no key
            for (int64_t d = 0; d < D; ++d) qt[d * L + i] = 0.0f;
            continue;
        }
        const int64_t t = (r0 + i) / hpg, h = g * hpg + (r0 + i) % hpg;
        const float * q = a.q + t * a.ldq + h * D;
        for (int64_t d = 0; d < D; ++d) qt[d * L + i] = q[d] * a.scale;
        lim[i]  = static_cast<int32_t>((a.causal ? std::min(a.S, a.pos0 + t + 1) : a.S) - 1);
        yrow[i] = a.y + t * a.ldy + h * D;
    }
    for (int64_t d = 0; d < D * QV; ++d) _mm512_store_ps(acc + d * kLanes, _mm512_setzero_ps());
    __m512i limv[QV];
    __m512 m[QV], l[QV], alpha[QV];
    for (int u = 0; u < QV; ++u) {
        limv[u] = _mm512_load_si512(lim + u * kLanes);
        m[u] = _mm512_set1_ps(-FLT_MAX), l[u] = _mm512_setzero_ps();
    }
    // The last row of the tile sees the most keys.
    const int64_t n_keys = lim[nl - 1] + 1;
    for (int64_t s0 = 0; s0 < n_keys; s0 += kKeyBlock) {
        const int64_t nb = std::min<int64_t>(kKeyBlock, n_keys - s0);
        const float *kb, *vb;
        int64_t ldk, ldv;
        if constexpr (sizeof(KV) == 2) {
            widen_rows(static_cast<const uint16_t *>(a.k) + s0 * a.ldk + g * D, a.ldk, nb, D, Dp, kw);
            widen_rows(static_cast<const uint16_t *>(a.v) + s0 * a.ldv + g * D, a.ldv, nb, D, Dp, vw);
            kb = kw, vb = vw, ldk = Dp, ldv = Dp;
        } else {
            kb = static_cast<const float *>(a.k) + s0 * a.ldk + g * D, ldk = a.ldk;
            vb = static_cast<const float *>(a.v) + s0 * a.ldv + g * D, ldv = a.ldv;
        }
        scores8<QV>(qt, kb, ldk, nb, D, sc);
        if (nb > 8) scores8<QV>(qt, kb + 8 * ldk, ldk, nb - 8, D, sc + 8 * L);

        // Online softmax, each lane its own query.
        for (int u = 0; u < QV; ++u) {
            float * scu = sc + u * kLanes;
            __mmask16 vis[kKeyBlock];
            __m512 m_new = m[u];
            for (int64_t j = 0; j < nb; ++j) {
                vis[j] = _mm512_cmp_epi32_mask(_mm512_set1_epi32(static_cast<int32_t>(s0 + j)), limv[u], _MM_CMPINT_LE);
                m_new  = _mm512_mask_max_ps(m_new, vis[j], m_new, _mm512_load_ps(scu + j * L));
            }
            alpha[u] = exp512(_mm512_sub_ps(m[u], m_new));
            l[u]     = _mm512_mul_ps(l[u], alpha[u]);
            for (int64_t j = 0; j < nb; ++j) {
                const __m512 p = _mm512_maskz_mov_ps(vis[j], exp512(_mm512_sub_ps(_mm512_load_ps(scu + j * L), m_new)));
                l[u]           = _mm512_add_ps(l[u], p);
                _mm512_store_ps(scu + j * L, p);
            }
            m[u] = m_new;
        }
        int64_t d = 0;
        for (; d + 8 <= D; d += 8) accumulate<8, QV>(acc, alpha, sc, vb, ldv, nb, d);
        for (; d < D; ++d) accumulate<1, QV>(acc, alpha, sc, vb, ldv, nb, d);
    }
    // y = acc / l, 0 for lanes that saw no key.
    alignas(64) float inv[L];
    for (int u = 0; u < QV; ++u)
        _mm512_store_ps(inv + u * kLanes, _mm512_maskz_div_ps(_mm512_cmp_ps_mask(l[u], _mm512_setzero_ps(), _CMP_GT_OQ),
                                                              _mm512_set1_ps(1.0f), l[u]));
    for (int64_t i = 0; i < nl; ++i)
        for (int64_t d = 0; d < D; ++d) yrow[i][d] = acc[d * L + i] * inv[i];
}

// ---- row path ---------------------------------------------------------------------------------

// y[t, h] for one query row and one head. acc: D rounded up to 64 floats of scratch
// (64-byte aligned).
template <typename KV>
void attend_row(const AttentionArgs & a, int64_t t, int64_t h, float * acc) {
    const KV * keys = static_cast<const KV *>(a.k);
    const KV * vals = static_cast<const KV *>(a.v);
    const int64_t D = a.D, g = h / (a.H / a.G);
    const int64_t ldk = a.ldk, ldv = a.ldv;  // locals: the vector stores below may alias a
    const float * q      = a.q + t * a.ldq + h * D;
    float * y            = a.y + t * a.ldy + h * D;
    const int64_t n_keys = a.causal ? std::min(a.S, a.pos0 + t + 1) : a.S;
    if (n_keys <= 0) {
        for (int64_t d = 0; d < D; d += 16) _mm512_mask_storeu_ps(y + d, tail16(D - d), _mm512_setzero_ps());
        return;
    }
    for (int64_t d = 0; d < round_up(D, 64); d += 16) _mm512_store_ps(acc + d, _mm512_setzero_ps());
    float m = -INFINITY, l = 0.0f;
    const __m512 scale             = _mm512_set1_ps(a.scale);
    alignas(64) float p[kKeyBlock] = {};

    for (int64_t s0 = 0; s0 < n_keys; s0 += kKeyBlock) {
        const int64_t nb = std::min<int64_t>(kKeyBlock, n_keys - s0);
        // Scores of the block, four keys at a time (keys past the end repeat the last one and are
        // masked out below).
        for (int64_t j0 = 0; j0 < nb; j0 += 4) {
            const KV * kr[4];
            for (int j = 0; j < 4; ++j) kr[j] = keys + std::min(s0 + j0 + j, n_keys - 1) * ldk + g * D;
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

        // acc = acc·α + Σ_j p_j · v_j, 64 columns at a time (four independent FMA chains).
        const __m512 va = _mm512_set1_ps(alpha);
        for (int64_t d0 = 0; d0 < D; d0 += 64) {
            __mmask16 mk[4];
            __m512 av[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
                mk[u] = D - d0 > 16 * u ? tail16(D - d0 - 16 * u) : __mmask16(0);
                av[u] = _mm512_mul_ps(_mm512_load_ps(acc + d0 + 16 * u), va);
            }
            const KV * vr = vals + s0 * ldv + g * D + d0;
            for (int64_t j = 0; j < nb; ++j, vr += ldv) {
                const __m512 pj = _mm512_set1_ps(p[j]);
#pragma GCC unroll 4
                for (int u = 0; u < 4; ++u) av[u] = _mm512_fmadd_ps(pj, load_kv(vr + 16 * u, mk[u]), av[u]);
            }
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) _mm512_store_ps(acc + d0 + 16 * u, av[u]);
        }
    }
    const __m512 inv = _mm512_set1_ps(1.0f / l);
    for (int64_t d = 0; d < D; d += 16)
        _mm512_mask_storeu_ps(y + d, tail16(D - d), _mm512_mul_ps(_mm512_load_ps(acc + d), inv));
}

// The tiled path: work items (KV head, block of 16·QV query rows).
template <typename KV, int QV>
size_t tile_floats(int64_t D) {
    const int64_t Dp = round_up(D, 16);
    return (2 * Dp + kKeyBlock) * kLanes * QV + (sizeof(KV) == 2 ? 2 * kKeyBlock * Dp : 0);
}

template <typename KV, int QV>
void tiles(const AttentionArgs & a) {
    constexpr int L    = kLanes * QV;
    const int64_t rows = a.T * (a.H / a.G), n_tiles = ceil_div(rows, L);
    const int64_t work = std::max<int64_t>(1, a.S * a.D) * L;  // multiply-adds of a tile, about
    ThreadPool::global().parallel_for(
        a.G * n_tiles,
        [&](int64_t i0, int64_t i1) {
            Scratch mem(tile_floats<KV, QV>(a.D) * sizeof(float));
            for (int64_t i = i0; i < i1; ++i) {
                const int64_t g = i / n_tiles, j = i % n_tiles;
                const int64_t b = j % 2 == 0 ? j / 2 : n_tiles - 1 - j / 2;  // 0, n−1, 1, n−2, …
                attend_tile<KV, QV>(a, g, b * L, std::min(rows, (b + 1) * L), mem.as<float>());
            }
        },
        std::max<int64_t>(1, (int64_t{1} << 14) / work));
}

template <typename KV>
void attention_typed(const AttentionArgs & a) {
    const int64_t D = a.D, hpg = a.H / a.G, rows = a.T * hpg;
    const int64_t work = std::max<int64_t>(1, a.S * D);  // multiply-adds of one query row, about
    if (rows < kMinRows) {
        ThreadPool::global().parallel_for(
            a.T * a.H,
            [&](int64_t i0, int64_t i1) {
                Scratch acc(static_cast<size_t>(round_up(D, 64)) * sizeof(float));
                for (int64_t i = i0; i < i1; ++i) attend_row<KV>(a, i / a.H, i % a.H, acc.as<float>());
            },
            std::max<int64_t>(1, (int64_t{1} << 14) / work));
        return;
    }
    // 32-row tiles halve the broadcast loads per FMA (each k or v element feeds two vectors).
    if (rows >= 2 * kLanes)
        tiles<KV, 2>(a);
    else
        tiles<KV, 1>(a);
}

}  // namespace

void attention_fwd_f32_avx512(const AttentionArgs & a) {
    if (a.T <= 0 || a.H <= 0) return;
    if (a.kv_dtype == DType::BF16)
        attention_typed<uint16_t>(a);
    else
        attention_typed<float>(a);
}

}  // namespace m4::kern
