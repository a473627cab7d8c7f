// The app-facing API of issue 21 against the real daemon: generation options (per-request values
// over the adapter's defaults, bad values refused by name before anything runs while the daemon
// keeps serving, results equal to the in-process model whatever the batching), text embeddings
// in the shared space, and the same through the C ABI.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "../unit/fixture.h"
#include "base/mapped_file.h"
#include "daemon_harness.h"
#include "m4.h"

using namespace m4;
using namespace m4::test;

namespace {

class ServiceApi : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/api";
        std::filesystem::create_directories(dir_);
        fw_ = dir_ + "/fw.m4fw";
        write_firmware(fw_, tiny_config(), 1);
        auto m = model::Model::load(fw_);
        ASSERT_TRUE(m.is_ok());
        model_ = std::move(m).value().release();
        adapter::Manifest man;
        man.task      = adapter::Task::Generate;
        man.path      = model::Path::Backbone;
        man.modality  = model::Modality::Text;
        man.targets   = adapter::expand_targets(model_->config(), man.path, man.modality, "attn").value();
        man.lora_rank = 2, man.lora_alpha = 4;
        // Manifest defaults: sampling at 0.9 with seed 17, 6 tokens at most.
        man.generation.max_new_tokens = 6, man.generation.temperature = 0.9f, man.generation.seed = 17;
        gen_adapter_ = dir_ + "/gen.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(gen_adapter_, *model_, man, 5).is_ok());
        auto a = adapter::Adapter::load(gen_adapter_, *model_);
        ASSERT_TRUE(a.is_ok()) << a.status().message();
        adapter_ = new adapter::Adapter(std::move(a).value());
    }
    static void TearDownTestSuite() {
        delete adapter_;
        delete model_;
    }
    static std::string fresh_dir(const std::string & name) { return fresh_dir_under(dir_, name); }
    // What the in-process model generates for `text` with the adapter's defaults and `o` on top
    // (input 0 of a request: seed · φ + 0).
    static model::Generation expected(const std::string & text, const model::GenerationOverrides & o) {
        model::Request r;
        r.tokens                 = model_->tokenizer().encode(text).value();
        r.adapter                = &adapter_->weights();
        model::GenerateOptions g = model::with_overrides(adapter_->manifest().generation, o);
        g.seed *= 0x9e3779b97f4a7c15ull;
        if (!o.choices.empty())
            g.constraint = model::TokenConstraint::choices(o.choices, model_->tokenizer(), g.max_new_tokens).value();
        if (!o.json_schema.empty())
            g.constraint =
                model::TokenConstraint::json_schema(o.json_schema, model_->tokenizer(), g.max_new_tokens).value();
        auto out = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, {&g, 1});
        EXPECT_TRUE(out.is_ok());
        return out.is_ok() ? (*out)[0] : model::Generation{};
    }
    static v1::Infer gen_request(const std::string & text) {
        v1::Infer req;
        req.set_adapter("gen");
        req.add_inputs()->set_text(text);
        return req;
    }
    static std::vector<int32_t> tokens(const v1::Result & r) { return {r.tokens().begin(), r.tokens().end()}; }

    static inline std::string dir_, fw_, gen_adapter_;
    static inline model::Model * model_       = nullptr;
    static inline adapter::Adapter * adapter_ = nullptr;
};

}  // namespace

