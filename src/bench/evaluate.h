// Scoring a firmware + adapter on a benchmark split THROUGH THE INFERENCE PATH: the .m4a is loaded
// and bound like any app's adapter (adapter::Adapter::load), each stored example becomes the
// request the runtime would build from the same file (model_signal = runtime decode; the adapter's
// prompt template and tokenizer via runtime::prepare_item), and model::Model::run / generate
// answers in batches. The task's metrics come from its manifest; the chance level is that of a
// constant answer fit on the TRAIN split (the most frequent label / target, the median value), or
// k / N for recall@k.
//
//     auto fw   = model::Model::load("firmware/m4-tiny.m4fw");
//     auto plan = plan_task("data", "img.fashion_mnist", (*fw)->config());
//     auto ad   = adapter::Adapter::load("adapters/img.fashion_mnist.m4a", **fw);
//     auto rep  = evaluate_adapter(**fw, *ad, *plan, "data", {.split = "test"});
//     fmt::print("{} {:.4f} (chance {:.4f})\n", rep->metric, rep->score, rep->chance);
//
// Metrics (all computed here, tests/bench checks them on known inputs):
//   accuracy        share of argmax(head) == label
//   exact_match     share of generations equal to the target (surrounding spaces trimmed)
//   token_f1        mean over examples of the F1 of lower-cased word bags (SQuAD style)
//   top1_accuracy   share whose first generated word equals the target word
//   chrf            corpus chrF (character 1…6-grams, spaces removed, β = 2), 0…100
//   wer             corpus word error rate: word edit distance / reference words (lower is better)
//   mae             mean absolute error of the regression head (lower is better)
//   recall@k        image → text: share of images whose caption ranks in the top k of all distinct
//                   test captions (text → image and recall@1 are reported too)
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "adapter/adapter.h"
#include "bench/task_plan.h"
#include "data/dataset.h"

namespace m4::bench {

struct EvalOptions {
    std::string split = "test";
    int64_t limit     = 0;      // score a fixed subset of this many examples (0: all; see subset_key)
    bool validation   = false;  // score only the validation share carved out of `split` (train)
    double val_share  = 0.1;    // … the share DatasetSource carves (must match training)
    int64_t batch     = 64;     // requests per model call
};

struct EvalReport {
    std::string task, split, metric;  // the headline metric
    double score  = 0;
    double chance = 0;
    std::string chance_rule;                                   // how chance was computed
    std::vector<std::pair<std::string, double>> extra;         // further metrics (token_f1, recall@1 …)
    std::vector<std::pair<std::string, std::string>> samples;  // generations: (output, reference)
    int64_t examples = 0, total = 0;                           // scored / in the split
    double seconds = 0;
    std::string adapter;  // the adapter file ("" zero-shot)
    // The adapter's size: its file, and its parameters (LoRA A and B, head weight and bias).
    int64_t adapter_bytes = 0, adapter_params = 0;
    nlohmann::json to_json() const;
};

// LoRA A and B elements plus the head's weight and bias elements.
int64_t adapter_parameter_count(const adapter::Adapter & ad);

// Scores `ad` (bound to `fw`) on `plan`'s task. Errors name the split file or the adapter: an
// adapter for another path / modality / label count than the task's.
Result<EvalReport> evaluate_adapter(const model::Model & fw, const adapter::Adapter & ad, const std::string & ad_path,
                                    const TaskPlan & plan, const std::string & data_dir, const EvalOptions & o);

// Zero-shot classification on the encoder path, no adapter: the firmware's pooled embedding of
// each input against the firmware's text embedding of each label's prompts (averaged, normalised);
// the nearest label wins. For retrieval tasks: the firmware's own image ↔ caption embeddings.
Result<EvalReport> evaluate_zero_shot(const model::Model & fw, const TaskPlan & plan, const std::string & data_dir,
                                      const EvalOptions & o);

// The request the runtime builds for example `i` of `ds` (the adapter's prompt template, the
// tokenizer; text cut to what the backbone holds, leaving `reserve` positions for generation).
Result<model::Request> request_for_example(const model::Model & fw, model::Path path, const adapter::Manifest * man,
                                           const data::Dataset & ds, size_t i, int64_t reserve = 0);

// The firmware's normalised text embeddings of `texts` (backbone path, no adapter), in batches.
Result<std::vector<std::vector<float>>> text_embeddings(const model::Model & fw, const std::vector<std::string> & texts,
                                                        int64_t batch = 64);

// ---- metrics on plain values (exposed for tests) ----
double exact_match(const std::vector<std::string> & pred, const std::vector<std::string> & ref);
double token_f1(const std::string & pred, const std::string & ref);
double mean_token_f1(const std::vector<std::string> & pred, const std::vector<std::string> & ref);
double top1_word_accuracy(const std::vector<std::string> & pred, const std::vector<std::string> & ref);
double chrf(const std::vector<std::string> & hyp, const std::vector<std::string> & ref, int max_n = 6,
            double beta = 2.0);
double wer(const std::vector<std::string> & hyp, const std::vector<std::string> & ref);
// Text-metric by name over generations (exact_match, token_f1, top1_accuracy, chrf, wer).
Result<double> text_metric(const std::string & metric, const std::vector<std::string> & pred,
                           const std::vector<std::string> & ref);
// sim [n_query, n_item] row-major; positives[q] = the items that count as hits for query q.
double recall_at_k(const std::vector<float> & sim, int64_t n_query, int64_t n_item,
                   const std::vector<std::vector<int64_t>> & positives, int k);

}  // namespace m4::bench
