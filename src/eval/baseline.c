/* baseline.c — majority-class and bag-of-words (multinomial naive Bayes) baselines (baseline.h).
 *
 * Entry points: pare_baseline_parse, pare_baseline_accuracy.
 */
#include "eval/baseline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const baseline_names[] = {"majority", "bow"};
_Static_assert(sizeof baseline_names / sizeof baseline_names[0] == PARE_BASELINE_COUNT, "baseline names out of date");

pare_status pare_baseline_parse(pare_baseline *kind, const char *name)
{
    for (int i = 0; name && i < PARE_BASELINE_COUNT; i++)
        if (!strcmp(name, baseline_names[i])) {
            *kind = (pare_baseline)i;
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "no baseline '%s' (valid: majority|bow)", name ? name : "(null)");
}

static pare_status check_split(const pare_dataset *d, const pare_dataset *ref)
{
    if (d->kind != PARE_TASK_CLASSIFY)
        return pare_fail(PARE_EINVAL, "baseline: %s is not a classification split", d->name);
    if (d->targets)
        return pare_fail(PARE_EINVAL, "baseline: %s is a regression task (a score per example, e.g. STS-B); the majority "
                         "and bag-of-words baselines classify", d->name);
    if (d->vocab != ref->vocab || d->nclass != ref->nclass)
        return pare_fail(PARE_EINVAL, "baseline: %s (vocab %d, %d classes) does not match %s (vocab %d, %d classes)", d->name,
                         d->vocab, d->nclass, ref->name, ref->vocab, ref->nclass);
    if (d->n < 1) return pare_fail(PARE_EINVAL, "baseline: %s has no examples", d->name);
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->nclass)
            return pare_fail(PARE_EINVAL, "baseline: %s example %lld has label %d outside [0, %d) (unlabeled?)", d->name,
                             (long long)i, d->labels[i], d->nclass);
    return PARE_OK;
}

pare_status pare_baseline_accuracy(double *acc, const pare_dataset *train, const pare_dataset *test, pare_baseline kind)
{
    PARE_TRY(check_split(train, train));
    PARE_TRY(check_split(test, train));
    if ((unsigned)kind >= PARE_BASELINE_COUNT) return pare_fail(PARE_EINVAL, "baseline: kind %d out of range", (int)kind);
    int32_t C = train->nclass, V = train->vocab;
    double *prior = calloc((size_t)C, sizeof *prior);
    double *tot = calloc((size_t)C, sizeof *tot);
    double *lp = kind == PARE_BASELINE_BOW ? calloc((size_t)C * (size_t)V, sizeof *lp) : NULL; /* (C, V) counts, then logs */
    if (!prior || !tot || (kind == PARE_BASELINE_BOW && !lp)) {
        free(prior), free(tot), free(lp);
        return pare_fail(PARE_ENOMEM, "baseline: out of memory for %d classes x %d tokens", C, V);
    }
    for (int64_t i = 0; i < train->n; i++) {
        int32_t y = train->labels[i];
        prior[y] += 1;
        for (int32_t j = 0; lp && j < train->lengths[i]; j++) lp[(size_t)y * V + (size_t)train->tokens[i * train->T + j]] += 1, tot[y] += 1;
    }
    int32_t major = 0;
    for (int32_t c = 1; c < C; c++)
        if (prior[c] > prior[major]) major = c;
    for (int32_t c = 0; lp && c < C; c++) {
        for (int32_t v = 0; v < V; v++) lp[(size_t)c * V + v] = log((lp[(size_t)c * V + v] + 1) / (tot[c] + V));
        prior[c] = log(prior[c] > 0 ? prior[c] / (double)train->n : 1e-300);
    }
    int64_t right = 0;
    for (int64_t i = 0; i < test->n; i++) {
        int32_t pred = major;
        if (lp) {
            double best = -INFINITY;
            for (int32_t c = 0; c < C; c++) {
                double s = prior[c];
                for (int32_t j = 0; j < test->lengths[i]; j++) s += lp[(size_t)c * V + (size_t)test->tokens[i * test->T + j]];
                if (s > best) best = s, pred = c;
            }
        }
        right += pred == test->labels[i];
    }
    free(prior), free(tot), free(lp);
    *acc = (double)right / (double)test->n;
    return PARE_OK;
}
