// Next-token choice from logits: greedy, or temperature sampling restricted by top-k and top-p;
// and the generation settings an app may choose (limits, per-request overrides of an adapter's
// defaults), checked in one place for the CLI, the in-process API and the service.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/status.h"

namespace m4::model {

struct SamplerSettings {
    float temperature = 0.0f;  // ≤ 0: greedy (argmax, lowest id on ties)
    int top_k         = 0;     // keep the k most likely (0: all)
    float top_p       = 1.0f;  // keep the smallest set whose probability reaches p (1: all)
};

// `allowed` (optional, [V], 1 = may be chosen) restricts the choice to a subset of the vocabulary
// (constrained decoding); it must allow at least one token.
int32_t sample_token(const float * logits, int64_t V, const SamplerSettings & s, std::mt19937_64 & rng,
                     const uint8_t * allowed = nullptr);

// Bounds on what an app may ask for (docs/service.md, "Generation options").
inline constexpr float kMaxTemperature  = 100.0f;
inline constexpr size_t kMaxStopStrings = 8;
inline constexpr size_t kMaxStopBytes   = 64;

// Per-request values; an absent one keeps the adapter manifest's default.
struct GenerationOverrides {
    std::optional<int> max_new_tokens;
    std::optional<float> temperature;
    std::optional<int> top_k;
    std::optional<float> top_p;
    std::optional<uint64_t> seed;
    std::optional<std::vector<std::string>> stop;  // replaces the manifest's list when present
    // Constrained output (model/constraint.h); compiled once the tokenizer and length are known.
    std::vector<std::string> choices;
    std::string json_schema;
};

// The sampling part of the settings, for check_generation().
struct GenerationValues {
    int max_new_tokens                    = 32;
    float temperature                     = 0.0f;
    int top_k                             = 0;
    float top_p                           = 1.0f;
    const std::vector<std::string> * stop = nullptr;
};

// Checks settings against the firmware (vocabulary size, context length): max_new_tokens in
// [1, max_seq], temperature finite in [0, kMaxTemperature], top_k in [0, vocab], top_p in (0, 1],
// at most kMaxStopStrings stop strings of 1..kMaxStopBytes bytes. `where` prefixes the message
// ("--temperature", "request", "adapter 'x' manifest").
Status check_generation(const GenerationValues & v, int64_t vocab, int64_t max_seq, const std::string & where);
// Checks only the values present (the event loop's check before the adapter is known).
Status check_overrides(const GenerationOverrides & o, int64_t vocab, int64_t max_seq, const std::string & where);

}  // namespace m4::model
