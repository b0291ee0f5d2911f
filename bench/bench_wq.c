/* bench_wq.c — speed of the weight-only Linears of kernels/wq.h (int8 / int3 / int2 groups, binary, ternary,
 * W4A8) beside the f32 Linear and qblock's int4 group kernel, at one thread.
 *
 *   OMP_NUM_THREADS=1 build/bench/bench_wq [gemv] [gemm]        (both by default; ~20 s)
 *   PARE_WQ_FORCE=avx2|scalar|avx512 build/bench/bench_wq        (cap the kernels' instruction set)
 *
 *   gemv   decode shape M = 1, N = K = 4096, weights hot (called back to back): gbps = weight bytes / time
 *   gemm   BERT shapes M = 128, (N,K) in {(768,768), (3072,768)}: gops = 2·M·N·K / time
 * Every kind at group 128 (binary / ternary: one α per row). A figure is the median of 9 samples after the
 * warm-up (bench_util.h); a sample times back-to-back calls for at least 4 ms, in wall time (ms) and in process
 * CPU time (cpu_ms: on a loaded machine the time the thread computed, not the time it waited for a core; gbps
 * and gops use it). f32_ms / f32_cpu_ms are pare_linear_f32 on the f32 weights; ratio = f32_ms / ms, cpu_ratio
 * the same in CPU time. The 1-minute load average is printed on each line. Nothing is asserted.
 *
 * Output, one measurement per line (key=value):
 *   wq kind=int2 g=128 M=1 N=4096 K=4096 threads=1 ms=... cpu_ms=... gbps=... gops=...
 *      f32_ms=... f32_cpu_ms=... ratio=... cpu_ratio=... bits=... impl=... load=...                         (one line)
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/qblock.h"
#include "kernels/wq.h"

#include "bench_util.h"

#define SAMPLES 9
#define SAMPLE_NS 4000000

typedef struct job {
    int what; /* 0 f32, 1 wq, 2 qblock */
    const float *x, *W;
    float *y;
    const pare_wq_weight *wq;
    const pare_qb_weight *qb;
    void *ws;
    int64_t M, N, K;
} job;

static void run(const job *j)
{
    pare_status st = PARE_OK;
    if (j->what == 0) pare_linear_f32(j->y, j->x, j->W, NULL, j->M, j->N, j->K);
    else if (j->what == 1) st = pare_linear_wq(j->y, j->x, j->wq, NULL, j->M, j->ws);
    else st = pare_linear_qb(j->y, j->x, j->qb, NULL, j->M, j->ws);
    if (st != PARE_OK) {
        fprintf(stderr, "bench_wq: %s\n", pare_errmsg());
        exit(1);
    }
}

