#include "data/scenes.h"

#include <algorithm>

namespace m4::data {

namespace {

const std::vector<Rgb> & colors() {
    static const std::vector<Rgb> c = {{0.85f, 0.1f, 0.1f},  {0.1f, 0.7f, 0.2f},   {0.15f, 0.3f, 0.9f},
                                       {0.95f, 0.85f, 0.1f}, {0.6f, 0.2f, 0.75f},  {0.1f, 0.8f, 0.85f},
                                       {0.95f, 0.5f, 0.05f}, {0.95f, 0.95f, 0.95f}};
    return c;
}

}  // namespace

const std::vector<Rgb> & scene_colors() {
    return colors();
}

const std::vector<std::string> & scene_color_names() {
    static const std::vector<std::string> n = {"red", "green", "blue", "yellow", "purple", "cyan", "orange", "white"};
    return n;
}

std::string number_word(int n) {
    static const char * w[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
    return n >= 0 && n < 10 ? w[n] : std::to_string(n);
}

std::string cell_name(int cell) {
    static const char * n[] = {"top left", "top",         "top right", "left",        "center",
                               "right",    "bottom left", "bottom",    "bottom right"};
    return n[cell];
}

std::string object_phrase(const SceneObject & o) {
    return std::string(o.large ? "large " : "small ") + scene_color_names()[o.color] + " " + shape_name(o.shape);
}

Scene make_scene(Rng & rng, int n_min, int n_max, int size) {
    Scene s;
    // Background: a dark or mid-grey tone with a gentle gradient and noise.
    const float b0 = float(rng.uniform(0.05, 0.45)), gx = float(rng.uniform(-0.15, 0.15)),
                gy = float(rng.uniform(-0.15, 0.15));
    const Rgb tint = {float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.9, 1.1))};
    s.image        = Canvas(size, size, 3);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
            for (int k = 0; k < 3; ++k)
                s.image.at(x, y, k) =
                    std::clamp((b0 + gx * (x / float(size) - 0.5f) + gy * (y / float(size) - 0.5f)) * tint[k] +
                                   float(rng.normal(0, 0.02)),
                               0.0f, 1.0f);
    std::vector<int> cells = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    rng.shuffle(cells);
    const int n = n_min + int(rng.below(size_t(n_max - n_min + 1)));
    for (int i = 0; i < n; ++i) {
        SceneObject o;
        o.shape = static_cast<Shape>(rng.below(kShapeCount));
        o.color = int(rng.below(colors().size()));
        o.large = rng.chance(0.5);
        o.cell  = cells[i];
        s.objects.push_back(o);
    }
    std::sort(s.objects.begin(), s.objects.end(), [](const auto & a, const auto & b) { return a.cell < b.cell; });
    const float cellsz = size / 3.0f;
    for (const auto & o : s.objects) {
        const float r  = cellsz * (o.large ? 0.42f : 0.26f) * float(rng.uniform(0.9, 1.05));
        const float cx = (o.cell % 3 + 0.5f) * cellsz + float(rng.uniform(-0.06, 0.06)) * cellsz;
        const float cy = (o.cell / 3 + 0.5f) * cellsz + float(rng.uniform(-0.06, 0.06)) * cellsz;
        Rgb c          = colors()[o.color];
        for (float & v : c) v = std::clamp(v * float(rng.uniform(0.9, 1.05)), 0.0f, 1.0f);
        const float angle = o.shape == Shape::Circle ? 0.0f : float(rng.uniform(-0.25, 0.25));
        draw_shape(s.image, o.shape, cx, cy, r, angle, c.data());
    }
    return s;
}

std::string scene_caption(const Scene & s) {
    std::vector<std::string> parts;
    for (const auto & o : s.objects) {
        std::string where = cell_name(o.cell);
        std::string prep  = (o.cell == 4)                                                ? "in the "
                            : (o.cell == 1 || o.cell == 7 || o.cell == 3 || o.cell == 5) ? "on the "
                                                                                         : "at the ";
        parts.push_back("a " + object_phrase(o) + " " + prep + where);
    }
    if (parts.empty()) return "an empty picture";
    std::string c = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) c += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
    return c;
}

Qa scene_question(const Scene & s, Rng & rng) {
    const auto & objs = s.objects;
    auto count_shape  = [&](Shape sh) {
        return int(std::count_if(objs.begin(), objs.end(), [&](const auto & o) { return o.shape == sh; }));
    };
    for (;;) {
        switch (rng.below(7)) {
            case 0:
                return {"how many shapes are there?", number_word(int(objs.size()))};
            case 1: {
                Shape sh = static_cast<Shape>(rng.below(kShapeCount));
                return {std::string("how many ") + shape_name(sh) + "s are there?", number_word(count_shape(sh))};
            }
            case 2: {
                const auto & o = objs[rng.below(objs.size())];
                if (count_shape(o.shape) != 1) continue;
                return {std::string("what color is the ") + shape_name(o.shape) + "?", scene_color_names()[o.color]};
            }
            case 3: {
                int cell = int(rng.below(9));
                auto it  = std::find_if(objs.begin(), objs.end(), [&](const auto & o) { return o.cell == cell; });
                return {"what shape is at the " + cell_name(cell) + "?",
                        it == objs.end() ? "nothing" : shape_name(it->shape)};
            }
            case 4: {
                Shape sh  = static_cast<Shape>(rng.below(kShapeCount));
                int color = int(rng.below(scene_color_names().size()));
                if (rng.chance(0.5)) {  // ask about a present object half of the time
                    const auto & o = objs[rng.below(objs.size())];
                    sh = o.shape, color = o.color;
                }
                bool yes = std::any_of(objs.begin(), objs.end(),
                                       [&](const auto & o) { return o.shape == sh && o.color == color; });
                return {"is there a " + scene_color_names()[color] + " " + shape_name(sh) + "?", yes ? "yes" : "no"};
            }
            case 5: {
                const auto & o = objs[rng.below(objs.size())];
                if (count_shape(o.shape) != 1) continue;
                return {std::string("where is the ") + shape_name(o.shape) + "?", cell_name(o.cell)};
            }
            default: {
                const auto & o = objs[rng.below(objs.size())];
                if (count_shape(o.shape) != 1) continue;
                return {std::string("is the ") + shape_name(o.shape) + " large or small?", o.large ? "large" : "small"};
            }
        }
    }
}

}  // namespace m4::data
