/* bench_qblock.c — speed of the block-quantized Linear (kernels/qblock.h) against the f32 Linear.
 *
 *   build/bench/bench_qblock [bandwidth] [qgemv] [qgemm] [newkinds]   (all three by default; ~45 s on 2 cores;
 *                                 newkinds: only q4_0 and the ggml-block kinds q5_0 q5_1 q4_k q5_k q6_k)
 *   PARE_QB_FORCE=avx2|scalar|avx512 build/bench/bench_qblock    (cap the kernels' instruction set)
 *
 * Measures, at 1 and 2 OpenMP threads:
 *   bandwidth  the machine's read bandwidth: a streaming sum over 256 MB, 4 interleaved streams per thread
 *              (AVX-512, else AVX2, else C); the median of 5 passes after passes until stable
 *   qgemv      decode shape, M = 1, N = K = 4096, for int4_group (g = 128 sym / asym, g = 32 sym),
 *              int8_group (g = 128), q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k. cache=cold: calls cycle through copies of the weight
 *              totalling >= 96 MB, so every call streams its weight from DRAM (4096² int4 is 8.4 MB and
 *              would otherwise sit in a 32 MB L3); cache=hot: one copy, called back to back.
 *              gbps = weight bytes (pare_qb_bytes) / time.
 *              f32_ms: the best of pare_linear_f32 and pare_linear_f32_packed on the f32 weight (64 MB, so
 *              always from DRAM); ratio = f32_ms / ms.
 *   qgemm      BERT shapes, M = 128, (N,K) in {(768,768), (3072,768), (768,3072)}: gops = 2·M·N·K / time;
 *              f32_ms and ratio as above (weights hot in both).
 * A measurement is the median of 9 samples after single calls until their timings are stable (at least
 * 2; bench_util.h: the process itself is warmed up first, bench_warm_process); a sample times
 * back-to-back calls for at least 4 ms and divides. The whole grid (qgemv, then qgemm) is measured in 3 rounds and each figure is
 * its best round's median: on a shared machine another process's burst then spoils a round, not the figure
 * (at 2 threads a busy second core still shows: OpenMP barriers wait a scheduler quantum, 4–8 ms, for the
 * descheduled thread; the 1-minute load average is printed). Nothing is asserted.
 *
 * Output, one measurement per line, the same keys on every line of a table (key=value, for experiments'
 * Lua scripts); everything else (CPU, load, the f32 baselines' details) on lines starting with '#':
 *   bandwidth threads=1 gbps=...
 *   qgemv kind=int4_group g=128 sym=1 M=1 N=4096 K=4096 threads=1 cache=cold ms=... gbps=... f32_ms=... ratio=...
 *         bits=... warmup=... impl=...    (warmup: the warm-up calls of the round kept)                                                            (one line)
 *   qgemm kind=q4_0 g=32 sym=1 M=128 N=3072 K=768 threads=1 ms=... gops=... f32_ms=... ratio=... warmup=... impl=...
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include "core/cpu.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/qblock.h"

#include "bench_util.h"

#define SAMPLES 9
#define SAMPLE_NS 4000000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- timing: fn(ctx, i) is call i ---- */

typedef void (*call_fn)(void *ctx, int64_t i);

typedef struct warm_call { call_fn fn; void *ctx; int64_t i; } warm_call;

