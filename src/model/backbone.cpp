// LLaMA-style decoder over a packed batch of sequences (N rows in all, width C, H query heads,
// G kv heads, D = C / H, F ffn):
//   per layer: h = RMS(x)·attn_norm; q,k,v = h·Wᵀ; RoPE(q, k); x += o(CausalAttn(q, cache k, cache v))
//              h = RMS(x)·ffn_norm;  x += down(silu(gate h) ⊙ up h)
//   hn = RMS(x)·norm
#include <cmath>
#include <cstring>

#include "model/encoder.h"
#include "ops/ops.h"

namespace m4::model {

void KvCache::init(const BackboneConfig & c, int64_t cap) {
    capacity = cap;
    len      = 0;
    kv_width = c.kv_heads * c.head_dim();
    k.assign(static_cast<size_t>(c.layers * cap * kv_width), 0.0f);
    v.assign(k.size(), 0.0f);
}

void backbone_forward(const BackboneConfig & c, const BackboneWeights & w, float * x, int64_t N,
                      const std::vector<SequenceSlice> & seqs, float * hn) {
    const int64_t C = c.width, H = c.heads, G = c.kv_heads, D = c.head_dim(), F = c.ffn, KV = G * D;
    std::vector<RowSegment> seg;
    for (const auto & s : seqs) seg.push_back({s.row_begin, s.row_begin + s.n, s.adapter});
    std::vector<int32_t> pos(N);
    for (const auto & s : seqs) {
        M4_CHECK_MSG(s.cache->len + s.n <= s.cache->capacity, "KV cache overflow");
        for (int64_t i = 0; i < s.n; ++i) pos[s.row_begin + i] = static_cast<int32_t>(s.cache->len + i);
    }
    std::vector<float> h(N * C), q(N * H * D), k(N * KV), v(N * KV), a(N * H * D), g(N * F), u(N * F);
    for (int64_t l = 0; l < c.layers; ++l) {
        const auto & L = w.layers[l];
        ops::rmsnorm(x, L.attn_norm, h.data(), N, C, c.norm_eps);
        linear(L.q, h.data(), N, q.data(), seg);
        linear(L.k, h.data(), N, k.data(), seg);
        linear(L.v, h.data(), N, v.data(), seg);
        ops::rope(q.data(), H * D, N, H, D, pos.data(), c.rope_theta);
        ops::rope(k.data(), KV, N, G, D, pos.data(), c.rope_theta);
        for (const auto & s : seqs) {
            KvCache * kv = s.cache;
            std::memcpy(kv->k_at(l, kv->len), k.data() + s.row_begin * KV, static_cast<size_t>(s.n * KV) * 4);
            std::memcpy(kv->v_at(l, kv->len), v.data() + s.row_begin * KV, static_cast<size_t>(s.n * KV) * 4);
            kern::AttentionArgs args;
            args.q = q.data() + s.row_begin * H * D, args.k = kv->k_at(l, 0), args.v = kv->v_at(l, 0);
            args.y   = a.data() + s.row_begin * H * D;
            args.ldq = H * D, args.ldk = KV, args.ldv = KV, args.ldy = H * D;
            args.T = s.n, args.S = kv->len + s.n, args.H = H, args.G = G, args.D = D;
            args.causal = true;
            args.pos0   = kv->len;
            args.scale  = 1.0f / std::sqrt(float(D));
            ops::attention(args);
        }
        linear(L.o, a.data(), N, h.data(), seg);
        ops::add(x, h.data(), x, N * C, N * C);
        ops::rmsnorm(x, L.ffn_norm, h.data(), N, C, c.norm_eps);
        linear(L.gate, h.data(), N, g.data(), seg);
        linear(L.up, h.data(), N, u.data(), seg);
        ops::silu(g.data(), g.data(), N * F);
        ops::mul(g.data(), u.data(), g.data(), N * F, N * F);
        linear(L.down, g.data(), N, h.data(), seg);
        ops::add(x, h.data(), x, N * C, N * C);
    }
    for (const auto & s : seqs) s.cache->len += s.n;
    ops::rmsnorm(x, w.norm, hn, N, C, c.norm_eps);
}

}  // namespace m4::model
