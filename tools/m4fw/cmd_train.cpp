// m4fw train — the training engine on the built-in synthetic tasks and the benchmark tasks:
//
//   m4fw train tasks                                        list the synthetic tasks
//   m4fw train adapter --firmware F --task T --out A.m4a   LoRA + head on a frozen F (also: m4fw adapter train)
//   m4fw adapter train --task img.fashion_mnist [--data data] [--shots K]
//                                                           a benchmark task: every setting defaults from its
//                                                           plan (src/bench/task_plan.cpp), trained/<task>.m4a
//                                                           (never the committed adapters/ unless --out says so)
//   m4fw train full    --firmware F --task T[,T…] --out N.m4fw [--bf16]   every tensor learns (pretraining)
//   m4fw bench train   --firmware F                         f32 vs bf16 full training: tokens/s, samples/s, peak RSS
//
// Common: --steps --batch --accum --lr --warmup --min-lr-ratio --weight-decay --clip --seed --init-seed
// --eval-every --eval-size --checkpoint FILE --checkpoint-every N --resume --recompute
// --progress auto|bar|lines|off --log-every N --loss-log FILE. --firmware defaults to the default firmware.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "bench/draw_scene.h"
#include "bench/evaluate.h"
#include "bench/super_resolution.h"
#include "bench/tts.h"
#include "commands.h"
#include "data/task.h"
#include "train/export.h"
#include "train/synthetic.h"
#include "train/trainer.h"

extern char ** environ;