static pare_status warm_one(void *p, double *ms)
{
    warm_call *w = p;
    int64_t t0 = pare_now_ns();
    w->fn(w->ctx, w->i++);
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

/* Median of SAMPLES samples (each >= 4 ms of back-to-back calls) after single calls until their timings
 * are stable (at least 2: bench_util.h); *warm = the warm-up calls. */
static double time_ms(call_fn fn, void *ctx, int64_t *warm)
{
    warm_call wc = {fn, ctx, 0};
    *warm = bench_warm(warm_one, &wc, 2).runs;
    double s[SAMPLES];
    int64_t i = wc.i;
    for (int r = 0; r < SAMPLES; r++) {
        int64_t t0 = pare_now_ns(), calls = 0, t;
        do {
            fn(ctx, i++);
            calls++;
            t = pare_now_ns();
        } while (t - t0 < SAMPLE_NS);
        s[r] = (double)(t - t0) / 1e6 / (double)calls;
    }
    return median(s, SAMPLES);
}

/* ---- bandwidth ---- */

/* Sum of a[0, n) read as 4 interleaved streams (quarters of the range): one stream per core leaves the
 * DRAM bandwidth to a single prefetcher stream and measures ~40% less than a GEMV reaches. */
#ifdef BENCH_X86
__attribute__((target("avx512f"))) static float sum_avx512(const float *a, int64_t n)
{
    const int64_t q = n / 4 / 16 * 16;
    const float *a0 = a, *a1 = a + q, *a2 = a + 2 * q, *a3 = a + 3 * q;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i < q; i += 16) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(a0 + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(a1 + i));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(a2 + i));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(a3 + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2"))) static float sum_avx2(const float *a, int64_t n)
{
    const int64_t q = n / 4 / 16 * 16;
    const float *a0 = a, *a1 = a + q, *a2 = a + 2 * q, *a3 = a + 3 * q;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i < q; i += 16) {
        s0 = _mm256_add_ps(s0, _mm256_add_ps(_mm256_load_ps(a0 + i), _mm256_load_ps(a0 + i + 8)));
        s1 = _mm256_add_ps(s1, _mm256_add_ps(_mm256_load_ps(a1 + i), _mm256_load_ps(a1 + i + 8)));
        s2 = _mm256_add_ps(s2, _mm256_add_ps(_mm256_load_ps(a2 + i), _mm256_load_ps(a2 + i + 8)));
        s3 = _mm256_add_ps(s3, _mm256_add_ps(_mm256_load_ps(a3 + i), _mm256_load_ps(a3 + i + 8)));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

static float sum_c(const float *a, int64_t n)
{
    const int64_t q = n / 4 / 8 * 8;
    float s[4][8] = {{0}};
    for (int64_t i = 0; i < q; i += 8)
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 8; j++) s[k][j] += a[k * q + i + j];
    float t = 0;
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 8; j++) t += s[k][j];
    return t;
}

static volatile float g_sink;

typedef struct bw_ctx { float (*sum)(const float *, int64_t); const float *a; int64_t n; int threads; } bw_ctx;

/* One streaming pass over a[0, n) on `threads` threads; *ms its time. */
static pare_status bw_pass(void *p, double *ms)
{
    bw_ctx *c = p;
    int64_t t0 = pare_now_ns();
    float tot = 0;
#pragma omp parallel num_threads(c->threads) reduction(+ : tot)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t chunk = c->n / nt / 64 * 64, lo = t * chunk, hi = t == nt - 1 ? c->n : lo + chunk;
        tot += c->sum(c->a + lo, hi - lo);
    }
    g_sink = tot;
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

static double bandwidth_gbps(const float *a, int64_t n, int threads)
{
    float (*sum)(const float *, int64_t) = sum_c;
#ifdef BENCH_X86
    if (pare_cpu_get()->avx512f) sum = sum_avx512;
    else if (pare_cpu_get()->avx2) sum = sum_avx2;
#endif
    bw_ctx c = {sum, a, n, threads};
    bench_warm(bw_pass, &c, 1);
    double s[5];
    for (int r = 0; r < 5; r++) {
        double ms;
        bw_pass(&c, &ms);
        s[r] = (double)n * sizeof(float) / (ms * 1e-3) / 1e9;
    }
    return median(s, 5);
}

/* ---- the Linear calls ---- */

typedef struct q_ctx {
    pare_qb_weight *w; /* ncopies weights, identical contents */
    int ncopies;
    float *y, *x;
    const float *bias;
    int64_t M;
    void *ws;
} q_ctx;

static void call_q(void *p, int64_t i)
{
    q_ctx *c = p;
    if (pare_linear_qb(c->y, c->x, &c->w[i % c->ncopies], c->bias, c->M, c->ws) != PARE_OK) {
        fprintf(stderr, "bench_qblock: %s\n", pare_errmsg());
        exit(1);
    }
}

typedef struct f_ctx {
    const float *W;
    pare_f32_packed *wp;
    float *y, *x;
    const float *bias;
    int64_t M, N, K;
} f_ctx;

static void call_f32(void *p, int64_t i)
{
    (void)i;
    f_ctx *c = p;
    pare_linear_f32(c->y, c->x, c->W, c->bias, c->M, c->N, c->K);
}

static void call_f32_packed(void *p, int64_t i)
{
    (void)i;
    f_ctx *c = p;
    if (c->wp) pare_linear_f32_packed(c->y, c->x, c->wp, c->bias, c->M);
}

