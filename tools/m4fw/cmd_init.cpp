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
    model::InitFirmware f;
    f.config          = j;
    f.tokenizer_model = std::move(tok_bytes);
    f.seed            = a.seed;
    f.dtype           = dtype;
    f.provenance      = {{"kind", "random-init"}, {"seed", a.seed}, {"dtype", a.dtype}, {"tokenizer", t}};
    f.config.erase("tokenizer");
    SecretKey sk;
    if (!a.sign_key.empty()) {
        M4_ASSIGN_OR_RETURN(sk, read_secret_key(a.sign_key));
        f.sign_key = &sk;
    }
    M4_ASSIGN_OR_RETURN(model::InitResult r, model::write_random_firmware(f, a.out, a.config));
    fmt::print("wrote {}: {} parameters ({}), {:.2f} MiB, fingerprint {}\n", a.out, r.parameters, a.dtype,
               r.file_bytes / 1048576.0, r.fingerprint);
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
