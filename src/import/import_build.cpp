// Parts → one firmware: the configuration is assembled from the parts, every tensor it requires is
// taken from a part (shape checked) or initialised, and the recipe goes into the header.
#include <sys/stat.h>

#include <cstring>

#include "format/container.h"
#include "import/import.h"
#include "model/model.h"

namespace m4::import {
namespace {

bool is_dir(const std::string & p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const char * role_name(Role r) {
    return r == Role::Backbone ? "backbone" : "image";
}

Result<Part> import_checkpoint(const std::string & path, Role role) {
    if (is_dir(path)) {
        if (role == Role::Backbone) return import_hf_llama(path);
        return import_hf_vision(path);
    }
    if (ends_with(path, ".gguf")) {
        if (role != Role::Backbone) return unsupported(path + ": a GGUF llama file supplies only a backbone");
        return import_gguf_llama(path);
    }
    if (ends_with(path, ".m4fw")) return import_firmware_part(path, role);
    return invalid_argument(path + ": not a Hugging Face directory, a .gguf file or a .m4fw firmware");
}

Result<Part> import_firmware_part(const std::string & path, Role role) {
    M4_ASSIGN_OR_RETURN(format::ContainerFile f, format::ContainerFile::open(path, format::FileKind::Firmware));
    M4_ASSIGN_OR_RETURN(model::ModelConfig c, model::parse_model_config(f.header()));
    const nlohmann::json cj = model::model_config_to_json(c);
    Part part;
    part.role   = role;
    part.source = {{"format", "m4fw"}, {"path", path}, {"fingerprint", f.fingerprint()}, {"name", c.name}};
    std::string prefix;
    if (role == Role::Backbone) {
        part.config = {{"text", cj["text"]}, {"backbone", cj["backbone"]}, {"embed_dim", c.embed_dim}};
        prefix      = "backbone.";
        const format::TensorEntry * t = f.find("tokenizer.model");
        if (!t) return invalid_argument(path + ": missing tensor 'tokenizer.model'");
        Tensor tb = f.tensor("tokenizer.model");
        part.tokenizer_model.assign(reinterpret_cast<const char *>(tb.data()), tb.nbytes());
    } else {
        if (!c.has_encoder(model::Modality::Image))
            return invalid_argument(path + ": the firmware has no image encoder");
        part.config              = cj["encoders"]["image"];
        part.config["embed_dim"] = c.embed_dim;
        prefix                   = "encoders.image.";
    }
    for (const auto & e : f.entries())
        if (e.name.rfind(prefix, 0) == 0) {
            part.tensors[e.name] = f.tensor(e.name).clone();  // the mapping closes with `f`
            part.origin[e.name]  = path + ": tensor '" + e.name + "'";
        }
    return part;
}

Result<BuildReport> build_firmware(const std::vector<Part> & parts, const BuildOptions & o, const std::string & out) {
    const Part * bb  = nullptr;
    const Part * img = nullptr;
    for (const auto & p : parts) {
        const Part ** slot = p.role == Role::Backbone ? &bb : &img;
        if (*slot) return invalid_argument(std::string("two parts supply the ") + role_name(p.role));
        *slot = &p;
    }
    if (!bb) return invalid_argument("a firmware needs a backbone part");
    nlohmann::json cfg = {
        {"format", "m4fw"}, {"version", "1.0.0"}, {"text", bb->config["text"]}, {"backbone", bb->config["backbone"]}};
    cfg["name"] = !o.name.empty() ? o.name : bb->source.value("name", std::string("imported"));
    // The shared embedding width: asked for, else kept from a firmware part, else the backbone width.
    int64_t E = o.embed_dim;
    for (const Part * p : {bb, img})
        if (!E && p && p->config.contains("embed_dim")) E = p->config["embed_dim"].get<int64_t>();
    if (!E) E = cfg["backbone"]["width"].get<int64_t>();
    cfg["embed_dim"] = E;
    if (o.max_seq > 0)
        cfg["backbone"]["max_seq"] = o.max_seq;
    else
        cfg["backbone"]["max_seq"] = std::min<int64_t>(cfg["backbone"]["max_seq"].get<int64_t>(), 4096);
    cfg["encoders"] = nlohmann::json::object();
    if (img) {
        cfg["encoders"]["image"] = img->config;
        cfg["encoders"]["image"].erase("embed_dim");
    }
    M4_ASSIGN_OR_RETURN(model::ModelConfig c, model::parse_model_config(cfg));
    // Every required tensor: from a part (which must have exactly the required shape), else new.
    std::map<std::string, std::pair<Tensor, std::string>> have;
    for (const Part * p : {bb, img})
        if (p)
            for (const auto & [n, t] : p->tensors) have[n] = {t, p->origin.count(n) ? p->origin.at(n) : n};
    auto fresh                                 = model::random_weights(c, o.seed, DType::F32);
    const std::vector<model::TensorSpec> specs = model::expected_tensors(c);
    format::ContainerWriter w(format::FileKind::Firmware);
    BuildReport r;
    Tensor tok = Tensor::empty(DType::U8, Shape{static_cast<int64_t>(bb->tokenizer_model.size())});
    std::memcpy(tok.u8(), bb->tokenizer_model.data(), bb->tokenizer_model.size());
    w.add("tokenizer.model", tok);
    for (size_t i = 0; i < specs.size(); ++i) {
        const auto & s = specs[i];
        auto it        = have.find(s.name);
        Tensor t;
        if (it == have.end()) {
            t = fresh[i].second;  // random_weights follows expected_tensors' order
            M4_CHECK(fresh[i].first == s.name);
            if (s.role == model::TensorRole::Bias) std::memset(t.f32(), 0, t.nbytes());
            if (s.role == model::TensorRole::Norm)
                for (int64_t k = 0; k < t.numel(); ++k) t.f32()[k] = 1.0f;
            r.initialised.push_back(s.name);
        } else {
            t = it->second.first;
            if (!(t.shape() == s.shape))
                return invalid_argument(it->second.second + " has shape " + t.shape().str() +
                                        " but the composed configuration requires " + s.shape.str() + " for '" +
                                        s.name + "'");
            const bool quantisable =
                s.role == model::TensorRole::LinearWeight || s.role == model::TensorRole::Embedding;
            if (!quantisable && t.dtype() != DType::F32) t = to_f32(t);
            have.erase(it);
        }
        r.parameters += t.numel();
        w.add(s.name, t);
    }
    for (const auto & [n, t] : have)  // e.g. a firmware part's lm_head when the new config ties it
        return invalid_argument(t.second + " ('" + n + "') has no place in the composed configuration");
    nlohmann::json header  = model::model_config_to_json(c);
    header["format"]       = "m4fw";
    nlohmann::json sources = nlohmann::json::object();
    sources["backbone"]    = bb->source;
    if (img) sources["image"] = img->source;
    header["provenance"] = {{"kind", parts.size() > 1 ? "compose" : "import"},
                            {"sources", sources},
                            {"initialised", r.initialised},
                            {"init", "normal(0, 1/sqrt(in)) weights, zero biases, unit norms"},
                            {"seed", o.seed},
                            {"recipe", o.recipe}};
    w.set_header(header);
    M4_RETURN_IF_ERROR(w.write(out, o.sign_key));
    M4_ASSIGN_OR_RETURN(format::ContainerFile f, format::ContainerFile::open(out, format::FileKind::Firmware));
    r.fingerprint = f.fingerprint();
    r.file_bytes  = f.file_size();
    // The written firmware must load as a model (tokenizer, ids, every tensor checked).
    M4_RETURN_IF_ERROR(model::Model::load(out).status());
    return r;
}

}  // namespace m4::import
