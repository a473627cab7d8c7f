// matmul_fwd_f32_avx512 — y[M, N] = x[M, K]·W[N, K]ᵀ (+ b) (+ y), W f32.
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::F32. Same products, f32
// accumulation in a different order (16 partial sums per output, then a tree), so results agree
// to f32 rounding of the sum.
//
// x: (M, K) ldx   W: (N, K)   b: (N)   y: (M, N) ldy
#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include "kernels/avx512/kernels.h"

namespace m4::kern {

void matmul_fwd_f32_avx512(const MatmulArgs & a) {
    using namespace avx512;
    if (a.M <= 0 || a.N <= 0) return;
    const float * w  = static_cast<const float *>(a.w);
    const int nr_max = a.M == 1 ? kNrGemv : kNr;
    for_each_block(a.M, a.N, a.K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
        for_each_tile(
            m0, m1, n0, n1, nr_max, [](int64_t, int) {},
            [&](int mr, int nr, int64_t m, int64_t n) {
                dot_tile_any<F32Traits>(mr, nr, a.x + m * a.ldx, a.ldx, w + n * a.K, a.K, a.K,
                                        [&](int i, int q, __m128 s) {
                                            const int64_t col = n + 4 * q;
                                            store_f32x4(a.y + (m + i) * a.ldy + col, s, std::min(4, nr - 4 * q),
                                                        a.bias ? a.bias + col : nullptr, a.accumulate);
                                        });
            });
    });
}

}  // namespace m4::kern
