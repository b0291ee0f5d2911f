/* gemm_i8_weight.c — int8 weights (pare_i8_weight): per output channel (LLM.int8()'s vector-wise scheme,
 * sw[n] = max_k |W[n,k]| / 127), per tensor (one scale absmax(W)/127, SmoothQuant O1–O3), PyTorch's
 * quantize_dynamic qint8 (per tensor, absmax(W)/127.5, codes in [-128, 127]), or from int8 values the
 * caller chose (GPTQ and the like, -128 included). Each keeps colsum[n] = Σ_k q[n,k], with which the
 * dequantization removes the activations' u8 shift or zero point, and, on VNNI CPUs, a copy of q packed
 * once for the u8s8 kernel (pare_i8_packed_make_): pare's own VNNI panels (gemm_i8_vnni.c) or oneDNN's
 * int8 inner product (pare_i8_pack_, gemm_i8_products.c), as pare_i8_kernel_set chose.
 *
 * Deliberately not here: per-group scales and int4 (qblock.c), calibration (GPTQ chooses the integers
 * outside), the packing itself, any product.
 *
 * -128: pare's own quantizers stop at ±127 (symmetric grids), but PyTorch's qint8 weights and other
 * callers' integers reach -128, and pare_i8_weight_from_int used to refuse it. It is accepted now; what
 * that changes and why every product stays exact:
 *   - u8s8 (VNNI, and pare's madd kernel on u8 bytes): |Σ_k byte·q| <= K·255·128, which fits int32 for
 *     K <= 65793 (was 66311 = K·255·127): U8S8_MAX_K in gemm_i8_internal.h is now 65793, and K in
 *     65794..66311 takes the s8 path. The int64 correction of asymmetric codes starts at the same K.
 *   - s8s8 (oneDNN with VNNI, pare's madd kernel): |Σ c·q| <= K·128·128 fits int32 for K <= 131071 =
 *     PARE_I8_MAX_K, already derived with 128·128.
 *   - pare's madd kernel (AVX2 vpmaddwd on int16-widened bytes): each product is at most 128·128 = 16384
 *     (s8·s8) or 255·128 = 32640 (u8·s8) in magnitude, a pair sum at most 65280, added into int32 lanes;
 *     vpmaddwd only wraps for the pair (−32768)·(−32768)·2, which int8 operands cannot form.
 *   - colsum[n] = Σ_k q[n,k] >= −128·K fits int32 for any K <= PARE_I8_MAX_K.
 *   oneDNN's int8 kernels without VNNI (vpmaddubsw, saturating int16) are not used (gemm_i8_products.c).
 *
 * Entry points: pare_i8_weight_quantize / _quantize_tensor / _quantize_torch / _from_int / _free / _bytes,
 * pare_i8_kernel_set / _name / _parse; internal: pare_i8_packed_make_, pare_i8_packed_free_.
 */
#include <float.h>
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_i8_internal.h"

/* ---- the packed copy: which kernel (gemm_i8.h pare_i8_kernel) ---- */

static int i8_kernel = PARE_I8_KERNEL_AUTO; /* process-wide, read and written atomically */

pare_i8_kernel pare_i8_kernel_set(pare_i8_kernel k)
{
    if ((unsigned)k >= PARE_I8_KERNEL_COUNT) return (pare_i8_kernel)__atomic_load_n(&i8_kernel, __ATOMIC_RELAXED);
    return (pare_i8_kernel)__atomic_exchange_n(&i8_kernel, (int)k, __ATOMIC_RELAXED);
}

static const char *const kernel_names[] = {"auto", "pare", "onednn"};
_Static_assert(sizeof kernel_names / sizeof kernel_names[0] == PARE_I8_KERNEL_COUNT, "one name per int8 kernel");

const char *pare_i8_kernel_name(pare_i8_kernel k) { return (unsigned)k < PARE_I8_KERNEL_COUNT ? kernel_names[k] : "?"; }

