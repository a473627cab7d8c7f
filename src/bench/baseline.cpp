#include "bench/baseline.h"

#include "bench/draw_scene.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "adapter/adapter.h"
#include "base/crypto.h"
#include "base/mapped_file.h"
#include "bench/evaluate.h"
#include "train/export.h"
#include "train/trainer.h"

namespace m4::bench {
namespace {

namespace fs = std::filesystem;
using Clock  = std::chrono::steady_clock;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int64_t heads_for(int64_t width) {
    return std::max<int64_t>(2, width / 32);
}

nlohmann::json encoder_json(const model::EncoderConfig & e, const BaselineSize & s) {
    nlohmann::json j = {{"width", s.enc_width},
                        {"layers", s.enc_layers},
                        {"heads", heads_for(s.enc_width)},
                        {"ffn", s.enc_ffn},
                        {"norm_eps", e.norm_eps}};
    switch (e.modality) {
        case model::Modality::Image:
            j.update({{"image_size", e.image_size}, {"patch_size", e.patch_size}, {"channels", e.channels}});
            break;
        case model::Modality::Audio:
            j.update({{"sample_rate", e.sample_rate},
                      {"clip_samples", e.clip_samples},
                      {"n_fft", e.n_fft},
                      {"hop", e.hop},
                      {"n_mels", e.n_mels},
                      {"patch_frames", e.patch_frames}});
            break;
        default:  // IMU
            j.update({{"sample_rate", e.sample_rate},
                      {"window", e.window},
                      {"channels", e.channels},
                      {"patch_size", e.patch_size}});
            break;
    }
    return j;
}

nlohmann::json read_json(const std::string & path) {
    auto text = read_file_bytes(path);
    if (!text) return nullptr;
    try {
        return nlohmann::json::parse(*text);
    } catch (const std::exception &) {
        return nullptr;
    }
}

Status write_json(const std::string & path, const nlohmann::json & j) {
    const std::string text = j.dump(1) + "\n";
    if (const auto parent = fs::path(path).parent_path(); !parent.empty()) {
        std::error_code ec;
        fs::create_directories(parent, ec);
        if (ec) return io_error(parent.string() + ": cannot create the directory (" + ec.message() + ")");
    }
    return write_file_atomic(path, text.data(), text.size());
}

Status copy_over(const std::string & from, const std::string & to) {
    std::error_code ec;
    if (const auto parent = fs::path(to).parent_path(); !parent.empty()) fs::create_directories(parent, ec);
    const std::string tmp = to + ".tmp";
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(tmp, to, ec);
    if (ec) return io_error(to + ": cannot write (" + ec.message() + ")");
    return Status::ok();
}

int64_t file_bytes(const std::string & path) {
    std::error_code ec;
    const auto n = fs::file_size(path, ec);
    return ec ? -1 : static_cast<int64_t>(n);
}

// What one variant's training depends on: a stored variant is reused only when this matches.
struct VariantRun {
    BaselineVariant v;
    BaselineSize size;
    nlohmann::json description;
    std::string stem;  // <work>/<task>/<size>-lr<lr>-s<steps>
};

// The retrieval baseline's head: identity (embed_dim → embed_dim, no bias). Its two-tower model was
// trained contrastively, so the encoder's own normalised embedding is the image vector, ranked by
// the same scorer against the same model's text embeddings; the head exists because the scorer
// reads an adapter.
Status write_identity_embed_head(const model::Model & fw, const TaskPlan & plan, const std::string & path,
                                 const nlohmann::json & metrics) {
    adapter::Manifest m;
    m.name                 = plan.facts.name;
    m.task                 = adapter::Task::Embed;
    m.path                 = model::Path::Encoder;
    m.modality             = plan.spec.modality;
    m.firmware_fingerprint = fw.fingerprint();
    m.head_type            = model::HeadType::Embed;
    m.head_pool            = plan.spec.pool;
    m.head_in = m.head_out = fw.config().embed_dim;
    m.prompt               = plan.recipe.prompt;
    m.metrics              = metrics;
    Tensor w               = Tensor::empty(DType::F32, {m.head_out, m.head_in});
    std::fill(w.f32(), w.f32() + w.numel(), 0.0f);
    for (int64_t k = 0; k < m.head_out; ++k) w.f32()[k * m.head_in + k] = 1.0f;
    adapter::HeadTensors head;
    head.w = std::move(w);
    return adapter::write_adapter(path, m, {}, head);
}

// Scores a baseline model as `m4fw eval` does; img.draw_scene (its own val split) by palette agreement.
Result<EvalReport> evaluate_model(const model::Model & fw, const adapter::Adapter & ad, const std::string & ad_path,
                                  const TaskPlan & plan, const std::string & data_dir, EvalOptions eo) {
    if (plan.spec.objective != train::Objective::Draw) return evaluate_adapter(fw, ad, ad_path, plan, data_dir, eo);
    if (eo.validation) eo.split = "val", eo.validation = false, eo.limit = 500;
    return evaluate_draw_scene(fw, &ad, ad_path, plan, data_dir, eo);
}

// Trains one variant (or reuses its stored files) and scores it on the validation share.
Result<nlohmann::json> run_variant(const std::string & task, const VariantRun & run, const model::Model & m4,
                                   const BaselineOptions & o) {
    const std::string info_path = run.stem + ".json";
    if (nlohmann::json old = read_json(info_path); old.is_object() &&
                                                   old.value("description", nlohmann::json()) == run.description &&
                                                   fs::exists(run.stem + ".m4fw") && fs::exists(run.stem + ".m4a")) {
        if (!o.quiet) fmt::print(stderr, "{} {}: reusing {}\n", task, run.v.size, info_path);
        old["reused"] = true;
        return old;
    }
    const auto t0 = Clock::now();
    M4_ASSIGN_OR_RETURN(TaskPlan plan0, plan_task(o.data_dir, task, m4.config()));
    model::InitFirmware init;
    init.config            = run.description["architecture"];
    init.config["name"]    = "baseline-" + task;
    init.config["version"] = "1.0.0";
    const Tensor tok       = m4.file().tensor("tokenizer.model");
    init.tokenizer_model.assign(reinterpret_cast<const char *>(tok.data()), tok.nbytes());
    init.seed                   = o.seed;
    init.clean_norms            = true;
    init.provenance             = {{"kind", "task-specific baseline (random start)"}, {"task", task}};
    const std::string init_path = run.stem + ".init.m4fw";
    M4_RETURN_IF_ERROR(model::write_random_firmware(init, init_path, task + " baseline architecture").status());
    M4_ASSIGN_OR_RETURN(auto base, model::Model::load(init_path));
    M4_ASSIGN_OR_RETURN(TaskPlan plan, plan_task(o.data_dir, task, base->config()));
    // Retrieval: a two-tower model (encoder ↔ its own text tower) learns by contrastive alignment
    // of each train image with its caption; scored through an identity embedding head.
    const bool retrieval = plan.spec.objective == train::Objective::Embed;
    TaskPlan train_plan  = plan;
    if (retrieval) train_plan.spec.objective = train_plan.recipe.objective = train::Objective::Contrastive;
    SourceOptions so;
    so.val_share   = o.val_share;
    so.eval_size   = plan.train.eval_size;
    so.subset_seed = o.seed;
    M4_ASSIGN_OR_RETURN(auto src, make_task_source(train_plan, o.data_dir, *base, so));
    train::ModelOptions mo;
    mo.mode = train::Mode::Full;
    mo.seed = o.seed;
    M4_ASSIGN_OR_RETURN(auto tm, train::TrainModel::create(*base, {train_plan.spec}, mo));
    train::TrainerOptions to;
    to.steps              = run.description["steps"].get<int64_t>();
    to.batch_size         = run.description["batch"].get<int64_t>();
    to.schedule.peak_lr   = run.v.lr;
    to.schedule.warmup    = std::max<int64_t>(1, to.steps / 20);
    to.schedule.min_ratio = 0.1f;
    to.adamw.weight_decay = plan.train.weight_decay;
    to.seed               = o.seed;
    to.progress           = o.quiet ? train::Progress::Off : train::Progress::Lines;
    to.log_every          = std::max<int64_t>(10, to.steps / 10);
    if (!o.quiet)
        fmt::print(stderr, "{} {} (lr {}): {} parameters learn from scratch, {} steps × batch {}\n", task, run.v.size,
                   run.v.lr, tm->params().numel(), to.steps, to.batch_size);
    train::Trainer trainer(*tm, {src.get()}, to);
    M4_ASSIGN_OR_RETURN(train::TrainResult r, trainer.run());
    train::FirmwareExport fx;
    fx.name       = "baseline-" + task;
    fx.provenance = {{"kind", "task-specific baseline"},
                     {"task", task},
                     {"data",
                      {{"dir", o.data_dir},
                       {"split", "train (validation share held out)"},
                       {"manifest_sha256", run.description["data_sha256"]}}},
                     {"variant", run.description},
                     {"train_seconds", r.seconds}};
    M4_RETURN_IF_ERROR(train::export_firmware(*tm, run.stem + ".m4fw", fx));
    std::error_code ec;
    fs::remove(init_path, ec);
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(run.stem + ".m4fw"));
    nlohmann::json metrics = {{"trainer_validation", r.eval.empty() ? nlohmann::json::object() : r.eval[0].to_json()},
                              {"steps", r.end_step},
                              {"train_seconds", r.seconds}};
    if (retrieval)
        M4_RETURN_IF_ERROR(write_identity_embed_head(*fw, plan, run.stem + ".m4a", metrics));
    else
        M4_RETURN_IF_ERROR(export_task_adapter(*tm, plan, run.stem + ".m4a", task, metrics, fw->fingerprint()));
    M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(run.stem + ".m4a", *fw));
    EvalOptions eo;
    eo.split      = "train";
    eo.validation = true;
    eo.val_share  = o.val_share;
    eo.limit = o.val_limit >= 0 ? o.val_limit : plan.spec.objective == train::Objective::LanguageModel ? 200 : 1000;
    M4_ASSIGN_OR_RETURN(EvalReport v, evaluate_model(*fw, ad, run.stem + ".m4a", plan, o.data_dir, eo));
    int64_t params = 0;
    for (const auto & spec : model::expected_tensors(fw->config())) params += fw->file().tensor(spec.name).numel();
    nlohmann::json info = {{"description", run.description},
                           {"validation", v.to_json()},
                           {"train_seconds", r.seconds},
                           {"seconds", since(t0)},
                           {"parameters", params},
                           {"head_parameters", ad.manifest().head_out * (ad.manifest().head_in + 1)},
                           {"firmware_bytes", file_bytes(run.stem + ".m4fw")},
                           {"adapter_bytes", file_bytes(run.stem + ".m4a")},
                           {"tokenizer_bytes", int64_t(fw->file().tensor("tokenizer.model").nbytes())},
                           {"fingerprint", fw->fingerprint()},
                           {"final_loss", r.losses.empty() ? 0.0 : double(r.losses.back())}};
    M4_RETURN_IF_ERROR(write_json(info_path, info));
    if (!o.quiet)
        fmt::print(stderr, "{} {} (lr {}): validation {} {:.4f} in {:.1f} s\n", task, run.v.size, run.v.lr, v.metric,
                   v.score, since(t0));
    return info;
}

}  // namespace

