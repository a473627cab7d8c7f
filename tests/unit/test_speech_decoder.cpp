// The speech decoder (TTS-Dec) and path 4 over text: configuration (firmware without it stays
// valid), the alphabet and its faults, Griffin-Lim on the op set (the STFT pair inverts, the
// iterations approach a target spectrum), the path's output and faults, the adapter's output
// kind, and WAV output (docs/architecture.md, "Speech decoder").
#include <cmath>

#include "fixture.h"
#include "ops/ops.h"
#include "runtime/audio_out.h"
#include "runtime/engine.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;

namespace {

class SpeechTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        fw_path_ = temp_dir() + "/speech.m4fw";
        write_firmware(fw_path_, tiny_config(), 7);
        auto m = model::Model::load(fw_path_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }
    static inline std::string fw_path_;
    static inline model::Model * model_ = nullptr;
};

void expect_status(const Status & st, StatusCode code, const std::string & needle) {
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

// A speech decoder config with a realistic STFT (16 kHz, 400/160, 40 mels) for Griffin-Lim tests.
model::SpeechDecoderConfig real_stft() {
    model::SpeechDecoderConfig c;
    c.max_chars = 6, c.frames_per_char = 8, c.n_fft = 400, c.hop = 160, c.n_mels = 40, c.griffin_lim_iters = 32;
    c.width = 16, c.layers = 1, c.heads = 2, c.ffn = 32;
    return c;
}

double mean_abs(const std::vector<float> & a, const std::vector<float> & b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) - b[i]);
    return s / double(a.size());
}

}  // namespace

TEST(SpeechConfig, AbsentStaysValidAndHeaderRoundTrips) {
    nlohmann::json j        = tiny_config();
    j["text"]["vocab_size"] = 200;
    auto with               = model::parse_model_config(j);
    ASSERT_TRUE(with.is_ok()) << with.status().message();
    ASSERT_TRUE(with->has_decoder(Modality::Audio));
    EXPECT_EQ(with->speech_decoder->frames(), 6);
    EXPECT_EQ(with->speech_decoder->samples(), 5 * 32 + 64);
    EXPECT_EQ(with->speech_decoder->audio_view().n_frames(), 6);  // the front end's frames = the decoder's
    const nlohmann::json out = model::model_config_to_json(*with);
    EXPECT_EQ(out["decoders"]["speech"]["max_chars"], 3);
    auto again = model::parse_model_config(out);
    ASSERT_TRUE(again.is_ok()) << again.status().message();
    EXPECT_EQ(model::model_config_to_json(*again).dump(), out.dump());
    j["decoders"].erase("speech");
    auto without = model::parse_model_config(j);
    ASSERT_TRUE(without.is_ok());
    EXPECT_FALSE(without->has_decoder(Modality::Audio));
    EXPECT_FALSE(model::model_config_to_json(*without)["decoders"].contains("speech"));  // unchanged header
    for (const auto & t : model::expected_tensors(*without))
        EXPECT_NE(t.name.rfind("decoders.speech.", 0), 0u) << t.name;
    j["decoders"]["speech"] = {{"max_chars", 4}, {"frames_per_char", 2}, {"width", 10},
                               {"layers", 1},    {"heads", 3},           {"ffn", 8}};
    expect_status(model::parse_model_config(j).status(), StatusCode::InvalidArgument, "decoders.speech");
    j["decoders"]["speech"] = {{"frames_per_char", 2}, {"width", 8}, {"layers", 1}, {"heads", 2}, {"ffn", 8}};
    expect_status(model::parse_model_config(j).status(), StatusCode::InvalidArgument, "max_chars");
}

