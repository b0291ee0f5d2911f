/* gemm_half.c — the Linear on bf16 / f16 weights of gemm_half.h: the weights made once (rounded, packed for
 * oneDNN where it has a kernel for the dtype), the oneDNN path, pare's portable widen path and the
 * reference.
 *
 *   y(M,N) = r(x)(M,K) · W(N,K)^T + bias(N)        f32 accumulation; r = round to nearest even onto dt
 *
 * oneDNN path: x → dt (pare_cast_to_half_fast, the bits of the scalar cast) into the workspace, then the
 * packed inner product of gemm_onednn.c with dt src / weights, f32 dst and bias. Widen path: x rounded onto
 * the grid in f32 (M,K), W widened a tile of rows at a time into per-thread f32 tiles, pare_sgemm per tile
 * (single-threaded inside the parallel loop over tiles), the bias added per tile; for M <= 4 (decoding) dot
 * products on the 16-bit weights widened in registers instead (AVX-512, AVX2 + F16C or C). The tiles are sized to ~2
 * MB (HALF_TILE_BYTES) and balanced over the threads.
 *
 * Deliberately not here: what the format is called and how a model gets one (graph/fmt_half.c,
 * compress/quant/half.c), the scalar conversions (core/tensor.c) and their vector twins (kernels/cast.c).
 */
#include "kernels/gemm_half.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/cast.h"
#include "kernels/gemm.h"
#include "kernels/gemm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HALF_X86 1
#endif

/* Bytes of one thread's widened tile of W (f32) the widen kernel aims at. Fewer, larger tiles win: each
 * pare_sgemm call packs its share of x again. Measured f16 at 128×768×3072, 1 thread, loaded machine (f32
 * packed ~190 GFLOP/s beside it): 1 MB tiles 55 GFLOP/s, 2 MB 143, 4 MB 149, 8 MB 150; 2 MB per thread is
 * the workspace we pay. */
#define HALF_TILE_BYTES ((int64_t)1 << 21)
/* Thread slots the widen kernel's workspace holds at most. */
#define HALF_MAX_SLOTS 64
/* Rows (M) times K below which the conversion of the activations stays on one thread. */
#define HALF_CONVERT_PAR 32768
/* Rows up to which the widen kernel runs dot products on the 16-bit weights (widened in registers) instead of
 * widening tiles for pare_sgemm: decoding-sized M, where the tiles cost three passes over W (read 2 bytes,
 * write 4, read 4) for very little arithmetic. */
#define HALF_GEMV_M 4

static int is_half_dtype(pare_dtype t) { return t == PARE_BF16 || t == PARE_F16; }

static pare_onednn_ip_types half_types(pare_dtype dt)
{
    dnnl_data_type_t d = dt == PARE_BF16 ? dnnl_bf16 : dnnl_f16;
    return (pare_onednn_ip_types){d, d, dnnl_f32};
}

/* ---- the weights ---- */

/* oneDNN's implementation runs dt's products in hardware: AVX512-BF16 ("brgemm:avx512_core_bf16"), AMX, or
 * AVX512-FP16. Without them oneDNN 2.6 emulates bf16 with its generic GEMM ("x64:gemm:jit" on AVX-512 without
 * BF16), which measured 43 GFLOP/s at 128×768×768 against the widen kernel's 112 on the same core: the widen
 * kernel is the faster fallback, so only a native implementation is kept. */
static int native_impl(const char *impl)
{
    return strstr(impl, "bf16") || strstr(impl, "amx") || strstr(impl, "fp16");
}

