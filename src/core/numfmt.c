/* numfmt.c — tf32 and FP8 conversions, the int grid, per-unit parameters and simulated quantization.
 *
 * Conversions work on the f32 bit pattern (round to nearest even by the usual add-half-minus-one-plus-
 * lsb trick; subnormal targets by an exact power-of-two scaling and nearbyintf). The fake quantizer
 * first checks the spec and scans for NaN/Inf, then computes per-unit statistics in one pass and
 * applies them in a second; the element loops are plain loops compiled per ISA (PARE_HOT).
 * What it does not do: packed storage, real low-precision arithmetic, threads (matrices here are
 * weights quantized once or activations of one Linear; callers parallelise over layers).
 * Entry points: see numfmt.h.
 */
#include "numfmt.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "tensor.h"

static inline uint32_t f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* ---- tf32 ---- */

float pare_tf32_round(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) >= 0x7f800000u) return x; /* Inf, NaN */
    u += 0xfffu + ((u >> 13) & 1u);                  /* RNE on the 13 dropped bits; a carry rolls into the exponent */
    return bits_f32(u & 0xffffe000u);
}

/* ---- FP8 ----
 * One encoder for both layouts: M mantissa bits, exponent bias, largest finite code (positive), the NaN
 * code, and whether ±Inf is kept (E5M2) or saturated (E4M3 has no Inf). */
static inline uint8_t fp8_encode(float x, int M, int bias, uint32_t maxcode, uint32_t nancode, uint32_t infcode)
{
    uint32_t u = f32_bits(x), sign = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint8_t)(sign | nancode);
    if (a == 0x7f800000u) return (uint8_t)(sign | infcode);
    if (a < ((uint32_t)(127 + 1 - bias) << 23)) {
        /* below the smallest normal: the code is |x| in units of the subnormal step 2^(1-bias-M), rounded
         * (a carry to 2^M is exactly the smallest normal's code). The scaling is exact. */
        float v = bits_f32(a) * bits_f32((uint32_t)(127 + bias - 1 + M) << 23);
        return (uint8_t)(sign | (uint32_t)nearbyintf(v));
    }
    int drop = 23 - M;
    uint32_t r = a + ((1u << (drop - 1)) - 1u) + ((a >> drop) & 1u);
    uint32_t code = (r >> drop) - ((uint32_t)(127 - bias) << M);
    if (code > maxcode) code = maxcode; /* saturate (for E4M3 this also keeps 480 out of the NaN slot) */
    return (uint8_t)(sign | code);
}

static inline uint8_t e4m3_encode(float x) { return fp8_encode(x, 3, 7, 0x7eu, 0x7fu, 0x7eu); }
static inline uint8_t e5m2_encode(float x) { return fp8_encode(x, 2, 15, 0x7bu, 0x7eu, 0x7cu); }

static inline float e4m3_decode(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80u) << 24, e = (b >> 3) & 15u, m = b & 7u;
    if (e == 15 && m == 7) return bits_f32(sign | 0x7fc00000u);
    if (e == 0) {
        float v = (float)m * (1.0f / 512.0f); /* m · 2^-9 */
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((e - 7 + 127) << 23) | (m << 20));
}

static inline float e5m2_decode(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80u) << 24, e = (b >> 2) & 31u, m = b & 3u;
    if (e == 31) return bits_f32(sign | (m ? 0x7fc00000u : 0x7f800000u));
    if (e == 0) {
        float v = (float)m * (1.0f / 65536.0f); /* m · 2^-16 */
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((e - 15 + 127) << 23) | (m << 21));
}

uint8_t pare_f32_to_e4m3(float x) { return e4m3_encode(x); }
float pare_e4m3_to_f32(uint8_t b) { return e4m3_decode(b); }
uint8_t pare_f32_to_e5m2(float x) { return e5m2_encode(x); }
float pare_e5m2_to_f32(uint8_t b) { return e5m2_decode(b); }

/* ---- the int grid ---- */

