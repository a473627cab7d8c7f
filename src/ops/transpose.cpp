// transpose — data movement of the training backward, not a firmware op (ops.def does not list
// it): the backward GEMMs dx = dy·W and dW = dyᵀ·x run on the y = x·Wᵀ kernels after one operand
// is transposed.
//
//     out[c·ldo + r] = conv(in[r·ldi + c])     in: (R, C) ldi   out: (C, R) ldo
//
// conv by kern::TransposeKind: F32 the identity on f32, F32ToBf16 f32_to_bf16 (nearest even,
// NaN stays NaN), U16 the identity on 16-bit elements (bf16 weights). Exact, so every kernel
// must match this reference bit for bit.
#include <algorithm>

#include "base/thread_pool.h"
#include "ops/ops.h"

namespace m4::ops {
namespace {

template <class Src, class Dst, class Conv>
void transpose_tiles(const Src * in, int64_t ldi, int64_t R, int64_t C, Dst * out, int64_t ldo, const Conv & conv) {
    // 32 × 32 tiles: a tile's strided reads touch 32 lines that stay in L1.
    constexpr int64_t kTile = 32;
    for (int64_t c0 = 0; c0 < C; c0 += kTile)
        for (int64_t r0 = 0; r0 < R; r0 += kTile)
            for (int64_t c = c0; c < std::min(C, c0 + kTile); ++c)
                for (int64_t r = r0; r < std::min(R, r0 + kTile); ++r) out[c * ldo + r] = conv(in[r * ldi + c]);
}

}  // namespace

void transpose_ref(kern::TransposeKind kind, const void * in, int64_t ldi, int64_t R, int64_t C, void * out,
                   int64_t ldo) {
    switch (kind) {
        case kern::TransposeKind::F32:
            return transpose_tiles(static_cast<const float *>(in), ldi, R, C, static_cast<float *>(out), ldo,
                                   [](float v) { return v; });
        case kern::TransposeKind::F32ToBf16:
            return transpose_tiles(static_cast<const float *>(in), ldi, R, C, static_cast<uint16_t *>(out), ldo,
                                   [](float v) { return f32_to_bf16(v); });
        case kern::TransposeKind::U16:
            return transpose_tiles(static_cast<const uint16_t *>(in), ldi, R, C, static_cast<uint16_t *>(out), ldo,
                                   [](uint16_t v) { return v; });
    }
}

void transpose(kern::TransposeKind kind, const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo) {
    M4_CHECK(R >= 0 && C >= 0 && ldi >= C && ldo >= R);
    if (R == 0 || C == 0) return;
    const kern::TransposeFn fn = active_kernels().transpose[static_cast<int>(kind)];
    if (fn) return fn(in, ldi, R, C, out, ldo);
    // The reference, its columns split over the pool (each output element written once).
    const size_t out_size = kind == kern::TransposeKind::F32 ? 4 : 2,
                 in_size  = kind == kern::TransposeKind::U16 ? 2 : 4;
    ThreadPool::global().parallel_for(
        C,
        [&](int64_t c0, int64_t c1) {
            transpose_ref(kind, static_cast<const char *>(in) + c0 * in_size, ldi, R, c1 - c0,
                          static_cast<char *>(out) + c0 * ldo * out_size, ldo);
        },
        std::max<int64_t>(32, 8192 / std::max<int64_t>(R, 1)));
}

}  // namespace m4::ops
