// Generated scenes of coloured shapes on a 3×3 grid (CLEVR-like, in 2-D) with exact descriptions:
// captions, question/answer pairs and counts are derived from the scene graph, so they are
// correct by construction. Used by img.count, mm.caption, mm.vqa, mm.retrieval and pretraining.
#pragma once

#include <string>
#include <vector>

#include "data/raster.h"
#include "data/rng.h"

namespace m4::data {

struct SceneObject {
    Shape shape;
    int color  = 0;  // index into scene_colors()
    bool large = false;
    int cell   = 0;  // 0 … 8, row-major on the 3×3 grid
};

struct Scene {
    std::vector<SceneObject> objects;  // sorted by cell
    Canvas image;                      // size × size × 3
};

const std::vector<std::string> & scene_color_names();
const std::vector<Rgb> & scene_colors();  // RGB in [0, 1], same order as the names
// A scene of n_min … n_max objects (distinct cells) drawn at `size` pixels.
Scene make_scene(Rng & rng, int n_min, int n_max, int size);
std::string cell_name(int cell);                   // "top left", "center", …
std::string object_phrase(const SceneObject & o);  // "large red circle"
// "a large red circle at the top left and a small blue star in the center"
std::string scene_caption(const Scene & s);
std::string number_word(int n);

struct Qa {
    std::string question, answer;
};
// One random question about the scene, with its answer (types: count, count-of-shape, colour,
// shape-at, exists, where, size).
Qa scene_question(const Scene & s, Rng & rng);

}  // namespace m4::data
