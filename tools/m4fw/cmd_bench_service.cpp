// m4fw bench service — a load generator for m4fwd.
//   m4fw bench service [--firmware F] [--apps N] [--adapters M] [--concurrency C] [--duration S]
//                      [--max-batch B] [--compare]
// Starts its own m4fwd on a temporary socket and state directory (so the settings are known),
// registers M random adapters spread over N apps — each app a real uid when run as root, so the
// daemon sees N apps through SO_PEERCRED — and runs C closed-loop clients for S seconds. Prints
// throughput, p50/p99 latency, BUSY and errors. Throughput and latency count only the replies that
// arrive inside the measurement window [start + warm-up, start + duration] of each client process:
// replies to requests still queued at the end (seconds later, under a deep queue) would otherwise
// inflate the rate, and the first batches of a load would depress it. --compare runs, in one
// invocation, the three loads the service issue compares: 1 adapter, M adapters, and M adapters
// served one request at a time.
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "adapter/adapter.h"
#include "base/mapped_file.h"
#include "commands.h"
#include "m4/client.h"

namespace m4::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
    std::string firmware, daemon, modality = "image", task = "classify";
    int         new_tokens = 16;
    int         apps = 4, adapters = 64, concurrency = 64, max_batch = 64;
    double      duration = 5;
    double      warmup   = -1;  // seconds; < 0: a quarter of the duration
    bool        compare = false;
};

struct LoadResult {
    uint64_t            ok = 0, busy = 0, errors = 0;
    std::vector<double> latency_ms;
    double              seconds = 0;
    double              mean_batch = 0;
};

double warmup_seconds(const BenchArgs & a) {
    return a.warmup >= 0 ? a.warmup : a.duration / 4;
}

std::string self_dir() {
    return std::filesystem::canonical("/proc/self/exe").parent_path().string();
}

std::string find_daemon(const std::string & given) {
    if (!given.empty()) return given;
    for (auto p : {self_dir() + "/m4fwd", self_dir() + "/../m4fwd/m4fwd"})
        if (::access(p.c_str(), X_OK) == 0) return p;
    return "m4fwd";
}

// One app's share of the load, in this process: its clients, each in a thread.
LoadResult run_clients(const std::string & sock, const std::vector<std::string> & names, int clients,
                       const BenchArgs & a, const model::ModelConfig & cfg) {
    const bool                   text = a.modality == "text";
    int64_t                      n    = 0;
    if (!text) {
        const auto & ec = cfg.encoder(a.modality == "imu" ? model::Modality::Imu : model::Modality::Image);
        n               = ec.input_values();
    }
    std::mutex                   mu;
    LoadResult                   total;
    std::vector<std::thread>     threads;
    const auto                   start = Clock::now();
    const auto                   end   = start + std::chrono::duration<double>(a.duration);
    const auto                   from  = start + std::chrono::duration<double>(warmup_seconds(a));
    std::atomic<uint64_t>        rows{0}, replies{0};
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&, t] {
            LoadResult mine;
            auto       c = client::Client::connect(sock, 60000);
            if (!c) {
                std::lock_guard<std::mutex> lock(mu);
                total.errors++;
                return;
            }
            v1::Infer req;
            auto *    in = req.add_inputs();
            if (a.task == "generate") req.set_max_new_tokens(static_cast<uint32_t>(a.new_tokens));
            if (text) {
                in->set_text(fmt::format("request {} from client {}: is this message about the weather or sport", t % 7, t));
            } else {
                in->set_modality(a.modality);
                for (int64_t i = 0; i < n; ++i) in->mutable_signal()->add_values(0.01f * float((i * 31 + t) % 97) - 0.5f);
            }
            for (uint64_t k = 0; Clock::now() < end; ++k) {
                req.set_adapter(names[(t + k * clients) % names.size()]);
                auto t0 = Clock::now();
                auto r  = (*c)->infer(req);
                const auto done   = Clock::now();
                double     ms     = std::chrono::duration<double, std::milli>(done - t0).count();
                const bool inside = done >= from && done <= end;
                if (!r) {
                    mine.errors++;
                    break;
                }
                if (r->status() == v1::STATUS_OK) {
                    if (!inside) continue;
                    mine.ok++;
                    mine.latency_ms.push_back(ms);
                    rows += r->infer().batch_rows();
                    replies++;
                } else if (r->status() == v1::STATUS_BUSY) {
                    mine.busy++;
                    std::this_thread::sleep_for(std::chrono::milliseconds(r->retry_after_ms()));
                } else {
                    mine.errors++;
                }
            }
            std::lock_guard<std::mutex> lock(mu);
            total.ok += mine.ok, total.busy += mine.busy, total.errors += mine.errors;
            total.latency_ms.insert(total.latency_ms.end(), mine.latency_ms.begin(), mine.latency_ms.end());
        });
    }
    for (auto & th : threads) th.join();
    total.seconds    = a.duration - warmup_seconds(a);
    total.mean_batch = replies ? double(rows) / double(replies) : 0;
    return total;
}

