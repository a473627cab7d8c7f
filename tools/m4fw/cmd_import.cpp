// m4fw import SRC --out F [--sign KEY] [--embed-dim E] [--max-seq N] [--seed S] [--name N]
// m4fw compose --backbone SRC [--image SRC] --out F [same options]
// m4fw import-adapter DIR --firmware F --out A [--name N]
// Firmware from public checkpoints (docs/import.md). SRC is a Hugging Face directory, a GGUF
// `llama` file or an existing .m4fw; what no source brings (text_proj, embed_proj, projectors) is
// initialised from --seed and listed in the header's provenance.
#include <fmt/format.h>

#include "commands.h"
#include "import/import.h"

namespace m4::cli {
namespace {

struct BuildArgs {
    std::string backbone, image, out, sign_key, name;
    int64_t embed_dim = 0, max_seq = 0;
    uint64_t seed = 1;
};

Status run_build(const BuildArgs & a, const char * command) {
    std::vector<import::Part> parts;
    M4_ASSIGN_OR_RETURN(import::Part bb, import::import_checkpoint(a.backbone, import::Role::Backbone));
    parts.push_back(std::move(bb));
    if (!a.image.empty()) {
        M4_ASSIGN_OR_RETURN(import::Part img, import::import_checkpoint(a.image, import::Role::Image));
        parts.push_back(std::move(img));
    }
    import::BuildOptions o;
    o.name      = a.name;
    o.embed_dim = a.embed_dim;
    o.max_seq   = a.max_seq;
    o.seed      = a.seed;
    o.recipe    = {{"command", command}, {"backbone", a.backbone}, {"embed_dim", a.embed_dim}, {"seed", a.seed}};
    if (!a.image.empty()) o.recipe["image"] = a.image;
    SecretKey sk;
    if (!a.sign_key.empty()) {
        M4_ASSIGN_OR_RETURN(sk, read_secret_key(a.sign_key));
        o.sign_key = &sk;
    }
    M4_ASSIGN_OR_RETURN(import::BuildReport r, import::build_firmware(parts, o, a.out));
    for (const auto & p : parts) {
        fmt::print("{}: {} ({} tensors)\n", import::role_name(p.role), p.source.value("path", ""), p.tensors.size());
        if (p.source.contains("q8_0_requant"))
            fmt::print(
                "  Q8_0 → int8 per row: max drift {:.3e} of the tensor's largest value (bound 1/254 = 3.94e-03)\n",
                p.source["q8_0_requant"]["max_rel"].get<double>());
        if (p.source.contains("notes"))
            for (const auto & n : p.source["notes"]) fmt::print("  note: {}\n", n.get<std::string>());
    }
    fmt::print("initialised (seed {}): {}\n", a.seed, fmt::join(r.initialised, ", "));
    fmt::print("wrote {}: {} parameters, {:.2f} MiB, fingerprint {}{}\n", a.out, r.parameters, r.file_bytes / 1048576.0,
               r.fingerprint, a.sign_key.empty() ? "" : " (signed)");
    return Status::ok();
}

void add_build_options(CLI::App * cmd, BuildArgs * a) {
    cmd->add_option("--out", a->out, "output .m4fw")->required();
    cmd->add_option("--sign", a->sign_key, "Ed25519 secret key file to sign with");
    cmd->add_option("--name", a->name, "firmware name (default: the backbone's)");
    cmd->add_option("--embed-dim", a->embed_dim,
                    "shared embedding width (default: a firmware part's, else the backbone width)");
    cmd->add_option("--max-seq", a->max_seq, "backbone context length (default: the checkpoint's, at most 4096)");
    cmd->add_option("--seed", a->seed, "seed of the tensors no checkpoint brings");
}

}  // namespace

void add_import_commands(CLI::App & app, int * rc) {
    auto imp = std::make_shared<BuildArgs>();
    auto * c = app.add_subcommand("import", "a firmware from one checkpoint (HF LLaMA directory or GGUF llama file)");
    c->add_option("source", imp->backbone, "Hugging Face directory or .gguf file")->required();
    add_build_options(c, imp.get());
    c->callback([imp, rc] { *rc = report(run_build(*imp, "import")); });

    auto comp = std::make_shared<BuildArgs>();
    auto * k =
        app.add_subcommand("compose", "a firmware from parts: backbone and image encoder from checkpoints or firmware");
    k->add_option("--backbone", comp->backbone, "HF LLaMA directory, .gguf or .m4fw")->required();
    k->add_option("--image", comp->image, "HF SigLIP-style vision directory or .m4fw");
    add_build_options(k, comp.get());
    k->callback([comp, rc] { *rc = report(run_build(*comp, "compose")); });

    struct AdapterArgs {
        std::string dir, firmware, out, name;
    };
    auto ad  = std::make_shared<AdapterArgs>();
    auto * a = app.add_subcommand("import-adapter", "a PEFT LoRA directory → .m4a bound to a firmware");
    a->add_option("dir", ad->dir, "directory with adapter_config.json and adapter_model.safetensors")->required();
    add_firmware_option(a, &ad->firmware, "the firmware the LoRA's base model was imported into");
    a->add_option("--out", ad->out, "output .m4a")->required();
    a->add_option("--name", ad->name, "adapter name (default: the directory's name)");
    a->callback([ad, rc] {
        std::string name = ad->name;
        if (name.empty()) {
            std::string d = ad->dir;
            while (d.size() > 1 && d.back() == '/') d.pop_back();
            name = d.substr(d.find_last_of('/') + 1);
        }
        auto r = import::import_peft_adapter(ad->dir, ad->firmware, ad->out, name);
        if (r) {
            fmt::print("wrote {}: LoRA rank {}, alpha {}, {} targets\n", ad->out, r->rank, r->alpha, r->targets.size());
            if (r->padded_values > 0)
                fmt::print("  note: rank_pattern modules padded with {} zeros to rank {} (an .m4a has one rank)\n",
                           r->padded_values, r->rank);
        }
        *rc = report(r.status());
    });
}

}  // namespace m4::cli
