// The scalar references (the oracle) against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "ops/ops.h"
#include "tensor/tensor.h"

namespace m4::ops {
namespace {

kern::MatmulArgs matmul_args(const float * x, int64_t K, const Tensor & w, const float * bias, float * y, int64_t M,
                             bool accumulate = false) {
    kern::MatmulArgs a;
    a.x = x, a.ldx = K, a.w = w.data(), a.w_scale = w.dtype() == DType::I8 ? w.scales() : nullptr;
    a.bias = bias, a.y = y, a.ldy = w.dim(0), a.M = M, a.N = w.dim(0), a.K = K, a.accumulate = accumulate;
    return a;
}

TEST(Reference, MatmulF32BiasAndAccumulate) {
    const float x[] = {1, 2, 3, 4};        // [2, 2]
    float wv[]      = {1, 0, 0, 1, 1, 1};  // [3, 2]
    const float b[] = {0.5f, 0.0f, -1.0f};
    const Tensor w  = Tensor::view(DType::F32, {3, 2}, wv);
    float y[6];
    matmul_forward_ref(matmul_args(x, 2, w, b, y, 2), DType::F32);
    const float want[] = {1.5f, 2, 2, 3.5f, 4, 6};
    for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y[i], want[i]) << i;
    matmul_forward_ref(matmul_args(x, 2, w, nullptr, y, 2, /*accumulate=*/true), DType::F32);
    const float twice[] = {2.5f, 4, 5, 6.5f, 8, 13};
    for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y[i], twice[i]) << i;
}

TEST(Reference, MatmulBf16RoundsXToBf16) {
    // 1 + 2⁻¹⁰ is not a bf16 value (8 significant bits): it rounds to 1 before the product.
    const float x[]     = {1.0f + 1.0f / 1024.0f, 3.0f};
    const uint16_t wv[] = {f32_to_bf16(1.0f), f32_to_bf16(0.5f)};
    const Tensor w      = Tensor::view(DType::BF16, {1, 2}, wv);
    float y             = 0;
    matmul_forward_ref(matmul_args(x, 2, w, nullptr, &y, 1), DType::BF16);
    EXPECT_EQ(y, 2.5f);
}

TEST(Reference, MatmulI8RoundsHalfToEven) {
    // max |x| = 127, so sx = 1 and qx = nearbyint(x): −63.5 → −64, 32.5 → 32, 0.5 → 0 (ties to even).
    const float x[]    = {127.0f, -63.5f, 32.5f, 0.5f};
    const int8_t q[]   = {1, 1, 1, 1};
    const float scale  = 2.0f;
    const Tensor w     = Tensor::view(DType::I8, {1, 4}, q, &scale);
    float y            = 0;
    const float bias[] = {0.25f};
    matmul_forward_ref(matmul_args(x, 4, w, bias, &y, 1), DType::I8);
    EXPECT_EQ(y, (127 - 64 + 32 + 0) * 2.0f + 0.25f);  // the f32 product would give 193.25
}

TEST(Reference, MatmulI8AllZeroRow) {
    const float x[3] = {0, 0, 0};
    const int8_t q[] = {5, -7, 9};
    const float s    = 0.1f;
    const Tensor w   = Tensor::view(DType::I8, {1, 3}, q, &s);
    float y          = 42;
    matmul_forward_ref(matmul_args(x, 3, w, nullptr, &y, 1), DType::I8);
    EXPECT_EQ(y, 0.0f);
}

TEST(Reference, AddMulBroadcast) {
    const float a[] = {1, 2, 3, 4}, b[] = {10, 20};
    float y[4];
    add_forward_ref(a, b, y, 4, 2);
    EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{11, 22, 13, 24}));
    mul_forward_ref(a, b, y, 4, 2);
    EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{10, 40, 30, 80}));
}

