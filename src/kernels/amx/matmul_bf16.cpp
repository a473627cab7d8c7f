// matmul_fwd_bf16_amx — y[M, N] = bf16(x)[M, K]·W[N, K]ᵀ (+ b) (+ y), W bf16, on AMX tiles:
// TDPBF16PS multiplies a 16 × 32 tile of bf16 x by a 32 × 16 tile of W (pairs of k per 32-bit
// element) into a 16 × 16 tile of f32 sums — 8192 multiply-adds per instruction, where VDPBF16PS
// does 32. Registered only when the CPU has AMX-BF16 and the kernel granted tile data (base/cpu.cpp).
// Reference: ops::matmul_forward_ref (src/ops/matmul.cpp), DType::BF16 — x rounded to bf16
// (nearest-even), exact products of bf16 pairs, f32 accumulation; only the order of the sums
// differs, and TDPBF16PS treats denormal inputs as zero and flushes denormal results (far below
// any activation or gradient the model produces).
//
// Layout: x is converted once per call into xb[Mp, Kp] (Mp = M rounded up to 16 with zero rows,
// Kp = K rounded up to 32 with zero columns), so that an A tile is 16 rows × 64 bytes of xb. W is
// packed per panel of 32 of its rows by the AVX-512 GEMM's packer (matmul_packed.h): wp[p][32]
// = the p-th pair of k of each row — exactly AMX's B layout (row p of a B tile = pair p of 16
// columns), so the B tiles of columns 0–15 and 16–31 are wp and wp + 16 with a 128-byte stride.
// A block of 32 rows × 32 columns keeps its four C tiles in tmm0–3, A in tmm4–5, B in tmm6–7; the
// sums are stored to a 4 KiB buffer and leave through the AVX-512 GEMMs' epilogue (bias, then
// accumulate, rounded in the reference's order). M < 16 (decode) stays on the AVX-512 kernel.
//
// x: (M, K) ldx   W: (N, K) bf16   b: (N)   y: (M, N) ldy
#include "kernels/avx512/matmul_packed.h"  // first: includes vec_math.h

#include "kernels/amx/kernels.h"
#include "kernels/avx512/kernels.h"

namespace m4::kern {
namespace {

using namespace avx512;

constexpr int64_t kAmxMinRows  = 16;   // below: the AVX-512 kernel (one tile would be mostly zero rows)
constexpr int64_t kAmxTaskRows = 256;  // rows of xb per task (a multiple of 32)

// The tile configuration (Intel SDM, LDTILECFG): palette 1, eight tiles of 16 rows × 64 bytes.
struct alignas(64) TileConfig {
    uint8_t palette_id = 1;
    uint8_t start_row  = 0;
    uint8_t reserved[14]{};
    uint16_t colsb[16]{};
    uint8_t rows[16]{};
};

void load_tile_config() {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
}

// c[32][32] (or its first 16 rows when !two) = xb rows m … m+31 · the panel, over kb K blocks of 32.
template <bool kTwoRowTiles>
void tile_block(const uint8_t * xb, int64_t ldb_bytes, const int32_t * wp, int64_t k_blocks, float * c) {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (kTwoRowTiles) {
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t kb = 0; kb < k_blocks; ++kb) {
        const uint8_t * a = xb + kb * 64;
        const int32_t * b = wp + kb * 16 * kPanelCols;
        _tile_loadd(4, a, ldb_bytes);
        _tile_loadd(6, b, kPanelCols * 4);
        _tile_loadd(7, b + 16, kPanelCols * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if constexpr (kTwoRowTiles) {
            _tile_loadd(5, a + 16 * ldb_bytes, ldb_bytes);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, c, 32 * 4);
    _tile_stored(1, c + 16, 32 * 4);
    if constexpr (kTwoRowTiles) {
        _tile_stored(2, c + 16 * 32, 32 * 4);
        _tile_stored(3, c + 16 * 32 + 16, 32 * 4);
    }
}

}  // namespace

void matmul_fwd_bf16_amx(const MatmulArgs & a) {
    if (a.M <= 0 || a.N <= 0) return;
    if (a.M < kAmxMinRows) return matmul_fwd_bf16_avx512(a);
    const int64_t Kp = round_up(std::max<int64_t>(a.K, 1), 32), Mp = round_up(a.M, 16);
    const int64_t groups = Kp / 2, k_blocks = Kp / 32;
    Scratch xbuf(static_cast<size_t>(Mp * Kp) * sizeof(uint16_t));
    uint16_t * xb     = xbuf.as<uint16_t>();
    ThreadPool & pool = ThreadPool::global();
    pool.parallel_for(
        Mp,
        [&](int64_t m0, int64_t m1) {
            for (int64_t m = m0; m < m1; ++m)
                if (m < a.M)
                    convert_row_bf16(a.x + m * a.ldx, xb + m * Kp, a.K, Kp);
                else
                    std::memset(xb + m * Kp, 0, static_cast<size_t>(Kp) * sizeof(uint16_t));
        },
        std::max<int64_t>(1, (int64_t{1} << 16) / Kp), ThreadPool::site_hint(a.M, a.K));

    // Tasks: kAmxTaskRows rows × one panel of 32 columns, panel-major, so that a thread's
    // consecutive tasks share the panel it has packed.
    const int64_t n_mb = ceil_div(Mp, kAmxTaskRows), tasks = n_mb * ceil_div(a.N, kPanelCols);
    const uint16_t * w = static_cast<const uint16_t *>(a.w);
    pool.parallel_for(
        tasks,
        [&](int64_t t0, int64_t t1) {
            Scratch packed(static_cast<size_t>(groups * kPanelCols) * sizeof(int32_t));
            int32_t * wp = packed.as<int32_t>();
            alignas(64) float c[32 * 32];
            int64_t packed_n = -1;
            load_tile_config();
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t n  = (t / n_mb) * kPanelCols;
                const int64_t m0 = (t % n_mb) * kAmxTaskRows, m1 = std::min(Mp, m0 + kAmxTaskRows);
                const int nr = static_cast<int>(std::min<int64_t>(kPanelCols, a.N - n));
                if (n != packed_n) {
                    pack_panel_groups(
                        nr, groups, reinterpret_cast<const uint8_t *>(w + n * a.K), 2 * a.K, 4,
                        [](const uint8_t * p, int64_t left) { return _mm512_maskz_loadu_epi16(tail32(left / 2), p); },
                        wp);
                    packed_n = n;
                }
                for (int64_t m = m0; m < m1; m += 32) {
                    const uint8_t * xa = reinterpret_cast<const uint8_t *>(xb + m * Kp);
                    const bool two     = m1 - m >= 32;
                    if (two)
                        tile_block<true>(xa, 2 * Kp, wp, k_blocks, c);
                    else
                        tile_block<false>(xa, 2 * Kp, wp, k_blocks, c);
                    const PanelOutput out(a, m, n, nr);
                    const int64_t rows = std::min<int64_t>(two ? 32 : 16, a.M - m);
                    for (int64_t i = 0; i < rows; ++i) {
                        out.store(static_cast<int>(i), 0, _mm512_load_ps(c + i * 32));
                        out.store(static_cast<int>(i), 1, _mm512_load_ps(c + i * 32 + 16));
                    }
                }
            }
            _tile_release();  // a thread holding no tile data saves and restores less on a context switch
        },
        1, ThreadPool::site_hint(a.M, a.N, Kp));
}

}  // namespace m4::kern
