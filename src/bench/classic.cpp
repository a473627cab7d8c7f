#include "bench/classic.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "base/mapped_file.h"
#include "bench/baseline.h"
#include "bench/samples.h"
#include "bench/task_plan.h"
#include "data/dataset.h"
#include "model/frontend.h"

namespace m4::bench {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Raw features of one split: computed on demand, cached when they fit in 256 MiB.
class Features {
  public:
    Features(const data::Dataset & ds, const model::EncoderConfig & c, std::vector<uint32_t> idx)
        : ds_(ds), c_(c), idx_(std::move(idx)) {
        if (c.modality == model::Modality::Audio) fe_ = model::make_audio_front_end(c);
        dim_   = c.modality == model::Modality::Audio ? c.n_frames() * c.n_mels : c.input_values();
        cache_ = double(idx_.size()) * double(dim_) * 4.0 <= 256.0 * 1048576.0;
    }
    int64_t dim() const { return dim_; }
    size_t size() const { return idx_.size(); }
    int32_t label(size_t k) const { return ds_.at(idx_[k]).label; }
    // Features of item k (a view valid until the next call when not cached).
    Result<const float *> get(size_t k) {
        if (cache_ && !store_.empty() && filled_[k]) return store_.data() + k * size_t(dim_);
        const data::Example ex = ds_.at(idx_[k]);
        M4_ASSIGN_OR_RETURN(std::vector<float> sig,
                            model_signal(ex, ds_.modality(), c_, ds_.path() + " #" + std::to_string(idx_[k])));
        if (c_.modality == model::Modality::Audio) {
            tmp_.assign(size_t(dim_), 0.0f);
            model::audio_log_mel(c_, fe_, sig.data(), int64_t(sig.size()), tmp_.data());
        } else {
            tmp_ = std::move(sig);
        }
        if (int64_t(tmp_.size()) != dim_) return invalid_argument(ds_.path() + ": feature size differs");
        if (!cache_) return tmp_.data();
        if (store_.empty()) {
            store_.assign(idx_.size() * size_t(dim_), 0.0f);
            filled_.assign(idx_.size(), 0);
        }
        std::copy(tmp_.begin(), tmp_.end(), store_.begin() + k * size_t(dim_));
        filled_[k] = 1;
        return store_.data() + k * size_t(dim_);
    }

  private:
    const data::Dataset & ds_;
    model::EncoderConfig c_;
    std::vector<uint32_t> idx_;
    model::AudioFrontEnd fe_;
    int64_t dim_ = 0;
    bool cache_  = false;
    std::vector<float> store_, tmp_;
    std::vector<uint8_t> filled_;
};

struct Linear {
    int64_t C = 0, D = 0;
    std::vector<float> w, b;  // [C, D], [C]
};

// Argmax class of standardised features x.
int32_t predict(const Linear & m, const float * x) {
    int32_t best = 0;
    double bv    = -1e300;
    for (int64_t c = 0; c < m.C; ++c) {
        double s = m.b[c];
        for (int64_t d = 0; d < m.D; ++d) s += double(m.w[c * m.D + d]) * x[d];
        if (s > bv) bv = s, best = int32_t(c);
    }
    return best;
}

Result<double> accuracy(const Linear & m, Features & f, const std::vector<float> & mu, const std::vector<float> & sd) {
    if (f.size() == 0) return 0.0;
    int64_t hit = 0;
    std::vector<float> x(static_cast<size_t>(f.dim()));
    for (size_t k = 0; k < f.size(); ++k) {
        M4_ASSIGN_OR_RETURN(const float * raw, f.get(k));
        for (int64_t d = 0; d < f.dim(); ++d) x[d] = (raw[d] - mu[d]) / sd[d];
        hit += predict(m, x.data()) == f.label(k);
    }
    return double(hit) / double(f.size());
}

}  // namespace

