/* test_numfmt.c — numeric formats and the fake quantizer (core/numfmt.h) against independent references:
 * tf32 by exact nearest-neighbour search in double; FP8 decode against values built from the format
 * definition with ldexp, encode against a brute-force nearest search over all finite codes (exhaustive over
 * the 2^16 f16 patterns, a few million random f32 patterns); the int grid (round trips, ties, clamping,
 * exact zero); fake quantization per format and granularity against plain reference loops; errors; storage
 * bits on hand-computed cases. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/numfmt.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "tap.h"

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float from_bits(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || bits(a) == bits(b); }

/* ---------------- tf32 ---------------- */

/* The nearer of the two tf32 neighbours of x (truncation and the next value up in magnitude), by exact
 * double arithmetic; ties to the one with an even last mantissa bit. */
static float tf32_ref(float x)
{
    if (isnan(x) || isinf(x)) return x;
    uint32_t u = bits(x), lo = u & 0xffffe000u;
    if (lo == u) return x;
    int top = (lo & 0x7fffffffu) == 0x7f7fe000u; /* largest finite: the next step is 2^128 */
    double a = from_bits(lo), b = top ? copysign(ldexp(1.0, 128), x) : (double)from_bits(lo + 0x2000u);
    double da = fabs((double)x - a), db = fabs(b - (double)x);
    uint32_t up = lo + 0x2000u; /* for the largest finite this is exactly ±Inf */
    if (da < db) return from_bits(lo);
    if (db < da) return from_bits(up);
    return ((lo >> 13) & 1u) ? from_bits(up) : from_bits(lo);
}

static void test_tf32(pare_rng *rng)
{
    static const uint32_t mants[] = {0,       1,       0xfff,    0x1000,   0x1001,   0x1fff,   0x2000,   0x2fff,
                                     0x3000,  0x3001,  0x5000,   0x7fe000, 0x7fefff, 0x7ff000, 0x7ff001, 0x7fffff,
                                     0x400000, 0x401000, 0x403000, 0x3ff000};
    long n = 0, bad = 0, notrep = 0;
    uint32_t first_bad = 0;
    for (uint32_t e = 0; e < 256; e++)
        for (size_t k = 0; k < sizeof mants / sizeof mants[0]; k++)
            for (uint32_t sg = 0; sg < 2; sg++) {
                float x = from_bits(sg << 31 | e << 23 | mants[k]), r = pare_tf32_round(x);
                n++;
                if (!same_float(r, tf32_ref(x))) bad++, first_bad = bits(x);
                if (!isnan(r) && (bits(r) & 0x1fffu)) notrep++;
            }
    for (long i = 0; i < 4000000; i++) {
        uint32_t u = (uint32_t)pare_rng_u64(rng);
        if (i & 1) u &= ~0xfffu | (uint32_t)(pare_rng_u64(rng) & 0x1000u); /* many exact ties */
        float x = from_bits(u), r = pare_tf32_round(x);
        n++;
        if (!same_float(r, tf32_ref(x))) bad++, first_bad = u;
        if (!isnan(r) && (bits(r) & 0x1fffu)) notrep++;
    }
    ok(bad == 0, "tf32 round == nearest-even reference on %ld inputs (all exponents x edge mantissas + random)", n);
    if (bad) diag("%ld mismatches, e.g. x bits 0x%08x: got 0x%08x want 0x%08x", bad, first_bad,
                  bits(pare_tf32_round(from_bits(first_bad))), bits(tf32_ref(from_bits(first_bad))));
    ok(notrep == 0, "tf32 results have 10 mantissa bits");
    ok(pare_tf32_round(1.0f + ldexpf(1, -11)) == 1.0f &&
           pare_tf32_round(1.0f + 3 * ldexpf(1, -11)) == 1.0f + ldexpf(1, -9),
       "tf32 ties go to even (1+2^-11 -> 1, 1+3*2^-11 -> 1+2^-9)");
    ok(isinf(pare_tf32_round(FLT_MAX)) && pare_tf32_round(-FLT_MAX) < 0 && isinf(pare_tf32_round(INFINITY)) &&
           isnan(pare_tf32_round(NAN)),
       "tf32: FLT_MAX rounds to inf, inf and nan kept");
}

/* ---------------- FP8 ---------------- */

typedef struct fp8_def {
    const char *name;
    int E, M, bias, e5m2;
    uint8_t (*enc)(float);
    float (*dec)(uint8_t);
    double val[256]; /* from the definition */
    double maxv;
    int maxcode;
} fp8_def;

