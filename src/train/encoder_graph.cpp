// Encoder training graph (docs/architecture.md, "Encoder"), forward as in model/encoder.cpp:
//     x = patches·Wpᵀ + bp + pos
//     per layer:  h1 = LN1(x);  x_mid = x + o(Attn(q(h1), k(h1), v(h1)))
//                 h2 = LN2(x_mid);  x = x_mid + fc2(act(fc1(h2)))   act: the config's GELU form
//     tokens = LN(x)
// B samples × T tokens (N = B·T rows), width W, Hm heads of D = W / Hm, FFN width F.
#include <cmath>

#include "base/thread_pool.h"
#include "ops/ops.h"
#include "train/graph.h"

namespace m4::train {
namespace {

using model::EncoderConfig;
using model::EncoderLayer;
using model::RowSegment;

void zeros(Buf & b, int64_t n) {
    b.assign(static_cast<size_t>(n), 0.0f);
}

kern::AttentionArgs sample_attention(const EncoderConfig & c, int64_t b, const float * q, const float * k,
                                     const float * v, float * y) {
    const int64_t T = c.tokens(), W = c.width, D = W / c.heads;
    kern::AttentionArgs a;
    a.q = q + b * T * W, a.k = k + b * T * W, a.v = v + b * T * W, a.y = y + b * T * W;
    a.ldq = a.ldk = a.ldv = a.ldy = W;
    a.T = T, a.S = T, a.H = c.heads, a.G = c.heads, a.D = D;
    a.causal = false;
    a.scale  = 1.0f / std::sqrt(float(D));
    return a;
}

// x_in [N, W] → x_out [N, W]; intermediates into A.
void layer_forward(const EncoderConfig & c, const EncoderLayer & L, const std::vector<RowSegment> & seg, int64_t B,
                   const float * x_in, EncoderLayerActs & A, float * x_out) {
    const int64_t N = B * c.tokens(), W = c.width, F = c.ffn;
    for (Buf * b : {&A.h1, &A.q, &A.k, &A.v, &A.a, &A.x_mid, &A.h2}) b->resize(static_cast<size_t>(N * W));
    A.f.resize(static_cast<size_t>(N * F));
    A.g.resize(static_cast<size_t>(N * F));
    // Scratch kept across layers and steps (no allocation per step once sizes settle).
    thread_local Buf tmp;
    tmp.resize(static_cast<size_t>(N * W));
    ops::layernorm(x_in, L.ln1_w, L.ln1_b, A.h1.data(), N, W, c.norm_eps);
    model::linear(L.q, A.h1.data(), N, A.q.data(), seg);
    model::linear(L.k, A.h1.data(), N, A.k.data(), seg);
    model::linear(L.v, A.h1.data(), N, A.v.data(), seg);
    ThreadPool::global().parallel_for(B, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
            ops::attention(sample_attention(c, b, A.q.data(), A.k.data(), A.v.data(), A.a.data()));
    });
    model::linear(L.o, A.a.data(), N, tmp.data(), seg);
    ops::add(x_in, tmp.data(), A.x_mid.data(), N * W, N * W);
    ops::layernorm(A.x_mid.data(), L.ln2_w, L.ln2_b, A.h2.data(), N, W, c.norm_eps);
    model::linear(L.fc1, A.h2.data(), N, A.f.data(), seg);
    ops::gelu(static_cast<ops::GeluForm>(c.activation), A.f.data(), A.g.data(), N * F);
    model::linear(L.fc2, A.g.data(), N, tmp.data(), seg);
    ops::add(A.x_mid.data(), tmp.data(), x_out, N * W, N * W);
}

// dx [N, W]: gradient of the layer's output in, of its input out.
void layer_backward(const GradSink & sink, const EncoderConfig & c, const EncoderLayer & L, int64_t B,
                    const float * x_in, const EncoderLayerActs & A, float * dx) {
    const int64_t N = B * c.tokens(), W = c.width, F = c.ffn;
    // Gradient buffers of one layer, kept across layers and steps (assign reuses their memory).
    // Named through references: inside the pool's lambdas below a thread_local name would mean
    // the worker's own (empty) buffer, not the caller's.
    thread_local Buf tl[7];
    Buf &dg = tl[0], &df = tl[1], &dh = tl[2], &da = tl[3], &dq = tl[4], &dk = tl[5], &dv = tl[6];
    zeros(dg, N * F), zeros(df, N * F), zeros(dh, N * W), zeros(da, N * W);
    zeros(dq, N * W), zeros(dk, N * W), zeros(dv, N * W);
    // x = x_mid + fc2(gelu(fc1(LN2(x_mid))))
    linear_backward(sink, L.fc2, A.g.data(), dx, N, dg.data());
    parallel_elementwise(N * F, [&](int64_t b, int64_t e) {
        ops::gelu_backward(static_cast<ops::GeluForm>(c.activation), dg.data() + b, A.f.data() + b, df.data() + b,
                           e - b);
    });
    linear_backward(sink, L.fc1, A.h2.data(), df.data(), N, dh.data());
    ops::layernorm_backward_ref(dh.data(), A.x_mid.data(), L.ln2_w, dx, sink.grad_of(L.ln2_w), sink.grad_of(L.ln2_b), N,
                                W, c.norm_eps);
    // x_mid = x_in + o(Attn(q, k, v)),  q, k, v = LN1(x_in)·Wᵀ
    linear_backward(sink, L.o, A.a.data(), dx, N, da.data());
    ThreadPool::global().parallel_for(B, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const kern::AttentionArgs args =
                sample_attention(c, b, A.q.data(), A.k.data(), A.v.data(), const_cast<float *>(A.a.data()));
            const int64_t off = b * c.tokens() * W;
            ops::attention_backward(args, da.data() + off, dq.data() + off, dk.data() + off, dv.data() + off);
        }
    });
    std::fill(dh.begin(), dh.end(), 0.0f);
    linear_backward(sink, L.q, A.h1.data(), dq.data(), N, dh.data());
    linear_backward(sink, L.k, A.h1.data(), dk.data(), N, dh.data());
    linear_backward(sink, L.v, A.h1.data(), dv.data(), N, dh.data());
    ops::layernorm_backward_ref(dh.data(), x_in, L.ln1_w, dx, sink.grad_of(L.ln1_w), sink.grad_of(L.ln1_b), N, W,
                                c.norm_eps);
}

}  // namespace

