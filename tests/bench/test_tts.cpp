// aud.tts: the speech-decoder recipe parses (and refuses a mel_regress objective without
// decoders.speech), the task's plan trains the speech decoder on the generator path, and
// `evaluate_tts` scores a small build end to end — log-mel distance against the mean-mel baseline,
// intelligibility through recogniser adapters whose labels hold the test words.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "bench/pretrain.h"
#include "bench/tts.h"
#include "data/build.h"
#include "data/task.h"
#include "unit/fixture.h"

using namespace m4;

namespace {

nlohmann::json tts_config() {  // 16 kHz, n_fft 400 / hop 160 / 40 mels (the recipe's), 8 characters
    nlohmann::json cfg        = test::tiny_config();
    cfg["decoders"]["speech"] = {{"max_chars", 8}, {"frames_per_char", 2}, {"n_mels", 40}, {"griffin_lim_iters", 2},
                                 {"width", 16},    {"layers", 1},          {"heads", 2},   {"ffn", 32}};
    cfg["encoders"]["audio"]["n_mels"] = 40;
    return cfg;
}

}  // namespace

TEST(Tts, RecipeTrainsTheSpeechDecoderWithMelRegress) {
    std::ifstream in(std::string(M4_SOURCE_DIR) + "/recipes/tts-decoder.json");
    ASSERT_TRUE(in.good());
    nlohmann::json j = nlohmann::json::parse(in);
    auto r           = bench::parse_pretrain_recipe(j, "tts-decoder.json");
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    ASSERT_EQ(r->objectives.size(), 1u);
    EXPECT_EQ(r->objectives[0].kind, "mel_regress");
    nlohmann::json bad               = j;
    bad["objectives"][0]["modality"] = "image";
    EXPECT_NE(bench::parse_pretrain_recipe(bad, "r.json").status().message().find("\"modality\": \"audio\""),
              std::string::npos);
    bad = j;
    bad["architecture"]["decoders"].erase("speech");
    const auto st = bench::parse_pretrain_recipe(bad, "r.json").status();
    EXPECT_NE(st.message().find("no \"decoders\": {\"speech\"}"), std::string::npos) << st.message();
}

TEST(Tts, PlanTrainsTheSpeechDecoderOnTheGeneratorPath) {
    nlohmann::json cfg        = test::tiny_config();
    cfg["text"]["vocab_size"] = 200;
    auto c                    = model::parse_model_config(cfg);
    ASSERT_TRUE(c.is_ok());
    const data::Task * t = data::find_task("aud.tts");
    ASSERT_NE(t, nullptr);
    auto plan = bench::make_plan(bench::facts_from_info(t->info), *c);
    ASSERT_TRUE(plan.is_ok()) << plan.status().message();
    EXPECT_EQ(plan->spec.objective, train::Objective::MelRegress);
    EXPECT_EQ(plan->spec.path, model::Path::Generator);
    EXPECT_EQ(plan->spec.modality, model::Modality::Audio);
    EXPECT_EQ(plan->metrics.at(0), "intelligibility");
    EXPECT_FALSE(bench::higher_is_better("mel_l1"));
    cfg["decoders"].erase("speech");
    auto nospeech = model::parse_model_config(cfg);
    auto bad      = bench::make_plan(bench::facts_from_info(t->info), *nospeech);
    EXPECT_EQ(bad.status().code(), StatusCode::Incompatible) << bad.status().message();
}

