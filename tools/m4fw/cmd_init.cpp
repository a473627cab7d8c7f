// m4fw init --config C --out F [--seed N] [--dtype f32|bf16|i8] [--sign KEY]
// A random-weight firmware of the configured architecture, for tests and benchmarks.
#include <fmt/format.h>

#include "base/mapped_file.h"
#include "commands.h"
#include "format/container.h"
#include "model/model.h"

namespace m4::cli {
namespace {

struct InitArgs {
    std::string config, out, dtype = "f32", sign_key;
    uint64_t seed = 1;
};

Status run_init(const InitArgs & a) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(a.config));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception & e) {
        return invalid_argument(a.config + ": not valid JSON (" + e.what() + ")");
    }
    DType dtype;
    if (!parse_dtype(a.dtype, &dtype) || dtype == DType::U8) return invalid_argument("--dtype must be f32, bf16 or i8");
    // Tokenizer: an existing SentencePiece model, or one trained on a corpus.
    std::string tok_bytes;
    if (!j.contains("tokenizer"))
        return invalid_argument(a.config + ": missing \"tokenizer\" ({\"corpus\": …} or {\"model\": …})");
    const auto & t = j["tokenizer"];
    if (t.contains("model")) {
        M4_ASSIGN_OR_RETURN(tok_bytes, read_file_bytes(t["model"].get<std::string>()));
    } else {
        model::TokenizerTrainOptions o;
        o.corpus_path = t.value("corpus", "");
        o.vocab_size  = t.value("vocab_size", 512);
        o.model_type  = t.value("model_type", "bpe");
        M4_ASSIGN_OR_RETURN(tok_bytes, model::train_tokenizer(o));
    }
    M4_ASSIGN_OR_RETURN(model::Tokenizer tok, model::Tokenizer::from_bytes(tok_bytes, a.config));
    j["text"]["vocab_size"] = tok.vocab_size();
    j["text"]["bos_id"]     = tok.bos_id();
    j["text"]["eos_id"]     = tok.eos_id();
    j["text"]["pad_id"]     = tok.pad_id();
    j["text"]["unk_id"]     = tok.unk_id();
    auto cfg                = model::parse_model_config(j);
    if (!cfg) return cfg.status().with_context(a.config);

    format::ContainerWriter w(format::FileKind::Firmware);
    nlohmann::json header = model::model_config_to_json(*cfg);
    header["format"]      = "m4fw";
    header["provenance"]  = {{"kind", "random-init"}, {"seed", a.seed}, {"dtype", a.dtype}, {"tokenizer", t}};
    w.set_header(header);
    Tensor tok_t = Tensor::empty(DType::U8, Shape{static_cast<int64_t>(tok_bytes.size())});
    std::memcpy(tok_t.u8(), tok_bytes.data(), tok_bytes.size());
    w.add("tokenizer.model", tok_t);
    int64_t params = 0;
    for (auto & [name, tensor] : model::random_weights(*cfg, a.seed, dtype)) {
        params += tensor.numel();
        w.add(name, tensor);
    }
    SecretKey sk;
    if (!a.sign_key.empty()) {
        M4_ASSIGN_OR_RETURN(sk, read_secret_key(a.sign_key));
    }
    M4_RETURN_IF_ERROR(w.write(a.out, a.sign_key.empty() ? nullptr : &sk));
    M4_ASSIGN_OR_RETURN(format::ContainerFile f, format::ContainerFile::open(a.out, format::FileKind::Firmware));
    fmt::print("wrote {}: {} parameters ({}), {:.2f} MiB, fingerprint {}\n", a.out, params, a.dtype,
               f.file_size() / 1048576.0, f.fingerprint());
    return Status::ok();
}

}  // namespace

void add_init_command(CLI::App & app, int * rc) {
    auto args  = std::make_shared<InitArgs>();
    auto * cmd = app.add_subcommand("init", "create a random-weight firmware of a given architecture");
    cmd->add_option("--config", args->config, "architecture JSON (firmware header + \"tokenizer\")")->required();
    cmd->add_option("--out", args->out, "output .m4fw")->required();
    cmd->add_option("--seed", args->seed, "random seed");
    cmd->add_option("--dtype", args->dtype, "weight type of linear layers: f32, bf16 or i8");
    cmd->add_option("--sign", args->sign_key, "Ed25519 secret key file to sign with");
    cmd->callback([args, rc] { *rc = report(run_init(*args)); });
}

}  // namespace m4::cli
