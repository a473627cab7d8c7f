// attention_bwd_f32_avx512 — the backward of scaled dot-product attention (training).
// Reference and definition: ops::attention_backward_ref (src/ops/attention.cpp). Same formulas,
// lanes along D (tail16 masks), four keys' dot products reduced at once:
//     q: (T, H·D) ldq   k, v: (S, G·D) ldk, ldv (f32 only)   dy: (T, H·D) ldy
//     dq, dk, dv laid out like q, k, v; all three ACCUMULATE (+=), a null one is skipped.
// Per query t and head h (KV head g = h / (H/G)), over the keys s it sees (causal: s ≤ pos0 + t):
//     p[s]  = softmax_s(q_t·k_s · scale)              dp[s] = dy_t·v_s
//     dv_s += p[s]·dy_t                                ds[s] = p[s]·(dp[s] − Σ_s' p[s']·dp[s'])·scale
//     dq_t += Σ_s ds[s]·k_s                            dk_s += ds[s]·q_t
// The softmax is recomputed from q and k (nothing of the forward is stored), exp by exp512 (about
// 2 ulp), so results agree with the reference to f32 rounding of the sums, not bit for bit.
// Single-threaded: dk and dv of a KV head collect every query's share, and the training graph
// already runs one sequence (or sample) per pool thread.
#include "kernels/avx512/vec_math.h"  // first

#include <float.h>  // FLT_MAX

#include <algorithm>

#include "base/arena.h"
#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

using namespace avx512;

// Σ_d a[d]·b_j[d] for four rows b_j (D values each, chunks of 16 with masks).
inline __m128 dot4(const float * a, const float * b0, const float * b1, const float * b2, const float * b3, int64_t D) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t d = 0; d < D; d += 16) {
        const __mmask16 mk = tail16(D - d);
        const __m512 x     = _mm512_maskz_loadu_ps(mk, a + d);
        s0                 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, b0 + d), s0);
        s1                 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, b1 + d), s1);
        s2                 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, b2 + d), s2);
        s3                 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, b3 + d), s3);
    }
    return reduce4(s0, s1, s2, s3);
}

// y[0:D] += c·x[0:D]
inline void axpy(float * y, float c, const float * x, int64_t D) {
    const __m512 cv = _mm512_set1_ps(c);
    for (int64_t d = 0; d < D; d += 16) {
        const __mmask16 mk = tail16(D - d);
        _mm512_mask_storeu_ps(y + d, mk,
                              _mm512_fmadd_ps(cv, _mm512_maskz_loadu_ps(mk, x + d), _mm512_maskz_loadu_ps(mk, y + d)));
    }
}

// A per-thread buffer of floats that only grows. Not a std::vector: a template instantiated in a
// translation unit compiled with AVX-512 flags could be the copy the linker keeps for the whole
// program (the same reason matmul_packed.h avoids std::atomic).
struct GrowBuffer {
    float * p   = nullptr;
    size_t size = 0;
    float * get(size_t n) {
        if (n > size) {
            aligned_free(p);
            p    = static_cast<float *>(aligned_alloc_bytes(n * sizeof(float)));
            size = n;
        }
        return p;
    }
    ~GrowBuffer() { aligned_free(p); }
};

}  // namespace

void attention_bwd_f32_avx512(const AttentionArgs & a, const float * dy, float * dq, float * dk, float * dv) {
    const float * k     = static_cast<const float *>(a.k);
    const float * v     = static_cast<const float *>(a.v);
    const int64_t group = a.H / a.G, D = a.D;
    // Per-thread buffers of the scores, reused across calls (no allocation per step); 4 floats of
    // slack for the last group of four keys.
    thread_local GrowBuffer p_buf, dp_buf;
    const size_t n = static_cast<size_t>(std::max<int64_t>(a.S, 1)) + 4;
    float * p      = p_buf.get(n);
    float * dp     = dp_buf.get(n);
    for (int64_t t = 0; t < a.T; ++t) {
        const int64_t n_keys = a.causal ? std::min(a.S, a.pos0 + t + 1) : a.S;
        if (n_keys <= 0) continue;
        for (int64_t h = 0; h < a.H; ++h) {
            const int64_t g  = h / group;
            const float * qr = a.q + t * a.ldq + h * D;
            const float * gr = dy + t * a.ldy + h * D;
            const float * kg = k + g * D;
            const float * vg = v + g * D;
            // Scores and dp, four keys at a time (rows past the last repeat it; their sums unused).
            for (int64_t s = 0; s < n_keys; s += 4) {
                const int64_t s1 = std::min(s + 1, n_keys - 1), s2 = std::min(s + 2, n_keys - 1),
                              s3 = std::min(s + 3, n_keys - 1);
                _mm_storeu_ps(p + s, dot4(qr, kg + s * a.ldk, kg + s1 * a.ldk, kg + s2 * a.ldk, kg + s3 * a.ldk, D));
                _mm_storeu_ps(dp + s, dot4(gr, vg + s * a.ldv, vg + s1 * a.ldv, vg + s2 * a.ldv, vg + s3 * a.ldv, D));
            }
            // Softmax over the visible keys, in vectors of 16.
            const __m512 scale = _mm512_set1_ps(a.scale);
            __m512 mxv         = _mm512_set1_ps(-FLT_MAX);
            for (int64_t s = 0; s < n_keys; s += 16) {
                const __mmask16 mk = tail16(n_keys - s);
                const __m512 sc    = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + s), scale);
                _mm512_mask_storeu_ps(p + s, mk, sc);
                mxv = _mm512_mask_max_ps(mxv, mk, mxv, sc);
            }
            const __m512 mx = _mm512_set1_ps(hmax(mxv));
            __m512 sumv     = _mm512_setzero_ps();
            for (int64_t s = 0; s < n_keys; s += 16) {
                const __mmask16 mk = tail16(n_keys - s);
                const __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, p + s), mx)));
                _mm512_mask_storeu_ps(p + s, mk, e);
                sumv = _mm512_add_ps(sumv, e);
            }
            const __m512 inv = _mm512_set1_ps(1.0f / hsum(sumv));
            __m512 pdpv      = _mm512_setzero_ps();
            for (int64_t s = 0; s < n_keys; s += 16) {
                const __mmask16 mk = tail16(n_keys - s);
                const __m512 pv    = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + s), inv);
                _mm512_mask_storeu_ps(p + s, mk, pv);
                pdpv = _mm512_fmadd_ps(pv, _mm512_maskz_loadu_ps(mk, dp + s), pdpv);
            }
            const float pdp = hsum(pdpv);
            float * dqr     = dq ? dq + t * a.ldq + h * D : nullptr;
            for (int64_t s = 0; s < n_keys; ++s) {
                const float ds = p[s] * (dp[s] - pdp) * a.scale;
                if (dv) axpy(dv + s * a.ldv + g * D, p[s], gr, D);
                if (dqr) axpy(dqr, ds, kg + s * a.ldk, D);
                if (dk) axpy(dk + s * a.ldk + g * D, ds, qr, D);
            }
        }
    }
}

}  // namespace m4::kern
