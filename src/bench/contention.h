// The runtime under CPU contention (`m4fw bench contention`): decode, prefill and encoder loads,
// each with 0, 1, 2 … busy background processes that this code starts and stops itself, measured
// at the default thread count (the hardware's, adaptive pool) and at each fixed thread count, in
// one process and one run, so that
//
//     ratio = default / best fixed      (target ≥ 0.9 in every row)
//
// says whether the default degrades gracefully when a phone's apps take the CPU. Every
// measurement is one untimed warm-up call and then repeated calls until min_time has passed;
// within a row the configurations alternate `rounds` times (the order rotating from round to
// round) and each one's rate is its total work over its total time. The best fixed count is the
// one with the highest total rate; the row's ratio is the median over rounds of the default's
// rate ÷ that count's rate in the same round — a paired comparison, so that a burst of foreign
// load that hits one round hits both sides of that round's ratio, and the maximum over several
// noisy fixed rates does not bias the denominator upwards as max(totals) does (printed too). The default (adaptive)
// pool first runs the row's load for one untimed min_time under the row's background load, and keeps its call sites'
// timings across the rounds, as the pool of a service that has been running does; the fixed pools have nothing to
// learn.
//
//     ContentionOptions o;  o.firmware = "l110-i8.m4fw";  o.encoder_firmware = "vit-i8.m4fw";
//     auto rows = run_contention_bench(o, [](const ContentionRow & r) { print(r); });
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"

namespace m4::bench {

struct ContentionOptions {
    std::string firmware;          // backbone loads (decode, prefill)
    std::string encoder_firmware;  // encoder load: its first encoder; empty → `firmware`'s, if any
    int prefill = 128, decode = 64;
    double min_time       = 1.0;        // seconds per measurement
    int rounds            = 3;          // alternations of the configurations within a row
    std::vector<int> busy = {0, 1, 2};  // background busy processes per row
    std::vector<int> threads;           // fixed thread counts; empty → 1 … hardware threads
    std::vector<std::string> loads = {"decode", "prefill", "encoder"};
};

struct ContentionRow {
    std::string load;         // "decode 64 tokens, batch 1", …
    std::string unit;         // "tokens/s", "inputs/s"
    int busy            = 0;  // background busy processes during the row
    double default_rate = 0;
    std::vector<int> fixed_threads;
    std::vector<double> fixed_rates;
    int best_fixed = 0;  // the fixed thread count with the highest total rate
    // default ÷ best fixed, paired by round: round r's default rate over the best count's rate in
    // the same round (both under the same foreign load, minutes apart at most)
    std::vector<double> round_ratios;
    double ratio       = 0;           // the median of round_ratios: what the target is checked on
    double ratio_total = 0;           // default_rate / best fixed's total rate (all rounds pooled)
    ThreadPool::Stats default_stats;  // the pool's counters over the default measurements
};

// Runs the rows (load-major, then busy count) and calls on_row after each. Restores the global
// pool to its default (hardware threads, adaptive) before it returns.
Result<std::vector<ContentionRow>> run_contention_bench(const ContentionOptions & options,
                                                        const std::function<void(const ContentionRow &)> & on_row);

// Starts n processes that spin until stop_busy_processes (or this process's death) ends them.
class BusyProcesses {
  public:
    explicit BusyProcesses(int n);
    ~BusyProcesses();
    BusyProcesses(const BusyProcesses &)             = delete;
    BusyProcesses & operator=(const BusyProcesses &) = delete;
    const std::vector<int> & pids() const { return pids_; }

  private:
    std::vector<int> pids_;
};

}  // namespace m4::bench
