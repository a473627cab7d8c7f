// Built-in synthetic tasks (see synthetic.h) and VectorSource.
#include "train/synthetic.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace m4::train {

using model::HeadPool;
using model::Modality;
using model::Path;

Status VectorSource::next_batch(Rng & rng, int64_t n, Batch * out) {
    if (train_.empty()) return invalid_argument("task '" + task_.name + "': no training samples");
    out->clear();
    for (int64_t i = 0; i < n; ++i) out->push_back(train_[rng.below(static_cast<int64_t>(train_.size()))]);
    return Status::ok();
}

namespace {

constexpr int32_t kFirstId   = 4;   // ids 0 … 3 are pad, bos, eos, unk
constexpr int32_t kTextRange = 32;  // text-first / text-successor draw ids from [4, 36)
constexpr int32_t kRowId     = 40;  // caption tokens: row r → 40 + r, column c → 44 + c
constexpr int32_t kColId     = 44;
constexpr int64_t kMinVocab  = 48;

using Generator = std::function<Sample(Rng &)>;

class SyntheticSource : public DataSource {
  public:
    SyntheticSource(TaskSpec task, Generator gen, uint64_t seed, int64_t eval_size)
        : task_(std::move(task)), gen_(std::move(gen)) {
        Rng eval_rng(seed ^ 0x5eed0e7a15e7ull);  // its own stream: the evaluation set is fixed
        for (int64_t i = 0; i < eval_size; ++i) eval_.push_back(gen_(eval_rng));
    }
    const TaskSpec & task() const override { return task_; }
    Status next_batch(Rng & rng, int64_t n, Batch * out) override {
        out->clear();
        for (int64_t i = 0; i < n; ++i) out->push_back(gen_(rng));
        return Status::ok();
    }
    const Batch & eval_set() const override { return eval_; }

  private:
    TaskSpec task_;
    Generator gen_;
    Batch eval_;
};

// An [S, S, 3] image of noise with cell `cell` of a g×g grid brightened.
std::vector<float> grid_image(const model::EncoderConfig & e, int64_t g, int64_t cell, Rng & rng) {
    const int64_t S = e.image_size, cs = std::max<int64_t>(1, S / g);
    const int64_t r0 = (cell / g) * cs, c0 = (cell % g) * cs;
    std::vector<float> img(static_cast<size_t>(S * S * 3));
    for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x)
            for (int64_t ch = 0; ch < 3; ++ch) {
                float v = rng.uniform(-1.0f, 0.0f) * 0.5f - 0.25f;
                if (y >= r0 && y < r0 + cs && x >= c0 && x < c0 + cs) v += 1.0f;
                img[(y * S + x) * 3 + ch] = std::clamp(v, -1.0f, 1.0f);
            }
    return img;
}

// IMU window [window, 6]: each axis oscillates `cycles` times per window with its own amplitude
// (× `amp`) and phase, plus noise; the accelerometer's z axis carries a gravity offset.
std::vector<float> imu_window(const model::EncoderConfig & e, double cycles, double amp, Rng & rng) {
    const int64_t W = e.window;
    std::vector<float> s(static_cast<size_t>(W * 6));
    for (int64_t ch = 0; ch < 6; ++ch) {
        const double a = amp * (0.5 + rng.uniform()), ph = 6.283185307179586 * rng.uniform();
        for (int64_t t = 0; t < W; ++t)
            s[t * 6 + ch] = static_cast<float>(a * std::sin(6.283185307179586 * cycles * double(t) / double(W) + ph) +
                                               0.15 * rng.normal() + (ch == 2 ? 1.0 : 0.0));
    }
    return s;
}

constexpr double kCycles[4] = {1, 2, 4, 8};

struct Builder {
    TaskSpec spec;
    Generator gen;
};

