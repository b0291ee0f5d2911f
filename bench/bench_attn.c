/* bench_attn.c — attention variants on their own (eval/attn_bench.h): flash against full attention at
 * N = 8192, and how the sub-quadratic variants' latency grows from N = 8192 to 16384.
 *
 *   build/bench/bench_attn [flash] [scaling] [extras] [pairs=7] [step_pairs=3] [threads=T] [budget_s=90]
 *                          [mem_budget_gb=8]            (all three parts by default; ~6 min on 2 cores)
 *
 *   flash    full and flash at N = 8192, H = 12, D = 64, B = 1, bidirectional: forward and forward+backward
 *            latency, measured peak memory of the intermediates; ratios flash/full.
 *   scaling  the linear-complexity variants (linear, performer 128 features, linformer k = 256, longformer
 *            window 256, bigbird 3/2/2 blocks of 64, reformer buckets of 64) at N = 8192 and 16384
 *            (H = 12, D = 64): forward and forward+backward latency; ratios 16384/8192 (2 for linear cost).
 *   extras   the others at the same two N, labelled with their complexity and outside the linear target:
 *            axial O(N·√N), longnet (fixed segments 512,1024,2048, rates 1,2,4: O(N)), fixed (stride 128:
 *            O(N·l + c·N²/l)), block (2 blocks: N²/2) and lsra (half the heads exact: N²/2).
 *
 * A comparison opens both points (pare_attn_bench_open: the memory run of each, fresh cache and
 * workspace after a VmHWM reset: the measured peaks), warms each up until its forward timings are stable
 * (bench_util.h; the process was warmed up at the start), then times them in interleaved pairs: `pairs`
 * forward pairs, then (after warming the steps the same way) `step_pairs` forward+backward pairs, the
 * order alternating inside each pair. On a
 * shared 2-core machine another process takes a core for seconds at a time (a 2-thread figure then
 * halves: OpenMP waits for the descheduled thread), so a ratio is the median of the per-pair ratios —
 * both sides of a pair ran within a second or two of each other — with a bootstrap 95% interval, and a
 * latency is the median of its point's samples with its interval. A comparison stops adding pairs after
 * budget_s, with at least 3 of each kind. The 1-minute load average is printed. Nothing is asserted.
 *
 * Output, one line per point with the same keys on every line (key=value; no value holds spaces):
 *   attn section=flash_vs_full kind=full spec=full complexity=O(N^2) target=0 N=8192 H=12 D=64 B=1 causal=0
 *        threads=2 runs=7 step_runs=3 fwd_ms=... fwd_lo_ms=... fwd_hi_ms=... step_ms=... step_lo_ms=...
 *        step_hi_ms=... bwd_ms=... peak_mb=... peak_fwd_mb=... formula_mb=... pairs=... gflops_fwd=...
 *        warmup_runs=... warmup_stable=0|1 step_warmup_runs=... step_warmup_stable=0|1  (peaks nan if unmeasured)
 * and the ratios (second point / first: flash / full, N=16384 / N=8192), one per line:
 *   attn_ratio section=flash_vs_full kind=flash metric=fwd_ms value=... lo=... hi=...
 *   attn_ratio section=scaling kind=linear metric=fwd_ms value=... lo=... hi=...
 * Everything else (CPU, load, progress) on lines starting with '#'.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/timer.h"
#include "eval/attn_bench.h"
#include "eval/stats.h"
#include "kernels/gemm.h"

#include "bench_util.h"

#define MAX_PAIRS 64

typedef struct variant {
    const char *kind, *spec, *complexity;
    int target; /* 1: in the linear-scaling target */
} variant;

