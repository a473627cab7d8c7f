// Register-blocked dot-product tiles and the block/thread driver shared by the three AVX-512
// matmul kernels (matmul_f32.cpp, matmul_bf16.cpp, matmul_i8_vnni.cpp).
//
// Both operands of y = x·Wᵀ are K-contiguous, so a tile of MR rows of x × NR rows of W keeps
// MR·NR vector accumulators, streams K once (one load of x and of W feeds several FMAs), and
// reduces each accumulator horizontally at the end, four at a time (reduce4). MR ≤ 4, NR ≤ 4;
// the GEMV case (M = 1) uses MR = 1, NR = 8 so that eight independent FMA chains hide the latency.
//
// for_each_block splits the M × N output into blocks (the unit of work of the thread pool):
// blocks are taken N-major, so each thread reads its own part of W once, and inside a block the
// NR rows of W of one tile stay in L1 while the block's rows of x stream past them.
//
// Include only from src/kernels/avx512/*.cpp.
#pragma once

#include "kernels/avx512/vec_math.h"  // first: it includes <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "base/arena.h"
#include "base/thread_pool.h"

namespace m4::kern::avx512 {

inline constexpr int kMr     = 4;  // rows of x per tile
inline constexpr int kNr     = 4;  // rows of W per tile
inline constexpr int kNrGemv = 8;  // rows of W per tile when M == 1

inline int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}
inline int64_t round_up(int64_t a, int64_t b) {
    return ceil_div(a, b) * b;
}

// 64-byte aligned scratch memory, freed on scope exit (kept free of std templates on purpose:
// this header is compiled with AVX-512 flags, see vec_math.h).
class Scratch {
  public:
    explicit Scratch(size_t bytes) : p_(aligned_alloc_bytes(bytes)) {}
    ~Scratch() { aligned_free(p_); }
    Scratch(const Scratch &)             = delete;
    Scratch & operator=(const Scratch &) = delete;
    template <typename T>
    T * as() const {
        return static_cast<T *>(p_);
    }

  private:
    void * p_;
};

// r[0..15] = 16 rows of 16 32-bit lanes → r[c] = column c (lane i of r[c] is old r[i][c]). The
// shuffles move bits only, so integer lanes go through it cast to __m512.
inline void transpose16x16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {  // interleave pairs of rows within each 128-bit lane
        t[i]     = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // 4 × 4 transposes within each 128-bit lane
        u[i]     = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    // u[4b + q], lane L = column 4L + q of rows 4b … 4b+3: transpose the 4 × 4 grid of lanes.
    for (int q = 0; q < 4; ++q) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44);
        const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
        r[q]            = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + q]        = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + q]        = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + q]       = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

// Runs fn(m0, m1, n0, n1) over blocks covering [0, M) × [0, N), spread over the thread pool.
template <typename Fn>
void for_each_block(int64_t M, int64_t N, int64_t K, const Fn & fn) {
    ThreadPool & pool     = ThreadPool::global();
    const int64_t threads = pool.size();
    int64_t mb = 64, nb = 64;
    if (M <= kMr) {
        // GEMV-like: the work is reading W; give every thread a few column blocks.
        mb = M;
        nb = std::clamp<int64_t>(round_up(ceil_div(N, 4 * threads), 16), 16, 1024);
    }
    const int64_t n_mb = ceil_div(M, mb), n_nb = ceil_div(N, nb), tasks = n_mb * n_nb;
    // Tiny problems are not worth waking the pool for.
    const int64_t grain = M * N * std::max<int64_t>(K, 1) < (int64_t{1} << 15) ? tasks : 1;
    pool.parallel_for(
        tasks,
        [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t m0 = (t % n_mb) * mb, n0 = (t / n_mb) * nb;
                fn(m0, std::min(M, m0 + mb), n0, std::min(N, n0 + nb));
            }
        },
        grain, ThreadPool::site_hint(M, N, K));
}

// ---- element traits: how to load and multiply-accumulate one K step -------------------------
struct F32Traits {
    using X                    = float;   // element of x (as the tile reads it)
    using W                    = float;   // element of W
    using V                    = __m512;  // a loaded vector
    using Acc                  = __m512;
    using Sum                  = __m128;
    static constexpr int kStep = 16;
    static Acc zero() { return _mm512_setzero_ps(); }
    static V load(const float * p) { return _mm512_loadu_ps(p); }
    static V load_tail(const float * p, int64_t n) { return _mm512_maskz_loadu_ps(tail16(n), p); }
    static Acc madd(Acc c, V x, V w) { return _mm512_fmadd_ps(x, w, c); }
    static Sum reduce(Acc a, Acc b, Acc c, Acc d) { return reduce4(a, b, c, d); }
};

