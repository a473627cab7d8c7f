#include "model/lora.h"

#include <vector>

#include "base/thread_pool.h"
#include "ops/ops.h"

namespace m4::model {

const char * head_type_name(HeadType t) {
    switch (t) {
        case HeadType::None:
            return "none";
        case HeadType::Classify:
            return "classify";
        case HeadType::Regress:
            return "regress";
        case HeadType::Embed:
            return "embed";
    }
    return "?";
}

const char * head_pool_name(HeadPool p) {
    return p == HeadPool::Mean ? "mean" : "last";
}

namespace {

// One run of consecutive rows that share an adapter's LoRA pair.
struct LoraRun {
    int64_t          begin, end;
    const LoraPair * pair;
};

// Σ a[i]·b[i] with 16 independent partial sums: one dependent chain of float adds would be
// bound by the add latency, while 16 lanes vectorise (and may be reordered) on any ISA.
float dot_lanes(const float * a, const float * b, int64_t n) {
    float   acc[16] = {};
    int64_t i       = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (; i < n; ++i) s += a[i] * b[i];
    for (float v : acc) s += v;
    return s;
}

// y[r, :] += s · B·(A·x[r, :]) for every row of every run — the segmented gather-matmul (SGMV).
// Rows are independent, so the work is split over rows in one parallel loop for the whole batch,
// instead of two small GEMM calls per adapter segment. Each thread keeps Bᵀ [R, out] of the pair
// it is on, so y += Bᵀ[q]·t[q] runs as R contiguous axpys (rows of one adapter are consecutive).
void lora_sgmv(const std::vector<LoraRun> & runs, const float * x, int64_t in, float * y, int64_t out) {
    std::vector<std::pair<int64_t, const LoraPair *>> rows;
    for (const auto & r : runs)
        for (int64_t i = r.begin; i < r.end; ++i) rows.emplace_back(i, r.pair);
    ThreadPool::global().parallel_for(
        static_cast<int64_t>(rows.size()),
        [&](int64_t b, int64_t e) {
            std::vector<float> t, bt;
            const LoraPair *   current = nullptr;
            for (int64_t k = b; k < e; ++k) {
                const auto [row, p] = rows[k];
                const int64_t R     = p->a.dim(0);
                const float * A     = p->a.f32();  // [R, in]
                if (p != current) {
                    const float * B = p->b.f32();  // [out, R]
                    bt.resize(static_cast<size_t>(R * out));
                    for (int64_t o = 0; o < out; ++o)
                        for (int64_t q = 0; q < R; ++q) bt[q * out + o] = B[o * R + q];
                    current = p;
                }
                const float * xr = x + row * in;
                float *       yr = y + row * out;
                t.resize(static_cast<size_t>(R));
                for (int64_t q = 0; q < R; ++q) t[q] = dot_lanes(A + q * in, xr, in) * p->scale;
                for (int64_t q = 0; q < R; ++q) {
                    const float * bq = bt.data() + q * out;
                    const float   tq = t[q];
                    for (int64_t o = 0; o < out; ++o) yr[o] += bq[o] * tq;
                }
            }
        },
        /*grain=*/16);
}

}  // namespace

void linear(const Linear & l, const float * x, int64_t M, float * y, const std::vector<RowSegment> & segments) {
    const int64_t in = l.in(), out = l.out();
    // One shared GEMM for the base weight over every row of every adapter.
    ops::matmul(x, in, l.w, l.bias, y, out, M);
    // The LoRA terms of every adapter that targets this layer, as one segmented pass.
    std::vector<LoraRun> runs;
    for (const auto & s : segments) {
        if (!s.adapter || s.end <= s.begin) continue;
        auto it = s.adapter->lora.find(l.name);
        if (it == s.adapter->lora.end()) continue;
        const LoraPair & p = it->second;
        M4_CHECK(p.a.dim(1) == in && p.b.dim(0) == out && p.b.dim(1) == p.a.dim(0));
        runs.push_back({s.begin, s.end, &p});
    }
    if (runs.empty()) return;
    ops::record_op(ops::OpKind::matmul);
    lora_sgmv(runs, x, in, y, out);
}

}  // namespace m4::model
