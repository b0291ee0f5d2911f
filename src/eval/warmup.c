/* warmup.c — warm-up until the timings are stable (warmup.h). */
#include "eval/warmup.h"

#include <math.h>
#include <stdlib.h>

#include "core/timer.h"
#include "eval/stats.h"

enum { MAX_WINDOW = 1000 };

pare_warmup_opts pare_warmup_defaults(void)
{
    return (pare_warmup_opts){.min_runs = 0, .min_s = 0.2, .window = 3, .tol = 0.05, .max_s = 2.0, .max_runs = 10000};
}

pare_status pare_warmup_check(const pare_warmup_opts *o, const char *what)
{
    if (o->min_runs < 0) return pare_fail(PARE_EINVAL, "%s: warmup=%lld must be >= 0", what, (long long)o->min_runs);
    if (!(o->min_s >= 0)) return pare_fail(PARE_EINVAL, "%s: warmup_min_s=%g must be >= 0", what, o->min_s);
    if (!(o->max_s >= o->min_s))
        return pare_fail(PARE_EINVAL, "%s: warmup_max_s=%g must be >= warmup_min_s=%g", what, o->max_s, o->min_s);
    if (o->window < 1 || o->window > MAX_WINDOW)
        return pare_fail(PARE_EINVAL, "%s: warm-up window=%lld must be in [1, %d]", what, (long long)o->window, MAX_WINDOW);
    if (!(o->tol > 0)) return pare_fail(PARE_EINVAL, "%s: warmup_tol=%g must be > 0", what, o->tol);
    if (o->max_runs < 1) return pare_fail(PARE_EINVAL, "%s: warm-up max_runs=%lld must be >= 1", what, (long long)o->max_runs);
    return PARE_OK;
}

/* The median of ring[(at - k) .. at) in a ring of size n (k <= n). */
static double ring_median(const double *ring, int64_t n, int64_t at, int64_t k, double *scratch)
{
    for (int64_t i = 0; i < k; i++) scratch[i] = ring[((at - k + i) % n + n) % n];
    return pare_stats_median(scratch, (size_t)k);
}

pare_status pare_warmup(pare_warmup_result *out, const pare_warmup_opts *o, int64_t deadline_ns, pare_warmup_fn fn,
                        void *ctx)
{
    *out = (pare_warmup_result){.first_ms = NAN, .last_ms = NAN};
    PARE_TRY(pare_warmup_check(o, "warm-up"));
    const int64_t k = o->window, n = 2 * k;
    double ring[2 * MAX_WINDOW], scratch[MAX_WINDOW]; /* the last 2k timings */
    const int64_t t0 = pare_now_ns();
    const int64_t min_ns = (int64_t)(o->min_s * 1e9), max_ns = (int64_t)(o->max_s * 1e9);
    pare_status st = PARE_OK;
    for (;;) {
        const int64_t now = pare_now_ns(), spent = now - t0;
        if (now >= deadline_ns) break;
        if (out->runs >= o->min_runs) {
            if (spent >= min_ns && out->runs >= n) {
                double prev = ring_median(ring, n, out->runs - k, k, scratch);
                double last = ring_median(ring, n, out->runs, k, scratch);
                if (fabs(last - prev) <= o->tol * prev) {
                    out->stable = 1;
                    break;
                }
            }
            if (spent >= max_ns || out->runs - o->min_runs >= o->max_runs) break;
        }
        double ms = NAN;
        if ((st = fn(ctx, &ms)) != PARE_OK) break;
        if (out->runs == 0) out->first_ms = ms;
        ring[out->runs % n] = ms;
        out->runs++;
    }
    out->seconds = (double)(pare_now_ns() - t0) * 1e-9;
    if (out->runs) {
        const int64_t m = out->runs < k ? out->runs : k;
        out->last_ms = ring_median(ring, n, out->runs, m, scratch);
    }
    return st;
}
