/* wq.c — weight-only quantized Linears (wq.h): int8 / int3 / int2 groups, packed binary and ternary rows, W4A8:
 * storage from integers or from f32 weights, the code layouts read and written element by element, dequantization,
 * the plain-C references, the scalar kernels, W4A8's activation quantizer, and the dispatch of pare_linear_wq to
 * the AVX-512 / AVX2 kernels (wq_avx512.c, wq_avx2.c).
 *
 * Scales are rounded to NEAREST fp16 (the integers come from rtn / gptq with f32 scales, as the int4 group kernel
 * takes them): Ŵ = fp16(s)·q, so the kernel's weights differ from the simulated form's s·q by at most that
 * rounding (a relative 2^−11).
 *
 * Deliberately not here: SIMD (the per-ISA files), choosing integers (rtn / gptq do, src/compress/quant/),
 * scale search.
 *
 * Entry points: everything in wq.h; pare_wq_isa_for_ (wq_internal.h).
 */
#include "kernels/wq.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/wq_internal.h"

/* ---- kinds ---- */

static const char *const KIND_NAMES[] = {"int8_wo", "int3", "int2", "binary", "ternary", "w4a8"};
static const int KIND_BITS[] = {8, 3, 2, 1, 2, 4};
_Static_assert(sizeof KIND_NAMES / sizeof KIND_NAMES[0] == PARE_WQ_COUNT, "one name per wq kind");
_Static_assert(sizeof KIND_BITS / sizeof KIND_BITS[0] == PARE_WQ_COUNT, "one width per wq kind");

const char *pare_wq_kind_name(pare_wq_kind k) { return (unsigned)k < PARE_WQ_COUNT ? KIND_NAMES[k] : "?"; }
int pare_wq_kind_bits(pare_wq_kind k) { return (unsigned)k < PARE_WQ_COUNT ? KIND_BITS[k] : 0; }

static int is_sign_kind(pare_wq_kind k) { return k == PARE_WQ_BIN || k == PARE_WQ_TER; }
/* the K granule of a kind's layout */
static int64_t k_unit(pare_wq_kind k) { return k == PARE_WQ_I3 || k == PARE_WQ_I2 || k == PARE_WQ_W4A8 ? 64 : 16; }

int64_t pare_wq_row_bytes(const pare_wq_weight *w)
{
    switch (w->kind) {
    case PARE_WQ_I8: return w->K;
    case PARE_WQ_I3: return w->K / 64 * 24;
    case PARE_WQ_I2: return w->K / 4;
    case PARE_WQ_BIN: return w->K / 8;
    case PARE_WQ_TER: return w->K / 4;
    case PARE_WQ_W4A8: return w->K / 2;
    default: return 0;
    }
}

pare_status pare_wq_check(pare_wq_kind kind, int64_t N, int64_t K, int64_t group, int symmetric)
{
    if ((unsigned)kind >= PARE_WQ_COUNT)
        return pare_fail(PARE_EINVAL, "wq: kind=%d: valid kinds: int8_wo, int3, int2, binary, ternary, w4a8", (int)kind);
    const char *kn = KIND_NAMES[kind];
    if (N < 1 || K < 1 || (uint64_t)N > (uint64_t)INT64_MAX / 8 / (uint64_t)K)
        return pare_fail(PARE_EINVAL, "wq %s: N=%lld K=%lld: both must be >= 1 (and N·K must not overflow)", kn,
                         (long long)N, (long long)K);
    int64_t u = k_unit(kind);
    if (K % u)
        return pare_fail(PARE_ESHAPE, "wq %s: K=%lld: must be a multiple of %lld (the layout's chunk)", kn, (long long)K,
                         (long long)u);
    if (is_sign_kind(kind)) {
        if (group != K)
            return pare_fail(PARE_EINVAL, "wq %s: group=%lld: one alpha per row (group = K = %lld)", kn, (long long)group,
                             (long long)K);
        return PARE_OK;
    }
    int64_t gu = kind == PARE_WQ_W4A8 ? 32 : 16;
    if (group < gu || group % gu || K % group)
        return pare_fail(PARE_EINVAL, "wq %s: group=%lld: must be a multiple of %lld dividing K=%lld", kn, (long long)group,
                         (long long)gu, (long long)K);
    if (kind == PARE_WQ_W4A8 && !symmetric)
        return pare_fail(PARE_EINVAL, "wq w4a8: symmetric=false: W4A8 weights are symmetric only");
    if (kind == PARE_WQ_W4A8 && group > 1048576)
        return pare_fail(PARE_EINVAL, "wq w4a8: group=%lld: at most 1048576 (exact int32 group sums)", (long long)group);
    return PARE_OK;
}