std::vector<BaselineSize> default_baseline_sizes() {
    // "m" is the m4 firmware's own encoder size (and its backbone's); "s" half the width, fewer layers.
    return {{"s", 64, 2, 256, 128, 2, 352}, {"m", 128, 3, 512, 256, 4, 704}};
}

std::vector<BaselineVariant> baseline_grid(const BaselineOptions & o) {
    if (!o.grid.empty()) return o.grid;
    std::vector<BaselineVariant> g;
    for (const auto & s : o.sizes.empty() ? default_baseline_sizes() : o.sizes)
        for (float lr : {1e-3f, 3e-3f}) g.push_back({s.name, lr, 0});
    return g;
}

Result<nlohmann::json> baseline_architecture(const TaskPlan & plan, const model::ModelConfig & fw,
                                             const BaselineSize & s) {
    const model::Path path = plan.spec.path;
    nlohmann::json enc     = nlohmann::json::object();
    // img.draw_scene: a text model of the decoder's size grid + an image decoder (the encoder size's
    // width / depth) with its projector from the backbone, the m4 decoder's grid; no encoder.
    const bool draw = plan.spec.objective == train::Objective::Draw;
    nlohmann::json dec;
    if (draw) {
        if (!fw.has_draw_path())
            return invalid_argument(plan.facts.name + ": the firmware has no image decoder with a projector");
        const auto & d = *fw.image_decoder;
        dec            = {{"image",
                           {{"image_size", d.image_size},
                            {"patch_size", d.patch_size},
                            {"channels", d.channels},
                            {"width", s.enc_width},
                            {"layers", s.enc_layers},
                            {"heads", heads_for(s.enc_width)},
                            {"ffn", s.enc_ffn},
                            {"norm_eps", d.norm_eps},
                            {"from_backbone", {{"queries", d.tokens()}}}}}};
    }
    if (path != model::Path::Backbone && !draw) {
        const auto m = plan.spec.modality;
        if (!fw.has_encoder(m))
            return invalid_argument(plan.facts.name + ": the firmware has no " + model::modality_name(m) + " encoder");
        if (s.enc_width <= 0 || s.enc_layers <= 0 || s.enc_ffn <= 0)
            return invalid_argument("baseline size '" + s.name + "': encoder width, layers and ffn must be positive");
        enc[model::modality_name(m)] = encoder_json(fw.encoder(m), s);
    }
    nlohmann::json bb;
    // Retrieval ranks captions by the model's own text embeddings: its backbone is a real text tower.
    const bool text_tower = plan.spec.objective == train::Objective::Embed;
    if (path == model::Path::Encoder && !text_tower) {
        // The format requires a backbone; an encoder-path model never runs it, so it is a 1-layer stub.
        bb = {{"width", 8}, {"layers", 1}, {"heads", 2}, {"kv_heads", 2}, {"ffn", 16}};
    } else {
        if (s.dec_width <= 0 || s.dec_layers <= 0 || s.dec_ffn <= 0)
            return invalid_argument("baseline size '" + s.name + "': decoder width, layers and ffn must be positive");
        const int64_t h = heads_for(s.dec_width);
        bb              = {{"width", s.dec_width},
                           {"layers", s.dec_layers},
                           {"heads", h},
                           {"kv_heads", h % 2 == 0 ? h / 2 : h},
                           {"ffn", s.dec_ffn}};
    }
    bb.update({{"max_seq", fw.backbone.max_seq},
               {"rope_theta", fw.backbone.rope_theta},
               {"norm_eps", fw.backbone.norm_eps},
               {"tie_lm_head", true}});
    nlohmann::json arch = {{"embed_dim", fw.embed_dim}, {"backbone", bb}, {"encoders", enc}};
    if (draw) arch["decoders"] = dec;
    return arch;
}

