// Generation options (issue 21): the bounds an app's values are checked against, per-request
// values over an adapter manifest's defaults, mixed batches where every row has its own settings,
// the sampler's vocabulary mask, and the text side of the shared embedding space.
#include <cmath>
#include <random>

#include "fixture.h"

using namespace m4;
using namespace m4::test;

namespace {

class GenerationTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        fw_path_ = temp_dir() + "/gen.m4fw";
        write_firmware(fw_path_, tiny_config());
        auto m = model::Model::load(fw_path_);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }
    static model::Request text(const std::string & s) {
        model::Request r;
        r.tokens = model_->tokenizer().encode(s).value();
        return r;
    }
    static inline std::string fw_path_;
    static inline model::Model * model_ = nullptr;
};

// Each out-of-range value is refused with a message naming the value and its range.
TEST_F(GenerationTest, OutOfRangeValuesAreRefusedByName) {
    const int64_t V = model_->config().text.vocab_size, S = model_->config().backbone.max_seq;
    model::GenerateOptions ok;
    ok.max_new_tokens = 8, ok.temperature = 0.7f, ok.top_k = 5, ok.top_p = 0.9f, ok.stop = {"\n", "END"};
    EXPECT_TRUE(model_->check_options(ok, "x").is_ok());
    struct Case {
        std::function<void(model::GenerateOptions &)> edit;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {[](auto & g) { g.max_new_tokens = 0; }, "max_new_tokens 0"},
        {[&](auto & g) { g.max_new_tokens = static_cast<int>(S) + 1; }, "max_new_tokens " + std::to_string(S + 1)},
        {[](auto & g) { g.temperature = -0.5f; }, "temperature"},
        {[](auto & g) { g.temperature = NAN; }, "temperature"},
        {[](auto & g) { g.temperature = 101.0f; }, "temperature"},
        {[](auto & g) { g.top_k = -1; }, "top_k -1"},
        {[&](auto & g) { g.top_k = static_cast<int>(V) + 1; }, "top_k " + std::to_string(V + 1)},
        {[](auto & g) { g.top_p = 0.0f; }, "top_p"},
        {[](auto & g) { g.top_p = 1.5f; }, "top_p"},
        {[](auto & g) { g.top_p = INFINITY; }, "top_p"},
        {[](auto & g) { g.stop = std::vector<std::string>(9, "x"); }, "9 stop strings"},
        {[](auto & g) {
             g.stop = {"ok", std::string(65, 'a')};
         },
         "stop string 1 has 65 bytes"},
        {[](auto & g) { g.stop = {""}; }, "stop string 0 is empty"},
    };
    for (const auto & c : cases) {
        model::GenerateOptions g = ok;
        c.edit(g);
        Status st = model_->check_options(g, "where");
        EXPECT_EQ(st.code(), StatusCode::InvalidArgument) << c.needle;
        EXPECT_NE(st.message().find(c.needle), std::string::npos) << st.message();
        EXPECT_EQ(st.message().rfind("where: ", 0), 0u) << st.message();
        // Generation itself is not what refuses: the check runs first everywhere (CLI, service).
    }
    // The event loop's check of a request's values alone.
    model::GenerationOverrides o;
    o.top_p = 2.0f;
    EXPECT_EQ(model::check_overrides(o, V, S, "request").code(), StatusCode::InvalidArgument);
    o.top_p.reset(), o.stop = std::vector<std::string>{std::string(64, 'z')};
    EXPECT_TRUE(model::check_overrides(o, V, S, "request").is_ok());
}

