// The build driver: task registry, split writers, manifests, caching and parallel builds.
#include "data/build.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/crypto.h"
#include "base/mapped_file.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace fs = std::filesystem;

// Bumped when shared generator code changes output for every task (2: deterministic espeak-ng).
constexpr int kEngineVersion = 2;

void register_pretrain_task(std::vector<Task> & out);
void register_draw_scene_task(std::vector<Task> & out);  // tasks_draw_scene.cpp

const std::vector<Task> & all_tasks() {
    static const std::vector<Task> tasks = [] {
        std::vector<Task> t;
        register_image_tasks(t);
        register_decoder_tasks(t);
        register_draw_scene_task(t);
        register_tts_tasks(t);
        register_text_tasks(t);
        register_audio_tasks(t);
        register_imu_tasks(t);
        register_multimodal_tasks(t);
        register_pretrain_task(t);
        return t;
    }();
    return tasks;
}

const Task * find_task(const std::string & name) {
    for (const auto & t : all_tasks())
        if (t.info.name == name) return &t;
    return nullptr;
}

TaskOutput::TaskOutput(const TaskInfo & info, std::string dir, double scale, uint64_t seed,
                       std::function<void(const std::string &)> progress)
    : info_(info), dir_(std::move(dir)), scale_(scale), seed_(seed), progress_(std::move(progress)) {}

size_t TaskOutput::n(size_t full, size_t min) const {
    size_t v = static_cast<size_t>(full * scale_ + 0.5);
    return std::max(std::min(min, full), v);
}

Result<DatasetWriter *> TaskOutput::split(const std::string & name) {
    return split(name, info_.modality);
}

Result<DatasetWriter *> TaskOutput::split(const std::string & name, Modality m) {
    for (auto & [n, w] : splits_)
        if (n == name) return w.get();
    // Close the previous split: its hashes become the exclusion set of later test splits.
    if (!splits_.empty()) {
        auto & prev = splits_.back().second;
        earlier_.insert(prev->hashes().begin(), prev->hashes().end());
        test_texts_excluded_.insert(prev->text_hashes().begin(), prev->text_hashes().end());
    }
    auto w = std::make_unique<DatasetWriter>(dir_ + "/" + name + ".m4ds", m);
    if (name.rfind("test", 0) == 0) {
        w->exclude(earlier_);
        // Text test splits also drop texts that occur (normalised) in an earlier split or anywhere
        // in the pretraining text (whole documents and single lines), as `m4fw data audit` checks.
        if (m == Modality::Text && info_.name != kPretrain) {
            M4_ASSIGN_OR_RETURN(const HashSet * pre, pretrain_text_index());
            test_texts_excluded_.insert(pre->begin(), pre->end());
            w->exclude_texts(test_texts_excluded_);
        }
    }
    splits_.emplace_back(name, std::move(w));
    return splits_.back().second.get();
}

Status TaskOutput::finish(const nlohmann::json & sources, const std::string & key, double seconds) {
    nlohmann::json splits = nlohmann::json::object();
    for (auto & [name, w] : splits_) {
        M4_RETURN_IF_ERROR(w->finish());
        splits[name] = {{"file", name + ".m4ds"},
                        {"count", w->count()},
                        {"bytes", w->bytes()},
                        {"sha256", w->sha256_hex()},
                        {"dropped_duplicates", w->dropped()}};
    }
    nlohmann::json m = {
        {"format", "m4ds-manifest"},
        {"version", 1},
        {"task", info_.name},
        {"group", info_.group},
        {"modality", modality_name(info_.modality)},
        {"kind", info_.kind},
        {"path_hint", info_.path_hint},
        {"metric", info_.metric},
        {"provenance", info_.provenance},
        {"description", info_.description},
        {"held_out", info_.held_out},
        {"labels", labels_},
        {"splits", splits},
        {"sources", sources},
        {"generator",
         {{"tool", "m4fw data build"}, {"builder_version", info_.version}, {"seed", seed_}, {"scale", scale_}}},
        {"cache_key", key},
        {"build_seconds", std::round(seconds * 100) / 100}};
    for (auto & [k, v] : extra_.items()) m[k] = v;
    std::string text = m.dump(2) + "\n";
    return write_file_atomic(dir_ + "/manifest.json", text.data(), text.size());
}

