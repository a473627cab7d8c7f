// gather — embedding lookup (token embeddings, learned position tables).
//
//     y[t, c] = table[ids[t], c]      (dequantised: bf16 widened, int8 q · scale[row])
//
// T ids, V table rows, C columns. table: (V, C) f32 | bf16 | i8 (per-row scales); ids: (T), each
// in [0, V) (the entry point checks); y: (T, C) f32 contiguous.
//
// Backward (accumulating, scatter-add; only an f32 table learns):
//     dtable[ids[t], c] += dy[t, c]      (a repeated id sums its rows)
#include "base/status.h"
#include "ops/ops.h"

namespace m4::ops {

// table: (V, C)  ids: (T)  y: (T, C)
void gather_forward_ref(const Tensor & table, const int32_t * ids, int64_t T, float * y) {
    const int64_t C = table.cols();
    for (int64_t t = 0; t < T; ++t) {
        const int64_t row = ids[t];
        float * yr        = y + t * C;
        if (table.dtype() == DType::F32) {
            const float * src = table.f32() + row * C;
            for (int64_t c = 0; c < C; ++c) yr[c] = src[c];
        } else if (table.dtype() == DType::BF16) {
            const uint16_t * src = table.bf16() + row * C;
            for (int64_t c = 0; c < C; ++c) yr[c] = bf16_to_f32(src[c]);
        } else {
            M4_CHECK_MSG(table.dtype() == DType::I8, "gather: table must be f32, bf16 or i8");
            const int8_t * src = table.i8() + row * C;
            const float scale  = table.scales()[row];
            for (int64_t c = 0; c < C; ++c) yr[c] = static_cast<float>(src[c]) * scale;
        }
    }
}

// dy: (T, C)  ids: (T)  dtable: (V, C) f32
void gather_backward_ref(const float * dy, const int32_t * ids, int64_t T, int64_t C, float * dtable) {
    for (int64_t t = 0; t < T; ++t) {
        float * dr       = dtable + static_cast<int64_t>(ids[t]) * C;
        const float * gr = dy + t * C;
        for (int64_t c = 0; c < C; ++c) dr[c] += gr[c];
    }
}

}  // namespace m4::ops