// x already rounded to bf16; products of bf16 pairs are exact, accumulation in f32.
struct Bf16Traits {
    using X                    = uint16_t;
    using W                    = uint16_t;
    using V                    = __m512i;
    using Acc                  = __m512;
    using Sum                  = __m128;
    static constexpr int kStep = 32;
    static Acc zero() { return _mm512_setzero_ps(); }
    static V load(const uint16_t * p) { return _mm512_loadu_si512(p); }
    static V load_tail(const uint16_t * p, int64_t n) { return _mm512_maskz_loadu_epi16(tail32(n), p); }
    static Acc madd(Acc c, V x, V w) { return _mm512_dpbf16_ps(c, (__m512bh)x, (__m512bh)w); }
    static Sum reduce(Acc a, Acc b, Acc c, Acc d) { return reduce4(a, b, c, d); }
};

// x as u8 = qx + 128, W as s8: Σ u8·s8 in exact int32 (the caller subtracts 128·Σqw).
struct U8S8Traits {
    using X                    = uint8_t;
    using W                    = int8_t;
    using V                    = __m512i;
    using Acc                  = __m512i;
    using Sum                  = __m128i;
    static constexpr int kStep = 64;
    static Acc zero() { return _mm512_setzero_si512(); }
    template <typename T>
    static V load(const T * p) {
        return _mm512_loadu_si512(p);
    }
    template <typename T>
    static V load_tail(const T * p, int64_t n) {
        return _mm512_maskz_loadu_epi8(tail64(n), p);
    }
    static Acc madd(Acc c, V x, V w) { return _mm512_dpbusd_epi32(c, x, w); }
    static Sum reduce(Acc a, Acc b, Acc c, Acc d) { return reduce4_epi32(a, b, c, d); }
};

// x and W both s8, widened to s16: VPMADDWD adds two exact products into each int32 lane
// (AVX-512BW; the int8 path of CPUs without VNNI). 32 elements per step; no compensation.
struct S8S8WideTraits {
    using X                    = int8_t;
    using W                    = int8_t;
    using V                    = __m512i;
    using Acc                  = __m512i;
    using Sum                  = __m128i;
    static constexpr int kStep = 32;
    static Acc zero() { return _mm512_setzero_si512(); }
    static V load(const int8_t * p) {
        return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    }
    static V load_tail(const int8_t * p, int64_t n) {
        return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(tail32(n), p));
    }
    static Acc madd(Acc c, V x, V w) { return _mm512_add_epi32(c, _mm512_madd_epi16(x, w)); }
    static Sum reduce(Acc a, Acc b, Acc c, Acc d) { return reduce4_epi32(a, b, c, d); }
};

// The same with the compensation folded in, for GEMV (M = 1) where a separate pass for Σqw
// would read W twice: each step also adds 128·w into a second accumulator, and the two are
// subtracted lane-wise before the reduction, so the sums come out as Σ qx·qw directly.
struct U8S8CompensatedTraits {
    using X = uint8_t;
    using W = int8_t;
    using V = __m512i;
    struct Acc {
        __m512i dot, w128;
    };
    using Sum                  = __m128i;
    static constexpr int kStep = 64;
    static Acc zero() { return {_mm512_setzero_si512(), _mm512_setzero_si512()}; }
    template <typename T>
    static V load(const T * p) {
        return _mm512_loadu_si512(p);
    }
    template <typename T>
    static V load_tail(const T * p, int64_t n) {
        return _mm512_maskz_loadu_epi8(tail64(n), p);
    }
    static Acc madd(Acc c, V x, V w) {
        return {_mm512_dpbusd_epi32(c.dot, x, w), _mm512_dpbusd_epi32(c.w128, _mm512_set1_epi8(-128), w)};
    }
    static Sum reduce(Acc a, Acc b, Acc c, Acc d) {
        return reduce4_epi32(_mm512_sub_epi32(a.dot, a.w128), _mm512_sub_epi32(b.dot, b.w128),
                             _mm512_sub_epi32(c.dot, c.w128), _mm512_sub_epi32(d.dot, d.w128));
    }
};

