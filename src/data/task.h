// The benchmark's task registry and the context a task builder writes through.
//
// A task is one row of docs/benchmark.md: a name (`<group>.<what>`), what it reads (Debian
// packages), how it is split (what the test split holds out), and a build function that writes
// its splits. Adding a task is one entry in the group's `register_<group>_tasks` list.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/dataset.h"
#include "data/rng.h"

namespace m4::data {

struct TaskInfo {
    std::string name;                   // e.g. "img.fashion_mnist"
    std::string group;                  // image | text | audio | imu | multimodal
    Modality modality;                  // what the payload holds
    std::string kind;                   // classify | generate | regress | retrieve
    std::string path_hint;              // encoder | backbone | full (the firmware path a task adapter uses)
    std::string metric;                 // accuracy | exact_match | token_accuracy | mae | recall@5 …
    std::string provenance;             // real | generated | real+generated (which part is which: description)
    std::string description;            // one sentence
    std::string held_out;               // what the test split holds out
    std::vector<std::string> packages;  // Debian packages it reads
    int version = 1;                    // bump when the builder's output changes
};

class TaskOutput;
using BuildFn = std::function<Status(TaskOutput &)>;

struct Task {
    TaskInfo info;
    BuildFn build;
};

// Every task, in a stable order (image, text, audio, imu, multimodal).
const std::vector<Task> & all_tasks();
const Task * find_task(const std::string & name);

// Called by a task's build function: scaled counts, seeded random streams, split writers,
// manifest fields and progress.
class TaskOutput {
  public:
    TaskOutput(const TaskInfo & info, std::string dir, double scale, uint64_t seed,
               std::function<void(const std::string &)> progress);

    const TaskInfo & info() const { return info_; }
    // `full` scaled by --scale (small builds for tests), at least `min`.
    size_t n(size_t full, size_t min = 8) const;
    double scale() const { return scale_; }
    // Rows (50 Hz) of every simulated IMU window this build writes (BuildOptions::imu_rows).
    int imu_rows() const { return imu_rows_; }
    void set_imu_rows(int rows) { imu_rows_ = rows; }
    // A random stream private to this task and `stream`.
    Rng rng(std::string_view stream) const { return Rng(seed_ ^ hash64(info_.name), stream); }

    // Opens the writer of split `name`. Splits are written in order; a split whose name starts with
    // "test" drops any example whose content hash occurs in an earlier split.
    Result<DatasetWriter *> split(const std::string & name);
    Result<DatasetWriter *> split(const std::string & name, Modality m);
    void set_labels(std::vector<std::string> labels) { labels_ = std::move(labels); }
    // Extra manifest fields: payload layout, split rules, per-split notes …
    nlohmann::json & extra() { return extra_; }
    void progress(const std::string & msg) const {
        if (progress_) progress_(msg);
    }

    // Closes every split and writes manifest.json (called by the driver after a successful build).
    Status finish(const nlohmann::json & sources, const std::string & cache_key, double seconds);
    const std::string & dir() const { return dir_; }

  private:
    TaskInfo info_;
    std::string dir_;
    double scale_;
    uint64_t seed_;
    int imu_rows_ = kImuRowsDefault;
    std::function<void(const std::string &)> progress_;
    std::vector<std::pair<std::string, std::unique_ptr<DatasetWriter>>> splits_;
    HashSet earlier_;
    HashSet test_texts_excluded_;  // normalised texts of earlier splits + the pretraining text
    std::vector<std::string> labels_;
    nlohmann::json extra_ = nlohmann::json::object();
};

// Registration lists, one per group (tasks_<group>.cpp).
void register_image_tasks(std::vector<Task> & out);
void register_text_tasks(std::vector<Task> & out);
void register_audio_tasks(std::vector<Task> & out);
void register_imu_tasks(std::vector<Task> & out);
void register_multimodal_tasks(std::vector<Task> & out);
void register_decoder_tasks(std::vector<Task> & out);  // tasks_decoder.cpp: answered by a decoder (path 4)
void register_tts_tasks(std::vector<Task> & out);      // tasks_tts.cpp: aud.tts (the speech decoder)

// img.super_resolution's degradation: px [size, size, 3] → [size/f, size/f, 3], each output pixel
// the rounded mean of an f×f block.
std::vector<uint8_t> sr_reduce(const uint8_t * px, int size, int factor);

// Adds one example, turning "dropped as duplicate" into a plain count; for builder loops.
inline Status put(DatasetWriter * w, const ExampleIn & ex) {
    auto r = w->add(ex);
    return r ? Status::ok() : r.status();
}

}  // namespace m4::data
