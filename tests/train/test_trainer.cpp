// The trainer: convergence on synthetic tasks an untrained model cannot solve, resuming from a
// checkpoint reproduces the uninterrupted loss curve exactly, checkpoint faults, export metrics.
// (The kill -9 version of the resume test runs the CLI: tests/train/test_resume_kill.sh.)
#include <filesystem>
#include <fstream>

#include "adapter/adapter.h"
#include "train/export.h"
#include "train/synthetic.h"
#include "train/trainer.h"
#include "train_fixture.h"

using namespace m4;
using namespace m4::train;

namespace {

class TrainerTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // The tiny test firmware with the IMU encoder of configs/demo-random.json (100 samples in 10
        // patches, width 64, 2 layers): the tiny one (width 16) does not separate the activities.
        nlohmann::json cfg     = test::tiny_config();
        cfg["encoders"]["imu"] = {{"sample_rate", 50}, {"window", 100}, {"patch_size", 10}, {"width", 64},
                                  {"layers", 2},       {"heads", 4},    {"ffn", 128}};
        std::string p          = test::temp_dir() + "/trainer_base.m4fw";
        test::write_firmware(p, cfg, 31);
        auto m = model::Model::load(p);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }

    static std::unique_ptr<DataSource> source(const std::string & name, int64_t eval = 128) {
        auto s = make_synthetic(name, model_->config(), 1, eval);
        EXPECT_TRUE(s.is_ok()) << s.status().message();
        return std::move(s).value();
    }
    static TrainerOptions quiet(int64_t steps) {
        TrainerOptions o;
        o.steps            = steps;
        o.progress         = Progress::Off;
        o.schedule.peak_lr = 1e-2f;
        o.schedule.warmup  = steps / 10;
        o.batch_size       = 16;
        return o;
    }
    static inline model::Model * model_ = nullptr;
};

// Chance level at initialisation, ≥ 90 % after 200 updates of a LoRA adapter (+ head) on every linear.
TEST_F(TrainerTest, AdapterConvergesOnImuActivity) {
    auto src = source("imu-activity");
    ModelOptions mo;
    mo.lora_targets = "all";
    mo.lora_rank    = 8;
    auto tm         = TrainModel::create(*model_, {src->task()}, mo);
    ASSERT_TRUE(tm.is_ok()) << tm.status().message();
    Trainer tr(**tm, {src.get()}, quiet(200));
    auto before = tr.evaluate();
    ASSERT_TRUE(before.is_ok());
    auto r = tr.run();
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    std::printf("imu-activity: accuracy %.3f at init, %.3f after 200 updates (loss %.3f → %.3f)\n",
                (*before)[0].accuracy, r->eval[0].accuracy, r->losses.front(), r->losses.back());
    EXPECT_LE((*before)[0].accuracy, 0.45);  // 4 classes: chance is 0.25
    EXPECT_GE(r->eval[0].accuracy, 0.90);
}

// Full training of the whole backbone on counting (token-level LM): ≥ 90 % next-token accuracy.
TEST_F(TrainerTest, FullModeLearnsToCount) {
    auto src = source("text-successor");
    ModelOptions mo;
    mo.mode = Mode::Full;
    auto tm = TrainModel::create(*model_, {src->task()}, mo);
    ASSERT_TRUE(tm.is_ok());
    TrainerOptions o   = quiet(200);
    o.schedule.peak_lr = 3e-3f;
    Trainer tr(**tm, {src.get()}, o);
    auto before = tr.evaluate();
    auto r      = tr.run();
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    std::printf("text-successor: token accuracy %.3f at init, %.3f after 200 updates\n", (*before)[0].accuracy,
                r->eval[0].accuracy);
    EXPECT_LE((*before)[0].accuracy, 0.2);  // 32 possible successors
    EXPECT_GE(r->eval[0].accuracy, 0.90);
}

TEST_F(TrainerTest, ResumeReproducesTheUninterruptedCurve) {
    const std::string ck = test::temp_dir() + "/resume.ckpt";
    auto run_once        = [&](int64_t stop_after, bool resume, std::vector<float> * curve) {
        auto src = source("image-caption", 16);
        ModelOptions mo;
        mo.lora_targets = "all";
        mo.seed         = 9;
        auto tm         = TrainModel::create(*model_, {src->task()}, mo);
        ASSERT_TRUE(tm.is_ok());
        TrainerOptions o   = quiet(24);
        o.checkpoint       = ck;
        o.checkpoint_every = 6;
        o.stop_after       = stop_after;
        o.resume           = resume;
        o.accum            = 2;
        o.seed             = 77;
        Trainer tr(**tm, {src.get()}, o);
        auto r = tr.run();
        ASSERT_TRUE(r.is_ok()) << r.status().message();
        *curve = r->losses;
    };
    std::vector<float> full, partial, resumed;
    std::filesystem::remove(ck);
    run_once(-1, false, &full);
    std::filesystem::remove(ck);
    run_once(9, false, &partial);  // dies after 9 updates; the last checkpoint holds 6
    ASSERT_EQ(partial.size(), 9u);
    run_once(-1, true, &resumed);
    ASSERT_EQ(resumed.size(), full.size());
    for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(resumed[i], full[i]) << "update " << i;
    EXPECT_LT(full.back(), full.front());
}

TEST_F(TrainerTest, CheckpointFaultsAreNamed) {
    const std::string ck = test::temp_dir() + "/faults.ckpt";
    auto src             = source("text-first", 8);
    auto tm              = TrainModel::create(*model_, {src->task()}, {});
    ASSERT_TRUE(tm.is_ok());
    TrainerOptions o = quiet(3);
    o.checkpoint     = ck;
    Trainer tr(**tm, {src.get()}, o);
    ASSERT_TRUE(tr.run().is_ok());
    // Another run (different batch size) may not resume it.
    TrainerOptions o2 = o;
    o2.batch_size     = 8;
    o2.resume         = true;
    o2.steps          = 6;
    Trainer tr2(**tm, {src.get()}, o2);
    auto r = tr2.run();
    EXPECT_EQ(r.status().code(), StatusCode::Incompatible);
    EXPECT_NE(r.status().message().find("\"batch_size\""), std::string::npos) << r.status().message();
    // A flipped byte fails the digest; the message names the file.
    {
        std::fstream f(ck, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(200);
        f.put('\x5a');
    }
    TrainState st;
    const Status s = load_checkpoint(ck, &(*tm)->params(), &st);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find(ck), std::string::npos) << s.message();
}

TEST_F(TrainerTest, ExportedAdapterCarriesItsValidationMetrics) {
    auto src = source("text-first", 32);
    auto tm  = TrainModel::create(*model_, {src->task()}, {});
    ASSERT_TRUE(tm.is_ok());
    Trainer tr(**tm, {src.get()}, quiet(5));
    auto r = tr.run();
    ASSERT_TRUE(r.is_ok());
    const std::string path = test::temp_dir() + "/text_first.m4a";
    ASSERT_TRUE(export_adapter(**tm, path, {.name = "text-first", .metrics = r->eval[0].to_json()}).is_ok());
    auto ad = adapter::Adapter::load(path, *model_);
    ASSERT_TRUE(ad.is_ok()) << ad.status().message();
    EXPECT_EQ(ad->manifest().metrics.value("accuracy", -1.0), r->eval[0].accuracy);
    EXPECT_EQ(ad->manifest().head_pool, model::HeadPool::Last);
    EXPECT_EQ(ad->manifest().targets, (*tm)->lora_targets());
}

}  // namespace
