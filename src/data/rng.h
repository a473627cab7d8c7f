// Deterministic random numbers for the builders: SplitMix64 seeded from (global seed, task, stream
// name), so every task and every stream inside it is reproducible on its own, whatever order or
// thread the tasks are built in. Never std::random_device, never std:: distributions (their output
// differs between standard libraries).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace m4::data {

// FNV-1a 64 of a string, mixed with a seed: stable across runs and machines.
inline uint64_t hash64(std::string_view s, uint64_t seed = 0) {
    uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

class Rng {
  public:
    explicit Rng(uint64_t seed) : s_(seed) {}
    Rng(uint64_t seed, std::string_view stream) : s_(hash64(stream, seed)) {}

    uint64_t next() {
        uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1).
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n).
    size_t below(size_t n) { return n ? static_cast<size_t>(uniform() * n) % n : 0; }
    // Standard normal (Box-Muller; one value per call keeps the stream simple).
    double normal() {
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    double normal(double mean, double sd) { return mean + sd * normal(); }
    bool chance(double p) { return uniform() < p; }
    template <typename T>
    const T & pick(const std::vector<T> & v) {
        return v[below(v.size())];
    }
    template <typename T>
    void shuffle(std::vector<T> & v) {
        for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

  private:
    uint64_t s_;
};

// A stable split of items by name: true for the held-out share `frac` (about), independent of
// the order items are listed in.
inline bool held_out(std::string_view name, double frac, uint64_t salt = 7) {
    return (hash64(name, salt) >> 11) * (1.0 / 9007199254740992.0) < frac;
}

}  // namespace m4::data
