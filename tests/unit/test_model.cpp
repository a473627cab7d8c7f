// Model-level behaviour: firmware/adapter binding faults, input faults, and batch semantics
// (mixed-adapter batches equal single runs; KV-cache decoding equals a full forward).
#include <sndfile.h>

#include <cmath>
#include <fstream>

#include "fixture.h"
#include "runtime/engine.h"
#include "runtime/inputs.h"

using namespace m4;
using namespace m4::test;

namespace {

class ModelTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        fw_path_ = temp_dir() + "/tiny.m4fw";
        write_firmware(fw_path_, tiny_config());
        auto m = model::Model::load(fw_path_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }

    std::string adapter(const std::string & name, adapter::Task task, model::Path path, model::Modality mod,
                        uint64_t seed, int64_t out = 3) {
        adapter::Manifest m;
        m.task        = task;
        m.path        = path;
        m.modality    = mod;
        m.head_out    = out;
        m.targets     = adapter::expand_targets(model_->config(), path, mod, "all").value();
        m.lora_rank   = 2;
        m.lora_alpha  = 4;
        std::string p = temp_dir() + "/" + name + ".m4a";
        EXPECT_TRUE(adapter::write_random_adapter(p, *model_, m, seed).is_ok());
        return p;
    }
    static std::vector<float> ramp(int64_t n, float scale) {
        std::vector<float> v(n);
        for (int64_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * i + scale);
        return v;
    }

    static inline std::string fw_path_;
    static inline model::Model * model_ = nullptr;
};

void expect_status(const Status & st, StatusCode code, const std::string & needle) {
    EXPECT_EQ(st.code(), code) << st.message();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

}  // namespace

TEST_F(ModelTest, FirmwareShapeMismatchNamesTheTensor) {
    std::string p = temp_dir() + "/bad_shape.m4fw";
    write_firmware(p, tiny_config(), 1, DType::F32, nullptr, [](auto & ws) {
        for (auto & [n, t] : ws)
            if (n == "backbone.layers.1.ffn.up.weight") t = Tensor::zeros(DType::F32, {63, 32});
    });
    auto m = model::Model::load(p);
    ASSERT_FALSE(m.is_ok());
    expect_status(m.status(), StatusCode::InvalidArgument, "backbone.layers.1.ffn.up.weight");
    EXPECT_NE(m.status().message().find("bad_shape.m4fw"), std::string::npos);
}

TEST_F(ModelTest, FirmwareSignatureRequiredWhenKeyGiven) {
    PublicKey pk;
    SecretKey sk;
    ed25519_keypair(&pk, &sk);
    std::string signed_path = temp_dir() + "/signed.m4fw";
    write_firmware(signed_path, tiny_config(), 1, DType::F32, &sk);
    auto ok = model::Model::load(signed_path, {.public_key = &pk});
    ASSERT_TRUE(ok.is_ok()) << ok.status().message();
    EXPECT_EQ((*ok)->file().signature(), format::SignatureState::Verified);
    auto unsigned_fw = model::Model::load(fw_path_, {.public_key = &pk});
    ASSERT_FALSE(unsigned_fw.is_ok());
    EXPECT_EQ(unsigned_fw.status().code(), StatusCode::PermissionDenied);
}

TEST_F(ModelTest, AdapterBoundToAnotherFirmwareIsRefused) {
    std::string other = temp_dir() + "/other.m4fw";
    write_firmware(other, tiny_config(), /*seed=*/2);
    auto other_fw = model::Model::load(other);
    ASSERT_TRUE(other_fw.is_ok());
    adapter::Manifest m;
    m.head_out    = 2;
    std::string p = temp_dir() + "/foreign.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, **other_fw, m, 1).is_ok());
    auto a = adapter::Adapter::load(p, *model_);
    ASSERT_FALSE(a.is_ok());
    expect_status(a.status(), StatusCode::Incompatible, "retrain");
    EXPECT_NE(a.status().message().find("foreign.m4a"), std::string::npos);
}