// Results cross process boundaries (one process per app uid) as a line of text on a pipe.
std::string encode(const LoadResult & r) {
    std::string s = fmt::format("{} {} {} {:.3f} {}", r.ok, r.busy, r.errors, r.mean_batch, r.latency_ms.size());
    for (double v : r.latency_ms) s += fmt::format(" {:.3f}", v);
    return s + "\n";
}
LoadResult decode(const std::string & s) {
    LoadResult         r;
    std::istringstream in(s);
    size_t             n = 0;
    in >> r.ok >> r.busy >> r.errors >> r.mean_batch >> n;
    r.latency_ms.resize(n);
    for (auto & v : r.latency_ms) in >> v;
    return r;
}

Result<LoadResult> run_load(const BenchArgs & a, int n_adapters, int max_batch, const std::string & tag) {
    std::string dir = fmt::format("/tmp/m4bench-{}-{}", ::getpid(), tag);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ::chmod(dir.c_str(), 0777);
    std::string sock = dir + "/s.sock";
    std::ofstream(dir + "/config.json") << fmt::format(
        R"({{"max_batch_items": {}, "max_queued_items": 4096, "max_pending_per_app": 4096, "quota_adapters": 1024, "quota_bytes": 1073741824}})",
        max_batch);
    pid_t daemon = ::fork();
    if (daemon == 0) {
        FILE * f = std::freopen((dir + "/daemon.log").c_str(), "w", stderr);
        (void)f;
        std::string d = find_daemon(a.daemon);
        ::execl(d.c_str(), "m4fwd", "--config", (dir + "/config.json").c_str(), "--socket", sock.c_str(), "--state-dir",
                (dir + "/state").c_str(), "--firmware", a.firmware.c_str(), nullptr);
        _exit(127);
    }
    auto stop_daemon = [&] {
        ::kill(daemon, SIGTERM);
        ::waitpid(daemon, nullptr, 0);
        std::filesystem::remove_all(dir);
    };
    bool up = false;
    for (int i = 0; i < 400 && !up; ++i) {
        up = client::Client::connect(sock, 1000).is_ok();
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (!up) {
        stop_daemon();
        return io_error("m4fwd did not start (see " + find_daemon(a.daemon) + ")");
    }
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware));
    // Random adapters, spread over the apps round robin.
    const bool          as_root = ::geteuid() == 0;
    const int           apps    = as_root ? a.apps : 1;
    std::vector<std::vector<std::string>> names(apps);
    std::vector<std::vector<std::string>> files(apps);
    for (int i = 0; i < n_adapters; ++i) {
        adapter::Manifest m;
        model::parse_modality(a.modality, &m.modality);
        if (m.modality == model::Modality::Text) m.path = model::Path::Backbone;
        if (a.task == "generate") {
            if (m.path == model::Path::Encoder) m.path = model::Path::Full;
            m.task = adapter::Task::Generate;
            m.labels.clear();
            m.generation.max_new_tokens = a.new_tokens;
        }
        m.labels = {"a", "b", "c", "d"};
        M4_ASSIGN_OR_RETURN(m.targets, adapter::expand_targets(fw->config(), m.path, m.modality, "attn"));
        m.lora_rank = 4, m.lora_alpha = 8;
        std::string p = fmt::format("{}/a{}.m4a", dir, i);
        M4_RETURN_IF_ERROR(adapter::write_random_adapter(p, *fw, m, 1000 + i));
        names[i % apps].push_back(fmt::format("a{}", i));
        files[i % apps].push_back(p);
    }
    if (n_adapters == 1) {
        // One adapter for every app: registered by this (admin) process and published as shared.
        auto admin = client::Client::connect(sock);
        if (!admin) return admin.status();
        M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(files[0][0]));
        auto        r = (*admin)->register_adapter("a0", bytes, true);
        v1::Request pub;
        pub.mutable_publish_adapter()->set_app((*admin)->hello().app());
        pub.mutable_publish_adapter()->set_name("a0");
        pub.mutable_publish_adapter()->set_shared(true);
        auto p = (*admin)->call(pub);
        if (!r || !p || p->status() != v1::STATUS_OK) return io_error("could not publish the shared adapter");
        for (int app = 0; app < apps; ++app) names[app] = {"shared/a0"}, files[app].clear();
    }
    // One process per app (a distinct uid when root); each registers its adapters, then loads.
    std::vector<std::pair<pid_t, int>> kids;
    const int                          per_app = std::max(1, a.concurrency / apps);
    for (int app = 0; app < apps; ++app) {
        int pipefd[2];
        if (::pipe(pipefd) != 0) return io_error("pipe failed");
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(pipefd[0]);
            if (as_root && (::setgid(31000 + app) != 0 || ::setuid(31000 + app) != 0)) _exit(2);
            auto c = client::Client::connect(sock);
            if (!c) _exit(3);
            for (size_t k = 0; k < files[app].size(); ++k) {
                auto bytes = read_file_bytes(files[app][k]);
                auto r     = bytes ? (*c)->register_adapter(names[app][k], *bytes, true) : Result<v1::Response>(bytes.status());
                if (!r || r->status() != v1::STATUS_OK) _exit(4);
            }
            std::string line = encode(run_clients(sock, names[app], per_app, a, fw->config()));
            (void)!::write(pipefd[1], line.data(), line.size());
            _exit(0);
        }
        ::close(pipefd[1]);
        kids.emplace_back(pid, pipefd[0]);
    }
    LoadResult total;
    for (auto & [pid, fd] : kids) {
        std::string text;
        char        buf[65536];
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
        ::close(fd);
        int st = 0;
        ::waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            total.errors++;
            continue;
        }
        LoadResult r = decode(text);
        total.mean_batch += r.mean_batch * double(r.ok);
        total.ok += r.ok, total.busy += r.busy, total.errors += r.errors;
        total.latency_ms.insert(total.latency_ms.end(), r.latency_ms.begin(), r.latency_ms.end());
    }
    total.mean_batch = total.ok ? total.mean_batch / double(total.ok) : 0;
    total.seconds    = a.duration - warmup_seconds(a);
    stop_daemon();
    return total;
}

