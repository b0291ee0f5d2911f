/* stats.h — summary statistics for measurements: mean, standard deviation, median, and a
 * percentile-bootstrap confidence interval (GSL's generator and sort, so intervals are reproducible
 * for a given seed on every machine).
 *
 * Used by the latency benchmark (median and 95% CI of repeated timings) and by Lua scripts
 * (pare.stats.*). Inputs are never modified. NaN in the input is never a silently wrong number: the
 * summaries return NaN (a sort would put the NaN anywhere and the median would look plausible) and
 * the bootstrap returns PARE_ENUMERIC.
 *
 *     double med = pare_stats_median(ms, n), lo, hi;
 *     PARE_TRY(pare_stats_bootstrap_ci(ms, n, 0.95, 2000, 1, &lo, &hi));     // CI of the median
 */
#ifndef PARE_STATS_H
#define PARE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pare_stat { PARE_STAT_MEDIAN = 0, PARE_STAT_MEAN, PARE_STAT_COUNT } pare_stat;

/* NaN for n == 0. */
double pare_stats_mean(const double *x, size_t n);
/* Sample standard deviation (n-1 denominator); NaN for n < 2. */
double pare_stats_stddev(const double *x, size_t n);
/* Median (mean of the two middle values for even n); NaN for n == 0 or any NaN in x. */
double pare_stats_median(const double *x, size_t n);
/* Quantile q in [0,1] by linear interpolation (gsl_stats_quantile_from_sorted_data); NaN for n == 0 or
 * any NaN in x. */
double pare_stats_quantile(const double *x, size_t n, double q);

/* Percentile bootstrap interval of the MEDIAN at the given level (e.g. 0.95): `resamples` resamples
 * with replacement drawn by gsl_rng_mt19937 seeded with `seed`. n == 1 gives [x0, x0].
 * PARE_EINVAL for n == 0, level outside (0,1) or resamples < 10; PARE_ENUMERIC for NaN input. */
pare_status pare_stats_bootstrap_ci(const double *x, size_t n, double level, int resamples, unsigned long seed, double *lo,
                                    double *hi);
/* The same for another statistic. */
pare_status pare_stats_bootstrap_ci_stat(const double *x, size_t n, pare_stat stat, double level, int resamples,
                                         unsigned long seed, double *lo, double *hi);
/* "median" | "mean" → stat; PARE_EINVAL otherwise. */
pare_status pare_stat_parse(const char *name, pare_stat *stat);

#endif
