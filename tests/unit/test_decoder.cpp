// The image decoder (IMG-Dec) and path 4 (`generator`): configuration (firmware without decoders
// stays valid), bicubic resampling on the op set, the path's output and its input faults, the
// adapter manifest's output kind, and the runtime's image in/out (docs/architecture.md).
#include <stb/stb_image.h>

#include <cmath>

#include "fixture.h"
#include "runtime/engine.h"
#include "runtime/images.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;

namespace {

class DecoderTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        fw_path_ = temp_dir() + "/dec.m4fw";
        write_firmware(fw_path_, tiny_config(), 5);
        auto m = model::Model::load(fw_path_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }
    static inline std::string fw_path_;
    static inline model::Model * model_ = nullptr;
};

std::vector<float> wave(int64_t n, float phase) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = 0.8f * std::sin(0.29f * float(i) + phase);
    return v;
}

void expect_status(const Status & st, StatusCode code, const std::string & needle) {
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

}  // namespace

TEST(DecoderConfig, AbsentDecodersStayValidAndHeadersRoundTrip) {
    nlohmann::json j        = tiny_config();
    j["text"]["vocab_size"] = 200;
    auto with               = model::parse_model_config(j);
    ASSERT_TRUE(with.is_ok()) << with.status().message();
    EXPECT_TRUE(with->has_decoder(Modality::Image));
    EXPECT_EQ(with->image_decoder->tokens(), 4);
    EXPECT_EQ(with->image_decoder->patch_dim(), 48);
    EXPECT_EQ(model::model_config_to_json(*with)["decoders"]["image"]["image_size"], 8);
    j.erase("decoders");
    auto without = model::parse_model_config(j);
    ASSERT_TRUE(without.is_ok());
    EXPECT_FALSE(without->has_decoder(Modality::Image));
    EXPECT_FALSE(model::model_config_to_json(*without).contains("decoders"));  // older headers unchanged
    for (const auto & t : model::expected_tensors(*without)) EXPECT_NE(t.name.rfind("decoders.", 0), 0u) << t.name;
    j["decoders"] = {
        {"image", {{"image_size", 10}, {"patch_size", 4}, {"width", 16}, {"layers", 1}, {"heads", 2}, {"ffn", 32}}}};
    expect_status(model::parse_model_config(j).status(), StatusCode::InvalidArgument, "decoders.image");
    j["decoders"] = {{"audio", nlohmann::json::object()}};
    expect_status(model::parse_model_config(j).status(), StatusCode::InvalidArgument, "unknown decoder \"audio\"");
}

TEST(Bicubic, WeightsFollowKeysKernel) {
    for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{8, 32}, {16, 32}, {5, 11}, {7, 7}}) {
        Tensor m = model::bicubic_matrix(n_in, n_out);
        for (int64_t i = 0; i < n_out; ++i) {
            double s = 0;
            for (int64_t k = 0; k < n_in; ++k) s += m.f32()[i * n_in + k];
            EXPECT_NEAR(s, 1.0, 1e-6) << n_in << "→" << n_out << " row " << i;
        }
        if (n_in == n_out) {
            for (int64_t i = 0; i < n_out; ++i) EXPECT_NEAR(m.f32()[i * n_in + i], 1.0, 1e-7);
        }
    }
    // ×2: output 5 samples the input at 2.25 = (5 + 0.5)/2 − 0.5: taps 1..4 at distances 1.25, 0.25,
    // 0.75, 1.75 with Keys' a = −0.5 weights.
    Tensor m  = model::bicubic_matrix(8, 16);
    auto keys = [](double t) {
        return t < 1 ? 1.5 * t * t * t - 2.5 * t * t + 1 : -0.5 * t * t * t + 2.5 * t * t - 4 * t + 2;
    };
    double w[] = {keys(1.25), keys(0.25), keys(0.75), keys(1.75)};
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(m.f32()[5 * 8 + 1 + k], w[k], 1e-6) << k;
}

