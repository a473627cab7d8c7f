#include "train/linear.h"

#include <algorithm>
#include <vector>

#include "base/thread_pool.h"
#include "ops/ops.h"

namespace m4::train {
namespace {

// out[c, r] = in[r, c] for in [R, C] with row stride ld; out is an f32 or bf16 tensor [C, R].
void transpose_into(const float * in, int64_t ld, int64_t R, int64_t C, Tensor & out) {
    const bool bf16 = out.dtype() == DType::BF16;
    ops::transpose(bf16 ? kern::TransposeKind::F32ToBf16 : kern::TransposeKind::F32, in, ld, R, C, out.mutable_data(),
                   R);
}

// blk[k, j] = W̃[n0 + j, k] for j < n (W [N, K]; blk f32 or bf16 [K, n]).
void transpose_weight_block(const Tensor & w, int64_t n0, int64_t n, Tensor & blk) {
    const int64_t K    = w.dim(1);
    const bool to_bf16 = blk.dtype() == DType::BF16;
    switch (w.dtype()) {
        case DType::F32:
            ops::transpose(to_bf16 ? kern::TransposeKind::F32ToBf16 : kern::TransposeKind::F32, w.f32() + n0 * K, K, n,
                           K, blk.mutable_data(), n);
            return;
        case DType::BF16:
            if (to_bf16) {
                ops::transpose(kern::TransposeKind::U16, w.bf16() + n0 * K, K, n, K, blk.mutable_data(), n);
            } else {
                const uint16_t * src = w.bf16() + n0 * K;
                float * out          = blk.f32();
                ThreadPool::global().parallel_for(
                    K,
                    [&](int64_t k0, int64_t k1) {
                        for (int64_t k = k0; k < k1; ++k)
                            for (int64_t j = 0; j < n; ++j) out[k * n + j] = bf16_to_f32(src[j * K + k]);
                    },
                    std::max<int64_t>(1, 4096 / n));
            }
            return;
        default: {
            // int8: W̃[n, k] = q·scale[n]; the scale is per row of W, so per column of the block.
            const int8_t * q    = w.i8() + n0 * K;
            const float * scale = w.scales() + n0;
            float * out         = blk.f32();
            M4_CHECK(!to_bf16);
            ThreadPool::global().parallel_for(
                K,
                [&](int64_t k0, int64_t k1) {
                    for (int64_t k = k0; k < k1; ++k)
                        for (int64_t j = 0; j < n; ++j) out[k * n + j] = static_cast<float>(q[j * K + k]) * scale[j];
                },
                std::max<int64_t>(1, 4096 / n));
        }
    }
}

// A tensor of the given shape over the calling thread's scratch buffer `slot`, grown as needed
// and kept: a training step reuses the same few blocks instead of allocating them per GEMM.
Tensor scratch_tensor(int slot, DType dt, std::initializer_list<int64_t> shape) {
    thread_local std::vector<float> buffers[3];
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> & b = buffers[slot];
    const size_t floats    = static_cast<size_t>((n * dtype_size(dt) + 3) / 4);
    if (b.size() < floats) b.resize(floats);
    return Tensor::view(dt, shape, b.data());
}

}  // namespace

void matmul_dx(const float * dy, int64_t M, const Tensor & w, float * dx, Precision p) {
    const int64_t N = w.dim(0), K = w.dim(1);
    if (M == 0 || N == 0 || K == 0) return;
    const DType bt   = p == Precision::Bf16 ? DType::BF16 : DType::F32;
    const int64_t nb = std::clamp<int64_t>(kBlockElems / K, 1, N);
    Tensor wt        = scratch_tensor(0, bt, {K, nb});
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        const int64_t n = std::min(nb, N - n0);
        // wt[k, j] = W̃[n0 + j, k]: the block of W transposed, so dx += dy[:, n0:n0+n] · wtᵀ.
        Tensor blk = n == nb ? wt : Tensor::view(bt, {K, n}, wt.data());
        transpose_weight_block(w, n0, n, blk);
        ops::matmul(dy + n0, N, blk, nullptr, dx, K, M, /*accumulate=*/true);
    }
}

void matmul_dw(const float * dy, const float * x, int64_t ldx, int64_t M, int64_t N, int64_t K, float * dw,
               Precision p) {
    if (M == 0 || N == 0 || K == 0) return;
    // dw[N, K] += dyᵀ[N, M] · (xᵀ[K, M])ᵀ: both transposed once, then one GEMM over M.
    Tensor dyt = scratch_tensor(1, DType::F32, {N, M});
    Tensor xt  = scratch_tensor(2, p == Precision::Bf16 ? DType::BF16 : DType::F32, {K, M});
    transpose_into(dy, N, M, N, dyt);
    transpose_into(x, ldx, M, K, xt);
    ops::matmul(dyt.f32(), M, xt, nullptr, dw, K, N, /*accumulate=*/true);
}

void bias_grad(const float * dy, int64_t M, int64_t N, float * db) {
    ThreadPool::global().parallel_for(
        N,
        [&](int64_t n0, int64_t n1) {
            for (int64_t m = 0; m < M; ++m)
                for (int64_t n = n0; n < n1; ++n) db[n] += dy[m * N + n];
        },
        64);
}

float * GradSink::grad_of(const void * data) const {
    if (!params || !data) return nullptr;
    Param * p = params->owner_of(data);
    return p ? p->grad.f32() : nullptr;
}

void linear_backward(const GradSink & sink, const model::Linear & l, const float * x, const float * dy, int64_t M,
                     float * dx) {
    const int64_t in = l.in(), out = l.out();
    // A bf16 weight under bf16 training runs the bf16 kernels; anything else the exact f32 ones on
    // the dequantised weight (the definition of ops::matmul_backward_ref).
    const Precision p =
        l.w.dtype() == DType::BF16 && sink.precision == Precision::Bf16 ? Precision::Bf16 : Precision::F32;
    if (float * dw = sink.grad_of(l.w.data())) matmul_dw(dy, x, in, M, out, in, dw, p);
    if (float * db = sink.grad_of(l.bias)) bias_grad(dy, M, out, db);
    const model::LoraPair * pair = nullptr;
    if (sink.lora) {
        auto it = sink.lora->lora.find(l.name);
        if (it != sink.lora->lora.end()) pair = &it->second;
    }
    if (pair) {
        const int64_t R = pair->a.dim(0);
        // t = s·x·Aᵀ [M, R] (recomputed: rank R is small), dt = s·dy·B [M, R]
        std::vector<float> t(static_cast<size_t>(M * R)), dt(static_cast<size_t>(M * R), 0.0f);
        ops::matmul(x, in, pair->a, nullptr, t.data(), R, M);
        for (float & v : t) v *= pair->scale;
        matmul_dx(dy, M, pair->b, dt.data(), Precision::F32);
        for (float & v : dt) v *= pair->scale;
        if (float * gb = sink.grad_of(pair->b.data())) matmul_dw(dy, t.data(), R, M, out, R, gb, Precision::F32);
        if (float * ga = sink.grad_of(pair->a.data())) matmul_dw(dt.data(), x, in, M, R, in, ga, Precision::F32);
        if (dx) matmul_dx(dt.data(), M, pair->a, dx, Precision::F32);
    }
    if (dx) matmul_dx(dy, M, l.w, dx, p);
}

}  // namespace m4::train