/* ---- the layouts, one element at a time ---- */

static void code_set(uint8_t *row, pare_wq_kind kind, int64_t k, int v)
{
    switch (kind) {
    case PARE_WQ_I8: row[k] = (uint8_t)v; break;
    case PARE_WQ_I2:
    case PARE_WQ_I3: {
        int64_t c = k / 64;
        int r = (int)(k % 64), i = r / 16, l = r % 16;
        uint8_t *base = row + c * (kind == PARE_WQ_I2 ? 16 : 24);
        base[l] = (uint8_t)((base[l] & ~(3u << (2 * i))) | ((unsigned)(v & 3) << (2 * i)));
        if (kind == PARE_WQ_I3) {
            uint8_t *hb = base + 16 + 2 * i + l / 8;
            *hb = (uint8_t)((*hb & ~(1u << (l % 8))) | ((unsigned)((v >> 2) & 1) << (l % 8)));
        }
        break;
    }
    case PARE_WQ_BIN: row[k / 8] = (uint8_t)((row[k / 8] & ~(1u << (k % 8))) | ((unsigned)(v & 1) << (k % 8))); break;
    case PARE_WQ_TER: {
        uint8_t *base = row + (k / 16) * 4;
        int l = (int)(k % 16);
        base[l / 8] &= (uint8_t)~(1u << (l % 8));
        base[2 + l / 8] &= (uint8_t)~(1u << (l % 8));
        if (v > 0) base[l / 8] |= (uint8_t)(1u << (l % 8));
        if (v < 0) base[2 + l / 8] |= (uint8_t)(1u << (l % 8));
        break;
    }
    case PARE_WQ_W4A8: {
        int64_t c = k / 64;
        int r = (int)(k % 64);
        uint8_t *b = row + c * 32 + (r % 32);
        *b = r < 32 ? (uint8_t)((*b & 0xf0) | (v & 15)) : (uint8_t)((*b & 0x0f) | ((v & 15) << 4));
        break;
    }
    default: break;
    }
}

static int code_get(const uint8_t *row, pare_wq_kind kind, int64_t k)
{
    switch (kind) {
    case PARE_WQ_I8: return row[k];
    case PARE_WQ_I2:
    case PARE_WQ_I3: {
        int64_t c = k / 64;
        int r = (int)(k % 64), i = r / 16, l = r % 16;
        const uint8_t *base = row + c * (kind == PARE_WQ_I2 ? 16 : 24);
        int v = (base[l] >> (2 * i)) & 3;
        if (kind == PARE_WQ_I3) v |= ((base[16 + 2 * i + l / 8] >> (l % 8)) & 1) << 2;
        return v;
    }
    case PARE_WQ_BIN: return (row[k / 8] >> (k % 8)) & 1;
    case PARE_WQ_TER: {
        const uint8_t *base = row + (k / 16) * 4;
        int l = (int)(k % 16);
        return ((base[l / 8] >> (l % 8)) & 1) - ((base[2 + l / 8] >> (l % 8)) & 1);
    }
    case PARE_WQ_W4A8: {
        int r = (int)(k % 64);
        uint8_t b = row[(k / 64) * 32 + (r % 32)];
        return r < 32 ? b & 15 : b >> 4;
    }
    default: return 0;
    }
}

int pare_wq_code(const pare_wq_weight *w, int64_t n, int64_t k)
{
    return code_get(w->qs + n * pare_wq_row_bytes(w), w->kind, k);
}

/* ---- allocation ---- */

static void *alloc64(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n + 63) / 64 * 64 + 64)) return NULL;
    memset(p, 0, (n + 63) / 64 * 64 + 64); /* the kernels may load up to 64 bytes past a row's end */
    return p;
}

