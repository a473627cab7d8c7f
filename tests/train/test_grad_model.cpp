// Every layer's backward, through the whole model: the gradient of each parameter tensor of a tiny
// model (every path, every objective, full and adapter mode, with LoRA on every linear) against
// central finite differences of the training loss.
//
// The forward runs in f32, so the numeric derivative is noisy where a gradient is tiny; per tensor
// the test compares the element with the largest analytic gradient and two random ones, and the
// error is max|numeric − analytic| / max|analytic over the tensor|. Measured worst: 2.3e-3 (full
// mode), 3.6e-2 (adapter mode: LoRA B of the audio encoder's attention, gradients ~1e-3 under
// log-mel inputs of magnitude ~10, where the f32 loss noise of ~1e-6 over 2h is ~5e-5); bounds
// 2e-2 and 6e-2. A wrong term or factor gives errors of order 1. A tensor whose analytic gradient
// is exactly 0 (the task does not reach it) must have a numeric one of 0 too, and in full mode
// every tensor of the firmware must get a nonzero gradient from some task. The precise check (relative
// error ≤ 1e-4 against float64 PyTorch autograd) is tests/train/test_autograd.py; this one is
// self-contained and names the tensor whose backward is wrong.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <set>

#include "train_fixture.h"

using namespace m4;
using namespace m4::test;

namespace {

class GradModelTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        std::string p = temp_dir() + "/grad_base.m4fw";
        write_firmware(p, tiny_config(), 21);
        auto m = model::Model::load(p);
        ASSERT_TRUE(m.is_ok()) << m.status().message();
        model_ = std::move(m).value().release();
    }
    static void TearDownTestSuite() { delete model_; }
    static inline model::Model * model_ = nullptr;
};

struct Worst {
    double err = 0;
    std::string where;
};

// Central differences of the mean batch loss for a few elements of every parameter.
void check_all_params(train::TrainModel & tm, const TaskSpec & t, const train::Batch & batch, double tol, Worst * worst,
                      std::set<std::string> * reached = nullptr) {
    tm.params().zero_grad();
    auto st = tm.forward_backward(t, batch, 1.0f);
    ASSERT_TRUE(st.is_ok()) << st.status().message();
    train::Rng rng(7);
    int checked = 0;
    for (auto & p : tm.params().params()) {
        const float * g = p.grad.f32();
        float * v       = p.value.f32();
        int64_t arg     = 0;
        double gmax     = 0;
        for (int64_t i = 0; i < p.numel(); ++i)
            if (std::fabs(g[i]) > gmax) gmax = std::fabs(g[i]), arg = i;
        double err = 0;
        if (gmax < 1e-6) {
            // Not reached by this task (or, like a key bias, invisible to the loss: softmax is
            // shift-invariant): the loss must not depend on it either.
            for (int64_t i : {int64_t{0}, rng.below(p.numel())}) {
                const float v0 = v[i];
                v[i]           = v0 + 1e-2f;
                tm.refresh_shadows();
                const double lp = tm.evaluate(t, batch)->loss;
                v[i]            = v0;
                tm.refresh_shadows();
                EXPECT_LE(std::fabs(lp - st->loss), 3e-6)
                    << t.name << ": " << p.name << " has no gradient but moves the loss";
            }
            continue;
        }
        if (reached) reached->insert(p.name);
        for (int64_t i : {arg, rng.below(p.numel()), rng.below(p.numel())}) {
            const float v0 = v[i];
            // Central difference with step h, with the actual f32 steps taken.
            auto central = [&](float h) {
                v[i]            = v0 + h;
                const double hp = double(v[i]) - double(v0);
                tm.refresh_shadows();
                const double lp = tm.evaluate(t, batch)->loss;
                v[i]            = v0 - h;
                const double hm = double(v0) - double(v[i]);
                const double lm = tm.evaluate(t, batch)->loss;
                v[i]            = v0;
                return (lp - lm) / (hp + hm);
            };
            // h = 1e-2: smaller steps drown in the f32 rounding of the loss (M4_GRAD_DEBUG=<tensor>
            // prints the estimates for h = 1e-2 … 3e-4), larger ones in the O(h²) truncation.
            const double num = central(1e-2f * std::max(1.0f, std::fabs(v0)));
            err              = std::max(err, std::fabs(num - double(g[i])));
            if (std::getenv("M4_GRAD_DEBUG") && p.name == std::getenv("M4_GRAD_DEBUG"))
                std::printf("  %s[%ld] g=%.6e  h=1e-2: %.6e  h=3e-3: %.6e  h=1e-3: %.6e  h=3e-4: %.6e\n",
                            p.name.c_str(), long(i), g[i], central(1e-2f), central(3e-3f), central(1e-3f),
                            central(3e-4f));
        }
        const double rel = err / gmax;
        if (std::getenv("M4_GRAD_VERBOSE"))
            std::printf("%-22s %-48s rel err %.2e\n", t.name.c_str(), p.name.c_str(), rel);
        if (rel > worst->err) *worst = {rel, t.name + " / " + p.name};
        EXPECT_LE(rel, tol) << t.name << ": gradient of " << p.name;
        ++checked;
    }
    EXPECT_GT(checked, 0) << t.name;
}

