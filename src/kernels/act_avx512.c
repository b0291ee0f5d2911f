/* act_avx512.c — the exact GELU's forward, x·Φ(x), on AVX-512 with FMA: the activation BERT-base spends 14% of an
 * int8 forward in (12 × 128 × 3072 values at batch 1), and which the int8 GEMM applies per 48-column tile when the
 * fuse pass has folded it into the Linear. Chosen at run time by nn.c (pare_gelu_erf_forward); compiled with target
 * attributes only, never -march, so the file builds and links on any x86-64 (and to nothing elsewhere).
 *
 * The same method as nn_normcdf (nn_internal.h): Numerical Recipes' erfc fit on z = |x|/√2,
 *   Φ(−|x|) = ½ t · exp(p(t) − x²/2),  t = 1 / (1 + z/2),
 * with the FMA doing what the portable code needs two exponentials for: −x²/2 is carried as hi + lo (lo = the
 * exact rounding error of hi, from one FMA), the exponent n is taken from hi + (p + lo), and hi − n·ln2 is reduced
 * before the small part is added, so the rounding of x² never reaches the tail's relative accuracy. 2^n is applied
 * with vscalefps, which underflows through the subnormals as exp does. Within 1e-6 relative of double erfc on
 * [−12, 12] (tests/test_nn.c runs the grid on this path and on the portable one). */
#include <stdint.h>

#include "kernels/nn.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "kernels/act_avx512.h"

#define ACT_TARGET PARE_ACT_AVX512_TARGET

ACT_TARGET void pare_gelu_erf_span_avx512_(float *out, const float *inp, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) { /* two independent vectors in flight: the chain is ~30 dependent operations */
        const __m512 y0 = pare_gelu_erf16_(_mm512_loadu_ps(inp + i)), y1 = pare_gelu_erf16_(_mm512_loadu_ps(inp + i + 16));
        _mm512_storeu_ps(out + i, y0);
        _mm512_storeu_ps(out + i + 16, y1);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(out + i, k, pare_gelu_erf16_(_mm512_maskz_loadu_ps(k, inp + i)));
    }
}
#else
void pare_gelu_erf_span_avx512_(float *out, const float *inp, int64_t n)
{
    (void)out, (void)inp, (void)n; /* never chosen: nn.c asks pare_cpu_tier first */
}
#endif
