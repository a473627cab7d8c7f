#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "base/arena.h"
#include "base/cpu.h"
#include "base/crypto.h"
#include "base/thread_pool.h"
#include "tensor/tensor.h"

using namespace m4;

TEST(ThreadPool, CoversRangeExactlyOnce) {
    ThreadPool pool(3);
    std::vector<int> hits(1001, 0);
    pool.parallel_for(1001, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int h : hits) EXPECT_EQ(h, 1);
    std::atomic<int64_t> sum{0};
    for (int rep = 0; rep < 50; ++rep) pool.parallel_for(7, [&](int64_t b, int64_t e) { sum += e - b; });
    EXPECT_EQ(sum.load(), 350);
}

TEST(ThreadPool, NestedCallsRunInline) {
    ThreadPool pool(2);
    std::atomic<int64_t> n{0};
    pool.parallel_for(4, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) pool.parallel_for(10, [&](int64_t b2, int64_t e2) { n += e2 - b2; });
    });
    EXPECT_EQ(n.load(), 40);
}

// Workers spin for a while after each job, then sleep: jobs must reach them in both states, with
// part counts below the pool size (idle workers skip a generation), and the pool must shut down
// while they spin (the end of this test).
TEST(ThreadPool, HandsOverWhileSpinningAndAfterSleeping) {
    ThreadPool pool(4);
    for (int rep = 0; rep < 400; ++rep) {
        if (rep % 100 == 99) std::this_thread::sleep_for(std::chrono::microseconds(4 * ThreadPool::kSpinMicros));
        const int64_t n = 1 + rep % 6;
        std::vector<std::atomic<int>> hits(n);
        for (auto & h : hits) h = 0;
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "rep " << rep << " item " << i;
    }
}

TEST(Arena, AlignedAndReusable) {
    Arena a(256);
    for (int pass = 0; pass < 3; ++pass) {
        for (int i = 1; i < 20; ++i) {
            void * p = a.alloc_bytes(i * 37);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kAlign, 0u);
        }
        a.reset();
        EXPECT_EQ(a.used(), 0u);
    }
    EXPECT_GE(a.reserved(), 256u);
}

TEST(DType, Bf16RoundsToNearestEven) {
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1).
    EXPECT_EQ(round_to_bf16(1.0f + std::ldexp(1.0f, -8)), 1.0f);
    EXPECT_EQ(round_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Tensor, QuantizeRowsI8) {
    Tensor w  = Tensor::empty(DType::F32, {2, 3});
    float v[] = {1.0f, -0.5f, 0.25f, 0.0f, 0.0f, 0.0f};
    std::copy(v, v + 6, w.f32());
    Tensor q = quantize_rows_i8(w);
    EXPECT_FLOAT_EQ(q.scales()[0], 1.0f / 127.0f);
    EXPECT_EQ(q.i8()[0], 127);
    EXPECT_EQ(q.i8()[1], -64);  // -63.5 rounds half to even
    EXPECT_EQ(q.scales()[1], 1.0f);
    Tensor back = to_f32(q);
    EXPECT_NEAR(back.f32()[2], 0.25f, 0.5f / 127);
}

TEST(Crypto, Sha256KnownVector) {
    EXPECT_EQ(to_hex(sha256("abc", 3)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, Ed25519SignVerify) {
    PublicKey pk;
    SecretKey sk;
    ed25519_keypair(&pk, &sk);
    Signature sig = ed25519_sign(sk, "firmware", 8);
    EXPECT_TRUE(ed25519_verify(pk, sig, "firmware", 8));
    EXPECT_FALSE(ed25519_verify(pk, sig, "firmwarf", 8));
}

TEST(Cpu, SelectionRespectsCeiling) {
    Isa detected = cpu_features().detected;
    set_isa_ceiling(Isa::Scalar);
    EXPECT_EQ(selected_isa(), Isa::Scalar);
    set_isa_ceiling(Isa::Amx);
    EXPECT_EQ(selected_isa(), detected);
    Isa parsed;
    EXPECT_TRUE(parse_isa("avx512", &parsed));
    EXPECT_EQ(parsed, Isa::Avx512);
    EXPECT_FALSE(parse_isa("neon", &parsed));
}

// The outermost scope gives a big pass's memory back; small passes keep theirs for reuse.
TEST(Arena, OutermostScopeTrimsWhatExceedsTheRetainLimit) {
    Arena & a = thread_arena();
    ASSERT_EQ(a.used(), 0u);
    {
        ArenaScope pass;
        float * big = pass.alloc<float>(kArenaRetainBytes);  // 4× the limit in bytes
        big[0] = big[kArenaRetainBytes - 1] = 1.0f;
        EXPECT_GE(a.reserved(), kArenaRetainBytes * sizeof(float));
    }
    EXPECT_EQ(a.reserved(), 0u);
    {
        ArenaScope pass;
        pass.alloc<float>(1000);
    }
    const size_t kept = a.reserved();
    EXPECT_GT(kept, 0u);
    EXPECT_LE(kept, kArenaRetainBytes);
    {
        ArenaScope pass;
        pass.alloc<float>(1000);
    }
    EXPECT_EQ(a.reserved(), kept);  // reused, not mapped again
}

TEST(Arena, ScopesNestAndRelease) {
    Arena & a     = thread_arena();
    size_t before = a.used();
    {
        ArenaScope outer;
        float * x  = outer.alloc<float>(1000);
        x[999]     = 1.0f;
        size_t mid = a.used();
        {
            ArenaScope inner;
            inner.alloc<float>(5 << 20);  // forces a new chunk
            EXPECT_GT(a.used(), mid);
        }
        EXPECT_EQ(a.used(), mid);
        EXPECT_EQ(x[999], 1.0f);  // the outer allocation survived the inner scope
    }
    EXPECT_EQ(a.used(), before);
}
