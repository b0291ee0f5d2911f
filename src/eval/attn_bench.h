/* attn_bench.h — one attention variant measured on its own, outside any model: forward and
 * forward+backward latency samples, the measured peak memory of the call's intermediates, and the
 * cost formulas (attn.h's pare_attn_cost_of) beside them.
 *
 *     pare_attn_bench_opts o = pare_attn_bench_defaults();
 *     o.spec = "bigbird:window=3,random=2,global=2,block=64", o.T = 8192, o.H = 12, o.D = 64;
 *     pare_attn_bench_result r;
 *     PARE_TRY(pare_attn_bench(&r, &o));
 *     if (!r.skipped) printf("%.1f ms, %.1f MB\n", pare_stats_median(r.fwd_ms, r.n_fwd), r.peak_bytes / 1e6);
 *     pare_attn_bench_result_free(&r);
 *
 * Inputs: q, k, v random normal as one packed qkv (B·T, 3·H·D) — the graph's layout — with out, dout and
 * a packed dqkv; learned parameters (Linformer's E, F; LSRA's convolution) from pare_attn_param_init.
 * Everything is deterministic by `seed`.
 *
 * Memory, measured, not the formula: the inputs, outputs, gradients and parameters are allocated and
 * touched first, the instance is created, OpenMP and the GEMM library are warmed up, free heap pages are
 * returned to the system (malloc_trim), and the process's peak resident set (VmHWM) is reset through
 * /proc/self/clear_refs. Then the cache and the workspace are mapped fresh (mmap: untouched pages cost
 * nothing until the variant writes them) and one forward (+ one backward) runs. peak_bytes = VmHWM −
 * VmRSS just before: everything the call itself made resident — its cache and workspace pages, and any
 * buffer the variant or the GEMM library allocates inside the call. That first call is also the first
 * warm-up.
 *
 * Latency: untimed forwards until their timings are stable (eval/warmup.h: at least `warmup` of them —
 * the memory run counts as one — and at least warmup_min_s of warm-up, then until the median of the last
 * 3 agrees with the median of the 3 before within warmup_tol, or warmup_max_s), then up to `repeats` timed
 * forwards; then, when `backward` is set, untimed steps until stable the same way (no minimum time: the
 * process is warm by then) and up to `repeats` timed steps (forward then backward, each timed, so
 * backward alone is known too). A fixed count of warm-ups was not enough: the first measurement of a
 * process read 8.0 ms (interval 7.96–8.01) for a forward that takes 0.87 ms once warm. With budget_s > 0
 * warm-ups stop at the budget and a series stops once the point has used its budget, after at least
 * min(3, repeats) timed runs (so huge points end early, never with fewer than 3 samples). Backward adds
 * into dq, dk, dv: gradients are not re-zeroed between steps (that is not attention's cost).
 *
 * Memory budget: when mem_budget_bytes > 0 and the formula's intermediates (cache + one slot per thread)
 * exceed it, nothing is allocated or run: skipped = 1, skip_reason "skipped: needs X GB > budget Y GB",
 * and the formula fields are filled. Bad options return PARE_EINVAL naming them; pare_attn_create_spec's
 * errors pass through unchanged (they name the variant's option).
 *
 * Deliberately not here: statistics (eval/stats.h), printing, Lua (lua/lua_attn.c), padding (lengths
 * are all T), and memory of the inputs themselves (io_bytes reports their size, they are not measured).
 */
#ifndef PARE_ATTN_BENCH_H
#define PARE_ATTN_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "attn/attn.h"
#include "core/status.h"
#include "eval/warmup.h"

typedef struct pare_attn_bench_opts {
    const char *spec;        /* "kind" or "kind:key=value,..." (pare_attn_create_spec) */
    int64_t T, H, D, B;      /* tokens, heads, head size, sequences */
    int causal;
    int backward;            /* 1: also time forward+backward steps */
    int64_t warmup;          /* at least this many untimed forwards, >= 0 (the memory run counts as the first) */
    double warmup_min_s;     /* at least this much warm-up time (eval/warmup.h); 0 with warmup_max_s 0: none */
    double warmup_max_s;     /* warm-up stops here even if the timings still move (>= warmup_min_s) */
    double warmup_tol;       /* relative agreement of the warm-up windows' medians that counts as stable */
    int64_t repeats;         /* timed runs per series, >= 1 */
    double budget_s;         /* time budget of the point in seconds (0: none); >= min(3, repeats) runs anyway */
    double mem_budget_bytes; /* skip when the formula's intermediates exceed it (0: no limit) */
    uint64_t seed;           /* inputs and parameters */
} pare_attn_bench_opts;

