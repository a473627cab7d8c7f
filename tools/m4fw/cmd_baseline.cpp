// m4fw baseline train — the task-specific baseline of a benchmark task (src/bench/baseline.h):
//
//   m4fw baseline train --task img.fashion_mnist [--data data] [--firmware F]
//        [--grid s:1e-3,m:3e-3] [--steps N | --steps-mult X] [--batch N] [--val-limit N] [--test-limit N]
//        [--model-dir baselines] [--out-dir results/baselines] [--work-dir build-baselines] [--quiet]
//
// Trains every grid variant from scratch on the train split (validation share held out), keeps
// the best on validation as baselines/<task>.m4fw + .m4a, scores it once on the test split and
// writes results/baselines/<task>.json. Variants already trained with the same settings (in
// --work-dir) are reused, so a killed run resumes.
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/mapped_file.h"
#include "bench/baseline.h"
#include "bench/classic.h"
#include "bench/serving.h"
#include "commands.h"
#include "model/model.h"

namespace m4::cli {

// cmd_bench_eaibench_service.cpp: the m4 side measured through m4fwd.
Result<nlohmann::json> measure_service(const bench::ServingOptions & o, bool memory, bool latency);

namespace {

struct BaselineArgs {
    std::string task, grid, sizes;
    bench::BaselineOptions o;
    int64_t steps = 0;
};

// "s:1e-3,m:3e-3" → variants (steps from --steps, else the multiplier).
Result<std::vector<bench::BaselineVariant>> parse_grid(const std::string & s, int64_t steps) {
    std::vector<bench::BaselineVariant> g;
    size_t at = 0;
    while (at < s.size()) {
        size_t comma = s.find(',', at);
        if (comma == std::string::npos) comma = s.size();
        const std::string item = s.substr(at, comma - at);
        const size_t colon     = item.find(':');
        if (colon == std::string::npos || colon == 0)
            return invalid_argument("--grid: '" + item + "' is not SIZE:LR (e.g. s:1e-3)");
        try {
            g.push_back({item.substr(0, colon), std::stof(item.substr(colon + 1)), steps});
        } catch (const std::exception &) {
            return invalid_argument("--grid: '" + item + "': the learning rate is not a number");
        }
        at = comma + 1;
    }
    return g;
}

// "NAME:ENC_WIDTH:ENC_LAYERS:DEC_WIDTH:DEC_LAYERS,…" (ffn = 4 × encoder width, 2.75 × decoder width).
Result<std::vector<bench::BaselineSize>> parse_sizes(const std::string & s) {
    std::vector<bench::BaselineSize> out;
    size_t at = 0;
    while (at < s.size()) {
        size_t comma = s.find(',', at);
        if (comma == std::string::npos) comma = s.size();
        const std::string item = s.substr(at, comma - at);
        std::vector<std::string> f;
        for (size_t p = 0; p <= item.size();) {
            size_t c = item.find(':', p);
            if (c == std::string::npos) c = item.size();
            f.push_back(item.substr(p, c - p));
            p = c + 1;
        }
        if (f.size() != 5) return invalid_argument("--sizes: '" + item + "' is not NAME:EW:EL:DW:DL");
        try {
            bench::BaselineSize z{f[0], std::stoll(f[1]), std::stoll(f[2]), 0, std::stoll(f[3]), std::stoll(f[4]), 0};
            z.enc_ffn = 4 * z.enc_width;
            z.dec_ffn = (z.dec_width * 11 / 4 + 7) / 8 * 8;
            out.push_back(z);
        } catch (const std::exception &) {
            return invalid_argument("--sizes: '" + item + "': widths and layers must be integers");
        }
        at = comma + 1;
    }
    return out;
}

Status run_baseline(BaselineArgs a, const std::string & argv_line) {
    if (!a.sizes.empty()) {
        M4_ASSIGN_OR_RETURN(a.o.sizes, parse_sizes(a.sizes));
    }
    if (!a.grid.empty()) {
        M4_ASSIGN_OR_RETURN(a.o.grid, parse_grid(a.grid, a.steps));
    }
    if (a.grid.empty() && a.steps > 0)
        for (const auto & s : a.o.sizes.empty() ? bench::default_baseline_sizes() : a.o.sizes)
            for (float lr : {1e-3f, 3e-3f}) a.o.grid.push_back({s.name, lr, a.steps});
    a.o.command = argv_line;
    M4_ASSIGN_OR_RETURN(nlohmann::json r, bench::train_baseline(a.task, a.o));
    fmt::print(
        "{} task-specific ({} {}, {} parameters, {} + {} bytes): test {} {:.4f} (chance {:.4f}) on {} "
        "examples; {} variants tuned in {:.1f} s, wall {:.1f} s\n",
        a.task, r["path"].get<std::string>(), r["model"]["size"].get<std::string>(),
        r["model"]["parameters"].get<int64_t>(), r["model"]["firmware_bytes"].get<int64_t>(),
        r["model"]["adapter_bytes"].get<int64_t>(), r["metric"].get<std::string>(), r["score"].get<double>(),
        r["chance"].get<double>(), r["test"]["examples"].get<int64_t>(), r["tuning"]["variant_count"].get<int64_t>(),
        r["tuning"]["seconds"].get<double>(), r["wall_seconds"].get<double>());
    fmt::print("wrote {}/{}.json\n", a.o.out_dir, a.task);
    return Status::ok();
}

struct ServingArgs {
    bench::ServingOptions o;
    std::string tasks, ks, out = "results/resources.json";
    std::vector<std::string> models;
    bool no_memory = false, no_latency = false, service = false;
};

Status run_serving(ServingArgs a) {
    auto split = [](const std::string & s) {
        std::vector<std::string> v;
        for (size_t at = 0; at <= s.size();) {
            size_t c = s.find(',', at);
            if (c == std::string::npos) c = s.size();
            if (c > at) v.push_back(s.substr(at, c - at));
            at = c + 1;
        }
        return v;
    };
    a.o.tasks = split(a.tasks);
    if (!a.ks.empty()) {
        a.o.ks.clear();
        for (const auto & k : split(a.ks)) {
            try {
                a.o.ks.push_back(std::stoll(k));
            } catch (const std::exception &) {
                return invalid_argument("--ks: '" + k + "' is not a number");
            }
        }
    }
    a.o.exe            = std::filesystem::read_symlink("/proc/self/exe").string();
    nlohmann::json out = {{"firmware", a.o.firmware},
                          {"threads", std::getenv("M4_THREADS") ? std::getenv("M4_THREADS") : ""}};
    if (!a.no_memory) {
        M4_ASSIGN_OR_RETURN(nlohmann::json m, bench::measure_memory(a.o));
        out.update(m);
    }
    if (!a.no_latency) {
        M4_ASSIGN_OR_RETURN(nlohmann::json l, bench::measure_latency(a.o));
        out.update(l);
    }
    if (a.service) {
        M4_ASSIGN_OR_RETURN(nlohmann::json s, measure_service(a.o, !a.no_memory, !a.no_latency));
        out.update(s);
    }
    const std::string text = out.dump(1) + "\n";
    M4_RETURN_IF_ERROR(write_file_atomic(a.out, text.data(), text.size()));
    fmt::print("wrote {}\n", a.out);
    return Status::ok();
}

// The child of `m4fw bench eaibench`: load, answer, report ready, hold until stdin closes.
Status run_serving_child(const std::vector<std::string> & specs, const std::string & data) {
    std::vector<bench::ServedModel> models;
    for (const auto & s : specs) {
        const size_t a = s.find('|'), b = s.rfind('|');
        if (a == std::string::npos || a == b)
            return invalid_argument("--model: '" + s + "' is not FIRMWARE|ADAPTER|TASK");
        models.push_back({s.substr(0, a), s.substr(a + 1, b - a - 1), s.substr(b + 1)});
    }
    return bench::serve_models(models, data, [](const nlohmann::json & r) {
        fmt::print("ready {}\n", r.dump());
        std::fflush(stdout);
        char buf[64];
        while (read(0, buf, sizeof buf) > 0) {
        }
    });
}

}  // namespace

void add_baseline_commands(CLI::App & app, int * rc) {
    auto * grp = app.add_subcommand("baseline", "task-specific baselines (eAIBench's comparison)");
    grp->require_subcommand(1);
    auto a = std::make_shared<BaselineArgs>();
    auto * cmd =
        grp->add_subcommand("train", "train a task-specific model from scratch and score it on the test split");
    add_firmware_option(cmd, &a->o.firmware, "the m4 firmware (architecture family, tokenizer, fingerprint)");
    cmd->add_option("--task", a->task, "benchmark task (m4fw data list)")->required();
    cmd->add_option("--data", a->o.data_dir, "data directory (m4fw data build)");
    cmd->add_option("--grid", a->grid, "variants SIZE:LR,… (default: every size × 1e-3, 3e-3)");
    cmd->add_option("--sizes", a->sizes, "sizes NAME:ENC_WIDTH:ENC_LAYERS:DEC_WIDTH:DEC_LAYERS,… (default s, m)");
    cmd->add_option("--steps", a->steps, "updates per variant (default: --steps-mult × the adapter plan's)");
    cmd->add_option("--steps-mult", a->o.steps_mult, "updates per variant as a multiple of the adapter plan's");
    cmd->add_option("--batch", a->o.batch, "samples per update (default: the adapter plan's)");
    cmd->add_option("--val-share", a->o.val_share, "share of the train split held out for validation");
    cmd->add_option("--val-limit", a->o.val_limit, "validation examples scored per variant");
    cmd->add_option("--test-limit", a->o.test_limit, "test examples scored (default: the plan's, as for m4)");
    cmd->add_option("--model-dir", a->o.model_dir, "where <task>.m4fw and <task>.m4a go");
    cmd->add_option("--out-dir", a->o.out_dir, "where <task>.json goes");
    cmd->add_option("--work-dir", a->o.work_dir, "per-variant files (reused on a rerun)");
    cmd->add_option("--seed", a->o.seed, "initialisation and data seed");
    cmd->add_flag("--quiet", a->o.quiet, "no training progress");
    cmd->callback([a, rc] {
        std::string line = "m4fw baseline train --task " + a->task + " --data " + a->o.data_dir;
        if (!a->grid.empty()) line += " --grid " + a->grid;
        if (!a->sizes.empty()) line += " --sizes " + a->sizes;
        if (a->steps > 0) line += fmt::format(" --steps {}", a->steps);
        *rc = report(run_baseline(*a, line));
    });

    struct ClassicArgs {
        std::string task, data = "data", firmware, out_dir = "results/baselines";
        bench::ClassicOptions o;
    };
    auto ca     = std::make_shared<ClassicArgs>();
    auto * ccls = grp->add_subcommand(
        "classic", "logistic regression on raw features (pixels / log-mel / IMU) for encoder-path classification");
    add_firmware_option(ccls, &ca->firmware, "the m4 firmware (its front-end settings)");
    ccls->add_option("--task", ca->task, "benchmark task")->required();
    ccls->add_option("--data", ca->data, "data directory");
    ccls->add_option("--out-dir", ca->out_dir, "where <task>.classic.json goes");
    ccls->add_option("--epochs", ca->o.epochs, "passes over the training share");
    ccls->add_option("--lrs", ca->o.lrs, "learning rates compared on validation")->delimiter(',');
    ccls->callback([ca, rc] {
        *rc = report([&]() -> Status {
            M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(ca->firmware));
            ca->o.out = ca->out_dir + "/" + ca->task + ".classic.json";
            std::error_code ec;
            std::filesystem::create_directories(ca->out_dir, ec);
            M4_ASSIGN_OR_RETURN(nlohmann::json r, bench::train_classic(ca->task, ca->data, fw->config(), ca->o));
            fmt::print(
                "{} logistic regression ({}): test accuracy {:.4f} (chance {:.4f}) on {} examples, lr {} "
                "chosen on validation; wall {:.1f} s\nwrote {}\n",
                ca->task, r["features"].get<std::string>(), r["score"].get<double>(), r["chance"].get<double>(),
                r["test_examples"].get<int64_t>(), r["lr"].get<float>(), r["wall_seconds"].get<double>(), ca->o.out);
            return Status::ok();
        }());
    });