void print(const std::string & what, const BenchArgs & a, int adapters, int max_batch, LoadResult & r) {
    std::sort(r.latency_ms.begin(), r.latency_ms.end());
    auto pct = [&](double p) {
        return r.latency_ms.empty() ? 0.0 : r.latency_ms[std::min(r.latency_ms.size() - 1, size_t(p * r.latency_ms.size()))];
    };
    fmt::print("{:<28} apps {:>2}  adapters {:>3}  clients {:>3}  max batch {:>3}  {:>8.1f} req/s  p50 {:>7.2f} ms  "
               "p99 {:>7.2f} ms  mean batch {:>5.1f}  busy {}  errors {}\n",
               what, ::geteuid() == 0 ? a.apps : 1, adapters, a.concurrency, max_batch, r.ok / r.seconds, pct(0.5),
               pct(0.99), r.mean_batch, r.busy, r.errors);
}

Status run_bench_service(const BenchArgs & a) {
    if (a.firmware.empty()) return invalid_argument("--firmware is required");
    if (a.duration <= 0 || warmup_seconds(a) >= a.duration)
        return invalid_argument(fmt::format("--warmup ({} s) must be shorter than --duration ({} s)", warmup_seconds(a), a.duration));
    if (::geteuid() != 0 && a.apps > 1)
        fmt::print("note: not root, so every client runs as this one uid (one app)\n");
    if (!a.compare) {
        M4_ASSIGN_OR_RETURN(LoadResult r, run_load(a, a.adapters, a.max_batch, "load"));
        print("load", a, a.adapters, a.max_batch, r);
        return Status::ok();
    }
    M4_ASSIGN_OR_RETURN(LoadResult single, run_load(a, 1, a.max_batch, "single"));
    print("1 adapter, batched", a, 1, a.max_batch, single);
    M4_ASSIGN_OR_RETURN(LoadResult many, run_load(a, a.adapters, a.max_batch, "many"));
    print(fmt::format("{} adapters, batched", a.adapters), a, a.adapters, a.max_batch, many);
    M4_ASSIGN_OR_RETURN(LoadResult serial, run_load(a, a.adapters, 1, "serial"));
    print(fmt::format("{} adapters, one at a time", a.adapters), a, a.adapters, 1, serial);
    double r1 = single.ok ? double(many.ok) / double(single.ok) : 0;
    double r2 = serial.ok ? double(many.ok) / double(serial.ok) : 0;
    fmt::print("ratio {} adapters / 1 adapter (target ≥ 0.8): {:.2f}\n", a.adapters, r1);
    fmt::print("ratio batched / one at a time (target ≥ 3):   {:.2f}\n", r2);
    return Status::ok();
}

}  // namespace

void add_bench_service_command(CLI::App & bench, int * rc) {
    auto   a   = std::make_shared<BenchArgs>();
    auto * cmd = bench.add_subcommand("service", "load-test m4fwd: throughput, p50/p99 latency, errors");
    cmd->add_option("--firmware", a->firmware, "firmware the daemon serves")->required();
    cmd->add_option("--daemon", a->daemon, "m4fwd binary (default: next to m4fw)");
    cmd->add_option("--apps", a->apps, "apps (distinct uids when run as root)");
    cmd->add_option("--adapters", a->adapters, "distinct adapters in flight");
    cmd->add_option("--concurrency", a->concurrency, "closed-loop clients in all");
    cmd->add_option("--duration", a->duration, "seconds per load");
    cmd->add_option("--warmup", a->warmup, "seconds at the start of each load not measured (default: a quarter of --duration)");
    cmd->add_option("--max-batch", a->max_batch, "the daemon's max_batch_items");
    cmd->add_option("--modality", a->modality, "image | imu | text");
    cmd->add_option("--task", a->task, "classify (encoder or backbone path) | generate (full or backbone path)");
    cmd->add_option("--new-tokens", a->new_tokens, "tokens per generation request");
    cmd->add_flag("--compare", a->compare, "1 adapter vs many vs one-at-a-time, in one run");
    cmd->callback([a, rc] { *rc = report(run_bench_service(*a)); });
}

}  // namespace m4::cli
