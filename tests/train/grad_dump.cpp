// m4_grad_dump CASES.json — for the PyTorch autograd test (test_autograd.py): per case, builds a
// TrainModel on the given firmware, gives its parameters random values, runs forward + backward on
// a random batch, and writes what the independent reference needs to recompute the same loss and
// its gradients from the files alone:
//   <out>/<name>.m4a | .m4fw   the trained parameters through the real exporters
//   <out>/<name>.s<i>.npy      sample i's modality signal
//   <out>/<name>.json          the samples' tokens / labels / targets / masks, the loss, the
//                              parameter names, the InfoNCE log-temperature
//   <out>/<name>.g.<param>.npy the gradient of every parameter
//   <out>/<name>.v.<param>.npy the head's values of a full-mode run (no exporter writes them)
// Case fields: name, mode (full|adapter), objective (lm|classify|regress|embed|contrastive), path,
// modality, out_dim, pool (mean|last), rank, alpha, targets, batch, seed; optional: tokens (every
// sample's text length, default 3 + i % 3), bf16 (train on bf16 weight copies), time_steps (after
// the dump, time that many whole updates — zero grads, forward + backward, clip at 1, AdamW,
// refresh of the bf16 copies, as Trainer::step does — and add their milliseconds to the json as
// "update_ms": bench/torch compares them with PyTorch's on the same batch).
#include <fmt/format.h>

#include <chrono>

#include "base/mapped_file.h"
#include "runtime/inputs.h"
#include "train/export.h"
#include "train/optim.h"
#include "train/rng.h"

using namespace m4;
using namespace m4::train;

