// The training RNG: xoshiro256** seeded by splitmix64, identical on every platform, with its
// whole state exposed so a checkpoint can save and restore it (a resumed run draws the same
// batches as an uninterrupted one).
//
//     Rng rng(42);
//     double u = rng.uniform();          // [0, 1)
//     auto saved = rng.state();          // 4 × u64, stored in the checkpoint
//     Rng again; again.set_state(saved);
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace m4::train {

class Rng {
  public:
    using State = std::array<uint64_t, 4>;

    Rng() : Rng(0) {}
    explicit Rng(uint64_t seed) {
        uint64_t z = seed;
        for (auto & w : s_) w = splitmix(z);
    }

    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t      = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    float uniform(float lo, float hi) { return lo + static_cast<float>(uniform()) * (hi - lo); }
    // Integer in [0, n), n > 0 (multiply-shift; the tiny bias is irrelevant for sampling data).
    int64_t below(int64_t n) { return static_cast<int64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
    // Standard normal (Box–Muller, one value per call).
    double normal() {
        const double u1 = uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
    }
    // A new, independent generator (e.g. one per evaluation split), derived from this one's next value.
    Rng split() { return Rng(next()); }

    const State & state() const { return s_; }
    void set_state(const State & s) { s_ = s; }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix(uint64_t & z) {
        uint64_t r = (z += 0x9e3779b97f4a7c15ull);
        r          = (r ^ (r >> 30)) * 0xbf58476d1ce4e5b9ull;
        r          = (r ^ (r >> 27)) * 0x94d049bb133111ebull;
        return r ^ (r >> 31);
    }
    State s_{};
};

}  // namespace m4::train
