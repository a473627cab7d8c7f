// The scheduler alone, with an executor the test controls: priorities, fairness, cross-app
// batching, deadlines, cancellation, BUSY (queue, per-app pending, rate) and shutdown.
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "service/config.h"
#include "service/scheduler.h"

using namespace m4::svc;

namespace {

// An executor that records batches and can be held closed.
struct Recorder {
    std::mutex                             mu;
    std::condition_variable                cv;
    bool                                   open = true;
    std::vector<std::vector<uint64_t>>     batches;
    void operator()(std::vector<std::shared_ptr<Job>> & b) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return open; });
        std::vector<uint64_t> ids;
        for (auto & j : b) ids.push_back(j->id);
        batches.push_back(ids);
        cv.notify_all();
    }
    void hold() {
        std::lock_guard<std::mutex> lock(mu);
        open = false;
    }
    void release() {
        std::lock_guard<std::mutex> lock(mu);
        open = true;
        cv.notify_all();
    }
    size_t wait_batches(size_t n) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, std::chrono::seconds(5), [&] { return batches.size() >= n; });
        return batches.size();
    }
};

std::shared_ptr<Job> job(uint64_t id, uint32_t uid, int priority = 0, const std::string & key = "k", int items = 1) {
    auto j       = std::make_shared<Job>();
    j->id        = id;
    j->uid       = uid;
    j->priority  = priority;
    j->batch_key = key;
    j->items     = items;
    return j;
}

// Blocks the single worker inside the executor with a first job, so later jobs queue up.
void occupy_worker(Scheduler & s, Recorder & rec) {
    rec.hold();
    ASSERT_TRUE(s.submit(job(999, 99, 0, "block")).ok);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace

TEST(Scheduler, ForegroundFirstThenRoundRobinAcrossApps) {
    Recorder        rec;
    SchedulerLimits lim;
    lim.max_batch_items = 1;
    Scheduler s(lim, [&](auto & b) { rec(b); });
    occupy_worker(s, rec);
    // App 1 floods the queue before apps 2 and 3 ask; a background job arrives first of all.
    ASSERT_TRUE(s.submit(job(50, 1, /*background*/ 1)).ok);
    for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(s.submit(job(10 + i, 1)).ok);
    ASSERT_TRUE(s.submit(job(21, 2)).ok);
    ASSERT_TRUE(s.submit(job(31, 3)).ok);
    rec.release();
    ASSERT_EQ(rec.wait_batches(7), 7u);
    std::vector<uint64_t> order;
    for (size_t i = 1; i < rec.batches.size(); ++i) order.push_back(rec.batches[i][0]);
    // Apps alternate (1, 2, 3, 1, 1) and the background job runs last.
    EXPECT_EQ(order, (std::vector<uint64_t>{11, 21, 31, 12, 13, 50}));
}

TEST(Scheduler, SameKeyJobsOfDifferentAppsShareABatch) {
    Recorder        rec;
    SchedulerLimits lim;
    lim.max_batch_items = 8;
    Scheduler s(lim, [&](auto & b) { rec(b); });
    occupy_worker(s, rec);
    ASSERT_TRUE(s.submit(job(1, 1, 0, "encoder/image")).ok);
    ASSERT_TRUE(s.submit(job(2, 2, 0, "encoder/image")).ok);
    ASSERT_TRUE(s.submit(job(3, 3, 0, "backbone/text")).ok);
    ASSERT_TRUE(s.submit(job(4, 2, 0, "encoder/image")).ok);
    rec.release();
    ASSERT_EQ(rec.wait_batches(3), 3u);
    EXPECT_EQ(rec.batches[1], (std::vector<uint64_t>{1, 2, 4}));
    EXPECT_EQ(rec.batches[2], (std::vector<uint64_t>{3}));
}

TEST(Scheduler, ExpiredAndCancelledJobsAreAnsweredNotRun) {
    Recorder  rec;
    Scheduler s(SchedulerLimits{}, [&](auto & b) { rec(b); });
    occupy_worker(s, rec);
    std::mutex           mu;
    std::vector<JobEnd>  ends;
    auto                 late = job(1, 1);
    late->deadline          = Clock::now() + std::chrono::milliseconds(1);
    late->on_dropped        = [&](JobEnd e) { std::lock_guard<std::mutex> l(mu); ends.push_back(e); };
    auto cancelled          = job(2, 1);
    cancelled->on_dropped   = late->on_dropped;
    ASSERT_TRUE(s.submit(late).ok);
    ASSERT_TRUE(s.submit(cancelled).ok);
    ASSERT_TRUE(s.submit(job(3, 1)).ok);
    cancelled->cancelled.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rec.release();
    ASSERT_EQ(rec.wait_batches(2), 2u);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(rec.batches.size(), 2u);
    EXPECT_EQ(rec.batches[1], (std::vector<uint64_t>{3}));
    std::lock_guard<std::mutex> l(mu);
    ASSERT_EQ(ends.size(), 2u);
    EXPECT_TRUE((ends[0] == JobEnd::Expired && ends[1] == JobEnd::Cancelled) ||
                (ends[1] == JobEnd::Expired && ends[0] == JobEnd::Cancelled));
}

TEST(Scheduler, BusyWhenQueueOrQuotaIsFull) {
    Recorder        rec;
    SchedulerLimits lim;
    lim.max_queued_items    = 4;
    lim.max_pending_per_app = 3;
    Scheduler s(lim, [&](auto & b) { rec(b); });
    occupy_worker(s, rec);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.submit(job(i, 1)).ok);
    Admission a = s.submit(job(10, 1));
    EXPECT_FALSE(a.ok);
    EXPECT_GT(a.retry_after_ms, 0u);
    EXPECT_NE(a.reason.find("this app"), std::string::npos);
    ASSERT_TRUE(s.submit(job(11, 2)).ok);  // another app still gets in
    a = s.submit(job(12, 3));
    EXPECT_FALSE(a.ok);
    EXPECT_NE(a.reason.find("queue full"), std::string::npos);
    rec.release();
}

