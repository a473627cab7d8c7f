// The checkpoint readers (safetensors, GGUF) and the import helpers: exact conversions, every
// malformed-file fault named, every truncation of a valid file refused (never a crash: this
// binary also runs under ASan + UBSan in CI), the rebuilt SentencePiece model, the RoPE permutation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "import/import.h"
#include "import/sp_model.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "model/weights.h"

using namespace m4;
using namespace m4::format;

namespace {

std::string safetensors_bytes(const std::string & header, const std::string & buf) {
    std::string f(8, '\0');
    uint64_t n = header.size();
    std::memcpy(f.data(), &n, 8);
    return f + header + buf;
}

Result<SafetensorsView> parse_st(const std::string & b) {
    return parse_safetensors(reinterpret_cast<const uint8_t *>(b.data()), b.size(), "x.safetensors");
}

void expect_error(const Status & st, const std::string & needle, const std::string & file) {
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(file), std::string::npos) << st.message();
}

// A valid file: a [2, 2] F32, a [2] F16, a [3] BF16.
std::string valid_st() {
    std::string buf;
    float f[4] = {1.0f, -2.5f, 3.0f, 0.125f};
    buf.append(reinterpret_cast<const char *>(f), 16);
    uint16_t h[2] = {0x3c00, 0x0001};  // 1.0, the smallest f16 subnormal 2^-24
    buf.append(reinterpret_cast<const char *>(h), 4);
    uint16_t b[3] = {0x3f80, 0xc000, 0x4049};  // 1, -2, 3.140625
    buf.append(reinterpret_cast<const char *>(b), 6);
    return safetensors_bytes(R"({"__metadata__":{"format":"pt"},)"
                             R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},)"
                             R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[20,26]}})",
                             buf);
}

TEST(ImportSafetensors, ParsesAndConvertsExactly) {
    const std::string bytes = valid_st();  // the view points into these bytes: keep them alive
    auto v                  = parse_st(bytes);
    ASSERT_TRUE(v.is_ok()) << v.status().message();
    EXPECT_EQ(v->entries.size(), 3u);
    EXPECT_EQ(v->metadata["format"], "pt");
    auto w = v->to_f32(*v->find("w"));
    ASSERT_TRUE(w.is_ok());
    EXPECT_EQ(w->shape(), (Shape{2, 2}));
    EXPECT_EQ(w->f32()[1], -2.5f);
    auto h = v->to_f32(*v->find("h"));
    EXPECT_EQ(h->f32()[0], 1.0f);
    EXPECT_EQ(h->f32()[1], std::ldexp(1.0f, -24));
    auto b = v->to_tensor(*v->find("b"));  // BF16 stays bf16
    ASSERT_TRUE(b.is_ok());
    EXPECT_EQ(b->dtype(), DType::BF16);
    EXPECT_EQ(to_f32(*b).f32()[2], 3.140625f);
}

TEST(ImportSafetensors, F16Conversion) {
    EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
    EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
    EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));
    EXPECT_EQ(f16_to_f32(0x03ff), 1023 * std::ldexp(1.0f, -24));
    EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
    EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
    EXPECT_EQ(std::signbit(f16_to_f32(0x8000)), true);
}

TEST(ImportSafetensors, RefusesLyingHeaders) {
    const std::string buf(16, '\0');
    auto one = [&](const std::string & entry) { return safetensors_bytes("{" + entry + "}", buf); };
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]})")).status(), "'a'",
                 "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]})")).status(), "do not match",
                 "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"))
                     .status(),
                 "overlaps", "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})")).status(),
                 "belong to no tensor", "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})")).status(),
                 "after the last tensor", "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"Q4","shape":[16],"data_offsets":[0,16]})")).status(), "unknown dtype",
                 "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]})")).status(), "bad dimension",
                 "x.safetensors");
    expect_error(parse_st(one(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[8,4]})")).status(), "outside",
                 "x.safetensors");
    expect_error(parse_st(one(R"("__metadata__":{"k":1})")).status(), "__metadata__", "x.safetensors");
    std::string big = valid_st();
    uint64_t n      = big.size();
    std::memcpy(big.data(), &n, 8);
    expect_error(parse_st(big).status(), "larger than the file", "x.safetensors");
    // An I32 tensor parses (bounds are checked) but is not a weight m4 imports.
    auto v = parse_st(one(R"("a":{"dtype":"I32","shape":[4],"data_offsets":[0,16]})"));
    ASSERT_TRUE(v.is_ok());
    expect_error(v->to_f32(v->entries[0]).status(), "dtype I32", "x.safetensors");
}

