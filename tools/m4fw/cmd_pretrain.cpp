// m4fw pretrain --recipe R --out F [--data D] [--work DIR] [--checkpoint C] [--resume | --fresh]
//               [--steps N] [--set JSON] [--progress auto|bar|lines|off]
// Runs a pretraining recipe (src/bench/pretrain.h): tokenizer, initial firmware, full-mode
// training on the pretraining corpus, export with the recipe and data digests in the header.
// Rerunning the same command after an interruption continues from the checkpoint.
#include <fmt/format.h>

#include "bench/pretrain.h"
#include "commands.h"

namespace m4::cli {
namespace {

struct PretrainArgs {
    std::string recipe, out, data, work, checkpoint, set, progress = "auto";
    bool resume = false, fresh = false;
    int64_t steps = 0, stop_after = -1;
    std::vector<std::string> argv;
};

Status run(const PretrainArgs & a) {
    bench::PretrainOptions o;
    o.recipe     = a.recipe;
    o.out        = a.out;
    o.data_dir   = a.data;
    o.work_dir   = a.work;
    o.checkpoint = a.checkpoint;
    o.fresh      = a.fresh;
    o.steps      = a.steps;
    o.stop_after = a.stop_after;
    if (a.resume && a.fresh) return invalid_argument("--resume and --fresh exclude each other");
    if (!a.set.empty()) {
        try {
            o.overrides = nlohmann::json::parse(a.set);
        } catch (const std::exception & e) {
            return invalid_argument(std::string("--set: not valid JSON (") + e.what() + ")");
        }
        if (!o.overrides.is_object()) return invalid_argument("--set: a JSON object (merge patch onto the recipe)");
    }
    if (a.progress == "auto")
        o.progress = train::Progress::Auto;
    else if (a.progress == "bar")
        o.progress = train::Progress::Bar;
    else if (a.progress == "lines")
        o.progress = train::Progress::Lines;
    else if (a.progress == "off")
        o.progress = train::Progress::Off;
    else
        return invalid_argument("--progress: auto, bar, lines or off");
    for (const auto & s : a.argv) o.command += (o.command.empty() ? "" : " ") + s;
    M4_ASSIGN_OR_RETURN(bench::PretrainResult r, bench::run_pretrain(o));
    if (!r.finished) {
        fmt::print("stopped at step {} (checkpoint written); rerun the command to continue\n", r.steps);
        return Status::ok();
    }
    fmt::print(
        "wrote {}: {} parameters, {:.2f} MiB, {} steps (from step {}), final training loss {:.4f}, "
        "{:.1f} s wall-clock, fingerprint {}\n",
        a.out, r.parameters, r.file_bytes / 1048576.0, r.steps, r.start_step, r.final_loss, r.wall_seconds,
        r.fingerprint);
    return Status::ok();
}

}  // namespace

void add_pretrain_command(CLI::App & app, int * rc) {
    auto a = std::make_shared<PretrainArgs>();
    auto * cmd =
        app.add_subcommand("pretrain", "pretrain the firmware from a recipe (tokenizer, init, training, export)");
    cmd->add_option("--recipe", a->recipe, "recipe JSON (recipes/m4-tiny.json)")->required();
    cmd->add_option("--out", a->out, "firmware to write (.m4fw)")->required();
    cmd->add_option("--data", a->data, "benchmark data directory (default: the recipe's data.dir)");
    cmd->add_option("--work", a->work,
                    "cache of tokenizer, initial firmware and checkpoint (default: build-pretrain/<OUT's stem>)");
    cmd->add_option("--checkpoint", a->checkpoint, "checkpoint file (default: WORK/pretrain.ckpt)");
    cmd->add_flag("--resume", a->resume, "continue from the checkpoint when it exists (the default)");
    cmd->add_flag("--fresh", a->fresh, "discard an existing checkpoint and start over");
    cmd->add_option("--steps", a->steps, "override training.steps (tests)");
    cmd->add_option("--set", a->set, "JSON merge patch onto the recipe, e.g. a tiny architecture for tests");
    cmd->add_option("--progress", a->progress, "auto | bar | lines | off");
    cmd->add_option("--stop-after", a->stop_after, "internal: stop after N updates of this process")->group("");
    cmd->callback([a, rc] {
        a->argv = {"m4fw", "pretrain", "--recipe", a->recipe, "--out", a->out};
        if (!a->data.empty()) a->argv.insert(a->argv.end(), {"--data", a->data});
        if (a->steps > 0) a->argv.insert(a->argv.end(), {"--steps", std::to_string(a->steps)});
        if (!a->set.empty()) a->argv.insert(a->argv.end(), {"--set", "'" + a->set + "'"});
        *rc = report(run(*a));
    });
}

}  // namespace m4::cli
