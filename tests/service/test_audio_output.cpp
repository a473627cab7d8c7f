// Audio outputs through the real daemon (issue 18): the generator path over text (path 4, the
// speech decoder alone + Griffin-Lim) served end to end — the WAV a reply carries equals, byte for
// byte, the in-process Model::run output encoded by runtime::encode_wav (with and without an
// audio-output adapter; several texts in one request) — and each fault a coded error naming what
// is wrong, after which the daemon keeps serving: an audio-output adapter on image input or on
// another path, text too long or outside the alphabet, a firmware without the speech decoder. The
// C ABI (m4_synthesize, m4_result_audio) too.
#include "../unit/fixture.h"
#include "base/mapped_file.h"
#include "daemon_harness.h"
#include "m4.h"
#include "runtime/audio_out.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;

namespace {

class AudioOutput : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/audio_output";
        std::filesystem::create_directories(dir_);
        fw_ = dir_ + "/fw.m4fw";
        write_firmware(fw_, tiny_config(), 7);  // speech decoder: 3 characters × 2 frames
        auto m = model::Model::load(fw_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_            = std::move(m).value().release();
        nlohmann::json ns = tiny_config();
        ns["decoders"].erase("speech");
        nospeech_fw_ = dir_ + "/nospeech.m4fw";
        write_firmware(nospeech_fw_, ns, 7);
        adapter::Manifest tts;
        tts.task      = adapter::Task::Generate;
        tts.path      = Path::Generator;
        tts.modality  = Modality::Audio;
        tts.targets   = adapter::expand_targets(model_->config(), Path::Generator, Modality::Audio, "all").value();
        tts.lora_rank = 2, tts.lora_alpha = 4;
        tts_path_ = dir_ + "/tts.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(tts_path_, *model_, tts, 11).is_ok());
        auto a = adapter::Adapter::load(tts_path_, *model_);
        ASSERT_TRUE(a.is_ok()) << a.status().message();
        tts_ = new adapter::Adapter(std::move(a).value());
    }
    static void TearDownTestSuite() {
        delete tts_;
        delete model_;
    }
    static std::string fresh_dir(const std::string & name) { return fresh_dir_under(dir_, name); }
    // The in-process model's output for these texts in one batch, each as the WAV the service must send.
    static std::vector<std::string> expected(const std::vector<std::string> & texts, const adapter::Adapter * ad) {
        std::vector<model::Request> items;
        for (const auto & t : texts) {
            model::Request r;
            r.tokens  = model::speech_symbols(*model_->config().speech_decoder, t).value();
            r.adapter = ad ? &ad->weights() : nullptr;
            items.push_back(std::move(r));
        }
        auto outs = model_->run(Path::Generator, Modality::Audio, items);
        EXPECT_TRUE(outs.is_ok()) << outs.status().message();
        std::vector<std::string> wavs;
        for (const auto & o : *outs) {
            std::string w;
            EXPECT_TRUE(
                runtime::encode_wav(o.audio.data(), static_cast<int64_t>(o.audio.size()), o.audio_rate, &w).is_ok());
            wavs.push_back(std::move(w));
        }
        return wavs;
    }
    static v1::Infer request(const std::string & adapter, v1::Path path, const std::vector<std::string> & texts) {
        v1::Infer q;
        q.set_adapter(adapter);
        q.set_path(path);
        for (const auto & t : texts) q.add_inputs()->set_text(t);
        return q;
    }

    static inline std::string dir_, fw_, nospeech_fw_, tts_path_;
    static inline model::Model * model_   = nullptr;
    static inline adapter::Adapter * tts_ = nullptr;
};

void expect_audio(const v1::Result & r, const std::string & wav, const char * what) {
    ASSERT_TRUE(r.has_audio()) << what;
    EXPECT_EQ(r.audio().sample_rate(), 16000u) << what;
    EXPECT_EQ(r.audio().samples(), 5u * 32 + 64) << what;
    EXPECT_TRUE(r.audio().wav() == wav) << what << ": the served WAV differs from the in-process output";
}

}  // namespace

TEST_F(AudioOutput, ServedAudioEqualsTheInProcessModel) {
    DaemonProcess d(fresh_dir("equal"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("tts", read_file_bytes(tts_path_).value())->status(), v1::STATUS_OK);
    auto r = (*c)->infer(request("", v1::PATH_GENERATOR, {"go"}));
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 1);
    expect_audio(r->infer().results(0), expected({"go"}, nullptr)[0], "decoder alone");
    // The adapter's path decides; three texts in one request: one batch, three sounds in order.
    r = (*c)->infer(request("tts", v1::PATH_UNSPECIFIED, {"go", "No", "up."}));
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 3);
    auto want = expected({"go", "No", "up."}, tts_);
    for (int i = 0; i < 3; ++i) expect_audio(r->infer().results(i), want[i], "adapter, batch of three");
    EXPECT_NE(want[0], expected({"go"}, nullptr)[0]);  // the adapter changes the sound
    auto l = (*c)->list_adapters(false);
    ASSERT_TRUE(l.is_ok());
    ASSERT_EQ(l->list_adapters().adapters_size(), 1);
    EXPECT_EQ(l->list_adapters().adapters(0).output(), "audio");
}

