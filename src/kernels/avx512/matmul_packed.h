// The packed outer-product GEMM shared by the AVX-512 matmuls whose instructions sum several k
// per 32-bit lane: int8 with VPMADDWD (2 k per lane, s16), int8 with VPDPBUSD (4 k, u8 × s8) and
// bf16 with VDPBF16PS (2 k). matmul_f32.cpp has the one-k-per-lane version of the same scheme.
//
// For M ≥ 16 (prefill, encoders, training) y = x·Wᵀ runs as outer products instead of dot
// products: W is packed in panels of 32 rows, Wp[p][32] = the p-th group of kPerLane k of each
// row (one 32-bit lane per row and group), by 16 × 16 register transposes; a micro-tile of up to
// 8 rows of x × 32 columns keeps 16 accumulators in registers and, per group p, loads two vectors
// of Wp and broadcasts one 32-bit group of each row of x: 16 multiply-adds and no horizontal sums.
// The panel stays in L1/L2 while a task's rows of x pass over it (the BLIS loop order).
//
// Rows of x must be prepared in the same grouping (4 bytes per group, zero past K where a
// product with the zero padding of Wp could be non-finite), ldx in bytes.
//
// Include only from src/kernels/avx512/*.cpp.
#pragma once

#include "kernels/avx512/matmul_tiles.h"  // first: includes vec_math.h

#include "kernels/abi.h"

#include <cstring>
#include <thread>
#include <vector>

namespace m4::kern::avx512 {

inline constexpr int64_t kPackedMinRows = 16;    // from this M on, the packed GEMM pays
inline constexpr int kPanelCols         = 32;    // columns of y (rows of W) per packed panel
inline constexpr int kTileRows          = 8;     // rows of x per micro-tile
inline constexpr int64_t kTaskRows      = 1024;  // rows of x per task

// xb[0:ld] = bf16(x[0:K]) (nearest even, VCVTNEPS2BF16), then zeros: the packed GEMM reads whole pairs, and garbage
// there could be a NaN that the zero padding of W would not cancel.
inline void convert_row_bf16(const float * x, uint16_t * xb, int64_t K, int64_t ld) {
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + k));
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(xb + k), (__m256i)h);
    }
    if (k < K) {
        const __mmask16 mk = tail16(K - k);
        const __m256bh h   = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mk, x + k));
        _mm256_mask_storeu_epi16(xb + k, mk, (__m256i)h);
    }
    for (k = K; k < ld; ++k) xb[k] = 0;
}

// wp[p][j] = lane group p of row j, for j < nr (zero for nr ≤ j < 32), p < groups (a multiple of
// 16). Row j starts at rows + j·row_bytes; a group is group_bytes bytes of it. load16(p, left)
// returns the 16 groups at p as 16 lanes, given the `left` bytes up to the row's end (zero past
// it).
//
// The panel's rows usually come from DRAM (a model's weights do not stay in cache), in 32 short
// streams the hardware prefetchers pick up late; so each block also prefetches the same rows
// kPrefetchBlocks blocks ahead.
inline constexpr int64_t kPrefetchBlocks = 4;
template <class Load16>
inline void pack_panel_groups(int nr, int64_t groups, const uint8_t * rows, int64_t row_bytes, int64_t group_bytes,
                              const Load16 & load16, int32_t * wp) {
    const int64_t block_bytes = 16 * group_bytes;
    for (int half = 0; half < 2; ++half) {
        const int n_rows     = std::clamp(nr - 16 * half, 0, 16);
        const uint8_t * row0 = rows + 16 * half * row_bytes;
        for (int i = 0; i < n_rows; ++i)
            for (int64_t b = 0; b < kPrefetchBlocks * block_bytes; b += 64)
                _mm_prefetch(reinterpret_cast<const char *>(row0 + i * row_bytes + b), _MM_HINT_T0);
        for (int64_t p0 = 0; p0 < groups; p0 += 16) {
            const int64_t at = p0 * group_bytes, ahead = at + kPrefetchBlocks * block_bytes;
            if (ahead < row_bytes)
                for (int i = 0; i < n_rows; ++i)
                    for (int64_t b = 0; b < block_bytes; b += 64)
                        _mm_prefetch(reinterpret_cast<const char *>(row0 + i * row_bytes + ahead + b), _MM_HINT_T0);
            __m512 r[16];
            for (int i = 0; i < 16; ++i)
                r[i] = i < n_rows ? _mm512_castsi512_ps(load16(row0 + i * row_bytes + at, row_bytes - at))
                                  : _mm512_setzero_ps();
            transpose16x16(r);  // r[c] = group p0 + c of the 16 rows
            for (int c = 0; c < 16; ++c)
                _mm512_storeu_ps(reinterpret_cast<float *>(wp + (p0 + c) * kPanelCols + 16 * half), r[c]);
        }
    }
}

