#include "bench/serving.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "adapter/adapter.h"
#include "bench/evaluate.h"
#include "data/dataset.h"
#include "model/model.h"

extern char ** environ;

namespace m4::bench {
namespace {

namespace fs = std::filesystem;
using Clock  = std::chrono::steady_clock;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One request of `task` (test example 0) through `fw` + `ad`: run (head / embedding) or generate.
Status answer(const model::Model & fw, const adapter::Adapter & ad, const data::Dataset & ds) {
    const auto & man = ad.manifest();
    const int64_t reserve =
        man.task == adapter::Task::Generate ? std::max<int64_t>(1, man.generation.max_new_tokens) : 0;
    M4_ASSIGN_OR_RETURN(model::Request r, request_for_example(fw, man.path, &man, ds, 0, reserve));
    r.adapter           = &ad.weights();
    const auto modality = static_cast<model::Modality>(static_cast<int>(ds.modality()));
    if (man.task == adapter::Task::Generate) {
        M4_RETURN_IF_ERROR(fw.generate(man.path, modality, {&r, 1}, man.generation).status());
    } else {
        M4_RETURN_IF_ERROR(fw.run(man.path, modality, {&r, 1}).status());
    }
    return Status::ok();
}

struct Child {
    pid_t pid = -1;
    int to = -1, from = -1;
};

// Starts `exe bench eaibench-child --data D --model F:A:T …` and waits for its "ready" line.
Result<Child> start_child(const ServingOptions & o, const std::vector<ServedModel> & models) {
    std::vector<std::string> args = {o.exe, "bench", "eaibench-child", "--data", o.data_dir};
    for (const auto & m : models) {
        args.push_back("--model");
        args.push_back(m.firmware + "|" + m.adapter + "|" + m.task);
    }
    std::vector<char *> argv;
    for (auto & s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return io_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    Child c;
    const int err = posix_spawn(&c.pid, o.exe.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    c.to   = in[1];
    c.from = out[0];
    if (err != 0) {
        close(c.to);
        close(c.from);
        return io_error(o.exe + ": cannot start the serving child");
    }
    std::string line;
    char ch;
    while (read(c.from, &ch, 1) == 1 && ch != '\n') line += ch;
    if (line.rfind("ready", 0) != 0) {
        close(c.to);
        close(c.from);
        waitpid(c.pid, nullptr, 0);
        return Status(StatusCode::Internal, "serving child for " + models.at(0).task + " failed (" + line + ")");
    }
    return c;
}

void stop_children(std::vector<Child> & cs) {
    for (auto & c : cs) close(c.to);
    for (auto & c : cs) {
        waitpid(c.pid, nullptr, 0);
        close(c.from);
    }
    cs.clear();
}

// Sums the memory of live children.
nlohmann::json sum_memory(const std::vector<Child> & cs) {
    int64_t pss = 0, rss = 0, hwm = 0;
    for (const auto & c : cs) {
        const nlohmann::json m = proc_memory(c.pid);
        pss += m["pss_kib"].is_null() ? 0 : m["pss_kib"].get<int64_t>();
        rss += m["rss_kib"].is_null() ? 0 : m["rss_kib"].get<int64_t>();
        hwm += m["hwm_kib"].is_null() ? 0 : m["hwm_kib"].get<int64_t>();
    }
    return {{"pss_kib", pss}, {"rss_kib", rss}, {"hwm_kib", hwm}, {"processes", cs.size()}};
}

Result<std::string> copy_for(const std::string & file, const std::string & dir, int64_t i) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string to = fmt::format("{}/{}.{}", dir, i, fs::path(file).filename().string());
    if (!fs::exists(to)) fs::copy_file(file, to, ec);
    if (ec) return io_error(to + ": cannot copy " + file + " (" + ec.message() + ")");
    return to;
}

}  // namespace

nlohmann::json proc_memory(pid_t pid) {
    nlohmann::json j = {{"pss_kib", nullptr}, {"rss_kib", nullptr}, {"hwm_kib", nullptr}};
    auto scan        = [&](const std::string & file, const char * key, const char * out) {
        std::ifstream f(fmt::format("/proc/{}/{}", pid, file));
        for (std::string line; std::getline(f, line);)
            if (line.rfind(key, 0) == 0) {
                std::istringstream ss(line.substr(std::string(key).size()));
                int64_t v = 0;
                ss >> v;
                j[out] = v;
                return;
            }
    };
    scan("smaps_rollup", "Pss:", "pss_kib");
    scan("smaps_rollup", "Rss:", "rss_kib");
    scan("status", "VmHWM:", "hwm_kib");
    return j;
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const size_t rank = static_cast<size_t>(std::ceil(p * double(v.size())));
    return v.at(std::min(v.size() - 1, rank == 0 ? 0 : rank - 1));
}

Status serve_models(const std::vector<ServedModel> & models, const std::string & data_dir,
                    const std::function<void(const nlohmann::json &)> & hold) {
    const auto t0 = Clock::now();
    std::map<std::string, std::unique_ptr<model::Model>> fws;
    std::vector<std::pair<const model::Model *, adapter::Adapter>> ads;
    std::vector<data::Dataset> sets;
    for (const auto & m : models) {
        if (!fws.count(m.firmware)) {
            M4_ASSIGN_OR_RETURN(fws[m.firmware], model::Model::load(m.firmware));
        }
        M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(m.adapter, *fws[m.firmware]));
        ads.emplace_back(fws[m.firmware].get(), std::move(ad));
        M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, m.task, "test"));
        if (ds.size() == 0) return invalid_argument(ds.path() + ": no test example");
        sets.push_back(std::move(ds));
    }
    const double load = since(t0);
    const auto t1     = Clock::now();
    for (size_t i = 0; i < ads.size(); ++i)
        M4_RETURN_IF_ERROR(answer(*ads[i].first, ads[i].second, sets[i]).with_context(models[i].task));
    hold(nlohmann::json{{"load_seconds", load}, {"run_seconds", since(t1)}, {"models", models.size()}});
    return Status::ok();
}