pare_status pare_i8_kernel_parse(const char *s, pare_i8_kernel *k)
{
    for (int i = 0; s && i < PARE_I8_KERNEL_COUNT; i++)
        if (!strcmp(s, kernel_names[i])) {
            *k = (pare_i8_kernel)i;
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "int8 kernel '%s': must be one of auto, pare, onednn", s ? s : "(null)");
}

/* On VNNI CPUs (where oneDNN's u8s8 is exact) and K within the u8s8 bound: pare's panels if chosen (AUTO:
 * where the CPU has AVX512-VNNI), else, or if they cannot be made, oneDNN's packed inner product. */
pare_i8_packed *pare_i8_packed_make_(const int8_t *q, int64_t N, int64_t K)
{
    if (!pare_i8_onednn_exact_() || K > U8S8_MAX_K) return NULL;
    pare_i8_packed *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (__atomic_load_n(&i8_kernel, __ATOMIC_RELAXED) != PARE_I8_KERNEL_ONEDNN) p->panels = pare_i8_vnni_pack_(q, N, K);
    if (!p->panels) p->ip = pare_i8_pack_(q, N, K);
    if (!p->panels && !p->ip) {
        free(p);
        return NULL;
    }
    return p;
}

void pare_i8_packed_free_(pare_i8_packed *p)
{
    if (!p) return;
    pare_i8_vnni_free_(p->panels);
    pare_onednn_ip_free(p->ip);
    free(p);
}

/* ---- weights ---- */

pare_status pare_i8_weight_quantize(pare_i8_weight *out, const float *W, int64_t N, int64_t K)
{
    if (!out) return pare_fail(PARE_EINVAL, "int8 weight quantize: out is NULL");
    memset(out, 0, sizeof *out);
    if (N < 1 || K < 1)
        return pare_fail(PARE_EINVAL, "int8 weight quantize: N=%lld K=%lld: both must be >= 1", (long long)N, (long long)K);
    if (!W) return pare_fail(PARE_EINVAL, "int8 weight quantize: W is NULL");
    if ((uint64_t)N > (uint64_t)INT64_MAX / (uint64_t)K)
        return pare_fail(PARE_EINVAL, "int8 weight quantize: N·K overflows (N=%lld K=%lld)", (long long)N, (long long)K);

    pare_i8_weight w = {.N = N, .K = K};
    void *p = NULL;
    if (posix_memalign(&p, 64, pare_i8_align64_((size_t)(N * K)))) goto nomem;
    w.q = p;
    w.scale = malloc((size_t)N * sizeof(float));
    w.colsum = malloc((size_t)N * sizeof(int32_t));
    if (!w.scale || !w.colsum) goto nomem;

    int64_t bad = N;
#pragma omp parallel for schedule(static) reduction(min : bad) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        const float *wr = W + n * K;
        uint32_t mx = pare_i8_maxabs_bits_generic_(wr, K);
        if (mx >= PARE_I8_NONFINITE) {
            if (n < bad) bad = n;
            continue;
        }
        float inv;
        pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), &w.scale[n], &inv);
        int32_t cs = 0;
        for (int64_t k = 0; k < K; k++) {
            int8_t v = pare_i8_quant_(wr[k], inv);
            w.q[n * K + k] = v;
            cs += v;
        }
        w.colsum[n] = cs;
    }
    if (bad < N) {
        int64_t k = 0;
        while (k < K && isfinite(W[bad * K + k])) k++;
        pare_i8_weight_free(&w);
        return pare_fail(PARE_ENUMERIC, "int8 weight quantize: row %lld (of %lld) holds %s at column %lld",
                         (long long)bad, (long long)N, k < K && isnan(W[bad * K + k]) ? "NaN" : "Inf", (long long)k);
    }
    /* the VNNI u8s8 path runs on weights packed once (NULL if neither kernel can: dnnl_gemm_u8s8s32 then) */
    w.packed = pare_i8_packed_make_(w.q, N, K);
    *out = w;
    return PARE_OK;

