/* tap.h — a tiny TAP producer for C tests (run by `prove`).
 *
 *     int main(void) {
 *         tap_plan_lazy();
 *         ok(1 + 1 == 2, "arithmetic");
 *         is_close_arr(got, want, n, 1e-5, 1e-4, "gemm f32 vs reference");
 *         return tap_done();
 *     }
 *
 * is_close_arr reports the worst index, its two values and the bounds when it fails.
 */
#ifndef PARE_TAP_H
#define PARE_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

static void tap_plan_lazy(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

static int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) tap_failed++;
    return cond;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* |got - want| <= atol + rtol * |want| everywhere; NaN fails. */
static int is_close_arr(const float *got, const float *want, long n, double atol, double rtol, const char *what)
    __attribute__((unused));
static int is_close_arr(const float *got, const float *want, long n, double atol, double rtol, const char *what)
{
    long worst = -1;
    double worst_excess = 0;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]), lim = atol + rtol * fabs((double)want[i]);
        if (isnan(got[i]) != isnan(want[i]) || d > lim) {
            bad = 1;
            if (worst < 0 || d - lim > worst_excess || isnan(got[i])) worst = i, worst_excess = d - lim;
        }
    }
    int r = ok(!bad, "%s (n=%ld)", what, n);
    if (!r) diag("worst at [%ld]: got %.9g want %.9g (atol %g rtol %g)", worst, got[worst], want[worst], atol, rtol);
    return r;
}

static int is_close(double got, double want, double atol, double rtol, const char *what) __attribute__((unused));
static int is_close(double got, double want, double atol, double rtol, const char *what)
{
    int r = ok(fabs(got - want) <= atol + rtol * fabs(want) && !isnan(got), "%s", what);
    if (!r) diag("got %.9g want %.9g (atol %g rtol %g)", got, want, atol, rtol);
    return r;
}

static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