    auto sv    = std::make_shared<ServingArgs>();
    auto * bcm = bench_group(app).add_subcommand(
        "eaibench", "memory serving k tasks (m4 vs task-specific, /proc PSS/RSS) and per-request latency");
    add_firmware_option(bcm, &sv->o.firmware, "the m4 firmware");
    bcm->add_option("--tasks", sv->tasks, "tasks with an adapter and a task-specific model, comma-separated")
        ->required();
    bcm->add_option("--data", sv->o.data_dir, "data directory (test example 0 of each task is the request)");
    bcm->add_option("--adapters", sv->o.adapter_dir, "directory of the m4 adapters <task>.m4a");
    bcm->add_option("--models", sv->o.model_dir, "directory of the task-specific models <task>.m4fw/.m4a");
    bcm->add_option("--work-dir", sv->o.work_dir, "file copies for k beyond the distinct tasks");
    bcm->add_option("--ks", sv->ks, "k values, comma-separated (default 1,2,4,8,16,32)");
    bcm->add_option("--repeats", sv->o.repeats, "latency: single-request calls per task and side");
    bcm->add_option("--out", sv->out, "result JSON");
    bcm->add_flag("--no-memory", sv->no_memory, "skip the memory measurement");
    bcm->add_flag("--no-latency", sv->no_latency, "skip the latency measurement");
    bcm->add_flag("--service", sv->service,
                  "also measure the m4 side through m4fwd (k adapters registered, one request of each in flight)");
    bcm->callback([sv, rc] { *rc = report(run_serving(*sv)); });
    auto child    = std::make_shared<std::pair<std::vector<std::string>, std::string>>();
    child->second = "data";
    auto * ccm = bench_group(app).add_subcommand("eaibench-child", "internal: one serving process of bench eaibench");
    ccm->group("");
    ccm->add_option("--model", child->first, "FIRMWARE|ADAPTER|TASK")->required();
    ccm->add_option("--data", child->second, "data directory");
    ccm->callback([child, rc] { *rc = report(run_serving_child(child->first, child->second)); });
}

}  // namespace m4::cli
