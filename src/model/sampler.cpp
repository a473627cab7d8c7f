#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

namespace m4::model {

int32_t sample_token(const float * logits, int64_t V, const SamplerSettings & s, std::mt19937_64 & rng,
                     const uint8_t * allowed) {
    auto ok = [&](int64_t i) { return !allowed || allowed[i]; };
    if (s.temperature <= 0.0f) {
        int64_t best = -1;
        for (int64_t i = 0; i < V; ++i)
            if (ok(i) && (best < 0 || logits[i] > logits[best])) best = i;
        M4_CHECK(best >= 0);  // a constraint always allows a token
        return static_cast<int32_t>(best);
    }
    std::vector<int32_t> idx;
    idx.reserve(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i)
        if (ok(i)) idx.push_back(static_cast<int32_t>(i));
    M4_CHECK(!idx.empty());
    const int64_t n = static_cast<int64_t>(idx.size());
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    int64_t keep = (s.top_k > 0 && s.top_k < n) ? s.top_k : n;
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

namespace {

std::string num(float v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
    return buf;
}

Status check_max_new(int v, int64_t max_seq, const std::string & where) {
    if (v < 1 || v > max_seq)
        return invalid_argument(where + ": max_new_tokens " + std::to_string(v) + " is out of range [1, " +
                                std::to_string(max_seq) + "] (the firmware's context)");
    return Status::ok();
}
Status check_temperature(float v, const std::string & where) {
    if (!std::isfinite(v) || v < 0.0f || v > kMaxTemperature)
        return invalid_argument(where + ": temperature " + num(v) + " is out of range [0, " +
                                std::to_string(static_cast<int>(kMaxTemperature)) + "] (0: greedy)");
    return Status::ok();
}
Status check_top_k(int v, int64_t vocab, const std::string & where) {
    if (v < 0 || v > vocab)
        return invalid_argument(where + ": top_k " + std::to_string(v) + " is out of range [0, " +
                                std::to_string(vocab) + "] (0: off; the vocabulary has " + std::to_string(vocab) +
                                " tokens)");
    return Status::ok();
}
Status check_top_p(float v, const std::string & where) {
    if (!std::isfinite(v) || v <= 0.0f || v > 1.0f)
        return invalid_argument(where + ": top_p " + num(v) + " is out of range (0, 1] (1: off)");
    return Status::ok();
}
Status check_stop(const std::vector<std::string> & stop, const std::string & where) {
    if (stop.size() > kMaxStopStrings)
        return invalid_argument(where + ": " + std::to_string(stop.size()) + " stop strings; at most " +
                                std::to_string(kMaxStopStrings));
    for (size_t i = 0; i < stop.size(); ++i) {
        if (stop[i].empty()) return invalid_argument(where + ": stop string " + std::to_string(i) + " is empty");
        if (stop[i].size() > kMaxStopBytes)
            return invalid_argument(where + ": stop string " + std::to_string(i) + " has " +
                                    std::to_string(stop[i].size()) + " bytes; at most " +
                                    std::to_string(kMaxStopBytes));
    }
    return Status::ok();
}

}  // namespace

Status check_generation(const GenerationValues & v, int64_t vocab, int64_t max_seq, const std::string & where) {
    M4_RETURN_IF_ERROR(check_max_new(v.max_new_tokens, max_seq, where));
    M4_RETURN_IF_ERROR(check_temperature(v.temperature, where));
    M4_RETURN_IF_ERROR(check_top_k(v.top_k, vocab, where));
    M4_RETURN_IF_ERROR(check_top_p(v.top_p, where));
    if (v.stop) M4_RETURN_IF_ERROR(check_stop(*v.stop, where));
    return Status::ok();
}

Status check_overrides(const GenerationOverrides & o, int64_t vocab, int64_t max_seq, const std::string & where) {
    if (o.max_new_tokens) M4_RETURN_IF_ERROR(check_max_new(*o.max_new_tokens, max_seq, where));
    if (o.temperature) M4_RETURN_IF_ERROR(check_temperature(*o.temperature, where));
    if (o.top_k) M4_RETURN_IF_ERROR(check_top_k(*o.top_k, vocab, where));
    if (o.top_p) M4_RETURN_IF_ERROR(check_top_p(*o.top_p, where));
    if (o.stop) M4_RETURN_IF_ERROR(check_stop(*o.stop, where));
    return Status::ok();
}

}  // namespace m4::model