namespace m4::cli {
namespace {

struct TrainArgs {
    std::string firmware, task, out, name, checkpoint, loss_log, progress = "auto", targets = "attn", out_dtype = "f32";
    int64_t steps = 200, batch = 16, accum = 1, warmup = -1, eval_every = 0, eval_size = 256, checkpoint_every = 0;
    int64_t log_every = 10, rank = 8, head_hidden = 0;
    float lr = 3e-3f, min_lr_ratio = 0.1f, weight_decay = 0.01f, clip = 1.0f, alpha = 16.0f;
    uint64_t seed = 1, init_seed = 1;
    bool resume = false, recompute = false, bf16 = false, train_projector = false;
    // benchmark tasks
    std::string data = "data", path;
    int64_t shots = 0, val_limit = -1;
    double val_share    = 0.1;
    bool zero_shot_init = false;
    std::set<std::string> given;  // the options given on the command line (the rest default from the plan)
};

std::vector<std::string> split(const std::string & s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t c = s.find(',', start);
        if (c == std::string::npos) c = s.size();
        if (c > start) out.push_back(s.substr(start, c - start));
        start = c + 1;
    }
    return out;
}

Result<train::Progress> parse_progress(const std::string & s) {
    if (s == "auto") return train::Progress::Auto;
    if (s == "bar") return train::Progress::Bar;
    if (s == "lines") return train::Progress::Lines;
    if (s == "off") return train::Progress::Off;
    return invalid_argument("--progress: auto, bar, lines or off");
}

Result<DType> parse_dtype(const std::string & s) {
    if (s == "f32") return DType::F32;
    if (s == "bf16") return DType::BF16;
    if (s == "i8") return DType::I8;
    return invalid_argument("--out-dtype: f32, bf16 or i8");
}

train::TrainerOptions trainer_options(const TrainArgs & a) {
    train::TrainerOptions o;
    o.steps              = a.steps;
    o.batch_size         = a.batch;
    o.accum              = a.accum;
    o.schedule.peak_lr   = a.lr;
    o.schedule.warmup    = a.warmup >= 0 ? a.warmup : a.steps / 20;
    o.schedule.min_ratio = a.min_lr_ratio;
    o.adamw.weight_decay = a.weight_decay;
    o.clip               = a.clip;
    o.seed               = a.seed;
    o.eval_every         = a.eval_every;
    o.checkpoint         = a.checkpoint;
    o.checkpoint_every   = a.checkpoint_every;
    o.resume             = a.resume;
    o.log_every          = a.log_every;
    return o;
}

Status write_loss_log(const std::string & path, const std::vector<float> & losses) {
    std::string text;
    for (float l : losses) text += fmt::format("{:.9g}\n", l);
    return write_file_atomic(path, text.data(), text.size());
}

// ---- benchmark tasks ------------------------------------------------------------------------

bool is_synthetic(const std::string & name) {
    for (const auto & n : train::synthetic_task_names())
        if (n == name) return true;
    return false;
}

// The plan's settings, overridden by the options given on the command line.
void apply_flags(const TrainArgs & a, bench::TaskPlan * p) {
    auto given = [&](const char * flag) { return a.given.count(flag) > 0; };
    if (given("--rank")) p->train.rank = a.rank;
    if (given("--alpha")) p->train.alpha = a.alpha;
    if (given("--targets")) p->train.targets = a.targets;
    if (given("--train-projector")) p->train.train_projector = a.train_projector;
    if (given("--head-hidden")) p->train.head_hidden = a.head_hidden;
    if (given("--steps")) p->train.steps = a.steps;
    if (given("--batch")) p->train.batch = a.batch;
    if (given("--lr")) p->train.lr = a.lr;
    if (given("--weight-decay")) p->train.weight_decay = a.weight_decay;
    if (given("--eval-size")) p->train.eval_size = a.eval_size;
}

Status run_benchmark_adapter(const TrainArgs & a) {
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware));
    M4_ASSIGN_OR_RETURN(bench::TaskPlan plan, bench::plan_task(a.data, a.task, fw->config()));
    if (a.shots > 0) {
        if (plan.spec.objective != train::Objective::Classify)
            return invalid_argument("--shots: few-shot training needs a classification task ('" + a.task + "' is " +
                                    plan.facts.kind + ")");
        plan.train.steps       = plan.train.few_shot_steps;
        plan.train.batch       = std::min<int64_t>(plan.train.batch, 16);
        plan.train.head_hidden = 0;  // a few examples per class fit a linear head (and its zero-shot start)
        // Few-shot heads start at the zero-shot classifier (better on validation: results/tuning.tsv).
        plan.train.zero_shot_init = !plan.zero_shot_templates.empty() && plan.spec.path == model::Path::Encoder;
    }
    apply_flags(a, &plan);
    if (!a.path.empty()) {
        model::Path p;
        if (!model::parse_path(a.path, &p)) return invalid_argument("--path: encoder, backbone, full or generator");
        plan.spec.path = plan.recipe.path = p;
        if (p != model::Path::Encoder) plan.zero_shot_templates.clear();
    }
    bench::SourceOptions so;
    so.val_share   = a.val_share;
    so.eval_size   = plan.train.eval_size;
    so.per_class   = a.shots;
    so.subset_seed = a.seed;
    M4_ASSIGN_OR_RETURN(auto src, bench::make_task_source(plan, a.data, *fw, so));
    const auto & ds_src = dynamic_cast<const bench::DatasetSource *>(src.get());
    train::ModelOptions mo;
    mo.mode            = train::Mode::Adapter;
    mo.lora_rank       = plan.train.rank;
    mo.lora_alpha      = plan.train.alpha;
    mo.lora_targets    = plan.train.targets;
    mo.train_projector = plan.train.train_projector && plan.spec.path == model::Path::Full;
    mo.head_hidden     = plan.spec.has_head() ? plan.train.head_hidden : 0;
    mo.seed            = a.init_seed;
    if (a.given.count("--zero-shot-init")) plan.train.zero_shot_init = a.zero_shot_init;
    if (plan.train.zero_shot_init && mo.head_hidden > 0)
        return invalid_argument("--zero-shot-init starts a linear head; the plan's head has a hidden layer of " +
                                std::to_string(mo.head_hidden) + " (pass --head-hidden 0)");
    M4_ASSIGN_OR_RETURN(auto tm, train::TrainModel::create(*fw, {plan.spec}, mo));
    if (plan.train.zero_shot_init) {
        train::Batch probe;
        train::Rng rng(a.seed + 17);
        M4_RETURN_IF_ERROR(src->next_batch(rng, 64, &probe));
        M4_RETURN_IF_ERROR(bench::init_zero_shot_head(*tm, plan, *fw, probe));
    }
    TrainArgs t    = a;
    t.steps        = plan.train.steps;
    t.batch        = plan.train.batch;
    t.lr           = plan.train.lr;
    t.weight_decay = plan.train.weight_decay;
    if (!a.given.count("--warmup")) t.warmup = -1;
    train::TrainerOptions o = trainer_options(t);
    M4_ASSIGN_OR_RETURN(o.progress, parse_progress(a.progress));
    const std::string out = !a.out.empty() ? a.out
                            : a.shots > 0  ? fmt::format("trained/{}.{}shot.m4a", a.task, a.shots)
                                           : "trained/" + a.task + ".m4a";
    fmt::print(stderr,
               "training {} ({}): {}; rank {}, targets {}, head hidden {}, {} steps × batch {}, lr {}; {} parameters "
               "learn\n",
               a.task, a.shots > 0 ? fmt::format("{}-shot", a.shots) : "train split", plan.approach, plan.train.rank,
               plan.train.targets, mo.head_hidden, plan.train.steps, plan.train.batch, plan.train.lr,
               tm->params().numel());
    train::Trainer trainer(*tm, {src.get()}, o);
    trainer.on_eval([](int64_t step, const std::vector<train::EvalResult> & ev) {
        for (const auto & e : ev)
            fmt::print(stderr, "eval step {} {}: loss {:.4f}{}\n", step, e.task, e.loss,
                       e.accuracy >= 0 ? fmt::format(" accuracy {:.4f}", e.accuracy) : std::string());
    });
    M4_ASSIGN_OR_RETURN(train::TrainResult r, trainer.run());
    if (!a.loss_log.empty()) M4_RETURN_IF_ERROR(write_loss_log(a.loss_log, r.losses));
    // The manifest's metrics: the trainer's validation loss, then the task metric on the validation
    // share scored through the inference path (the exported file, loaded as an app would load it).
    nlohmann::json metrics = {{"trainer_validation", r.eval.empty() ? nlohmann::json::object() : r.eval[0].to_json()},
                              {"steps", r.end_step},
                              {"batch", plan.train.batch},
                              {"lr", plan.train.lr},
                              {"train_seconds", r.seconds},
                              {"train_examples", ds_src ? int64_t(ds_src->train_size()) : int64_t(-1)},
                              {"shots", a.shots},
                              {"validation_share", a.val_share},
                              {"data", a.data + "/" + a.task + " (train split)"}};
    const std::string name = a.name.empty() ? a.task : a.name;
    if (const auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) return io_error(parent.string() + ": cannot create the directory (" + ec.message() + ")");
    }
    M4_RETURN_IF_ERROR(bench::export_task_adapter(*tm, plan, out, name, metrics));
    M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(out, *fw));
    bench::EvalOptions eo;
    eo.split      = "train";
    eo.validation = true;
    eo.val_share  = a.val_share;
    // Validation examples scored through the inference path (generation is the slow one).
    eo.limit = a.val_limit >= 0                                         ? a.val_limit
               : a.shots > 0                                            ? 500
               : plan.spec.objective == train::Objective::LanguageModel ? 200
                                                                        : 1000;
    bench::EvalReport v;
    if (plan.facts.kind == "reconstruct") {  // decoder tasks hold a validation split of their own
        eo.split      = "val";
        eo.validation = false;
        eo.limit      = a.val_limit >= 0 ? a.val_limit : 200;
        M4_ASSIGN_OR_RETURN(v, bench::evaluate_super_resolution(*fw, &ad, out, plan, a.data, eo));
    } else if (plan.facts.kind == "draw") {  // img.draw_scene has a validation split of its own
        eo.split      = "val";
        eo.validation = false;
        eo.limit      = a.val_limit >= 0 ? a.val_limit : 500;
        M4_ASSIGN_OR_RETURN(v, bench::evaluate_draw_scene(*fw, &ad, out, plan, a.data, eo));
    } else if (plan.facts.kind == "mel_regress") {  // aud.tts: log-mel distance on its val split
        eo.split      = "val";
        eo.validation = false;
        eo.limit      = a.val_limit >= 0 ? a.val_limit : 200;
        M4_ASSIGN_OR_RETURN(v, bench::evaluate_tts(*fw, &ad, out, plan, a.data, eo, {}));
    } else {
        M4_ASSIGN_OR_RETURN(v, bench::evaluate_adapter(*fw, ad, out, plan, a.data, eo));
    }
    metrics["validation"] = v.to_json();
    metrics["validation"].erase("adapter");
    M4_RETURN_IF_ERROR(bench::export_task_adapter(*tm, plan, out, name, metrics));
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(out, ec);
    fmt::print("trained {} steps in {:.1f} s; validation {} {:.4f} (chance {:.4f}) on {} examples\n", r.end_step,
               r.seconds, v.metric, v.score, v.chance, v.examples);
    fmt::print("wrote {} ({} bytes)\n", out, ec ? 0 : bytes);
    return Status::ok();
}