pare_status pare_half_weight_make(pare_half_weight *out, const float *W, int64_t N, int64_t K, pare_dtype dt, int pack)
{
    memset(out, 0, sizeof *out);
    if (!is_half_dtype(dt))
        return pare_fail(PARE_EINVAL, "half weight: dtype %s is not bf16 or f16", pare_dtype_name(dt));
    if (N < 1 || K < 1 || !W)
        return pare_fail(PARE_EINVAL, "half weight: N=%lld K=%lld W=%p: need N, K >= 1 and W", (long long)N, (long long)K,
                         (const void *)W);
    if (N > INT64_MAX / K / 4)
        return pare_fail(PARE_EINVAL, "half weight: N·K overflows (N=%lld K=%lld)", (long long)N, (long long)K);
    int64_t bad = pare_first_nonfinite(W, N * K);
    if (bad >= 0)
        return pare_fail(PARE_ENUMERIC, "half weight: W holds %s at (%lld, %lld): weights must be finite",
                         isnan(W[bad]) ? "NaN" : "Inf", (long long)(bad / K), (long long)(bad % K));
    uint16_t *h = NULL;
    if (posix_memalign((void **)&h, 64, sizeof *h * (size_t)(N * K)))
        return pare_fail(PARE_ENOMEM, "half weight: out of memory for %lld x %lld", (long long)N, (long long)K);
#pragma omp parallel for schedule(static) if (N * K > HALF_CONVERT_PAR)
    for (int64_t n = 0; n < N; n++) pare_cast_to_half_fast(h + n * K, dt, W + n * K, K);
    const uint16_t inf = dt == PARE_F16 ? 0x7c00u : 0x7f80u; /* W is finite: ±Inf here means beyond dt's range */
    for (int64_t i = 0; i < N * K; i++)
        if ((h[i] & 0x7fffu) == inf) {
            free(h);
            return pare_fail(PARE_ENUMERIC, "half weight: W(%lld, %lld) = %g is beyond %s's range (%s)%s", (long long)(i / K),
                             (long long)(i % K), (double)W[i], pare_dtype_name(dt), dt == PARE_F16 ? "65504" : "3.39e38",
                             dt == PARE_F16 ? ": use bf16, whose range is f32's" : "");
        }
    out->dtype = dt, out->w = h, out->N = N, out->K = K;
    /* a CPU (or oneDNN) without a kernel for dt: no packed copy, the widen kernel; nothing reported */
    if (pack && pare_onednn_ip_pack(&out->packed, half_types(dt), h, N, K, 1, NULL) != PARE_OK) out->packed = NULL;
    if (out->packed && !native_impl(pare_onednn_ip_impl(out->packed))) {
        pare_onednn_ip_free(out->packed);
        out->packed = NULL;
    }
    return PARE_OK;
}

void pare_half_weight_free(pare_half_weight *w)
{
    if (!w) return;
    pare_onednn_ip_free(w->packed);
    free(w->w);
    w->packed = NULL;
    w->w = NULL;
}

size_t pare_half_weight_bytes(const pare_half_weight *w) { return 2 * (size_t)(w->N * w->K); }

size_t pare_half_weight_packed_bytes(const pare_half_weight *w) { return w->packed ? pare_onednn_ip_bytes(w->packed) : 0; }

const char *pare_half_weight_impl(const pare_half_weight *w)
{
    const char *impl = w->packed ? pare_onednn_ip_impl(w->packed) : "";
    return w->packed ? (impl[0] ? impl : "onednn") : "pare:widen";
}

/* ---- workspace ---- */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Rows of W per widened tile at most: ~HALF_TILE_BYTES of f32, a multiple of 16, in [16, N]. */
static int64_t tile_rows_max(const pare_half_weight *w)
{
    int64_t nb = HALF_TILE_BYTES / (4 * w->K) / 16 * 16;
    if (nb < 16) nb = 16;
    return nb < w->N ? nb : w->N;
}

static int slots_wanted(void)
{
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t > HALF_MAX_SLOTS ? HALF_MAX_SLOTS : t;
}

static size_t widen_workspace(const pare_half_weight *w, int64_t M, int slots)
{
    return align64(sizeof(float) * (size_t)(M * w->K)) + (size_t)slots * align64(sizeof(float) * (size_t)(tile_rows_max(w) * w->K));
}

size_t pare_linear_half_workspace(const pare_half_weight *w, int64_t M)
{
    if (w->packed) return align64(sizeof(uint16_t) * (size_t)(M * w->K));
    return widen_workspace(w, M, slots_wanted());
}

/* ---- kernels ---- */

