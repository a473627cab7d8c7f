// The trainable model: a firmware's architecture with its parameters, the training forward of one
// task's batch (activations kept), the loss, and the backward into the parameters' gradients.
//
//     auto fw = model::Model::load("m4-tiny.m4fw");
//     TaskSpec task{.name = "fashion", .objective = Objective::Classify, .path = model::Path::Encoder,
//                   .modality = model::Modality::Image, .out_dim = 10};
//     ModelOptions o;  o.mode = Mode::Adapter;  o.lora_targets = "attn";
//     auto tm = TrainModel::create(**fw, {task}, o);
//     auto st = (*tm)->forward_backward(task, batch, 1.0f);   // grads accumulate in (*tm)->params()
//
// Two modes:
//   Full     every firmware tensor is an f32 master parameter (a copy, dequantised if needed);
//            with `bf16` the linear layers (and tok_embed) run on bf16 copies refreshed after each update
//            (refresh_shadows), gradients land in the f32 masters.
//   Adapter  the base stays frozen and is used in place from the mapped firmware (f32, bf16 or
//            int8; nothing of it is copied); LoRA pairs on the chosen targets and the task head
//            learn, optionally the projector too (as one more LoRA target: .m4a holds LoRA + head).
// The forward is the inference code's: model::linear, the same ops in the same order
// (train/graph.h), so infer() equals model::Model::run on the exported file (tests/train checks).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "train/graph.h"
#include "train/params.h"

namespace m4::train {

enum class Mode { Full = 0, Adapter = 1 };
const char * mode_name(Mode m);

// What a task optimises. Heads (classify, regress, embed) are the adapter's; LanguageModel uses
// the firmware's LM head; Contrastive aligns the encoder's pooled embedding with the backbone's
// text embedding (pretraining; the task's path is `encoder`, the text tower is implied);
// Reconstruct trains the image decoder on the generator path: the output image against a target
// image (mean squared error over its values; super-resolution, and the decoder's pretraining).
// Draw trains the full path into the image decoder: a description (text) → backbone → projector →
// IMG-Dec → an image, against the renderer's image of the described scene (pixel MSE).
// MelRegress trains the speech decoder on the generator path (modality audio): its log-mel frames
// against a reference rendering's (mean squared error; text-to-speech, and the decoder's pretraining).
enum class Objective { LanguageModel = 0, Classify, Regress, Embed, Contrastive, Reconstruct, Draw, MelRegress };
const char * objective_name(Objective o);

struct TaskSpec {
    std::string name;
    Objective objective      = Objective::Classify;
    model::Path path         = model::Path::Encoder;
    model::Modality modality = model::Modality::Image;
    int64_t out_dim          = 0;  // classes | regression outputs | embedding size (head tasks)
    model::HeadPool pool     = model::HeadPool::Mean;
    std::vector<std::string> labels;
    bool has_head() const;
    int64_t tokens_per_sample = 0;  // informational: typical text tokens (for throughput figures)
    // Draw: weight of foreground pixels (those that differ from their target's top-left pixel, the
    // background) in the pixel MSE; 1 = plain MSE.
    float foreground_weight = 1.0f;
};

// One training example. `signal` is the modality input as model::Request takes it (image [S,S,3]
// normalised, audio samples, IMU rows of 6); `tokens` text ids without BOS.
struct Sample {
    std::vector<float> signal;
    std::vector<int32_t> tokens;
    std::vector<uint8_t> loss_mask;  // LanguageModel: per text token, 1 = predicted (empty: all)
    int32_t label = -1;              // Classify
    std::vector<float> target;       // Regress: out_dim values; Embed: out_dim-vector (any norm);
                                     // Reconstruct, Draw: the target image [S, S, 3] (normalised);
                                     // MelRegress: the target log-mel [T, n_mels] (tokens: speech symbols)
};
using Batch = std::vector<Sample>;

struct ModelOptions {
    Mode mode      = Mode::Adapter;
    bool bf16      = false;  // full mode: bf16 matmuls (f32 master weights)
    bool recompute = false;  // keep only layer inputs; recompute the rest in the backward
    // adapter mode
    int64_t lora_rank        = 8;
    float lora_alpha         = 16.0f;
    std::string lora_targets = "attn";  // adapter::expand_targets pattern; "none" for a head-only adapter
    bool train_projector     = false;   // full path: the projector learns too (a LoRA pair on it)
    int64_t head_hidden      = 0;       // the head's hidden layer (GELU) width; 0: a linear head
    uint64_t seed            = 1;       // initialisation of LoRA A, heads
};

// Sums over one batch, for logs and metrics.
struct StepStats {
    double loss     = 0;  // mean loss of the batch
    int64_t samples = 0;
    int64_t tokens  = 0;  // positions through the backbone (+ encoder tokens on the encoder path)
    int64_t correct = 0;  // classify / LM tokens / retrieval top-1 hits
    int64_t counted = 0;  // what `correct` counts over
};

class TrainModel {
  public:
    // `base` must outlive the TrainModel (adapter mode uses its mapped weights in place).
    static Result<std::unique_ptr<TrainModel>> create(const model::Model & base, const std::vector<TaskSpec> & tasks,
                                                      const ModelOptions & options);

