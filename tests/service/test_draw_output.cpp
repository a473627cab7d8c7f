// The full path into the image decoder served by the real daemon (issue 18): a description on
// PATH_FULL answers with the decoder's image as PNG (Result.image), equal byte for byte to the
// in-process Model::run output (firmware alone and with an image-output adapter of the full path,
// several descriptions in one request), the C ABI's m4_draw_image, and each fault a coded error
// after which the daemon keeps serving: a firmware whose decoder has no projector from the
// backbone, the adapter on another path or on an image, a description too long, constrained output.
#include "../unit/fixture.h"
#include "base/mapped_file.h"
#include "daemon_harness.h"
#include "m4.h"
#include "runtime/engine.h"
#include "runtime/images.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;

namespace {

class DrawOutput : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/draw_output";
        std::filesystem::create_directories(dir_);
        nlohmann::json j                                   = tiny_config();
        j["decoders"]["image"]["from_backbone"]["queries"] = 4;
        fw_                                                = dir_ + "/fw.m4fw";
        write_firmware(fw_, j, 9);
        auto m = model::Model::load(fw_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_     = std::move(m).value().release();
        noproj_fw_ = dir_ + "/noproj.m4fw";
        write_firmware(noproj_fw_, tiny_config(), 9);
        adapter::Manifest sc;
        sc.task      = adapter::Task::Generate;
        sc.path      = Path::Full;
        sc.modality  = Modality::Text;
        sc.targets   = adapter::expand_targets(model_->config(), Path::Full, Modality::Text, "all").value();
        sc.lora_rank = 2, sc.lora_alpha = 4;
        scene_path_ = dir_ + "/scene.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(scene_path_, *model_, sc, 13).is_ok());
        auto a = adapter::Adapter::load(scene_path_, *model_);
        ASSERT_TRUE(a.is_ok()) << a.status().message();
        scene_ = new adapter::Adapter(std::move(a).value());
    }
    static void TearDownTestSuite() {
        delete scene_;
        delete model_;
    }
    static std::string fresh_dir(const std::string & name) { return fresh_dir_under(dir_, name); }
    // The in-process outputs for these descriptions (one batch), as the PNGs the service must send.
    static std::vector<std::string> expected(const std::vector<std::string> & texts, const adapter::Adapter * ad) {
        std::vector<model::Request> items;
        for (const auto & t : texts) {
            runtime::InputSpec in;
            in.name     = "expected";
            in.modality = Modality::Text;
            in.text     = t;
            auto r      = runtime::prepare_item(*model_, Path::Full, ad ? &ad->manifest() : nullptr, in, "");
            EXPECT_TRUE(r.is_ok()) << r.status().message();
            r->adapter = ad ? &ad->weights() : nullptr;
            items.push_back(std::move(r).value());
        }
        auto outs = model_->run(Path::Full, Modality::Text, items);
        EXPECT_TRUE(outs.is_ok()) << outs.status().message();
        std::vector<std::string> pngs;
        for (const auto & o : *outs) {
            std::string p;
            EXPECT_TRUE(runtime::encode_png(o.image.data(), o.image_size, o.image_size, &p).is_ok());
            pngs.push_back(std::move(p));
        }
        return pngs;
    }
    static v1::Infer request(const std::string & adapter, v1::Path path, const std::vector<std::string> & texts) {
        v1::Infer q;
        q.set_adapter(adapter);
        q.set_path(path);
        for (const auto & t : texts) q.add_inputs()->set_text(t);
        return q;
    }

    static inline std::string dir_, fw_, noproj_fw_, scene_path_;
    static inline model::Model * model_     = nullptr;
    static inline adapter::Adapter * scene_ = nullptr;
};

void expect_image(const v1::Result & r, const std::string & png, const std::string & what) {
    ASSERT_TRUE(r.has_image()) << what;
    EXPECT_EQ(r.image().width(), 8u) << what;
    EXPECT_EQ(r.image().height(), 8u) << what;
    EXPECT_TRUE(r.image().png() == png) << what << ": the served PNG differs from the in-process output";
}

}  // namespace

TEST_F(DrawOutput, ServedImagesEqualTheInProcessModel) {
    DaemonProcess d(fresh_dir("equal"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("scene", read_file_bytes(scene_path_).value())->status(), v1::STATUS_OK);
    const std::string a = "a large red circle at the top left", b = "a small blue square in the center";
    auto r = (*c)->infer(request("", v1::PATH_FULL, {a}));
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 1);
    expect_image(r->infer().results(0), expected({a}, nullptr)[0], "firmware alone");
    // The adapter's path decides (the request need not name it); two descriptions, one batch.
    r = (*c)->infer(request("scene", v1::PATH_UNSPECIFIED, {a, b}));
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 2);
    const auto want = expected({a, b}, scene_);
    for (int i = 0; i < 2; ++i) expect_image(r->infer().results(i), want[i], "adapter, item " + std::to_string(i));
    EXPECT_NE(want[0], expected({a}, nullptr)[0]);  // the adapter changes the image
    EXPECT_NE(want[0], want[1]);                    // and the description does
    auto l = (*c)->list_adapters(false);
    ASSERT_TRUE(l.is_ok());
    ASSERT_EQ(l->list_adapters().adapters_size(), 1);
    EXPECT_EQ(l->list_adapters().adapters(0).output(), "image");
    EXPECT_EQ(l->list_adapters().adapters(0).path(), "full");
}