TEST_F(GenerationTest, RequestValuesOverrideTheDefaultsTheyName) {
    model::GenerateOptions base;
    base.max_new_tokens = 12, base.temperature = 0.8f, base.top_k = 7, base.top_p = 0.5f, base.seed = 9,
    base.stop = {"."};
    model::GenerationOverrides none;
    auto same = model::with_overrides(base, none);
    EXPECT_EQ(same.max_new_tokens, 12);
    EXPECT_EQ(same.temperature, 0.8f);
    EXPECT_EQ(same.top_k, 7);
    EXPECT_EQ(same.seed, 9u);
    EXPECT_EQ(same.stop, base.stop);
    model::GenerationOverrides o;
    o.temperature = 0.0f;  // an explicit greedy overrides a sampling default
    o.stop        = std::vector<std::string>{"!", "?"};
    o.seed        = 0;
    auto g        = model::with_overrides(base, o);
    EXPECT_EQ(g.temperature, 0.0f);
    EXPECT_EQ(g.stop, (std::vector<std::string>{"!", "?"}));
    EXPECT_EQ(g.seed, 0u);
    EXPECT_EQ(g.top_k, 7);
    EXPECT_EQ(g.max_new_tokens, 12);
}

// A mixed batch: each row's output equals that row generated alone with its own settings.
TEST_F(GenerationTest, EveryRowOfAMixedBatchKeepsItsOwnSettings) {
    std::vector<model::Request> batch = {text("the program"), text("you may"), text("free software"),
                                         text("copyright")};
    std::vector<model::GenerateOptions> opts(4);
    opts[0].max_new_tokens = 3;
    opts[1].max_new_tokens = 9, opts[1].temperature = 1.3f, opts[1].seed = 11;
    opts[2].max_new_tokens = 6, opts[2].temperature = 0.9f, opts[2].top_k = 4, opts[2].seed = 5;
    opts[3].max_new_tokens = 7, opts[3].temperature = 2.0f, opts[3].top_p = 0.6f, opts[3].seed = 77;
    auto mixed = model_->generate(model::Path::Backbone, model::Modality::Text, batch, opts);
    ASSERT_TRUE(mixed.is_ok()) << mixed.status().message();
    for (size_t b = 0; b < batch.size(); ++b) {
        auto solo = model_->generate(model::Path::Backbone, model::Modality::Text, {&batch[b], 1}, {&opts[b], 1});
        ASSERT_TRUE(solo.is_ok());
        EXPECT_EQ((*mixed)[b].tokens, (*solo)[0].tokens) << "row " << b;
        EXPECT_EQ((*mixed)[b].stop_reason, (*solo)[0].stop_reason) << "row " << b;
        EXPECT_LE(static_cast<int>((*mixed)[b].tokens.size()), opts[b].max_new_tokens);
    }
    // Different seeds give different samples somewhere (the seed is used, not ignored).
    auto reseeded = opts;
    bool differs  = false;
    for (uint64_t s = 1; s < 6 && !differs; ++s) {
        reseeded[3].seed = 1000 + s;
        auto r = model_->generate(model::Path::Backbone, model::Modality::Text, {&batch[3], 1}, {&reseeded[3], 1});
        ASSERT_TRUE(r.is_ok());
        differs = (*r)[0].tokens != (*mixed)[3].tokens;
    }
    EXPECT_TRUE(differs);
    // The one-settings form seeds item b with seed · φ + b, as the service does for a request.
    model::GenerateOptions one = opts[1];
    auto all                   = model_->generate(model::Path::Backbone, model::Modality::Text, batch, one);
    ASSERT_TRUE(all.is_ok());
    for (size_t b = 0; b < batch.size(); ++b) {
        model::GenerateOptions row = one;
        row.seed                   = one.seed * 0x9e3779b97f4a7c15ull + b;
        auto solo = model_->generate(model::Path::Backbone, model::Modality::Text, {&batch[b], 1}, {&row, 1});
        ASSERT_TRUE(solo.is_ok());
        EXPECT_EQ((*all)[b].tokens, (*solo)[0].tokens) << "row " << b;
    }
    std::vector<model::GenerateOptions> short_opts(2);
    EXPECT_EQ(model_->generate(model::Path::Backbone, model::Modality::Text, batch, short_opts).status().code(),
              StatusCode::InvalidArgument);
}