pare_status pare_qparams_make(pare_qparams *qp, float lo, float hi, int bits, int symmetric)
{
    if (bits < 2 || bits > 16)
        return pare_fail(PARE_EINVAL, "bits=%d: must be in 2..16 for the int grid (1 bit: use binary or ternary)",
                         bits);
    if (!isfinite(lo) || !isfinite(hi))
        return pare_fail(PARE_ENUMERIC, "int grid range [%g, %g] is not finite", lo, hi);
    if (lo > hi) return pare_fail(PARE_EINVAL, "int grid range [%g, %g]: lo > hi", lo, hi);
    if (symmetric) {
        float absmax = fmaxf(fabsf(lo), fabsf(hi));
        qp->qmax = (int32_t)((1u << (bits - 1)) - 1u);
        qp->qmin = -qp->qmax;
        qp->zero = 0;
        qp->scale = absmax == 0.0f ? 1.0f : absmax / (float)qp->qmax;
    } else {
        if (lo > 0.0f) lo = 0.0f;
        if (hi < 0.0f) hi = 0.0f;
        qp->qmin = 0;
        qp->qmax = (int32_t)((1u << bits) - 1u);
        double range = (double)hi - (double)lo;
        qp->scale = range == 0.0 ? 1.0f : (float)(range / qp->qmax);
        if (qp->scale == 0.0f) qp->scale = FLT_TRUE_MIN;
        double z = nearbyint(-(double)lo / qp->scale);
        qp->zero = z < 0 ? 0 : z > qp->qmax ? qp->qmax : (int32_t)z;
    }
    if (qp->scale == 0.0f) qp->scale = FLT_TRUE_MIN; /* a subnormal range: keep x/scale finite */
    return PARE_OK;
}

/* ---- names ---- */

static const char *const numfmt_names[] = {
    [PARE_NF_F32] = "fp32",      [PARE_NF_TF32] = "tf32",      [PARE_NF_BF16] = "bf16",
    [PARE_NF_F16] = "fp16",      [PARE_NF_E4M3] = "fp8_e4m3",  [PARE_NF_E5M2] = "fp8_e5m2",
    [PARE_NF_INT] = "int",       [PARE_NF_BINARY] = "binary",  [PARE_NF_TERNARY] = "ternary",
};
_Static_assert(sizeof numfmt_names / sizeof numfmt_names[0] == PARE_NF_COUNT, "numfmt names out of date");
#define NUMFMT_VALID "fp32, tf32, bf16, fp16, fp8_e4m3, fp8_e5m2, int, binary, ternary"

static const char *const qgran_names[] = {
    [PARE_GRAN_TENSOR] = "tensor", [PARE_GRAN_ROW] = "channel", [PARE_GRAN_COLUMN] = "column",
    [PARE_GRAN_GROUP] = "group",
};
_Static_assert(sizeof qgran_names / sizeof qgran_names[0] == PARE_GRAN_COUNT, "qgran names out of date");
#define QGRAN_VALID "tensor, channel (= row, token), column, group"

const char *pare_numfmt_name(pare_numfmt f) { return (unsigned)f < PARE_NF_COUNT ? numfmt_names[f] : "?"; }
const char *pare_qgran_name(pare_qgran g) { return (unsigned)g < PARE_GRAN_COUNT ? qgran_names[g] : "?"; }

pare_status pare_numfmt_parse(const char *s, pare_numfmt *f)
{
    static const struct { const char *name; pare_numfmt f; } aliases[] = {
        {"f32", PARE_NF_F32}, {"f16", PARE_NF_F16}, {"e4m3", PARE_NF_E4M3}, {"e5m2", PARE_NF_E5M2}};
    for (int i = 0; i < PARE_NF_COUNT; i++)
        if (strcmp(s, numfmt_names[i]) == 0) return *f = (pare_numfmt)i, PARE_OK;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(s, aliases[i].name) == 0) return *f = aliases[i].f, PARE_OK;
    return pare_fail(PARE_EINVAL, "unknown number format '%s' (valid: " NUMFMT_VALID ")", s);
}

