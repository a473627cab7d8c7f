// Drawing for the generated image data: a small RGB/grey canvas, anti-aliased shapes and strokes,
// TrueType/OpenType text through stb_truetype (libstb-dev), Hershey stroke fonts
// (hershey-fonts-data), affine warps and resizing.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/rng.h"

namespace m4::data {

struct Canvas {
    int w = 0, h = 0, c = 1;
    std::vector<float> px;  // HWC, values in [0, 1]

    Canvas() = default;
    Canvas(int w_, int h_, int c_, float fill = 0.0f) : w(w_), h(h_), c(c_), px(size_t(w_) * h_ * c_, fill) {}
    float & at(int x, int y, int ch) { return px[(size_t(y) * w + x) * c + ch]; }
    float at(int x, int y, int ch) const { return px[(size_t(y) * w + x) * c + ch]; }
    // Alpha-blends `color` (c values) at coverage a ∈ [0, 1].
    void blend(int x, int y, const float * color, float a);
    std::vector<uint8_t> to_u8() const;
};

using Rgb = std::array<float, 3>;

enum class Shape { Circle, Square, Triangle, Diamond, Star, Cross, Hexagon, Heart };
inline constexpr int kShapeCount = 8;
const char * shape_name(Shape s);
// Fills `shape` centred at (cx, cy) with radius r (pixels), rotated by `angle` radians (4×4 supersampling).
void draw_shape(Canvas & cv, Shape shape, float cx, float cy, float r, float angle, const float * color);
// A segment of thickness `width` (round caps).
void draw_line(Canvas & cv, float x0, float y0, float x1, float y1, float width, const float * color);

// One loaded font file.
class Font {
  public:
    static Result<Font> load(const std::string & path);
    // Renders `text` (UTF-8) with its baseline at `px_height` pixels: a tight grey bitmap (ink = 1).
    Canvas render(const std::string & text, float px_height) const;
    bool has_glyph(uint32_t codepoint) const;

  private:
    std::shared_ptr<std::string> bytes_;
    std::shared_ptr<void> info_;  // stbtt_fontinfo
};

// Hershey font: glyphs for ASCII 32…126, each a list of strokes (poly-lines), y down.
struct HersheyGlyph {
    std::vector<std::vector<std::array<float, 2>>> strokes;
    float left = 0, right = 0;
};
Result<std::vector<HersheyGlyph>> load_hershey(const std::string & path);

// Resamples grey or RGB `src` into `dst` (bilinear) through the affine map dst→src:
// sx = m[0]·x + m[1]·y + m[2], sy = m[3]·x + m[4]·y + m[5]; outside pixels take `border`.
void warp_affine(const Canvas & src, Canvas & dst, const std::array<float, 6> & m, float border);
// Places `glyph` (ink = 1 on 0) into a w×h canvas: scaled to fit `fill` of the box, with random
// jitter of scale, rotation (±max_rot rad) and offset when `rng` is given; then ink/paper levels
// and Gaussian noise.
Canvas place_ink(const Canvas & glyph, int w, int h, float fill, Rng * rng, float max_rot, float noise);
Canvas resize(const Canvas & src, int w, int h);

}  // namespace m4::data