TEST(Bicubic, ResamplingKeepsConstantsAndLinearRamps) {
    const int64_t h = 6, w = 5, S = 12;
    std::vector<float> src(h * w * 3), dst(S * S * 3);
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
            for (int64_t c = 0; c < 3; ++c)
                src[(y * w + x) * 3 + c] = 0.1f * float(c) + 0.05f * float(x) - 0.03f * float(y);
    model::resample_bicubic(src.data(), h, w, S, S, dst.data());
    // Cubic convolution reproduces a linear function where no tap is clamped.
    for (int64_t y = 4; y < 8; ++y)
        for (int64_t x = 4; x < 6; ++x)
            for (int64_t c = 0; c < 3; ++c) {
                const double sx = (x + 0.5) * double(w) / S - 0.5, sy = (y + 0.5) * double(h) / S - 0.5;
                EXPECT_NEAR(dst[(y * S + x) * 3 + c], 0.1 * c + 0.05 * sx - 0.03 * sy, 1e-5) << y << "," << x;
            }
    std::vector<float> flat(h * w * 3, -0.25f);
    model::resample_bicubic(flat.data(), h, w, S, S, dst.data());
    for (float v : dst) EXPECT_NEAR(v, -0.25f, 1e-6);
}

TEST_F(DecoderTest, GeneratorPathIsInputPlusDecoderCorrection) {
    const auto & dc = *model_->config().image_decoder;
    model::Request r;
    r.signal  = wave(dc.input_values(), 0.3f);
    auto outs = model_->run(Path::Generator, Modality::Image, {&r, 1});
    ASSERT_TRUE(outs.is_ok()) << outs.status().message();
    ASSERT_EQ((*outs)[0].image.size(), r.signal.size());
    EXPECT_EQ((*outs)[0].image_size, dc.image_size);
    // Recompute from the pieces: patches, decoder, residual, un-patchify.
    std::vector<float> x(dc.tokens() * dc.patch_dim()), y(x.size()), img(r.signal.size());
    model::image_patches(dc, r.signal.data(), x.data());
    model::image_decoder_forward(dc, model_->weights().image_decoder, x.data(), 1, {{0, dc.tokens(), nullptr}},
                                 y.data());
    for (size_t i = 0; i < x.size(); ++i) y[i] += x[i];
    model::image_unpatchify(dc, y.data(), img.data());
    EXPECT_EQ(img, (*outs)[0].image);
    double diff = 0;  // the decoder really changes its input
    for (size_t i = 0; i < img.size(); ++i) diff = std::max(diff, std::fabs(double(img[i]) - r.signal[i]));
    EXPECT_GT(diff, 1e-3);
}