pare_status pare_qgran_parse(const char *s, pare_qgran *g)
{
    for (int i = 0; i < PARE_GRAN_COUNT; i++)
        if (strcmp(s, qgran_names[i]) == 0) return *g = (pare_qgran)i, PARE_OK;
    if (strcmp(s, "row") == 0 || strcmp(s, "token") == 0) return *g = PARE_GRAN_ROW, PARE_OK;
    return pare_fail(PARE_EINVAL, "unknown quantization granularity '%s' (valid: " QGRAN_VALID ")", s);
}

/* ---- specs ---- */

static int has_units(pare_numfmt f)
{
    return f == PARE_NF_E4M3 || f == PARE_NF_E5M2 || f == PARE_NF_INT || f == PARE_NF_BINARY || f == PARE_NF_TERNARY;
}

pare_status pare_qspec_check(const pare_qspec *s, int64_t rows, int64_t cols)
{
    if (!s) return pare_fail(PARE_EINVAL, "quantization spec is NULL");
    if ((unsigned)s->fmt >= PARE_NF_COUNT)
        return pare_fail(PARE_EINVAL, "fmt=%d: unknown number format (valid: " NUMFMT_VALID ")", (int)s->fmt);
    if (rows < 0 || cols < 0)
        return pare_fail(PARE_ESHAPE, "matrix (%lld, %lld): rows and cols must be >= 0", (long long)rows,
                         (long long)cols);
    if (s->fmt == PARE_NF_INT && (s->bits < 2 || s->bits > 16))
        return pare_fail(PARE_EINVAL, "bits=%d: must be in 2..16 for int (1 bit: use binary or ternary)", s->bits);
    if (!has_units(s->fmt)) return PARE_OK;
    if ((unsigned)s->gran >= PARE_GRAN_COUNT)
        return pare_fail(PARE_EINVAL, "granularity=%d: unknown (valid: " QGRAN_VALID ")", (int)s->gran);
    if (s->gran == PARE_GRAN_GROUP) {
        if (s->group < 1) return pare_fail(PARE_EINVAL, "group=%lld: must be >= 1", (long long)s->group);
        if (cols % s->group != 0)
            return pare_fail(PARE_EINVAL, "group=%lld does not divide cols=%lld (a group is part of one row)",
                             (long long)s->group, (long long)cols);
    }
    return PARE_OK;
}

const char *pare_qspec_str(const pare_qspec *s, char *buf, size_t n)
{
    if (!buf || n == 0) return buf;
    if (!s || (unsigned)s->fmt >= PARE_NF_COUNT) {
        snprintf(buf, n, "?");
        return buf;
    }
    char gran[40];
    if (s->gran == PARE_GRAN_GROUP) snprintf(gran, sizeof gran, "group%lld", (long long)s->group);
    else snprintf(gran, sizeof gran, "%s", pare_qgran_name(s->gran));
    if (s->fmt == PARE_NF_INT) snprintf(buf, n, "int%d %s %s", s->bits, s->symmetric ? "sym" : "asym", gran);
    else if (has_units(s->fmt)) snprintf(buf, n, "%s %s", pare_numfmt_name(s->fmt), gran);
    else snprintf(buf, n, "%s", pare_numfmt_name(s->fmt));
    return buf;
}

