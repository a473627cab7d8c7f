// The full path into the image decoder (docs/architecture.md, "Image decoder"): the
// decoders.image.from_backbone projector in the header (firmware without it unchanged), the
// path's output against its pieces, its input faults, and image-output adapters on it.
#include <cmath>

#include "fixture.h"
#include "model/encoder.h"
#include "ops/ops.h"
#include "runtime/engine.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;

namespace {

nlohmann::json draw_config() {
    nlohmann::json j                                   = tiny_config();
    j["decoders"]["image"]["from_backbone"]["queries"] = 4;  // (8 / 4)² tokens
    return j;
}

void expect_status(const Status & st, StatusCode code, const std::string & needle) {
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

class DrawTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        fw_path_ = temp_dir() + "/draw.m4fw";
        write_firmware(fw_path_, draw_config(), 7);
        auto m = model::Model::load(fw_path_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_       = std::move(m).value().release();
        nodraw_path_ = temp_dir() + "/nodraw.m4fw";
        write_firmware(nodraw_path_, tiny_config(), 7);
        auto n = model::Model::load(nodraw_path_);
        ASSERT_TRUE(n.is_ok()) << n.status().message();
        nodraw_ = std::move(n).value().release();
    }
    static void TearDownTestSuite() {
        delete model_;
        delete nodraw_;
    }
    static inline std::string fw_path_, nodraw_path_;
    static inline model::Model *model_ = nullptr, *nodraw_ = nullptr;
};

}  // namespace

TEST(DrawConfig, ProjectorIsOptionalAndRoundTrips) {
    auto with = model::parse_model_config(draw_config());
    ASSERT_TRUE(with.is_ok()) << with.status().message();
    EXPECT_TRUE(with->has_draw_path());
    EXPECT_EQ(model::model_config_to_json(*with)["decoders"]["image"]["from_backbone"]["queries"], 4);
    int found = 0;
    for (const auto & t : model::expected_tensors(*with)) {
        if (t.name == "decoders.image.from_backbone.queries") {
            EXPECT_EQ(t.shape, (Shape{4, 32}));
            ++found;
        }
        if (t.name == "decoders.image.from_backbone.proj.weight") {
            EXPECT_EQ(t.shape, (Shape{48, 32}));
            ++found;
        }
    }
    EXPECT_EQ(found, 2);
    // Without it: no key written, no tensors, the header of a path-4-only decoder unchanged.
    auto without = model::parse_model_config(tiny_config());
    ASSERT_TRUE(without.is_ok());
    EXPECT_FALSE(without->has_draw_path());
    EXPECT_FALSE(model::model_config_to_json(*without)["decoders"]["image"].contains("from_backbone"));
    EXPECT_EQ(model::model_config_to_json(*without).dump(),
              model::model_config_to_json(*model::parse_model_config(tiny_config())).dump());
    for (const auto & t : model::expected_tensors(*without)) EXPECT_EQ(t.name.find("from_backbone"), std::string::npos);
    nlohmann::json j                                   = draw_config();
    j["decoders"]["image"]["from_backbone"]["queries"] = 5;
    expect_status(model::parse_model_config(j).status(), StatusCode::InvalidArgument, "queries must equal");
    j["decoders"]["image"]["from_backbone"] = 3;
    expect_status(model::parse_model_config(j).status(), StatusCode::InvalidArgument,
                  "from_backbone must be an object");
}