TEST_F(ServiceApi, RequestValuesOverrideManifestDefaultsAndMatchTheModel) {
    DaemonProcess d(fresh_dir("override"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("gen", read_file_bytes(gen_adapter_).value())->status(), v1::STATUS_OK);
    const std::string prompt = "the program is free software";
    // Manifest defaults alone.
    auto r = (*c)->infer(gen_request(prompt));
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    auto want = expected(prompt, {});
    EXPECT_EQ(tokens(r->infer().results(0)), want.tokens);
    EXPECT_EQ(r->infer().results(0).stop_reason(), want.stop_reason);
    EXPECT_LE(r->infer().results(0).tokens_size(), 6);
    // Each value overrides its default only: greedy, 3 tokens, another seed, top-k, top-p.
    struct Case {
        std::function<void(v1::Infer &, model::GenerationOverrides &)> set;
    };
    const std::vector<Case> cases = {
        {[](auto & q, auto & o) { q.set_temperature(0), o.temperature = 0.0f; }},
        {[](auto & q, auto & o) { q.set_max_new_tokens(3), o.max_new_tokens = 3; }},
        {[](auto & q, auto & o) { q.set_seed(12345), o.seed = 12345; }},
        {[](auto & q, auto & o) { q.set_top_k(3), q.set_seed(8), o.top_k = 3, o.seed = 8; }},
        {[](auto & q, auto & o) { q.set_top_p(0.5f), q.set_temperature(1.7f), o.top_p = 0.5f, o.temperature = 1.7f; }},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        v1::Infer q = gen_request(prompt);
        model::GenerationOverrides o;
        cases[i].set(q, o);
        auto rr = (*c)->infer(q);
        ASSERT_TRUE(rr.is_ok());
        ASSERT_EQ(rr->status(), v1::STATUS_OK) << rr->message();
        auto w = expected(prompt, o);
        EXPECT_EQ(tokens(rr->infer().results(0)), w.tokens) << "case " << i;
        EXPECT_EQ(rr->infer().results(0).text(), w.text) << "case " << i;
    }
    // A stop string: the text is cut before it and the reason says so.
    model::GenerationOverrides greedy_o;
    greedy_o.max_new_tokens = 12, greedy_o.temperature = 0.0f;
    auto greedy = expected(prompt, greedy_o);
    if (greedy.text.size() >= 4) {
        const std::string stop = greedy.text.substr(greedy.text.size() / 2, 2);
        v1::Infer q            = gen_request(prompt);
        q.set_temperature(0), q.set_max_new_tokens(12), q.add_stop("zzzz-not-there"), q.add_stop(stop);
        auto rr = (*c)->infer(q);
        ASSERT_TRUE(rr.is_ok());
        ASSERT_EQ(rr->status(), v1::STATUS_OK) << rr->message();
        EXPECT_EQ(rr->infer().results(0).stop_reason(), "stop");
        EXPECT_EQ(rr->infer().results(0).text(), greedy.text.substr(0, greedy.text.find(stop)));
    }
}

// Bad values: INVALID_ARGUMENT naming the value, before the request is queued (no items counted,
// no run); the daemon keeps serving the same connection and others.
TEST_F(ServiceApi, BadValuesAreRefusedByNameAndTheDaemonKeepsServing) {
    DaemonProcess d(fresh_dir("bad"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("gen", read_file_bytes(gen_adapter_).value())->status(), v1::STATUS_OK);
    const auto & mc = model_->config();
    struct Case {
        std::function<void(v1::Infer &)> set;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {[](auto & q) { q.set_temperature(-1); }, "temperature"},
        {[](auto & q) { q.set_temperature(NAN); }, "temperature"},
        {[](auto & q) { q.set_temperature(1e9f); }, "temperature"},
        {[](auto & q) { q.set_top_p(0); }, "top_p"},
        {[](auto & q) { q.set_top_p(1.01f); }, "top_p"},
        {[&](auto & q) { q.set_top_k(static_cast<uint32_t>(mc.text.vocab_size) + 1); }, "top_k"},
        {[](auto & q) { q.set_top_k(4000000000u); }, "top_k"},
        {[&](auto & q) { q.set_max_new_tokens(static_cast<uint32_t>(mc.backbone.max_seq) + 1); }, "max_new_tokens"},
        {[](auto & q) { q.set_max_new_tokens(4000000000u); }, "max_new_tokens"},
        {[](auto & q) { q.add_stop(std::string(65, 'x')); }, "stop string 0 has 65 bytes"},
        {[](auto & q) { q.add_stop(""); }, "stop string 0 is empty"},
        {[](auto & q) {
             for (int i = 0; i < 100000; ++i) q.add_stop("s");
         },
         "100000 stop strings"},
    };
    for (const auto & cs : cases) {
        v1::Infer q = gen_request("hello");
        cs.set(q);
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok()) << cs.needle;
        EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT) << cs.needle;
        EXPECT_NE(r->message().find(cs.needle), std::string::npos) << r->message();
        // Served right after, on the same connection.
        auto ok = (*c)->infer(gen_request("hello"));
        ASSERT_TRUE(ok.is_ok());
        EXPECT_EQ(ok->status(), v1::STATUS_OK) << ok->message();
    }
    auto st = (*c)->status();
    ASSERT_TRUE(st.is_ok());
    ASSERT_EQ(st->status_reply().apps_size(), 1);
    EXPECT_EQ(st->status_reply().apps(0).items(), cases.size());  // refused requests ran nothing
    EXPECT_EQ(st->status_reply().apps(0).errors(), cases.size());
}

