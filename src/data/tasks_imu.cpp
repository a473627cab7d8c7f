// IMU tasks: windows of 6 axes at 50 Hz from the physically based simulator (imu_sim.h), 2 s
// (100 rows) unless the build asks for another length (BuildOptions::imu_rows, `--imu-seconds`).
// All generated: no real IMU data exists in Debian. Test splits use simulated
// subjects (body, style, device errors, mounting) drawn from a seed stream never used for training.
#include <fmt/format.h>

#include <cmath>

#include "data/imu_sim.h"
#include "data/raster.h"
#include "data/task.h"

namespace m4::data {

namespace {

struct SimSubject {
    Subject body;
    SensorErrors err;
    Mat3 mount[kPlacementCount];
};

// Subjects of one side: seeds of the stream "subjects-train" or "subjects-test".
std::vector<SimSubject> subjects(const TaskOutput & out, bool test, size_t n) {
    Rng rng = out.rng(test ? "subjects-test" : "subjects-train");
    std::vector<SimSubject> s(n);
    for (auto & x : s) {
        x.body = Subject::draw(rng);
        x.err  = SensorErrors::draw(rng);
        for (int p = 0; p < kPlacementCount; ++p) {
            // Nominal mounting per placement plus a random turn (a phone goes in a pocket either way).
            Mat3 nominal = p == 1 ? rot_x(1.5708) : p == 3 ? rot_y(0.3) : rot_x(1.5708);
            x.mount[p]   = mul(nominal, mul(rot_z(rng.uniform(-3.14159, 3.14159)), rot_x(rng.normal(0, 0.2))));
        }
    }
    return s;
}

std::vector<float> window(Activity a, Placement p, const SimSubject & s, Rng & rng, double * step_hz, int rows) {
    ActivityParams ap = activity_params(a, s.body, rng);
    if (step_hz) *step_hz = ap.step_hz;
    Motion m = activity_motion(a, p, s.body, ap, s.mount[static_cast<int>(p)], rng);
    return sense(m, rng.uniform(1, 30), rows, s.err, rng);
}

// --- imu.har: 8 activities, any placement ------------------------------------------------------
Status build_har(TaskOutput & out) {
    std::vector<std::string> labels;
    for (int a = 0; a < kActivityCount; ++a) labels.push_back(activity_name(static_cast<Activity>(a)));
    out.set_labels(labels);
    for (bool t : {false, true}) {
        auto subj = subjects(out, t, t ? 9 : 21);  // UCI-HAR-like 21/9 subjects
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 2000 : 8000, 16);
        for (size_t i = 0; i < n; ++i) {
            const int a     = int(i % kActivityCount);
            const size_t si = rng.below(subj.size());
            ExampleIn ex =
                ExampleIn::imu(window(static_cast<Activity>(a), static_cast<Placement>(rng.below(kPlacementCount)),
                                      subj[si], rng, nullptr, out.imu_rows()));
            ex.label = a;
            ex.group = uint32_t(si);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- imu.placement: where the phone is carried while walking -----------------------------------
Status build_placement(TaskOutput & out) {
    std::vector<std::string> labels;
    for (int p = 0; p < kPlacementCount; ++p) labels.push_back(placement_name(static_cast<Placement>(p)));
    out.set_labels(labels);
    for (bool t : {false, true}) {
        auto subj = subjects(out, t, t ? 9 : 21);
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 1000 : 4000, 8);
        for (size_t i = 0; i < n; ++i) {
            const int p     = int(i % kPlacementCount);
            const auto a    = rng.chance(0.7)   ? Activity::Walk
                              : rng.chance(0.5) ? Activity::Upstairs
                                                : Activity::Downstairs;
            const size_t si = rng.below(subj.size());
            ExampleIn ex = ExampleIn::imu(window(a, static_cast<Placement>(p), subj[si], rng, nullptr, out.imu_rows()));
            ex.label     = p;
            ex.group     = uint32_t(si);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- imu.cadence: steps per minute of walking or running (regression) ---------------------------
Status build_cadence(TaskOutput & out) {
    for (bool t : {false, true}) {
        auto subj = subjects(out, t, t ? 9 : 21);
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 1000 : 4000, 8);
        for (size_t i = 0; i < n; ++i) {
            static const Activity acts[] = {Activity::Walk, Activity::Run, Activity::Upstairs, Activity::Downstairs};
            double hz                    = 0;
            const size_t si              = rng.below(subj.size());
            ExampleIn ex = ExampleIn::imu(window(acts[rng.below(4)], static_cast<Placement>(rng.below(kPlacementCount)),
                                                 subj[si], rng, &hz, out.imu_rows()));
            ex.value     = float(hz * 60);
            ex.group     = uint32_t(si);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    out.extra()["value"] = "steps per minute";
    return Status::ok();
}

// --- imu.gesture: 10 hand gestures with a wrist IMU ---------------------------------------------
std::vector<std::array<double, 2>> gesture_path(int g, Rng & rng) {
    const double s = rng.uniform(0.15, 0.35);
    std::vector<std::array<double, 2>> p;
    auto circle = [&](bool cw) {
        for (int k = 0; k <= 24; ++k) {
            double a = (cw ? -1 : 1) * 2 * 3.14159265 * k / 24;
            p.push_back({s / 2 * std::cos(a), s / 2 * std::sin(a)});
        }
    };
    switch (g) {
        case 0:
            p = {{s / 2, 0}, {-s / 2, 0}};
            break;  // swipe left
        case 1:
            p = {{-s / 2, 0}, {s / 2, 0}};
            break;  // swipe right
        case 2:
            p = {{0, -s / 2}, {0, s / 2}};
            break;  // swipe up
        case 3:
            p = {{0, s / 2}, {0, -s / 2}};
            break;  // swipe down
        case 4:
            circle(true);
            break;
        case 5:
            circle(false);
            break;
        case 6:  // shake (left-right, 3 times)
            for (int k = 0; k < 7; ++k) p.push_back({(k % 2 ? 1 : -1) * s / 4, 0});
            break;
        case 7:
            p = {{-s / 2, s / 2}, {s / 2, s / 2}, {-s / 2, -s / 2}, {s / 2, -s / 2}};
            break;  // Z
        case 8:
            p = {{-s / 2, -s / 2}, {0, s / 2}, {s / 2, -s / 2}, {-s / 2, -s / 2}};
            break;  // triangle
        default:
            p = {{-s / 2, 0}, {-s / 6, -s / 3}, {s / 2, s / 2}};
            break;  // check mark
    }
    return p;
}

Status build_paths(TaskOutput & out, const std::vector<std::string> & labels,
                   const std::function<std::vector<std::array<double, 2>>(int, bool, Rng &)> & path_of, size_t n_train,
                   size_t n_test) {
    out.set_labels(labels);
    for (bool t : {false, true}) {
        auto subj = subjects(out, t, t ? 6 : 24);
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? n_test : n_train, labels.size() * 2);
        for (size_t i = 0; i < n; ++i) {
            const int g     = int(i % labels.size());
            const size_t si = rng.below(subj.size());
            const auto & s  = subj[si];
            auto path       = path_of(g, t, rng);
            // Writer style: slant, scale and speed from the subject, jitter per repetition.
            const double slant = 0.15 * std::sin(s.body.phase), dur = rng.uniform(0.9, 1.5) / s.body.cadence;
            for (auto & q : path) q[0] += slant * q[1];
            Motion m     = path_motion(path, 0.25, dur, s.mount[1], rng);
            ExampleIn ex = ExampleIn::imu(sense(m, 0.0, out.imu_rows(), s.err, rng));
            ex.label     = g;
            ex.group     = uint32_t(si);
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

Status build_gesture(TaskOutput & out) {
    return build_paths(
        out,
        {"swipe left", "swipe right", "swipe up", "swipe down", "circle clockwise", "circle anticlockwise", "shake",
         "zigzag", "triangle", "check mark"},
        [](int g, bool, Rng & rng) { return gesture_path(g, rng); }, 4000, 1000);
}

// --- imu.airwrite: digits written in the air, pen paths from Hershey fonts ----------------------
Status build_airwrite(TaskOutput & out) {
    static const std::vector<std::string> train_fonts = {"futural", "rowmans", "timesr", "scripts", "gothiceng"};
    static const std::vector<std::string> test_fonts  = {"futuram", "rowmant", "timesi", "cursive"};
    std::vector<std::vector<HersheyGlyph>> tr, te;
    for (const auto & f : train_fonts) {
        M4_ASSIGN_OR_RETURN(auto g, load_hershey("/usr/share/hershey-fonts/" + f + ".jhf"));
        tr.push_back(std::move(g));
    }
    for (const auto & f : test_fonts) {
        M4_ASSIGN_OR_RETURN(auto g, load_hershey("/usr/share/hershey-fonts/" + f + ".jhf"));
        te.push_back(std::move(g));
    }
    auto path_of = [&](int d, bool t, Rng & rng) {
        const auto & glyph = rng.pick(t ? te : tr)['0' + d - 32];
        const double scale = rng.uniform(0.006, 0.012);  // glyph units → metres (≈ 20-40 cm tall)
        std::vector<std::array<double, 2>> p;
        for (const auto & stroke : glyph.strokes)
            for (const auto & v : stroke) p.push_back({v[0] * scale, -v[1] * scale});  // pen-up moves included
        return p;
    };
    return build_paths(out, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, path_of, 4000, 1000);
}

}  // namespace

void register_imu_tasks(std::vector<Task> & t) {
    t.push_back({{"imu.har",
                  "imu",
                  Modality::Imu,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "human activity recognition (8 activities: walking, running, stairs up/down, sitting, standing, "
                  "lying, cycling), phone in pocket, wrist, waist or bag; simulated 6-axis IMU, 2 s at 50 Hz",
                  "simulated subjects (9 test vs 21 train, separate seed streams)",
                  {}},
                 build_har});
    t.push_back({{"imu.placement",
                  "imu",
                  Modality::Imu,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "where the phone is carried (pocket, wrist, waist, bag) while walking; simulated",
                  "simulated subjects",
                  {}},
                 build_placement});
    t.push_back({{"imu.cadence",
                  "imu",
                  Modality::Imu,
                  "regress",
                  "encoder",
                  "mae",
                  "generated",
                  "step rate (steps per minute) while walking, running or on stairs; simulated",
                  "simulated subjects",
                  {}},
                 build_cadence});
    t.push_back({{"imu.gesture",
                  "imu",
                  Modality::Imu,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "10 hand gestures (swipes, circles, shake, zigzag, triangle, check mark) from a wrist IMU; "
                  "minimum-jerk trajectories, simulated",
                  "simulated writers (6 test vs 24 train)",
                  {}},
                 build_gesture});
    t.push_back({{"imu.airwrite",
                  "imu",
                  Modality::Imu,
                  "classify",
                  "encoder",
                  "accuracy",
                  "generated",
                  "digits written in the air with a wrist IMU; pen paths of Hershey stroke fonts, simulated",
                  "Hershey fonts futuram, rowmant, timesi, cursive and simulated writers",
                  {"hershey-fonts-data"}},
                 build_airwrite});
}

}  // namespace m4::data