// One MR × NR tile: for i < MR, j < NR, dot(x[i, 0:K], w[j, 0:K]). Calls epi(i, q, sums) for each
// row i and group q of four columns (sums = columns 4q … 4q+3; lanes ≥ NR are zero).
template <class Tr, int MR, int NR, class Epi>
inline void dot_tile(const typename Tr::X * x, int64_t ldx, const typename Tr::W * w, int64_t ldw, int64_t K,
                     const Epi & epi) {
    constexpr int kGroups = (NR + 3) / 4;
    using Acc             = typename Tr::Acc;
    using V               = typename Tr::V;
    Acc c[MR][kGroups * 4];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < kGroups * 4; ++j) c[i][j] = Tr::zero();
    int64_t k = 0;
    for (; k + Tr::kStep <= K; k += Tr::kStep) {
        V wv[NR];
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) wv[j] = Tr::load(w + j * ldw + k);
#pragma GCC unroll 4
        for (int i = 0; i < MR; ++i) {
            const V xv = Tr::load(x + i * ldx + k);
#pragma GCC unroll 8
            for (int j = 0; j < NR; ++j) c[i][j] = Tr::madd(c[i][j], xv, wv[j]);
        }
    }
    if (k < K) {
        V wv[NR];
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) wv[j] = Tr::load_tail(w + j * ldw + k, K - k);
#pragma GCC unroll 4
        for (int i = 0; i < MR; ++i) {
            const V xv = Tr::load_tail(x + i * ldx + k, K - k);
#pragma GCC unroll 8
            for (int j = 0; j < NR; ++j) c[i][j] = Tr::madd(c[i][j], xv, wv[j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
        for (int q = 0; q < kGroups; ++q)
            epi(i, q, Tr::reduce(c[i][4 * q], c[i][4 * q + 1], c[i][4 * q + 2], c[i][4 * q + 3]));
}

// dot_tile for run-time mr ∈ [1, 4], nr ∈ [1, 4] or (mr, nr) = (1, 8).
template <class Tr, class Epi>
inline void dot_tile_any(int mr, int nr, const typename Tr::X * x, int64_t ldx, const typename Tr::W * w, int64_t ldw,
                         int64_t K, const Epi & epi) {
// clang-format off
#define M4_TILE_CASE(MR, NR) case MR * 16 + NR: return dot_tile<Tr, MR, NR>(x, ldx, w, ldw, K, epi);
    switch (mr * 16 + nr) {
        M4_TILE_CASE(1, 1) M4_TILE_CASE(1, 2) M4_TILE_CASE(1, 3) M4_TILE_CASE(1, 4) M4_TILE_CASE(1, 8)
        M4_TILE_CASE(2, 1) M4_TILE_CASE(2, 2) M4_TILE_CASE(2, 3) M4_TILE_CASE(2, 4)
        M4_TILE_CASE(3, 1) M4_TILE_CASE(3, 2) M4_TILE_CASE(3, 3) M4_TILE_CASE(3, 4)
        M4_TILE_CASE(4, 1) M4_TILE_CASE(4, 2) M4_TILE_CASE(4, 3) M4_TILE_CASE(4, 4)
        default: break;
    }
    // clang-format on
#undef M4_TILE_CASE
}

// Walks the tiles of one block: for each group of nr rows of W, calls begin_n(n, nr) (e.g. to
// precompute per-column data), then tile(mr, nr, m, n) down the block's rows.
template <class BeginN, class Tile>
inline void for_each_tile(int64_t m0, int64_t m1, int64_t n0, int64_t n1, int nr_max, const BeginN & begin_n,
                          const Tile & tile) {
    for (int64_t n = n0; n < n1;) {
        const int nr = n1 - n >= nr_max ? nr_max : static_cast<int>(std::min<int64_t>(kNr, n1 - n));
        begin_n(n, nr);
        for (int64_t m = m0; m < m1; m += kMr) tile(static_cast<int>(std::min<int64_t>(kMr, m1 - m)), nr, m, n);
        n += nr;
    }
}

// Finishes four f32 outputs (the first `lanes` of s): y = (s + bias) or y + (s + bias).
inline void store_f32x4(float * y, __m128 s, int lanes, const float * bias, bool accumulate) {
    const __mmask8 mk = static_cast<__mmask8>((1u << lanes) - 1u);
    if (bias) s = _mm_add_ps(s, _mm_maskz_loadu_ps(mk, bias));
    if (accumulate) s = _mm_add_ps(_mm_maskz_loadu_ps(mk, y), s);
    _mm_mask_storeu_ps(y, mk, s);
}

}  // namespace m4::kern::avx512
