#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "base/arena.h"
#include "base/cpu.h"
#include "base/crypto.h"
#include "base/thread_pool.h"
#include "base/utf8.h"
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

// A worker the OS has descheduled is played by one blocked in before_claim until released.
struct BlockedWorker {
    std::mutex mu;
    std::condition_variable cv;
    bool released = false;
    std::atomic<int> arrived{0};
    void block(int) {
        arrived++;
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return released; });
    }
    void release() {
        {
            std::lock_guard<std::mutex> lock(mu);
            released = true;
        }
        cv.notify_all();
    }
};

// Per-item work whose result depends only on the item, so any split gives the same output.
void square_roots(int64_t b, int64_t e, std::vector<double> & out) {
    for (int64_t i = b; i < e; ++i) {
        double x = 0;
        for (int k = 1; k <= 50; ++k) x += std::sqrt(double(i * k + 1));
        out[i] = x;
    }
}

std::vector<double> serial_square_roots(int64_t n) {
    std::vector<double> out(n);
    square_roots(0, n, out);
    return out;
}

// The old pool gave each worker a fixed part and waited for it: a worker that never ran held up
// every job forever. Now the caller claims the parts nobody has claimed and finishes alone.
TEST(ThreadPool, JobCompletesWhileAWorkerNeverShowsUp) {
    BlockedWorker blocked;
    ThreadPool pool(3, /*adaptive=*/false, [&](int w) {
        if (w == 2) blocked.block(w);
    });
    const std::vector<double> want = serial_square_roots(5001);
    auto result                    = std::async(std::launch::async, [&] {
        std::vector<std::vector<double>> outs;
        for (int rep = 0; rep < 30; ++rep) {
            std::vector<double> out(5001, -1.0);
            pool.parallel_for(5001, [&](int64_t b, int64_t e) { square_roots(b, e, out); });
            outs.push_back(std::move(out));
        }
        return outs;
    });
    const bool finished            = result.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    EXPECT_TRUE(finished) << "parallel_for waited for a worker that was blocked";
    EXPECT_EQ(blocked.arrived.load(), 1);
    blocked.release();  // lets a hung pool finish, so the test ends either way
    for (const auto & out : result.get()) EXPECT_EQ(out, want);
    const ThreadPool::Stats st = pool.stats();
    EXPECT_EQ(st.jobs, 30u);
    EXPECT_EQ(st.inline_jobs, 0u);  // a fixed pool never narrows
    EXPECT_EQ(st.explored, 0u);
    // After the release the blocked worker claims chunks again.
    std::vector<double> out(5001, -1.0);
    pool.parallel_for(5001, [&](int64_t b, int64_t e) { square_roots(b, e, out); });
    EXPECT_EQ(out, want);
}

// An adaptive pool times each call site with and without its workers: where the worker is slow
// (it sleeps inside every chunk it takes, as a descheduled thread would) the caller runs the site
// alone; it keeps re-timing the workers, so once they are fast again they take chunks again.
TEST(ThreadPool, AdaptivePoolRunsASiteAloneWhereItsWorkersAreSlow) {
    std::atomic<bool> slow{true};
    const std::thread::id caller = std::this_thread::get_id();
    ThreadPool pool(2, /*adaptive=*/true, {}, [] { return 0.0; });
    const std::vector<double> want = serial_square_roots(20000);
    std::vector<double> out(20000);
    auto job = [&] {
        std::fill(out.begin(), out.end(), -1.0);
        pool.parallel_for(20000, [&](int64_t b, int64_t e) {
            if (slow && std::this_thread::get_id() != caller)
                std::this_thread::sleep_for(std::chrono::milliseconds(30));
            square_roots(b, e, out);
        });
        ASSERT_EQ(out, want);
    };
    for (int rep = 0; rep < 64; ++rep) job();
    ThreadPool::Stats st = pool.stats();
    EXPECT_GE(st.inline_jobs, 32u) << "the caller should run most calls alone";
    slow                         = false;
    const uint64_t worker_chunks = st.worker_chunks;
    for (int rep = 0; rep < 2000 && pool.stats().worker_chunks == worker_chunks; ++rep) job();
    EXPECT_GT(pool.stats().worker_chunks, worker_chunks) << "the workers should be timed again";
}

// One call that the scheduler stalls (here: 150 ms in one chunk) must not decide the mode of the
// calls after it: the site's estimate is the median of its recent timings, not a running mean
// that the outlier would dominate for hundreds of calls. The caller alone is made slow (10 ms a
// call) so that the workers' mode is the right choice on any machine.
TEST(ThreadPool, AdaptivePoolIsNotPinnedByOneStalledCall) {
    ThreadPool pool(2, /*adaptive=*/true, {}, [] { return 0.0; });
    constexpr int64_t n            = 20000;
    const std::vector<double> want = serial_square_roots(n);
    std::vector<double> out(n);
    std::atomic<bool> stall_once{false};
    auto job = [&] {
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
            if (e - b == n)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));  // alone
            else if (stall_once.exchange(false))
                std::this_thread::sleep_for(std::chrono::milliseconds(150));
            square_roots(b, e, out);
        });
        ASSERT_EQ(out, want);
    };
    for (int rep = 0; rep < 12; ++rep) job();  // both modes timed; the workers' mode wins
    stall_once = true;
    job();
    ASSERT_FALSE(stall_once) << "the stalled call should have run in the workers' mode";
    const uint64_t inline_before = pool.stats().inline_jobs;
    for (int rep = 0; rep < 20; ++rep) job();
    EXPECT_LE(pool.stats().inline_jobs - inline_before, 2u)
        << "after one stalled call the site should stay in the workers' mode";
}

