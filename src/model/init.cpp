// Random-weight firmware tensors for a configuration (m4fw init): deterministic for a seed on every
// platform (splitmix64 + Box–Muller, no std::normal_distribution whose output is library-defined).
#include <cmath>
#include <cstring>

#include "model/model.h"

namespace m4::model {
namespace {

struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    double normal() {
        double u1 = uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
    }
};

}  // namespace

std::vector<std::pair<std::string, Tensor>> random_weights(const ModelConfig & c, uint64_t seed, DType dtype) {
    std::vector<std::pair<std::string, Tensor>> out;
    Rng rng{seed * 0x2545f4914f6cdd1dull + 1};
    for (const auto & spec : expected_tensors(c)) {
        Tensor t  = Tensor::empty(DType::F32, spec.shape);
        float * p = t.f32();
        for (int64_t i = 0; i < t.numel(); ++i) {
            switch (spec.role) {
                case TensorRole::LinearWeight:
                case TensorRole::Embedding:
                case TensorRole::Position:
                    p[i] = static_cast<float>(rng.normal() * spec.init_scale);
                    break;
                // Perturbed so that tests see every norm weight and bias at work.
                case TensorRole::Norm:
                    p[i] = static_cast<float>(1.0 + 0.1 * rng.normal());
                    break;
                case TensorRole::Bias:
                    p[i] = static_cast<float>(0.1 * rng.normal());
                    break;
            }
        }
        bool quantisable = spec.role == TensorRole::LinearWeight || spec.role == TensorRole::Embedding;
        out.emplace_back(spec.name, quantisable ? convert(t, dtype) : t);
    }
    return out;
}

Result<InitResult> write_random_firmware(const InitFirmware & f, const std::string & path, const std::string & where) {
    M4_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_bytes(f.tokenizer_model, where));
    nlohmann::json j = f.config;
    if (!j.is_object()) return invalid_argument(where + ": the architecture is not a JSON object");
    j["text"]["vocab_size"] = tok.vocab_size();
    j["text"]["bos_id"]     = tok.bos_id();
    j["text"]["eos_id"]     = tok.eos_id();
    j["text"]["pad_id"]     = tok.pad_id();
    j["text"]["unk_id"]     = tok.unk_id();
    auto cfg                = parse_model_config(j);
    if (!cfg) return cfg.status().with_context(where);
    format::ContainerWriter w(format::FileKind::Firmware);
    nlohmann::json header = model_config_to_json(*cfg);
    header["format"]      = "m4fw";
    header["provenance"]  = f.provenance;
    w.set_header(header);
    Tensor tok_t = Tensor::empty(DType::U8, Shape{static_cast<int64_t>(f.tokenizer_model.size())});
    std::memcpy(tok_t.u8(), f.tokenizer_model.data(), f.tokenizer_model.size());
    w.add("tokenizer.model", tok_t);
    InitResult r;
    const std::vector<TensorSpec> specs = expected_tensors(*cfg);
    auto weights                        = random_weights(*cfg, f.seed, f.dtype);
    for (size_t i = 0; i < weights.size(); ++i) {
        auto & [name, tensor] = weights[i];
        if (f.clean_norms && (specs[i].role == TensorRole::Norm || specs[i].role == TensorRole::Bias)) {
            float * p = tensor.f32();
            for (int64_t k = 0; k < tensor.numel(); ++k) p[k] = specs[i].role == TensorRole::Norm ? 1.0f : 0.0f;
        }
        r.parameters += tensor.numel();
        w.add(name, tensor);
    }
    M4_RETURN_IF_ERROR(w.write(path, f.sign_key));
    M4_ASSIGN_OR_RETURN(format::ContainerFile file, format::ContainerFile::open(path, format::FileKind::Firmware));
    r.fingerprint = file.fingerprint();
    r.file_bytes  = file.file_size();
    return r;
}

}  // namespace m4::model
