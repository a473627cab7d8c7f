// A physically based 6-axis IMU simulator (all IMU data of the benchmark is generated: no real
// accelerometer data exists in Debian). A motion is a function t → (position of the device in m,
// orientation of the device as a rotation matrix, world z up). The sensor model differentiates it
// at 200 Hz: specific force f = Rᵀ(a + g·ẑ) and body rate ω from Rᵀ·Ṙ, then samples at 50 Hz with
// clock jitter and applies the device's errors: bias, scale and cross-axis error, white noise,
// 16-bit quantisation at ±8 g / ±2000 °/s, clipping.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "data/rng.h"

namespace m4::data {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<double, 9>;  // row-major

Mat3 rot_x(double a);
Mat3 rot_y(double a);
Mat3 rot_z(double a);
Mat3 mul(const Mat3 & a, const Mat3 & b);
Vec3 mul(const Mat3 & a, const Vec3 & v);
Mat3 random_rotation(Rng & rng);

using Motion = std::function<void(double t, Vec3 * pos, Mat3 * rot)>;

// The error model of one device (drawn once per simulated subject/device).
struct SensorErrors {
    Vec3 acc_bias{}, gyro_bias{}, acc_scale{1, 1, 1}, gyro_scale{1, 1, 1};
    double acc_noise = 0.02, gyro_noise = 0.004;  // per-sample standard deviations (m/s², rad/s)
    double cross = 0.0;                           // cross-axis coupling
    static SensorErrors draw(Rng & rng);
};

// `rows` samples at 50 Hz of motion `m` from time t0: 6 floats per row (acc xyz m/s², gyro xyz rad/s).
std::vector<float> sense(const Motion & m, double t0, int rows, const SensorErrors & err, Rng & rng);

// A simulated person: body size and movement style.
struct Subject {
    double height  = 1.75;  // m
    double cadence = 1.0;   // multiplies step frequencies
    double vigour  = 1.0;   // multiplies movement amplitudes
    double phase   = 0.0;
    static Subject draw(Rng & rng);
};

enum class Activity { Walk, Run, Upstairs, Downstairs, Sit, Stand, Lie, Cycle };
inline constexpr int kActivityCount = 8;
const char * activity_name(Activity a);
enum class Placement { Pocket, Wrist, Waist, Bag };
inline constexpr int kPlacementCount = 4;
const char * placement_name(Placement p);

// Steps per minute of `a` for subject `s` (0 for postures and cycling), given the randomness in rng.
struct ActivityParams {
    double step_hz = 0;  // steps per second (0 when none)
    double speed   = 0;  // m/s
};
ActivityParams activity_params(Activity a, const Subject & s, Rng & rng);
// The device's motion during activity `a` worn at `p`; `mount` is the device's fixed rotation
// relative to the body segment it rides on.
Motion activity_motion(Activity a, Placement p, const Subject & s, const ActivityParams & ap, const Mat3 & mount,
                       Rng & rng);

// A wrist trajectory along a poly-line in the vertical plane in front of the body (x right, z up;
// metres), traversed with a minimum-jerk speed profile in `duration` s starting at `t_start`, then
// smoothed; the wrist tilts with its velocity. Before and after it the hand rests.
Motion path_motion(const std::vector<std::array<double, 2>> & path, double t_start, double duration, const Mat3 & mount,
                   Rng & rng);

}  // namespace m4::data