// The MR × 32 accumulators of x[0:MR] · Wp over `groups` groups; then epi(i, h, acc) for row i and
// half h (columns 16h … 16h+15). Tr: Acc, zero(), madd(acc, x_broadcast, w).
template <class Tr, int MR, class Epi>
inline void outer_tile(const uint8_t * x, int64_t ldx, const int32_t * wp, int64_t groups, const Epi & epi) {
    using Acc = typename Tr::Acc;
    Acc c[MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = Tr::zero();
    for (int64_t p = 0; p < groups; ++p) {
        const __m512i w0 = _mm512_loadu_si512(wp + p * kPanelCols), w1 = _mm512_loadu_si512(wp + p * kPanelCols + 16);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            int32_t group;
            std::memcpy(&group, x + i * ldx + 4 * p, sizeof group);
            const __m512i xv = _mm512_set1_epi32(group);
            c[i][0]          = Tr::madd(c[i][0], xv, w0);
            c[i][1]          = Tr::madd(c[i][1], xv, w1);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
        epi(i, 0, c[i][0]);
        epi(i, 1, c[i][1]);
    }
}

template <class Tr, class Epi>
inline void outer_tile_any(int mr, const uint8_t * x, int64_t ldx, const int32_t * wp, int64_t groups,
                           const Epi & epi) {
    // clang-format off
    switch (mr) {
        case 1: return outer_tile<Tr, 1>(x, ldx, wp, groups, epi);
        case 2: return outer_tile<Tr, 2>(x, ldx, wp, groups, epi);
        case 3: return outer_tile<Tr, 3>(x, ldx, wp, groups, epi);
        case 4: return outer_tile<Tr, 4>(x, ldx, wp, groups, epi);
        case 5: return outer_tile<Tr, 5>(x, ldx, wp, groups, epi);
        case 6: return outer_tile<Tr, 6>(x, ldx, wp, groups, epi);
        case 7: return outer_tile<Tr, 7>(x, ldx, wp, groups, epi);
        case 8: return outer_tile<Tr, 8>(x, ldx, wp, groups, epi);
        default:
            break;
    }
    // clang-format on
}

// Where one micro-tile's rows go: columns n … n+31 of rows m, m+1, … of y, with the scalars of
// the epilogue read from MatmulArgs once per tile into locals. Read through the MatmulArgs in
// every store instead, they were reloaded after each one (a vector store may alias anything), and
// the epilogue took twice the instructions: an eighth of a 512³ int8 GEMM. Only scalars: vectors
// held across the tile's loop crowd the accumulators out of registers (GCC then spills them).
struct PanelOutput {
    float * y;
    int64_t ldy;
    const float * bias;  // at column n, or null
    bool accumulate;
    __mmask16 mask[2];  // the columns < N of each half

    PanelOutput(const kern::MatmulArgs & a, int64_t m, int64_t n, int nr)
        : y(a.y + m * a.ldy + n),
          ldy(a.ldy),
          bias(a.bias ? a.bias + n : nullptr),
          accumulate(a.accumulate),
          mask{tail16(std::clamp(nr, 0, 16)), tail16(std::clamp(nr - 16, 0, 16))} {}
    // y[i][16h …] = y + (v + b), in the reference's order (explicit rounding: no fused multiply-add
    // with whatever produced v).
    void store(int i, int h, __m512 v) const {
        if (!mask[h]) return;
        constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        float * out        = y + i * ldy + 16 * h;
        if (bias) v = _mm512_add_round_ps(v, _mm512_maskz_loadu_ps(mask[h], bias + 16 * h), kRne);
        if (accumulate) v = _mm512_add_round_ps(_mm512_maskz_loadu_ps(mask[h], out), v, kRne);
        _mm512_mask_storeu_ps(out, mask[h], v);
    }
};

// Runs the tasks (kTaskRows × one panel of y) over the thread pool. Each thread owns a contiguous
// range of tasks, the same one on every call of the same shape, so the W rows it packs and the
// columns of y it writes are still in its own caches from the last call (handing tasks out from
// one shared counter instead cost up to 15 % of the int8 and bf16 GEMMs at 512³–1024³ on a 2-core
// EPYC: the lines of y then moved between the cores' caches). A thread that finishes its range
// takes the next tasks of the others' ranges: on a shared machine one core is often slower than
// the other, and waiting for it would cost more.
//
// The rows of x are prepared (converted to bf16, quantised) inside the same parallel region, one
// micro-tile of rows at a time just before their first use: prepare(m, mr) runs once for rows
// m … m+mr-1, by whichever thread needs them first (a thread that finds them being prepared by
// another waits for it). Each thread starts its tasks' rows at its own offset, so in the first
// task the threads prepare different rows instead of waiting on each other. (A separate parallel
// pass before the GEMM cost one more fork and join and ran apart from the arithmetic.)
//
// For each task: pack(n, nr, wp) fills the panel (groups × 32 lanes, then one more row of 32
// lanes for per-column data of the kernel's own) unless the thread's last task left it there,
// then tile(mr, m, n, nr, wp) runs the micro-tiles down the task's rows.
template <class Prepare, class Pack, class Tile>
inline void run_packed_gemm(int64_t M, int64_t N, int64_t groups, const Prepare & prepare, const Pack & pack,
                            const Tile & tile) {
    const int64_t n_mb = ceil_div(M, kTaskRows), tasks = n_mb * ceil_div(N, kPanelCols);
    ThreadPool & pool     = ThreadPool::global();
    const int64_t n_parts = std::min<int64_t>(pool.size(), tasks);
    // __atomic builtins below: no std::atomic instantiated with AVX-512 flags.
    struct alignas(64) Range {
        int64_t next, end;
    };
    // The bookkeeping lives in the calling thread's reused vectors, not in fresh ones per call:
    // small blocks allocated between a model's multi-MiB activation buffers kept glibc from
    // trimming its heap, and the 110 M model's peak RSS wandered from 157 to 167 MiB between runs.
    // They are named through references: in the workers' lambda below a thread_local name would
    // mean each worker's own (empty) vector, not the caller's.
    thread_local std::vector<Range> caller_ranges;
    std::vector<Range> & ranges = caller_ranges;
    ranges.assign(static_cast<size_t>(n_parts), Range{});
    for (int64_t r = 0; r < n_parts; ++r) ranges[r] = {r * tasks / n_parts, (r + 1) * tasks / n_parts};
    enum : int32_t { kUnprepared, kPreparing, kPrepared };
    thread_local std::vector<int32_t> caller_row_state;
    std::vector<int32_t> & row_state = caller_row_state;
    row_state.assign(static_cast<size_t>(ceil_div(M, kTileRows)), kUnprepared);
    auto ensure_prepared = [&](int64_t m, int mr) {
        int32_t & state = row_state[static_cast<size_t>(m / kTileRows)];
        if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == kPrepared) return;
        int32_t expected = kUnprepared;
        if (__atomic_compare_exchange_n(&state, &expected, kPreparing, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
            prepare(m, mr);
            __atomic_store_n(&state, kPrepared, __ATOMIC_RELEASE);
            return;
        }
        // Short waits (one tile's rows); yield now and then in case the preparing thread has lost
        // its core (more threads than cores).
        for (int spins = 1; __atomic_load_n(&state, __ATOMIC_ACQUIRE) != kPrepared; ++spins)
            if (spins % 1024 == 0)
                std::this_thread::yield();
            else
                _mm_pause();
    };
    pool.parallel_for(
        n_parts,
        [&](int64_t part, int64_t) {
            Scratch packed(static_cast<size_t>((groups + 1) * kPanelCols) * sizeof(int32_t));
            int32_t * wp     = packed.as<int32_t>();
            int64_t packed_n = -1;  // the panel in wp: a range's consecutive tasks (row blocks) share it
            for (int64_t i = 0; i < n_parts; ++i) {
                Range & range = ranges[(part + i) % n_parts];
                for (int64_t t; (t = __atomic_fetch_add(&range.next, 1, __ATOMIC_RELAXED)) < range.end;) {
                    const int64_t m0 = (t % n_mb) * kTaskRows, m1 = std::min(M, m0 + kTaskRows);
                    const int64_t n = (t / n_mb) * kPanelCols;
                    const int nr    = static_cast<int>(std::min<int64_t>(kPanelCols, N - n));
                    if (n != packed_n) pack(n, nr, wp), packed_n = n;
                    const int64_t n_tiles = ceil_div(m1 - m0, kTileRows), first = part * n_tiles / n_parts;
                    for (int64_t j = 0; j < n_tiles; ++j) {
                        const int64_t m = m0 + (first + j) % n_tiles * kTileRows;
                        const int mr    = static_cast<int>(std::min<int64_t>(kTileRows, m1 - m));
                        ensure_prepared(m, mr);
                        tile(mr, m, n, nr, wp);
                    }
                }
            }
        },
        1, ThreadPool::site_hint(M, N, groups));
}

}  // namespace m4::kern::avx512
