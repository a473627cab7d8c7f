// Image outputs through the real daemon (issue 18): the generator path (path 4, the image decoder
// alone) served end to end — the PNG a reply carries equals, byte for byte and pixel for pixel, the
// in-process Model::run output for the same inputs (bytes, descriptor or signal; with and without
// an image-output adapter; several inputs in one request) — and each fault a coded error naming
// what is wrong, after which the daemon keeps serving: an image-output adapter on a text path or
// text input, a text adapter on the generator path, a firmware without the decoder, an input too
// large for the decoder's grid or not an image. The C ABI (m4_generate_image, m4_result_image) too.
#include <fcntl.h>
#include <stb/stb_image.h>
#include <unistd.h>

#include <cmath>

#include "../unit/fixture.h"
#include "base/mapped_file.h"
#include "daemon_harness.h"
#include "m4.h"
#include "runtime/images.h"

using namespace m4;
using namespace m4::test;
using model::Modality;
using model::Path;

namespace {

class ImageOutput : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/image_output";
        std::filesystem::create_directories(dir_);
        fw_ = dir_ + "/fw.m4fw";
        write_firmware(fw_, tiny_config(), 7);  // image decoder 8×8, patch 4
        auto m = model::Model::load(fw_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_            = std::move(m).value().release();
        nlohmann::json nd = tiny_config();
        nd.erase("decoders");
        nodec_fw_ = dir_ + "/nodec.m4fw";
        write_firmware(nodec_fw_, nd, 7);
        // An image-output adapter (LoRA on every linear layer of the decoder) and a text one.
        adapter::Manifest sr;
        sr.task      = adapter::Task::Generate;
        sr.path      = Path::Generator;
        sr.modality  = Modality::Image;
        sr.targets   = adapter::expand_targets(model_->config(), Path::Generator, Modality::Image, "all").value();
        sr.lora_rank = 2, sr.lora_alpha = 4;
        sr_path_ = dir_ + "/sr.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(sr_path_, *model_, sr, 11).is_ok());
        auto a = adapter::Adapter::load(sr_path_, *model_);
        ASSERT_TRUE(a.is_ok()) << a.status().message();
        sr_ = new adapter::Adapter(std::move(a).value());
        adapter::Manifest txt;
        txt.task      = adapter::Task::Generate;
        txt.path      = Path::Backbone;
        txt.modality  = Modality::Text;
        txt.targets   = adapter::expand_targets(model_->config(), txt.path, txt.modality, "attn").value();
        txt.lora_rank = 2, txt.lora_alpha = 4;
        txt.generation.max_new_tokens = 3;
        txt_path_                     = dir_ + "/txt.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(txt_path_, *model_, txt, 12).is_ok());
    }
    static void TearDownTestSuite() {
        delete sr_;
        delete model_;
    }
    static std::string fresh_dir(const std::string & name) { return fresh_dir_under(dir_, name); }
    // A PNG of h×w pixels (a smooth pattern that depends on `phase`).
    static std::string png(int64_t h, int64_t w, float phase) {
        std::vector<float> v(static_cast<size_t>(h * w * 3));
        for (size_t i = 0; i < v.size(); ++i) v[i] = 0.9f * std::sin(0.37f * float(i) + phase);
        std::string out;
        EXPECT_TRUE(runtime::encode_png(v.data(), h, w, &out).is_ok());
        return out;
    }
    // What the in-process model makes of these encoded images, in one batch (the daemon serves a
    // request's inputs as one batch): each output as the PNG the service must send.
    static std::vector<std::string> expected(const std::vector<std::string> & images, const adapter::Adapter * ad) {
        std::vector<model::Request> items;
        for (const auto & b : images) {
            auto img = runtime::decode_image_native(b, "expected");
            EXPECT_TRUE(img.is_ok());
            model::Request r;
            r.signal  = runtime::image_to_decoder_grid(*img, *model_->config().image_decoder, "expected").value();
            r.adapter = ad ? &ad->weights() : nullptr;
            items.push_back(std::move(r));
        }
        auto outs = model_->run(Path::Generator, Modality::Image, items);
        EXPECT_TRUE(outs.is_ok()) << outs.status().message();
        std::vector<std::string> pngs;
        for (const auto & o : *outs) {
            std::string p;
            EXPECT_TRUE(runtime::encode_png(o.image.data(), o.image_size, o.image_size, &p).is_ok());
            // The pixels themselves, independently of the encoder: the PNG decodes to image_to_u8(output).
            int w = 0, h = 0, n = 0;
            unsigned char * px = stbi_load_from_memory(reinterpret_cast<const stbi_uc *>(p.data()),
                                                       static_cast<int>(p.size()), &w, &h, &n, 3);
            EXPECT_NE(px, nullptr);
            if (px) {
                EXPECT_EQ(std::vector<uint8_t>(px, px + o.image.size()),
                          runtime::image_to_u8(o.image.data(), static_cast<int64_t>(o.image.size())));
                stbi_image_free(px);
            }
            pngs.push_back(std::move(p));
        }
        return pngs;
    }
    static v1::Infer request(const std::string & adapter, v1::Path path) {
        v1::Infer q;
        q.set_adapter(adapter);
        q.set_path(path);
        return q;
    }
    static void add_image(v1::Infer & q, const std::string & bytes) {
        auto * in = q.add_inputs();
        in->set_modality("image");
        in->set_encoded(bytes);
    }