static pare_status check_args(const char *what, float *y, const float *x, const pare_half_weight *w, int64_t M)
{
    if (!w || !w->w || !is_half_dtype(w->dtype)) return pare_fail(PARE_EINVAL, "%s: no 16-bit weights", what);
    if (M < 0) return pare_fail(PARE_EINVAL, "%s: M=%lld: must be >= 0", what, (long long)M);
    if (M && (!y || !x)) return pare_fail(PARE_EINVAL, "%s: NULL x or y", what);
    return PARE_OK;
}

/* ---- small M: dot products on the 16-bit weights ----
 *
 * y[m, n] = Σ_k xr[m, k] · w[n, k] + bias[n] for m < M <= HALF_GEMV_M, n in [n0, n1): each weight row widened
 * in registers (bf16: a 16-bit shift; f16: vcvtph2ps) and multiplied by the rounded activations with f32 FMAs
 * (the products are exact: both operands are on the 16-bit grid), four output rows at a time (four
 * independent chains; x is read once for the four). AVX-512, AVX2 + F16C, or plain C, by pare_cpu_get(). */

#ifdef HALF_X86
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512 widen16_512(const uint16_t *p, pare_dtype dt,
                                                                                     __mmask16 mk)
{
    __m256i h = _mm256_maskz_loadu_epi16(mk, p);
    return dt == PARE_BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void gemv_512(float *y, const float *xr, const pare_half_weight *w,
                                                                         const float *bias, int64_t M, int64_t n0, int64_t n1)
{
    const int64_t N = w->N, K = w->K;
    const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1u);
    for (int64_t m = 0; m < M; m++) {
        const float *x = xr + m * K;
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) {
            const uint16_t *r = w->w + n * K;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int64_t k = 0;
            for (; k + 16 <= K; k += 16) {
                __m512 xv = _mm512_loadu_ps(x + k);
                a0 = _mm512_fmadd_ps(xv, widen16_512(r + k, w->dtype, 0xffff), a0);
                a1 = _mm512_fmadd_ps(xv, widen16_512(r + K + k, w->dtype, 0xffff), a1);
                a2 = _mm512_fmadd_ps(xv, widen16_512(r + 2 * K + k, w->dtype, 0xffff), a2);
                a3 = _mm512_fmadd_ps(xv, widen16_512(r + 3 * K + k, w->dtype, 0xffff), a3);
            }
            if (tail) {
                __m512 xv = _mm512_maskz_loadu_ps(tail, x + k);
                a0 = _mm512_fmadd_ps(xv, widen16_512(r + k, w->dtype, tail), a0);
                a1 = _mm512_fmadd_ps(xv, widen16_512(r + K + k, w->dtype, tail), a1);
                a2 = _mm512_fmadd_ps(xv, widen16_512(r + 2 * K + k, w->dtype, tail), a2);
                a3 = _mm512_fmadd_ps(xv, widen16_512(r + 3 * K + k, w->dtype, tail), a3);
            }
            float *yr = y + m * N + n;
            yr[0] = _mm512_reduce_add_ps(a0) + (bias ? bias[n] : 0.0f);
            yr[1] = _mm512_reduce_add_ps(a1) + (bias ? bias[n + 1] : 0.0f);
            yr[2] = _mm512_reduce_add_ps(a2) + (bias ? bias[n + 2] : 0.0f);
            yr[3] = _mm512_reduce_add_ps(a3) + (bias ? bias[n + 3] : 0.0f);
        }
        for (; n < n1; n++) {
            const uint16_t *r = w->w + n * K;
            __m512 a = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k + 16 <= K; k += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), widen16_512(r + k, w->dtype, 0xffff), a);
            if (tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + k), widen16_512(r + k, w->dtype, tail), a);
            y[m * N + n] = _mm512_reduce_add_ps(a) + (bias ? bias[n] : 0.0f);
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) static inline __m256 widen8_256(const uint16_t *p, pare_dtype dt)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return dt == PARE_BF16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
}