static const variant LINEAR[] = {
    {"linear", "linear", "O(N)", 1},
    {"performer", "performer:features=128", "O(N)", 1},
    {"linformer", "linformer:k=256", "O(N)", 1},
    {"longformer", "longformer:window=256,global=1", "O(N)", 1},
    {"bigbird", "bigbird:window=3,random=2,global=2,block=64", "O(N)", 1},
    {"reformer", "reformer:bucket=64,hashes=1", "O(N)", 1},
};
static const variant EXTRAS[] = {
    {"axial", "axial", "O(N*sqrt(N))", 0},
    {"longnet", "longnet:segments=512,1024,2048,rates=1,2,4", "O(N)", 0},
    {"fixed", "fixed:pattern=fixed,stride=128,summary=8", "O(N*l+c*N^2/l)", 0},
    {"block", "block:blocks=2", "O(N^2/n)", 0},
    {"lsra", "lsra", "O(N^2)/2", 0},
};
#define NLINEAR (int)(sizeof LINEAR / sizeof LINEAR[0])
#define NEXTRAS (int)(sizeof EXTRAS / sizeof EXTRAS[0])

typedef struct point {
    const char *section;
    variant v;
    int64_t N, H, D, B;
    pare_attn_bench_result r; /* formula, peaks (the memory run) */
    pare_attn_bench_session *s;
    double fwd[MAX_PAIRS], step[MAX_PAIRS], bwd[MAX_PAIRS];
    int nf, ns;
    pare_warmup_result warm, step_warm; /* untimed forwards and steps before the timed ones */
} point;

static struct {
    int pairs, step_pairs, threads;
    double budget_s, mem_budget_gb;
} g = {7, 3, 0, 90, 8};

static void die(const point *p)
{
    fprintf(stderr, "bench_attn: %s at N=%lld: %s\n", p->v.spec, (long long)p->N, pare_errmsg());
    exit(1);
}

static void point_init(point *p, const char *section, variant v, int64_t N)
{
    memset(p, 0, sizeof *p);
    p->section = section, p->v = v, p->N = N, p->H = 12, p->D = 64, p->B = 1;
}

/* Open (the memory run); 0 if skipped over the memory budget. */
static int point_open(point *p)
{
    pare_attn_bench_opts o = pare_attn_bench_defaults();
    o.spec = p->v.spec, o.T = p->N, o.H = p->H, o.D = p->D, o.B = p->B, o.causal = 0, o.backward = 1;
    o.mem_budget_bytes = g.mem_budget_gb * 1e9;
    if (pare_attn_bench_open(&p->s, &p->r, &o) != PARE_OK) die(p);
    if (p->r.skipped) printf("# %s N=%lld %s\n", p->v.spec, (long long)p->N, p->r.skip_reason);
    return !p->r.skipped;
}

static void run(point *p, int backward)
{
    double f, b;
    if (pare_attn_bench_run(p->s, backward, &f, &b) != PARE_OK) die(p);
    if (!backward) p->fwd[p->nf++] = f;
    else p->step[p->ns] = f + b, p->bwd[p->ns++] = b;
}

/* Median and 95% interval of x[0, n). */
static void summary(double s[3], const double *x, int n)
{
    s[0] = s[1] = s[2] = NAN;
    if (n < 1) return;
    s[0] = pare_stats_median(x, (size_t)n);
    if (pare_stats_bootstrap_ci(x, (size_t)n, 0.95, 2000, 1, &s[1], &s[2]) != PARE_OK) s[1] = s[2] = s[0];
}

/* A measured peak in MB, NaN when it could not be measured (peak_bytes < 0: VmHWM was not reset). */
static double peak_mb(int64_t bytes) { return bytes < 0 ? NAN : (double)bytes / 1e6; }

/* Untimed forwards (or steps) of p until their timings are stable (bench_util.h), within the deadline. */
static void warm(point *p, int backward, int64_t deadline)
{
    pare_warmup_opts w = bench_warmup_opts(1);
    if (pare_attn_bench_warmup(p->s, backward, &w, deadline, backward ? &p->step_warm : &p->warm) != PARE_OK) die(p);
}

