/* attn_bench.c — one attention variant's latency and measured memory (attn_bench.h).
 *
 * The order matters for an honest memory figure: inputs touched → instance created → OpenMP and the
 * GEMM library warmed up → malloc_trim → VmHWM reset → cache and work mapped fresh → first call → VmHWM
 * read. The cache and work are mmap'd (not malloc'd) so their pages are guaranteed untouched at the
 * reset and are returned to the system when unmapped.
 *
 * Deliberately not here: statistics of the samples, printing, any attention arithmetic.
 */
#include "eval/attn_bench.h"

#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/arena.h"
#include "core/rng.h"
#include "core/timer.h"
#include "eval/bench.h"
#include "kernels/gemm.h"

pare_attn_bench_opts pare_attn_bench_defaults(void)
{
    const pare_warmup_opts w = pare_warmup_defaults();
    return (pare_attn_bench_opts){.spec = "full", .T = 1024, .H = 12, .D = 64, .B = 1, .causal = 0, .backward = 1,
                                  .warmup = 1, .warmup_min_s = w.min_s, .warmup_max_s = w.max_s, .warmup_tol = w.tol,
                                  .repeats = 5, .budget_s = 0, .mem_budget_bytes = 0, .seed = 1};
}

void pare_attn_bench_result_free(pare_attn_bench_result *r)
{
    pare_free(r->fwd_ms);
    pare_free(r->step_ms);
    pare_free(r->bwd_ms);
    r->fwd_ms = r->step_ms = r->bwd_ms = NULL;
    r->n_fwd = r->n_step = 0;
}

/* Fresh anonymous pages (untouched until written); NULL for n = 0 or on failure. */
static void *map_bytes(size_t n)
{
    if (n == 0) return NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap_bytes(void *p, size_t n)
{
    if (p) munmap(p, n);
}

static void fill_normal(float *x, int64_t n, pare_rng *rng)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)pare_rng_normal(rng);
}

/* Start OpenMP's threads and the GEMM library's lazily built state (JIT kernels, per-thread buffers)
 * before the peak is reset, so the measurement holds only what the attention call itself needs. */
static void warm_libraries(void)
{
    enum { N = 96 };
    static float A[N * N], Bm[N * N];
    for (int i = 0; i < N * N; i++) A[i] = (float)(i % 7) * 0.1f, Bm[i] = (float)(i % 5) * 0.1f;
#pragma omp parallel
    {
        float C[N * N], E[N * N];
        pare_sgemm(0, 1, N, N, N, 1.0f, A, N, Bm, N, 0.0f, C, N);
        pare_sgemm(1, 0, N, N, N, 1.0f, A, N, C, N, 0.0f, E, N);
    }
    float *C = pare_alloc(sizeof(float) * N * N);
    if (C) {
        pare_sgemm(0, 0, N, N, N, 1.0f, A, N, Bm, N, 0.0f, C, N);
        pare_free(C);
    }
}

static double ms_since(int64_t t0) { return (double)(pare_now_ns() - t0) * 1e-6; }

struct pare_attn_bench_session {
    pare_attn *a;
    float *qkv, *dqkv, *y, *dy, *params, *dparams; /* (B·T, 3C), (B·T, 3C), (B·T, C), (B·T, C), (np), (np) */
    void *cache, *work;                            /* mmap'd: cache_bytes, work_bytes */
    size_t cache_bytes, work_bytes;
    pare_attn_args x;
};

void pare_attn_bench_close(pare_attn_bench_session *s)
{
    if (!s) return;
    unmap_bytes(s->cache, s->cache_bytes);
    unmap_bytes(s->work, s->work_bytes);
    pare_free(s->qkv), pare_free(s->dqkv), pare_free(s->y), pare_free(s->dy);
    pare_free(s->params), pare_free(s->dparams);
    pare_attn_free(s->a);
    free(s);
}

static pare_status check_opts(const pare_attn_bench_opts *o)
{
    if (!o->spec || !*o->spec) return pare_fail(PARE_EINVAL, "attention bench: spec is empty (give e.g. \"flash\")");
    if (o->T < 1 || o->H < 1 || o->D < 1 || o->B < 1)
        return pare_fail(PARE_EINVAL, "attention bench: T=%lld, H=%lld, D=%lld, B=%lld: all must be >= 1",
                         (long long)o->T, (long long)o->H, (long long)o->D, (long long)o->B);
    if (o->repeats < 1)
        return pare_fail(PARE_EINVAL, "attention bench: repeats=%lld must be >= 1", (long long)o->repeats);
    pare_warmup_opts w = pare_warmup_defaults();
    w.min_runs = o->warmup, w.min_s = o->warmup_min_s, w.max_s = o->warmup_max_s, w.tol = o->warmup_tol;
    PARE_TRY(pare_warmup_check(&w, "attention bench"));
    if (!(o->budget_s >= 0))
        return pare_fail(PARE_EINVAL, "attention bench: budget_s=%g must be >= 0 (0: no time budget)", o->budget_s);
    if (!(o->mem_budget_bytes >= 0))
        return pare_fail(PARE_EINVAL, "attention bench: mem_budget=%g bytes must be >= 0 (0: no limit)",
                         o->mem_budget_bytes);
    return PARE_OK;
}

