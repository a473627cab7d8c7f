// GGUF `llama` files → the backbone: hyper-parameters from the llama.* keys, tensors by llama.cpp's
// names (q/k are already in the adjacent-pair RoPE layout m4 uses), the SentencePiece vocabulary
// (tokenizer.ggml.tokens / scores / token_type) rebuilt as a SentencePiece model.
#include <fmt/format.h>

#include <cmath>

#include "format/gguf.h"
#include "import/import.h"
#include "import/sp_model.h"
#include "model/tokenizer.h"

namespace m4::import {

Result<Part> import_gguf_llama(const std::string & path) {
    M4_ASSIGN_OR_RETURN(format::GgufFile file, format::GgufFile::open(path));
    const format::GgufView & g = file.view();
    M4_ASSIGN_OR_RETURN(std::string arch, g.get_string("general.architecture"));
    if (arch != "llama") return unsupported(path + ": architecture '" + arch + "' is not one m4 imports (llama)");
    auto key = [&](const char * k) { return "llama." + std::string(k); };
    M4_ASSIGN_OR_RETURN(int64_t C, g.get_int(key("embedding_length")));
    M4_ASSIGN_OR_RETURN(int64_t L, g.get_int(key("block_count")));
    M4_ASSIGN_OR_RETURN(int64_t F, g.get_int(key("feed_forward_length")));
    M4_ASSIGN_OR_RETURN(int64_t H, g.get_int(key("attention.head_count")));
    int64_t G = H, ctx = 2048;
    double theta = 10000.0;
    if (g.kv.count(key("attention.head_count_kv"))) {
        M4_ASSIGN_OR_RETURN(G, g.get_int(key("attention.head_count_kv")));
    }
    if (g.kv.count(key("context_length"))) {
        M4_ASSIGN_OR_RETURN(ctx, g.get_int(key("context_length")));
    }
    if (g.kv.count(key("rope.freq_base"))) {
        M4_ASSIGN_OR_RETURN(theta, g.get_float(key("rope.freq_base")));
    }
    M4_ASSIGN_OR_RETURN(double eps, g.get_float(key("attention.layer_norm_rms_epsilon")));
    if (C <= 0 || L <= 0 || F <= 0 || H <= 0 || G <= 0 || C % H || H % G)
        return invalid_argument(path + ": inconsistent llama.* hyper-parameters (width " + std::to_string(C) +
                                ", heads " + std::to_string(H) + ", kv heads " + std::to_string(G) + ")");
    const int64_t D = C / H;
    if (g.kv.count(key("rope.dimension_count"))) {
        M4_ASSIGN_OR_RETURN(int64_t rd, g.get_int(key("rope.dimension_count")));
        if (rd != D)
            return unsupported(path + ": llama.rope.dimension_count " + std::to_string(rd) + " ≠ head dimension " +
                               std::to_string(D) + " (m4 rotates whole heads)");
    }
    if (g.kv.count(key("rope.scaling.type")) && g.kv.at(key("rope.scaling.type")) != "none")
        return unsupported(path + ": llama.rope.scaling.type " + g.kv.at(key("rope.scaling.type")).dump() +
                           " (m4's RoPE has no scaling)");
    for (const char * k : {"expert_count", "attention.key_length", "attention.value_length"})
        if (g.kv.count(key(k)) && !(std::string(k) == "expert_count" && g.kv.at(key(k)) == 0) &&
            !(std::string(k) != "expert_count" && g.kv.at(key(k)) == D))
            return unsupported(path + ": llama." + k + " = " + g.kv.at(key(k)).dump() + " is not supported by m4");

    // Vocabulary: SentencePiece ("llama") only.
    M4_ASSIGN_OR_RETURN(std::string tmodel, g.get_string("tokenizer.ggml.model"));
    if (tmodel == "gpt2")
        return unsupported(path +
                           ": tokenizer.ggml.model is 'gpt2' (byte-level BPE), which m4's SentencePiece "
                           "tokenizer cannot represent");
    if (tmodel != "llama") return unsupported(path + ": tokenizer.ggml.model '" + tmodel + "' (m4 reads 'llama')");
    SpVocab voc;
    try {
        voc.pieces = g.kv.at("tokenizer.ggml.tokens").get<std::vector<std::string>>();
        voc.scores = g.kv.count("tokenizer.ggml.scores") ? g.kv.at("tokenizer.ggml.scores").get<std::vector<float>>()
                                                         : std::vector<float>(voc.pieces.size(), 0.0f);
        voc.types  = g.kv.count("tokenizer.ggml.token_type")
                         ? g.kv.at("tokenizer.ggml.token_type").get<std::vector<int32_t>>()
                         : std::vector<int32_t>(voc.pieces.size(), 1);
    } catch (const std::exception & e) {
        return invalid_argument(path + ": tokenizer.ggml.tokens / scores / token_type are missing or mistyped");
    }
    auto id = [&](const char * k, int32_t def) -> int32_t {
        auto it = g.kv.find(std::string("tokenizer.ggml.") + k);
        return it != g.kv.end() && it->second.is_number_integer() ? it->second.get<int32_t>() : def;
    };
    voc.bos_id      = id("bos_token_id", 1);
    voc.eos_id      = id("eos_token_id", 2);
    voc.unk_id      = id("unknown_token_id", 0);
    voc.pad_id      = id("padding_token_id", -1);
    const int64_t V = static_cast<int64_t>(voc.pieces.size());
    if (g.kv.count(key("vocab_size"))) {
        M4_ASSIGN_OR_RETURN(int64_t v2, g.get_int(key("vocab_size")));
        if (v2 != V)
            return invalid_argument(path + ": llama.vocab_size " + std::to_string(v2) + " but " + std::to_string(V) +
                                    " tokenizer.ggml.tokens");
    }
    Part part;
    part.role = Role::Backbone;
    M4_ASSIGN_OR_RETURN(part.tokenizer_model, sentencepiece_model_bytes(voc, path + ": tokenizer.ggml"));
    M4_ASSIGN_OR_RETURN(model::Tokenizer tok, model::Tokenizer::from_bytes(part.tokenizer_model, path));
    part.config = {{"text",
                    {{"vocab_size", V},
                     {"bos_id", voc.bos_id},
                     {"eos_id", voc.eos_id},
                     {"unk_id", voc.unk_id},
                     {"pad_id", voc.pad_id >= 0 ? voc.pad_id : 0}}},
                   {"backbone",
                    {{"width", C},
                     {"layers", L},
                     {"heads", H},
                     {"kv_heads", G},
                     {"ffn", F},
                     {"max_seq", ctx},
                     {"rope_theta", theta},
                     {"norm_eps", eps},
                     {"tie_lm_head", g.find("output.weight") == nullptr}}}};
    part.source = {{"format", "gguf"}, {"path", path}, {"gguf_version", g.version}};
    if (g.kv.count("general.name") && g.kv.at("general.name").is_string())
        part.source["name"] = g.kv.at("general.name");

    std::map<std::string, std::pair<std::string, Shape>> table;  // gguf name → m4 name, row-major shape
    table["token_embd.weight"] = {"backbone.tok_embed.weight", Shape{V, C}};
    for (int64_t l = 0; l < L; ++l) {
        const std::string s = fmt::format("blk.{}.", l), d = fmt::format("backbone.layers.{}.", l);
        table[s + "attn_norm.weight"]   = {d + "attn_norm.weight", Shape{C}};
        table[s + "attn_q.weight"]      = {d + "attn.q.weight", Shape{H * D, C}};
        table[s + "attn_k.weight"]      = {d + "attn.k.weight", Shape{G * D, C}};
        table[s + "attn_v.weight"]      = {d + "attn.v.weight", Shape{G * D, C}};
        table[s + "attn_output.weight"] = {d + "attn.o.weight", Shape{C, H * D}};
        table[s + "ffn_norm.weight"]    = {d + "ffn_norm.weight", Shape{C}};
        table[s + "ffn_gate.weight"]    = {d + "ffn.gate.weight", Shape{F, C}};
        table[s + "ffn_up.weight"]      = {d + "ffn.up.weight", Shape{F, C}};
        table[s + "ffn_down.weight"]    = {d + "ffn.down.weight", Shape{C, F}};
    }
    table["output_norm.weight"] = {"backbone.norm.weight", Shape{C}};
    if (g.find("output.weight")) table["output.weight"] = {"backbone.lm_head.weight", Shape{V, C}};
    for (const auto & t : g.tensors)
        if (!table.count(t.name) && t.name.find("rope_freqs") == std::string::npos)
            return unsupported(path + ": tensor '" + t.name + "' has no m4 counterpart (docs/import.md)");
    nlohmann::json drift = nlohmann::json::object();
    float worst          = 0;
    for (const auto & [src, dst] : table) {
        const format::GgufTensorInfo * t = g.find(src);
        if (!t) return invalid_argument(path + ": missing tensor '" + src + "' (m4 '" + dst.first + "')");
        if (!(t->shape() == dst.second))
            return invalid_argument(path + ": tensor '" + src + "' has shape " + t->shape().str() +
                                    " (row-major) but the llama.* keys require " + dst.second.str());
        M4_ASSIGN_OR_RETURN(format::GgufTensor gt, g.load(*t));
        if (t->type == format::kGgmlQ8_0) {
            drift[dst.first] = gt.requant_rel;
            worst            = std::max(worst, gt.requant_rel);
        }
        part.tensors[dst.first] = std::move(gt.t);
        part.origin[dst.first]  = path + ": tensor '" + src + "' (" + format::ggml_type_name(t->type) + ")";
    }
    if (!drift.empty()) part.source["q8_0_requant"] = {{"max_rel", worst}, {"per_tensor", drift}};
    return part;
}

}  // namespace m4::import
