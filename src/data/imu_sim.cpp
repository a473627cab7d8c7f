#include "data/imu_sim.h"

#include <algorithm>
#include <cmath>

namespace m4::data {

namespace {

constexpr double kG  = 9.80665;
constexpr double kPi = 3.14159265358979323846;

Mat3 transpose(const Mat3 & a) {
    return {a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]};
}

double quantise(double v, double full_scale) {
    const double lsb = full_scale / 32768.0;
    v                = std::clamp(v, -full_scale, full_scale - lsb);
    return std::round(v / lsb) * lsb;
}

// Band-limited random wobble: a few random sinusoids in [f_lo, f_hi] Hz, unit-ish amplitude.
struct Wobble {
    std::array<double, 4> f{}, ph{}, a{};
    Wobble(Rng & rng, double f_lo, double f_hi) {
        for (int i = 0; i < 4; ++i) {
            f[i]  = rng.uniform(f_lo, f_hi);
            ph[i] = rng.uniform(0, 2 * kPi);
            a[i]  = rng.uniform(0.3, 1.0) / 2;
        }
    }
    double operator()(double t) const {
        double s = 0;
        for (int i = 0; i < 4; ++i) s += a[i] * std::sin(2 * kPi * f[i] * t + ph[i]);
        return s;
    }
};

}  // namespace

Mat3 rot_x(double a) {
    double c = std::cos(a), s = std::sin(a);
    return {1, 0, 0, 0, c, -s, 0, s, c};
}
Mat3 rot_y(double a) {
    double c = std::cos(a), s = std::sin(a);
    return {c, 0, s, 0, 1, 0, -s, 0, c};
}
Mat3 rot_z(double a) {
    double c = std::cos(a), s = std::sin(a);
    return {c, -s, 0, s, c, 0, 0, 0, 1};
}
Mat3 mul(const Mat3 & a, const Mat3 & b) {
    Mat3 r{};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 3; ++k) r[3 * i + j] += a[3 * i + k] * b[3 * k + j];
    return r;
}
Vec3 mul(const Mat3 & a, const Vec3 & v) {
    return {a[0] * v[0] + a[1] * v[1] + a[2] * v[2], a[3] * v[0] + a[4] * v[1] + a[5] * v[2],
            a[6] * v[0] + a[7] * v[1] + a[8] * v[2]};
}
Mat3 random_rotation(Rng & rng) {
    return mul(rot_z(rng.uniform(0, 2 * kPi)),
               mul(rot_y(std::asin(rng.uniform(-1, 1))), rot_x(rng.uniform(0, 2 * kPi))));
}

SensorErrors SensorErrors::draw(Rng & rng) {
    SensorErrors e;
    for (int i = 0; i < 3; ++i) {
        e.acc_bias[i]   = rng.normal(0, 0.05);
        e.gyro_bias[i]  = rng.normal(0, 0.01);
        e.acc_scale[i]  = 1 + rng.uniform(-0.02, 0.02);
        e.gyro_scale[i] = 1 + rng.uniform(-0.02, 0.02);
    }
    e.acc_noise  = rng.uniform(0.01, 0.03);
    e.gyro_noise = rng.uniform(0.002, 0.006);
    e.cross      = rng.uniform(0, 0.01);
    return e;
}

std::vector<float> sense(const Motion & m, double t0, int rows, const SensorErrors & err, Rng & rng) {
    const double h = 1.0 / 200;
    std::vector<float> out;
    out.reserve(size_t(rows) * 6);
    for (int r = 0; r < rows; ++r) {
        const double t = t0 + r / 50.0 + rng.normal(0, 0.0005);  // clock jitter
        Vec3 p0, p1, p2;
        Mat3 R0, R1, R2;
        m(t - h, &p0, &R0);
        m(t, &p1, &R1);
        m(t + h, &p2, &R2);
        Vec3 acc_world;
        for (int i = 0; i < 3; ++i) acc_world[i] = (p2[i] - 2 * p1[i] + p0[i]) / (h * h);
        acc_world[2] += kG;
        const Vec3 f = mul(transpose(R1), acc_world);
        // Rᵀ·Ṙ is the skew matrix of the body rate.
        Mat3 dR;
        for (int i = 0; i < 9; ++i) dR[i] = (R2[i] - R0[i]) / (2 * h);
        const Mat3 W = mul(transpose(R1), dR);
        const Vec3 w = {(W[7] - W[5]) / 2, (W[2] - W[6]) / 2, (W[3] - W[1]) / 2};
        for (int i = 0; i < 3; ++i) {
            const int j = (i + 1) % 3;
            double a    = f[i] * err.acc_scale[i] + err.cross * f[j] + err.acc_bias[i] + rng.normal(0, err.acc_noise);
            out.push_back(static_cast<float>(quantise(a, 8 * kG)));
        }
        for (int i = 0; i < 3; ++i) {
            const int j = (i + 1) % 3;
            double g = w[i] * err.gyro_scale[i] + err.cross * w[j] + err.gyro_bias[i] + rng.normal(0, err.gyro_noise);
            out.push_back(static_cast<float>(quantise(g, 2000 * kPi / 180)));
        }
    }
    return out;
}

