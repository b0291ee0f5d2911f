/* test_metrics.c — accuracy, F1, macro F1, MCC, Pearson, Spearman and the GLUE metric table against
 * references written here another way (confusion-matrix and covariance forms, O(n^2) tie ranks, long
 * double sums) and against published values (scikit-learn's and scipy's documentation examples).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "eval/baseline.h"
#include "eval/metrics.h"
#include "tap.h"

/* F1 as precision and recall (sklearn: 0 when precision + recall is 0 or undefined). */
static double ref_f1(const int32_t *p, const int32_t *g, int n, int32_t k)
{
    double tp = 0, pp = 0, gp = 0;
    for (int i = 0; i < n; i++) tp += p[i] == k && g[i] == k, pp += p[i] == k, gp += g[i] == k;
    double prec = pp ? tp / pp : 0, rec = gp ? tp / gp : 0;
    return prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
}

/* Gorodkin's R_K as a correlation of one-hot matrices: cov(X,Y) / sqrt(cov(X,X) cov(Y,Y)). */
static double ref_mcc(const int32_t *p, const int32_t *g, int n, int K)
{
    long double cxy = 0, cxx = 0, cyy = 0;
    for (int k = 0; k < K; k++) {
        long double mx = 0, my = 0;
        for (int i = 0; i < n; i++) mx += p[i] == k, my += g[i] == k;
        mx /= n, my /= n;
        for (int i = 0; i < n; i++) {
            long double x = (p[i] == k) - mx, y = (g[i] == k) - my;
            cxy += x * y, cxx += x * x, cyy += y * y;
        }
    }
    return cxx == 0 || cyy == 0 ? 0.0 : (double)(cxy / sqrtl(cxx * cyy));
}

static double ref_pearson(const double *x, const double *y, int n)
{
    long double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return (double)(sxy / sqrtl(sxx * syy));
}

/* Average ranks by counting (1-based): 1 + #smaller + (#equal - 1) / 2. */
static void ref_ranks(double *r, const double *x, int n)
{
    for (int i = 0; i < n; i++) {
        int less = 0, eq = 0;
        for (int j = 0; j < n; j++) less += x[j] < x[i], eq += x[j] == x[i];
        r[i] = 1 + less + (eq - 1) / 2.0;
    }
}

static double ref_spearman(const double *x, const double *y, int n)
{
    double *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
    ref_ranks(rx, x, n), ref_ranks(ry, y, n);
    double v = ref_pearson(rx, ry, n);
    free(rx), free(ry);
    return v;
}

static void published(void)
{
    double v = NAN;
    pare_status st;
    /* sklearn matthews_corrcoef docs: y_true [+1,+1,+1,-1], y_pred [+1,-1,+1,+1] -> -0.33 (= -1/3) */
    int32_t g1[] = {1, 1, 1, 0}, p1[] = {1, 0, 1, 1};
    st = pare_metric_mcc(&v, p1, g1, 4, 2);
    ok(st == PARE_OK && fabs(v + 1.0 / 3) < 1e-12, "MCC: sklearn's example -1/3 (%g)", v);
    /* sklearn f1_score docs: y_true [0,1,2,0,1,2], y_pred [0,2,1,0,0,1]: macro 0.2667, per class [0.8, 0, 0] */
    int32_t g2[] = {0, 1, 2, 0, 1, 2}, p2[] = {0, 2, 1, 0, 0, 1};
    st = pare_metric_macro_f1(&v, p2, g2, 6, 3);
    ok(st == PARE_OK && fabs(v - 0.26666666666666666) < 1e-12,
       "macro F1: sklearn's example 0.2667 (%g)", v);
    st = pare_metric_f1(&v, p2, g2, 6, 0);
    ok(st == PARE_OK && fabs(v - 0.8) < 1e-12, "F1 of class 0: sklearn's 0.8 (%g)", v);
    /* scipy.stats.spearmanr docs: [1,2,3,4,5] vs [5,6,7,8,7] -> 0.8207826816681233 (a tie in y) */
    double x3[] = {1, 2, 3, 4, 5}, y3[] = {5, 6, 7, 8, 7};
    st = pare_metric_spearman(&v, x3, y3, 5);
    ok(st == PARE_OK && fabs(v - 0.8207826816681233) < 1e-12,
       "Spearman: scipy's example with a tie 0.82078 (%.16g)", v);
}

