// `m4fw data …`: build, list, audit and inspect the benchmark's data sets (src/data).
//   m4fw data list                      tasks, their sources, and whether they are built
//   m4fw data build [TASK…|--all] [--dir D] [--scale S] [--imu-seconds 2] [--force] [-j N]
//   m4fw data audit [--dir D]           no test example in any train split or in pretraining
//   m4fw data show TASK [--split S] [-n N]
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stb/stb_image_write.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>

#include "base/mapped_file.h"
#include "commands.h"
#include "data/build.h"
#include "data/dataset.h"
#include "data/task.h"

namespace m4::cli {

namespace {

struct DataArgs {
    std::vector<std::string> tasks;
    bool all = false;
    data::BuildOptions opt;
    std::string split  = "train";
    int show           = 3;
    int64_t index      = 0;
    double imu_seconds = 2.0;
    std::string out;
    std::string first_label;  // export: the split's first example with this label instead of --index
    int reduce = 1;           // export: an image box-averaged by this factor (img.super_resolution's input)
};

int run_build(DataArgs & a) {
    std::vector<std::string> names = a.tasks;
    if (a.all)
        for (const auto & t : data::all_tasks()) names.push_back(t.info.name);
    if (names.empty()) {
        fmt::print(stderr, "m4fw: error: name tasks to build, or --all (see `m4fw data list`)\n");
        return 3;
    }
    // The simulated IMU windows: whole 20 ms samples only.
    const double rows = a.imu_seconds * data::kImuRate;
    if (!(std::abs(rows - std::round(rows)) < 1e-6)) {
        fmt::print(stderr, "m4fw: error: --imu-seconds {}: not a whole number of samples at {} Hz\n", a.imu_seconds,
                   data::kImuRate);
        return 3;
    }
    a.opt.imu_rows = static_cast<int>(std::lround(rows));
    auto t0        = std::chrono::steady_clock::now();
    Status st      = data::build_tasks(names, a.opt);
    double s       = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a.opt.quiet)
        fmt::print(stderr, "m4fw data build: {} task(s) in {:.1f} s under {}\n", names.size(), s, a.opt.dir);
    return report(st);
}

int run_list(DataArgs & a) {
    auto rows = data::list_tasks(a.opt);
    fmt::print("{:<22} {:<11} {:<15} {:<9} {}\n", "task", "group", "provenance", "sources", "built");
    size_t ready = 0, tasks = 0;
    for (const auto & r : rows) {
        if (r.group != "pretrain") {
            ++tasks;
            ready += r.sources_installed;
        }
        fmt::print("{:<22} {:<11} {:<15} {:<9} {}\n", r.name, r.group, r.provenance,
                   r.sources_installed ? "installed" : "MISSING",
                   r.up_to_date ? "yes"
                   : r.built    ? "stale"
                                : "no");
        if (!r.sources_installed) fmt::print("    {}\n", r.missing);
    }
    fmt::print("{} tasks ({} with every source installed) + the pretraining corpus\n", tasks, ready);
    return 0;
}

int run_audit(DataArgs & a) {
    data::AuditReport rep;
    Status st = data::audit(a.opt.dir, &rep);
    for (const auto & f : rep.findings) fmt::print("{}\n", f);
    fmt::print(
        "audit: {} tasks, {} test examples checked against {} train examples and {} pretraining records: "
        "{} leaks\n",
        rep.tasks, rep.test_examples, rep.train_examples, rep.pretrain_records, rep.leaks);
    return report(st);
}

int run_show(DataArgs & a) {
    if (a.tasks.size() != 1) {
        fmt::print(stderr, "m4fw: error: name one task\n");
        return 3;
    }
    auto ds = data::Dataset::open(a.opt.dir, a.tasks[0], a.split);
    if (!ds) return report(ds.status());
    const auto & m = ds->manifest();
    fmt::print("{} [{}] {} examples, modality {}, kind {}, metric {}\n{}\nheld out: {}\n", a.tasks[0], a.split,
               ds->size(), m.value("modality", "?"), m.value("kind", "?"), m.value("metric", "?"),
               m.value("description", ""), m.value("held_out", ""));
    auto labels = ds->labels();
    for (size_t i = 0; i < ds->size() && i < size_t(a.show); ++i) {
        data::Example ex = ds->at(i);
        std::string what = ds->modality() == data::Modality::Text
                               ? fmt::format("\"{}\"", ex.text().substr(0, 100))
                               : fmt::format("{}×{}×{}", ex.dims[0], ex.dims[1], ex.dims[2]);
        fmt::print("  #{} {}{}{}{}\n", i, what, ex.prompt.empty() ? "" : fmt::format(" prompt \"{}\"", ex.prompt),
                   ex.label >= 0 && size_t(ex.label) < labels.size() ? " label " + labels[ex.label] : "",
                   ex.target.empty() ? "" : fmt::format(" target \"{}\"", ex.target.substr(0, 100)));
    }
    return 0;
}

// Writes one stored example as the file a user would hand to `m4fw run`: PNG, 16-bit WAV, IMU CSV or
// UTF-8 text (by the modality), so demos and bug reports use real benchmark inputs.
// `reduce` > 1: a square image is written box-averaged by that factor (data::sr_reduce, the
// degradation img.super_resolution's inputs are made with), grey replicated to RGB.
Status export_example(const data::Dataset & ds, size_t i, const std::string & out, int reduce) {
    const data::Example ex  = ds.at(i);
    const std::string where = ds.path() + " #" + std::to_string(i);
    if (reduce > 1) {
        const int64_t h = ex.dims[0], w = ex.dims[1], c = ex.dims[2];
        if (ds.modality() != data::Modality::Image)
            return invalid_argument(where + ": --reduce applies to images only");
        if (h != w || h % reduce != 0 || (c != 1 && c != 3) || ex.payload_len != size_t(h * w * c))
            return invalid_argument(where + fmt::format(": a {}x{}x{} image cannot be reduced by {} (it must be a "
                                                        "square grey or RGB image whose side {} divides)",
                                                        h, w, c, reduce, reduce));
        std::vector<uint8_t> rgb(size_t(h * w * 3));
        for (int64_t p = 0; p < h * w; ++p)
            for (int64_t k = 0; k < 3; ++k) rgb[size_t(p * 3 + k)] = ex.payload[p * c + (c == 3 ? k : 0)];
        const std::vector<uint8_t> small = data::sr_reduce(rgb.data(), int(h), reduce);
        const int side                   = int(h / reduce);
        if (!stbi_write_png(out.c_str(), side, side, 3, small.data(), side * 3))
            return io_error(out + ": could not write the PNG of " + where);
        return Status::ok();
    }
    switch (ds.modality()) {
        case data::Modality::Image:
            if (!stbi_write_png(out.c_str(), int(ex.dims[1]), int(ex.dims[0]), int(ex.dims[2]), ex.payload,
                                int(ex.dims[1] * ex.dims[2])))
                return io_error(out + ": could not write the PNG of " + where);
            return Status::ok();
        case data::Modality::Audio: {
            // RIFF/WAVE, PCM 16-bit mono at the benchmark's 16 kHz.
            const uint32_t n = uint32_t(ex.payload_len), rate = data::kAudioRate, byte_rate = rate * 2;
            std::string h = "RIFF";
            auto u32      = [&](uint32_t v) { h.append(reinterpret_cast<const char *>(&v), 4); };
            auto u16      = [&](uint16_t v) { h.append(reinterpret_cast<const char *>(&v), 2); };
            u32(36 + n);
            h += "WAVEfmt ";
            u32(16), u16(1), u16(1), u32(rate), u32(byte_rate), u16(2), u16(16);
            h += "data";
            u32(n);
            h.append(reinterpret_cast<const char *>(ex.payload), n);
            return write_file_atomic(out, h.data(), h.size());
        }
        case data::Modality::Imu: {
            std::string csv   = "ax,ay,az,gx,gy,gz\n";
            const size_t rows = ex.payload_len / (6 * sizeof(float));
            for (size_t r = 0; r < rows; ++r) {
                float v[6];
                std::memcpy(v, ex.payload + r * sizeof v, sizeof v);
                csv += fmt::format("{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f}\n", v[0], v[1], v[2], v[3], v[4], v[5]);
            }
            return write_file_atomic(out, csv.data(), csv.size());
        }
        case data::Modality::Text:
            return write_file_atomic(out, ex.payload, ex.payload_len);
    }
    return invalid_argument(where + ": unknown modality");
}

int run_export(DataArgs & a) {
    auto ds = data::Dataset::open(a.opt.dir, a.tasks[0], a.split);
    if (!ds) return report(ds.status());
    if (!a.first_label.empty()) {
        // A selection rule fixed before any model sees the data (the demo's): the lowest index
        // whose label is first_label.
        const auto labels = ds->labels();
        const auto it     = std::find(labels.begin(), labels.end(), a.first_label);
        if (it == labels.end())
            return report(invalid_argument(ds->path() + ": no label '" + a.first_label +
                                           "' (labels: " + fmt::format("{}", fmt::join(labels, ", ")) + ")"));
        const int32_t want = static_cast<int32_t>(it - labels.begin());
        a.index            = -1;
        for (size_t i = 0; i < ds->size() && a.index < 0; ++i)
            if (ds->at(i).label == want) a.index = static_cast<int64_t>(i);
        if (a.index < 0) return report(invalid_argument(ds->path() + ": no example labelled '" + a.first_label + "'"));
    }
    if (a.index < 0 || size_t(a.index) >= ds->size())
        return report(invalid_argument(ds->path() + ": example " + std::to_string(a.index) + " out of range (" +
                                       std::to_string(ds->size()) + " examples)"));
    Status st = export_example(*ds, size_t(a.index), a.out, a.reduce);
    if (!st.is_ok()) return report(st);
    const data::Example ex = ds->at(size_t(a.index));
    auto labels            = ds->labels();
    nlohmann::json j       = {{"task", a.tasks[0]}, {"split", a.split}, {"index", a.index}, {"file", a.out}};
    if (a.reduce > 1) j["reduced_by"] = a.reduce;
    if (!ex.prompt.empty()) j["prompt"] = std::string(ex.prompt);
    if (!ex.target.empty()) j["target"] = std::string(ex.target);
    if (ex.label >= 0)
        j["label"] = size_t(ex.label) < labels.size() ? labels[size_t(ex.label)] : std::to_string(ex.label);
    fmt::print("{}\n", j.dump());
    return 0;
}

}  // namespace