TEST(Reference, SoftmaxKnownVector) {
    const float x[] = {1, 2, 3, 1000, 1000};
    float y[5];
    softmax_forward_ref(x, y, 1, 3);
    EXPECT_NEAR(y[0], 0.09003057f, 1e-7);
    EXPECT_NEAR(y[1], 0.24472847f, 1e-7);
    EXPECT_NEAR(y[2], 0.66524096f, 1e-7);
    softmax_forward_ref(x + 3, y + 3, 1, 2);  // large but equal: no overflow
    EXPECT_FLOAT_EQ(y[3], 0.5f);
    EXPECT_FLOAT_EQ(y[4], 0.5f);
}

TEST(Reference, RmsnormKnownVector) {
    const float x[] = {3, 4}, w[] = {1, 2};
    float y[2];
    rmsnorm_forward_ref(x, w, y, 1, 2, 0.0f);  // rms = sqrt(12.5)
    EXPECT_NEAR(y[0], 3.0f / std::sqrt(12.5f), 1e-6);
    EXPECT_NEAR(y[1], 8.0f / std::sqrt(12.5f), 1e-6);
}

TEST(Reference, LayernormMeanZeroVarianceOne) {
    const float x3[] = {1, 2, 3};
    float y3[3];
    layernorm_forward_ref(x3, nullptr, nullptr, y3, 1, 3, 0.0f);
    EXPECT_NEAR(y3[0], -1.2247449f, 1e-6);
    EXPECT_NEAR(y3[1], 0.0f, 1e-6);
    EXPECT_NEAR(y3[2], 1.2247449f, 1e-6);

    std::vector<float> x(64), y(64);
    for (int i = 0; i < 64; ++i) x[i] = 5.0f + std::sin(0.7f * i) * 3.0f;
    layernorm_forward_ref(x.data(), nullptr, nullptr, y.data(), 1, 64, 0.0f);
    const double mean = std::accumulate(y.begin(), y.end(), 0.0) / 64;
    double var        = 0;
    for (float v : y) var += (v - mean) * (v - mean);
    EXPECT_NEAR(mean, 0.0, 1e-6);
    EXPECT_NEAR(var / 64, 1.0, 1e-5);

    const float w[] = {2, 2, 2}, b[] = {1, 1, 1};
    layernorm_forward_ref(x3, w, b, y3, 1, 3, 0.0f);
    EXPECT_NEAR(y3[2], 2 * 1.2247449f + 1, 1e-6);
}

TEST(Reference, SiluAndGeluKnownValues) {
    const float x[] = {0.0f, 1.0f, -1.0f};
    float y[3];
    silu_forward_ref(x, y, 3);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1], 0.7310586f, 1e-7);
    EXPECT_NEAR(y[2], -0.2689414f, 1e-7);
    gelu_forward_ref(x, y, 3);  // x·Φ(x): Φ(1) = 0.8413447
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1], 0.8413447f, 1e-7);
    EXPECT_NEAR(y[2], -0.1586553f, 1e-7);
    // tanh form (PyTorch gelu(approximate='tanh')): 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.8411920
    gelu_tanh_forward_ref(x, y, 3);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1], 0.8411920f, 1e-6);
    EXPECT_NEAR(y[2], -0.1588080f, 1e-6);
    // quick form: σ(1.702) = 0.8457958
    gelu_quick_forward_ref(x, y, 3);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1], 0.8457958f, 1e-6);
    EXPECT_NEAR(y[2], -0.1542042f, 1e-6);
}

