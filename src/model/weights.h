// The firmware's tensors, resolved by name into structs (shapes in comments), plus the list of
// tensors a configuration expects — used both to validate a loaded firmware and to initialise a
// random one.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/config.h"
#include "tensor/tensor.h"

namespace m4::format {
class ContainerFile;
}

namespace m4::model {

// A linear layer y = x·Wᵀ + b. `name` is its linear name (the LoRA target name).
struct Linear {
    std::string name;
    Tensor w;                      // [out, in]  f32 | bf16 | i8
    const float * bias = nullptr;  // [out] or null
    int64_t in() const { return w.dim(1); }
    int64_t out() const { return w.dim(0); }
};

struct EncoderLayer {
    const float *ln1_w = nullptr, *ln1_b = nullptr;  // [W]
    Linear q, k, v, o;                               // [W, W] + bias
    const float *ln2_w = nullptr, *ln2_b = nullptr;  // [W]
    Linear fc1;                                      // [Fm, W] + bias
    Linear fc2;                                      // [W, Fm] + bias
};

struct EncoderWeights {
    Linear patch_embed;                                        // [W, P] + bias
    const float * cls_token = nullptr;                         // [W] (cls_token configs only)
    const float * pos_embed = nullptr;                         // [T, W]
    const float *pre_norm_w = nullptr, *pre_norm_b = nullptr;  // [W] (pre_norm configs only)
    std::vector<EncoderLayer> layers;
    const float *norm_w = nullptr, *norm_b = nullptr;  // [W]
    Linear embed_proj;                                 // [E, W], no bias
    Linear projector;                                  // [C, W] + bias (encoder → backbone)
};

struct BackboneLayer {
    const float * attn_norm = nullptr;  // [C]
    Linear q;                           // [H·D, C]
    Linear k, v;                        // [G·D, C]
    Linear o;                           // [C, H·D]
    const float * ffn_norm = nullptr;   // [C]
    Linear gate, up;                    // [F, C]
    Linear down;                        // [C, F]
};

struct BackboneWeights {
    Tensor tok_embed;  // [V, C]
    std::vector<BackboneLayer> layers;
    const float * norm = nullptr;  // [C]
    Linear lm_head;                // [V, C] (tok_embed when tied)
    Linear text_proj;              // [E, C]
};

// IMG-Dec: the trunk is an encoder's (its patch_embed is the decoder's input projection; embed_proj
// and projector stay empty), then out_proj maps tokens back to patches.
struct DecoderWeights {
    EncoderWeights trunk;  // patch_embed [W, P] + bias, pos_embed [T, W], layers, norm [W]
    Linear out_proj;       // [P, W] + bias
    // The full path into the decoder (config image_decoder_from_backbone): T learned query rows
    // [T, C] appended to the backbone's input, and the projector of their states [P, C] + bias.
    const float * queries = nullptr;
    Linear from_backbone;
};

struct Weights {
    BackboneWeights backbone;
    std::array<EncoderWeights, kEncoderModalities> encoders;
    DecoderWeights image_decoder;                             // (image_decoder configs only)
    DecoderWeights speech_decoder;                            // TTS-Dec (speech_decoder configs only)
    std::unordered_map<std::string, const Linear *> linears;  // every linear by linear name (LoRA targets)
};

// What the configuration expects: one entry per tensor.
enum class TensorRole { LinearWeight, Bias, Norm, Embedding, Position };
struct TensorSpec {
    std::string name;
    Shape shape;
    TensorRole role;
    float init_scale = 0;  // for random init: std of normal (weights) or constant (norms)
};
std::vector<TensorSpec> expected_tensors(const ModelConfig & c);

// Resolves a firmware's tensors into `out`, checking every expected tensor is present with the
// expected shape and an allowed dtype (quantised types only for linear weights and embeddings).
// Tensors are views: `file` must outlive `out`.
Status resolve_weights(const format::ContainerFile & file, const ModelConfig & c, Weights * out);

// Fills `out` from tensors looked up by name (no checks: resolve_weights validates a file first).
// Training binds its own f32 master weights (or their bf16 copies) this way.
void bind_weights(const ModelConfig & c, const std::function<Tensor(const std::string &)> & get, Weights * out);

// Linear names a LoRA adapter may target, in a stable order.
std::vector<std::string> linear_names(const ModelConfig & c);

}  // namespace m4::model
