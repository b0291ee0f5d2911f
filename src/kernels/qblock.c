/* qblock.c — block-quantized weights (int4 / int8 group-wise, llama.cpp Q8_0 / Q4_0 / Q4_1): quantization,
 * storage, dequantization, the plain-C references, the scalar kernels, and the dispatch of pare_linear_qb
 * to the AVX-512 / AVX2 kernels (qblock_avx512.c, qblock_avx2.c). The formats are described in qblock.h.
 * The ggml-block kinds (Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) live in qblock_k.c; this file dispatches to it.
 *
 * Rounding: round half to even (nearbyintf) for int4_group / int8_group weights and int8_group
 * activations. The Q kinds deliberately reproduce llama.cpp's reference quantizers (ggml-quants.c:
 * quantize_row_q8_0_ref, _q4_0_ref, _q4_1_ref for weights, _q8_0_ref / _q8_1_ref for activations): roundf
 * (half away from zero), x·(1/d) rather than x/d, and Q4's "+8.5 / +0.5 then truncate". One deliberate
 * deviation: when 1/d overflows (a block whose absmax is below ~1e-36) llama.cpp would multiply by Inf; here
 * such a block quantizes to 0.
 *
 * Scales of int4_group / int8_group weights are rounded UP to fp16 before the integers are chosen, so
 * |w − ŵ| <= s/2 holds with the stored scale (rounding to nearest could leave the largest element just
 * outside the grid). Asymmetric int4 spans [min(w,0), max(w,0)], so 0 is on the grid and the zero point
 * lies in [0,15].
 *
 * Deliberately not here: SIMD kernels (the per-ISA files), error-minimising scale search for the 32-blocks
 * (llama.cpp's "imatrix" / rmse variants), the k-quants and Q5_* (qblock_k.c).
 *
 * Entry points: everything in qblock.h; pare_qb_isa_for_, pare_qb_act_layout_, pare_qb_act_canon_,
 * pare_qb_i4g_panel_rows_ (qblock_internal.h).
 */
#include "kernels/qblock.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/qblock_internal.h"

/* ---- kinds ---- */

static const char *const KIND_NAMES[] = {"int4_group", "int8_group", "q8_0", "q4_0", "q4_1",
                                         "q5_0",       "q5_1",       "q4_k", "q5_k", "q6_k"};
_Static_assert(sizeof KIND_NAMES / sizeof KIND_NAMES[0] == PARE_QB_COUNT, "one name per qblock kind");
#define KIND_LIST "int4_group, int8_group, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k"

const char *pare_qb_kind_name(pare_qb_kind k) { return (unsigned)k < PARE_QB_COUNT ? KIND_NAMES[k] : "?"; }

pare_status pare_qb_kind_parse(const char *s, pare_qb_kind *k)
{
    for (int i = 0; s && i < PARE_QB_COUNT; i++)
        if (!strcmp(s, KIND_NAMES[i])) {
            if (k) *k = (pare_qb_kind)i;
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "unknown quantized block kind '%s' (valid: %s)", s ? s : "(null)", KIND_LIST);
}

static int is_q_kind(pare_qb_kind k) { return k == PARE_QB_Q8_0 || k == PARE_QB_Q4_0 || k == PARE_QB_Q4_1; }

/* ---- small helpers ---- */

/* Nibble of element k of a Q4_0 / Q4_1 row (llama.cpp layout: run of 32, byte j = elements j | j+16 << 4). */
static inline int nib_get(const uint8_t *row, int64_t k)
{
    uint8_t b = row[(k >> 5) * 16 + (k & 15)];
    return (k & 16) ? b >> 4 : b & 15;
}

/* int4_group's layout (qblock.h): 128-element chunks, element 16i + l of a chunk in byte 4l + i/2 (low nibble
 * for even i); the last K mod 128 elements in llama.cpp's 32-runs. */
static inline int64_t i4_byte(int64_t K, int64_t k, int *hi)
{
    const int64_t kc = K / 128 * 128;
    if (k < kc) {
        int i = (int)((k & 127) >> 4), l = (int)(k & 15);
        *hi = i & 1;
        return (k >> 7) * 64 + 4 * l + (i >> 1);
    }
    int64_t t = k - kc;
    *hi = (t & 16) != 0;
    return kc / 2 + (t >> 5) * 16 + (t & 15);
}

static inline int i4_get(const uint8_t *row, int64_t K, int64_t k)
{
    int hi;
    uint8_t b = row[i4_byte(K, k, &hi)];
    return hi ? b >> 4 : b & 15;
}

static inline void i4_set(uint8_t *row, int64_t K, int64_t k, int v)
{
    int hi;
    uint8_t *b = &row[i4_byte(K, k, &hi)];
    *b = hi ? (uint8_t)((*b & 0x0f) | (v << 4)) : (uint8_t)((*b & 0xf0) | (v & 15));
}

static inline float h2f(uint16_t h) { return pare_f16_to_f32(h); }

/* Smallest fp16 >= s (s >= 0, finite); 0x7c00 (Inf) when s > 65504. */
static uint16_t f16_round_up(float s)
{
    uint16_t h = pare_f32_to_f16(s);
    if (h < 0x7c00u && h2f(h) < s) h++;
    return h;
}

