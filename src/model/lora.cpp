#include "model/lora.h"

#include <vector>

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

void linear(const Linear & l, const float * x, int64_t M, float * y, const std::vector<RowSegment> & segments) {
    const int64_t in = l.in(), out = l.out();
    // One shared GEMM for the base weight over every row of every adapter.
    ops::matmul(x, in, l.w, l.bias, y, out, M);
    // LoRA terms, one run of consecutive rows per adapter.
    std::vector<float> t;
    size_t i = 0;
    while (i < segments.size()) {
        const AdapterWeights * ad = segments[i].adapter;
        int64_t b = segments[i].begin, e = segments[i].end;
        size_t j = i + 1;
        while (j < segments.size() && segments[j].adapter == ad && segments[j].begin == e) e = segments[j++].end;
        i = j;
        if (!ad || e <= b) continue;
        auto it = ad->lora.find(l.name);
        if (it == ad->lora.end()) continue;
        const LoraPair & p = it->second;
        const int64_t R = p.a.dim(0), rows = e - b;
        M4_CHECK(p.a.dim(1) == in && p.b.dim(0) == out && p.b.dim(1) == R);
        t.resize(static_cast<size_t>(rows * R));
        ops::matmul(x + b * in, in, p.a, nullptr, t.data(), R, rows);  // t = x·Aᵀ      [rows, R]
        ops::mul(t.data(), &p.scale, t.data(), rows * R, 1);           // t = s · t
        ops::matmul(t.data(), R, p.b, nullptr, y + b * out, out, rows, /*accumulate=*/true);  // y += t·Bᵀ
    }
}

}  // namespace m4::model
