// Backbone training graph (docs/architecture.md, "Backbone"), forward as in model/backbone.cpp:
//     per layer:  h1 = RMS(x)·attn_norm;  q, k, v = h1·Wᵀ;  RoPE(q), RoPE(k)
//                 x_mid = x + o(CausalAttn(q, k, v))
//                 h2 = RMS(x_mid)·ffn_norm;  x = x_mid + down(silu(gate(h2)) ⊙ up(h2))
//     hn = RMS(x)·norm
// A packed batch of sequences (N rows), each at positions 0 … n − 1 (no KV cache: a training
// step sees whole sequences). C width, H query heads, G kv heads, D = C / H, F FFN width.
#include <cmath>

#include "base/thread_pool.h"
#include "ops/ops.h"
#include "train/graph.h"

namespace m4::train {
namespace {

using model::BackboneConfig;
using model::BackboneLayer;
using model::RowSegment;

void zeros(Buf & b, int64_t n) {
    b.assign(static_cast<size_t>(n), 0.0f);
}

kern::AttentionArgs seq_attention(const BackboneConfig & c, const Sequence & s, const float * q, const float * k,
                                  const float * v, float * y) {
    const int64_t H = c.heads, G = c.kv_heads, D = c.head_dim(), KV = G * D;
    kern::AttentionArgs a;
    a.q = q + s.row_begin * H * D, a.k = k + s.row_begin * KV, a.v = v + s.row_begin * KV;
    a.y   = y + s.row_begin * H * D;
    a.ldq = H * D, a.ldk = KV, a.ldv = KV, a.ldy = H * D;
    a.T = s.n, a.S = s.n, a.H = H, a.G = G, a.D = D;
    a.causal = true;
    a.pos0   = 0;
    a.scale  = 1.0f / std::sqrt(float(D));
    return a;
}

void layer_forward(const BackboneConfig & c, const BackboneLayer & L, const std::vector<RowSegment> & seg,
                   const BackboneActs & acts, const float * x_in, BackboneLayerActs & A, float * x_out) {
    const int64_t N = acts.rows(), C = c.width, H = c.heads, G = c.kv_heads, D = c.head_dim(), F = c.ffn;
    const int64_t KV = G * D;
    for (Buf * b : {&A.h1, &A.x_mid, &A.h2}) b->resize(static_cast<size_t>(N * C));
    A.q.resize(static_cast<size_t>(N * H * D)), A.a.resize(static_cast<size_t>(N * H * D));
    A.k.resize(static_cast<size_t>(N * KV)), A.v.resize(static_cast<size_t>(N * KV));
    for (Buf * b : {&A.gp, &A.u, &A.m}) b->resize(static_cast<size_t>(N * F));
    // Scratch kept across layers and steps (no allocation per step once sizes settle).
    thread_local Buf tmp;
    tmp.resize(static_cast<size_t>(N * C));
    ops::rmsnorm(x_in, L.attn_norm, A.h1.data(), N, C, c.norm_eps);
    model::linear(L.q, A.h1.data(), N, A.q.data(), seg);
    model::linear(L.k, A.h1.data(), N, A.k.data(), seg);
    model::linear(L.v, A.h1.data(), N, A.v.data(), seg);
    ops::rope(A.q.data(), H * D, N, H, D, acts.pos.data(), c.rope_theta);
    ops::rope(A.k.data(), KV, N, G, D, acts.pos.data(), c.rope_theta);
    ThreadPool::global().parallel_for(static_cast<int64_t>(acts.seqs.size()), [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s)
            ops::attention(seq_attention(c, acts.seqs[s], A.q.data(), A.k.data(), A.v.data(), A.a.data()));
    });
    model::linear(L.o, A.a.data(), N, tmp.data(), seg);
    ops::add(x_in, tmp.data(), A.x_mid.data(), N * C, N * C);
    ops::rmsnorm(A.x_mid.data(), L.ffn_norm, A.h2.data(), N, C, c.norm_eps);
    model::linear(L.gate, A.h2.data(), N, A.gp.data(), seg);
    model::linear(L.up, A.h2.data(), N, A.u.data(), seg);
    ops::silu(A.gp.data(), A.m.data(), N * F);
    ops::mul(A.m.data(), A.u.data(), A.m.data(), N * F, N * F);
    model::linear(L.down, A.m.data(), N, tmp.data(), seg);
    ops::add(A.x_mid.data(), tmp.data(), x_out, N * C, N * C);
}

void layer_backward(const GradSink & sink, const BackboneConfig & c, const BackboneLayer & L, const BackboneActs & acts,
                    const float * x_in, const BackboneLayerActs & A, float * dx) {
    const int64_t N = acts.rows(), C = c.width, H = c.heads, G = c.kv_heads, D = c.head_dim(), F = c.ffn;
    const int64_t KV = G * D;
    // Gradient buffers of one layer, kept across layers and steps (assign reuses their memory).
    // Named through references: inside the pool's lambdas below a thread_local name would mean
    // the worker's own (empty) buffer, not the caller's.
    thread_local Buf tl[10];
    Buf &dm = tl[0], &s = tl[1], &ds = tl[2], &du = tl[3], &dgp = tl[4], &dh = tl[5], &da = tl[6], &dq = tl[7],
        &dk = tl[8], &dv = tl[9];
    zeros(dm, N * F), zeros(ds, N * F), zeros(du, N * F), zeros(dgp, N * F), zeros(dh, N * C);
    zeros(da, N * H * D), zeros(dq, N * H * D), zeros(dk, N * KV), zeros(dv, N * KV);
    s.resize(static_cast<size_t>(N * F));
    // x = x_mid + down(silu(gp) ⊙ u),  gp = gate(h2),  u = up(h2),  h2 = RMS(x_mid)·ffn_norm
    linear_backward(sink, L.down, A.m.data(), dx, N, dm.data());
    ops::silu(A.gp.data(), s.data(), N * F);  // silu(gp), as the forward computed it
    parallel_elementwise(N * F, [&](int64_t b, int64_t e) {
        ops::mul_backward_ref(dm.data() + b, s.data() + b, A.u.data() + b, ds.data() + b, du.data() + b, e - b, e - b);
        ops::silu_backward(ds.data() + b, A.gp.data() + b, dgp.data() + b, e - b);
    });
    linear_backward(sink, L.gate, A.h2.data(), dgp.data(), N, dh.data());
    linear_backward(sink, L.up, A.h2.data(), du.data(), N, dh.data());
    ops::rmsnorm_backward_ref(dh.data(), A.x_mid.data(), L.ffn_norm, dx, sink.grad_of(L.ffn_norm), N, C, c.norm_eps);
    // x_mid = x_in + o(CausalAttn(RoPE(q), RoPE(k), v)),  q, k, v = h1·Wᵀ,  h1 = RMS(x_in)·attn_norm
    linear_backward(sink, L.o, A.a.data(), dx, N, da.data());
    ThreadPool::global().parallel_for(static_cast<int64_t>(acts.seqs.size()), [&](int64_t s0, int64_t s1) {
        for (int64_t i = s0; i < s1; ++i) {
            const Sequence & sq = acts.seqs[i];
            const kern::AttentionArgs args =
                seq_attention(c, sq, A.q.data(), A.k.data(), A.v.data(), const_cast<float *>(A.a.data()));
            ops::attention_backward(args, da.data() + sq.row_begin * H * D, dq.data() + sq.row_begin * H * D,
                                    dk.data() + sq.row_begin * KV, dv.data() + sq.row_begin * KV);
        }
    });
    ops::rope_backward_ref(dq.data(), H * D, N, H, D, acts.pos.data(), c.rope_theta);
    ops::rope_backward_ref(dk.data(), KV, N, G, D, acts.pos.data(), c.rope_theta);
    std::fill(dh.begin(), dh.end(), 0.0f);
    linear_backward(sink, L.q, A.h1.data(), dq.data(), N, dh.data());
    linear_backward(sink, L.k, A.h1.data(), dk.data(), N, dh.data());
    linear_backward(sink, L.v, A.h1.data(), dv.data(), N, dh.data());
    ops::rmsnorm_backward_ref(dh.data(), x_in, L.attn_norm, dx, sink.grad_of(L.attn_norm), N, C, c.norm_eps);
}

}  // namespace