nomem:
    pare_i8_weight_free(&w);
    return pare_fail(PARE_ENOMEM, "int8 weight quantize: out of memory for N=%lld K=%lld", (long long)N, (long long)K);
}

void pare_i8_weight_free(pare_i8_weight *w)
{
    if (!w) return;
    free(w->q);
    free(w->scale);
    free(w->colsum);
    pare_i8_packed_free_(w->packed);
    w->q = NULL;
    w->scale = NULL;
    w->colsum = NULL;
    w->packed = NULL;
}

/* q (N·K bytes) + scale (4·N): colsum is derived from q and packed is a cache, neither is stored. */
size_t pare_i8_weight_bytes(const pare_i8_weight *w)
{
    if (!w || !w->q) return 0;
    return (size_t)(w->N * w->K) + sizeof(float) * (size_t)w->N;
}

/* ---- weights: per tensor, from given integers (gemm_i8.h) ---- */

/* w->q (64-byte aligned), scale, colsum for N×K; on failure w is freed and PARE_ENOMEM returned. */
static pare_status weight_alloc(pare_i8_weight *w, int64_t N, int64_t K, const char *what)
{
    memset(w, 0, sizeof *w);
    w->N = N, w->K = K;
    void *p = NULL;
    if (posix_memalign(&p, 64, pare_i8_align64_((size_t)(N * K)))) p = NULL;
    w->q = p;
    w->scale = malloc((size_t)N * sizeof(float));
    w->colsum = malloc((size_t)N * sizeof(int32_t));
    if (w->q && w->scale && w->colsum) return PARE_OK;
    pare_i8_weight_free(w);
    return pare_fail(PARE_ENOMEM, "%s: out of memory for N=%lld K=%lld", what, (long long)N, (long long)K);
}

/* colsum from q, and the packed copy for the u8s8 path (as pare_i8_weight_quantize). */
static void weight_finish(pare_i8_weight *w)
{
    const int64_t N = w->N, K = w->K;
#pragma omp parallel for schedule(static) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        int32_t cs = 0;
        for (int64_t k = 0; k < K; k++) cs += w->q[n * K + k];
        w->colsum[n] = cs;
    }
    w->packed = pare_i8_packed_make_(w->q, N, K);
}

static pare_status weight_check_shape(const void *out, const void *in, int64_t N, int64_t K, const char *what)
{
    if (!out) return pare_fail(PARE_EINVAL, "%s: out is NULL", what);
    if (N < 1 || K < 1)
        return pare_fail(PARE_EINVAL, "%s: N=%lld K=%lld: both must be >= 1", what, (long long)N, (long long)K);
    if (!in) return pare_fail(PARE_EINVAL, "%s: input is NULL", what);
    if ((uint64_t)N > (uint64_t)INT64_MAX / (uint64_t)K)
        return pare_fail(PARE_EINVAL, "%s: N·K overflows (N=%lld K=%lld)", what, (long long)N, (long long)K);
    return PARE_OK;
}

/* max |W| over the whole (N, K) tensor into *maxabs; PARE_ENUMERIC naming the first row and column holding NaN/Inf. */
static pare_status tensor_maxabs(const float *W, int64_t N, int64_t K, const char *what, float *maxabs)
{
    uint32_t mx = 0;
    int64_t bad = N;
#pragma omp parallel for schedule(static) reduction(max : mx) reduction(min : bad) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        uint32_t b = pare_i8_maxabs_bits_generic_(W + n * K, K);
        if (b >= PARE_I8_NONFINITE && n < bad) bad = n;
        mx = b > mx ? b : mx;
    }
    if (bad < N) {
        int64_t k = 0;
        while (k < K && isfinite(W[bad * K + k])) k++;
        return pare_fail(PARE_ENUMERIC, "%s: row %lld (of %lld) holds %s at column %lld", what, (long long)bad,
                         (long long)N, k < K && isnan(W[bad * K + k]) ? "NaN" : "Inf", (long long)k);
    }
    *maxabs = pare_i8_bits_float_(mx);
    return PARE_OK;
}