Subject Subject::draw(Rng & rng) {
    Subject s;
    s.height  = rng.uniform(1.5, 1.95);
    s.cadence = rng.uniform(0.88, 1.12) * std::sqrt(1.75 / s.height);
    s.vigour  = rng.uniform(0.75, 1.25);
    s.phase   = rng.uniform(0, 2 * kPi);
    return s;
}

const char * activity_name(Activity a) {
    static const char * n[] = {"walking",  "running", "walking upstairs", "walking downstairs", "sitting",
                               "standing", "lying",   "cycling"};
    return n[static_cast<int>(a)];
}

const char * placement_name(Placement p) {
    static const char * n[] = {"trouser pocket", "wrist", "waist", "bag"};
    return n[static_cast<int>(p)];
}

ActivityParams activity_params(Activity a, const Subject & s, Rng & rng) {
    ActivityParams p;
    switch (a) {
        case Activity::Walk:
            p.step_hz = rng.uniform(1.6, 2.1) * s.cadence, p.speed = 0.7 * p.step_hz * s.height * 0.42;
            break;
        case Activity::Run:
            p.step_hz = rng.uniform(2.5, 3.1) * s.cadence, p.speed = 1.1 * p.step_hz * s.height * 0.6;
            break;
        case Activity::Upstairs:
            p.step_hz = rng.uniform(1.3, 1.75) * s.cadence, p.speed = 0.3 * p.step_hz;
            break;
        case Activity::Downstairs:
            p.step_hz = rng.uniform(1.6, 2.1) * s.cadence, p.speed = 0.3 * p.step_hz;
            break;
        case Activity::Cycle:
            p.step_hz = 0, p.speed = rng.uniform(3, 7);
            break;
        default:
            break;
    }
    return p;
}

Motion activity_motion(Activity a, Placement pl, const Subject & s, const ActivityParams & ap, const Mat3 & mount,
                       Rng & rng) {
    const double fs = ap.step_hz, v = ap.speed, leg = 0.53 * s.height, vig = s.vigour, ph = s.phase;
    const double heading = rng.uniform(0, 2 * kPi);
    const double rpm_hz  = rng.uniform(1.0, 1.6);  // pedal revolutions per second
    const double riser   = rng.uniform(0.15, 0.19);
    Wobble sway(rng, 0.1, 0.5), tremor(rng, 7, 12), fidget(rng, 0.02, 0.15), road(rng, 6, 18);
    const bool gait = a == Activity::Walk || a == Activity::Run || a == Activity::Upstairs || a == Activity::Downstairs;
    return [=](double t, Vec3 * pos, Mat3 * rot) {
        const double w = 2 * kPi * fs * t + ph;  // step phase; the stride (one leg) is w / 2
        Vec3 pelvis    = {0, 0, leg};
        double pitch = 0, roll = 0, yaw = 0;  // of the body segment carrying the device
        double seg_len = 0;                   // device offset along the segment (pendulum)
        if (gait) {
            const double run    = a == Activity::Run ? 1 : 0;
            const double bounce = (0.022 + 0.02 * run) * vig;
            pelvis[0]           = v * t + 0.03 * vig * std::sin(w);
            pelvis[1]           = 0.02 * vig * std::sin(w / 2);
            pelvis[2]           = leg + bounce * std::cos(w) + 0.25 * bounce * std::cos(2 * w + 0.7);
            if (a == Activity::Upstairs || a == Activity::Downstairs) {
                // One riser per step, climbed mostly in the push-off half of the step.
                const double k = fs * t + ph / (2 * kPi), frac = k - std::floor(k);
                const double smooth = frac * frac * (3 - 2 * frac);
                const double rise   = riser * (std::floor(k) + smooth);
                pelvis[2] += a == Activity::Upstairs ? rise : -rise;
            }
            const double swing = (a == Activity::Run ? 0.55 : 0.4) * vig;
            switch (pl) {
                case Placement::Pocket:
                    pitch = swing * std::sin(w / 2) + (a == Activity::Upstairs ? 0.35 : 0.0), seg_len = 0.25;
                    break;
                case Placement::Wrist:
                    pitch = -0.8 * swing * std::sin(w / 2) + (run ? 1.2 : 0.0), seg_len = 0.55;
                    break;
                case Placement::Waist:
                    yaw = 0.08 * vig * std::sin(w / 2), roll = 0.05 * vig * std::sin(w / 2 + 0.3);
                    break;
                case Placement::Bag:
                    pitch = 0.12 * std::sin(w / 2 - 0.8), roll = 0.1 * std::sin(w / 2 - 1.1), seg_len = -0.3;
                    break;
            }
        } else if (a == Activity::Cycle) {
            const double c = 2 * kPi * rpm_hz * t + ph;
            pelvis         = {v * t, 0, 0.95 + 0.0003 * road(t)};
            if (pl == Placement::Pocket)
                pitch = 1.1 + 0.45 * std::sin(c), seg_len = 0.25;
            else if (pl == Placement::Wrist)
                pitch = 1.2 + 0.002 * road(t * 0.5), seg_len = 0.55;
            else
                roll = 0.04 * std::sin(c), pitch = 0.3;
            yaw = 0.05 * fidget(t);
        } else {
            // Postures: gravity direction, breathing (0.2–0.3 Hz), sway and tremor.
            const double breath = 0.003 * std::sin(2 * kPi * 0.25 * t + ph);
            pelvis[2]           = (a == Activity::Stand ? leg : a == Activity::Sit ? 0.45 : 0.2) + breath;
            pelvis[0]           = (a == Activity::Stand ? 0.006 : 0.001) * sway(t);
            pitch               = 0.02 * fidget(t) + 0.0003 * tremor(t);
            if (a == Activity::Sit) pitch += pl == Placement::Pocket ? kPi / 2 : pl == Placement::Wrist ? 1.0 : 0.1;
            if (a == Activity::Lie) pitch += kPi / 2, roll = 0.3 * std::sin(ph);
            if (pl == Placement::Wrist) pitch += 0.0005 * tremor(t * 1.1), seg_len = 0.3;
        }
        // The segment hangs from the pelvis and rotates about it; heading turns it in the world.
        const Mat3 seg = mul(rot_z(heading + yaw), mul(rot_y(pitch), rot_x(roll)));
        Vec3 off       = mul(seg, Vec3{0, 0, -seg_len});
        const Mat3 hz  = rot_z(heading);
        Vec3 pw        = mul(hz, pelvis);
        *pos           = {pw[0] + off[0], pw[1] + off[1], pw[2] + off[2]};
        *rot           = mul(seg, mount);
    };
}

