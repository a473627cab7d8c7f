#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

namespace m4::train {

nlohmann::json EvalResult::to_json() const {
    nlohmann::json j = {{"task", task}, {"loss", loss}, {"samples", samples}};
    if (accuracy >= 0) j["accuracy"] = accuracy;
    return j;
}

Trainer::Trainer(TrainModel & model, std::vector<DataSource *> sources, TrainerOptions options)
    : model_(model), sources_(std::move(sources)), o_(std::move(options)), rng_(o_.seed) {
    o_.schedule.total = o_.steps;  // the cosine spans the whole run
}

nlohmann::json Trainer::run_description() const {
    const ModelOptions & mo = model_.options();
    nlohmann::json tasks    = nlohmann::json::array();
    for (const auto * s : sources_)
        tasks.push_back({{"name", s->task().name}, {"objective", objective_name(s->task().objective)}});
    nlohmann::json j = {
        {"mode", mode_name(mo.mode)},
        {"base", model_.base().fingerprint()},
        {"tasks", tasks},
        {"bf16", mo.bf16},
        {"lora", {{"rank", mo.lora_rank}, {"alpha", mo.lora_alpha}, {"targets", model_.lora_targets()}}},
        {"init_seed", mo.seed},
        {"steps", o_.steps},
        {"batch_size", o_.batch_size},
        {"accum", o_.accum},
        {"lr", o_.schedule.peak_lr},
        {"warmup", o_.schedule.warmup},
        {"min_lr_ratio", o_.schedule.min_ratio},
        {"weight_decay", o_.adamw.weight_decay},
        {"clip", o_.clip},
        {"seed", o_.seed},
        {"parameters", model_.params().numel()}};
    if (!o_.source_weights.empty()) j["source_weights"] = o_.source_weights;
    if (!o_.source_batch.empty()) j["source_batch"] = o_.source_batch;
    for (auto it = o_.run_extra.begin(); it != o_.run_extra.end(); ++it) j[it.key()] = it.value();
    return j;
}

Result<std::vector<EvalResult>> Trainer::evaluate() {
    std::vector<EvalResult> out;
    for (auto * src : sources_) {
        const Batch & all = src->eval_set();
        if (all.empty()) continue;
        EvalResult e;
        e.task          = src->task().name;
        int64_t correct = 0, counted = 0;
        double loss = 0;
        for (size_t i = 0; i < all.size(); i += static_cast<size_t>(o_.eval_batch)) {
            Batch chunk(all.begin() + i, all.begin() + std::min(all.size(), i + static_cast<size_t>(o_.eval_batch)));
            M4_ASSIGN_OR_RETURN(StepStats st, model_.evaluate(src->task(), chunk));
            loss += st.loss * double(chunk.size());
            correct += st.correct;
            counted += st.counted;
            e.samples += static_cast<int64_t>(chunk.size());
        }
        e.loss     = loss / double(e.samples);
        e.accuracy = counted > 0 ? double(correct) / double(counted) : -1.0;
        out.push_back(e);
    }
    return out;
}

Status Trainer::step(TrainResult * r) {
    ParamStore & params = model_.params();
    params.zero_grad();
    double loss        = 0;
    const float weight = 1.0f / static_cast<float>(o_.accum);
    Batch batch;
    for (int64_t a = 0; a < o_.accum; ++a) {
        for (size_t i = 0; i < sources_.size(); ++i) {
            DataSource * src = sources_[i];
            const float w    = weight * (o_.source_weights.empty() ? 1.0f : o_.source_weights[i]);
            const int64_t n  = o_.source_batch.empty() || o_.source_batch[i] <= 0 ? o_.batch_size : o_.source_batch[i];
            M4_RETURN_IF_ERROR(src->next_batch(rng_, n, &batch));
            M4_ASSIGN_OR_RETURN(StepStats st, model_.forward_backward(src->task(), batch, w));
            loss += st.loss * w;
            r->samples += st.samples;
            r->tokens += st.tokens;
        }
    }
    if (!std::isfinite(loss))
        return Status(StatusCode::Internal, fmt::format("training diverged: loss {} at step {}", loss, state_.step));
    // Clipping folded into the update (no pass over the gradients); the update also rewrites the
    // bf16 copies the next step's matmuls read.
    const float scale = clip_scale(params.grad_norm(), o_.clip);
    const float lr    = o_.schedule.lr_at(state_.step);
    adamw_step(params, o_.adamw, lr, state_.step + 1, scale);
    state_.losses.push_back(static_cast<float>(loss));
    state_.step += 1;
    state_.rng = rng_.state();
    return Status::ok();
}

void Trainer::show_progress(int64_t step, double loss, double lr, const TrainResult & r, bool final) {
    if (o_.progress == Progress::Off || !o_.out) return;
    const int64_t done = step - r.start_step;
    const double rate  = r.seconds > 0 ? double(r.samples) / r.seconds : 0.0;
    const double eta   = done > 0 ? r.seconds / double(done) * double(o_.steps - step) : 0.0;
    const std::string eta_s =
        fmt::format("{}:{:02d}:{:02d}", int64_t(eta) / 3600, (int64_t(eta) / 60) % 60, int64_t(eta) % 60);
    if (bar_) {
        constexpr int kWidth = 24;
        const int filled     = static_cast<int>(kWidth * step / std::max<int64_t>(1, o_.steps));
        fmt::print(o_.out, "\r[{}{}] {}/{}  loss {:.4f}  lr {:.2e}  {:.1f} samples/s  ETA {} ",
                   std::string(filled, '#'), std::string(kWidth - filled, ' '), step, o_.steps, loss, lr, rate, eta_s);
        if (final) fmt::print(o_.out, "\n");
        std::fflush(o_.out);
    } else if (final || step % std::max<int64_t>(1, o_.log_every) == 0) {
        fmt::print(o_.out, "step {}/{} loss {:.4f} lr {:.2e} samples/s {:.1f} eta {}\n", step, o_.steps, loss, lr, rate,
                   eta_s);
        std::fflush(o_.out);
    }
}

Result<TrainResult> Trainer::run() {
    TrainResult r;
    if (o_.steps <= 0 || o_.batch_size <= 0 || o_.accum <= 0)
        return invalid_argument("steps, batch size and accumulation must be positive");
    if (sources_.empty()) return invalid_argument("no data source");
    if ((!o_.source_weights.empty() && o_.source_weights.size() != sources_.size()) ||
        (!o_.source_batch.empty() && o_.source_batch.size() != sources_.size()))
        return invalid_argument("source_weights / source_batch need one entry per data source");
    bar_       = o_.progress == Progress::Bar || (o_.progress == Progress::Auto && o_.out && isatty(fileno(o_.out)));
    state_     = TrainState{};
    state_.run = run_description();
    state_.rng = rng_.state();
    if (o_.resume && !o_.checkpoint.empty() && std::filesystem::exists(o_.checkpoint)) {
        const nlohmann::json expect = state_.run;
        M4_RETURN_IF_ERROR(load_checkpoint(o_.checkpoint, &model_.params(), &state_, &expect));
        rng_.set_state(state_.rng);
        model_.refresh_shadows();
        if (o_.out && o_.progress != Progress::Off)
            fmt::print(o_.out, "resuming {} at step {}/{}\n", o_.checkpoint, state_.step, o_.steps);
    }
    r.start_step = state_.step;
    auto save    = [&]() -> Status {
        return o_.checkpoint.empty() ? Status::ok() : save_checkpoint(o_.checkpoint, model_.params(), state_);
    };
    auto eval_now = [&]() -> Status {
        M4_ASSIGN_OR_RETURN(std::vector<EvalResult> ev, evaluate());
        nlohmann::json j = {{"step", state_.step}, {"results", nlohmann::json::array()}};
        for (const auto & e : ev) j["results"].push_back(e.to_json());
        state_.eval.push_back(j);
        r.eval = ev;
        for (const auto & h : hooks_) h(state_.step, ev);
        return Status::ok();
    };
    using Clock = std::chrono::steady_clock;
    while (state_.step < o_.steps) {
        if (o_.stop_after >= 0 && state_.step - r.start_step >= o_.stop_after) break;
        const auto t0 = Clock::now();
        M4_RETURN_IF_ERROR(step(&r));
        r.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
        show_progress(state_.step, state_.losses.back(), o_.schedule.lr_at(state_.step - 1), r,
                      state_.step == o_.steps);
        if (o_.eval_every > 0 && state_.step % o_.eval_every == 0 && state_.step < o_.steps)
            M4_RETURN_IF_ERROR(eval_now());
        if (o_.checkpoint_every > 0 && state_.step % o_.checkpoint_every == 0) M4_RETURN_IF_ERROR(save());
    }
    if (state_.step == o_.steps) {  // finished (not stopped by stop_after): final evaluation and checkpoint
        M4_RETURN_IF_ERROR(eval_now());
        M4_RETURN_IF_ERROR(save());
    }
    r.end_step = state_.step;
    r.losses   = state_.losses;
    return r;
}

}  // namespace m4::train