/* A deep copy of w's arrays (for the cold-cache rotation). */
static void qb_copy(pare_qb_weight *dst, const pare_qb_weight *src)
{
    *dst = *src;
    if (!src->scale) { /* the ggml-block kinds: everything is in qs */
        size_t n = pare_qb_bytes(src);
        dst->qs = xalloc(n);
        memcpy(dst->qs, src->qs, n);
        return;
    }
    size_t ng = (size_t)(src->N * (src->K / src->group));
    size_t qb = (size_t)src->N * (size_t)(src->kind == PARE_QB_I8G || src->kind == PARE_QB_Q8_0 ? src->K : src->K / 2);
    dst->qs = xalloc(qb);
    memcpy(dst->qs, src->qs, qb);
    dst->scale = xalloc(ng * 2);
    memcpy(dst->scale, src->scale, ng * 2);
    if (src->min) dst->min = xalloc(ng * 2), memcpy(dst->min, src->min, ng * 2);
    if (src->zero) dst->zero = xalloc(ng), memcpy(dst->zero, src->zero, ng);
}

typedef struct kind_cfg {
    pare_qb_kind kind;
    int64_t g;
    int sym;
} kind_cfg;

static const kind_cfg GEMV_KINDS[] = {
    {PARE_QB_I4G, 128, 1}, {PARE_QB_I4G, 128, 0}, {PARE_QB_I4G, 32, 1}, {PARE_QB_I8G, 128, 1},
    {PARE_QB_Q8_0, 32, 1}, {PARE_QB_Q4_0, 32, 1}, {PARE_QB_Q4_1, 32, 0}, {PARE_QB_Q5_0, 32, 1},
    {PARE_QB_Q5_1, 32, 0}, {PARE_QB_Q4_K, 256, 0}, {PARE_QB_Q5_K, 256, 0}, {PARE_QB_Q6_K, 256, 1},
};
static const kind_cfg GEMM_KINDS[] = {
    {PARE_QB_I4G, 128, 1}, {PARE_QB_I8G, 128, 1}, {PARE_QB_Q8_0, 32, 1}, {PARE_QB_Q4_0, 32, 1}, {PARE_QB_Q4_1, 32, 0},
    {PARE_QB_Q5_0, 32, 1}, {PARE_QB_Q5_1, 32, 0}, {PARE_QB_Q4_K, 256, 0}, {PARE_QB_Q5_K, 256, 0}, {PARE_QB_Q6_K, 256, 1},
};
#define NGEMV_ALL (int)(sizeof GEMV_KINDS / sizeof GEMV_KINDS[0])
#define NGEMM_ALL (int)(sizeof GEMM_KINDS / sizeof GEMM_KINDS[0])
/* "newkinds" on the command line: only q4_0 (for comparison) and the ggml-block kinds, a shorter run */
static int g_first_gemv = 0, g_first_gemm = 0;
#define NGEMV NGEMV_ALL
#define NGEMM NGEMM_ALL

static pare_rng g_rng;

static float *randn(int64_t n, float s)
{
    float *x = xalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = s * (float)pare_rng_normal(&g_rng);
    return x;
}

/* ---- the grid: every measurement once per round; each figure is its best round's median ---- */

#define ROUNDS 3

typedef struct meas {
    call_fn fn;
    void *ctx;
    int threads;
    double ms; /* best over rounds */
    int64_t warm; /* warm-up calls of that round */
} meas;

static void measure_rounds(meas *m, int n)
{
    for (int i = 0; i < n; i++) m[i].ms = 1e30;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < n; i++) {
            pare_set_num_threads(m[i].threads);
            int64_t warm;
            double t = time_ms(m[i].fn, m[i].ctx, &warm);
            if (t < m[i].ms) m[i].ms = t, m[i].warm = warm;
        }
}

