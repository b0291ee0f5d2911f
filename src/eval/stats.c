/* stats.c — mean, stddev, median, quantiles and bootstrap intervals on top of GSL. */
#include "eval/stats.h"

#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double pare_stats_mean(const double *x, size_t n) { return n ? gsl_stats_mean(x, 1, n) : NAN; }

double pare_stats_stddev(const double *x, size_t n) { return n >= 2 ? gsl_stats_sd(x, 1, n) : NAN; }

/* gsl_sort puts a NaN anywhere (every comparison with it is false), so an order statistic of data with a
 * NaN would be a plausible number: NaN in, NaN out. */
static int has_nan(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

double pare_stats_quantile(const double *x, size_t n, double q)
{
    if (n == 0 || !(q >= 0 && q <= 1) || has_nan(x, n)) return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, x, n * sizeof *s);
    gsl_sort(s, 1, n);
    double v = gsl_stats_quantile_from_sorted_data(s, 1, n, q);
    free(s);
    return v;
}

double pare_stats_median(const double *x, size_t n)
{
    if (n == 0 || has_nan(x, n)) return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, x, n * sizeof *s);
    gsl_sort(s, 1, n);
    double v = gsl_stats_median_from_sorted_data(s, 1, n);
    free(s);
    return v;
}

pare_status pare_stat_parse(const char *name, pare_stat *stat)
{
    if (name && !strcmp(name, "median")) *stat = PARE_STAT_MEDIAN;
    else if (name && !strcmp(name, "mean")) *stat = PARE_STAT_MEAN;
    else return pare_fail(PARE_EINVAL, "statistic '%s' is not known (valid: median, mean)", name ? name : "(null)");
    return PARE_OK;
}

pare_status pare_stats_bootstrap_ci(const double *x, size_t n, double level, int resamples, unsigned long seed, double *lo,
                                    double *hi)
{
    return pare_stats_bootstrap_ci_stat(x, n, PARE_STAT_MEDIAN, level, resamples, seed, lo, hi);
}

pare_status pare_stats_bootstrap_ci_stat(const double *x, size_t n, pare_stat stat, double level, int resamples,
                                         unsigned long seed, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (n == 0) return pare_fail(PARE_EINVAL, "bootstrap_ci: no values");
    if (!(level > 0 && level < 1)) return pare_fail(PARE_EINVAL, "bootstrap_ci: level %g must be in (0, 1)", level);
    if (resamples < 10) return pare_fail(PARE_EINVAL, "bootstrap_ci: resamples %d must be >= 10", resamples);
    if ((unsigned)stat >= PARE_STAT_COUNT) return pare_fail(PARE_EINVAL, "bootstrap_ci: unknown statistic");
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return pare_fail(PARE_ENUMERIC, "bootstrap_ci: value %zu is NaN", i + 1);
    if (n == 1) {
        *lo = *hi = x[0];
        return PARE_OK;
    }
    double *sample = malloc(n * sizeof *sample), *stats = malloc((size_t)resamples * sizeof *stats);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!sample || !stats || !r) {
        free(sample);
        free(stats);
        if (r) gsl_rng_free(r);
        return pare_fail(PARE_ENOMEM, "bootstrap_ci: out of memory");
    }
    gsl_rng_set(r, seed);
    for (int b = 0; b < resamples; b++) {
        for (size_t i = 0; i < n; i++) sample[i] = x[gsl_rng_uniform_int(r, n)];
        if (stat == PARE_STAT_MEAN) stats[b] = gsl_stats_mean(sample, 1, n);
        else {
            gsl_sort(sample, 1, n);
            stats[b] = gsl_stats_median_from_sorted_data(sample, 1, n);
        }
    }
    gsl_sort(stats, 1, (size_t)resamples);
    double a = (1 - level) / 2;
    *lo = gsl_stats_quantile_from_sorted_data(stats, 1, (size_t)resamples, a);
    *hi = gsl_stats_quantile_from_sorted_data(stats, 1, (size_t)resamples, 1 - a);
    gsl_rng_free(r);
    free(sample);
    free(stats);
    return PARE_OK;
}