pare_status pare_qspec_parse(pare_qspec *s, const char *str)
{
    pare_qspec q = {.fmt = PARE_NF_F32, .bits = 8, .symmetric = 1, .gran = PARE_GRAN_TENSOR, .group = 0};
    char word[64];
    int first = 1, len;
    const char *p = str ? str : "";
    while (sscanf(p, " %63s%n", word, &len) == 1) {
        p += len;
        char *end;
        if (first) {
            first = 0;
            if (strncmp(word, "int", 3) == 0 && word[3]) {
                long b = strtol(word + 3, &end, 10);
                if (*end || b < 2 || b > 16)
                    return pare_fail(PARE_EINVAL, "'%s': int format is int<bits> with bits in 2..16 (int4, int8)",
                                     word);
                q.fmt = PARE_NF_INT, q.bits = (int)b;
                continue;
            }
            if (strcmp(word, "int") == 0) return pare_fail(PARE_EINVAL, "'int': give the bits (int2 .. int16)");
            PARE_TRY(pare_numfmt_parse(word, &q.fmt));
            continue;
        }
        if (strcmp(word, "sym") == 0 || strcmp(word, "asym") == 0) {
            if (q.fmt != PARE_NF_INT) return pare_fail(PARE_EINVAL, "'%s' applies to int formats only", word);
            q.symmetric = word[0] == 's';
            continue;
        }
        if (!has_units(q.fmt))
            return pare_fail(PARE_EINVAL, "'%s': %s takes no granularity", word, pare_numfmt_name(q.fmt));
        if (strncmp(word, "group", 5) == 0 && word[5]) {
            long long g = strtoll(word + 5, &end, 10);
            if (*end || g < 1) return pare_fail(PARE_EINVAL, "'%s': group size is group<G> with G >= 1", word);
            q.gran = PARE_GRAN_GROUP, q.group = g;
            continue;
        }
        if (strcmp(word, "group") == 0) return pare_fail(PARE_EINVAL, "'group': give the size (group128)");
        if (pare_qgran_parse(word, &q.gran) != PARE_OK)
            return pare_fail(PARE_EINVAL, "'%s' in '%s': expected sym, asym, group<G> or a granularity (" QGRAN_VALID
                             ")", word, str);
    }
    if (first) return pare_fail(PARE_EINVAL, "empty quantization spec (e.g. 'int4 sym group128', 'fp8_e4m3 tensor')");
    *s = q;
    return PARE_OK;
}

int64_t pare_qspec_units(const pare_qspec *s, int64_t rows, int64_t cols)
{
    if (!has_units(s->fmt)) return 0;
    switch (s->gran) {
    case PARE_GRAN_ROW: return rows;
    case PARE_GRAN_COLUMN: return cols;
    case PARE_GRAN_GROUP: return s->group > 0 ? rows * (cols / s->group) : 0;
    default: return 1;
    }
}

double pare_qspec_storage_bits(const pare_qspec *s, int64_t rows, int64_t cols)
{
    if (pare_qspec_check(s, rows, cols) != PARE_OK) return -1.0;
    double n = (double)rows * (double)cols, units = (double)pare_qspec_units(s, rows, cols);
    switch (s->fmt) {
    case PARE_NF_F32:
    case PARE_NF_TF32: return 32.0 * n;
    case PARE_NF_BF16:
    case PARE_NF_F16: return 16.0 * n;
    case PARE_NF_E4M3:
    case PARE_NF_E5M2: return 8.0 * n + 16.0 * units;
    case PARE_NF_INT: return s->bits * n + (16.0 + (s->symmetric ? 0 : s->bits)) * units;
    case PARE_NF_BINARY: return n + 16.0 * units;
    case PARE_NF_TERNARY: return 2.0 * n + 16.0 * units;
    default: return -1.0;
    }
}

/* ---- scanning and per-unit statistics ---- */

PARE_HOT static int row_has_nonfinite(const float *x, int64_t n)
{
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return (int)bad;
}

static pare_status check_finite(const float *x, int64_t rows, int64_t cols, const pare_qspec *s)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        if (!row_has_nonfinite(xr, cols)) continue;
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(xr[c])) {
                char buf[64];
                return pare_fail(PARE_ENUMERIC,
                                 "%s quantization: element (%lld, %lld) of the (%lld, %lld) matrix is %g",
                                 pare_qspec_str(s, buf, sizeof buf), (long long)r, (long long)c, (long long)rows,
                                 (long long)cols, (double)xr[c]);
            }
    }
    return PARE_OK;
}

/* Length of a row segment that shares one unit (the whole row unless grouped); COLUMN is handled apart. */
static int64_t seg_len(const pare_qspec *s, int64_t cols) { return s->gran == PARE_GRAN_GROUP ? s->group : cols; }

