// matmul — the linear layer of every projection, FFN and head.
//
//     y[M, N] = x[M, K] · W[N, K]ᵀ  (+ b[N])  (+ y[M, N] when accumulate)
//
// M rows of x (tokens), N output features, K input features. x and y are row-major with leading
// dimensions ldx and ldy ≥ N; ldx < K makes rows of x overlap (a strided view: audio frames at a
// hop shorter than the frame), y must not overlap x. W is contiguous [N, K] (out, in features).
// Per output element, with v = dot (+ b[n]):  y = accumulate ? y + v : v.
// The dot depends on the weight dtype (kernels/abi.h defines it; every kernel must match):
//   F32   Σ_k x[k]·w[n,k] in f32.
//   BF16  x[k] is first rounded to bf16 (nearest, ties to even); the products of bf16 pairs are
//         exact in f32 and are accumulated in f32.
//   I8    W8A8 with dynamic per-row activation quantisation:
//             sx    = max_k |x[k]| / 127        (1 when the row is all zero)
//             qx[k] = clamp(round_half_even(x[k] / sx), −127, 127)
//             dot   = float(Σ_k qx[k]·qw[n,k]) · (sx · w_scale[n])     (exact int32 sum)
//         so optimised kernels match this bit for bit (the integer sum is exact and the two
//         float multiplies happen in the same order).
//
// Backward (accumulating; any of dx, dw, db may be null), with W̃ the dequantised weight (f32 as is,
// bf16 widened, i8 q·scale[n]):
//     dx[M, K] += dy[M, N] · W̃[N, K]           dw[N, K] += dy[M, N]ᵀ · x[M, K]      db[N] += Σ_m dy[m, :]
// The bf16 / int8 rounding of x in the forward is treated as the identity (straight-through): a
// bf16 or int8 weight is a frozen base, so only dx flows through it; dw needs an f32 (master) weight.
// Rows of dx may overlap (lddx < K, the strided view of the forward): their gradients add up.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/thread_pool.h"
#include "ops/ops.h"

namespace m4::ops {
namespace {

// v = dot (+ bias), then y = v or y + v.
inline void store_out(const kern::MatmulArgs & a, int64_t m, int64_t n, float dot) {
    float v = dot;
    if (a.bias) v = v + a.bias[n];
    float & out = a.y[m * a.ldy + n];
    out         = a.accumulate ? out + v : v;
}

void row_f32(const kern::MatmulArgs & a, int64_t m) {
    const float * x = a.x + m * a.ldx;
    const float * w = static_cast<const float *>(a.w);
    for (int64_t n = 0; n < a.N; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < a.K; ++k) acc += x[k] * w[n * a.K + k];
        store_out(a, m, n, acc);
    }
}

void row_bf16(const kern::MatmulArgs & a, int64_t m, std::vector<float> & xr) {
    const float * x    = a.x + m * a.ldx;
    const uint16_t * w = static_cast<const uint16_t *>(a.w);
    for (int64_t k = 0; k < a.K; ++k) xr[k] = round_to_bf16(x[k]);
    for (int64_t n = 0; n < a.N; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < a.K; ++k) acc += xr[k] * bf16_to_f32(w[n * a.K + k]);
        store_out(a, m, n, acc);
    }
}

void row_i8(const kern::MatmulArgs & a, int64_t m, std::vector<int32_t> & qx) {
    const float * x  = a.x + m * a.ldx;
    const int8_t * w = static_cast<const int8_t *>(a.w);
    float amax       = 0.0f;
    for (int64_t k = 0; k < a.K; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float sx = amax > 0.0f ? amax / 127.0f : 1.0f;
    for (int64_t k = 0; k < a.K; ++k) {
        // std::nearbyint rounds half to even in the default rounding mode.
        const float q = std::nearbyint(x[k] / sx);
        qx[k]         = static_cast<int32_t>(std::min(127.0f, std::max(-127.0f, q)));
    }
    for (int64_t n = 0; n < a.N; ++n) {
        int32_t acc = 0;
        for (int64_t k = 0; k < a.K; ++k) acc += qx[k] * static_cast<int32_t>(w[n * a.K + k]);
        const float scale = sx * a.w_scale[n];
        store_out(a, m, n, static_cast<float>(acc) * scale);
    }
}

}  // namespace

// x: (M, K) ldx   w: (N, K)   bias: (N) or null   y: (M, N) ldy
void matmul_forward_ref(const kern::MatmulArgs & a, DType w_dtype) {
    M4_CHECK(w_dtype == DType::F32 || w_dtype == DType::BF16 || w_dtype == DType::I8);
    M4_CHECK(w_dtype != DType::I8 || a.w_scale != nullptr);
    if (a.M <= 0 || a.N <= 0) return;
    // Rows are independent, so splitting them over threads leaves the numerics unchanged.
    const int64_t work_per_row = std::max<int64_t>(1, a.N * a.K);
    const int64_t grain        = std::max<int64_t>(1, (int64_t{1} << 16) / work_per_row);
    ThreadPool::global().parallel_for(
        a.M,
        [&](int64_t m0, int64_t m1) {
            std::vector<float> xr(w_dtype == DType::BF16 ? a.K : 0);
            std::vector<int32_t> qx(w_dtype == DType::I8 ? a.K : 0);
            for (int64_t m = m0; m < m1; ++m) {
                switch (w_dtype) {
                    case DType::F32:
                        row_f32(a, m);
                        break;
                    case DType::BF16:
                        row_bf16(a, m, xr);
                        break;
                    default:
                        row_i8(a, m, qx);
                        break;
                }
            }
        },
        grain);
}

// dy: (M, N) lddy   x: (M, K) ldx   w: (N, K)   dx: (M, K) lddx   dw: (N, K) f32   db: (N)
void matmul_backward_ref(const float * dy, int64_t lddy, const float * x, int64_t ldx, const Tensor & w, float * dx,
                         int64_t lddx, float * dw, float * db, int64_t M) {
    const DType dt = w.dtype();
    M4_CHECK(w.ndim() == 2 && (dt == DType::F32 || dt == DType::BF16 || dt == DType::I8));
    M4_CHECK_MSG(dw == nullptr || dt == DType::F32, "matmul backward: a weight gradient needs an f32 weight");
    const int64_t N = w.dim(0), K = w.dim(1);
    auto weight_at = [&](int64_t n, int64_t k) -> float {
        if (dt == DType::F32) return w.f32()[n * K + k];
        if (dt == DType::BF16) return bf16_to_f32(w.bf16()[n * K + k]);
        return static_cast<float>(w.i8()[n * K + k]) * w.scales()[n];
    };
    for (int64_t m = 0; m < M; ++m) {
        const float * g = dy + m * lddy;
        if (dx) {
            for (int64_t k = 0; k < K; ++k) {
                float acc = 0.0f;
                for (int64_t n = 0; n < N; ++n) acc += g[n] * weight_at(n, k);
                dx[m * lddx + k] += acc;
            }
        }
        if (db)
            for (int64_t n = 0; n < N; ++n) db[n] += g[n];
    }
    if (dw) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t k = 0; k < K; ++k) {
                float acc = 0.0f;
                for (int64_t m = 0; m < M; ++m) acc += dy[m * lddy + n] * x[m * ldx + k];
                dw[n * K + k] += acc;
            }
    }
}

}  // namespace m4::ops