TEST(Scheduler, RateQuotaPerApp) {
    Recorder        rec;
    SchedulerLimits lim;
    lim.rate_per_app  = 10;  // 10 requests/s, burst 2
    lim.burst_per_app = 2;
    Scheduler s(lim, [&](auto & b) { rec(b); });
    EXPECT_TRUE(s.submit(job(1, 1)).ok);
    EXPECT_TRUE(s.submit(job(2, 1)).ok);
    Admission a = s.submit(job(3, 1));
    EXPECT_FALSE(a.ok);
    EXPECT_GE(a.retry_after_ms, 50u);  // about 100 ms until the next token
    EXPECT_TRUE(s.submit(job(4, 2)).ok);  // quotas are per app
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_TRUE(s.submit(job(5, 1)).ok);
}

TEST(Scheduler, ShutdownAnswersQueuedJobs) {
    Recorder rec;
    auto     s = std::make_unique<Scheduler>(SchedulerLimits{}, [&](auto & b) { rec(b); });
    occupy_worker(*s, rec);
    std::atomic<int> shut{0};
    for (int i = 0; i < 5; ++i) {
        auto j        = job(i, 1);
        j->on_dropped = [&](JobEnd e) { shut += e == JobEnd::Shutdown; };
        ASSERT_TRUE(s->submit(j).ok);
    }
    std::thread stopper([&] { s->shutdown(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rec.release();  // the running batch finishes
    stopper.join();
    EXPECT_EQ(shut.load(), 5);
    EXPECT_FALSE(s->submit(job(9, 1)).ok);
}

// The daemon config's KV cache storage: f32 by default, bf16 on request, anything else refused
// with the file and the key named.
TEST(ServiceConfig, KvDtypeIsParsedAndCheckedWhenTheFileIsRead) {
    const std::string dir = ::testing::TempDir();
    auto write            = [&](const std::string & name, const std::string & json) {
        std::ofstream(dir + name) << json;
        return dir + name;
    };
    auto plain = load_service_config(write("kv_default.json", "{}"));
    ASSERT_TRUE(plain.is_ok()) << plain.status().message();
    EXPECT_EQ(plain->kv_dtype, m4::DType::F32);
    auto compact = load_service_config(write("kv_bf16.json", R"({"kv_dtype": "bf16"})"));
    ASSERT_TRUE(compact.is_ok()) << compact.status().message();
    EXPECT_EQ(compact->kv_dtype, m4::DType::BF16);
    const std::string bad_path = write("kv_bad.json", R"({"kv_dtype": "i8"})");
    auto bad                   = load_service_config(bad_path);
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find(bad_path), std::string::npos) << bad.status().message();
    EXPECT_NE(bad.status().message().find("kv_dtype"), std::string::npos) << bad.status().message();
}