static void fp8_build(fp8_def *d)
{
    d->maxv = 0;
    for (int c = 0; c < 256; c++) {
        int s = c >> 7, e = (c >> d->M) & ((1 << d->E) - 1), m = c & ((1 << d->M) - 1), emax = (1 << d->E) - 1;
        double v;
        if (!d->e5m2 && e == emax && m == (1 << d->M) - 1) v = NAN;             /* E4M3: only S.1111.111 */
        else if (d->e5m2 && e == emax) v = m ? NAN : INFINITY;                  /* E5M2: IEEE */
        else if (e == 0) v = ldexp(m, 1 - d->bias - d->M);                      /* subnormal */
        else v = ldexp((1 << d->M) + m, e - d->bias - d->M);                    /* normal */
        d->val[c] = s ? -v : v;
        if (!s && isfinite(v) && v > d->maxv) d->maxv = v, d->maxcode = c;
    }
}

/* Nearest finite code by brute search, ties to the even code; saturation and NaN per the format. */
static uint8_t fp8_ref(const fp8_def *d, float x)
{
    uint8_t sign = signbit(x) ? 0x80 : 0;
    if (isnan(x)) return 0xff; /* any NaN; compared as "decodes to NaN" */
    if (isinf(x)) return (uint8_t)(sign | (d->e5m2 ? 0x7c : d->maxcode));
    double a = fabs((double)x);
    if (a >= d->maxv) return (uint8_t)(sign | d->maxcode);
    int best = 0;
    double bestd = a;
    for (int c = 1; c < 128; c++) {
        if (!isfinite(d->val[c])) continue;
        double dist = fabs(a - d->val[c]);
        if (dist < bestd || (dist == bestd && !(c & 1))) best = c, bestd = dist;
    }
    return (uint8_t)(sign | best);
}

static int fp8_agree(const fp8_def *d, float x)
{
    uint8_t got = d->enc(x), want = fp8_ref(d, x);
    if (isnan(x)) return isnan(d->dec(got));
    return got == want;
}

static void test_fp8(fp8_def *d, pare_rng *rng)
{
    fp8_build(d);
    int bad = 0, nnan = 0;
    for (int c = 0; c < 256; c++) {
        float got = d->dec((uint8_t)c);
        if (isnan(d->val[c])) nnan++;
        if (!same_float(got, (float)d->val[c])) bad++;
    }
    ok(bad == 0, "%s decode of all 256 codes == ldexp table from the definition", d->name);
    ok(nnan == (d->e5m2 ? 6 : 2), "%s has %d NaN codes", d->name, nnan);
    ok(d->maxv == (d->e5m2 ? 57344.0 : 448.0), "%s max finite = %g", d->name, d->maxv);

    int rt = 0;
    for (int c = 0; c < 256; c++)
        if (!isnan(d->val[c]) && d->enc(d->dec((uint8_t)c)) != c) rt++;
    ok(rt == 0, "%s encode(decode(c)) == c for every non-NaN code (incl. -0%s)", d->name, d->e5m2 ? ", inf" : "");

    long n = 0;
    bad = 0;
    uint32_t first = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float x = pare_f16_to_f32((uint16_t)h);
        n++;
        if (!fp8_agree(d, x)) bad++, first = bits(x);
    }
    ok(bad == 0, "%s encode == brute-force nearest-even reference on all 65536 f16 patterns", d->name);
    if (bad) diag("%d mismatches, e.g. x=%.9g: got 0x%02x want 0x%02x", bad, from_bits(first), d->enc(from_bits(first)),
                  fp8_ref(d, from_bits(first)));
    bad = 0, n = 0;
    for (long i = 0; i < 3000000; i++) {
        uint32_t u = (uint32_t)pare_rng_u64(rng);
        if (i % 3 == 1) /* exponent inside (or just around) the format's range */
            u = (u & 0x807fffffu) | (uint32_t)(127 - d->bias - d->M - 3 + (int)pare_rng_below(rng, 40)) << 23;
        if (i % 3 == 2) /* and mantissas that produce exact ties */
            u = (u & 0x80000000u) | (uint32_t)(127 - d->bias - d->M - 3 + (int)pare_rng_below(rng, 40)) << 23 |
                (u & 0x00780000u);
        float x = from_bits(u);
        n++;
        if (!fp8_agree(d, x)) bad++, first = u;
    }
    ok(bad == 0, "%s encode == reference on %ld random f32 patterns (1/3 in range, 1/3 with ties)", d->name, n);
    if (bad) diag("%d mismatches, e.g. x=%.9g (0x%08x): got 0x%02x want 0x%02x", bad, from_bits(first), first,
                  d->enc(from_bits(first)), fp8_ref(d, from_bits(first)));

    float big = d->e5m2 ? 1e6f : 1000.0f, mx = (float)d->maxv;
    ok(d->dec(d->enc(big)) == mx && d->dec(d->enc(-big)) == -mx && d->dec(d->enc(FLT_MAX)) == mx,
       "%s saturates finite overflow to +-%g", d->name, d->maxv);
    if (d->e5m2)
        ok(isinf(d->dec(d->enc(INFINITY))) && d->dec(d->enc(-INFINITY)) < 0, "%s keeps +-inf", d->name);
    else
        ok(d->dec(d->enc(INFINITY)) == mx && d->dec(d->enc(-INFINITY)) == -mx, "%s saturates +-inf to +-448", d->name);
    ok(isnan(d->dec(d->enc(NAN))) && isnan(d->dec(d->enc(-NAN))), "%s NaN -> NaN code", d->name);
    ok(d->enc(-0.0f) == 0x80 && d->enc(0.0f) == 0x00, "%s keeps the sign of zero", d->name);
    double sub = ldexp(1, 1 - d->bias - d->M);
    ok(d->dec(1) == (float)sub && d->enc((float)(sub * 0.5)) == 0 && d->enc((float)(sub * 0.51)) == 1 &&
           d->enc((float)(sub * 1.5)) == 2,
       "%s subnormals: smallest 2^%d, half of it ties to 0, 1.5x ties to 2", d->name, 1 - d->bias - d->M);
}