PARE_HOT static void seg_minmax(float *lo, float *hi, const float *x, int64_t n)
{
    float l = *lo, h = *hi;
    for (int64_t i = 0; i < n; i++) {
        l = x[i] < l ? x[i] : l;
        h = x[i] > h ? x[i] : h;
    }
    *lo = l, *hi = h;
}

PARE_HOT static void cols_minmax(float *lo, float *hi, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        lo[i] = x[i] < lo[i] ? x[i] : lo[i];
        hi[i] = x[i] > hi[i] ? x[i] : hi[i];
    }
}

/* lo[u], hi[u] = min, max over each unit (x finite). */
static void unit_minmax(float *lo, float *hi, const float *x, int64_t rows, int64_t cols, const pare_qspec *s,
                        int64_t units)
{
    for (int64_t u = 0; u < units; u++) lo[u] = INFINITY, hi[u] = -INFINITY;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        if (s->gran == PARE_GRAN_COLUMN) {
            cols_minmax(lo, hi, xr, cols);
            continue;
        }
        int64_t L = seg_len(s, cols);
        for (int64_t c0 = 0; c0 < cols; c0 += L) {
            int64_t u = pare_qspec_unit_of(s, cols, r, c0);
            seg_minmax(&lo[u], &hi[u], xr + c0, L);
        }
    }
    for (int64_t u = 0; u < units; u++)
        if (lo[u] > hi[u]) lo[u] = hi[u] = 0.0f; /* an empty unit */
}

/* Elements per unit. */
static int64_t unit_count(const pare_qspec *s, int64_t rows, int64_t cols)
{
    switch (s->gran) {
    case PARE_GRAN_ROW: return cols;
    case PARE_GRAN_COLUMN: return rows;
    case PARE_GRAN_GROUP: return s->group;
    default: return rows * cols;
    }
}

/* sum[u] (+)= sum over the unit of |x| if |x| > thr[u] (thr NULL: all), cnt[u] (+)= how many. */
static void unit_abssum(double *sum, int64_t *cnt, const float *x, int64_t rows, int64_t cols, const pare_qspec *s,
                        int64_t units, const double *thr)
{
    for (int64_t u = 0; u < units; u++) sum[u] = 0.0, cnt[u] = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t u = pare_qspec_unit_of(s, cols, r, c);
            double a = fabs((double)x[r * cols + c]);
            if (thr && !(a > thr[u])) continue;
            sum[u] += a;
            cnt[u]++;
        }
}

pare_status pare_qspec_params_minmax(pare_qparams *qp, const float *x, int64_t rows, int64_t cols,
                                     const pare_qspec *s)
{
    PARE_TRY(pare_qspec_check(s, rows, cols));
    if (s->fmt != PARE_NF_INT)
        return pare_fail(PARE_EINVAL, "min-max int parameters: fmt=%s is not int", pare_numfmt_name(s->fmt));
    PARE_TRY(check_finite(x, rows, cols, s));
    int64_t units = pare_qspec_units(s, rows, cols);
    size_t nu = (size_t)(units ? units : 1);
    float *lo = malloc(sizeof *lo * nu), *hi = malloc(sizeof *hi * nu);
    if (!lo || !hi) {
        free(lo), free(hi);
        return pare_fail(PARE_ENOMEM, "min-max int parameters: out of memory for %lld units", (long long)units);
    }
    unit_minmax(lo, hi, x, rows, cols, s, units);
    pare_status st = PARE_OK;
    for (int64_t u = 0; u < units && st == PARE_OK; u++)
        st = pare_qparams_make(&qp[u], lo[u], hi[u], s->bits, s->symmetric);
    free(lo), free(hi);
    return st;
}

/* ---- applying ---- */

/* The int grid on a run sharing one set of parameters; the same arithmetic as
 * pare_qdequant(pare_qround(x)), kept in float so it vectorises (all values are integers below 2^17). */
