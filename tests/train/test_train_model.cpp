// The training forward equals inference: what TrainModel::infer computes for a batch equals what
// model::Model::run returns for the same inputs with the exported adapter (adapter mode) or the
// exported firmware (full mode). Both files go through the real writers and loaders, so export is
// checked too, and the training graph (train/graph.h) cannot drift from model/encoder.cpp and
// model/backbone.cpp.
#include <fmt/format.h>

#include "adapter/adapter.h"
#include "train/export.h"
#include "train_fixture.h"

using namespace m4;
using namespace m4::test;

namespace {

class TrainModelTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        for (DType dt : {DType::F32, DType::BF16, DType::I8}) {
            std::string p = temp_dir() + "/train_base_" + dtype_name(dt) + ".m4fw";
            write_firmware(p, tiny_config(), 3, dt);
            auto m = model::Model::load(p);
            ASSERT_TRUE(m.is_ok()) << m.status().message();
            models_.push_back(std::move(m).value().release());
        }
    }
    static void TearDownTestSuite() {
        for (auto * m : models_) delete m;
        models_.clear();
    }
    static inline std::vector<model::Model *> models_;
};

// Model::run's output for a sample the way TrainModel::infer reports it.
std::vector<float> run_output(const model::Output & o, const TaskSpec & t) {
    if (t.has_head()) return o.head;
    if (t.objective == Objective::LanguageModel) return o.logits;
    if (t.objective == Objective::Reconstruct) return o.image;
    if (t.objective == Objective::MelRegress) return o.mel;
    return o.embedding;
}

// infer() on `tm` vs Model::run on `fw` with `ad` (may be null), per sample.
void expect_same_as_run(train::TrainModel & tm, const model::Model & fw, const adapter::Adapter * ad,
                        const TaskSpec & t, double tol) {
    const train::Batch batch = random_batch(fw.config(), t, 99, 3);
    auto ours                = tm.infer(t, batch);
    ASSERT_TRUE(ours.is_ok()) << ours.status().message();
    std::vector<model::Request> reqs;
    for (const auto & s : batch) {
        model::Request r;
        r.adapter = ad ? &ad->weights() : nullptr;
        r.signal  = s.signal;
        r.tokens  = s.tokens;
        reqs.push_back(r);
    }
    const Path path = t.objective == Objective::Contrastive ? Path::Encoder : t.path;
    auto theirs     = fw.run(path, t.modality, reqs, {.all_logits = true});
    ASSERT_TRUE(theirs.is_ok()) << theirs.status().message();
    for (size_t i = 0; i < batch.size(); ++i) {
        const std::vector<float> want = run_output((*theirs)[i], t);
        ASSERT_FALSE(want.empty()) << t.name;
        EXPECT_LE(rel_err((*ours)[i], want), tol) << t.name << " sample " << i;
    }
}

TEST_F(TrainModelTest, AdapterInferEqualsModelRunOnEveryPathAndBaseDtype) {
    for (size_t d = 0; d < models_.size(); ++d) {
        const model::Model & fw = *models_[d];
        for (const TaskSpec & t : all_tasks()) {
            train::ModelOptions o;
            o.mode         = train::Mode::Adapter;
            o.lora_rank    = 3;
            o.lora_alpha   = 6;
            o.lora_targets = "all";
            auto tm        = train::TrainModel::create(fw, {t}, o);
            ASSERT_TRUE(tm.is_ok()) << tm.status().message();
            randomise_params(**tm, 5 + d);
            const std::string path = temp_dir() + "/" + t.name + ".m4a";
            ASSERT_TRUE(train::export_adapter(**tm, path, {.name = t.name}).is_ok());
            auto ad = adapter::Adapter::load(path, fw);
            ASSERT_TRUE(ad.is_ok()) << ad.status().message();
            SCOPED_TRACE(fmt::format("{} on {} firmware", t.name, d == 0 ? "f32" : d == 1 ? "bf16" : "i8"));
            expect_same_as_run(**tm, fw, &*ad, t, 1e-5);
        }
    }
}

