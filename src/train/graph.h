// The training graph of the encoders and the backbone: the same forward as model/encoder.cpp and
// model/backbone.cpp (same ops, same order, so the outputs are equal — tests/train checks it against
// model::Model::run), keeping the activations the backward needs, and the backward of every layer.
//
//     EncoderActs acts;  acts.patches = …;                          // [B·T, P]
//     encoder_train_forward(cfg, w, seg, /*recompute=*/false, &acts);   // acts.tokens [B·T, W]
//     encoder_train_backward(sink, cfg, w, seg, &acts, dtokens);        // parameter grads accumulate
//
// Recomputation: with `recompute`, only each layer's input is kept; the backward reruns the layer's
// forward from it before differentiating it (one layer of activations alive instead of all).
#pragma once

#include <functional>
#include <vector>

#include "model/lora.h"
#include "train/linear.h"

namespace m4::train {

using Buf = std::vector<float>;

// fn(b, e) over [0, n) in chunks on the pool: for elementwise backward passes, whose result does
// not depend on the split.
void parallel_elementwise(int64_t n, const std::function<void(int64_t, int64_t)> & fn);

// ---- encoder (pre-norm, bidirectional) --------------------------------------------------------
struct EncoderLayerActs {
    Buf x_in;            // [N, W] layer input
    Buf h1, q, k, v, a;  // LN1(x_in), projections, attention output          [N, W]
    Buf x_mid, h2;       // x_in + o(a), LN2(x_mid)                           [N, W]
    Buf f, g;            // fc1(h2) before / after gelu                       [N, F]
};

struct EncoderActs {
    int64_t B = 0;
    Buf patches;  // [N, P] input (N = B·T)
    std::vector<EncoderLayerActs> layers;
    Buf x_final;               // [N, W] before the final layernorm
    Buf tokens;                // [N, W] output
    EncoderLayerActs scratch;  // the recomputed layer
    bool recompute = false;
};

void encoder_train_forward(const model::EncoderConfig & c, const model::EncoderWeights & w,
                           const std::vector<model::RowSegment> & seg, bool recompute, EncoderActs * acts);
// dtokens [N, W] in. When dpatches is non-null the input gradient is added there (nothing
// upstream of the patches learns; the gradient tests use it).
void encoder_train_backward(const GradSink & sink, const model::EncoderConfig & c, const model::EncoderWeights & w,
                            const std::vector<model::RowSegment> & seg, EncoderActs * acts, const Buf & dtokens,
                            float * dpatches = nullptr);

// ---- backbone (LLaMA-style decoder over a packed batch of sequences) -------------------------
struct BackboneLayerActs {
    Buf x_in;       // [N, C]
    Buf h1;         // RMS(x_in)·attn_norm                          [N, C]
    Buf q, k, v;    // q, k after RoPE                               [N, H·D], [N, G·D], [N, G·D]
    Buf a;          // attention output                              [N, H·D]
    Buf x_mid, h2;  // x_in + o(a), RMS(x_mid)·ffn_norm              [N, C]
    Buf gp, u, m;   // gate(h2) before silu, up(h2), silu(gp) ⊙ u    [N, F]
};

struct Sequence {
    int64_t row_begin = 0, n = 0;  // rows of the packed batch, positions 0 … n − 1
};

struct BackboneActs {
    std::vector<Sequence> seqs;
    std::vector<int32_t> pos;  // [N] position of each row in its sequence
    Buf x0;                    // [N, C] inputs
    std::vector<BackboneLayerActs> layers;
    Buf x_final;  // [N, C] before the final RMSNorm
    Buf hn;       // [N, C] output
    BackboneLayerActs scratch;
    bool recompute = false;
    int64_t rows() const;
};

// acts->seqs and acts->x0 set by the caller.
void backbone_train_forward(const model::BackboneConfig & c, const model::BackboneWeights & w,
                            const std::vector<model::RowSegment> & seg, bool recompute, BackboneActs * acts);
// dhn [N, C] in; dx0 [N, C] receives the gradient of the inputs (overwritten).
void backbone_train_backward(const GradSink & sink, const model::BackboneConfig & c, const model::BackboneWeights & w,
                             const std::vector<model::RowSegment> & seg, BackboneActs * acts, const Buf & dhn,
                             Buf & dx0);

}  // namespace m4::train