/* ---------------- int grid ---------------- */

static void test_int_grid(pare_rng *rng)
{
    int rt_bad = 0, tie_bad = 0, clamp_bad = 0, zero_bad = 0, shape_bad = 0;
    for (int b = 2; b <= 8; b++)
        for (int sym = 0; sym < 2; sym++)
            for (int trial = 0; trial < 20; trial++) {
                float lo = (float)(-pare_rng_uniform(rng) * 3), hi = (float)(pare_rng_uniform(rng) * 5);
                if (trial == 1) lo = 0.5f, hi += 0.5f; /* all positive: asym range extends to 0 */
                if (trial == 2) hi = -0.25f, lo = -4; /* all negative */
                pare_qparams qp;
                if (pare_qparams_make(&qp, lo, hi, b, sym) != PARE_OK) { rt_bad++; continue; }
                int32_t want_max = sym ? (1 << (b - 1)) - 1 : (1 << b) - 1, want_min = sym ? -want_max : 0;
                if (qp.qmax != want_max || qp.qmin != want_min || (sym && qp.zero != 0) || qp.zero < qp.qmin ||
                    qp.zero > qp.qmax)
                    shape_bad++;
                double want_scale = sym ? fmax(fabs(lo), fabs(hi)) / want_max
                                        : (fmax(hi, 0) - fmin(lo, 0)) / want_max;
                if (fabs(qp.scale - want_scale) > 1e-6 * want_scale) shape_bad++;
                for (int32_t q = qp.qmin; q <= qp.qmax; q++)
                    if (pare_qround(pare_qdequant(q, &qp), &qp) != q) rt_bad++;
                float am = fmaxf(fabsf(lo), fabsf(hi)), elo = sym ? -am : fminf(lo, 0), ehi = sym ? am : fmaxf(hi, 0);
                if (pare_qround(1e30f, &qp) != qp.qmax || pare_qround(-1e30f, &qp) != qp.qmin ||
                    pare_qround(ehi + 10 * qp.scale, &qp) != qp.qmax ||
                    pare_qround(elo - 10 * qp.scale, &qp) != qp.qmin)
                    clamp_bad++;
                if (pare_qdequant(pare_qround(0.0f, &qp), &qp) != 0.0f) zero_bad++;
            }
    ok(shape_bad == 0, "int grid: qmin/qmax/zero/scale as defined (sym: +-(2^(b-1)-1), asym: 0..2^b-1), b = 2..8");
    ok(rt_bad == 0, "int grid: every representable value round-trips (sym and asym, b = 2..8)");
    ok(clamp_bad == 0, "int grid: values beyond the range clamp to qmin/qmax");
    ok(zero_bad == 0, "int grid: 0 is exactly representable (asym too)");

    /* ties to even: choose ranges whose scale is exactly 0.25 so that (k + 0.5)·scale is an exact tie */
    for (int b = 2; b <= 8; b++)
        for (int sym = 0; sym < 2; sym++) {
            pare_qparams qp;
            int32_t qmax = sym ? (1 << (b - 1)) - 1 : (1 << b) - 1;
            float lo = sym ? -0.25f * qmax : (b >= 4 ? -2.0f : -0.25f), hi = sym ? 0.25f * qmax : lo + 0.25f * qmax;
            pare_qparams_make(&qp, lo, hi, b, sym);
            if (qp.scale != 0.25f) { tie_bad++; continue; }
            for (int32_t k = qp.qmin - qp.zero; k < qp.qmax - qp.zero; k++) {
                int32_t want = (k % 2 == 0 ? k : k + 1) + qp.zero;
                if (pare_qround(0.25f * ((float)k + 0.5f), &qp) != want) tie_bad++;
            }
        }
    ok(tie_bad == 0, "int grid: exact ties round to even");

    pare_qparams qp;
    ok(pare_qparams_make(&qp, 0, 0, 4, 1) == PARE_OK && qp.scale == 1.0f && qp.zero == 0 && pare_qround(0, &qp) == 0,
       "int grid: all-zero range (sym) gives scale 1, q = 0");
    ok(pare_qparams_make(&qp, 0, 0, 4, 0) == PARE_OK && qp.scale == 1.0f && qp.zero == 0 &&
           pare_qdequant(pare_qround(0, &qp), &qp) == 0,
       "int grid: all-zero range (asym) gives scale 1, zero 0");
    ok(pare_qparams_make(&qp, -1, 1, 1, 1) == PARE_EINVAL && strstr(pare_errmsg(), "bits=1"),
       "int grid: bits=1 rejected naming bits: %s", pare_errmsg());
    ok(pare_qparams_make(&qp, -1, 1, 17, 0) == PARE_EINVAL && strstr(pare_errmsg(), "bits=17"),
       "int grid: bits=17 rejected");
    ok(pare_qparams_make(&qp, 1, -1, 4, 0) == PARE_EINVAL, "int grid: lo > hi rejected");
    ok(pare_qparams_make(&qp, -NAN, 1, 4, 0) == PARE_ENUMERIC, "int grid: NaN range rejected");
    ok(pare_qparams_make(&qp, -1e-44f, 1e-44f, 16, 1) == PARE_OK && qp.scale > 0 &&
           pare_qround(1e-44f, &qp) > 0,
       "int grid: a subnormal range keeps a positive scale");
    ok(pare_qparams_make(&qp, -1, 1, 16, 1) == PARE_OK && qp.qmax == 32767 && pare_qround(1, &qp) == 32767,
       "int grid: 16 bits");
}

