// Constrained output (model/constraint.h): property tests over random JSON schemas, choice lists,
// seeds and temperatures that the generated text always parses and follows its schema — alone
// and as rows of mixed batches — and the bad inputs (malformed, unsupported, unsatisfiable,
// unspellable) refused by name before anything runs.
#include <fstream>
#include <random>

#include "fixture.h"

using namespace m4;
using namespace m4::test;
using ojson = nlohmann::ordered_json;

namespace {

// A firmware whose tokenizer was trained on text that holds JSON, so it can spell it.
class ConstraintTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const std::string corpus = temp_dir() + "/json_corpus.txt";
        {
            std::ofstream out(corpus);
            std::ifstream gpl("/usr/share/common-licenses/GPL-3");
            out << gpl.rdbuf();
            std::mt19937_64 rng(5);
            const char * words[] = {"name",  "age",   "city", "tags",  "ok",  "id",
                                    "score", "items", "true", "false", "null"};
            for (int i = 0; i < 400; ++i)
                out << "{\"" << words[rng() % 11] << "\":[" << rng() % 1000 << ",-" << rng() % 10 << ".5],\""
                    << words[rng() % 11] << "\":\"" << words[rng() % 11] << "\"}\n";
        }
        model::TokenizerTrainOptions o;
        o.corpus_path = corpus;
        o.vocab_size  = 300;
        auto tok      = model::train_tokenizer(o);
        ASSERT_TRUE(tok.is_ok()) << tok.status().message();
        const std::string fw = temp_dir() + "/json.m4fw";
        write_firmware_with_tokenizer(fw, tiny_config(), *tok, 4);
        auto m = model::Model::load(fw);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }
    static model::Request prompt(const std::string & s) {
        model::Request r;
        r.tokens = model_->tokenizer().encode(s).value();
        return r;
    }
    static inline model::Model * model_ = nullptr;
};

// A random schema of the supported subset, at most `depth` levels deep.
ojson random_schema(std::mt19937_64 & rng, int depth) {
    static const char * keys[] = {"name", "age", "city", "tags", "ok", "id", "score", "items"};
    const int kind             = static_cast<int>(rng() % (depth > 0 ? 8 : 6));
    switch (kind) {
        case 0:
            return {{"type", "string"}};
        case 1:
            return {{"type", "integer"}};
        case 2:
            return {{"type", "number"}};
        case 3:
            return {{"type", "boolean"}};
        case 4: {
            ojson e = ojson::array();
            for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n; ++i) {
                if (rng() % 2)
                    e.push_back(keys[(rng() % 8)] + std::to_string(i));
                else
                    e.push_back(static_cast<int>(rng() % 50) * 4 - 60 + i);  // distinct: i differs mod 4
            }
            return {{"enum", e}};
        }
        case 5:
            return {{"type", "null"}};
        case 6: {
            ojson a      = {{"type", "array"}, {"items", random_schema(rng, depth - 1)}};
            const int lo = static_cast<int>(rng() % 3);
            if (rng() % 2) a["minItems"] = lo;
            if (rng() % 2) a["maxItems"] = lo + static_cast<int>(rng() % 3);
            return a;
        }
        default: {
            ojson props = ojson::object(), req = ojson::array();
            const int n = 1 + static_cast<int>(rng() % 4);
            for (int i = 0; i < n; ++i) {
                const std::string k = keys[(i * 3 + rng() % 3) % 8] + std::to_string(i);
                props[k]            = random_schema(rng, depth - 1);
                if (rng() % 2) req.push_back(k);
            }
            return {{"type", "object"}, {"properties", props}, {"required", req}};
        }
    }
}

// Does `v` follow `s`? (The subset's semantics, including "no other properties".)
bool follows(const nlohmann::json & v, const ojson & s, std::string * why) {
    auto no = [&](const std::string & m) { return *why = m + " at " + v.dump(), false; };
    if (s.contains("enum")) {
        for (const auto & e : s["enum"])
            if (nlohmann::json::parse(e.dump()) == v) return true;
        return no("not in enum " + s["enum"].dump());
    }
    const std::string t = s["type"];
    if (t == "string") return v.is_string() || no("not a string");
    if (t == "integer") return v.is_number_integer() || no("not an integer");
    if (t == "number") return v.is_number() || no("not a number");
    if (t == "boolean") return v.is_boolean() || no("not a boolean");
    if (t == "null") return v.is_null() || no("not null");
    if (t == "array") {
        if (!v.is_array()) return no("not an array");
        if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return no("too few items");
        if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return no("too many items");
        for (const auto & x : v)
            if (!follows(x, s["items"], why)) return false;
        return true;
    }
    if (!v.is_object()) return no("not an object");
    for (const auto & r : s["required"])
        if (!v.contains(r.get<std::string>())) return no("missing " + r.get<std::string>());
    for (auto it = v.begin(); it != v.end(); ++it) {
        if (!s["properties"].contains(it.key())) return no("extra property " + it.key());
        if (!follows(it.value(), s["properties"][it.key()], why)) return false;
    }
    return true;
}

}  // namespace

