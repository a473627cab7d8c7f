// img.draw_scene's data and metric: the flat drawing holds palette colours only and its label map
// is exact, the description determines the drawing, and palette_agreement scores a blank image
// 0.5, a perfect one 1, and counts object and background pixels apart.
#include <gtest/gtest.h>

#include "bench/draw_scene.h"
#include "data/draw_scene.h"

using namespace m4;

TEST(DrawScene, FlatDrawingIsTheDescriptionsFunctionInPaletteColours) {
    data::Rng rng(7, "draw-test");
    const int S = data::kDrawSceneSize;
    for (int k = 0; k < 20; ++k) {
        data::Scene s                = data::make_scene(rng, 1, 3, S);
        const std::vector<uint8_t> a = data::draw_scene_flat(s, S);
        data::Scene t                = s;
        t.image                      = data::Canvas();  // the renderer's photograph plays no part
        EXPECT_EQ(data::draw_scene_flat(t, S), a);
        const auto labels = data::draw_scene_labels(a.data(), S * S);
        const auto & pal  = data::draw_scene_palette();
        ASSERT_EQ(pal.size(), 9u);
        int objects = 0;
        for (int i = 0; i < S * S; ++i) {
            for (int c = 0; c < 3; ++c) ASSERT_EQ(a[i * 3 + c], pal[labels[i]][c]) << "pixel " << i;
            objects += labels[i] != 0;
        }
        EXPECT_GT(objects, 0);
        for (const auto & o : s.objects) {  // the cell's centre pixel is the object's colour
            const int cx = int((o.cell % 3 + 0.5f) * S / 3.0f), cy = int((o.cell / 3 + 0.5f) * S / 3.0f);
            EXPECT_EQ(labels[cy * S + cx], 1 + o.color) << data::scene_caption(s);
        }
    }
}

TEST(DrawScene, PaletteAgreementCountsBackgroundAndObjectsApart) {
    data::Rng rng(3, "draw-metric");
    const int S                      = data::kDrawSceneSize;
    data::Scene s                    = data::make_scene(rng, 2, 3, S);
    const std::vector<uint8_t> truth = data::draw_scene_flat(s, S);
    std::vector<uint8_t> blank(truth.size(), 0);
    bench::PaletteScore b, p, half;
    b.add(blank.data(), truth.data(), S * S);
    EXPECT_DOUBLE_EQ(b.agreement(), 0.5);
    EXPECT_DOUBLE_EQ(b.background(), 1.0);
    EXPECT_DOUBLE_EQ(b.objects(), 0.0);
    // Near-palette values quantise to the palette: a slightly noisy perfect drawing scores 1.
    std::vector<uint8_t> noisy = truth;
    for (size_t i = 0; i < noisy.size(); ++i) noisy[i] = uint8_t(std::min(255, noisy[i] + int(i % 7)));
    p.add(noisy.data(), truth.data(), S * S);
    EXPECT_DOUBLE_EQ(p.agreement(), 1.0);
    // Everything painted in one object colour: background 0; objects right only where that colour is.
    std::vector<uint8_t> red(truth.size());
    for (int i = 0; i < S * S; ++i)
        for (int c = 0; c < 3; ++c) red[i * 3 + c] = data::draw_scene_palette()[1][c];
    half.add(red.data(), truth.data(), S * S);
    EXPECT_DOUBLE_EQ(half.background(), 0.0);
    EXPECT_LT(half.agreement(), 0.5);
}