Result<nlohmann::json> measure_memory(const ServingOptions & o) {
    if (o.tasks.empty()) return invalid_argument("serving: no task with both an adapter and a task-specific model");
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t k : o.ks) {
        std::vector<ServedModel> m4, ts;
        for (int64_t i = 0; i < k; ++i) {
            const std::string & t = o.tasks[size_t(i) % o.tasks.size()];
            std::string ad = o.adapter_dir + "/" + t + ".m4a", bf = o.model_dir + "/" + t + ".m4fw",
                        ba = o.model_dir + "/" + t + ".m4a";
            if (i >= int64_t(o.tasks.size())) {  // a distinct file per model: no shared page cache
                M4_ASSIGN_OR_RETURN(ad, copy_for(ad, o.work_dir + "/copies/m4", i));
                M4_ASSIGN_OR_RETURN(bf, copy_for(bf, o.work_dir + "/copies/task-specific", i));
                M4_ASSIGN_OR_RETURN(ba, copy_for(ba, o.work_dir + "/copies/task-specific", i));
            }
            m4.push_back({o.firmware, ad, t});
            ts.push_back({bf, ba, t});
        }
        nlohmann::json row = {{"k", k}};
        std::vector<Child> cs;
        auto record = [&](const char * key) {
            const nlohmann::json m             = sum_memory(cs);
            row[std::string(key) + "_pss_kib"] = m["pss_kib"];
            row[std::string(key) + "_rss_kib"] = m["rss_kib"];
            row[std::string(key) + "_hwm_kib"] = m["hwm_kib"];
            stop_children(cs);
        };
        M4_ASSIGN_OR_RETURN(Child c, start_child(o, m4));
        cs.push_back(c);
        record("m4");
        for (const auto & one : ts) {
            auto started = start_child(o, {one});
            if (!started) {
                stop_children(cs);
                return started.status();
            }
            cs.push_back(*started);
        }
        record("separate");
        M4_ASSIGN_OR_RETURN(Child c2, start_child(o, ts));
        cs.push_back(c2);
        record("one_process");
        fmt::print(stderr, "k {:>2}: PSS MiB m4 {:.1f}, separate {:.1f}, one process {:.1f}\n", k,
                   row["m4_pss_kib"].get<double>() / 1024, row["separate_pss_kib"].get<double>() / 1024,
                   row["one_process_pss_kib"].get<double>() / 1024);
        rows.push_back(row);
    }
    return nlohmann::json{{"memory", rows}, {"memory_tasks", o.tasks}};
}

Result<nlohmann::json> measure_latency(const ServingOptions & o) {
    nlohmann::json rows = nlohmann::json::array();
    M4_ASSIGN_OR_RETURN(auto m4, model::Model::load(o.firmware));
    for (const auto & t : o.tasks) {
        M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(o.adapter_dir + "/" + t + ".m4a", *m4));
        M4_ASSIGN_OR_RETURN(auto bfw, model::Model::load(o.model_dir + "/" + t + ".m4fw"));
        M4_ASSIGN_OR_RETURN(adapter::Adapter bad, adapter::Adapter::load(o.model_dir + "/" + t + ".m4a", *bfw));
        M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(o.data_dir, t, "test"));
        if (ds.size() == 0) return invalid_argument(ds.path() + ": no test example");
        std::vector<double> a, b;
        for (int64_t r = -1; r < o.repeats; ++r) {  // r = −1: warm-up
            for (int side = 0; side < 2; ++side) {
                const bool m4_first = r % 2 == 0;
                const bool is_m4    = (side == 0) == m4_first;
                const auto t0       = Clock::now();
                M4_RETURN_IF_ERROR(is_m4 ? answer(*m4, ad, ds) : answer(*bfw, bad, ds));
                if (r >= 0) (is_m4 ? a : b).push_back(1000.0 * since(t0));
            }
        }
        rows.push_back({{"task", t},
                        {"m4_median_ms", percentile(a, 0.5)},
                        {"m4_p99_ms", percentile(a, 0.99)},
                        {"ts_median_ms", percentile(b, 0.5)},
                        {"ts_p99_ms", percentile(b, 0.99)},
                        {"repeats", o.repeats}});
        fmt::print(stderr, "{}: median ms m4 {:.3f}, task-specific {:.3f}\n", t, percentile(a, 0.5),
                   percentile(b, 0.5));
    }
    return nlohmann::json{{"latency", rows}};
}

}  // namespace m4::bench
