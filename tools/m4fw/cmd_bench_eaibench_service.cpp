// `m4fw bench eaibench --service`: the m4 side of eAIBench's serving comparison measured through
// the daemon (docs/eaibench.md). For each k, a fresh m4fwd (the firmware, a temporary socket and
// state directory) gets the first k tasks' adapters registered through the client API, then one
// request of each (the task's test example 0) is sent at once, from k connections; when every
// reply is in, the daemon's /proc/<pid>/smaps_rollup (PSS, RSS) and VmHWM (the peak, which holds
// the moment all k were in flight) are read. Latency: one daemon with every task's adapter, per
// task `repeats` single requests from one connection, timed at the client (socket, queue, run).
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/mapped_file.h"
#include "bench/evaluate.h"
#include "bench/samples.h"
#include "bench/serving.h"
#include "commands.h"
#include "data/dataset.h"
#include "m4/client.h"
#include "model/model.h"

namespace m4::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string daemon_binary() {
    const auto dir = std::filesystem::canonical("/proc/self/exe").parent_path().string();
    for (auto p : {dir + "/m4fwd", dir + "/../m4fwd/m4fwd"})
        if (::access(p.c_str(), X_OK) == 0) return p;
    return "m4fwd";
}

// A daemon of its own, stopped (SIGTERM) and cleaned up when this goes out of scope.
struct Daemon {
    pid_t pid = -1;
    std::string dir, sock;
    ~Daemon() {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            ::waitpid(pid, nullptr, 0);
        }
        std::error_code ec;
        if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
};

Status start_daemon(const std::string & firmware, const std::string & tag, Daemon * d) {
    d->dir = fmt::format("/tmp/m4eaib-{}-{}", ::getpid(), tag);
    std::error_code ec;
    std::filesystem::remove_all(d->dir, ec);
    std::filesystem::create_directories(d->dir, ec);
    if (ec) return io_error(d->dir + ": cannot create (" + ec.message() + ")");
    d->sock = d->dir + "/s.sock";
    std::ofstream(d->dir + "/config.json")
        << R"({"max_batch_items": 64, "max_queued_items": 4096, "max_pending_per_app": 4096, )"
           R"("quota_adapters": 1024, "quota_bytes": 1073741824})";
    const std::string bin = daemon_binary();
    d->pid                = ::fork();
    if (d->pid < 0) return io_error("fork failed");
    if (d->pid == 0) {
        FILE * f = std::freopen((d->dir + "/daemon.log").c_str(), "w", stderr);
        (void)f;
        ::execl(bin.c_str(), "m4fwd", "--config", (d->dir + "/config.json").c_str(), "--socket", d->sock.c_str(),
                "--state-dir", (d->dir + "/state").c_str(), "--firmware", firmware.c_str(), nullptr);
        _exit(127);
    }
    for (int i = 0; i < 800; ++i) {
        if (client::Client::connect(d->sock, 1000).is_ok()) return Status::ok();
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return io_error("m4fwd (" + bin + ") did not start; its log: " + d->dir + "/daemon.log");
}

// The Infer request of `task`'s test example 0 through adapter `name` (what the eval feeds the model).
Result<v1::Infer> request_for(const std::string & data_dir, const std::string & task, const std::string & name,
                              const model::ModelConfig & cfg) {
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, task, "test"));
    if (ds.size() == 0) return invalid_argument(ds.path() + ": no test example");
    const data::Example ex = ds.at(0);
    v1::Infer req;
    req.set_adapter(name);
    auto * in = req.add_inputs();
    if (ds.modality() == data::Modality::Text) {
        in->set_text(bench::text_input(ex));
    } else {
        const auto mm = static_cast<model::Modality>(static_cast<int>(ds.modality()));
        if (!cfg.has_encoder(mm)) return invalid_argument(task + ": the firmware has no encoder for its inputs");
        M4_ASSIGN_OR_RETURN(std::vector<float> sig,
                            bench::model_signal(ex, ds.modality(), cfg.encoder(mm), ds.path() + " #0"));
        in->set_modality(data::modality_name(ds.modality()));
        in->mutable_signal()->add_shape(static_cast<int64_t>(sig.size()));
        for (float v : sig) in->mutable_signal()->add_values(v);
        if (!ex.prompt.empty()) req.set_prompt(std::string(ex.prompt));
    }
    return req;
}