    static inline std::string dir_, fw_, nodec_fw_, sr_path_, txt_path_;
    static inline model::Model * model_  = nullptr;
    static inline adapter::Adapter * sr_ = nullptr;
};

void expect_image(const v1::Result & r, const std::string & png, const char * what) {
    ASSERT_TRUE(r.has_image()) << what;
    EXPECT_EQ(r.image().width(), 8u) << what;
    EXPECT_EQ(r.image().height(), 8u) << what;
    EXPECT_TRUE(r.image().png() == png) << what << ": the served PNG differs from the in-process output";
}

}  // namespace

TEST_F(ImageOutput, ServedImagesEqualTheInProcessModel) {
    DaemonProcess d(fresh_dir("equal"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("sr", read_file_bytes(sr_path_).value())->status(), v1::STATUS_OK);
    const std::string a = png(5, 6, 0.1f), b = png(8, 8, 1.3f), s = png(4, 4, 2.0f);
    // The firmware's decoder alone, the image as bytes.
    v1::Infer q = request("", v1::PATH_GENERATOR);
    add_image(q, a);
    auto r = (*c)->infer(q);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 1);
    expect_image(r->infer().results(0), expected({a}, nullptr)[0], "decoder alone");
    // With the image-output adapter (its path decides; the request need not name it), three
    // inputs in one request: one batch, three images in order.
    q = request("sr", v1::PATH_UNSPECIFIED);
    for (const auto * x : {&a, &b, &s}) add_image(q, *x);
    r = (*c)->infer(q);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 3);
    auto want = expected({a, b, s}, sr_);
    for (int i = 0; i < 3; ++i) expect_image(r->infer().results(i), want[i], "adapter, batch of three");
    EXPECT_NE(want[0], expected({a}, nullptr)[0]);  // the adapter changes the image
    // The image as a passed descriptor.
    const std::string file = dir_ + "/small.png";
    ASSERT_TRUE(write_file_atomic(file, a.data(), a.size()).is_ok());
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    q = request("sr", v1::PATH_GENERATOR);
    q.add_inputs()->set_modality("image");
    q.mutable_inputs(0)->set_fd_attached(true);
    r = (*c)->infer(q, {fd});
    ::close(fd);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    expect_image(r->infer().results(0), expected({a}, sr_)[0], "descriptor");
    // A signal already on the decoder's grid (8×8×3 normalised values).
    std::vector<float> grid = runtime::image_to_decoder_grid(runtime::decode_image_native(b, "b").value(),
                                                             *model_->config().image_decoder, "b")
                                  .value();
    q         = request("", v1::PATH_GENERATOR);
    auto * in = q.add_inputs();
    in->set_modality("image");
    in->mutable_signal()->mutable_values()->Add(grid.begin(), grid.end());
    r = (*c)->infer(q);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    expect_image(r->infer().results(0), expected({b}, nullptr)[0], "signal");
    // The adapter list names its output kind.
    auto l = (*c)->list_adapters(false);
    ASSERT_TRUE(l.is_ok());
    ASSERT_EQ(l->list_adapters().adapters_size(), 1);
    EXPECT_EQ(l->list_adapters().adapters(0).output(), "image");
    EXPECT_EQ(l->list_adapters().adapters(0).path(), "generator");
}