static void edges(void)
{
    double v = NAN;
    pare_status st;
    int32_t g[] = {0, 1, 1, 0, 1, 0}, c1[] = {1, 1, 1, 1, 1, 1}, c0[] = {0, 0, 0, 0, 0, 0}, inv[] = {1, 0, 0, 1, 0, 1};
    ok(pare_metric_mcc(&v, c1, g, 6, 2) == PARE_OK && v == 0.0, "MCC: constant predictions give 0");
    ok(pare_metric_mcc(&v, g, c0, 6, 2) == PARE_OK && v == 0.0, "MCC: constant gold gives 0");
    ok(pare_metric_mcc(&v, g, g, 6, 2) == PARE_OK && fabs(v - 1) < 1e-15, "MCC: perfect predictions give 1");
    ok(pare_metric_mcc(&v, inv, g, 6, 2) == PARE_OK && fabs(v + 1) < 1e-15, "MCC: inverted predictions give -1");
    ok(pare_metric_f1(&v, c0, c0, 6, 1) == PARE_OK && v == 0.0, "F1: no positive anywhere gives 0 (sklearn zero_division)");
    ok(pare_metric_f1(&v, c1, g, 6, 1) == PARE_OK && fabs(v - 2 * 3.0 / (2 * 3 + 3)) < 1e-15, "F1: all-positive predictions");
    ok(pare_metric_accuracy(&v, inv, g, 6) == PARE_OK && v == 0.0, "accuracy 0");
    double x[] = {1, 2, 3, 4}, k[] = {2, 2, 2, 2}, nanv[] = {1, NAN, 3, 4};
    ok(pare_metric_pearson(&v, x, k, 4) == PARE_OK && isnan(v), "Pearson of a constant side is NaN (as scipy)");
    ok(pare_metric_spearman(&v, k, x, 4) == PARE_OK && isnan(v), "Spearman of a constant side is NaN");
    ok(pare_metric_pearson(&v, x, nanv, 4) == PARE_ENUMERIC && strstr(pare_errmsg(), "pair 1"),
       "Pearson: NaN input is PARE_ENUMERIC naming the pair (%s)", pare_errmsg());
    ok(pare_metric_pearson(&v, x, x, 1) == PARE_EINVAL, "Pearson: one pair is an error");
    ok(pare_metric_accuracy(&v, g, g, 0) == PARE_EINVAL && strstr(pare_errmsg(), "no examples"), "accuracy: n = 0 is an error");
    int32_t un[] = {0, -1, 1};
    ok(pare_metric_accuracy(&v, g, un, 3) == PARE_EINVAL && strstr(pare_errmsg(), "example 1") &&
           strstr(pare_errmsg(), "unlabeled"),
       "a gold label -1 (unlabeled test set) is an error naming the example (%s)", pare_errmsg());
    int32_t big[] = {0, 3, 1};
    ok(pare_metric_mcc(&v, big, g, 3, 2) == PARE_EINVAL && strstr(pare_errmsg(), "predicted label 3"),
       "MCC: a prediction outside [0, nclass) is an error (%s)", pare_errmsg());
    double r1[] = {1, 2, 2, 3, 3, 3}, r2[] = {3, 3, 2, 2, 1, 1};
    st = pare_metric_spearman(&v, r1, r2, 6);
    ok(st == PARE_OK && fabs(v - ref_spearman(r1, r2, 6)) < 1e-12,
       "Spearman with ties on both sides (%g vs %g)", v, ref_spearman(r1, r2, 6));
}

