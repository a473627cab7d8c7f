// The model architecture, read from the firmware's JSON header (docs/formats.md).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <string>

#include "base/status.h"

namespace m4::model {

enum class Modality { Image = 0, Audio = 1, Imu = 2, Text = 3 };
inline constexpr int kEncoderModalities = 3;  // image, audio, imu have encoders
const char * modality_name(Modality m);
bool parse_modality(const std::string & s, Modality * out);

// Execution paths of the paper (path 3 / 2 / 1, and path 4: one decoder alone).
enum class Path { Encoder = 0, Backbone = 1, Full = 2, Generator = 3 };
inline constexpr int kPathCount = 4;
const char * path_name(Path p);
bool parse_path(const std::string & s, Path * out);

// The encoder MLP's activation (header key "activation"): the erf GELU (default, "gelu"), its tanh
// approximation ("gelu_tanh", SigLIP's gelu_pytorch_tanh) or x·σ(1.702·x) ("quick_gelu", CLIP's).
// Same order as ops::GeluForm.
enum class Activation { Gelu = 0, GeluTanh = 1, QuickGelu = 2 };
const char * activation_name(Activation a);

// How the pooled embedding is taken (header key "pool"): the mean of the output tokens (default,
// "mean"), or the class token ("cls", CLIP's layout): then the final layernorm `norm` applies to
// the pooled class token only, and the token features are the last layer's output.
enum class Pool { Mean = 0, Cls = 1 };

struct EncoderConfig {
    Modality modality = Modality::Image;
    // front end
    int64_t image_size = 0, patch_size = 0, channels = 0;                       // image (channels = 3), imu (6)
    int64_t sample_rate = 0, clip_samples = 0, n_fft = 0, hop = 0, n_mels = 0;  // audio
    int64_t patch_frames = 0;                                                   // audio
    int64_t window       = 0;                                                   // imu (samples)
    // transformer
    int64_t width = 0, layers = 0, heads = 0, ffn = 0;
    float norm_eps = 1e-5f;
    // A learned class token prepended to the patch tokens (ViT-style towers): the encoder then
    // outputs T = patches + 1 tokens, token 0 the class token.
    bool cls_token = false;
    // A layernorm (tensors <base>.pre_norm.{weight,bias}) after the positions, before the first
    // layer (CLIP's pre_layrnorm).
    bool pre_norm         = false;
    Activation activation = Activation::Gelu;
    Pool pool             = Pool::Mean;  // Cls needs cls_token
    // True when every field above has its default: the encoder of firmware older than these keys.
    bool plain_layout() const {
        return !cls_token && !pre_norm && activation == Activation::Gelu && pool == Pool::Mean;
    }

    int64_t patches() const;    // patches per input
    int64_t tokens() const;     // T: tokens the encoder outputs (patches, + 1 with a class token)
    int64_t patch_dim() const;  // P: values per patch
    int64_t n_frames() const;   // audio only
    // Values of one full-size input: image S·S·3, audio clip_samples, IMU window·6.
    int64_t input_values() const;
};

// TTS-Dec (header "decoders": {"speech": {…}}): text characters → log-mel frames. Each character
// of the text (lower-cased, an alphabet of kSpeechSymbols symbols, 0 = pad) occupies
// frames_per_char consecutive frames of a fixed grid of T = max_chars·frames_per_char frames; a
// frame's input is the one-hot of its character. The trunk has the shape of an encoder (input
// projection of kSpeechSymbols values = a symbol embedding, learned positions [T, W], pre-norm
// bidirectional layers, final layernorm); out_proj [n_mels, W] maps each frame to a log-mel row.
// The STFT settings (sample_rate, n_fft, hop, n_mels) are the audio front end's, so the log-mel is
// the one the audio encoder computes; Griffin-Lim (griffin_lim_iters) turns it into samples.
inline constexpr int64_t kSpeechSymbols = 32;
struct SpeechDecoderConfig {
    int64_t max_chars = 0, frames_per_char = 0;
    int64_t sample_rate = 16000, n_fft = 400, hop = 160, n_mels = 40, griffin_lim_iters = 32;
    int64_t width = 0, layers = 0, heads = 0, ffn = 0;
    float norm_eps = 1e-5f;

    int64_t frames() const { return max_chars * frames_per_char; }    // T
    int64_t samples() const { return (frames() - 1) * hop + n_fft; }  // waveform length
    // The trunk as an encoder shape (modality Imu: T patches of one frame × kSpeechSymbols values).
    EncoderConfig trunk() const;
    // The audio front end's shape over samples() (n_frames() == T), for the log-mel of a waveform.
    EncoderConfig audio_view() const;
};

struct BackboneConfig {
    int64_t width = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, max_seq = 0;
    float rope_theta = 10000.0f, norm_eps = 1e-5f;
    bool tie_lm_head = false;
    int64_t head_dim() const { return width / heads; }
};

struct TextConfig {
    int64_t vocab_size = 0;
    int32_t bos_id = 1, eos_id = 2, pad_id = 0, unk_id = 3;
};

struct ModelConfig {
    std::string name, version;
    int64_t embed_dim = 0;
    TextConfig text;
    BackboneConfig backbone;
    std::array<std::optional<EncoderConfig>, kEncoderModalities> encoders;
    // IMG-Dec (header "decoders": {"image": {…}}): a transformer from a token sequence to image
    // patches, un-patchified into an image [S, S, 3]. Its trunk has exactly the shape of an image
    // encoder (patch embedding of P = p²·3 values, positions, pre-norm bidirectional layers, final
    // layernorm), so it is described by an EncoderConfig with modality Image; an output projection
    // [P, W] maps its tokens back to patches. Absent: the firmware has no image decoder.
    std::optional<EncoderConfig> image_decoder;
    // The full path into IMG-Dec (header decoders.image.from_backbone: {"queries": T}): T learned
    // query rows appended after the prompt's text read the prompt through the (causal) backbone; a
    // projector [P, C] maps their last-layer states to the decoder's T input tokens. Absent: the
    // decoder runs on path 4 only.
    bool image_decoder_from_backbone = false;
    std::optional<SpeechDecoderConfig> speech_decoder;  // TTS-Dec (above); absent: none

    bool has_encoder(Modality m) const;
    const EncoderConfig & encoder(Modality m) const;  // M4_CHECKs has_encoder
    bool has_decoder(Modality m) const;               // image (IMG-Dec) or audio (TTS-Dec)
    bool has_draw_path() const { return image_decoder.has_value() && image_decoder_from_backbone; }
};

// Parses and validates (positive sizes, width divisible by heads, heads by kv_heads, head dim
// even for RoPE, audio n_fft ≤ clip, …). Errors name the offending key.
Result<ModelConfig> parse_model_config(const nlohmann::json & j);
nlohmann::json model_config_to_json(const ModelConfig & c);

}  // namespace m4::model
