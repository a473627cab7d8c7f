// Hugging Face directories: config.json + model.safetensors (or model.safetensors.index.json and
// its shards) [+ tokenizer.model]. LLaMA-family causal LMs become the backbone, vision
// towers (SigLIP, ViT, CLIP) the image encoder. The tensor-name table is in docs/import.md.
#include <fmt/format.h>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <set>

#include "base/mapped_file.h"
#include "format/safetensors.h"
#include "import/import.h"
#include "model/tokenizer.h"

namespace m4::import {
namespace {

bool exists(const std::string & p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

// Every tensor of the checkpoint, by source name, with the shard it lives in.
struct Checkpoint {
    std::vector<std::unique_ptr<format::SafetensorsFile>> files;
    std::map<std::string, std::pair<const format::SafetensorsFile *, const format::SafetensorsEntry *>> tensors;

    Result<Tensor> load(const std::string & name, bool keep_bf16) const {
        const auto & [f, e] = tensors.at(name);
        return keep_bf16 ? f->view().to_tensor(*e) : f->view().to_f32(*e);
    }
    std::string where(const std::string & name) const {
        return tensors.at(name).first->path() + ": tensor '" + name + "'";
    }
};

Result<Checkpoint> open_checkpoint(const std::string & dir) {
    Checkpoint ck;
    auto add_file = [&](const std::string & path) -> Result<const format::SafetensorsFile *> {
        M4_ASSIGN_OR_RETURN(format::SafetensorsFile f, format::SafetensorsFile::open(path));
        ck.files.push_back(std::make_unique<format::SafetensorsFile>(std::move(f)));
        const format::SafetensorsFile * fp = ck.files.back().get();
        for (const auto & e : fp->view().entries) {
            if (ck.tensors.count(e.name))
                return invalid_argument(path + ": tensor '" + e.name + "' is also in " +
                                        ck.tensors[e.name].first->path());
            ck.tensors[e.name] = {fp, &e};
        }
        return fp;
    };
    const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
    if (exists(index)) {
        M4_ASSIGN_OR_RETURN(nlohmann::json j, read_json_file(index));
        if (!j.contains("weight_map") || !j["weight_map"].is_object())
            return invalid_argument(index + ": missing \"weight_map\"");
        std::map<std::string, const format::SafetensorsFile *> shards;
        for (auto & [name, shard] : j["weight_map"].items()) {
            if (!shard.is_string() || shard.get<std::string>().find('/') != std::string::npos)
                return invalid_argument(index + ": weight_map entry '" + name + "' is not a file name");
            const std::string s = shard.get<std::string>();
            if (!shards.count(s)) {
                M4_ASSIGN_OR_RETURN(shards[s], add_file(dir + "/" + s));
            }
            auto it = ck.tensors.find(name);
            if (it == ck.tensors.end() || it->second.first != shards[s])
                return invalid_argument(index + ": weight_map puts tensor '" + name + "' in " + s + ", which lacks it");
        }
        if (ck.tensors.size() != j["weight_map"].size())
            for (const auto & [name, fe] : ck.tensors)
                if (!j["weight_map"].contains(name))
                    return invalid_argument(fe.first->path() + ": tensor '" + name + "' is not in " + index);
    } else if (exists(single)) {
        M4_RETURN_IF_ERROR(add_file(single).status());
    } else {
        return not_found(dir + ": neither model.safetensors nor model.safetensors.index.json");
    }
    return ck;
}

// Reads an integer / float key of config.json; a missing or mistyped key names the file and key.
struct ConfigReader {
    const nlohmann::json & j;
    std::string file;
    Result<int64_t> integer(const char * key) const {
        if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
            return invalid_argument(file + ": \"" + key + "\" must be a positive integer");
        return j[key].get<int64_t>();
    }
    int64_t integer_or(const char * key, int64_t def) const {
        return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : def;
    }
    double number_or(const char * key, double def) const {
        return j.contains(key) && j[key].is_number() ? j[key].get<double>() : def;
    }
};

// Moves the checkpoint's tensors into `part` by the name table; a tensor the table lacks, or one
// the table names but the checkpoint lacks, is refused.
Status take_tensors(const Checkpoint & ck, const std::map<std::string, std::string> & table,
                    const std::map<std::string, Shape> & shapes, const std::string & config_file, Part * part,
                    const std::function<bool(const std::string &)> & ignore) {
    for (const auto & [src, fe] : ck.tensors) {
        if (table.count(src) || ignore(src)) continue;
        return unsupported(ck.where(src) + " has no m4 counterpart (docs/import.md lists the mapped names)");
    }
    for (const auto & [src, dst] : table) {
        if (!ck.tensors.count(src))
            return invalid_argument(ck.files.front()->path() + ": missing tensor '" + src + "' (m4 '" + dst + "')");
        const auto * e = ck.tensors.at(src).second;
        Shape want     = shapes.at(src);
        Shape have;
        if (e->shape.size() > 4) return invalid_argument(ck.where(src) + " has more than 4 dimensions");
        for (int64_t d : e->shape) have.dims[have.ndim++] = d;
        if (!(have == want))
            return invalid_argument(ck.where(src) + " has shape " + have.str() + " but " + config_file + " requires " +
                                    want.str());
        M4_ASSIGN_OR_RETURN(Tensor t, ck.load(src, /*keep_bf16=*/true));
        part->tensors[dst] = std::move(t);
        part->origin[dst]  = ck.where(src);
    }
    return Status::ok();
}

}  // namespace

Result<nlohmann::json> read_json_file(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return invalid_argument(path + ": not a JSON object");
    return j;
}

Tensor permute_rope_rows(const Tensor & w, int64_t heads) {
    M4_CHECK(w.ndim() == 2 && w.dtype() != DType::U8 && w.dim(0) % heads == 0 && (w.dim(0) / heads) % 2 == 0);
    const int64_t D = w.dim(0) / heads, K = w.dim(1);
    Tensor out       = Tensor::empty(w.dtype(), w.shape());
    const size_t rb  = static_cast<size_t>(K) * dtype_size(w.dtype());
    const auto * src = static_cast<const uint8_t *>(w.data());
    auto * dst       = static_cast<uint8_t *>(out.mutable_data());
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < D / 2; ++i)
            for (int64_t half = 0; half < 2; ++half) {
                const int64_t to = h * D + 2 * i + half, from = h * D + i + half * D / 2;
                std::memcpy(dst + to * rb, src + from * rb, rb);
                if (w.dtype() == DType::I8) const_cast<float *>(out.scales())[to] = w.scales()[from];
            }
    return out;
}

Result<Part> import_hf_llama(const std::string & dir) {
    const std::string cfg_file = dir + "/config.json";
    M4_ASSIGN_OR_RETURN(nlohmann::json j, read_json_file(cfg_file));
    const std::string type = j.value("model_type", "");
    if (type != "llama" && type != "mistral")
        return unsupported(cfg_file + ": model_type '" + type + "' is not a LLaMA-family causal LM");
    ConfigReader r{j, cfg_file};
    M4_ASSIGN_OR_RETURN(int64_t C, r.integer("hidden_size"));
    M4_ASSIGN_OR_RETURN(int64_t L, r.integer("num_hidden_layers"));
    M4_ASSIGN_OR_RETURN(int64_t H, r.integer("num_attention_heads"));
    M4_ASSIGN_OR_RETURN(int64_t F, r.integer("intermediate_size"));
    M4_ASSIGN_OR_RETURN(int64_t V, r.integer("vocab_size"));
    const int64_t G = r.integer_or("num_key_value_heads", H);
    if (H <= 0 || C % H != 0)
        return invalid_argument(cfg_file + ": hidden_size must be divisible by num_attention_heads");
    if (G <= 0 || H % G != 0)
        return invalid_argument(cfg_file + ": num_attention_heads must be divisible by num_key_value_heads");
    const int64_t D = C / H;
    if (r.integer_or("head_dim", D) != D)
        return unsupported(cfg_file + ": head_dim " + std::to_string(r.integer_or("head_dim", D)) +
                           " differs from hidden_size / num_attention_heads (m4 requires D = C / H)");
    if (j.contains("hidden_act") && j["hidden_act"] != "silu")
        return unsupported(cfg_file + ": hidden_act must be silu (SwiGLU)");
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
        return unsupported(cfg_file + ": rope_scaling " + j["rope_scaling"].dump() + " (m4's RoPE has no scaling)");
    if (j.contains("attention_bias") && j["attention_bias"] == true)
        return unsupported(cfg_file + ": attention_bias (m4's backbone linears have no bias)");
    if (j.contains("mlp_bias") && j["mlp_bias"] == true)
        return unsupported(cfg_file + ": mlp_bias (m4's backbone linears have no bias)");
    if (j.contains("sliding_window") && j["sliding_window"].is_number_integer() &&
        j["sliding_window"].get<int64_t>() < r.integer_or("max_position_embeddings", 2048))
        return unsupported(cfg_file + ": sliding_window " + j["sliding_window"].dump() +
                           " (m4's attention sees the whole context)");
    const bool tied = j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean() &&
                      j["tie_word_embeddings"].get<bool>();
    Part part;
    part.role   = Role::Backbone;
    part.config = {{"text", {{"vocab_size", V}}},
                   {"backbone",
                    {{"width", C},
                     {"layers", L},
                     {"heads", H},
                     {"kv_heads", G},
                     {"ffn", F},
                     {"max_seq", r.integer_or("max_position_embeddings", 2048)},
                     {"rope_theta", r.number_or("rope_theta", 10000.0)},
                     {"norm_eps", r.number_or("rms_norm_eps", 1e-6)},
                     {"tie_lm_head", tied}}}};
    part.source = {{"format", "hf-llama"}, {"path", dir}, {"model_type", type}};
    if (j.contains("_name_or_path") && j["_name_or_path"].is_string()) part.source["name"] = j["_name_or_path"];
    // Tokenizer: only SentencePiece models; a byte-level BPE tokenizer.json is refused by name.
    const std::string spm = dir + "/tokenizer.model";
    if (!exists(spm)) {
        std::string why = "no tokenizer.model (m4's tokenizer is SentencePiece)";
        if (exists(dir + "/tokenizer.json")) {
            auto tj = read_json_file(dir + "/tokenizer.json");
            if (tj && tj->contains("pre_tokenizer") &&
                tj->at("pre_tokenizer").dump().find("ByteLevel") != std::string::npos)
                why =
                    "tokenizer.json is a GPT-2 byte-level BPE vocabulary, which m4's SentencePiece tokenizer cannot "
                    "represent, and there is no tokenizer.model";
        }
        return unsupported(dir + ": " + why);
    }
    M4_ASSIGN_OR_RETURN(part.tokenizer_model, read_file_bytes(spm));
    M4_ASSIGN_OR_RETURN(model::Tokenizer tok, model::Tokenizer::from_bytes(part.tokenizer_model, spm));
    if (tok.vocab_size() > V)
        return invalid_argument(spm + ": " + std::to_string(tok.vocab_size()) + " pieces, more than " + cfg_file +
                                " vocab_size " + std::to_string(V));
    // Special ids: config.json's when it gives one integer (Llama 3 lists several eos ids), else the model's.
    auto id = [&](const char * key, int32_t def) {
        return j.contains(key) && j[key].is_number_integer() ? j[key].get<int32_t>() : def;
    };
    part.config["text"]["bos_id"] = id("bos_token_id", tok.bos_id());
    part.config["text"]["eos_id"] = id("eos_token_id", tok.eos_id());
    part.config["text"]["pad_id"] = tok.pad_id() >= 0 ? tok.pad_id() : 0;
    part.config["text"]["unk_id"] = tok.unk_id();

    M4_ASSIGN_OR_RETURN(Checkpoint ck, open_checkpoint(dir));
    std::map<std::string, std::string> table;
    std::map<std::string, Shape> shapes;
    auto map = [&](const std::string & src, const std::string & dst, Shape s) { table[src] = dst, shapes[src] = s; };
    map("model.embed_tokens.weight", "backbone.tok_embed.weight", Shape{V, C});
    for (int64_t l = 0; l < L; ++l) {
        const std::string s = fmt::format("model.layers.{}.", l), d = fmt::format("backbone.layers.{}.", l);
        map(s + "input_layernorm.weight", d + "attn_norm.weight", Shape{C});
        map(s + "self_attn.q_proj.weight", d + "attn.q.weight", Shape{H * D, C});
        map(s + "self_attn.k_proj.weight", d + "attn.k.weight", Shape{G * D, C});
        map(s + "self_attn.v_proj.weight", d + "attn.v.weight", Shape{G * D, C});
        map(s + "self_attn.o_proj.weight", d + "attn.o.weight", Shape{C, H * D});
        map(s + "post_attention_layernorm.weight", d + "ffn_norm.weight", Shape{C});
        map(s + "mlp.gate_proj.weight", d + "ffn.gate.weight", Shape{F, C});
        map(s + "mlp.up_proj.weight", d + "ffn.up.weight", Shape{F, C});
        map(s + "mlp.down_proj.weight", d + "ffn.down.weight", Shape{C, F});
    }
    map("model.norm.weight", "backbone.norm.weight", Shape{C});
    if (!tied) map("lm_head.weight", "backbone.lm_head.weight", Shape{V, C});
    auto ignore = [&](const std::string & n) {
        // Buffers some checkpoints carry (recomputed from rope_theta), and a tied head saved anyway.
        return n.find("rotary_emb.inv_freq") != std::string::npos || (tied && n == "lm_head.weight");
    };
    M4_RETURN_IF_ERROR(take_tensors(ck, table, shapes, cfg_file, &part, ignore));
    for (int64_t l = 0; l < L; ++l) {
        const std::string d               = fmt::format("backbone.layers.{}.", l);
        part.tensors[d + "attn.q.weight"] = permute_rope_rows(part.tensors[d + "attn.q.weight"], H);
        part.tensors[d + "attn.k.weight"] = permute_rope_rows(part.tensors[d + "attn.k.weight"], G);
    }
    return part;
}

namespace {

// The three vision-tower families (docs/import.md, "Vision towers").
enum class Family { Siglip, Vit, Clip };

// hidden_act → m4's encoder activation; the tanh-approximated GELU goes by two names in HF.
bool parse_hidden_act(const std::string & act, std::string * out) {
    if (act == "gelu")
        *out = "gelu";
    else if (act == "gelu_pytorch_tanh" || act == "gelu_new")
        *out = "gelu_tanh";
    else if (act == "quick_gelu")
        *out = "quick_gelu";
    else
        return false;
    return true;
}

// Pixel normalisation of the source model, per channel: u = (v − mean) / std for v in [0, 1]
// (preprocessor_config.json's image_mean / image_std; the family's default without one).
struct PixelNorm {
    double mean[3], std[3];
};

Result<PixelNorm> read_pixel_norm(const std::string & dir, Family f) {
    // CLIP's defaults are OpenAI's dataset statistics; SigLIP's and ViT's 0.5 / 0.5.
    PixelNorm n            = f == Family::Clip
                                 ? PixelNorm{{0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}}
                                 : PixelNorm{{0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}};
    const std::string file = dir + "/preprocessor_config.json";
    if (!exists(file)) return n;
    M4_ASSIGN_OR_RETURN(nlohmann::json j, read_json_file(file));
    if (j.contains("do_normalize") && j["do_normalize"] == false) return PixelNorm{{0, 0, 0}, {1, 1, 1}};
    if (j.contains("rescale_factor") && j["rescale_factor"].is_number() &&
        std::fabs(j["rescale_factor"].get<double>() * 255.0 - 1.0) > 1e-6)
        return unsupported(file + ": rescale_factor " + j["rescale_factor"].dump() + " (m4 scales pixels by 1/255)");
    for (const char * key : {"image_mean", "image_std"}) {
        if (!j.contains(key)) continue;
        const auto & v = j[key];
        if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number())
            return invalid_argument(file + ": \"" + key + "\" must be a list of 3 numbers");
        for (int c = 0; c < 3; ++c) (std::string(key) == "image_mean" ? n.mean : n.std)[c] = v[c].get<double>();
    }
    for (int c = 0; c < 3; ++c)
        if (!(n.std[c] > 0)) return invalid_argument(file + ": \"image_std\" must be positive");
    return n;
}

}  // namespace