static pare_status warm_fn(void *ctx, double *ms)
{
    int64_t t0 = pare_now_ns();
    run(ctx);
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median wall ms of one call; *cpu_ms: the median process CPU time of one call (on a loaded machine the time the
 * thread computed, not the time it also waited for a core; at one thread the steadier figure) */
static double measure(job *j, double *cpu_ms)
{
    bench_warm(warm_fn, j, 3);
    double s[SAMPLES], c[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) {
        int64_t t0 = pare_now_ns(), c0 = pare_cpu_ns(), n = 0;
        do run(j), n++;
        while (pare_now_ns() - t0 < SAMPLE_NS);
        s[i] = (double)(pare_now_ns() - t0) * 1e-6 / (double)n;
        c[i] = (double)(pare_cpu_ns() - c0) * 1e-6 / (double)n;
    }
    qsort(s, SAMPLES, sizeof s[0], cmpd);
    qsort(c, SAMPLES, sizeof c[0], cmpd);
    *cpu_ms = c[SAMPLES / 2];
    return s[SAMPLES / 2];
}

static const pare_wq_kind KINDS[] = {PARE_WQ_I8, PARE_WQ_I3, PARE_WQ_I2, PARE_WQ_BIN, PARE_WQ_TER, PARE_WQ_W4A8};

static void one_shape(int64_t M, int64_t N, int64_t K, pare_rng *rng)
{
    float *W = xalloc(sizeof(float) * (size_t)(N * K)), *x = xalloc(sizeof(float) * (size_t)(M * K)),
          *y = xalloc(sizeof(float) * (size_t)(M * N));
    for (int64_t i = 0; i < N * K; i++) W[i] = 0.05f * (float)pare_rng_normal(rng);
    for (int64_t i = 0; i < M * K; i++) x[i] = (float)pare_rng_normal(rng);
    job f = {0, x, W, y, NULL, NULL, NULL, M, N, K};
    double f32_cpu;
    const double f32_ms = measure(&f, &f32_cpu);
    const int64_t g = 128;
    int32_t *q = xalloc(sizeof(int32_t) * (size_t)(N * K));
    float *sc = xalloc(sizeof(float) * (size_t)(N * (K / g)));
    for (int ki = 0; ki <= 6; ki++) {
        pare_wq_weight wq = {0};
        pare_qb_weight qb = {0};
        pare_status st;
        const char *name;
        double bytes, bits;
        const char *impl;
        if (ki == 6) { /* qblock's int4 group kernel, for comparison */
            st = pare_qb_quantize(&qb, PARE_QB_I4G, W, N, K, g, 1);
            name = "int4_group", bytes = (double)pare_qb_bytes(&qb), bits = pare_qb_bits_per_weight(&qb), impl = pare_qb_impl(&qb);
        } else {
            pare_wq_kind k = KINDS[ki];
            name = pare_wq_kind_name(k);
            if (k == PARE_WQ_BIN || k == PARE_WQ_TER) st = pare_wq_quantize_sign(&wq, k, W, N, K);
            else { /* codes and scales of the right ranges; speed does not depend on their values */
                int b = k == PARE_WQ_W4A8 ? 4 : pare_wq_kind_bits(k), qm = (1 << (b - 1)) - 1;
                for (int64_t i = 0; i < N * K; i++) q[i] = (int32_t)(pare_rng_u64(rng) % (uint64_t)(2 * qm + 1)) - qm;
                for (int64_t i = 0; i < N * (K / g); i++) sc[i] = 0.01f;
                st = pare_wq_from_int(&wq, k, q, sc, NULL, N, K, g);
            }
            bytes = (double)pare_wq_bytes(&wq), bits = pare_wq_bits_per_weight(&wq), impl = pare_wq_impl(&wq, M);
        }
        if (st != PARE_OK) {
            fprintf(stderr, "bench_wq: %s\n", pare_errmsg());
            exit(1);
        }
        size_t wsb = ki == 6 ? pare_qb_workspace(&qb, M) : pare_wq_workspace(&wq, M);
        job j = {ki == 6 ? 2 : 1, x, W, y, &wq, &qb, wsb ? xalloc(wsb) : NULL, M, N, K};
        double cpu;
        double ms = measure(&j, &cpu);
        printf("wq kind=%s g=%lld M=%lld N=%lld K=%lld threads=%d ms=%.4f cpu_ms=%.4f gbps=%.2f gops=%.2f f32_ms=%.4f "
               "f32_cpu_ms=%.4f ratio=%.2f cpu_ratio=%.2f bits=%.3f impl=%s load=%s\n",
               name, (long long)(ki == 3 || ki == 4 ? K : g), (long long)M, (long long)N, (long long)K, omp_get_max_threads(), ms,
               cpu, bytes / cpu * 1e-6, 2.0 * (double)(M * N * K) / cpu * 1e-6, f32_ms, f32_cpu, f32_ms / ms, f32_cpu / cpu, bits,
               impl, load_note());
        fflush(stdout);
        free(j.ws);
        pare_wq_free(&wq);
        pare_qb_free(&qb);
    }
    free(W), free(x), free(y), free(q), free(sc);
}

int main(int argc, char **argv)
{
    int do_gemv = argc < 2, do_gemm = argc < 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "gemv")) do_gemv = 1;
        else if (!strcmp(argv[i], "gemm")) do_gemm = 1;
        else {
            fprintf(stderr, "bench_wq: unknown section '%s' (valid: gemv, gemm)\n", argv[i]);
            return 2;
        }
    }
    const char *force = getenv("PARE_WQ_FORCE");
    if (force && *force && pare_wq_set_isa(force) != PARE_OK) {
        fprintf(stderr, "bench_wq: PARE_WQ_FORCE: %s\n", pare_errmsg());
        return 2;
    }
    char feat[256];
    pare_cpu_features_str(feat, sizeof feat);
    printf("# cpu: %s\n# features: %s\n# threads: %d  load: %s\n", pare_cpu_get()->model, feat, omp_get_max_threads(), load_note());
    bench_warm_process();
    pare_rng rng;
    pare_rng_seed(&rng, 18);
    if (do_gemv) one_shape(1, 4096, 4096, &rng);
    if (do_gemm) {
        one_shape(128, 768, 768, &rng);
        one_shape(128, 3072, 768, &rng);
    }
    return 0;
}
