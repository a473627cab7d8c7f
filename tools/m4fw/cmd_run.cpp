// m4fw run --firmware F [--adapter A] INPUT…
// Runs inputs in-process (no daemon) through the adapter's path, or without an adapter:
// modality files → encoder path (shared embedding), text → backbone generation,
// a modality file with --path full → generation conditioned on it (--prompt), an image with
// --path generator (or a generator adapter) → the image decoder alone, written to --out.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "adapter/adapter.h"
#include "commands.h"
#include "runtime/engine.h"
#include "runtime/file_outputs.h"
#include "runtime/inputs.h"

namespace m4::cli {
namespace {

struct RunArgs {
    std::string firmware, adapter, public_key, parent, path, prompt, modality, kv_dtype = "f32", out;
    std::vector<std::string> inputs, stop;
    int top = 5;
    model::GenerationOverrides gen;  // the generation options given on the command line
    bool json = false;
};

void print_scores(const adapter::Manifest & m, const std::vector<float> & logits, int top, nlohmann::json * js) {
    std::vector<float> p(logits);
    float mx = *std::max_element(p.begin(), p.end());
    double s = 0;
    for (float & v : p) s += v = std::exp(v - mx);
    for (float & v : p) v = float(v / s);
    std::vector<int> idx(p.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return p[a] > p[b]; });
    for (int i = 0; i < std::min<int>(top, static_cast<int>(idx.size())); ++i) {
        std::string label =
            idx[i] < static_cast<int>(m.labels.size()) ? m.labels[idx[i]] : fmt::format("class {}", idx[i]);
        if (js)
            (*js)["labels"].push_back({{"label", label}, {"score", p[idx[i]]}});
        else
            fmt::print("  {:<24} {:.4f}\n", label, p[idx[i]]);
    }
}

void print_vector(const char * what, const std::vector<float> & v, nlohmann::json * js) {
    if (js) {
        (*js)[what] = v;
        return;
    }
    fmt::print("  {} [{}]: ", what, v.size());
    for (size_t i = 0; i < std::min<size_t>(8, v.size()); ++i) fmt::print("{:+.4f} ", v[i]);
    fmt::print("{}\n", v.size() > 8 ? "…" : "");
}

// Path 4 (an image → the image decoder → a PNG; a text → the speech decoder → a WAV) and the full
// path over text into the image decoder (a description → a PNG): one input, written to --out
// (runtime::run_to_file).
Status run_to_out(const RunArgs & a, const model::Model & fw, const adapter::Adapter * ad,
                  const adapter::Manifest & man) {
    const runtime::DecoderRun kind = runtime::decoder_run(man);
    const bool draw                = kind == runtime::DecoderRun::Draw;
    const std::string what         = kind == runtime::DecoderRun::Speech ? "audio" : "an image";
    const std::string who          = draw ? (ad ? a.adapter + " (an image-output adapter, full path over text)"
                                                : std::string("the full path over text (into the image decoder)"))
                                          : (ad ? a.adapter + " (an " + std::string(adapter::output_kind_name(man.output)) +
                                             "-output adapter, generator path)"
                                                : std::string("the generator path"));
    if (kind == runtime::DecoderRun::None)  // the generator path over IMU or text: no decoder takes it
        return incompatible(a.firmware + ": no image decoder (\"decoders.image\") for " + who);
    M4_RETURN_IF_ERROR(runtime::check_decoder(fw, a.firmware, kind, who));
    if (a.out.empty())
        return invalid_argument("--out: " + who + " writes " + what + "; give --out FILE." +
                                runtime::output_extension(kind));
    if (a.inputs.size() != 1)
        return invalid_argument(draw ? "--out: one input per run on the full path into the decoder"
                                     : "--out: one input per run on the generator path");
    const std::string & in = a.inputs[0];
    M4_ASSIGN_OR_RETURN(runtime::FileOutput w, runtime::run_to_file(fw, a.firmware, ad, man, in, a.out, who));
    if (kind == runtime::DecoderRun::Speech) {
        const double secs = double(w.audio.size()) / double(w.sample_rate);
        if (a.json)
            fmt::print(
                "{}\n",
                nlohmann::json::array(
                    {{{"input", in}, {"output", a.out}, {"samples", w.audio.size()}, {"sample_rate", w.sample_rate}}})
                    .dump(2));
        else
            fmt::print("[1] \"{}\"\n  → {} ({:.2f} s at {} Hz)\npath generator · 1 item(s) · {:.1f} ms\n", in, a.out,
                       secs, w.sample_rate, w.ms);
        return Status::ok();
    }
    const int64_t S = w.width;
    if (a.json)
        fmt::print("{}\n", nlohmann::json::array({{{"input", in}, {"output", a.out}, {"size", {S, S}}}}).dump(2));
    else
        fmt::print("[1] {}\n  → {} ({}x{} image)\npath {} · 1 item(s) · {:.1f} ms\n", in, a.out, S, S,
                   draw ? "full → image decoder" : "generator", w.ms);
    return Status::ok();
}

Status run_run(const RunArgs & a) {
    PublicKey pk;
    if (!a.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(pk, read_public_key(a.public_key));
    }
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware, {.public_key = a.public_key.empty() ? nullptr : &pk}));
    std::optional<adapter::Adapter> ad;
    adapter::Manifest man;
    if (!a.adapter.empty()) {
        M4_ASSIGN_OR_RETURN(const std::string parent, verified_parent(a.parent, *fw));
        M4_ASSIGN_OR_RETURN(ad, adapter::Adapter::load(a.adapter, *fw, adapter::Binding::Sibling, parent));
        man = ad->manifest();
    } else {
        // No adapter: pick path and modality from the first input.
        man.task                      = adapter::Task::Generate;
        man.generation.max_new_tokens = static_cast<int>(std::min<int64_t>(32, fw->config().backbone.max_seq));
        man.modality                  = runtime::guess_modality(a.inputs[0]);
        if (!a.modality.empty() && !model::parse_modality(a.modality, &man.modality))
            return invalid_argument("--modality: image, audio, imu or text");
        // The generator path's decoder follows the input: text → the speech decoder, else the image decoder.
        if (a.path == "generator" && a.modality.empty()) {
            std::error_code ec;
            const std::string & in0 = a.inputs[0];
            const bool file =
                std::filesystem::exists(in0, ec) || (in0.size() > 4 && in0.compare(in0.size() - 4, 4, ".npy") == 0);
            man.modality =
                man.modality == model::Modality::Text && !file ? model::Modality::Audio : model::Modality::Image;
        }
        if (a.modality.empty() && a.path != "generator" && a.inputs[0].size() > 4 &&
            a.inputs[0].substr(a.inputs[0].size() - 4) == ".npy")
            return invalid_argument(a.inputs[0] + ": a .npy input needs --modality image, audio or imu");
        man.path = man.modality == model::Modality::Text ? model::Path::Backbone : model::Path::Encoder;
        if (!a.path.empty() && !model::parse_path(a.path, &man.path))
            return invalid_argument("--path: encoder, backbone, full or generator");
        // --path encoder over text: its embedding in the shared space.
        const bool text_embed = man.path == model::Path::Encoder && man.modality == model::Modality::Text;
        const bool draw       = man.path == model::Path::Full && man.modality == model::Modality::Text;
        if (!text_embed && !draw && (man.path == model::Path::Backbone) != (man.modality == model::Modality::Text))
            return invalid_argument(std::string("the ") + model::path_name(man.path) + " path cannot take " +
                                    model::modality_name(man.modality) + " input");
        if (man.path == model::Path::Encoder) man.task = adapter::Task::Embed;
        man.output = adapter::default_output(man.task, man.path, man.modality);
    }
    if (man.path == model::Path::Generator || (man.path == model::Path::Full && man.modality == model::Modality::Text))
        return run_to_out(a, *fw, ad ? &*ad : nullptr, man);
    if (!a.out.empty())
        return invalid_argument("--out: the " + std::string(model::path_name(man.path)) + " path outputs " +
                                adapter::output_kind_name(man.output) + ", which is printed, not written to a file");
    if (man.path != model::Path::Backbone && man.modality != model::Modality::Text &&
        !fw->config().has_encoder(man.modality))
        return incompatible(a.firmware + ": no " + std::string(model::modality_name(man.modality)) + " encoder");
    std::vector<model::Request> batch;
    for (const auto & in : a.inputs) {
        runtime::InputSpec spec;
        spec.name     = in;
        spec.modality = man.path == model::Path::Backbone ? model::Modality::Text : man.modality;
        if (spec.modality == model::Modality::Text && runtime::guess_modality(in) != model::Modality::Text)
            return invalid_argument(in + ": a " + model::modality_name(runtime::guess_modality(in)) +
                                    " file, but the input modality is text");
        if (spec.modality == model::Modality::Text) {
            M4_ASSIGN_OR_RETURN(spec.text, runtime::read_text_input(in));
        } else {
            M4_ASSIGN_OR_RETURN(spec.signal, runtime::load_modal_input(in, fw->config().encoder(man.modality)));
        }
        // Decoding checks, prompt template and tokenization are shared with the daemon.
        M4_ASSIGN_OR_RETURN(model::Request r, runtime::prepare_item(*fw, man.path, &man, spec, a.prompt));
        r.adapter = ad ? &ad->weights() : nullptr;
        batch.push_back(std::move(r));
    }
    // Command-line values override the manifest's defaults; both are checked before anything runs.
    model::GenerateOptions g = model::with_overrides(man.generation, a.gen);
    if (man.task == adapter::Task::Generate && man.path != model::Path::Encoder) {
        M4_RETURN_IF_ERROR(fw->check_options(g, "generation options"));
        if (!a.gen.choices.empty() && !a.gen.json_schema.empty())
            return invalid_argument("--choice and --json-schema cannot be combined");
        if (!a.gen.choices.empty()) {
            M4_ASSIGN_OR_RETURN(g.constraint,
                                model::TokenConstraint::choices(a.gen.choices, fw->tokenizer(), g.max_new_tokens));
        } else if (!a.gen.json_schema.empty()) {
            M4_ASSIGN_OR_RETURN(const std::string schema, runtime::read_text_input(a.gen.json_schema));
            M4_ASSIGN_OR_RETURN(g.constraint,
                                model::TokenConstraint::json_schema(schema, fw->tokenizer(), g.max_new_tokens));
        }
    } else if (!a.gen.choices.empty() || !a.gen.json_schema.empty()) {
        return invalid_argument("--choice / --json-schema need generation (text, or --path full)");
    }
    if (!parse_dtype(a.kv_dtype, &g.kv_dtype) || (g.kv_dtype != DType::F32 && g.kv_dtype != DType::BF16))
        return invalid_argument("--kv-dtype: '" + a.kv_dtype + "' is not f32 or bf16");

    auto t0            = std::chrono::steady_clock::now();
    nlohmann::json out = nlohmann::json::array();
    auto elapsed_ms    = [&] {
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    if (man.task == adapter::Task::Generate && man.path != model::Path::Encoder) {
        M4_ASSIGN_OR_RETURN(auto gens, fw->generate(man.path, man.modality, batch, g));
        double ms = elapsed_ms();
        for (size_t i = 0; i < gens.size(); ++i) {
            if (a.json)
                out.push_back({{"input", a.inputs[i]},
                               {"text", gens[i].text},
                               {"tokens", gens[i].tokens},
                               {"stop", gens[i].stop_reason}});
            else
                fmt::print("[{}] {}\n  → {}  ({} tokens, stop: {})\n", i + 1, a.inputs[i], gens[i].text,
                           gens[i].tokens.size(), gens[i].stop_reason);
        }
        if (!a.json) fmt::print("path {} · {} item(s) · {:.1f} ms\n", model::path_name(man.path), gens.size(), ms);
    } else {
        M4_ASSIGN_OR_RETURN(auto outs, fw->run(man.path, man.modality, batch));
        double ms = elapsed_ms();
        for (size_t i = 0; i < outs.size(); ++i) {
            nlohmann::json js  = {{"input", a.inputs[i]}};
            nlohmann::json * j = a.json ? &js : nullptr;
            if (!a.json) fmt::print("[{}] {}\n", i + 1, a.inputs[i]);
            if (!ad)
                print_vector("embedding", outs[i].embedding, j);
            else if (man.task == adapter::Task::Classify)
                print_scores(man, outs[i].head, a.top, j);
            else
                print_vector(man.task == adapter::Task::Regress ? "values" : "embedding", outs[i].head, j);
            if (a.json) out.push_back(js);
        }
        if (!a.json) fmt::print("path {} · {} item(s) · {:.1f} ms\n", model::path_name(man.path), outs.size(), ms);
    }
    if (a.json) fmt::print("{}\n", out.dump(2));
    return Status::ok();
}

}  // namespace