pare_status pare_attn_bench_open(pare_attn_bench_session **sp, pare_attn_bench_result *out,
                                 const pare_attn_bench_opts *o)
{
    *sp = NULL;
    memset(out, 0, sizeof *out);
    out->peak_bytes = out->peak_fwd_bytes = -1;
    PARE_TRY(check_opts(o));
    const int64_t T = o->T, H = o->H, D = o->D, B = o->B, C = H * D, BT = B * T;
    pare_attn_bench_session *s = calloc(1, sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "attention bench: out of memory");
    pare_status st = pare_attn_create_spec(&s->a, o->spec, T, H, D, o->causal); /* its messages name the option */
    if (st != PARE_OK) {
        free(s);
        return st;
    }
    pare_attn *a = s->a;
    pare_attn_cost_of(a, B, &out->cost);
    out->cache_bytes = s->cache_bytes = out->cost.cache_bytes;
    out->work_bytes = s->work_bytes = pare_attn_work_bytes(a, B);
    out->formula_bytes = out->cache_bytes + out->work_bytes;
    out->threads = pare_attn_threads(out->work_bytes, out->cost.slot_bytes, B * H);
    const int64_t np = pare_attn_param_count(a);
    out->io_bytes = sizeof(float) * (size_t)(BT * 3 * C * 2 + BT * C * 2 + np * 2);
    if (o->mem_budget_bytes > 0 && (double)out->formula_bytes > o->mem_budget_bytes) {
        out->skipped = 1;
        snprintf(out->skip_reason, sizeof out->skip_reason, "skipped: needs %.3g GB > budget %.3g GB",
                 (double)out->formula_bytes / 1e9, o->mem_budget_bytes / 1e9);
        s->cache_bytes = s->work_bytes = 0;
        pare_attn_bench_close(s);
        return PARE_OK;
    }

    /* inputs, outputs and gradients: allocated and touched before the reset (pare_calloc writes zeros) */
    s->qkv = pare_alloc(sizeof(float) * (size_t)(BT * 3 * C)), s->dqkv = pare_calloc(sizeof(float) * (size_t)(BT * 3 * C));
    s->y = pare_calloc(sizeof(float) * (size_t)(BT * C)), s->dy = pare_alloc(sizeof(float) * (size_t)(BT * C));
    s->params = np ? pare_alloc(sizeof(float) * (size_t)np) : NULL;
    s->dparams = np ? pare_calloc(sizeof(float) * (size_t)np) : NULL;
    if (!s->qkv || !s->dqkv || !s->y || !s->dy || (np && (!s->params || !s->dparams))) {
        st = pare_fail(PARE_ENOMEM, "attention bench %s: out of memory for the inputs (%.3g GB)", o->spec,
                       (double)out->io_bytes / 1e9);
        goto fail;
    }
    pare_rng rng;
    pare_rng_seed(&rng, o->seed);
    fill_normal(s->qkv, BT * 3 * C, &rng);
    fill_normal(s->dy, BT * C, &rng);
    if (np) {
        pare_rng prng = pare_rng_split(&rng, 0x9a7a);
        pare_attn_param_init(a, s->params, &prng);
    }
    warm_libraries();

    /* the memory run: fresh cache and work pages after the reset */
    malloc_trim(0);
    out->peak_was_reset = pare_mem_reset_peak();
    const int64_t rss0 = pare_mem_rss_bytes(), t_start = pare_now_ns();
    s->cache = map_bytes(s->cache_bytes);
    s->work = map_bytes(s->work_bytes);
    if ((s->cache_bytes && !s->cache) || (s->work_bytes && !s->work)) {
        st = pare_fail(PARE_ENOMEM, "attention bench %s: cannot map the cache (%zu bytes) and workspace (%zu bytes)",
                       o->spec, s->cache_bytes, s->work_bytes);
        goto fail;
    }
    s->x = (pare_attn_args){.out = s->y, .ldo = C, .dq = s->dqkv, .dk = s->dqkv + C, .dv = s->dqkv + 2 * C,
                            .ldd = 3 * C, .dparams = s->dparams, .cache = s->cache, .work = s->work,
                            .work_bytes = s->work_bytes, .pairs = &out->pairs_computed, .dout = s->dy, .q = s->qkv,
                            .k = s->qkv + C, .v = s->qkv + 2 * C, .ld = 3 * C, .lengths = NULL, .params = s->params,
                            .B = B};
    st = pare_attn_forward(a, &s->x);
    if (st != PARE_OK) goto fail;
    out->peak_fwd_bytes = pare_mem_hwm_bytes() - rss0;
    if (o->backward) st = pare_attn_backward(a, &s->x);
    if (st != PARE_OK) goto fail;
    out->peak_bytes = pare_mem_hwm_bytes() - rss0;
    if (!out->peak_was_reset) out->peak_bytes = out->peak_fwd_bytes = -1; /* a lifetime peak says nothing */
    s->x.pairs = NULL;
    out->seconds = (double)(pare_now_ns() - t_start) * 1e-9;
    *sp = s;
    return PARE_OK;
fail:
    pare_attn_bench_close(s);
    return st;
}

