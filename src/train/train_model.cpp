// TrainModel: parameters, binding of the weights the forward reads, bf16 copies (see train_model.h).
#include "train/train_model.h"

#include "base/thread_pool.h"

#include <algorithm>
#include <cmath>

#include "adapter/adapter.h"
#include "train/rng.h"

namespace m4::train {

using model::HeadType;
using model::Modality;
using model::Path;

const char * mode_name(Mode m) {
    return m == Mode::Full ? "full" : "adapter";
}

const char * objective_name(Objective o) {
    switch (o) {
        case Objective::LanguageModel:
            return "lm";
        case Objective::Classify:
            return "classify";
        case Objective::Regress:
            return "regress";
        case Objective::Embed:
            return "embed";
        case Objective::Contrastive:
            return "contrastive";
        case Objective::Reconstruct:
            return "reconstruct";
        case Objective::Draw:
            return "draw";
        case Objective::MelRegress:
            return "mel_regress";
    }
    return "?";
}

bool TaskSpec::has_head() const {
    return objective == Objective::Classify || objective == Objective::Regress || objective == Objective::Embed;
}

namespace {

Status check_task(const model::ModelConfig & c, const TaskSpec & t) {
    auto bad = [&](const std::string & m) { return invalid_argument("task '" + t.name + "': " + m); };
    if (t.objective == Objective::MelRegress || (t.path == Path::Generator && t.modality == Modality::Audio)) {
        if (t.path != Path::Generator || t.objective != Objective::MelRegress || t.modality != Modality::Audio)
            return bad(
                "the speech decoder trains with the mel_regress objective on the generator path (modality "
                "audio), and only it");
        if (!c.has_decoder(Modality::Audio))
            return incompatible("task '" + t.name + "': the firmware has no speech decoder (\"decoders.speech\")");
        return Status::ok();
    }
    if (t.path == Path::Generator || t.objective == Objective::Reconstruct) {
        if (t.path != Path::Generator || t.objective != Objective::Reconstruct)
            return bad("the generator path trains with the reconstruct objective, and only it");
        if (t.modality != Modality::Image) return bad("the generator path has an image decoder only");
        if (!c.has_decoder(Modality::Image))
            return incompatible("task '" + t.name + "': the firmware has no image decoder");
        return Status::ok();
    }
    if (t.objective == Objective::Draw || (t.path == Path::Full && t.modality == Modality::Text)) {
        if (t.objective != Objective::Draw || t.path != Path::Full || t.modality != Modality::Text)
            return bad(
                "the full path over text ends in the image decoder and trains with the draw objective, "
                "and only it");
        if (!c.has_draw_path())
            return incompatible("task '" + t.name +
                                "': the firmware has no image decoder with a projector from the backbone "
                                "(\"decoders.image.from_backbone\")");
        return Status::ok();
    }
    const bool needs_encoder = t.path != Path::Backbone;
    if (needs_encoder && (t.modality == Modality::Text || !c.has_encoder(t.modality)))
        return incompatible("task '" + t.name + "': the firmware has no " + model::modality_name(t.modality) +
                            " encoder");
    if (t.path == Path::Backbone && t.modality != Modality::Text) return bad("the backbone path takes text");
    if (t.objective == Objective::LanguageModel && t.path == Path::Encoder)
        return bad("language modelling needs the backbone or full path");
    if (t.objective == Objective::Contrastive && t.path != Path::Encoder)
        return bad("contrastive alignment is declared on the encoder path (the text tower is implied)");
    if (t.has_head() && t.out_dim <= 0) return bad("a head task needs out_dim > 0");
    if (t.objective == Objective::Classify && !t.labels.empty() && static_cast<int64_t>(t.labels.size()) != t.out_dim)
        return bad("labels and out_dim disagree");
    return Status::ok();
}

Tensor normal_tensor(Rng & rng, const Shape & s, double std) {
    Tensor t = Tensor::empty(DType::F32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(rng.normal() * std);
    return t;
}

}  // namespace

Result<std::unique_ptr<TrainModel>> TrainModel::create(const model::Model & base, const std::vector<TaskSpec> & tasks,
                                                       const ModelOptions & options) {
    std::unique_ptr<TrainModel> tm(new TrainModel(base));
    M4_RETURN_IF_ERROR(tm->init(tasks, options));
    return tm;
}

Status TrainModel::init(const std::vector<TaskSpec> & tasks, const ModelOptions & o) {
    const model::ModelConfig & c = base_.config();
    options_                     = o;
    tasks_                       = tasks;
    if (tasks.empty()) return invalid_argument("no training task");
    for (const auto & t : tasks) M4_RETURN_IF_ERROR(check_task(c, t));
    // The training graph has no class token, pre-norm or class-token pooling yet (docs/import.md):
    // refuse rather than train a different model. (All three GELU forms train.)
    for (const auto & t : tasks) {
        if (t.path == model::Path::Backbone || t.path == model::Path::Generator || !c.has_encoder(t.modality)) continue;
        const model::EncoderConfig & e = c.encoder(t.modality);
        const char * what              = e.cls_token                   ? "a class token (cls_token)"
                                         : e.pre_norm                  ? "a layernorm before the first layer (pre_norm)"
                                         : e.pool != model::Pool::Mean ? "class-token pooling (pool \"cls\")"
                                                                       : nullptr;
        if (what)
            return unsupported(std::string("training through the ") + model::modality_name(t.modality) +
                               " encoder: it has " + what +
                               ", which the training graph does not implement yet; backbone-path tasks train");
    }
    int heads = 0;
    for (const auto & t : tasks) heads += t.has_head();
    if (heads > 1) return invalid_argument("at most one task with a head per training run");
    if (o.head_hidden < 0 || o.head_hidden > model::kMaxHeadHidden)
        return invalid_argument("head hidden width " + std::to_string(o.head_hidden) + " is outside [0, " +
                                std::to_string(model::kMaxHeadHidden) + "]");
    if (o.mode == Mode::Adapter) {
        if (tasks.size() != 1) return invalid_argument("adapter training takes exactly one task");
        if (tasks[0].objective == Objective::Contrastive)
            return invalid_argument("contrastive alignment is a pretraining (full mode) objective");
        if (o.bf16) return invalid_argument("--bf16 is for full training; an adapter trains on the firmware's weights");
    }
    Rng rng(o.seed * 0x9e3779b97f4a7c15ull + 17);
    if (o.mode == Mode::Full) {
        // Every firmware tensor becomes an f32 master parameter; with bf16 the matrices (linear weights,
        // tok_embed) are read from bf16 copies, so a bf16 export is exactly the model that was trained.
        std::unordered_map<std::string, Tensor> shadow;
        for (const auto & spec : model::expected_tensors(c)) {
            const bool matrix =
                spec.role == model::TensorRole::LinearWeight || spec.role == model::TensorRole::Embedding;
            Param & p = params_.add(spec.name, base_.file().tensor(spec.name), matrix);
            if (o.bf16 && matrix) {  // linear weights and tok_embed (also the tied LM head)
                Tensor s = to_bf16(p.value);
                params_.alias(s.data(), &p);
                p.bf16_copy = s.bf16();
                shadows_.emplace_back(&p, s);
                shadow[spec.name] = s;
            }
        }
        model::bind_weights(
            c,
            [&](const std::string & n) {
                auto it = shadow.find(n);
                return it != shadow.end() ? it->second : params_.find(n)->value;
            },
            &weights_);
    } else {
        // The base is used in place: a copy of the weight structs (views into the mapped file).
        weights_           = base_.weights();
        const TaskSpec & t = tasks[0];
        if (!o.lora_targets.empty() && o.lora_targets != "none") {
            M4_ASSIGN_OR_RETURN(targets_, adapter::expand_targets(c, t.path, t.modality, o.lora_targets));
        }
        if (o.train_projector) {
            // The .m4a format carries LoRA pairs and a head only, so a learning projector is a LoRA
            // pair on the projector (exported like any other target).
            if (t.path != Path::Full) return invalid_argument("--train-projector needs a full-path task");
            const std::string n = std::string("projectors.") + model::modality_name(t.modality);
            if (std::find(targets_.begin(), targets_.end(), n) == targets_.end()) targets_.push_back(n);
        }
        if (!targets_.empty() && o.lora_rank <= 0) return invalid_argument("LoRA rank must be positive");
        for (const auto & name : targets_) {
            const model::Linear * lin = base_.weights().linears.at(name);
            // B = 0: the adapter starts as the identity (LoRA's initialisation).
            Param & a =
                params_.add("lora." + name + ".a",
                            normal_tensor(rng, {o.lora_rank, lin->in()}, 1.0 / std::sqrt(double(lin->in()))), true);
            Param & b = params_.add("lora." + name + ".b", Tensor::zeros(DType::F32, {lin->out(), o.lora_rank}), true);
            adapter_.lora[name] = model::LoraPair{a.value, b.value, o.lora_alpha / float(o.lora_rank)};
        }
    }
    for (const auto & t : tasks) {
        if (!t.has_head()) continue;
        const int64_t in = t.path == Path::Encoder ? c.embed_dim : c.backbone.width;
        auto & h         = adapter_.head;
        h.type           = t.objective == Objective::Classify  ? HeadType::Classify
                           : t.objective == Objective::Regress ? HeadType::Regress
                                                               : HeadType::Embed;
        h.pool           = t.path == Path::Encoder ? model::HeadPool::Mean : t.pool;
        // Parameter names are the adapter's tensor names (adapter.h): head.* for a linear head,
        // head.hidden.* and head.out.* for one with a hidden layer.
        const int64_t H = o.head_hidden;
        if (H > 0) {
            const double hidden_std = 1.0 / std::sqrt(double(in));
            h.hidden_w    = params_.add("head.hidden.weight", normal_tensor(rng, {H, in}, hidden_std), true).value;
            h.hidden_bias = params_.add("head.hidden.bias", Tensor::zeros(DType::F32, {H}), false).value.f32();
        }
        const int64_t last_in = H > 0 ? H : in;
        const std::string out = H > 0 ? "head.out" : "head";
        const double w_std    = 1.0 / std::sqrt(double(last_in));
        h.w = params_.add(out + ".weight", normal_tensor(rng, {t.out_dim, last_in}, w_std), true).value;
        if (h.type != HeadType::Embed)
            h.bias = params_.add(out + ".bias", Tensor::zeros(DType::F32, {t.out_dim}), false).value.f32();
    }
    for (const auto & t : tasks) {
        if ((t.objective == Objective::Embed || t.objective == Objective::Contrastive) && !logit_scale_) {
            Tensor s     = Tensor::empty(DType::F32, {1});
            s.f32()[0]   = std::log(1.0f / 0.07f);  // CLIP's initial temperature
            logit_scale_ = &params_.add("train.logit_scale", s, false);
        }
    }
    if (c.has_encoder(Modality::Audio)) audio_fe_.push_back(model::make_audio_front_end(c.encoder(Modality::Audio)));
    return Status::ok();
}

void TrainModel::refresh_shadows() {
    for (auto & [p, s] : shadows_) {
        const float * src = p->value.f32();
        uint16_t * dst    = s.bf16();
        M4_CHECK(p->bf16_copy == dst);
        ThreadPool::global().parallel_for(
            p->numel(),
            [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) dst[i] = f32_to_bf16(src[i]);
            },
            1 << 15);
    }
}

int64_t TrainModel::state_bytes() const {
    int64_t n = params_.numel() * 4 * 4;
    for (const auto & [p, s] : shadows_) n += static_cast<int64_t>(s.nbytes());
    return n;
}

bool TrainModel::encoder_learns(Modality m) const {
    if (options_.mode == Mode::Full) return true;
    const std::string pre = std::string("encoders.") + model::modality_name(m) + ".";
    for (const auto & t : targets_)
        if (t.rfind(pre, 0) == 0) return true;
    return false;
}

bool TrainModel::projector_learns(Modality m) const {
    if (options_.mode == Mode::Full) return true;
    const std::string name = std::string("projectors.") + model::modality_name(m);
    for (const auto & t : targets_)
        if (t == name) return true;
    return false;
}

bool TrainModel::decoder_learns() const {
    if (options_.mode == Mode::Full) return true;
    for (const auto & t : targets_)
        if (t.rfind("decoders.", 0) == 0) return true;
    return false;
}

bool TrainModel::backbone_learns() const {
    if (options_.mode == Mode::Full) return true;
    for (const auto & t : targets_)
        if (t.rfind("backbone.layers.", 0) == 0) return true;
    return false;
}

}  // namespace m4::train
