#include "bench/contention.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "model/model.h"

namespace m4::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One load: call() does one unit of the load and returns the work it did (tokens or inputs),
// or -1 on failure; warm() is the untimed call before each measurement.
struct Load {
    std::string name, unit;
    std::function<int64_t()> call, warm;
};

struct Measured {
    double work = 0, seconds = 0;
    double rate() const { return seconds > 0 ? work / seconds : 0; }
};

Status measure(const Load & load, double min_time, Measured * m) {
    if (load.warm() < 0) return Status(StatusCode::Internal, "bench contention: " + load.name + " failed");
    const auto t0 = Clock::now();
    double s      = 0;
    do {
        const int64_t w = load.call();
        if (w < 0) return Status(StatusCode::Internal, "bench contention: " + load.name + " failed");
        m->work += static_cast<double>(w);
        s = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (s < min_time);
    m->seconds += s;
    return Status::ok();
}

ThreadPool::Stats minus(const ThreadPool::Stats & a, const ThreadPool::Stats & b) {
    ThreadPool::Stats d;
    d.jobs          = a.jobs - b.jobs;
    d.inline_jobs   = a.inline_jobs - b.inline_jobs;
    d.caller_chunks = a.caller_chunks - b.caller_chunks;
    d.worker_chunks = a.worker_chunks - b.worker_chunks;
    d.explored      = a.explored - b.explored;
    d.caller_sleeps = a.caller_sleeps - b.caller_sleeps;
    d.load_narrowed = a.load_narrowed - b.load_narrowed;
    return d;
}

void add(ThreadPool::Stats * a, const ThreadPool::Stats & b) {
    a->jobs += b.jobs;
    a->inline_jobs += b.inline_jobs;
    a->caller_chunks += b.caller_chunks;
    a->worker_chunks += b.worker_chunks;
    a->explored += b.explored;
    a->caller_sleeps += b.caller_sleeps;
    a->load_narrowed += b.load_narrowed;
}

int hardware_threads() {
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace

BusyProcesses::BusyProcesses(int n) {
    const pid_t parent = getpid();
    for (int i = 0; i < n; ++i) {
        const pid_t pid = fork();
        if (pid == 0) {
            // Only async-signal-safe calls here: the parent has threads.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(0);
            volatile uint64_t spin = 0;
            for (;;) spin = spin + 1;
        }
        if (pid > 0) pids_.push_back(pid);
    }
    // Let them reach their loops before anything is timed.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

BusyProcesses::~BusyProcesses() {
    for (int pid : pids_) kill(pid, SIGKILL);
    for (int pid : pids_) waitpid(pid, nullptr, 0);
}

Result<std::vector<ContentionRow>> run_contention_bench(const ContentionOptions & o,
                                                        const std::function<void(const ContentionRow &)> & on_row) {
    M4_ASSIGN_OR_RETURN(auto model, model::Model::load(o.firmware));
    std::unique_ptr<model::Model> enc_model_owned;
    const model::Model * enc_model = model.get();
    if (!o.encoder_firmware.empty()) {
        M4_ASSIGN_OR_RETURN(enc_model_owned, model::Model::load(o.encoder_firmware));
        enc_model = enc_model_owned.get();
    }
    const auto & bc = model->config().backbone;

    // Inputs built once, outside the timed calls.
    const int P = std::min<int>(o.prefill, static_cast<int>(bc.max_seq) - 1);
    const int D = std::min<int>(o.decode, static_cast<int>(bc.max_seq) - 2);
    std::vector<model::Request> prompt(1), seed(1), image(1);
    for (int t = 0; t < P; ++t)
        prompt[0].tokens.push_back(4 + (t * 31) % static_cast<int>(model->config().text.vocab_size - 4));
    seed[0].tokens = {5};
    int enc_index  = -1;
    for (int i = 0; i < model::kEncoderModalities && enc_index < 0; ++i)
        if (enc_model->config().encoders[i]) enc_index = i;

    std::vector<Load> loads;
    for (const auto & name : o.loads) {
        if (name == "decode") {
            auto gen = [&, D](int n) -> int64_t {
                model::GenerateOptions g;
                g.max_new_tokens = n;
                g.kv_dtype       = DType::BF16;
                auto out         = model->generate(model::Path::Backbone, model::Modality::Text, seed, g);
                return out ? static_cast<int64_t>((*out)[0].tokens.size()) : -1;
            };
            loads.push_back({fmt::format("decode {} tokens, batch 1", D), "tokens/s", [gen, D] { return gen(D); },
                             [gen] { return gen(4); }});
        } else if (name == "prefill") {
            auto run = [&, P]() -> int64_t {
                return model->run(model::Path::Backbone, model::Modality::Text, prompt).is_ok() ? P : -1;
            };
            loads.push_back({fmt::format("prefill {} tokens, batch 1", P), "tokens/s", run, run});
        } else if (name == "encoder") {
            if (enc_index < 0)
                return invalid_argument((o.encoder_firmware.empty() ? o.firmware : o.encoder_firmware) +
                                        ": no encoder for the encoder load (give --encoder-firmware)");
            const auto mod  = static_cast<model::Modality>(enc_index);
            const int64_t n = enc_model->config().encoders[enc_index]->input_values();
            image[0].signal.resize(static_cast<size_t>(n));
            for (int64_t k = 0; k < n; ++k) image[0].signal[k] = 0.01f * float((k * 7) % 61) - 0.3f;
            auto run = [&, mod]() -> int64_t {
                return enc_model->run(model::Path::Encoder, mod, image).is_ok() ? 1 : -1;
            };
            loads.push_back({fmt::format("encoder {}, batch 1", model::modality_name(mod)), "inputs/s", run, run});
        } else {
            return invalid_argument("bench contention: unknown load '" + name + "' (decode, prefill, encoder)");
        }
    }

    std::vector<int> fixed = o.threads;
    if (fixed.empty())
        for (int t = 1; t <= hardware_threads(); ++t) fixed.push_back(t);
    ThreadPool & pool = ThreadPool::global();
    std::vector<ContentionRow> rows;
    Status failed = Status::ok();
    for (const Load & load : loads) {
        for (int busy : o.busy) {
            ContentionRow row;
            row.load          = load.name;
            row.unit          = load.unit;
            row.busy          = busy;
            row.fixed_threads = fixed;
            // rates[0] is the default pool, rates[1 + i] fixed[i]; one Measured per round each.
            const size_t n_conf = fixed.size() + 1;
            const int n_rounds  = std::max(1, o.rounds);
            std::vector<std::vector<Measured>> rates(n_conf, std::vector<Measured>(static_cast<size_t>(n_rounds)));
            {
                BusyProcesses background(busy);
                // The default pool as a running service has it: its call sites already timed under
                // this load (one untimed measurement), and kept across the rounds (reset() to the
                // same adaptive configuration keeps them).
                pool.reset(hardware_threads(), /*adaptive=*/true);
                Measured settle;
                failed = measure(load, o.min_time, &settle);
                for (int r = 0; r < n_rounds && failed.is_ok(); ++r) {
                    // The order rotates from round to round, so that no configuration always
                    // runs first (after the settling run) or last.
                    for (size_t k = 0; k < n_conf && failed.is_ok(); ++k) {
                        const size_t c = (k + static_cast<size_t>(r)) % n_conf;
                        Measured & m   = rates[c][static_cast<size_t>(r)];
                        if (c == 0) {
                            pool.reset(hardware_threads(), /*adaptive=*/true);
                            const ThreadPool::Stats before = pool.stats();
                            failed                         = measure(load, o.min_time, &m);
                            add(&row.default_stats, minus(pool.stats(), before));
                        } else {
                            pool.reset(fixed[c - 1], /*adaptive=*/false);
                            failed = measure(load, o.min_time, &m);
                        }
                    }
                }
            }
            if (!failed.is_ok()) break;
            auto total = [&](size_t c) {
                Measured t;
                for (const auto & m : rates[c]) t.work += m.work, t.seconds += m.seconds;
                return t.rate();
            };
            row.default_rate = total(0);
            size_t best      = 1;
            for (size_t c = 1; c < n_conf; ++c) {
                row.fixed_rates.push_back(total(c));
                if (total(c) > total(best)) best = c;
            }
            row.best_fixed  = fixed[best - 1];
            row.ratio_total = total(best) > 0 ? row.default_rate / total(best) : 0;
            for (int r = 0; r < n_rounds; ++r) {
                const double b = rates[best][static_cast<size_t>(r)].rate();
                row.round_ratios.push_back(b > 0 ? rates[0][static_cast<size_t>(r)].rate() / b : 0);
            }
            std::vector<double> sorted = row.round_ratios;
            std::sort(sorted.begin(), sorted.end());
            const size_t h = sorted.size() / 2;
            row.ratio      = sorted.size() % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
            if (on_row) on_row(row);
            rows.push_back(std::move(row));
        }
        if (!failed.is_ok()) break;
    }
    pool.reset(default_thread_count(), std::getenv("M4_THREADS") == nullptr);
    if (!failed.is_ok()) return failed;
    return rows;
}

}  // namespace m4::bench
