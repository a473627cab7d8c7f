#include "base/thread_pool.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/status.h"

namespace m4 {
namespace {
thread_local bool t_in_worker = false;

// A worker that spun and still came this late (or a sleeping one woken this late) found the CPU
// taken by someone else: the machine is oversubscribed.
constexpr int64_t kLateSpinningNs = 50'000, kLateSleepingNs = 200'000;
constexpr int64_t kMinSpinNs = 10'000;
// An adaptive pool times each call site in both modes kProbeJobs times before it compares them,
// and re-times the mode it does not use every kExploreEvery calls of the site (more rarely when that
// mode was much slower).
constexpr uint32_t kProbeJobs = 2, kExploreEvery = 16;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// std::atomic<uint32_t> has the layout of a uint32_t, which is what the futex word must be.
void futex_wait(std::atomic<uint32_t> * word, uint32_t expected) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<uint32_t> * word, int n) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

// state_: generation (32 bits) | next chunk to claim (16) | chunks of the job (16).
constexpr uint64_t pack(uint32_t gen, uint32_t next, uint32_t chunks) {
    return (uint64_t{gen} << 32) | (uint64_t{next} << 16) | chunks;
}
constexpr uint32_t gen_of(uint64_t s) {
    return static_cast<uint32_t>(s >> 32);
}
constexpr uint32_t next_of(uint64_t s) {
    return static_cast<uint32_t>(s >> 16) & 0xFFFF;
}
constexpr uint32_t chunks_of(uint64_t s) {
    return static_cast<uint32_t>(s) & 0xFFFF;
}

// Spins until done() or budget_ns have passed; returns done().
template <class Done>
bool spin_until(int64_t budget_ns, const Done & done) {
    if (budget_ns <= 0) return done();
    const int64_t give_up = now_ns() + budget_ns;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (done()) return true;
            cpu_relax();
        }
        if (now_ns() >= give_up) return done();
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
    static ThreadPool pool(default_thread_count(), std::getenv("M4_THREADS") == nullptr);
    return pool;
}

ThreadPool::ThreadPool(int n_threads, bool adaptive, std::function<void(int)> before_claim,
                       std::function<double()> others_runnable)
    : n_threads_(std::max(1, n_threads)),
      adaptive_(adaptive),
      before_claim_(std::move(before_claim)),
      others_runnable_(std::move(others_runnable)) {
    if (adaptive_) sites_threads_ = n_threads_;
    start_workers();
}

ThreadPool::~ThreadPool() {
    stop_workers();
    if (loadavg_fd_ >= 0) close(loadavg_fd_);
}

void ThreadPool::start_workers() {
    M4_CHECK(n_threads_ <= 256);
    width_.store(n_threads_, std::memory_order_relaxed);
    n_samples_ = 0, next_sample_ns_ = 0;
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

void ThreadPool::stop_workers() {
    stop_.store(true, std::memory_order_seq_cst);
    wake_gen_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&wake_gen_, INT_MAX);
    for (auto & t : workers_) t.join();
    workers_.clear();
    stop_.store(false, std::memory_order_relaxed);
}

void ThreadPool::reset(int n_threads, bool adaptive) {
    std::lock_guard<std::mutex> lock(call_mu_);
    stop_workers();
    n_threads_ = std::max(1, n_threads);
    adaptive_  = adaptive;
    stats_     = Stats{};
    worker_chunks_.store(0, std::memory_order_relaxed);
    if (adaptive_ && sites_threads_ != n_threads_) sites_.fill(Site{});
    if (adaptive_) sites_threads_ = n_threads_;
    start_workers();
}

ThreadPool::Stats ThreadPool::stats() const {
    auto & self = const_cast<ThreadPool &>(*this);
    std::lock_guard<std::mutex> lock(self.call_mu_);
    Stats s         = stats_;
    s.worker_chunks = worker_chunks_.load(std::memory_order_relaxed);
    return s;
}

// Claims and runs chunks of generation `gen` until none is left; returns how many it ran.
bool ThreadPool::run_chunks(uint32_t gen, bool is_caller, int64_t * ran) {
    int64_t count = 0;
    uint64_t s    = state_.load(std::memory_order_acquire);
    for (;;) {
        if (gen_of(s) != gen || next_of(s) >= chunks_of(s)) break;
        if (!state_.compare_exchange_weak(s, s + (uint64_t{1} << 16), std::memory_order_acq_rel,
                                          std::memory_order_acquire))
            continue;
        // The chunk is ours, so the job cannot finish (and its fields cannot change) before we
        // count it done below.
        const int64_t b = int64_t{next_of(s)} * job_chunk_, e = std::min(job_n_, b + job_chunk_);
        (*job_)(b, e);
        ++count;
        const uint32_t chunks = chunks_of(s);
        const uint32_t done   = done_.fetch_add(1, std::memory_order_seq_cst) + 1;
        if (!is_caller && done == chunks && caller_waiting_.load(std::memory_order_seq_cst)) futex_wake(&done_, 1);
        s = state_.load(std::memory_order_acquire);
    }
    *ran = count;
    return count > 0;
}