static void print_point(const point *p)
{
    double f[3], s[3], b[3];
    summary(f, p->fwd, p->nf);
    summary(s, p->step, p->ns);
    summary(b, p->bwd, p->ns);
    printf("attn section=%s kind=%s spec=%s complexity=%s target=%d N=%lld H=%lld D=%lld B=%lld causal=0 threads=%d "
           "runs=%d step_runs=%d fwd_ms=%.3f fwd_lo_ms=%.3f fwd_hi_ms=%.3f step_ms=%.3f step_lo_ms=%.3f "
           "step_hi_ms=%.3f bwd_ms=%.3f peak_mb=%.3f peak_fwd_mb=%.3f formula_mb=%.3f pairs=%lld gflops_fwd=%.2f "
           "warmup_runs=%lld warmup_stable=%d step_warmup_runs=%lld step_warmup_stable=%d\n",
           p->section, p->v.kind, p->v.spec, p->v.complexity, p->v.target, (long long)p->N, (long long)p->H,
           (long long)p->D, (long long)p->B, p->r.threads, p->nf, p->ns, f[0], f[1], f[2], s[0], s[1], s[2], b[0],
           peak_mb(p->r.peak_bytes), peak_mb(p->r.peak_fwd_bytes), (double)p->r.formula_bytes / 1e6,
           (long long)p->r.cost.pairs, (double)p->r.cost.flops_fwd / (f[0] * 1e6), 1 + (long long)p->warm.runs,
           p->warm.stable, (long long)p->step_warm.runs, p->step_warm.stable);
}

static void print_ratio(const char *section, const char *kind, const char *metric, const double *num,
                        const double *den, int n)
{
    double r[MAX_PAIRS], s[3];
    for (int i = 0; i < n; i++) r[i] = num[i] / den[i];
    summary(s, r, n);
    printf("attn_ratio section=%s kind=%s metric=%s value=%.4f lo=%.4f hi=%.4f\n", section, kind, metric, s[0], s[1],
           s[2]);
}

static void print_fixed_ratio(const char *section, const char *kind, const char *metric, double v)
{
    printf("attn_ratio section=%s kind=%s metric=%s value=%.4f lo=%.4f hi=%.4f\n", section, kind, metric, v, v, v);
}

/* Time a and b in interleaved pairs; print both points and the ratios b / a under b's kind. */
static void compare(point *a, point *b, int fwd_pairs, int step_pairs)
{
    if (!point_open(a)) return;
    if (!point_open(b)) {
        pare_attn_bench_close(a->s);
        return;
    }
    const int64_t t0 = pare_now_ns(), deadline = t0 + (int64_t)(g.budget_s * 1e9);
    warm(a, 0, deadline), warm(b, 0, deadline); /* forwards until stable (the memory runs were the first) */
    for (int i = 0; i < fwd_pairs && i < MAX_PAIRS && (i < 3 || pare_now_ns() < deadline); i++) {
        if (i % 2) run(b, 0), run(a, 0);
        else run(a, 0), run(b, 0);
    }
    warm(a, 1, deadline), warm(b, 1, deadline);
    for (int i = 0; i < step_pairs && i < MAX_PAIRS && (i < 3 || pare_now_ns() < deadline); i++) {
        if (i % 2) run(b, 1), run(a, 1);
        else run(a, 1), run(b, 1);
    }
    pare_attn_bench_close(a->s), pare_attn_bench_close(b->s);
    a->s = b->s = NULL;
    printf("# %s: N=%lld vs N=%lld, %d + %d pairs in %.1f s, load %s\n", b->v.spec, (long long)a->N, (long long)b->N,
           a->nf, a->ns, (double)(pare_now_ns() - t0) * 1e-9, load_note());
    print_point(a);
    print_point(b);
    const char *sec = b->section, *kind = b->v.kind;
    print_ratio(sec, kind, "fwd_ms", b->fwd, a->fwd, a->nf);
    print_ratio(sec, kind, "step_ms", b->step, a->step, a->ns);
    print_ratio(sec, kind, "bwd_ms", b->bwd, a->bwd, a->ns);
    print_fixed_ratio(sec, kind, "peak_mb", peak_mb(b->r.peak_bytes) / peak_mb(a->r.peak_bytes)); /* unknown: nan, not -1/-1 */
    if (a->r.cost.pairs > 0) print_fixed_ratio(sec, kind, "pairs", (double)b->r.cost.pairs / (double)a->r.cost.pairs);
    print_fixed_ratio(sec, kind, "flops_fwd", (double)b->r.cost.flops_fwd / (double)a->r.cost.flops_fwd);
}

