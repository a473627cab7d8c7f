#include "model/weights.h"

#include <cmath>

#include "format/container.h"

namespace m4::model {
namespace {

std::string layer_prefix(const std::string & base, int64_t l) {
    return base + ".layers." + std::to_string(l) + ".";
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const ModelConfig & c) {
    std::vector<TensorSpec> s;
    auto lin = [&](const std::string & name, int64_t out, int64_t in, bool bias) {
        s.push_back({name + ".weight", Shape{out, in}, TensorRole::LinearWeight, 1.0f / std::sqrt(float(in))});
        if (bias) s.push_back({name + ".bias", Shape{out}, TensorRole::Bias, 0.0f});
    };
    auto norm = [&](const std::string & name, int64_t n, bool bias) {
        s.push_back({name + ".weight", Shape{n}, TensorRole::Norm, 1.0f});
        if (bias) s.push_back({name + ".bias", Shape{n}, TensorRole::Bias, 0.0f});
    };
    const auto & b  = c.backbone;
    const int64_t C = b.width, D = b.head_dim(), F = b.ffn, V = c.text.vocab_size;
    s.push_back({"backbone.tok_embed.weight", Shape{V, C}, TensorRole::Embedding, 1.0f});
    for (int64_t l = 0; l < b.layers; ++l) {
        std::string p = layer_prefix("backbone", l);
        norm(p + "attn_norm", C, false);
        lin(p + "attn.q", b.heads * D, C, false);
        lin(p + "attn.k", b.kv_heads * D, C, false);
        lin(p + "attn.v", b.kv_heads * D, C, false);
        lin(p + "attn.o", C, b.heads * D, false);
        norm(p + "ffn_norm", C, false);
        lin(p + "ffn.gate", F, C, false);
        lin(p + "ffn.up", F, C, false);
        lin(p + "ffn.down", C, F, false);
    }
    norm("backbone.norm", C, false);
    if (!b.tie_lm_head) lin("backbone.lm_head", V, C, false);
    lin("backbone.text_proj", c.embed_dim, C, false);
    for (int m = 0; m < kEncoderModalities; ++m) {
        if (!c.encoders[m]) continue;
        const auto & e   = *c.encoders[m];
        std::string base = std::string("encoders.") + modality_name(e.modality);
        lin(base + ".patch_embed", e.width, e.patch_dim(), true);
        if (e.cls_token) s.push_back({base + ".cls_token", Shape{e.width}, TensorRole::Position, 0.02f});
        s.push_back({base + ".pos_embed", Shape{e.tokens(), e.width}, TensorRole::Position, 0.02f});
        if (e.pre_norm) norm(base + ".pre_norm", e.width, true);
        for (int64_t l = 0; l < e.layers; ++l) {
            std::string p = layer_prefix(base, l);
            norm(p + "ln1", e.width, true);
            for (const char * n : {"attn.q", "attn.k", "attn.v", "attn.o"}) lin(p + n, e.width, e.width, true);
            norm(p + "ln2", e.width, true);
            lin(p + "mlp.fc1", e.ffn, e.width, true);
            lin(p + "mlp.fc2", e.width, e.ffn, true);
        }
        norm(base + ".norm", e.width, true);
        lin(base + ".embed_proj", c.embed_dim, e.width, false);
        lin(std::string("projectors.") + modality_name(e.modality), C, e.width, true);
    }
    // A decoder: an encoder-shaped trunk, then out_proj [out_dim, W].
    auto decoder = [&](const EncoderConfig & d, const std::string & base, int64_t out_dim) {
        lin(base + ".patch_embed", d.width, d.patch_dim(), true);
        s.push_back({base + ".pos_embed", Shape{d.tokens(), d.width}, TensorRole::Position, 0.02f});
        for (int64_t l = 0; l < d.layers; ++l) {
            std::string p = layer_prefix(base, l);
            norm(p + "ln1", d.width, true);
            for (const char * n : {"attn.q", "attn.k", "attn.v", "attn.o"}) lin(p + n, d.width, d.width, true);
            norm(p + "ln2", d.width, true);
            lin(p + "mlp.fc1", d.ffn, d.width, true);
            lin(p + "mlp.fc2", d.width, d.ffn, true);
        }
        norm(base + ".norm", d.width, true);
        lin(base + ".out_proj", out_dim, d.width, true);
    };
    if (c.image_decoder) {
        const EncoderConfig & d = *c.image_decoder;
        decoder(d, "decoders.image", d.patch_dim());
        if (c.image_decoder_from_backbone) {  // after the image decoder's own tensors, before TTS-Dec's
            s.push_back({"decoders.image.from_backbone.queries", Shape{d.tokens(), C}, TensorRole::Position, 0.02f});
            lin("decoders.image.from_backbone.proj", d.patch_dim(), C, true);
        }
    }
    if (c.speech_decoder) decoder(c.speech_decoder->trunk(), "decoders.speech", c.speech_decoder->n_mels);
    return s;
}

std::vector<std::string> linear_names(const ModelConfig & c) {
    std::vector<std::string> names;
    for (const auto & t : expected_tensors(c)) {
        if (t.role != TensorRole::LinearWeight) continue;
        names.push_back(t.name.substr(0, t.name.size() - 7));  // drop ".weight"
    }
    return names;
}

Status resolve_weights(const format::ContainerFile & file, const ModelConfig & c, Weights * out) {
    // 1. every expected tensor present, right shape, allowed dtype
    for (const auto & spec : expected_tensors(c)) {
        const format::TensorEntry * e = file.find(spec.name);
        if (!e) return invalid_argument(file.path() + ": missing tensor '" + spec.name + "' required by the config");
        if (!(e->shape == spec.shape))
            return invalid_argument(file.path() + ": tensor '" + spec.name + "' has shape " + e->shape.str() +
                                    " but the config requires " + spec.shape.str());
        bool quantisable = spec.role == TensorRole::LinearWeight || spec.role == TensorRole::Embedding;
        if (e->dtype == DType::U8 || (!quantisable && e->dtype != DType::F32))
            return invalid_argument(file.path() + ": tensor '" + spec.name + "' has dtype " + dtype_name(e->dtype) +
                                    (quantisable ? " (expected f32, bf16 or i8)" : " (expected f32)"));
    }
    bind_weights(
        c, [&](const std::string & n) { return file.tensor(n); }, out);
    return Status::ok();
}

void bind_weights(const ModelConfig & c, const std::function<Tensor(const std::string &)> & get, Weights * out) {
    auto f32 = [&](const std::string & n) -> const float * { return get(n).f32(); };
    auto lin = [&](const std::string & n, bool bias) {
        Linear l;
        l.name = n;
        l.w    = get(n + ".weight");
        if (bias) l.bias = f32(n + ".bias");
        return l;
    };
    const auto & b = c.backbone;
    auto & bw      = out->backbone;
    bw.tok_embed   = get("backbone.tok_embed.weight");
    bw.layers.resize(b.layers);
    for (int64_t l = 0; l < b.layers; ++l) {
        std::string p = layer_prefix("backbone", l);
        auto & L      = bw.layers[l];
        L.attn_norm   = f32(p + "attn_norm.weight");
        L.q           = lin(p + "attn.q", false);
        L.k           = lin(p + "attn.k", false);
        L.v           = lin(p + "attn.v", false);
        L.o           = lin(p + "attn.o", false);
        L.ffn_norm    = f32(p + "ffn_norm.weight");
        L.gate        = lin(p + "ffn.gate", false);
        L.up          = lin(p + "ffn.up", false);
        L.down        = lin(p + "ffn.down", false);
    }
    bw.norm = f32("backbone.norm.weight");
    if (b.tie_lm_head) {
        bw.lm_head.name = "backbone.lm_head";
        bw.lm_head.w    = bw.tok_embed;
    } else {
        bw.lm_head = lin("backbone.lm_head", false);
    }
    bw.text_proj = lin("backbone.text_proj", false);
    // The transformer trunk shared by encoders and the image decoder.
    auto trunk = [&](const EncoderConfig & e, const std::string & base, EncoderWeights & ew) {
        ew.patch_embed = lin(base + ".patch_embed", true);
        ew.pos_embed   = f32(base + ".pos_embed");
        ew.cls_token   = e.cls_token ? f32(base + ".cls_token") : nullptr;
        ew.pre_norm_w  = e.pre_norm ? f32(base + ".pre_norm.weight") : nullptr;
        ew.pre_norm_b  = e.pre_norm ? f32(base + ".pre_norm.bias") : nullptr;
        ew.layers.resize(e.layers);
        for (int64_t l = 0; l < e.layers; ++l) {
            std::string p = layer_prefix(base, l);
            auto & L      = ew.layers[l];
            L.ln1_w       = f32(p + "ln1.weight");
            L.ln1_b       = f32(p + "ln1.bias");
            L.q           = lin(p + "attn.q", true);
            L.k           = lin(p + "attn.k", true);
            L.v           = lin(p + "attn.v", true);
            L.o           = lin(p + "attn.o", true);
            L.ln2_w       = f32(p + "ln2.weight");
            L.ln2_b       = f32(p + "ln2.bias");
            L.fc1         = lin(p + "mlp.fc1", true);
            L.fc2         = lin(p + "mlp.fc2", true);
        }
        ew.norm_w = f32(base + ".norm.weight");
        ew.norm_b = f32(base + ".norm.bias");
    };
    for (int m = 0; m < kEncoderModalities; ++m) {
        if (!c.encoders[m]) continue;
        const auto & e   = *c.encoders[m];
        std::string base = std::string("encoders.") + modality_name(e.modality);
        auto & ew        = out->encoders[m];
        trunk(e, base, ew);
        ew.embed_proj = lin(base + ".embed_proj", false);
        ew.projector  = lin(std::string("projectors.") + modality_name(e.modality), true);
    }
    if (c.image_decoder) {
        trunk(*c.image_decoder, "decoders.image", out->image_decoder.trunk);
        out->image_decoder.out_proj = lin("decoders.image.out_proj", true);
        if (c.image_decoder_from_backbone) {
            out->image_decoder.queries       = f32("decoders.image.from_backbone.queries");
            out->image_decoder.from_backbone = lin("decoders.image.from_backbone.proj", true);
        }
    }
    if (c.speech_decoder) {
        trunk(c.speech_decoder->trunk(), "decoders.speech", out->speech_decoder.trunk);
        out->speech_decoder.out_proj = lin("decoders.speech.out_proj", true);
    }
    // 2. index every linear by name (stable addresses: vectors are sized above and not resized)
    out->linears.clear();
    auto add = [&](const Linear & l) { out->linears[l.name] = &l; };
    for (auto & L : bw.layers)
        for (const Linear * l : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) add(*l);
    if (!b.tie_lm_head) add(bw.lm_head);
    add(bw.text_proj);
    for (int m = 0; m < kEncoderModalities; ++m) {
        if (!c.encoders[m]) continue;
        auto & ew = out->encoders[m];
        add(ew.patch_embed);
        for (auto & L : ew.layers)
            for (const Linear * l : {&L.q, &L.k, &L.v, &L.o, &L.fc1, &L.fc2}) add(*l);
        add(ew.embed_proj);
        add(ew.projector);
    }
    auto add_decoder = [&](const DecoderWeights & dw) {
        add(dw.trunk.patch_embed);
        for (auto & L : dw.trunk.layers)
            for (const Linear * l : {&L.q, &L.k, &L.v, &L.o, &L.fc1, &L.fc2}) add(*l);
        add(dw.out_proj);
    };
    if (c.image_decoder) {
        add_decoder(out->image_decoder);
        if (c.image_decoder_from_backbone) add(out->image_decoder.from_backbone);
    }
    if (c.speech_decoder) add_decoder(out->speech_decoder);
}

}  // namespace m4::model