TEST_F(ModelTest, AdapterForMissingModalityIsRefused) {
    auto cfg = tiny_config();
    cfg["encoders"].erase("audio");
    std::string no_audio = temp_dir() + "/no_audio.m4fw";
    write_firmware(no_audio, cfg);
    auto fw2 = model::Model::load(no_audio);
    ASSERT_TRUE(fw2.is_ok());
    // An audio adapter made for a firmware with audio, re-bound by fingerprint to one without it.
    adapter::Manifest m;
    m.modality             = model::Modality::Audio;
    m.head_type            = model::HeadType::Classify;
    m.head_in              = 16;
    m.head_out             = 2;
    m.firmware_fingerprint = (*fw2)->fingerprint();
    std::string p          = temp_dir() + "/audio_only.m4a";
    adapter::HeadTensors head;
    head.w = Tensor::zeros(DType::F32, {2, 16});
    head.b = Tensor::zeros(DType::F32, {2});
    ASSERT_TRUE(adapter::write_adapter(p, m, {}, head).is_ok());
    auto a = adapter::Adapter::load(p, **fw2);
    ASSERT_FALSE(a.is_ok());
    expect_status(a.status(), StatusCode::Incompatible, "audio encoder");
    model::Request r;
    r.signal = ramp(100, 0.1f);
    auto out = (*fw2)->run(model::Path::Encoder, model::Modality::Audio, {&r, 1});
    ASSERT_FALSE(out.is_ok());
    expect_status(out.status(), StatusCode::Incompatible, "no audio encoder");
}

// A head with a hidden layer computes y = W·gelu(Wh·z + bh) + b on the encoder's raw pooled
// embedding z (read here through a head-only identity regression adapter), and its manifest and
// tensors are checked on load.
TEST_F(ModelTest, HiddenLayerHeadComputesTheMlpAndIsCheckedOnLoad) {
    const int64_t E = model_->config().embed_dim, H = 3, O = 2;
    auto manifest = [&](int64_t out, int64_t hidden) {
        adapter::Manifest m;
        m.task                 = adapter::Task::Regress;
        m.modality             = model::Modality::Image;
        m.head_type            = model::HeadType::Regress;
        m.head_in              = E;
        m.head_out             = out;
        m.head_hidden          = hidden;
        m.firmware_fingerprint = model_->fingerprint();
        return m;
    };
    adapter::HeadTensors id;
    id.w = Tensor::zeros(DType::F32, {E, E});
    id.b = Tensor::zeros(DType::F32, {E});
    for (int64_t k = 0; k < E; ++k) id.w.f32()[k * E + k] = 1.0f;
    const std::string id_path = temp_dir() + "/identity_head.m4a";
    ASSERT_TRUE(adapter::write_adapter(id_path, manifest(E, 0), {}, id).is_ok());
    EXPECT_FALSE(adapter::manifest_to_json(manifest(E, 0))["head"].contains("hidden_dim"))
        << "a linear head's manifest is unchanged";

    adapter::HeadTensors mlp;
    mlp.hidden_w = Tensor::empty(DType::F32, {H, E});
    mlp.hidden_b = Tensor::empty(DType::F32, {H});
    mlp.w        = Tensor::empty(DType::F32, {O, H});
    mlp.b        = Tensor::empty(DType::F32, {O});
    for (int64_t i = 0; i < mlp.hidden_w.numel(); ++i) mlp.hidden_w.f32()[i] = std::sin(0.7f * i) * 0.5f;
    for (int64_t i = 0; i < H; ++i) mlp.hidden_b.f32()[i] = 0.1f * (i - 1);
    for (int64_t i = 0; i < O * H; ++i) mlp.w.f32()[i] = std::cos(0.3f * i);
    for (int64_t i = 0; i < O; ++i) mlp.b.f32()[i] = 0.25f * i;
    const std::string mlp_path = temp_dir() + "/mlp_head.m4a";
    ASSERT_TRUE(adapter::write_adapter(mlp_path, manifest(O, H), {}, mlp).is_ok());

    auto a_id  = adapter::Adapter::load(id_path, *model_);
    auto a_mlp = adapter::Adapter::load(mlp_path, *model_);
    ASSERT_TRUE(a_id.is_ok()) << a_id.status().message();
    ASSERT_TRUE(a_mlp.is_ok()) << a_mlp.status().message();
    model::Request r;
    r.signal  = ramp(8 * 8 * 3, 0.8f);
    r.adapter = &a_id->weights();
    auto z    = model_->run(model::Path::Encoder, model::Modality::Image, {&r, 1});
    r.adapter = &a_mlp->weights();
    auto y    = model_->run(model::Path::Encoder, model::Modality::Image, {&r, 1});
    ASSERT_TRUE(z.is_ok() && y.is_ok());
    const std::vector<float> & zv = (*z)[0].head;
    ASSERT_EQ(static_cast<int64_t>(zv.size()), E);
    ASSERT_EQ(static_cast<int64_t>((*y)[0].head.size()), O);
    std::vector<double> act(H);
    for (int64_t h = 0; h < H; ++h) {
        double pre = mlp.hidden_b.f32()[h];
        for (int64_t k = 0; k < E; ++k) pre += double(mlp.hidden_w.f32()[h * E + k]) * zv[k];
        act[h] = 0.5 * pre * (1.0 + std::erf(pre / std::sqrt(2.0)));
    }
    for (int64_t o = 0; o < O; ++o) {
        double want = mlp.b.f32()[o];
        for (int64_t h = 0; h < H; ++h) want += double(mlp.w.f32()[o * H + h]) * act[h];
        EXPECT_NEAR((*y)[0].head[o], want, 1e-4 * (1 + std::fabs(want))) << "output " << o;
    }

    // Faults: a hidden width out of range, a missing hidden tensor.
    nlohmann::json j        = adapter::manifest_to_json(manifest(O, H));
    j["head"]["hidden_dim"] = 5000;
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "head.hidden_dim");
    j["head"]["hidden_dim"] = -1;
    expect_status(adapter::parse_manifest(j).status(), StatusCode::InvalidArgument, "head.hidden_dim");
    format::ContainerWriter w(format::FileKind::Adapter);
    w.set_header(adapter::manifest_to_json(manifest(O, H)));
    w.add("head.hidden.weight", mlp.hidden_w);
    w.add("head.out.weight", mlp.w);
    w.add("head.out.bias", mlp.b);
    const std::string bad_path = temp_dir() + "/mlp_no_hidden_bias.m4a";
    ASSERT_TRUE(w.write(bad_path).is_ok());
    auto bad = adapter::Adapter::load(bad_path, *model_);
    ASSERT_FALSE(bad.is_ok());
    expect_status(bad.status(), StatusCode::InvalidArgument, "head.hidden.bias");
}