void parallel_elementwise(int64_t n, const std::function<void(int64_t, int64_t)> & fn) {
    ThreadPool::global().parallel_for(n, fn, 1 << 12);
}

int64_t BackboneActs::rows() const {
    return seqs.empty() ? 0 : seqs.back().row_begin + seqs.back().n;
}

void backbone_train_forward(const BackboneConfig & c, const model::BackboneWeights & w,
                            const std::vector<RowSegment> & seg, bool recompute, BackboneActs * acts) {
    const int64_t N = acts->rows(), C = c.width;
    M4_CHECK(static_cast<int64_t>(acts->x0.size()) == N * C);
    acts->recompute = recompute;
    acts->pos.resize(static_cast<size_t>(N));
    for (const auto & s : acts->seqs) {
        M4_CHECK_MSG(s.n <= c.max_seq, "training sequence longer than max_seq");
        for (int64_t i = 0; i < s.n; ++i) acts->pos[s.row_begin + i] = static_cast<int32_t>(i);
    }
    acts->layers.resize(w.layers.size());
    acts->x_final.resize(static_cast<size_t>(N * C));
    for (size_t l = 0; l < w.layers.size(); ++l) {
        float * out = acts->x_final.data();
        if (l + 1 < w.layers.size()) {
            acts->layers[l + 1].x_in.resize(static_cast<size_t>(N * C));
            out = acts->layers[l + 1].x_in.data();
        }
        const float * in      = l == 0 ? acts->x0.data() : acts->layers[l].x_in.data();
        BackboneLayerActs & A = recompute ? acts->scratch : acts->layers[l];
        layer_forward(c, w.layers[l], seg, *acts, in, A, out);
    }
    if (w.layers.empty()) acts->x_final = acts->x0;
    acts->hn.resize(static_cast<size_t>(N * C));
    ops::rmsnorm(acts->x_final.data(), w.norm, acts->hn.data(), N, C, c.norm_eps);
}

void backbone_train_backward(const GradSink & sink, const model::BackboneConfig & c, const model::BackboneWeights & w,
                             const std::vector<RowSegment> & seg, BackboneActs * acts, const Buf & dhn, Buf & dx) {
    const int64_t N = acts->rows(), C = c.width;
    dx.assign(static_cast<size_t>(N * C), 0.0f);
    ops::rmsnorm_backward_ref(dhn.data(), acts->x_final.data(), w.norm, dx.data(), sink.grad_of(w.norm), N, C,
                              c.norm_eps);
    thread_local Buf out;
    for (size_t l = w.layers.size(); l-- > 0;) {
        const float * x_in = l == 0 ? acts->x0.data() : acts->layers[l].x_in.data();
        if (acts->recompute) {
            out.resize(static_cast<size_t>(N * C));
            layer_forward(c, w.layers[l], seg, *acts, x_in, acts->scratch, out.data());
        }
        layer_backward(sink, c, w.layers[l], *acts, x_in, acts->recompute ? acts->scratch : acts->layers[l], dx.data());
    }
}

}  // namespace m4::train
