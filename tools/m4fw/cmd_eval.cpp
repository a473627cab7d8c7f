// m4fw eval — a benchmark task's metric for firmware + adapter, through the inference path:
//
//   m4fw eval --adapter adapters/img.fashion_mnist.m4a --task img.fashion_mnist [--split test] [--limit N]
//   m4fw eval --zero-shot --task img.fashion_mnist        no adapter: nearest label prompt in the shared
//                                                         embedding space (encoder-path tasks)
//
//   m4fw eval --task img.super_resolution [--adapter sr.m4a]   PSNR / SSIM at ×2 and ×4 against bicubic
//                                                         (--zero-shot: the firmware's decoder, no adapter)
//
//   m4fw eval --plan --task T                            the task's plan as JSON (how it is trained, defaults)
//
// Common: --firmware F (default: the default firmware), --data DIR (default: data), --batch N,
// --json (one JSON object on stdout instead of the text lines).
#include <fmt/format.h>

#include <optional>

#include "bench/draw_scene.h"
#include "bench/evaluate.h"
#include "bench/super_resolution.h"
#include "bench/tts.h"
#include "commands.h"

namespace m4::cli {
namespace {

struct EvalArgs {
    std::string firmware, adapter, task, data = "data", split = "test", prompts, parent, public_key;
    // aud.tts: the recogniser firmware (empty: the firmware under evaluation, whose own keyword/digit
    // adapters score it) and those adapters (comma-separated)
    std::string recogniser, recognisers = "adapters/aud.kws.m4a,adapters/aud.digits.m4a";
    int64_t limit = 0, batch = 64;
    bool zero_shot = false, json = false, plan = false, validation = false;
};

void print_report(const bench::EvalReport & r, bool zero_shot) {
    const bool higher = bench::higher_is_better(r.metric.substr(r.metric.rfind(' ') + 1));
    fmt::print("{} [{}] {}: {} {:.4f} (chance {:.4f}: {}; {} is better)\n", r.task, r.split,
               zero_shot ? "zero-shot" : r.adapter, r.metric, r.score, r.chance, r.chance_rule,
               higher ? "higher" : "lower");
    for (const auto & [k, v] : r.extra) fmt::print("  {} {:.4f}\n", k, v);
    for (const auto & [out, ref] : r.samples) fmt::print("  \"{}\" (reference \"{}\")\n", out, ref);
    if (r.adapter_bytes > 0)
        fmt::print("  adapter: {:.1f} KB file, {} parameters\n", double(r.adapter_bytes) / 1024.0, r.adapter_params);
    fmt::print("  {} of {} examples in {:.1f} s\n", r.examples, r.total, r.seconds);
}

Status run_eval(const EvalArgs & a) {
    if (a.plan) {
        M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware));
        M4_ASSIGN_OR_RETURN(bench::TaskPlan plan, bench::plan_task(a.data, a.task, fw->config()));
        fmt::print("{}\n", bench::plan_to_json(plan).dump());
        return Status::ok();
    }
    if (a.zero_shot && !a.adapter.empty()) return invalid_argument("m4fw eval: give either --adapter A or --zero-shot");
    PublicKey pk;
    if (!a.public_key.empty()) {
        M4_ASSIGN_OR_RETURN(pk, read_public_key(a.public_key));
    }
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware, {.public_key = a.public_key.empty() ? nullptr : &pk}));
    M4_ASSIGN_OR_RETURN(bench::TaskPlan plan, bench::plan_task(a.data, a.task, fw->config()));
    if (!a.prompts.empty()) {
        plan.zero_shot_templates.clear();
        for (size_t at = 0; at <= a.prompts.size();) {
            size_t bar = a.prompts.find('|', at);
            if (bar == std::string::npos) bar = a.prompts.size();
            if (bar > at) plan.zero_shot_templates.push_back(a.prompts.substr(at, bar - at));
            at = bar + 1;
        }
    }
    // Decoder tasks score the firmware alone without an adapter; every other task needs one (or --zero-shot).
    if (!a.zero_shot && a.adapter.empty() && plan.facts.kind != "draw" && plan.facts.kind != "reconstruct")
        return invalid_argument("m4fw eval: give either --adapter A or --zero-shot");
    bench::EvalOptions o;
    o.split      = a.validation ? "train" : a.split;
    o.validation = a.validation;
    o.limit      = a.limit;
    o.batch      = a.batch;
    bench::EvalReport r;
    if (plan.facts.kind == "reconstruct") {  // PSNR / SSIM against the bicubic baseline (decoder tasks)
        std::optional<adapter::Adapter> ad;
        if (!a.adapter.empty()) {
            M4_ASSIGN_OR_RETURN(const std::string parent, verified_parent(a.parent, *fw));
            M4_ASSIGN_OR_RETURN(ad, adapter::Adapter::load(a.adapter, *fw, adapter::Binding::Sibling, parent));
        }
        if (a.validation) return invalid_argument("--validation: " + a.task + " has its own split (--split val)");
        M4_ASSIGN_OR_RETURN(r, bench::evaluate_super_resolution(*fw, ad ? &*ad : nullptr, a.adapter, plan, a.data, o));
    } else if (plan.facts.kind == "draw" || plan.facts.kind == "mel_regress") {  // decoder tasks; no adapter: the firmware alone
        std::optional<adapter::Adapter> ad;
        if (!a.adapter.empty()) {
            M4_ASSIGN_OR_RETURN(const std::string parent, verified_parent(a.parent, *fw));
            M4_ASSIGN_OR_RETURN(ad, adapter::Adapter::load(a.adapter, *fw, adapter::Binding::Sibling, parent));
        }
        if (a.validation) return invalid_argument("--validation: " + a.task + " has its own split (--split val)");
        if (plan.facts.kind == "draw") {  // palette agreement
            M4_ASSIGN_OR_RETURN(r, bench::evaluate_draw_scene(*fw, ad ? &*ad : nullptr, a.adapter, plan, a.data, o));
        } else {  // intelligibility / log-mel distance (the speech decoder)
            decltype(fw) rec_owned;
            const model::Model * rec_fw = fw.get();
            if (!a.recogniser.empty()) {
                M4_ASSIGN_OR_RETURN(rec_owned, model::Model::load(a.recogniser));
                rec_fw = rec_owned.get();
            }
            std::vector<adapter::Adapter> rec_ads;
            bench::TtsRecognisers rec;
            rec.fw = rec_fw;
            for (size_t at = 0; at <= a.recognisers.size();) {
                size_t comma = a.recognisers.find(',', at);
                if (comma == std::string::npos) comma = a.recognisers.size();
                if (comma > at) rec.paths.push_back(a.recognisers.substr(at, comma - at));
                at = comma + 1;
            }
            rec_ads.reserve(rec.paths.size());
            for (const auto & p : rec.paths) {
                M4_ASSIGN_OR_RETURN(auto ra, adapter::Adapter::load(p, *rec_fw));
                rec_ads.push_back(std::move(ra));
            }
            for (const auto & ra : rec_ads) rec.adapters.push_back(&ra);
            M4_ASSIGN_OR_RETURN(r, bench::evaluate_tts(*fw, ad ? &*ad : nullptr, a.adapter, plan, a.data, o, rec));
        }
    } else if (a.zero_shot) {
        M4_ASSIGN_OR_RETURN(r, bench::evaluate_zero_shot(*fw, plan, a.data, o));
    } else {
        M4_ASSIGN_OR_RETURN(const std::string parent, verified_parent(a.parent, *fw));
        M4_ASSIGN_OR_RETURN(adapter::Adapter ad,
                            adapter::Adapter::load(a.adapter, *fw, adapter::Binding::Sibling, parent));
        M4_ASSIGN_OR_RETURN(r, bench::evaluate_adapter(*fw, ad, a.adapter, plan, a.data, o));
    }
    if (a.json) {
        nlohmann::json j = r.to_json();
        j["mode"]        = a.zero_shot ? "zero-shot" : "adapter";
        j["firmware"]    = a.firmware;
        j["fingerprint"] = fw->fingerprint();
        fmt::print("{}\n", j.dump());
    } else {
        print_report(r, a.zero_shot);
    }
    return Status::ok();
}

}  // namespace

