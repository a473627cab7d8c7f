#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace m4 {
namespace {
thread_local bool t_in_worker = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Spins until done() or kSpinMicros have passed; returns done().
template <class Done>
bool spin_until(const Done & done) {
    using Clock        = std::chrono::steady_clock;
    const auto give_up = Clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (done()) return true;
            cpu_relax();
        }
        if (Clock::now() >= give_up) return done();
    }
}
}  // namespace

int default_thread_count() {
    if (const char * env = std::getenv("M4_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) return std::min(n, 256);
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

ThreadPool & ThreadPool::global() {
    static ThreadPool pool(default_thread_count());
    return pool;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true, std::memory_order_release);
    }
    cv_work_.notify_all();
    for (auto & t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
    t_in_worker       = true;
    uint64_t seen_gen = 0;
    for (;;) {
        auto has_news = [&] {
            return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen_gen;
        };
        if (!spin_until(has_news)) {
            std::unique_lock<std::mutex> lock(mu_);
            cv_work_.wait(lock, has_news);
        }
        if (stop_.load(std::memory_order_acquire)) return;
        const std::function<void(int64_t, int64_t)> * job;
        int64_t b = 0, e = 0;
        {
            // The job's fields are read under mu_: the caller writes them under it before it
            // bumps the generation, and cannot start the next job before this one's pending_ is 0.
            std::lock_guard<std::mutex> lock(mu_);
            seen_gen = generation_.load(std::memory_order_relaxed);
            if (index >= job_parts_) continue;
            job = job_;
            b   = index * job_chunk_;
            e   = std::min(job_n_, b + job_chunk_);
        }
        (*job)(b, e);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mu_);  // the caller may be between its check and its wait
            cv_done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)> & fn, int64_t grain) {
    if (n <= 0) return;
    grain             = std::max<int64_t>(1, grain);
    int64_t max_parts = (n + grain - 1) / grain;
    int parts         = static_cast<int>(std::min<int64_t>(n_threads_, max_parts));
    if (parts <= 1 || t_in_worker) {
        fn(0, n);
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    int64_t chunk = (n + parts - 1) / parts;
    parts         = static_cast<int>((n + chunk - 1) / chunk);
    {
        std::lock_guard<std::mutex> lock(mu_);
        job_       = &fn;
        job_n_     = n;
        job_chunk_ = chunk;
        job_parts_ = parts;
        pending_.store(parts - 1, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    cv_work_.notify_all();
    t_in_worker = true;  // nested calls from fn run inline
    fn(0, std::min(n, chunk));
    t_in_worker   = false;
    auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(all_done)) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_done_.wait(lock, all_done);
    }
    std::lock_guard<std::mutex> lock(mu_);
    job_ = nullptr;
}

}  // namespace m4
