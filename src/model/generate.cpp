// Batched autoregressive generation: one prefill over the packed prompts, then one decode step per
// new token for every still-active sequence, each with its own KV cache.
#include <cstring>

#include "model/model.h"
#include "model/sampler.h"
#include "ops/ops.h"

namespace m4::model {

Result<std::vector<Generation>> Model::generate(Path path, Modality modality, std::span<const Request> batch,
                                                const GenerateOptions & o) const {
    if (path == Path::Encoder || path == Path::Generator)
        return invalid_argument(std::string("text generation needs the backbone or full path, not the ") +
                                path_name(path) + " path");
    M4_RETURN_IF_ERROR(validate(path, modality, batch));
    if (o.max_new_tokens < 0) return invalid_argument("max_new_tokens must be ≥ 0");
    if (o.kv_dtype != DType::F32 && o.kv_dtype != DType::BF16)
        return invalid_argument(std::string("KV cache dtype must be f32 or bf16, not ") + dtype_name(o.kv_dtype));
    const auto & bc = config_.backbone;
    const int64_t B = static_cast<int64_t>(batch.size()), C = bc.width, V = config_.text.vocab_size;
    std::vector<float> x, hn;
    std::vector<int64_t> lens;
    build_backbone_inputs(path, modality, batch, &x, &lens);
    std::vector<KvCache> caches(B);
    std::vector<SequenceSlice> seqs;
    int64_t row = 0;
    for (int64_t b = 0; b < B; ++b) {
        caches[b].init(bc, std::min<int64_t>(bc.max_seq, lens[b] + o.max_new_tokens), o.kv_dtype);
        seqs.push_back({row, lens[b], &caches[b], batch[b].adapter});
        row += lens[b];
    }
    hn.resize(x.size());
    backbone_forward(bc, weights_.backbone, x.data(), row, seqs, hn.data());

    std::vector<Generation> gens(B);
    std::vector<std::mt19937_64> rngs;
    for (int64_t b = 0; b < B; ++b) rngs.emplace_back(o.seed * 0x9e3779b97f4a7c15ull + b);
    SamplerSettings ss{o.temperature, o.top_k, o.top_p};
    std::vector<float> last(B * C), logits(B * V);
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(last.data() + b * C, hn.data() + (seqs[b].row_begin + lens[b] - 1) * C, static_cast<size_t>(C) * 4);
    std::vector<int64_t> active(B);
    for (int64_t b = 0; b < B; ++b) active[b] = b;
    for (int step = 0; !active.empty(); ++step) {
        // logits of each active sequence's last position, with its adapter's LoRA on the LM head
        const int64_t A = static_cast<int64_t>(active.size());
        std::vector<RowSegment> seg;
        for (int64_t i = 0; i < A; ++i) seg.push_back({i, i + 1, batch[active[i]].adapter});
        linear(weights_.backbone.lm_head, last.data(), A, logits.data(), seg);
        std::vector<int64_t> still;
        std::vector<int32_t> next;
        for (int64_t i = 0; i < A; ++i) {
            const int64_t b   = active[i];
            Generation & g    = gens[b];
            const float * lgt = logits.data() + i * V;
            if (step >= o.max_new_tokens) {
                g.stop_reason = "length";
                continue;
            }
            int32_t tok = sample_token(lgt, V, ss, rngs[b]);
            if (o.keep_logits) g.step_logits.insert(g.step_logits.end(), lgt, lgt + V);
            if (tok == config_.text.eos_id) {
                g.tokens.push_back(tok);
                g.stop_reason = "eos";
                continue;
            }
            g.tokens.push_back(tok);
            g.text       = tokenizer_.decode(g.tokens);
            bool stopped = false;
            for (const auto & s : o.stop) {
                if (auto at = g.text.find(s); !s.empty() && at != std::string::npos) {
                    g.text.resize(at);
                    stopped = true;
                    break;
                }
            }
            if (stopped) {
                g.stop_reason = "stop";
                continue;
            }
            if (static_cast<int>(g.tokens.size()) >= o.max_new_tokens) {
                g.stop_reason = "length";
                continue;
            }
            if (caches[b].len >= caches[b].capacity) {
                g.stop_reason = "context";
                continue;
            }
            still.push_back(b);
            next.push_back(tok);
        }
        active = still;
        if (active.empty()) break;
        // decode step: one new row per active sequence
        const int64_t n = static_cast<int64_t>(active.size());
        x.resize(n * C);
        hn.resize(n * C);
        ops::gather(weights_.backbone.tok_embed, next.data(), n, x.data());
        std::vector<SequenceSlice> step_seqs;
        for (int64_t i = 0; i < n; ++i) step_seqs.push_back({i, 1, &caches[active[i]], batch[active[i]].adapter});
        backbone_forward(bc, weights_.backbone, x.data(), n, step_seqs, hn.data());
        std::memcpy(last.data(), hn.data(), static_cast<size_t>(n * C) * 4);
    }
    for (auto & g : gens) {
        std::vector<int32_t> visible = g.tokens;
        if (!visible.empty() && visible.back() == config_.text.eos_id) visible.pop_back();
        if (g.stop_reason != "stop") g.text = tokenizer_.decode(visible);
    }
    return gens;
}

}  // namespace m4::model