static inline int is_f16_finite(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

static inline uint32_t abs_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

static inline float bits_to_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- shapes and allocation ---- */

static pare_status check_shape(const char *what, pare_qb_kind kind, int64_t N, int64_t K, int64_t *group)
{
    if ((unsigned)kind >= PARE_QB_COUNT)
        return pare_fail(PARE_EINVAL, "%s: kind=%d: valid kinds: %s", what, (int)kind, KIND_LIST);
    if (N < 1 || K < 1)
        return pare_fail(PARE_EINVAL, "%s %s: N=%lld K=%lld: both must be >= 1", what, KIND_NAMES[kind],
                         (long long)N, (long long)K);
    if ((uint64_t)N > (uint64_t)INT64_MAX / 8 / (uint64_t)K)
        return pare_fail(PARE_EINVAL, "%s %s: N·K overflows (N=%lld K=%lld)", what, KIND_NAMES[kind], (long long)N,
                         (long long)K);
    if (pare_qbk_is_(kind)) {
        int qb = pare_qb_ggml_block(kind, NULL);
        *group = qb;
        if (K % qb)
            return pare_fail(PARE_ESHAPE, "%s %s: K=%lld: must be a multiple of the block size %d", what,
                             KIND_NAMES[kind], (long long)K, qb);
        return PARE_OK;
    }
    if (is_q_kind(kind)) {
        *group = PARE_QB_QK;
        if (K % PARE_QB_QK)
            return pare_fail(PARE_ESHAPE, "%s %s: K=%lld: must be a multiple of the block size 32", what,
                             KIND_NAMES[kind], (long long)K);
        return PARE_OK;
    }
    int64_t g = *group;
    if (g < 32 || g % 32)
        return pare_fail(PARE_EINVAL, "%s %s: group=%lld: must be a multiple of 32 (32, 64, 128, ...) dividing K",
                         what, KIND_NAMES[kind], (long long)g);
    if (K % g)
        return pare_fail(PARE_ESHAPE, "%s %s: group=%lld does not divide K=%lld (valid: multiples of 32 dividing K)",
                         what, KIND_NAMES[kind], (long long)g, (long long)K);
    if (kind == PARE_QB_I8G && g > 131071)
        return pare_fail(PARE_EINVAL, "%s int8_group: group=%lld: at most 131071 (exact int32 group sums)", what,
                         (long long)g);
    return PARE_OK;
}

static void *alloc64(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, qb_align64(n ? n : 1))) return NULL;
    return p;
}

/* Allocates the arrays of w (zeroed); shape already checked. */
static pare_status qb_alloc(pare_qb_weight *w, const char *what, pare_qb_kind kind, int64_t N, int64_t K,
                            int64_t group, int symmetric)
{
    memset(w, 0, sizeof *w);
    w->kind = kind, w->N = N, w->K = K, w->group = group, w->symmetric = symmetric;
    size_t ng = (size_t)(K / group);
    size_t qbytes = (size_t)N * (size_t)qb_row_bytes(w);
    w->qs = alloc64(qbytes);
    if (!pare_qbk_is_(kind)) w->scale = alloc64((size_t)N * ng * sizeof(uint16_t));
    if (kind == PARE_QB_Q4_1) w->min = alloc64((size_t)N * ng * sizeof(uint16_t));
    if (kind == PARE_QB_I4G && !symmetric) w->zero = alloc64((size_t)N * ng);
    if (!w->qs || (!pare_qbk_is_(kind) && !w->scale) || (kind == PARE_QB_Q4_1 && !w->min) || (kind == PARE_QB_I4G && !symmetric && !w->zero)) {
        pare_qb_free(w);
        return pare_fail(PARE_ENOMEM, "%s %s: out of memory for N=%lld K=%lld", what, KIND_NAMES[kind],
                         (long long)N, (long long)K);
    }
    memset(w->qs, 0, qbytes);
    return PARE_OK;
}

void pare_qb_free(pare_qb_weight *w)
{
    if (!w) return;
    free(w->qs);
    free(w->scale);
    free(w->min);
    free(w->zero);
    w->qs = NULL;
    w->scale = NULL;
    w->min = NULL;
    w->zero = NULL;
}

size_t pare_qb_bytes(const pare_qb_weight *w)
{
    if (!w || !w->qs) return 0;
    if (pare_qbk_is_(w->kind)) return (size_t)w->N * (size_t)qb_row_bytes(w);
    size_t ng = (size_t)(w->N * (w->K / w->group));
    size_t b = (size_t)w->N * (size_t)qb_row_bytes(w) + 2 * ng;
    if (w->min) b += 2 * ng;
    if (w->zero) b += ng;
    return b;
}

double pare_qb_bits_per_weight(const pare_qb_weight *w)
{
    if (!w || !w->qs) return 0.0;
    return 8.0 * (double)pare_qb_bytes(w) / ((double)w->N * (double)w->K);
}

/* ---- quantization, one row each ----
 * Each returns -1 on success, else the group / block whose scale does not fit fp16. */

static int64_t quant_row_i4g(pare_qb_weight *w, int64_t n, const float *wr)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    uint8_t *qr = w->qs + n * (K / 2);
    for (int64_t gi = 0; gi < ng; gi++) {
        const float *v = wr + gi * g;
        uint16_t h;
        int z = 8;
        if (w->symmetric) {
            float amax = 0.0f;
            for (int64_t j = 0; j < g; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
            h = f16_round_up(amax / 7.0f);
        } else {
            float lo = 0.0f, hi = 0.0f;
            for (int64_t j = 0; j < g; j++) {
                lo = v[j] < lo ? v[j] : lo;
                hi = v[j] > hi ? v[j] : hi;
            }
            h = f16_round_up((hi - lo) / 15.0f);
            z = 0;
            if (h && is_f16_finite(h)) {
                float zf = nearbyintf(-lo / h2f(h));
                z = zf < 0.0f ? 0 : zf > 15.0f ? 15 : (int)zf;
            }
            w->zero[n * ng + gi] = (uint8_t)z;
        }
        if (!is_f16_finite(h)) return gi;
        w->scale[n * ng + gi] = h;
        float s = h2f(h);
        int lo = w->symmetric ? 1 : 0; /* symmetric: q in [-7, 7], nibble q + 8 in [1, 15] */
        for (int64_t j = 0; j < g; j++) {
            int u = z;
            if (s > 0.0f) {
                float r = nearbyintf(v[j] / s) + (float)z;
                u = r < (float)lo ? lo : r > 15.0f ? 15 : (int)r;
            }
            i4_set(qr, K, gi * g + j, u);
        }
    }
    return -1;
}