// The property: over random schemas × seeds × temperatures × lengths, the output parses and
// follows its schema, whatever the (random) model prefers.
TEST_F(ConstraintTest, RandomSchemasAlwaysParseAndFollowTheSchema) {
    std::mt19937_64 rng(2026);
    int generated = 0, eos = 0, length = 0;
    for (int trial = 0; trial < 200; ++trial) {
        const ojson schema = random_schema(rng, 3);
        model::GenerateOptions g;
        g.max_new_tokens = 48;
        auto c           = model::TokenConstraint::json_schema(schema.dump(), model_->tokenizer(), g.max_new_tokens);
        if (!c) {  // only a schema longer than the length limit may be refused
            EXPECT_NE(c.status().message().find("max_new_tokens"), std::string::npos) << c.status().message();
            continue;
        }
        g.max_new_tokens = static_cast<int>((*c)->min_bytes() + rng() % 30);
        g.max_new_tokens = std::min(g.max_new_tokens, 48);
        g.constraint     = *c;
        g.temperature    = (trial % 3) * 0.8f;
        g.top_k          = trial % 4 == 1 ? 5 : 0;
        g.seed           = rng();
        model::Request r = prompt("the json");
        auto out         = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, g);
        ASSERT_TRUE(out.is_ok()) << out.status().message();
        const auto & gen = (*out)[0];
        auto v           = nlohmann::json::parse(gen.text, nullptr, false);
        ASSERT_FALSE(v.is_discarded()) << "trial " << trial << " schema " << schema.dump() << " text '" << gen.text
                                       << "' stop " << gen.stop_reason;
        std::string why;
        EXPECT_TRUE(follows(v, schema, &why)) << why << " schema " << schema.dump() << " text " << gen.text;
        EXPECT_LE(static_cast<int>(gen.tokens.size()), g.max_new_tokens);
        if (trial < 6) std::printf("  %s → %s\n", schema.dump().c_str(), gen.text.c_str());
        generated++, eos += gen.stop_reason == "eos", length += gen.stop_reason == "length";
    }
    EXPECT_GE(generated, 150);
    std::printf("%d constrained outputs parsed (%d ended by EOS, %d by the length limit)\n", generated, eos, length);
}

TEST_F(ConstraintTest, ChoicesAndMixedBatches) {
    std::mt19937_64 rng(7);
    const std::vector<std::string> pool = {"yes", "no", "maybe", "yes please", "the program", "free", "copy", "42"};
    auto object                         = ojson::parse(R"({"type":"object","properties":{"name":{"type":"string"},
                                  "age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["ok","id"]}}},
                                  "required":["age"]})");
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<std::string> choices;
        for (const auto & p : pool)
            if (rng() % 2) choices.push_back(p);
        if (choices.empty()) choices.push_back("no");
        // One batch: a choice row, a JSON row, an unconstrained row, another choice row.
        std::vector<model::Request> batch = {prompt("answer"), prompt("person"), prompt("the program"),
                                             prompt("again")};
        std::vector<model::GenerateOptions> opts(4);
        for (auto & o : opts) o.max_new_tokens = 24, o.temperature = 1.0f, o.seed = rng();
        opts[0].constraint  = model::TokenConstraint::choices(choices, model_->tokenizer(), 24).value();
        opts[1].constraint  = model::TokenConstraint::json_schema(object.dump(), model_->tokenizer(), 24).value();
        opts[3].constraint  = opts[0].constraint;
        opts[3].temperature = 0.0f;
        auto out            = model_->generate(model::Path::Backbone, model::Modality::Text, batch, opts);
        ASSERT_TRUE(out.is_ok()) << out.status().message();
        for (int row : {0, 3})
            EXPECT_NE(std::find(choices.begin(), choices.end(), (*out)[row].text), choices.end())
                << "row " << row << ": '" << (*out)[row].text << "'";
        auto v = nlohmann::json::parse((*out)[1].text, nullptr, false);
        std::string why;
        ASSERT_FALSE(v.is_discarded()) << (*out)[1].text;
        EXPECT_TRUE(follows(v, object, &why)) << why;
        // Each row equals the same row generated alone (the mask is per row).
        for (size_t b = 0; b < batch.size(); ++b) {
            auto solo = model_->generate(model::Path::Backbone, model::Modality::Text, {&batch[b], 1}, {&opts[b], 1});
            ASSERT_TRUE(solo.is_ok());
            EXPECT_EQ((*solo)[0].tokens, (*out)[b].tokens) << "row " << b;
        }
    }
}

