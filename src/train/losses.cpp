#include "train/losses.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/status.h"

namespace m4::train {

LossResult cross_entropy(const float * logits, int64_t M, int64_t V, const int32_t * targets, float weight,
                         float * dlogits) {
    LossResult r;
    if (M == 0) return r;
    for (int64_t m = 0; m < M; ++m) {
        const float * z = logits + m * V;
        const int32_t t = targets[m];
        M4_CHECK_MSG(t >= 0 && t < V, "cross_entropy: target out of range");
        double mx      = z[0];
        int64_t argmax = 0;
        for (int64_t v = 1; v < V; ++v)
            if (z[v] > mx) mx = z[v], argmax = v;
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v]) - mx);
        const double lse = mx + std::log(sum);
        r.loss += lse - double(z[t]);
        r.correct += argmax == t;
        if (dlogits) {
            const double g = double(weight) / double(M);
            for (int64_t v = 0; v < V; ++v)
                dlogits[m * V + v] = static_cast<float>(g * (std::exp(double(z[v]) - lse) - (v == t ? 1.0 : 0.0)));
        }
    }
    r.loss /= double(M);
    return r;
}

LossResult mse(const float * y, const float * t, int64_t n, float weight, float * dy) {
    LossResult r;
    if (n == 0) return r;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(y[i]) - double(t[i]);
        r.loss += d * d;
        if (dy) dy[i] = static_cast<float>(double(weight) * 2.0 * d / double(n));
    }
    r.loss /= double(n);
    return r;
}

void normalize_rows(const float * z, int64_t B, int64_t E, float * y) {
    for (int64_t b = 0; b < B; ++b) {
        double s = 0;
        for (int64_t e = 0; e < E; ++e) s += double(z[b * E + e]) * z[b * E + e];
        const float inv = s > 0 ? float(1.0 / std::sqrt(s)) : 0.0f;
        for (int64_t e = 0; e < E; ++e) y[b * E + e] = z[b * E + e] * inv;
    }
}

void normalize_rows_backward(const float * dy, const float * z, int64_t B, int64_t E, float * dz) {
    for (int64_t b = 0; b < B; ++b) {
        double s = 0;
        for (int64_t e = 0; e < E; ++e) s += double(z[b * E + e]) * z[b * E + e];
        if (s <= 0) continue;
        const double inv = 1.0 / std::sqrt(s);
        double ydy       = 0;
        for (int64_t e = 0; e < E; ++e) ydy += double(z[b * E + e]) * inv * dy[b * E + e];
        for (int64_t e = 0; e < E; ++e)
            dz[b * E + e] += static_cast<float>((double(dy[b * E + e]) - double(z[b * E + e]) * inv * ydy) * inv);
    }
}

LossResult info_nce(const float * a, const float * b, int64_t B, int64_t E, float log_scale, float weight, float * da,
                    float * db, float * dlog_scale) {
    LossResult r;
    if (B == 0) return r;
    constexpr double kMaxLogScale = 4.605170185988092;  // ln 100, CLIP's clamp
    const bool clamped            = log_scale > kMaxLogScale;
    const double scale            = std::exp(std::min<double>(log_scale, kMaxLogScale));
    std::vector<double> S(static_cast<size_t>(B * B)), dS(S.size(), 0.0);
    for (int64_t i = 0; i < B; ++i)
        for (int64_t j = 0; j < B; ++j) {
            double d = 0;
            for (int64_t e = 0; e < E; ++e) d += double(a[i * E + e]) * b[j * E + e];
            S[i * B + j] = scale * d;
        }
    // Rows (a → b) and columns (b → a): each a softmax cross-entropy with the diagonal as target.
    for (int pass = 0; pass < 2; ++pass) {
        for (int64_t i = 0; i < B; ++i) {
            auto at     = [&](int64_t j) -> double & { return pass == 0 ? S[i * B + j] : S[j * B + i]; };
            auto dat    = [&](int64_t j) -> double & { return pass == 0 ? dS[i * B + j] : dS[j * B + i]; };
            double mx   = at(0);
            int64_t arg = 0;
            for (int64_t j = 1; j < B; ++j)
                if (at(j) > mx) mx = at(j), arg = j;
            double sum = 0;
            for (int64_t j = 0; j < B; ++j) sum += std::exp(at(j) - mx);
            const double lse = mx + std::log(sum);
            r.loss += 0.5 * (lse - at(i)) / double(B);
            if (pass == 0) r.correct += arg == i;
            for (int64_t j = 0; j < B; ++j) dat(j) += 0.5 / double(B) * (std::exp(at(j) - lse) - (j == i ? 1.0 : 0.0));
        }
    }
    double dt = 0;
    for (int64_t i = 0; i < B * B; ++i) dt += dS[i] * S[i];  // ∂S/∂t = S
    if (dlog_scale && !clamped) *dlog_scale += static_cast<float>(double(weight) * dt);
    for (int64_t i = 0; i < B; ++i)
        for (int64_t e = 0; e < E; ++e) {
            double ga = 0, gb = 0;
            for (int64_t j = 0; j < B; ++j) {
                ga += dS[i * B + j] * b[j * E + e];
                gb += dS[j * B + i] * a[j * E + e];
            }
            if (da) da[i * E + e] = static_cast<float>(double(weight) * scale * ga);
            if (db) db[i * E + e] = static_cast<float>(double(weight) * scale * gb);
        }
    return r;
}

}  // namespace m4::train