PARE_HOT static void seg_int(float *out, const float *x, int64_t n, float scale, float zero, float qmin, float qmax)
{
    for (int64_t i = 0; i < n; i++) {
        float v = nearbyintf(x[i] / scale) + zero;
        v = v < qmin ? qmin : v;
        v = v > qmax ? qmax : v;
        out[i] = scale * (v - zero);
    }
}

PARE_HOT static void cols_int(float *out, const float *x, int64_t n, const pare_qparams *qp)
{
    for (int64_t i = 0; i < n; i++) out[i] = pare_qdequant(pare_qround(x[i], &qp[i]), &qp[i]);
}

static void apply_int(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s,
                      const pare_qparams *qp)
{
    if (s->gran == PARE_GRAN_TENSOR) {
        seg_int(out, x, rows * cols, qp->scale, (float)qp->zero, (float)qp->qmin, (float)qp->qmax);
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *orow = out + r * cols;
        if (s->gran == PARE_GRAN_COLUMN) {
            cols_int(orow, xr, cols, qp);
            continue;
        }
        int64_t L = seg_len(s, cols);
        for (int64_t c0 = 0; c0 < cols; c0 += L) {
            const pare_qparams *q = &qp[pare_qspec_unit_of(s, cols, r, c0)];
            seg_int(orow + c0, xr + c0, L, q->scale, (float)q->zero, (float)q->qmin, (float)q->qmax);
        }
    }
}

PARE_HOT static void fp8_run(float *out, const float *x, int64_t n, float scale, int e5m2)
{
    if (e5m2)
        for (int64_t i = 0; i < n; i++) out[i] = e5m2_decode(e5m2_encode(x[i] / scale)) * scale;
    else
        for (int64_t i = 0; i < n; i++) out[i] = e4m3_decode(e4m3_encode(x[i] / scale)) * scale;
}

PARE_HOT static void round_run(float *out, const float *x, int64_t n, pare_numfmt f)
{
    switch (f) {
    case PARE_NF_TF32:
        for (int64_t i = 0; i < n; i++) out[i] = pare_tf32_round(x[i]);
        break;
    case PARE_NF_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = pare_bf16_to_f32(pare_f32_to_bf16(x[i]));
        break;
    case PARE_NF_F16:
        for (int64_t i = 0; i < n; i++) out[i] = pare_f16_to_f32(pare_f32_to_f16(x[i]));
        break;
    default:
        if (out != x) memmove(out, x, sizeof *out * (size_t)n);
        break;
    }
}

