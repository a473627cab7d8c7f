// PEFT LoRA directories → .m4a: adapter_config.json (peft_type LORA, r, lora_alpha,
// target_modules) and adapter_model.safetensors with
//     base_model.model.model.layers.L.self_attn.q_proj.lora_A.weight   [r, in]  → lora.<X>.a
//     base_model.model.model.layers.L.self_attn.q_proj.lora_B.weight   [out, r] → lora.<X>.b
// PEFT computes W x + (alpha / r) · B A x, m4 y = x·Wᵀ + (alpha / R)·(x·Aᵀ)·Bᵀ: the same. B of q and
// k gets the same RoPE row permutation as the base weights.
#include <fmt/format.h>

#include <cmath>
#include <regex>

#include "adapter/adapter.h"
#include "format/safetensors.h"
#include "import/import.h"

namespace m4::import {
namespace {

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
    for (const char * k : {"rank_pattern", "alpha_pattern"})
        if (j.contains(k) && !j[k].is_null() && !j[k].empty())
            return unsupported(cfg_file + ": " + k + " (m4 adapters have one rank and one alpha)");
    if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() && !j["modules_to_save"].empty())
        return unsupported(cfg_file + ": modules_to_save " + j["modules_to_save"].dump() +
                           " (fully trained modules cannot be expressed as LoRA)");
    // rsLoRA scales by alpha / √r; m4 by alpha / R, so the stored alpha absorbs the difference.
    if (j.value("use_rslora", false)) alpha *= std::sqrt(static_cast<float>(R));
    auto targets  = j.value("target_modules", nlohmann::json());
    auto targeted = [&](const std::string & module) {
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
        const bool is_a  = m[2] == "A";
        const Shape want = is_a ? Shape{R, in} : Shape{out, R};
        M4_ASSIGN_OR_RETURN(Tensor t, st.view().to_f32(e));
        if (!(t.shape() == want))
            return invalid_argument(tw + " has shape " + t.shape().str() + " but r = " + std::to_string(R) + " and " +
                                    firmware_path + "'s '" + mod.m4 + "' require " + want.str());
        (is_a ? lora[mod.m4].a : lora[mod.m4].b) = t;
        lora[mod.m4].scale                       = alpha / static_cast<float>(R);
        rope[mod.m4]                             = mod.rope;
        got[mod.m4] |= is_a ? 1 : 2;
    }
    if (lora.empty()) return invalid_argument(st_file + ": no LoRA weights");
    AdapterReport rep{R, alpha, {}};
    const int64_t D = c.backbone.head_dim();
    for (auto & [n, p] : lora) {
        if (got[n] != 3) return invalid_argument(st_file + ": '" + n + "' has only one of lora_A / lora_B");
        if (rope[n]) p.b = permute_rope_rows(p.b, p.b.dim(0) / D);
        rep.targets.push_back(n);
    }
    adapter::Manifest man;
    man.name                 = name;
    man.task                 = adapter::Task::Generate;
    man.path                 = model::Path::Backbone;
    man.modality             = model::Modality::Text;
    man.firmware_fingerprint = fw->fingerprint();
    man.lora_rank            = R;
    man.lora_alpha           = alpha;
    man.targets              = rep.targets;
    man.metrics              = {{"imported_from",
                                 {{"format", "peft-lora"}, {"path", dir}, {"base_model", j.value("base_model_name_or_path", "")}}}};
    M4_RETURN_IF_ERROR(adapter::write_adapter(out_path, man, lora, Tensor(), Tensor()));
    M4_RETURN_IF_ERROR(adapter::Adapter::load(out_path, *fw).status());  // binds and checks every shape
    return rep;
}

}  // namespace m4::import
