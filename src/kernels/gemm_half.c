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

/* ---- training: refresh and backward ----
 *
 * Mixed-precision training with f32 master weights (gemm_half.h "Training"): the optimizer updates the master,
 * pare_half_weight_refresh rounds it into the stored weights again, and backward runs on 16-bit operands with f32
 * sums:
 *   dx (M,K) += r(dy) (M,N) · W (N,K)       differentiates y = r(x) · W^T + b in x (the rounding of x passes the
 *                                            gradient straight through, as autocast's casts do)
 *   dW (N,K) += r(dy)^T (N,M) · r(x) (M,K)  in W, which is the master's gradient
 *   db (N)   += Σ_m dy (M,N)                f32, dy as it is (no product, nothing to round for)
 * oneDNN path: dy rounded once into (M,N) dt, x rounded into (M,K) dt (or read as it is), two matmuls with a sum
 * post-op (dx's B is the stored W row-major; dW's A is r(dy) read transposed, tag ba), created per call (oneDNN's
 * primitive cache makes that cheap after the first step). Widen path: the same operands on the grid in f32 and
 * pare_sgemm (beta 1), with W widened whole. */

/* oneDNN spreads even a tiny problem over every OpenMP thread; on a machine shared with other jobs, a two-thread
 * region around a few microseconds of work waits for whichever thread is descheduled (measured on a 96×32 weight,
 * 2 threads, load ~4: the refresh's reorder 40–110 µs threaded, 5–35 µs on one thread). Below these sizes they run
 * on the calling thread: the multiply-adds of a backward matmul, the elements of a reorder. */
#define HALF_MM_SERIAL ((int64_t)1 << 22)
#define HALF_REORDER_SERIAL ((int64_t)1 << 18)

/* Run the next oneDNN calls on one thread when `serial`: returns the thread count to restore (0: nothing to do). */
static int serial_begin(int serial)
{
    int t = omp_get_max_threads();
    if (!serial || t == 1 || omp_in_parallel()) return 0;
    omp_set_num_threads(1);
    return t;
}
static void serial_end(int saved)
{
    if (saved) omp_set_num_threads(saved);
}

pare_status pare_half_weight_refresh(pare_half_weight *w, const float *W)
{
    if (!w || !w->w || !W || !is_half_dtype(w->dtype)) return pare_fail(PARE_EINVAL, "half weight refresh: no 16-bit weights");
    const int64_t N = w->N, K = w->K;
#pragma omp parallel for schedule(static) if (N * K > HALF_CONVERT_PAR)
    for (int64_t n = 0; n < N; n++) pare_cast_to_half_fast(w->w + n * K, w->dtype, W + n * K, K);
    if (!w->packed) return PARE_OK;
    int saved = serial_begin(N * K < HALF_REORDER_SERIAL);
    pare_status st = pare_onednn_ip_repack(w->packed, w->w, "half weight refresh");
    serial_end(saved);
    return st;
}

static pare_status check_bwd(const char *what, float *dx, float *dw, const float *dy, const float *x, const uint16_t *xh,
                             const pare_half_weight *w, int64_t M)
{
    if (!w || !w->w || !is_half_dtype(w->dtype)) return pare_fail(PARE_EINVAL, "%s: no 16-bit weights", what);
    if (M < 0) return pare_fail(PARE_EINVAL, "%s: M=%lld: must be >= 0", what, (long long)M);
    if (M && !dy) return pare_fail(PARE_EINVAL, "%s: NULL dy", what);
    if (M && dw && (!x) == (!xh)) return pare_fail(PARE_EINVAL, "%s: dW needs the input, as f32 x or 16-bit xh (exactly one)", what);
    (void)dx;
    return PARE_OK;
}

/* dbias (N) += Σ_m dy[m, :]: column slices of 64, each summed over all rows in row order into a local copy (the
 * sums of pare_linear_f32_backward's loop, bit for bit: no race, the same whatever the thread count; the local
 * accumulator lets the compiler keep it in registers). */
static void bias_grad(float *restrict dbias, const float *restrict dy, int64_t M, int64_t N)
{
#pragma omp parallel for schedule(static) if (M * N >= 32768)
    for (int64_t n0 = 0; n0 < N; n0 += 64) {
        const int64_t w = n0 + 64 < N ? 64 : N - n0;
        float acc[64];
        memcpy(acc, dbias + n0, sizeof(float) * (size_t)w);
        for (int64_t m = 0; m < M; m++) {
            const float *r = dy + m * N + n0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++) acc[j] += r[j];
        }
        memcpy(dbias + n0, acc, sizeof(float) * (size_t)w);
    }
}

/* out (rows, cols) = in on dt's grid: rounded (f32 in) or widened (16-bit in), a row per task */
static void grid_rows(float *out, const float *in, const uint16_t *inh, pare_dtype dt, int64_t rows, int64_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > HALF_CONVERT_PAR)
    for (int64_t r = 0; r < rows; r++) {
        if (inh) pare_cast_from_half_fast(out + r * cols, inh + r * cols, dt, cols);
        else pare_cast_round_fast(out + r * cols, in + r * cols, dt, cols);
    }
}