void pare_wq_free(pare_wq_weight *w)
{
    if (!w) return;
    free(w->qs), free(w->scale), free(w->zero);
    w->qs = NULL, w->scale = NULL, w->zero = NULL;
}

static pare_status wq_alloc(pare_wq_weight *w, pare_wq_kind kind, int64_t N, int64_t K, int64_t group, int symmetric)
{
    memset(w, 0, sizeof *w);
    PARE_TRY(pare_wq_check(kind, N, K, group, symmetric));
    w->kind = kind, w->N = N, w->K = K, w->group = group, w->symmetric = symmetric;
    size_t ng = (size_t)(N * (K / group));
    w->qs = alloc64((size_t)(N * pare_wq_row_bytes(w)));
    w->scale = alloc64(ng * sizeof(uint16_t));
    if (!symmetric) w->zero = alloc64(ng);
    if (!w->qs || !w->scale || (!symmetric && !w->zero)) {
        pare_wq_free(w);
        return pare_fail(PARE_ENOMEM, "wq %s: out of memory for N=%lld K=%lld", KIND_NAMES[kind], (long long)N,
                         (long long)K);
    }
    return PARE_OK;
}

size_t pare_wq_bytes(const pare_wq_weight *w)
{
    if (!w || !w->qs) return 0;
    size_t ng = (size_t)(w->N * (w->K / w->group));
    return (size_t)(w->N * pare_wq_row_bytes(w)) + 2 * ng + (w->zero ? ng : 0);
}

double pare_wq_bits_per_weight(const pare_wq_weight *w)
{
    return w && w->qs ? 8.0 * (double)pare_wq_bytes(w) / ((double)w->N * (double)w->K) : 0.0;
}

static pare_status scale_to_f16(uint16_t *h, float s, const char *kn, int64_t n, int64_t g)
{
    if (!isfinite(s) || s < 0.0f)
        return pare_fail(PARE_ENUMERIC, "wq %s: scale of row %lld group %lld is %g: must be finite and >= 0", kn,
                         (long long)n, (long long)g, (double)s);
    *h = pare_f32_to_f16(s);
    if ((*h & 0x7c00u) == 0x7c00u)
        return pare_fail(PARE_ENUMERIC, "wq %s: scale of row %lld group %lld is %g: beyond fp16 (65504)", kn, (long long)n,
                         (long long)g, (double)s);
    return PARE_OK;
}

pare_status pare_wq_from_int(pare_wq_weight *out, pare_wq_kind kind, const int32_t *q, const float *scale,
                             const int32_t *zero, int64_t N, int64_t K, int64_t group)
{
    if (!out) return pare_fail(PARE_EINVAL, "wq from_int: out is NULL");
    memset(out, 0, sizeof *out);
    if (is_sign_kind(kind) || (unsigned)kind >= PARE_WQ_COUNT)
        return pare_fail(PARE_EINVAL, "wq from_int: kind %s: valid: int8_wo, int3, int2, w4a8 (binary / ternary: "
                         "pare_wq_quantize_sign)", pare_wq_kind_name(kind));
    if (!q || !scale) return pare_fail(PARE_EINVAL, "wq from_int: q and scale must not be NULL");
    PARE_TRY(wq_alloc(out, kind, N, K, group, zero == NULL));
    const char *kn = KIND_NAMES[kind];
    const int b = KIND_BITS[kind], mid = wq_mid(kind);
    const int64_t ng = K / group, rb = pare_wq_row_bytes(out);
    const int qlo = zero ? 0 : -(1 << (b - 1)), qhi = zero ? (1 << b) - 1 : (1 << (b - 1)) - 1;
    const int zhi = kind == PARE_WQ_I8 ? 255 : (1 << b) - 1;
    pare_status st = PARE_OK;
    for (int64_t n = 0; st == PARE_OK && n < N; n++)
        for (int64_t g = 0; st == PARE_OK && g < ng; g++) {
            st = scale_to_f16(&out->scale[n * ng + g], scale[n * ng + g], kn, n, g);
            if (st == PARE_OK && zero) {
                int32_t z = zero[n * ng + g];
                if (z < 0 || z > zhi)
                    st = pare_fail(PARE_EINVAL, "wq %s: zero[%lld, %lld] = %d: must be in [0, %d]", kn, (long long)n,
                                   (long long)g, (int)z, zhi);
                else out->zero[n * ng + g] = (uint8_t)z;
            }
            for (int64_t k = g * group; st == PARE_OK && k < (g + 1) * group; k++) {
                int32_t v = q[n * K + k];
                if (v < qlo || v > qhi)
                    st = pare_fail(PARE_EINVAL, "wq %s: q[%lld, %lld] = %d: must be in [%d, %d] (%s)", kn, (long long)n,
                                   (long long)k, (int)v, qlo, qhi, zero ? "asymmetric" : "symmetric");
                else code_set(out->qs + n * rb, kind, k, zero ? v : v + mid);
            }
        }
    if (st != PARE_OK) pare_wq_free(out);
    return st;
}