Status run_train(const TrainArgs & a, train::Mode mode) {
    if (mode == train::Mode::Adapter && a.task.find(',') == std::string::npos && !is_synthetic(a.task)) {
        if (!data::find_task(a.task))
            return not_found("unknown task '" + a.task + "': neither a synthetic task (m4fw train tasks) nor a " +
                             "benchmark task (m4fw data list)");
        return run_benchmark_adapter(a);
    }
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware));
    std::vector<std::unique_ptr<train::DataSource>> owned;
    std::vector<train::DataSource *> sources;
    std::vector<train::TaskSpec> tasks;
    for (const auto & name : split(a.task)) {
        M4_ASSIGN_OR_RETURN(auto src, train::make_synthetic(name, fw->config(), a.seed, a.eval_size));
        tasks.push_back(src->task());
        sources.push_back(src.get());
        owned.push_back(std::move(src));
    }
    if (tasks.empty()) return invalid_argument("--task: name at least one task (m4fw train tasks lists them)");
    train::ModelOptions mo;
    mo.mode            = mode;
    mo.bf16            = a.bf16;
    mo.recompute       = a.recompute;
    mo.lora_rank       = a.rank;
    mo.lora_alpha      = a.alpha;
    mo.lora_targets    = a.targets;
    mo.train_projector = a.train_projector;
    mo.seed            = a.init_seed;
    M4_ASSIGN_OR_RETURN(auto tm, train::TrainModel::create(*fw, tasks, mo));
    train::TrainerOptions o = trainer_options(a);
    M4_ASSIGN_OR_RETURN(o.progress, parse_progress(a.progress));
    fmt::print(stderr, "training {} ({} mode{}): {} parameters learn, state {:.1f} MiB\n", a.task,
               train::mode_name(mode), a.bf16 ? ", bf16 matmuls" : "", tm->params().numel(),
               tm->state_bytes() / 1048576.0);
    train::Trainer trainer(*tm, sources, o);
    trainer.on_eval([](int64_t step, const std::vector<train::EvalResult> & ev) {
        for (const auto & e : ev)
            fmt::print(stderr, "eval step {} {}: loss {:.4f}{}\n", step, e.task, e.loss,
                       e.accuracy >= 0 ? fmt::format(" accuracy {:.4f}", e.accuracy) : std::string());
    });
    M4_ASSIGN_OR_RETURN(train::TrainResult r, trainer.run());
    if (!a.loss_log.empty()) M4_RETURN_IF_ERROR(write_loss_log(a.loss_log, r.losses));
    fmt::print("trained steps {}…{} in {:.2f} s: {:.1f} samples/s, {:.1f} tokens/s\n", r.start_step, r.end_step,
               r.seconds, r.seconds > 0 ? r.samples / r.seconds : 0.0, r.seconds > 0 ? r.tokens / r.seconds : 0.0);
    if (a.out.empty()) return Status::ok();
    if (mode == train::Mode::Adapter) {
        nlohmann::json metrics = r.eval.empty() ? nlohmann::json::object() : r.eval[0].to_json();
        metrics["split"]       = fmt::format("synthetic validation set ({} samples, seed {})", a.eval_size, a.seed);
        metrics["steps"]       = r.end_step;
        M4_RETURN_IF_ERROR(
            train::export_adapter(*tm, a.out, {.name = a.name.empty() ? a.task : a.name, .metrics = metrics}));
    } else {
        train::FirmwareExport fx;
        fx.name = a.name;
        M4_ASSIGN_OR_RETURN(fx.weight_dtype, parse_dtype(a.out_dtype));
        fx.provenance     = {{"recipe", fmt::format("m4fw train full --task {} --steps {} --batch {} --lr {} --seed {}",
                                                    a.task, a.steps, a.batch, a.lr, a.seed)},
                             {"seed", a.seed},
                             {"data", {{"synthetic", split(a.task)}}}};
        nlohmann::json ev = nlohmann::json::array();
        for (const auto & e : r.eval) ev.push_back(e.to_json());
        fx.provenance["eval"] = ev;
        M4_RETURN_IF_ERROR(train::export_firmware(*tm, a.out, fx));
    }
    fmt::print("wrote {}\n", a.out);
    return Status::ok();
}