// Concurrent clients with different settings are batched together (one forward pass, per-row
// settings); every reply equals the in-process result for its own settings.
TEST_F(ServiceApi, MixedSettingsShareBatchesAndKeepTheirResults) {
    DaemonProcess d(fresh_dir("mixed"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    {
        auto c = client::Client::connect(d.socket());
        ASSERT_TRUE(c.is_ok());
        ASSERT_EQ((*c)->register_adapter("gen", read_file_bytes(gen_adapter_).value())->status(), v1::STATUS_OK);
    }
    constexpr int kClients = 4, kRounds = 6;
    std::atomic<int> failures{0};
    std::atomic<uint32_t> max_rows{0};
    struct Got {
        std::string prompt;
        model::GenerationOverrides o;
        std::vector<int32_t> tokens;
    };
    std::mutex mu;
    std::vector<Got> got;  // checked after the clients finish (one model call at a time here)
    std::vector<std::thread> threads;
    for (int t = 0; t < kClients; ++t)
        threads.emplace_back([&, t] {
            auto c = client::Client::connect(d.socket());
            if (!c.is_ok()) return void(failures++);
            for (int k = 0; k < kRounds; ++k) {
                const std::string prompt = "you may copy it " + std::to_string(k);
                v1::Infer q              = gen_request(prompt);
                model::GenerationOverrides o;
                q.set_seed(100 * t + k), o.seed               = 100 * t + k;
                q.set_temperature(0.5f * t), o.temperature    = 0.5f * t;
                q.set_max_new_tokens(2 + t), o.max_new_tokens = 2 + t;
                if (t == 3) q.set_top_k(5), o.top_k = 5;
                auto r = (*c)->infer(q);
                if (!r.is_ok() || r->status() != v1::STATUS_OK) {
                    failures++;
                    continue;
                }
                uint32_t rows = r->infer().batch_rows(), cur = max_rows.load();
                while (rows > cur && !max_rows.compare_exchange_weak(cur, rows)) {
                }
                std::lock_guard<std::mutex> lock(mu);
                got.push_back({prompt, o, tokens(r->infer().results(0))});
            }
        });
    for (auto & th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(got.size(), static_cast<size_t>(kClients * kRounds));
    for (const auto & g : got) EXPECT_EQ(g.tokens, expected(g.prompt, g.o).tokens) << g.prompt;
    std::printf("largest batch: %u rows\n", max_rows.load());
}

// The encoder path over text gives the text's embedding in the shared space.
TEST_F(ServiceApi, TextEmbeddingsOverTheService) {
    DaemonProcess d(fresh_dir("embed"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    v1::Infer q;
    q.set_path(v1::PATH_ENCODER);
    q.add_inputs()->set_text("a photo of a cat");
    q.add_inputs()->set_text("a dog barking");
    auto r = (*c)->infer(q);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    ASSERT_EQ(r->infer().results_size(), 2);
    std::vector<model::Request> items(2);
    items[0].tokens = model_->tokenizer().encode("a photo of a cat").value();
    items[1].tokens = model_->tokenizer().encode("a dog barking").value();
    auto want       = model_->run(model::Path::Encoder, model::Modality::Text, items);
    ASSERT_TRUE(want.is_ok());
    for (int i = 0; i < 2; ++i) {
        const auto & v = r->infer().results(i).values();
        ASSERT_EQ(v.size(), model_->config().embed_dim);
        for (int k = 0; k < v.size(); ++k) EXPECT_NEAR(v[k], (*want)[i].embedding[k], 1e-5f);
    }
    // An image file sent as text modality on the encoder path is still just text; mixed
    // modalities in one request are refused.
    v1::Infer mixed = q;
    auto * in       = mixed.add_inputs();
    in->set_modality("imu");
    for (int i = 0; i < 120; ++i) in->mutable_signal()->add_values(0.1f);
    auto bad = (*c)->infer(mixed);
    ASSERT_TRUE(bad.is_ok());
    EXPECT_EQ(bad->status(), v1::STATUS_INVALID_ARGUMENT) << bad->message();
}

// The same through the C ABI: options, generation, stop reason, tokens, embeddings, coded errors.
TEST_F(ServiceApi, CAbiGenerationOptionsAndEmbeddings) {
    DaemonProcess d(fresh_dir("cabi"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    m4_client_t * c = nullptr;
    ASSERT_EQ(m4_client_open(d.socket().c_str(), &c), M4_OK) << m4_last_error(c);
    ASSERT_EQ(m4_adapter_register_file(c, "gen", gen_adapter_.c_str(), 0), M4_OK) << m4_last_error(c);
    m4_options_t * o = m4_options_create();
    m4_options_set_max_new_tokens(o, 4);
    m4_options_set_temperature(o, 1.1f);
    m4_options_set_top_k(o, 6);
    m4_options_set_top_p(o, 0.95f);
    m4_options_set_seed(o, 99);
    ASSERT_EQ(m4_options_add_stop(o, "qqqq"), M4_OK);
    EXPECT_EQ(m4_options_add_stop(o, nullptr), M4_ERR_INVALID_ARGUMENT);
    m4_result_t * r = nullptr;
    ASSERT_EQ(m4_generate(c, "gen", "the licence", o, &r), M4_OK) << m4_last_error(c);
    model::GenerationOverrides want_o;
    want_o.max_new_tokens = 4, want_o.temperature = 1.1f, want_o.top_k = 6, want_o.top_p = 0.95f, want_o.seed = 99;
    want_o.stop = std::vector<std::string>{"qqqq"};
    auto want   = expected("the licence", want_o);
    EXPECT_STREQ(m4_result_text(r), want.text.c_str());
    ASSERT_EQ(m4_result_token_count(r), want.tokens.size());
    for (size_t i = 0; i < want.tokens.size(); ++i) EXPECT_EQ(m4_result_tokens(r)[i], want.tokens[i]);
    EXPECT_STREQ(m4_result_stop_reason(r), want.stop_reason.c_str());
    m4_result_free(r);
    // Defaults (NULL options) are the manifest's.
    ASSERT_EQ(m4_generate(c, "gen", "the licence", nullptr, &r), M4_OK) << m4_last_error(c);
    EXPECT_STREQ(m4_result_text(r), expected("the licence", {}).text.c_str());
    m4_result_free(r);
    // A bad value: a coded error naming it, and the client keeps working.
    m4_options_set_top_p(o, 7.0f);
    EXPECT_EQ(m4_generate(c, "gen", "the licence", o, &r), M4_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(r, nullptr);
    EXPECT_NE(std::string(m4_last_error(c)).find("top_p"), std::string::npos) << m4_last_error(c);
    m4_options_destroy(o);
    ASSERT_EQ(m4_embed_text(c, "a photo of a cat", &r), M4_OK) << m4_last_error(c);
    ASSERT_EQ(m4_result_value_count(r), static_cast<size_t>(model_->config().embed_dim));
    double n = 0;
    for (size_t i = 0; i < m4_result_value_count(r); ++i) n += double(m4_result_values(r)[i]) * m4_result_values(r)[i];
    EXPECT_NEAR(n, 1.0, 1e-4);
    m4_result_free(r);
    EXPECT_EQ(m4_embed_text(c, nullptr, &r), M4_ERR_INVALID_ARGUMENT);
    m4_client_close(c);
}

// Usage accounting: tokens, CPU and queue time, peak adapter / KV memory and busy refusals per
// app; an app sees only its own line, the admin sees every app's.
TEST_F(ServiceApi, UsageIsCountedPerAppAndShownToItsOwnerAndTheAdmin) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other uids (CI runs as root)";
    constexpr uid_t kA = 2201, kB = 2202;
    std::string dir = fresh_dir("usage");
    ::chmod(temp_dir().c_str(), 0755);
    ::chmod(dir_.c_str(), 0755);
    ::chmod(dir.c_str(), 0777);
    ::chmod(gen_adapter_.c_str(), 0644);
    // A token bucket of 3 requests (refilled at 1 per 100 s): the 4th request in a row is BUSY.
    DaemonProcess d(dir, fw_, R"({"rate_per_app": 0.01, "burst_per_app": 3})");
    ASSERT_TRUE(d.start()) << d.log();
    const std::string sock       = d.socket();
    const uint64_t adapter_bytes = std::filesystem::file_size(gen_adapter_);
    EXPECT_EQ(as_uid(kA,
                     [&] {
                         auto c = client::Client::connect(sock);
                         CHILD_CHECK(c.is_ok(), "connect");
                         auto reg = (*c)->register_adapter("gen", read_file_bytes(gen_adapter_).value());
                         CHILD_CHECK(reg.is_ok() && reg->status() == v1::STATUS_OK, "register");
                         uint64_t generated = 0, prompt = 0;
                         for (int k = 0; k < 3; ++k) {
                             v1::Infer q = gen_request("the program " + std::to_string(k));
                             q.add_inputs()->set_text("two inputs");
                             q.set_max_new_tokens(4);
                             auto r = (*c)->infer(q);
                             CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_OK, "generate");
                             for (const auto & res : r->infer().results()) generated += res.tokens_size();
                             prompt += model_->tokenizer().encode("the program " + std::to_string(k))->size() +
                                       model_->tokenizer().encode("two inputs")->size();
                         }
                         auto busy = (*c)->infer(gen_request("one too many"));
                         CHILD_CHECK(busy.is_ok() && busy->status() == v1::STATUS_BUSY, "4th request is BUSY");
                         auto st = (*c)->status();
                         CHILD_CHECK(st.is_ok() && st->status() == v1::STATUS_OK, "status");
                         CHILD_CHECK(st->status_reply().apps_size() == 1, "an app sees only itself");
                         const auto & u = st->status_reply().apps(0);
                         CHILD_CHECK(u.uid() == kA, "own line");
                         CHILD_CHECK(u.items() == 6, "6 items");
                         CHILD_CHECK(u.busy() == 1, "1 busy refusal");
                         CHILD_CHECK(u.prompt_tokens() == prompt, "prompt tokens counted");
                         CHILD_CHECK(u.generated_tokens() == generated && generated > 0, "generated tokens counted");
                         CHILD_CHECK(u.cpu_us() > 0, "cpu time");
                         CHILD_CHECK(u.peak_adapter_bytes() == adapter_bytes,
                                     "peak adapter bytes = the adapter's size");
                         CHILD_CHECK(u.peak_kv_bytes() > 0, "peak KV");
                         return 0;
                     }),
              0);
    EXPECT_EQ(as_uid(kB,
                     [&] {
                         auto c = client::Client::connect(sock);
                         CHILD_CHECK(c.is_ok(), "connect");
                         v1::Infer q;
                         q.set_path(v1::PATH_ENCODER);
                         q.add_inputs()->set_text("a photo of a cat");
                         auto r = (*c)->infer(q);
                         CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_OK, "embed");
                         auto st = (*c)->status();
                         CHILD_CHECK(st.is_ok() && st->status_reply().apps_size() == 1, "only itself");
                         const auto & u = st->status_reply().apps(0);
                         CHILD_CHECK(u.uid() == kB && u.items() == 1 && u.generated_tokens() == 0, "B's own counters");
                         CHILD_CHECK(u.peak_adapter_bytes() == 0 && u.busy() == 0, "nothing of A's");
                         return 0;
                     }),
              0);
    auto admin = client::Client::connect(sock);
    ASSERT_TRUE(admin.is_ok());
    auto st = (*admin)->status();
    ASSERT_TRUE(st.is_ok());
    std::set<uint32_t> seen;
    for (const auto & u : st->status_reply().apps()) seen.insert(u.uid());
    EXPECT_TRUE(seen.count(kA) && seen.count(kB)) << "the admin sees every app";
}

// Constrained output over the service and the C ABI: choices and schemas give outputs that match
// the in-process model and parse; bad constraints are refused by name and the daemon keeps serving.
TEST_F(ServiceApi, ConstrainedOutputOverTheServiceAndTheCAbi) {
    DaemonProcess d(fresh_dir("constrained"), fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("gen", read_file_bytes(gen_adapter_).value())->status(), v1::STATUS_OK);
    const std::vector<std::string> choices = {"yes", "no", "maybe", "the program"};
    for (uint64_t seed = 0; seed < 4; ++seed) {
        v1::Infer q = gen_request("is it free software");
        for (const auto & ch : choices) q.add_choices(ch);
        q.set_seed(seed), q.set_temperature(1.5f), q.set_max_new_tokens(16);
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok());
        ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
        const std::string text = r->infer().results(0).text();
        EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;
        model::GenerationOverrides o;
        o.seed = seed, o.temperature = 1.5f, o.max_new_tokens = 16, o.choices = choices;
        EXPECT_EQ(tokens(r->infer().results(0)), expected("is it free software", o).tokens);
    }
    for (const std::string schema : {R"({"enum":["free","copy",12,true,null]})", R"({"type":"string"})"}) {
        v1::Infer q = gen_request("the licence");
        q.set_json_schema(schema), q.set_max_new_tokens(12), q.set_seed(3);
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok());
        ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
        auto v = nlohmann::json::parse(r->infer().results(0).text(), nullptr, false);
        EXPECT_FALSE(v.is_discarded()) << schema << " → " << r->infer().results(0).text();
    }
    struct Case {
        std::function<void(v1::Infer &)> set;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {[](auto & q) { q.set_json_schema(R"({"type":"object","properties":{"a":{"type":"string"}}})"); },
         "no token for '{'"},
        {[](auto & q) { q.set_json_schema("{\"type\":"); }, "not valid JSON"},
        {[](auto & q) { q.set_json_schema(R"({"type":"string","format":"date"})"); }, "keyword \"format\""},
        {[](auto & q) { q.set_json_schema(std::string(20000, ' ')); }, "at most 16384"},
        {[](auto & q) { q.add_choices("€uro"); }, "cannot be spelled"},
        {[](auto & q) { q.add_choices("yes"), q.set_json_schema(R"({"type":"string"})"); }, "cannot be combined"},
        {[](auto & q) {
             for (int i = 0; i < 65; ++i) q.add_choices("c" + std::to_string(i));
         },
         "65 choices"},
        {[](auto & q) { q.add_choices(std::string(30, 'e')), q.set_max_new_tokens(8); }, "max_new_tokens is 8"},
        {[](auto & q) { q.set_path(v1::PATH_ENCODER), q.set_adapter(""), q.add_choices("yes"); }, "needs generation"},
    };
    for (const auto & cs : cases) {
        v1::Infer q = gen_request("hello");
        cs.set(q);
        auto r = (*c)->infer(q);
        ASSERT_TRUE(r.is_ok()) << cs.needle;
        EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT) << cs.needle;
        EXPECT_NE(r->message().find(cs.needle), std::string::npos) << r->message();
    }
    auto ok = (*c)->infer(gen_request("still serving"));
    ASSERT_TRUE(ok.is_ok());
    EXPECT_EQ(ok->status(), v1::STATUS_OK);
    // The C ABI.
    m4_client_t * cc = nullptr;
    ASSERT_EQ(m4_client_open(d.socket().c_str(), &cc), M4_OK) << m4_last_error(cc);
    m4_options_t * o = m4_options_create();
    for (const auto & ch : choices) ASSERT_EQ(m4_options_add_choice(o, ch.c_str()), M4_OK);
    m4_options_set_temperature(o, 2.0f);
    m4_result_t * r = nullptr;
    ASSERT_EQ(m4_generate(cc, "gen", "answer", o, &r), M4_OK) << m4_last_error(cc);
    EXPECT_NE(std::find(choices.begin(), choices.end(), std::string(m4_result_text(r))), choices.end());
    m4_result_free(r);
    m4_options_destroy(o);
    o = m4_options_create();
    ASSERT_EQ(m4_options_set_json_schema(o, R"({"type":"object"})"), M4_OK);
    EXPECT_EQ(m4_generate(cc, "gen", "answer", o, &r), M4_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(m4_last_error(cc)).find("cannot be spelled"), std::string::npos) << m4_last_error(cc);
    EXPECT_EQ(m4_options_add_choice(o, nullptr), M4_ERR_INVALID_ARGUMENT);
    m4_options_destroy(o);
    m4_client_close(cc);
}