__attribute__((target("avx2,fma,f16c"))) static float hsum_256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) static void gemv_256(float *y, const float *xr, const pare_half_weight *w,
                                                             const float *bias, int64_t M, int64_t n0, int64_t n1)
{
    const int64_t N = w->N, K = w->K, K8 = K / 8 * 8;
    for (int64_t m = 0; m < M; m++) {
        const float *x = xr + m * K;
        for (int64_t n = n0; n < n1; n++) {
            const uint16_t *r = w->w + n * K;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            int64_t k = 0;
            for (; k + 16 <= K8; k += 16) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), widen8_256(r + k, w->dtype), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8), widen8_256(r + k + 8, w->dtype), a1);
            }
            if (k < K8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), widen8_256(r + k, w->dtype), a0);
            float s = hsum_256(_mm256_add_ps(a0, a1));
            for (k = K8; k < K; k++)
                s += x[k] * (w->dtype == PARE_BF16 ? pare_bf16_to_f32(r[k]) : pare_f16_to_f32(r[k]));
            y[m * N + n] = s + (bias ? bias[n] : 0.0f);
        }
    }
}
#endif

static void gemv_c(float *y, const float *xr, const pare_half_weight *w, const float *bias, int64_t M, int64_t n0, int64_t n1)
{
    const int64_t N = w->N, K = w->K;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = n0; n < n1; n++) {
            const uint16_t *r = w->w + n * K;
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++)
                s += xr[m * K + k] * (w->dtype == PARE_BF16 ? pare_bf16_to_f32(r[k]) : pare_f16_to_f32(r[k]));
            y[m * N + n] = s + (bias ? bias[n] : 0.0f);
        }
}

static void gemv(float *y, const float *xr, const pare_half_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K, blk = 64; /* output rows per task: 64·K·2 bytes of weights */
    void (*fn)(float *, const float *, const pare_half_weight *, const float *, int64_t, int64_t, int64_t) = gemv_c;
#ifdef HALF_X86
    const pare_cpu *c = pare_cpu_get();
    if (c->avx512bw && c->avx512vl) fn = gemv_512;
    else if (c->avx2 && c->fma && c->f16c) fn = gemv_256;
#endif
#pragma omp parallel for schedule(static) if (N * K > 65536)
    for (int64_t n0 = 0; n0 < N; n0 += blk) fn(y, xr, w, bias, M, n0, n0 + blk < N ? n0 + blk : N);
}

/* The widen kernel on f32 activations x (rounded here) or on activations xb already in w's dtype (widened
 * here, exactly); exactly one of x, xb is given. */
static pare_status widen_run(float *y, const float *x, const uint16_t *xb, const pare_half_weight *w, const float *bias,
                             int64_t M, void *work, size_t ws)
{
    const int64_t N = w->N, K = w->K, nbmax = tile_rows_max(w);
    const size_t xr_bytes = align64(sizeof(float) * (size_t)(M * K)), tile_bytes = align64(sizeof(float) * (size_t)(nbmax * K));
    if (!work || ws < xr_bytes + tile_bytes)
        return pare_fail(PARE_EINVAL, "half linear (widen): workspace of %zu bytes, %zu needed (M=%lld N=%lld K=%lld)", ws,
                         xr_bytes + tile_bytes, (long long)M, (long long)N, (long long)K);
    float *xr = work; /* (M, K): x on dt's grid */
    unsigned char *tiles = (unsigned char *)work + xr_bytes;
    if (M <= HALF_GEMV_M) { /* decoding-sized: dot products on the 16-bit weights, no tiles */
        for (int64_t m = 0; m < M; m++) {
            if (xb) pare_cast_from_half_fast(xr + m * K, xb + m * K, w->dtype, K);
            else pare_cast_round_fast(xr + m * K, x + m * K, w->dtype, K);
        }
        gemv(y, xr, w, bias, M);
        return PARE_OK;
    }
    int64_t slots = (int64_t)((ws - xr_bytes) / tile_bytes);
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > slots) nt = (int)slots;
    if (nt < 1) nt = 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (M * K > HALF_CONVERT_PAR)
    for (int64_t m = 0; m < M; m++) {
        if (xb) pare_cast_from_half_fast(xr + m * K, xb + m * K, w->dtype, K);
        else pare_cast_round_fast(xr + m * K, x + m * K, w->dtype, K);
    }
    /* tiles of nb rows, a multiple of the thread count, each at most nbmax rows */
    int64_t per = (N + (int64_t)nt * nbmax - 1) / ((int64_t)nt * nbmax); /* tiles per thread */
    int64_t nb = (N + (int64_t)nt * per - 1) / ((int64_t)nt * per);
    nb = (nb + 15) / 16 * 16;
    if (nb > nbmax) nb = nbmax;
    const int64_t ntiles = (N + nb - 1) / nb;
    if (nt > ntiles) nt = (int)ntiles;