TEST_F(ModelTest, InputFaultsNameTheProblem) {
    model::Request r;
    r.signal = ramp(2001, 0.1f);  // clip is 2000 samples
    auto a   = model_->run(model::Path::Encoder, model::Modality::Audio, {&r, 1});
    expect_status(a.status(), StatusCode::InvalidArgument, "exceeds the encoder's clip");
    r.signal = ramp(10, 0.1f);  // image needs 8·8·3
    expect_status(model_->run(model::Path::Encoder, model::Modality::Image, {&r, 1}).status(),
                  StatusCode::InvalidArgument, "expected 8x8x3");
    r.signal = ramp(21 * 6, 0.1f);  // window is 20
    expect_status(model_->run(model::Path::Encoder, model::Modality::Imu, {&r, 1}).status(),
                  StatusCode::InvalidArgument, "exceeds the window");
    model::Request t;
    expect_status(model_->run(model::Path::Backbone, model::Modality::Text, {&t, 1}).status(),
                  StatusCode::InvalidArgument, "text input is empty");
    expect_status(model_->tokenizer().encode("  ").status(), StatusCode::InvalidArgument, "empty");
    t.tokens = {5, 100000};
    expect_status(model_->run(model::Path::Backbone, model::Modality::Text, {&t, 1}).status(),
                  StatusCode::InvalidArgument, "out of range");
}

TEST_F(ModelTest, DecoderFaultsNameTheFile) {
    const auto & ac = model_->config().encoder(model::Modality::Audio);
    // 8 kHz WAV: wrong sample rate
    std::string wav = temp_dir() + "/8k.wav";
    SF_INFO info{};
    info.samplerate = 8000, info.channels = 1, info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE * f = sf_open(wav.c_str(), SFM_WRITE, &info);
    ASSERT_NE(f, nullptr);
    std::vector<float> s = ramp(800, 0.3f);
    sf_writef_float(f, s.data(), 800);
    sf_close(f);
    auto a = runtime::load_audio(wav, ac);
    expect_status(a.status(), StatusCode::InvalidArgument, "8000 Hz");
    EXPECT_NE(a.status().message().find("8k.wav"), std::string::npos);
    // not an image
    std::string junk = temp_dir() + "/junk.png";
    std::ofstream(junk) << "this is not a png";
    auto img = runtime::load_image(junk, model_->config().encoder(model::Modality::Image));
    expect_status(img.status(), StatusCode::InvalidArgument, "unreadable image");
    EXPECT_NE(img.status().message().find("junk.png"), std::string::npos);
    // not audio
    expect_status(runtime::load_audio(junk, ac).status(), StatusCode::InvalidArgument, "unreadable audio");
    // IMU CSV with a bad row
    std::string csv = temp_dir() + "/bad.csv";
    std::ofstream(csv) << "ax,ay,az,gx,gy,gz\n1,2,3,4,5,6\n1,2,3\n";
    auto imu = runtime::load_imu_csv(csv, model_->config().encoder(model::Modality::Imu));
    expect_status(imu.status(), StatusCode::InvalidArgument, "bad.csv:3");
}

