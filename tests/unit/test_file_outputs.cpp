// Outputs written to files (runtime/file_outputs.h): which decoder run a manifest makes, the
// missing-decoder errors, run_to_file writing a WAV / PNG of the expected shape and refusing bad
// inputs and outputs, the output directory's checks, the top label and the speech recogniser
// (docs/architecture.md, "Outputs written to files").
#include <sys/stat.h>

#include <cmath>
#include <fstream>

#include "fixture.h"
#include "runtime/file_outputs.h"
#include "runtime/inputs.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;
using runtime::DecoderRun;

namespace {

class FileOutputsTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/file_outputs";
        std::filesystem::create_directories(dir_);
        nlohmann::json c = tiny_config();  // image decoder (no projector) and speech decoder
        write_firmware(dir_ + "/fw.m4fw", c, 7);
        c["decoders"].erase("speech");
        write_firmware(dir_ + "/nospeech.m4fw", c, 7);
        for (auto [p, out] : {std::pair{&model_, "/fw.m4fw"}, std::pair{&nospeech_, "/nospeech.m4fw"}}) {
            auto m = model::Model::load(dir_ + out);
            ASSERT_TRUE(m.is_ok()) << m.status().message();
            *p = std::move(m).value().release();
        }
    }
    static void TearDownTestSuite() {
        delete model_;
        delete nospeech_;
    }
    static inline std::string dir_;
    static inline model::Model * model_    = nullptr;
    static inline model::Model * nospeech_ = nullptr;
};

adapter::Manifest manifest(adapter::Task t, Path p, Modality m) {
    adapter::Manifest man;
    man.task     = t;
    man.path     = p;
    man.modality = m;
    man.output   = adapter::default_output(t, p, m);
    return man;
}

void expect_status(const Status & st, StatusCode code, const std::string & needle) {
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

}  // namespace

TEST(FileOutputs, DecoderRunOfAManifest) {
    using adapter::Task;
    EXPECT_EQ(runtime::decoder_run(manifest(Task::Generate, Path::Generator, Modality::Audio)), DecoderRun::Speech);
    EXPECT_EQ(runtime::decoder_run(manifest(Task::Generate, Path::Generator, Modality::Image)), DecoderRun::Enlarge);
    EXPECT_EQ(runtime::decoder_run(manifest(Task::Generate, Path::Full, Modality::Text)), DecoderRun::Draw);
    EXPECT_EQ(runtime::decoder_run(manifest(Task::Generate, Path::Full, Modality::Image)), DecoderRun::None);
    EXPECT_EQ(runtime::decoder_run(manifest(Task::Classify, Path::Encoder, Modality::Audio)), DecoderRun::None);
    EXPECT_EQ(runtime::decoder_run(manifest(Task::Generate, Path::Backbone, Modality::Text)), DecoderRun::None);
    EXPECT_STREQ(runtime::output_extension(DecoderRun::Speech), "wav");
    EXPECT_STREQ(runtime::output_extension(DecoderRun::Draw), "png");
    EXPECT_STREQ(runtime::output_extension(DecoderRun::None), "");
}

TEST_F(FileOutputsTest, MissingDecodersAreNamed) {
    EXPECT_TRUE(runtime::check_decoder(*model_, "fw.m4fw", DecoderRun::Speech, "tts.m4a").is_ok());
    EXPECT_TRUE(runtime::check_decoder(*model_, "fw.m4fw", DecoderRun::Enlarge, "sr.m4a").is_ok());
    expect_status(runtime::check_decoder(*nospeech_, "nospeech.m4fw", DecoderRun::Speech, "tts.m4a"),
                  StatusCode::Incompatible, "nospeech.m4fw: no speech decoder (\"decoders.speech\") for tts.m4a");
    expect_status(runtime::check_decoder(*model_, "fw.m4fw", DecoderRun::Draw, "scene.m4a"), StatusCode::Incompatible,
                  "(\"decoders.image.from_backbone\") for scene.m4a");
}

TEST_F(FileOutputsTest, SpeechWritesAWavOfTheDecodersLength) {
    const auto man      = manifest(adapter::Task::Generate, Path::Generator, Modality::Audio);
    const std::string p = dir_ + "/ab.wav";
    auto w              = runtime::run_to_file(*model_, "fw.m4fw", nullptr, man, "ab", p, "the generator path");
    ASSERT_TRUE(w.is_ok()) << w.status().message();
    const int64_t n = (6 - 1) * 32 + 64;  // (max_chars · frames_per_char − 1) · hop + n_fft
    EXPECT_EQ(static_cast<int64_t>(w->audio.size()), n);
    EXPECT_EQ(w->sample_rate, 16000);
    EXPECT_EQ(w->shape(), "0.01 s, 16 kHz");
    EXPECT_EQ(std::filesystem::file_size(p), uintmax_t(44 + 2 * n));
    // The file decodes to the same samples (16-bit rounding aside).
    model::EncoderConfig ec = model_->config().encoder(Modality::Audio);
    auto back               = runtime::load_audio(p, ec);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR((*back)[i], w->audio[i], 1.0 / 16000) << i;
    // Faults: a file as the text, the wrong extension, a missing directory, no speech decoder.
    expect_status(runtime::run_to_file(*model_, "fw.m4fw", nullptr, man, p, dir_ + "/x.wav", "tts").status(),
                  StatusCode::InvalidArgument, "takes text, not a file");
    expect_status(runtime::run_to_file(*model_, "fw.m4fw", nullptr, man, "ab", dir_ + "/x.png", "tts").status(),
                  StatusCode::InvalidArgument, "the output is written as .wav");
    expect_status(runtime::run_to_file(*model_, "fw.m4fw", nullptr, man, "ab", dir_ + "/no/x.wav", "tts").status(),
                  StatusCode::NotFound, "does not exist");
    expect_status(
        runtime::run_to_file(*nospeech_, "nospeech.m4fw", nullptr, man, "ab", dir_ + "/x.wav", "tts").status(),
        StatusCode::Incompatible, "no speech decoder");
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.wav"));
}

