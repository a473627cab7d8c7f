#include "base/thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace m4 {
namespace {
thread_local bool t_in_worker = false;
}

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
        stop_ = true;
    }
    cv_work_.notify_all();
    for (auto & t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
    t_in_worker       = true;
    uint64_t seen_gen = 0;
    for (;;) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_work_.wait(lock, [&] { return stop_ || generation_ != seen_gen; });
        if (stop_) return;
        seen_gen = generation_;
        if (index >= job_parts_) continue;
        const auto * job = job_;
        int64_t b = index * job_chunk_, e = std::min(job_n_, b + job_chunk_);
        lock.unlock();
        (*job)(b, e);
        lock.lock();
        if (--pending_ == 0) cv_done_.notify_one();
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
        pending_   = parts - 1;
        ++generation_;
    }
    cv_work_.notify_all();
    t_in_worker = true;  // nested calls from fn run inline
    fn(0, std::min(n, chunk));
    t_in_worker = false;
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
}

}  // namespace m4