static int64_t quant_row_i8g(pare_qb_weight *w, int64_t n, const float *wr)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    int8_t *qr = (int8_t *)w->qs + n * K;
    for (int64_t gi = 0; gi < ng; gi++) {
        const float *v = wr + gi * g;
        float amax = 0.0f;
        for (int64_t j = 0; j < g; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
        uint16_t h = f16_round_up(amax / 127.0f);
        if (!is_f16_finite(h)) return gi;
        w->scale[n * ng + gi] = h;
        float s = h2f(h);
        for (int64_t j = 0; j < g; j++) {
            float r = s > 0.0f ? nearbyintf(v[j] / s) : 0.0f;
            qr[gi * g + j] = (int8_t)(r < -127.0f ? -127 : r > 127.0f ? 127 : (int)r);
        }
    }
    return -1;
}

#define LLAMA_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LLAMA_MIN(a, b) ((a) < (b) ? (a) : (b))

/* llama.cpp quantize_row_q8_0_ref, one row. */
static int64_t quant_row_q8_0(pare_qb_weight *w, int64_t n, const float *wr)
{
    const int64_t nb = w->K / 32;
    int8_t *qr = (int8_t *)w->qs + n * w->K;
    for (int64_t b = 0; b < nb; b++) {
        const float *v = wr + b * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = LLAMA_MAX(amax, fabsf(v[j]));
        const float d = amax / ((1 << 7) - 1);
        float id = d ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f; /* pare: tiny blocks quantize to 0 (llama.cpp would multiply by Inf) */
        uint16_t h = pare_f32_to_f16(d);
        if (!is_f16_finite(h)) return b;
        w->scale[n * nb + b] = h;
        for (int j = 0; j < 32; j++) qr[b * 32 + j] = (int8_t)roundf(v[j] * id);
    }
    return -1;
}