    // Forward + loss + backward of one batch of `task`; parameter gradients accumulate, scaled by
    // `loss_weight` (1 / accumulation steps). Input faults (a sample that does not fit) → Status.
    Result<StepStats> forward_backward(const TaskSpec & task, const Batch & batch, float loss_weight);
    // Forward + loss only.
    Result<StepStats> evaluate(const TaskSpec & task, const Batch & batch);
    // What model::Model::run returns for these inputs with the trained adapter (or, in full mode,
    // the trained firmware): per sample the head output, else the normalised embedding (encoder
    // path), else LM logits of every position [n, V].
    Result<std::vector<std::vector<float>>> infer(const TaskSpec & task, const Batch & batch);

    // After an optimizer step: re-derive the bf16 weight copies from the masters (full + bf16).
    void refresh_shadows();

    ParamStore & params() { return params_; }
    const ParamStore & params() const { return params_; }
    const ModelOptions & options() const { return options_; }
    const model::Model & base() const { return base_; }
    const model::Weights & weights() const { return weights_; }
    const model::AdapterWeights & adapter() const { return adapter_; }  // LoRA pairs + head (views)
    const std::vector<std::string> & lora_targets() const { return targets_; }
    const std::vector<TaskSpec> & tasks() const { return tasks_; }
    // Bytes of every parameter's value, gradient and moments (training state this process owns).
    int64_t state_bytes() const;

  private:
    explicit TrainModel(const model::Model & base) : base_(base) {}
    Status init(const std::vector<TaskSpec> & tasks, const ModelOptions & options);

    // The shared forward / loss / backward (train_step.cpp). `outputs` non-null: infer().
    Result<StepStats> run(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                          std::vector<std::vector<float>> * outputs);
    Status validate(const TaskSpec & task, const Batch & batch) const;
    Status make_patches(model::Modality m, const Batch & batch, Buf * patches) const;
    // Encoder forward of the batch's signals → acts (tokens) and z = embed_proj(mean tokens) [B, E].
    Status encoder_z(model::Modality m, const Batch & batch, Buf * z);
    // Reconstruct on the generator path (train_decoder.cpp).
    Result<StepStats> run_reconstruct(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                                      std::vector<std::vector<float>> * outputs);
    // Draw on the full path into the image decoder (train_draw.cpp).
    Status validate_draw(const TaskSpec & task, const Batch & batch, bool targets) const;
    Result<StepStats> run_draw(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                               std::vector<std::vector<float>> * outputs);
    // MelRegress on the generator path (train_speech.cpp).
    Result<StepStats> run_mel_regress(const TaskSpec & task, const Batch & batch, float weight, bool backward,
                                      std::vector<std::vector<float>> * outputs);
    // Backward of encoder_z given dz [B, E] (only when something in the encoder or embed_proj learns).
    void encoder_z_backward(model::Modality m, int64_t B, const Buf & dz);
    // Backbone forward of [BOS, projected modality tokens (full path), text] per sample.
    Status backbone_forward(const TaskSpec & task, const Batch & batch);
    // Backward from dhn [N, C] down to the embeddings, projector and encoder.
    void backbone_backward(const TaskSpec & task, const Buf & dhn);
    bool encoder_learns(model::Modality m) const;
    bool projector_learns(model::Modality m) const;
    bool backbone_learns() const;
    bool decoder_learns() const;

    const model::Model & base_;
    ModelOptions options_;
    std::vector<TaskSpec> tasks_;
    ParamStore params_;
    model::Weights weights_;         // what the forward reads: masters, shadows, or the mapped base
    model::AdapterWeights adapter_;  // LoRA pairs and head, views into params_
    std::vector<std::string> targets_;
    std::vector<std::pair<Param *, Tensor>> shadows_;  // bf16 copies of masters (full + bf16)
    Param * logit_scale_ = nullptr;                    // InfoNCE temperature (log), when a task needs it
    std::vector<model::AudioFrontEnd> audio_fe_;       // [0] when the firmware has audio
    // activations of the current batch
    EncoderActs enc_;
    EncoderActs dec_;    // the image decoder's trunk
    Buf dec_x_, dec_y_;  // decoder input patches and output patches (after the residual) [B·T, P]
    Buf draw_q_;         // draw: the query rows' backbone states [B·T, C]
    BackboneActs bb_;
    Buf enc_pooled_, prefix_;
    std::vector<int64_t> prefix_len_;  // per sample: BOS + modality tokens
    std::vector<int32_t> row_ids_;     // per backbone row: its token id (BOS, text), −1 for modality rows
};

}  // namespace m4::train
