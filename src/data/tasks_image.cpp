// Image tasks. Payloads are u8 HWC at a stored resolution (28×28 grey, 32×32, 32×128 grey or
// 64×64 RGB); the firmware's front end resizes them to its own grid.
#include <fmt/format.h>

#include "data/corpus.h"
#include "data/raster.h"
#include "data/scenes.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace {

// --- img.fashion_mnist: the official Fashion-MNIST split (real) -------------------------------
Status build_fashion(TaskOutput & out) {
    const std::string dir = "/usr/share/datasets/fashion-mnist/";
    out.set_labels(
        {"t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"});
    for (const char * split : {"train", "test"}) {
        const std::string pre = std::string(split) == "train" ? "train" : "t10k";
        M4_ASSIGN_OR_RETURN(auto img, read_gz(dir + pre + "-images-idx3-ubyte.gz"));
        M4_ASSIGN_OR_RETURN(auto lab, read_gz(dir + pre + "-labels-idx1-ubyte.gz"));
        if (img.size() < 16 || lab.size() < 8) return invalid_argument(dir + pre + ": truncated IDX file");
        auto be32 = [](const std::vector<uint8_t> & b, size_t o) {
            return uint32_t(b[o]) << 24 | uint32_t(b[o + 1]) << 16 | uint32_t(b[o + 2]) << 8 | b[o + 3];
        };
        const uint32_t n = be32(img, 4), h = be32(img, 8), w = be32(img, 12);
        if (be32(img, 0) != 0x803 || be32(lab, 0) != 0x801 || be32(lab, 4) != n || img.size() < 16 + size_t(n) * h * w)
            return invalid_argument(dir + pre + ": bad IDX header");
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(split));
        // A scaled build keeps an evenly spaced subset (the files are in no particular order).
        const size_t keep = out.n(n), step = std::max<size_t>(1, n / keep);
        for (size_t i = 0, k = 0; i < n && k < keep; i += step, ++k) {
            std::vector<uint8_t> px(img.begin() + 16 + i * h * w, img.begin() + 16 + (i + 1) * h * w);
            ExampleIn ex = ExampleIn::image(std::move(px), h, w, 1);
            ex.label     = lab[8 + i];
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
        out.progress(fmt::format("{}: {} images", split, wr->count()));
    }
    return Status::ok();
}

// Loaded fonts of one side (train or test).
Result<std::vector<std::pair<FontFile, Font>>> fonts_of(bool test) {
    std::vector<std::pair<FontFile, Font>> out;
    for (const auto & f : font_files()) {
        if (f.test != test) continue;
        M4_ASSIGN_OR_RETURN(Font font, Font::load(f.path));
        out.emplace_back(f, std::move(font));
    }
    return out;
}

Result<std::pair<std::vector<std::string>, std::vector<std::string>>> english_words() {
    M4_ASSIGN_OR_RETURN(auto words, load_words(word_lists()[0]));
    std::vector<std::string> train, test;
    for (auto & w : words) {
        if (!is_ascii_alpha_word(w) || w.size() < 3 || w.size() > 10) continue;
        (test_side("word:" + to_lower_ascii(w)) ? test : train).push_back(w);
    }
    return std::make_pair(train, test);
}

// --- img.char_ocr: one rendered character; held-out font families ---------------------------
Status build_char_ocr(TaskOutput & out) {
    const std::string chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::vector<std::string> labels;
    for (char c : chars) labels.emplace_back(1, c);
    out.set_labels(labels);
    for (bool test : {false, true}) {
        M4_ASSIGN_OR_RETURN(auto fonts, fonts_of(test));
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(test ? "test" : "train"));
        Rng rng               = out.rng(test ? "test" : "train");
        const size_t per_font = out.n(test ? 4 : 8, 1);
        for (size_t fi = 0; fi < fonts.size(); ++fi)
            for (size_t c = 0; c < chars.size(); ++c) {
                Canvas g = fonts[fi].second.render(std::string(1, chars[c]), 48);
                for (size_t k = 0; k < per_font; ++k) {
                    Canvas img   = place_ink(g, 32, 32, 0.8f, &rng, 0.15f, 0.04f);
                    ExampleIn ex = ExampleIn::image(img.to_u8(), 32, 32, 1);
                    ex.label     = int32_t(c);
                    ex.group     = uint32_t(fi);
                    M4_RETURN_IF_ERROR(put(wr, ex));
                }
            }
        out.progress(fmt::format("{}: {} images from {} fonts", test ? "test" : "train", wr->count(), fonts.size()));
    }
    return Status::ok();
}