static void half_rows(uint16_t *out, const float *in, pare_dtype dt, int64_t rows, int64_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > HALF_CONVERT_PAR)
    for (int64_t r = 0; r < rows; r++) pare_cast_to_half_fast(out + r * cols, dt, in + r * cols, cols);
}

static pare_status bwd_widen(float *dx, float *dw, float *dbias, const float *dy, const float *x, const uint16_t *xh,
                             const pare_half_weight *w, int64_t M)
{
    const int64_t N = w->N, K = w->K;
    const size_t dy_b = align64(sizeof(float) * (size_t)(M * N)), x_b = dw ? align64(sizeof(float) * (size_t)(M * K)) : 0,
                 w_b = dx ? align64(sizeof(float) * (size_t)(N * K)) : 0;
    unsigned char *s = NULL;
    if ((dx || dw) && posix_memalign((void **)&s, 64, dy_b + x_b + w_b))
        return pare_fail(PARE_ENOMEM, "half linear backward: out of memory for %zu bytes of scratch (M=%lld N=%lld K=%lld)",
                         dy_b + x_b + w_b, (long long)M, (long long)N, (long long)K);
    if (dx || dw) {
        float *dyr = (float *)s, *xr = (float *)(s + dy_b), *Wf = (float *)(s + dy_b + x_b); /* (M,N) (M,K) (N,K) */
        grid_rows(dyr, dy, NULL, w->dtype, M, N);
        if (dx) {
            grid_rows(Wf, NULL, w->w, w->dtype, N, K);
            pare_sgemm(0, 0, M, K, N, 1.0f, dyr, N, Wf, K, 1.0f, dx, K);
        }
        if (dw) {
            grid_rows(xr, x, xh, w->dtype, M, K);
            pare_sgemm(1, 0, N, K, M, 1.0f, dyr, N, xr, K, 1.0f, dw, K);
        }
    }
    if (dbias) bias_grad(dbias, dy, M, N);
    free(s);
    return PARE_OK;
}

pare_status pare_linear_half_backward_widen(float *dx, float *dw, float *dbias, const float *dy, const float *x,
                                            const uint16_t *xh, const pare_half_weight *w, int64_t M)
{
    PARE_TRY(check_bwd("half linear backward (widen)", dx, dw, dy, x, xh, w, M));
    return M ? bwd_widen(dx, dw, dbias, dy, x, xh, w, M) : PARE_OK;
}

/* C (M,N) f32 += A (M,K) · B (K,N) on dt operands (A stored transposed, (K,M) row-major, with transa): a oneDNN
 * matmul with a sum post-op, planned for the current OpenMP thread count. */
typedef struct half_mm {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a, b, c;
} half_mm;

/* 1 and mm->prim set where oneDNN runs dt's products natively (its implementation is written to impl), else 0. */
static int mm_make(half_mm *mm, pare_dtype dt, int transa, int64_t M, int64_t N, int64_t K, char *impl, size_t n)
{
    memset(mm, 0, sizeof *mm);
    if (impl && n) snprintf(impl, n, "unknown");
    dnnl_engine_t eng = pare_onednn_engine();
    if (!eng) return 0;
    dnnl_data_type_t d = dt == PARE_BF16 ? dnnl_bf16 : dnnl_f16;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_matmul_desc_t desc;
    if (dnnl_memory_desc_init_by_tag(&mm->a, 2, ad, d, transa ? dnnl_ba : dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&mm->b, 2, bd, d, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&mm->c, 2, cd, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_matmul_desc_init(&desc, &mm->a, &mm->b, NULL, &mm->c) != dnnl_success)
        return 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = 0;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return 0;
    if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
        dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL) != dnnl_success)
        goto done;
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) goto done;
    if (impl && n) snprintf(impl, n, "%s", s);
    if (!native_impl(s)) goto done; /* an emulation (gemm:jit, ref): the widen path is faster */
    ok = dnnl_primitive_create(&mm->prim, pd) == dnnl_success;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (!ok) mm->prim = NULL;
    return ok;
}

static void mm_free(half_mm *mm)
{
    if (mm->prim) dnnl_primitive_destroy(mm->prim);
    mm->prim = NULL;
}

