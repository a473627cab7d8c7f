// Modality encoder (pre-norm bidirectional transformer) and the LLaMA-style backbone with KV cache.
#pragma once

#include <vector>

#include "model/lora.h"

namespace m4::model {

// x: patches [B·T, P] → tokens [B·T, W] (after the final layernorm). `token_segments` map rows to
// adapters (one segment per sample).
void encoder_forward(const EncoderConfig & c, const EncoderWeights & w, const float * patches, int64_t B,
                     const std::vector<RowSegment> & token_segments, float * tokens);

// tokens [B·T, W] → z [B, E] = embed_proj(mean_t tokens) (unnormalised; `sample_segments` over B rows)
void encoder_pool(const EncoderConfig & c, const EncoderWeights & w, const float * tokens, int64_t B,
                  const std::vector<RowSegment> & sample_segments, int64_t embed_dim, float * z);

// Per-sequence key/value cache: for each layer, keys and values [capacity, G·D].
struct KvCache {
    int64_t capacity = 0, len = 0, kv_width = 0;
    std::vector<float> k, v;  // [L, capacity, G·D]
    void init(const BackboneConfig & c, int64_t capacity);
    float * k_at(int64_t layer, int64_t pos) { return k.data() + (layer * capacity + pos) * kv_width; }
    float * v_at(int64_t layer, int64_t pos) { return v.data() + (layer * capacity + pos) * kv_width; }
    size_t bytes() const { return (k.size() + v.size()) * sizeof(float); }
};

// One sequence of a packed batch: rows [row_begin, row_begin + n) of x, appended to `cache`
// at positions cache->len … (the cache's len advances by n).
struct SequenceSlice {
    int64_t row_begin = 0, n = 0;
    KvCache * cache                = nullptr;
    const AdapterWeights * adapter = nullptr;
};

// x [N, C] input embeddings (modified in place) → hn [N, C] after the final RMSNorm.
void backbone_forward(const BackboneConfig & c, const BackboneWeights & w, float * x, int64_t N,
                      const std::vector<SequenceSlice> & seqs, float * hn);

}  // namespace m4::model
