/* test_amp.c — automatic mixed precision (docs/amp.md).
 *
 * Kernels (kernels/nn_half.h): every bf16 follow-op kernel against its reference bit for bit — exhaustively over
 * the 65536 bf16 patterns for the unary ones — and the references against f32 computed here on the widened
 * inputs: ReLU exact, the add within one rounding of the exact sum, GELU and tanh within one rounding of the f32
 * kernels; 1 and 2 threads give the same bits; the widen / round loops equal the scalar casts.
 * Ops (graph): a Linear and a LayerNorm writing bf16 give the bits of an f32 op followed by a cast; a LayerNorm
 * reading bf16 those of a cast followed by the f32 op; a bf16 value into training is refused naming the node;
 * an add of mixed dtypes is refused.
 * The pass: on a constructed graph each node's dtype after the pass is what the policy says, a cast sits exactly
 * where categories change, editing the policy moves the casts, invalid policies are errors naming the choices;
 * the pass's graphs pass the checks and run; quantized Linears are left alone.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/ops.h"
#include "kernels/cast.h"
#include "kernels/nn.h"
#include "kernels/nn_half.h"
#include "tap.h"
#include "test_rand.h"

static float w16(uint16_t h) { return pare_bf16_to_f32(h); }
static int same_bits(uint16_t a, uint16_t b) { return a == b || (isnan(w16(a)) && isnan(w16(b))); }

/* the first index where a and b differ (NaN = NaN), or -1 */
static long first_diff(const uint16_t *a, const uint16_t *b, long n)
{
    for (long i = 0; i < n; i++)
        if (!same_bits(a[i], b[i])) return i;
    return -1;
}

/* |got − want| within one bf16 rounding of want: half the spacing of bf16 values at want's magnitude (2^-8 of
 * its binade; 2^-134 below the normals), plus slack `extra` (relative) for an f32 result that itself was off. */
static int within_rounding(float got, double want, double extra)
{
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    if (fabs(want) >= ldexp(2.0 - ldexp(1.0, -8), 127)) return isinf(got) && (got > 0) == (want > 0); /* overflows bf16 */
    int e;
    frexp(fabs(want), &e);
    double half_ulp = ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 8);
    return fabs((double)got - want) <= half_ulp + extra * fabs(want) + 1e-45;
}

typedef void (*unary_fast)(uint16_t *, const uint16_t *, int64_t);
typedef int (*unary_ref)(uint16_t *, const uint16_t *, int64_t);
typedef double (*unary_d)(double);