pare_status pare_wq_quantize_sign(pare_wq_weight *out, pare_wq_kind kind, const float *W, int64_t N, int64_t K)
{
    if (!out) return pare_fail(PARE_EINVAL, "wq quantize_sign: out is NULL");
    memset(out, 0, sizeof *out);
    if (!is_sign_kind(kind))
        return pare_fail(PARE_EINVAL, "wq quantize_sign: kind %s: valid: binary, ternary", pare_wq_kind_name(kind));
    if (!W) return pare_fail(PARE_EINVAL, "wq quantize_sign: W is NULL");
    PARE_TRY(wq_alloc(out, kind, N, K, K, 1));
    const char *kn = KIND_NAMES[kind];
    const int64_t rb = pare_wq_row_bytes(out);
    pare_status st = PARE_OK;
    for (int64_t n = 0; st == PARE_OK && n < N; n++) {
        const float *wr = W + n * K;
        double sum = 0.0;
        for (int64_t k = 0; k < K; k++) {
            if (!isfinite(wr[k])) {
                st = pare_fail(PARE_ENUMERIC, "wq %s: W[%lld, %lld] = %g: weights must be finite", kn, (long long)n,
                               (long long)k, (double)wr[k]);
                break;
            }
            sum += fabs((double)wr[k]);
        }
        if (st != PARE_OK) break;
        double mean = sum / (double)K, alpha = mean;
        uint8_t *row = out->qs + n * rb;
        if (kind == PARE_WQ_BIN) {
            for (int64_t k = 0; k < K; k++) code_set(row, kind, k, wr[k] >= 0.0f);
        } else { /* TWN: Δ = 0.7·mean|w|, α = mean |w| over |w| > Δ (numfmt.c's ternary fake quantization) */
            double thr = 0.7 * mean, s2 = 0.0;
            int64_t cnt = 0;
            for (int64_t k = 0; k < K; k++)
                if (fabs((double)wr[k]) > thr) s2 += fabs((double)wr[k]), cnt++;
            alpha = cnt ? s2 / (double)cnt : 0.0;
            for (int64_t k = 0; k < K; k++)
                code_set(row, kind, k, fabs((double)wr[k]) > thr ? (wr[k] > 0.0f ? 1 : -1) : 0);
        }
        st = scale_to_f16(&out->scale[n], (float)alpha, kn, n, 0);
    }
    if (st != PARE_OK) pare_wq_free(out);
    return st;
}

/* ---- dequantization ---- */

static inline float h2f(uint16_t h) { return pare_f16_to_f32(h); }

/* Ŵ of row n into dst (K), element by element (the reference's weights). */
static void dequant_row(float *dst, const pare_wq_weight *w, int64_t n)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    const uint8_t *row = w->qs + n * pare_wq_row_bytes(w);
    for (int64_t k = 0; k < K; k++) {
        float s = h2f(w->scale[n * ng + k / g]);
        int c = code_get(row, w->kind, k);
        if (w->kind == PARE_WQ_BIN) dst[k] = c ? s : -s;
        else if (w->kind == PARE_WQ_TER) dst[k] = c > 0 ? s : c < 0 ? -s : 0.0f;
        else dst[k] = s * (float)(c - (w->zero ? w->zero[n * ng + k / g] : wq_mid(w->kind)));
    }
}

