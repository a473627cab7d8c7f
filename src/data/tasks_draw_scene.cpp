// img.draw_scene: scene descriptions → flat drawings of the scene (see draw_scene.h). Scenes of
// 1–3 objects from the scene generator of img.count / mm.caption; the prompt is the generator's
// caption ("a large red circle at the top left and a small blue star in the center"), the payload
// the 32×32 drawing. Splits: train / val / test from three private seed streams; the test split
// also drops any drawing that occurs in train or val (content hash), so no test description is
// seen in training.
#include <fmt/format.h>

#include "data/draw_scene.h"
#include "data/task.h"

namespace m4::data {

namespace {

// The scene generator's colours (scenes.cpp) at 8 bits.
std::array<uint8_t, 3> u8(float r, float g, float b) {
    auto q = [](float v) { return static_cast<uint8_t>(std::lround(v * 255)); };
    return {q(r), q(g), q(b)};
}

Status build_draw_scene(TaskOutput & out) {
    const struct {
        const char * split;
        size_t n;
    } parts[] = {{"train", out.n(6000)}, {"val", out.n(500)}, {"test", out.n(1000)}};
    for (const auto & p : parts) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(p.split));
        Rng rng = out.rng(std::string("draw-") + p.split);
        for (size_t i = 0; i < p.n; ++i) {
            Scene s      = make_scene(rng, 1, 3, kDrawSceneSize);
            ExampleIn ex = ExampleIn::image(draw_scene_flat(s, kDrawSceneSize), kDrawSceneSize, kDrawSceneSize, 3);
            ex.prompt    = scene_caption(s);
            ex.group     = static_cast<uint32_t>(s.objects.size());
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
        out.progress(fmt::format("{}: {} scenes", p.split, wr->count()));
    }
    out.extra()["payload"] = "the flat 32x32 drawing of the described scene (draw_scene.h); prompt = description";
    out.extra()["palette"] = "0 background (black), 1..8 red green blue yellow purple cyan orange white";
    out.extra()["metric_rule"] =
        "palette_agreement: ½ (background pixels right + object pixels right), pixels "
        "quantised to the nearest palette colour";
    out.extra()["baseline"] = "all-background image; a task-specific model trained from scratch (m4fw baseline train)";
    return Status::ok();
}

}  // namespace

const std::vector<std::array<uint8_t, 3>> & draw_scene_palette() {
    static const std::vector<std::array<uint8_t, 3>> p = [] {
        std::vector<std::array<uint8_t, 3>> v{{0, 0, 0}};
        for (const Rgb & c : scene_colors()) v.push_back(u8(c[0], c[1], c[2]));
        return v;
    }();
    return p;
}

std::vector<uint8_t> draw_scene_flat(const Scene & s, int size) {
    std::vector<uint8_t> labels(static_cast<size_t>(size * size), 0);
    const float cellsz = size / 3.0f;
    const float one[1] = {1.0f};
    for (const auto & o : s.objects) {
        Canvas cover(size, size, 1);
        const float r = cellsz * (o.large ? 0.42f : 0.26f);
        draw_shape(cover, o.shape, (o.cell % 3 + 0.5f) * cellsz, (o.cell / 3 + 0.5f) * cellsz, r, 0.0f, one);
        for (int64_t i = 0; i < size * size; ++i)
            if (cover.px[i] >= 0.5f) labels[i] = static_cast<uint8_t>(1 + o.color);
    }
    std::vector<uint8_t> px(static_cast<size_t>(size * size * 3));
    const auto & pal = draw_scene_palette();
    for (int64_t i = 0; i < size * size; ++i)
        for (int k = 0; k < 3; ++k) px[i * 3 + k] = pal[labels[i]][k];
    return px;
}

std::vector<uint8_t> draw_scene_labels(const uint8_t * px, int64_t n) {
    const auto & pal = draw_scene_palette();
    std::vector<uint8_t> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        int best = 0, best_d = 1 << 30;
        for (size_t c = 0; c < pal.size(); ++c) {
            int d = 0;
            for (int k = 0; k < 3; ++k) d += (int(px[i * 3 + k]) - pal[c][k]) * (int(px[i * 3 + k]) - pal[c][k]);
            if (d < best_d) best_d = d, best = int(c);
        }
        out[i] = static_cast<uint8_t>(best);
    }
    return out;
}

void register_draw_scene_task(std::vector<Task> & t) {
    t.push_back({{"img.draw_scene",
                  "image",
                  Modality::Image,
                  "draw",
                  "full",
                  "palette_agreement",
                  "generated",
                  "a scene description (1-3 coloured shapes on a 3×3 grid) → its 32×32 flat drawing; full path into "
                  "the image decoder",
                  "generator seeds; drawings that occur in train or val",
                  {}},
                 build_draw_scene});
}

}  // namespace m4::data