static void flash_vs_full(void)
{
    static point p[2]; /* static: MAX_PAIRS samples each */
    point_init(&p[0], "flash_vs_full", (variant){"full", "full", "O(N^2)", 0}, 8192);
    point_init(&p[1], "flash_vs_full", (variant){"flash", "flash", "O(N^2)-time,O(N)-memory", 0}, 8192);
    compare(&p[0], &p[1], g.pairs, g.step_pairs);
}

static void scaling(const char *section, const variant *vs, int n, int fwd_pairs, int step_pairs)
{
    static point a, b;
    for (int i = 0; i < n; i++) {
        point_init(&a, section, vs[i], 8192);
        point_init(&b, section, vs[i], 16384);
        compare(&a, &b, fwd_pairs, step_pairs);
    }
}

static int wants(int argc, char **argv, const char *what)
{
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '=')) continue;
        any = 1;
        if (!strcmp(argv[i], what)) return 1;
    }
    return !any;
}

static int arg_num(int argc, char **argv, const char *key, double *v)
{
    const size_t kl = strlen(key);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], key, kl) && argv[i][kl] == '=') {
            char *end;
            *v = strtod(argv[i] + kl + 1, &end);
            if (*end || end == argv[i] + kl + 1) {
                fprintf(stderr, "bench_attn: %s must be a number\n", argv[i]);
                exit(2);
            }
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const char *known[] = {"flash", "scaling", "extras", "pairs=", "step_pairs=", "threads=", "budget_s=",
                                  "mem_budget_gb="};
    for (int i = 1; i < argc; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            ok |= strchr(known[k], '=') ? !strncmp(argv[i], known[k], strlen(known[k])) : !strcmp(argv[i], known[k]);
        if (!ok) {
            fprintf(stderr, "bench_attn: unknown argument '%s' (valid: flash, scaling, extras, pairs=N, step_pairs=N, "
                            "threads=N, budget_s=S, mem_budget_gb=G)\n", argv[i]);
            return 2;
        }
    }
    double v;
    g.threads = omp_get_max_threads();
    if (arg_num(argc, argv, "pairs", &v)) g.pairs = v < 3 ? 3 : v > MAX_PAIRS ? MAX_PAIRS : (int)v;
    if (arg_num(argc, argv, "step_pairs", &v)) g.step_pairs = v < 3 ? 3 : v > MAX_PAIRS ? MAX_PAIRS : (int)v;
    if (arg_num(argc, argv, "threads", &v)) g.threads = v < 1 ? 1 : (int)v;
    if (arg_num(argc, argv, "budget_s", &v)) g.budget_s = v;
    if (arg_num(argc, argv, "mem_budget_gb", &v)) g.mem_budget_gb = v;
    pare_set_num_threads(g.threads);
    char feats[256];
    printf("# cpu: %s; features: %s; threads %d; %d forward pairs, %d forward+backward pairs; budget %.0f s per "
           "comparison\n", pare_cpu_get()->model, pare_cpu_features_str(feats, (int)sizeof feats), g.threads, g.pairs,
           g.step_pairs, g.budget_s);
    printf("# load average (1 min): %s\n", load_note());
    bench_warm_process();
    const int64_t t0 = pare_now_ns();
    if (wants(argc, argv, "flash")) flash_vs_full();
    if (wants(argc, argv, "scaling")) scaling("scaling", LINEAR, NLINEAR, 2 * g.pairs - 1, g.step_pairs);
    if (wants(argc, argv, "extras")) scaling("extras", EXTRAS, NEXTRAS, 3, 3);
    printf("# done in %.0f s, load average %s\n", (double)(pare_now_ns() - t0) * 1e-9, load_note());
    return 0;
}