/* FP8, binary, ternary: per-unit statistics, then elementwise. */
static pare_status apply_scaled(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s)
{
    int64_t units = pare_qspec_units(s, rows, cols), nu = units ? units : 1;
    float *p = malloc(sizeof *p * (size_t)nu * 2); /* FP8: scale, (unused) · binary: alpha · ternary: alpha */
    double *sum = malloc(sizeof *sum * (size_t)nu), *thr = calloc((size_t)nu, sizeof *thr);
    int64_t *cnt = malloc(sizeof *cnt * (size_t)nu);
    pare_status st = PARE_OK;
    if (!p || !sum || !thr || !cnt) {
        st = pare_fail(PARE_ENOMEM, "fake quantization: out of memory for %lld units", (long long)units);
        goto done;
    }
    if (s->fmt == PARE_NF_E4M3 || s->fmt == PARE_NF_E5M2) {
        float fmax = s->fmt == PARE_NF_E4M3 ? PARE_E4M3_MAX : PARE_E5M2_MAX;
        unit_minmax(p, p + nu, x, rows, cols, s, units);
        for (int64_t u = 0; u < units; u++) {
            float absmax = fmaxf(-p[u], p[nu + u]);
            p[u] = absmax == 0.0f ? 1.0f : absmax / fmax;
            if (p[u] == 0.0f) p[u] = FLT_TRUE_MIN;
        }
        int e5 = s->fmt == PARE_NF_E5M2;
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * cols;
            float *orow = out + r * cols;
            if (s->gran == PARE_GRAN_COLUMN) {
                for (int64_t c = 0; c < cols; c++) fp8_run(orow + c, xr + c, 1, p[c], e5);
                continue;
            }
            int64_t L = seg_len(s, cols);
            for (int64_t c0 = 0; c0 < cols; c0 += L)
                fp8_run(orow + c0, xr + c0, L, p[pare_qspec_unit_of(s, cols, r, c0)], e5);
        }
        goto done;
    }
    /* binary: alpha = mean|x|; ternary (TWN, Li et al. 2016): delta = 0.7·mean|x|, alpha = mean|x| over |x| > delta */
    unit_abssum(sum, cnt, x, rows, cols, s, units, NULL);
    int64_t per = unit_count(s, rows, cols);
    for (int64_t u = 0; u < units; u++) {
        double mean = per ? sum[u] / (double)per : 0.0;
        p[u] = (float)mean;
        thr[u] = 0.7 * mean;
    }
    if (s->fmt == PARE_NF_TERNARY) {
        unit_abssum(sum, cnt, x, rows, cols, s, units, thr);
        for (int64_t u = 0; u < units; u++) p[u] = cnt[u] ? (float)(sum[u] / (double)cnt[u]) : 0.0f;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t u = pare_qspec_unit_of(s, cols, r, c), i = r * cols + c;
            float v = x[i];
            if (s->fmt == PARE_NF_BINARY) out[i] = v >= 0.0f ? p[u] : -p[u];
            else out[i] = fabs((double)v) > thr[u] ? copysignf(p[u], v) : 0.0f;
        }
done:
    free(p), free(sum), free(thr), free(cnt);
    return st;
}

pare_status pare_fake_quant(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s)
{
    PARE_TRY(pare_qspec_check(s, rows, cols));
    PARE_TRY(check_finite(x, rows, cols, s));
    switch (s->fmt) {
    case PARE_NF_F32:
    case PARE_NF_TF32:
    case PARE_NF_BF16:
    case PARE_NF_F16: round_run(out, x, rows * cols, s->fmt); return PARE_OK;
    case PARE_NF_INT: {
        int64_t units = pare_qspec_units(s, rows, cols);
        pare_qparams *qp = malloc(sizeof *qp * (size_t)(units ? units : 1));
        if (!qp) return pare_fail(PARE_ENOMEM, "fake quantization: out of memory for %lld units", (long long)units);
        pare_status st = pare_qspec_params_minmax(qp, x, rows, cols, s);
        if (st == PARE_OK) apply_int(out, x, rows, cols, s, qp);
        free(qp);
        return st;
    }
    default: return apply_scaled(out, x, rows, cols, s);
    }
}

pare_status pare_fake_quant_params(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s,
                                   const pare_qparams *qp)
{
    PARE_TRY(pare_qspec_check(s, rows, cols));
    if (s->fmt != PARE_NF_INT)
        return pare_fail(PARE_EINVAL, "fake quantization with given parameters: fmt=%s is not int (only int takes "
                         "static parameters)", pare_numfmt_name(s->fmt));
    int64_t units = pare_qspec_units(s, rows, cols);
    for (int64_t u = 0; u < units; u++)
        if (!(qp[u].scale > 0.0f) || !isfinite(qp[u].scale) || qp[u].qmin > qp[u].qmax || qp[u].zero < qp[u].qmin ||
            qp[u].zero > qp[u].qmax)
            return pare_fail(PARE_EINVAL,
                             "quantization parameters of unit %lld (of %lld): scale=%g zero=%d q in [%d, %d]: "
                             "need a finite scale > 0 and qmin <= zero <= qmax", (long long)u, (long long)units,
                             (double)qp[u].scale, (int)qp[u].zero, (int)qp[u].qmin, (int)qp[u].qmax);
    PARE_TRY(check_finite(x, rows, cols, s));
    apply_int(out, x, rows, cols, s, qp);
    return PARE_OK;
}
