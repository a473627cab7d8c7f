// m4fw demo — the main job: the default firmware is loaded (and verified) once, then a handful of
// real inputs (examples/demo/demo.json: a photo of clothing, a spoken word, a motion window, a
// sentence, a scene to caption …) run through their apps' adapters on all three paths. Each line
// shows the answer, the true label where the example has one, the path and the latency.
//
//     m4fw demo [--firmware F] [--spec examples/demo/demo.json] [--public-key firmware/dev.pub] [--json]
#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <numeric>

#include "adapter/adapter.h"
#include "base/mapped_file.h"
#include "commands.h"
#include "runtime/engine.h"
#include "runtime/inputs.h"

namespace m4::cli {
namespace {

struct DemoArgs {
    std::string firmware, spec = M4_SOURCE_DIR "/examples/demo/demo.json", public_key;
    bool json = false;
};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// One demo item: an app's adapter and an input file (paths relative to the spec file).
struct DemoItem {
    std::string title, adapter, input, prompt, truth;
};

Result<std::vector<DemoItem>> read_spec(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.contains("items") || !j["items"].is_array())
        return invalid_argument(path + ": expected a JSON object with an \"items\" array");
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::vector<DemoItem> items;
    for (size_t i = 0; i < j["items"].size(); ++i) {
        const auto & e = j["items"][i];
        if (!e.is_object() || !e.contains("adapter") || !e.contains("input") || !e["adapter"].is_string() ||
            !e["input"].is_string())
            return invalid_argument(path + ": items[" + std::to_string(i) + "] needs string \"adapter\" and \"input\"");
        DemoItem d;
        d.title   = e.value("title", "");
        d.adapter = (dir / e["adapter"].get<std::string>()).lexically_normal().string();
        d.input   = e["input"].get<std::string>();
        // A text input is the text itself; a file input is relative to the spec.
        if (e.value("kind", "file") == "file") d.input = (dir / d.input).lexically_normal().string();
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

std::string top_label(const adapter::Manifest & m, const std::vector<float> & logits, float * prob) {
    std::vector<float> p(logits);
    const float mx = *std::max_element(p.begin(), p.end());
    double sum     = 0;
    for (float & v : p) sum += v = std::exp(v - mx);
    const size_t k = size_t(std::max_element(p.begin(), p.end()) - p.begin());
    *prob          = float(p[k] / sum);
    return k < m.labels.size() ? m.labels[k] : fmt::format("class {}", k);
}

Status run_demo(const DemoArgs & a) {
    PublicKey pk;
    if (!a.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(pk, read_public_key(a.public_key));
    }
    M4_ASSIGN_OR_RETURN(std::vector<DemoItem> items, read_spec(a.spec));
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
    auto run_item = [&](const DemoItem & d) -> Status {
        auto t1 = std::chrono::steady_clock::now();
        M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(d.adapter, *fw));
        const adapter::Manifest & m = ad.manifest();
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
                float p                 = 0;
                const std::string label = top_label(m, o[0].head, &p);  // sets p: keep it a statement of its own
                answer                  = label + fmt::format(" ({:.0f} %)", 100 * p);
                verdict_text            = label;
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
    out["scored"]  = scored;
    out["correct"] = right;
    if (a.json)
        fmt::print("{}\n", out.dump(2));
    else
        fmt::print("answered correctly: {} of {} items with a truth label\n", right, scored);
    if (failed) return invalid_argument(fmt::format("{}: {} of {} demo items failed", a.spec, failed, items.size()));
    return Status::ok();
}

}  // namespace

void add_demo_command(CLI::App & app, int * rc) {
    auto a     = std::make_shared<DemoArgs>();
    auto * cmd = app.add_subcommand("demo", "the main job: one firmware, several apps' adapters, all three paths");
    add_firmware_option(cmd, &a->firmware);
    cmd->add_option("--spec", a->spec, "demo items (JSON)")->capture_default_str();
    cmd->add_option("--public-key", a->public_key, "require the firmware to be signed by this key");
    cmd->add_flag("--json", a->json, "print JSON");
    cmd->callback([a, rc] { *rc = report(run_demo(*a)); });
}

}  // namespace m4::cli