TEST_F(ModelTest, MixedAdapterBatchEqualsSingleRuns) {
    using model::Modality;
    using model::Path;
    for (auto [path, mod] : {std::pair{Path::Encoder, Modality::Imu}, std::pair{Path::Backbone, Modality::Text},
                             std::pair{Path::Full, Modality::Image}}) {
        auto a1 = adapter::Adapter::load(adapter("m1", adapter::Task::Classify, path, mod, 11), *model_);
        auto a2 = adapter::Adapter::load(adapter("m2", adapter::Task::Classify, path, mod, 12), *model_);
        ASSERT_TRUE(a1.is_ok() && a2.is_ok());
        std::vector<model::Request> batch(4);
        const model::AdapterWeights * which[] = {&a1->weights(), &a2->weights(), nullptr, &a1->weights()};
        for (int i = 0; i < 4; ++i) {
            batch[i].adapter = which[i];
            if (mod == Modality::Imu) batch[i].signal = ramp(20 * 6 - 6 * i, 1.0f + i);
            if (mod == Modality::Image) batch[i].signal = ramp(8 * 8 * 3, 0.5f + i);
            batch[i].tokens = {7, 9, 11 + i, 13};
            batch[i].tokens.resize(4 + i, 20);
        }
        auto all = model_->run(path, mod, batch);
        ASSERT_TRUE(all.is_ok()) << all.status().message();
        for (int i = 0; i < 4; ++i) {
            auto one = model_->run(path, mod, {&batch[i], 1});
            ASSERT_TRUE(one.is_ok());
            const auto & x = i == 2 ? (*all)[i].logits : (*all)[i].head;
            const auto & y = i == 2 ? (*one)[0].logits : (*one)[0].head;
            if (path == Path::Encoder && i == 2) continue;  // no adapter on the encoder path: embedding only
            ASSERT_EQ(x.size(), y.size());
            for (size_t k = 0; k < x.size(); ++k) EXPECT_NEAR(x[k], y[k], 1e-4f * (1 + std::fabs(y[k])));
        }
        // A different adapter on the same input gives a different output (the check above is not vacuous).
        auto solo2    = batch[0];
        solo2.adapter = &a2->weights();
        auto other    = model_->run(path, mod, {&solo2, 1});
        ASSERT_TRUE(other.is_ok());
        EXPECT_NE((*all)[0].head, (*other)[0].head);
    }
}

TEST_F(ModelTest, KvCacheDecodingMatchesFullForward) {
    auto a = adapter::Adapter::load(
        adapter("gen", adapter::Task::Generate, model::Path::Backbone, model::Modality::Text, 21), *model_);
    ASSERT_TRUE(a.is_ok()) << a.status().message();
    std::vector<model::Request> batch(2);
    batch[0].tokens  = {10, 11, 12};
    batch[1].tokens  = {40, 41};
    batch[1].adapter = &a->weights();
    model::GenerateOptions g;
    g.max_new_tokens = 5;
    g.keep_logits    = true;
    auto gens        = model_->generate(model::Path::Backbone, model::Modality::Text, batch, g);
    ASSERT_TRUE(gens.is_ok()) << gens.status().message();
    const int64_t V = model_->config().text.vocab_size;
    for (int b = 0; b < 2; ++b) {
        const auto & gen = (*gens)[b];
        ASSERT_FALSE(gen.tokens.empty());
        model::Request full = batch[b];
        full.tokens.insert(full.tokens.end(), gen.tokens.begin(), gen.tokens.end() - 1);
        auto out = model_->run(model::Path::Backbone, model::Modality::Text, {&full, 1}, {.all_logits = true});
        ASSERT_TRUE(out.is_ok());
        const int64_t prompt = 1 + static_cast<int64_t>(batch[b].tokens.size());
        for (size_t s = 0; s < gen.tokens.size(); ++s) {
            const float * want = (*out)[0].logits.data() + (prompt - 1 + s) * V;
            const float * got  = gen.step_logits.data() + s * V;
            for (int64_t v = 0; v < V; ++v) ASSERT_NEAR(got[v], want[v], 1e-3f * (1 + std::fabs(want[v])));
        }
    }
}

