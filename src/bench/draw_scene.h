// img.draw_scene (docs/benchmark.md): the full path into the image decoder — a scene description →
// backbone → projector → IMG-Dec → an image — scored by palette agreement with the renderer's
// ground truth.
//
// palette_agreement: every pixel of an output image (8-bit, as `m4fw run --out` writes it) is
// quantised to the nearest palette colour (data::draw_scene_palette: the black background and the 8
// scene colours) and compared with the ground truth's label map (the stored drawing, which holds
// palette colours only). Over the split, the background pixels and the object pixels are counted
// apart and the score is ½ (background right / background pixels + object right / object pixels):
// a blank (all-background) image scores 0.5 exactly, whatever the share of background, and a
// perfect drawing 1.
#pragma once

#include <vector>

#include "bench/evaluate.h"
#include "bench/task_plan.h"

namespace m4::bench {

struct PaletteScore {
    int64_t bg_right = 0, bg_total = 0, fg_right = 0, fg_total = 0;
    void add(const uint8_t * pred, const uint8_t * truth, int64_t pixels);  // [pixels, 3] 8-bit RGB each
    double background() const { return bg_total ? double(bg_right) / double(bg_total) : 0.0; }
    double objects() const { return fg_total ? double(fg_right) / double(fg_total) : 0.0; }
    double agreement() const { return 0.5 * (background() + objects()); }
};

// The plan of a `draw` task (make_plan's branch): the Draw objective on the full path over text,
// LoRA on every linear of the backbone, the decoder's projector and the decoder.
Result<TaskPlan> make_draw_plan(const TaskFacts & facts, const model::ModelConfig & c, TaskPlan p);

// Description tokens of an example as training and scoring use them (cut to what the backbone
// holds before the decoder's queries).
Result<std::vector<int32_t>> draw_tokens(const model::Model & fw, const data::Example & ex, const std::string & where);

// Scores the firmware alone (`ad` null) or with an image-output adapter on the task's split `o.split`
// (the first `o.limit` examples). Headline: palette_agreement; chance: the all-background image;
// extra: background / object agreement of the model, and of the train split's mean image.
Result<EvalReport> evaluate_draw_scene(const model::Model & fw, const adapter::Adapter * ad,
                                       const std::string & ad_path, const TaskPlan & plan, const std::string & data_dir,
                                       const EvalOptions & o);

}  // namespace m4::bench