/* ---------------- fake quantization ---------------- */

static int64_t unit_ref(const pare_qspec *s, int64_t cols, int64_t r, int64_t c)
{
    if (s->fmt != PARE_NF_INT && s->fmt != PARE_NF_E4M3 && s->fmt != PARE_NF_E5M2 && s->fmt != PARE_NF_BINARY &&
        s->fmt != PARE_NF_TERNARY)
        return 0;
    if (s->gran == PARE_GRAN_ROW) return r;
    if (s->gran == PARE_GRAN_COLUMN) return c;
    if (s->gran == PARE_GRAN_GROUP) return (r * cols + c) / s->group; /* groups tile each row */
    return 0;
}

/* Straightforward reference: per-unit statistics in one pass over (r, c), then the element formula. */
static void fq_ref(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s)
{
    int64_t units = rows * cols + 1;
    double *lo = malloc(sizeof(double) * units), *hi = malloc(sizeof(double) * units);
    double *sum = calloc(units, sizeof(double)), *sum2 = calloc(units, sizeof(double));
    long *cnt = calloc(units, sizeof(long)), *cnt2 = calloc(units, sizeof(long));
    for (int64_t u = 0; u < units; u++) lo[u] = INFINITY, hi[u] = -INFINITY;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t u = unit_ref(s, cols, r, c);
            double v = x[r * cols + c];
            lo[u] = fmin(lo[u], v), hi[u] = fmax(hi[u], v), sum[u] += fabs(v), cnt[u]++;
        }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t u = unit_ref(s, cols, r, c), i = r * cols + c;
            double delta = 0.7 * (sum[u] / cnt[u]);
            if (fabs(x[i]) > delta) sum2[u] += fabs(x[i]), cnt2[u]++;
        }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t u = unit_ref(s, cols, r, c), i = r * cols + c;
            float v = x[i];
            switch (s->fmt) {
            case PARE_NF_F32: out[i] = v; break;
            case PARE_NF_TF32: out[i] = tf32_ref(v); break;
            case PARE_NF_BF16: out[i] = pare_bf16_to_f32(pare_f32_to_bf16(v)); break;
            case PARE_NF_F16: out[i] = pare_f16_to_f32(pare_f32_to_f16(v)); break;
            case PARE_NF_E4M3:
            case PARE_NF_E5M2: {
                double am = fmax(-lo[u], hi[u]);
                float fm = s->fmt == PARE_NF_E4M3 ? 448.0f : 57344.0f, scale = am == 0 ? 1.0f : (float)am / fm;
                out[i] = s->fmt == PARE_NF_E4M3 ? pare_e4m3_to_f32(pare_f32_to_e4m3(v / scale)) * scale
                                                : pare_e5m2_to_f32(pare_f32_to_e5m2(v / scale)) * scale;
                break;
            }
            case PARE_NF_INT: {
                pare_qparams qp;
                pare_qparams_make(&qp, (float)lo[u], (float)hi[u], s->bits, s->symmetric);
                out[i] = pare_qdequant(pare_qround(v, &qp), &qp);
                break;
            }
            case PARE_NF_BINARY: {
                float a = (float)(sum[u] / cnt[u]);
                out[i] = v >= 0 ? a : -a;
                break;
            }
            case PARE_NF_TERNARY: {
                float a = cnt2[u] ? (float)(sum2[u] / cnt2[u]) : 0.0f;
                out[i] = fabs(v) > 0.7 * (sum[u] / cnt[u]) ? (v > 0 ? a : -a) : 0.0f;
                break;
            }
            default: break;
            }
        }
    free(lo), free(hi), free(sum), free(sum2), free(cnt), free(cnt2);
}

