// m4fw bench contention --firmware F [--encoder-firmware E] [--prefill 128] [--decode 64]
//                       [--min-time 1] [--rounds 3] [--busy 0,1,2] [--threads 1,2]
// The runtime on a shared CPU: decode, prefill and encoder throughput with 0, 1, 2 busy
// background processes (started and stopped by this command), at the default thread count and
// at each fixed one, and default ÷ best fixed per row (the logic is in src/bench/contention.cpp).
#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "bench/contention.h"
#include "commands.h"

namespace m4::cli {
namespace {

Status run_contention(const bench::ContentionOptions & o) {
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    fmt::print("m4fw bench contention: {}{} · {} hardware threads · default = {} threads, adaptive pool\n", o.firmware,
               o.encoder_firmware.empty() ? "" : " + encoder " + o.encoder_firmware, hw, hw);
    fmt::print(
        "each cell: {} round(s) of ≥ {:.1f} s, configurations alternating, order rotating; busy = background processes "
        "spinning in a loop\n",
        o.rounds, o.min_time);
    double worst = 1e9;
    bool header  = false;
    auto print   = [&](const bench::ContentionRow & r) {
        if (!header) {
            std::string fixed;
            for (int t : r.fixed_threads) fixed += fmt::format(" {:>11}", fmt::format("{} thr", t));
            fmt::print(
                  "{:<28} {:>4} {:>11}{} {:>8} {:>11} {:>7}   default pool: chunks by workers, jobs on one thread\n",
                  "load", "busy", "default", fixed, "ratio", "rounds", "pooled");
            header = true;
        }
        std::string fixed;
        for (double v : r.fixed_rates) fixed += fmt::format(" {:>11.1f}", v);
        const auto & s      = r.default_stats;
        const double all    = double(s.caller_chunks + s.worker_chunks);
        const double jobs   = double(s.jobs + s.inline_jobs);
        const auto [lo, hi] = std::minmax_element(r.round_ratios.begin(), r.round_ratios.end());
        fmt::print("{:<28} {:>4} {:>11.1f}{} {:>7.2f}{} {:>11} {:>7.2f}   {:.0f} %, {:.0f} %\n", r.load, r.busy,
                     r.default_rate, fixed, r.ratio, r.ratio >= 0.9 ? " " : "*",
                   r.round_ratios.empty() ? "" : fmt::format("{:.2f}–{:.2f}", *lo, *hi), r.ratio_total,
                   all > 0 ? 100.0 * s.worker_chunks / all : 0.0,
                   jobs > 0 ? 100.0 * double(s.inline_jobs) / jobs : 0.0);
        std::fflush(stdout);
        worst = std::min(worst, r.ratio);
    };
    M4_ASSIGN_OR_RETURN(auto rows, bench::run_contention_bench(o, print));
    fmt::print(
        "rates in tokens/s (decode, prefill) and inputs/s (encoder); ratio = median over rounds of default ÷ the "
        "best fixed count in the same round (rounds: their range; pooled: default ÷ best over all rounds); lowest "
        "{:.2f} (target ≥ 0.9{})\n",
        worst, worst >= 0.9 ? ": met" : ": NOT met, rows marked *");
    return Status::ok();
}

}  // namespace

void add_bench_contention_command(CLI::App & bench, int * rc) {
    auto o     = std::make_shared<bench::ContentionOptions>();
    auto * cmd = bench.add_subcommand("contention",
                                      "decode / prefill / encoder speed with busy background processes, "
                                      "default vs fixed thread counts");
    add_firmware_option(cmd, &o->firmware, "firmware .m4fw for the decode and prefill loads");
    cmd->add_option("--encoder-firmware", o->encoder_firmware,
                    "firmware whose first encoder runs the encoder load (default: --firmware's)");
    cmd->add_option("--prefill", o->prefill, "prompt tokens of the prefill load");
    cmd->add_option("--decode", o->decode, "new tokens of the decode load");
    cmd->add_option("--min-time", o->min_time, "seconds per measurement");
    cmd->add_option("--rounds", o->rounds, "alternations of the configurations within a row");
    cmd->add_option("--busy", o->busy, "background busy processes per row")->delimiter(',');
    cmd->add_option("--threads", o->threads, "fixed thread counts (default 1 … hardware threads)")->delimiter(',');
    cmd->add_option("--loads", o->loads, "loads to run: decode, prefill, encoder")->delimiter(',');
    cmd->callback([o, rc] { *rc = report(run_contention(*o)); });
}

}  // namespace m4::cli