TEST(ImportSafetensors, EveryTruncationRefused) {
    const std::string b = valid_st();
    for (size_t n = 0; n < b.size(); ++n) EXPECT_FALSE(parse_st(b.substr(0, n)).is_ok()) << n;
}

// A GGUF v3 file: metadata, an F32 [2, 3] (ne = 3, 2), a Q8_0 [2, 32] whose rows have different
// block scales, a Q4_K tensor (parsed, refused on load).
std::string gguf_bytes(uint32_t version = 3) {
    std::string g = "GGUF";
    auto put      = [&](auto v) { g.append(reinterpret_cast<const char *>(&v), sizeof v); };
    auto str      = [&](const std::string & s) { put(uint64_t(s.size())), g += s; };
    put(version), put(uint64_t{3}), put(uint64_t{3});
    str("general.architecture"), put(uint32_t{8}), str("llama");
    str("llama.block_count"), put(uint32_t{4}), put(uint32_t{7});
    str("tokenizer.ggml.tokens"), put(uint32_t{9}), put(uint32_t{8}), put(uint64_t{2}), str("<unk>"), str("a");
    str("w"), put(uint32_t{2}), put(uint64_t{3}), put(uint64_t{2}), put(uint32_t{0}), put(uint64_t{0});
    str("q"), put(uint32_t{2}), put(uint64_t{32}), put(uint64_t{2}), put(uint32_t{8}), put(uint64_t{32});
    str("k"), put(uint32_t{1}), put(uint64_t{256}), put(uint32_t{12}), put(uint64_t{128});
    g.resize((g.size() + 31) / 32 * 32, '\0');
    for (float f : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) put(f);
    g.resize(g.size() + 8, '\0');  // to offset 32
    for (int row = 0; row < 2; ++row) {
        put(uint16_t(row == 0 ? 0x3c00 : 0x3800));  // d = 1 and 0.5
        for (int i = 0; i < 32; ++i) put(int8_t(i % 2 ? 128 - i : -i));
    }
    g.resize(g.size() + (128 - 68) + 144, '\0');
    return g;
}

Result<GgufView> parse_g(const std::string & b) {
    return parse_gguf(reinterpret_cast<const uint8_t *>(b.data()), b.size(), "x.gguf");
}

TEST(ImportGguf, ParsesMetadataAndTensors) {
    for (uint32_t version : {2u, 3u}) {
        const std::string b = gguf_bytes(version);
        auto g              = parse_g(b);
        ASSERT_TRUE(g.is_ok()) << g.status().message();
        EXPECT_EQ(*g->get_string("general.architecture"), "llama");
        EXPECT_EQ(*g->get_int("llama.block_count"), 7);
        EXPECT_EQ(g->kv["tokenizer.ggml.tokens"][1], "a");
        expect_error(g->get_int("general.architecture").status(), "not an integer", "x.gguf");
        auto w = g->load(*g->find("w"));
        ASSERT_TRUE(w.is_ok());
        EXPECT_EQ(w->t.shape(), (Shape{2, 3}));  // ne reversed
        EXPECT_EQ(w->t.f32()[5], 6.0f);
        auto q = g->load(*g->find("q"));
        ASSERT_TRUE(q.is_ok());
        ASSERT_EQ(q->t.dtype(), DType::I8);
        // Each row's largest |q| is 127, so the new per-row scale is its block scale d (1 and 0.5)
        // and re-quantisation is exact.
        Tensor back = to_f32(q->t);
        EXPECT_EQ(back.f32()[1], 127.0f);
        EXPECT_EQ(back.f32()[32 + 1], 63.5f);
        EXPECT_EQ(back.f32()[32 + 30], -15.0f);
        EXPECT_EQ(q->requant_rel, 0.0f);
        expect_error(g->load(*g->find("k")).status(), "Q4_K", "x.gguf");
    }
}

