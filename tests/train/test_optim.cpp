// Losses, AdamW, the schedule, clipping and gradient accumulation, against hand computations and
// finite differences.
#include <cmath>
#include <functional>

#include "train/losses.h"
#include "train/optim.h"
#include "train_fixture.h"

using namespace m4;
using namespace m4::train;

namespace {

// Central differences of f at x (f64 around the f32 inputs) against `grad`.
void fd_vector(std::vector<float> & x, const std::vector<float> & grad, const std::function<double()> & f,
               double tol = 1e-3) {
    for (size_t i = 0; i < x.size(); ++i) {
        const float x0  = x[i];
        x[i]            = x0 + 1e-3f;
        const double hp = double(x[i]) - x0, lp = f();
        x[i]            = x0 - 1e-3f;
        const double hm = x0 - double(x[i]), lm = f();
        x[i] = x0;
        EXPECT_NEAR((lp - lm) / (hp + hm), grad[i], tol * std::max(1.0, std::fabs(double(grad[i])))) << i;
    }
}

TEST(Losses, CrossEntropyValueAndGradient) {
    std::vector<float> z = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f};  // 2 rows × 3
    const int32_t t[]    = {1, 0};
    std::vector<float> dz(6);
    const LossResult r = cross_entropy(z.data(), 2, 3, t, 1.0f, dz.data());
    const double l0    = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5)) - 2.0;
    const double l1    = std::log(std::exp(-1.0) + std::exp(0.0) + std::exp(3.0)) + 1.0;
    EXPECT_NEAR(r.loss, (l0 + l1) / 2, 1e-6);
    EXPECT_EQ(r.correct, 1);  // row 0: argmax 1 = target; row 1: argmax 2 ≠ 0
    fd_vector(z, dz, [&] { return cross_entropy(z.data(), 2, 3, t, 1.0f, nullptr).loss; });
}

TEST(Losses, MseAndNormalisation) {
    std::vector<float> y = {0.5f, -1.0f, 2.0f}, t = {0.0f, 1.0f, 2.5f}, dy(3);
    const LossResult r = mse(y.data(), t.data(), 3, 2.0f, dy.data());
    EXPECT_NEAR(r.loss, (0.25 + 4.0 + 0.25) / 3, 1e-7);
    EXPECT_NEAR(dy[1], 2.0 * 2.0 * (-2.0) / 3, 1e-6);  // weight · 2 (y − t) / n
    std::vector<float> z = {3.0f, -4.0f, 1.0f, 2.0f}, u(4), r_(4);
    Rng rng(3);
    for (float & v : r_) v = rng.uniform(-1.0f, 1.0f);
    normalize_rows(z.data(), 2, 2, u.data());
    EXPECT_NEAR(u[0], 0.6f, 1e-7);
    EXPECT_NEAR(u[1], -0.8f, 1e-7);
    std::vector<float> dz(4, 0.0f);
    normalize_rows_backward(r_.data(), z.data(), 2, 2, dz.data());
    fd_vector(z, dz, [&] {
        normalize_rows(z.data(), 2, 2, u.data());
        double s = 0;
        for (int i = 0; i < 4; ++i) s += double(r_[i]) * u[i];
        return s;
    });
}

TEST(Losses, InfoNceGradientsIncludingTemperature) {
    const int64_t B = 4, E = 3;
    Rng rng(8);
    std::vector<float> a(B * E), b(B * E), ls = {1.3f};
    for (auto & v : a) v = rng.uniform(-1, 1);
    for (auto & v : b) v = rng.uniform(-1, 1);
    normalize_rows(a.data(), B, E, a.data());
    normalize_rows(b.data(), B, E, b.data());
    std::vector<float> da(B * E), db(B * E), dls = {0.0f};
    const LossResult r = info_nce(a.data(), b.data(), B, E, ls[0], 1.0f, da.data(), db.data(), dls.data());
    EXPECT_GT(r.loss, 0.0);
    auto f = [&] { return info_nce(a.data(), b.data(), B, E, ls[0], 1.0f, nullptr, nullptr, nullptr).loss; };
    fd_vector(a, da, f);
    fd_vector(b, db, f);
    fd_vector(ls, dls, f);
    // Perfectly aligned pairs at a high temperature scale: loss → 0, every row retrieves its pair.
    const LossResult same = info_nce(a.data(), a.data(), B, E, 4.6f, 1.0f, nullptr, nullptr, nullptr);
    EXPECT_EQ(same.correct, B);
}

