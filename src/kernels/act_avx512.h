/* act_avx512.h — the exact GELU on sixteen floats in an AVX-512 register, for act_avx512.c's span and for kernels that
 * apply it to their results before storing them (the int8 GEMM's fused Linear+GELU, gemm_i8_vnni.c): callers compile
 * it inside functions whose target includes avx512f and fma, and call it only where pare_gelu_erf_avx512_active_()
 * (nn.h) says so, so that every path of a model gives the same bits. The method: act_avx512.c. */
#ifndef PARE_ACT_AVX512_H
#define PARE_ACT_AVX512_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "kernels/nn_internal.h" /* the constants of the fit, shared with nn_normcdf */

#define PARE_ACT_AVX512_TARGET __attribute__((target("avx512f,fma")))

PARE_ACT_AVX512_TARGET static inline __m512 pare_gelu_erf16_(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 a = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(20.0f)); /* NaN -> 20; x·Φ stays NaN */
    const __m512 z = _mm512_mul_ps(a, _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(half, z, one));
    __m512 p = _mm512_set1_ps(NN_ERFC_P9);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P8));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P7));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P6));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P5));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P1));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(NN_ERFC_P0));
    /* −a²/2 = hi + lo exactly (−a/2 is exact), the exponent of hi + (p + lo) */
    const __m512 ma = _mm512_mul_ps(a, _mm512_set1_ps(-0.5f));
    const __m512 hi = _mm512_mul_ps(ma, a);
    const __m512 lo = _mm512_fmadd_ps(ma, a, _mm512_sub_ps(_mm512_setzero_ps(), hi));
    const __m512 small = _mm512_add_ps(p, lo);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(hi, small), _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(NN_LN2_C1), hi); /* exact: n·C1 has <= 17 bits */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(NN_LN2_C2), r);
    r = _mm512_add_ps(r, small); /* |r| <= ln2/2 + rounding */
    __m512 e = _mm512_set1_ps(NN_EXP_P0);
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(NN_EXP_P1));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(NN_EXP_P2));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(NN_EXP_P3));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(NN_EXP_P4));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(NN_EXP_P5));
    e = _mm512_fmadd_ps(_mm512_mul_ps(e, r), r, _mm512_add_ps(r, one)); /* e^r */
    const __m512 h = _mm512_mul_ps(_mm512_mul_ps(half, t), _mm512_scalef_ps(e, n)); /* Φ(−|x|) */
    /* Φ(x) = h for x < 0 (sign bit set, −0 included: h = ½ there), 1 − h otherwise */
    const __mmask16 neg = _mm512_cmplt_epi32_mask(_mm512_castps_si512(x), _mm512_setzero_si512());
    const __m512 phi = _mm512_mask_blend_ps(neg, _mm512_sub_ps(one, h), h);
    return _mm512_mul_ps(x, phi);
}

#endif
#endif