TEST(ImportGguf, RefusesMalformedFiles) {
    std::string b = gguf_bytes();
    b[4]          = 1;  // version 1
    expect_error(parse_g(b).status(), "version 1", "x.gguf");
    b    = gguf_bytes();
    b[8] = static_cast<char>(0xff);  // tensor count far beyond the file
    expect_error(parse_g(b).status(), "more than the file can hold", "x.gguf");
    b                = gguf_bytes();
    const size_t pos = b.find("llama.block_count") + 17;
    b[pos]           = 42;  // unknown value type
    expect_error(parse_g(b).status(), "unknown value type", "x.gguf");
    b                = gguf_bytes();
    const size_t off = b.find(std::string("q\x02\0\0\0", 5)) + 1 + 4 + 16 + 4;
    b[off]           = 40;  // offset 40: not aligned
    expect_error(parse_g(b).status(), "not aligned", "x.gguf");
    b[off] = static_cast<char>(0xe0), b[off + 1] = 0x01;  // 480: outside the data section
    expect_error(parse_g(b).status(), "outside", "x.gguf");
    const std::string v = gguf_bytes();
    for (size_t n = 0; n + 144 + 68 < v.size(); ++n) EXPECT_FALSE(parse_g(v.substr(0, n)).is_ok()) << n;
}

TEST(ImportSentencePiece, RebuiltModelTokenisesLikeTheOriginal) {
    model::TokenizerTrainOptions o;
    o.corpus_path = "/usr/share/common-licenses/GPL-3";
    o.vocab_size  = 300;
    auto bytes    = model::train_tokenizer(o);
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    auto orig = model::Tokenizer::from_bytes(*bytes, "orig");
    ASSERT_TRUE(orig.is_ok());
    import::SpVocab v;
    for (int32_t i = 0; i < orig->vocab_size(); ++i) {
        v.pieces.push_back(orig->piece(i));
        v.scores.push_back(orig->score(i));
        v.types.push_back(orig->piece_type(i));
    }
    v.unk_id = orig->unk_id(), v.bos_id = orig->bos_id(), v.eos_id = orig->eos_id(), v.pad_id = orig->pad_id();
    auto rebuilt = import::sentencepiece_model_bytes(v, "vocab");
    ASSERT_TRUE(rebuilt.is_ok()) << rebuilt.status().message();
    auto tok = model::Tokenizer::from_bytes(*rebuilt, "rebuilt");
    ASSERT_TRUE(tok.is_ok()) << tok.status().message();
    EXPECT_EQ(tok->vocab_size(), orig->vocab_size());
    EXPECT_EQ(tok->bos_id(), orig->bos_id());
    EXPECT_EQ(tok->eos_id(), orig->eos_id());
    EXPECT_EQ(tok->unk_id(), orig->unk_id());
    for (const char * s : {"This program is free software", "you can redistribute it and/or modify it",
                           "the GNU General Public License as published by"}) {
        auto a = orig->encode(s), b = tok->encode(s);
        ASSERT_TRUE(a.is_ok() && b.is_ok());
        EXPECT_EQ(*a, *b) << s;
        EXPECT_EQ(tok->decode(*b), s);
    }
    v.types[v.unk_id] = 1;  // no unknown piece left
    expect_error(import::sentencepiece_model_bytes(v, "vocab").status(), "unknown token", "vocab");
}

