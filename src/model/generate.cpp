// Batched autoregressive generation: one prefill over the packed prompts, then one decode step per
// new token for every still-active sequence, each with its own KV cache.
#include <algorithm>
#include <cstring>

#include "model/model.h"
#include "model/sampler.h"
#include "ops/ops.h"

namespace m4::model {

GenerateOptions with_overrides(GenerateOptions g, const GenerationOverrides & o) {
    if (o.max_new_tokens) g.max_new_tokens = *o.max_new_tokens;
    if (o.temperature) g.temperature = *o.temperature;
    if (o.top_k) g.top_k = *o.top_k;
    if (o.top_p) g.top_p = *o.top_p;
    if (o.seed) g.seed = *o.seed;
    if (o.stop) g.stop = *o.stop;
    return g;
}

Status Model::check_options(const GenerateOptions & o, const std::string & where) const {
    return check_generation({o.max_new_tokens, o.temperature, o.top_k, o.top_p, &o.stop}, config_.text.vocab_size,
                            config_.backbone.max_seq, where);
}

Result<std::vector<Generation>> Model::generate(Path path, Modality modality, std::span<const Request> batch,
                                                const GenerateOptions & o) const {
    std::vector<GenerateOptions> rows(batch.size(), o);
    for (size_t b = 0; b < rows.size(); ++b) rows[b].seed = o.seed * 0x9e3779b97f4a7c15ull + b;
    return generate(path, modality, batch, rows);
}

Result<std::vector<Generation>> Model::generate(Path path, Modality modality, std::span<const Request> batch,
                                                std::span<const GenerateOptions> opts) const {
    if (path == Path::Encoder || path == Path::Generator)
        return invalid_argument(std::string("text generation needs the backbone or full path, not the ") +
                                path_name(path) + " path");
    if (path == Path::Full && modality == Modality::Text)
        return invalid_argument(
            "the full path over text ends in the image decoder: it answers with an image, "
            "not generated text");
    M4_RETURN_IF_ERROR(validate(path, modality, batch));
    if (opts.size() != batch.size())
        return invalid_argument(std::to_string(opts.size()) + " option sets for " + std::to_string(batch.size()) +
                                " items");
    for (size_t b = 0; b < opts.size(); ++b)
        if (opts[b].max_new_tokens < 0)
            return invalid_argument("item " + std::to_string(b) + ": max_new_tokens must be ≥ 0");
    const GenerateOptions & o = opts[0];
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
        caches[b].init(bc, std::min<int64_t>(bc.max_seq, lens[b] + opts[b].max_new_tokens), o.kv_dtype);
        seqs.push_back({row, lens[b], &caches[b], batch[b].adapter});
        row += lens[b];
    }
    // Constrained rows: the matcher's state, and a check that the output fits in the tokens the
    // row may generate (its length limit and the context left after its prompt).
    std::vector<TokenConstraint::State> cstate(B);
    std::vector<uint8_t> allowed;
    for (int64_t b = 0; b < B; ++b) {
        if (!opts[b].constraint) continue;
        cstate[b]            = opts[b].constraint->start();
        const int64_t budget = std::min<int64_t>(opts[b].max_new_tokens, caches[b].capacity - lens[b] + 1);
        if (opts[b].constraint->min_bytes() > budget)
            return invalid_argument("item " + std::to_string(b) + ": the constrained output needs up to " +
                                    std::to_string(opts[b].constraint->min_bytes()) + " tokens; only " +
                                    std::to_string(budget) + " fit (max_new_tokens, and the context after the prompt)");
        allowed.resize(static_cast<size_t>(V));
    }
    hn.resize(x.size());
    backbone_forward(bc, weights_.backbone, x.data(), row, seqs, hn.data());

    std::vector<Generation> gens(B);
    std::vector<std::mt19937_64> rngs;
    for (int64_t b = 0; b < B; ++b) rngs.emplace_back(opts[b].seed);
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
            const GenerateOptions & ob = opts[b];
            if (step >= ob.max_new_tokens) {
                g.stop_reason = "length";
                continue;
            }
            const TokenConstraint * tc = ob.constraint.get();
            if (tc) {
                const int64_t left = std::min<int64_t>(ob.max_new_tokens - static_cast<int64_t>(g.tokens.size()),
                                                       caches[b].capacity - caches[b].len + 1);
                tc->mask(cstate[b], left, allowed.data());
                if (std::find(allowed.begin(), allowed.end(), 1) ==
                    allowed.end()) {  // cannot happen (see constraint.h)
                    g.stop_reason = "constraint";
                    continue;
                }
            }
            int32_t tok =
                sample_token(lgt, V, {ob.temperature, ob.top_k, ob.top_p}, rngs[b], tc ? allowed.data() : nullptr);
            if (tc) tc->advance(cstate[b], tok);
            if (o.keep_logits) g.step_logits.insert(g.step_logits.end(), lgt, lgt + V);
            if (tok == config_.text.eos_id) {
                g.tokens.push_back(tok);
                g.stop_reason = "eos";
                continue;
            }
            g.tokens.push_back(tok);
            g.text       = tokenizer_.decode(g.tokens);
            bool stopped = false;
            for (const auto & s : tc ? std::vector<std::string>{} : ob.stop) {
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
            if (static_cast<int>(g.tokens.size()) >= ob.max_new_tokens) {
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
