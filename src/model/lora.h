// The LoRA choke point. Every linear layer of the encoders, projectors and backbone is evaluated
// by model::linear(), which adds each row's adapter term unmerged:
//
//     y = x·Wᵀ + b + s · (x·Aᵀ)·Bᵀ        A [R, in], B [out, R], s = alpha / R
//
// A batch is a list of row segments, each naming the adapter of the rows in it (or none), so one
// forward pass serves rows of many adapters with one shared GEMM for W (Punica's SGMV idea:
// the LoRA terms are a segmented gather-matmul over the segments).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "model/weights.h"

namespace m4::model {

struct LoraPair {
    Tensor a;            // [R, in]  f32
    Tensor b;            // [out, R] f32
    float scale = 1.0f;  // alpha / R
};

// Head types an adapter may bring (docs/architecture.md, "Heads").
enum class HeadType { None = 0, Classify, Regress, Embed };
enum class HeadPool { Mean = 0, Last };
const char * head_type_name(HeadType t);
const char * head_pool_name(HeadPool p);

// The widest hidden layer a head may have (an adapter's manifest, training, m4fw adapter init):
// 4096 × in_dim 512 is an 8 MiB layer, within the paper's 10 MB per adapter.
inline constexpr int64_t kMaxHeadHidden = 4096;

// A linear head, or with a hidden layer (an MLP head of depth 2):
//     y = w·z + bias                                   hidden_w empty
//     y = w·gelu(hidden_w·z + hidden_bias) + bias      hidden_w [hidden, in_dim], w [out_dim, hidden]
struct HeadWeights {
    HeadType type = HeadType::None;
    HeadPool pool = HeadPool::Mean;
    Tensor w;                             // [out_dim, in_dim | hidden] f32
    const float * bias = nullptr;         // [out_dim] (classify, regress)
    Tensor hidden_w;                      // [hidden, in_dim] f32, or empty
    const float * hidden_bias = nullptr;  // [hidden] (with hidden_w)
    bool has_hidden() const { return hidden_w.data() != nullptr; }
    int64_t in_dim() const { return has_hidden() ? hidden_w.dim(1) : w.dim(1); }
};

// What the model needs of an adapter: its LoRA pairs by linear name, and its head.
struct AdapterWeights {
    std::unordered_map<std::string, LoraPair> lora;
    HeadWeights head;
};

// Rows [begin, end) of the current activation matrix use `adapter` (null: base model only).
struct RowSegment {
    int64_t begin = 0, end = 0;
    const AdapterWeights * adapter = nullptr;
};

// y[M, out] = linear(x[M, in]) with per-segment LoRA. Segments must cover [0, M) in order.
void linear(const Linear & l, const float * x, int64_t M, float * y, const std::vector<RowSegment> & segments);

}  // namespace m4::model