static void fill(float *x, int64_t rows, int64_t cols, pare_rng *rng)
{
    for (int64_t i = 0; i < rows * cols; i++) x[i] = (float)(pare_rng_normal(rng) * 0.05);
    for (int64_t c = 0; c < cols; c++) x[3 * cols + c] = 0.0f;                        /* an all-zero row */
    for (int64_t c = 0; c < cols; c++) x[5 * cols + c] = (float)(pare_rng_uniform(rng) + 0.1); /* all positive */
    x[7 * cols + 11] = 3.0f, x[9 * cols + 40] = -2.5f;                               /* outliers */
    x[10 * cols + 1] = -0.0f;
}

static long count_diff(const float *a, const float *b, int64_t n, double rtol)
{
    long bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (rtol == 0 ? !same_float(a[i], b[i]) : fabs(a[i] - b[i]) > rtol * fabs(b[i]) + 1e-12) bad++;
    return bad;
}

static void test_fake_quant(pare_rng *rng)
{
    enum { R = 24, C = 96 };
    float *x = malloc(sizeof(float) * R * C), *got = malloc(sizeof(float) * R * C);
    float *want = malloc(sizeof(float) * R * C), *inpl = malloc(sizeof(float) * R * C);
    fill(x, R, C, rng);
    static const int bitses[] = {2, 3, 4, 8, 16};
    for (int f = 0; f < PARE_NF_COUNT; f++)
        for (int g = 0; g < PARE_GRAN_COUNT; g++) {
            int nb = f == PARE_NF_INT ? 5 : 1;
            for (int bi = 0; bi < nb; bi++)
                for (int sym = 1; sym >= (f == PARE_NF_INT ? 0 : 1); sym--) {
                    pare_qspec s = {.fmt = (pare_numfmt)f, .bits = bitses[bi], .symmetric = sym, .gran = (pare_qgran)g,
                                    .group = 32};
                    char name[64];
                    pare_qspec_str(&s, name, sizeof name);
                    pare_status st = pare_fake_quant(got, x, R, C, &s);
                    fq_ref(want, x, R, C, &s);
                    int approx = f == PARE_NF_BINARY || f == PARE_NF_TERNARY; /* means in double, order may differ */
                    long bad = st == PARE_OK ? count_diff(got, want, R * C, approx ? 1e-6 : 0) : -1;
                    memcpy(inpl, x, sizeof(float) * R * C);
                    pare_status st2 = pare_fake_quant(inpl, inpl, R, C, &s);
                    long bad2 = st2 == PARE_OK ? count_diff(inpl, got, R * C, 0) : -1;
                    if (f < PARE_NF_E4M3 && g > 0) continue; /* gran ignored: one line per float format is enough */
                    ok(bad == 0 && bad2 == 0, "fake quant %s (%dx%d) == reference loop%s, in place too", name, R, C,
                       approx ? " (rtol 1e-6)" : " (bit-exact)");
                    if (bad || bad2) diag("status %d, %ld / %ld elements differ (in place: %ld): %s", (int)st, bad,
                                          (long)R * C, bad2, pare_errmsg());
                }
        }

    /* params_minmax + fake_quant_params == fake_quant; static parameters against pare_qround */
    pare_qspec s = {.fmt = PARE_NF_INT, .bits = 4, .symmetric = 0, .gran = PARE_GRAN_GROUP, .group = 16};
    int64_t units = pare_qspec_units(&s, R, C);
    pare_qparams *qp = malloc(sizeof *qp * units);
    ok(units == R * C / 16 && pare_qspec_params_minmax(qp, x, R, C, &s) == PARE_OK &&
           pare_fake_quant_params(got, x, R, C, &s, qp) == PARE_OK && pare_fake_quant(want, x, R, C, &s) == PARE_OK &&
           count_diff(got, want, R * C, 0) == 0,
       "params_minmax + fake_quant_params == fake_quant (int4 asym group16)");
    pare_qparams fixed = {.scale = 0.01f, .zero = 0, .qmin = -7, .qmax = 7};
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 4, .symmetric = 1, .gran = PARE_GRAN_TENSOR};
    long bad = pare_fake_quant_params(got, x, R, C, &s, &fixed) == PARE_OK ? 0 : -1;
    for (int64_t i = 0; i < R * C && bad >= 0; i++)
        bad += !same_float(got[i], pare_qdequant(pare_qround(x[i], &fixed), &fixed));
    ok(bad == 0, "fake_quant_params with a fixed (static) scale clamps and rounds like pare_qround");
    fixed.scale = 0;
    ok(pare_fake_quant_params(got, x, R, C, &s, &fixed) == PARE_EINVAL && strstr(pare_errmsg(), "scale"),
       "fake_quant_params rejects scale 0: %s", pare_errmsg());
    s.fmt = PARE_NF_E4M3;
    ok(pare_fake_quant_params(got, x, R, C, &s, qp) == PARE_EINVAL &&
           pare_qspec_params_minmax(qp, x, R, C, &s) == PARE_EINVAL,
       "given / min-max parameters are int only: %s", pare_errmsg());

    /* errors */
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 4, .symmetric = 1, .gran = PARE_GRAN_GROUP, .group = 48};
    ok(pare_fake_quant(got, x, 10, 100, &s) == PARE_EINVAL && strstr(pare_errmsg(), "group=48") &&
           strstr(pare_errmsg(), "100"),
       "group must divide cols: %s", pare_errmsg());
    s.group = 0;
    ok(pare_qspec_check(&s, R, C) == PARE_EINVAL && strstr(pare_errmsg(), "group"), "group=0 rejected: %s",
       pare_errmsg());
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 1, .symmetric = 1};
    ok(pare_fake_quant(got, x, R, C, &s) == PARE_EINVAL && strstr(pare_errmsg(), "bits=1"), "bits=1: %s",
       pare_errmsg());
    s.bits = 17;
    ok(pare_qspec_check(&s, R, C) == PARE_EINVAL && strstr(pare_errmsg(), "bits=17"), "bits=17: %s", pare_errmsg());
    s = (pare_qspec){.fmt = PARE_NF_BF16, .bits = 99, .gran = (pare_qgran)42};
    ok(pare_qspec_check(&s, R, C) == PARE_OK, "bits and granularity are ignored for bf16");
    s = (pare_qspec){.fmt = PARE_NF_TERNARY, .gran = (pare_qgran)42};
    ok(pare_qspec_check(&s, R, C) == PARE_EINVAL && strstr(pare_errmsg(), "granularity"), "bad granularity: %s",
       pare_errmsg());
    s = (pare_qspec){.fmt = (pare_numfmt)77};
    ok(pare_qspec_check(&s, R, C) == PARE_EINVAL && strstr(pare_errmsg(), "fp8_e4m3"), "bad fmt lists formats: %s",
       pare_errmsg());
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 8, .symmetric = 1, .gran = PARE_GRAN_ROW};
    for (int nonfinite = 0; nonfinite < 2; nonfinite++) {
        memcpy(inpl, x, sizeof(float) * R * C);
        inpl[2 * C + 5] = nonfinite ? -INFINITY : NAN;
        inpl[4 * C + 1] = NAN;
        for (int64_t i = 0; i < R * C; i++) got[i] = 123.0f;
        pare_status st = pare_fake_quant(got, inpl, R, C, &s);
        int untouched = 1;
        for (int64_t i = 0; i < R * C; i++) untouched &= got[i] == 123.0f;
        ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "(2, 5)") && untouched,
           "%s input -> PARE_ENUMERIC naming the first position, output untouched: %s", nonfinite ? "-inf" : "NaN",
           pare_errmsg());
    }
    s.fmt = PARE_NF_BF16;
    ok(pare_fake_quant(got, inpl, R, C, &s) == PARE_ENUMERIC, "non-finite rejected for bf16 too");

    /* error falls as bits grow */
    enum { R2 = 64, C2 = 256 };
    float *y = malloc(sizeof(float) * R2 * C2), *yq = malloc(sizeof(float) * R2 * C2);
    for (int64_t i = 0; i < R2 * C2; i++) y[i] = (float)pare_rng_normal(rng);
    for (int sym = 0; sym < 2; sym++) {
        double mse[3];
        static const int bl[3] = {8, 4, 2};
        for (int k = 0; k < 3; k++) {
            s = (pare_qspec){.fmt = PARE_NF_INT, .bits = bl[k], .symmetric = sym, .gran = PARE_GRAN_ROW};
            pare_fake_quant(yq, y, R2, C2, &s);
            mse[k] = 0;
            for (int64_t i = 0; i < R2 * C2; i++) mse[k] += (yq[i] - y[i]) * (double)(yq[i] - y[i]);
            mse[k] /= R2 * C2;
        }
        ok(mse[0] < mse[1] && mse[1] < mse[2], "%s per-channel MSE on N(0,1): int8 %.3g < int4 %.3g < int2 %.3g",
           sym ? "sym" : "asym", mse[0], mse[1], mse[2]);
    }
    double m4 = 0, m5 = 0;
    for (int k = 0; k < 2; k++) {
        s = (pare_qspec){.fmt = k ? PARE_NF_E5M2 : PARE_NF_E4M3, .gran = PARE_GRAN_ROW};
        pare_fake_quant(yq, y, R2, C2, &s);
        double *m = k ? &m5 : &m4;
        for (int64_t i = 0; i < R2 * C2; i++) *m += (yq[i] - y[i]) * (double)(yq[i] - y[i]);
        *m /= R2 * C2;
    }
    ok(m4 < m5, "fp8 per-channel MSE on N(0,1): e4m3 %.3g < e5m2 %.3g", m4, m5);
    free(y), free(yq), free(qp), free(x), free(got), free(want), free(inpl);
}