TEST_F(DecoderTest, GeneratorInputFaults) {
    model::Request r;
    r.signal = wave(10, 0.0f);
    expect_status(model_->run(Path::Generator, Modality::Image, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "decoder's grid");
    r.signal = wave(model_->config().image_decoder->input_values(), 0.0f);
    r.tokens = {5};
    expect_status(model_->run(Path::Generator, Modality::Image, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "takes no text");
    r.tokens.clear();
    // Over audio, path 4 is the speech decoder (test_speech_decoder.cpp): it takes text, not a signal.
    expect_status(model_->run(Path::Generator, Modality::Audio, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "the speech decoder takes text");
    expect_status(model_->generate(Path::Generator, Modality::Image, {&r, 1}, model::GenerateOptions{}).status(),
                  StatusCode::InvalidArgument, "text generation");
    // A firmware without decoders: valid, loads, and refuses path 4 by name.
    nlohmann::json j = tiny_config();
    j.erase("decoders");
    const std::string p = temp_dir() + "/nodec.m4fw";
    write_firmware(p, j, 5);
    auto m = model::Model::load(p);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    expect_status((*m)->run(Path::Generator, Modality::Image, {&r, 1}).status(), StatusCode::Incompatible,
                  "no image decoder");
    // The same weights for everything else: the decoder's tensors come after all others.
    model::Request e;
    e.signal = wave(8 * 8 * 3, 0.1f);
    auto a   = model_->run(Path::Encoder, Modality::Image, {&e, 1});
    auto b   = (*m)->run(Path::Encoder, Modality::Image, {&e, 1});
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    EXPECT_EQ((*a)[0].embedding, (*b)[0].embedding);
}

TEST_F(DecoderTest, AdapterOutputKindAndPathChecks) {
    adapter::Manifest m;
    m.task      = adapter::Task::Generate;
    m.path      = Path::Generator;
    m.modality  = Modality::Image;
    m.targets   = adapter::expand_targets(model_->config(), Path::Generator, Modality::Image, "all").value();
    m.lora_rank = 2, m.lora_alpha = 2;
    for (const auto & t : m.targets) EXPECT_EQ(t.rfind("decoders.image.", 0), 0u) << t;
    EXPECT_EQ(m.targets.size(), 8u);  // patch_embed, q k v o, fc1, fc2, out_proj
    const std::string p = temp_dir() + "/sr.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, *model_, m, 3).is_ok());
    auto ad = adapter::Adapter::load(p, *model_);
    ASSERT_TRUE(ad.is_ok()) << ad.status().message();
    EXPECT_EQ(ad->manifest().output, adapter::OutputKind::Image);
    EXPECT_EQ(ad->file().header()["output"], "image");
    // Its LoRA changes the output.
    model::Request r;
    r.signal  = wave(model_->config().image_decoder->input_values(), 0.7f);
    auto base = model_->run(Path::Generator, Modality::Image, {&r, 1});
    r.adapter = &ad->weights();
    auto lora = model_->run(Path::Generator, Modality::Image, {&r, 1});
    ASSERT_TRUE(base.is_ok() && lora.is_ok());
    EXPECT_NE((*base)[0].image, (*lora)[0].image);
    // Manifests that contradict themselves.
    nlohmann::json j = ad->file().header();
    j["path"]        = "backbone";
    j["modality"]    = "text";
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "outputs text, not image");
    j         = ad->file().header();
    j["task"] = "classify";
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "its task is generate");
    // The adapter on a firmware without the decoder.
    nlohmann::json c = tiny_config();
    c.erase("decoders");
    const std::string nd = temp_dir() + "/nodec2.m4fw";
    write_firmware(nd, c, 5);
    auto fw2 = model::Model::load(nd);
    ASSERT_TRUE(fw2.is_ok());
    runtime::InputSpec in;
    in.modality = Modality::Text;
    in.text     = "hello";
    expect_status(runtime::prepare_item(*model_, Path::Generator, &ad->manifest(), in, "").status(),
                  StatusCode::InvalidArgument, "takes an image, not text");
    in.modality = Modality::Image;
    in.signal   = r.signal;
    expect_status(runtime::prepare_item(**fw2, Path::Generator, nullptr, in, "").status(), StatusCode::Incompatible,
                  "no image decoder");
}

TEST(DecoderImages, PngRoundTripAndOutputPathChecks) {
    const int64_t h = 5, w = 7;
    std::vector<float> img = wave(h * w * 3, 0.2f);
    img[0]                 = 3.0f;  // clamped to 255
    const std::string p    = temp_dir() + "/out.png";
    ASSERT_TRUE(runtime::write_image_png(p, img.data(), h, w).is_ok());
    int gw = 0, gh = 0, n = 0;
    unsigned char * px = stbi_load(p.c_str(), &gw, &gh, &n, 3);
    ASSERT_NE(px, nullptr);
    EXPECT_EQ(gw, w);
    EXPECT_EQ(gh, h);
    const std::vector<uint8_t> want = runtime::image_to_u8(img.data(), h * w * 3);
    EXPECT_EQ(want[0], 255);
    for (int64_t i = 0; i < h * w * 3; ++i) EXPECT_EQ(px[i], want[i]) << i;
    stbi_image_free(px);
    expect_status(runtime::check_output_path(temp_dir() + "/out.jpg", "png"), StatusCode::InvalidArgument, ".png");
    expect_status(runtime::check_output_path(temp_dir() + "/no/such/dir/x.png", "png"), StatusCode::NotFound,
                  "does not exist");
    expect_status(runtime::check_output_path(temp_dir(), "png"), StatusCode::InvalidArgument, "");
    // Too large for an 8×8 decoder (it enlarges, it does not shrink).
    runtime::DecodedImage big{9, 9, std::vector<float>(9 * 9 * 3, 0.0f)};
    model::EncoderConfig dc;
    dc.modality = Modality::Image, dc.image_size = 8, dc.patch_size = 4, dc.channels = 3;
    expect_status(runtime::image_to_decoder_grid(big, dc, "big.png").status(), StatusCode::InvalidArgument,
                  "at most 8x8");
    runtime::DecodedImage small{4, 4, std::vector<float>(4 * 4 * 3, 0.5f)};
    auto g = runtime::image_to_decoder_grid(small, dc, "small.png");
    ASSERT_TRUE(g.is_ok());
    EXPECT_EQ(g->size(), 8u * 8 * 3);
    for (float v : *g) EXPECT_NEAR(v, 0.5f, 1e-6);
}
