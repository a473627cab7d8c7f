// transpose_{f32,f32_bf16,u16}_avx512 — out[c·ldo + r] = conv(in[r·ldi + c]) for r < R, c < C:
// the data movement of the training backward (operands of dW = dyᵀ·x and dx = dy·W laid out for
// the y = x·Wᵀ GEMMs). Reference: ops::transpose_ref (src/ops/transpose.cpp); every element is
// moved exactly (f32 → bf16 rounds to nearest even, NaN kept a NaN, as f32_to_bf16), so results
// are bit for bit the reference's.
// 16 × 16 blocks through transpose16x16 (matmul_tiles.h), masked loads and stores at the edges;
// 16-bit elements are widened to 32-bit lanes for the shuffle and narrowed again. Columns of blocks
// are spread over the thread pool (each output element is written by one thread).
//     in: (R, C) ldi   out: (C, R) ldo
#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

using namespace avx512;

// Kind: 0 f32 → f32, 1 f32 → bf16, 2 u16 → u16.
template <int Kind>
void transpose_blocks(const void * in_v, int64_t ldi, int64_t R, int64_t C, void * out_v, int64_t ldo) {
    const int64_t col_blocks = ceil_div(C, 16);
    ThreadPool::global().parallel_for(
        col_blocks,
        [&](int64_t b0, int64_t b1) {
            for (int64_t cb = b0; cb < b1; ++cb) {
                const int64_t c0 = cb * 16, nc = std::min<int64_t>(16, C - c0);
                const __mmask16 mc = tail16(nc);
                for (int64_t r0 = 0; r0 < R; r0 += 16) {
                    const int64_t nr   = std::min<int64_t>(16, R - r0);
                    const __mmask16 mr = tail16(nr);
                    __m512 t[16];
                    for (int i = 0; i < 16; ++i) {
                        if (i >= nr) {
                            t[i] = _mm512_setzero_ps();
                        } else if constexpr (Kind == 2) {
                            const uint16_t * p = static_cast<const uint16_t *>(in_v) + (r0 + i) * ldi + c0;
                            t[i] = _mm512_castsi512_ps(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mc, p)));
                        } else {
                            t[i] = _mm512_maskz_loadu_ps(mc, static_cast<const float *>(in_v) + (r0 + i) * ldi + c0);
                        }
                    }
                    transpose16x16(t);  // t[c] = column c0 + c of rows r0 …
                    for (int c = 0; c < nc; ++c) {
                        if constexpr (Kind == 0) {
                            _mm512_mask_storeu_ps(static_cast<float *>(out_v) + (c0 + c) * ldo + r0, mr, t[c]);
                        } else {
                            __m512i v = _mm512_castps_si512(t[c]);
                            if constexpr (Kind == 1) v = round_bf16_lanes(v);
                            _mm256_mask_storeu_epi16(static_cast<uint16_t *>(out_v) + (c0 + c) * ldo + r0, mr,
                                                     _mm512_cvtepi32_epi16(v));
                        }
                    }
                }
            }
        },
        std::max<int64_t>(1, 4096 / std::max<int64_t>(R * 16, 1)));
}

}  // namespace

void transpose_f32_avx512(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo) {
    transpose_blocks<0>(in, ldi, R, C, out, ldo);
}
void transpose_f32_bf16_avx512(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo) {
    transpose_blocks<1>(in, ldi, R, C, out, ldo);
}
void transpose_u16_avx512(const void * in, int64_t ldi, int64_t R, int64_t C, void * out, int64_t ldo) {
    transpose_blocks<2>(in, ldi, R, C, out, ldo);
}

}  // namespace m4::kern