TEST_F(DrawOutput, FaultsAreCodedAndTheDaemonKeepsServing) {
    DaemonProcess d(fresh_dir("faults"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("scene", read_file_bytes(scene_path_).value())->status(), v1::STATUS_OK);
    const std::string desc = "a small green star on the left", want = expected({desc}, scene_)[0];
    std::string long_text;
    for (int i = 0; i < 40; ++i) long_text += "red circle blue square ";
    struct Case {
        const char * what;
        v1::Infer q;
        v1::Status code;
        std::string needle;
    };
    v1::Infer on_image = request("scene", v1::PATH_UNSPECIFIED, {});
    on_image.add_inputs()->set_modality("image");
    on_image.mutable_inputs(0)->mutable_signal()->add_values(0.5f);
    v1::Infer constrained = request("scene", v1::PATH_UNSPECIFIED, {desc});
    constrained.add_choices("a");
    const std::vector<Case> cases = {
        {"image adapter on the backbone path", request("scene", v1::PATH_BACKBONE, {desc}), v1::STATUS_INCOMPATIBLE,
         "adapter scene (image output, full path) cannot serve a request on the backbone path"},
        {"image adapter on an image", on_image, v1::STATUS_INVALID_ARGUMENT, "takes text input, not image"},
        {"description too long", request("", v1::PATH_FULL, {long_text}), v1::STATUS_INVALID_ARGUMENT, "max_seq"},
        {"constrained output on a drawing", constrained, v1::STATUS_INVALID_ARGUMENT,
         "constrained output needs generation"},
    };
    for (const auto & cs : cases) {
        auto r = (*c)->infer(cs.q);
        ASSERT_TRUE(r.is_ok()) << cs.what;
        EXPECT_EQ(r->status(), cs.code) << cs.what << ": " << r->message();
        EXPECT_NE(r->message().find(cs.needle), std::string::npos) << cs.what << ": " << r->message();
        EXPECT_FALSE(r->has_infer()) << cs.what;
        auto rr = (*c)->infer(request("scene", v1::PATH_FULL, {desc}));
        ASSERT_TRUE(rr.is_ok()) << cs.what;
        ASSERT_EQ(rr->status(), v1::STATUS_OK) << cs.what << ": " << rr->message();
        expect_image(rr->infer().results(0), want, cs.what);
    }
}

TEST_F(DrawOutput, FirmwareWithoutProjectorRefusesThePath) {
    DaemonProcess d(fresh_dir("noproj"), noproj_fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    for (int round = 0; round < 2; ++round) {
        auto r = (*c)->infer(request("", v1::PATH_FULL, {"a red circle"}));
        ASSERT_TRUE(r.is_ok());
        EXPECT_EQ(r->status(), v1::STATUS_INCOMPATIBLE) << r->message();
        EXPECT_NE(r->message().find("no projector from the backbone"), std::string::npos) << r->message();
        v1::Infer t;
        t.add_inputs()->set_text("hello");
        t.set_max_new_tokens(2);
        auto rt = (*c)->infer(t);
        ASSERT_TRUE(rt.is_ok());
        EXPECT_EQ(rt->status(), v1::STATUS_OK) << rt->message();
    }
}

TEST_F(DrawOutput, CAbiDrawsWithoutCopying) {
    DaemonProcess d(fresh_dir("cabi"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    m4_client_t * c = nullptr;
    ASSERT_EQ(m4_client_open(d.socket().c_str(), &c), M4_OK) << m4_last_error(c);
    ASSERT_EQ(m4_adapter_register_file(c, "scene", scene_path_.c_str(), 0), M4_OK) << m4_last_error(c);
    const std::string desc = "a large yellow heart at the bottom right";
    for (const char * adapter : {static_cast<const char *>(nullptr), "scene"}) {
        m4_result_t * r = nullptr;
        ASSERT_EQ(m4_draw_image(c, adapter, desc.c_str(), &r), M4_OK) << m4_last_error(c);
        const uint8_t * bytes = nullptr;
        uint32_t w = 0, h = 0;
        const size_t n = m4_result_image(r, &bytes, &w, &h);
        EXPECT_EQ(std::string(reinterpret_cast<const char *>(bytes), n),
                  expected({desc}, adapter ? scene_ : nullptr)[0])
            << (adapter ? adapter : "none");
        EXPECT_EQ(w, 8u);
        EXPECT_EQ(h, 8u);
        m4_result_free(r);
    }
    m4_result_t * r = nullptr;
    EXPECT_EQ(m4_draw_image(c, nullptr, "", &r), M4_ERR_INVALID_ARGUMENT) << m4_last_error(c);
    EXPECT_EQ(r, nullptr);
    EXPECT_EQ(m4_draw_image(c, nullptr, nullptr, &r), M4_ERR_INVALID_ARGUMENT);
    m4_client_close(c);
}