TEST(Tts, EvaluationScoresASmallBuild) {
    data::BuildOptions opt;
    opt.scale    = 0.005;
    opt.quiet    = true;
    opt.dir      = test::temp_dir() + "/tts_eval";
    Status built = data::build_tasks({"aud.tts"}, opt);
    if (!built.is_ok()) GTEST_SKIP() << "espeak-ng / word lists not installed: " << built.message();
    const std::string fw_path = test::temp_dir() + "/tts_eval.m4fw";
    test::write_firmware(fw_path, tts_config(), 5);
    auto fw = model::Model::load(fw_path);
    ASSERT_TRUE(fw.is_ok()) << fw.status().message();
    auto plan = bench::make_plan(bench::facts_from_info(data::find_task("aud.tts")->info), (*fw)->config());
    ASSERT_TRUE(plan.is_ok()) << plan.status().message();
    // The reference's log-mel is the decoder's grid over the stored rendering.
    auto ds = data::Dataset::open(opt.dir, "aud.tts", "test").value();
    auto ex = bench::tts_example(ds.at(0), **fw, "test #0");
    ASSERT_TRUE(ex.is_ok()) << ex.status().message();
    EXPECT_EQ(ex->logmel.size(), 16u * 40);
    EXPECT_EQ(ex->clip.size(), 16000u);
    bench::EvalOptions o;
    // Without recognisers: log-mel distance only, against the mean training log-mel.
    auto mel = bench::evaluate_tts(**fw, nullptr, "", *plan, opt.dir, o, {});
    ASSERT_TRUE(mel.is_ok()) << mel.status().message();
    EXPECT_EQ(mel->metric, "mel_l1");
    EXPECT_EQ(mel->examples, 20);
    EXPECT_GT(mel->score, 0.0);
    EXPECT_GT(mel->chance, 0.0);
    // A recogniser whose labels hold the 20 test words (random weights: any accuracy in [0, 1]).
    adapter::Manifest m;
    m.task     = adapter::Task::Classify;
    m.path     = model::Path::Encoder;
    m.modality = model::Modality::Audio;
    for (size_t i = 0; i < ds.size(); ++i) {
        const std::string w(ds.at(i).target);
        if (std::find(m.labels.begin(), m.labels.end(), w) == m.labels.end()) m.labels.push_back(w);
    }
    ASSERT_EQ(m.labels.size(), 20u);
    m.head_out                 = 20;
    const std::string rec_path = test::temp_dir() + "/tts_rec.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(rec_path, **fw, m, 9).is_ok());
    auto rec_ad = adapter::Adapter::load(rec_path, **fw);
    ASSERT_TRUE(rec_ad.is_ok()) << rec_ad.status().message();
    bench::TtsRecognisers rec{fw->get(), {&*rec_ad}, {rec_path}};
    auto full = bench::evaluate_tts(**fw, nullptr, "", *plan, opt.dir, o, rec);
    ASSERT_TRUE(full.is_ok()) << full.status().message();
    EXPECT_EQ(full->metric, "intelligibility");
    EXPECT_GE(full->score, 0.0);
    EXPECT_LE(full->score, 1.0);
    EXPECT_NEAR(full->extra.at(1).second, 1.0 / 20, 1e-9);  // guessing
    EXPECT_EQ(full->samples.size(), 20u);
    // A recogniser that is not an audio classifier is refused by name.
    adapter::Manifest g;
    g.task      = adapter::Task::Generate;
    g.path      = model::Path::Generator;
    g.modality  = model::Modality::Audio;
    g.targets   = adapter::expand_targets((*fw)->config(), g.path, g.modality, "all").value();
    g.lora_rank = 2, g.lora_alpha = 2;
    const std::string gen_path = test::temp_dir() + "/tts_gen.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(gen_path, **fw, g, 9).is_ok());
    auto gen_ad = adapter::Adapter::load(gen_path, **fw);
    ASSERT_TRUE(gen_ad.is_ok());
    bench::TtsRecognisers wrong{fw->get(), {&*gen_ad}, {gen_path}};
    auto st = bench::evaluate_tts(**fw, nullptr, "", *plan, opt.dir, o, wrong).status();
    EXPECT_NE(st.message().find("tts_gen.m4a: a recogniser is an audio classify adapter"), std::string::npos)
        << st.message();
    std::filesystem::remove_all(opt.dir);
}