static pare_status mm_run(const half_mm *mm, float *C, const void *A, const void *B)
{
    dnnl_engine_t eng = pare_onednn_engine();
    dnnl_memory_t m[3] = {NULL};
    dnnl_stream_t stream = NULL;
    pare_status st = PARE_EINTERNAL;
    if (dnnl_memory_create(&m[0], &mm->a, eng, (void *)A) != dnnl_success ||
        dnnl_memory_create(&m[1], &mm->b, eng, (void *)B) != dnnl_success ||
        dnnl_memory_create(&m[2], &mm->c, eng, C) != dnnl_success ||
        dnnl_stream_create(&stream, eng, dnnl_stream_default_flags) != dnnl_success)
        goto done;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}};
    if (dnnl_primitive_execute(mm->prim, stream, 3, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success)
        st = PARE_OK;
done:
    if (stream) dnnl_stream_destroy(stream);
    for (int i = 0; i < 3; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    return st;
}

pare_status pare_linear_half_backward(float *dx, float *dw, float *dbias, const float *dy, const float *x, const uint16_t *xh,
                                      const pare_half_weight *w, int64_t M)
{
    PARE_TRY(check_bwd("half linear backward", dx, dw, dy, x, xh, w, M));
    if (M == 0) return PARE_OK;
    /* oneDNN only where its forward is native for dt (w->packed) and its matmuls are too */
    const int64_t N = w->N, K = w->K;
    half_mm mdx = {0}, mdw = {0};
    int saved = serial_begin(M * N * K < HALF_MM_SERIAL); /* planned and run on one thread (above) */
    if (!w->packed || (!dx && !dw) || (dx && !mm_make(&mdx, w->dtype, 0, M, K, N, NULL, 0)) ||
        (dw && !mm_make(&mdw, w->dtype, 1, N, K, M, NULL, 0))) {
        mm_free(&mdx), mm_free(&mdw);
        serial_end(saved);
        return bwd_widen(dx, dw, dbias, dy, x, xh, w, M);
    }
    const size_t dy_b = align64(sizeof(uint16_t) * (size_t)(M * N)), x_b = dw && !xh ? align64(sizeof(uint16_t) * (size_t)(M * K)) : 0;
    unsigned char *s = NULL;
    if (posix_memalign((void **)&s, 64, dy_b + x_b)) {
        mm_free(&mdx), mm_free(&mdw);
        serial_end(saved);
        return pare_fail(PARE_ENOMEM, "half linear backward: out of memory for %zu bytes of scratch (M=%lld N=%lld K=%lld)",
                         dy_b + x_b, (long long)M, (long long)N, (long long)K);
    }
    uint16_t *dyb = (uint16_t *)s, *xb = xh ? (uint16_t *)xh : (uint16_t *)(s + dy_b); /* (M,N) (M,K) in dt */
    half_rows(dyb, dy, w->dtype, M, N);
    if (dw && !xh) half_rows(xb, x, w->dtype, M, K);
    /* oneDNN validates its arguments before it computes: a run that fails has written nothing, and the widen path
     * adds that gradient instead */
    int redo_dx = dx && mm_run(&mdx, dx, dyb, w->w) != PARE_OK;  /* dx (M,K) += r(dy) (M,N) · W (N,K) */
    int redo_dw = dw && mm_run(&mdw, dw, dyb, xb) != PARE_OK;     /* dW (N,K) += r(dy)^T (N,M) · r(x) (M,K) */
    serial_end(saved);
    free(s);
    mm_free(&mdx), mm_free(&mdw);
    pare_status st = PARE_OK;
    if (redo_dx || redo_dw) st = bwd_widen(redo_dx ? dx : NULL, redo_dw ? dw : NULL, NULL, dy, x, xh, w, M);
    if (dbias) bias_grad(dbias, dy, M, N);
    return st;
}

void pare_linear_half_backward_ref(float *dx, float *dw, float *dbias, const float *dy, const float *x, const uint16_t *xh,
                                   const pare_half_weight *w, int64_t M)
{
    const int64_t N = w->N, K = w->K;
    const pare_dtype dt = w->dtype;
#define HALF_R(v) (dt == PARE_BF16 ? (double)pare_bf16_to_f32(pare_f32_to_bf16(v)) : (double)pare_f16_to_f32(pare_f32_to_f16(v)))
#define HALF_W(h) (dt == PARE_BF16 ? (double)pare_bf16_to_f32(h) : (double)pare_f16_to_f32(h))
    if (dx)
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++) {
                double s = dx[m * K + k];
                for (int64_t n = 0; n < N; n++) s += HALF_R(dy[m * N + n]) * HALF_W(w->w[n * K + k]);
                dx[m * K + k] = (float)s;
            }
    if (dw)
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                double s = dw[n * K + k];
                for (int64_t m = 0; m < M; m++)
                    s += HALF_R(dy[m * N + n]) * (xh ? HALF_W(xh[m * K + k]) : HALF_R(x[m * K + k]));
                dw[n * K + k] = (float)s;
            }
#undef HALF_R
#undef HALF_W
    if (dbias)
        for (int64_t n = 0; n < N; n++) {
            double s = dbias[n];
            for (int64_t m = 0; m < M; m++) s += dy[m * N + n];
            dbias[n] = (float)s;
        }
}

const char *pare_linear_half_backward_impl(const pare_half_weight *w, int64_t M, char *buf, size_t n)
{
    half_mm a = {0}, b = {0};
    char ia[64] = "", ib[64] = "";
    int native = w->packed && M > 0 && mm_make(&a, w->dtype, 0, M, w->K, w->N, ia, sizeof ia) &&
                 mm_make(&b, w->dtype, 1, w->N, w->K, M, ib, sizeof ib);
    mm_free(&a), mm_free(&b);
    snprintf(buf, n, "%s", native ? ia : "pare:widen");
    return buf;
}
