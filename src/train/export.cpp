#include "train/export.h"

#include <map>

#include "adapter/adapter.h"
#include "format/container.h"

namespace m4::train {

Status export_adapter(const TrainModel & tm, const std::string & path, const AdapterExport & info) {
    if (tm.options().mode != Mode::Adapter) return invalid_argument(path + ": only an adapter run exports an adapter");
    const TaskSpec & t = tm.tasks().at(0);
    adapter::Manifest m;
    m.name                 = info.name;
    m.version              = info.version;
    m.path                 = t.path;
    m.modality             = t.modality;
    m.firmware_fingerprint = tm.base().fingerprint();
    m.metrics              = info.metrics;
    m.labels               = t.labels;
    switch (t.objective) {
        case Objective::Classify:
            m.task = adapter::Task::Classify;
            break;
        case Objective::Regress:
            m.task = adapter::Task::Regress;
            break;
        case Objective::Embed:
            m.task = adapter::Task::Embed;
            break;
        case Objective::LanguageModel:
        case Objective::Reconstruct:
        case Objective::Draw:
        case Objective::MelRegress:
            m.task = adapter::Task::Generate;
            break;
        case Objective::Contrastive:
            return invalid_argument(path + ": a contrastive run has no adapter to export");
    }
    m.output = adapter::default_output(m.task, m.path, m.modality);
    std::map<std::string, model::LoraPair> lora;
    for (const auto & name : tm.lora_targets()) lora[name] = tm.adapter().lora.at(name);
    if (!lora.empty()) {
        m.lora_rank  = tm.options().lora_rank;
        m.lora_alpha = tm.options().lora_alpha;
        m.targets    = tm.lora_targets();
    }
    return adapter::write_adapter(path, m, lora, export_head(tm, t, &m));
}

adapter::HeadTensors export_head(const TrainModel & tm, const TaskSpec & t, adapter::Manifest * m) {
    adapter::HeadTensors out;
    if (!t.has_head()) return out;
    const auto & c    = tm.base().config();
    const auto & head = tm.adapter().head;
    m->head_type      = head.type;
    m->head_pool      = head.pool;
    m->head_in        = t.path == model::Path::Encoder ? c.embed_dim : c.backbone.width;
    m->head_out       = t.out_dim;
    m->head_hidden    = head.has_hidden() ? head.hidden_w.dim(0) : 0;
    out.w             = head.w.clone();
    if (head.bias) out.b = Tensor::view(DType::F32, {t.out_dim}, head.bias).clone();
    if (head.has_hidden()) {
        out.hidden_w = head.hidden_w.clone();
        out.hidden_b = Tensor::view(DType::F32, {m->head_hidden}, head.hidden_bias).clone();
    }
    return out;
}

Status export_firmware(const TrainModel & tm, const std::string & path, const FirmwareExport & info) {
    if (tm.options().mode != Mode::Full) return invalid_argument(path + ": only a full run exports a firmware");
    const model::Model & base = tm.base();
    nlohmann::json header     = base.file().header();
    if (!info.name.empty()) header["name"] = info.name;
    nlohmann::json prov = header.contains("provenance") && header["provenance"].is_object() ? header["provenance"]
                                                                                            : nlohmann::json::object();
    for (auto it = info.provenance.begin(); it != info.provenance.end(); ++it) prov[it.key()] = it.value();
    prov["trained_from"] = base.fingerprint();
    header["provenance"] = prov;
    format::ContainerWriter w(format::FileKind::Firmware);
    w.set_header(header);
    w.add("tokenizer.model", base.file().tensor("tokenizer.model"));
    for (const auto & spec : model::expected_tensors(base.config())) {
        const Param * p = tm.params().find(spec.name);
        if (!p) return invalid_argument(path + ": no trained tensor '" + spec.name + "'");
        const bool quantisable =
            spec.role == model::TensorRole::LinearWeight || spec.role == model::TensorRole::Embedding;
        w.add(spec.name, quantisable ? convert(p->value, info.weight_dtype) : p->value);
    }
    return w.write(path);
}

}  // namespace m4::train
