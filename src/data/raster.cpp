#include "data/raster.h"

#include <stb/stb_truetype.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "base/mapped_file.h"

namespace m4::data {

void Canvas::blend(int x, int y, const float * color, float a) {
    if (x < 0 || y < 0 || x >= w || y >= h || a <= 0) return;
    a = std::min(a, 1.0f);
    for (int k = 0; k < c; ++k) at(x, y, k) = at(x, y, k) * (1 - a) + color[k] * a;
}

std::vector<uint8_t> Canvas::to_u8() const {
    std::vector<uint8_t> o(px.size());
    for (size_t i = 0; i < px.size(); ++i)
        o[i] = static_cast<uint8_t>(std::lround(std::clamp(px[i], 0.0f, 1.0f) * 255));
    return o;
}

const char * shape_name(Shape s) {
    static const char * names[] = {"circle", "square", "triangle", "diamond", "star", "cross", "hexagon", "heart"};
    return names[static_cast<int>(s)];
}

namespace {

// Is the point (u, v) (shape frame, radius 1) inside the shape?
bool inside(Shape s, float u, float v) {
    const float pi = 3.14159265f;
    switch (s) {
        case Shape::Circle:
            return u * u + v * v <= 1;
        case Shape::Square:
            return std::abs(u) <= 0.8f && std::abs(v) <= 0.8f;
        case Shape::Diamond:
            return std::abs(u) + std::abs(v) <= 1;
        case Shape::Cross:
            return (std::abs(u) <= 0.3f && std::abs(v) <= 1) || (std::abs(v) <= 0.3f && std::abs(u) <= 1);
        case Shape::Triangle:
        case Shape::Hexagon:
        case Shape::Star: {
            const int n   = s == Shape::Triangle ? 3 : s == Shape::Hexagon ? 6 : 5;
            float ang     = std::atan2(u, -v);  // 0 at the top
            float r       = std::sqrt(u * u + v * v);
            float sector  = 2 * pi / n;
            float a       = std::fmod(ang + 2 * pi + sector / 2, sector) - sector / 2;
            float apothem = std::cos(pi / n);
            if (s != Shape::Star) return r * std::cos(a) <= apothem;
            // Star: radius interpolates between the outer tip (1) and the inner notch (0.45).
            float t = std::abs(a) / (sector / 2);
            return r <= 1.0f * (1 - t) + 0.45f * t;
        }
        case Shape::Heart: {
            float x = u * 1.2f, y = -v * 1.2f + 0.25f;
            float q = x * x + y * y - 1;
            return q * q * q - x * x * y * y * y <= 0;
        }
    }
    return false;
}

}  // namespace

void draw_shape(Canvas & cv, Shape shape, float cx, float cy, float r, float angle, const float * color) {
    const float ca = std::cos(angle), sa = std::sin(angle);
    int x0 = std::max(0, int(cx - r * 1.5f)), x1 = std::min(cv.w - 1, int(cx + r * 1.5f) + 1);
    int y0 = std::max(0, int(cy - r * 1.5f)), y1 = std::min(cv.h - 1, int(cy + r * 1.5f) + 1);
    for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
            int hits = 0;
            for (int sy = 0; sy < 4; ++sy)
                for (int sx = 0; sx < 4; ++sx) {
                    float dx = (x + (sx + 0.5f) / 4 - cx) / r, dy = (y + (sy + 0.5f) / 4 - cy) / r;
                    float u = ca * dx + sa * dy, v = -sa * dx + ca * dy;
                    hits += inside(shape, u, v);
                }
            cv.blend(x, y, color, hits / 16.0f);
        }
}

void draw_line(Canvas & cv, float x0, float y0, float x1, float y1, float width, const float * color) {
    const float hw = width / 2;
    int bx0 = std::max(0, int(std::min(x0, x1) - hw - 1)), bx1 = std::min(cv.w - 1, int(std::max(x0, x1) + hw + 1));
    int by0 = std::max(0, int(std::min(y0, y1) - hw - 1)), by1 = std::min(cv.h - 1, int(std::max(y0, y1) + hw + 1));
    const float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = by0; y <= by1; ++y)
        for (int x = bx0; x <= bx1; ++x) {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t  = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0f, 1.0f) : 0.0f;
            float ex = px - t * dx, ey = py - t * dy;
            float d = std::sqrt(ex * ex + ey * ey);
            float a = std::clamp(hw + 0.5f - d, 0.0f, 1.0f);
            if (a > 0) {
                // max-blend so overlapping segments of one stroke do not darken the joints
                for (int k = 0; k < cv.c; ++k) {
                    float & p = cv.at(x, y, k);
                    float v   = p * (1 - a) + color[k] * a;
                    p         = color[k] >= p ? std::max(p, v) : std::min(p, v);
                }
            }
        }
}

