// The firmware model: a verified, read-only mapped .m4fw plus everything resolved from it, and the
// three execution paths (docs/architecture.md).
//
//     auto model = Model::load("m4-tiny.m4fw");                 // verifies digest (+ signature)
//     Request r; r.signal = image_values;                        // [S, S, 3], already normalised
//     auto out = (*model)->run(Path::Encoder, Modality::Image, {&r, 1});
//     out->at(0).embedding;                                      // normalised shared embedding
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "format/container.h"
#include "model/config.h"
#include "model/constraint.h"
#include "model/decoder.h"
#include "model/encoder.h"
#include "model/frontend.h"
#include "model/sampler.h"
#include "model/speech_decoder.h"
#include "model/tokenizer.h"

namespace m4::model {

// One item of a batch. `signal` is the modality input (image [S,S,3] normalised, audio samples,
// IMU rows of 6; on the generator path the image on the decoder's S×S grid, see resample_bicubic),
// `tokens` the text token ids without BOS (the model prepends it); on the generator path over
// audio (the speech decoder) `tokens` are speech symbol ids (speech_symbols) and there is no signal.
struct Request {
    const AdapterWeights * adapter = nullptr;
    std::vector<float> signal;
    std::vector<int32_t> tokens;
};

struct Output {
    std::vector<float> head;       // the adapter head's output (classify logits, regress values, embed vector)
    std::vector<float> embedding;  // normalised shared embedding (modality on the encoder path, text otherwise)
    std::vector<float> logits;     // LM logits: last position [V], or all positions [n_positions, V]
    int64_t n_positions = 0;
    std::vector<float> image;  // generator path and full path over text: [image_size, image_size, 3], normalised like inputs
    int64_t image_size = 0;
    // Generator path over text (TTS-Dec): the decoder's log-mel [T, n_mels] and the Griffin-Lim
    // waveform [samples] in [-1, 1] at audio_rate Hz.
    std::vector<float> mel, audio;
    int64_t audio_rate = 0;
};

struct RunOptions {
    bool all_logits = false;  // backbone/full: keep logits of every position (tests, scoring)
};

struct GenerateOptions {
    int max_new_tokens = 32;
    float temperature  = 0.0f;  // 0 → greedy
    int top_k          = 0;     // 0 → off
    float top_p        = 1.0f;  // 1 → off
    uint64_t seed      = 0;
    std::vector<std::string> stop;  // stop strings (checked on the decoded text)
    bool keep_logits = false;       // record the logits of every step
    // Storage of the KV cache: F32 (exact), or BF16 — half the memory and half the attention
    // traffic per decode step, keys and values rounded to bf16 (llama.cpp keeps f16 by default).
    DType kv_dtype = DType::F32;
    // Constrained output (model/constraint.h): every step of the row samples from the tokens it
    // allows; stop strings are not applied to such a row.
    std::shared_ptr<const TokenConstraint> constraint;
};

// `base` with the values present in `o` (a request's settings over an adapter's defaults).
GenerateOptions with_overrides(GenerateOptions base, const GenerationOverrides & o);

struct Generation {
    std::vector<int32_t> tokens;
    std::string text;
    std::string stop_reason;         // "eos", "stop", "length", "context"
    std::vector<float> step_logits;  // [n, V] when keep_logits
};

class Model {
  public:
    static Result<std::unique_ptr<Model>> load(const std::string & path, const format::OpenOptions & options = {});

    const ModelConfig & config() const { return config_; }
    const Weights & weights() const { return weights_; }
    const Tokenizer & tokenizer() const { return tokenizer_; }
    const format::ContainerFile & file() const { return file_; }
    std::string fingerprint() const { return file_.fingerprint(); }

    // Checks a request against the path and modality (input faults → Status naming the item).
    Status validate(Path path, Modality modality, std::span<const Request> batch) const;

    // Runs one batch on one path. Items may carry different adapters (or none).
    Result<std::vector<Output>> run(Path path, Modality modality, std::span<const Request> batch,
                                    const RunOptions & options = {}) const;

