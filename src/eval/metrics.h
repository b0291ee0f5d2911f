/* metrics.h — task metrics over predictions: accuracy, F1 (binary and macro), Matthews correlation,
 * Pearson and Spearman correlation, and the GLUE per-task table (which metrics each task reports).
 *
 * Definitions follow scikit-learn and scipy, the references GLUE's own evaluation uses:
 *   - accuracy: share of pred[i] == gold[i];
 *   - F1 of class `positive`: 2 tp / (2 tp + fp + fn); 0 when there is no positive in pred or gold
 *     (sklearn's zero_division default);
 *   - macro F1: the mean of each class's F1 over [0, nclass) — every class counts, present or not;
 *   - Matthews correlation, multi-class as sklearn (Gorodkin 2004's R_K): with the confusion matrix C,
 *     t_k = times class k occurs in gold, p_k = times predicted, c = correct, s = n,
 *         MCC = (c s - sum_k t_k p_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2)),
 *     0 when the denominator is 0 (constant predictions or constant gold); for two classes it is the
 *     usual (tp tn - fp fn) / sqrt(...);
 *   - Pearson: gsl_stats_correlation; Spearman: gsl_stats_spearman (Pearson of the ranks, ties get the
 *     mean of their ranks as scipy.stats.spearmanr). NaN when either side is constant (as scipy).
 *
 *     double acc, mcc;
 *     PARE_TRY(pare_metric_accuracy(&acc, pred, gold, n));
 *     PARE_TRY(pare_metric_mcc(&mcc, pred, gold, n, 2));
 *     pare_metric_value v[PARE_GLUE_MAX_METRICS]; int nv;
 *     PARE_TRY(pare_glue_evaluate(v, &nv, PARE_GLUE_MRPC, pred, gold, NULL, NULL, n));   // f1, accuracy
 *
 * Labels must be in [0, nclass) (gold -1, an unlabeled example, is an error naming its index: a test
 * split of GLUE has no labels to score against). n == 0 is PARE_EINVAL. Inputs are never modified.
 * Deliberately not here: averaging over seeds or bootstrap intervals of a metric (eval/stats.h).
 */
#ifndef PARE_METRICS_H
#define PARE_METRICS_H

#include <stdint.h>

#include "core/status.h"
#include "data/glue.h"

/* Share of pred[i] == gold[i]. */
pare_status pare_metric_accuracy(double *out, const int32_t *pred, const int32_t *gold, int64_t n);
/* F1 of class `positive` (binary F1: positive = 1). Labels must be >= 0. */
pare_status pare_metric_f1(double *out, const int32_t *pred, const int32_t *gold, int64_t n, int32_t positive);
/* Unweighted mean over classes [0, nclass) of each class's F1. */
pare_status pare_metric_macro_f1(double *out, const int32_t *pred, const int32_t *gold, int64_t n, int32_t nclass);
/* Matthews correlation coefficient (multi-class as sklearn; binary when nclass = 2). */
pare_status pare_metric_mcc(double *out, const int32_t *pred, const int32_t *gold, int64_t n, int32_t nclass);
/* Pearson and Spearman correlation of x and y (n >= 2; NaN when a side is constant; PARE_ENUMERIC for
 * a non-finite input). */
pare_status pare_metric_pearson(double *out, const double *x, const double *y, int64_t n);
pare_status pare_metric_spearman(double *out, const double *x, const double *y, int64_t n);

/* ---- the GLUE table ---- */

#define PARE_GLUE_MAX_METRICS 2
typedef struct pare_metric_value {
    const char *name; /* "accuracy", "f1", "mcc", "pearson", "spearman" */
    double value;
} pare_metric_value;

/* The metrics GLUE reports for task t (pare_glue_info(t)->metrics): SST-2, MNLI (each of matched and
 * mismatched), QNLI, RTE, WNLI accuracy; CoLA mcc; MRPC, QQP f1 then accuracy; STS-B pearson then
 * spearman. Classification tasks read pred and gold (class ids); STS-B reads spred and sgold (scores).
 * out has room for PARE_GLUE_MAX_METRICS; *nout receives how many were written. */
pare_status pare_glue_evaluate(pare_metric_value *out, int *nout, pare_glue_task t, const int32_t *pred,
                               const int32_t *gold, const double *spred, const double *sgold, int64_t n);

#endif
