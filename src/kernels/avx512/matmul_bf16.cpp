// matmul_fwd_bf16_avx512 — y[M, N] = bf16(x)[M, K]·W[N, K]ᵀ (+ b) (+ y), W bf16, with
// VDPBF16PS (AVX-512-BF16): each instruction multiplies 32 bf16 pairs exactly and adds them into
// 16 f32 sums. Registered only when the CPU has AVX-512-BF16.
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::BF16 — x rounded to bf16
// (nearest-even, as VCVTNEPS2BF16 does), exact products, f32 accumulation; only the order of the
// sum differs (and VDPBF16PS flushes denormals, far below any activation the model produces).
// M < 16 (decode): dot-product tiles straight from W's rows (matmul_tiles.h). M ≥ 16: the packed
// outer-product GEMM of matmul_packed.h, W in panels of 32 rows, one bf16 pair per lane.
//
// x: (M, K) ldx   W: (N, K) bf16   b: (N)   y: (M, N) ldy
#include "kernels/avx512/matmul_packed.h"  // first: includes vec_math.h

#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

// Two k per lane, VDPBF16PS: exact products of bf16 pairs added into f32.
struct PairsBf16 {
    using Acc = __m512;
    static Acc zero() { return _mm512_setzero_ps(); }
    static Acc madd(Acc c, __m512i x, __m512i w) { return _mm512_dpbf16_ps(c, (__m512bh)x, (__m512bh)w); }
};

// x is converted inside the GEMM's parallel region, a micro-tile of rows just before first use.
void matmul_bf16_packed(const MatmulArgs & a, uint16_t * xb, int64_t ldb) {
    using namespace avx512;
    const int64_t groups = ldb / 2;
    const uint16_t * w   = static_cast<const uint16_t *>(a.w);
    run_packed_gemm(
        a.M, a.N, groups,
        [&](int64_t m, int mr) {
            for (int i = 0; i < mr; ++i) avx512::convert_row_bf16(a.x + (m + i) * a.ldx, xb + (m + i) * ldb, a.K, ldb);
        },
        [&](int64_t n, int nr, int32_t * wp) {
            pack_panel_groups(
                nr, groups, reinterpret_cast<const uint8_t *>(w + n * a.K), 2 * a.K, 4,
                [](const uint8_t * p, int64_t left) { return _mm512_maskz_loadu_epi16(tail32(left / 2), p); }, wp);
        },
        [&](int mr, int64_t m, int64_t n, int nr, const int32_t * wp) {
            const PanelOutput out(a, m, n, nr);
            outer_tile_any<PairsBf16>(mr, reinterpret_cast<const uint8_t *>(xb + m * ldb), 2 * ldb, wp, groups,
                                      [&](int i, int h, __m512 s) { out.store(i, h, s); });
        });
}

}  // namespace

void matmul_fwd_bf16_avx512(const MatmulArgs & a) {
    using namespace avx512;
    if (a.M <= 0 || a.N <= 0) return;
    // x is converted once per call (M·K·2 bytes); the tiles then read bf16 pairs from both sides.
    const int64_t ldb = round_up(std::max<int64_t>(a.K, 1), 32);
    Scratch buf(static_cast<size_t>(a.M * ldb) * sizeof(uint16_t));
    uint16_t * xb = buf.as<uint16_t>();
    if (a.M >= kPackedMinRows) return matmul_bf16_packed(a, xb, ldb);
    ThreadPool::global().parallel_for(
        a.M,
        [&](int64_t m0, int64_t m1) {
            for (int64_t m = m0; m < m1; ++m) avx512::convert_row_bf16(a.x + m * a.ldx, xb + m * ldb, a.K, ldb);
        },
        std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(a.K, 1)));
    const uint16_t * w = static_cast<const uint16_t *>(a.w);
    const int nr_max   = a.M == 1 ? kNrGemv : kNr;
    for_each_block(a.M, a.N, a.K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
        for_each_tile(
            m0, m1, n0, n1, nr_max, [](int64_t, int) {},
            [&](int mr, int nr, int64_t m, int64_t n) {
                dot_tile_any<Bf16Traits>(mr, nr, xb + m * ldb, ldb, w + n * a.K, a.K, a.K, [&](int i, int q, __m128 s) {
                    const int64_t col = n + 4 * q;
                    store_f32x4(a.y + (m + i) * a.ldy + col, s, std::min(4, nr - 4 * q),
                                a.bias ? a.bias + col : nullptr, a.accumulate);
                });
            });
    });
}

}  // namespace m4::kern