Motion path_motion(const std::vector<std::array<double, 2>> & path, double t_start, double duration, const Mat3 & mount,
                   Rng & rng) {
    // Cumulative arc length of the poly-line.
    std::vector<double> cum(path.size(), 0.0);
    for (size_t i = 1; i < path.size(); ++i)
        cum[i] = cum[i - 1] + std::hypot(path[i][0] - path[i - 1][0], path[i][1] - path[i - 1][1]);
    const double L     = std::max(cum.back(), 1e-6);
    const double tilt  = rng.uniform(0.2, 0.6);
    const double sigma = 0.08;  // s: the arm's smoothing of corners
    auto raw           = [=](double t) -> std::array<double, 2> {
        double tau = std::clamp((t - t_start) / duration, 0.0, 1.0);
        double s   = L * tau * tau * tau * (10 - 15 * tau + 6 * tau * tau);
        size_t i   = std::upper_bound(cum.begin(), cum.end(), s) - cum.begin();
        if (i == 0) return path.front();
        if (i >= path.size()) return path.back();
        double seg = cum[i] - cum[i - 1], u = seg > 0 ? (s - cum[i - 1]) / seg : 0;
        return {path[i - 1][0] + u * (path[i][0] - path[i - 1][0]), path[i - 1][1] + u * (path[i][1] - path[i - 1][1])};
    };
    return [=](double t, Vec3 * pos, Mat3 * rot) {
        // Gaussian smoothing over ±3σ (13 taps).
        double x = 0, z = 0, wsum = 0, vx = 0, vz = 0;
        for (int k = -6; k <= 6; ++k) {
            double dt = k * sigma / 2, wgt = std::exp(-0.5 * (dt / sigma) * (dt / sigma));
            auto p = raw(t + dt);
            x += wgt * p[0], z += wgt * p[1], wsum += wgt;
        }
        x /= wsum, z /= wsum;
        auto a = raw(t + 0.02), b = raw(t - 0.02);
        vx = (a[0] - b[0]) / 0.04, vz = (a[1] - b[1]) / 0.04;
        *pos = {x, 0.4, 1.2 + z};
        // The wrist leans into the motion a little (radial/ulnar deviation and flexion).
        *rot = mul(mul(rot_y(tilt * std::tanh(vx)), rot_x(-tilt * std::tanh(vz))), mount);
    };
}

}  // namespace m4::data