void pare_wq_dequantize(float *W, const pare_wq_weight *w)
{
    for (int64_t n = 0; n < w->N; n++) dequant_row(W + n * w->K, w, n);
}

/* ---- W4A8 activations: per token, symmetric int8, round half to even (as int8_group's) ---- */

/* Returns 1 if row x holds NaN/Inf. One body, compiled twice: plain (the reference, the scalar kernel) and, on
 * x86, for AVX2 (nearbyintf becomes one vroundss instead of a libm call; the same results). */
#define WQ_ACT_ROW_BODY                                                                                              \
    float amax = 0.0f;                                                                                               \
    for (int64_t k = 0; k < K; k++) {                                                                                \
        if (!isfinite(x[k])) return 1;                                                                               \
        amax = fmaxf(amax, fabsf(x[k]));                                                                             \
    }                                                                                                                \
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;                                                                  \
    if (!isfinite(inv)) inv = 0.0f;                                                                                  \
    *sx = amax / 127.0f;                                                                                             \
    for (int64_t k = 0; k < K; k++) {                                                                                \
        float r = nearbyintf(x[k] * inv);                                                                            \
        q[k] = (int8_t)(r < -127.0f ? -127 : r > 127.0f ? 127 : (int)r);                                             \
    }                                                                                                                \
    for (int64_t j = 0; j < K / g; j++) {                                                                            \
        int32_t s = 0;                                                                                               \
        for (int64_t k = j * g; k < (j + 1) * g; k++) s += q[k];                                                     \
        xs[j] = s;                                                                                                   \
    }                                                                                                                \
    return 0;

static int act_row(int8_t *q, float *sx, int32_t *xs, const float *x, int64_t K, int64_t g) { WQ_ACT_ROW_BODY }

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static int act_row_avx2(int8_t *q, float *sx, int32_t *xs, const float *x, int64_t K,
                                                            int64_t g)
{
    WQ_ACT_ROW_BODY
}
#else
#define act_row_avx2 act_row
#endif
#undef WQ_ACT_ROW_BODY

/* ---- references ---- */

pare_status pare_wq_w4a8_sums_ref(int32_t *S, float *sx, const float *x, const pare_wq_weight *w, int64_t M)
{
    if (!w || !w->qs || w->kind != PARE_WQ_W4A8) return pare_fail(PARE_EINVAL, "wq w4a8 sums: the weight is not w4a8");
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g, rb = pare_wq_row_bytes(w);
    int8_t *q = malloc((size_t)K);
    int32_t *xs = malloc(sizeof *xs * (size_t)ng);
    if (!q || !xs) {
        free(q), free(xs);
        return pare_fail(PARE_ENOMEM, "wq w4a8 sums: out of memory");
    }
    pare_status st = PARE_OK;
    for (int64_t m = 0; m < M && st == PARE_OK; m++) {
        if (act_row(q, &sx[m], xs, x + m * K, K, g)) {
            st = pare_fail(PARE_ENUMERIC, "wq w4a8 sums: row %lld of x holds NaN/Inf", (long long)m);
            break;
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < ng; j++) {
                int32_t s = 0;
                for (int64_t k = j * g; k < (j + 1) * g; k++) s += (code_get(w->qs + n * rb, w->kind, k) - 8) * q[k];
                S[(m * N + n) * ng + j] = s;
            }
    }
    free(q), free(xs);
    return st;
}

/* y of one token from the group sums: the arithmetic every W4A8 kernel repeats exactly. */
static inline float w4a8_out(const int32_t *Srow, const uint16_t *sc, int64_t ng, float sx, float b)
{
    float acc = 0.0f;
    for (int64_t j = 0; j < ng; j++) acc = fmaf(h2f(sc[j]), (float)Srow[j], acc);
    return fmaf(acc, sx, b);
}