void add_common(CLI::App * cmd, TrainArgs * a) {
    add_firmware_option(cmd, &a->firmware, "base firmware .m4fw");
    cmd->add_option("--task", a->task, "synthetic task(s), comma-separated (m4fw train tasks), or a benchmark task")
        ->required();
    cmd->add_option("--out", a->out, "output file (.m4a adapter / .m4fw firmware)");
    cmd->add_option("--name", a->name, "name in the output's header");
    cmd->add_option("--steps", a->steps, "optimizer updates");
    cmd->add_option("--batch", a->batch, "samples per micro-batch (per task)");
    cmd->add_option("--accum", a->accum, "micro-batches per update (gradient accumulation)");
    cmd->add_option("--lr", a->lr, "peak learning rate");
    cmd->add_option("--warmup", a->warmup, "warm-up updates (default: steps / 20)");
    cmd->add_option("--min-lr-ratio", a->min_lr_ratio, "final lr / peak lr of the cosine");
    cmd->add_option("--weight-decay", a->weight_decay, "AdamW decoupled weight decay");
    cmd->add_option("--clip", a->clip, "global gradient-norm bound (0: off)");
    cmd->add_option("--seed", a->seed, "data seed (batches and the validation set)");
    cmd->add_option("--init-seed", a->init_seed, "initialisation seed (LoRA A, heads)");
    cmd->add_option("--eval-every", a->eval_every, "updates between evaluations (0: at the end)");
    cmd->add_option("--eval-size", a->eval_size, "validation samples per task");
    cmd->add_option("--checkpoint", a->checkpoint, "checkpoint file (written atomically)");
    cmd->add_option("--checkpoint-every", a->checkpoint_every, "updates between checkpoints (0: at the end)");
    cmd->add_flag("--resume", a->resume, "continue from --checkpoint when it exists");
    cmd->add_flag("--recompute", a->recompute, "keep only layer inputs, recompute activations in the backward");
    cmd->add_option("--progress", a->progress, "auto | bar | lines | off");
    cmd->add_option("--log-every", a->log_every, "updates per progress line (lines mode)");
    cmd->add_option("--loss-log", a->loss_log, "write the loss of every update to this file");
}