/* llama.cpp quantize_row_q4_0_ref, one row. */
static int64_t quant_row_q4_0(pare_qb_weight *w, int64_t n, const float *wr)
{
    const int64_t nb = w->K / 32;
    uint8_t *qr = w->qs + n * (w->K / 2);
    for (int64_t b = 0; b < nb; b++) {
        const float *v = wr + b * 32;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(v[j])) {
                amax = fabsf(v[j]);
                max = v[j];
            }
        const float d = max / -8;
        float id = d ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        uint16_t h = pare_f32_to_f16(d);
        if (!is_f16_finite(h)) return b;
        w->scale[n * nb + b] = h;
        for (int j = 0; j < 16; j++) {
            const float x0 = v[j] * id, x1 = v[16 + j] * id;
            const uint8_t xi0 = (uint8_t)LLAMA_MIN(15, (int8_t)(x0 + 8.5f));
            const uint8_t xi1 = (uint8_t)LLAMA_MIN(15, (int8_t)(x1 + 8.5f));
            qr[b * 16 + j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
    return -1;
}

/* llama.cpp quantize_row_q4_1_ref, one row. */
static int64_t quant_row_q4_1(pare_qb_weight *w, int64_t n, const float *wr)
{
    const int64_t nb = w->K / 32;
    uint8_t *qr = w->qs + n * (w->K / 2);
    for (int64_t b = 0; b < nb; b++) {
        const float *v = wr + b * 32;
        float min = 3.402823466e+38f, max = -3.402823466e+38f;
        for (int j = 0; j < 32; j++) {
            if (v[j] < min) min = v[j];
            if (v[j] > max) max = v[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        float id = d ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        uint16_t hd = pare_f32_to_f16(d), hm = pare_f32_to_f16(min);
        if (!is_f16_finite(hd) || !is_f16_finite(hm)) return b;
        w->scale[n * nb + b] = hd;
        w->min[n * nb + b] = hm;
        for (int j = 0; j < 16; j++) {
            const float x0 = (v[j] - min) * id, x1 = (v[16 + j] - min) * id;
            const uint8_t xi0 = (uint8_t)LLAMA_MIN(15, (int8_t)(x0 + 0.5f));
            const uint8_t xi1 = (uint8_t)LLAMA_MIN(15, (int8_t)(x1 + 0.5f));
            qr[b * 16 + j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
    return -1;
}

/* The ggml-block kinds (qblock_k.c). */
static int64_t quant_row_ggml(pare_qb_weight *w, int64_t n, const float *wr)
{
    return pare_qbk_quant_row_(w->kind, w->qs + n * qb_row_bytes(w), wr, w->K);
}

pare_status pare_qb_quantize(pare_qb_weight *out, pare_qb_kind kind, const float *W, int64_t N, int64_t K,
                             int64_t group, int symmetric)
{
    static const char what[] = "qblock quantize";
    if (!out) return pare_fail(PARE_EINVAL, "%s: out is NULL", what);
    memset(out, 0, sizeof *out);
    PARE_TRY(check_shape(what, kind, N, K, &group));
    if (!W) return pare_fail(PARE_EINVAL, "%s: W is NULL", what);
    if (kind == PARE_QB_I8G && !symmetric)
        return pare_fail(PARE_EINVAL, "%s int8_group: symmetric=0: int8_group is symmetric only (valid: 1)", what);
    if (kind == PARE_QB_Q4_1 || kind == PARE_QB_Q5_1 || kind == PARE_QB_Q4_K || kind == PARE_QB_Q5_K) symmetric = 0;
    else if (kind != PARE_QB_I4G) symmetric = 1;
    else symmetric = symmetric != 0;

    /* NaN/Inf first, so the message names the element */
    int64_t bad = N * K;
#pragma omp parallel for schedule(static) reduction(min : bad) if (N * K >= QB_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            if (!isfinite(W[n * K + k])) {
                if (n * K + k < bad) bad = n * K + k;
                break;
            }
    if (bad < N * K)
        return pare_fail(PARE_ENUMERIC, "%s %s: W holds %s at row %lld, column %lld", what, KIND_NAMES[kind],
                         isnan(W[bad]) ? "NaN" : "Inf", (long long)(bad / K), (long long)(bad % K));

    pare_qb_weight w;
    PARE_TRY(qb_alloc(&w, what, kind, N, K, group, symmetric));
    int64_t (*row_fn)(pare_qb_weight *, int64_t, const float *) =
        kind == PARE_QB_I4G    ? quant_row_i4g
        : kind == PARE_QB_I8G  ? quant_row_i8g
        : kind == PARE_QB_Q8_0 ? quant_row_q8_0
        : kind == PARE_QB_Q4_0 ? quant_row_q4_0
        : kind == PARE_QB_Q4_1 ? quant_row_q4_1
                               : quant_row_ggml;
    const int64_t ng = K / group;
    int64_t badg = N * ng;
#pragma omp parallel for schedule(static) reduction(min : badg) if (N * K >= QB_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++) {
        int64_t gi = row_fn(&w, n, W + n * K);
        if (gi >= 0 && n * ng + gi < badg) badg = n * ng + gi;
    }
    if (badg < N * ng) {
        pare_qb_free(&w);
        return pare_fail(PARE_ENUMERIC, "%s %s: row %lld, %s %lld (columns %lld-%lld): the scale does not fit fp16 "
                         "(values too large)", what, KIND_NAMES[kind], (long long)(badg / ng),
                         is_q_kind(kind) || pare_qbk_is_(kind) ? "block" : "group", (long long)(badg % ng),
                         (long long)(badg % ng * group), (long long)(badg % ng * group + group - 1));
    }
    *out = w;
    return PARE_OK;
}

pare_status pare_qb_from_int(pare_qb_weight *out, pare_qb_kind kind, const int32_t *q, const float *scale,
                             const int32_t *zero, int64_t N, int64_t K, int64_t group)
{
    static const char what[] = "qblock from_int";
    if (!out) return pare_fail(PARE_EINVAL, "%s: out is NULL", what);
    memset(out, 0, sizeof *out);
    if (kind != PARE_QB_I4G && kind != PARE_QB_I8G)
        return pare_fail(PARE_EINVAL, "%s: kind=%s: only int4_group and int8_group take integers", what,
                         pare_qb_kind_name(kind));
    PARE_TRY(check_shape(what, kind, N, K, &group));
    if (!q || !scale) return pare_fail(PARE_EINVAL, "%s: q or scale is NULL", what);
    if (kind == PARE_QB_I8G && zero)
        return pare_fail(PARE_EINVAL, "%s int8_group: zero must be NULL (int8_group is symmetric)", what);
    const int symmetric = zero == NULL;
    const int64_t ng = K / group;
    const int qlo = kind == PARE_QB_I8G ? -127
                    : symmetric         ? -8
                                        : 0,
              qhi = kind == PARE_QB_I8G ? 127
                    : symmetric         ? 7
                                        : 15;
    for (int64_t i = 0; i < N * K; i++)
        if (q[i] < qlo || q[i] > qhi)
            return pare_fail(PARE_EINVAL, "%s %s: q[%lld][%lld]=%d: must be in [%d, %d]%s", what, KIND_NAMES[kind],
                             (long long)(i / K), (long long)(i % K), (int)q[i], qlo, qhi,
                             kind == PARE_QB_I4G ? (symmetric ? " (symmetric: zero is NULL)" : " (with zero points)")
                                                 : "");
    for (int64_t i = 0; i < N * ng; i++) {
        if (!isfinite(scale[i]) || !is_f16_finite(pare_f32_to_f16(scale[i])))
            return pare_fail(PARE_ENUMERIC, "%s %s: scale[%lld][%lld]=%g: must be finite and fit fp16 (|s| <= 65504)",
                             what, KIND_NAMES[kind], (long long)(i / ng), (long long)(i % ng), (double)scale[i]);
        if (zero && (zero[i] < 0 || zero[i] > 255))
            return pare_fail(PARE_EINVAL, "%s int4_group: zero[%lld][%lld]=%d: must be in [0, 255]", what,
                             (long long)(i / ng), (long long)(i % ng), (int)zero[i]);
    }
    pare_qb_weight w;
    PARE_TRY(qb_alloc(&w, what, kind, N, K, group, symmetric));
    for (int64_t i = 0; i < N * ng; i++) {
        w.scale[i] = pare_f32_to_f16(scale[i]);
        if (zero) w.zero[i] = (uint8_t)zero[i];
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int32_t v = q[n * K + k];
            if (kind == PARE_QB_I8G) ((int8_t *)w.qs)[n * K + k] = (int8_t)v;
            else i4_set(w.qs + n * (K / 2), K, k, symmetric ? v + 8 : v);
        }
    *out = w;
    return PARE_OK;
}

/* ---- dequantization ---- */

/* Row n of Ŵ into dst (K). The formulas every kernel reproduces exactly (s·(u − o) and d·q are exact in f32). */
static void dequant_row(float *dst, const pare_qb_weight *w, int64_t n)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    if (pare_qbk_is_(w->kind)) {
        pare_qbk_dequant_row_(dst, w->kind, w->qs + n * qb_row_bytes(w), K);
        return;
    }
    const uint16_t *sc = w->scale + n * ng;
    switch (w->kind) {
    case PARE_QB_I4G: {
        const uint8_t *qr = w->qs + n * (K / 2);
        for (int64_t k = 0; k < K; k++) {
            int o = w->zero ? w->zero[n * ng + k / g] : 8;
            dst[k] = h2f(sc[k / g]) * (float)(i4_get(qr, K, k) - o);
        }
        break;
    }
    case PARE_QB_I8G:
    case PARE_QB_Q8_0: {
        const int8_t *qr = (const int8_t *)w->qs + n * K;
        for (int64_t k = 0; k < K; k++) dst[k] = h2f(sc[k / g]) * (float)qr[k];
        break;
    }
    case PARE_QB_Q4_0: {
        const uint8_t *qr = w->qs + n * (K / 2);
        for (int64_t k = 0; k < K; k++) dst[k] = h2f(sc[k / 32]) * (float)(nib_get(qr, k) - 8);
        break;
    }
    case PARE_QB_Q4_1: {
        const uint8_t *qr = w->qs + n * (K / 2);
        const uint16_t *mn = w->min + n * ng;
        for (int64_t k = 0; k < K; k++) dst[k] = (float)nib_get(qr, k) * h2f(sc[k / 32]) + h2f(mn[k / 32]);
        break;
    }
    default: break;
    }
}

void pare_qb_dequantize(float *W, const pare_qb_weight *w)
{
    if (!W || !w || !w->qs) return;
#pragma omp parallel for schedule(static) if (w->N * w->K >= QB_PAR_MIN_WORK)
    for (int64_t n = 0; n < w->N; n++) dequant_row(W + n * w->K, w, n);
}

pare_status pare_qb_to_ggml(void *dst, size_t dst_bytes, const pare_qb_weight *w)
{
    if (!w || !w->qs || !(is_q_kind(w->kind) || pare_qbk_is_(w->kind)))
        return pare_fail(PARE_EINVAL, "qblock to_ggml: weight is %s (valid: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, "
                         "q6_k)", w && w->qs ? pare_qb_kind_name(w->kind) : "not quantized");
    size_t need = pare_qb_bytes(w);
    if (!dst || dst_bytes < need)
        return pare_fail(PARE_EINVAL, "qblock to_ggml: dst holds %zu bytes, need %zu", dst ? dst_bytes : 0, need);
    if (pare_qbk_is_(w->kind)) {
        memcpy(dst, w->qs, need);
        return PARE_OK;
    }
    const int64_t nb = w->K / 32, qb = w->kind == PARE_QB_Q8_0 ? 32 : 16;
    uint8_t *p = dst;
    for (int64_t n = 0; n < w->N; n++)
        for (int64_t b = 0; b < nb; b++) {
            uint16_t h = w->scale[n * nb + b];
            *p++ = (uint8_t)(h & 0xff), *p++ = (uint8_t)(h >> 8);
            if (w->min) {
                h = w->min[n * nb + b];
                *p++ = (uint8_t)(h & 0xff), *p++ = (uint8_t)(h >> 8);
            }
            memcpy(p, w->qs + n * qb_row_bytes(w) + b * qb, (size_t)qb);
            p += qb;
        }
    return PARE_OK;
}

pare_status pare_qb_from_ggml(pare_qb_weight *out, pare_qb_kind kind, const void *src, size_t src_bytes, int64_t N,
                              int64_t K)
{
    static const char what[] = "qblock from_ggml";
    if (!out) return pare_fail(PARE_EINVAL, "%s: out is NULL", what);
    memset(out, 0, sizeof *out);
    if (!is_q_kind(kind) && !pare_qbk_is_(kind))
        return pare_fail(PARE_EINVAL, "%s: kind=%s: valid: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k", what,
                         pare_qb_kind_name(kind));
    int64_t group = 0;
    PARE_TRY(check_shape(what, kind, N, K, &group));
    const size_t rb = pare_qb_ggml_row_bytes(kind, K);
    if (!src || src_bytes != rb * (size_t)N)
        return pare_fail(PARE_EINVAL, "%s %s: %zu bytes for N=%lld K=%lld, need exactly %zu", what, KIND_NAMES[kind],
                         src ? src_bytes : 0, (long long)N, (long long)K, rb * (size_t)N);
    const int sym = !(kind == PARE_QB_Q4_1 || kind == PARE_QB_Q5_1 || kind == PARE_QB_Q4_K || kind == PARE_QB_Q5_K);
    pare_qb_weight w;
    PARE_TRY(qb_alloc(&w, what, kind, N, K, group, sym));
    if (pare_qbk_is_(kind)) memcpy(w.qs, src, rb * (size_t)N);
    else {
        const int64_t nb = K / 32, qb = kind == PARE_QB_Q8_0 ? 32 : 16;
        const uint8_t *p = src;
        for (int64_t n = 0; n < N; n++)
            for (int64_t b = 0; b < nb; b++) {
                w.scale[n * nb + b] = (uint16_t)(p[0] | p[1] << 8), p += 2;
                if (w.min) w.min[n * nb + b] = (uint16_t)(p[0] | p[1] << 8), p += 2;
                memcpy(w.qs + n * qb_row_bytes(&w) + b * qb, p, (size_t)qb), p += qb;
            }
    }
    *out = w;
    return PARE_OK;
}

/* ---- instruction set ---- */

static int g_isa_cap = QB_ISA_AVX512;

static qb_isa cpu_isa(int need_vnni) { return (qb_isa)pare_cpu_tier(need_vnni); }

pare_status pare_qb_set_isa(const char *isa) { return pare_cpu_tier_cap(&g_isa_cap, isa, "qblock"); }

qb_isa pare_qb_isa_for_(const pare_qb_weight *w)
{
    qb_isa best = cpu_isa(w->kind != PARE_QB_I4G);
    qb_isa cap = (qb_isa)__atomic_load_n(&g_isa_cap, __ATOMIC_RELAXED);
    return best < cap ? best : cap;
}

const char *pare_qb_impl(const pare_qb_weight *w)
{
    if (!w || !w->qs) return "none";
    qb_isa isa = pare_qb_isa_for_(w);
    if (isa == QB_ISA_SCALAR) return "scalar";
    if (w->kind == PARE_QB_I4G) return isa == QB_ISA_AVX512 ? "i4g-avx512" : "i4g-avx2";
    if (w->kind == PARE_QB_I8G) return isa == QB_ISA_AVX512 ? "i8g-vnni512" : "i8g-avx2";
    if (pare_qbk_is_(w->kind)) return isa == QB_ISA_AVX512 ? "k-vnni512" : "k-avx2";
    return isa == QB_ISA_AVX512 ? "q-vnni512" : "q-avx2";
}

/* ---- workspace ---- */

int64_t pare_qb_i4g_panel_rows_(int64_t K)
{
    /* The most rows of W a panel holds. pare_sgemm repacks x on every call, so panels should be wide;
     * measured at M = 128 on Zen 5, 384 rows beat 64–256 at K = 768 and K = 3072 (docs/kernels-qblock.md).
     * Capped at ~6 MB of f32 per panel for large K. */
    int64_t p = ((int64_t)1572864 / K) / 16 * 16;
    return p < 64 ? 64 : p > 384 ? 384 : p;
}

size_t pare_qb_act_layout_(qb_act *a, const pare_qb_weight *w, int64_t M, qb_isa isa, void *ws)
{
    memset(a, 0, sizeof *a);
    if (w->kind == PARE_QB_I4G || pare_qbk_is_(w->kind) || M <= 0) return 0;
    const int64_t K = w->K, nb = K / 32, ng = K / w->group;
    size_t off = 0;
    char *base = ws;
#define QB_TAKE(field, type, bytes)                            \
    do {                                                       \
        a->field = base ? (type)(void *)(base + off) : NULL;   \
        off += qb_align64((size_t)(bytes));                    \
    } while (0)
    if (isa == QB_ISA_AVX512 && w->kind != PARE_QB_I8G) {
        a->rec_stride = (nb + 1) / 2 * QB_REC_BYTES;
        QB_TAKE(rec, uint8_t *, M * a->rec_stride);
        if (w->kind == PARE_QB_Q4_1) {
            a->s16_stride = (nb + 15) / 16 * 16;
            QB_TAKE(s16, float *, M * a->s16_stride * (int64_t)sizeof(float));
        }
    } else {
        QB_TAKE(q, int8_t *, M * K);
        QB_TAKE(d, float *, (w->kind == PARE_QB_I8G ? M : M * nb) * (int64_t)sizeof(float));
        if (w->kind == PARE_QB_Q4_1) QB_TAKE(s, float *, M * nb * (int64_t)sizeof(float));
        if (isa == QB_ISA_AVX512) QB_TAKE(corr, int32_t *, M * ng * 64);
    }
#undef QB_TAKE
    return off;
}

size_t pare_qb_workspace(const pare_qb_weight *w, int64_t M)
{
    if (!w || !w->qs || M <= 0) return 0;
    if (pare_qbk_is_(w->kind)) return pare_qbk_workspace_(w, M);
    if (w->kind == PARE_QB_I4G) {
        if (M <= PARE_QB_I4G_GEMV_MAX_M) return 0;
        return pare_sgemm_panels_workspace(w->K, pare_qb_i4g_panel_rows_(w->K));
    }
    qb_act a;
    size_t s0 = pare_qb_act_layout_(&a, w, M, QB_ISA_SCALAR, NULL);
    size_t s1 = pare_qb_act_layout_(&a, w, M, QB_ISA_AVX512, NULL);
    return s0 > s1 ? s0 : s1;
}

/* ---- activation quantization, canonical layout (the references and the scalar / AVX2 kernels) ---- */

/* Row m of x (K) into the canonical arrays; 0 on success, 1 if the row holds NaN/Inf or a scale (or, for
 * Q4_1, a block sum) overflows fp16. */
static int act_row_canon(int8_t *q, float *d, float *s, const float *x, const pare_qb_weight *w)
{
    const int64_t K = w->K;
    if (w->kind == PARE_QB_I8G) {
        uint32_t mx = 0;
        for (int64_t k = 0; k < K; k++) mx = abs_bits(x[k]) > mx ? abs_bits(x[k]) : mx;
        if (mx >= 0x7f800000u) return 1;
        float amax = bits_to_f(mx), inv = 127.0f / amax;
        if (!(amax > 0.0f) || !isfinite(inv)) inv = 0.0f;
        d[0] = amax / 127.0f;
        for (int64_t k = 0; k < K; k++) {
            float r = nearbyintf(x[k] * inv);
            q[k] = (int8_t)(r < -127.0f ? -127 : r > 127.0f ? 127 : (int)r);
        }
        return 0;
    }
    /* llama.cpp quantize_row_q8_0_ref / quantize_row_q8_1_ref */
    for (int64_t b = 0; b < K / 32; b++) {
        const float *v = x + b * 32;
        uint32_t mx = 0;
        for (int j = 0; j < 32; j++) mx = abs_bits(v[j]) > mx ? abs_bits(v[j]) : mx;
        if (mx >= 0x7f800000u) return 1;
        const float dd = bits_to_f(mx) / ((1 << 7) - 1);
        float id = dd ? 1.0f / dd : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        uint16_t h = pare_f32_to_f16(dd);
        if (!is_f16_finite(h)) return 1;
        d[b] = h2f(h);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            q[b * 32 + j] = (int8_t)roundf(v[j] * id);
            sum += q[b * 32 + j];
        }
        if (s) {
            uint16_t hs = pare_f32_to_f16((float)sum * dd);
            if (!is_f16_finite(hs)) return 1;
            s[b] = h2f(hs);
        }
    }
    return 0;
}

int64_t pare_qb_act_canon_(qb_act *a, const float *x, const pare_qb_weight *w, int64_t M)
{
    const int64_t K = w->K, nd = w->kind == PARE_QB_I8G ? 1 : K / 32;
    int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (M * K >= QB_PAR_MIN_WORK / 4 && M > 1)
    for (int64_t m = 0; m < M; m++)
        if (act_row_canon(a->q + m * K, a->d + m * nd, a->s ? a->s + m * nd : NULL, x + m * K, w) && m < bad) bad = m;
    return bad;
}

/* ---- scalar dot products: the references' arithmetic ---- */

/* Σ_k x[k]·Ŵ[n,k] in k order, Ŵ as in dequant_row. */
static float dot_i4g(const pare_qb_weight *w, int64_t n, const float *x)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    const uint8_t *qr = w->qs + n * (K / 2);
    float acc = 0.0f;
    for (int64_t gi = 0; gi < ng; gi++) {
        float s = h2f(w->scale[n * ng + gi]);
        int o = w->zero ? w->zero[n * ng + gi] : 8;
        for (int64_t k = gi * g; k < gi * g + g; k++) acc += x[k] * (s * (float)(i4_get(qr, K, k) - o));
    }
    return acc;
}

/* Row n of W against quantized token (q: K int8, d, s canonical): the sum before the bias. */
static float dot_act(const pare_qb_weight *w, int64_t n, const int8_t *q, const float *d, const float *s)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    const uint16_t *sc = w->scale + n * ng;
    float acc = 0.0f;
    switch (w->kind) {
    case PARE_QB_I8G: {
        const int8_t *qr = (const int8_t *)w->qs + n * K;
        for (int64_t gi = 0; gi < ng; gi++) {
            int32_t dot = 0;
            for (int64_t k = gi * g; k < gi * g + g; k++) dot += (int32_t)qr[k] * q[k];
            acc += (float)dot * h2f(sc[gi]);
        }
        return acc * d[0];
    }
    case PARE_QB_Q8_0: {
        const int8_t *qr = (const int8_t *)w->qs + n * K;
        for (int64_t b = 0; b < ng; b++) {
            int32_t dot = 0;
            for (int j = 0; j < 32; j++) dot += (int32_t)qr[b * 32 + j] * q[b * 32 + j];
            acc += (h2f(sc[b]) * d[b]) * (float)dot;
        }
        return acc;
    }
    case PARE_QB_Q4_0:
    case PARE_QB_Q4_1: {
        const uint8_t *qr = w->qs + n * (K / 2);
        const int off = w->kind == PARE_QB_Q4_0 ? 8 : 0;
        for (int64_t b = 0; b < ng; b++) {
            int32_t dot = 0;
            for (int j = 0; j < 16; j++) {
                uint8_t byte = qr[b * 16 + j];
                dot += ((byte & 15) - off) * q[b * 32 + j] + ((byte >> 4) - off) * q[b * 32 + 16 + j];
            }
            float t = (h2f(sc[b]) * d[b]) * (float)dot;
            if (w->kind == PARE_QB_Q4_1) t = t + h2f(w->min[n * ng + b]) * s[b];
            acc += t;
        }
        return acc;
    }
    default: return NAN;
    }
}

/* ---- the reference ---- */

void pare_linear_qb_ref(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    if (!y || !x || !w || !w->qs || M <= 0) return;
    if (pare_qbk_is_(w->kind)) {
        pare_qbk_linear_ref_(y, x, w, bias, M);
        return;
    }
    const int64_t N = w->N, K = w->K;
    if (w->kind == PARE_QB_I4G) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                float v = dot_i4g(w, n, x + m * K);
                y[m * N + n] = bias ? v + bias[n] : v;
            }
        return;
    }
    int8_t *q = malloc((size_t)K);
    float *d = malloc((size_t)(K / 32 + 1) * sizeof(float)), *s = malloc((size_t)(K / 32 + 1) * sizeof(float));
    for (int64_t m = 0; m < M; m++) {
        int bad = !q || !d || !s || act_row_canon(q, d, w->kind == PARE_QB_Q4_1 ? s : NULL, x + m * K, w);
        for (int64_t n = 0; n < N; n++) {
            float v = bad ? NAN : dot_act(w, n, q, d, s);
            y[m * N + n] = bias ? v + bias[n] : v;
        }
    }
    free(q);
    free(d);
    free(s);
}

