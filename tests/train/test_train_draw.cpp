// The draw objective (full path into the image decoder): the gradient of every parameter tensor
// against central finite differences of the loss (full mode, and adapter mode with LoRA on every
// linear of the path, plain and foreground-weighted MSE), and train == run: TrainModel::infer
// equals model::Model::run with the exported adapter / firmware.
#include "train/export.h"
#include "train_fixture.h"

using namespace m4;
using namespace m4::test;

namespace {

nlohmann::json draw_config() {
    nlohmann::json j                                   = tiny_config();
    j["decoders"]["image"]["from_backbone"]["queries"] = 4;
    return j;
}

TaskSpec draw_task(float fg = 1.0f) {
    TaskSpec t{"draw", Objective::Draw, Path::Full, Modality::Text};
    t.foreground_weight = fg;
    return t;
}

// Descriptions of 2–4 tokens; targets with a flat background (the top-left value) and a few
// "object" pixels, so the foreground weighting has both kinds.
train::Batch draw_batch(const model::ModelConfig & c, uint64_t seed, int64_t B) {
    train::Rng rng(seed);
    train::Batch b;
    const int64_t S = c.image_decoder->image_size;
    for (int64_t i = 0; i < B; ++i) {
        train::Sample s;
        for (int64_t k = 0; k < 2 + i % 3; ++k) s.tokens.push_back(static_cast<int32_t>(4 + rng.below(150)));
        s.target.assign(static_cast<size_t>(S * S * 3), -1.0f);
        for (int64_t p = 0; p < S * S; ++p)
            if (rng.below(4) == 0)
                for (int k = 0; k < 3; ++k) s.target[p * 3 + k] = rng.uniform(-1.0f, 1.0f);
        s.target[0] = s.target[1] = s.target[2] = -1.0f;
        b.push_back(std::move(s));
    }
    return b;
}

class TrainDrawTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        std::string p = temp_dir() + "/draw_base.m4fw";
        write_firmware(p, draw_config(), 23);
        auto m = model::Model::load(p);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }
    static inline model::Model * model_ = nullptr;
};

// max over a few elements of every parameter of |numeric − analytic| / max|analytic| (elements as
// test_grad_model.cpp). Step 3e-3: the queries are ~0.02 in size and pass the backbone's RMSNorm, so
// a 1e-2 step already costs 2.3e-2 of truncation error there (3e-3: within the bound); a wrong term
// or factor gives errors of order 1. Returns the names of the tensors reached.
std::vector<std::string> check_grads(train::TrainModel & tm, const TaskSpec & t, const train::Batch & batch,
                                     double tol) {
    tm.params().zero_grad();
    auto st = tm.forward_backward(t, batch, 1.0f);
    EXPECT_TRUE(st.is_ok()) << st.status().message();
    std::vector<std::string> reached;
    train::Rng rng(3);
    for (auto & p : tm.params().params()) {
        const float * g = p.grad.f32();
        float * v       = p.value.f32();
        int64_t arg     = 0;
        double gmax     = 0;
        for (int64_t i = 0; i < p.numel(); ++i)
            if (std::fabs(g[i]) > gmax) gmax = std::fabs(g[i]), arg = i;
        if (gmax < 1e-7) continue;
        reached.push_back(p.name);
        double err = 0;
        for (int64_t i : {arg, rng.below(p.numel()), rng.below(p.numel())}) {
            const float v0 = v[i], h = 3e-3f * std::max(1.0f, std::fabs(v0));
            v[i]            = v0 + h;
            const double hp = double(v[i]) - double(v0);
            tm.refresh_shadows();
            const double lp = tm.evaluate(t, batch)->loss;
            v[i]            = v0 - h;
            const double hm = double(v0) - double(v[i]);
            tm.refresh_shadows();
            const double lm = tm.evaluate(t, batch)->loss;
            v[i]            = v0;
            tm.refresh_shadows();
            err = std::max(err, std::fabs((lp - lm) / (hp + hm) - double(g[i])));
        }
        EXPECT_LE(err / gmax, tol) << t.name << " (fg " << t.foreground_weight << "): gradient of " << p.name;
    }
    return reached;
}

bool has(const std::vector<std::string> & v, const std::string & prefix) {
    for (const auto & s : v)
        if (s.rfind(prefix, 0) == 0) return true;
    return false;
}

}  // namespace

