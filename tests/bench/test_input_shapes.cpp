// The firmware's input shapes (image_size, an audio clip of clip_samples, an IMU window of `window`
// rows) are honoured end to end: the dataset path that training and evaluation use
// (bench::to_sample), `m4fw run`'s file loader (runtime::load_modal_input) and the service's
// request path (runtime::prepare_item on the file's bytes) all give the same encoder input of the
// firmware's shape, with nothing of a longer-than-default input lost (the last second of a 3 s
// clip, the last rows of a 3 s IMU window), and the model reads it as the right number of tokens.
// A shape hard-coded anywhere (1 s of audio, 100 IMU rows, a 32-pixel grid) fails here.
#include <gtest/gtest.h>

#include <stb/stb_image_write.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/pretrain.h"
#include "bench/samples.h"
#include "data/dataset.h"
#include "model/preprocess.h"
#include "model/weights.h"
#include "runtime/engine.h"
#include "runtime/inputs.h"
#include "unit/fixture.h"

namespace fs = std::filesystem;
using namespace m4;

namespace {

std::string read_all(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A 16-bit PCM mono WAV file, as an app records it.
std::string wav_pcm16(const int16_t * pcm, size_t n, uint32_t rate) {
    auto u32 = [](std::string & s, uint32_t v) {
        for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    auto u16 = [](std::string & s, uint16_t v) { s += static_cast<char>(v & 0xff), s += static_cast<char>(v >> 8); };
    const uint32_t data = static_cast<uint32_t>(n * 2);
    std::string w       = "RIFF";
    u32(w, 36 + data), w += "WAVEfmt ", u32(w, 16), u16(w, 1), u16(w, 1), u32(w, rate), u32(w, rate * 2);
    u16(w, 2), u16(w, 16), w += "data", u32(w, data);
    for (size_t k = 0; k < n; ++k) u16(w, static_cast<uint16_t>(pcm[k]));
    return w;
}

std::string imu_csv(const float * rows, size_t n) {
    std::string csv = "ax,ay,az,gx,gy,gz\n";
    for (size_t j = 0; j < n; ++j) {
        for (int a = 0; a < 6; ++a) csv += fmt::format("{}{:.9g}", a ? "," : "", rows[j * 6 + a]);
        csv += "\n";
    }
    return csv;
}

struct Fixture {
    std::string dir;
    std::unique_ptr<model::Model> fw;
};

// A firmware with shapes other than m4-tiny's: 16-pixel grid, 3 s clips, 3 s IMU windows.
Fixture make_fixture(const std::string & name) {
    Fixture f;
    f.dir = (fs::temp_directory_path() / ("m4_test_shapes_" + name + "_" + std::to_string(::getpid()))).string();
    fs::remove_all(f.dir);
    fs::create_directories(f.dir);
    nlohmann::json c                       = test::tiny_config();
    c["backbone"]["max_seq"]               = 192;
    c["encoders"]["image"]["image_size"]   = 16;
    c["encoders"]["audio"]["clip_samples"] = 48000;
    c["encoders"]["imu"]["window"]         = 150;
    test::write_firmware(f.dir + "/fw.m4fw", c);
    auto m = model::Model::load(f.dir + "/fw.m4fw");
    EXPECT_TRUE(m.is_ok()) << m.status().message();
    if (m.is_ok()) f.fw = std::move(m).value();
    return f;
}

// Checks that the three paths agree on stored example `i` written as `file` and that the full path
// reads it as 1 + tokens() positions; returns the dataset path's signal.
std::vector<float> check_paths(const Fixture & f, const data::Dataset & ds, size_t i, model::Modality mod,
                               const std::string & file) {
    const auto & ec = f.fw->config().encoder(mod);
    auto s          = bench::to_sample(ds, i, bench::SampleRecipe{}, *f.fw);
    EXPECT_TRUE(s.is_ok()) << s.status().message();
    if (!s.is_ok()) return {};
    EXPECT_EQ(static_cast<int64_t>(s->signal.size()), ec.input_values()) << file;
    auto run_side = runtime::load_modal_input(file, ec);  // m4fw run
    EXPECT_TRUE(run_side.is_ok()) << run_side.status().message();
    runtime::InputSpec in;
    in.modality  = mod;
    in.encoded   = read_all(file);
    in.name      = file;
    auto service = runtime::prepare_item(*f.fw, model::Path::Full, nullptr, in, "");  // m4fwd
    EXPECT_TRUE(service.is_ok()) << service.status().message();
    if (!run_side.is_ok() || !service.is_ok()) return {};
    EXPECT_EQ(s->signal, *run_side) << file << ": dataset path != m4fw run";
    EXPECT_EQ(s->signal, service->signal) << file << ": dataset path != service";
    std::vector<model::Request> batch = {*service};
    auto out                          = f.fw->run(model::Path::Full, mod, batch);
    EXPECT_TRUE(out.is_ok()) << out.status().message();
    if (out.is_ok()) {
        EXPECT_EQ((*out)[0].n_positions, 1 + ec.tokens()) << file;
    }
    return s->signal;
}

}  // namespace

TEST(InputShapes, FirmwareShapesTravelFromDataToServing) {
    Fixture f = make_fixture("e2e");
    ASSERT_TRUE(f.fw);
    const auto & ic = f.fw->config().encoder(model::Modality::Image);
    const auto & ac = f.fw->config().encoder(model::Modality::Audio);
    const auto & uc = f.fw->config().encoder(model::Modality::Imu);
    ASSERT_EQ(ic.image_size, 16);
    ASSERT_EQ(ac.clip_samples, 48000);
    ASSERT_EQ(uc.window, 150);
    ASSERT_EQ(ic.tokens(), 16);                             // (16 / 4)²
    ASSERT_EQ(ac.tokens(), (1 + (48000 - 400) / 160) / 2);  // 298 frames in 2-frame patches
    ASSERT_EQ(uc.tokens(), 30);                             // 150 rows in 5-row patches

    uint32_t seed = 5;
    auto next     = [&] { return (seed = seed * 1103515245u + 12345u) >> 8; };
    // Image: 16 × 16 RGB stored = the encoder's grid, so every path must give the pixels unfiltered.
    std::vector<uint8_t> px(16 * 16 * 3);
    for (auto & v : px) v = static_cast<uint8_t>(next());
    // Audio: a 3 s clip whose last second is loud (a 1 s cut would lose it), and a 4 s one.
    std::vector<std::vector<float>> clips;
    for (size_t n : {48000u, 64000u}) {
        std::vector<float> x(n, 0.0f);
        for (size_t k = 32000; k < n; ++k) x[k] = static_cast<float>(next() % 60000) / 65536.0f - 0.45f;
        clips.push_back(x);
    }
    // IMU: 150 rows (3 s) and 200 rows (4 s), every value distinct from zero padding.
    std::vector<std::vector<float>> windows;
    for (size_t rows : {150u, 200u}) {
        std::vector<float> x(rows * 6);
        for (float & v : x) v = 1.0f + static_cast<float>(next() % 1000) / 100.0f;
        windows.push_back(x);
    }
    {
        data::DatasetWriter wi(f.dir + "/img.m4ds", data::Modality::Image);
        data::DatasetWriter wa(f.dir + "/aud.m4ds", data::Modality::Audio);
        data::DatasetWriter wu(f.dir + "/imu.m4ds", data::Modality::Imu);
        auto ex  = data::ExampleIn::image(px, 16, 16, 3);
        ex.label = 0;
        ASSERT_TRUE(wi.add(ex).is_ok());
        for (const auto & c : clips) {
            auto a  = data::ExampleIn::audio(c);
            a.label = 0;
            ASSERT_TRUE(wa.add(a).is_ok());
        }
        for (const auto & w : windows) {
            auto u  = data::ExampleIn::imu(w);
            u.label = 0;
            ASSERT_TRUE(wu.add(u).is_ok());
        }
        ASSERT_TRUE(wi.finish().is_ok() && wa.finish().is_ok() && wu.finish().is_ok());
    }

    auto img = data::Dataset::open_file(f.dir + "/img.m4ds");
    ASSERT_TRUE(img.is_ok()) << img.status().message();
    const std::string png = f.dir + "/0.png";
    ASSERT_TRUE(stbi_write_png(png.c_str(), 16, 16, 3, px.data(), 16 * 3));
    auto sig = check_paths(f, *img, 0, model::Modality::Image, png);
    ASSERT_EQ(sig.size(), px.size());
    for (size_t k = 0; k < px.size(); ++k) ASSERT_EQ(sig[k], (px[k] / 255.0f - 0.5f) / 0.5f) << "pixel value " << k;

    auto aud = data::Dataset::open_file(f.dir + "/aud.m4ds");
    ASSERT_TRUE(aud.is_ok()) << aud.status().message();
    for (size_t i = 0; i < aud->size(); ++i) {
        const data::Example ex = aud->at(i);
        const int16_t * pcm    = reinterpret_cast<const int16_t *>(ex.payload);
        const size_t n         = ex.payload_len / 2;
        const std::string wav  = f.dir + "/" + std::to_string(i) + ".wav";
        std::ofstream(wav, std::ios::binary) << wav_pcm16(pcm, std::min<size_t>(n, 48000), 16000);
        sig = check_paths(f, *aud, i, model::Modality::Audio, wav);
        ASSERT_EQ(sig.size(), 48000u);
        // Every stored sample of the first 3 s arrives, the third second included.
        for (size_t k = 0; k < 48000; ++k) ASSERT_EQ(sig[k], model::pcm16_to_float(pcm[k])) << "sample " << k;
        // The serving side refuses the whole 4 s file (the dataset side cut it to 3 s above).
        if (n > 48000) {
            std::ofstream(wav, std::ios::binary) << wav_pcm16(pcm, n, 16000);
            auto r = runtime::load_modal_input(wav, ac);
            ASSERT_FALSE(r.is_ok());
            EXPECT_NE(r.status().message().find("longer than the encoder's clip of 48000"), std::string::npos)
                << r.status().message();
        }
    }

    auto imu = data::Dataset::open_file(f.dir + "/imu.m4ds");
    ASSERT_TRUE(imu.is_ok()) << imu.status().message();
    for (size_t i = 0; i < imu->size(); ++i) {
        const data::Example ex = imu->at(i);
        const size_t rows      = ex.payload_len / 24;
        const std::string csv  = f.dir + "/" + std::to_string(i) + ".csv";
        std::ofstream(csv, std::ios::binary) << imu_csv(windows[i].data(), std::min<size_t>(rows, 150));
        sig = check_paths(f, *imu, i, model::Modality::Imu, csv);
        ASSERT_EQ(sig.size(), 150u * 6);
        for (size_t k = 0; k < sig.size(); ++k) ASSERT_EQ(sig[k], windows[i][k]) << "IMU value " << k;
        if (rows > 150) {
            std::ofstream(csv, std::ios::binary) << imu_csv(windows[i].data(), rows);
            auto r = runtime::load_modal_input(csv, uc);
            ASSERT_FALSE(r.is_ok());
            EXPECT_NE(r.status().message().find("150"), std::string::npos) << r.status().message();
        }
    }
    fs::remove_all(f.dir);
}

// The m4-small draft recipe carries the shapes measured in docs/training.md ("Input shapes"), parses
// as a pretraining recipe, leaves room on the full path for a caption after its longest modality
// prefix, and its f32 firmware stays within the 64 MiB budget.
TEST(InputShapes, M4SmallRecipeCarriesTheMeasuredShapes) {
    const std::string path = std::string(M4_SOURCE_DIR) + "/recipes/m4-small.json";
    std::ifstream f(path);
    ASSERT_TRUE(f.good()) << path;
    const nlohmann::json j = nlohmann::json::parse(f);
    auto recipe            = bench::parse_pretrain_recipe(j, path);
    ASSERT_TRUE(recipe.is_ok()) << recipe.status().message();
    nlohmann::json arch        = recipe->architecture;
    arch["format"]             = "m4fw";
    arch["name"]               = recipe->name;
    arch["version"]            = recipe->version;
    arch["text"]["vocab_size"] = recipe->vocab_size;
    auto cfg                   = model::parse_model_config(arch);
    ASSERT_TRUE(cfg.is_ok()) << cfg.status().message();
    const auto & img = cfg->encoder(model::Modality::Image);
    const auto & aud = cfg->encoder(model::Modality::Audio);
    const auto & imu = cfg->encoder(model::Modality::Imu);
    EXPECT_EQ(img.image_size, 48);
    EXPECT_EQ(img.patch_size, 4);
    EXPECT_EQ(aud.clip_samples, 48000);  // 3 s: aud.intent's and mm.transcribe's stored clips
    EXPECT_EQ(aud.patch_frames, 4);
    EXPECT_EQ(imu.window, 100);
    EXPECT_TRUE(cfg->has_decoder(model::Modality::Image));
    int64_t longest = 0;
    for (const auto * e : {&img, &aud, &imu}) longest = std::max(longest, e->tokens());
    EXPECT_GE(cfg->backbone.max_seq, 1 + longest + 32) << "no room for a caption after the modality prefix";
    int64_t values = 0;
    for (const auto & t : model::expected_tensors(*cfg)) values += t.shape.numel();
    EXPECT_LE(values * 4, int64_t{64} << 20) << values << " parameters";
}
