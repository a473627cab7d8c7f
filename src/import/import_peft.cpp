// PEFT LoRA directories → .m4a: adapter_config.json (peft_type LORA, r, lora_alpha,
// target_modules) and adapter_model.safetensors with
//     base_model.model.model.layers.L.self_attn.q_proj.lora_A.weight   [r, in]  → lora.<X>.a
//     base_model.model.model.layers.L.self_attn.q_proj.lora_B.weight   [out, r] → lora.<X>.b
// PEFT computes W x + (alpha / r) · B A x, m4 y = x·Wᵀ + (alpha / R)·(x·Aᵀ)·Bᵀ: the same. B of q and
// k gets the same RoPE row permutation as the base weights.
//
// rank_pattern / alpha_pattern give some modules their own r_t / alpha_t. An .m4a has one rank R
// and one alpha, so such an adapter is stored at R = the largest rank: A [r_t, in] gains R − r_t zero
// rows and B [out, r_t] zero columns (they add exactly nothing), and a module whose scale s_t differs
// from the adapter's s = alpha / r has s_t / s folded into its B (one f32 rounding per value).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>

#include "adapter/adapter.h"
#include "format/safetensors.h"
#include "import/import.h"

namespace m4::import {
namespace {

// PEFT's pattern lookup: the first key k (a regular expression) for which the module name matches
// "(.*\.)?(k)" wins; no key: the adapter-wide value.
const nlohmann::json * pattern_value(const nlohmann::json & patterns, const std::string & module) {
    if (!patterns.is_object()) return nullptr;
    for (auto it = patterns.begin(); it != patterns.end(); ++it)
        if (std::regex_match(module, std::regex("(.*\\.)?(" + it.key() + ")"))) return &it.value();
    return nullptr;
}

// Pads A [r, in] to [R, in] with zero rows, B [out, r] to [out, R] with zero columns.
Tensor pad_rows(const Tensor & a, int64_t R) {
    Tensor out = Tensor::zeros(DType::F32, {R, a.dim(1)});
    std::memcpy(out.f32(), a.f32(), static_cast<size_t>(a.numel()) * 4);
    return out;
}
Tensor pad_cols(const Tensor & b, int64_t R) {
    const int64_t rows = b.dim(0), r = b.dim(1);
    Tensor out = Tensor::zeros(DType::F32, {rows, R});
    for (int64_t i = 0; i < rows; ++i) std::memcpy(out.f32() + i * R, b.f32() + i * r, static_cast<size_t>(r) * 4);
    return out;
}

struct Module {
    std::string m4;     // linear name
    bool rope = false;  // q or k: B's rows are permuted like the base weight
};

// "model.layers.3.self_attn.q_proj" → backbone.layers.3.attn.q; "lm_head" → backbone.lm_head.
bool map_module(const std::string & hf, Module * out) {
    static const std::regex layer(R"(model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+))");
    static const std::map<std::string, std::pair<std::string, bool>> names = {
        {"q_proj", {"attn.q", true}},      {"k_proj", {"attn.k", true}},       {"v_proj", {"attn.v", false}},
        {"o_proj", {"attn.o", false}},     {"gate_proj", {"ffn.gate", false}}, {"up_proj", {"ffn.up", false}},
        {"down_proj", {"ffn.down", false}}};
    std::smatch m;
    if (hf == "lm_head") return *out = {"backbone.lm_head", false}, true;
    if (!std::regex_match(hf, m, layer) || !names.count(m[3])) return false;
    const auto & [n, rope] = names.at(m[3]);
    *out                   = {"backbone.layers." + m[1].str() + "." + n, rope};
    return true;
}

}  // namespace

Result<AdapterReport> import_peft_adapter(const std::string & dir, const std::string & firmware_path,
                                          const std::string & out_path, const std::string & name) {
    const std::string cfg_file = dir + "/adapter_config.json", st_file = dir + "/adapter_model.safetensors";
    M4_ASSIGN_OR_RETURN(nlohmann::json j, read_json_file(cfg_file));
    if (j.value("peft_type", "") != "LORA")
        return unsupported(cfg_file + ": peft_type '" + j.value("peft_type", "") + "' (m4 imports LORA)");
    if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0)
        return invalid_argument(cfg_file + ": \"r\" must be a positive integer");
    const int64_t R = j["r"].get<int64_t>();
    float alpha     = j.contains("lora_alpha") && j["lora_alpha"].is_number() ? j["lora_alpha"].get<float>() : 8.0f;
    for (const char * k : {"use_dora", "fan_in_fan_out"})
        if (j.value(k, false)) return unsupported(cfg_file + ": " + k + " = true is not supported by m4's LoRA");
    if (j.value("bias", std::string("none")) != "none")
        return unsupported(cfg_file + ": bias '" + j.value("bias", "") + "' (m4's LoRA trains no biases)");
    nlohmann::json rank_pattern  = j.value("rank_pattern", nlohmann::json::object());
    nlohmann::json alpha_pattern = j.value("alpha_pattern", nlohmann::json::object());
    if (rank_pattern.is_null()) rank_pattern = nlohmann::json::object();
    if (alpha_pattern.is_null()) alpha_pattern = nlohmann::json::object();
    if (!rank_pattern.is_object()) return invalid_argument(cfg_file + ": \"rank_pattern\" must be an object");
    if (!alpha_pattern.is_object()) return invalid_argument(cfg_file + ": \"alpha_pattern\" must be an object");
    for (auto & [k, v] : rank_pattern.items()) {
        if (!v.is_number_integer() || v.get<int64_t>() <= 0)
            return invalid_argument(cfg_file + ": rank_pattern '" + k + "' must be a positive integer");
        try {
            std::regex probe(k);
        } catch (const std::regex_error &) {
            return invalid_argument(cfg_file + ": rank_pattern key '" + k + "' is not a regular expression");
        }
    }
    for (auto & [k, v] : alpha_pattern.items()) {
        if (!v.is_number()) return invalid_argument(cfg_file + ": alpha_pattern '" + k + "' must be a number");
        try {
            std::regex probe(k);
        } catch (const std::regex_error &) {
            return invalid_argument(cfg_file + ": alpha_pattern key '" + k + "' is not a regular expression");
        }
    }
    if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() && !j["modules_to_save"].empty())
        return unsupported(cfg_file + ": modules_to_save " + j["modules_to_save"].dump() +
                           " (fully trained modules cannot be expressed as LoRA)");
    // rsLoRA scales by alpha / √r; m4 by alpha / R, so the stored alpha absorbs the difference.
    const bool rslora = j.value("use_rslora", false);
    // PEFT's scale of a module of rank r and alpha a.
    auto peft_scale         = [&](int64_t r, double a) { return rslora ? a / std::sqrt(double(r)) : a / double(r); };
    const double base_scale = peft_scale(R, alpha);
    auto targets            = j.value("target_modules", nlohmann::json());
    auto targeted           = [&](const std::string & module) {
        if (targets.is_string()) return std::regex_match(module, std::regex(targets.get<std::string>()));
        for (const auto & t : targets)
            if (t.is_string() && (module == t || (module.size() > t.get<std::string>().size() &&
                                                  module.compare(module.size() - t.get<std::string>().size() - 1,
                                                                           std::string::npos, "." + t.get<std::string>()) == 0)))
                return true;
        return false;
    };

    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(firmware_path));
    const model::ModelConfig & c = fw->config();
    M4_ASSIGN_OR_RETURN(format::SafetensorsFile st, format::SafetensorsFile::open(st_file));
    static const std::regex key(R"((?:base_model\.model\.)?(.+)\.lora_(A|B)(?:\.default)?\.weight)");
    std::map<std::string, model::LoraPair> lora;
    std::map<std::string, bool> rope;
    std::map<std::string, int> got;  // bit 1: A seen, bit 2: B seen
    for (const auto & e : st.view().entries) {
        const std::string tw = st_file + ": tensor '" + e.name + "'";
        std::smatch m;
        if (!std::regex_match(e.name, m, key)) return unsupported(tw + " is not a LoRA A/B weight m4 can import");
        Module mod;
        if (!map_module(m[1], &mod)) return unsupported(tw + ": module '" + m[1].str() + "' has no m4 linear");
        if (!targets.is_null() && !targeted(m[1])) return invalid_argument(tw + " is not among target_modules");
        auto lit = fw->weights().linears.find(mod.m4);
        if (lit == fw->weights().linears.end())
            return invalid_argument(tw + ": the firmware has no linear '" + mod.m4 + "'");
        const int64_t out = lit->second->out(), in = lit->second->in();
        const bool is_a           = m[2] == "A";
        const nlohmann::json * pr = pattern_value(rank_pattern, m[1]);
        const nlohmann::json * pa = pattern_value(alpha_pattern, m[1]);
        const int64_t r           = pr ? pr->get<int64_t>() : R;
        const Shape want          = is_a ? Shape{r, in} : Shape{out, r};
        M4_ASSIGN_OR_RETURN(Tensor t, st.view().to_f32(e));
        if (!(t.shape() == want))
            return invalid_argument(tw + " has shape " + t.shape().str() + " but r = " + std::to_string(r) +
                                    (pr ? " (rank_pattern)" : "") + " and " + firmware_path + "'s '" + mod.m4 +
                                    "' require " + want.str());
        (is_a ? lora[mod.m4].a : lora[mod.m4].b) = t;
        // Relative to the adapter-wide scale; folded into B below when it differs.
        lora[mod.m4].scale = static_cast<float>(peft_scale(r, pa ? pa->get<double>() : alpha) / base_scale);
        rope[mod.m4]       = mod.rope;
        got[mod.m4] |= is_a ? 1 : 2;
    }
    if (lora.empty()) return invalid_argument(st_file + ": no LoRA weights");
    for (auto & [n, p] : lora)
        if (got[n] != 3) return invalid_argument(st_file + ": '" + n + "' has only one of lora_A / lora_B");
    // One rank for the file: the largest; the stored alpha keeps the adapter-wide scale at that rank.
    int64_t Rs = 0;
    for (auto & [n, p] : lora) Rs = std::max(Rs, p.a.dim(0));
    if (Rs != R || rslora) alpha = static_cast<float>(base_scale * double(Rs));  // m4's alpha / Rs = base_scale
    AdapterReport rep{Rs, alpha, {}};
    const int64_t D = c.backbone.head_dim();
    for (auto & [n, p] : lora) {
        if (p.scale != 1.0f)
            for (int64_t i = 0; i < p.b.numel(); ++i) p.b.f32()[i] *= p.scale;
        if (p.a.dim(0) != Rs) {
            rep.padded_values += (Rs - p.a.dim(0)) * (p.a.dim(1) + p.b.dim(0));
            p.a = pad_rows(p.a, Rs);
            p.b = pad_cols(p.b, Rs);
        }
        p.scale = alpha / static_cast<float>(Rs);
        if (rope[n]) p.b = permute_rope_rows(p.b, p.b.dim(0) / D);
        rep.targets.push_back(n);
    }
    adapter::Manifest man;
    man.name                 = name;
    man.task                 = adapter::Task::Generate;
    man.path                 = model::Path::Backbone;
    man.modality             = model::Modality::Text;
    man.firmware_fingerprint = fw->fingerprint();
    man.lora_rank            = Rs;
    man.lora_alpha           = alpha;
    man.targets              = rep.targets;
    man.metrics              = {{"imported_from",
                                 {{"format", "peft-lora"}, {"path", dir}, {"base_model", j.value("base_model_name_or_path", "")}}}};
    M4_RETURN_IF_ERROR(adapter::write_adapter(out_path, man, lora, {}));
    M4_RETURN_IF_ERROR(adapter::Adapter::load(out_path, *fw).status());  // binds and checks every shape
    return rep;
}

}  // namespace m4::import