namespace {

// Tasks whose examples are simulated IMU windows of BuildOptions::imu_rows rows.
bool uses_imu_rows(const Task & t) {
    return t.info.modality == Modality::Imu || t.info.name == kPretrain;
}

nlohmann::json source_versions(const TaskInfo & info) {
    nlohmann::json s = nlohmann::json::array();
    for (const auto & p : info.packages) {
        auto v = package_version(p);
        s.push_back({{"package", p}, {"version", v ? v.value() : "missing"}});
    }
    return s;
}

// A task's build is current when its manifest has this key and every split file has its size.
bool is_current(const std::string & tdir, const std::string & key) {
    auto text = read_file_bytes(tdir + "/manifest.json");
    if (!text) return false;
    auto m = nlohmann::json::parse(text.value(), nullptr, false);
    if (m.is_discarded() || m.value("cache_key", "") != key || !m.contains("splits")) return false;
    for (auto & [name, sp] : m["splits"].items()) {
        std::error_code ec;
        auto sz = fs::file_size(tdir + "/" + sp.value("file", name + ".m4ds"), ec);
        if (ec || sz != sp.value("bytes", uint64_t(0))) return false;
    }
    return true;
}

Status build_one(const Task & t, const BuildOptions & opt, std::mutex & print_mu, size_t index, size_t total) {
    auto say = [&](const std::string & msg) {
        if (opt.quiet) return;
        std::lock_guard<std::mutex> lk(print_mu);
        fmt::print(stderr, "[{:2}/{}] {:<22} {}\n", index + 1, total, t.info.name, msg);
    };
    M4_RETURN_IF_ERROR(require_packages(t.info.name, t.info.packages));
    M4_ASSIGN_OR_RETURN(std::string key, cache_key(t.info.name, opt));
    const std::string tdir = opt.dir + "/" + t.info.name;
    if (!opt.force && is_current(tdir, key)) {
        say("cached (sources and builder unchanged)");
        return Status::ok();
    }
    const std::string tmp = tdir + ".tmp";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) return io_error(tmp + ": cannot create directory (" + ec.message() + ")");
    say("building …");
    auto t0 = std::chrono::steady_clock::now();
    TaskOutput out(t.info, tmp, opt.scale, opt.seed, say);
    out.set_imu_rows(opt.imu_rows);
    if (opt.imu_rows != kImuRowsDefault && uses_imu_rows(t)) out.extra()["imu_rows"] = opt.imu_rows;
    Status st = t.build(out);
    if (!st.is_ok()) {
        fs::remove_all(tmp, ec);
        return st.with_context(t.info.name);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st          = out.finish(source_versions(t.info), key, secs);
    if (!st.is_ok()) {
        fs::remove_all(tmp, ec);
        return st.with_context(t.info.name);
    }
    fs::remove_all(tdir, ec);
    fs::rename(tmp, tdir, ec);
    if (ec) return io_error(tdir + ": cannot move the new build into place (" + ec.message() + ")");
    auto man = nlohmann::json::parse(read_file_bytes(tdir + "/manifest.json").value());
    std::string counts;
    uint64_t bytes = 0;
    for (auto & [name, sp] : man["splits"].items()) {
        counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", name, sp["count"].get<uint64_t>());
        bytes += sp["bytes"].get<uint64_t>();
    }
    say(fmt::format("done in {:.1f} s: {} ({:.1f} MB)", secs, counts, bytes / 1e6));
    return Status::ok();
}

}  // namespace

Result<std::string> cache_key(const std::string & task, const BuildOptions & opt) {
    const Task * t = find_task(task);
    if (!t) return not_found("unknown task '" + task + "' (see `m4fw data list`)");
    M4_RETURN_IF_ERROR(require_packages(task, t->info.packages));
    nlohmann::json k = {{"task", task},
                        {"builder_version", t->info.version},
                        {"format_version", 1},
                        {"engine", kEngineVersion},
                        {"scale", opt.scale},
                        {"seed", opt.seed},
                        {"sources", source_versions(t->info)}};
    // Text tasks' test splits drop texts found in pretraining (rule 2): only their keys change.
    if (t->info.modality == Modality::Text && task != kPretrain) k["test_text_rules"] = 2;
    // A non-default IMU window changes the tasks that simulate IMU windows (only their keys, so
    // data built before this option existed stays current).
    if (opt.imu_rows != kImuRowsDefault && uses_imu_rows(*t)) k["imu_rows"] = opt.imu_rows;
    std::string s = k.dump();
    return to_hex(sha256(s.data(), s.size()));
}

Status build_tasks(const std::vector<std::string> & names, const BuildOptions & opt) {
    for (const auto & n : names)
        if (!find_task(n)) return not_found("unknown task '" + n + "' (see `m4fw data list`)");
    if (opt.imu_rows < 10 || opt.imu_rows > 3000)
        return invalid_argument("IMU window of " + std::to_string(opt.imu_rows) +
                                " rows is outside 10 … 3000 (0.2 … 60 s at 50 Hz)");
    std::error_code ec;
    fs::create_directories(opt.dir, ec);
    if (ec) return io_error(opt.dir + ": cannot create directory (" + ec.message() + ")");
    // The pretraining corpus reads nothing from the tasks, but is built last so that its progress
    // lines come after the tasks'.
    std::vector<std::string> order;
    for (const auto & n : names)
        if (n != kPretrain) order.push_back(n);
    for (const auto & n : names)
        if (n == kPretrain) order.push_back(n);
    std::mutex print_mu, status_mu;
    std::atomic<size_t> next{0};
    std::vector<Status> failures;
    auto worker = [&] {
        for (size_t i = next++; i < order.size(); i = next++) {
            Status st = build_one(*find_task(order[i]), opt, print_mu, i, order.size());
            if (!st.is_ok()) {
                std::lock_guard<std::mutex> lk(status_mu);
                if (!opt.quiet) fmt::print(stderr, "m4fw: {}\n", st.message());
                failures.push_back(st);
            }
        }
    };
    std::vector<std::thread> pool;
    for (int j = 1; j < std::max(1, opt.jobs); ++j) pool.emplace_back(worker);
    worker();
    for (auto & th : pool) th.join();
    if (failures.empty()) return Status::ok();
    if (failures.size() == 1) return failures[0];
    return Status(failures[0].code(),
                  fmt::format("{} tasks failed; first: {}", failures.size(), failures[0].message()));
}

std::vector<TaskStatus> list_tasks(const BuildOptions & opt) {
    std::vector<TaskStatus> out;
    for (const auto & t : all_tasks()) {
        TaskStatus s;
        s.name              = t.info.name;
        s.group             = t.info.group;
        s.provenance        = t.info.provenance;
        Status st           = require_packages(t.info.name, t.info.packages);
        s.sources_installed = st.is_ok();
        if (!st.is_ok()) s.missing = st.message();
        s.built = file_exists(opt.dir + "/" + t.info.name + "/manifest.json");
        if (s.built && s.sources_installed) {
            auto key     = cache_key(t.info.name, opt);
            s.up_to_date = key && is_current(opt.dir + "/" + t.info.name, key.value());
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace m4::data
