// The .m4fw/.m4a container: round trip, and every malformed-file fault named in docs/formats.md.
#include <gtest/gtest.h>

#include <cstring>

#include "format/container.h"
#include "model/config.h"

using namespace m4;
using namespace m4::format;

namespace {

std::string sample_bytes(const SecretKey * sk = nullptr) {
    ContainerWriter w(FileKind::Firmware);
    w.set_header({{"name", "t"}});
    Tensor a = Tensor::empty(DType::F32, {3, 5});
    for (int i = 0; i < 15; ++i) a.f32()[i] = float(i);
    w.add("a", a);
    w.add("q", quantize_rows_i8(a));
    w.add("h", to_bf16(a));
    return w.serialize(sk);
}

Result<ContainerView> parse(const std::string & b, FileKind k = FileKind::Firmware, const PublicKey * pk = nullptr) {
    return parse_container(reinterpret_cast<const uint8_t *>(b.data()), b.size(), "x.m4fw", k, {.public_key = pk});
}

void expect_error(const Result<ContainerView> & r, const std::string & needle) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("x.m4fw"), std::string::npos) << r.status().message();
}

// Recomputes the digest after a deliberate edit, so a check other than the digest must catch it.
void redigest(std::string & b) {
    Digest d = sha256(b.data(), b.size() - kTrailerSize);
    std::memcpy(b.data() + b.size() - kTrailerSize, d.data(), 32);
}

}  // namespace

TEST(Container, RoundTrip) {
    std::string b = sample_bytes();
    auto v        = parse(b);
    ASSERT_TRUE(v.is_ok()) << v.status().message();
    EXPECT_EQ(v->header["name"], "t");
    ASSERT_EQ(v->entries.size(), 3u);
    Tensor a = v->tensor(*v->find("a"));
    EXPECT_EQ(a.f32()[14], 14.0f);
    Tensor q = v->tensor(*v->find("q"));
    EXPECT_NEAR(q.i8()[14] * q.scales()[2], 14.0f, 1e-5);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, reinterpret_cast<uintptr_t>(b.data()) % 64);
    EXPECT_EQ(v->signature, SignatureState::Unsigned);
}

TEST(Container, Truncated) {
    std::string b = sample_bytes();
    expect_error(parse(b.substr(0, b.size() - 1)), "truncated");
    expect_error(parse(b.substr(0, 20)), "truncated");
}

TEST(Container, WrongMagic) {
    std::string b = sample_bytes();
    b[0]          = 'X';
    expect_error(parse(b), "bad magic");
    expect_error(parse(sample_bytes(), FileKind::Adapter), "expected a adapter");
}

TEST(Container, UnknownVersion) {
    std::string b = sample_bytes();
    b[4]          = 9;
    expect_error(parse(b), "unknown format version 9");
}

TEST(Container, DigestMismatch) {
    std::string b = sample_bytes();
    b[b.size() - kTrailerSize - 1] ^= 1;  // flip a bit of tensor data
    expect_error(parse(b), "digest mismatch");
}

TEST(Container, BadDirectoryEntry) {
    std::string b = sample_bytes();
    // The first entry's dtype byte follows u32 count, u16 name length and the 1-byte name "a".
    uint64_t header_len;
    std::memcpy(&header_len, b.data() + 8, 8);
    size_t dtype_at = kFixedHeaderSize + header_len + 4 + 2 + 1;
    b[dtype_at]     = 7;
    redigest(b);
    expect_error(parse(b), "unknown dtype 7");
}

TEST(Container, BadJson) {
    std::string b           = sample_bytes();
    b[kFixedHeaderSize]     = '[';
    b[kFixedHeaderSize + 1] = '[';
    redigest(b);
    expect_error(parse(b), "JSON header");
}

TEST(Container, Signature) {
    PublicKey pk, other_pk;
    SecretKey sk, other_sk;
    ed25519_keypair(&pk, &sk);
    ed25519_keypair(&other_pk, &other_sk);
    std::string signed_bytes = sample_bytes(&sk);
    auto ok                  = parse(signed_bytes, FileKind::Firmware, &pk);
    ASSERT_TRUE(ok.is_ok()) << ok.status().message();
    EXPECT_EQ(ok->signature, SignatureState::Verified);
    EXPECT_EQ(parse(signed_bytes)->signature, SignatureState::NotChecked);
    // Signing does not change the fingerprint.
    EXPECT_EQ(to_hex(parse(sample_bytes())->digest), to_hex(ok->digest));
    auto bad = parse(signed_bytes, FileKind::Firmware, &other_pk);
    ASSERT_FALSE(bad.is_ok());
    EXPECT_EQ(bad.status().code(), StatusCode::PermissionDenied);
    EXPECT_NE(bad.status().message().find("bad signature"), std::string::npos);
    auto unsigned_with_key = parse(sample_bytes(), FileKind::Firmware, &pk);
    ASSERT_FALSE(unsigned_with_key.is_ok());
    EXPECT_NE(unsigned_with_key.status().message().find("unsigned"), std::string::npos);
}

// Found by fuzz_container: a header whose values have the wrong JSON types must be refused, not thrown.
TEST(Container, ConfigWithWrongJsonTypesIsAnInputFault) {
    for (const char * text : {R"({"name": {}, "embed_dim": 4})", R"({"embed_dim": "4"})",
                              R"({"embed_dim": 4, "text": {"vocab_size": 8, "bos_id": "x"}, "backbone": {}})"}) {
        auto c = m4::model::parse_model_config(nlohmann::json::parse(text));
        ASSERT_FALSE(c.is_ok()) << text;
        EXPECT_EQ(c.status().code(), StatusCode::InvalidArgument) << text;
    }
}