/* the ops in double, written here */
static double gelu_tanh_d(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_erf_d(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double relu_d(double x) { return x > 0 ? x : 0; }

/* fast == reference bit for bit (every pattern), threads and in place alike; the reference within one rounding of
 * the op in double, plus the f32 kernel's own error: rel·|y| + abs·|x| */
static void test_unary(const char *name, unary_fast fast, unary_ref ref, unary_d fd, double rel, double abs_x)
{
    const long n = 65536;
    uint16_t *x = xalloc(n * 2), *y = xalloc(n * 2), *r = xalloc(n * 2), *y1 = xalloc(n * 2);
    for (long i = 0; i < n; i++) x[i] = (uint16_t)i;
    omp_set_num_threads(2);
    fast(y, x, n);
    ok(ref(r, x, n) == 0, "%s: reference ran", name);
    long d = first_diff(y, r, n);
    ok(d < 0, "%s bf16: every one of the 65536 patterns equals the reference bit for bit%s", name,
       d < 0 ? "" : " (first difference below)");
    if (d >= 0) diag("x = 0x%04x (%g): fast 0x%04x, reference 0x%04x", x[d], w16(x[d]), y[d], r[d]);
    omp_set_num_threads(1);
    fast(y1, x, n);
    ok(first_diff(y, y1, n) < 0, "%s bf16: 1 and 2 threads give the same bits", name);
    omp_set_num_threads(2);
    /* in place */
    memcpy(y1, x, n * 2);
    fast(y1, y1, n);
    ok(first_diff(y, y1, n) < 0, "%s bf16: in place gives the same bits", name);
    /* the reference against the op in double on the widened inputs */
    long bad = -1, checked = 0;
    for (long i = 0; i < n && bad < 0; i++) {
        double xd = w16(x[i]), want = fd(xd);
        if (isnan(xd) || isinf(xd) || fabs(xd) > 1e30) continue; /* x³ overflows f32 in the tanh form: exactness there is the bit test's */
        checked++;
        if (!within_rounding(w16(r[i]), want, rel) && !(fabs(w16(r[i]) - want) <= abs_x * fabs(xd) + 1e-30)) bad = i;
    }
    ok(bad < 0, "%s bf16: within one rounding of the op computed in double (+ the f32 kernel's error), %ld patterns",
       name, checked);
    if (bad >= 0) diag("x = %g: bf16 %.9g, double %.9g", w16(x[bad]), w16(r[bad]), fd(w16(x[bad])));
    free(x), free(y), free(r), free(y1);
}

static void test_relu_exact(void)
{
    int okk = 1;
    for (long i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i, o;
        pare_relu_bf16(&o, &h, 1);
        float x = w16(h);
        okk &= x > 0 ? o == h : o == 0; /* x itself where positive (+Inf too), +0 for ±0, negatives and NaN */
    }
    ok(okk, "relu bf16 is exact: x where x > 0 (the same bits), +0 elsewhere (NaN included, as the f32 kernel)");
}

static void test_add(void)
{
    const long n = 200000; /* above the parallel threshold */
    uint16_t *a = xalloc(n * 2), *b = xalloc(n * 2), *y = xalloc(n * 2), *r = xalloc(n * 2), *y1 = xalloc(n * 2);
    float *fa = randn(n, 3.0f), *fb = randn(n, 3.0f);
    for (long i = 0; i < n; i++) {
        if (i % 7 == 0) fb[i] = -fa[i] * (1.0f + 1e-3f * (float)(i % 13)); /* cancellation */
        if (i % 11 == 0) fb[i] = fa[i] * 1e-4f;                            /* one term below the other's ulp */
        a[i] = pare_f32_to_bf16(fa[i]), b[i] = pare_f32_to_bf16(fb[i]);
    }
    const uint16_t sp[] = {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8001, 0x7f7f, 0x3f80, 0xbf80};
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) a[i * 10 + j] = sp[i], b[i * 10 + j] = sp[j]; /* ±0, ±Inf, NaN, subnormals, max */
    omp_set_num_threads(2);
    pare_add_bf16(y, a, b, n);
    ok(pare_add_bf16_ref(r, a, b, n) == 0 && first_diff(y, r, n) < 0, "add bf16 equals its reference bit for bit (%ld sums)", n);
    omp_set_num_threads(1);
    pare_add_bf16(y1, a, b, n);
    omp_set_num_threads(2);
    ok(first_diff(y, y1, n) < 0, "add bf16: 1 and 2 threads give the same bits");
    long bad = -1;
    for (long i = 0; i < n && bad < 0; i++) {
        double s = (double)w16(a[i]) + (double)w16(b[i]); /* exact: two bf16 values */
        if (!within_rounding(w16(y[i]), s, 0x1p-24)) bad = i;
    }
    ok(bad < 0, "add bf16 within one rounding of the exact sum (the f32 sum rounded once more)");
    if (bad >= 0) diag("%g + %g: %g", w16(a[bad]), w16(b[bad]), w16(y[bad]));
    free(a), free(b), free(y), free(r), free(y1), free(fa), free(fb);
}

static void test_widen_round(void)
{
    const long n = 100003;
    float *x = randn(n, 10.0f), *back = xalloc(n * 4);
    x[0] = NAN, x[1] = INFINITY, x[2] = 1e-40f, x[3] = -0.0f, x[4] = 3.4e38f;
    uint16_t *h = xalloc(n * 2);
    int okk = 1;
    for (int t = PARE_BF16; t <= PARE_F16; t++) {
        pare_half_round(h, (pare_dtype)t, x, n);
        pare_half_widen(back, h, (pare_dtype)t, n);
        for (long i = 0; i < n; i++) {
            uint16_t want = t == PARE_BF16 ? pare_f32_to_bf16(x[i]) : pare_f32_to_f16(x[i]);
            float wback = t == PARE_BF16 ? pare_bf16_to_f32(want) : pare_f16_to_f32(want);
            okk &= h[i] == want && (back[i] == wback || (isnan(back[i]) && isnan(wback)));
        }
    }
    pare_half_round(back, PARE_F32, x, n);
    okk &= !memcmp(back, x, n * 4);
    ok(okk, "pare_half_round / pare_half_widen equal the scalar casts (bf16, f16; f32 copies)");
    free(x), free(back), free(h);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 15);
    test_unary("gelu (tanh)", pare_gelu_bf16, pare_gelu_bf16_ref, gelu_tanh_d, 1e-5, 1e-6); /* 1 + tanh(u) cancels for
                                                                                 x < 0 in f32: ~2e-6 absolute */
    test_unary("gelu (erf)", pare_gelu_erf_bf16, pare_gelu_erf_bf16_ref, gelu_erf_d, 1e-6, 1e-7);
    test_unary("relu", pare_relu_bf16, pare_relu_bf16_ref, relu_d, 0, 0);
    test_unary("tanh", pare_tanh_bf16, pare_tanh_bf16_ref, tanh, 1e-6, 1e-7);
    test_relu_exact();
    test_add();
    test_widen_round();
    return tap_done();
}