// Many call sites at once (a model has dozens of GEMM shapes): each keeps its own timings. With
// every core taken by others, a site's first calls run on the caller alone (load_narrowed) until
// it is timed; a site that another one kept evicting would stay in that first probe forever.
TEST(ThreadPool, AdaptivePoolKeepsManySitesApart) {
    const double cpus = std::max(1u, std::thread::hardware_concurrency());
    ThreadPool pool(2, /*adaptive=*/true, {}, [&] { return cpus; });
    constexpr int kSites = 300;
    std::vector<int64_t> sums(kSites);
    for (int round = 0; round < 8; ++round)
        for (int i = 0; i < kSites; ++i) {
            std::atomic<int64_t> sum{0};
            pool.parallel_for(1000 + i, [&](int64_t b, int64_t e) { sum += e - b; });
            ASSERT_EQ(sum.load(), 1000 + i);
        }
    EXPECT_LE(pool.stats().load_narrowed, uint64_t{2} * kSites) << "sites evicted each other and were probed again";
}

// width() is the cores that other runnable threads leave; while it is 1, a call site that has not
// been timed yet starts on the caller alone.
TEST(ThreadPool, AdaptivePoolSeesTheCoresOthersLeave) {
    const double cpus = std::max(1u, std::thread::hardware_concurrency());
    std::atomic<double> others{cpus - 1};
    ThreadPool pool(2, /*adaptive=*/true, {}, [&] { return others.load(); });
    const std::vector<double> want = serial_square_roots(3000);
    std::vector<double> out(3000);
    pool.parallel_for(3000, [&](int64_t b, int64_t e) { square_roots(b, e, out); });
    EXPECT_EQ(out, want);
    EXPECT_EQ(pool.width(), 1);
    EXPECT_EQ(pool.stats().load_narrowed, 1u);
    EXPECT_EQ(pool.stats().worker_chunks, 0u);
    others         = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    while (std::chrono::steady_clock::now() < end) {
        pool.parallel_for(3000, [&](int64_t b, int64_t e) { square_roots(b, e, out); });
        ASSERT_EQ(out, want);
    }
    EXPECT_EQ(pool.width(), std::min(2, static_cast<int>(cpus)));
}

TEST(ThreadPool, ResetChangesTheThreadCount) {
    ThreadPool pool(2);
    pool.reset(3, /*adaptive=*/true);
    EXPECT_EQ(pool.size(), 3);
    EXPECT_TRUE(pool.adaptive());
    const std::vector<double> want = serial_square_roots(777);
    std::vector<double> out(777, -1.0);
    pool.parallel_for(777, [&](int64_t b, int64_t e) { square_roots(b, e, out); });
    EXPECT_EQ(out, want);
    pool.reset(1, /*adaptive=*/false);
    EXPECT_EQ(pool.size(), 1);
    std::fill(out.begin(), out.end(), -1.0);
    pool.parallel_for(777, [&](int64_t b, int64_t e) { square_roots(b, e, out); });
    EXPECT_EQ(out, want);
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

// Strict UTF-8 (base/utf8.h): the offset of the first bad byte, or kUtf8Valid.
TEST(Utf8, ValidTextPasses) {
    EXPECT_EQ(utf8_invalid_at(""), kUtf8Valid);
    EXPECT_EQ(utf8_invalid_at("a large red circle"), kUtf8Valid);
    EXPECT_EQ(utf8_invalid_at("Grüße, 東京, \xF0\x9F\x98\x80 and \xF4\x8F\xBF\xBF"), kUtf8Valid);  // up to U+10FFFF
}

TEST(Utf8, EachMalformedFormIsFoundAtItsOffset) {
    EXPECT_EQ(utf8_invalid_at("ab\x80"), 2u);                             // a lone continuation byte
    EXPECT_EQ(utf8_invalid_at("a\xC0\x80"), 1u);                          // overlong NUL
    EXPECT_EQ(utf8_invalid_at("\xC1\xBF"), 0u);                           // overlong 2-byte
    EXPECT_EQ(utf8_invalid_at("xy\xE0\x9F\xBF"), 2u);                     // overlong 3-byte
    EXPECT_EQ(utf8_invalid_at("\xED\xA0\x80"), 0u);                       // a UTF-16 surrogate
    EXPECT_EQ(utf8_invalid_at("ok\xF0\x8F\xBF\xBF"), 2u);                 // overlong 4-byte
    EXPECT_EQ(utf8_invalid_at("\xF4\x90\x80\x80"), 0u);                   // above U+10FFFF
    EXPECT_EQ(utf8_invalid_at("\xF5\x80\x80\x80"), 0u);                   // no such lead byte
    EXPECT_EQ(utf8_invalid_at("abc\xE2\x82"), 3u);                        // truncated at the end
    EXPECT_EQ(utf8_invalid_at("\xE2\x28\xA1"), 0u);                       // a bad continuation
    EXPECT_EQ(utf8_invalid_at(std::string_view("a\0b", 3)), kUtf8Valid);  // NUL is a character
    EXPECT_EQ(utf8_invalid_at("\x89PNG\r\n"), 0u);                        // a PNG's first byte
}