void add_adapter_options(CLI::App * cmd, TrainArgs * a) {
    cmd->add_option("--rank", a->rank, "LoRA rank");
    cmd->add_option("--alpha", a->alpha, "LoRA alpha (scale = alpha / rank)");
    cmd->add_option("--targets", a->targets, "LoRA targets: all | attn | mlp | names with * | none");
    cmd->add_flag("--train-projector", a->train_projector, "full path: the projector learns too (as a LoRA pair)");
    cmd->add_option("--head-hidden", a->head_hidden,
                    "head tasks: width of a hidden GELU layer in the head (0: a linear head)");
    cmd->add_option("--data", a->data, "benchmark tasks: the data directory (m4fw data build)");
    cmd->add_option("--shots", a->shots, "benchmark classification: train on K examples per class (few-shot)");
    cmd->add_option("--path", a->path, "benchmark tasks: run on this path instead of the plan's");
    cmd->add_option("--val-share", a->val_share, "benchmark tasks: share of the train split held out for validation");
    cmd->add_option("--val-limit", a->val_limit, "benchmark tasks: validation examples scored after training");
    cmd->add_option("--zero-shot-init", a->zero_shot_init,
                    "benchmark encoder classification: start the head at the zero-shot classifier (true/false)");
}

// Records which options were given, so a benchmark plan's defaults apply to the rest.
void note_given(CLI::App * cmd, TrainArgs * a) {
    for (const CLI::Option * opt : cmd->get_options())
        if (opt->count() > 0 && !opt->get_lnames().empty()) a->given.insert("--" + opt->get_lnames()[0]);
}

