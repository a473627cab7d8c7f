// The dispatch table (levels, fallbacks, the ISA ceiling), op names, the operator-type recorder,
// and the argument checks of the entry points.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/avx512/kernels.h"
#include "ops/ops.h"
#include "tensor/tensor.h"

namespace m4::ops {
namespace {

const Isa kStartIsa = selected_isa();

bool complete(const kern::KernelTable & t) {
    return t.matmul[static_cast<int>(DType::F32)] && t.matmul[static_cast<int>(DType::BF16)] &&
           t.matmul[static_cast<int>(DType::I8)] && t.softmax && t.rmsnorm && t.layernorm && t.attention && t.silu &&
           t.gelu && t.add && t.mul;
}

TEST(Dispatch, EveryLevelIsComplete) {
    for (int level = 0; level < kIsaCount; ++level)
        EXPECT_TRUE(complete(kernel_table(static_cast<Isa>(level)))) << isa_name(static_cast<Isa>(level));
}

TEST(Dispatch, LevelsAboveTheCpuCopyTheLevelBelow) {
    const int detected = static_cast<int>(cpu_features().detected);
    for (int level = detected + 1; level < kIsaCount; ++level) {
        const kern::KernelTable & t = kernel_table(static_cast<Isa>(level));
        const kern::KernelTable & b = kernel_table(static_cast<Isa>(level - 1));
        EXPECT_EQ(t.matmul[0], b.matmul[0]) << isa_name(static_cast<Isa>(level));
        EXPECT_EQ(t.attention, b.attention) << isa_name(static_cast<Isa>(level));
    }
}

TEST(Dispatch, Avx2RegistersItsKernelsAndFallsBackForTheRest) {
    if (!cpu_features().avx2) GTEST_SKIP() << "this CPU lacks avx2 (it has: " << cpu_features().describe() << ")";
    const kern::KernelTable & s = kernel_table(Isa::Scalar);
    const kern::KernelTable & t = kernel_table(Isa::Avx2);
    EXPECT_NE(t.matmul[static_cast<int>(DType::F32)], s.matmul[static_cast<int>(DType::F32)]);
    EXPECT_NE(t.softmax, s.softmax);
    EXPECT_NE(t.rmsnorm, s.rmsnorm);
    EXPECT_EQ(t.attention, s.attention);  // no AVX2 attention: the reference
    EXPECT_EQ(t.matmul[static_cast<int>(DType::I8)], s.matmul[static_cast<int>(DType::I8)]);
}

TEST(Dispatch, Avx512RegistersBf16OnlyWithItsFeatureAndInt8WithOrWithoutVnni) {
    const CpuFeatures & cpu = cpu_features();
    if (static_cast<int>(cpu.detected) < static_cast<int>(Isa::Avx512))
        GTEST_SKIP() << "this CPU lacks avx512 (it has: " << cpu.describe() << ")";
    const kern::KernelTable & b = kernel_table(Isa::Avx2);
    const kern::KernelTable & t = kernel_table(Isa::Avx512);
    EXPECT_NE(t.matmul[static_cast<int>(DType::F32)], b.matmul[static_cast<int>(DType::F32)]);
    EXPECT_EQ(t.matmul[static_cast<int>(DType::BF16)] != b.matmul[static_cast<int>(DType::BF16)], cpu.avx512_bf16);
    // int8: VPDPBUSD with VNNI, VPMADDWD without; either way not the level below's.
    EXPECT_NE(t.matmul[static_cast<int>(DType::I8)], b.matmul[static_cast<int>(DType::I8)]);
    EXPECT_EQ(t.matmul[static_cast<int>(DType::I8)] == kern::matmul_fwd_i8_avx512, cpu.avx512_vnni);
    EXPECT_NE(t.attention, b.attention);
    EXPECT_NE(t.gelu, b.gelu);
}

TEST(Dispatch, ActiveKernelsFollowTheCeiling) {
    set_isa_ceiling(Isa::Scalar);
    EXPECT_EQ(&active_kernels(), &kernel_table(Isa::Scalar));
    set_isa_ceiling(Isa::Amx);  // clamped to the detected level
    EXPECT_EQ(&active_kernels(), &kernel_table(cpu_features().detected));
    set_isa_ceiling(kStartIsa);
    EXPECT_EQ(&active_kernels(), &kernel_table(kStartIsa));
}

TEST(OpNames, ComeFromOpsDef) {
    EXPECT_STREQ(op_name(OpKind::matmul), "matmul");
    EXPECT_STREQ(op_name(OpKind::log), "log");
    EXPECT_EQ(kOpCount, 13);
    for (int k = 0; k < kOpCount; ++k) EXPECT_GT(std::string(op_formula(static_cast<OpKind>(k))).size(), 5u);
}

TEST(OpRecorder, RecordsOpTypesOfItsScope) {
    const float x[4] = {1, 2, 3, 4};
    float y[4];
    silu(x, y, 4);  // no recorder alive: nothing to record into
    OpRecorder outer;
    softmax(x, y, 1, 4);
    {
        OpRecorder inner;
        log(x, y, 4, 0.0f);
        EXPECT_EQ(inner.used_names(), (std::vector<std::string>{"log"}));
    }
    add(x, x, y, 4, 4);
    EXPECT_EQ(outer.used_names(), (std::vector<std::string>{"add", "softmax", "log"}));
    EXPECT_TRUE(outer.used()[static_cast<int>(OpKind::softmax)]);
    EXPECT_FALSE(outer.used()[static_cast<int>(OpKind::silu)]);
}

TEST(EntryPoints, MatmulAcceptsEveryWeightDtype) {
    const float x[3] = {1, -2, 0.5f};
    Tensor w         = Tensor::zeros(DType::F32, {2, 3});
    w.f32()[0] = 1, w.f32()[4] = 1;
    for (DType dt : {DType::F32, DType::BF16, DType::I8}) {
        float y[2] = {0, 0};
        matmul(x, 3, convert(w, dt), nullptr, y, 2, 1);
        EXPECT_NEAR(y[0], 1.0f, 1e-2) << dtype_name(dt);
        EXPECT_NEAR(y[1], -2.0f, 1e-2) << dtype_name(dt);
    }
}

using EntryPointsDeathTest = ::testing::Test;

TEST_F(EntryPointsDeathTest, RejectBadArguments) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const float x[4] = {1, 2, 3, 4};
    float y[4];
    const Tensor table  = Tensor::zeros(DType::F32, {3, 2});
    const int32_t bad[] = {0, 3};
    EXPECT_DEATH(gather(table, bad, 2, y), "outside");
    const Tensor vec = Tensor::zeros(DType::F32, {4});
    EXPECT_DEATH(matmul(x, 4, vec, nullptr, y, 4, 1), "2-D");
    const Tensor bytes = Tensor::zeros(DType::U8, {2, 2});
    EXPECT_DEATH(matmul(x, 2, bytes, nullptr, y, 2, 1), "u8");
    const Tensor w = Tensor::zeros(DType::F32, {4, 2});
    EXPECT_DEATH(matmul(x, 2, w, nullptr, y, 3, 1), "ldy");  // ldy < N
    kern::AttentionArgs a;
    a.q = x, a.k = x, a.v = x, a.y = y, a.T = 1, a.S = 1, a.H = 3, a.G = 2, a.D = 1;
    a.ldq = a.ldy = 3, a.ldk = a.ldv = 2;
    EXPECT_DEATH(attention(a), "H % G");
    int32_t pos[1] = {0};
    EXPECT_DEATH(rope(y, 3, 1, 1, 3, pos, 10000.0f), "even");
}

}  // namespace
}  // namespace m4::ops
