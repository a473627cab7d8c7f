// LLaMA-style decoder over a packed batch of sequences (N rows in all, width C, H query heads,
// G kv heads, D = C / H, F ffn):
//   per layer: h = RMS(x)·attn_norm; q,k,v = h·Wᵀ; RoPE(q, k); x += o(CausalAttn(q, cache k, cache v))
//              h = RMS(x)·ffn_norm;  x += down(silu(gate h) ⊙ up h)
//   hn = RMS(x)·norm
#include <cmath>
#include <cstring>

#include "base/arena.h"
#include "base/thread_pool.h"
#include "model/encoder.h"
#include "ops/ops.h"

namespace m4::model {

void KvCache::init(const BackboneConfig & c, int64_t cap, DType kv_dtype) {
    M4_CHECK_MSG(kv_dtype == DType::F32 || kv_dtype == DType::BF16, "KV cache dtype must be f32 or bf16");
    capacity = cap;
    len      = 0;
    layers   = c.layers;
    kv_width = c.kv_heads * c.head_dim();
    dtype    = kv_dtype;
    k        = make_aligned_buffer(bytes() / 2);
    v        = make_aligned_buffer(bytes() / 2);
}

void KvCache::append(int64_t layer, const float * keys, const float * values, int64_t n) {
    M4_CHECK_MSG(len + n <= capacity, "KV cache overflow");
    const int64_t count = n * kv_width;
    if (dtype == DType::F32) {
        std::memcpy(k_at(layer, len), keys, static_cast<size_t>(count) * 4);
        std::memcpy(v_at(layer, len), values, static_cast<size_t>(count) * 4);
        return;
    }
    auto * kb = static_cast<uint16_t *>(k_at(layer, len));
    auto * vb = static_cast<uint16_t *>(v_at(layer, len));
    for (int64_t i = 0; i < count; ++i) kb[i] = f32_to_bf16(keys[i]), vb[i] = f32_to_bf16(values[i]);
}

void backbone_forward(const BackboneConfig & c, const BackboneWeights & w, float * x, int64_t N,
                      const std::vector<SequenceSlice> & seqs, float * hn) {
    const int64_t C = c.width, H = c.heads, G = c.kv_heads, D = c.head_dim(), F = c.ffn, KV = G * D;
    std::vector<RowSegment> seg;
    for (const auto & s : seqs) seg.push_back({s.row_begin, s.row_begin + s.n, s.adapter});
    std::vector<int32_t> pos(N);
    for (const auto & s : seqs) {
        const int64_t start = s.cache ? s.cache->len : 0;
        M4_CHECK_MSG(!s.cache || start + s.n <= s.cache->capacity, "KV cache overflow");
        for (int64_t i = 0; i < s.n; ++i) pos[s.row_begin + i] = static_cast<int32_t>(start + i);
    }
    ArenaScope scope;  // activations live in the thread's arena for the duration of this call
    float *h = scope.alloc<float>(N * C), *q = scope.alloc<float>(N * H * D), *k = scope.alloc<float>(N * KV);
    float *v = scope.alloc<float>(N * KV), *a = scope.alloc<float>(N * H * D), *g = scope.alloc<float>(N * F);
    float * u = scope.alloc<float>(N * F);
    for (int64_t l = 0; l < c.layers; ++l) {
        const auto & L = w.layers[l];
        ops::rmsnorm(x, L.attn_norm, h, N, C, c.norm_eps);
        linear(L.q, h, N, q, seg);
        linear(L.k, h, N, k, seg);
        linear(L.v, h, N, v, seg);
        ops::rope(q, H * D, N, H, D, pos.data(), c.rope_theta);
        ops::rope(k, KV, N, G, D, pos.data(), c.rope_theta);
        // Attention per sequence, all sequences in one parallel loop: each call then runs on one
        // thread (nested loops run inline), instead of waking the pool once per sequence.
        ThreadPool::global().parallel_for(static_cast<int64_t>(seqs.size()), [&](int64_t sb, int64_t se) {
            for (int64_t si = sb; si < se; ++si) {
                const auto & s = seqs[si];
                KvCache * kv   = s.cache;
                kern::AttentionArgs args;
                args.q = q + s.row_begin * H * D, args.y = a + s.row_begin * H * D;
                args.ldq = H * D, args.ldy = H * D, args.ldk = KV, args.ldv = KV;
                args.T = s.n, args.H = H, args.G = G, args.D = D;
                if (kv) {
                    kv->append(l, k + s.row_begin * KV, v + s.row_begin * KV, s.n);
                    args.k = kv->k_at(l, 0), args.v = kv->v_at(l, 0), args.kv_dtype = kv->dtype;
                    args.S = kv->len + s.n, args.pos0 = kv->len;
                } else {
                    args.k = k + s.row_begin * KV, args.v = v + s.row_begin * KV;
                    args.S = s.n, args.pos0 = 0;
                }
                args.causal = true;
                args.scale  = 1.0f / std::sqrt(float(D));
                ops::attention(args);
            }
        });
        linear(L.o, a, N, h, seg);
        ops::add(x, h, x, N * C, N * C);
        ops::rmsnorm(x, L.ffn_norm, h, N, C, c.norm_eps);
        linear(L.gate, h, N, g, seg);
        linear(L.up, h, N, u, seg);
        ops::silu(g, g, N * F);
        ops::mul(g, u, g, N * F, N * F);
        linear(L.down, g, N, h, seg);
        ops::add(x, h, x, N * C, N * C);
    }
    for (const auto & s : seqs)
        if (s.cache) s.cache->len += s.n;
    ops::rmsnorm(x, w.norm, hn, N, C, c.norm_eps);
}

}  // namespace m4::model
