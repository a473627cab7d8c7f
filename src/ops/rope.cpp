// rope — rotary position embedding, in place, applied to q and k before attention.
//
//     for token t, head h, pair i ∈ [0, D/2):
//         a   = pos[t] · θ^(−2i/D)
//         x0  = x[t, h·D + 2i],  x1 = x[t, h·D + 2i + 1]
//         x0' = x0·cos a − x1·sin a
//         x1' = x0·sin a + x1·cos a
//
// T tokens, H heads, D head dim (even). x: (T, H·D) with row stride ldx ≥ H·D. pos: (T) absolute
// positions (pos0 + t while decoding with a KV cache). θ: the base, e.g. 10000. f32 throughout;
// position 0 is the identity.
//
// Backward (in place, like the forward): the rotation is orthogonal, so the gradient of the input
// is the output gradient rotated by −a:  d0 = g0·cos a + g1·sin a,  d1 = −g0·sin a + g1·cos a.
#include <cmath>
#include <vector>

#include "base/status.h"
#include "ops/ops.h"

namespace m4::ops {

// x: (T, H·D) ldx  pos: (T)
void rope_forward_ref(float * x, int64_t ldx, int64_t T, int64_t H, int64_t D, const int32_t * pos, float theta) {
    M4_CHECK(D % 2 == 0);
    std::vector<float> inv_freq(D / 2);
    for (int64_t i = 0; i < D / 2; ++i)
        inv_freq[i] = std::pow(theta, -static_cast<float>(2 * i) / static_cast<float>(D));
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < D / 2; ++i) {
            const float a = static_cast<float>(pos[t]) * inv_freq[i];
            const float c = std::cos(a), s = std::sin(a);
            for (int64_t h = 0; h < H; ++h) {
                float * p      = x + t * ldx + h * D + 2 * i;
                const float x0 = p[0], x1 = p[1];
                p[0] = x0 * c - x1 * s;
                p[1] = x0 * s + x1 * c;
            }
        }
    }
}

// dx: (T, H·D) ldx, holding dy on entry and dx on return   pos: (T)
void rope_backward_ref(float * dx, int64_t ldx, int64_t T, int64_t H, int64_t D, const int32_t * pos, float theta) {
    M4_CHECK(D % 2 == 0);
    std::vector<float> inv_freq(D / 2);
    for (int64_t i = 0; i < D / 2; ++i)
        inv_freq[i] = std::pow(theta, -static_cast<float>(2 * i) / static_cast<float>(D));
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < D / 2; ++i) {
            const float a = static_cast<float>(pos[t]) * inv_freq[i];
            const float c = std::cos(a), s = std::sin(a);
            for (int64_t h = 0; h < H; ++h) {
                float * p      = dx + t * ldx + h * D + 2 * i;
                const float g0 = p[0], g1 = p[1];
                p[0] = g0 * c + g1 * s;
                p[1] = -g0 * s + g1 * c;
            }
        }
    }
}

}  // namespace m4::ops