static void bench_gemv(void)
{
    const int64_t N = 4096, K = 4096, M = 1;
    float *W = randn(N * K, 0.02f), *x = randn(K, 1.0f), *bias = randn(N, 0.1f), *y = xalloc((size_t)N * sizeof(float));
    f_ctx fc = {.W = W, .y = y, .x = x, .bias = bias, .M = M, .N = N, .K = K};
    if (pare_f32_weight_pack(&fc.wp, W, N, K) != PARE_OK) fc.wp = NULL;
    pare_qb_weight *copies[NGEMV];
    q_ctx qc[NGEMV][2];
    int ncopies[NGEMV];
    meas m[4 + 4 * NGEMV];
    int nm = 0;
    for (int th = 1; th <= 2; th++) {
        m[nm++] = (meas){call_f32, &fc, th, 0, 0};
        m[nm++] = (meas){call_f32_packed, &fc, th, 0, 0};
    }
    for (int ki = g_first_gemv; ki < NGEMV; ki++) {
        kind_cfg kc = GEMV_KINDS[ki];
        pare_qb_weight w0;
        if (pare_qb_quantize(&w0, kc.kind, W, N, K, kc.g, kc.sym) != PARE_OK) {
            fprintf(stderr, "bench_qblock: %s\n", pare_errmsg());
            exit(1);
        }
        ncopies[ki] = (int)((96u << 20) / pare_qb_bytes(&w0)) + 1;
        copies[ki] = xalloc((size_t)ncopies[ki] * sizeof(pare_qb_weight));
        copies[ki][0] = w0;
        for (int i = 1; i < ncopies[ki]; i++) qb_copy(&copies[ki][i], &w0);
        size_t wsb = pare_qb_workspace(&w0, M);
        void *ws = wsb ? xalloc(wsb) : NULL;
        for (int hot = 0; hot <= 1; hot++)
            qc[ki][hot] = (q_ctx){.w = copies[ki], .ncopies = hot ? 1 : ncopies[ki], .y = y, .x = x, .bias = bias,
                                  .M = M, .ws = ws};
        for (int th = 1; th <= 2; th++)
            for (int hot = 0; hot <= 1; hot++) m[nm++] = (meas){call_q, &qc[ki][hot], th, 0, 0};
    }
    measure_rounds(m, nm);
    double f32_ms[3];
    for (int th = 1; th <= 2; th++) {
        meas *a = &m[2 * (th - 1)], *b = &m[2 * (th - 1) + 1];
        int packed = fc.wp && b->ms < a->ms;
        f32_ms[th] = packed ? b->ms : a->ms;
        printf("# f32 GEMV M=1 N=%lld K=%lld threads=%d: best %.4f ms (%.2f GB/s); pare_linear_f32 %.4f ms, "
               "pare_linear_f32_packed %.4f ms -> %s\n",
               (long long)N, (long long)K, th, f32_ms[th], (double)(N * K * 4) / (f32_ms[th] * 1e6), a->ms,
               fc.wp ? b->ms : -1.0, packed ? "f32_packed" : "f32_linear");
    }
    for (int ki = g_first_gemv, i = 4; ki < NGEMV; ki++) {
        const pare_qb_weight *w = &copies[ki][0];
        for (int th = 1; th <= 2; th++)
            for (int hot = 0; hot <= 1; hot++, i++)
                printf(
                    "qgemv kind=%s g=%lld sym=%d M=1 N=%lld K=%lld threads=%d cache=%s ms=%.4f gbps=%.2f f32_ms=%.4f "
                    "ratio=%.2f bits=%.4f warmup=%lld impl=%s\n",
                    pare_qb_kind_name(w->kind), (long long)w->group, w->symmetric, (long long)N, (long long)K, th,
                    hot ? "hot" : "cold", m[i].ms, (double)pare_qb_bytes(w) / (m[i].ms * 1e6), f32_ms[th],
                    f32_ms[th] / m[i].ms, pare_qb_bits_per_weight(w), (long long)m[i].warm, pare_qb_impl(w));
        free(qc[ki][0].ws);
        for (int i2 = 0; i2 < ncopies[ki]; i2++) pare_qb_free(&copies[ki][i2]);
        free(copies[ki]);
    }
    printf("# qgemv done, load average %s\n", load_note());
    pare_f32_packed_free(fc.wp);
    free(W);
    free(x);
    free(bias);
    free(y);
}