static void randomized(void)
{
    pare_rng r;
    pare_rng_seed(&r, 12);
    double worst_f1 = 0, worst_mf1 = 0, worst_mcc = 0, worst_p = 0, worst_s = 0;
    int bad = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = 2 + (int)pare_rng_below(&r, 200), K = 2 + (int)pare_rng_below(&r, 4);
        int32_t *p = malloc((size_t)n * sizeof *p), *g = malloc((size_t)n * sizeof *g);
        double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        for (int i = 0; i < n; i++) {
            g[i] = (int32_t)pare_rng_below(&r, (uint64_t)K);
            /* correlated predictions, so the values spread over [-1, 1] */
            p[i] = pare_rng_below(&r, 3) ? g[i] : (int32_t)pare_rng_below(&r, (uint64_t)K);
            x[i] = (double)pare_rng_below(&r, 8); /* few values: many ties */
            y[i] = x[i] * (trial % 3 - 1) + (double)pare_rng_below(&r, 5) * 0.5;
        }
        y[0] += 0.25; /* never constant */
        x[1] = x[0] + 1;
        double v, w;
        bad |= pare_metric_f1(&v, p, g, n, 1) != PARE_OK;
        w = fabs(v - ref_f1(p, g, n, 1)), worst_f1 = w > worst_f1 ? w : worst_f1;
        bad |= pare_metric_macro_f1(&v, p, g, n, K) != PARE_OK;
        double m = 0;
        for (int k = 0; k < K; k++) m += ref_f1(p, g, n, k);
        w = fabs(v - m / K), worst_mf1 = w > worst_mf1 ? w : worst_mf1;
        bad |= pare_metric_mcc(&v, p, g, n, K) != PARE_OK;
        w = fabs(v - ref_mcc(p, g, n, K)), worst_mcc = w > worst_mcc ? w : worst_mcc;
        bad |= pare_metric_pearson(&v, x, y, n) != PARE_OK;
        w = fabs(v - ref_pearson(x, y, n)), worst_p = w > worst_p || isnan(w) ? w : worst_p;
        bad |= pare_metric_spearman(&v, x, y, n) != PARE_OK;
        w = fabs(v - ref_spearman(x, y, n)), worst_s = w > worst_s || isnan(w) ? w : worst_s;
        free(p), free(g), free(x), free(y);
    }
    ok(!bad, "300 random cases: every metric returns PARE_OK");
    ok(worst_f1 < 1e-12, "binary F1 = precision/recall form (worst |diff| %.3g)", worst_f1);
    ok(worst_mf1 < 1e-12, "macro F1 = mean of per-class F1 (worst %.3g)", worst_mf1);
    ok(worst_mcc < 1e-12, "MCC (2..5 classes) = one-hot covariance form (worst %.3g)", worst_mcc);
    ok(worst_p < 1e-12, "Pearson = two-pass long double reference (worst %.3g)", worst_p);
    ok(worst_s < 1e-12, "Spearman with ties = Pearson of counted average ranks (worst %.3g)", worst_s);
}

static void glue_table(void)
{
    pare_metric_value v[PARE_GLUE_MAX_METRICS];
    int nv;
    int32_t g[] = {1, 0, 1, 1, 0}, p[] = {1, 1, 1, 0, 0};
    double a, f;
    pare_metric_accuracy(&a, p, g, 5), pare_metric_f1(&f, p, g, 5, 1);
    ok(pare_glue_evaluate(v, &nv, PARE_GLUE_MRPC, p, g, NULL, NULL, 5) == PARE_OK && nv == 2 &&
           !strcmp(v[0].name, "f1") && v[0].value == f && !strcmp(v[1].name, "accuracy") && v[1].value == a,
       "MRPC reports f1 then accuracy");
    ok(pare_glue_evaluate(v, &nv, PARE_GLUE_QQP, p, g, NULL, NULL, 5) == PARE_OK && nv == 2 && !strcmp(v[0].name, "f1"),
       "QQP reports f1 then accuracy");
    ok(pare_glue_evaluate(v, &nv, PARE_GLUE_COLA, p, g, NULL, NULL, 5) == PARE_OK && nv == 1 && !strcmp(v[0].name, "mcc") &&
           fabs(v[0].value - ref_mcc(p, g, 5, 2)) < 1e-12,
       "CoLA reports mcc");
    const pare_glue_task acc[] = {PARE_GLUE_SST2, PARE_GLUE_MNLI, PARE_GLUE_QNLI, PARE_GLUE_RTE, PARE_GLUE_WNLI};
    int all = 1;
    for (int i = 0; i < 5; i++)
        all &= pare_glue_evaluate(v, &nv, acc[i], p, g, NULL, NULL, 5) == PARE_OK && nv == 1 &&
               !strcmp(v[0].name, "accuracy") && v[0].value == a;
    ok(all, "SST-2, MNLI, QNLI, RTE, WNLI report accuracy");
    double s1[] = {0.5, 1, 2.5, 4, 5}, s2[] = {1, 0.8, 3, 3.9, 4.7};
    ok(pare_glue_evaluate(v, &nv, PARE_GLUE_STSB, NULL, NULL, s1, s2, 5) == PARE_OK && nv == 2 &&
           !strcmp(v[0].name, "pearson") && !strcmp(v[1].name, "spearman") && fabs(v[0].value - ref_pearson(s1, s2, 5)) < 1e-12 &&
           fabs(v[1].value - ref_spearman(s1, s2, 5)) < 1e-12,
       "STS-B reports pearson then spearman of the scores");
    ok(pare_glue_evaluate(v, &nv, PARE_GLUE_STSB, p, g, NULL, NULL, 5) == PARE_EINVAL && strstr(pare_errmsg(), "scores"),
       "STS-B without scores is an error (%s)", pare_errmsg());
    ok(pare_glue_evaluate(v, &nv, (pare_glue_task)99, p, g, NULL, NULL, 5) == PARE_EINVAL, "an unknown task is an error");
}

