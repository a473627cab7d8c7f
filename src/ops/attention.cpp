// attention — fused scaled dot-product attention for one sequence, with grouped key/value heads.
//
//     for query t, head h (key/value head g = h / (H/G)):
//         visible keys  s ∈ [0, S)                    (not causal)
//                       s ∈ [0, min(S, pos0 + t + 1))  (causal: query t sits at position pos0 + t)
//         score[s]  = (Σ_d q[t, h·D + d] · k[s, g·D + d]) · scale
//         p[s]      = exp(score[s] − max_s score) / Σ_s exp(score[s] − max_s score)
//         y[t, h·D + d] = Σ_s p[s] · v[s, g·D + d]
//
// T query tokens, S key tokens (the KV cache while decoding: T = 1, pos0 = S − 1), H query heads,
// G key/value heads (H % G == 0; G = H is plain multi-head, G = 1 multi-query), D head dim.
// q: (T, H·D) ldq   k, v: (S, G·D) ldk, ldv   y: (T, H·D) ldy. A query with no visible key
// (S = 0) gets y = 0. Scores, exponentials and sums are f32; the reference materialises the
// scores of one query row, the kernels do not (online softmax). Keys and values may be stored as
// bf16 (a.kv_dtype, a compact KV cache): each element is widened to f32 exactly on load.
//
// Backward (accumulating; recomputes p from q and k). Per query t, head h, with g = dy[t, h·D:]:
//     dv[s, g·D + d] += p[s] · g[d]
//     dp[s] = Σ_d g[d] · v[s, g·D + d]
//     ds[s] = p[s] · (dp[s] − Σ_j p[j]·dp[j])
//     dq[t, h·D + d] += scale · Σ_s ds[s] · k[s, g·D + d]
//     dk[s, g·D + d] += scale · ds[s] · q[t, h·D + d]
// dy: (T, H·D) with row stride a.ldy; dq, dk, dv with the strides of q, k, v (a.ldq, a.ldk, a.ldv).
// Query heads that share a key/value head add into the same rows of dk and dv.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/status.h"
#include "ops/ops.h"

namespace m4::ops {
namespace {

// Keys and values widened to f32 on load.
inline float widen(float x) {
    return x;
}
inline float widen(uint16_t h) {
    return bf16_to_f32(h);
}

// q: (T, H·D)  k: (S, G·D)  v: (S, G·D)  y: (T, H·D); KV is float or uint16_t (bf16)
template <typename KV>
void attention_forward_typed(const kern::AttentionArgs & a) {
    const KV * k        = static_cast<const KV *>(a.k);
    const KV * v        = static_cast<const KV *>(a.v);
    const int64_t group = a.H / a.G;
    std::vector<float> p(static_cast<size_t>(std::max<int64_t>(a.S, 1)));
    for (int64_t t = 0; t < a.T; ++t) {
        const int64_t n_keys = a.causal ? std::min(a.S, a.pos0 + t + 1) : a.S;
        for (int64_t h = 0; h < a.H; ++h) {
            const int64_t g  = h / group;
            const float * qr = a.q + t * a.ldq + h * a.D;
            float * yr       = a.y + t * a.ldy + h * a.D;
            for (int64_t d = 0; d < a.D; ++d) yr[d] = 0.0f;
            if (n_keys <= 0) continue;
            float mx = 0.0f;
            for (int64_t s = 0; s < n_keys; ++s) {
                const int64_t kr = s * a.ldk + g * a.D;
                float dot        = 0.0f;
                for (int64_t d = 0; d < a.D; ++d) dot += qr[d] * widen(k[kr + d]);
                p[s] = dot * a.scale;
                mx   = s == 0 ? p[s] : std::max(mx, p[s]);
            }
            float sum = 0.0f;
            for (int64_t s = 0; s < n_keys; ++s) {
                p[s] = std::exp(p[s] - mx);
                sum += p[s];
            }
            const float inv = 1.0f / sum;
            for (int64_t s = 0; s < n_keys; ++s) {
                const int64_t vr = s * a.ldv + g * a.D;
                const float ps   = p[s] * inv;
                for (int64_t d = 0; d < a.D; ++d) yr[d] += ps * widen(v[vr + d]);
            }
        }
    }
}

}  // namespace

void attention_forward_ref(const kern::AttentionArgs & a) {
    M4_CHECK(a.G > 0 && a.H % a.G == 0);
    M4_CHECK_MSG(a.kv_dtype == DType::F32 || a.kv_dtype == DType::BF16,
                 "attention: keys and values must be f32 or bf16");
    if (a.kv_dtype == DType::BF16)
        attention_forward_typed<uint16_t>(a);
    else
        attention_forward_typed<float>(a);
}

// dy: (T, H·D)  dq: (T, H·D)  dk: (S, G·D)  dv: (S, G·D); any of dq, dk, dv may be null
void attention_backward_ref(const kern::AttentionArgs & a, const float * dy, float * dq, float * dk, float * dv) {
    M4_CHECK(a.G > 0 && a.H % a.G == 0);
    M4_CHECK_MSG(a.kv_dtype == DType::F32, "attention backward: training keeps keys and values in f32");
    const float * k_f32 = static_cast<const float *>(a.k);
    const float * v_f32 = static_cast<const float *>(a.v);
    const int64_t group = a.H / a.G;
    const size_t n      = static_cast<size_t>(std::max<int64_t>(a.S, 1));
    std::vector<float> p(n), dp(n);
    for (int64_t t = 0; t < a.T; ++t) {
        const int64_t n_keys = a.causal ? std::min(a.S, a.pos0 + t + 1) : a.S;
        if (n_keys <= 0) continue;
        for (int64_t h = 0; h < a.H; ++h) {
            const int64_t g  = h / group;
            const float * qr = a.q + t * a.ldq + h * a.D;
            const float * gr = dy + t * a.ldy + h * a.D;
            float mx         = 0.0f;
            for (int64_t s = 0; s < n_keys; ++s) {
                const float * kr = k_f32 + s * a.ldk + g * a.D;
                float dot        = 0.0f;
                for (int64_t d = 0; d < a.D; ++d) dot += qr[d] * kr[d];
                p[s] = dot * a.scale;
                mx   = s == 0 ? p[s] : std::max(mx, p[s]);
            }
            float sum = 0.0f;
            for (int64_t s = 0; s < n_keys; ++s) {
                p[s] = std::exp(p[s] - mx);
                sum += p[s];
            }
            float pdp = 0.0f;  // Σ_s p[s]·dp[s]
            for (int64_t s = 0; s < n_keys; ++s) {
                p[s] /= sum;
                const float * vr = v_f32 + s * a.ldv + g * a.D;
                float dot        = 0.0f;
                for (int64_t d = 0; d < a.D; ++d) dot += gr[d] * vr[d];
                dp[s] = dot;
                pdp += p[s] * dot;
                if (dv)
                    for (int64_t d = 0; d < a.D; ++d) dv[s * a.ldv + g * a.D + d] += p[s] * gr[d];
            }
            for (int64_t s = 0; s < n_keys; ++s) {
                const float ds   = p[s] * (dp[s] - pdp) * a.scale;
                const float * kr = k_f32 + s * a.ldk + g * a.D;
                if (dq)
                    for (int64_t d = 0; d < a.D; ++d) dq[t * a.ldq + h * a.D + d] += ds * kr[d];
                if (dk)
                    for (int64_t d = 0; d < a.D; ++d) dk[s * a.ldk + g * a.D + d] += ds * qr[d];
            }
        }
    }
}

}  // namespace m4::ops
