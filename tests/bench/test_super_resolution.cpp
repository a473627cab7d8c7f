// img.super_resolution: the degradation (box reduction), originals from stored images, PSNR and
// SSIM on known inputs, the task's plan, and training samples = what evaluation feeds the model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "bench/pretrain.h"
#include "bench/super_resolution.h"
#include "data/task.h"
#include "unit/fixture.h"

using namespace m4;

namespace {

data::Example image_example(const std::vector<uint8_t> & px, uint32_t h, uint32_t w, uint32_t c) {
    data::Example ex;
    ex.payload     = px.data();
    ex.payload_len = px.size();
    ex.dims[0] = h, ex.dims[1] = w, ex.dims[2] = c;
    return ex;
}

}  // namespace

TEST(SuperResolution, BoxReductionIsTheRoundedBlockMean) {
    std::vector<uint8_t> px(4 * 4 * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 5 % 256);
    const auto r2 = data::sr_reduce(px.data(), 4, 2);
    ASSERT_EQ(r2.size(), 2u * 2 * 3);
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 2; ++x)
            for (int c = 0; c < 3; ++c) {
                int s = 0;
                for (int dy = 0; dy < 2; ++dy)
                    for (int dx = 0; dx < 2; ++dx) s += px[((2 * y + dy) * 4 + 2 * x + dx) * 3 + c];
                EXPECT_EQ(r2[(y * 2 + x) * 3 + c], (s + 2) / 4);
            }
    EXPECT_EQ(data::sr_reduce(px.data(), 4, 4).size(), 3u);
}

TEST(SuperResolution, OriginalsFromStoredImages) {
    std::vector<uint8_t> grey(28 * 28, 200);
    auto o = bench::sr_original(image_example(grey, 28, 28, 1), 32, "g");
    ASSERT_TRUE(o.is_ok()) << o.status().message();
    EXPECT_EQ((*o)[0], 0);                       // black border
    EXPECT_EQ((*o)[(2 * 32 + 2) * 3 + 1], 200);  // first pixel of the centred picture, channel 1
    std::vector<uint8_t> big(64 * 64 * 3, 9);
    auto b = bench::sr_original(image_example(big, 64, 64, 3), 32, "b");
    ASSERT_TRUE(b.is_ok());
    EXPECT_EQ(b->size(), 32u * 32 * 3);
    std::vector<uint8_t> strip(32 * 128, 0);  // a word image: its centre 32×32
    strip[5 * 128 + 48] = 77;
    auto st             = bench::sr_original(image_example(strip, 32, 128, 1), 32, "strip");
    ASSERT_TRUE(st.is_ok());
    EXPECT_EQ((*st)[(5 * 32 + 0) * 3 + 2], 77);
    std::vector<uint8_t> odd(48 * 40 * 3, 9);  // square crop 40×40: neither ≤ 32 nor a multiple
    EXPECT_FALSE(bench::sr_original(image_example(odd, 48, 40, 3), 32, "odd").is_ok());
}

TEST(SuperResolution, PsnrAndSsimOnKnownInputs) {
    const int64_t S = 16, n = S * S * 3;
    std::vector<uint8_t> a(n), b(n);
    for (int64_t i = 0; i < n; ++i) a[i] = static_cast<uint8_t>(40 + (i * 37) % 150);
    EXPECT_EQ(bench::psnr_u8(a.data(), a.data(), n), 100.0);
    EXPECT_NEAR(bench::ssim_u8(a.data(), a.data(), S, S), 1.0, 1e-12);
    for (int64_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(a[i] + 5);  // MSE 25
    EXPECT_NEAR(bench::psnr_u8(a.data(), b.data(), n), 10 * std::log10(255.0 * 255.0 / 25.0), 1e-9);
    // A constant shift keeps structure and contrast: SSIM is the luminance term only, just below 1.
    const double s_shift = bench::ssim_u8(a.data(), b.data(), S, S);
    EXPECT_LT(s_shift, 1.0);
    EXPECT_GT(s_shift, 0.95);
    // Noise destroys structure: far lower.
    for (int64_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 7919) % 256);
    EXPECT_LT(bench::ssim_u8(a.data(), b.data(), S, S), 0.3);
    // One 7×7 window of a constant image vs the constant + 10: luminance term (2μaμb + C1)/(μa² + μb² + C1).
    std::vector<uint8_t> c(7 * 7 * 3, 100), d(7 * 7 * 3, 110);
    const double c1 = 6.5025, want = (2 * 100.0 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1);
    EXPECT_NEAR(bench::ssim_u8(c.data(), d.data(), 7, 7), want, 1e-12);
}

