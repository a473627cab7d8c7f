// adamw_f32_avx512 — the AdamW update of one parameter, 16 elements per step (kern::AdamWFn;
// reference ops::adamw_ref in src/ops/adamw.cpp). Every operation is an explicitly rounded
// AVX-512 instruction (the _round forms, which the compiler does not fuse into FMAs), in the
// reference's order, and sqrt and division are correctly rounded in both, so the result is the
// reference's bit for bit; the bf16 copy uses f32_to_bf16's rule (round_bf16_lanes), not
// VCVTNEPS2BF16, which would flush denormals.
//
// w, grad, m, v: [n] f32   w_bf16: [n] bf16 or null
#include "kernels/avx512/vec_math.h"

#include "kernels/avx512/kernels.h"

namespace m4::kern {

void adamw_f32_avx512(float * w, const float * grad, float * m, float * v, uint16_t * w_bf16, int64_t n,
                      const AdamWArgs & k) {
    using namespace avx512;
    constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512 b1 = _mm512_set1_ps(k.beta1), b2 = _mm512_set1_ps(k.beta2), c1 = _mm512_set1_ps(1.0f - k.beta1),
                 c2 = _mm512_set1_ps(1.0f - k.beta2), eps = _mm512_set1_ps(k.eps), bc1 = _mm512_set1_ps(k.bc1),
                 bc2 = _mm512_set1_ps(k.bc2), lr = _mm512_set1_ps(k.lr), wd = _mm512_set1_ps(k.weight_decay),
                 s = _mm512_set1_ps(k.grad_scale);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mk = tail16(n - i);
        const __m512 g     = _mm512_mul_round_ps(_mm512_maskz_loadu_ps(mk, grad + i), s, kRne);
        __m512 mi          = _mm512_maskz_loadu_ps(mk, m + i);
        __m512 vi          = _mm512_maskz_loadu_ps(mk, v + i);
        __m512 wi          = _mm512_maskz_loadu_ps(mk, w + i);
        mi = _mm512_add_round_ps(_mm512_mul_round_ps(b1, mi, kRne), _mm512_mul_round_ps(c1, g, kRne), kRne);
        vi = _mm512_add_round_ps(_mm512_mul_round_ps(b2, vi, kRne),
                                 _mm512_mul_round_ps(_mm512_mul_round_ps(c2, g, kRne), g, kRne), kRne);
        const __m512 den =
            _mm512_add_round_ps(_mm512_sqrt_round_ps(_mm512_div_round_ps(vi, bc2, kRne), kRne), eps, kRne);
        const __m512 u = _mm512_div_round_ps(_mm512_div_round_ps(mi, bc1, kRne), den, kRne);
        wi             = _mm512_sub_round_ps(
                        wi, _mm512_mul_round_ps(lr, _mm512_add_round_ps(u, _mm512_mul_round_ps(wd, wi, kRne), kRne), kRne), kRne);
        _mm512_mask_storeu_ps(m + i, mk, mi);
        _mm512_mask_storeu_ps(v + i, mk, vi);
        _mm512_mask_storeu_ps(w + i, mk, wi);
        if (w_bf16)
            _mm256_mask_storeu_epi16(w_bf16 + i, mk, _mm512_cvtepi32_epi16(round_bf16_lanes(_mm512_castps_si512(wi))));
    }
}

}  // namespace m4::kern