TEST(Reference, RopeIdentityAtZeroAndRotationAfter) {
    // T = 2 tokens, H = 2 heads, D = 4.
    std::vector<float> x(16);
    for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i + 1);
    std::vector<float> y  = x;
    const int32_t zero[2] = {0, 0};
    rope_forward_ref(y.data(), 8, 2, 2, 4, zero, 10000.0f);
    EXPECT_EQ(y, x);

    // pos 1: pair 0 turns by 1 rad, pair 1 by 10000^(−2/4) = 0.01 rad.
    float v[4]          = {1, 0, 0, 1};
    const int32_t one[] = {1};
    rope_forward_ref(v, 4, 1, 1, 4, one, 10000.0f);
    EXPECT_NEAR(v[0], std::cos(1.0f), 1e-6);
    EXPECT_NEAR(v[1], std::sin(1.0f), 1e-6);
    EXPECT_NEAR(v[2], -std::sin(0.01f), 1e-6);
    EXPECT_NEAR(v[3], std::cos(0.01f), 1e-6);
}

TEST(Reference, AttentionWeightsAndCausalMask) {
    // One head, D = 1. Scores 0 and ln 3 → weights 1/4, 3/4 → y = 4/4 + 3·8/4 = 7.
    const float q[] = {1.0f}, k[] = {0.0f, std::log(3.0f)}, v[] = {4.0f, 8.0f};
    float y[2];
    kern::AttentionArgs a;
    a.q = q, a.k = k, a.v = v, a.y = y;
    a.ldq = a.ldk = a.ldv = a.ldy = 1;
    a.T = 1, a.S = 2, a.H = 1, a.G = 1, a.D = 1;
    attention_forward_ref(a);
    EXPECT_NEAR(y[0], 7.0f, 1e-5);

    // Causal, T = 2 from position 0: query 0 sees only key 0.
    const float q2[] = {1.0f, 1.0f};
    a.q = q2, a.T = 2, a.causal = true;
    attention_forward_ref(a);
    EXPECT_FLOAT_EQ(y[0], 4.0f);
    EXPECT_NEAR(y[1], 7.0f, 1e-5);

    // Grouped heads: H = 2 query heads share G = 1 key/value head.
    const float qh[] = {1.0f, 0.0f};  // head 1 has score 0 for both keys → mean of v
    a.q = qh, a.T = 1, a.causal = false, a.H = 2, a.ldq = 2, a.ldy = 2;
    attention_forward_ref(a);
    EXPECT_NEAR(y[0], 7.0f, 1e-5);
    EXPECT_NEAR(y[1], 6.0f, 1e-5);
}

TEST(Reference, GatherDequantises) {
    const float f[]     = {1, 2, 3, 4, 5, 6};  // [3, 2]
    const uint16_t h[]  = {f32_to_bf16(1.5f), f32_to_bf16(2.5f), f32_to_bf16(-1), f32_to_bf16(0)};
    const int8_t q[]    = {10, -20, 30, 127};
    const float s[]     = {0.5f, 0.25f};
    const int32_t ids[] = {2, 0};
    float y[4];
    gather_forward_ref(Tensor::view(DType::F32, {3, 2}, f), ids, 2, y);
    EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{5, 6, 1, 2}));
    const int32_t ids2[] = {1, 0};
    gather_forward_ref(Tensor::view(DType::BF16, {2, 2}, h), ids2, 2, y);
    EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{-1, 0, 1.5f, 2.5f}));
    gather_forward_ref(Tensor::view(DType::I8, {2, 2}, q, s), ids2, 2, y);
    EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{7.5f, 31.75f, 5, -10}));
}

TEST(Reference, PoolMeanOverTime) {
    const float x[] = {1, 2, 3, 4, 10, 20, 30, 40};  // B = 2, T = 2, C = 2
    float y[4];
    pool_forward_ref(x, y, 2, 2, 2);
    EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{2, 3, 20, 30}));
}

TEST(Reference, LogWithOffset) {
    const float x[] = {1.0f, std::exp(1.0f), 0.0f};
    float y[3];
    log_forward_ref(x, y, 2, 0.0f);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1], 1.0f, 1e-6);
    log_forward_ref(x + 2, y + 2, 1, 1.0f);  // ln(0 + 1)
    EXPECT_EQ(y[2], 0.0f);
}

}  // namespace
}  // namespace m4::ops
