// Modality encoder (pre-norm bidirectional transformer) and the LLaMA-style backbone with KV cache.
#pragma once

#include <vector>

#include "base/arena.h"
#include "model/lora.h"

namespace m4::model {

// x: patches [B·T, P] → tokens [B·T, W] (after the final layernorm). `token_segments` map rows to
// adapters (one segment per sample).
void encoder_forward(const EncoderConfig & c, const EncoderWeights & w, const float * patches, int64_t B,
                     const std::vector<RowSegment> & token_segments, float * tokens);

// tokens [B·T, W] → z [B, E] = embed_proj(mean_t tokens) (unnormalised; `sample_segments` over B rows)
void encoder_pool(const EncoderConfig & c, const EncoderWeights & w, const float * tokens, int64_t B,
                  const std::vector<RowSegment> & sample_segments, int64_t embed_dim, float * z);

// Per-sequence key/value cache: for each layer, keys and values [capacity, G·D], stored as f32 or
// bf16 (half the memory; keys and values are rounded to nearest-even on append, attention widens
// them back to f32). Pages are touched only as positions fill.
struct KvCache {
    int64_t capacity = 0, len = 0, kv_width = 0, layers = 0;
    DType dtype = DType::F32;
    AlignedBuffer k, v;  // [layers, capacity, kv_width] of dtype
    void init(const BackboneConfig & c, int64_t capacity, DType dtype = DType::F32);
    void * k_at(int64_t layer, int64_t pos) { return k.get() + offset(layer, pos); }
    void * v_at(int64_t layer, int64_t pos) { return v.get() + offset(layer, pos); }
    // rows [n, kv_width] of f32 keys and values → positions len … len + n − 1 of `layer`
    void append(int64_t layer, const float * keys, const float * values, int64_t n);
    size_t bytes() const { return 2 * static_cast<size_t>(layers * capacity * kv_width) * dtype_size(dtype); }

  private:
    size_t offset(int64_t layer, int64_t pos) const {
        return static_cast<size_t>((layer * capacity + pos) * kv_width) * dtype_size(dtype);
    }
};

// One sequence of a packed batch: rows [row_begin, row_begin + n) of x, appended to `cache`
// at positions cache->len … (the cache's len advances by n). Without a cache the sequence is
// complete in this call (positions 0 … n − 1): attention reads its keys and values straight from
// the layer's activations, and nothing is kept.
struct SequenceSlice {
    int64_t row_begin = 0, n = 0;
    KvCache * cache                = nullptr;
    const AdapterWeights * adapter = nullptr;
};

// x [N, C] input embeddings (modified in place) → hn [N, C] after the final RMSNorm.
void backbone_forward(const BackboneConfig & c, const BackboneWeights & w, float * x, int64_t N,
                      const std::vector<SequenceSlice> & seqs, float * hn);

}  // namespace m4::model