pare_status pare_i8_weight_quantize_tensor(pare_i8_weight *out, const float *W, int64_t N, int64_t K)
{
    const char *what = "int8 weight quantize (per tensor)";
    if (out) memset(out, 0, sizeof *out);
    PARE_TRY(weight_check_shape(out, W, N, K, what));
    float maxabs;
    PARE_TRY(tensor_maxabs(W, N, K, what, &maxabs));
    pare_i8_weight w;
    PARE_TRY(weight_alloc(&w, N, K, what));
    float scale, inv;
    pare_i8_scale_from_maxabs_(maxabs, &scale, &inv);
#pragma omp parallel for schedule(static) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) w.q[n * K + k] = pare_i8_quant_(W[n * K + k], inv);
        w.scale[n] = scale;
    }
    weight_finish(&w);
    *out = w;
    return PARE_OK;
}

pare_status pare_i8_weight_from_int(pare_i8_weight *out, const int8_t *q, const float *scale, int64_t N, int64_t K)
{
    const char *what = "int8 weight from integers";
    if (out) memset(out, 0, sizeof *out);
    PARE_TRY(weight_check_shape(out, q, N, K, what));
    if (!scale) return pare_fail(PARE_EINVAL, "%s: scale is NULL", what);
    for (int64_t n = 0; n < N; n++) {
        if (!isfinite(scale[n]))
            return pare_fail(PARE_ENUMERIC, "%s: scale[%lld] is %s: scales must be finite and >= 0", what,
                             (long long)n, isnan(scale[n]) ? "NaN" : "Inf");
        if (scale[n] < 0.0f)
            return pare_fail(PARE_EINVAL, "%s: scale[%lld] = %g: scales must be finite and >= 0", what, (long long)n,
                             (double)scale[n]);
    }
    pare_i8_weight w;
    PARE_TRY(weight_alloc(&w, N, K, what));
    memcpy(w.q, q, (size_t)(N * K));
    memcpy(w.scale, scale, (size_t)N * sizeof(float));
    weight_finish(&w);
    *out = w;
    return PARE_OK;
}

/* PyTorch 1.13's quantize_dynamic weights (gemm_i8.h): MinMaxObserver(qint8, per_tensor_symmetric) gives
 * scale = max(max(−min W, max W) / ((127 − (−128)) / 2), eps) as float32 arithmetic, zero point 0, and
 * quantize_per_tensor rounds W·(1.0f/scale) half-even and clamps to [−128, 127]. */
pare_status pare_i8_weight_quantize_torch(pare_i8_weight *out, const float *W, int64_t N, int64_t K)
{
    const char *what = "int8 weight quantize (PyTorch qint8)";
    if (out) memset(out, 0, sizeof *out);
    PARE_TRY(weight_check_shape(out, W, N, K, what));
    float maxabs;
    PARE_TRY(tensor_maxabs(W, N, K, what, &maxabs));
    pare_i8_weight w;
    PARE_TRY(weight_alloc(&w, N, K, what));
    float scale = maxabs / 127.5f;
    if (scale < FLT_EPSILON) scale = FLT_EPSILON; /* torch.max(scale, eps), eps = finfo(float32).eps */
    const float inv = 1.0f / scale;
#pragma omp parallel for schedule(static) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) {
            float r = nearbyintf(W[n * K + k] * inv);
            w.q[n * K + k] = (int8_t)(r > 127.0f ? 127.0f : r < -128.0f ? -128.0f : r);
        }
        w.scale[n] = scale;
    }
    weight_finish(&w);
    *out = w;
    return PARE_OK;
}