Result<std::string> data_fingerprint(const std::string & data_dir, const std::string & task) {
    const std::string path = data_dir + "/" + task + "/manifest.json";
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    return to_hex(sha256(text.data(), text.size()));
}

Result<nlohmann::json> train_baseline(const std::string & task, const BaselineOptions & o) {
    const auto t0 = Clock::now();
    M4_ASSIGN_OR_RETURN(auto m4, model::Model::load(o.firmware));
    M4_ASSIGN_OR_RETURN(TaskPlan plan, plan_task(o.data_dir, task, m4->config()));
    M4_ASSIGN_OR_RETURN(std::string data_sha, data_fingerprint(o.data_dir, task));
    const auto sizes       = o.sizes.empty() ? default_baseline_sizes() : o.sizes;
    const std::string work = o.work_dir + "/" + task;
    std::error_code ec;
    fs::create_directories(work, ec);
    if (ec) return io_error(work + ": cannot create the directory (" + ec.message() + ")");
    std::vector<nlohmann::json> tried;
    for (const BaselineVariant & v : baseline_grid(o)) {
        auto it = std::find_if(sizes.begin(), sizes.end(), [&](const BaselineSize & s) { return s.name == v.size; });
        if (it == sizes.end()) return invalid_argument("baseline grid: no size named '" + v.size + "'");
        VariantRun run{v, *it, {}, {}};
        M4_ASSIGN_OR_RETURN(nlohmann::json arch, baseline_architecture(plan, m4->config(), *it));
        const int64_t steps =
            v.steps > 0 ? v.steps : std::max<int64_t>(1, int64_t(o.steps_mult * double(plan.train.steps) + 0.5));
        run.description = {{"task", task},
                           {"size", v.size},
                           {"lr", v.lr},
                           {"steps", steps},
                           {"batch", o.batch > 0 ? o.batch : plan.train.batch},
                           {"seed", o.seed},
                           {"val_share", o.val_share},
                           {"data_sha256", data_sha},
                           {"m4_fingerprint", m4->fingerprint()},
                           {"architecture", arch}};
        run.stem        = fmt::format("{}/{}-lr{}-s{}", work, v.size, v.lr, steps);
        M4_ASSIGN_OR_RETURN(nlohmann::json info, run_variant(task, run, *m4, o));
        info["stem"] = run.stem;
        tried.push_back(std::move(info));
    }
    if (tried.empty()) return invalid_argument("baseline grid: no variant to train");
    const bool higher = higher_is_better(plan.metrics.at(0));
    size_t best       = 0;
    for (size_t i = 1; i < tried.size(); ++i) {
        const double a = tried[i]["validation"]["score"].get<double>(), b = tried[best]["validation"]["score"];
        if (higher ? a > b : a < b) best = i;
    }
    const std::string stem    = tried[best]["stem"];
    const std::string fw_path = o.model_dir + "/" + task + ".m4fw", ad_path = o.model_dir + "/" + task + ".m4a";
    M4_RETURN_IF_ERROR(copy_over(stem + ".m4fw", fw_path));
    M4_RETURN_IF_ERROR(copy_over(stem + ".m4a", ad_path));
    // The one evaluation that reads the test split: the chosen model, loaded from its final files.
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(fw_path));
    M4_ASSIGN_OR_RETURN(TaskPlan tplan, plan_task(o.data_dir, task, fw->config()));
    M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(ad_path, *fw));
    EvalOptions eo;
    eo.split = "test";
    eo.limit = o.test_limit >= 0 ? o.test_limit : plan.eval_limit;
    M4_ASSIGN_OR_RETURN(EvalReport test, evaluate_model(*fw, ad, ad_path, tplan, o.data_dir, eo));
    nlohmann::json tuning = nlohmann::json::array();
    double train_seconds = 0, tuning_seconds = 0;
    int64_t updates = 0;
    for (const auto & t : tried) {
        tuning.push_back({{"size", t["description"]["size"]},
                          {"lr", t["description"]["lr"]},
                          {"steps", t["description"]["steps"]},
                          {"batch", t["description"]["batch"]},
                          {"validation", t["validation"]["score"]},
                          {"validation_examples", t["validation"]["examples"]},
                          {"parameters", t["parameters"]},
                          {"train_seconds", t["train_seconds"]},
                          {"seconds", t["seconds"]}});
        train_seconds += t["train_seconds"].get<double>();
        tuning_seconds += t["seconds"].get<double>();
        updates += t["description"]["steps"].get<int64_t>();
    }
    const nlohmann::json & chosen = tried[best];
    nlohmann::json out            = {
                   {"task", task},
                   {"group", plan.facts.group},
                   {"path", model::path_name(plan.spec.path)},
                   {"metric", test.metric},
                   {"higher_is_better", higher},
                   {"score", test.score},
                   {"chance", test.chance},
                   {"test", test.to_json()},
                   {"m4_firmware", {{"path", o.firmware}, {"fingerprint", m4->fingerprint()}}},
                   {"data", {{"dir", o.data_dir}, {"manifest_sha256", data_sha}}},
                   {"model",
                    {{"firmware", fw_path},
                     {"adapter", ad_path},
                     {"fingerprint", fw->fingerprint()},
                     {"firmware_bytes", file_bytes(fw_path)},
                     {"adapter_bytes", file_bytes(ad_path)},
                     {"parameters", chosen["parameters"]},
                     {"tokenizer_bytes", chosen["tokenizer_bytes"]},
                     {"architecture", chosen["description"]["architecture"]},
                     {"size", chosen["description"]["size"]},
                     {"lr", chosen["description"]["lr"]},
                     {"steps", chosen["description"]["steps"]},
                     {"batch", chosen["description"]["batch"]},
                     {"validation", chosen["validation"]["score"]}}},
                   {"tuning",
                    {{"variants", tuning},
                     {"variant_count", tuning.size()},
                     {"updates", updates},
                     {"train_seconds", train_seconds},
                     {"seconds", tuning_seconds},
                     {"adapter_plan_steps", plan.train.steps},
                     {"val_share", o.val_share}}},
                   {"wall_seconds", since(t0)},
                   {"created", utc_now()},
                   {"command", o.command},
                   {"eval_command",
                    fmt::format("m4fw eval --firmware {} --adapter {} --task {} --data {}{} --json", fw_path, ad_path, task,
                                o.data_dir, eo.limit > 0 ? fmt::format(" --limit {}", eo.limit) : std::string())}};
    M4_RETURN_IF_ERROR(write_json(o.out_dir + "/" + task + ".json", out));
    return out;
}

}  // namespace m4::bench