TEST(ImportRope, PermutesHalvesToPairs) {
    // Two heads of D = 4, K = 1: HF rows (per head) [a0 a1 b0 b1] → m4 [a0 b0 a1 b1].
    Tensor w = Tensor::empty(DType::F32, {8, 1});
    for (int i = 0; i < 8; ++i) w.f32()[i] = float(i);
    Tensor p              = import::permute_rope_rows(w, 2);
    const float expect[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (int i = 0; i < 8; ++i) EXPECT_EQ(p.f32()[i], expect[i]) << i;
}

}  // namespace

// The encoder keys the vision-tower importers need (docs/formats.md): "activation", "pre_norm",
// "pool". Absent, they keep their defaults and are not written back, so older headers read the
// same and re-serialise byte for byte.
TEST(EncoderLayout, KeysParseRoundTripAndOlderHeadersStayUnchanged) {
    const nlohmann::json base = nlohmann::json::parse(R"({
      "name": "t", "version": "0", "embed_dim": 8, "text": {"vocab_size": 50},
      "backbone": {"width": 16, "layers": 1, "heads": 2, "kv_heads": 2, "ffn": 32, "max_seq": 16},
      "encoders": {"image": {"image_size": 8, "patch_size": 4, "width": 16, "layers": 1, "heads": 2, "ffn": 32}}})");
    auto plain                = model::parse_model_config(base);
    ASSERT_TRUE(plain.is_ok()) << plain.status().message();
    const model::EncoderConfig & pe = plain->encoder(model::Modality::Image);
    EXPECT_TRUE(pe.plain_layout());
    const nlohmann::json back = model::model_config_to_json(*plain)["encoders"]["image"];
    for (const char * k : {"activation", "pre_norm", "pool", "cls_token"}) EXPECT_FALSE(back.contains(k)) << k;
    for (const auto & t : model::expected_tensors(*plain)) EXPECT_EQ(t.name.find("pre_norm"), std::string::npos);

    nlohmann::json j   = base;
    nlohmann::json & e = j["encoders"]["image"];
    e["activation"]    = "quick_gelu";
    e["pre_norm"]      = true;
    e["cls_token"]     = true;
    e["pool"]          = "cls";
    auto clip          = model::parse_model_config(j);
    ASSERT_TRUE(clip.is_ok()) << clip.status().message();
    const model::EncoderConfig & ce = clip->encoder(model::Modality::Image);
    EXPECT_EQ(ce.activation, model::Activation::QuickGelu);
    EXPECT_TRUE(ce.pre_norm);
    EXPECT_EQ(ce.pool, model::Pool::Cls);
    EXPECT_EQ(ce.tokens(), 5);
    const nlohmann::json cback = model::model_config_to_json(*clip)["encoders"]["image"];
    for (const char * k : {"activation", "pre_norm", "pool", "cls_token"}) EXPECT_EQ(cback[k], e[k]) << k;
    int pre_norm_tensors = 0;
    for (const auto & t : model::expected_tensors(*clip))
        pre_norm_tensors += t.name.rfind("encoders.image.pre_norm.", 0) == 0;
    EXPECT_EQ(pre_norm_tensors, 2);
    e["activation"] = "gelu_tanh";
    auto tanh       = model::parse_model_config(j);
    ASSERT_TRUE(tanh.is_ok());
    EXPECT_EQ(tanh->encoder(model::Modality::Image).activation, model::Activation::GeluTanh);

    // Faults name the encoder and the key.
    auto refused = [&](const char * key, nlohmann::json value, const std::string & needle) {
        nlohmann::json bad            = base;
        bad["encoders"]["image"][key] = value;
        auto r                        = model::parse_model_config(bad);
        ASSERT_FALSE(r.is_ok()) << key;
        EXPECT_NE(r.status().message().find("encoders.image"), std::string::npos) << r.status().message();
        EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    };
    refused("activation", "relu", "activation must be");
    refused("activation", 3, "activation must be");
    refused("pre_norm", "yes", "pre_norm must be true or false");
    refused("pool", "max", "pool must be");
    refused("pool", "cls", "needs cls_token");  // no class token to pool
}
