// A fixed pool of worker threads for data-parallel loops inside kernels.
//
//     ThreadPool::global().parallel_for(n_rows, [&](int64_t begin, int64_t end) { … });
//
// Size: M4_THREADS if set, else std::thread::hardware_concurrency(). The calling thread takes
// part in the work, so a pool of size 1 runs everything inline. parallel_for calls made from a
// worker (nested parallelism) also run inline, which keeps the pool deadlock-free.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace m4 {

class ThreadPool {
  public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &)             = delete;
    ThreadPool & operator=(const ThreadPool &) = delete;

    static ThreadPool & global();
    int size() const { return n_threads_; }

    // Splits [0, n) into at most size() contiguous chunks of at least `grain` items and runs
    // fn(begin, end) on each; returns when all are done.
    void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)> & fn, int64_t grain = 1);

  private:
    void worker_loop(int index);

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_work_, cv_done_;
    const std::function<void(int64_t, int64_t)> * job_ = nullptr;
    int64_t job_n_ = 0, job_chunk_ = 0;
    int job_parts_       = 0;
    uint64_t generation_ = 0;
    int pending_         = 0;
    bool stop_           = false;
    std::mutex call_mu_;  // one parallel_for at a time from outside
};

// Threads to use by default: M4_THREADS or the hardware's count.
int default_thread_count();

}  // namespace m4
