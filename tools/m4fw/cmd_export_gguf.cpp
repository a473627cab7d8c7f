// m4fw export-gguf --firmware F --out model.gguf
// Writes the firmware's backbone (a LLaMA-architecture decoder) as a GGUF v3 file, from the GGUF
// specification, so llama.cpp and other GGUF readers can run exactly our weights (the performance
// comparison in docs/performance.md does). Tensors are written as f32 (dequantised if the firmware
// stores bf16 / int8); quantise them with the reader's own tools. Encoders are not part of a GGUF
// LLaMA model and are left out. Our RoPE rotates adjacent pairs, which is llama.cpp's "normal"
// LLaMA RoPE, so q/k need no permutation.
#include <fmt/format.h>

#include <cstring>

#include "base/mapped_file.h"
#include "commands.h"
#include "model/model.h"

namespace m4::cli {
namespace {

// GGUF metadata value types and ggml tensor types used here.
enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kString = 8, kArray = 9 };
constexpr uint32_t kGgmlF32   = 0;
constexpr uint64_t kAlignment = 32;

struct GgufWriter {
    std::string out;
    uint64_t    kv_count = 0;

    void u32(uint32_t v) { out.append(reinterpret_cast<const char *>(&v), 4); }
    void i32(int32_t v) { out.append(reinterpret_cast<const char *>(&v), 4); }
    void u64(uint64_t v) { out.append(reinterpret_cast<const char *>(&v), 8); }
    void f32(float v) { out.append(reinterpret_cast<const char *>(&v), 4); }
    void str(const std::string & s) {
        u64(s.size());
        out += s;
    }
    void key(const std::string & k, uint32_t type) {
        str(k);
        u32(type);
        ++kv_count;
    }
    void kv_u32(const std::string & k, uint32_t v) { key(k, kU32), u32(v); }
    void kv_f32(const std::string & k, float v) { key(k, kF32), f32(v); }
    void kv_str(const std::string & k, const std::string & v) { key(k, kString), str(v); }
};

Status run_export(const std::string & fw_path, const std::string & out_path) {
    M4_ASSIGN_OR_RETURN(auto m, model::Model::load(fw_path));
    const auto & c = m->config();
    const auto & b = c.backbone;
    const auto & w = m->weights().backbone;
    // Tensors in llama.cpp's names, each [out, in] row-major = ggml ne0 = in, ne1 = out.
    std::vector<std::pair<std::string, Tensor>> tensors;
    auto add = [&](const std::string & name, const Tensor & t) { tensors.emplace_back(name, to_f32(t)); };
    auto vec = [&](const std::string & name, const float * p, int64_t n) {
        tensors.emplace_back(name, Tensor::view(DType::F32, Shape{n}, p).clone());
    };
    add("token_embd.weight", w.tok_embed);
    for (int64_t l = 0; l < b.layers; ++l) {
        const auto &      L = w.layers[l];
        const std::string p = fmt::format("blk.{}.", l);
        vec(p + "attn_norm.weight", L.attn_norm, b.width);
        add(p + "attn_q.weight", L.q.w);
        add(p + "attn_k.weight", L.k.w);
        add(p + "attn_v.weight", L.v.w);
        add(p + "attn_output.weight", L.o.w);
        vec(p + "ffn_norm.weight", L.ffn_norm, b.width);
        add(p + "ffn_gate.weight", L.gate.w);
        add(p + "ffn_up.weight", L.up.w);
        add(p + "ffn_down.weight", L.down.w);
    }
    vec("output_norm.weight", w.norm, b.width);
    if (!b.tie_lm_head) add("output.weight", w.lm_head.w);  // absent: llama.cpp ties to token_embd

    GgufWriter g;
    g.kv_str("general.architecture", "llama");
    g.kv_str("general.name", c.name);
    g.kv_u32("general.file_type", 0);  // all f32
    g.kv_u32("general.alignment", kAlignment);
    g.kv_u32("llama.context_length", static_cast<uint32_t>(b.max_seq));
    g.kv_u32("llama.embedding_length", static_cast<uint32_t>(b.width));
    g.kv_u32("llama.block_count", static_cast<uint32_t>(b.layers));
    g.kv_u32("llama.feed_forward_length", static_cast<uint32_t>(b.ffn));
    g.kv_u32("llama.rope.dimension_count", static_cast<uint32_t>(b.head_dim()));
    g.kv_u32("llama.attention.head_count", static_cast<uint32_t>(b.heads));
    g.kv_u32("llama.attention.head_count_kv", static_cast<uint32_t>(b.kv_heads));
    g.kv_f32("llama.attention.layer_norm_rms_epsilon", b.norm_eps);
    g.kv_f32("llama.rope.freq_base", b.rope_theta);
    g.kv_u32("llama.vocab_size", static_cast<uint32_t>(c.text.vocab_size));
    // The SentencePiece vocabulary (llama.cpp's "llama" tokenizer is SentencePiece).
    const auto &  tok = m->tokenizer();
    const int32_t V   = static_cast<int32_t>(c.text.vocab_size);
    g.kv_str("tokenizer.ggml.model", "llama");
    g.key("tokenizer.ggml.tokens", kArray);
    g.u32(kString), g.u64(static_cast<uint64_t>(V));
    for (int32_t i = 0; i < V; ++i) g.str(i < tok.vocab_size() ? tok.piece(i) : fmt::format("<unused{}>", i));
    g.key("tokenizer.ggml.scores", kArray);
    g.u32(kF32), g.u64(static_cast<uint64_t>(V));
    for (int32_t i = 0; i < V; ++i) g.f32(i < tok.vocab_size() ? tok.score(i) : 0.0f);
    g.key("tokenizer.ggml.token_type", kArray);
    g.u32(kI32), g.u64(static_cast<uint64_t>(V));
    for (int32_t i = 0; i < V; ++i) g.i32(i < tok.vocab_size() ? tok.piece_type(i) : 5);
    g.kv_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(c.text.bos_id));
    g.kv_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(c.text.eos_id));
    g.kv_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(c.text.unk_id));
    g.kv_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(c.text.pad_id));

    // Header: magic, version, counts, then the metadata written above, then tensor infos.
    std::string head = "GGUF";
    auto        put  = [&](auto v) { head.append(reinterpret_cast<const char *>(&v), sizeof v); };
    put(uint32_t{3});
    put(static_cast<uint64_t>(tensors.size()));
    put(g.kv_count);
    GgufWriter info;
    uint64_t   offset = 0;
    for (const auto & [name, t] : tensors) {
        info.str(name);
        info.u32(static_cast<uint32_t>(t.ndim()));
        for (int d = t.ndim() - 1; d >= 0; --d) info.u64(static_cast<uint64_t>(t.dim(d)));  // ne0 = innermost
        info.u32(kGgmlF32);
        info.u64(offset);
        offset = (offset + t.nbytes() + kAlignment - 1) / kAlignment * kAlignment;
    }
    std::string file = head + g.out + info.out;
    file.resize((file.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
    const size_t data_start = file.size();
    file.resize(data_start + offset, '\0');
    uint64_t at = 0;
    for (const auto & [name, t] : tensors) {
        std::memcpy(file.data() + data_start + at, t.data(), t.nbytes());
        at = (at + t.nbytes() + kAlignment - 1) / kAlignment * kAlignment;
    }
    M4_RETURN_IF_ERROR(write_file_atomic(out_path, file.data(), file.size()));
    fmt::print("wrote {}: GGUF v3, llama architecture, {} tensors, {:.1f} MiB (f32)\n", out_path, tensors.size(),
               file.size() / 1048576.0);
    return Status::ok();
}

}  // namespace

void add_export_gguf_command(CLI::App & app, int * rc) {
    auto   fw  = std::make_shared<std::string>();
    auto   out = std::make_shared<std::string>();
    auto * cmd = app.add_subcommand("export-gguf", "write the firmware's backbone as a GGUF (llama) file");
    add_firmware_option(cmd, fw.get());
    cmd->add_option("--out", *out, "output .gguf")->required();
    cmd->callback([fw, out, rc] { *rc = report(run_export(*fw, *out)); });
}

}  // namespace m4::cli