/* ---- scalar kernels (the references' arithmetic, OpenMP over N) ---- */

static void i4g_gemv_scalar(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K;
#pragma omp parallel for schedule(static) if (M * N * K >= QB_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            float v = dot_i4g(w, n, x + m * K);
            y[m * N + n] = bias ? v + bias[n] : v;
        }
}

static void i4g_panel_scalar(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) dequant_row(dst + r * w->K, w, n0 + r);
}

static void gemm_act_scalar(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K, nd = w->kind == PARE_QB_I8G ? 1 : K / 32;
#pragma omp parallel for schedule(static) if (M * N * K >= QB_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            float v = dot_act(w, n, a->q + m * K, a->d + m * nd, a->s ? a->s + m * nd : NULL);
            y[m * N + n] = bias ? v + bias[n] : v;
        }
}

/* ---- I4G, many tokens: dequantized panels of W through pare_sgemm ---- */

/* pare_sgemm_panels' decoder: this ISA's panel function on this weight */
typedef struct i4g_panels_ctx {
    void (*panel)(float *, const pare_qb_weight *, int64_t, int64_t);
    const pare_qb_weight *w;
} i4g_panels_ctx;

static void i4g_decode(float *dst, const void *ctx, int64_t n0, int64_t rows)
{
    const i4g_panels_ctx *c = ctx;
    c->panel(dst, c->w, n0, rows);
}

