/* warmup.h — warm a measurement up until its timings are stable, not for a fixed count.
 *
 * A process's first measurement pays for cold state that one untimed run does not clear: the GEMM
 * library builds (JITs) its kernels on first use of each shape, fresh buffers fault their pages in, and
 * OpenMP's second thread is not yet running where the first can find it at a barrier (on a shared
 * 2-core VM the first ~0.1–0.3 s of a process's 2-thread runs can each lose a 4 ms scheduler tick: a
 * 0.9 ms attention forward then measures 8 ms for several runs in a row — a tight interval around the
 * wrong number). So warm-up runs continue
 *
 *     until  runs >= min_runs,  warm-up time >= min_s,  and the median of the last `window` runs is
 *            within `tol` (relative) of the median of the `window` runs before them (no trend left),
 *     or     a cap is reached: max_s of warm-up time or max_runs runs (stable = 0 then: the timings were
 *            still moving; tables record it).
 *
 * min_s matters because a cold phase can look stable: 8.0, 7.96, 8.01 ms agree within 1%. min_runs runs
 * are made even past max_s (the caller asked for them); a deadline (a point's time budget) ends the
 * warm-up whatever the state. The result says how many runs and how long, so every table row can carry
 * it beside the latency.
 *
 *     pare_warmup_opts w = pare_warmup_defaults();   w.min_runs = 5;
 *     pare_warmup_result r;
 *     PARE_TRY(pare_warmup(&r, &w, INT64_MAX, one_forward, ctx));   // r.runs, r.stable, r.first_ms, r.last_ms
 *
 * Deliberately not here: the timed runs and their statistics (the callers; eval/stats.h), and any
 * change of thread or scheduler settings (the caller's environment decides those: docs/benchmarks.md).
 */
#ifndef PARE_WARMUP_H
#define PARE_WARMUP_H

#include <stdint.h>

#include "core/status.h"

typedef struct pare_warmup_opts {
    int64_t min_runs;  /* at least this many runs, >= 0 */
    double min_s;      /* and at least this much warm-up wall time, >= 0 */
    int64_t window;    /* runs per window of the stability test, >= 1 */
    double tol;        /* relative difference of the two windows' medians accepted as stable, > 0 */
    double max_s;      /* cap on warm-up time beyond min_runs (>= min_s) */
    int64_t max_runs;  /* cap on runs beyond min_runs, >= 1 */
} pare_warmup_opts;

typedef struct pare_warmup_result {
    int64_t runs;      /* warm-up runs made */
    double seconds;    /* their wall time */
    int stable;        /* 1: the windows agreed; 0: a cap or the deadline ended the warm-up first */
    double first_ms;   /* the first run (NaN for none) */
    double last_ms;    /* the median of the last window (of the runs made, if fewer; NaN for none) */
} pare_warmup_result;

/* min_runs 0, min_s 0.2, window 3, tol 0.05, max_s 2, max_runs 10000. */
pare_warmup_opts pare_warmup_defaults(void);
/* PARE_EINVAL naming the option that is out of range ("what" prefixes the message). */
pare_status pare_warmup_check(const pare_warmup_opts *o, const char *what);

/* One run of the measured thing; *ms its wall time in ms (the callee times it). */
typedef pare_status (*pare_warmup_fn)(void *ctx, double *ms);

/* Run fn until stable (see above) or until the monotonic clock passes deadline_ns (pare_now_ns();
 * INT64_MAX: none). fn's errors pass through (out then counts the runs made before). */
pare_status pare_warmup(pare_warmup_result *out, const pare_warmup_opts *o, int64_t deadline_ns, pare_warmup_fn fn,
                        void *ctx);

#endif
