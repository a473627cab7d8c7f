// m4fw inspect FILE [--public-key K] [--tensors]
// Firmware: architecture, tensors, sizes, fingerprint, signature state, kernels, and the operator
// types each execution path uses (recorded by running that path once on a dummy input).
// Adapter: manifest, tensors, its digest and the firmware fingerprint it is bound to.
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <map>

#include "adapter/adapter.h"
#include "base/cpu.h"
#include "commands.h"
#include "ops/ops.h"

namespace m4::cli {
namespace {

struct InspectArgs {
    std::string file, public_key;
    bool tensors = false;
};

std::string human_bytes(uint64_t b) {
    if (b >= (1u << 20)) return fmt::format("{:.2f} MiB", b / 1048576.0);
    if (b >= 1024) return fmt::format("{:.1f} KiB", b / 1024.0);
    return fmt::format("{} B", b);
}

void print_tensors(const format::ContainerFile & f, bool all) {
    std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;
    for (const auto & e : f.entries()) {
        auto & s = by_dtype[dtype_name(e.dtype)];
        s.first += e.shape.numel();
        s.second += e.nbytes;
        if (all)
            fmt::print("  {:<52} {:<5} {:<16} {}\n", e.name, dtype_name(e.dtype), e.shape.str(), human_bytes(e.nbytes));
    }
    fmt::print("tensors: {}", f.entries().size());
    for (auto & [dt, s] : by_dtype) fmt::print("  [{}: {} values, {}]", dt, s.first, human_bytes(s.second));
    fmt::print("\n");
}

// Runs one dummy item through a path under an OpRecorder and returns the op names it used.
std::vector<std::string> path_ops(const model::Model & m, model::Path path, model::Modality mod) {
    model::Request r;
    if (path == model::Path::Generator && mod == model::Modality::Audio) {  // text for the speech decoder
        const auto & sd = *m.config().speech_decoder;
        r.tokens =
            model::speech_symbols(sd, std::string("hi").substr(0, size_t(std::min<int64_t>(2, sd.max_chars)))).value();
        ops::OpRecorder rec;
        (void)m.run(path, mod, {&r, 1});
        return rec.used_names();
    }
    if (path == model::Path::Generator) {  // an image on the decoder's grid, no text
        const int64_t n = m.config().image_decoder->input_values();
        r.signal.resize(n);
        for (int64_t i = 0; i < n; ++i) r.signal[i] = 0.1f * float((i * 7919) % 13) - 0.6f;
        ops::OpRecorder rec;
        (void)m.run(path, mod, {&r, 1});
        return rec.used_names();
    }
    if (path == model::Path::Full && mod == model::Modality::Text) {  // text → backbone → projector → decoder
        r.tokens = {m.config().text.unk_id + 1};
        ops::OpRecorder rec;
        (void)m.run(path, mod, {&r, 1});
        return rec.used_names();
    }
    if (path != model::Path::Backbone) {
        const auto & ec = m.config().encoder(mod);
        int64_t n       = ec.input_values();
        r.signal.resize(n);
        for (int64_t i = 0; i < n; ++i) r.signal[i] = 0.1f * float((i * 7919) % 13) - 0.6f;
    }
    r.tokens = {m.config().text.unk_id + 1};
    ops::OpRecorder rec;
    if (path == model::Path::Encoder)
        (void)m.run(path, mod, {&r, 1});
    else
        (void)m.generate(path, mod, {&r, 1}, [] {
            model::GenerateOptions g;
            g.max_new_tokens = 2;
            return g;
        }());
    return rec.used_names();
}

Status inspect_firmware(const InspectArgs & a, const PublicKey * pk) {
    M4_ASSIGN_OR_RETURN(auto m, model::Model::load(a.file, {.public_key = pk}));
    const auto & c = m->config();
    const auto & f = m->file();
    fmt::print("firmware: {}\nname: {} {}\nsize: {}\nfingerprint: {}\nsignature: {}\n", a.file, c.name, c.version,
               human_bytes(f.file_size()), m->fingerprint(), format::signature_state_name(f.signature()));
    const auto & b = c.backbone;
    fmt::print("backbone: width {} layers {} heads {} kv_heads {} ffn {} max_seq {} vocab {}{}\n", b.width, b.layers,
               b.heads, b.kv_heads, b.ffn, b.max_seq, c.text.vocab_size, b.tie_lm_head ? " (tied LM head)" : "");
    fmt::print("embed_dim: {}\n", c.embed_dim);
    for (int i = 0; i < model::kEncoderModalities; ++i) {
        if (!c.encoders[i]) continue;
        const auto & e = *c.encoders[i];
        // The layout keys of imported towers, only when set (a plain encoder prints as before).
        std::string layout;
        if (e.cls_token) layout += " cls_token";
        if (e.pre_norm) layout += " pre_norm";
        if (e.activation != model::Activation::Gelu) layout += std::string(" ") + model::activation_name(e.activation);
        if (e.pool == model::Pool::Cls) layout += " pool=cls";
        fmt::print("encoder {}: width {} layers {} heads {} ffn {} tokens {} patch_dim {}{}\n",
                   model::modality_name(e.modality), e.width, e.layers, e.heads, e.ffn, e.tokens(), e.patch_dim(),
                   layout);
    }
    if (c.image_decoder) {
        const auto & d = *c.image_decoder;
        fmt::print("decoder image: {}x{} output, patch {}, width {} layers {} heads {} ffn {} tokens {}{}\n",
                   d.image_size, d.image_size, d.patch_size, d.width, d.layers, d.heads, d.ffn, d.tokens(),
                   c.has_draw_path() ? fmt::format(" (from_backbone: {} queries)", d.tokens()) : "");
    }
    if (c.speech_decoder) {
        const auto & d = *c.speech_decoder;
        fmt::print(
            "decoder speech: {} chars x {} frames → {} log-mel frames of {}, Griffin-Lim {} iterations, {} "
            "samples at {} Hz, width {} layers {} heads {} ffn {}\n",
            d.max_chars, d.frames_per_char, d.frames(), d.n_mels, d.griffin_lim_iters, d.samples(), d.sample_rate,
            d.width, d.layers, d.heads, d.ffn);
    }
    if (f.header().contains("provenance")) fmt::print("provenance: {}\n", f.header()["provenance"].dump());
    print_tensors(f, a.tensors);
    fmt::print("cpu: {}\nkernels: {} (M4_ISA ceiling; detected {})\n", cpu_features().describe(),
               isa_name(selected_isa()), isa_name(cpu_features().detected));
    fmt::print("operator types per path:\n");
    auto show = [&](model::Path p, model::Modality mod) {
        auto names = path_ops(*m, p, mod);
        fmt::print("  {:<8} {:<5} {} types: {}\n", model::path_name(p), model::modality_name(mod), names.size(),
                   fmt::join(names, " "));
    };
    for (int i = 0; i < model::kEncoderModalities; ++i)
        if (c.encoders[i]) show(model::Path::Encoder, static_cast<model::Modality>(i));
    show(model::Path::Backbone, model::Modality::Text);
    for (int i = 0; i < model::kEncoderModalities; ++i)
        if (c.encoders[i]) show(model::Path::Full, static_cast<model::Modality>(i));
    if (c.has_draw_path()) show(model::Path::Full, model::Modality::Text);  // the full path into the decoder
    if (c.image_decoder) show(model::Path::Generator, model::Modality::Image);
    if (c.speech_decoder) show(model::Path::Generator, model::Modality::Audio);
    return Status::ok();
}

Status inspect_adapter(const InspectArgs & a) {
    M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load_unbound(a.file));
    const auto & m = ad.manifest();
    fmt::print("adapter: {}\nname: {} {}\nsize: {}\ndigest: {}\n", a.file, m.name, m.version,
               human_bytes(ad.file_size()), ad.file().fingerprint());
    fmt::print("task: {}  path: {}  modality: {}  output: {}\n", adapter::task_name(m.task), model::path_name(m.path),
               model::modality_name(m.modality), adapter::output_kind_name(m.output));
    fmt::print("bound to firmware: {}\n", m.firmware_fingerprint);
    if (m.lora_rank > 0)
        fmt::print("lora: rank {} alpha {} on {} linear layers\n", m.lora_rank, m.lora_alpha, m.targets.size());
    if (m.head_type != model::HeadType::None)
        fmt::print("head: {} {} → {}{} (pool {})\n", model::head_type_name(m.head_type), m.head_in,
                   m.head_hidden > 0 ? fmt::format("{} (GELU) → ", m.head_hidden) : std::string(), m.head_out,
                   model::head_pool_name(m.head_pool));
    if (!m.labels.empty()) fmt::print("labels: {}\n", fmt::join(m.labels, ", "));
    if (!m.metrics.empty()) fmt::print("metrics: {}\n", m.metrics.dump());
    print_tensors(ad.file(), a.tensors);
    return Status::ok();
}

Status run_inspect(const InspectArgs & a) {
    char head[4] = {};
    std::ifstream in(a.file, std::ios::binary);
    if (!in) return not_found(a.file + ": cannot open");
    in.read(head, 4);
    PublicKey pk;
    if (!a.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(pk, read_public_key(a.public_key));
    }
    if (std::memcmp(head, "M4AD", 4) == 0) return inspect_adapter(a);
    return inspect_firmware(a, a.public_key.empty() ? nullptr : &pk);
}

}  // namespace

void add_inspect_command(CLI::App & app, int * rc) {
    auto args  = std::make_shared<InspectArgs>();
    auto * cmd = app.add_subcommand("inspect", "describe a firmware (.m4fw) or adapter (.m4a) file");
    cmd->add_option("file", args->file, "file to inspect")->required();
    cmd->add_option("--public-key", args->public_key, "verify the firmware's signature against this key");
    cmd->add_flag("--tensors", args->tensors, "list every tensor");
    cmd->callback([args, rc] { *rc = report(run_inspect(*args)); });
}

}  // namespace m4::cli
