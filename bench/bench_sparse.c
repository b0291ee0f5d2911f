/* bench_sparse.c — speed of the sparse Linear kernels (kernels/sparse.h) against pare's dense f32 Linear
 * (issue 13's targets).
 *
 *   build/bench/bench_sparse [threads=1] [pairs=9] [quick=0] [shape=768x3072]
 *   (quick=1: the four target layouts only; shape: one of 768x768, 3072x768, 768x3072 as NxK)
 *
 * Shapes: BERT-base Linear (N, K) in {(768, 768), (3072, 768), (768, 3072)}, at M = 128 tokens (batch 1 × 128)
 * and M = 1 (a decode GEMV). The dense baseline is what pare's inference executor runs for an f32 Linear:
 * pare_linear_f32_packed (oneDNN's inner product on weights packed once, bias fused). Weights N(0,1) with a
 * random pattern of the given sparsity (unstructured, whole 4×1 / 16×16 blocks, or n kept per group of m);
 * the same bias on both sides. M = 128: weights hot (one copy, called back to back) on both sides; M = 1 (decode):
 * cache=cold, calls cycle through copies totalling >= 96 MB of dense weights (and as many sparse copies), so
 * every call streams its weights from DRAM, as decoding a model whose layers exceed the caches does.
 *
 * A measurement: `pairs` interleaved pairs (dense sample, sparse sample); a sample times back-to-back calls
 * for at least 4 ms and divides. ratio = median over pairs of dense_ms / sparse_ms, with the pairs' min and
 * max as lo / hi, so a burst of another process on the shared machine spoils one pair, not the ratio.
 * ratio_cpu: the same median of the calling thread's CPU time (meaningful at threads=1, where the kernels run
 * on the calling thread: the kernel's own cost while other processes hold the cores; caches are still shared).
 * Each kernel is first warmed up until stable (bench_util.h). Nothing is asserted: experiments/bench.lua
 * turns the lines into tables and targets.
 *
 * Output, one line per measurement (key=value), everything else on '#' lines:
 *   sparse layout=csr sparsity=0.90 M=128 N=768 K=768 threads=1 cache=hot ms=... dense_ms=... ratio=... lo=... hi=...
 *          bytes=... dense_bytes=... impl=avx512 load=...
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "core/rng.h"
#include "kernels/sparse.h"

typedef struct run_ctx {
    int sparse;
    float *y;
    const float *x, *bias;
    pare_f32_packed **dense;  /* (ncopy) */
    pare_sparse_weight *w;    /* (ncopy) */
    int ncopy, next;          /* calls cycle through the copies (cache=cold) */
    void *ws;
    int64_t M;
} run_ctx;