#pragma omp parallel num_threads(nt)
    {
        float *Wt = (float *)(tiles + (size_t)omp_get_thread_num() * tile_bytes); /* (nb, K) */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntiles; t++) {
            int64_t n0 = t * nb, rows = n0 + nb <= N ? nb : N - n0;
            pare_cast_from_half_fast(Wt, w->w + n0 * K, w->dtype, rows * K);
            pare_sgemm(0, 1, M, rows, K, 1.0f, xr, K, Wt, K, 0.0f, y + n0, N); /* sequential in a parallel region */
            if (bias)
                for (int64_t m = 0; m < M; m++) {
                    float *yr = y + m * N + n0;
                    for (int64_t j = 0; j < rows; j++) yr[j] += bias[n0 + j];
                }
        }
    }
    return PARE_OK;
}

pare_status pare_linear_half_widen(float *y, const float *x, const pare_half_weight *w, const float *bias, int64_t M,
                                   void *work, size_t ws)
{
    PARE_TRY(check_args("half linear (widen)", y, x, w, M));
    return M ? widen_run(y, x, NULL, w, bias, M, work, ws) : PARE_OK;
}

pare_status pare_linear_half(float *y, const float *x, const pare_half_weight *w, const float *bias, int64_t M, void *work,
                             size_t ws)
{
    PARE_TRY(check_args("half linear", y, x, w, M));
    if (M == 0) return PARE_OK;
    if (!w->packed) return widen_run(y, x, NULL, w, bias, M, work, ws);
    const int64_t K = w->K;
    const size_t xb_bytes = align64(sizeof(uint16_t) * (size_t)(M * K));
    if (!work || ws < xb_bytes)
        return pare_fail(PARE_EINVAL, "half linear: workspace of %zu bytes, %zu needed (M=%lld K=%lld)", ws, xb_bytes,
                         (long long)M, (long long)K);
    uint16_t *xb = work; /* (M, K) in dt */
#pragma omp parallel for schedule(static) if (M * K > HALF_CONVERT_PAR)
    for (int64_t m = 0; m < M; m++) pare_cast_to_half_fast(xb + m * K, w->dtype, x + m * K, K);
    return pare_onednn_ip_run(w->packed, y, xb, bias, M, PARE_ONEDNN_POST_NONE, (unsigned char *)work + xb_bytes,
                              ws - xb_bytes, "half linear");
}

pare_status pare_linear_half_in16(float *y, const uint16_t *xh, const pare_half_weight *w, const float *bias, int64_t M,
                                  void *work, size_t ws)
{
    PARE_TRY(check_args("half linear (16-bit input)", y, (const float *)xh, w, M));
    if (M == 0) return PARE_OK;
    if (!w->packed) return widen_run(y, NULL, xh, w, bias, M, work, ws);
    /* already in the weights' dtype: the inner product reads it as it is; the whole workspace is scratchpad */
    return pare_onednn_ip_run(w->packed, y, xh, bias, M, PARE_ONEDNN_POST_NONE, work, work ? ws : 0,
                              "half linear (16-bit input)");
}

void pare_linear_half_ref(float *y, const float *x, const pare_half_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K;
    pare_dtype dt = w->dtype;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0;
            for (int64_t k = 0; k < K; k++) {
                uint16_t hx = dt == PARE_BF16 ? pare_f32_to_bf16(x[m * K + k]) : pare_f32_to_f16(x[m * K + k]);
                double a = dt == PARE_BF16 ? pare_bf16_to_f32(hx) : pare_f16_to_f32(hx);
                double b = dt == PARE_BF16 ? pare_bf16_to_f32(w->w[n * K + k]) : pare_f16_to_f32(w->w[n * K + k]);
                s += a * b;
            }
            y[m * N + n] = (float)s;
        }
}