static void i4g_panels(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M, void *ws,
                       qb_isa isa)
{
    i4g_panels_ctx c = {isa == QB_ISA_AVX512 ? pare_qb_i4g_panel_avx512_
                        : isa == QB_ISA_AVX2 ? pare_qb_i4g_panel_avx2_
                                             : i4g_panel_scalar,
                        w};
    pare_sgemm_panels(y, x, bias, M, w->N, w->K, pare_qb_i4g_panel_rows_(w->K), i4g_decode, &c, ws);
}

/* ---- the Linear ---- */

pare_status pare_linear_qb(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M,
                           void *workspace)
{
    if (!w || !w->qs || (unsigned)w->kind >= PARE_QB_COUNT || (!w->scale && !pare_qbk_is_(w->kind)))
        return pare_fail(PARE_EINVAL, "linear qblock: weight is not quantized");
    if (M < 0) return pare_fail(PARE_EINVAL, "linear qblock: M=%lld: must be >= 0", (long long)M);
    if (M == 0) return PARE_OK;
    if (!y || !x) return pare_fail(PARE_EINVAL, "linear qblock: NULL input or output");
    size_t need = pare_qb_workspace(w, M);
    if (need && (!workspace || (uintptr_t)workspace % 64))
        return pare_fail(PARE_EINVAL, "linear qblock %s: workspace is NULL or not 64-byte aligned (need "
                         "pare_qb_workspace(w, M=%lld) = %zu bytes)", KIND_NAMES[w->kind], (long long)M, need);
    qb_isa isa = pare_qb_isa_for_(w);

    if (w->kind == PARE_QB_I4G) {
        if (M > PARE_QB_I4G_GEMV_MAX_M) i4g_panels(y, x, w, bias, M, workspace, isa);
        else if (isa == QB_ISA_AVX512) pare_qb_i4g_gemv_avx512_(y, x, w, bias, M);
        else if (isa == QB_ISA_AVX2) pare_qb_i4g_gemv_avx2_(y, x, w, bias, M);
        else i4g_gemv_scalar(y, x, w, bias, M);
        return PARE_OK;
    }

    qb_act a;
    int64_t bad;
    if (pare_qbk_is_(w->kind)) bad = pare_qbk_linear_(y, x, w, bias, M, workspace, isa);
    else {
        pare_qb_act_layout_(&a, w, M, isa, workspace);
        bad = isa == QB_ISA_AVX512 ? pare_qb_act_vnni_(&a, x, w, M) : pare_qb_act_canon_(&a, x, w, M);
    }
    if (bad < M) {
        int64_t k = 0;
        while (k < w->K && isfinite(x[bad * w->K + k])) k++;
        if (k < w->K)
            return pare_fail(PARE_ENUMERIC, "linear qblock %s: input row %lld (of %lld) holds %s at column %lld",
                             KIND_NAMES[w->kind], (long long)bad, (long long)M,
                             isnan(x[bad * w->K + k]) ? "NaN" : "Inf", (long long)k);
        return pare_fail(PARE_ENUMERIC, "linear qblock %s: input row %lld (of %lld): values too large for the fp16 "
                         "activation block scales%s", KIND_NAMES[w->kind], (long long)bad, (long long)M,
                         w->kind == PARE_QB_Q4_1 || w->kind == PARE_QB_Q5_1
                             ? " or block sums (|Σ x| over 32 elements must stay < 65504)" : "");
    }
    if (pare_qbk_is_(w->kind)) return PARE_OK;
    if (isa == QB_ISA_AVX512) pare_qb_gemm_vnni_(y, &a, w, bias, M);
    else if (isa == QB_ISA_AVX2) pare_qb_gemm_avx2_(y, &a, w, bias, M);
    else gemm_act_scalar(y, &a, w, bias, M);
    return PARE_OK;
}