/* ---------------- names, specs, storage ---------------- */

static void test_names(void)
{
    int rt = 1;
    for (int f = 0; f < PARE_NF_COUNT; f++) {
        pare_numfmt g;
        rt &= pare_numfmt_parse(pare_numfmt_name((pare_numfmt)f), &g) == PARE_OK && g == (pare_numfmt)f;
    }
    for (int f = 0; f < PARE_GRAN_COUNT; f++) {
        pare_qgran g;
        rt &= pare_qgran_parse(pare_qgran_name((pare_qgran)f), &g) == PARE_OK && g == (pare_qgran)f;
    }
    ok(rt, "every format and granularity name parses back");
    pare_qgran g = PARE_GRAN_TENSOR;
    ok(pare_qgran_parse("token", &g) == PARE_OK && g == PARE_GRAN_ROW && pare_qgran_parse("row", &g) == PARE_OK &&
           !strcmp(pare_qgran_name(PARE_GRAN_ROW), "channel"),
       "'token' and 'row' parse as the row granularity, named 'channel'");
    pare_numfmt f;
    ok(pare_numfmt_parse("int3", &f) == PARE_EINVAL && strstr(pare_errmsg(), "fp8_e5m2") &&
           strstr(pare_errmsg(), "ternary"),
       "unknown format lists the valid names: %s", pare_errmsg());
    ok(pare_qgran_parse("block", &g) == PARE_EINVAL && strstr(pare_errmsg(), "group"), "unknown granularity: %s",
       pare_errmsg());

    char buf[64];
    pare_qspec s = {.fmt = PARE_NF_INT, .bits = 4, .symmetric = 1, .gran = PARE_GRAN_GROUP, .group = 128};
    ok(!strcmp(pare_qspec_str(&s, buf, sizeof buf), "int4 sym group128"), "qspec_str: %s", buf);
    s = (pare_qspec){.fmt = PARE_NF_E4M3, .gran = PARE_GRAN_TENSOR};
    ok(!strcmp(pare_qspec_str(&s, buf, sizeof buf), "fp8_e4m3 tensor"), "qspec_str: %s", buf);
    s = (pare_qspec){.fmt = PARE_NF_BF16, .gran = PARE_GRAN_GROUP, .group = 7};
    ok(!strcmp(pare_qspec_str(&s, buf, sizeof buf), "bf16"), "qspec_str: %s", buf);
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 8, .symmetric = 0, .gran = PARE_GRAN_ROW};
    ok(!strcmp(pare_qspec_str(&s, buf, sizeof buf), "int8 asym channel"), "qspec_str: %s", buf);

    static const char *specs[] = {"int4 sym group128", "int8 asym channel", "int2 sym column", "fp8_e5m2 group32",
                                  "ternary channel",   "binary tensor",     "tf32",            "fp16"};
    int prt = 1;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        pare_qspec q;
        prt &= pare_qspec_parse(&q, specs[i]) == PARE_OK && !strcmp(pare_qspec_str(&q, buf, sizeof buf), specs[i]);
    }
    ok(prt, "qspec_parse is the inverse of qspec_str on 8 specs");
    pare_qspec q;
    ok(pare_qspec_parse(&q, "  int4   token ") == PARE_OK && q.gran == PARE_GRAN_ROW && q.symmetric == 1 && q.bits == 4,
       "qspec_parse defaults: symmetric; 'token' = row");
    ok(pare_qspec_parse(&q, "int42") == PARE_EINVAL && strstr(pare_errmsg(), "bits"), "qspec_parse int42: %s",
       pare_errmsg());
    ok(pare_qspec_parse(&q, "bf16 channel") == PARE_EINVAL, "qspec_parse bf16 channel: %s", pare_errmsg());
    ok(pare_qspec_parse(&q, "int4 blocky") == PARE_EINVAL && strstr(pare_errmsg(), "blocky"),
       "qspec_parse bad word: %s", pare_errmsg());
    ok(pare_qspec_parse(&q, "") == PARE_EINVAL, "qspec_parse empty: %s", pare_errmsg());
}