// A bf16 KV cache changes decode logits only by bf16 rounding of keys and values.
TEST_F(ModelTest, Bf16KvCacheTracksF32Cache) {
    std::vector<model::Request> batch(2);
    batch[0].tokens = {10, 11, 12, 13, 14, 15};
    batch[1].tokens = {40, 41};
    model::GenerateOptions g;
    g.max_new_tokens = 6;
    g.keep_logits    = true;
    auto exact       = model_->generate(model::Path::Backbone, model::Modality::Text, batch, g);
    g.kv_dtype       = DType::BF16;
    auto compact     = model_->generate(model::Path::Backbone, model::Modality::Text, batch, g);
    ASSERT_TRUE(exact.is_ok() && compact.is_ok());
    const int64_t V     = model_->config().text.vocab_size;
    bool any_difference = false;
    for (int b = 0; b < 2; ++b) {
        const auto &x = (*exact)[b], &y = (*compact)[b];
        // Steps up to the first differing token see the same prefix in both runs.
        size_t same = 0;
        while (same < x.tokens.size() && same < y.tokens.size() && x.tokens[same] == y.tokens[same]) ++same;
        ASSERT_GE(same, 1u);
        for (size_t s = 0; s < std::min(same + 1, std::min(x.tokens.size(), y.tokens.size())); ++s)
            for (int64_t v = 0; v < V; ++v) {
                const float want = x.step_logits[s * V + v], got = y.step_logits[s * V + v];
                ASSERT_NEAR(got, want, 2e-2f * (1 + std::fabs(want))) << "item " << b << " step " << s;
                any_difference |= got != want;
            }
    }
    EXPECT_TRUE(any_difference);  // the bf16 cache was used
    g.kv_dtype = DType::I8;
    auto bad   = model_->generate(model::Path::Backbone, model::Modality::Text, batch, g);
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("KV cache dtype"), std::string::npos);
}

// Model::run splits a batch of more than 512 rows into passes of whole sequences; each item's
// outputs equal its outputs alone.
TEST_F(ModelTest, LargeBatchesRunInPassesWithSameOutputs) {
    std::vector<model::Request> batch(10);  // 10 × 61 rows = 610 > 512
    for (int b = 0; b < 10; ++b)
        for (int t = 0; t < 60; ++t) batch[b].tokens.push_back(4 + (t * 7 + b * 3) % 90);
    auto all = model_->run(model::Path::Backbone, model::Modality::Text, batch, {.all_logits = true});
    ASSERT_TRUE(all.is_ok()) << all.status().message();
    for (int b : {0, 7, 8, 9}) {
        auto solo = model_->run(model::Path::Backbone, model::Modality::Text, {&batch[b], 1}, {.all_logits = true});
        ASSERT_TRUE(solo.is_ok());
        const auto &x = (*all)[b].logits, &y = (*solo)[0].logits;
        ASSERT_EQ(x.size(), y.size());
        ASSERT_EQ(x.size(), static_cast<size_t>(61 * model_->config().text.vocab_size));
        for (size_t k = 0; k < x.size(); ++k) ASSERT_NEAR(x[k], y[k], 1e-4f * (1 + std::fabs(y[k]))) << "item " << b;
        EXPECT_EQ((*all)[b].embedding.size(), (*solo)[0].embedding.size());
    }
}

TEST_F(ModelTest, SamplingIsSeededAndRespectsTopK) {
    model::Request r;
    r.tokens = {10, 11};
    model::GenerateOptions g;
    g.max_new_tokens = 6, g.temperature = 1.0f, g.top_k = 1, g.seed = 3;
    auto top1     = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    g.temperature = 0.0f;
    auto greedy   = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    ASSERT_TRUE(top1.is_ok() && greedy.is_ok());
    EXPECT_EQ((*top1)[0].tokens, (*greedy)[0].tokens);  // top-k = 1 sampling is greedy
    g.temperature = 1.5f, g.top_k = 0, g.top_p = 0.9f;
    auto s1 = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    auto s2 = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    ASSERT_TRUE(s1.is_ok() && s2.is_ok());
    EXPECT_EQ((*s1)[0].tokens, (*s2)[0].tokens);  // same seed, same text
}