typedef struct pare_attn_bench_result {
    int skipped;               /* 1: over the memory budget, nothing ran */
    char skip_reason[160];     /* "skipped: needs 12.9 GB > budget 8 GB" */
    double *fwd_ms;            /* (n_fwd) forward latencies, ms */
    int64_t n_fwd;
    double *step_ms;           /* (n_step) forward+backward latencies, ms (NULL without backward) */
    double *bwd_ms;            /* (n_step) the backward part of each step, ms */
    int64_t n_step;
    int64_t peak_bytes;        /* measured: VmHWM − VmRSS before, over the first forward (+ backward) */
    int64_t peak_fwd_bytes;    /* the same after the forward alone */
    int peak_was_reset;        /* 0: VmHWM could not be reset (peak_bytes then overstates; -1 if unknown) */
    pare_attn_cost cost;       /* the formulas at this B */
    size_t cache_bytes;        /* allocated cache (cost.cache_bytes) */
    size_t work_bytes;         /* allocated workspace: one slot per thread (pare_attn_work_bytes) */
    size_t formula_bytes;      /* cache_bytes + work_bytes */
    size_t io_bytes;           /* qkv, out, dout, dqkv, params, dparams: allocated before the reset */
    int64_t pairs_computed;    /* pairs the forward reported (attn_args.pairs) */
    int threads;               /* threads a call runs on: min(OpenMP threads, B·H, slots) */
    int64_t warmup_runs;       /* untimed forwards before the timed ones, the memory run included */
    double warmup_s;           /* their wall time (the memory run excluded) */
    int warmup_stable;         /* 1: the forward's timings had settled; 0: a cap or the budget ended warm-up */
    double warmup_first_ms;    /* the first warm-up forward after the memory run (NaN if none) */
    int64_t step_warmup_runs;  /* untimed steps before the timed ones (0 without backward) */
    int step_warmup_stable;
    double seconds;            /* wall time of the whole measurement */
} pare_attn_bench_result;

/* T = 1024, H = 12, D = 64, B = 1, bidirectional, backward, warmup 1, repeats 5, no budgets, seed 1; the
 * warm-up's min_s, max_s and tol from pare_warmup_defaults (0.2 s, 2 s, 5%). */
pare_attn_bench_opts pare_attn_bench_defaults(void);

/* Measure; out is zeroed first. On failure nothing is left allocated in out. */
pare_status pare_attn_bench(pare_attn_bench_result *out, const pare_attn_bench_opts *o);
void pare_attn_bench_result_free(pare_attn_bench_result *r); /* safe twice */

/* The same in pieces, for callers that interleave the runs of several points (so both sides of a ratio
 * see the same machine load): open allocates the inputs, measures the memory run (forward, + backward if
 * o->backward) and fills out's formula, peak and pairs fields (not the samples); when the point is over
 * the memory budget it sets out->skipped and *s = NULL. Then pare_attn_bench_warmup warms it up and each
 * pare_attn_bench_run is one timed forward (and, with backward, one timed backward right after it;
 * *bwd_ms = NaN otherwise). Open sessions stay
 * resident: a later open measures only its own intermediates (its VmHWM reset comes after the others'
 * pages are resident). warmup, repeats, budget_s and the warmup_* options are not used by open. */
typedef struct pare_attn_bench_session pare_attn_bench_session;
pare_status pare_attn_bench_open(pare_attn_bench_session **s, pare_attn_bench_result *out,
                                 const pare_attn_bench_opts *o);
pare_status pare_attn_bench_run(pare_attn_bench_session *s, int backward, double *fwd_ms, double *bwd_ms);
void pare_attn_bench_close(pare_attn_bench_session *s); /* NULL ok */
/* Untimed runs of the session (forwards, or forward+backward steps with backward) until stable by w
 * (eval/warmup.h), or until deadline_ns (INT64_MAX: none). */
pare_status pare_attn_bench_warmup(pare_attn_bench_session *s, int backward, const pare_warmup_opts *w,
                                   int64_t deadline_ns, pare_warmup_result *r);

#endif
