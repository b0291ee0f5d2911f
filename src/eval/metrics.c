/* metrics.c — accuracy, F1, macro F1, Matthews correlation, Pearson and Spearman (GSL), and the GLUE
 * per-task metric table (eval/metrics.h has the definitions, which follow scikit-learn and scipy).
 *
 * Entry points: pare_metric_accuracy, pare_metric_f1, pare_metric_macro_f1, pare_metric_mcc,
 * pare_metric_pearson, pare_metric_spearman, pare_glue_evaluate. Counts are int64 and products are
 * taken in double, so MCC's s^2 terms cannot overflow.
 */
#include "eval/metrics.h"

#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>

/* n >= 1 and every label in [0, nclass) (nclass <= 0: only >= 0 is checked). */
static pare_status check_labels(const int32_t *pred, const int32_t *gold, int64_t n, int32_t nclass, const char *what)
{
    if (n < 1) return pare_fail(PARE_EINVAL, "%s: no examples (n = %lld)", what, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (gold[i] < 0 || (nclass > 0 && gold[i] >= nclass))
            return pare_fail(PARE_EINVAL, "%s: gold label %d of example %lld is %s", what, gold[i], (long long)i,
                             gold[i] < 0 ? "missing (an unlabeled split cannot be scored)" : "outside [0, nclass)");
        if (pred[i] < 0 || (nclass > 0 && pred[i] >= nclass))
            return pare_fail(PARE_EINVAL, "%s: predicted label %d of example %lld is outside [0, %d)", what, pred[i],
                             (long long)i, nclass > 0 ? nclass : INT32_MAX);
    }
    return PARE_OK;
}

pare_status pare_metric_accuracy(double *out, const int32_t *pred, const int32_t *gold, int64_t n)
{
    PARE_TRY(check_labels(pred, gold, n, 0, "accuracy"));
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += pred[i] == gold[i];
    *out = (double)c / (double)n;
    return PARE_OK;
}

/* F1 of class k from the counts; 0 when tp + fp + fn == 0 (sklearn's zero_division = 0). */
static double f1_of(int64_t tp, int64_t fp, int64_t fn)
{
    int64_t den = 2 * tp + fp + fn;
    return den ? 2.0 * (double)tp / (double)den : 0.0;
}

pare_status pare_metric_f1(double *out, const int32_t *pred, const int32_t *gold, int64_t n, int32_t positive)
{
    PARE_TRY(check_labels(pred, gold, n, 0, "f1"));
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        int p = pred[i] == positive, g = gold[i] == positive;
        tp += p && g, fp += p && !g, fn += !p && g;
    }
    *out = f1_of(tp, fp, fn);
    return PARE_OK;
}

pare_status pare_metric_macro_f1(double *out, const int32_t *pred, const int32_t *gold, int64_t n, int32_t nclass)
{
    if (nclass < 1) return pare_fail(PARE_EINVAL, "macro_f1: nclass = %d must be >= 1", nclass);
    PARE_TRY(check_labels(pred, gold, n, nclass, "macro_f1"));
    int64_t *cnt = calloc((size_t)nclass * 3, sizeof *cnt); /* tp, fp, fn per class */
    if (!cnt) return pare_fail(PARE_ENOMEM, "macro_f1: out of memory for %d classes", nclass);
    for (int64_t i = 0; i < n; i++) {
        if (pred[i] == gold[i]) cnt[3 * pred[i]]++;
        else cnt[3 * pred[i] + 1]++, cnt[3 * gold[i] + 2]++;
    }
    double s = 0;
    for (int32_t k = 0; k < nclass; k++) s += f1_of(cnt[3 * k], cnt[3 * k + 1], cnt[3 * k + 2]);
    free(cnt);
    *out = s / nclass;
    return PARE_OK;
}