void ThreadPool::worker_loop(int index) {
    t_in_worker     = true;
    uint32_t seen   = gen_of(state_.load(std::memory_order_acquire));
    int64_t spin_ns = kSpinMicros * 1000;
    auto has_news   = [&] {
        return stop_.load(std::memory_order_acquire) || gen_of(state_.load(std::memory_order_acquire)) != seen;
    };
    for (;;) {
        bool slept = false;
        if (!spin_until(spin_ns, has_news)) {
            slept = true;
            sleepers_.fetch_add(1, std::memory_order_seq_cst);
            for (;;) {
                const uint32_t w = wake_gen_.load(std::memory_order_seq_cst);
                if (has_news()) break;
                futex_wait(&wake_gen_, w);
            }
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (stop_.load(std::memory_order_acquire)) return;
        const uint64_t s      = state_.load(std::memory_order_acquire);
        seen                  = gen_of(s);
        const int64_t arrival = now_ns() - publish_ns_.load(std::memory_order_relaxed);
        int64_t ran           = 0;
        if (before_claim_) before_claim_(index);
        run_chunks(seen, false, &ran);
        if (ran > 0) worker_chunks_.fetch_add(static_cast<uint64_t>(ran), std::memory_order_relaxed);
        // Adapt the spin: halve it after arriving late (spinning then mostly takes the CPU from
        // the threads doing the work), double it after a prompt arrival.
        const bool late = arrival > (slept ? kLateSleepingNs : kLateSpinningNs) && ran == 0;
        if (late)
            spin_ns = spin_ns / 2 < kMinSpinNs ? 0 : spin_ns / 2;
        else if (ran > 0 && arrival <= (slept ? kLateSleepingNs : kLateSpinningNs))
            spin_ns = std::min(kSpinMicros * 1000, std::max(kMinSpinNs, 2 * spin_ns));
    }
}

// Other threads runnable on the machine now: /proc/loadavg's running count ("9/120": 9 runnable)
// less this caller and the workers that are not asleep (spinning ones count as running).
double ThreadPool::read_others_runnable() {
    if (others_runnable_) return others_runnable_();
    if (loadavg_fd_ < 0) loadavg_fd_ = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    char buf[128];
    const ssize_t got = loadavg_fd_ >= 0 ? pread(loadavg_fd_, buf, sizeof(buf) - 1, 0) : -1;
    if (got <= 0) return 0;
    buf[got]       = 0;
    const char * p = buf;
    for (int field = 0; field < 3 && p; ++field) {
        p = std::strchr(p, ' ');
        if (p) ++p;
    }
    if (!p) return 0;
    const int running = std::atoi(p);
    const int awake   = n_threads_ - 1 - static_cast<int>(sleepers_.load(std::memory_order_relaxed));
    return std::max(0, running - 1 - awake);
}

// Every kSampleMicros: width = cores left by the other runnable threads (mean of the last 8
// samples, as the instantaneous count jumps), at least 1 and at most size().
void ThreadPool::sample_load(int64_t now) {
    if (now < next_sample_ns_) return;
    next_sample_ns_           = now + kSampleMicros * 1000;
    others_[n_samples_++ % 8] = read_others_runnable();
    double sum                = 0;
    const int n               = std::min(n_samples_, 8);
    for (int i = 0; i < n; ++i) sum += others_[i];
    const double cpus = std::max(1u, std::thread::hardware_concurrency());
    const int w       = static_cast<int>(std::floor(cpus - sum / n + 0.5));
    width_.store(std::clamp(w, 1, n_threads_), std::memory_order_relaxed);
}

double ThreadPool::median_ns(const std::array<int64_t, kWindow> & ring, uint32_t n) {
    const int k = static_cast<int>(std::min<uint32_t>(n, kWindow));
    if (k == 0) return 0;
    std::array<int64_t, kWindow> v = ring;
    std::nth_element(v.begin(), v.begin() + k / 2, v.begin() + k);
    return static_cast<double>(v[k / 2]);
}

// Which mode this call of `site` runs in: the faster one by the medians of the site's recent
// timings, the other one now and then (loads change), and, before both are timed, the one the
// machine's load suggests first.
bool ThreadPool::choose_alone(Site & site, int width) {
    ++site.calls;
    if (site.n_wide < kProbeJobs && site.n_alone < kProbeJobs) {
        if (width > 1) return false;
        ++stats_.load_narrowed;
        return true;
    }
    if (site.n_wide < kProbeJobs) return false;
    if (site.n_alone < kProbeJobs) return true;
    const double wide = median_ns(site.wide_ns, site.n_wide), alone_t = median_ns(site.alone_ns, site.n_alone);
    const bool alone = alone_t < wide;
    // Re-time the other mode less often the slower it was (every 16th to 256th call): while a busy
    // process holds a core the workers' mode can be 100× slower for a whole run of calls, and
    // re-timing it every 16th call would cost more than it finds. A mode comes back after three
    // re-timings that beat the other's median (the median of five moves by three samples).
    const double worse = std::max(alone_t, wide), better = std::max(1.0, std::min(alone_t, wide));
    const uint32_t every =
        static_cast<uint32_t>(std::clamp(kExploreEvery * worse / better, double(kExploreEvery), 256.0));
    if (site.calls % every != 0) return alone;
    ++stats_.explored;
    return !alone;
}

void ThreadPool::record(Site & site, bool alone, int64_t ns) {
    auto & ring         = alone ? site.alone_ns : site.wide_ns;
    uint32_t & cnt      = alone ? site.n_alone : site.n_wide;
    ring[cnt % kWindow] = ns;
    ++cnt;
}

// The site of `key`: its slot among kSiteWays neighbours, else an empty one, else the neighbour
// called least (two sites hashed to one slot would otherwise reset each other on every call and
// never leave their first probe).
ThreadPool::Site * ThreadPool::find_site(uint64_t key) {
    key |= 1;  // 0 marks an empty slot
    // Slot from all of the key's bits (a plain modulo would see only its low bits, where the
    // job's size, shifted up by 20, does not reach).
    uint64_t h = key ^ (key >> 31);
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    const size_t first = h % sites_.size();
    Site * victim      = nullptr;
    for (size_t w = 0; w < kSiteWays; ++w) {
        Site & s = sites_[(first + w) % sites_.size()];
        if (s.key == key) return &s;
        if (s.key == 0) {
            s.key = key;
            return &s;
        }
        if (!victim || s.calls < victim->calls) victim = &s;
    }
    *victim = Site{key};
    return victim;
}

uint64_t ThreadPool::site_hint(int64_t a, int64_t b, int64_t c) {
    return (uint64_t(a) * 0x9E3779B97F4A7C15ull) ^ (uint64_t(b) * 0xC2B2AE3D27D4EB4Full) ^
           (uint64_t(c) * 0x165667B19E3779F9ull);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)> & fn, int64_t grain,
                              uint64_t site_hint) {
    if (n <= 0) return;
    grain                   = std::max<int64_t>(1, grain);
    const int64_t max_parts = (n + grain - 1) / grain;
    if (n_threads_ <= 1 || max_parts <= 1 || t_in_worker) {
        fn(0, n);
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    const int64_t t0 = now_ns();
    if (adaptive_) sample_load(t0);
    Site * site = nullptr;
    if (adaptive_) {
        // A call site is the lambda's type with the job's size and the caller's hint: same code,
        // same work.
        const uint64_t key =
            (fn.target_type().hash_code() * 0x9E3779B97F4A7C15ull) ^ (uint64_t(n) << 20) ^ uint64_t(grain) ^ site_hint;
        site = find_site(key);
        if (choose_alone(*site, width_.load(std::memory_order_relaxed))) {
            ++stats_.inline_jobs;
            t_in_worker = true;  // nested calls from fn run inline
            fn(0, n);
            t_in_worker = false;
            record(*site, true, now_ns() - t0);
            return;
        }
    }
    int64_t chunks      = std::min<int64_t>({max_parts, int64_t{n_threads_} * kChunksPerThread, 0xFFFF});
    const int64_t chunk = (n + chunks - 1) / chunks;
    chunks              = (n + chunk - 1) / chunk;
    job_                = &fn;
    job_n_              = n;
    job_chunk_          = chunk;
    done_.store(0, std::memory_order_relaxed);
    const uint32_t gen = gen_of(state_.load(std::memory_order_relaxed)) + 1;
    publish_ns_.store(t0, std::memory_order_relaxed);
    state_.store(pack(gen, 0, static_cast<uint32_t>(chunks)), std::memory_order_seq_cst);
    wake_gen_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake(&wake_gen_, INT_MAX);

    t_in_worker  = true;  // nested calls from fn run inline
    int64_t mine = 0;
    run_chunks(gen, true, &mine);
    t_in_worker      = false;
    const int64_t t1 = now_ns();
    // Wait for the chunks the workers hold: spin about two of our own chunks' time (a running
    // worker finishes by then), then sleep so that a descheduled worker can have this core.
    auto all_done = [&] { return done_.load(std::memory_order_acquire) == static_cast<uint32_t>(chunks); };
    const int64_t spin =
        std::clamp<int64_t>(mine > 0 ? 2 * (t1 - t0) / mine : kSpinMicros * 1000, kMinSpinNs, kSpinMicros * 1000);
    if (!spin_until(spin, all_done)) {
        ++stats_.caller_sleeps;
        caller_waiting_.store(1, std::memory_order_seq_cst);
        for (uint32_t d; (d = done_.load(std::memory_order_seq_cst)) != static_cast<uint32_t>(chunks);)
            futex_wait(&done_, d);
        caller_waiting_.store(0, std::memory_order_relaxed);
    }
    const int64_t t2 = now_ns();
    ++stats_.jobs;
    stats_.caller_chunks += static_cast<uint64_t>(mine);
    if (site) record(*site, false, t2 - t0);
}

}  // namespace m4