// --- img.word_ocr: a rendered English word → its text; held-out fonts AND held-out words -----
Status build_word_ocr(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto words, english_words());
    for (bool test : {false, true}) {
        M4_ASSIGN_OR_RETURN(auto fonts, fonts_of(test));
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(test ? "test" : "train"));
        Rng rng        = out.rng(test ? "test" : "train");
        const auto & w = test ? words.second : words.first;
        const size_t n = out.n(test ? 2000 : 12000);
        for (size_t i = 0; i < n; ++i) {
            const auto & word = rng.pick(w);
            const size_t fi   = rng.below(fonts.size());
            Canvas g          = fonts[fi].second.render(word, 40);
            Canvas img        = place_ink(g, 128, 32, 0.9f, &rng, 0.03f, 0.04f);
            ExampleIn ex      = ExampleIn::image(img.to_u8(), 32, 128, 1);
            ex.target         = word;
            ex.group          = uint32_t(fi);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
        out.progress(fmt::format("{}: {} word images", test ? "test" : "train", wr->count()));
    }
    return Status::ok();
}

// --- img.font_family: which training font family rendered a word; held-out words -------------
Status build_font_family(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto words, english_words());
    M4_ASSIGN_OR_RETURN(auto fonts, fonts_of(false));
    // Regular faces of distinct families only.
    std::vector<size_t> pick;
    std::vector<std::string> labels;
    for (size_t i = 0; i < fonts.size(); ++i) {
        const auto & f = fonts[i].first;
        if (f.path.find("Bold") != std::string::npos || f.path.find("Italic") != std::string::npos) continue;
        if (std::find(labels.begin(), labels.end(), f.family) != labels.end()) continue;
        labels.push_back(f.family);
        pick.push_back(i);
    }
    out.set_labels(labels);
    for (bool test : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(test ? "test" : "train"));
        Rng rng          = out.rng(test ? "test" : "train");
        const auto & w   = test ? words.second : words.first;
        const size_t per = out.n(test ? 100 : 400, 2);
        for (size_t k = 0; k < pick.size(); ++k)
            for (size_t i = 0; i < per; ++i) {
                Canvas g     = fonts[pick[k]].second.render(rng.pick(w), 40);
                Canvas img   = place_ink(g, 128, 32, 0.9f, &rng, 0.03f, 0.03f);
                ExampleIn ex = ExampleIn::image(img.to_u8(), 32, 128, 1);
                ex.label     = int32_t(k);
                M4_RETURN_IF_ERROR(put(wr, ex));
            }
        out.progress(fmt::format("{}: {} images", test ? "test" : "train", wr->count()));
    }
    return Status::ok();
}