TEST(Optim, ScheduleWarmupThenCosine) {
    Schedule s{.peak_lr = 1.0f, .warmup = 4, .total = 14, .min_ratio = 0.1f};
    EXPECT_FLOAT_EQ(s.lr_at(0), 0.25f);
    EXPECT_FLOAT_EQ(s.lr_at(3), 1.0f);
    EXPECT_FLOAT_EQ(s.lr_at(4), 1.0f);                                            // cosine starts at the peak
    EXPECT_NEAR(s.lr_at(9), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.5)), 1e-6);  // half way
    EXPECT_NEAR(s.lr_at(14), 0.1, 1e-6);                                          // and ends at the floor
}

TEST(Optim, AdamWMatchesTheFormulaAndDecaysOnlyMatrices) {
    ParamStore ps;
    Param & w        = ps.add("w", Tensor::zeros(DType::F32, {2}), true);
    Param & b        = ps.add("b", Tensor::zeros(DType::F32, {1}), false);
    w.value.f32()[0] = 1.0f, w.value.f32()[1] = -2.0f, b.value.f32()[0] = 0.5f;
    w.grad.f32()[0] = 0.1f, w.grad.f32()[1] = 0.0f, b.grad.f32()[0] = -0.3f;
    AdamW opt;
    opt.weight_decay = 0.1f;
    adamw_step(ps, opt, 0.01f, 1);
    // t = 1: m̂ = g, v̂ = g², update = g / (|g| + eps) = sign(g)
    EXPECT_NEAR(w.value.f32()[0], 1.0 - 0.01 * (1.0 + 0.1 * 1.0), 1e-6);
    EXPECT_NEAR(w.value.f32()[1], -2.0 - 0.01 * (0.0 + 0.1 * -2.0), 1e-6);  // decay acts without a gradient
    EXPECT_NEAR(b.value.f32()[0], 0.5 + 0.01, 1e-6);                        // no decay on b
    EXPECT_NEAR(w.m.f32()[0], 0.01, 1e-7);
    EXPECT_NEAR(w.v.f32()[0], 0.001 * 0.01, 1e-9);
}