/* Rows {length, t0, t1, t2, label}. */
static void fill(pare_dataset *d, const int32_t (*rows)[5], int n)
{
    for (int i = 0; i < n; i++) {
        d->lengths[i] = rows[i][0];
        for (int j = 0; j < rows[i][0]; j++) d->tokens[i * d->T + j] = rows[i][1 + j];
        d->labels[i] = rows[i][4];
    }
}

static void baselines(void)
{
    /* train: token 5 means class 1, token 6 class 0; class 0 is the majority (3 of 5) */
    const int32_t tr_rows[][5] = {{2, 1, 5, 0, 1}, {2, 1, 6, 0, 0}, {3, 1, 5, 5, 1}, {2, 1, 6, 0, 0}, {3, 1, 6, 6, 0}};
    const int32_t te_rows[][5] = {{2, 1, 5, 0, 1}, {2, 1, 6, 0, 0}, {2, 1, 5, 0, 1}, {2, 1, 7, 0, 0}};
    pare_dataset tr, te, lm;
    pare_dataset_alloc(&tr, "b/train", PARE_TASK_CLASSIFY, 5, 3, 8, 2);
    pare_dataset_alloc(&te, "b/test", PARE_TASK_CLASSIFY, 4, 3, 8, 2);
    fill(&tr, tr_rows, 5), fill(&te, te_rows, 4);
    double acc = NAN;
    pare_baseline k;
    ok(pare_baseline_parse(&k, "bow") == PARE_OK && k == PARE_BASELINE_BOW && pare_baseline_parse(&k, "svm") == PARE_EINVAL &&
           strstr(pare_errmsg(), "majority|bow"),
       "baseline names: majority, bow");
    pare_status st = pare_baseline_accuracy(&acc, &tr, &te, PARE_BASELINE_MAJORITY);
    ok(st == PARE_OK && acc == 0.5,
       "majority: always class 0 (3 of 5 in train) scores 2 of 4 (%g)", acc);
    /* naive Bayes on the last test row [1, 7]: token 7 unseen in both classes, token 1 in both; the
     * prior (3/5 vs 2/5) and the smoothed counts of token 1 (3 of 7 vs 2 of 5 tokens, V = 8) decide:
     * class 0: log(3/5) + log(4/15) + log(1/15); class 1: log(2/5) + log(3/13) + log(1/13) -> class 0 */
    st = pare_baseline_accuracy(&acc, &tr, &te, PARE_BASELINE_BOW);
    ok(st == PARE_OK && acc == 1.0,
       "bag of words: the deciding token is learnt, the unseen one falls to the prior (%g)", acc);
    pare_dataset_alloc(&lm, "b/lm", PARE_TASK_LM, 2, 3, 8, 8);
    ok(pare_baseline_accuracy(&acc, &lm, &te, PARE_BASELINE_BOW) == PARE_EINVAL && strstr(pare_errmsg(), "not a classification"),
       "an LM split is refused");
    te.labels[2] = -1;
    ok(pare_baseline_accuracy(&acc, &tr, &te, PARE_BASELINE_MAJORITY) == PARE_EINVAL && strstr(pare_errmsg(), "example 2"),
       "an unlabeled example is refused, named");
    pare_dataset_free(&tr), pare_dataset_free(&te), pare_dataset_free(&lm);
}

int main(void)
{
    tap_plan_lazy();
    published();
    edges();
    randomized();
    glue_table();
    baselines();
    return tap_done();
}
