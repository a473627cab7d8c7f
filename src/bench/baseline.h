// The task-specific baseline of a benchmark task (eAIBench's comparison, docs/eaibench.md): the
// model a practitioner would train for that task alone, from scratch, with m4's own training engine,
// on the task's TRAIN split only (the validation share carved out of it chooses the settings), and
// scored by the same `m4fw eval` code on the same test split as firmware + adapter.
//
//     BaselineOptions o;  o.data_dir = "data";  o.firmware = "firmware/m4-tiny.m4fw";
//     auto r = train_baseline("img.fashion_mnist", o);   // baselines/<task>.m4fw + .m4a,
//                                                       // results/baselines/<task>.json
//
// The model is a firmware of its own (a `.m4fw` with the m4 firmware's architecture family and
// tokenizer, sized for the task) plus the task's head as an `.m4a` bound to that firmware's
// fingerprint, with no LoRA pair: `m4fw eval --firmware baselines/T.m4fw --adapter baselines/T.m4a
// --task T` scores it with exactly the code that scores m4. What the model holds:
//   encoder path   the task modality's encoder only (same front end: image grid, log-mel, IMU
//                  patches), width / depth from the size grid, embed projection, the head; a stub
//                  backbone (1 layer of width 8) because the file format requires one
//   backbone path  a decoder-only LLaMA-style model of the size grid over the task's text, the
//                  firmware's tokenizer; the head (classification) or the LM head (generation)
//   full path      the task modality's encoder + projector + that decoder
// Every variant of the grid (size × learning rate) is trained from the same random start, scored
// on the validation share through the inference path, and the best one (metric direction
// respected) is kept and scored once on the test split. Test examples are read only by that one
// final evaluation. Retrieval (m4: an Embed head ranked against the firmware's own text
// embeddings): the baseline is a two-tower model, the modality's encoder and a decoder text tower
// of the size grid, trained from scratch by contrastive alignment (InfoNCE) of each train example
// with its caption; its adapter is an identity embedding head, so the scorer ranks the model's own
// image embeddings against its own text embeddings.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/task_plan.h"

namespace m4::bench {

// One size of the grid: encoder and decoder widths / depths (heads: width / 32, at least 2).
struct BaselineSize {
    std::string name;
    int64_t enc_width = 0, enc_layers = 0, enc_ffn = 0;
    int64_t dec_width = 0, dec_layers = 0, dec_ffn = 0;
};

// One point of the tuning grid.
struct BaselineVariant {
    std::string size;  // a BaselineSize name
    float lr      = 1e-3f;
    int64_t steps = 0;  // 0: steps_mult × the adapter plan's steps
};

struct BaselineOptions {
    std::string data_dir = "data";
    std::string firmware;                         // the m4 firmware: architecture family, tokenizer, fingerprint
    std::string model_dir = "baselines";          // <task>.m4fw / <task>.m4a
    std::string out_dir   = "results/baselines";  // <task>.json
    std::string work_dir  = "build-baselines";    // per-variant files (reused when a run is resumed)
    std::vector<BaselineSize> sizes;              // empty: default_baseline_sizes()
    std::vector<BaselineVariant> grid;            // empty: every size × {1e-3, 3e-3}
    double steps_mult  = 2.0;                     // variant steps = steps_mult × the adapter plan's steps
    int64_t batch      = 0;                       // 0: the adapter plan's batch
    double val_share   = 0.1;                     // the adapters' validation share (m4fw adapter train)
    int64_t val_limit  = -1;                      // validation examples scored (−1: as m4fw adapter train)
    int64_t test_limit = -1;  // test examples (−1: the plan's eval_limit, as scripts/train-adapters.sh)
    uint64_t seed      = 1;
    bool quiet         = false;  // no training progress lines
    std::string command;         // recorded in the result
};

std::vector<BaselineSize> default_baseline_sizes();
// The grid `o` describes (default: every size × lr {1e-3, 3e-3}).
std::vector<BaselineVariant> baseline_grid(const BaselineOptions & o);

// The task-specific model's architecture (a firmware header: embed_dim, backbone, encoders) for
// task `plan` in size `s`, derived from the m4 firmware's configuration `fw`.
Result<nlohmann::json> baseline_architecture(const TaskPlan & plan, const model::ModelConfig & fw,
                                             const BaselineSize & s);

// Trains and scores task `task`'s baseline; writes the model files and the result JSON (which it
// also returns). Errors: the data or firmware missing (named).
Result<nlohmann::json> train_baseline(const std::string & task, const BaselineOptions & o);

// SHA-256 of <data_dir>/<task>/manifest.json (hex); the result records it to detect stale results.
Result<std::string> data_fingerprint(const std::string & data_dir, const std::string & task);

}  // namespace m4::bench