TEST(SpeechSymbols, AlphabetCaseAndFaults) {
    const model::SpeechDecoderConfig c = real_stft();
    auto ids                           = model::speech_symbols(c, "Go no");
    ASSERT_TRUE(ids.is_ok()) << ids.status().message();
    const std::string & a = model::speech_alphabet();
    ASSERT_EQ(ids->size(), 5u);
    EXPECT_EQ(a[(*ids)[0]], 'g');
    EXPECT_EQ(a[(*ids)[2]], ' ');
    EXPECT_EQ(a.size(), size_t(model::kSpeechSymbols));
    expect_status(model::speech_symbols(c, "seven!").status(), StatusCode::InvalidArgument, "'!' at 5");
    expect_status(model::speech_symbols(c, "abcdefg").status(), StatusCode::InvalidArgument,
                  "7 characters exceed the speech decoder's 6");
    expect_status(model::speech_symbols(c, "").status(), StatusCode::InvalidArgument, "empty");
    // One-hot frames: character i on frames [i·fpc, (i+1)·fpc), padding after the text.
    std::vector<float> x(c.frames() * model::kSpeechSymbols);
    model::speech_inputs(c, ids->data(), ids->size(), x.data());
    for (int64_t t = 0; t < c.frames(); ++t) {
        const int32_t want = t / 8 < 5 ? (*ids)[t / 8] : 0;
        for (int64_t s = 0; s < model::kSpeechSymbols; ++s)
            ASSERT_EQ(x[t * model::kSpeechSymbols + s], s == want ? 1.0f : 0.0f) << t << "," << s;
    }
}

TEST(GriffinLim, VocoderReachesTheTargetSpectrum) {
    const model::SpeechDecoderConfig c = real_stft();
    const model::SpeechVocoder v       = model::make_speech_vocoder(c);
    // A voiced-like target: harmonics of 180 Hz under a slow envelope.
    std::vector<float> x(c.samples());
    for (int64_t i = 0; i < c.samples(); ++i) {
        const double t = double(i) / 16000.0, env = std::sin(M_PI * double(i) / double(c.samples()));
        x[i] = static_cast<float>(
            0.3 * env *
            (std::sin(2 * M_PI * 180 * t) + 0.5 * std::sin(2 * M_PI * 360 * t) + 0.3 * std::sin(2 * M_PI * 900 * t)));
    }
    std::vector<float> target(c.frames() * c.n_mels), got(target.size()), y(c.samples());
    model::speech_log_mel(c, v, x.data(), c.samples(), target.data());
    model::SpeechDecoderConfig c0 = c;
    c0.griffin_lim_iters          = 0;  // the random starting phase only
    model::griffin_lim(c0, v, target.data(), y.data());
    model::speech_log_mel(c, v, y.data(), c.samples(), got.data());
    const double start = mean_abs(got, target);
    model::griffin_lim(c, v, target.data(), y.data());
    model::speech_log_mel(c, v, y.data(), c.samples(), got.data());
    const double end = mean_abs(got, target);
    EXPECT_LT(end, 0.6 * start) << start << " → " << end;
    if (std::getenv("M4_VERBOSE")) std::printf("log-mel error %.3f → %.3f\n", start, end);
    EXPECT_LT(end, 1.0);  // within e^1 of the target's mel power on average
    float peak = 0;
    for (float s : y) peak = std::max(peak, std::fabs(s));
    EXPECT_LE(peak, 0.9f + 1e-6f);
    EXPECT_GT(peak, 0.05f);
    // Deterministic: the same input gives the same samples.
    std::vector<float> y2(c.samples());
    model::griffin_lim(c, v, target.data(), y2.data());
    EXPECT_EQ(y, y2);
}

TEST(GriffinLim, InverseStftOfTheStftIsTheSignal) {
    // With the true phase, one synthesis gives the signal back where frames overlap fully.
    model::SpeechDecoderConfig c = real_stft();
    const model::SpeechVocoder v = model::make_speech_vocoder(c);
    const int64_t N = c.n_fft, K = N / 2 + 1, T = c.frames(), L = c.samples();
    std::vector<float> x(L), re(T * K), im(T * K), fr(T * N), tmp(T * N), y(L, 0.0f);
    for (int64_t i = 0; i < L; ++i)
        x[i] = 0.4f * std::sin(0.013f * float(i * i % 977)) + 0.1f * std::cos(0.3f * float(i));
    ops::matmul(x.data(), c.hop, v.fe.dft_cos, nullptr, re.data(), K, T);
    ops::matmul(x.data(), c.hop, v.fe.dft_sin, nullptr, im.data(), K, T);
    ops::matmul(re.data(), K, v.inv_cos, nullptr, fr.data(), N, T);
    ops::matmul(im.data(), K, v.inv_sin, nullptr, tmp.data(), N, T);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t n = 0; n < N; ++n) y[t * c.hop + n] += fr[t * N + n] + tmp[t * N + n];
    for (int64_t i = 0; i < L; ++i) y[i] *= v.ola_norm[i];
    for (int64_t i = N; i < L - N; ++i) ASSERT_NEAR(y[i], x[i], 2e-4) << i;
}