namespace {

Result<Objective> parse_objective(const std::string & s) {
    for (int i = 0; i <= static_cast<int>(Objective::Reconstruct); ++i)
        if (s == objective_name(static_cast<Objective>(i))) return static_cast<Objective>(i);
    return invalid_argument("bad objective " + s);
}

Sample random_sample(const model::ModelConfig & c, const TaskSpec & t, Rng & rng, int64_t n_tokens) {
    Sample s;
    if (t.path == model::Path::Generator) {  // an input image on the decoder's grid and a target image
        const int64_t n = c.image_decoder->input_values();
        for (int64_t i = 0; i < n; ++i) s.signal.push_back(rng.uniform(-1.0f, 1.0f));
        for (int64_t i = 0; i < n; ++i) s.target.push_back(rng.uniform(-1.0f, 1.0f));
        return s;
    }
    if (t.path != model::Path::Backbone) {
        const auto & ec = c.encoder(t.modality);
        int64_t n       = ec.image_size * ec.image_size * 3;
        float amp       = 1.0f;
        if (t.modality == model::Modality::Audio) n = ec.clip_samples * 4 / 5, amp = 0.5f;
        if (t.modality == model::Modality::Imu) n = (ec.window - 3) * 6;
        for (int64_t i = 0; i < n; ++i) s.signal.push_back(rng.uniform(-amp, amp));
    }
    if (t.path != model::Path::Encoder || t.objective == Objective::Contrastive)
        for (int64_t i = 0; i < n_tokens; ++i)
            s.tokens.push_back(static_cast<int32_t>(4 + rng.below(c.text.vocab_size - 4)));
    if (t.objective == Objective::LanguageModel) {
        s.loss_mask.assign(s.tokens.size(), 1);
        if (!s.loss_mask.empty()) s.loss_mask[0] = 0;
    }
    if (t.objective == Objective::Classify) s.label = static_cast<int32_t>(rng.below(t.out_dim));
    if (t.objective == Objective::Regress || t.objective == Objective::Embed)
        for (int64_t i = 0; i < t.out_dim; ++i) s.target.push_back(rng.uniform(-1.0f, 1.0f));
    return s;
}

Status run_case(const model::Model & fw, const nlohmann::json & c, const std::string & out) {
    const std::string name = c.at("name").get<std::string>();
    TaskSpec t;
    t.name = name;
    M4_ASSIGN_OR_RETURN(t.objective, parse_objective(c.at("objective").get<std::string>()));
    if (!model::parse_path(c.at("path").get<std::string>(), &t.path)) return invalid_argument(name + ": bad path");
    if (!model::parse_modality(c.at("modality").get<std::string>(), &t.modality))
        return invalid_argument(name + ": bad modality");
    t.out_dim = c.value("out_dim", 0);
    t.pool    = c.value("pool", "mean") == "last" ? model::HeadPool::Last : model::HeadPool::Mean;
    ModelOptions o;
    o.mode              = c.at("mode").get<std::string>() == "full" ? Mode::Full : Mode::Adapter;
    o.lora_rank         = c.value("rank", 3);
    o.lora_alpha        = c.value("alpha", 6.0f);
    o.lora_targets      = c.value("targets", "all");
    const uint64_t seed = c.value("seed", uint64_t{1});
    o.seed              = seed;
    o.bf16              = c.value("bf16", false);
    o.head_hidden       = c.value("head_hidden", int64_t{0});
    M4_ASSIGN_OR_RETURN(auto tm, TrainModel::create(fw, {t}, o));
    // Random parameter values: LoRA B (zero at init) and every master in full mode moved.
    Rng rng(seed * 7919 + 1);
    for (auto & p : tm->params().params()) {
        const bool lora_b = p.name.size() > 2 && p.name.compare(p.name.size() - 2, 2, ".b") == 0;
        const double std  = o.mode == Mode::Full ? 0.02 : lora_b || p.name == "head.hidden.bias" ? 0.2 : 0.0;
        for (int64_t i = 0; i < p.numel(); ++i) p.value.f32()[i] += static_cast<float>(rng.normal() * std);
    }
    Batch batch;
    const int64_t n_tokens = c.value("tokens", int64_t{0});
    for (int64_t i = 0; i < c.value("batch", 3); ++i)
        batch.push_back(random_sample(fw.config(), t, rng, n_tokens > 0 ? n_tokens : 3 + i % 3));
    tm->refresh_shadows();  // the bf16 copies of the moved masters
    tm->params().zero_grad();
    M4_ASSIGN_OR_RETURN(StepStats st, tm->forward_backward(t, batch, 1.0f));
    nlohmann::json meta = {
        {"loss", st.loss}, {"samples", nlohmann::json::array()}, {"params", nlohmann::json::array()}};
    if (o.mode == Mode::Full) {
        meta["export"] = out + "/" + name + ".m4fw";
        M4_RETURN_IF_ERROR(export_firmware(*tm, meta["export"].get<std::string>(), {}));
    } else {
        meta["export"] = out + "/" + name + ".m4a";
        M4_RETURN_IF_ERROR(export_adapter(*tm, meta["export"].get<std::string>(), {.name = name}));
    }
    for (size_t i = 0; i < batch.size(); ++i) {
        const Sample & s = batch[i];
        nlohmann::json j = {{"tokens", s.tokens}, {"label", s.label}, {"target", s.target}, {"loss_mask", s.loss_mask}};
        if (!s.signal.empty()) {
            const std::string p        = fmt::format("{}/{}.s{}.npy", out, name, i);
            std::vector<int64_t> shape = {static_cast<int64_t>(s.signal.size())};
            if (t.modality == model::Modality::Image) {
                const int64_t S = t.path == model::Path::Generator ? fw.config().image_decoder->image_size
                                                                   : fw.config().encoder(t.modality).image_size;
                shape           = {S, S, 3};
            }
            if (t.modality == model::Modality::Imu) shape = {static_cast<int64_t>(s.signal.size()) / 6, 6};
            M4_RETURN_IF_ERROR(runtime::write_npy_f32(p, s.signal.data(), shape));
            j["signal"] = p;
        }
        meta["samples"].push_back(j);
    }
    for (const auto & p : tm->params().params()) {
        meta["params"].push_back(p.name);
        if (p.name == "train.logit_scale") meta["logit_scale"] = p.value.f32()[0];
        if (o.mode == Mode::Full && p.name.rfind("head.", 0) == 0)  // a full run's head is in no export
            M4_RETURN_IF_ERROR(runtime::write_npy_f32(fmt::format("{}/{}.v.{}.npy", out, name, p.name), p.value.f32(),
                                                      p.value.shape().to_vector()));
        M4_RETURN_IF_ERROR(runtime::write_npy_f32(fmt::format("{}/{}.g.{}.npy", out, name, p.name), p.grad.f32(),
                                                  p.value.shape().to_vector()));
    }
    meta["update_ms"] = nlohmann::json::array();
    for (int64_t step = 1; step <= c.value("time_steps", int64_t{0}); ++step) {
        const auto t0 = std::chrono::steady_clock::now();
        tm->params().zero_grad();
        M4_RETURN_IF_ERROR(tm->forward_backward(t, batch, 1.0f).status());
        clip_grad_norm(tm->params(), 1.0f);
        adamw_step(tm->params(), AdamW{}, 1e-4f, step);
        tm->refresh_shadows();
        meta["update_ms"].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    const std::string text = meta.dump(1);
    return write_file_atomic(out + "/" + name + ".json", text.data(), text.size());
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc != 2) {
        fmt::print(stderr, "usage: m4_grad_dump CASES.json\n");
        return 2;
    }
    try {
        auto text = read_file_bytes(argv[1]);
        if (!text) throw std::runtime_error(text.status().message());
        const nlohmann::json j = nlohmann::json::parse(*text);
        auto fw                = model::Model::load(j.at("firmware").get<std::string>());
        if (!fw) throw std::runtime_error(fw.status().message());
        for (const auto & c : j.at("cases")) {
            Status st = run_case(**fw, c, j.at("out_dir").get<std::string>());
            if (!st.is_ok()) {
                fmt::print(stderr, "m4_grad_dump: {}: {}\n", c.value("name", "?"), st.message());
                return 1;
            }
        }
    } catch (const std::exception & e) {
        fmt::print(stderr, "m4_grad_dump: {}\n", e.what());
        return 1;
    }
    return 0;
}
