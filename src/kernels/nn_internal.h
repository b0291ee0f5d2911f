/* nn_internal.h — private helpers shared by nn.c and nn_attention.c (not part of the public API).
 *
 * nn_expf: a vectorizable expf. glibc's expf is a scalar call, and the softmax of attention spends most
 * of its time in it (B·H·T² calls). This is the Cephes expf (range reduction by ln 2 in two parts, a
 * degree-5 polynomial, scaling by 2^n through the exponent bits), max relative error 8e-8 on
 * [-87, 88], written without branches or floating-point comparisons: under the default
 * -ftrapping-math GCC refuses to if-convert FP compares, and a loop with control flow stays scalar.
 * Inside `#pragma omp simd` loops it becomes SSE2 (or wider) code at plain -O2, no -march needed.
 * Semantics: x < -87 gives 0 (including -inf), x > 88 saturates at e^88, NaN stays NaN.
 *
 * nn_tanhf: tanh from nn_expf, for GELU; nn_normcdf / nn_normpdf: Φ and φ for the exact (erf) GELU. nn_softmax: stable softmax of one row (subtract the max) built on it.
 */
#ifndef PARE_NN_INTERNAL_H
#define PARE_NN_INTERNAL_H

#include <math.h>
#include <stdint.h>

/* Always inlined, so each PARE_HOT clone of a caller compiles them for its own ISA (an out-of-line
 * copy would be baseline x86-64 code whatever the caller's target). */
#define NN_INLINE static inline __attribute__((always_inline))

/* The constants of nn_expf and nn_normcdf, shared with their AVX-512 twin (act_avx512.h): Cody–Waite ln 2 = C1 + C2
 * (C1 with 9 significant bits, so n·C1 is exact), the Cephes polynomial of e^r on |r| <= ln2/2, and Numerical
 * Recipes' erfc fit (erfcc: erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), P of degree 9, highest first). */
#define NN_LN2_C1 0.693359375f
#define NN_LN2_C2 -2.12194440e-4f
#define NN_EXP_P0 1.9875691500E-4f
#define NN_EXP_P1 1.3981999507E-3f
#define NN_EXP_P2 8.3334519073E-3f
#define NN_EXP_P3 4.1665795894E-2f
#define NN_EXP_P4 1.6666665459E-1f
#define NN_EXP_P5 5.0000001201E-1f
#define NN_ERFC_P9 0.17087277f
#define NN_ERFC_P8 -0.82215223f
#define NN_ERFC_P7 1.48851587f
#define NN_ERFC_P6 -1.13520398f
#define NN_ERFC_P5 0.27886807f
#define NN_ERFC_P4 -0.18628806f
#define NN_ERFC_P3 0.09678418f
#define NN_ERFC_P2 0.37409196f
#define NN_ERFC_P1 1.00002368f
#define NN_ERFC_P0 -1.26551223f

NN_INLINE float nn_expf(float x)
{
    union { float f; uint32_t u; int32_t i; } in = {x}, c, sc, out;
    const uint32_t u = in.u; /* as unsigned, negative floats sort in reverse: x < -87 <=> u > bits(-87) */
    const uint32_t under = 0u - (uint32_t)(u > 0xC2AE0000u);                       /* x < -87 */
    const uint32_t over = 0u - (uint32_t)((u > 0x42B00000u) & (u < 0x80000000u)); /* x > 88 */
    const uint32_t nan = 0u - (uint32_t)((u & 0x7FFFFFFFu) > 0x7F800000u);
    c.u = (under & 0xC2AE0000u) | (over & 0x42B00000u) | (~(under | over) & u);
    const float xc = c.f, magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    const float n = (xc * 1.44269504088896341f + magic) - magic; /* round(x / ln 2) */
    float r = xc - n * NN_LN2_C1;
    r = r - n * NN_LN2_C2; /* r = x - n ln 2, |r| <= ln2 / 2 */
    float p = NN_EXP_P0;
    p = p * r + NN_EXP_P1;
    p = p * r + NN_EXP_P2;
    p = p * r + NN_EXP_P3;
    p = p * r + NN_EXP_P4;
    p = p * r + NN_EXP_P5;
    const float y = p * r * r + r + 1.0f; /* e^r */
    sc.i = ((int32_t)n + 127) * (1 << 23); /* 2^n, n in [-126, 127] */
    out.f = y * sc.f;
    out.u = (nan & u) | (~nan & ~under & out.u);
    return out.f;
}

/* tanh(x) = 1 - 2 / (e^{2x} + 1): saturates cleanly to ±1, absolute error ~1e-7 (relative error grows
 * near 0, where callers like GELU multiply it by x or add it to 1 anyway). */