static void test_storage(void)
{
    const int64_t N = 768, K = 768, n = N * K; /* 589824 */
    pare_qspec s = {.fmt = PARE_NF_INT, .bits = 4, .symmetric = 1, .gran = PARE_GRAN_GROUP, .group = 128};
    ok(pare_qspec_storage_bits(&s, N, K) == 2433024.0, "int4 sym group128 (768x768): 4n + 16*4608 = 2433024 bits");
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 8, .symmetric = 0, .gran = PARE_GRAN_ROW};
    ok(pare_qspec_storage_bits(&s, N, K) == 8.0 * n + 768 * (16 + 8), "int8 asym channel: 8n + 768*(16+8)");
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 3, .symmetric = 0, .gran = PARE_GRAN_COLUMN};
    ok(pare_qspec_storage_bits(&s, 10, 20) == 3 * 200 + 20 * (16 + 3), "int3 asym column (10x20): 600 + 20*19 = 980");
    s = (pare_qspec){.fmt = PARE_NF_E4M3, .gran = PARE_GRAN_TENSOR};
    ok(pare_qspec_storage_bits(&s, N, K) == 8.0 * n + 16, "fp8_e4m3 tensor: 8n + 16");
    s = (pare_qspec){.fmt = PARE_NF_BINARY, .gran = PARE_GRAN_ROW};
    ok(pare_qspec_storage_bits(&s, N, K) == n + 16.0 * 768, "binary channel: n + 16*768");
    s = (pare_qspec){.fmt = PARE_NF_TERNARY, .gran = PARE_GRAN_GROUP, .group = 64};
    ok(pare_qspec_storage_bits(&s, N, K) == 2.0 * n + 16.0 * n / 64, "ternary group64: 2n + 16n/64");
    s = (pare_qspec){.fmt = PARE_NF_BF16};
    ok(pare_qspec_storage_bits(&s, N, K) == 16.0 * n, "bf16: 16n");
    s.fmt = PARE_NF_TF32;
    ok(pare_qspec_storage_bits(&s, N, K) == 32.0 * n && pare_qspec_units(&s, N, K) == 0, "tf32: 32n, no units");
    s = (pare_qspec){.fmt = PARE_NF_INT, .bits = 4, .symmetric = 1, .gran = PARE_GRAN_GROUP, .group = 100};
    ok(pare_qspec_storage_bits(&s, N, K) == -1.0, "storage bits of an invalid spec: -1");
}

int main(void)
{
    tap_plan_lazy();
    pare_rng rng;
    pare_rng_seed(&rng, 20240611);
    test_tf32(&rng);
    static fp8_def e4m3 = {.name = "fp8_e4m3", .E = 4, .M = 3, .bias = 7, .e5m2 = 0, .enc = pare_f32_to_e4m3,
                           .dec = pare_e4m3_to_f32};
    static fp8_def e5m2 = {.name = "fp8_e5m2", .E = 5, .M = 2, .bias = 15, .e5m2 = 1, .enc = pare_f32_to_e5m2,
                           .dec = pare_e5m2_to_f32};
    test_fp8(&e4m3, &rng);
    test_fp8(&e5m2, &rng);
    test_int_grid(&rng);
    test_fake_quant(&rng);
    test_names();
    test_storage();
    return tap_done();
}