// A head with a hidden layer: training's forward, the exported adapter (head.hidden.*, head.out.*,
// manifest hidden_dim) and Model::run agree, on every head task.
TEST_F(TrainModelTest, HiddenLayerHeadInferEqualsModelRunAfterExport) {
    const model::Model & fw = *models_[0];
    int tasks               = 0;
    for (const TaskSpec & t : all_tasks()) {
        if (!t.has_head()) continue;
        train::ModelOptions o;
        o.lora_rank    = 2;
        o.lora_alpha   = 4;
        o.lora_targets = "attn";
        o.head_hidden  = 9;
        auto tm        = train::TrainModel::create(fw, {t}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        randomise_params(**tm, 31);
        const std::string path = temp_dir() + "/" + t.name + ".mlp.m4a";
        ASSERT_TRUE(train::export_adapter(**tm, path, {.name = t.name}).is_ok());
        auto ad = adapter::Adapter::load(path, fw);
        ASSERT_TRUE(ad.is_ok()) << ad.status().message();
        EXPECT_EQ(ad->manifest().head_hidden, 9);
        EXPECT_EQ(adapter::manifest_to_json(ad->manifest())["head"]["hidden_dim"], 9);
        ASSERT_TRUE(ad->weights().head.has_hidden());
        EXPECT_EQ(ad->file().find("head.weight"), nullptr) << "an MLP head names its output layer head.out.*";
        SCOPED_TRACE(t.name);
        expect_same_as_run(**tm, fw, &*ad, t, 1e-5);
        ++tasks;
    }
    EXPECT_GE(tasks, 4);
}

TEST_F(TrainModelTest, FullInferEqualsModelRunOfTheExportedFirmware) {
    const model::Model & base   = *models_[0];
    std::vector<TaskSpec> tasks = {all_tasks()[5], all_tasks()[6], contrastive_task(Modality::Audio), all_tasks()[9],
                                   all_tasks().back()};  // gen-audio-mel
    for (bool bf16 : {false, true}) {
        train::ModelOptions o;
        o.mode  = train::Mode::Full;
        o.bf16  = bf16;
        auto tm = train::TrainModel::create(base, tasks, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        perturb_params(**tm, 11);  // the forward must read the masters (or their bf16 copies), not the file
        const std::string path = temp_dir() + (bf16 ? "/full_bf16.m4fw" : "/full_f32.m4fw");
        ASSERT_TRUE(train::export_firmware(**tm, path, {.weight_dtype = bf16 ? DType::BF16 : DType::F32}).is_ok());
        auto fw = model::Model::load(path);
        ASSERT_TRUE(fw.is_ok()) << fw.status().message();
        EXPECT_NE((*fw)->fingerprint(), base.fingerprint());
        for (const TaskSpec & t : tasks) {
            SCOPED_TRACE(t.name + (bf16 ? " bf16" : " f32"));
            expect_same_as_run(**tm, **fw, nullptr, t, 1e-5);
        }
    }
}

TEST_F(TrainModelTest, AdapterModeDoesNotCopyTheBase) {
    const model::Model & fw = *models_[2];  // int8 base
    train::ModelOptions o;
    o.lora_targets = "all";
    auto tm        = train::TrainModel::create(fw, {all_tasks()[6]}, o);
    ASSERT_TRUE(tm.is_ok());
    // Every weight the forward reads is the firmware's own mapped tensor, not a copy.
    EXPECT_EQ((*tm)->weights().backbone.layers[0].q.w.data(), fw.weights().backbone.layers[0].q.w.data());
    EXPECT_EQ((*tm)->weights().backbone.tok_embed.data(), fw.weights().backbone.tok_embed.data());
    EXPECT_EQ((*tm)->weights().encoders[0].patch_embed.w.data(), fw.weights().encoders[0].patch_embed.w.data());
    // Parameters are the LoRA pairs of the path's linears only (no base tensor).
    int64_t lora = 0;
    for (const auto & p : (*tm)->params().params()) {
        EXPECT_EQ(p.name.rfind("lora.", 0), 0u) << p.name;
        lora += p.numel();
    }
    EXPECT_GT(lora, 0);
    EXPECT_LT((*tm)->state_bytes(), static_cast<int64_t>(fw.file().file_size()));
}

TEST_F(TrainModelTest, BadSamplesAreInputFaults) {
    const model::Model & fw = *models_[0];
    TaskSpec t              = all_tasks()[0];
    auto tm                 = train::TrainModel::create(fw, {t}, {});
    ASSERT_TRUE(tm.is_ok());
    train::Batch b = random_batch(fw.config(), t, 1, 2);
    b[1].signal.resize(7);
    auto r = (*tm)->forward_backward(t, b, 1.0f);
    EXPECT_EQ(r.status().code(), StatusCode::InvalidArgument);
    EXPECT_NE(r.status().message().find("sample 1"), std::string::npos) << r.status().message();
    b          = random_batch(fw.config(), t, 1, 2);
    b[0].label = 3;  // out_dim 3
    r          = (*tm)->forward_backward(t, b, 1.0f);
    EXPECT_NE(r.status().message().find("label 3"), std::string::npos) << r.status().message();
    TaskSpec no_audio  = all_tasks()[1];
    nlohmann::json cfg = tiny_config();
    cfg["encoders"].erase("audio");
    const std::string p = temp_dir() + "/no_audio.m4fw";
    write_firmware(p, cfg);
    auto m = model::Model::load(p);
    ASSERT_TRUE(m.is_ok());
    auto bad = train::TrainModel::create(**m, {no_audio}, {});
    EXPECT_EQ(bad.status().code(), StatusCode::Incompatible) << bad.status().message();
}

}  // namespace