pare_status pare_attn_bench_run(pare_attn_bench_session *s, int backward, double *fwd_ms, double *bwd_ms)
{
    *fwd_ms = *bwd_ms = NAN;
    const int64_t t0 = pare_now_ns();
    PARE_TRY(pare_attn_forward(s->a, &s->x));
    *fwd_ms = ms_since(t0);
    if (!backward) return PARE_OK;
    const int64_t t1 = pare_now_ns();
    PARE_TRY(pare_attn_backward(s->a, &s->x));
    *bwd_ms = ms_since(t1);
    return PARE_OK;
}

typedef struct warm_ctx { pare_attn_bench_session *s; int backward; } warm_ctx;

static pare_status warm_run(void *ctx, double *ms)
{
    warm_ctx *c = ctx;
    double f, b;
    PARE_TRY(pare_attn_bench_run(c->s, c->backward, &f, &b));
    *ms = c->backward ? f + b : f;
    return PARE_OK;
}

pare_status pare_attn_bench_warmup(pare_attn_bench_session *s, int backward, const pare_warmup_opts *w,
                                   int64_t deadline_ns, pare_warmup_result *r)
{
    warm_ctx c = {s, backward};
    return pare_warmup(r, w, deadline_ns, warm_run, &c);
}

pare_status pare_attn_bench(pare_attn_bench_result *out, const pare_attn_bench_opts *o)
{
    memset(out, 0, sizeof *out);
    PARE_TRY(check_opts(o));
    const int64_t t_start = pare_now_ns();
    pare_attn_bench_session *s;
    PARE_TRY(pare_attn_bench_open(&s, out, o));
    if (!s) return PARE_OK; /* skipped */
    const int64_t nsamp = o->repeats;
    out->fwd_ms = pare_alloc(sizeof(double) * (size_t)nsamp);
    if (o->backward) {
        out->step_ms = pare_alloc(sizeof(double) * (size_t)nsamp);
        out->bwd_ms = pare_alloc(sizeof(double) * (size_t)nsamp);
    }
    pare_status st = PARE_OK;
    if (!out->fwd_ms || (o->backward && (!out->step_ms || !out->bwd_ms)))
        st = pare_fail(PARE_ENOMEM, "attention bench: out of memory");
    /* the budget counts from the memory run's start: warm-ups stop at it, series after min_runs */
    const int64_t deadline = o->budget_s > 0 ? t_start + (int64_t)(o->budget_s * 1e9) : INT64_MAX;
    const int64_t min_runs = nsamp < 3 ? nsamp : 3;
    double f, b;
    /* forwards until their timings settle: at least warmup (the memory run was the first) and min_s */
    pare_warmup_opts w = pare_warmup_defaults();
    w.min_runs = o->warmup > 1 ? o->warmup - 1 : 0, w.min_s = o->warmup_min_s, w.max_s = o->warmup_max_s;
    w.tol = o->warmup_tol;
    pare_warmup_result wr = {0};
    if (st == PARE_OK) st = pare_attn_bench_warmup(s, 0, &w, deadline, &wr);
    out->warmup_runs = 1 + wr.runs, out->warmup_s = wr.seconds, out->warmup_stable = wr.stable;
    out->warmup_first_ms = wr.first_ms;
    for (int64_t i = 0; st == PARE_OK && i < nsamp && (i < min_runs || pare_now_ns() < deadline); i++) {
        st = pare_attn_bench_run(s, 0, &f, &b);
        out->fwd_ms[out->n_fwd++] = f;
    }
    if (st == PARE_OK && o->backward) { /* the steps too; the process is warm now, so no minimum time */
        w.min_runs = 0, w.min_s = 0;
        st = pare_attn_bench_warmup(s, 1, &w, deadline, &wr);
        out->step_warmup_runs = wr.runs, out->step_warmup_stable = wr.stable;
    }
    for (int64_t i = 0; st == PARE_OK && o->backward && i < nsamp && (i < min_runs || pare_now_ns() < deadline); i++) {
        st = pare_attn_bench_run(s, 1, &f, &b);
        out->bwd_ms[out->n_step] = b;
        out->step_ms[out->n_step++] = f + b;
    }
    out->seconds = (double)(pare_now_ns() - t_start) * 1e-9;
    pare_attn_bench_close(s);
    if (st != PARE_OK) pare_attn_bench_result_free(out);
    return st;
}