    // Autoregressive generation on the backbone or full path, batched, with a KV cache per item.
    // Item b's sampler is seeded with options.seed · 0x9e3779b97f4a7c15 + b.
    Result<std::vector<Generation>> generate(Path path, Modality modality, std::span<const Request> batch,
                                             const GenerateOptions & options) const;
    // The same with settings per item (a mixed batch: every row its own sampling values, stop
    // strings, length and seed; the seed is used as given). kv_dtype and keep_logits come from row 0.
    Result<std::vector<Generation>> generate(Path path, Modality modality, std::span<const Request> batch,
                                             std::span<const GenerateOptions> per_row) const;
    // Checks settings against this firmware (model::check_generation); `where` names the source.
    Status check_options(const GenerateOptions & o, const std::string & where) const;

    // Griffin-Lim's constant matrices (null without a speech decoder).
    const SpeechVocoder * speech_vocoder() const { return vocoder_.get(); }

    // The log-mel features of an audio clip (for tests and tools).
    Result<std::vector<float>> audio_log_mel(const std::vector<float> & samples) const;

  private:
    // Embeds the batch's inputs as backbone rows: [BOS, projected modality tokens (full path), text].
    // One backbone pass of Model::run over whole sequences: outs[b] for batch[b].
    void run_backbone_pass(Path path, Modality modality, std::span<const Request> batch, const RunOptions & options,
                           Output * outs) const;
    void build_backbone_inputs(Path path, Modality modality, std::span<const Request> batch, std::vector<float> * x,
                               std::vector<int64_t> * lens) const;
    void encode_tokens(Modality modality, std::span<const Request> batch, std::vector<float> * tokens) const;
    void apply_head(const HeadWeights & head, const float * z, Output * out) const;
    // Path 4 on images: out = unpatchify(x + IMG-Dec(x)), x the patches of the input.
    void run_generator(std::span<const Request> batch, Output * outs) const;
    // The full path over text into the image decoder (model_draw.cpp): text → backbone (with the
    // decoder's learned queries after the prompt) → from_backbone projector → IMG-Dec → image.
    Status validate_draw(std::span<const Request> batch) const;
    void run_draw(std::span<const Request> batch, Output * outs) const;
    // Path 4 on text: out.mel = TTS-Dec(one-hot characters), out.audio = Griffin-Lim(out.mel).
    void run_speech(std::span<const Request> batch, Output * outs) const;

    format::ContainerFile file_;
    ModelConfig config_;
    Weights weights_;
    Tokenizer tokenizer_;
    AudioFrontEnd audio_fe_;
    std::shared_ptr<const SpeechVocoder> vocoder_;  // with a speech decoder
};

// Random weights for a configuration (m4fw init): normal(0, init_scale) for linear weights and
// embeddings, 1 + normal(0, 0.1) for norm weights, normal(0, 0.1) for biases; `dtype` applies to linear weights and the
// token embedding. Returns (name, tensor) pairs in expected_tensors() order.
std::vector<std::pair<std::string, Tensor>> random_weights(const ModelConfig & c, uint64_t seed, DType dtype);

// A whole random-weight firmware file (m4fw init, the pretraining recipe's starting point).
struct InitFirmware {
    nlohmann::json config;        // firmware header: name, version, embed_dim, backbone, encoders (text ids are
                                  // filled in from the tokenizer)
    std::string tokenizer_model;  // SentencePiece model bytes (tensor "tokenizer.model")
    uint64_t seed = 1;
    DType dtype   = DType::F32;  // linear weights and tok_embed
    // Pretraining start: norm weights 1 and biases 0 (instead of random_weights' perturbed values,
    // which let tests see every norm and bias at work). Linear weights and embeddings as random_weights.
    bool clean_norms           = false;
    nlohmann::json provenance  = nlohmann::json::object();  // the header's "provenance"
    const SecretKey * sign_key = nullptr;
};
struct InitResult {
    int64_t parameters  = 0;
    uint64_t file_bytes = 0;
    std::string fingerprint;
};
// Writes `path` atomically. `where` names the configuration in errors (a bad key, a tokenizer
// that does not load).
Result<InitResult> write_random_firmware(const InitFirmware & f, const std::string & path, const std::string & where);

}  // namespace m4::model
