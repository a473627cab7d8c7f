#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace m4::model {

int32_t sample_token(const float * logits, int64_t V, const SamplerSettings & s, std::mt19937_64 & rng) {
    if (s.temperature <= 0.0f) {
        int64_t best = 0;
        for (int64_t i = 1; i < V; ++i)
            if (logits[i] > logits[best]) best = i;
        return static_cast<int32_t>(best);
    }
    std::vector<int32_t> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    int64_t keep = (s.top_k > 0 && s.top_k < V) ? s.top_k : V;
    std::vector<double> p(keep);
    double mx = logits[idx[0]], sum = 0;
    for (int64_t i = 0; i < keep; ++i) sum += p[i] = std::exp((logits[idx[i]] - mx) / s.temperature);
    if (s.top_p < 1.0f) {
        double acc  = 0;
        int64_t cut = keep;
        for (int64_t i = 0; i < keep; ++i) {
            acc += p[i] / sum;
            if (acc >= s.top_p) {
                cut = i + 1;
                break;
            }
        }
        keep = cut;
        sum  = std::accumulate(p.begin(), p.begin() + keep, 0.0);
    }
    std::uniform_real_distribution<double> u(0.0, sum);
    double r = u(rng);
    for (int64_t i = 0; i < keep; ++i) {
        r -= p[i];
        if (r <= 0) return idx[i];
    }
    return idx[keep - 1];
}

}  // namespace m4::model