Result<Font> Font::load(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
    Font f;
    f.bytes_          = std::make_shared<std::string>(std::move(bytes));
    auto info         = std::make_shared<stbtt_fontinfo>();
    const auto * data = reinterpret_cast<const unsigned char *>(f.bytes_->data());
    int off           = stbtt_GetFontOffsetForIndex(data, 0);
    if (off < 0 || !stbtt_InitFont(info.get(), data, off))
        return invalid_argument(path + ": not a TrueType/OpenType font");
    f.info_ = info;
    return f;
}

bool Font::has_glyph(uint32_t cp) const {
    return stbtt_FindGlyphIndex(static_cast<stbtt_fontinfo *>(info_.get()), static_cast<int>(cp)) != 0;
}

Canvas Font::render(const std::string & text, float px_height) const {
    auto * info = static_cast<stbtt_fontinfo *>(info_.get());
    float scale = stbtt_ScaleForPixelHeight(info, px_height);
    int ascent, descent, gap;
    stbtt_GetFontVMetrics(info, &ascent, &descent, &gap);
    std::vector<uint32_t> cps;
    for (size_t i = 0; i < text.size();) {
        unsigned char c = text[i];
        uint32_t cp     = c;
        int len         = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        if (len > 1) {
            cp = c & (0x3f >> (len - 1));
            for (int k = 1; k < len && i + k < text.size(); ++k) cp = (cp << 6) | (text[i + k] & 0x3f);
        }
        cps.push_back(cp);
        i += len;
    }
    float pen = 2;
    int width = 4;
    for (size_t i = 0; i < cps.size(); ++i) {
        int adv, lsb;
        stbtt_GetCodepointHMetrics(info, cps[i], &adv, &lsb);
        pen += adv * scale;
        if (i + 1 < cps.size()) pen += scale * stbtt_GetCodepointKernAdvance(info, cps[i], cps[i + 1]);
    }
    width          = int(std::ceil(pen)) + 4;
    const int base = int(std::ceil(ascent * scale)) + 2;
    const int hgt  = base + int(std::ceil(-descent * scale)) + 2;
    Canvas cv(width, hgt, 1, 0.0f);
    pen = 2;
    for (size_t i = 0; i < cps.size(); ++i) {
        int adv, lsb, x0, y0, x1, y1;
        stbtt_GetCodepointHMetrics(info, cps[i], &adv, &lsb);
        stbtt_GetCodepointBitmapBoxSubpixel(info, cps[i], scale, scale, pen - std::floor(pen), 0, &x0, &y0, &x1, &y1);
        int gw = x1 - x0, gh = y1 - y0;
        if (gw > 0 && gh > 0) {
            std::vector<unsigned char> bmp(size_t(gw) * gh);
            stbtt_MakeCodepointBitmapSubpixel(info, bmp.data(), gw, gh, gw, scale, scale, pen - std::floor(pen), 0,
                                              cps[i]);
            for (int y = 0; y < gh; ++y)
                for (int x = 0; x < gw; ++x) {
                    int cx = int(std::floor(pen)) + x0 + x, cy = base + y0 + y;
                    if (cx >= 0 && cy >= 0 && cx < cv.w && cy < cv.h)
                        cv.at(cx, cy, 0) = std::max(cv.at(cx, cy, 0), bmp[size_t(y) * gw + x] / 255.0f);
                }
        }
        pen += adv * scale;
        if (i + 1 < cps.size()) pen += scale * stbtt_GetCodepointKernAdvance(info, cps[i], cps[i + 1]);
    }
    return cv;
}

Result<std::vector<HersheyGlyph>> load_hershey(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    // A glyph: 5-char number, 3-char vertex count, then that many coordinate pairs (each char minus
    // 'R'); " R" lifts the pen. Long glyphs continue on the next line(s).
    std::string s;
    for (char c : text)
        if (c != '\n' && c != '\r') s.push_back(c);
    std::vector<HersheyGlyph> glyphs;
    size_t pos = 0;
    while (pos + 8 <= s.size()) {
        int count = std::atoi(s.substr(pos + 5, 3).c_str());
        if (count <= 0 || pos + 8 + size_t(count) * 2 > s.size()) return invalid_argument(path + ": malformed glyph");
        const char * v = s.data() + pos + 8;
        HersheyGlyph g;
        g.left  = float(v[0] - 'R');
        g.right = float(v[1] - 'R');
        g.strokes.emplace_back();
        for (int k = 1; k < count; ++k) {
            char a = v[2 * k], b = v[2 * k + 1];
            if (a == ' ' && b == 'R') {
                g.strokes.emplace_back();
                continue;
            }
            g.strokes.back().push_back({float(a - 'R'), float(b - 'R')});
        }
        std::erase_if(g.strokes, [](const auto & st) { return st.empty(); });
        glyphs.push_back(std::move(g));
        pos += 8 + size_t(count) * 2;
    }
    if (glyphs.size() < 95) return invalid_argument(path + ": fewer than 95 glyphs (not an ASCII Hershey font)");
    return glyphs;
}