TEST_F(SpeechTest, GeneratorPathIsDecoderThenGriffinLim) {
    const auto & sc = *model_->config().speech_decoder;
    model::Request r;
    r.tokens  = model::speech_symbols(sc, "go").value();
    auto outs = model_->run(Path::Generator, Modality::Audio, {&r, 1});
    ASSERT_TRUE(outs.is_ok()) << outs.status().message();
    const auto & o = (*outs)[0];
    ASSERT_EQ(o.mel.size(), size_t(sc.frames() * sc.n_mels));
    ASSERT_EQ(o.audio.size(), size_t(sc.samples()));
    EXPECT_EQ(o.audio_rate, 16000);
    std::vector<float> x(sc.frames() * model::kSpeechSymbols), mel(o.mel.size()), wav(o.audio.size());
    model::speech_inputs(sc, r.tokens.data(), r.tokens.size(), x.data());
    model::speech_decoder_forward(sc, model_->weights().speech_decoder, x.data(), 1, {{0, sc.frames(), nullptr}},
                                  mel.data());
    EXPECT_EQ(mel, o.mel);
    model::griffin_lim(sc, *model_->speech_vocoder(), mel.data(), wav.data());
    EXPECT_EQ(wav, o.audio);
    // Different text, different frames.
    model::Request r2;
    r2.tokens  = model::speech_symbols(sc, "no").value();
    auto outs2 = model_->run(Path::Generator, Modality::Audio, {&r2, 1});
    ASSERT_TRUE(outs2.is_ok());
    EXPECT_NE((*outs2)[0].mel, o.mel);
    // A batch of two equals the two alone.
    std::vector<model::Request> both = {r, r2};
    auto b                           = model_->run(Path::Generator, Modality::Audio, both);
    ASSERT_TRUE(b.is_ok());
    EXPECT_EQ((*b)[0].audio, o.audio);
    EXPECT_EQ((*b)[1].mel, (*outs2)[0].mel);
}