Result<Builder> builder(const std::string & name, const model::ModelConfig & c) {
    auto need = [&](Modality m) -> Status {
        if (!c.has_encoder(m))
            return incompatible("synthetic task '" + name + "' needs a " + model::modality_name(m) +
                                " encoder, which the firmware lacks");
        return Status::ok();
    };
    if (c.text.vocab_size < kMinVocab)
        return invalid_argument("synthetic tasks need a vocabulary of at least " + std::to_string(kMinVocab) + " ids");
    Builder b;
    b.spec.name = name;
    if (name == "image-grid" || name == "image-caption" || name == "image-text") {
        M4_RETURN_IF_ERROR(need(Modality::Image));
        const auto & e  = c.encoder(Modality::Image);
        const int64_t g = name == "image-grid" ? 2 : 4;
        b.spec.modality = Modality::Image;
        if (name == "image-grid") {
            b.spec.objective = Objective::Classify;
            b.spec.path      = Path::Encoder;
            b.spec.out_dim   = g * g;
            b.spec.labels    = {"top-left", "top-right", "bottom-left", "bottom-right"};
        } else {
            b.spec.objective         = name == "image-caption" ? Objective::LanguageModel : Objective::Contrastive;
            b.spec.path              = name == "image-caption" ? Path::Full : Path::Encoder;
            b.spec.tokens_per_sample = 2;
        }
        const bool grid = name == "image-grid";
        b.gen           = [e, g, grid](Rng & rng) {
            Sample s;
            const int64_t cell = rng.below(g * g);
            s.signal           = grid_image(e, g, cell, rng);
            if (grid)
                s.label = static_cast<int32_t>(cell);
            else
                s.tokens = {static_cast<int32_t>(kRowId + cell / g), static_cast<int32_t>(kColId + cell % g)};
            return s;
        };
        return b;
    }
    if (name == "imu-activity" || name == "imu-intensity" || name == "imu-embed") {
        M4_RETURN_IF_ERROR(need(Modality::Imu));
        const auto & e  = c.encoder(Modality::Imu);
        b.spec.modality = Modality::Imu;
        b.spec.path     = Path::Encoder;
        if (name == "imu-activity") {
            b.spec.objective = Objective::Classify;
            b.spec.out_dim   = 4;
            b.spec.labels    = {"still-ish", "walk", "run", "shake"};
            b.gen            = [e](Rng & rng) {
                Sample s;
                s.label  = static_cast<int32_t>(rng.below(4));
                s.signal = imu_window(e, kCycles[s.label], 1.0, rng);
                return s;
            };
        } else if (name == "imu-intensity") {
            b.spec.objective = Objective::Regress;
            b.spec.out_dim   = 1;
            b.gen            = [e](Rng & rng) {
                Sample s;
                const double amp = 0.2 + 1.8 * rng.uniform();
                s.signal         = imu_window(e, kCycles[rng.below(4)], amp, rng);
                s.target         = {static_cast<float>(amp)};
                return s;
            };
        } else {
            b.spec.objective = Objective::Embed;
            b.spec.out_dim   = 8;
            std::vector<std::vector<float>> anchors(4);
            Rng arng(0xa9c40);
            for (auto & a : anchors)
                for (int i = 0; i < 8; ++i) a.push_back(static_cast<float>(arng.normal()));
            b.gen = [e, anchors](Rng & rng) {
                Sample s;
                const int64_t k = rng.below(4);
                s.signal        = imu_window(e, kCycles[k], 1.0, rng);
                s.target        = anchors[k];
                return s;
            };
        }
        return b;
    }
    if (name == "audio-tone") {
        M4_RETURN_IF_ERROR(need(Modality::Audio));
        const auto & e     = c.encoder(Modality::Audio);
        b.spec.modality    = Modality::Audio;
        b.spec.path        = Path::Encoder;
        b.spec.objective   = Objective::Classify;
        b.spec.out_dim     = 3;
        b.spec.labels      = {"low", "mid", "high"};
        const double nyq   = e.sample_rate / 2.0;
        const double hz[3] = {0.04 * nyq, 0.15 * nyq, 0.4 * nyq};
        b.gen              = [e, hz](Rng & rng) {
            Sample s;
            s.label           = static_cast<int32_t>(rng.below(3));
            const double f    = hz[s.label] * (0.95 + 0.1 * rng.uniform());
            const double ph   = 6.283185307179586 * rng.uniform();
            const double gain = 0.1 + 0.4 * rng.uniform();
            s.signal.resize(static_cast<size_t>(e.clip_samples));
            for (int64_t i = 0; i < e.clip_samples; ++i)
                s.signal[i] = static_cast<float>(
                    gain * std::sin(6.283185307179586 * f * double(i) / e.sample_rate + ph) + 0.05 * rng.normal());
            return s;
        };
        return b;
    }
    if (name == "text-first" || name == "text-successor") {
        b.spec.modality       = Modality::Text;
        b.spec.path           = Path::Backbone;
        const int64_t max_len = std::min<int64_t>(16, c.backbone.max_seq - 1);
        if (max_len < 6) return invalid_argument("synthetic task '" + name + "' needs max_seq ≥ 7");
        if (name == "text-first") {
            b.spec.objective         = Objective::Classify;
            b.spec.out_dim           = 4;
            b.spec.pool              = HeadPool::Last;
            b.spec.tokens_per_sample = 8;
            b.gen                    = [](Rng & rng) {
                Sample s;
                const int64_t n = 6 + rng.below(5);
                for (int64_t i = 0; i < n; ++i)
                    s.tokens.push_back(kFirstId + static_cast<int32_t>(rng.below(kTextRange)));
                s.label = (s.tokens[0] - kFirstId) % 4;
                return s;
            };
        } else {
            b.spec.objective         = Objective::LanguageModel;
            b.spec.tokens_per_sample = max_len;
            b.gen                    = [max_len](Rng & rng) {
                Sample s;
                const int64_t start = rng.below(kTextRange), n = max_len / 2 + rng.below(max_len / 2 + 1);
                for (int64_t i = 0; i < n; ++i)
                    s.tokens.push_back(kFirstId + static_cast<int32_t>((start + i) % kTextRange));
                s.loss_mask.assign(s.tokens.size(), 1);
                s.loss_mask[0] = 0;  // the first token is random: nothing to learn from predicting it
                return s;
            };
        }
        return b;
    }
    std::string all;
    for (const auto & n : synthetic_task_names()) all += (all.empty() ? "" : ", ") + n;
    return invalid_argument("unknown synthetic task '" + name + "' (known: " + all + ")");
}

}  // namespace