void encoder_train_forward(const EncoderConfig & c, const model::EncoderWeights & w,
                           const std::vector<RowSegment> & seg, bool recompute, EncoderActs * acts) {
    const int64_t T = c.tokens(), W = c.width, B = acts->B, N = B * T;
    M4_CHECK(static_cast<int64_t>(acts->patches.size()) == N * c.patch_dim());
    acts->recompute = recompute;
    acts->layers.resize(w.layers.size());
    if (acts->layers.empty()) {
        acts->layers.emplace_back();  // layer "0" input holds the embedded patches even without layers
    }
    Buf & x0 = acts->layers[0].x_in;
    x0.resize(static_cast<size_t>(N * W));
    model::linear(w.patch_embed, acts->patches.data(), N, x0.data(), seg);
    ops::add(x0.data(), w.pos_embed, x0.data(), N * W, T * W);
    acts->x_final.resize(static_cast<size_t>(N * W));
    for (size_t l = 0; l < w.layers.size(); ++l) {
        float * out = acts->x_final.data();
        if (l + 1 < w.layers.size()) {
            acts->layers[l + 1].x_in.resize(static_cast<size_t>(N * W));
            out = acts->layers[l + 1].x_in.data();
        }
        EncoderLayerActs & A = recompute ? acts->scratch : acts->layers[l];
        layer_forward(c, w.layers[l], seg, B, acts->layers[l].x_in.data(), A, out);
    }
    if (w.layers.empty()) acts->x_final = x0;
    acts->tokens.resize(static_cast<size_t>(N * W));
    ops::layernorm(acts->x_final.data(), w.norm_w, w.norm_b, acts->tokens.data(), N, W, c.norm_eps);
}

void encoder_train_backward(const GradSink & sink, const EncoderConfig & c, const model::EncoderWeights & w,
                            const std::vector<RowSegment> & seg, EncoderActs * acts, const Buf & dtokens,
                            float * dpatches) {
    const int64_t T = c.tokens(), W = c.width, B = acts->B, N = B * T;
    thread_local Buf dx;
    dx.assign(static_cast<size_t>(N * W), 0.0f);
    ops::layernorm_backward_ref(dtokens.data(), acts->x_final.data(), w.norm_w, dx.data(), sink.grad_of(w.norm_w),
                                sink.grad_of(w.norm_b), N, W, c.norm_eps);
    thread_local Buf out;
    for (size_t l = w.layers.size(); l-- > 0;) {
        const float * x_in = acts->layers[l].x_in.data();
        if (acts->recompute) {
            out.resize(static_cast<size_t>(N * W));
            layer_forward(c, w.layers[l], seg, B, x_in, acts->scratch, out.data());
        }
        layer_backward(sink, c, w.layers[l], B, x_in, acts->recompute ? acts->scratch : acts->layers[l], dx.data());
    }
    ops::add_backward_ref(dx.data(), nullptr, sink.grad_of(w.pos_embed), N * W, T * W);
    linear_backward(sink, w.patch_embed, acts->patches.data(), dx.data(), N, dpatches);
}

}  // namespace m4::train
