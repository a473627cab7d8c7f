// The benchmark's task layer: stored examples become exactly the model inputs the runtime decodes
// from files (image: to_sample vs runtime::decode_image of the same pixels as PNG), every task of
// the registry has a plan, and every metric gives the exact value on hand-worked inputs.
#include <gtest/gtest.h>

#include <stb/stb_image_write.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/evaluate.h"
#include "bench/task_plan.h"
#include "data/task.h"
#include "runtime/inputs.h"
#include "unit/fixture.h"

namespace fs = std::filesystem;
using namespace m4;

namespace {

// Temp dirs of this process, removed when the tests end.
std::vector<std::string> & temp_dirs() {
    static std::vector<std::string> dirs;
    return dirs;
}

class RemoveTempDirs : public ::testing::Environment {
  public:
    void TearDown() override {
        for (const auto & d : temp_dirs()) fs::remove_all(d);
    }
};
const auto * const kCleanup = ::testing::AddGlobalTestEnvironment(new RemoveTempDirs);

std::string temp_dir(const std::string & name) {
    auto d = fs::temp_directory_path() / ("m4_test_bench_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    temp_dirs().push_back(d.string());
    return d.string();
}

std::string read_all(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

const model::Model & tiny_model() {
    static std::unique_ptr<model::Model> m;
    if (!m) {
        const std::string path                             = temp_dir("fw") + "/tiny.m4fw";
        nlohmann::json c                                   = test::tiny_config();
        c["decoders"]["image"]["from_backbone"]["queries"] = 4;  // img.draw_scene's path
        test::write_firmware(path, c);
        auto r = model::Model::load(path);
        EXPECT_TRUE(r.is_ok()) << r.status().message();
        m = std::move(r).value();
    }
    return *m;
}

}  // namespace

// An image stored in a split and the same pixels written as PNG: to_sample must give the signal
// runtime::decode_image gives (grey and RGB, up- and down-scaled to the firmware's grid).
TEST(BenchSamples, ImageEqualsRuntimeDecodeOfPng) {
    const model::Model & fw = tiny_model();
    const std::string dir   = temp_dir("img");
    struct Shape {
        uint32_t h, w, c;
    };
    const std::vector<Shape> shapes = {{28, 28, 1}, {5, 7, 3}, {32, 128, 1}, {64, 64, 3}, {8, 8, 3}, {8, 8, 1}};
    {
        data::DatasetWriter w(dir + "/imgs.m4ds", data::Modality::Image);
        uint32_t seed = 7;
        for (const auto & s : shapes) {
            std::vector<uint8_t> px(size_t(s.h) * s.w * s.c);
            for (auto & v : px) v = static_cast<uint8_t>((seed = seed * 1103515245u + 12345u) >> 23);
            auto ex  = data::ExampleIn::image(px, s.h, s.w, s.c);
            ex.label = 0;
            ASSERT_TRUE(w.add(ex).is_ok());
        }
        ASSERT_TRUE(w.finish().is_ok());
    }
    auto ds = data::Dataset::open_file(dir + "/imgs.m4ds");
    ASSERT_TRUE(ds.is_ok()) << ds.status().message();
    bench::SampleRecipe r;  // Classify on the encoder path
    for (size_t i = 0; i < ds->size(); ++i) {
        const data::Example ex = ds->at(i);
        const std::string png  = dir + "/" + std::to_string(i) + ".png";
        ASSERT_TRUE(stbi_write_png(png.c_str(), int(ex.dims[1]), int(ex.dims[0]), int(ex.dims[2]), ex.payload,
                                   int(ex.dims[1] * ex.dims[2])));
        auto decoded = runtime::decode_image(read_all(png), png, fw.config().encoder(model::Modality::Image));
        ASSERT_TRUE(decoded.is_ok()) << decoded.status().message();
        auto s = bench::to_sample(*ds, i, r, fw);
        ASSERT_TRUE(s.is_ok()) << s.status().message();
        ASSERT_EQ(s->signal.size(), decoded->size());
        for (size_t k = 0; k < decoded->size(); ++k)
            ASSERT_EQ(s->signal[k], (*decoded)[k]) << "image " << i << " value " << k;
        // At the encoder's own size (8 × 8 here) nothing filters the pixels: the input is exactly
        // (v / 255 − 0.5) / 0.5 of each stored value (grey replicated).
        if (ex.dims[0] == 8 && ex.dims[1] == 8) {
            const uint32_t ch = ex.dims[2];
            for (size_t k = 0; k < decoded->size(); ++k) {
                const uint8_t v = ex.payload[(k / 3) * ch + (ch == 3 ? k % 3 : 0)];
                ASSERT_EQ((*decoded)[k], (v / 255.0f - 0.5f) / 0.5f) << "identity: image " << i << " value " << k;
            }
        }
    }
}

namespace {

// A 16-bit PCM mono WAV file, as an app records it.
std::string wav_pcm16(const std::vector<int16_t> & pcm, uint32_t rate) {
    auto u32 = [](std::string & s, uint32_t v) {
        for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    auto u16 = [](std::string & s, uint16_t v) { s += static_cast<char>(v & 0xff), s += static_cast<char>(v >> 8); };
    const uint32_t data = static_cast<uint32_t>(pcm.size() * 2);
    std::string w       = "RIFF";
    u32(w, 36 + data), w += "WAVEfmt ", u32(w, 16), u16(w, 1), u16(w, 1), u32(w, rate), u32(w, rate * 2);
    u16(w, 2), u16(w, 16), w += "data", u32(w, data);
    for (int16_t v : pcm) u16(w, static_cast<uint16_t>(v));
    return w;
}

}  // namespace

// Audio and IMU examples of a split written as the files an app sends (16-bit WAV, CSV with a
// time column) decode through the serving path (runtime::decode_audio / decode_imu_csv, which the
// engine and `m4fw run` use) to the dataset path's input (bench::to_sample), bit for bit: WAV holds
// the stored 16-bit samples exactly, and 9 significant digits in the CSV give back every float.
TEST(BenchSamples, AudioAndImuEqualRuntimeDecodeOfWavAndCsv) {
    const model::Model & fw = tiny_model();
    const auto & ac         = fw.config().encoder(model::Modality::Audio);
    const auto & ic         = fw.config().encoder(model::Modality::Imu);
    const std::string dir   = temp_dir("audio_imu");
    uint32_t seed           = 11;
    auto uniform = [&] { return static_cast<float>((seed = seed * 1103515245u + 12345u) >> 8) / 8388608.0f - 1.0f; };
    {
        data::DatasetWriter wa(dir + "/audio.m4ds", data::Modality::Audio);
        data::DatasetWriter wi(dir + "/imu.m4ds", data::Modality::Imu);
        for (int64_t n : {ac.clip_samples, ac.clip_samples / 3, int64_t{1}}) {
            std::vector<float> x(static_cast<size_t>(n));
            for (float & v : x) v = 0.9f * uniform();
            auto ex  = data::ExampleIn::audio(x);
            ex.label = 0;
            ASSERT_TRUE(wa.add(ex).is_ok());
        }
        for (int64_t n : {ic.window, ic.window / 2 + 1}) {
            std::vector<float> x(static_cast<size_t>(6 * n));
            for (float & v : x) v = 20.0f * uniform();
            auto ex  = data::ExampleIn::imu(x);
            ex.label = 0;
            ASSERT_TRUE(wi.add(ex).is_ok());
        }
        ASSERT_TRUE(wa.finish().is_ok());
        ASSERT_TRUE(wi.finish().is_ok());
    }
    bench::SampleRecipe r;
    auto audio = data::Dataset::open_file(dir + "/audio.m4ds");
    ASSERT_TRUE(audio.is_ok()) << audio.status().message();
    for (size_t i = 0; i < audio->size(); ++i) {
        const data::Example ex = audio->at(i);
        std::vector<int16_t> pcm(ex.payload_len / 2);
        std::memcpy(pcm.data(), ex.payload, pcm.size() * 2);
        const std::string wav = dir + "/" + std::to_string(i) + ".wav";
        std::ofstream(wav, std::ios::binary) << wav_pcm16(pcm, static_cast<uint32_t>(ac.sample_rate));
        auto decoded = runtime::load_modal_input(wav, ac);
        ASSERT_TRUE(decoded.is_ok()) << decoded.status().message();
        auto s = bench::to_sample(*audio, i, r, fw);
        ASSERT_TRUE(s.is_ok()) << s.status().message();
        ASSERT_EQ(s->signal.size(), static_cast<size_t>(ac.clip_samples));
        ASSERT_EQ(s->signal.size(), decoded->size());
        for (size_t k = 0; k < decoded->size(); ++k)
            ASSERT_EQ(s->signal[k], (*decoded)[k]) << "audio " << i << " sample " << k;
    }
    auto imu = data::Dataset::open_file(dir + "/imu.m4ds");
    ASSERT_TRUE(imu.is_ok()) << imu.status().message();
    for (size_t i = 0; i < imu->size(); ++i) {
        const data::Example ex = imu->at(i);
        const size_t rows      = ex.payload_len / 24;
        std::string csv        = "t,ax,ay,az,gx,gy,gz\n";
        for (size_t j = 0; j < rows; ++j) {
            csv += fmt::format("{:.4f}", double(j) / ic.sample_rate);
            for (int a = 0; a < 6; ++a) {
                float v;
                std::memcpy(&v, ex.payload + (j * 6 + a) * 4, 4);
                csv += fmt::format(",{:.9g}", v);
            }
            csv += "\n";
        }
        const std::string path = dir + "/" + std::to_string(i) + ".csv";
        std::ofstream(path, std::ios::binary) << csv;
        auto decoded = runtime::load_modal_input(path, ic);
        ASSERT_TRUE(decoded.is_ok()) << decoded.status().message();
        auto s = bench::to_sample(*imu, i, r, fw);
        ASSERT_TRUE(s.is_ok()) << s.status().message();
        ASSERT_EQ(s->signal.size(), static_cast<size_t>(ic.window * 6));
        ASSERT_EQ(s->signal.size(), decoded->size());
        for (size_t k = 0; k < decoded->size(); ++k)
            ASSERT_EQ(s->signal[k], (*decoded)[k]) << "imu " << i << " value " << k;
    }
}

// Every task of the registry gets a plan whose objective fits its kind.
TEST(BenchPlans, EveryTaskHasAPlan) {
    const model::Model & fw = tiny_model();
    int planned             = 0;
    for (const auto & t : data::all_tasks()) {
        if (t.info.kind == "pretrain") continue;  // the pretraining corpus, not a task
        ++planned;
        bench::TaskFacts f = bench::facts_from_info(t.info);
        f.labels           = {"alpha", "beta", "gamma"};
        auto p             = bench::make_plan(f, fw.config());
        ASSERT_TRUE(p.is_ok()) << t.info.name << ": " << p.status().message();
        EXPECT_FALSE(p->metrics.empty()) << t.info.name;
        EXPECT_FALSE(p->approach.empty()) << t.info.name;
        EXPECT_GT(p->train.steps, 0) << t.info.name;
        const auto o = p->spec.objective;
        if (t.info.kind == "classify") {
            EXPECT_EQ(o, train::Objective::Classify) << t.info.name;
            EXPECT_EQ(p->spec.out_dim, 3) << t.info.name;
            if (t.info.path_hint == "encoder") {
                EXPECT_FALSE(p->zero_shot_templates.empty()) << t.info.name << ": no zero-shot prompts";
                EXPECT_EQ(bench::zero_shot_prompts(*p).size(), 3u);
            }
        }
        if (t.info.kind == "regress") {
            EXPECT_EQ(o, train::Objective::Regress) << t.info.name;
        }
        if (t.info.kind == "retrieve") {
            EXPECT_EQ(o, train::Objective::Embed) << t.info.name;
        }
        if (t.info.kind == "generate" && o == train::Objective::LanguageModel) {
            EXPECT_GT(p->generation.max_new_tokens, 0) << t.info.name;
        }
        if (t.info.kind == "draw") {
            EXPECT_EQ(o, train::Objective::Draw) << t.info.name;
            EXPECT_EQ(p->spec.path, model::Path::Full) << t.info.name;
            EXPECT_EQ(p->spec.modality, model::Modality::Text) << t.info.name;
        }
        EXPECT_EQ(p->recipe.objective, o) << t.info.name;
        EXPECT_EQ(p->recipe.path, p->spec.path) << t.info.name;
    }
    EXPECT_GE(planned, 32);
    // Errors name the task and the fault.
    bench::TaskFacts bad{"img.x", "image", "classify", "encoder", "accuracy", data::Modality::Image, {"one"}};
    auto r = bench::make_plan(bad, fw.config());
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("img.x"), std::string::npos) << r.status().message();
    bad.labels = {"a", "b"}, bad.metric = "bleu";
    r = bench::make_plan(bad, fw.config());
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("bleu"), std::string::npos) << r.status().message();
    auto missing = bench::plan_task(temp_dir("nodata"), "img.shapes", fw.config());
    ASSERT_FALSE(missing.is_ok());
    EXPECT_NE(missing.status().message().find("not built"), std::string::npos) << missing.status().message();
    auto unknown = bench::plan_task(temp_dir("nodata"), "img.nope", fw.config());
    ASSERT_FALSE(unknown.is_ok());
    EXPECT_NE(unknown.status().message().find("unknown task 'img.nope'"), std::string::npos);
}

TEST(BenchMetrics, ExactMatchAndTop1) {
    EXPECT_DOUBLE_EQ(bench::exact_match({" cat ", "dog", "Cat"}, {"cat", "dig", "cat"}), 1.0 / 3.0);
    EXPECT_DOUBLE_EQ(bench::top1_word_accuracy({"beard and more", " the", "Ex"}, {"beard", "a", "ex"}), 1.0 / 3.0);
}

TEST(BenchMetrics, TokenF1) {
    // pred {cat, sat} (article dropped), ref {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8.
    EXPECT_NEAR(bench::token_f1("the cat sat", "a cat sat down"), 0.8, 1e-12);
    EXPECT_DOUBLE_EQ(bench::token_f1("Hello, World!", "hello world"), 1.0);
    EXPECT_DOUBLE_EQ(bench::token_f1("", "x"), 0.0);
    EXPECT_DOUBLE_EQ(bench::token_f1("", "the"), 1.0);  // both empty after normalisation
    // repeated words count once per occurrence: pred {x, x}, ref {x}: P = 1/2, R = 1 → 2/3
    EXPECT_NEAR(bench::token_f1("x x", "x"), 2.0 / 3.0, 1e-12);
    EXPECT_NEAR(bench::mean_token_f1({"the cat sat", "x x"}, {"a cat sat down", "x"}), (0.8 + 2.0 / 3.0) / 2, 1e-12);
}

TEST(BenchMetrics, ChrF) {
    EXPECT_NEAR(bench::chrf({"guten Tag"}, {"guten Tag"}), 100.0, 1e-9);
    // "ab" vs "ac": unigrams P = R = 1/2 → F = 1/2; bigrams 0 matches → F = 0; no longer n-grams.
    EXPECT_NEAR(bench::chrf({"ab"}, {"ac"}), 25.0, 1e-9);
    // Spaces are ignored: "a b" is "ab".
    EXPECT_NEAR(bench::chrf({"a b"}, {"ab"}), 100.0, 1e-9);
    // Code points, not bytes: "é" vs "e" share no character.
    EXPECT_NEAR(bench::chrf({"é"}, {"e"}), 0.0, 1e-9);
    // Corpus statistics: unigrams {a,b}+{c} vs {a,c}+{c}: 2 of 3 match both ways → F = 2/3;
    // bigrams: hyp {ab} ref {ac}: 0 → F = 0. Mean over the two orders: 100 · (2/3) / 2.
    EXPECT_NEAR(bench::chrf({"ab", "c"}, {"ac", "c"}), 100.0 / 3.0, 1e-9);
}

TEST(BenchMetrics, WordErrorRate) {
    EXPECT_DOUBLE_EQ(bench::wer({"turn on the light"}, {"turn off the lights"}), 0.5);
    // corpus: 2 edits + 1 deletion over 4 + 1 reference words
    EXPECT_DOUBLE_EQ(bench::wer({"turn on the light", ""}, {"turn off the lights", "yes"}), 0.6);
    EXPECT_DOUBLE_EQ(bench::wer({"Volume up!"}, {"volume up"}), 0.0);
    EXPECT_DOUBLE_EQ(bench::wer({"a b c"}, {"a c"}), 0.5);  // one insertion
}

TEST(BenchMetrics, RecallAtK) {
    // 3 queries × 4 items. Query 0's positive ranks 1st, query 1's 3rd, query 2's 4th.
    const std::vector<float> sim                = {0.9f, 0.1f, 0.2f, 0.3f,   //
                                                   0.5f, 0.8f, 0.7f, 0.1f,   // positive item 0 (0.5) ranks 3rd
                                                   0.4f, 0.3f, 0.2f, 0.1f};  // positive item 3 (0.1) ranks 4th
    const std::vector<std::vector<int64_t>> pos = {{0}, {0}, {3}};
    EXPECT_DOUBLE_EQ(bench::recall_at_k(sim, 3, 4, pos, 1), 1.0 / 3.0);
    EXPECT_DOUBLE_EQ(bench::recall_at_k(sim, 3, 4, pos, 3), 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(bench::recall_at_k(sim, 3, 4, pos, 4), 1.0);
    // Several positives: the best one counts.
    EXPECT_DOUBLE_EQ(bench::recall_at_k(sim, 3, 4, {{0}, {0, 1}, {3}}, 1), 2.0 / 3.0);
}

TEST(BenchMetrics, TextMetricByName) {
    auto r = bench::text_metric("wer", {"a"}, {"a b"});
    ASSERT_TRUE(r.is_ok());
    EXPECT_DOUBLE_EQ(*r, 0.5);
    EXPECT_FALSE(bench::text_metric("mae", {"a"}, {"a"}).is_ok());
    EXPECT_FALSE(bench::text_metric("wer", {"a"}, {}).is_ok());
    EXPECT_TRUE(bench::higher_is_better("chrf"));
    EXPECT_FALSE(bench::higher_is_better("wer"));
    EXPECT_FALSE(bench::higher_is_better("mae"));
}