TEST_F(TrainDrawTest, FullModeGradientsReachEveryPartOfThePath) {
    for (float fg : {1.0f, 4.0f}) {
        train::ModelOptions o;
        o.mode  = train::Mode::Full;
        auto tm = train::TrainModel::create(*model_, {draw_task(fg)}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        perturb_params(**tm, 5);
        const auto reached = check_grads(**tm, draw_task(fg), draw_batch(model_->config(), 11, 3), 2e-2);
        for (const char * p :
             {"backbone.tok_embed", "backbone.layers.0.", "backbone.layers.1.", "backbone.norm",
              "decoders.image.from_backbone.queries", "decoders.image.from_backbone.proj", "decoders.image.patch_embed",
              "decoders.image.pos_embed", "decoders.image.layers.0.", "decoders.image.out_proj"})
            EXPECT_TRUE(has(reached, p)) << p << " gets no gradient";
        EXPECT_FALSE(has(reached, "encoders.")) << "the full path over text runs no encoder";
    }
}

TEST_F(TrainDrawTest, AdapterModeGradientsOfLoraOnBackboneProjectorDecoder) {
    for (const char * targets : {"all", "decoders.image.from_backbone.proj"}) {
        train::ModelOptions o;
        o.mode         = train::Mode::Adapter;
        o.lora_rank    = 2;
        o.lora_alpha   = 4;
        o.lora_targets = targets;
        auto tm        = train::TrainModel::create(*model_, {draw_task(4.0f)}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        randomise_params(**tm, 9, 0.2f);
        const auto reached = check_grads(**tm, draw_task(4.0f), draw_batch(model_->config(), 12, 2), 6e-2);
        EXPECT_TRUE(has(reached, "lora.decoders.image.from_backbone.proj")) << targets;
        if (std::string(targets) == "all") {
            EXPECT_TRUE(has(reached, "lora.backbone.layers.0."));
            EXPECT_TRUE(has(reached, "lora.decoders.image.out_proj"));
        }
    }
}

TEST_F(TrainDrawTest, InferEqualsModelRunWithTheExportedAdapterAndFirmware) {
    const train::Batch batch = draw_batch(model_->config(), 13, 3);
    auto run_images          = [&](const model::Model & fw, const adapter::Adapter * ad) {
        std::vector<model::Request> reqs;
        for (const auto & s : batch) {
            model::Request r;
            r.adapter = ad ? &ad->weights() : nullptr;
            r.tokens  = s.tokens;
            reqs.push_back(r);
        }
        auto outs = fw.run(Path::Full, Modality::Text, reqs);
        EXPECT_TRUE(outs.is_ok()) << outs.status().message();
        std::vector<std::vector<float>> v;
        for (auto & o : *outs) v.push_back(o.image);
        return v;
    };
    {
        train::ModelOptions o;
        o.mode         = train::Mode::Adapter;
        o.lora_rank    = 3;
        o.lora_alpha   = 6;
        o.lora_targets = "all";
        auto tm        = train::TrainModel::create(*model_, {draw_task()}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        randomise_params(**tm, 17);
        const std::string path = temp_dir() + "/draw.m4a";
        ASSERT_TRUE(train::export_adapter(**tm, path, {.name = "draw"}).is_ok());
        auto ad = adapter::Adapter::load(path, *model_);
        ASSERT_TRUE(ad.is_ok()) << ad.status().message();
        EXPECT_EQ(ad->manifest().output, adapter::OutputKind::Image);
        auto ours = (*tm)->infer(draw_task(), batch);
        ASSERT_TRUE(ours.is_ok()) << ours.status().message();
        const auto theirs = run_images(*model_, &*ad);
        const auto base   = run_images(*model_, nullptr);
        for (size_t i = 0; i < batch.size(); ++i) {
            EXPECT_LE(rel_err((*ours)[i], theirs[i]), 1e-5) << "sample " << i;
            EXPECT_GT(rel_err(base[i], theirs[i]), 1e-3) << "the adapter changes the image";
        }
    }
    {
        train::ModelOptions o;
        o.mode  = train::Mode::Full;
        auto tm = train::TrainModel::create(*model_, {draw_task()}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        perturb_params(**tm, 19, 0.05f);
        const std::string path = temp_dir() + "/draw_full.m4fw";
        ASSERT_TRUE(train::export_firmware(**tm, path, {}).is_ok());
        auto fw = model::Model::load(path);
        ASSERT_TRUE(fw.is_ok()) << fw.status().message();
        EXPECT_TRUE((*fw)->config().has_draw_path());
        auto ours = (*tm)->infer(draw_task(), batch);
        ASSERT_TRUE(ours.is_ok());
        const auto theirs = run_images(**fw, nullptr);
        for (size_t i = 0; i < batch.size(); ++i) EXPECT_LE(rel_err((*ours)[i], theirs[i]), 1e-5) << "sample " << i;
    }
}

TEST_F(TrainDrawTest, TaskAndSampleFaults) {
    train::ModelOptions o;
    TaskSpec bad = draw_task();
    bad.path     = Path::Backbone;
    {
        auto tm = train::TrainModel::create(*model_, {bad}, o);
        ASSERT_FALSE(tm.is_ok());
        EXPECT_NE(tm.status().message().find("draw objective"), std::string::npos) << tm.status().message();
    }
    auto tm = train::TrainModel::create(*model_, {draw_task()}, o);
    ASSERT_TRUE(tm.is_ok());
    train::Batch b = draw_batch(model_->config(), 1, 1);
    b[0].target.resize(5);
    auto st = (*tm)->forward_backward(draw_task(), b, 1.0f);
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.status().message().find("decoder's grid"), std::string::npos) << st.status().message();
    b           = draw_batch(model_->config(), 1, 1);
    b[0].signal = {0.5f};
    st          = (*tm)->forward_backward(draw_task(), b, 1.0f);
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.status().message().find("text only"), std::string::npos) << st.status().message();
    // A firmware whose decoder has no projector from the backbone.
    const std::string p = temp_dir() + "/draw_noproj.m4fw";
    write_firmware(p, tiny_config(), 23);
    auto m = model::Model::load(p);
    ASSERT_TRUE(m.is_ok());
    auto tm2 = train::TrainModel::create(**m, {draw_task()}, o);
    ASSERT_FALSE(tm2.is_ok());
    EXPECT_EQ(tm2.status().code(), StatusCode::Incompatible);
    EXPECT_NE(tm2.status().message().find("from_backbone"), std::string::npos) << tm2.status().message();
}