TEST_F(ImageOutput, FaultsAreCodedAndTheDaemonKeepsServing) {
    DaemonProcess d(fresh_dir("faults"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("sr", read_file_bytes(sr_path_).value())->status(), v1::STATUS_OK);
    ASSERT_EQ((*c)->register_adapter("txt", read_file_bytes(txt_path_).value())->status(), v1::STATUS_OK);
    const std::string good = png(6, 6, 0.4f), want = expected({good}, sr_)[0];
    struct Case {
        const char * what;
        std::function<void(v1::Infer &)> set;
        v1::Status code;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {"text too long for the speech decoder",
         [](auto & q) { q.set_path(v1::PATH_GENERATOR), q.add_inputs()->set_text("hello"); },
         v1::STATUS_INVALID_ARGUMENT, "5 characters exceed the speech decoder's 3"},
        {"image adapter, text input", [](auto & q) { q.set_adapter("sr"), q.add_inputs()->set_text("hi"); },
         v1::STATUS_INVALID_ARGUMENT, "adapter sr (image output, generator path) takes image input, not text"},
        {"image adapter on a text path",
         [&](auto & q) { q.set_adapter("sr"), q.set_path(v1::PATH_BACKBONE), add_image(q, good); },
         v1::STATUS_INCOMPATIBLE, "cannot serve a request on the backbone path"},
        {"text adapter on the generator path",
         [&](auto & q) { q.set_adapter("txt"), q.set_path(v1::PATH_GENERATOR), add_image(q, good); },
         v1::STATUS_INCOMPATIBLE, "adapter txt (text output, backbone path) cannot serve a request on the generator"},
        {"input larger than the grid", [&](auto & q) { q.set_path(v1::PATH_GENERATOR), add_image(q, png(12, 9, 0)); },
         v1::STATUS_INVALID_ARGUMENT, "input 0: a 9x12 image does not fit the image decoder"},
        {"not an image", [&](auto & q) { q.set_adapter("sr"), add_image(q, "not a png at all"); },
         v1::STATUS_INVALID_ARGUMENT, "input 0: unreadable image"},
        {"signal off the grid",
         [](auto & q) {
             q.set_path(v1::PATH_GENERATOR);
             auto * in = q.add_inputs();
             in->set_modality("image");
             for (int i = 0; i < 10; ++i) in->mutable_signal()->add_values(0.5f);
         },
         v1::STATUS_INVALID_ARGUMENT, "expected 8x8x3 values"},
        {"signal too large",
         [](auto & q) {
             q.set_path(v1::PATH_GENERATOR);
             auto * in = q.add_inputs();
             in->set_modality("image");
             for (int i = 0; i < 8 * 8 * 3 + 1; ++i) in->mutable_signal()->add_values(0.5f);
         },
         v1::STATUS_INVALID_ARGUMENT, "the image decoder takes at most 192"},
        {"NaN in a signal",
         [](auto & q) {
             q.set_path(v1::PATH_GENERATOR);
             auto * in = q.add_inputs();
             in->set_modality("image");
             for (int i = 0; i < 8 * 8 * 3; ++i) in->mutable_signal()->add_values(i == 5 ? NAN : 0.1f);
         },
         v1::STATUS_INVALID_ARGUMENT, "input 0"},
        {"unknown path number", [&](auto & q) { q.set_path(static_cast<v1::Path>(99)), add_image(q, good); },
         v1::STATUS_INVALID_ARGUMENT, "path 99 is not encoder, backbone, full or generator"},
        {"constrained output on images", [&](auto & q) { q.set_adapter("sr"), q.add_choices("a"), add_image(q, good); },
         v1::STATUS_INVALID_ARGUMENT, "constrained output needs generation"},
    };
    for (const auto & cs : cases) {
        v1::Infer q;
        cs.set(q);
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok()) << cs.what;
        EXPECT_EQ(r->status(), cs.code) << cs.what << ": " << r->message();
        EXPECT_NE(r->message().find(cs.needle), std::string::npos) << cs.what << ": " << r->message();
        EXPECT_FALSE(r->has_infer()) << cs.what;
        // Served right after, on the same connection.
        v1::Infer ok = request("sr", v1::PATH_GENERATOR);
        add_image(ok, good);
        auto rr = (*c)->infer(ok);
        ASSERT_TRUE(rr.is_ok()) << cs.what;
        ASSERT_EQ(rr->status(), v1::STATUS_OK) << cs.what << ": " << rr->message();
        expect_image(rr->infer().results(0), want, cs.what);
    }
    auto st = (*c)->status();
    ASSERT_TRUE(st.is_ok());
    ASSERT_EQ(st->status_reply().apps_size(), 1);
    EXPECT_EQ(st->status_reply().apps(0).errors(), cases.size());
    EXPECT_EQ(st->status_reply().apps(0).items(), cases.size());  // only the good requests ran
}