static pare_status run_once(void *p, double *ms)
{
    run_ctx *c = p;
    int64_t t0 = pare_now_ns();
    int i = c->next;
    c->next = (c->next + 1) % c->ncopy;
    pare_status st = c->sparse ? pare_sparse_linear(c->y, c->x, &c->w[i], c->bias, c->M, c->ws)
                               : pare_linear_f32_packed(c->y, c->x, c->dense[i], c->bias, c->M);
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return st;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ms per call over >= 4 ms of back-to-back calls; *cpu_ms: the calling thread's CPU time per call (the
 * kernel's own time at one thread, whatever else the machine runs) */
static double sample(run_ctx *c, double *cpu_ms)
{
    int64_t t0 = pare_now_ns(), c0 = thread_cpu_ns(), n = 0;
    double dummy;
    do {
        if (run_once(c, &dummy) != PARE_OK) {
            fprintf(stderr, "bench_sparse: %s\n", pare_errmsg());
            exit(1);
        }
        n++;
    } while (pare_now_ns() - t0 < 4000000);
    *cpu_ms = (double)(thread_cpu_ns() - c0) * 1e-6 / (double)n;
    return (double)(pare_now_ns() - t0) * 1e-6 / (double)n;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void pattern(float *W, int64_t N, int64_t K, const pare_sparse_spec *s, double sp, pare_rng *r)
{
    if (s->kind == PARE_SP_NM) {
        for (int64_t i = 0; i < N; i++)
            for (int64_t g = 0; g < K / s->m; g++) {
                int keep[16] = {0}, kept = 0;
                while (kept < s->n) {
                    int j = (int)pare_rng_below(r, (uint64_t)s->m);
                    if (!keep[j]) keep[j] = 1, kept++;
                }
                for (int j = 0; j < s->m; j++)
                    if (!keep[j]) W[i * K + g * s->m + j] = 0;
            }
    } else if (s->kind == PARE_SP_BSR) {
        for (int64_t i = 0; i < N; i += s->br)
            for (int64_t j = 0; j < K; j += s->bc)
                if (pare_rng_uniform(r) < sp)
                    for (int64_t a = i; a < i + s->br && a < N; a++)
                        for (int64_t b = j; b < j + s->bc && b < K; b++) W[a * K + b] = 0;
    } else {
        for (int64_t i = 0; i < N * K; i++)
            if (pare_rng_uniform(r) < sp) W[i] = 0;
    }
}

int main(int argc, char **argv)
{
    int threads = 1, pairs = 9, quick = 0;
    const char *only = NULL; /* shape=NxK: one shape */
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "threads=", 8)) threads = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "pairs=", 6)) pairs = atoi(argv[i] + 6);
        else if (!strncmp(argv[i], "quick=", 6)) quick = atoi(argv[i] + 6);
        else if (!strncmp(argv[i], "shape=", 6)) only = argv[i] + 6;
        else {
            fprintf(stderr, "bench_sparse: unknown argument '%s' (valid: threads=N pairs=N quick=0|1 shape=NxK)\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1 || pairs < 1 || pairs > 99) {
        fprintf(stderr, "bench_sparse: threads >= 1, 1 <= pairs <= 99\n");
        return 2;
    }
    pare_set_num_threads(threads);
    omp_set_num_threads(threads);
    bench_warm_process();
    printf("# sparse kernels: %s; dense baseline pare_linear_f32_packed; load %s\n", pare_sparse_impl(), load_note());

    static const int64_t shapes[3][2] = {{768, 768}, {3072, 768}, {768, 3072}};
    static const int64_t Ms[2] = {128, 1};
    static const struct { const char *spec; double sp; } cases[] = {
        {"csr", 0.9}, {"csr", 0.8}, {"bsr4x1", 0.8}, {"nm2:4", 0.5},
        {"csr_i8", 0.9}, {"csr_i8", 0.8}, {"bsr16x16", 0.8}, {"nm4:8", 0.5}, {"csr", 0.5},
    };
    const int ncases = quick ? 4 : (int)(sizeof cases / sizeof cases[0]);
    pare_rng rng;
    pare_rng_seed(&rng, 13);
    double *dv = malloc(sizeof(double) * (size_t)pairs), *sv = malloc(sizeof(double) * (size_t)pairs),
           *rv = malloc(sizeof(double) * (size_t)pairs),
           *cv = malloc(sizeof(double) * (size_t)pairs);
    for (int si = 0; si < 3; si++) {
        int64_t N = shapes[si][0], K = shapes[si][1];
        char sh[32];
        snprintf(sh, sizeof sh, "%lldx%lld", (long long)N, (long long)K);
        if (only && strcmp(only, sh)) continue;
        float *W = malloc(sizeof(float) * (size_t)(N * K)), *bias = malloc(sizeof(float) * (size_t)N);
        for (int64_t i = 0; i < N; i++) bias[i] = (float)pare_rng_normal(&rng);
        for (int mi = 0; mi < 2; mi++) {
            int64_t M = Ms[mi];
            float *x = malloc(sizeof(float) * (size_t)(M * K)), *y = malloc(sizeof(float) * (size_t)(M * N));
            for (int64_t i = 0; i < M * K; i++) x[i] = (float)pare_rng_normal(&rng);
            for (int ci = 0; ci < ncases; ci++) {
                pare_sparse_spec s;
                if (pare_sparse_spec_parse(&s, cases[ci].spec) != PARE_OK) return 1;
                for (int64_t i = 0; i < N * K; i++) W[i] = (float)pare_rng_normal(&rng);
                pattern(W, N, K, &s, cases[ci].sp, &rng);
                /* M = 1 (decode): copies of the weight totalling >= 96 MB dense, called in turn, so each call
                 * streams its weights from DRAM as a model's layers do (cache=cold); M = 128: one copy, hot */
                const int ncopy = M == 1 ? (int)((96 << 20) / (sizeof(float) * (size_t)(N * K)) + 1) : 1;
                pare_f32_packed **dense = calloc((size_t)ncopy, sizeof *dense);
                pare_sparse_weight *ws_ = calloc((size_t)ncopy, sizeof *ws_);
                for (int c = 0; c < ncopy; c++)
                    if (pare_f32_weight_pack(&dense[c], W, N, K) != PARE_OK ||
                        pare_sparse_from_dense(&ws_[c], W, N, K, &s) != PARE_OK) {
                        fprintf(stderr, "bench_sparse: %s\n", pare_errmsg());
                        return 1;
                    }
                pare_sparse_weight w = ws_[0];
                void *ws = pare_alloc(pare_sparse_workspace(&w, M) + 64);
                run_ctx dc = {0, y, x, bias, dense, ws_, ncopy, 0, ws, M}, sc = dc;
                sc.sparse = 1;
                bench_warm(run_once, &dc, 3);
                bench_warm(run_once, &sc, 3);
                for (int p = 0; p < pairs; p++) {
                    double dc_cpu, sc_cpu;
                    dv[p] = sample(&dc, &dc_cpu);
                    sv[p] = sample(&sc, &sc_cpu);
                    rv[p] = dv[p] / sv[p];
                    cv[p] = dc_cpu / sc_cpu;
                }
                double ratio_cpu = median(cv, pairs);
                double lo = rv[0], hi = rv[0];
                for (int p = 1; p < pairs; p++) lo = fmin(lo, rv[p]), hi = fmax(hi, rv[p]);
                double ratio = median(rv, pairs), dms = median(dv, pairs), sms = median(sv, pairs);
                printf("sparse layout=%s sparsity=%.2f M=%lld N=%lld K=%lld threads=%d cache=%s ms=%.5f dense_ms=%.5f ratio=%.3f "
                       "lo=%.3f hi=%.3f ratio_cpu=%.3f bytes=%zu dense_bytes=%zu impl=%s load=%s\n",
                       cases[ci].spec, (double)(N * K - w.nonzero) / (double)(N * K), (long long)M, (long long)N,
                       (long long)K, threads, M == 1 ? "cold" : "hot", sms, dms, ratio, lo, hi, ratio_cpu, pare_sparse_bytes(&w), sizeof(float) * (size_t)(N * K),
                       pare_sparse_impl(), load_note());
                fflush(stdout);
                pare_free(ws);
                for (int c = 0; c < ncopy; c++) pare_sparse_weight_free(&ws_[c]), pare_f32_packed_free(dense[c]);
                free(ws_), free(dense);
            }
            free(x), free(y);
        }
        free(W), free(bias);
    }
    free(dv), free(sv), free(rv), free(cv);
    return 0;
}