// --- img.shapes: one generated shape; held-out seeds -----------------------------------------
Status build_shapes(TaskOutput & out) {
    std::vector<std::string> labels;
    for (int s = 0; s < kShapeCount; ++s) labels.push_back(shape_name(static_cast<Shape>(s)));
    out.set_labels(labels);
    for (bool test : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(test ? "test" : "train"));
        Rng rng        = out.rng(test ? "test" : "train");
        const size_t n = out.n(test ? 2000 : 8000);
        for (size_t i = 0; i < n; ++i) {
            Canvas cv(32, 32, 3);
            Rgb bg = {float(rng.uniform(0, 0.5)), float(rng.uniform(0, 0.5)), float(rng.uniform(0, 0.5))};
            for (size_t p = 0; p < cv.px.size(); ++p) cv.px[p] = bg[p % 3] + float(rng.normal(0, 0.03));
            Rgb fg  = {float(rng.uniform(0.4, 1)), float(rng.uniform(0.4, 1)), float(rng.uniform(0.4, 1))};
            int s   = int(i % kShapeCount);
            float r = float(rng.uniform(6, 13));
            draw_shape(cv, static_cast<Shape>(s), float(rng.uniform(r, 32 - r)), float(rng.uniform(r, 32 - r)), r,
                       float(rng.uniform(-0.6, 0.6)), fg.data());
            ExampleIn ex = ExampleIn::image(cv.to_u8(), 32, 32, 3);
            ex.label     = s;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- img.count: how many shapes are in a scene (1 … 6); held-out seeds ------------------------
Status build_count(TaskOutput & out) {
    out.set_labels({"1", "2", "3", "4", "5", "6"});
    for (bool test : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(test ? "test" : "train"));
        Rng rng        = out.rng(test ? "test" : "train");
        const size_t n = out.n(test ? 1500 : 6000);
        for (size_t i = 0; i < n; ++i) {
            int k        = 1 + int(i % 6);
            Scene s      = make_scene(rng, k, k, 64);
            ExampleIn ex = ExampleIn::image(s.image.to_u8(), 64, 64, 3);
            ex.label     = k - 1;
            ex.value     = float(k);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- img.stroke_digit: digits drawn from Hershey stroke fonts with a wobbly pen; held-out fonts
const std::vector<std::pair<std::string, bool>> & hershey_fonts() {
    static const std::vector<std::pair<std::string, bool>> f = {
        {"futural", false}, {"futuram", false}, {"rowmans", false},   {"rowmand", false}, {"timesr", false},
        {"timesrb", false}, {"scripts", false}, {"gothiceng", false}, {"gothgbt", false}, {"rowmant", true},
        {"timesi", true},   {"timesib", true},  {"cursive", true},    {"scriptc", true},  {"gothicita", true}};
    return f;
}

Canvas draw_hershey(const HersheyGlyph & g, int size, Rng & rng) {
    // Glyph units are about 32 per em; render at 4× then shrink for anti-aliasing.
    const int S = size * 4;
    Canvas big(S, S, 1);
    const float scale = S / 40.0f * float(rng.uniform(0.75, 1.0));
    const float shear = float(rng.uniform(-0.25, 0.25)), width = S * float(rng.uniform(0.06, 0.11));
    const float ox  = S / 2.0f + float(rng.uniform(-0.06, 0.06)) * S,
                oy  = S / 2.0f + float(rng.uniform(-0.06, 0.06)) * S;
    const float one = 1.0f;
    // Each control point wobbles a little: a different "writer" every time.
    for (const auto & stroke : g.strokes) {
        std::vector<std::array<float, 2>> p;
        for (const auto & v : stroke) {
            float x = v[0] + float(rng.normal(0, 0.5)), y = v[1] + float(rng.normal(0, 0.5));
            p.push_back({ox + scale * (x - shear * y), oy + scale * y});
        }
        if (p.size() == 1) draw_line(big, p[0][0], p[0][1], p[0][0], p[0][1], width, &one);
        for (size_t i = 1; i < p.size(); ++i) draw_line(big, p[i - 1][0], p[i - 1][1], p[i][0], p[i][1], width, &one);
    }
    return resize(big, size, size);
}

Status build_stroke_digit(TaskOutput & out) {
    out.set_labels({"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
    for (bool test : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(test ? "test" : "train"));
        Rng rng     = out.rng(test ? "test" : "train");
        uint32_t fi = 0;
        for (const auto & [name, is_test] : hershey_fonts()) {
            ++fi;
            if (is_test != test) continue;
            M4_ASSIGN_OR_RETURN(auto glyphs, load_hershey("/usr/share/hershey-fonts/" + name + ".jhf"));
            const size_t per = out.n(test ? 100 : 300, 2);
            for (int d = 0; d < 10; ++d)
                for (size_t k = 0; k < per; ++k) {
                    Canvas img = draw_hershey(glyphs['0' + d - 32], 28, rng);
                    for (float & p : img.px) p = std::clamp(p + float(rng.normal(0, 0.02)), 0.0f, 1.0f);
                    ExampleIn ex = ExampleIn::image(img.to_u8(), 28, 28, 1);
                    ex.label     = d;
                    ex.group     = fi;
                    M4_RETURN_IF_ERROR(put(wr, ex));
                }
        }
    }
    return Status::ok();
}

}  // namespace

void register_image_tasks(std::vector<Task> & t) {
    auto fonts = packages_of_fonts();
    t.push_back({{"img.fashion_mnist",
                  "image",
                  Modality::Image,
                  "classify",
                  "encoder",
                  "accuracy",
                  "real",
                  "Fashion-MNIST product photos, 28×28 grey, 10 clothing classes (Zalando; official split)",
                  "official test split (10,000 other products)",
                  {"dataset-fashion-mnist"}},
                 build_fashion});
    auto ocr_pk = fonts;
    t.push_back({{"img.char_ocr", "image", Modality::Image, "classify", "encoder", "accuracy", "generated",
                  "single characters 0-9 A-Z a-z rendered from packaged TrueType/OpenType fonts (stb_truetype), "
                  "jittered in scale, rotation, position, polarity and noise; 32×32 grey",
                  "font families Caladea, Cantarell, Lato, Linux Biolinum, Roboto Condensed", ocr_pk},
                 build_char_ocr});
    auto word_pk = fonts;
    word_pk.push_back("wamerican");
    t.push_back({{"img.word_ocr", "image", Modality::Image, "generate", "full", "exact_match", "generated",
                  "English words (wamerican) rendered in packaged fonts → the word's text; 32×128 grey",
                  "held-out font families and held-out words (20 % of the word list)", word_pk},
                 build_word_ocr});
    t.push_back({{"img.font_family", "image", Modality::Image, "classify", "encoder", "accuracy", "generated",
                  "which of the training font families rendered an English word; 32×128 grey",
                  "held-out words (20 % of the word list)", word_pk},
                 build_font_family});
    t.push_back({{"img.shapes",
                  "image",
                  Modality::Image,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "one generated shape (8 kinds) of random colour, size, rotation and place; 32×32 RGB",
                  "generator seeds",
                  {}},
                 build_shapes});
    t.push_back({{"img.count",
                  "image",
                  Modality::Image,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "how many shapes (1-6) a generated scene holds; 64×64 RGB (value = count for regression)",
                  "generator seeds",
                  {}},
                 build_count});
    t.push_back({{"img.stroke_digit",
                  "image",
                  Modality::Image,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "digits drawn from Hershey stroke fonts with a randomly wobbling, slanted pen (MNIST-like, "
                  "not real handwriting); 28×28 grey",
                  "Hershey fonts rowmant, timesi, timesib, cursive, scriptc, gothicita",
                  {"hershey-fonts-data"}},
                 build_stroke_digit});
}

}  // namespace m4::data