void warp_affine(const Canvas & src, Canvas & dst, const std::array<float, 6> & m, float border) {
    for (int y = 0; y < dst.h; ++y)
        for (int x = 0; x < dst.w; ++x) {
            float sx = m[0] * (x + 0.5f) + m[1] * (y + 0.5f) + m[2] - 0.5f;
            float sy = m[3] * (x + 0.5f) + m[4] * (y + 0.5f) + m[5] - 0.5f;
            int ix = int(std::floor(sx)), iy = int(std::floor(sy));
            float fx = sx - ix, fy = sy - iy;
            for (int k = 0; k < dst.c; ++k) {
                auto get = [&](int xx, int yy) {
                    return (xx < 0 || yy < 0 || xx >= src.w || yy >= src.h) ? border
                                                                            : src.at(xx, yy, std::min(k, src.c - 1));
                };
                float v = get(ix, iy) * (1 - fx) * (1 - fy) + get(ix + 1, iy) * fx * (1 - fy) +
                          get(ix, iy + 1) * (1 - fx) * fy + get(ix + 1, iy + 1) * fx * fy;
                dst.at(x, y, k) = v;
            }
        }
}

Canvas resize(const Canvas & src, int w, int h) {
    // Area-average when shrinking (supersample 4×4), bilinear otherwise.
    Canvas dst(w, h, src.c);
    const float fx = float(src.w) / w, fy = float(src.h) / h;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < src.c; ++k) {
                float acc = 0;
                for (int sy = 0; sy < 4; ++sy)
                    for (int sx = 0; sx < 4; ++sx) {
                        float u = (x + (sx + 0.5f) / 4) * fx - 0.5f, v = (y + (sy + 0.5f) / 4) * fy - 0.5f;
                        int iu  = std::clamp(int(std::floor(u)), 0, src.w - 1),
                            iv  = std::clamp(int(std::floor(v)), 0, src.h - 1);
                        int iu1 = std::min(iu + 1, src.w - 1), iv1 = std::min(iv + 1, src.h - 1);
                        float a = std::clamp(u - iu, 0.0f, 1.0f), b = std::clamp(v - iv, 0.0f, 1.0f);
                        acc += src.at(iu, iv, k) * (1 - a) * (1 - b) + src.at(iu1, iv, k) * a * (1 - b) +
                               src.at(iu, iv1, k) * (1 - a) * b + src.at(iu1, iv1, k) * a * b;
                    }
                dst.at(x, y, k) = acc / 16;
            }
    return dst;
}

Canvas place_ink(const Canvas & glyph, int w, int h, float fill, Rng * rng, float max_rot, float noise) {
    // Ink bounding box of the glyph.
    int x0 = glyph.w, y0 = glyph.h, x1 = -1, y1 = -1;
    for (int y = 0; y < glyph.h; ++y)
        for (int x = 0; x < glyph.w; ++x)
            if (glyph.at(x, y, 0) > 0.1f) {
                x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
            }
    if (x1 < 0) x0 = y0 = 0, x1 = glyph.w - 1, y1 = glyph.h - 1;
    const float bw = float(x1 - x0 + 1), bh = float(y1 - y0 + 1);
    float s   = fill * std::min(w / bw, h / bh);  // glyph px per output px inverse
    float rot = 0, ox = 0, oy = 0;
    if (rng) {
        s *= float(rng->uniform(0.8, 1.05));
        rot = float(rng->uniform(-max_rot, max_rot));
        ox  = float(rng->uniform(-0.08, 0.08) * w);
        oy  = float(rng->uniform(-0.08, 0.08) * h);
    }
    const float cx = (x0 + x1 + 1) / 2.0f, cy = (y0 + y1 + 1) / 2.0f;
    const float c = std::cos(rot) / s, sn = std::sin(rot) / s;
    const float dx = w / 2.0f + ox, dy = h / 2.0f + oy;
    // dst (x, y) → src: R(-rot)/s · (x − dx, y − dy) + (cx, cy)
    std::array<float, 6> m = {c, sn, cx - c * dx - sn * dy, -sn, c, cy + sn * dx - c * dy};
    Canvas out(w, h, 1);
    warp_affine(glyph, out, m, 0.0f);
    float paper = 0.0f, ink = 1.0f;
    if (rng) {
        paper = float(rng->uniform(0.0, 0.3));
        ink   = float(rng->uniform(0.7, 1.0));
        if (rng->chance(0.5)) {  // dark ink on light paper half of the time
            paper = 1 - paper;
            ink   = 1 - ink;
        }
    }
    for (float & p : out.px) {
        p = paper + (ink - paper) * p;
        if (rng && noise > 0) p += float(rng->normal() * noise);
        p = std::clamp(p, 0.0f, 1.0f);
    }
    return out;
}

}  // namespace m4::data