// The trainer's way: the clipping scale folded into the update, the bf16 copy rewritten in the same
// pass. Bit for bit what clip_grad_norm (gradients rescaled in place) + adamw_step + a separate
// f32 → bf16 refresh give, over parameters long enough for the vector kernel's full and partial
// steps and for several of the pool's chunks.
TEST(Optim, FoldedClippingAndBf16RefreshEqualTheSeparatePasses) {
    auto make = [](ParamStore & ps, std::vector<uint16_t> & copy) {
        std::mt19937 rng(9);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (int i = 0; i < 3; ++i) {
            const int64_t n = i == 0 ? 40017 : i == 1 ? 15 : 1;
            Param & p       = ps.add("p" + std::to_string(i), Tensor::zeros(DType::F32, {n}), i != 1);
            for (int64_t k = 0; k < n; ++k) p.value.f32()[k] = nd(rng), p.grad.f32()[k] = 3.0f * nd(rng);
        }
        copy.assign(static_cast<size_t>(ps.params()[0].numel()), 0);
        ps.params()[0].bf16_copy = copy.data();
    };
    ParamStore folded, separate;
    std::vector<uint16_t> copy_folded, copy_separate;
    make(folded, copy_folded);
    make(separate, copy_separate);
    AdamW opt;
    opt.weight_decay = 0.05f;
    for (int64_t t = 1; t <= 3; ++t) {
        const float s = clip_scale(folded.grad_norm(), 1.0f);
        EXPECT_LT(s, 1.0f);  // the gradients are far above the bound: clipping acts
        adamw_step(folded, opt, 1e-2f, t, s);
        clip_grad_norm(separate, 1.0f);
        Param & p0      = separate.params()[0];
        uint16_t * keep = p0.bf16_copy;
        p0.bf16_copy    = nullptr;
        adamw_step(separate, opt, 1e-2f, t);
        p0.bf16_copy = keep;
        for (int64_t k = 0; k < p0.numel(); ++k) keep[k] = f32_to_bf16(p0.value.f32()[k]);
        for (size_t i = 0; i < folded.params().size(); ++i) {
            const Param &a = folded.params()[i], &b = separate.params()[i];
            ASSERT_EQ(0, std::memcmp(a.value.f32(), b.value.f32(), static_cast<size_t>(a.numel()) * 4)) << a.name;
            ASSERT_EQ(0, std::memcmp(a.m.f32(), b.m.f32(), static_cast<size_t>(a.numel()) * 4)) << a.name;
            ASSERT_EQ(0, std::memcmp(a.v.f32(), b.v.f32(), static_cast<size_t>(a.numel()) * 4)) << a.name;
        }
        ASSERT_EQ(copy_folded, copy_separate) << "step " << t;
        // The separate passes left scaled gradients behind; give the next step the original ones.
        for (size_t i = 0; i < folded.params().size(); ++i)
            std::memcpy(separate.params()[i].grad.f32(), folded.params()[i].grad.f32(),
                        static_cast<size_t>(folded.params()[i].numel()) * 4);
    }
    EXPECT_EQ(clip_scale(0.5, 1.0f), 1.0f);  // under the bound, and with clipping off
    EXPECT_EQ(clip_scale(5.0, 0.0f), 1.0f);
}

TEST(Optim, ClippingBoundsTheGlobalNorm) {
    ParamStore ps;
    Param & a       = ps.add("a", Tensor::zeros(DType::F32, {2}), true);
    Param & b       = ps.add("b", Tensor::zeros(DType::F32, {1}), true);
    a.grad.f32()[0] = 3.0f, a.grad.f32()[1] = 0.0f, b.grad.f32()[0] = 4.0f;
    EXPECT_NEAR(clip_grad_norm(ps, 1.0f), 5.0, 1e-9);
    EXPECT_NEAR(ps.grad_norm(), 1.0, 1e-5);
    EXPECT_NEAR(a.grad.f32()[0] / b.grad.f32()[0], 0.75, 1e-6);  // direction kept
    EXPECT_NEAR(clip_grad_norm(ps, 2.0f), 1.0, 1e-5);            // under the bound: unchanged
    EXPECT_NEAR(ps.grad_norm(), 1.0, 1e-5);
}

TEST(Optim, GradientAccumulationEqualsOneLargeBatch) {
    const std::string p = test::temp_dir() + "/accum.m4fw";
    test::write_firmware(p, test::tiny_config(), 5);
    auto fw = model::Model::load(p);
    ASSERT_TRUE(fw.is_ok());
    const test::TaskSpec t = test::all_tasks()[0];  // classification: the loss is a mean over samples
    const Batch all        = test::random_batch((*fw)->config(), t, 12, 8);
    const Batch h1(all.begin(), all.begin() + 4), h2(all.begin() + 4, all.end());
    std::vector<float> g[2];
    for (int k = 0; k < 2; ++k) {
        ModelOptions o;
        o.lora_targets = "all";
        auto tm        = TrainModel::create(**fw, {t}, o);
        ASSERT_TRUE(tm.is_ok());
        if (k == 0) {
            ASSERT_TRUE((*tm)->forward_backward(t, all, 1.0f).is_ok());
        } else {
            ASSERT_TRUE((*tm)->forward_backward(t, h1, 0.5f).is_ok());
            ASSERT_TRUE((*tm)->forward_backward(t, h2, 0.5f).is_ok());
        }
        for (const auto & q : (*tm)->params().params()) g[k].insert(g[k].end(), q.grad.f32(), q.grad.f32() + q.numel());
    }
    EXPECT_LE(test::rel_err(g[1], g[0]), 1e-5);
}

}  // namespace