TEST_F(ConstraintTest, BadSchemasAndChoicesAreRefusedByName) {
    const auto & tok = model_->tokenizer();
    struct Case {
        std::string schema, needle;
    };
    const std::vector<Case> cases = {
        {"{\"type\":", "not valid JSON"},
        {R"({"type":"string","pattern":"a+"})", "keyword \"pattern\" is not supported"},
        {R"({"type":"object","properties":{"a":{"type":"string"}},"required":["b"]})", "required property \"b\""},
        {R"({"type":"tuple"})", "type \"tuple\" is not supported"},
        {R"({"enum":[{"a":1}]})", "only strings, numbers, booleans and null"},
        {R"({"enum":[]})", "\"enum\" must be an array"},
        {R"({"type":"array"})", "needs \"items\""},
        {R"({"type":"array","items":{"type":"string"},"minItems":3,"maxItems":1})", "maxItems < minItems"},
        {R"({"type":"string","items":{"type":"string"}})", "\"items\" needs type array"},
        {R"([1,2])", "must be a JSON object"},
        {R"({"type":"object","properties":{"a\"b":{"type":"string"}}})", "no escapes"},
        {R"({"type":"array","items":{"type":"integer"},"minItems":40})", "max_new_tokens"},
        {std::string(model::kMaxSchemaBytes + 1, ' '), "at most 16384"},
    };
    for (const auto & c : cases) {
        auto r = model::TokenConstraint::json_schema(c.schema, tok, 32);
        ASSERT_FALSE(r.is_ok()) << c.needle;
        EXPECT_EQ(r.status().code(), StatusCode::InvalidArgument);
        EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
    }
    std::string deep = R"({"type":"string"})";
    for (int i = 0; i < 9; ++i) deep = R"({"type":"array","items":)" + deep + "}";
    EXPECT_NE(model::TokenConstraint::json_schema(deep, tok, 64).status().message().find("deeper than 8"),
              std::string::npos);
    // A key the vocabulary cannot spell (no token for 'Ω').
    auto unspellable =
        model::TokenConstraint::json_schema(R"({"type":"object","properties":{"Ωmega":{"type":"string"}}})", tok, 32);
    EXPECT_NE(unspellable.status().message().find("cannot be spelled"), std::string::npos)
        << unspellable.status().message();
    struct ChoiceCase {
        std::vector<std::string> choices;
        std::string needle;
    };
    const std::vector<ChoiceCase> choice_cases = {
        {{}, "0 choices"},
        {std::vector<std::string>(65, "x"), "65 choices"},
        {{"a", ""}, "choice 1 has 0 bytes"},
        {{"a", "a"}, "duplicates"},
        {{"ok", "€uro"}, "choice 1 '€uro' cannot be spelled"},
        {{"x\ny"}, "control character"},
        {{std::string(40, 'a')}, "max_new_tokens"},
    };
    for (const auto & c : choice_cases) {
        auto r = model::TokenConstraint::choices(c.choices, tok, 32);
        ASSERT_FALSE(r.is_ok()) << c.needle;
        EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
    }
    // A prompt that leaves too little context: refused before any compute, not cut short.
    model::GenerateOptions g;
    g.max_new_tokens = 20;
    g.constraint     = model::TokenConstraint::choices({"the program"}, tok, 20).value();
    model::Request r;
    r.tokens.assign(static_cast<size_t>(model_->config().backbone.max_seq - 3), 10);
    auto out = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, {&g, 1});
    EXPECT_EQ(out.status().code(), StatusCode::InvalidArgument);
}

// Robustness: thousands of byte-mutated schemas are either compiled or refused with
// INVALID_ARGUMENT — never a crash (this test also runs under ASan + UBSan in CI) — and whatever
// compiles still yields output that parses.
TEST_F(ConstraintTest, MutatedSchemasAreCompiledOrRefusedNeverCrash) {
    std::mt19937_64 rng(99);
    int compiled = 0, refused = 0;
    for (int trial = 0; trial < 1500; ++trial) {
        std::string s = random_schema(rng, 3).dump();
        for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n && !s.empty(); ++k) {
            const size_t at = rng() % s.size();
            switch (rng() % 3) {
                case 0: s[at] = static_cast<char>(rng() % 256); break;
                case 1: s.erase(at, 1 + rng() % 3); break;
                default: s.insert(at, 1, "{}[]\":,0-9eE.a\\"[rng() % 15]); break;
            }
        }
        auto c = model::TokenConstraint::json_schema(s, model_->tokenizer(), 40);
        if (!c) {
            ASSERT_EQ(c.status().code(), StatusCode::InvalidArgument) << s;
            ++refused;
            continue;
        }
        ++compiled;
        model::GenerateOptions g;
        g.max_new_tokens = 40, g.temperature = 1.0f, g.seed = rng(), g.constraint = *c;
        model::Request r = prompt("x");
        auto out         = model_->generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, {&g, 1});
        ASSERT_TRUE(out.is_ok()) << out.status().message();
        EXPECT_FALSE(nlohmann::json::parse((*out)[0].text, nullptr, false).is_discarded()) << s << " → " << (*out)[0].text;
    }
    EXPECT_GT(compiled, 10);  // most mutations break the JSON or the schema
    EXPECT_GT(refused, 1000);
}
