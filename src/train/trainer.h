// The training loop: batches from DataSources, forward/backward, gradient accumulation, clipping,
// AdamW on the schedule, evaluation hooks, a progress display, checkpoints, resume.
//
//     auto src = make_synthetic("imu-activity", fw->config(), 1, 256);
//     auto tm  = TrainModel::create(*fw, {(*src)->task()}, model_options);
//     TrainerOptions o;  o.steps = 300;  o.checkpoint = "run.ckpt";  o.checkpoint_every = 50;
//     Trainer t(**tm, {src->get()}, o);
//     t.on_eval([](int64_t step, const std::vector<EvalResult> & r) { … });
//     auto result = t.run();      // resumes from o.checkpoint when o.resume and the file exists
//
// One update = `accum` micro-batches of `batch_size` samples from every source (their losses are
// summed, optionally weighted per source: multi-task pretraining), each scaled by 1 / accum.
// Deterministic for a seed: the only randomness is the data RNG, which the checkpoint saves with
// the update count, so a run killed at any point and resumed from its last checkpoint produces the
// same loss curve as one that was never interrupted.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "train/data.h"
#include "train/optim.h"

namespace m4::train {

enum class Progress { Auto = 0, Bar, Lines, Off };  // Auto: a live bar on a terminal, lines otherwise

struct TrainerOptions {
    int64_t steps      = 100;  // optimizer updates in the whole run
    int64_t batch_size = 16;   // samples per micro-batch per task
    int64_t accum      = 1;    // micro-batches per update
    Schedule schedule;         // lr: peak, warm-up, total (set from steps when 0), min ratio
    AdamW adamw;
    float clip         = 1.0f;  // global gradient norm bound (≤ 0: off)
    uint64_t seed      = 1;     // the data RNG
    int64_t eval_every = 0;     // 0: evaluate at the end only
    int64_t eval_batch = 64;
    std::string checkpoint;        // path; empty: no checkpoints
    int64_t checkpoint_every = 0;  // updates between checkpoints (0: at the end only)
    bool resume              = false;
    int64_t stop_after       = -1;  // stop (without the final evaluation) after this many updates of this process
    Progress progress        = Progress::Auto;
    int64_t log_every        = 10;  // Lines: one line per this many updates
    std::FILE * out          = stderr;
    nlohmann::json run_extra = nlohmann::json::object();  // more keys for the run description
    // Per source, in the order of the sources (empty: every loss weight 1, every micro-batch
    // batch_size): the weight of its loss in the summed objective and its micro-batch size (≤ 0:
    // batch_size). Multi-task pretraining mixes objectives this way.
    std::vector<float> source_weights;
    std::vector<int64_t> source_batch;
};

struct EvalResult {
    std::string task;
    double loss     = 0;
    double accuracy = -1;  // −1: the task has no accuracy (regression)
    int64_t samples = 0;
    nlohmann::json to_json() const;
};

struct TrainResult {
    int64_t start_step = 0, end_step = 0;
    std::vector<float> losses;  // the whole curve (including steps done before a resume)
    std::vector<EvalResult> eval;
    double seconds  = 0;              // this process's training time (without evaluation)
    int64_t samples = 0, tokens = 0;  // trained on by this process
};

using EvalHook = std::function<void(int64_t step, const std::vector<EvalResult> &)>;

class Trainer {
  public:
    Trainer(TrainModel & model, std::vector<DataSource *> sources, TrainerOptions options);
    void on_eval(EvalHook hook) { hooks_.push_back(std::move(hook)); }
    Result<TrainResult> run();
    // Loss and accuracy of every source's evaluation set.
    Result<std::vector<EvalResult>> evaluate();
    // The run description a checkpoint must match to be resumed (mode, base fingerprint, tasks,
    // model options, batch, schedule, seed).
    nlohmann::json run_description() const;

  private:
    Status step(TrainResult * r);
    void show_progress(int64_t step, double loss, double lr, const TrainResult & r, bool final);

    TrainModel & model_;
    std::vector<DataSource *> sources_;
    TrainerOptions o_;
    std::vector<EvalHook> hooks_;
    Rng rng_;
    TrainState state_;
    bool bar_ = false;
};

}  // namespace m4::train