// ---- m4fw bench train ----------------------------------------------------------------------------

struct BenchArgs {
    std::string firmware, task = "text-successor,image-caption,image-text", child, modes = "f32,bf16";
    int64_t steps = 10, warmup = 2, batch = 8;
};

// One measurement in this process (the parent runs each mode in its own child, so peak RSS is per mode).
Status bench_child(const BenchArgs & a) {
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware));
    std::vector<std::unique_ptr<train::DataSource>> owned;
    std::vector<train::DataSource *> sources;
    std::vector<train::TaskSpec> tasks;
    for (const auto & name : split(a.task)) {
        M4_ASSIGN_OR_RETURN(auto src, train::make_synthetic(name, fw->config(), 1, 0));
        tasks.push_back(src->task());
        sources.push_back(src.get());
        owned.push_back(std::move(src));
    }
    train::ModelOptions mo;
    mo.mode = train::Mode::Full;
    mo.bf16 = a.child == "bf16";
    M4_ASSIGN_OR_RETURN(auto tm, train::TrainModel::create(*fw, tasks, mo));
    train::TrainerOptions o;
    o.batch_size = a.batch;
    o.progress   = train::Progress::Off;
    o.steps      = a.warmup;
    if (a.warmup > 0) {
        train::Trainer warm(*tm, sources, o);
        M4_RETURN_IF_ERROR(warm.run().status());
    }
    o.steps = a.steps;
    train::Trainer timed(*tm, sources, o);
    M4_ASSIGN_OR_RETURN(train::TrainResult r, timed.run());
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    fmt::print("{}\n", nlohmann::json{{"mode", a.child},
                                      {"seconds", r.seconds},
                                      {"samples", r.samples},
                                      {"tokens", r.tokens},
                                      {"peak_rss_kib", ru.ru_maxrss},
                                      {"parameters", tm->params().numel()},
                                      {"final_loss", r.losses.back()}}
                           .dump());
    return Status::ok();
}

Result<nlohmann::json> spawn_child(const BenchArgs & a, const std::string & mode) {
    int fds[2];
    if (pipe(fds) != 0) return Status(StatusCode::IoError, "pipe failed");
    std::vector<std::string> args = {"/proc/self/exe",
                                     "bench",
                                     "train",
                                     "--firmware",
                                     a.firmware,
                                     "--task",
                                     a.task,
                                     "--steps",
                                     std::to_string(a.steps),
                                     "--warmup-steps",
                                     std::to_string(a.warmup),
                                     "--batch",
                                     std::to_string(a.batch),
                                     "--child",
                                     mode};
    std::vector<char *> argv;
    for (auto & s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid     = 0;
    const int err = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (err != 0) {
        close(fds[0]);
        return Status(StatusCode::IoError, "cannot start the benchmark child");
    }
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return Status(StatusCode::Internal, "bench train (" + mode + ") failed");
    try {
        return nlohmann::json::parse(out.substr(out.rfind('{')));
    } catch (const std::exception &) {
        return Status(StatusCode::Internal, "bench train (" + mode + "): unreadable result");
    }
}

Status run_bench(const BenchArgs & a) {
    if (!a.child.empty()) return bench_child(a);
    std::vector<nlohmann::json> rows;
    fmt::print("m4fw bench train: full training of {} on {}, batch {} per task, {} timed updates (after {} warm-up)\n",
               a.task, a.firmware, a.batch, a.steps, a.warmup);
    fmt::print("{:<6} {:>12} {:>12} {:>12} {:>14} {:>12}\n", "matmul", "ms/update", "samples/s", "tokens/s",
               "peak RSS MiB", "final loss");
    for (const auto & mode : split(a.modes)) {
        if (mode != "f32" && mode != "bf16") return invalid_argument("--modes: f32 and/or bf16");
        M4_ASSIGN_OR_RETURN(nlohmann::json j, spawn_child(a, mode));
        const double s = j["seconds"].get<double>();
        fmt::print("{:<6} {:>12.1f} {:>12.1f} {:>12.1f} {:>14.1f} {:>12.4f}\n", mode, 1000.0 * s / a.steps,
                   j["samples"].get<double>() / s, j["tokens"].get<double>() / s,
                   j["peak_rss_kib"].get<double>() / 1024.0, j["final_loss"].get<double>());
        rows.push_back(j);
    }
    if (rows.size() == 2)
        fmt::print("bf16 / f32 training throughput: {:.2f}x ({} parameters; {})\n",
                   rows[0]["seconds"].get<double>() / rows[1]["seconds"].get<double>(),
                   rows[0]["parameters"].get<int64_t>(),
                   "bf16 = AVX-512-BF16 or AMX kernels, whichever the dispatcher selected");
    return Status::ok();
}

}  // namespace