Result<nlohmann::json> train_classic(const std::string & task, const std::string & data_dir,
                                     const model::ModelConfig & fw, const ClassicOptions & o) {
    const auto t0 = Clock::now();
    M4_ASSIGN_OR_RETURN(TaskPlan plan, plan_task(data_dir, task, fw));
    if (plan.spec.path != model::Path::Encoder || plan.spec.objective != train::Objective::Classify)
        return invalid_argument(task + ": the logistic-regression baseline is for encoder-path classification");
    M4_ASSIGN_OR_RETURN(data::Dataset train, data::Dataset::open(data_dir, task, "train"));
    M4_ASSIGN_OR_RETURN(data::Dataset test, data::Dataset::open(data_dir, task, "test"));
    const model::EncoderConfig & c = fw.encoder(plan.spec.modality);
    std::vector<uint32_t> tr, va, te(test.size());
    for (uint32_t i = 0; i < train.size(); ++i) (in_validation(train.at(i), o.val_share) ? va : tr).push_back(i);
    std::iota(te.begin(), te.end(), 0u);
    Features ftr(train, c, tr), fva(train, c, va), fte(test, c, te);
    const int64_t D = ftr.dim(), C = plan.spec.out_dim;
    // standardisation on the training share
    std::vector<double> s1(static_cast<size_t>(D), 0.0), s2(static_cast<size_t>(D), 0.0);
    std::vector<int64_t> counts(static_cast<size_t>(C), 0);
    for (size_t k = 0; k < ftr.size(); ++k) {
        M4_ASSIGN_OR_RETURN(const float * x, ftr.get(k));
        for (int64_t d = 0; d < D; ++d) s1[d] += x[d], s2[d] += double(x[d]) * x[d];
        const int32_t y = ftr.label(k);
        if (y < 0 || y >= C) return invalid_argument(train.path() + ": a label outside the task's classes");
        ++counts[size_t(y)];
    }
    const double n = std::max<double>(1.0, double(ftr.size()));
    std::vector<float> mu(static_cast<size_t>(D)), sd(static_cast<size_t>(D));
    for (int64_t d = 0; d < D; ++d) {
        mu[d] = float(s1[d] / n);
        sd[d] = float(std::sqrt(std::max(1e-8, s2[d] / n - double(mu[d]) * mu[d])));
    }
    nlohmann::json variants = nlohmann::json::array();
    Linear best;
    double best_val = -1;
    float best_lr   = 0;
    std::vector<float> x(static_cast<size_t>(D)), p(static_cast<size_t>(C));
    for (float lr : o.lrs) {
        const auto tv = Clock::now();
        Linear m{C, D, std::vector<float>(size_t(C * D), 0.0f), std::vector<float>(size_t(C), 0.0f)};
        std::vector<float> vw(m.w.size(), 0.0f), vb(static_cast<size_t>(C), 0.0f), gw(m.w.size()),
            gb(static_cast<size_t>(C));
        std::mt19937_64 rng(o.seed);
        std::vector<size_t> order(ftr.size());
        std::iota(order.begin(), order.end(), size_t(0));
        const int64_t steps_per_epoch = (int64_t(order.size()) + o.batch - 1) / o.batch;
        const int64_t total           = std::max<int64_t>(1, steps_per_epoch * o.epochs);
        int64_t step                  = 0;
        for (int64_t e = 0; e < o.epochs; ++e) {
            std::shuffle(order.begin(), order.end(), rng);
            for (size_t at = 0; at < order.size(); at += size_t(o.batch), ++step) {
                std::fill(gw.begin(), gw.end(), 0.0f);
                std::fill(gb.begin(), gb.end(), 0.0f);
                const size_t end = std::min(order.size(), at + size_t(o.batch));
                for (size_t q = at; q < end; ++q) {
                    M4_ASSIGN_OR_RETURN(const float * raw, ftr.get(order[q]));
                    for (int64_t d = 0; d < D; ++d) x[d] = (raw[d] - mu[d]) / sd[d];
                    double mx = -1e300;
                    for (int64_t k = 0; k < C; ++k) {
                        double s = m.b[k];
                        for (int64_t d = 0; d < D; ++d) s += double(m.w[k * D + d]) * x[d];
                        p[k] = float(s);
                        mx   = std::max(mx, s);
                    }
                    double z = 0;
                    for (int64_t k = 0; k < C; ++k) z += std::exp(double(p[k]) - mx);
                    const int32_t y = ftr.label(order[q]);
                    for (int64_t k = 0; k < C; ++k) {
                        const float g = float(std::exp(double(p[k]) - mx) / z) - (k == y ? 1.0f : 0.0f);
                        gb[k] += g;
                        for (int64_t d = 0; d < D; ++d) gw[k * D + d] += g * x[d];
                    }
                }
                const float inv = 1.0f / float(end - at);
                const float cur = lr * 0.5f * (1.0f + std::cos(3.14159265f * float(step) / float(total)));
                for (size_t i = 0; i < m.w.size(); ++i) {
                    vw[i] = 0.9f * vw[i] + gw[i] * inv + o.l2 * m.w[i];
                    m.w[i] -= cur * vw[i];
                }
                for (int64_t k = 0; k < C; ++k) {
                    vb[k] = 0.9f * vb[k] + gb[k] * inv;
                    m.b[k] -= cur * vb[k];
                }
            }
        }
        M4_ASSIGN_OR_RETURN(double v, accuracy(m, fva, mu, sd));
        variants.push_back({{"lr", lr}, {"validation", v}, {"seconds", since(tv)}});
        fmt::print(stderr, "{} logistic regression lr {}: validation accuracy {:.4f} ({:.1f} s)\n", task, lr, v,
                   since(tv));
        if (v > best_val) best_val = v, best = m, best_lr = lr;
    }
    M4_ASSIGN_OR_RETURN(double score, accuracy(best, fte, mu, sd));  // the one read of the test split
    const int32_t major = int32_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
    int64_t major_hits  = 0;
    for (size_t k = 0; k < fte.size(); ++k) major_hits += fte.label(k) == major;
    M4_ASSIGN_OR_RETURN(std::string data_sha, data_fingerprint(data_dir, task));
    const char * feat  = plan.spec.modality == model::Modality::Image   ? "normalised pixels"
                         : plan.spec.modality == model::Modality::Audio ? "log-mel spectrogram"
                                                                        : "raw IMU window";
    nlohmann::json out = {{"task", task},
                          {"kind", "logistic regression"},
                          {"features", fmt::format("{} ({} values, standardised on the training share)", feat, D)},
                          {"metric", "accuracy"},
                          {"higher_is_better", true},
                          {"score", score},
                          {"chance", fte.size() ? double(major_hits) / double(fte.size()) : 0.0},
                          {"test_examples", fte.size()},
                          {"validation", best_val},
                          {"lr", best_lr},
                          {"variants", variants},
                          {"epochs", o.epochs},
                          {"batch", o.batch},
                          {"l2", o.l2},
                          {"train_examples", ftr.size()},
                          {"parameters", C * (D + 1)},
                          {"bytes_f32", 4 * C * (D + 1)},
                          {"data", {{"dir", data_dir}, {"manifest_sha256", data_sha}}},
                          {"wall_seconds", since(t0)}};
    if (!o.out.empty()) {
        const std::string text = out.dump(1) + "\n";
        M4_RETURN_IF_ERROR(write_file_atomic(o.out, text.data(), text.size()));
    }
    return out;
}

}  // namespace m4::bench
