// The pretraining recipe of the default firmware (DESIGN.md, "Training"; docs/training.md,
// "Pretraining m4-tiny"): one JSON file (recipes/m4-tiny.json) names the architecture, the
// tokenizer, the pretraining corpus and its splits, the objectives with their loss weights and
// batch sizes, and the optimisation schedule. run_pretrain executes it:
//
//   1. the train-side text (pretraining `text` split minus its validation share, plus the captions
//      of the modality splits) → a corpus file → SentencePiece tokenizer       (cached in the work dir)
//   2. the initial firmware: the recipe's architecture + that tokenizer, random weights
//      (model::write_random_firmware, the `m4fw init` code path; norms 1, biases 0)  (cached)
//   3. one DataSource per objective: text LM over windows of the text documents (backbone path),
//      modality ↔ caption contrastive alignment (encoder path), modality-prefixed captioning (full path)
//   4. the Trainer in full mode, checkpointing atomically; a rerun after kill -9 continues from the
//      checkpoint (the run description must match)
//   5. export: the trained firmware, its header's provenance holding the whole recipe, the data
//      manifest's and every used split file's SHA-256, seed, steps, measured wall-clock seconds
//
//     PretrainOptions o;  o.recipe = "recipes/m4-tiny.json";  o.out = "firmware/m4-tiny.m4fw";
//     auto r = run_pretrain(o);      // r->parameters, r->wall_seconds, r->eval
//
// Deterministic for the recipe's seed: the tokenizer (single-threaded SentencePiece), the
// initial weights and the data RNG depend on it only, so two runs give the same weights.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace m4::bench {

// One objective of the recipe's "objectives" list.
struct PretrainObjective {
    std::string name;   // task name in logs, evaluation results and the checkpoint's run description
    std::string kind;   // "lm" (text windows, backbone) | "contrastive" (encoder ↔ caption) | "caption" (full path)
    std::string split;  // a split of the pretraining corpus
    model::Modality modality = model::Modality::Text;
    float weight             = 1.0f;  // loss weight in the summed objective
    int64_t batch            = 0;     // samples per micro-batch (0: training.batch)
    std::string prompt;               // caption: text between the modality tokens and the caption ("" = none)
    // draw: the benchmark task whose split it reads (its prompts and drawings, the validation share
    // left out), e.g. img.draw_scene's train split; other kinds read the pretraining corpus.
    std::string task;
    float foreground_weight = 1.0f;  // draw: weight of object pixels in the pixel MSE
};

struct PretrainRecipe {
    nlohmann::json json;  // the whole (effective) recipe, recorded in the firmware header
    std::string name = "m4-tiny", version = "0.1.0";
    uint64_t seed = 1;
    nlohmann::json architecture;  // firmware header fields: embed_dim, backbone, encoders
    int32_t vocab_size         = 4096;
    std::string tokenizer_type = "bpe";
    int64_t max_sentences      = 0;  // tokenizer corpus lines used (0: all)
    std::string data_dir = "data", data_task = "pretrain";
    double val_share  = 0.02;
    int64_t eval_size = 128;
    std::vector<PretrainObjective> objectives;
    train::TrainerOptions trainer;    // steps, batch, accum, schedule, AdamW, clip, eval/checkpoint cadence
    bool bf16          = true;        // bf16 matmuls in full mode (f32 masters)
    DType weight_dtype = DType::F32;  // exported linear weights and tok_embed
};

// Parses and checks a recipe; errors name `where` (the file) and the key.
Result<PretrainRecipe> parse_pretrain_recipe(const nlohmann::json & j, const std::string & where);

struct PretrainOptions {
    std::string recipe;                // recipe file
    std::string out;                   // firmware to write
    std::string data_dir;              // "" → the recipe's data.dir
    std::string work_dir;              // "" → build-pretrain/<out's stem>: tokenizer, initial firmware, checkpoint
    std::string checkpoint;            // "" → <work>/pretrain.ckpt
    bool fresh               = false;  // discard an existing checkpoint (otherwise a rerun continues from it)
    int64_t steps            = 0;      // > 0: overrides training.steps (tests)
    nlohmann::json overrides = nlohmann::json::object();  // JSON merge patch onto the recipe (tests)
    std::string command;                                  // the command line, recorded in the header
    train::Progress progress = train::Progress::Auto;
    int64_t stop_after       = -1;  // stop after this many updates of this process (tests of resume)
    std::FILE * log          = stderr;
};

struct PretrainResult {
    bool finished      = false;  // false: stopped by stop_after (checkpoint written, no firmware)
    int64_t parameters = 0, start_step = 0, steps = 0;
    double wall_seconds  = 0;  // this process, from reading the recipe to the written firmware
    double train_seconds = 0;
    float final_loss     = 0;
    std::vector<train::EvalResult> eval;
    std::string fingerprint;
    uint64_t file_bytes = 0;
};

Result<PretrainResult> run_pretrain(const PretrainOptions & o);

}  // namespace m4::bench