// The sampler never picks a token the mask forbids, greedy or sampled, whatever the logits.
TEST_F(GenerationTest, SamplerMaskIsNeverViolated) {
    std::mt19937_64 rng(1);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (int trial = 0; trial < 300; ++trial) {
        const int64_t V = 1 + static_cast<int64_t>(rng() % 97);
        std::vector<float> logits(V);
        for (auto & l : logits) l = nd(rng);
        std::vector<uint8_t> mask(V, 0);
        const int64_t allowed = 1 + static_cast<int64_t>(rng() % V);
        for (int64_t i = 0; i < allowed; ++i) mask[rng() % V] = 1;
        model::SamplerSettings s{trial % 3 == 0 ? 0.0f : 1.5f, static_cast<int>(rng() % 4), trial % 2 ? 0.7f : 1.0f};
        int32_t t = model::sample_token(logits.data(), V, s, rng, mask.data());
        ASSERT_TRUE(t >= 0 && t < V);
        ASSERT_EQ(mask[t], 1) << "trial " << trial;
        if (s.temperature == 0.0f) {  // greedy: the best allowed token
            for (int64_t i = 0; i < V; ++i) {
                if (mask[i]) {
                    ASSERT_LE(logits[i], logits[t]);
                }
            }
        }
    }
}

// Manifest defaults: parsed (seed included), range-checked, and bound against the firmware.
TEST_F(GenerationTest, ManifestDefaultsAreCheckedAtParseAndBind) {
    adapter::Manifest m;
    m.task = adapter::Task::Generate, m.path = model::Path::Backbone, m.modality = model::Modality::Text;
    m.firmware_fingerprint = model_->fingerprint();
    m.generation.seed = 42, m.generation.stop = {"\n"}, m.generation.temperature = 0.5f;
    auto j      = adapter::manifest_to_json(m);
    auto parsed = adapter::parse_manifest(j);
    ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
    EXPECT_EQ(parsed->generation.seed, 42u);
    EXPECT_EQ(parsed->generation.stop, m.generation.stop);
    auto bad                         = j;
    bad["generation"]["temperature"] = -1;
    auto r                           = adapter::parse_manifest(bad);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("temperature"), std::string::npos) << r.status().message();
    bad                       = j;
    bad["generation"]["stop"] = {std::string(100, 's')};
    EXPECT_FALSE(adapter::parse_manifest(bad).is_ok());
    // max_new_tokens beyond this firmware's context: only binding can tell.
    m.generation.max_new_tokens = static_cast<int>(model_->config().backbone.max_seq) + 5;
    m.targets                   = adapter::expand_targets(model_->config(), m.path, m.modality, "attn").value();
    m.lora_rank = 2, m.lora_alpha = 2;
    const std::string p = temp_dir() + "/long.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, *model_, m, 3).is_ok());
    auto a = adapter::Adapter::load(p, *model_);
    ASSERT_FALSE(a.is_ok());
    EXPECT_NE(a.status().message().find("max_new_tokens"), std::string::npos) << a.status().message();
}

// The encoder path over text: the text's embedding in the shared space — unit norm, embed_dim
// values, the same vector the backbone pass computes for zero-shot retrieval.
TEST_F(GenerationTest, TextEmbeddingIsTheSharedSpaceVector) {
    std::vector<model::Request> batch = {text("a photo of a cat"), text("free software")};
    auto enc                          = model_->run(model::Path::Encoder, model::Modality::Text, batch);
    auto bb                           = model_->run(model::Path::Backbone, model::Modality::Text, batch);
    ASSERT_TRUE(enc.is_ok()) << enc.status().message();
    ASSERT_TRUE(bb.is_ok());
    for (size_t b = 0; b < batch.size(); ++b) {
        const auto & e = (*enc)[b].embedding;
        ASSERT_EQ(static_cast<int64_t>(e.size()), model_->config().embed_dim);
        double n = 0;
        for (float v : e) n += double(v) * v;
        EXPECT_NEAR(n, 1.0, 1e-4);
        EXPECT_EQ(e, (*bb)[b].embedding);
        EXPECT_TRUE((*enc)[b].logits.empty());
    }
    EXPECT_NE((*enc)[0].embedding, (*enc)[1].embedding);
    model::Request empty;
    EXPECT_EQ(model_->run(model::Path::Encoder, model::Modality::Text, {&empty, 1}).status().code(),
              StatusCode::InvalidArgument);
}

}  // namespace