TEST_F(DrawTest, FullPathOverTextIsBackboneQueriesProjectorDecoder) {
    const auto & c  = model_->config();
    const auto & dc = *c.image_decoder;
    const auto & w  = model_->weights();
    model::Request r;
    r.tokens  = {11, 42, 7, 99};
    auto outs = model_->run(Path::Full, Modality::Text, {&r, 1});
    ASSERT_TRUE(outs.is_ok()) << outs.status().message();
    ASSERT_EQ((*outs)[0].image.size(), size_t(dc.image_size * dc.image_size * 3));
    EXPECT_EQ((*outs)[0].image_size, dc.image_size);
    // Recompute from the pieces.
    const int64_t C = c.backbone.width, T = dc.tokens(), P = dc.patch_dim(), n = 1 + 4 + T;
    std::vector<float> x(n * C), hn(n * C), d(T * P), y(T * P), img(dc.image_size * dc.image_size * 3);
    const int32_t bos = c.text.bos_id;
    ops::gather(w.backbone.tok_embed, &bos, 1, x.data());
    ops::gather(w.backbone.tok_embed, r.tokens.data(), 4, x.data() + C);
    std::copy(w.image_decoder.queries, w.image_decoder.queries + T * C, x.data() + 5 * C);
    model::backbone_forward(c.backbone, w.backbone, x.data(), n, {{0, n, nullptr, nullptr}}, hn.data());
    model::linear(w.image_decoder.from_backbone, hn.data() + 5 * C, T, d.data(), {{0, T, nullptr}});
    model::image_decoder_forward(dc, w.image_decoder, d.data(), 1, {{0, T, nullptr}}, y.data());
    model::image_unpatchify(dc, y.data(), img.data());
    EXPECT_EQ(img, (*outs)[0].image);
    // The description matters, and a batch equals its items run alone.
    model::Request r2;
    r2.tokens          = {11, 42, 8};
    model::Request b[] = {r, r2};
    auto both          = model_->run(Path::Full, Modality::Text, b);
    auto alone         = model_->run(Path::Full, Modality::Text, {&r2, 1});
    ASSERT_TRUE(both.is_ok() && alone.is_ok());
    EXPECT_NE((*both)[1].image, (*both)[0].image);
    for (size_t i = 0; i < img.size(); ++i) {
        EXPECT_NEAR((*both)[0].image[i], img[i], 1e-5);
        EXPECT_NEAR((*both)[1].image[i], (*alone)[0].image[i], 1e-5);
    }
}

TEST_F(DrawTest, LargeBatchesRunInPassesEqualToItemsAlone) {
    // 10 items of 1 + 50 + 4 rows: 550 rows, more than one pass of 512.
    std::vector<model::Request> batch(10);
    for (size_t i = 0; i < batch.size(); ++i)
        for (int k = 0; k < 50; ++k) batch[i].tokens.push_back(static_cast<int32_t>(5 + (i * 31 + k * 7) % 150));
    auto all = model_->run(Path::Full, Modality::Text, batch);
    ASSERT_TRUE(all.is_ok()) << all.status().message();
    for (size_t i = 0; i < batch.size(); ++i) {
        auto one = model_->run(Path::Full, Modality::Text, {&batch[i], 1});
        ASSERT_TRUE(one.is_ok());
        ASSERT_EQ((*all)[i].image.size(), (*one)[0].image.size());
        for (size_t k = 0; k < (*one)[0].image.size(); ++k)
            ASSERT_NEAR((*all)[i].image[k], (*one)[0].image[k], 1e-5) << "item " << i;
    }
}

