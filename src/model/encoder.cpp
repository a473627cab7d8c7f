// Encoder: x = patches·Wpᵀ + bp + pos [; x = LNpre(x)]; per layer x += o(Attn(LN1 x));
// x += fc2(act(fc1(LN2 x))); tokens = LN(x) (pool "mean") or x (pool "cls": the final LN goes to the
// pooled class token, encoder_pool). act: the config's GELU form. Shapes: B samples × T tokens,
// width W, heads Hm, D = W / Hm. With a class token, x[b, 0] = cls + pos[0] and the Np = T − 1
// patches fill rows 1 … T − 1.
#include <cmath>
#include <cstring>

#include "base/arena.h"
#include "base/thread_pool.h"
#include "model/encoder.h"
#include "ops/ops.h"

namespace m4::model {

static_assert(static_cast<int>(Activation::GeluTanh) == static_cast<int>(ops::GeluForm::Tanh) &&
              static_cast<int>(Activation::QuickGelu) == static_cast<int>(ops::GeluForm::Quick));

void encoder_forward(const EncoderConfig & c, const EncoderWeights & w, const float * patches, int64_t B,
                     const std::vector<RowSegment> & seg, float * out) {
    const int64_t T = c.tokens(), W = c.width, F = c.ffn, N = B * T, Hm = c.heads, D = W / Hm;
    ArenaScope scope;  // activations live in the thread's arena for the duration of this call
    float *x = scope.alloc<float>(N * W), *h = scope.alloc<float>(N * W), *q = scope.alloc<float>(N * W);
    float *k = scope.alloc<float>(N * W), *v = scope.alloc<float>(N * W), *a = scope.alloc<float>(N * W);
    float * f = scope.alloc<float>(N * F);
    if (!c.cls_token) {
        linear(w.patch_embed, patches, N, x, seg);  // x[N, W]
    } else {
        // Patch rows [B·Np, P] → h, then per sample x = [cls; h rows] (the segments, given over
        // token rows, are mapped onto patch rows sample by sample).
        const int64_t Np = c.patches();
        std::vector<RowSegment> pseg;
        for (const auto & sg : seg) pseg.push_back({sg.begin / T * Np, sg.end / T * Np, sg.adapter});
        linear(w.patch_embed, patches, B * Np, h, pseg);  // h[B·Np, W]
        for (int64_t b = 0; b < B; ++b) {
            std::memcpy(x + b * T * W, w.cls_token, static_cast<size_t>(W) * 4);
            std::memcpy(x + (b * T + 1) * W, h + b * Np * W, static_cast<size_t>(Np * W) * 4);
        }
    }
    ops::add(x, w.pos_embed, x, N * W, T * W);  // + pos (per sample)
    if (c.pre_norm) ops::layernorm(x, w.pre_norm_w, w.pre_norm_b, x, N, W, c.norm_eps);
    const auto act = static_cast<ops::GeluForm>(c.activation);
    for (const auto & L : w.layers) {
        ops::layernorm(x, L.ln1_w, L.ln1_b, h, N, W, c.norm_eps);
        linear(L.q, h, N, q, seg);
        linear(L.k, h, N, k, seg);
        linear(L.v, h, N, v, seg);
        // Per-sample attention, all samples in one parallel loop (each call then single-threaded).
        ThreadPool::global().parallel_for(B, [&](int64_t bb, int64_t be) {
            for (int64_t b = bb; b < be; ++b) {
                kern::AttentionArgs args;
                args.q = q + b * T * W, args.k = k + b * T * W, args.v = v + b * T * W;
                args.y   = a + b * T * W;
                args.ldq = args.ldk = args.ldv = args.ldy = W;
                args.T = T, args.S = T, args.H = Hm, args.G = Hm, args.D = D;
                args.causal = false;
                args.scale  = 1.0f / std::sqrt(float(D));
                ops::attention(args);
            }
        });
        linear(L.o, a, N, h, seg);
        ops::add(x, h, x, N * W, N * W);
        ops::layernorm(x, L.ln2_w, L.ln2_b, h, N, W, c.norm_eps);
        linear(L.fc1, h, N, f, seg);
        ops::gelu(act, f, f, N * F);
        linear(L.fc2, f, N, h, seg);
        ops::add(x, h, x, N * W, N * W);
    }
    if (c.pool == Pool::Cls)
        std::memcpy(out, x, static_cast<size_t>(N * W) * 4);  // CLIP's last_hidden_state
    else
        ops::layernorm(x, w.norm_w, w.norm_b, out, N, W, c.norm_eps);
}

void encoder_pool(const EncoderConfig & c, const EncoderWeights & w, const float * tokens, int64_t B,
                  const std::vector<RowSegment> & sample_seg, int64_t E, float * z) {
    ArenaScope scope;
    const int64_t T = c.tokens(), W = c.width;
    float * pooled = scope.alloc<float>(B * W);
    if (c.pool == Pool::Cls) {
        // The class token of each sample, layernormed (CLIP's pooler_output).
        for (int64_t b = 0; b < B; ++b) std::memcpy(pooled + b * W, tokens + b * T * W, static_cast<size_t>(W) * 4);
        ops::layernorm(pooled, w.norm_w, w.norm_b, pooled, B, W, c.norm_eps);
    } else {
        ops::pool(tokens, pooled, B, T, W);  // [B, W]
    }
    linear(w.embed_proj, pooled, B, z, sample_seg);  // [B, E]
}

}  // namespace m4::model