namespace {
const char * const kSummaries[][2] = {
    {"image-grid", "encoder/image  classify  which cell of a 2x2 grid is bright (4 classes)"},
    {"imu-activity", "encoder/imu    classify  1, 2, 4 or 8 oscillations per window (4 classes)"},
    {"imu-intensity", "encoder/imu    regress   amplitude of the oscillation"},
    {"imu-embed", "encoder/imu    embed     a fixed unit vector per activity (InfoNCE)"},
    {"audio-tone", "encoder/audio  classify  three tone pitches in noise"},
    {"text-first", "backbone       classify  class (id mod 4) of the first token; head on the last position"},
    {"text-successor", "backbone       lm        counting: each token is the previous one + 1 (mod 32)"},
    {"image-caption", "full/image     lm        caption tokens (row, column) of the bright cell of a 4x4 grid"},
    {"image-text", "encoder/image  contrast  4x4-grid images <-> their caption tokens (pretraining only)"},
};
}  // namespace

std::vector<std::string> synthetic_task_names() {
    std::vector<std::string> out;
    for (const auto & s : kSummaries) out.emplace_back(s[0]);
    return out;
}

std::vector<std::string> synthetic_task_summaries() {
    std::vector<std::string> out;
    for (const auto & s : kSummaries)
        out.push_back(std::string(s[0]) + std::string(16 - std::string(s[0]).size(), ' ') + s[1]);
    return out;
}

Result<std::unique_ptr<DataSource>> make_synthetic(const std::string & name, const model::ModelConfig & c,
                                                   uint64_t seed, int64_t eval_size) {
    M4_ASSIGN_OR_RETURN(Builder b, builder(name, c));
    return std::unique_ptr<DataSource>(new SyntheticSource(b.spec, b.gen, seed, eval_size));
}

}  // namespace m4::train
