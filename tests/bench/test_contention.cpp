// `m4fw bench contention`'s logic (src/bench/contention.cpp): the rows it returns are consistent
// (the ratio is the median of per-round paired ratios against the fixed count with the best total
// rate), the busy background processes exist during a row and are gone after it, the global pool
// is restored, and a bad load is refused by name. Speed itself is never asserted here.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "bench/contention.h"

using namespace m4;

namespace {

const std::string kFirmware = std::string(M4_SOURCE_DIR) + "/firmware/m4-tiny.m4fw";

bench::ContentionOptions tiny_options() {
    bench::ContentionOptions o;
    o.firmware = kFirmware;
    o.prefill  = 8;
    o.decode   = 4;
    o.min_time = 0.02;
    o.rounds   = 3;
    o.busy     = {0, 1};
    o.threads  = {1, 2};
    o.loads    = {"decode", "encoder"};
    return o;
}

TEST(Contention, RowsPairTheRoundsAgainstTheBestFixedCount) {
    int on_row_calls = 0;
    auto rows = bench::run_contention_bench(tiny_options(), [&](const bench::ContentionRow &) { ++on_row_calls; });
    ASSERT_TRUE(rows.is_ok()) << rows.status().message();
    ASSERT_EQ(rows->size(), 4u);  // 2 loads × 2 busy counts, load-major
    EXPECT_EQ(on_row_calls, 4);
    EXPECT_EQ((*rows)[0].busy, 0);
    EXPECT_EQ((*rows)[1].busy, 1);
    EXPECT_NE((*rows)[0].load.find("decode"), std::string::npos);
    EXPECT_NE((*rows)[2].load.find("encoder"), std::string::npos);
    for (const auto & r : *rows) {
        SCOPED_TRACE(r.load + " busy " + std::to_string(r.busy));
        ASSERT_EQ(r.fixed_rates.size(), 2u);
        ASSERT_EQ(r.round_ratios.size(), 3u);
        EXPECT_GT(r.default_rate, 0);
        for (double v : r.fixed_rates) EXPECT_GT(v, 0);
        const size_t best =
            static_cast<size_t>(std::max_element(r.fixed_rates.begin(), r.fixed_rates.end()) - r.fixed_rates.begin());
        EXPECT_EQ(r.best_fixed, r.fixed_threads[best]);
        EXPECT_NEAR(r.ratio_total, r.default_rate / r.fixed_rates[best], 1e-9 * r.ratio_total);
        std::vector<double> sorted = r.round_ratios;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_DOUBLE_EQ(r.ratio, sorted[1]);  // the median of three rounds
        for (double v : r.round_ratios) EXPECT_GT(v, 0);
    }
    // The global pool is back to its default configuration.
    EXPECT_EQ(ThreadPool::global().size(), default_thread_count());
    EXPECT_EQ(ThreadPool::global().adaptive(), std::getenv("M4_THREADS") == nullptr);
}

TEST(Contention, BusyProcessesSpinDuringARowAndAreGoneAfterIt) {
    std::vector<int> pids;
    {
        bench::BusyProcesses busy(2);
        pids = busy.pids();
        ASSERT_EQ(pids.size(), 2u);
        for (int pid : pids) {
            std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
            std::string field, state;
            stat >> field >> field >> state;  // pid (comm) state
            EXPECT_EQ(state, "R") << "busy process " << pid << " is not running";
        }
    }
    for (int pid : pids) {
        errno = 0;
        EXPECT_EQ(kill(pid, 0), -1) << "busy process " << pid << " outlived its row";
        EXPECT_EQ(errno, ESRCH);
    }
}

TEST(Contention, UnknownLoadAndMissingEncoderAreRefusedByName) {
    auto o  = tiny_options();
    o.loads = {"decode", "sideways"};
    auto r  = bench::run_contention_bench(o, [](const bench::ContentionRow &) {});
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("'sideways'"), std::string::npos) << r.status().message();

    o.firmware = "/nonexistent/fw.m4fw";
    o.loads    = {"decode"};
    r          = bench::run_contention_bench(o, [](const bench::ContentionRow &) {});
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("/nonexistent/fw.m4fw"), std::string::npos) << r.status().message();
}

}  // namespace