TEST_F(DrawTest, InputFaultsAndFirmwareWithoutProjector) {
    model::Request r;
    expect_status(model_->run(Path::Full, Modality::Text, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "text input is empty");
    r.tokens = {5, 300};
    expect_status(model_->run(Path::Full, Modality::Text, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "out of range");
    r.tokens.assign(64 - 4, 9);  // 1 + 60 + 4 queries > max_seq 64
    expect_status(model_->run(Path::Full, Modality::Text, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "decoder queries) exceeds max_seq");
    r.tokens = {5};
    r.signal = {0.1f, 0.2f};
    expect_status(model_->run(Path::Full, Modality::Text, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "takes text only");
    r.signal.clear();
    expect_status(model_->generate(Path::Full, Modality::Text, {&r, 1}, model::GenerateOptions{}).status(),
                  StatusCode::InvalidArgument, "answers with an image");
    expect_status(nodraw_->run(Path::Full, Modality::Text, {&r, 1}).status(), StatusCode::Incompatible,
                  "from_backbone");
    nlohmann::json j = tiny_config();
    j.erase("decoders");
    const std::string p = temp_dir() + "/nodec_draw.m4fw";
    write_firmware(p, j, 7);
    auto m = model::Model::load(p);
    ASSERT_TRUE(m.is_ok());
    expect_status((*m)->run(Path::Full, Modality::Text, {&r, 1}).status(), StatusCode::Incompatible,
                  "has none (\"decoders.image\")");
    runtime::InputSpec in;
    in.name     = "scene.txt";
    in.modality = Modality::Text;
    in.text     = "a red circle";
    expect_status(runtime::prepare_item(*nodraw_, Path::Full, nullptr, in, "").status(), StatusCode::Incompatible,
                  "no projector from the backbone");
    expect_status(runtime::prepare_item(**m, Path::Full, nullptr, in, "").status(), StatusCode::Incompatible,
                  "no image decoder");
    auto ok = runtime::prepare_item(*model_, Path::Full, nullptr, in, "");
    ASSERT_TRUE(ok.is_ok()) << ok.status().message();
    EXPECT_FALSE(ok->tokens.empty());
    // The same weights elsewhere: the projector's tensors come after the decoder's.
    model::Request e;
    e.tokens = {12, 13};
    auto a   = model_->run(Path::Backbone, Modality::Text, {&e, 1});
    auto b   = nodraw_->run(Path::Backbone, Modality::Text, {&e, 1});
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    EXPECT_EQ((*a)[0].logits, (*b)[0].logits);
}

TEST_F(DrawTest, ImageOutputAdapterOnTheFullPath) {
    adapter::Manifest m;
    m.task     = adapter::Task::Generate;
    m.path     = Path::Full;
    m.modality = Modality::Text;
    auto t     = adapter::expand_targets(model_->config(), Path::Full, Modality::Text, "all");
    ASSERT_TRUE(t.is_ok()) << t.status().message();
    m.targets = *t;
    bool bb = false, proj = false, dec = false;
    for (const auto & n : m.targets) {
        bb |= n.rfind("backbone.layers.", 0) == 0;
        proj |= n == "decoders.image.from_backbone.proj";
        dec |= n == "decoders.image.out_proj";
        EXPECT_EQ(n.rfind("encoders.", 0), std::string::npos) << n;
    }
    EXPECT_TRUE(bb && proj && dec);
    // Path 4 runs the decoder alone: the projector from the backbone is no target there.
    auto g = adapter::expand_targets(model_->config(), Path::Generator, Modality::Image, "all");
    ASSERT_TRUE(g.is_ok());
    EXPECT_EQ(g->size(), 8u);
    for (const auto & n : *g) EXPECT_EQ(n.find("from_backbone"), std::string::npos) << n;
    m.lora_rank = 2, m.lora_alpha = 2;
    const std::string p = temp_dir() + "/scene.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, *model_, m, 3).is_ok());
    auto ad = adapter::Adapter::load(p, *model_);
    ASSERT_TRUE(ad.is_ok()) << ad.status().message();
    EXPECT_EQ(ad->manifest().output, adapter::OutputKind::Image);
    EXPECT_EQ(ad->file().header()["output"], "image");
    model::Request r;
    r.tokens  = {21, 22, 23};
    auto base = model_->run(Path::Full, Modality::Text, {&r, 1});
    r.adapter = &ad->weights();
    auto lora = model_->run(Path::Full, Modality::Text, {&r, 1});
    ASSERT_TRUE(base.is_ok() && lora.is_ok());
    EXPECT_NE((*base)[0].image, (*lora)[0].image);
    // Manifests that contradict themselves, and the adapter on a firmware without the projector.
    nlohmann::json j = ad->file().header();
    j["output"]      = "text";
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "outputs image, not text");
    j         = ad->file().header();
    j["task"] = "classify";
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "its task is generate");
    // Bound to a firmware whose decoder has no projector from the backbone: refused by name.
    m.targets            = {"backbone.layers.0.attn.q"};
    const std::string p2 = temp_dir() + "/scene_nodraw.m4a";
    Status w2            = adapter::write_random_adapter(p2, *nodraw_, m, 3);
    if (w2.is_ok())
        expect_status(adapter::Adapter::load(p2, *nodraw_).status(), StatusCode::Incompatible, "from_backbone");
    else
        expect_status(w2, StatusCode::Incompatible, "from_backbone");
}