TEST(SuperResolution, PairsAreBicubicOfTheReductionAndTheOriginal) {
    model::EncoderConfig dec;
    dec.modality = model::Modality::Image, dec.image_size = 32, dec.patch_size = 4, dec.channels = 3;
    std::vector<uint8_t> px(32 * 32 * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i / 3 % 32) * 8);  // horizontal ramp
    for (int f : bench::kSrScales) {
        auto p = bench::sr_pair(image_example(px, 32, 32, 3), dec, f, "ramp");
        ASSERT_TRUE(p.is_ok()) << p.status().message();
        ASSERT_EQ(p->input.size(), px.size());
        EXPECT_NEAR(p->target[3 * 5], (40 / 255.0f - 0.5f) / 0.5f, 1e-6);
        // The enlargement of a reduced ramp is close to the ramp away from the borders, not equal.
        double err = 0;
        for (int x = 8; x < 24; ++x)
            err = std::max(err, double(std::fabs(p->input[(16 * 32 + x) * 3] - p->target[(16 * 32 + x) * 3])));
        EXPECT_LT(err, 0.1) << f;
    }
}

TEST(SuperResolution, PlanTrainsTheDecoderOnTheGeneratorPath) {
    nlohmann::json cfg        = test::tiny_config();
    cfg["text"]["vocab_size"] = 200;
    auto c                    = model::parse_model_config(cfg);
    ASSERT_TRUE(c.is_ok());
    const data::Task * t = data::find_task("img.super_resolution");
    ASSERT_NE(t, nullptr);
    auto plan = bench::make_plan(bench::facts_from_info(t->info), *c);
    ASSERT_TRUE(plan.is_ok()) << plan.status().message();
    EXPECT_EQ(plan->spec.objective, train::Objective::Reconstruct);
    EXPECT_EQ(plan->spec.path, model::Path::Generator);
    EXPECT_EQ(plan->metrics.at(0), "psnr");
    cfg.erase("decoders");
    auto nodec = model::parse_model_config(cfg);
    auto bad   = bench::make_plan(bench::facts_from_info(t->info), *nodec);
    EXPECT_EQ(bad.status().code(), StatusCode::Incompatible) << bad.status().message();
}

TEST(SuperResolution, RecipesTrainTheDecoderWithReconstruct) {
    std::ifstream in(std::string(M4_SOURCE_DIR) + "/recipes/sr-decoder.json");
    ASSERT_TRUE(in.good());
    nlohmann::json j = nlohmann::json::parse(in);
    auto r           = bench::parse_pretrain_recipe(j, "sr-decoder.json");
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    ASSERT_EQ(r->objectives.size(), 1u);
    EXPECT_EQ(r->objectives[0].kind, "reconstruct");
    nlohmann::json bad               = j;
    bad["objectives"][0]["modality"] = "audio";
    EXPECT_NE(bench::parse_pretrain_recipe(bad, "r.json").status().message().find("\"modality\": \"image\""),
              std::string::npos);
    bad = j;
    bad["architecture"].erase("decoders");
    const auto st = bench::parse_pretrain_recipe(bad, "r.json").status();
    EXPECT_NE(st.message().find("no \"decoders\""), std::string::npos) << st.message();
}
