// Building, caching, listing and auditing the benchmark (the library behind `m4fw data`).
//
//     data::BuildOptions opt;  opt.dir = "data";  opt.scale = 1.0;
//     Status st = data::build_tasks({"img.fashion_mnist"}, opt);   // or all task names
//     data::AuditReport rep;  st = data::audit(opt.dir, &rep);      // leaks → rep.leaks > 0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/dataset.h"

namespace m4::data {

struct BuildOptions {
    std::string dir = "data";
    double scale    = 1.0;       // fraction of the full example counts (tests use a small one)
    uint64_t seed   = 20240801;  // the benchmark's fixed seed
    // IMU window of the simulated IMU tasks (imu.*, mm.imu_caption, the pretraining corpus's
    // imu_caption), in rows at 50 Hz: 100 = 2 s (the benchmark's default). Another value enters the
    // cache key and the manifest (`imu_rows`), so a firmware with a longer IMU window can be fed
    // windows that long (`m4fw data build --imu-seconds 4`).
    int imu_rows = kImuRowsDefault;
    bool force   = false;  // rebuild even when the cache is valid
    int jobs     = 2;      // tasks built in parallel
    bool quiet   = false;
};

// Builds the named tasks (a task whose manifest has the same cache key, and whose split files are
// present with the recorded sizes, is skipped). `pretrain` names the pretraining corpus.
// Returns the first failure after trying every task; progress goes to stderr.
Status build_tasks(const std::vector<std::string> & names, const BuildOptions & opt);

// The cache key of a task under `opt`: builder version, format version, scale, seed and the
// installed versions of its source packages. NotFound when a source package is missing.
Result<std::string> cache_key(const std::string & task, const BuildOptions & opt);

struct TaskStatus {
    std::string name, group, provenance;
    bool sources_installed = false;
    std::string missing;  // message naming the missing packages
    bool built = false, up_to_date = false;
};
std::vector<TaskStatus> list_tasks(const BuildOptions & opt);

struct AuditReport {
    size_t tasks = 0, test_examples = 0, train_examples = 0, pretrain_records = 0;
    size_t leaks = 0;
    std::vector<std::string> findings;  // one line per leak or fault (first 50)
};
// Proves by content hash that no test example occurs in any train split (of any task) or in the
// pretraining corpus, and that test texts do not occur (normalised) in the pretraining text.
// Every split file's hashes are recomputed first. OK only when no leak or fault was found.
Status audit(const std::string & dir, AuditReport * report);

// The name of the pretraining corpus in the task list.
inline constexpr const char * kPretrain = "pretrain";

// Normalised-text hashes (text_hash) of every pretraining text document at full scale and of each
// of its lines; computed once per process from the sources (the corpus need not be built).
Result<const HashSet *> pretrain_text_index();

}  // namespace m4::data
