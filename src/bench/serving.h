// What serving k tasks costs (eAIBench, docs/eaibench.md): m4 (one firmware + k adapters) against
// k task-specific models (bench/baseline.h), measured, not computed.
//
//   memory   each setup runs in child processes of `exe` (`m4fw bench eaibench-child`): a child
//            loads its models, answers one real test request of each of its tasks, reports ready
//            and waits; while every child of the setup is alive the parent reads /proc/<pid>/
//            smaps_rollup (Pss, Rss) and /proc/<pid>/status (VmHWM). Setups per k:
//              m4           one process: the firmware (mmap) + k adapters
//              separate     k processes, one task-specific model each (as separate apps would)
//              one-process  one process holding the k task-specific models (the cheapest case)
//            With fewer distinct tasks than k, task i uses task (i mod n)'s files copied to a
//            distinct file, so no two models share page-cache pages.
//   latency  in one process at the thread count the caller set (M4_THREADS): the same test
//            input through m4 (firmware + adapter) and the task-specific model, alternating A/B,
//            median and p99 (nearest rank) of `repeats` single-request calls.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace m4::bench {

// One model a child loads: a firmware, an adapter bound to it, the task whose test example 0 it answers.
struct ServedModel {
    std::string firmware, adapter, task;
};

// The child side: loads `models` (each distinct firmware file once), answers one request each, then
// calls `hold` with {load_seconds, run_seconds, models} while every model is still loaded (the child
// reports ready there and waits to be measured). Called by `m4fw bench eaibench-child`.
Status serve_models(const std::vector<ServedModel> & models, const std::string & data_dir,
                    const std::function<void(const nlohmann::json &)> & hold);

struct ServingOptions {
    std::string exe;  // the m4fw binary (children run `exe bench eaibench-child`)
    std::string data_dir = "data";
    std::string firmware;  // the m4 firmware
    std::string adapter_dir = "adapters", model_dir = "baselines", work_dir = "build-baselines/serving";
    std::vector<std::string> tasks;  // tasks with an adapter and a task-specific model, in order
    std::vector<int64_t> ks = {1, 2, 4, 8, 16, 32};
    int64_t repeats         = 50;  // latency: calls per task and side
};

// {"memory": [{k, m4_pss_kib, m4_rss_kib, m4_hwm_kib, separate_…, one_process_…}], "tasks": […]}
Result<nlohmann::json> measure_memory(const ServingOptions & o);
// {"latency": [{task, m4_median_ms, m4_p99_ms, ts_median_ms, ts_p99_ms, repeats}]}
Result<nlohmann::json> measure_latency(const ServingOptions & o);

// {"pss_kib", "rss_kib", "hwm_kib"} of a live process: /proc/<pid>/smaps_rollup Pss, Rss and
// /proc/<pid>/status VmHWM (null where unreadable).
nlohmann::json proc_memory(int pid);
// The nearest-rank percentile p ∈ [0, 1] of v (v not empty).
double percentile(std::vector<double> v, double p);

}  // namespace m4::bench
