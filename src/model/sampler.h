// Next-token choice from logits: greedy, or temperature sampling restricted by top-k and top-p.
#pragma once

#include <cstdint>
#include <random>

namespace m4::model {

struct SamplerSettings {
    float temperature = 0.0f;  // ≤ 0: greedy (argmax, lowest id on ties)
    int top_k         = 0;     // keep the k most likely (0: all)
    float top_p       = 1.0f;  // keep the smallest set whose probability reaches p (1: all)
};

int32_t sample_token(const float * logits, int64_t V, const SamplerSettings & s, std::mt19937_64 & rng);

}  // namespace m4::model