TEST_F(FileOutputsTest, EnlargementWritesAnSxSPngAndKnowsItsInputSize) {
    const auto man = manifest(adapter::Task::Generate, Path::Generator, Modality::Image);
    std::vector<float> img(4 * 6 * 3);
    for (size_t i = 0; i < img.size(); ++i) img[i] = std::sin(0.3f * float(i));
    const std::string in = dir_ + "/small.npy";
    ASSERT_TRUE(runtime::write_npy_f32(in, img.data(), {4, 6, 3}).is_ok());
    const std::string p = dir_ + "/big.png";
    auto w              = runtime::run_to_file(*model_, "fw.m4fw", nullptr, man, in, p, "sr");
    ASSERT_TRUE(w.is_ok()) << w.status().message();
    EXPECT_EQ(w->shape(), "8x8, enlarged from 6x4");
    std::ifstream f(p, std::ios::binary);
    std::string b((std::istreambuf_iterator<char>(f)), {});
    ASSERT_GE(b.size(), 24u);
    EXPECT_EQ(b.substr(1, 3), "PNG");
    EXPECT_EQ(static_cast<uint8_t>(b[19]), 8);  // width (big-endian, low byte)
    EXPECT_EQ(static_cast<uint8_t>(b[23]), 8);  // height
    expect_status(
        runtime::run_to_file(*model_, "fw.m4fw", nullptr, man, "a red circle", dir_ + "/y.png", "sr").status(),
        StatusCode::InvalidArgument, "takes an image");
}

TEST(FileOutputs, OutputDirectory) {
    const std::string d = temp_dir() + "/outdir/a/b";
    std::filesystem::remove_all(temp_dir() + "/outdir");
    EXPECT_TRUE(runtime::prepare_output_dir(d, "--out-dir").is_ok());
    EXPECT_TRUE(std::filesystem::is_directory(d));
    EXPECT_TRUE(runtime::prepare_output_dir(d, "--out-dir").is_ok());  // existing: fine
    const std::string file = temp_dir() + "/outdir/file";
    std::ofstream(file) << "x";
    expect_status(runtime::prepare_output_dir(file, "--out-dir"), StatusCode::InvalidArgument,
                  "--out-dir " + file + ": exists and is not a directory");
    expect_status(runtime::prepare_output_dir(file + "/sub", "--out-dir"), StatusCode::IoError,
                  "could not create the directory");
    expect_status(runtime::prepare_output_dir("", "--out-dir"), StatusCode::InvalidArgument, "no directory");
}

TEST(FileOutputs, TopLabel) {
    adapter::Manifest m;
    m.labels = {"a", "b"};
    auto t   = runtime::top_label(m, {0.0f, std::log(3.0f)});
    EXPECT_EQ(t.label, "b");
    EXPECT_NEAR(t.prob, 0.75f, 1e-6f);
    t = runtime::top_label(m, {0.0f, 1.0f, 5.0f});  // past the labels
    EXPECT_EQ(t.label, "class 2");
}

TEST_F(FileOutputsTest, RecogniserListensToSpeech) {
    auto m              = manifest(adapter::Task::Classify, Path::Encoder, Modality::Audio);
    m.labels            = {"go"};
    const std::string p = dir_ + "/rec.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, *model_, m, 3).is_ok());
    auto rec = adapter::Adapter::load(p, *model_);
    ASSERT_TRUE(rec.is_ok()) << rec.status().message();
    // Longer than the encoder's 2000-sample clip: cut, as aud.tts's intelligibility score does.
    std::vector<float> samples(3000);
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = 0.5f * std::sin(0.05f * float(i));
    auto h = runtime::recognise_audio(*model_, *rec, "rec.m4a", samples);
    ASSERT_TRUE(h.is_ok()) << h.status().message();
    EXPECT_EQ(h->label, "go");
    EXPECT_FLOAT_EQ(h->prob, 1.0f);
    expect_status(runtime::recognise_audio(*model_, *rec, "rec.m4a", {}).status(), StatusCode::InvalidArgument,
                  "no audio");
    auto g              = manifest(adapter::Task::Generate, Path::Generator, Modality::Audio);
    const std::string q = dir_ + "/tts.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(q, *model_, g, 3).is_ok());
    auto tts = adapter::Adapter::load(q, *model_);
    ASSERT_TRUE(tts.is_ok()) << tts.status().message();
    expect_status(runtime::check_recogniser(*model_, *tts, "tts.m4a"), StatusCode::InvalidArgument,
                  "tts.m4a: a recogniser is an audio classify adapter on the encoder path");
}
