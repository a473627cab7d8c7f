// m4fw demo — the main job: the default firmware is loaded (and verified) once, then a handful of
// real inputs (examples/demo/demo.json: a photo of clothing, a spoken word, a motion window, a
// sentence, a scene to caption …) run through their apps' adapters on all four paths. Each line
// shows the answer, the true label where the example has one, the path and the latency.
// An item whose adapter outputs an image or audio (path 4 `generator` — speech, enlargement — or the
// full path into the image decoder — drawing) writes its output into --out-dir (default demo-out/,
// created when the spec has such items); a speech item's optional "check" is a recogniser adapter
// that listens to the synthesised audio (docs/architecture.md, "Outputs written to files").
//
//     m4fw demo [--firmware F] [--spec examples/demo/demo.json] [--public-key firmware/dev.pub]
//               [--out-dir demo-out] [--json]
#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <numeric>
#include <optional>
#include <set>

#include "adapter/adapter.h"
#include "base/mapped_file.h"
#include "commands.h"
#include "runtime/engine.h"
#include "runtime/file_outputs.h"
#include "runtime/inputs.h"

namespace m4::cli {
namespace {

struct DemoArgs {
    std::string firmware, spec = M4_SOURCE_DIR "/examples/demo/demo.json", public_key, out_dir = "demo-out";
    bool json = false, out_dir_given = false;
};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// One demo item: an app's adapter and an input file (paths relative to the spec file). An item
// whose adapter writes a file may name it ("out", a plain file name in --out-dir) and, for speech,
// a recogniser adapter that checks the audio ("check", relative to the spec).
struct DemoItem {
    std::string title, adapter, input, prompt, truth, out, check;
    std::string text_input;   // the "input" string as written (a text input without "kind")
    bool kind_given = false;  // the item says "kind"
    size_t number   = 0;      // 1, 2, … in the spec
};

Result<std::vector<DemoItem>> read_spec(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.contains("items") || !j["items"].is_array())
        return invalid_argument(path + ": expected a JSON object with an \"items\" array");
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::vector<DemoItem> items;
    std::set<std::string> outs;  // two items must not write the same file
    for (size_t i = 0; i < j["items"].size(); ++i) {
        const auto & e = j["items"][i];
        if (!e.is_object() || !e.contains("adapter") || !e.contains("input") || !e["adapter"].is_string() ||
            !e["input"].is_string())
            return invalid_argument(path + ": items[" + std::to_string(i) + "] needs string \"adapter\" and \"input\"");
        const std::string where = path + ": items[" + std::to_string(i) + "]";
        for (const char * key : {"out", "check", "title", "prompt", "truth", "kind"})
            if (e.contains(key) && !e[key].is_string())
                return invalid_argument(where + ": \"" + key + "\" must be a string");
        const std::string kind = e.value("kind", "file");
        if (kind != "file" && kind != "text")
            return invalid_argument(where + ": \"kind\" is \"file\" or \"text\" (got \"" + kind + "\")");
        DemoItem d;
        d.title      = e.value("title", "");
        d.adapter    = (dir / e["adapter"].get<std::string>()).lexically_normal().string();
        d.input      = e["input"].get<std::string>();
        d.text_input = d.input;
        d.kind_given = e.contains("kind");
        d.number     = i + 1;
        d.out        = e.value("out", "");
        if (!d.out.empty() && (d.out.find('/') != std::string::npos || d.out == "." || d.out == ".."))
            return invalid_argument(where + ": \"out\" is a file name in --out-dir, not a path (got '" + d.out + "')");
        if (!d.out.empty() && !outs.insert(d.out).second)
            return invalid_argument(where + ": another item already writes \"" + d.out + "\"");
        if (e.contains("check")) d.check = (dir / e["check"].get<std::string>()).lexically_normal().string();
        // A text input is the text itself; a file input is relative to the spec.
        if (kind == "file") d.input = (dir / d.input).lexically_normal().string();
        d.prompt = e.value("prompt", "");
        d.truth  = e.value("truth", "");
        items.push_back(std::move(d));
    }
    return items;
}

// An answer is right when it is the truth: the top label of a classifier, or the generated text
// after trimming and collapsing whitespace, ignoring case (nothing more lenient).
std::string normalised(const std::string & s) {
    std::string out;
    for (char ch : s) {
        if (std::isspace(static_cast<unsigned char>(ch))) {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// The counts of the items that write a file (the closing "generated …" line).
struct OutputCounts {
    int written = 0, checked = 0, heard_right = 0;
};

// Binds the item's adapter. When it does not bind and its manifest needs a decoder the firmware
// lacks (an image- or audio-output adapter trained on another firmware), that is the error: it
// names the missing decoder.
Result<adapter::Adapter> load_item_adapter(const DemoArgs & a, const model::Model & fw, const DemoItem & d) {
    auto ad = adapter::Adapter::load(d.adapter, fw);
    if (ad.is_ok()) return ad;
    auto unbound = adapter::Adapter::load_unbound(d.adapter);
    if (unbound.is_ok()) {
        const adapter::Manifest & m = unbound->manifest();
        const runtime::DecoderRun k = runtime::decoder_run(m);
        const std::string who =
            d.adapter + " (" + adapter::output_kind_name(m.output) + " output, path " + model::path_name(m.path) + ")";
        if (k != runtime::DecoderRun::None) M4_RETURN_IF_ERROR(runtime::check_decoder(fw, a.firmware, k, who));
    }
    return ad;
}

// An item whose adapter writes an image or audio: runs it into --out-dir (made ready by
// `ensure_dir` once the item's own checks pass), then (speech with a "check") lets the recogniser
// listen to it.
Status run_output_item(const DemoArgs & a, const model::Model & fw, const DemoItem & d, const adapter::Adapter & ad,
                       std::chrono::steady_clock::time_point t1, const std::function<Status()> & ensure_dir,
                       OutputCounts * counts, nlohmann::json * out) {
    const adapter::Manifest & m = ad.manifest();
    const runtime::DecoderRun k = runtime::decoder_run(m);
    const std::string ad_name   = std::filesystem::path(d.adapter).filename().string();
    // Without "out": <item number>-<adapter file stem>.<png|wav>, e.g. 09-aud.tts.wav.
    const std::string file =
        !d.out.empty() ? d.out
                       : fmt::format("{:02}-{}.{}", d.number, std::filesystem::path(d.adapter).stem().string(),
                                     runtime::output_extension(k));
    const std::string dest  = (std::filesystem::path(a.out_dir) / file).string();
    const bool text_in      = k != runtime::DecoderRun::Enlarge;
    const std::string input = text_in && !d.kind_given ? d.text_input : d.input;
    std::optional<adapter::Adapter> rec;
    if (!d.check.empty()) {
        if (k != runtime::DecoderRun::Speech)
            return invalid_argument(d.check + ": a \"check\" listens to speech; " + ad_name + " writes an image");
        M4_ASSIGN_OR_RETURN(rec, adapter::Adapter::load(d.check, fw));
        M4_RETURN_IF_ERROR(runtime::check_recogniser(fw, *rec, d.check));
    }
    M4_RETURN_IF_ERROR(ensure_dir());
    const std::string who =
        ad_name + " (" + adapter::output_kind_name(m.output) + " output, path " + model::path_name(m.path) + ")";
    M4_ASSIGN_OR_RETURN(runtime::FileOutput w, runtime::run_to_file(fw, a.firmware, &ad, m, input, dest, who));
    std::string heard_line;
    nlohmann::json check = nullptr;
    if (rec) {
        const std::string rec_name = std::filesystem::path(d.check).filename().string();
        M4_ASSIGN_OR_RETURN(runtime::TopLabel h, runtime::recognise_audio(fw, *rec, rec_name, w.audio));
        const bool has_truth = !d.truth.empty();
        const bool right     = has_truth && normalised(h.label) == normalised(d.truth);
        counts->checked += has_truth;
        counts->heard_right += right;
        heard_line = fmt::format("  check  {} heard \"{}\" ({:.0f} %){}\n", rec->manifest().name, h.label, 100 * h.prob,
                                 has_truth ? fmt::format(" — {} (truth: {})", right ? "right" : "WRONG", d.truth) : "");
        check      = {{"adapter", rec->manifest().name}, {"heard", h.label}, {"prob", h.prob}};
        if (has_truth) check["correct"] = right;
    }
    ++counts->written;
    const double ms               = ms_since(t1);
    const std::string shown_input = text_in ? "\"" + input + "\"" : std::filesystem::path(input).filename().string();
    out->push_back({{"title", d.title},
                    {"adapter", m.name},
                    {"path", model::path_name(m.path)},
                    {"modality", model::modality_name(m.modality)},
                    {"input", input},
                    {"output", dest},
                    {"output_kind", adapter::output_kind_name(m.output)},
                    {"shape", w.shape()},
                    {"truth", d.truth},
                    {"check", check},
                    {"ms", ms}});
    if (!a.json)
        fmt::print(
            "{}\n  app adapter {} · path {} ({}) → {} decoder\n  input  {}\n  wrote  {} ({})\n{}  {:.1f} ms "
            "(adapter load + input + inference + writing the file{})\n\n",
            d.title.empty() ? m.name : d.title, m.name, model::path_name(m.path), model::modality_name(m.modality),
            k == runtime::DecoderRun::Speech ? "speech" : "image", shown_input, dest, w.shape(), heard_line, ms,
            rec ? " + the check" : "");
    return Status::ok();
}

Status run_demo(const DemoArgs & a) {
    PublicKey pk;
    if (!a.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(pk, read_public_key(a.public_key));
    }
    M4_ASSIGN_OR_RETURN(std::vector<DemoItem> items, read_spec(a.spec));
    // Whether an item writes a file is known once its adapter is read; the directory is prepared
    // before anything runs when --out-dir is given, else on the first item that writes.
    if (a.out_dir_given) M4_RETURN_IF_ERROR(runtime::prepare_output_dir(a.out_dir, "--out-dir"));
    bool out_dir_ready = a.out_dir_given, announced = false;
    auto t0 = std::chrono::steady_clock::now();
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware, {.public_key = a.public_key.empty() ? nullptr : &pk}));
    const double load_ms = ms_since(t0);
    nlohmann::json out   = {{"firmware", a.firmware},
                            {"fingerprint", fw->fingerprint()},
                            {"load_ms", load_ms},
                            {"signature", a.public_key.empty() ? "not checked" : "verified"},
                            {"items", nlohmann::json::array()}};
    if (!a.json)
        fmt::print("firmware {} ({}…, {}) loaded once in {:.0f} ms\n\n", a.firmware, fw->fingerprint().substr(0, 16),
                   a.public_key.empty() ? "signature not checked" : "signature verified", load_ms);
    int failed = 0, scored = 0, right = 0;
    OutputCounts gen;
    auto run_item = [&](const DemoItem & d) -> Status {
        auto t1 = std::chrono::steady_clock::now();
        M4_ASSIGN_OR_RETURN(adapter::Adapter ad, load_item_adapter(a, *fw, d));
        const adapter::Manifest & m = ad.manifest();
        if (runtime::decoder_run(m) != runtime::DecoderRun::None) {
            auto ensure_dir = [&]() -> Status {
                if (!out_dir_ready) M4_RETURN_IF_ERROR(runtime::prepare_output_dir(a.out_dir, "--out-dir"));
                out_dir_ready = true;
                if (!announced && !a.json)
                    fmt::print("generated images and audio go to {}/ ({})\n\n", a.out_dir,
                               std::filesystem::absolute(a.out_dir).lexically_normal().string());
                announced = true;
                return Status::ok();
            };
            return run_output_item(a, *fw, d, ad, t1, ensure_dir, &gen, &out["items"]);
        }
        if (!d.check.empty())
            return invalid_argument(d.check + ": a \"check\" listens to speech; " + m.name + " writes no audio");
        runtime::InputSpec spec;
        spec.name     = d.input;
        spec.modality = m.path == model::Path::Backbone ? model::Modality::Text : m.modality;
        if (spec.modality == model::Modality::Text) {
            spec.text = d.input;
        } else {
            M4_ASSIGN_OR_RETURN(spec.signal, runtime::load_modal_input(d.input, fw->config().encoder(m.modality)));
        }
        M4_ASSIGN_OR_RETURN(model::Request r, runtime::prepare_item(*fw, m.path, &m, spec, d.prompt));
        r.adapter = &ad.weights();
        std::string answer, verdict_text;  // verdict_text: what is compared with the truth
        if (m.task == adapter::Task::Generate) {
            M4_ASSIGN_OR_RETURN(auto g,
                                fw->generate(m.path, m.modality, std::span<const model::Request>(&r, 1), m.generation));
            answer       = "\"" + g[0].text + "\"";
            verdict_text = g[0].text;
        } else {
            M4_ASSIGN_OR_RETURN(auto o, fw->run(m.path, m.modality, std::span<const model::Request>(&r, 1)));
            if (m.task == adapter::Task::Classify) {
                const runtime::TopLabel t = runtime::top_label(m, o[0].head);
                answer                    = t.label + fmt::format(" ({:.0f} %)", 100 * t.prob);
                verdict_text              = t.label;
            } else {
                answer = fmt::format("{} values", o[0].head.size());
            }
        }
        const double ms      = ms_since(t1);
        const bool has_truth = !d.truth.empty() && m.task != adapter::Task::Regress && m.task != adapter::Task::Embed;
        const bool correct   = has_truth && normalised(verdict_text) == normalised(d.truth);
        scored += has_truth;
        right += correct;
        const std::string shown_input = spec.modality == model::Modality::Text
                                            ? "\"" + d.input + "\""
                                            : std::filesystem::path(d.input).filename().string();
        out["items"].push_back({{"title", d.title},
                                {"adapter", m.name},
                                {"path", model::path_name(m.path)},
                                {"modality", model::modality_name(m.modality)},
                                {"input", d.input},
                                {"answer", answer},
                                {"truth", d.truth},
                                {"correct", has_truth ? nlohmann::json(correct) : nlohmann::json(nullptr)},
                                {"ms", ms}});
        if (!a.json) {
            fmt::print(
                "{}\n  app adapter {} · path {} ({})\n  input  {}{}\n  answer {}{}\n  {:.1f} ms (adapter load + input "
                "decode + inference)\n\n",
                d.title.empty() ? m.name : d.title, m.name, model::path_name(m.path), model::modality_name(m.modality),
                shown_input, d.prompt.empty() ? "" : fmt::format("  prompt \"{}\"", d.prompt), answer,
                d.truth.empty()
                    ? ""
                    : fmt::format("   (truth: {}){}", d.truth, has_truth ? (correct ? " right" : " WRONG") : ""),
                ms);
        }
        return Status::ok();
    };
    // One item's fault (a missing adapter, a bad input) is reported and the others still run.
    for (const DemoItem & d : items) {
        Status st = run_item(d);
        if (st.is_ok()) continue;
        ++failed;
        out["items"].push_back({{"title", d.title}, {"adapter", d.adapter}, {"error", st.message()}});
        if (!a.json) fmt::print("{}\n  error: {}\n\n", d.title.empty() ? d.adapter : d.title, st.message());
    }
    out["scored"]    = scored;
    out["correct"]   = right;
    out["generated"] = gen.written;
    if (announced) out["out_dir"] = a.out_dir;
    out["spoken_checked"]     = gen.checked;
    out["spoken_heard_right"] = gen.heard_right;
    if (a.json) {
        fmt::print("{}\n", out.dump(2));
    } else {
        fmt::print("answered correctly: {} of {} items with a truth label\n", right, scored);
        if (announced)
            fmt::print("generated {} output{} in {}/{}\n", gen.written, gen.written == 1 ? "" : "s", a.out_dir,
                       gen.checked ? fmt::format("; the firmware's own recogniser heard {} of {} spoken word{} right",
                                                 gen.heard_right, gen.checked, gen.checked == 1 ? "" : "s")
                                   : "");
    }
    if (failed) return invalid_argument(fmt::format("{}: {} of {} demo items failed", a.spec, failed, items.size()));
    return Status::ok();
}

}  // namespace

void add_demo_command(CLI::App & app, int * rc) {
    auto a     = std::make_shared<DemoArgs>();
    auto * cmd = app.add_subcommand("demo", "the main job: one firmware, several apps' adapters, all four paths");
    add_firmware_option(cmd, &a->firmware);
    cmd->add_option("--spec", a->spec, "demo items (JSON)")->capture_default_str();
    cmd->add_option("--public-key", a->public_key, "require the firmware to be signed by this key");
    cmd->add_option("--out-dir", a->out_dir,
                    "where items that output an image or audio write their files (created when needed)")
        ->capture_default_str();
    cmd->add_flag("--json", a->json, "print JSON");
    cmd->callback([a, cmd, rc] {
        a->out_dir_given = cmd->count("--out-dir") > 0;
        while (a->out_dir.size() > 1 && a->out_dir.back() == '/') a->out_dir.pop_back();  // "out/" → "out"
        *rc = report(run_demo(*a));
    });
}

}  // namespace m4::cli