void add_train_commands(CLI::App & app, int * rc) {
    auto * grp = app.add_subcommand("train", "train adapters (synthetic or benchmark tasks) or the firmware itself");
    grp->require_subcommand(1);
    auto * list = grp->add_subcommand("tasks", "list the built-in synthetic tasks");
    list->callback([] {
        for (const auto & line : train::synthetic_task_summaries()) fmt::print("{}\n", line);
    });
    auto ad = std::make_shared<TrainArgs>();
    auto * adapter_cmd =
        grp->add_subcommand("adapter", "train a LoRA adapter + head on a frozen firmware (f32, bf16 or int8)");
    add_common(adapter_cmd, ad.get());
    add_adapter_options(adapter_cmd, ad.get());
    adapter_cmd->callback([ad, rc, adapter_cmd] {
        note_given(adapter_cmd, ad.get());
        *rc = report(run_train(*ad, train::Mode::Adapter));
    });
    auto full = std::make_shared<TrainArgs>();
    full->lr  = 1e-3f;
    auto * full_cmd =
        grp->add_subcommand("full", "train every tensor of the firmware (pretraining) and export a new one");
    add_common(full_cmd, full.get());
    full_cmd->add_flag("--bf16", full->bf16, "bf16 matmuls (f32 master weights)");
    full_cmd->add_option("--out-dtype", full->out_dtype, "weights of the exported firmware: f32 | bf16 | i8");
    full_cmd->callback([full, rc] { *rc = report(run_train(*full, train::Mode::Full)); });
    // The same adapter training as `m4fw adapter train` (the name the adapter errors point to).
    for (CLI::App * s : app.get_subcommands([](CLI::App *) { return true; })) {
        if (s->get_name() != "adapter") continue;
        auto ad2  = std::make_shared<TrainArgs>();
        auto * c2 = s->add_subcommand("train", "train a LoRA adapter + head (same as m4fw train adapter)");
        add_common(c2, ad2.get());
        add_adapter_options(c2, ad2.get());
        c2->callback([ad2, rc, c2] {
            note_given(c2, ad2.get());
            *rc = report(run_train(*ad2, train::Mode::Adapter));
        });
    }
    auto b      = std::make_shared<BenchArgs>();
    auto * bcmd = bench_group(app).add_subcommand("train", "training throughput and peak memory, f32 vs bf16 matmuls");
    bcmd->add_option("--firmware", b->firmware, "firmware .m4fw (the architecture to train)")->required();
    bcmd->add_option("--task", b->task, "synthetic task(s) (default: the pretraining mix)");
    bcmd->add_option("--steps", b->steps, "timed updates per mode");
    bcmd->add_option("--warmup-steps", b->warmup, "untimed updates first");
    bcmd->add_option("--batch", b->batch, "samples per micro-batch per task");
    bcmd->add_option("--modes", b->modes, "f32,bf16");
    bcmd->add_option("--child", b->child, "internal: run one mode and print JSON")->group("");
    bcmd->callback([b, rc] { *rc = report(run_bench(*b)); });
}

}  // namespace m4::cli
