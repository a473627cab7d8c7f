#include "adapter/adapter.h"

#include "model/quantize.h"

#include <cmath>
#include <random>

namespace m4::adapter {

using model::HeadPool;
using model::HeadType;
using model::Modality;
using model::Path;

const char * task_name(Task t) {
    switch (t) {
        case Task::Classify:
            return "classify";
        case Task::Regress:
            return "regress";
        case Task::Embed:
            return "embed";
        case Task::Generate:
            return "generate";
    }
    return "?";
}

bool parse_task(const std::string & s, Task * out) {
    for (int i = 0; i < 4; ++i)
        if (s == task_name(static_cast<Task>(i))) return *out = static_cast<Task>(i), true;
    return false;
}

const char * output_kind_name(OutputKind k) {
    switch (k) {
        case OutputKind::Label:
            return "label";
        case OutputKind::Vector:
            return "vector";
        case OutputKind::Text:
            return "text";
        case OutputKind::Image:
            return "image";
        case OutputKind::Audio:
            return "audio";
    }
    return "?";
}

bool parse_output_kind(const std::string & s, OutputKind * out) {
    for (int i = 0; i < 5; ++i)
        if (s == output_kind_name(static_cast<OutputKind>(i))) return *out = static_cast<OutputKind>(i), true;
    return false;
}

OutputKind default_output(Task t, Path p, Modality m) {
    switch (t) {
        case Task::Classify:
            return OutputKind::Label;
        case Task::Regress:
        case Task::Embed:
            return OutputKind::Vector;
        case Task::Generate:
            if (p == Path::Full && m == Modality::Text) return OutputKind::Image;  // a drawing (IMG-Dec)
            if (p != Path::Generator) return OutputKind::Text;
            return m == Modality::Audio ? OutputKind::Audio : OutputKind::Image;  // TTS-Dec : IMG-Dec
    }
    return OutputKind::Label;
}

Result<Manifest> parse_manifest(const nlohmann::json & j) {
    auto bad = [](const std::string & m) { return invalid_argument("manifest: " + m); };
    Manifest m;
    try {
        if (j.value("format", "") != "m4a") return bad("\"format\" must be \"m4a\"");
        m.name    = j.value("name", "adapter");
        m.version = j.value("version", "1.0.0");
        if (!parse_task(j.value("task", ""), &m.task))
            return bad("\"task\" must be classify, regress, embed or generate");
        if (!model::parse_path(j.value("path", ""), &m.path))
            return bad("\"path\" must be encoder, backbone, full or generator");
        if (!model::parse_modality(j.value("modality", ""), &m.modality))
            return bad("\"modality\" must be image, audio, imu or text");
        // The full path over text is the one into the image decoder (a description → an image).
        const bool draw = m.path == Path::Full && m.modality == Modality::Text;
        if (!draw && (m.path == Path::Backbone) != (m.modality == Modality::Text))
            return bad(std::string("the ") + model::path_name(m.path) + " path cannot take " +
                       model::modality_name(m.modality) + " input");
        m.firmware_fingerprint = j.value("firmware_fingerprint", "");
        if (m.firmware_fingerprint.size() != 64) return bad("\"firmware_fingerprint\" must be 64 hex characters");
        if (j.contains("lora") && !j["lora"].is_null()) {
            const auto & l = j["lora"];
            m.lora_rank    = l.at("rank").get<int64_t>();
            m.lora_alpha   = l.value("alpha", float(m.lora_rank));
            m.targets      = l.at("targets").get<std::vector<std::string>>();
            if (m.lora_rank <= 0) return bad("\"lora.rank\" must be positive");
        }
        if (m.path == Path::Generator && m.task != Task::Generate)
            return bad("the generator path runs a decoder alone: its task is generate");
        if (draw && m.task != Task::Generate)
            return bad("the full path over text ends in the image decoder: its task is generate");
        m.output = default_output(m.task, m.path, m.modality);
        if (j.contains("output")) {
            const std::string o = j["output"].is_string() ? j["output"].get<std::string>() : "";
            if (!parse_output_kind(o, &m.output)) return bad("\"output\" must be label, vector, text, image or audio");
            const OutputKind want = default_output(m.task, m.path, m.modality);
            if (m.output != want)
                return bad(std::string("a ") + task_name(m.task) + " adapter on the " + model::path_name(m.path) +
                           " path over " + model::modality_name(m.modality) + " outputs " + output_kind_name(want) +
                           ", not " + output_kind_name(m.output));
        }
        if (m.task == Task::Generate) {
            if (m.path == Path::Encoder) return bad("a generate adapter needs the backbone, full or generator path");
            if (j.contains("head") && !j["head"].is_null()) return bad("a generate adapter has no head");
        } else {
            if (!j.contains("head")) return bad("missing \"head\"");
            const auto & h = j["head"];
            m.head_type    = m.task == Task::Classify  ? HeadType::Classify
                             : m.task == Task::Regress ? HeadType::Regress
                                                       : HeadType::Embed;
            if (h.value("type", "") != task_name(m.task)) return bad("\"head.type\" must equal the task");
            m.head_in        = h.at("in_dim").get<int64_t>();
            m.head_out       = h.at("out_dim").get<int64_t>();
            std::string pool = h.value("pool", "mean");
            if (pool != "mean" && pool != "last") return bad("\"head.pool\" must be mean or last");
            m.head_pool = pool == "mean" ? HeadPool::Mean : HeadPool::Last;
            if (m.head_in <= 0 || m.head_out <= 0) return bad("head dimensions must be positive");
            m.head_hidden = h.value("hidden_dim", int64_t{0});
            if (m.head_hidden < 0 || m.head_hidden > model::kMaxHeadHidden)
                return bad("\"head.hidden_dim\" must be in [0, " + std::to_string(model::kMaxHeadHidden) + "]");
        }
        if (j.contains("labels")) m.labels = j["labels"].get<std::vector<std::string>>();
        if (m.task == Task::Classify && !m.labels.empty() && static_cast<int64_t>(m.labels.size()) != m.head_out)
            return bad(std::to_string(m.labels.size()) + " labels for a head of " + std::to_string(m.head_out) +
                       " classes");
        m.prompt = j.value("prompt", "{input}");
        if (j.contains("generation")) {
            const auto & g              = j["generation"];
            m.generation.max_new_tokens = g.value("max_new_tokens", 32);
            m.generation.temperature    = g.value("temperature", 0.0f);
            m.generation.top_k          = g.value("top_k", 0);
            m.generation.top_p          = g.value("top_p", 1.0f);
            m.generation.seed           = g.value("seed", uint64_t{0});
            if (g.contains("stop")) m.generation.stop = g["stop"].get<std::vector<std::string>>();
            // Ranges that need no firmware here; the vocabulary and context are checked on binding.
            const auto & mg = m.generation;
            Status st       = model::check_generation({mg.max_new_tokens, mg.temperature, mg.top_k, mg.top_p, &mg.stop},
                                                      INT32_MAX, INT32_MAX, "\"generation\"");
            if (!st.is_ok()) return bad(st.message());
        }
        if (j.contains("metrics")) m.metrics = j["metrics"];
    } catch (const std::exception & e) {
        return bad(std::string("malformed field (") + e.what() + ")");
    }
    return m;
}

nlohmann::json manifest_to_json(const Manifest & m) {
    nlohmann::json j = {{"format", "m4a"},
                        {"name", m.name},
                        {"version", m.version},
                        {"task", task_name(m.task)},
                        {"path", model::path_name(m.path)},
                        {"modality", model::modality_name(m.modality)},
                        {"firmware_fingerprint", m.firmware_fingerprint}};
    // Written for the new output kinds only: manifests of the older tasks stay byte-identical.
    const OutputKind out = default_output(m.task, m.path, m.modality);
    if (out == OutputKind::Image || out == OutputKind::Audio) j["output"] = output_kind_name(out);
    if (m.lora_rank > 0) j["lora"] = {{"rank", m.lora_rank}, {"alpha", m.lora_alpha}, {"targets", m.targets}};
    if (m.head_type != HeadType::None)
        j["head"] = {{"type", model::head_type_name(m.head_type)},
                     {"in_dim", m.head_in},
                     {"out_dim", m.head_out},
                     {"pool", model::head_pool_name(m.head_pool)}};
    // Written for a head with a hidden layer only: linear heads' manifests stay byte-identical.
    if (m.head_type != HeadType::None && m.head_hidden > 0) j["head"]["hidden_dim"] = m.head_hidden;
    if (!m.labels.empty()) j["labels"] = m.labels;
    j["prompt"]     = m.prompt;
    j["generation"] = {{"max_new_tokens", m.generation.max_new_tokens},
                       {"temperature", m.generation.temperature},
                       {"top_k", m.generation.top_k},
                       {"top_p", m.generation.top_p},
                       {"seed", m.generation.seed},
                       {"stop", m.generation.stop}};
    j["metrics"]    = m.metrics;
    return j;
}

namespace {

// The linear-name prefixes a path executes.
std::vector<std::string> path_prefixes(Path path, Modality modality) {
    std::string enc = std::string("encoders.") + model::modality_name(modality) + ".";
    std::string prj = std::string("projectors.") + model::modality_name(modality);
    switch (path) {
        case Path::Encoder:
            return {enc};
        case Path::Backbone:
            return {"backbone."};
        case Path::Full:
            if (modality == Modality::Text) return {"backbone.", "decoders.image."};  // into the image decoder
            return {enc, prj, "backbone."};
        case Path::Generator:
            return {modality == Modality::Audio ? std::string("decoders.speech.")
                                                : std::string("decoders.") + model::modality_name(modality) + "."};
    }
    return {};
}

bool glob_match(const std::string & pat, const std::string & s) {
    size_t p = 0, i = 0, star = std::string::npos, mark = 0;
    while (i < s.size()) {
        if (p < pat.size() && (pat[p] == s[i]))
            ++p, ++i;
        else if (p < pat.size() && pat[p] == '*')
            star = p++, mark = i;
        else if (star != std::string::npos)
            p = star + 1, i = ++mark;
        else
            return false;
    }
    while (p < pat.size() && pat[p] == '*') ++p;
    return p == pat.size();
}

Result<Manifest> read_manifest(const format::ContainerFile & f) {
    auto m = parse_manifest(f.header());
    if (!m) return m.status().with_context(f.path());
    return m;
}

}  // namespace

Result<std::vector<std::string>> expand_targets(const model::ModelConfig & c, Path path, Modality modality,
                                                const std::string & pattern) {
    std::vector<std::string> candidates;
    for (const auto & name : model::linear_names(c)) {
        // Path 4 runs the decoder alone: its projector from the backbone belongs to the full path.
        if (path == Path::Generator && name.find(".from_backbone.") != std::string::npos) continue;
        for (const auto & p : path_prefixes(path, modality))
            if (name.rfind(p, 0) == 0) candidates.push_back(name);
    }
    std::vector<std::string> pats;
    if (pattern == "all")
        pats = {"*"};
    else if (pattern == "attn")
        pats = {"*.attn.q", "*.attn.k", "*.attn.v", "*.attn.o"};
    else if (pattern == "mlp" || pattern == "ffn")
        pats = {"*.mlp.fc1", "*.mlp.fc2", "*.ffn.gate", "*.ffn.up", "*.ffn.down"};
    else {
        size_t start = 0;
        while (start <= pattern.size()) {
            size_t comma = pattern.find(',', start);
            if (comma == std::string::npos) comma = pattern.size();
            if (comma > start) pats.push_back(pattern.substr(start, comma - start));
            start = comma + 1;
        }
    }
    std::vector<std::string> out;
    for (const auto & pat : pats) {
        bool any = false;
        for (const auto & name : candidates) {
            if (!glob_match(pat, name)) continue;
            any = true;
            if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
        }
        if (!any)
            return invalid_argument("LoRA target '" + pat + "' matches no linear layer of the " +
                                    model::path_name(path) + " path");
    }
    return out;
}

Result<Adapter> Adapter::load_unbound(const std::string & path) {
    Adapter a;
    M4_ASSIGN_OR_RETURN(a.file_, format::ContainerFile::open(path, format::FileKind::Adapter));
    M4_ASSIGN_OR_RETURN(a.manifest_, read_manifest(a.file_));
    return a;
}

namespace {
// Whether an adapter trained on firmware `want` binds to `fw` under `binding` (see Binding).
Status check_binding(const std::string & path, const std::string & want, const model::Model & fw, Binding binding,
                     const std::string & verified_parent) {
    if (want == fw.fingerprint()) return Status::ok();
    const std::string trained = path + ": trained for firmware " + want.substr(0, 12) +
                                "…, but the loaded firmware is " + fw.fingerprint().substr(0, 12) + "…";
    const model::QuantizedFrom q = model::quantized_from(fw);
    if (binding != Binding::Sibling || want.empty() || q.parent != want)
        return incompatible(trained + "; retrain it with `m4fw adapter train`");
    if (fw.file().signature() == format::SignatureState::Verified || verified_parent == want) return Status::ok();
    return incompatible(trained + ", which says it was quantized (" + q.dtype + ") from the adapter's firmware; that " +
                        "claim is not vouched for: the firmware's signature was not verified against a trusted key (" +
                        format::signature_state_name(fw.file().signature()) +
                        "). Sign it (`m4fw quantize --sign KEY`) and load it with the public key, or give the parent " +
                        "firmware (--parent) to verify it");
}
}  // namespace

Result<Adapter> Adapter::load(const std::string & path, const model::Model & fw, Binding binding,
                              const std::string & verified_parent) {
    M4_ASSIGN_OR_RETURN(Adapter a, load_unbound(path));
    const Manifest & m = a.manifest_;
    const auto & c     = fw.config();
    M4_RETURN_IF_ERROR(check_binding(path, m.firmware_fingerprint, fw, binding, verified_parent));
    if (m.path == Path::Generator && !c.has_decoder(m.modality))
        return incompatible(path + ": needs a " + std::string(model::modality_name(m.modality)) +
                            " decoder (generator path), which the firmware lacks");
    const bool draw = m.path == Path::Full && m.modality == Modality::Text;
    if (draw && !c.has_draw_path())
        return incompatible(path +
                            ": draws an image on the full path, and the firmware has no image decoder with "
                            "a projector from the backbone (\"decoders.image.from_backbone\")");
    if (!draw && m.path != Path::Backbone && m.path != Path::Generator && !c.has_encoder(m.modality))
        return incompatible(path + ": needs a " + std::string(model::modality_name(m.modality)) +
                            " encoder, which the firmware lacks");
    if (m.task == Task::Generate)
        M4_RETURN_IF_ERROR(fw.check_options(m.generation, path + ": manifest \"generation\""));
    auto tensor_f32 = [&](const std::string & name, const Shape & shape) -> Result<Tensor> {
        const format::TensorEntry * e = a.file_.find(name);
        if (!e) return invalid_argument(path + ": missing tensor '" + name + "'");
        if (e->dtype != DType::F32 || !(e->shape == shape))
            return invalid_argument(path + ": tensor '" + name + "' is " + dtype_name(e->dtype) + " " + e->shape.str() +
                                    ", expected f32 " + shape.str());
        return a.file_.tensor(name);
    };
    std::vector<std::string> allowed = expand_targets(c, m.path, m.modality, "all").value();
    for (const auto & t : m.targets) {
        if (std::find(allowed.begin(), allowed.end(), t) == allowed.end())
            return incompatible(path + ": LoRA target '" + t + "' is not a linear layer of the firmware's " +
                                model::path_name(m.path) + " path");
        const model::Linear * lin = fw.weights().linears.at(t);
        model::LoraPair p;
        M4_ASSIGN_OR_RETURN(p.a, tensor_f32("lora." + t + ".a", Shape{m.lora_rank, lin->in()}));
        M4_ASSIGN_OR_RETURN(p.b, tensor_f32("lora." + t + ".b", Shape{lin->out(), m.lora_rank}));
        p.scale            = m.lora_alpha / float(m.lora_rank);
        a.weights_.lora[t] = std::move(p);
    }
    if (m.head_type != HeadType::None) {
        int64_t in = m.path == Path::Encoder ? c.embed_dim : c.backbone.width;
        if (m.head_in != in)
            return incompatible(path + ": head takes " + std::to_string(m.head_in) + " inputs, the " +
                                model::path_name(m.path) + " path gives " + std::to_string(in));
        auto & h       = a.weights_.head;
        h.type         = m.head_type;
        h.pool         = m.head_pool;
        const bool mlp = m.head_hidden > 0;
        M4_ASSIGN_OR_RETURN(h.w, tensor_f32(mlp ? "head.out.weight" : "head.weight",
                                            Shape{m.head_out, mlp ? m.head_hidden : m.head_in}));
        if (mlp) {
            M4_ASSIGN_OR_RETURN(h.hidden_w, tensor_f32("head.hidden.weight", Shape{m.head_hidden, m.head_in}));
            M4_ASSIGN_OR_RETURN(Tensor hb, tensor_f32("head.hidden.bias", Shape{m.head_hidden}));
            h.hidden_bias = hb.f32();
        }
        if (m.head_type != HeadType::Embed) {
            M4_ASSIGN_OR_RETURN(Tensor b, tensor_f32(mlp ? "head.out.bias" : "head.bias", Shape{m.head_out}));
            h.bias = b.f32();
        }
    }
    return a;
}

Status write_adapter(const std::string & path, const Manifest & m, const std::map<std::string, model::LoraPair> & lora,
                     const HeadTensors & head) {
    format::ContainerWriter w(format::FileKind::Adapter);
    w.set_header(manifest_to_json(m));
    for (const auto & [name, p] : lora) {
        w.add("lora." + name + ".a", p.a);
        w.add("lora." + name + ".b", p.b);
    }
    if (m.head_type != HeadType::None) {
        // An MLP head names its output layer head.out.*: a reader that knows linear heads only
        // then fails on the missing head.weight instead of skipping the hidden layer.
        const bool mlp = m.head_hidden > 0;
        if (mlp) {
            w.add("head.hidden.weight", head.hidden_w);
            w.add("head.hidden.bias", head.hidden_b);
        }
        w.add(mlp ? "head.out.weight" : "head.weight", head.w);
        if (m.head_type != HeadType::Embed) w.add(mlp ? "head.out.bias" : "head.bias", head.b);
    }
    return w.write(path);
}

Status write_random_adapter(const std::string & out_path, const model::Model & fw, Manifest m, uint64_t seed) {
    const auto & c         = fw.config();
    m.firmware_fingerprint = fw.fingerprint();
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto rand_tensor = [&](const Shape & s, float std) {
        Tensor t = Tensor::empty(DType::F32, s);
        for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = nd(rng) * std;
        return t;
    };
    std::map<std::string, model::LoraPair> lora;
    for (const auto & t : m.targets) {
        auto it = fw.weights().linears.find(t);
        if (it == fw.weights().linears.end()) return invalid_argument("no linear layer named '" + t + "'");
        const model::Linear * lin = it->second;
        model::LoraPair p;
        p.a     = rand_tensor(Shape{m.lora_rank, lin->in()}, 1.0f / std::sqrt(float(lin->in())));
        p.b     = rand_tensor(Shape{lin->out(), m.lora_rank}, 1.0f / std::sqrt(float(m.lora_rank)));
        lora[t] = std::move(p);
    }
    HeadTensors head;
    if (m.task != Task::Generate) {
        m.head_type = m.task == Task::Classify  ? HeadType::Classify
                      : m.task == Task::Regress ? HeadType::Regress
                                                : HeadType::Embed;
        m.head_in   = m.path == Path::Encoder ? c.embed_dim : c.backbone.width;
        if (m.task == Task::Classify && !m.labels.empty()) m.head_out = static_cast<int64_t>(m.labels.size());
        if (m.head_out <= 0) return invalid_argument("the head needs --labels or --out-dim");
        const int64_t last_in = m.head_hidden > 0 ? m.head_hidden : m.head_in;
        head.w                = rand_tensor(Shape{m.head_out, last_in}, 1.0f / std::sqrt(float(last_in)));
        head.b                = rand_tensor(Shape{m.head_out}, 0.1f);
        if (m.head_hidden > 0) {
            head.hidden_w = rand_tensor(Shape{m.head_hidden, m.head_in}, 1.0f / std::sqrt(float(m.head_in)));
            head.hidden_b = rand_tensor(Shape{m.head_hidden}, 0.1f);
        }
    }
    return write_adapter(out_path, m, lora, head);
}

}  // namespace m4::adapter
