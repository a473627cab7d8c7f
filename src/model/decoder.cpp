// IMG-Dec forward and the image resampling of the generator path (see decoder.h).
// Shapes: B samples, T = (S/p)² tokens of P = p²·3 values, decoder width W.
#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/arena.h"
#include "model/encoder.h"
#include "ops/ops.h"

namespace m4::model {

void image_unpatchify(const EncoderConfig & c, const float * patches, float * img) {
    const int64_t S = c.image_size, p = c.patch_size, g = S / p, P = c.patch_dim();
    for (int64_t gy = 0; gy < g; ++gy)
        for (int64_t gx = 0; gx < g; ++gx) {
            const float * src = patches + (gy * g + gx) * P;
            for (int64_t dy = 0; dy < p; ++dy) {
                std::memcpy(img + ((gy * p + dy) * S + gx * p) * 3, src, static_cast<size_t>(p * 3) * 4);
                src += p * 3;
            }
        }
}

namespace {
// Keys' cubic convolution kernel, a = −0.5 (Catmull–Rom).
double keys_cubic(double t) {
    t = std::fabs(t);
    if (t < 1) return (1.5 * t - 2.5) * t * t + 1.0;
    if (t < 2) return ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0;
    return 0.0;
}
}  // namespace

Tensor bicubic_matrix(int64_t n_in, int64_t n_out) {
    Tensor m  = Tensor::zeros(DType::F32, {n_out, n_in});
    float * r = m.f32();
    for (int64_t i = 0; i < n_out; ++i) {
        const double s  = (double(i) + 0.5) * double(n_in) / double(n_out) - 0.5;
        const double fl = std::floor(s);
        for (int64_t k = -1; k <= 2; ++k) {
            const int64_t j = std::clamp<int64_t>(static_cast<int64_t>(fl) + k, 0, n_in - 1);
            r[i * n_in + j] += static_cast<float>(keys_cubic(s - (fl + double(k))));
        }
    }
    return m;
}

void resample_bicubic(const float * src, int64_t h, int64_t w, int64_t out_h, int64_t out_w, float * dst) {
    const Tensor rx = bicubic_matrix(w, out_w), ry = bicubic_matrix(h, out_h);
    // 1. along x: per row y and channel c, t[y, c, :] = rx · src[y, :, c]   (src viewed as [h·3, w])
    std::vector<float> xt(static_cast<size_t>(h * 3 * w)), t(static_cast<size_t>(h * 3 * out_w));
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
            for (int64_t c = 0; c < 3; ++c) xt[(y * 3 + c) * w + x] = src[(y * w + x) * 3 + c];
    ops::matmul(xt.data(), w, rx, nullptr, t.data(), out_w, h * 3);  // t [h·3, out_w]
    // 2. along y: u[x, c, :] = ry · t[:, c, x]   (t viewed as [out_w·3, h])
    std::vector<float> tt(static_cast<size_t>(out_w * 3 * h)), u(static_cast<size_t>(out_w * 3 * out_h));
    for (int64_t y = 0; y < h; ++y)
        for (int64_t c = 0; c < 3; ++c)
            for (int64_t x = 0; x < out_w; ++x) tt[(x * 3 + c) * h + y] = t[(y * 3 + c) * out_w + x];
    ops::matmul(tt.data(), h, ry, nullptr, u.data(), out_h, out_w * 3);  // u [out_w·3, out_h]
    for (int64_t x = 0; x < out_w; ++x)
        for (int64_t c = 0; c < 3; ++c)
            for (int64_t y = 0; y < out_h; ++y) dst[(y * out_w + x) * 3 + c] = u[(x * 3 + c) * out_h + y];
}

void image_decoder_forward(const EncoderConfig & c, const DecoderWeights & w, const float * x, int64_t B,
                           const std::vector<RowSegment> & seg, float * y) {
    const int64_t N = B * c.tokens();
    ArenaScope scope;
    float * tokens = scope.alloc<float>(N * c.width);
    encoder_forward(c, w.trunk, x, B, seg, tokens);  // [N, W]
    linear(w.out_proj, tokens, N, y, seg);           // [N, P]
}

}  // namespace m4::model
