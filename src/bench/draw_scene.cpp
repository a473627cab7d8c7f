#include "bench/draw_scene.h"

#include <fmt/format.h>

#include <chrono>

#include "bench/super_resolution.h"
#include "data/draw_scene.h"
#include "runtime/images.h"

namespace m4::bench {

void PaletteScore::add(const uint8_t * pred, const uint8_t * truth, int64_t pixels) {
    const std::vector<uint8_t> p = data::draw_scene_labels(pred, pixels), t = data::draw_scene_labels(truth, pixels);
    for (int64_t i = 0; i < pixels; ++i) {
        const bool right = p[i] == t[i];
        if (t[i] == 0)
            ++bg_total, bg_right += right;
        else
            ++fg_total, fg_right += right;
    }
}

Result<TaskPlan> make_draw_plan(const TaskFacts & facts, const model::ModelConfig & c, TaskPlan p) {
    const std::string & name = facts.name;
    if (facts.path_hint != "full")
        return invalid_argument("task '" + name + "': a draw task runs on the full path (path_hint \"full\")");
    if (!c.has_draw_path())
        return incompatible("task '" + name +
                            "': the firmware has no image decoder with a projector from the backbone "
                            "(\"decoders.image.from_backbone\")");
    p.spec.name              = name;
    p.spec.objective         = train::Objective::Draw;
    p.spec.path              = model::Path::Full;
    p.spec.modality          = model::Modality::Text;
    p.spec.foreground_weight = 4.0f;
    p.recipe.path            = model::Path::Full;
    p.recipe.objective       = train::Objective::Draw;
    p.train.targets          = "all";
    p.train.lr               = 1e-3f;
    p.train.batch            = 16;
    p.train.steps            = 300;
    p.approach =
        "LoRA on every linear of the full path into the image decoder (backbone, projector, decoder), "
        "pixel MSE against the drawing with object pixels weighted 4x";
    return p;
}

Result<std::vector<int32_t>> draw_tokens(const model::Model & fw, const data::Example & ex, const std::string & where) {
    if (ex.prompt.empty()) return invalid_argument(where + ": no description (prompt)");
    auto ids = fw.tokenizer().encode(std::string(ex.prompt));
    if (!ids) return ids.status().with_context(where);
    std::vector<int32_t> t = std::move(ids).value();
    const int64_t room     = fw.config().backbone.max_seq - 1 - fw.config().image_decoder->tokens();
    if (room <= 0) return invalid_argument(where + ": the backbone has no room for text before the decoder queries");
    if (int64_t(t.size()) > room) t.resize(size_t(room));
    return t;
}

Result<EvalReport> evaluate_draw_scene(const model::Model & fw, const adapter::Adapter * ad,
                                       const std::string & ad_path, const TaskPlan & plan, const std::string & data_dir,
                                       const EvalOptions & o) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!fw.config().has_draw_path())
        return incompatible(plan.facts.name +
                            ": the firmware has no image decoder with a projector from the backbone "
                            "(\"decoders.image.from_backbone\")");
    if (ad && (ad->manifest().output != adapter::OutputKind::Image || ad->manifest().path != model::Path::Full))
        return incompatible(ad_path + ": a " + adapter::output_kind_name(ad->manifest().output) + "-output " +
                            model::path_name(ad->manifest().path) + "-path adapter cannot score " + plan.facts.name +
                            " (it needs image output on the full path)");
    const int64_t S = fw.config().image_decoder->image_size, V = S * S * 3;
    // The train split's mean drawing (first 2000), a trivial baseline next to the blank image.
    std::vector<double> mean(static_cast<size_t>(V), 0.0);
    {
        M4_ASSIGN_OR_RETURN(data::Dataset tr, data::Dataset::open(data_dir, plan.facts.name, "train"));
        const size_t m = std::min<size_t>(tr.size(), 2000);
        for (size_t i = 0; i < m; ++i) {
            M4_ASSIGN_OR_RETURN(auto px, sr_original(tr.at(i), S, tr.path() + " #" + std::to_string(i)));
            for (int64_t k = 0; k < V; ++k) mean[k] += px[k];
        }
        for (double & v : mean) v /= double(std::max<size_t>(m, 1));
    }
    std::vector<uint8_t> mean_u8(static_cast<size_t>(V)), blank(static_cast<size_t>(V));
    for (int64_t k = 0; k < V; ++k) mean_u8[k] = static_cast<uint8_t>(std::lround(mean[k]));
    for (int64_t k = 0; k < V; ++k) blank[k] = data::draw_scene_palette()[0][k % 3];
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, plan.facts.name, o.split));
    size_t n = ds.size();
    if (o.limit > 0) n = std::min(n, static_cast<size_t>(o.limit));
    if (n == 0) return invalid_argument(ds.path() + ": no examples to score");
    PaletteScore model_s, blank_s, mean_s;
    const size_t batch = static_cast<size_t>(std::max<int64_t>(1, o.batch));
    for (size_t i0 = 0; i0 < n; i0 += batch) {
        const size_t i1 = std::min(n, i0 + batch);
        std::vector<model::Request> reqs;
        std::vector<std::vector<uint8_t>> truths;
        for (size_t i = i0; i < i1; ++i) {
            const std::string where = ds.path() + " #" + std::to_string(i);
            const data::Example ex  = ds.at(i);
            M4_ASSIGN_OR_RETURN(auto truth, sr_original(ex, S, where));
            model::Request r;
            r.adapter = ad ? &ad->weights() : nullptr;
            M4_ASSIGN_OR_RETURN(r.tokens, draw_tokens(fw, ex, where));
            reqs.push_back(std::move(r));
            blank_s.add(blank.data(), truth.data(), S * S);
            mean_s.add(mean_u8.data(), truth.data(), S * S);
            truths.push_back(std::move(truth));
        }
        M4_ASSIGN_OR_RETURN(auto outs, fw.run(model::Path::Full, model::Modality::Text, reqs));
        for (size_t k = 0; k < outs.size(); ++k) {
            const std::vector<uint8_t> y = runtime::image_to_u8(outs[k].image.data(), V);
            model_s.add(y.data(), truths[k].data(), S * S);
        }
    }
    EvalReport rep;
    rep.task = plan.facts.name, rep.split = o.split, rep.metric = "palette_agreement", rep.adapter = ad_path;
    if (ad)
        rep.adapter_bytes = static_cast<int64_t>(ad->file_size()), rep.adapter_params = adapter_parameter_count(*ad);
    rep.examples = static_cast<int64_t>(n), rep.total = static_cast<int64_t>(ds.size());
    rep.score       = model_s.agreement();
    rep.chance      = blank_s.agreement();
    rep.chance_rule = "an all-background (blank) image";
    rep.extra       = {{"background_agreement", model_s.background()},
                       {"object_agreement", model_s.objects()},
                       {"mean_image_palette_agreement", mean_s.agreement()},
                       {"object_pixel_share", double(model_s.fg_total) / double(model_s.fg_total + model_s.bg_total)}};
    rep.seconds     = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
}

}  // namespace m4::bench