TEST_F(GradModelTest, FullModeEveryTensorEveryTask) {
    std::vector<TaskSpec> tasks = all_tasks();
    tasks.push_back(contrastive_task(Modality::Image));
    Worst worst;
    std::set<std::string> reached;
    for (const TaskSpec & t : tasks) {
        train::ModelOptions o;
        o.mode  = train::Mode::Full;
        auto tm = train::TrainModel::create(*model_, {t}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        check_all_params(**tm, t, random_batch(model_->config(), t, 3, 3), 2e-2, &worst, &reached);
    }
    std::printf("worst relative error: %.2e (%s)\n", worst.err, worst.where.c_str());
    for (const auto & spec : model::expected_tensors(model_->config())) {
        // q·(k + b) − q·(k' + b) = q·(k − k'): a key bias never changes attention (its gradient is 0).
        const bool key_bias = spec.name.size() > 11 && spec.name.compare(spec.name.size() - 11, 11, "attn.k.bias") == 0;
        if (!key_bias) EXPECT_TRUE(reached.count(spec.name)) << spec.name << " got no gradient from any task";
    }
}

TEST_F(GradModelTest, AdapterModeLoraAndHeadEveryTask) {
    Worst worst;
    for (const TaskSpec & t : all_tasks()) {
        train::ModelOptions o;
        o.lora_targets = "all";
        o.lora_rank    = 2;
        o.lora_alpha   = 2;  // scale 1: a LoRA term of the size of the base term, not 8× it
        auto tm        = train::TrainModel::create(*model_, {t}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        // Nonzero B so the gradient of A is not identically 0 (B starts at 0).
        train::Rng rng(4);
        for (auto & p : (*tm)->params().params())
            if (p.name.size() > 2 && p.name.compare(p.name.size() - 2, 2, ".b") == 0)
                for (int64_t i = 0; i < p.numel(); ++i) p.value.f32()[i] = static_cast<float>(rng.normal() * 0.1);
        check_all_params(**tm, t, random_batch(model_->config(), t, 5, 3), 6e-2, &worst);
    }
    std::printf("worst relative error: %.2e (%s)\n", worst.err, worst.where.c_str());
}

// Heads with a hidden GELU layer (head.hidden.*, head.out.*): every head task, LoRA on every
// linear so the gradient also flows back through the hidden layer into the trunk.
TEST_F(GradModelTest, AdapterModeHiddenLayerHeadEveryHeadTask) {
    Worst worst;
    int tasks = 0;
    for (const TaskSpec & t : all_tasks()) {
        if (!t.has_head()) continue;
        train::ModelOptions o;
        o.lora_targets = "all";
        o.lora_rank    = 2;
        o.lora_alpha   = 2;
        o.head_hidden  = 5;
        auto tm        = train::TrainModel::create(*model_, {t}, o);
        ASSERT_TRUE(tm.is_ok()) << tm.status().message();
        ASSERT_NE((*tm)->params().find("head.hidden.weight"), nullptr) << t.name;
        ASSERT_NE((*tm)->params().find("head.out.weight"), nullptr) << t.name;
        train::Rng rng(6);
        for (auto & p : (*tm)->params().params()) {
            const bool lora_b = p.name.size() > 2 && p.name.compare(p.name.size() - 2, 2, ".b") == 0;
            // Nonzero LoRA B and hidden bias, so every gradient is exercised.
            if (lora_b || p.name == "head.hidden.bias")
                for (int64_t i = 0; i < p.numel(); ++i) p.value.f32()[i] = static_cast<float>(rng.normal() * 0.1);
        }
        check_all_params(**tm, t, random_batch(model_->config(), t, 5, 3), 6e-2, &worst);
        ++tasks;
    }
    EXPECT_GE(tasks, 4) << "classify, regress and embed heads on the encoder and backbone paths";
    std::printf("worst relative error: %.2e (%s)\n", worst.err, worst.where.c_str());
}

TEST_F(GradModelTest, RecomputationGivesTheSameGradients) {
    for (const TaskSpec & t : {all_tasks()[6], all_tasks()[0]}) {
        std::vector<std::vector<float>> grads[2];
        for (int r = 0; r < 2; ++r) {
            train::ModelOptions o;
            o.mode      = train::Mode::Full;
            o.recompute = r == 1;
            auto tm     = train::TrainModel::create(*model_, {t}, o);
            ASSERT_TRUE(tm.is_ok());
            ASSERT_TRUE((*tm)->forward_backward(t, random_batch(model_->config(), t, 8, 4), 1.0f).is_ok());
            for (const auto & p : (*tm)->params().params())
                grads[r].emplace_back(p.grad.f32(), p.grad.f32() + p.numel());
        }
        ASSERT_EQ(grads[0].size(), grads[1].size());
        for (size_t i = 0; i < grads[0].size(); ++i) EXPECT_EQ(grads[0][i], grads[1][i]) << t.name << " tensor " << i;
    }
}

TEST_F(GradModelTest, Bf16TrainingGradientsStayCloseToF32) {
    // bf16 matmuls round both operands to 8 significant bits: the gradients move by ~1 %, not more.
    const TaskSpec t     = all_tasks()[6];
    const train::Batch b = random_batch(model_->config(), t, 9, 4);
    std::vector<float> g[2];
    for (int bf = 0; bf < 2; ++bf) {
        train::ModelOptions o;
        o.mode  = train::Mode::Full;
        o.bf16  = bf == 1;
        auto tm = train::TrainModel::create(*model_, {t}, o);
        ASSERT_TRUE(tm.is_ok());
        ASSERT_TRUE((*tm)->forward_backward(t, b, 1.0f).is_ok());
        for (const auto & p : (*tm)->params().params())
            g[bf].insert(g[bf].end(), p.grad.f32(), p.grad.f32() + p.numel());
    }
    const double e = rel_err(g[1], g[0]);
    std::printf("bf16 vs f32 gradients: relative error %.2e\n", e);
    EXPECT_LE(e, 5e-2);
    EXPECT_GT(e, 0.0);  // the bf16 kernels really ran
}

}  // namespace
