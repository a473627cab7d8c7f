// img.draw_scene (full path into the image decoder): a scene description → the image the scene
// renderer draws of it (docs/benchmark.md). The target is the scene drawn flat: every object in
// its palette colour, hard-edged (a pixel is the object's when at least half of its 4×4 subsamples
// fall inside the shape), at its cell's centre, radius 0.42 (large) or 0.26 (small) of a cell, on
// a black background — so the image is a function of the description, and its label map (palette
// index per pixel: 0 background, 1 + colour index) is recovered exactly from it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "data/scenes.h"

namespace m4::data {

inline constexpr int kDrawSceneSize = 32;  // the stored images' side

// Background (index 0) and the 8 scene colours (1 + scene_color_names() index), 8-bit RGB.
const std::vector<std::array<uint8_t, 3>> & draw_scene_palette();
// The flat, hard-edged drawing of `s`'s objects, [size, size, 3] 8-bit RGB.
std::vector<uint8_t> draw_scene_flat(const Scene & s, int size);
// Per pixel of px [n, 3] (8-bit RGB) the nearest palette index (squared RGB distance; ties to the
// lower index).
std::vector<uint8_t> draw_scene_labels(const uint8_t * px, int64_t n);

}  // namespace m4::data
