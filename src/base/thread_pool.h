// A fixed pool of worker threads for data-parallel loops inside kernels.
//
//     ThreadPool::global().parallel_for(n_rows, [&](int64_t begin, int64_t end) { … });
//
// Size: M4_THREADS if set, else std::thread::hardware_concurrency(). The calling thread takes
// part in the work, so a pool of size 1 runs everything inline. parallel_for calls made from a
// worker (nested parallelism) also run inline, which keeps the pool deadlock-free.
//
// A job is cut into chunks (up to kChunksPerThread per thread) that the caller and the workers
// claim from one shared counter. Nobody waits for a thread that has not shown up: the caller
// claims chunks like any worker and, if no worker wakes, does them all itself; it then waits only
// for chunks a worker has claimed and not finished. So a worker the OS has descheduled (a phone's
// CPU is shared with apps) costs at most the chunk it holds, not a whole fork-join.
//
// Waking a thread through the kernel costs tens of microseconds, as long as a decode-sized
// matmul, so after a job the workers (and a caller waiting for a worker's last chunk) spin before
// they sleep on a futex. The spin is bounded and adaptive: a worker that came late to its last job
// (the CPU is oversubscribed: its spinning only takes time from the threads doing the work)
// spins less, down to not at all; one that arrives promptly spins again, up to kSpinMicros.
// Adaptive pools (the global one unless M4_THREADS fixes the count) also choose, per call site,
// between all threads and the caller alone: they time both (a call site = the lambda's type and
// the job's size), run the faster, and re-time the other every 16th call, so a pool on a machine
// whose cores are taken by others falls back to one thread where that is faster, and comes back
// when it is not. Before a site is timed, the machine's load decides which to try first: every
// kSampleMicros the caller reads how many threads are runnable (/proc/loadavg), less its own, and
// width() is the number of cores they leave (at least 1).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace m4 {

class ThreadPool {
  public:
    // adaptive: may run jobs on fewer threads while the machine is oversubscribed (above).
    // before_claim (tests only): called by worker i (1 … n_threads-1) each time it has seen a new
    // job and before it claims a chunk of it; a test blocks it there to play a descheduled worker.
    // others_runnable (tests only): replaces /proc/loadavg as the count of other runnable threads.
    explicit ThreadPool(int n_threads, bool adaptive = false, std::function<void(int)> before_claim = {},
                        std::function<double()> others_runnable = {});
    ~ThreadPool();
    ThreadPool(const ThreadPool &)             = delete;
    ThreadPool & operator=(const ThreadPool &) = delete;

    // The pool the kernels use: default_thread_count() threads, adaptive unless M4_THREADS is set.
    static ThreadPool & global();
    int size() const { return n_threads_; }
    // Cores the other runnable threads leave this pool (adaptive pools; size() for a fixed one).
    int width() const { return width_.load(std::memory_order_relaxed); }
    bool adaptive() const { return adaptive_; }

    // Replaces the workers (benchmarks compare thread counts in one process). Must not be called
    // while a parallel_for of this pool runs. An adaptive pool reset to the thread count its call
    // sites were timed with keeps their timings, as a running service would.
    void reset(int n_threads, bool adaptive);

    // Splits [0, n) into contiguous chunks of at least `grain` items and runs fn(begin, end) on
    // each, on any thread of the pool; returns when all are done. An adaptive pool times each call
    // site (fn's type, n, grain, site_hint) apart: callers whose work per item varies with sizes
    // the pool cannot see (a GEMM split into as many parts as threads) pass those sizes as
    // site_hint, so that a 197×3072 product and a one-row decode step are not timed as one site.
    void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)> & fn, int64_t grain = 1,
                      uint64_t site_hint = 0);
    // A site_hint from up to three sizes. (Out of line: the AVX-512 kernels include this header,
    // and an inline body compiled with their flags could be the copy the linker keeps.)
    static uint64_t site_hint(int64_t a, int64_t b = 0, int64_t c = 0);

    // Counters since construction or reset(), for tests and `m4fw bench contention`.
    struct Stats {
        uint64_t jobs          = 0;  // parallel_for calls that published work to the workers
        uint64_t inline_jobs   = 0;  // calls an adaptive pool ran on the caller alone
        uint64_t caller_chunks = 0;  // chunks of published jobs the caller ran
        uint64_t worker_chunks = 0;  // … and the workers ran
        uint64_t explored      = 0;  // calls run in the mode their site's timings did not prefer
        uint64_t caller_sleeps = 0;  // waits for a worker's chunk that ended in a futex sleep
        uint64_t load_narrowed = 0;  // … of them, because the machine was busy (site not timed yet)
    };
    Stats stats() const;

    // The longest a worker (or a caller waiting for a worker's chunk) spins before it sleeps.
    static constexpr int64_t kSpinMicros   = 500;
    static constexpr int kChunksPerThread  = 4;
    static constexpr int64_t kSampleMicros = 2000;

  private:
    void start_workers();
    void stop_workers();
    void worker_loop(int index);
    bool run_chunks(uint32_t gen, bool is_caller, int64_t * ran);
    // A call site's last kWindow timings in each mode; the mode's estimate is their median, so one
    // call that the scheduler preempted (100× slower) does not decide the mode of the next ones.
    static constexpr int kWindow = 5;
    struct Site {
        uint64_t key = 0;
        std::array<int64_t, kWindow> wide_ns{}, alone_ns{};  // rings, newest at (n - 1) % kWindow
        uint32_t n_wide = 0, n_alone = 0, calls = 0;
    };
    static double median_ns(const std::array<int64_t, kWindow> & ring, uint32_t n);
    static constexpr size_t kSiteWays = 8;
    Site * find_site(uint64_t key);
    bool choose_alone(Site & site, int width);
    void record(Site & site, bool alone, int64_t ns);
    void sample_load(int64_t now);
    double read_others_runnable();

    int n_threads_;
    bool adaptive_;
    const std::function<void(int)> before_claim_;
    const std::function<double()> others_runnable_;
    std::atomic<int> width_{1};  // workers with index ≥ width_ sit a job out
    std::vector<std::thread> workers_;

    // The current job. state_ packs (generation:32 | next chunk:16 | chunks:16); a chunk is
    // claimed by a CAS that also checks the generation, so a late worker can never claim a chunk
    // of a job other than the one it saw. The fields below are written before state_ publishes a
    // generation and are read only by a thread holding a claimed chunk of it.
    alignas(64) std::atomic<uint64_t> state_{0};
    const std::function<void(int64_t, int64_t)> * job_ = nullptr;
    int64_t job_n_ = 0, job_chunk_ = 0;
    std::atomic<int64_t> publish_ns_{0};
    alignas(64) std::atomic<uint32_t> done_{0};  // chunks finished (futex word of the caller)
    std::atomic<uint32_t> caller_waiting_{0};
    alignas(64) std::atomic<uint32_t> wake_gen_{0};  // futex word of sleeping workers
    std::atomic<uint32_t> sleepers_{0};
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> worker_chunks_{0};

    // Caller-side adaptation (under call_mu_).
    std::array<Site, 1024> sites_{};  // open addressing over kSiteWays slots
    int64_t next_sample_ns_ = 0;
    double others_[8]       = {};  // the last samples of other runnable threads
    int n_samples_          = 0;
    int loadavg_fd_         = -1;
    Stats stats_;
    int sites_threads_ = 0;  // the thread count the sites were timed with (kept across reset())
    std::mutex call_mu_;     // one parallel_for at a time from outside
};

// Threads to use by default: M4_THREADS or the hardware's count.
int default_thread_count();

}  // namespace m4