Result<std::vector<v1::Infer>> register_tasks(const bench::ServingOptions & o, const model::ModelConfig & cfg,
                                              client::Client & c, int64_t k) {
    std::vector<v1::Infer> reqs;
    for (int64_t i = 0; i < k; ++i) {
        const std::string & t  = o.tasks[size_t(i) % o.tasks.size()];
        const std::string name = fmt::format("t{}", i);
        M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(o.adapter_dir + "/" + t + ".m4a"));
        M4_ASSIGN_OR_RETURN(v1::Response r, c.register_adapter(name, bytes, true));
        if (r.status() != v1::STATUS_OK)
            return io_error(fmt::format("m4fwd refused adapter {}/{}.m4a: {}", o.adapter_dir, t, r.message()));
        M4_ASSIGN_OR_RETURN(v1::Infer q, request_for(o.data_dir, t, name, cfg));
        reqs.push_back(std::move(q));
    }
    return reqs;
}

}  // namespace

Result<nlohmann::json> measure_service(const bench::ServingOptions & o, bool memory, bool latency) {
    if (o.tasks.empty()) return invalid_argument("--service: no task");
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(o.firmware));
    nlohmann::json out = nlohmann::json::object();
    if (memory) {
        nlohmann::json rows = nlohmann::json::array();
        for (int64_t k : o.ks) {
            Daemon d;
            M4_RETURN_IF_ERROR(start_daemon(o.firmware, fmt::format("k{}", k), &d));
            M4_ASSIGN_OR_RETURN(auto admin, client::Client::connect(d.sock));
            M4_ASSIGN_OR_RETURN(std::vector<v1::Infer> reqs, register_tasks(o, fw->config(), *admin, k));
            std::vector<std::string> errors(reqs.size());
            std::vector<std::thread> threads;
            for (size_t i = 0; i < reqs.size(); ++i)
                threads.emplace_back([&, i] {
                    auto c = client::Client::connect(d.sock, 120000);
                    if (!c) {
                        errors[i] = c.status().message();
                        return;
                    }
                    auto r = (*c)->infer(reqs[i]);
                    if (!r)
                        errors[i] = r.status().message();
                    else if (r->status() != v1::STATUS_OK)
                        errors[i] = r->message();
                });
            for (auto & th : threads) th.join();
            for (size_t i = 0; i < errors.size(); ++i)
                if (!errors[i].empty())
                    return io_error(
                        fmt::format("m4fwd: the request of {} failed: {}", o.tasks[i % o.tasks.size()], errors[i]));
            const nlohmann::json m = bench::proc_memory(d.pid);
            rows.push_back({{"k", k}, {"pss_kib", m["pss_kib"]}, {"rss_kib", m["rss_kib"]}, {"hwm_kib", m["hwm_kib"]}});
            fmt::print(stderr, "m4fwd, k {:>2}: PSS {:.1f} MiB, RSS {:.1f} MiB, peak RSS {:.1f} MiB\n", k,
                       m["pss_kib"].get<double>() / 1024, m["rss_kib"].get<double>() / 1024,
                       m["hwm_kib"].get<double>() / 1024);
        }
        out["service_memory"] = rows;
    }
    if (latency) {
        Daemon d;
        M4_RETURN_IF_ERROR(start_daemon(o.firmware, "latency", &d));
        M4_ASSIGN_OR_RETURN(auto c, client::Client::connect(d.sock, 120000));
        M4_ASSIGN_OR_RETURN(std::vector<v1::Infer> reqs,
                            register_tasks(o, fw->config(), *c, static_cast<int64_t>(o.tasks.size())));
        nlohmann::json rows = nlohmann::json::array();
        for (size_t i = 0; i < reqs.size(); ++i) {
            std::vector<double> ms;
            for (int64_t r = -1; r < o.repeats; ++r) {  // r = −1: warm-up
                const auto t0 = Clock::now();
                M4_ASSIGN_OR_RETURN(v1::Response rep, c->infer(reqs[i]));
                if (rep.status() != v1::STATUS_OK)
                    return io_error(fmt::format("m4fwd: the request of {} failed: {}", o.tasks[i], rep.message()));
                if (r >= 0) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            }
            rows.push_back({{"task", o.tasks[i]},
                            {"median_ms", bench::percentile(ms, 0.5)},
                            {"p99_ms", bench::percentile(ms, 0.99)},
                            {"repeats", o.repeats}});
            fmt::print(stderr, "{} through m4fwd: median {:.3f} ms, p99 {:.3f} ms\n", o.tasks[i],
                       bench::percentile(ms, 0.5), bench::percentile(ms, 0.99));
        }
        out["service_latency"] = rows;
    }
    return out;
}

}  // namespace m4::cli