TEST_F(AudioOutput, FaultsAreCodedAndTheDaemonKeepsServing) {
    DaemonProcess d(fresh_dir("faults"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("tts", read_file_bytes(tts_path_).value())->status(), v1::STATUS_OK);
    struct Case {
        const char * what;
        v1::Infer q;
        v1::Status code;
        std::string needle;
    };
    v1::Infer img = request("tts", v1::PATH_UNSPECIFIED, {});
    img.add_inputs()->set_modality("image");
    img.mutable_inputs(0)->mutable_signal()->add_values(0.1f);
    const std::vector<Case> cases = {
        {"too long", request("", v1::PATH_GENERATOR, {"hello"}), v1::STATUS_INVALID_ARGUMENT,
         "input 0: text: 5 characters exceed the speech decoder's 3"},
        {"outside the alphabet", request("tts", v1::PATH_GENERATOR, {"a#"}), v1::STATUS_INVALID_ARGUMENT, "'#' at 1"},
        {"audio adapter on another path", request("tts", v1::PATH_BACKBONE, {"go"}), v1::STATUS_INCOMPATIBLE,
         "adapter tts (audio output, generator path) cannot serve a request on the backbone path"},
        {"audio adapter on an image", img, v1::STATUS_INVALID_ARGUMENT,
         "adapter tts (audio output, generator path) takes text input, not image"},
    };
    for (const auto & cs : cases) {
        auto r = (*c)->infer(cs.q);
        ASSERT_TRUE(r.is_ok()) << cs.what;
        EXPECT_EQ(r->status(), cs.code) << cs.what << ": " << r->message();
        EXPECT_NE(r->message().find(cs.needle), std::string::npos) << cs.what << ": " << r->message();
        // … and the daemon keeps serving.
        auto ok = (*c)->infer(request("tts", v1::PATH_GENERATOR, {"go"}));
        ASSERT_TRUE(ok.is_ok());
        ASSERT_EQ(ok->status(), v1::STATUS_OK) << cs.what << ": " << ok->message();
        expect_audio(ok->infer().results(0), expected({"go"}, tts_)[0], cs.what);
    }
    // A firmware without the speech decoder: text on path 4 is refused by name.
    DaemonProcess d2(fresh_dir("nospeech"), nospeech_fw_);
    ASSERT_TRUE(d2.start()) << d2.log();
    auto c2 = client::Client::connect(d2.socket());
    ASSERT_TRUE(c2.is_ok());
    auto r = (*c2)->infer(request("", v1::PATH_GENERATOR, {"go"}));
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_INCOMPATIBLE) << r->message();
    EXPECT_NE(r->message().find("needs a speech decoder"), std::string::npos) << r->message();
}

TEST_F(AudioOutput, CAbiReturnsTheWavWithoutCopying) {
    DaemonProcess d(fresh_dir("cabi"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    m4_client_t * c = nullptr;
    ASSERT_EQ(m4_client_open(d.socket().c_str(), &c), M4_OK) << m4_last_error(c);
    ASSERT_EQ(m4_adapter_register_file(c, "tts", tts_path_.c_str(), 0), M4_OK) << m4_last_error(c);
    for (const char * adapter : {static_cast<const char *>(nullptr), "tts"}) {
        m4_result_t * r = nullptr;
        ASSERT_EQ(m4_synthesize(c, adapter, "on", &r), M4_OK) << m4_last_error(c);
        const uint8_t * bytes = nullptr;
        uint32_t rate         = 0;
        const size_t n        = m4_result_audio(r, &bytes, &rate);
        EXPECT_EQ(std::string(reinterpret_cast<const char *>(bytes), n), expected({"on"}, adapter ? tts_ : nullptr)[0]);
        EXPECT_EQ(rate, 16000u);
        const uint8_t * png = reinterpret_cast<const uint8_t *>(1);
        EXPECT_EQ(m4_result_image(r, &png, nullptr, nullptr), 0u);  // no image in an audio result
        m4_result_free(r);
    }
    m4_result_t * r = nullptr;
    EXPECT_EQ(m4_synthesize(c, nullptr, "four", &r), M4_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(m4_last_error(c)).find("exceed the speech decoder's 3"), std::string::npos)
        << m4_last_error(c);
    EXPECT_EQ(r, nullptr);
    m4_client_close(c);
}