Result<Part> import_hf_vision(const std::string & dir) {
    const std::string cfg_file = dir + "/config.json";
    M4_ASSIGN_OR_RETURN(nlohmann::json top, read_json_file(cfg_file));
    const std::string type = top.value("model_type", "");
    nlohmann::json j       = top;
    if ((type == "siglip" || type == "clip") && top.contains("vision_config")) j = top["vision_config"];
    Family fam;
    if (type == "vit")
        fam = Family::Vit;  // class token, pos [1, T+1, W]
    else if (type == "siglip" || type == "siglip_vision_model")
        fam = Family::Siglip;  // no class token
    else if (type == "clip" || type == "clip_vision_model")
        fam = Family::Clip;  // class token, pre-norm, final norm on the class token only
    else
        return unsupported(cfg_file + ": model_type '" + type +
                           "' is not a vision tower m4 maps (siglip_vision_model, vit, clip_vision_model; "
                           "docs/import.md)");
    const bool vit = fam == Family::Vit, clip = fam == Family::Clip, cls = vit || clip;
    ConfigReader r{j, cfg_file};
    M4_ASSIGN_OR_RETURN(int64_t W, r.integer("hidden_size"));
    M4_ASSIGN_OR_RETURN(int64_t L, r.integer("num_hidden_layers"));
    M4_ASSIGN_OR_RETURN(int64_t Hm, r.integer("num_attention_heads"));
    M4_ASSIGN_OR_RETURN(int64_t Fm, r.integer("intermediate_size"));
    M4_ASSIGN_OR_RETURN(int64_t S, r.integer("image_size"));
    M4_ASSIGN_OR_RETURN(int64_t p, r.integer("patch_size"));
    // The configs' defaults: ViT gelu, SigLIP gelu_pytorch_tanh, CLIP quick_gelu.
    const std::string act = j.contains("hidden_act") && j["hidden_act"].is_string() ? j["hidden_act"].get<std::string>()
                            : vit                                                   ? "gelu"
                            : clip                                                  ? "quick_gelu"
                                                                                    : "gelu_pytorch_tanh";
    std::string activation;
    if (!parse_hidden_act(act, &activation))
        return unsupported(cfg_file + ": hidden_act '" + act +
                           "' (m4's encoder MLP has gelu, gelu_pytorch_tanh / gelu_new and quick_gelu)");
    if (r.integer_or("num_channels", 3) != 3) return unsupported(cfg_file + ": num_channels must be 3 (RGB)");
    // ViT without q/k/v biases: zero biases, the same function.
    const bool qkv_bias = !(vit && j.contains("qkv_bias") && j["qkv_bias"] == false);
    if (S % p) return invalid_argument(cfg_file + ": image_size must be a multiple of patch_size");
    M4_ASSIGN_OR_RETURN(PixelNorm pix, read_pixel_norm(dir, fam));
    const int64_t Np = (S / p) * (S / p), T = Np + (cls ? 1 : 0);
    Part part;
    part.role   = Role::Image;
    part.config = {{"image_size", S}, {"patch_size", p},
                   {"channels", 3},   {"width", W},
                   {"layers", L},     {"heads", Hm},
                   {"ffn", Fm},       {"norm_eps", r.number_or("layer_norm_eps", vit ? 1e-12 : clip ? 1e-5 : 1e-6)}};
    if (cls) part.config["cls_token"] = true;
    if (clip) part.config["pre_norm"] = true, part.config["pool"] = "cls";
    if (activation != "gelu") part.config["activation"] = activation;
    part.source = {{"format", vit ? "hf-vit" : clip ? "hf-clip-vision" : "hf-siglip-vision"}, {"path", dir}};
    M4_ASSIGN_OR_RETURN(Checkpoint ck, open_checkpoint(dir));
    // Prefixes: SigLIP's and CLIP's vision tower (a full checkpoint also holds the text tower, left
    // out); ViT's "vit." inside ViTForImageClassification, none in a ViTModel.
    std::string pre         = vit ? "vit." : "vision_model.";
    const std::string probe = vit ? "embeddings.cls_token" : "embeddings.patch_embedding.weight";
    if (!ck.tensors.count(pre + probe)) pre = "";
    std::map<std::string, std::string> table;
    std::map<std::string, Shape> shapes;
    std::vector<std::pair<std::string, int64_t>> zero_biases;  // m4 biases the source has not: zeros
    auto map = [&](const std::string & src, const std::string & dst, Shape s) {
        table[pre + src] = dst, shapes[pre + src] = s;
    };
    auto lin = [&](const std::string & src, const std::string & dst, int64_t out, int64_t in, bool bias = true) {
        map(src + ".weight", dst + ".weight", Shape{out, in});
        if (bias)
            map(src + ".bias", dst + ".bias", Shape{out});
        else
            zero_biases.push_back({dst + ".bias", out});
    };
    auto norm = [&](const std::string & src, const std::string & dst) {
        map(src + ".weight", dst + ".weight", Shape{W});
        map(src + ".bias", dst + ".bias", Shape{W});
    };
    const std::string e = "encoders.image.";
    if (vit) {
        map("embeddings.cls_token", e + "cls_token", Shape{1, 1, W});
        map("embeddings.position_embeddings", e + "pos_embed", Shape{1, T, W});
        map("embeddings.patch_embeddings.projection.weight", e + "patch_embed.weight", Shape{W, 3, p, p});
        map("embeddings.patch_embeddings.projection.bias", e + "patch_embed.bias", Shape{W});
    } else {
        map("embeddings.patch_embedding.weight", e + "patch_embed.weight", Shape{W, 3, p, p});
        if (clip)
            zero_biases.push_back({e + "patch_embed.bias", W});  // CLIP's patch conv has no bias
        else
            map("embeddings.patch_embedding.bias", e + "patch_embed.bias", Shape{W});
        map("embeddings.position_embedding.weight", e + "pos_embed", Shape{T, W});
        if (clip) {
            map("embeddings.class_embedding", e + "cls_token", Shape{W});
            norm("pre_layrnorm", e + "pre_norm");  // sic: HF's spelling
        }
    }
    for (int64_t l = 0; l < L; ++l) {
        const std::string d = fmt::format("{}layers.{}.", e, l);
        if (vit) {
            const std::string s = fmt::format("encoder.layer.{}.", l);
            norm(s + "layernorm_before", d + "ln1");
            lin(s + "attention.attention.query", d + "attn.q", W, W, qkv_bias);
            lin(s + "attention.attention.key", d + "attn.k", W, W, qkv_bias);
            lin(s + "attention.attention.value", d + "attn.v", W, W, qkv_bias);
            lin(s + "attention.output.dense", d + "attn.o", W, W);
            norm(s + "layernorm_after", d + "ln2");
            lin(s + "intermediate.dense", d + "mlp.fc1", Fm, W);
            lin(s + "output.dense", d + "mlp.fc2", W, Fm);
        } else {
            const std::string s = fmt::format("encoder.layers.{}.", l);
            norm(s + "layer_norm1", d + "ln1");
            lin(s + "self_attn.q_proj", d + "attn.q", W, W);
            lin(s + "self_attn.k_proj", d + "attn.k", W, W);
            lin(s + "self_attn.v_proj", d + "attn.v", W, W);
            lin(s + "self_attn.out_proj", d + "attn.o", W, W);
            norm(s + "layer_norm2", d + "ln2");
            lin(s + "mlp.fc1", d + "mlp.fc1", Fm, W);
            lin(s + "mlp.fc2", d + "mlp.fc2", W, Fm);
        }
    }
    norm(vit ? "layernorm" : "post_layernorm", e + "norm");
    std::set<std::string> dropped;
    auto ignore = [&](const std::string & n) {
        // Heads m4 replaces with embed_proj: SigLIP's attention pooling, ViT's pooler and
        // classifier, CLIP's visual_projection. Other towers of a full checkpoint (SigLIP's and
        // CLIP's text towers, CLIP's logit_scale) are left out; position_ids is a buffer.
        for (const char * h : {"head.", "pooler.", "classifier.", "visual_projection."})
            if (n.rfind(pre + h, 0) == 0 || n.rfind(h, 0) == 0) {
                dropped.insert(h);
                return true;
            }
        if (n == pre + "embeddings.position_ids") return true;
        return !pre.empty() && n.rfind(pre, 0) != 0;
    };
    M4_RETURN_IF_ERROR(take_tensors(ck, table, shapes, cfg_file, &part, ignore));
    for (const auto & h : dropped)
        part.source["notes"].push_back(h +
                                       std::string(clip ? "* not imported: m4 projects the pooled class token "
                                                          "with its own embed_proj"
                                                        : "* not imported: m4 mean-pools the tokens into embed_proj"));
    for (const auto & [name, n] : zero_biases) {
        Tensor z = Tensor::empty(DType::F32, Shape{n});
        std::fill(z.f32(), z.f32() + n, 0.0f);
        part.tensors[name] = z;
        part.origin[name]  = "zeros (the source layer has no bias)";
    }
    if (vit) {
        part.tensors[e + "cls_token"] = part.tensors[e + "cls_token"].reshaped(Shape{W});
        part.tensors[e + "pos_embed"] = part.tensors[e + "pos_embed"].reshaped(Shape{T, W});
    }
    // Conv weight [W, c, dy, dx] → m4's patch vector order (dy, dx, c): [W, p·p·3], with the
    // source's pixel normalisation folded in. m4 feeds x = 2v − 1 (v in [0, 1]); the source wants
    // u_c = (v − mean_c) / std_c = x / (2·std_c) + (0.5 − mean_c) / std_c, so each weight is divided by
    // 2·std_c and the bias gains Σ w·(0.5 − mean_c) / std_c (nothing changes for mean = std = 0.5).
    Tensor conv  = to_f32(part.tensors[e + "patch_embed.weight"]);
    Tensor bias  = to_f32(part.tensors[e + "patch_embed.bias"]);
    Tensor pe    = Tensor::empty(DType::F32, Shape{W, p * p * 3});
    Tensor pbias = Tensor::empty(DType::F32, Shape{W});
    for (int64_t o = 0; o < W; ++o) {
        double shift = bias.f32()[o];
        for (int64_t c = 0; c < 3; ++c)
            for (int64_t dy = 0; dy < p; ++dy)
                for (int64_t dx = 0; dx < p; ++dx) {
                    const double w = conv.f32()[((o * 3 + c) * p + dy) * p + dx];
                    shift += w * (0.5 - pix.mean[c]) / pix.std[c];
                    pe.f32()[o * p * p * 3 + (dy * p + dx) * 3 + c] = static_cast<float>(w / (2.0 * pix.std[c]));
                }
        pbias.f32()[o] = static_cast<float>(shift);
    }
    part.tensors[e + "patch_embed.weight"] = pe;
    part.tensors[e + "patch_embed.bias"]   = pbias;
    // Recorded when it changed anything (SigLIP / ViT imports at 0.5 / 0.5 keep their header bytes).
    bool identity = true;
    for (int c = 0; c < 3; ++c) identity = identity && pix.mean[c] == 0.5 && pix.std[c] == 0.5;
    if (!identity)
        part.source["pixel_norm"] = {{"mean", {pix.mean[0], pix.mean[1], pix.mean[2]}},
                                     {"std", {pix.std[0], pix.std[1], pix.std[2]}}};
    return part;
}

}  // namespace m4::import