// Stop strings: generation ends at the first occurrence of a stop string in the decoded text, and
// the text is cut just before it.
TEST_F(ModelTest, StopStringsEndGenerationAndCutTheText) {
    model::Request r;
    r.tokens = {21, 22, 23};
    model::GenerateOptions g;
    g.max_new_tokens = 16;
    auto free_run    = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    ASSERT_TRUE(free_run.is_ok()) << free_run.status().message();
    const std::string text = (*free_run)[0].text;
    if (text.size() < 4) GTEST_SKIP() << "the random firmware generated only '" << text << "'";
    const std::string stop = text.substr(text.size() / 2, 2);
    const size_t at        = text.find(stop);
    g.stop                 = {"never-generated-string", stop};
    auto stopped           = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    ASSERT_TRUE(stopped.is_ok());
    const auto & s = (*stopped)[0];
    EXPECT_EQ(s.stop_reason, "stop");
    EXPECT_EQ(s.text, text.substr(0, at));
    EXPECT_LT(s.tokens.size(), (*free_run)[0].tokens.size() + 1);
    // Greedy decoding: the stopped run is a prefix of the free one.
    for (size_t i = 0; i < s.tokens.size(); ++i) EXPECT_EQ(s.tokens[i], (*free_run)[0].tokens[i]) << i;
    // An empty stop string never matches.
    g.stop    = {""};
    auto none = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
    ASSERT_TRUE(none.is_ok());
    EXPECT_EQ((*none)[0].text, text);
    EXPECT_NE((*none)[0].stop_reason, "stop");
}

// The engine's adapter cache: least recently used out first, within the memory budget; an
// evicted adapter is loaded again on its next use, a cached one is not.
TEST_F(ModelTest, EngineAdapterCacheEvictsLeastRecentlyUsedWithinItsBudget) {
    std::vector<std::string> paths;
    for (int i = 0; i < 3; ++i)
        paths.push_back(adapter("lru" + std::to_string(i), adapter::Task::Classify, model::Path::Encoder,
                                model::Modality::Imu, 300 + i));
    const uint64_t size = std::filesystem::file_size(paths[0]);
    for (const auto & p : paths) ASSERT_EQ(std::filesystem::file_size(p), size);
    auto engine = runtime::Engine::open(fw_path_, {.adapter_budget_bytes = size * 5 / 2});
    ASSERT_TRUE(engine.is_ok()) << engine.status().message();
    auto & e = **engine;
    auto a0  = e.adapter(paths[0]);
    auto a1  = e.adapter(paths[1]);
    ASSERT_TRUE(a0.is_ok() && a1.is_ok());
    EXPECT_EQ(e.adapters_cached(), 2u);
    EXPECT_EQ(e.adapter(paths[0])->get(), a0->get());  // a hit, and 0 is now the most recent
    auto a2 = e.adapter(paths[2]);                     // over budget: 1 (least recent) goes
    ASSERT_TRUE(a2.is_ok());
    EXPECT_EQ(e.adapters_cached(), 2u);
    EXPECT_LE(e.adapter_cache_bytes(), size * 5 / 2);
    EXPECT_EQ(e.adapter(paths[0])->get(), a0->get()) << "the recently used adapter was evicted";
    auto again = e.adapter(paths[1]);
    ASSERT_TRUE(again.is_ok());
    EXPECT_NE(again->get(), a1->get()) << "the least recently used adapter stayed cached";
    // A budget below one adapter still keeps the one in use.
    auto tiny = runtime::Engine::open(fw_path_, {.adapter_budget_bytes = 1});
    ASSERT_TRUE(tiny.is_ok());
    ASSERT_TRUE((*tiny)->adapter(paths[0]).is_ok());
    ASSERT_TRUE((*tiny)->adapter(paths[1]).is_ok());
    EXPECT_EQ((*tiny)->adapters_cached(), 1u);
    (*tiny)->evict(paths[1]);
    EXPECT_EQ((*tiny)->adapters_cached(), 0u);
    EXPECT_EQ((*tiny)->adapter_cache_bytes(), 0u);
}