void pare_linear_wq_ref(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K;
    if (w->kind == PARE_WQ_W4A8) {
        const int64_t ng = K / w->group;
        int32_t *S = malloc(sizeof *S * (size_t)(N * ng));
        float sx;
        for (int64_t m = 0; m < M; m++) {
            if (!S || pare_wq_w4a8_sums_ref(S, &sx, x + m * K, w, 1) != PARE_OK) {
                for (int64_t n = 0; n < N; n++) y[m * N + n] = NAN;
                continue;
            }
            for (int64_t n = 0; n < N; n++)
                y[m * N + n] = w4a8_out(S + n * ng, w->scale + n * ng, ng, sx, bias ? bias[n] : 0.0f);
        }
        free(S);
        return;
    }
    float *row = malloc(sizeof *row * (size_t)K);
    if (!row) {
        for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        dequant_row(row, w, n);
        for (int64_t m = 0; m < M; m++) {
            double acc = bias ? bias[n] : 0.0;
            for (int64_t k = 0; k < K; k++) acc += (double)x[m * K + k] * (double)row[k];
            y[m * N + n] = (float)acc;
        }
    }
    free(row);
}

/* ---- scalar kernels ---- */

static void gemv_scalar(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K;
#pragma omp parallel if (M * N * K >= WQ_PAR_MIN_WORK)
    {
        float *row = malloc(sizeof *row * (size_t)K);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            if (!row) {
                for (int64_t m = 0; m < M; m++) y[m * N + n] = NAN;
                continue;
            }
            dequant_row(row, w, n);
            for (int64_t m = 0; m < M; m++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < K; k++) acc += x[m * K + k] * row[k];
                y[m * N + n] = acc + (bias ? bias[n] : 0.0f);
            }
        }
        free(row);
    }
}

static void panel_scalar(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) dequant_row(dst + r * w->K, w, n0 + r);
}

static void w4a8_scalar(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g, rb = pare_wq_row_bytes(w);
#pragma omp parallel for schedule(static) if (M * N * K >= WQ_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++) {
        const uint8_t *row = w->qs + n * rb;
        for (int64_t m = 0; m < M; m++) {
            const int8_t *q = a->qx + m * K;
            float acc = 0.0f;
            for (int64_t j = 0; j < ng; j++) {
                int32_t s = 0;
                for (int64_t k = j * g; k < (j + 1) * g; k++) s += code_get(row, PARE_WQ_W4A8, k) * q[k];
                s -= 8 * a->xs[m * ng + j];
                acc = fmaf(h2f(w->scale[n * ng + j]), (float)s, acc);
            }
            y[m * N + n] = fmaf(acc, a->sx[m], bias ? bias[n] : 0.0f);
        }
    }
}

/* ---- instruction set ---- */

static int g_isa_cap = WQ_ISA_AVX512;

static wq_isa cpu_isa(int need_vnni) { return (wq_isa)pare_cpu_tier(need_vnni); }

pare_status pare_wq_set_isa(const char *isa) { return pare_cpu_tier_cap(&g_isa_cap, isa, "wq"); }

wq_isa pare_wq_isa_for_(const pare_wq_weight *w)
{
    wq_isa best = cpu_isa(w->kind == PARE_WQ_W4A8);
    wq_isa cap = (wq_isa)__atomic_load_n(&g_isa_cap, __ATOMIC_RELAXED);
    return best < cap ? best : cap;
}

const char *pare_wq_impl(const pare_wq_weight *w, int64_t M)
{
    if (!w || !w->qs) return "none";
    wq_isa isa = pare_wq_isa_for_(w);
    if (w->kind == PARE_WQ_W4A8) return isa == WQ_ISA_AVX512 ? "w4a8-vnni512" : isa == WQ_ISA_AVX2 ? "w4a8-avx2" : "scalar";
    int pan = M > PARE_WQ_GEMV_MAX_M;
    if (isa == WQ_ISA_AVX512) return pan ? "wq-avx512+sgemm" : "wq-avx512";
    if (isa == WQ_ISA_AVX2) return pan ? "wq-avx2+sgemm" : "wq-avx2";
    return pan ? "scalar+sgemm" : "scalar";
}

/* ---- workspace ---- */

static int64_t panel_rows(int64_t K)
{
    int64_t p = ((int64_t)1572864 / K) / 16 * 16; /* ~6 MB of f32 per panel at most, as qblock's int4 panels */
    return p < 16 ? 16 : p > 384 ? 384 : p;
}

