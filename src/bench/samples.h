// From stored benchmark examples (data::Dataset) to training samples (train::Sample) and model
// inputs, built exactly as the runtime builds them from the same file (runtime/inputs.h): so an
// adapter trained here sees at inference what it saw in training.
//
//     auto ds  = data::Dataset::open("data", "img.fashion_mnist", "train");
//     SampleRecipe r{.objective = train::Objective::Classify, .path = model::Path::Encoder};
//     auto s   = to_sample(*ds, 0, r, *fw);          // s->signal: [S,S,3] normalised, s->label
//     auto src = DatasetSource::create(spec, r, "data", "img.fashion_mnist", *fw, {.val_share = 0.1});
//
// Validation data is carved out of the TRAIN split (a fixed, seed-independent share chosen by the
// example's content hash), never from a test split: hyper-parameters are chosen on it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/model.h"
#include "train/data.h"
#include "train/train_model.h"

namespace m4::bench {

// How one task's examples become samples.
struct SampleRecipe {
    train::Objective objective = train::Objective::Classify;
    model::Path path           = model::Path::Encoder;
    // Text template of backbone / full-path inputs; "{input}" is replaced by the example's text
    // payload (text tasks) or its prompt field (modality tasks, e.g. a VQA question; "" if none).
    // A text example that has a prompt field too (translation: "Translate into German:") is the
    // input "<prompt> <text>", as a user would type it.
    std::string prompt = "{input}";
    // LanguageModel: the target text (example.target) follows the prompt, then EOS; the loss
    // covers only the target tokens and EOS.
    bool eos_after_target = true;
    // Regress: the target is (value − value_shift) / value_scale (standardised; the head is
    // trained in these units and converted back on export).
    float value_shift = 0.0f, value_scale = 1.0f;
};

// The model input of a stored modality example for encoder `c`, as runtime::decode_* builds it:
//   image  grey → RGB, resized to S×S (stb, as decode_image), (v/255 − 0.5)/0.5, [S,S,3]
//   audio  i16/32768, first clip_samples samples, zero-padded when shorter
//   imu    rows of 6, first `window` rows, zero-padded when shorter
// `where` names the example in errors ("data/img.x/train.m4ds #12").
Result<std::vector<float>> model_signal(const data::Example & ex, data::Modality m, const model::EncoderConfig & c,
                                        const std::string & where);

// The text a user would give for a text example: "<prompt> <text>" when it has a prompt field.
std::string text_input(const data::Example & ex);

// Text of a recipe's prompt for an example (template filled).
std::string prompt_text(const data::Example & ex, data::Modality m, const SampleRecipe & r);

// One training sample of example `i`. Errors name the file and the example.
Result<train::Sample> to_sample(const data::Dataset & ds, size_t i, const SampleRecipe & r, const model::Model & fw);

// True when example `ex` belongs to the validation share carved out of a train split.
bool in_validation(const data::Example & ex, double val_share);

struct SourceOptions {
    std::string split   = "train";  // the split to draw from
    double val_share    = 0.1;      // share of `split` held back for validation (0: none)
    int64_t eval_size   = 256;      // validation samples kept in memory (≤ the share)
    int64_t max_train   = 0;        // use only the first N training examples (0: all) — few-shot uses
    int64_t per_class   = 0;        //   … or only N examples per class (classification; 0: off)
    uint64_t subset_seed = 1;       // which examples `per_class` picks
};

// A trainer DataSource over one split of a built task: samples converted on demand (the split stays
// memory-mapped), training examples drawn uniformly with the trainer's Rng (resumable), a fixed
// validation set from the carved-out share.
class DatasetSource : public train::DataSource {
  public:
    static Result<std::unique_ptr<DatasetSource>> create(train::TaskSpec spec, SampleRecipe recipe,
                                                         const std::string & data_dir, const std::string & task,
                                                         const model::Model & fw, const SourceOptions & o);
    const train::TaskSpec & task() const override { return spec_; }
    Status next_batch(train::Rng & rng, int64_t n, train::Batch * out) override;
    const train::Batch & eval_set() const override { return eval_; }
    size_t train_size() const { return train_idx_.size(); }
    const data::Dataset & dataset() const { return ds_; }

  private:
    DatasetSource(train::TaskSpec spec, SampleRecipe recipe, data::Dataset ds, const model::Model & fw)
        : spec_(std::move(spec)), recipe_(std::move(recipe)), ds_(std::move(ds)), fw_(fw) {}
    train::TaskSpec spec_;
    SampleRecipe recipe_;
    data::Dataset ds_;
    const model::Model & fw_;
    std::vector<uint32_t> train_idx_;
    train::Batch eval_;
};

// Language modelling over a text split whose documents can be far longer than the backbone holds
// (the pretraining text: one gettext catalogue is a single document of 100 kB). Every document is
// cut into units of `window_bytes`; a training sample picks a unit uniformly (so text volume, not
// document count, sets the mix), then a window of that document starting at a random offset
// snapped back to a line start (or forward to a word start), both drawn from the trainer's Rng.
// The window is tokenized and cut to max_seq − 1 tokens; EOS follows when it reaches the end of
// the document. Every token is predicted (loss mask all 1). Validation: whole documents carved
// out by content hash (in_validation), their first window.
struct TextWindowOptions {
    std::string split    = "text";
    double val_share     = 0.02;
    int64_t eval_size    = 128;
    int64_t window_bytes = 0;  // 0: 6 bytes per token of room (max_seq − 1)
};

class TextWindowSource : public train::DataSource {
  public:
    static Result<std::unique_ptr<TextWindowSource>> create(train::TaskSpec spec, const std::string & data_dir,
                                                            const std::string & task, const model::Model & fw,
                                                            const TextWindowOptions & o);
    const train::TaskSpec & task() const override { return spec_; }
    Status next_batch(train::Rng & rng, int64_t n, train::Batch * out) override;
    const train::Batch & eval_set() const override { return eval_; }
    size_t train_docs() const { return docs_.size(); }
    const data::Dataset & dataset() const { return ds_; }
    // The sample of document `i` from byte `offset` (snapped as described above).
    Result<train::Sample> window(size_t i, uint64_t offset) const;

  private:
    TextWindowSource(train::TaskSpec spec, data::Dataset ds, const model::Model & fw)
        : spec_(std::move(spec)), ds_(std::move(ds)), fw_(fw) {}
    train::TaskSpec spec_;
    data::Dataset ds_;
    const model::Model & fw_;
    int64_t window_bytes_ = 0;
    std::vector<uint32_t> docs_;      // training documents
    std::vector<uint64_t> unit_end_;  // cumulative window units of docs_
    train::Batch eval_;
};

}  // namespace m4::bench