void add_eval_command(CLI::App & app, int * rc) {
    auto a     = std::make_shared<EvalArgs>();
    auto * cmd = app.add_subcommand("eval", "score firmware + adapter (or zero-shot) on a benchmark task's split");
    add_firmware_option(cmd, &a->firmware);
    cmd->add_option("--adapter", a->adapter, "the task's adapter .m4a");
    cmd->add_flag("--zero-shot", a->zero_shot, "no adapter: label prompts in the shared embedding space");
    cmd->add_option("--task", a->task, "benchmark task (m4fw data list)")->required();
    cmd->add_option("--data", a->data, "data directory (m4fw data build)");
    cmd->add_option("--split", a->split, "split to score (test, test_real, train …)");
    cmd->add_flag("--validation", a->validation,
                  "score the validation share carved out of the train split (for choosing settings; not test)");
    cmd->add_option("--limit", a->limit, "score a fixed subset of N examples, chosen by content hash (0: all)");
    cmd->add_option("--batch", a->batch, "requests per model call");
    cmd->add_flag("--json", a->json, "print one JSON object");
    cmd->add_option("--prompts", a->prompts, "zero-shot: label prompt templates with {label}, separated by |");
    cmd->add_option("--parent", a->parent,
                    "the firmware this one was quantized from: verified, then its adapters bind (docs/formats.md)");
    cmd->add_option("--public-key", a->public_key,
                    "require the firmware to be signed by this key (a signed quantized sibling then takes its "
                    "parent's adapters)");
    cmd->add_option("--recogniser", a->recogniser, "aud.tts: the firmware of the recogniser adapters (default: the firmware evaluated)");
    cmd->add_option("--recognisers", a->recognisers,
                    "aud.tts: audio classify adapters (comma-separated) that score intelligibility");
    cmd->add_flag("--plan", a->plan, "print the task's plan (approach, defaults) as JSON and exit");
    cmd->callback([a, rc] { *rc = report(run_eval(*a)); });
}

}  // namespace m4::cli
