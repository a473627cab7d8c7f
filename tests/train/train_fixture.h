// Shared by the training tests: the tiny firmware of tests/unit/fixture.h, the task list that
// covers every path and objective, and random samples for a task.
#pragma once

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // TaskSpec aggregates name the leading fields

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "train/rng.h"
#include "train/train_model.h"
#include "unit/fixture.h"

namespace m4::test {

using model::Modality;
using model::Path;
using train::Objective;
using train::TaskSpec;

// One task per path × objective the engine supports (adapter-exportable ones first).
inline std::vector<TaskSpec> all_tasks() {
    std::vector<TaskSpec> t;
    t.push_back({"enc-image-classify", Objective::Classify, Path::Encoder, Modality::Image, 3});
    t.push_back({"enc-audio-regress", Objective::Regress, Path::Encoder, Modality::Audio, 2});
    t.push_back({"enc-imu-embed", Objective::Embed, Path::Encoder, Modality::Imu, 5});
    t.push_back({"bb-classify-last", Objective::Classify, Path::Backbone, Modality::Text, 4, model::HeadPool::Last});
    t.push_back({"bb-regress-mean", Objective::Regress, Path::Backbone, Modality::Text, 2, model::HeadPool::Mean});
    t.push_back({"bb-lm", Objective::LanguageModel, Path::Backbone, Modality::Text});
    t.push_back({"full-image-lm", Objective::LanguageModel, Path::Full, Modality::Image});
    t.push_back({"full-imu-classify", Objective::Classify, Path::Full, Modality::Imu, 3, model::HeadPool::Mean});
    t.push_back({"full-audio-embed", Objective::Embed, Path::Full, Modality::Audio, 4, model::HeadPool::Last});
    t.push_back({"gen-image-reconstruct", Objective::Reconstruct, Path::Generator, Modality::Image});
    t.push_back({"gen-audio-mel", Objective::MelRegress, Path::Generator, Modality::Audio});
    return t;
}

inline TaskSpec contrastive_task(Modality m) {
    return {std::string("align-") + model::modality_name(m), Objective::Contrastive, Path::Encoder, m};
}

// A random sample for `t` with `n_tokens` text tokens (ids ≥ 4: not BOS/EOS/PAD/UNK).
inline train::Sample random_sample(const model::ModelConfig & c, const TaskSpec & t, train::Rng & rng,
                                   int64_t n_tokens) {
    train::Sample s;
    if (t.path == Path::Generator && t.modality == Modality::Audio) {  // text (speech symbols) and a log-mel
        const auto & sc = *c.speech_decoder;
        const int64_t n = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(sc.max_chars)));
        for (int64_t i = 0; i < n; ++i)
            s.tokens.push_back(static_cast<int32_t>(1 + rng.below(model::kSpeechSymbols - 1)));
        for (int64_t i = 0; i < sc.frames() * sc.n_mels; ++i) s.target.push_back(rng.uniform(-3.0f, 1.0f));
        return s;
    }
    if (t.path == Path::Generator) {  // an input image on the decoder's grid and a target image
        const int64_t n = c.image_decoder->image_size * c.image_decoder->image_size * 3;
        for (int64_t i = 0; i < n; ++i) s.signal.push_back(rng.uniform(-1.0f, 1.0f));
        for (int64_t i = 0; i < n; ++i) s.target.push_back(rng.uniform(-1.0f, 1.0f));
        return s;
    }
    const bool signal = t.path != Path::Backbone;
    const bool text   = t.path != Path::Encoder || t.objective == Objective::Contrastive;
    if (signal) {
        const auto & ec = c.encoder(t.modality);
        int64_t n       = 0;
        if (t.modality == Modality::Image) n = ec.image_size * ec.image_size * 3;
        if (t.modality == Modality::Audio) n = ec.clip_samples * 3 / 4;  // shorter than a clip: zero-padded
        if (t.modality == Modality::Imu) n = (ec.window - 3) * 6;
        for (int64_t i = 0; i < n; ++i) s.signal.push_back(rng.uniform(-1.0f, 1.0f));
    }
    if (text)
        for (int64_t i = 0; i < n_tokens; ++i)
            s.tokens.push_back(static_cast<int32_t>(4 + rng.below(c.text.vocab_size - 4)));
    if (t.objective == Objective::LanguageModel && n_tokens > 2) {
        s.loss_mask.assign(s.tokens.size(), 1);
        s.loss_mask[0] = 0;  // a prompt token: not predicted
    }
    if (t.objective == Objective::Classify) s.label = static_cast<int32_t>(rng.below(t.out_dim));
    if (t.objective == Objective::Regress || t.objective == Objective::Embed)
        for (int64_t i = 0; i < t.out_dim; ++i) s.target.push_back(rng.uniform(-1.0f, 1.0f));
    return s;
}

inline train::Batch random_batch(const model::ModelConfig & c, const TaskSpec & t, uint64_t seed, int64_t B) {
    train::Rng rng(seed);
    train::Batch b;
    for (int64_t i = 0; i < B; ++i) b.push_back(random_sample(c, t, rng, 3 + i % 3));  // ragged lengths
    return b;
}

// Replaces every parameter's value with random numbers of a similar scale (LoRA B starts at 0,
// which would hide a missing LoRA term).
inline void randomise_params(train::TrainModel & tm, uint64_t seed, float scale = 0.3f) {
    train::Rng rng(seed);
    for (auto & p : tm.params().params()) {
        float * v = p.value.f32();
        for (int64_t i = 0; i < p.numel(); ++i) v[i] = static_cast<float>(rng.normal()) * scale;
    }
    tm.refresh_shadows();
}

// Adds noise to every parameter (full mode: masters must really be what the forward reads).
inline void perturb_params(train::TrainModel & tm, uint64_t seed, float scale = 0.02f) {
    train::Rng rng(seed);
    for (auto & p : tm.params().params()) {
        float * v = p.value.f32();
        for (int64_t i = 0; i < p.numel(); ++i) v[i] += static_cast<float>(rng.normal()) * scale;
    }
    tm.refresh_shadows();
}

inline double rel_err(const std::vector<float> & a, const std::vector<float> & b) {
    if (a.size() != b.size()) return 1e30;
    double num = 0, den = 1e-6;
    for (size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::fabs(double(a[i]) - double(b[i])));
        den = std::max(den, std::fabs(double(b[i])));
    }
    return num / den;
}

}  // namespace m4::test