// Images that may not fit in one reply (bounded by max_output_bytes here: 8×8 PNGs need at most
// 1249 bytes each + 4096 for the frame) are refused before anything runs; fewer per request pass.
TEST_F(ImageOutput, OutputsTooLargeForOneReplyAreRefused) {
    DaemonProcess d(fresh_dir("reply"), fw_, R"({"max_output_bytes": 6000})");
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    const std::string a = png(5, 5, 0.2f);
    v1::Infer two       = request("", v1::PATH_GENERATOR);
    add_image(two, a);
    add_image(two, a);
    auto r = (*c)->infer(two);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT) << r->message();
    EXPECT_NE(r->message().find("2 images of 8x8 may not fit in one reply of at most 6000 bytes"), std::string::npos)
        << r->message();
    v1::Infer one = request("", v1::PATH_GENERATOR);
    add_image(one, a);
    r = (*c)->infer(one);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    expect_image(r->infer().results(0), expected({a}, nullptr)[0], "one image");
}

TEST_F(ImageOutput, FirmwareWithoutDecoderRefusesThePath) {
    DaemonProcess d(fresh_dir("nodec"), nodec_fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    for (int round = 0; round < 2; ++round) {
        v1::Infer q = request("", v1::PATH_GENERATOR);
        add_image(q, png(4, 4, 0.3f));
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok());
        EXPECT_EQ(r->status(), v1::STATUS_INCOMPATIBLE) << r->message();
        EXPECT_NE(r->message().find("the generator path needs an image decoder; the firmware has none"),
                  std::string::npos)
            << r->message();
        // The daemon keeps serving the firmware's other paths.
        v1::Infer t;
        t.add_inputs()->set_text("hello");
        t.set_max_new_tokens(2);
        auto rt = (*c)->infer(t);
        ASSERT_TRUE(rt.is_ok());
        EXPECT_EQ(rt->status(), v1::STATUS_OK) << rt->message();
    }
    // The image-output adapter was made for another firmware: refused when it is registered or used.
    auto reg = (*c)->register_adapter("sr", read_file_bytes(sr_path_).value());
    ASSERT_TRUE(reg.is_ok());
    if (reg->status() == v1::STATUS_OK) {
        v1::Infer q = request("sr", v1::PATH_UNSPECIFIED);
        add_image(q, png(4, 4, 0.3f));
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok());
        EXPECT_EQ(r->status(), v1::STATUS_INCOMPATIBLE) << r->message();
    } else {
        EXPECT_EQ(reg->status(), v1::STATUS_INCOMPATIBLE) << reg->message();
    }
}

TEST_F(ImageOutput, CAbiReturnsThePngWithoutCopying) {
    DaemonProcess d(fresh_dir("cabi"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    const std::string a = png(7, 5, 0.8f), file = dir_ + "/cabi.png";
    ASSERT_TRUE(write_file_atomic(file, a.data(), a.size()).is_ok());
    m4_client_t * c = nullptr;
    ASSERT_EQ(m4_client_open(d.socket().c_str(), &c), M4_OK) << m4_last_error(c);
    ASSERT_EQ(m4_adapter_register_file(c, "sr", sr_path_.c_str(), 0), M4_OK) << m4_last_error(c);
    ASSERT_EQ(m4_adapter_register_file(c, "txt", txt_path_.c_str(), 0), M4_OK) << m4_last_error(c);
    for (const char * adapter : {static_cast<const char *>(nullptr), "sr"}) {
        m4_result_t * r = nullptr;
        ASSERT_EQ(m4_generate_image(c, adapter, file.c_str(), &r), M4_OK) << m4_last_error(c);
        const uint8_t * bytes = nullptr;
        uint32_t w = 0, h = 0;
        const size_t n         = m4_result_image(r, &bytes, &w, &h);
        const std::string want = expected({a}, adapter ? sr_ : nullptr)[0];
        EXPECT_EQ(std::string(reinterpret_cast<const char *>(bytes), n), want) << (adapter ? adapter : "none");
        EXPECT_EQ(w, 8u);
        EXPECT_EQ(h, 8u);
        m4_result_free(r);
    }
    m4_result_t * r = nullptr;
    EXPECT_EQ(m4_generate_image(c, "txt", file.c_str(), &r), M4_ERR_INCOMPATIBLE);
    EXPECT_NE(std::string(m4_last_error(c)).find("cannot serve a request on the generator path"), std::string::npos)
        << m4_last_error(c);
    EXPECT_EQ(r, nullptr);
    EXPECT_EQ(m4_generate_image(c, nullptr, (dir_ + "/missing.png").c_str(), &r), M4_ERR_INVALID_ARGUMENT);
    // A text result has no image.
    ASSERT_EQ(m4_infer_text(c, "txt", "hello", &r), M4_OK) << m4_last_error(c);
    const uint8_t * bytes = reinterpret_cast<const uint8_t *>(1);
    EXPECT_EQ(m4_result_image(r, &bytes, nullptr, nullptr), 0u);
    EXPECT_EQ(bytes, nullptr);
    m4_result_free(r);
    m4_client_close(c);
}
