// Encoder: x = patches·Wpᵀ + bp + pos; per layer x += o(Attn(LN1 x)); x += fc2(gelu(fc1(LN2 x)));
// tokens = LN(x). Shapes: B samples × T tokens, width W, heads Hm, D = W / Hm.
#include <cmath>

#include "model/encoder.h"
#include "ops/ops.h"

namespace m4::model {

void encoder_forward(const EncoderConfig & c, const EncoderWeights & w, const float * patches, int64_t B,
                     const std::vector<RowSegment> & seg, float * out) {
    const int64_t T = c.tokens(), W = c.width, F = c.ffn, N = B * T, Hm = c.heads, D = W / Hm;
    std::vector<float> x(N * W), h(N * W), q(N * W), k(N * W), v(N * W), a(N * W), f(N * F);
    linear(w.patch_embed, patches, N, x.data(), seg);         // x[N, W]
    ops::add(x.data(), w.pos_embed, x.data(), N * W, T * W);  // + pos (per sample)
    for (const auto & L : w.layers) {
        ops::layernorm(x.data(), L.ln1_w, L.ln1_b, h.data(), N, W, c.norm_eps);
        linear(L.q, h.data(), N, q.data(), seg);
        linear(L.k, h.data(), N, k.data(), seg);
        linear(L.v, h.data(), N, v.data(), seg);
        for (int64_t b = 0; b < B; ++b) {
            kern::AttentionArgs args;
            args.q = q.data() + b * T * W, args.k = k.data() + b * T * W, args.v = v.data() + b * T * W;
            args.y   = a.data() + b * T * W;
            args.ldq = args.ldk = args.ldv = args.ldy = W;
            args.T = T, args.S = T, args.H = Hm, args.G = Hm, args.D = D;
            args.causal = false;
            args.scale  = 1.0f / std::sqrt(float(D));
            ops::attention(args);
        }
        linear(L.o, a.data(), N, h.data(), seg);
        ops::add(x.data(), h.data(), x.data(), N * W, N * W);
        ops::layernorm(x.data(), L.ln2_w, L.ln2_b, h.data(), N, W, c.norm_eps);
        linear(L.fc1, h.data(), N, f.data(), seg);
        ops::gelu(f.data(), f.data(), N * F);
        linear(L.fc2, f.data(), N, h.data(), seg);
        ops::add(x.data(), h.data(), x.data(), N * W, N * W);
    }
    ops::layernorm(x.data(), w.norm_w, w.norm_b, out, N, W, c.norm_eps);
}

void encoder_pool(const EncoderConfig & c, const EncoderWeights & w, const float * tokens, int64_t B,
                  const std::vector<RowSegment> & sample_seg, int64_t E, float * z) {
    std::vector<float> pooled(B * c.width);
    ops::pool(tokens, pooled.data(), B, c.tokens(), c.width);  // [B, W]
    linear(w.embed_proj, pooled.data(), B, z, sample_seg);     // [B, E]
}

}  // namespace m4::model
