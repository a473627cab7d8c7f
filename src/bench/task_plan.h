// How m4 solves each benchmark task with one adapter on the frozen firmware: the training task
// (objective, path, head), how stored examples become samples (prompt template), default
// hyper-parameters, and what goes into the adapter's manifest (prompt, decoding settings).
//
//     auto plan = plan_task("data", "img.fashion_mnist", fw->config());   // reads data/<task>/manifest.json
//     plan->spec;        // train::TaskSpec: Classify, encoder path, image, 10 classes
//     plan->recipe;      // SampleRecipe: prompt "{input}"
//     plan->train;       // rank 8, targets ("attn", "all" on the encoder path), steps, batch, lr …
//
// A plan is derived from the task's manifest (kind, path_hint, metric, labels) by general rules,
// then adjusted by one table of per-task overrides (task_plan.cpp). The rules:
//   classify  + encoder   Classify head on the encoder's pooled embedding, LoRA on every encoder linear
//   classify  + backbone  Classify head on the backbone's pooled hidden state, LoRA on every backbone linear
//   regress               Regress head; targets standardised by the train split's mean / deviation
//                         (folded back into the head on export, so the adapter outputs task units)
//   retrieve              Embed head on the encoder, trained (InfoNCE) to land on the firmware's own
//                         text embedding of the paired caption; ranked against those text embeddings
//   generate  + backbone  LanguageModel (LoRA on the backbone, the firmware's LM head), greedy decoding
//   generate  + full      LanguageModel on the full path, the projector learns too
// Hyper-parameters were chosen on validation data carved out of the train split (docs/results.md).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/samples.h"
#include "data/task.h"
#include "model/model.h"
#include "train/train_model.h"

namespace m4::bench {

// Adapter training settings (m4fw adapter train defaults them from here; flags override).
struct TrainSettings {
    int64_t rank           = 8;
    float alpha            = 16.0f;
    std::string targets    = "attn";  // adapter::expand_targets pattern on the task's path; "none": head only
    bool train_projector   = false;   // full path: the projector learns too
    int64_t head_hidden    = 0;       // head tasks: width of the head's hidden GELU layer (0: linear head)
    int64_t steps          = 150;
    int64_t batch          = 32;
    float lr               = 3e-3f;
    float weight_decay     = 0.01f;
    int64_t eval_size      = 256;    // validation samples scored during training
    int64_t few_shot_steps = 60;     // updates of a few-shot run (--shots)
    bool zero_shot_init    = false;  // the head starts at the zero-shot classifier (init_zero_shot_head);
                                     // always for few-shot runs (--shots) of tasks with label prompts
};

// What a plan is derived from: a task's manifest (or, for tests, its registry entry).
struct TaskFacts {
    std::string name, group, kind, path_hint, metric;
    data::Modality modality = data::Modality::Image;
    std::vector<std::string> labels;
};
TaskFacts facts_from_manifest(const nlohmann::json & manifest);
TaskFacts facts_from_info(const data::TaskInfo & info);  // labels left empty

struct TaskPlan {
    TaskFacts facts;
    // Metric names scored by `m4fw eval`, the first is the task's headline metric
    // ("exact_match+token_f1" → {exact_match, token_f1}).
    std::vector<std::string> metrics;
    train::TaskSpec spec;
    SampleRecipe recipe;
    TrainSettings train;
    // Decoding of generate adapters (into the manifest): greedy, up to max_new_tokens, EOS stops.
    model::GenerateOptions generation;
    // Zero-shot label prompts (encoder-path classification; empty: no zero-shot): "{label}" is
    // replaced by label_text[label] when present, else the label; several templates are averaged.
    std::vector<std::string> zero_shot_templates;
    std::map<std::string, std::string> label_text;
    // Test examples `scripts/train-adapters.sh` scores (0: the whole split) — long generations.
    int64_t eval_limit = 0;
    std::string approach;  // one line for the results table
};

// The plan of `facts` on a firmware with configuration `c`. Errors: a kind / path / metric the
// planner does not know, a modality the firmware lacks, a classification task without labels.
Result<TaskPlan> make_plan(const TaskFacts & facts, const model::ModelConfig & c);

// The plan of a built task: reads <data_dir>/<task>/manifest.json (and, for regression, the train
// split's value statistics). Errors name the task and the missing file.
Result<TaskPlan> plan_task(const std::string & data_dir, const std::string & task, const model::ModelConfig & c);

// The zero-shot prompt texts of every label (templates × labels, label-major).
std::vector<std::vector<std::string>> zero_shot_prompts(const TaskPlan & plan);

// The training data of a plan: a DatasetSource over the task's split. For retrieval (Embed) the
// caption of each sample is replaced by its target: the firmware's own text embedding of the
// caption (backbone path, no adapter; what the app ranks against at inference).
Result<std::unique_ptr<train::DataSource>> make_task_source(const TaskPlan & plan, const std::string & data_dir,
                                                            const model::Model & fw, const SourceOptions & o);

// Writes the adapter of a plan's training run (atomically): LoRA pairs and head (a regression head
// converted back from standardised units), bound to the base firmware, with the plan's labels,
// prompt template, decoding settings and `metrics` in the manifest. A full-mode run (a task-specific
// baseline, bench/baseline.h) exports its head alone, bound to `fingerprint`: the firmware that
// run exported (the base's fingerprint is that of its random start).
Status export_task_adapter(const train::TrainModel & tm, const TaskPlan & plan, const std::string & path,
                           const std::string & name, const nlohmann::json & metrics,
                           const std::string & fingerprint = {});

// Starts a classification head at the zero-shot classifier (CLIP-style): row k = the firmware's
// averaged text embedding of label k's prompts, scaled so that the logits of the `probe` samples
// spread over about 5 units. Encoder-path classification tasks with label prompts only.
Status init_zero_shot_head(train::TrainModel & tm, const TaskPlan & plan, const model::Model & fw,
                           const train::Batch & probe);

// The plan as JSON (m4fw eval --plan; scripts/train-adapters.sh reads it).
nlohmann::json plan_to_json(const TaskPlan & plan);

// The headline metric's direction: true for accuracy-like metrics, false for mae / wer.
bool higher_is_better(const std::string & metric);

}  // namespace m4::bench