void add_run_command(CLI::App & app, int * rc) {
    auto a     = std::make_shared<RunArgs>();
    auto * cmd = app.add_subcommand("run", "run inputs through the firmware (and an adapter), in-process");
    add_firmware_option(cmd, &a->firmware);
    cmd->add_option("--adapter", a->adapter, "adapter .m4a (its path, modality and head decide the output)");
    cmd->add_option("--public-key", a->public_key, "require the firmware to be signed by this key");
    cmd->add_option("--parent", a->parent,
                    "the firmware this one was quantized from: verified, then its adapters bind (docs/formats.md)");
    cmd->add_option("--path", a->path, "without an adapter: encoder, backbone, full or generator");
    cmd->add_option("--out", a->out, "generator path, full path over text: the output file (.png image, .wav speech)");
    cmd->add_option("--modality", a->modality, "without an adapter: image, audio, imu or text (needed for .npy)");
    cmd->add_option("--prompt", a->prompt, "text prompt for the full path");
    cmd->add_option("--top", a->top, "labels to show for classification");
    add_generation_options(cmd, &a->gen);
    cmd->add_option("--kv-dtype", a->kv_dtype,
                    "KV cache storage while generating: f32 (default, exact) or bf16 (half)");
    cmd->add_flag("--json", a->json, "print JSON");
    cmd->add_option("inputs", a->inputs, "image (png/jpg), audio (wav/flac), IMU (csv), .npy, or text")->required();
    cmd->callback([a, rc] { *rc = report(run_run(*a)); });
}

}  // namespace m4::cli