static void bench_gemm(void)
{
    const int64_t M = 128, shapes[3][2] = {{768, 768}, {3072, 768}, {768, 3072}};
    f_ctx fc[3];
    pare_qb_weight w[3][NGEMM];
    q_ctx qc[3][NGEMM];
    meas m[3 * (4 + 2 * NGEMM)];
    int nm = 0;
    for (int si = 0; si < 3; si++) {
        const int64_t N = shapes[si][0], K = shapes[si][1];
        float *W = randn(N * K, 0.05f);
        fc[si] = (f_ctx){.W = W, .y = xalloc((size_t)(M * N) * sizeof(float)), .x = randn(M * K, 1.0f),
                         .bias = randn(N, 0.1f), .M = M, .N = N, .K = K};
        if (pare_f32_weight_pack(&fc[si].wp, W, N, K) != PARE_OK) fc[si].wp = NULL;
        for (int th = 1; th <= 2; th++) {
            m[nm++] = (meas){call_f32, &fc[si], th, 0, 0};
            m[nm++] = (meas){call_f32_packed, &fc[si], th, 0, 0};
        }
        for (int ki = g_first_gemm; ki < NGEMM; ki++) {
            kind_cfg kc = GEMM_KINDS[ki];
            if (pare_qb_quantize(&w[si][ki], kc.kind, W, N, K, kc.g, kc.sym) != PARE_OK) {
                fprintf(stderr, "bench_qblock: %s\n", pare_errmsg());
                exit(1);
            }
            size_t wsb = pare_qb_workspace(&w[si][ki], M);
            qc[si][ki] = (q_ctx){.w = &w[si][ki], .ncopies = 1, .y = fc[si].y, .x = fc[si].x, .bias = fc[si].bias,
                                 .M = M, .ws = wsb ? xalloc(wsb) : NULL};
            for (int th = 1; th <= 2; th++) m[nm++] = (meas){call_q, &qc[si][ki], th, 0, 0};
        }
    }
    measure_rounds(m, nm);
    for (int si = 0, i = 0; si < 3; si++) {
        const int64_t N = shapes[si][0], K = shapes[si][1];
        const double ops = 2.0 * (double)(M * N * K);
        double f32_ms[3];
        for (int th = 1; th <= 2; th++, i += 2) {
            int packed = fc[si].wp && m[i + 1].ms < m[i].ms;
            f32_ms[th] = packed ? m[i + 1].ms : m[i].ms;
            printf("# f32 Linear M=%lld N=%lld K=%lld threads=%d: best %.4f ms (%.1f GOP/s); pare_linear_f32 %.4f "
                   "ms, pare_linear_f32_packed %.4f ms -> %s\n",
                   (long long)M, (long long)N, (long long)K, th, f32_ms[th], ops / (f32_ms[th] * 1e6), m[i].ms,
                   fc[si].wp ? m[i + 1].ms : -1.0, packed ? "f32_packed" : "f32_linear");
        }
        for (int ki = g_first_gemm; ki < NGEMM; ki++)
            for (int th = 1; th <= 2; th++, i++)
                printf("qgemm kind=%s g=%lld sym=%d M=%lld N=%lld K=%lld threads=%d ms=%.4f gops=%.1f f32_ms=%.4f "
                       "ratio=%.2f warmup=%lld impl=%s\n",
                       pare_qb_kind_name(w[si][ki].kind), (long long)w[si][ki].group, w[si][ki].symmetric, (long long)M,
                       (long long)N, (long long)K, th, m[i].ms, ops / (m[i].ms * 1e6), f32_ms[th], f32_ms[th] / m[i].ms,
                       (long long)m[i].warm, pare_qb_impl(&w[si][ki]));
        for (int ki = g_first_gemm; ki < NGEMM; ki++) {
            free(qc[si][ki].ws);
            pare_qb_free(&w[si][ki]);
        }
        pare_f32_packed_free(fc[si].wp);
        free((void *)fc[si].W);
        free(fc[si].x);
        free(fc[si].y);
        free((void *)fc[si].bias);
    }
    printf("# qgemm done, load average %s\n", load_note());
}

static int wants(int argc, char **argv, const char *what)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], what)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *force = getenv("PARE_QB_FORCE");
    if (force && *force && pare_qb_set_isa(force) != PARE_OK) {
        fprintf(stderr, "bench_qblock: PARE_QB_FORCE: %s\n", pare_errmsg());
        return 1;
    }
    pare_rng_seed(&g_rng, 7);
    char feats[256], be[256];
    printf("# cpu: %s; features: %s; backends: %s; PARE_QB_FORCE: %s\n", pare_cpu_get()->model,
           pare_cpu_features_str(feats, (int)sizeof feats), pare_kernel_backends(be, sizeof be),
           force ? force : "auto");
    printf("# load average (1 min): %s\n", load_note());
    bench_warm_process();

    if (wants(argc, argv, "bandwidth")) {
        const int64_t n = (int64_t)(256u << 20) / (int64_t)sizeof(float);
        float *a = xalloc((size_t)n * sizeof(float));
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) a[i] = (float)(i & 7);
        for (int th = 1; th <= 2; th++) printf("bandwidth threads=%d gbps=%.2f\n", th, bandwidth_gbps(a, n, th));
        free(a);
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "newkinds")) g_first_gemv = 5, g_first_gemm = 3; /* from q4_0 on */
    if (wants(argc, argv, "qgemv")) bench_gemv();
    if (wants(argc, argv, "qgemm")) bench_gemm();
    return 0;
}
