// Training losses with their gradients (f64 sums; gradients written, not accumulated):
//   cross-entropy over rows of logits (classification, and token-level language modelling where
//   the caller passes only the unmasked rows), symmetric InfoNCE with a learnable temperature
//   (modality ↔ text alignment, embedding heads), mean squared error (regression), and the
//   row normalisation z / ‖z‖ that the embedding outputs use.
// Each loss takes `weight`, the factor its gradient carries (1 / accumulation steps, task weight).
#pragma once

#include <cstdint>

namespace m4::train {

struct LossResult {
    double loss     = 0;  // mean over rows (unweighted)
    int64_t correct = 0;  // rows whose argmax is the target (retrieval: the matching row)
};

// L = (1/M) Σ_m −log softmax(logits[m])[target[m]];  dlogits = weight · (softmax − onehot) / M
LossResult cross_entropy(const float * logits, int64_t M, int64_t V, const int32_t * targets, float weight,
                         float * dlogits);

// L = (1/n) Σ (y − t)²;  dy = weight · 2 (y − t) / n
LossResult mse(const float * y, const float * t, int64_t n, float weight, float * dy);

// y[b] = z[b] / ‖z[b]‖ (0 for a zero row), and its backward dz += (dy − y·(y·dy)) / ‖z‖.
void normalize_rows(const float * z, int64_t B, int64_t E, float * y);
void normalize_rows_backward(const float * dy, const float * z, int64_t B, int64_t E, float * dz);

// Symmetric InfoNCE of B pairs of unit rows a[b], b[b] (CLIP): S = exp(t)·a·bᵀ [B, B],
//   L = ½ ( (1/B) Σ_i −log softmax_row(S)[i, i] + (1/B) Σ_j −log softmax_col(S)[j, j] )
// t = log_scale (learnable, clamped at ln 100). Gradients: da, db (written), dlog_scale (added).
LossResult info_nce(const float * a, const float * b, int64_t B, int64_t E, float log_scale, float weight, float * da,
                    float * db, float * dlog_scale);

}  // namespace m4::train