pare_status pare_metric_mcc(double *out, const int32_t *pred, const int32_t *gold, int64_t n, int32_t nclass)
{
    if (nclass < 2) return pare_fail(PARE_EINVAL, "mcc: nclass = %d must be >= 2", nclass);
    PARE_TRY(check_labels(pred, gold, n, nclass, "mcc"));
    int64_t *t = calloc((size_t)nclass * 2, sizeof *t), *p = t ? t + nclass : NULL, c = 0;
    if (!t) return pare_fail(PARE_ENOMEM, "mcc: out of memory for %d classes", nclass);
    for (int64_t i = 0; i < n; i++) t[gold[i]]++, p[pred[i]]++, c += pred[i] == gold[i];
    double s = (double)n, tp = 0, pp = 0, tt = 0;
    for (int32_t k = 0; k < nclass; k++)
        tp += (double)t[k] * (double)p[k], pp += (double)p[k] * (double)p[k], tt += (double)t[k] * (double)t[k];
    free(t);
    double den = (s * s - pp) * (s * s - tt);
    *out = den > 0 ? ((double)c * s - tp) / sqrt(den) : 0.0;
    return PARE_OK;
}

static pare_status check_scores(const double *x, const double *y, int64_t n, const char *what)
{
    if (n < 2) return pare_fail(PARE_EINVAL, "%s: needs at least 2 pairs (n = %lld)", what, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return pare_fail(PARE_ENUMERIC, "%s: pair %lld is not finite (%g, %g)", what, (long long)i, x[i], y[i]);
    return PARE_OK;
}

static int constant(const double *x, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (x[i] != x[0]) return 0;
    return 1;
}

pare_status pare_metric_pearson(double *out, const double *x, const double *y, int64_t n)
{
    PARE_TRY(check_scores(x, y, n, "pearson"));
    /* GSL would divide 0 by 0 too; saying so here makes it NaN on every machine, as scipy */
    *out = constant(x, n) || constant(y, n) ? NAN : gsl_stats_correlation(x, 1, y, 1, (size_t)n);
    return PARE_OK;
}

pare_status pare_metric_spearman(double *out, const double *x, const double *y, int64_t n)
{
    PARE_TRY(check_scores(x, y, n, "spearman"));
    if (constant(x, n) || constant(y, n)) {
        *out = NAN;
        return PARE_OK;
    }
    double *work = malloc((size_t)n * 2 * sizeof *work);
    if (!work) return pare_fail(PARE_ENOMEM, "spearman: out of memory for %lld pairs", (long long)n);
    *out = gsl_stats_spearman(x, 1, y, 1, (size_t)n, work);
    free(work);
    return PARE_OK;
}

pare_status pare_glue_evaluate(pare_metric_value *out, int *nout, pare_glue_task t, const int32_t *pred,
                               const int32_t *gold, const double *spred, const double *sgold, int64_t n)
{
    const pare_glue_info *g = pare_glue_info_of(t);
    *nout = 0;
    if (!g) return pare_fail(PARE_EINVAL, "glue_evaluate: task %d is not a GLUE task", (int)t);
    for (int k = 0; k < 2 && g->metrics[k] != PARE_GLUE_METRIC_NONE; k++) {
        pare_glue_metric m = g->metrics[k];
        int scores = m == PARE_GLUE_METRIC_PEARSON || m == PARE_GLUE_METRIC_SPEARMAN;
        if (scores ? !spred || !sgold : !pred || !gold)
            return pare_fail(PARE_EINVAL, "glue_evaluate: %s reports %s, which needs %s", g->name,
                             pare_glue_metric_name(m), scores ? "scores (spred, sgold)" : "class ids (pred, gold)");
        double v = NAN;
        pare_status st = PARE_OK;
        switch (m) {
        case PARE_GLUE_METRIC_ACCURACY: st = pare_metric_accuracy(&v, pred, gold, n); break;
        case PARE_GLUE_METRIC_F1: st = pare_metric_f1(&v, pred, gold, n, 1); break;
        case PARE_GLUE_METRIC_MCC: st = pare_metric_mcc(&v, pred, gold, n, g->nclass); break;
        case PARE_GLUE_METRIC_PEARSON: st = pare_metric_pearson(&v, spred, sgold, n); break;
        case PARE_GLUE_METRIC_SPEARMAN: st = pare_metric_spearman(&v, spred, sgold, n); break;
        default: break;
        }
        if (st != PARE_OK) return pare_fail_ctx(st, "%s", g->name);
        out[*nout].name = pare_glue_metric_name(m);
        out[*nout].value = v;
        (*nout)++;
    }
    return PARE_OK;
}
