// A fixed pool of worker threads for data-parallel loops inside kernels.
//
//     ThreadPool::global().parallel_for(n_rows, [&](int64_t begin, int64_t end) { … });
//
// Size: M4_THREADS if set, else std::thread::hardware_concurrency(). The calling thread takes
// part in the work, so a pool of size 1 runs everything inline. parallel_for calls made from a
// worker (nested parallelism) also run inline, which keeps the pool deadlock-free.
//
// Waking a thread through a condition variable costs tens of microseconds (a futex round trip
// and a reschedule), as long as a whole decode-sized matmul. So after each job the workers, and
// the caller waiting for them, spin for up to kSpinMicros before they sleep: a model's
// back-to-back kernel calls then hand work over in well under a microsecond, and an idle pool
// still sleeps (the same trade OpenMP runtimes make with their block time, only much shorter).
#pragma once

#include <atomic>
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

    // How long a worker (or a caller waiting for its workers) spins before it sleeps.
    static constexpr int64_t kSpinMicros = 500;

  private:
    void worker_loop(int index);

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_work_, cv_done_;
    const std::function<void(int64_t, int64_t)> * job_ = nullptr;
    int64_t job_n_ = 0, job_chunk_ = 0;
    int job_parts_ = 0;
    // Written under mu_ (so sleepers miss no change) and read without it by spinners.
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex call_mu_;  // one parallel_for at a time from outside
};

// Threads to use by default: M4_THREADS or the hardware's count.
int default_thread_count();

}  // namespace m4