static size_t al64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t pare_wq_workspace(const pare_wq_weight *w, int64_t M)
{
    if (!w || !w->qs || M <= 0) return 0;
    if (w->kind == PARE_WQ_W4A8)
        return al64((size_t)(M * w->K)) + al64(sizeof(float) * (size_t)M) + al64(sizeof(int32_t) * (size_t)(M * wq_ngroups(w)));
    if (M <= PARE_WQ_GEMV_MAX_M) return 0;
    return pare_sgemm_panels_workspace(w->K, panel_rows(w->K));
}

/* ---- the Linear ---- */

/* pare_sgemm_panels' decoder: this ISA's panel function on this weight */
typedef struct wq_panels {
    void (*panel)(float *, const pare_wq_weight *, int64_t, int64_t);
    const pare_wq_weight *w;
} wq_panels;

static void wq_decode(float *dst, const void *ctx, int64_t n0, int64_t rows)
{
    const wq_panels *c = ctx;
    c->panel(dst, c->w, n0, rows);
}

static void panels(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M, void *ws, wq_isa isa)
{
    wq_panels c = {isa == WQ_ISA_AVX512 ? pare_wq_panel_avx512_ : isa == WQ_ISA_AVX2 ? pare_wq_panel_avx2_ : panel_scalar, w};
    pare_sgemm_panels(y, x, bias, M, w->N, w->K, panel_rows(w->K), wq_decode, &c, ws);
}

pare_status pare_linear_wq(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M,
                           void *workspace)
{
    if (!w || !w->qs || !w->scale || (unsigned)w->kind >= PARE_WQ_COUNT)
        return pare_fail(PARE_EINVAL, "linear wq: weight is not quantized");
    if (M < 0) return pare_fail(PARE_EINVAL, "linear wq: M=%lld: must be >= 0", (long long)M);
    if (M == 0) return PARE_OK;
    if (!y || !x) return pare_fail(PARE_EINVAL, "linear wq: NULL input or output");
    size_t need = pare_wq_workspace(w, M);
    if (need && (!workspace || (uintptr_t)workspace % 64))
        return pare_fail(PARE_EINVAL, "linear wq %s: workspace is NULL or not 64-byte aligned (need pare_wq_workspace(w, "
                         "M=%lld) = %zu bytes)", KIND_NAMES[w->kind], (long long)M, need);
    wq_isa isa = pare_wq_isa_for_(w);
    if (w->kind != PARE_WQ_W4A8) {
        if (M > PARE_WQ_GEMV_MAX_M) panels(y, x, w, bias, M, workspace, isa);
        else if (isa == WQ_ISA_AVX512) pare_wq_gemv_avx512_(y, x, w, bias, M);
        else if (isa == WQ_ISA_AVX2) pare_wq_gemv_avx2_(y, x, w, bias, M);
        else gemv_scalar(y, x, w, bias, M);
        return PARE_OK;
    }
    const int64_t K = w->K, ng = wq_ngroups(w);
    char *p = workspace;
    wq_act a = {(int8_t *)p, (float *)(void *)(p + al64((size_t)(M * K))), NULL};
    a.xs = (int32_t *)(void *)(p + al64((size_t)(M * K)) + al64(sizeof(float) * (size_t)M));
    int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (M * K >= WQ_PAR_MIN_WORK / 4 && M > 1)
    for (int64_t m = 0; m < M; m++)
        if ((isa == WQ_ISA_SCALAR ? act_row : act_row_avx2)(a.qx + m * K, a.sx + m, a.xs + m * ng, x + m * K, K, w->group) &&
            m < bad)
            bad = m;
    if (bad < M) {
        int64_t k = 0;
        while (k < K && isfinite(x[bad * K + k])) k++;
        return pare_fail(PARE_ENUMERIC, "linear wq w4a8: x[%lld, %lld] = %g: activations must be finite to be quantized",
                         (long long)bad, (long long)k, (double)x[bad * K + k]);
    }
    if (isa == WQ_ISA_AVX512) pare_wq_w4a8_vnni_(y, &a, w, bias, M);
    else if (isa == WQ_ISA_AVX2) pare_wq_w4a8_avx2_(y, &a, w, bias, M);
    else w4a8_scalar(y, &a, w, bias, M);
    return PARE_OK;
}