TEST_F(SpeechTest, GeneratorTextFaults) {
    model::Request r;
    r.tokens = {1, 2, 3, 4};
    expect_status(model_->run(Path::Generator, Modality::Audio, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "4 characters exceed the speech decoder's 3");
    r.tokens = {};
    expect_status(model_->run(Path::Generator, Modality::Audio, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "empty");
    r.tokens = {40};
    expect_status(model_->run(Path::Generator, Modality::Audio, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "out of range");
    r.tokens = {5};
    r.signal = {0.1f};
    expect_status(model_->run(Path::Generator, Modality::Audio, {&r, 1}).status(), StatusCode::InvalidArgument,
                  "not a signal");
    runtime::InputSpec in;
    in.name     = "text";
    in.modality = Modality::Text;
    in.text     = "hello";
    expect_status(runtime::prepare_item(*model_, Path::Generator, nullptr, in, "").status(),
                  StatusCode::InvalidArgument, "exceed the speech decoder's 3");
    in.text = "h#";
    expect_status(runtime::prepare_item(*model_, Path::Generator, nullptr, in, "").status(),
                  StatusCode::InvalidArgument, "'#' at 1");
    // Without the decoder: valid firmware, the same weights elsewhere, path 4 over text refused.
    nlohmann::json j = tiny_config();
    j["decoders"].erase("speech");
    const std::string p = temp_dir() + "/nospeech.m4fw";
    write_firmware(p, j, 7);
    auto m = model::Model::load(p);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    r.signal.clear();
    expect_status((*m)->run(Path::Generator, Modality::Audio, {&r, 1}).status(), StatusCode::Incompatible,
                  "no audio decoder (\"decoders.speech\"");
    in.text = "hi";
    expect_status(runtime::prepare_item(**m, Path::Generator, nullptr, in, "").status(), StatusCode::Incompatible,
                  "no speech decoder");
    model::Request e;
    e.signal = std::vector<float>(8 * 8 * 3, 0.2f);
    auto a   = model_->run(Path::Generator, Modality::Image, {&e, 1});
    auto b   = (*m)->run(Path::Generator, Modality::Image, {&e, 1});
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    EXPECT_EQ((*a)[0].image, (*b)[0].image);
}

TEST_F(SpeechTest, AudioOutputAdapter) {
    adapter::Manifest m;
    m.task      = adapter::Task::Generate;
    m.path      = Path::Generator;
    m.modality  = Modality::Audio;
    m.targets   = adapter::expand_targets(model_->config(), Path::Generator, Modality::Audio, "all").value();
    m.lora_rank = 2, m.lora_alpha = 2;
    for (const auto & t : m.targets) EXPECT_EQ(t.rfind("decoders.speech.", 0), 0u) << t;
    EXPECT_EQ(m.targets.size(), 8u);  // patch_embed (the symbol embedding), q k v o, fc1, fc2, out_proj
    const std::string p = temp_dir() + "/tts.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, *model_, m, 3).is_ok());
    auto ad = adapter::Adapter::load(p, *model_);
    ASSERT_TRUE(ad.is_ok()) << ad.status().message();
    EXPECT_EQ(ad->manifest().output, adapter::OutputKind::Audio);
    EXPECT_EQ(ad->file().header()["output"], "audio");
    model::Request r;
    r.tokens  = {3, 4};
    auto base = model_->run(Path::Generator, Modality::Audio, {&r, 1});
    r.adapter = &ad->weights();
    auto lora = model_->run(Path::Generator, Modality::Audio, {&r, 1});
    ASSERT_TRUE(base.is_ok() && lora.is_ok());
    EXPECT_NE((*base)[0].mel, (*lora)[0].mel);
    nlohmann::json j = ad->file().header();
    j["output"]      = "image";
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "outputs audio, not image");
    // An audio-output adapter with an image input.
    runtime::InputSpec in;
    in.name     = "x.png";
    in.modality = Modality::Image;
    in.signal   = std::vector<float>(8 * 8 * 3, 0.0f);
    expect_status(runtime::prepare_item(*model_, Path::Generator, &ad->manifest(), in, "").status(),
                  StatusCode::InvalidArgument, "takes text, not image");
    // On a firmware without the speech decoder.
    nlohmann::json c = tiny_config();
    c["decoders"].erase("speech");
    const std::string nd = temp_dir() + "/nospeech2.m4fw";
    write_firmware(nd, c, 7);
    auto fw2 = model::Model::load(nd);
    ASSERT_TRUE(fw2.is_ok());
    auto ad2 = adapter::Adapter::load(p, **fw2, adapter::Binding::Sibling, model_->fingerprint());
    EXPECT_FALSE(ad2.is_ok());
}

TEST(SpeechWav, HeaderAndSamples) {
    std::vector<float> s = {0.0f, 0.5f, -1.0f, 2.0f, NAN};
    std::string w;
    ASSERT_TRUE(runtime::encode_wav(s.data(), 5, 16000, &w).is_ok());
    ASSERT_EQ(w.size(), 44u + 10u);
    EXPECT_EQ(w.substr(0, 4), "RIFF");
    EXPECT_EQ(w.substr(8, 8), "WAVEfmt ");
    EXPECT_EQ(w.substr(36, 4), "data");
    auto u32 = [&](size_t at) {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(w[at + i])) << (8 * i);
        return v;
    };
    EXPECT_EQ(u32(24), 16000u);
    EXPECT_EQ(u32(40), 10u);
    auto pcm = runtime::audio_to_pcm16(s.data(), 5);
    EXPECT_EQ(pcm, (std::vector<int16_t>{0, 16384, -32767, 32767, 0}));
    expect_status(runtime::write_wav(temp_dir() + "/x.png", s.data(), 5, 16000), StatusCode::InvalidArgument, ".wav");
    expect_status(runtime::write_wav(temp_dir() + "/no/dir/x.wav", s.data(), 5, 16000), StatusCode::NotFound,
                  "does not exist");
    ASSERT_TRUE(runtime::write_wav(temp_dir() + "/x.wav", s.data(), 5, 16000).is_ok());
}
