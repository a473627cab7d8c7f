// Random-weight firmware tensors for a configuration (m4fw init): deterministic for a seed on every
// platform (splitmix64 + Box–Muller, no std::normal_distribution whose output is library-defined).
#include <cmath>

#include "model/model.h"

namespace m4::model {
namespace {

struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    double normal() {
        double u1 = uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
    }
};

}  // namespace

std::vector<std::pair<std::string, Tensor>> random_weights(const ModelConfig & c, uint64_t seed, DType dtype) {
    std::vector<std::pair<std::string, Tensor>> out;
    Rng rng{seed * 0x2545f4914f6cdd1dull + 1};
    for (const auto & spec : expected_tensors(c)) {
        Tensor t  = Tensor::empty(DType::F32, spec.shape);
        float * p = t.f32();
        for (int64_t i = 0; i < t.numel(); ++i) {
            switch (spec.role) {
                case TensorRole::LinearWeight:
                case TensorRole::Embedding:
                case TensorRole::Position:
                    p[i] = static_cast<float>(rng.normal() * spec.init_scale);
                    break;
                // Perturbed so that tests see every norm weight and bias at work.
                case TensorRole::Norm:
                    p[i] = static_cast<float>(1.0 + 0.1 * rng.normal());
                    break;
                case TensorRole::Bias:
                    p[i] = static_cast<float>(0.1 * rng.normal());
                    break;
            }
        }
        bool quantisable = spec.role == TensorRole::LinearWeight || spec.role == TensorRole::Embedding;
        out.emplace_back(spec.name, quantisable ? convert(t, dtype) : t);
    }
    return out;
}

}  // namespace m4::model
