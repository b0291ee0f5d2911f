/* bench.h — latency, memory and FLOP measurement of a model's forward pass.
 *
 * Latency: untimed forwards until their timings are stable (eval/warmup.h: at least w->min_runs runs and
 * w->min_s seconds, then until two successive windows' medians agree within w->tol, or w->max_s), then
 * `repeats` timed ones at batch B × T tokens; the raw samples are returned so callers compute the median
 * and a bootstrap interval (eval/stats.h), with the warm-up's count, time and whether it settled.
 * Memory: the planner's figure (activations + workspace for this shape) plus the weights' storage,
 * and a measured figure for this model: the weights' bytes already resident plus how far the
 * process's peak resident set (VmHWM, reset through /proc/self/clear_refs) rose above its resident
 * set at the start of the run — so other models alive in the same process are not counted. The
 * process-wide peak is reported too.
 */
#ifndef PARE_BENCH_H
#define PARE_BENCH_H

#include "eval/warmup.h"
#include "graph/graph.h"

typedef struct pare_bench_result {
    double *samples_ms;       /* (repeats), allocated with pare_alloc; caller frees */
    double *cpu_samples_ms;   /* (repeats): the process's CPU time in each timed forward (pare_cpu_ns), same
                                 allocation rules; with one thread on a loaded machine, the time computed
                                 without the time spent waiting for a core */
    int64_t repeats;
    size_t planned_bytes;     /* activations + workspace (planner) + weights' storage + packed copies */
    size_t activation_bytes;  /* planner's activation + workspace figure alone */
    size_t weight_bytes;      /* storage of the parameters as their formats store them */
    size_t packed_bytes;      /* inference-layout copies of f32 weights (oneDNN packed), held beside them */
    int64_t measured_peak_bytes; /* weights resident before + (VmHWM during the runs - VmRSS at start) */
    int64_t process_peak_bytes;  /* VmHWM during the runs: the whole process */
    int peak_was_reset;       /* 1 if VmHWM was reset before measuring (else a lifetime peak, larger) */
    int64_t flops;            /* forward FLOPs at B × T */
    int64_t flops_by_op[PARE_OP_COUNT];
    double ms_by_op[PARE_OP_COUNT];      /* median-run share: mean forward time per op kind over an extra profiled pass */
    int64_t warmup_runs;      /* untimed forwards before the timed ones */
    double warmup_s;          /* their wall time */
    int warmup_stable;        /* 1: the timings had settled; 0: warmup_max_s ended the warm-up first */
    double warmup_first_ms;   /* the first (cold) forward, NaN if none */
} pare_bench_result;

pare_status pare_bench_forward(pare_model *m, int64_t B, int64_t T, const pare_warmup_opts *w, int64_t repeats,
                               uint64_t seed, pare_bench_result *out);

/* Current and peak resident memory of this process, from /proc/self/status (0 if unknown). */
int64_t pare_mem_rss_bytes(void);
int64_t pare_mem_hwm_bytes(void);
/* Reset the peak (VmHWM) to the current RSS; returns 1 on success. */
int pare_mem_reset_peak(void);

#endif
