/* magnitude.c — magnitude pruning (Han et al. 2015): score |w| of the effective weight, per layer or with
 * one global threshold (scope=global, Zhu & Gupta's and the lottery-ticket papers' variant), unstructured,
 * N:M or blocks (a block's score is the L2 norm of its weights). Weights already masked stay pruned.
 * Deliberately not here: schedules (schedule.c runs this criterion during fine-tuning). */
#include "prune_internal.h"

#include <math.h>
#include <stdlib.h>

static const pare_opt_spec mag_opts[] = {PR_LAYER_OPTS, PR_PATTERN_OPTS};
static const pare_schema mag_schema = {"prune_magnitude", "magnitude pruning: mask the smallest |w| (per layer or global; unstructured, N:M or blocks)",
                                       mag_opts, (int)(sizeof mag_opts / sizeof mag_opts[0])};

static pare_status mag_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    pare_prune_spec spec;
    int64_t *idx, n;
    PARE_TRY(pare_prune_spec_from_opts(&spec, o));
    PARE_TRY(pr_select(m, o, &spec, &idx, &n));
    float **s = pr_scores_new(m, idx, n);
    pare_status st = s ? PARE_OK : PARE_ENOMEM;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const pare_param *w = pr_weight(m, idx[i]);
        pare_prune_effective(m, idx[i], s[i]);
        for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++) s[i][j] = fabsf(s[i][j]);
    }
    if (st == PARE_OK) st = pare_prune_masks(m, idx, n, s, &spec);
    pr_scores_free(s, n);
    free(idx);
    return st;
}
const pare_pass pare_pass_prune_magnitude = {&mag_schema, mag_apply, 0};
