// The scheduler: admission (bounded queues, per-app pending and rate quotas → BUSY with a
// retry-after), priorities (foreground before background), fairness (round robin across apps),
// deadlines and cancellation, and batching: jobs with the same batch key — same path and
// modality, any app, any adapter — are served by one forward pass.
//
// The loop of each worker: drop expired / cancelled jobs (answering them), pick the next app in
// round-robin order at the highest non-empty priority, take its oldest job, then add jobs with the
// same batch key from the other apps (one per app per round) up to max_batch_items, and run the
// executor on the batch.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace m4::svc {

using Clock = std::chrono::steady_clock;

enum class JobEnd { Expired, Cancelled, Shutdown };

struct Job {
    virtual ~Job() = default;
    uint64_t          id       = 0;
    uint32_t          uid      = 0;
    int               priority = 0;  // 0 foreground, 1 background
    Clock::time_point arrival  = Clock::now();
    Clock::time_point deadline = Clock::time_point::max();
    std::string       batch_key;  // equal keys may share a forward pass
    int               items = 1;
    std::atomic<bool> cancelled{false};
    // Called once when the job leaves the queue without running.
    std::function<void(JobEnd)> on_dropped;
};

struct SchedulerLimits {
    size_t max_queued_items      = 512;   // over all apps and priorities
    size_t max_pending_per_app   = 128;   // queued items per app
    double rate_per_app          = 0;     // requests per second per app (0: unlimited)
    double burst_per_app         = 32;    // token-bucket depth
    int    max_batch_items       = 64;
};

struct Admission {
    bool     ok             = true;
    uint32_t retry_after_ms = 0;
    std::string reason;
};

class Scheduler {
  public:
    using Executor = std::function<void(std::vector<std::shared_ptr<Job>> & batch)>;
    Scheduler(const SchedulerLimits & limits, Executor executor, int workers = 1);
    ~Scheduler();

    Admission submit(const std::shared_ptr<Job> & job);
    // Two-step admission, for requests whose inputs are prepared before they can run: reserve()
    // counts `items` against the queue and the app's share (and its rate) now, so a request is
    // refused BUSY before any decoding; enqueue_reserved() later queues the prepared job without a
    // second check, and release() gives the reservation back when preparation failed.
    Admission reserve(uint32_t uid, int items);
    void      enqueue_reserved(const std::shared_ptr<Job> & job);
    void      release(uint32_t uid, int items);
    // Stops admitting, answers every queued job with Shutdown, waits for running batches to finish.
    void     shutdown();
    size_t   queued(int priority) const;
    uint64_t batches_run() const { return batches_.load(); }

  private:
    struct AppQueue {
        std::deque<std::shared_ptr<Job>> jobs[2];
        size_t                           items = 0;     // queued
        size_t                           reserved = 0;  // admitted, still being prepared
        double                           tokens = 0;
        bool                             fresh  = true;  // a new app starts with a full bucket
        Clock::time_point                refill = Clock::now();
    };
    void worker();
    Admission admit_locked(uint32_t uid, int items);
    bool take_batch(std::vector<std::shared_ptr<Job>> * batch, std::vector<std::shared_ptr<Job>> * dropped);

    SchedulerLimits                limits_;
    Executor                       executor_;
    mutable std::mutex             mu_;
    std::condition_variable        cv_;
    std::map<uint32_t, AppQueue>   apps_;
    uint32_t                       rr_next_ = 0;  // round-robin cursor (uid)
    size_t                         queued_items_ = 0;
    size_t                         reserved_items_ = 0;
    bool                           stopping_     = false;
    std::vector<std::thread>       workers_;
    std::atomic<uint64_t>          batches_{0};
};

}  // namespace m4::svc