NN_INLINE float nn_tanhf(float x) { return 1.0f - 2.0f / (nn_expf(2.0f * x) + 1.0f); }

/* Φ(x) = ½ (1 + erf(x/√2)), the standard normal CDF, for the exact GELU x·Φ(x). glibc's erff is a scalar call
 * (it made BERT's GELU ~8x slower than the tanh form); this is Numerical Recipes' erfc Chebyshev fit
 * (erfcc, Press et al. §6.2: fractional error < 1.2e-7 for every z >= 0, in exact arithmetic) on z = |x|/√2, then
 * Φ(x) = 1 − ½ erfc(z) for x >= 0 and ½ erfc(z) for x < 0, so both tails keep their relative accuracy (erf near −1
 * would cancel). The select is done on the sign bit, without branches or FP compares, so `omp simd` loops
 * vectorise. Measured against double erfc on a 1e-3 grid of [-12, 12] (tests/test_nn.c): x·Φ(x) within 4.4e-7 relative
 * everywhere (a few float ulps); libm erff, for comparison, is exact to ~1 ulp but scalar. */
NN_INLINE float nn_normcdf(float x)
{
    union { float f; uint32_t u; int32_t i; } in = {x}, ax, pos, neg, out;
    /* |x| clamped at 20 (on the bits: also ±Inf and NaN), where Φ(−|x|) has long underflowed to 0 */
    ax.u = in.u & 0x7FFFFFFFu;
    ax.u = ax.u < 0x41A00000u ? ax.u : 0x41A00000u;
    const float a = ax.f, z = a * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float p = NN_ERFC_P9;
    p = p * t + NN_ERFC_P8;
    p = p * t + NN_ERFC_P7;
    p = p * t + NN_ERFC_P6;
    p = p * t + NN_ERFC_P5;
    p = p * t + NN_ERFC_P4;
    p = p * t + NN_ERFC_P3;
    p = p * t + NN_ERFC_P2;
    p = p * t + NN_ERFC_P1;
    p = p * t + NN_ERFC_P0;
    /* e^{−z²} = e^{−a²/2} as e^{−ah²/2} · e^{−(a−ah)(a+ah)/2}: ah (xh) keeps a's top 12 significant bits, so ah²/2 is
     * exact. One exp of p − z² would carry the roundings of z and z² into the negative tail (6.7e-6 at x = −12) */
    union { float f; uint32_t u; } xh = {a};
    xh.u &= 0xFFFFF000u;
    const float h = 0.5f * t * nn_expf(-0.5f * xh.f * xh.f) * nn_expf(p - 0.5f * (a - xh.f) * (a + xh.f)); /* Φ(−|x|) */
    neg.f = h;
    pos.f = 1.0f - h;
    const uint32_t s = (uint32_t)(in.i >> 31); /* all ones for x < 0 (and −0, where both sides are ½) */
    out.u = (s & neg.u) | (~s & pos.u);
    return out.f;
}

/* φ(x) = exp(−x²/2) / √(2π), the standard normal density (the exact GELU's derivative Φ(x) + x·φ(x)), with x²/2
 * split as in nn_normcdf so the tails keep their relative accuracy. */
NN_INLINE float nn_normpdf(float x)
{
    union { float f; uint32_t u; } ax = {x}, xh;
    ax.u &= 0x7FFFFFFFu;
    ax.u = ax.u < 0x41A00000u ? ax.u : 0x41A00000u; /* |x| <= 20, as in nn_normcdf: φ(20) underflows already */
    xh.u = ax.u & 0xFFFFF000u;
    return 0.39894228040143268f * nn_expf(-0.5f * xh.f * xh.f) * nn_expf(-0.5f * (ax.f - xh.f) * (ax.f + xh.f));
}

/* max of x (n), n >= 1. Sixteen running maxima, so the loop is four independent SSE max chains
 * rather than one chain through memory (what `omp simd reduction(max)` compiles to). */
NN_INLINE float nn_rowmax(const float *x, int64_t n)
{
    float m[16], mx = x[0];
    for (int k = 0; k < 16; k++) m[k] = x[0];
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    for (int k = 0; k < 16; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}

/* o (n) = softmax(x (n)), n >= 1; o may be x. Returns log Σ exp(x - max) + max (the log-sum-exp). */
NN_INLINE double nn_softmax(float *o, const float *x, int64_t n)
{
    const float mx = nn_rowmax(x, n);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) {
        o[j] = nn_expf(x[j] - mx);
        sum += o[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) o[j] *= inv;
    return log((double)sum) + (double)mx;
}

#endif