void add_data_commands(CLI::App & app, int * rc) {
    auto a       = std::make_shared<DataArgs>();
    CLI::App * g = app.add_subcommand("data", "benchmark data sets: build, list, audit, show");
    g->require_subcommand(1);
    auto add_dir = [&](CLI::App * c) { c->add_option("--dir", a->opt.dir, "data directory")->capture_default_str(); };

    CLI::App * b = g->add_subcommand("build", "build tasks (cached: unchanged tasks are skipped)");
    b->add_option("tasks", a->tasks, "task names (see `m4fw data list`); `pretrain` is the pretraining corpus");
    b->add_flag("--all", a->all, "every task and the pretraining corpus");
    add_dir(b);
    b->add_option("--scale", a->opt.scale, "fraction of the full example counts (small builds for tests)")
        ->check(CLI::Range(0.0001, 1.0));
    b->add_option("--seed", a->opt.seed, "the benchmark seed")->capture_default_str();
    b->add_option("--imu-seconds", a->imu_seconds,
                  "length of the simulated IMU windows (imu.*, mm.imu_caption, pretrain) at 50 Hz; another length than "
                  "2 s enters the cache key and the manifest (`imu_rows`)")
        ->capture_default_str();
    b->add_flag("--force", a->opt.force, "rebuild even when cached");
    b->add_option("-j,--jobs", a->opt.jobs, "tasks built in parallel")->capture_default_str();
    b->add_flag("-q,--quiet", a->opt.quiet, "no progress output");
    b->callback([a, rc] { *rc = run_build(*a); });

    CLI::App * l = g->add_subcommand("list", "tasks and whether their Debian sources are installed");
    add_dir(l);
    l->callback([a, rc] { *rc = run_list(*a); });

    CLI::App * au = g->add_subcommand("audit", "prove no test example occurs in a train split or in pretraining");
    add_dir(au);
    au->callback([a, rc] { *rc = run_audit(*a); });

    CLI::App * s = g->add_subcommand("show", "print a task's manifest summary and first examples");
    s->add_option("task", a->tasks)->required();
    s->add_option("--split", a->split)->capture_default_str();
    s->add_option("-n", a->show, "examples to print")->capture_default_str();
    add_dir(s);
    s->callback([a, rc] { *rc = run_show(*a); });

    CLI::App * e = g->add_subcommand("export", "write one example as a PNG / WAV / CSV / text file (prints its label)");
    e->add_option("task", a->tasks)->required()->expected(1);
    e->add_option("--split", a->split)->capture_default_str();
    e->add_option("--index", a->index, "example number")->capture_default_str();
    e->add_option("--first-label", a->first_label, "export the split's first example with this label (not --index)");
    e->add_option("--out", a->out, "output file")->required();
    e->add_option(
         "--reduce", a->reduce,
         "an image box-averaged by this factor, as img.super_resolution makes its inputs (e.g. 2: 32x32 → 16x16)")
        ->check(CLI::Range(1, 64));
    add_dir(e);
    e->callback([a, rc] { *rc = run_export(*a); });
}

}  // namespace m4::cli
