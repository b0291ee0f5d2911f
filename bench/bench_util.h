/* bench_util.h — small pieces shared by the bench programs (header-only: each bench program is its own
 * program). */
#ifndef PARE_BENCH_UTIL_H
#define PARE_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <errno.h> /* program_invocation_short_name (_GNU_SOURCE) */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/timer.h"
#include "eval/warmup.h"
#include "kernels/gemm.h"

/* 64-byte-aligned, zeroed memory of at least n bytes (rounded up to whole cache lines), or the program exits with
 * status 2 and a message naming itself. */
static inline void *xalloc(size_t n)
{
    const size_t bytes = n ? (n + 63) / 64 * 64 : 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes)) {
        fprintf(stderr, "%s: out of memory (%zu bytes)\n", program_invocation_short_name, bytes);
        exit(2);
    }
    memset(p, 0, bytes);
    return p;
}

/* The 1-minute load average as text ("-1.00" if unknown), recorded beside every timing. */
static inline const char *load_note(void)
{
    static char buf[32];
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    snprintf(buf, sizeof buf, "%.2f", l);
    return buf;
}

/* Warm-up of one measurement (eval/warmup.h): at least min_runs calls, then until the median of the last
 * 3 agrees with the median of the 3 before within 5%, at most 1 s. No minimum time: bench_warm_process
 * took the process's cold start at the beginning, and the programs measure back to back. */
static inline pare_warmup_opts bench_warmup_opts(int64_t min_runs)
{
    pare_warmup_opts w = pare_warmup_defaults();
    w.min_runs = min_runs, w.min_s = 0, w.max_s = 1.0;
    return w;
}

/* Warm up fn (one call; its time in ms) by bench_warmup_opts; exits on an error of fn. */
static inline pare_warmup_result bench_warm(pare_warmup_fn fn, void *ctx, int64_t min_runs)
{
    pare_warmup_opts w = bench_warmup_opts(min_runs);
    pare_warmup_result r;
    if (pare_warmup(&r, &w, INT64_MAX, fn, ctx) != PARE_OK) {
        fprintf(stderr, "warm-up: %s\n", pare_errmsg());
        exit(1);
    }
    return r;
}

typedef struct bench_gemm_ctx { float *a, *b, *c; int64_t n; } bench_gemm_ctx;

static inline pare_status bench_warm_gemm(void *ctx, double *ms)
{
    bench_gemm_ctx *g = ctx;
    const int64_t t0 = pare_now_ns();
    pare_sgemm(0, 1, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c, g->n);
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

/* The process's cold start, once at the top of main: the GEMM library's kernels are built, OpenMP's
 * threads started and the second core brought into play by parallel 512³ GEMMs at the current thread
 * count — at least 0.5 s, then until stable (at most 3 s). A fixed warm-up of one run left the first
 * measurement of a process up to 9x slow with a tight interval (issue 10). Prints a '#' line. */
static inline void bench_warm_process(void)
{
    enum { N = 512 };
    bench_gemm_ctx g = {pare_calloc(sizeof(float) * N * N), pare_calloc(sizeof(float) * N * N),
                        pare_calloc(sizeof(float) * N * N), N};
    if (!g.a || !g.b || !g.c) {
        fprintf(stderr, "warm-up: out of memory\n");
        exit(1);
    }
    pare_warmup_opts w = pare_warmup_defaults();
    w.min_s = 0.5, w.max_s = 3.0;
    pare_warmup_result r;
    if (pare_warmup(&r, &w, INT64_MAX, bench_warm_gemm, &g) != PARE_OK) exit(1);
    printf("# process warm-up: %lld GEMMs of %d^3 in %.2f s, first %.2f ms, last %.2f ms, %s\n", (long long)r.runs, N,
           r.seconds, r.first_ms, r.last_ms, r.stable ? "stable" : "still moving at the cap");
    pare_free(g.a), pare_free(g.b), pare_free(g.c);
}

#endif
