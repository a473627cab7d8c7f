// Quantized siblings keep their parent's adapters only when the parent reference is vouched for
// (docs/formats.md, "Quantized siblings"): by the trusted key's signature, or by re-quantizing
// the parent. A forged reference is refused.
#include <gtest/gtest.h>

#include "adapter/adapter.h"
#include "fixture.h"
#include "model/quantize.h"

using namespace m4;
using namespace m4::test;

namespace {

struct Sibling : ::testing::Test {
    static void SetUpTestSuite() {
        ed25519_keypair(&pk_, &sk_);
        ed25519_keypair(&other_pk_, &other_sk_);
        parent_path_ = temp_dir() + "/q_parent.m4fw";
        other_path_  = temp_dir() + "/q_other.m4fw";
        write_firmware(parent_path_, tiny_config(), 1);
        write_firmware(other_path_, tiny_config(), 2);
        parent_ = load(parent_path_).release();
        other_  = load(other_path_).release();
        adapter::Manifest m;
        m.task       = adapter::Task::Classify;
        m.path       = model::Path::Encoder;
        m.modality   = model::Modality::Image;
        m.head_out   = 3;
        m.targets    = adapter::expand_targets(parent_->config(), m.path, m.modality, "all").value();
        m.lora_rank  = 2;
        m.lora_alpha = 4;
        adapter_     = temp_dir() + "/q_parent_adapter.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(adapter_, *parent_, m, 5).is_ok());
    }
    static void TearDownTestSuite() {
        delete parent_;
        delete other_;
    }
    static std::unique_ptr<model::Model> load(const std::string & path, const PublicKey * pk = nullptr) {
        auto m = model::Model::load(path, {.public_key = pk});
        EXPECT_TRUE(m.is_ok()) << m.status().message();
        return m.is_ok() ? std::move(m).value() : nullptr;
    }
    // Writes `src`'s sibling in dtype `to`, optionally with a forged parent and signed by `sk`.
    static std::string write_sibling(const model::Model & src, DType to, const std::string & name,
                                     const SecretKey * sk = nullptr, const std::string & forged_parent = "") {
        auto w = model::quantized_sibling(src, to);
        EXPECT_TRUE(w.is_ok()) << w.status().message();
        if (!forged_parent.empty()) {
            // Rebuild with the header edited: same tensors, a parent it was not made from.
            format::ContainerWriter f(format::FileKind::Firmware);
            nlohmann::json h             = src.file().header();
            h["provenance"]["quantized"] = {{"from", forged_parent}, {"dtype", dtype_name(to)}};
            f.set_header(h);
            auto q_tmp = temp_dir() + "/tmp_" + name;
            EXPECT_TRUE(w->write(q_tmp).is_ok());
            auto q = load(q_tmp);
            for (const auto & e : q->file().entries()) f.add(e.name, q->file().tensor(e.name));
            const std::string path = temp_dir() + "/" + name;
            EXPECT_TRUE(f.write(path, sk).is_ok());
            return path;
        }
        const std::string path = temp_dir() + "/" + name;
        EXPECT_TRUE(w->write(path, sk).is_ok());
        return path;
    }
    static inline PublicKey pk_, other_pk_;
    static inline SecretKey sk_, other_sk_;
    static inline std::string parent_path_, other_path_, adapter_;
    static inline model::Model *parent_ = nullptr, *other_ = nullptr;
};

TEST_F(Sibling, HeaderRecordsParentAndDtypeAndIsDeterministic) {
    const std::string a = write_sibling(*parent_, DType::I8, "q_det_a.m4fw");
    const std::string b = write_sibling(*parent_, DType::I8, "q_det_b.m4fw");
    auto qa = load(a), qb = load(b);
    const auto claim = model::quantized_from(*qa);
    EXPECT_EQ(claim.parent, parent_->fingerprint());
    EXPECT_EQ(claim.dtype, "i8");
    EXPECT_EQ(qa->fingerprint(), qb->fingerprint());
    EXPECT_NE(qa->fingerprint(), parent_->fingerprint());
    EXPECT_TRUE(model::verify_quantized_sibling(*qa, *parent_).is_ok());
    // A sibling is not quantized again (its parent would be lost).
    EXPECT_FALSE(model::quantized_sibling(*qa, DType::BF16).is_ok());
}

TEST_F(Sibling, UnsignedSiblingTakesParentAdaptersOnlyWhenVerifiedAgainstTheParent) {
    auto q       = load(write_sibling(*parent_, DType::BF16, "q_unsigned.m4fw"));
    auto refused = adapter::Adapter::load(adapter_, *q);
    ASSERT_FALSE(refused.is_ok());
    EXPECT_NE(refused.status().message().find("not vouched for"), std::string::npos) << refused.status().message();
    ASSERT_TRUE(model::verify_quantized_sibling(*q, *parent_).is_ok());
    auto ok = adapter::Adapter::load(adapter_, *q, adapter::Binding::Sibling, parent_->fingerprint());
    ASSERT_TRUE(ok.is_ok()) << ok.status().message();
    // Exact binding never accepts a sibling.
    EXPECT_FALSE(adapter::Adapter::load(adapter_, *q, adapter::Binding::Exact, parent_->fingerprint()).is_ok());
    // The bound adapter runs on the sibling and gives nearly the parent's outputs.
    auto on_parent = adapter::Adapter::load(adapter_, *parent_);
    ASSERT_TRUE(on_parent.is_ok());
    model::Request r;
    r.signal.assign(q->config().encoder(model::Modality::Image).input_values(), 0.25f);
    r.adapter = &ok->weights();
    auto yq   = q->run(model::Path::Encoder, model::Modality::Image, {&r, 1});
    r.adapter = &on_parent->weights();
    auto yp   = parent_->run(model::Path::Encoder, model::Modality::Image, {&r, 1});
    ASSERT_TRUE(yq.is_ok() && yp.is_ok());
    ASSERT_EQ((*yq)[0].head.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR((*yq)[0].head[i], (*yp)[0].head[i], 0.05);
}

TEST_F(Sibling, SignedSiblingTakesParentAdaptersUnderTheTrustedKey) {
    const std::string path = write_sibling(*parent_, DType::I8, "q_signed.m4fw", &sk_);
    auto trusted           = load(path, &pk_);
    ASSERT_EQ(trusted->file().signature(), format::SignatureState::Verified);
    auto a = adapter::Adapter::load(adapter_, *trusted);
    EXPECT_TRUE(a.is_ok()) << a.status().message();
    // Signed, but loaded without a key: the signature was not checked, so the claim is not vouched for.
    auto unchecked = load(path);
    EXPECT_FALSE(adapter::Adapter::load(adapter_, *unchecked).is_ok());
    // Signed by a key that is not the trusted one: the firmware itself is refused.
    const std::string rogue = write_sibling(*parent_, DType::I8, "q_rogue_signed.m4fw", &other_sk_);
    EXPECT_FALSE(model::Model::load(rogue, {.public_key = &pk_}).is_ok());
}

TEST_F(Sibling, ForgedParentReferenceIsRefused) {
    // other's weights, quantized, with a header that names the parent.
    const std::string forged = write_sibling(*other_, DType::I8, "q_forged.m4fw", nullptr, parent_->fingerprint());
    auto f                   = load(forged);
    EXPECT_EQ(model::quantized_from(*f).parent, parent_->fingerprint());
    EXPECT_FALSE(adapter::Adapter::load(adapter_, *f).is_ok());
    const Status st = model::verify_quantized_sibling(*f, *parent_);
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("not that quantization"), std::string::npos) << st.message();
    // Even signed, by an untrusted key: refused at load under the trusted key.
    const std::string forged_signed =
        write_sibling(*other_, DType::I8, "q_forged_signed.m4fw", &other_sk_, parent_->fingerprint());
    EXPECT_FALSE(model::Model::load(forged_signed, {.public_key = &pk_}).is_ok());
    // A sibling of another firmware does not take the parent's adapter, whatever vouches for it.
    auto sib_other = load(write_sibling(*other_, DType::I8, "q_other_signed.m4fw", &sk_), &pk_);
    EXPECT_FALSE(adapter::Adapter::load(adapter_, *sib_other).is_ok());
    EXPECT_FALSE(model::verify_quantized_sibling(*sib_other, *parent_).is_ok());
}

}  // namespace
