/* snip.c — gradient sensitivity, SNIP (Lee et al. 2019, "connection sensitivity"): score |w ⊙ g| with g the
 * gradient of the loss summed over calibration batches (the first calib_samples examples of calib's train
 * split, in batches of calib_batch), w the effective weight. Pruning is then by the mask helper (per layer
 * or global; unstructured, N:M or blocks). Deliberately not here: SNIP at initialisation as a from-scratch
 * training recipe (apply it to any model, trained or not), and iterative SNIP (use a schedule). */
#include "prune_internal.h"

#include <math.h>
#include <stdlib.h>

static const pare_opt_spec snip_opts[] = {PR_LAYER_OPTS, PR_PATTERN_OPTS, PR_CALIB_OPTS};
static const pare_schema snip_schema = {"prune_snip", "SNIP gradient sensitivity: mask the smallest |w * g| (g summed over calibration batches)",
                                        snip_opts, (int)(sizeof snip_opts / sizeof snip_opts[0])};

typedef struct acc { const int64_t *idx; int64_t n; float **g; } acc;

static pare_status add_grads(void *ud, pare_model *m)
{
    acc *a = ud;
    for (int64_t i = 0; i < a->n; i++) {
        const pare_param *w = pr_weight(m, a->idx[i]);
        for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++) a->g[i][j] += w->grad[j];
    }
    return PARE_OK;
}

static pare_status snip_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    pare_prune_spec spec;
    int64_t *idx, n;
    PARE_TRY(pare_prune_spec_from_opts(&spec, o));
    PARE_TRY(pr_select(m, o, &spec, &idx, &n));
    float **s = pr_scores_new(m, idx, n), **g = pr_scores_new(m, idx, n);
    pare_status st = s && g ? PARE_OK : PARE_ENOMEM;
    acc a = {idx, n, g};
    if (st == PARE_OK)
        st = pare_prune_grad_batches(m, ctx->calib, pare_opt_int(o, "calib_samples"), pare_opt_int(o, "calib_batch"), add_grads, &a);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const pare_param *w = pr_weight(m, idx[i]);
        pare_prune_effective(m, idx[i], s[i]);
        for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++) s[i][j] = fabsf(s[i][j] * g[i][j]);
    }
    if (st == PARE_OK) st = pare_prune_masks(m, idx, n, s, &spec);
    pr_scores_free(s, n), pr_scores_free(g, n);
    free(idx);
    return st;
}
const pare_pass pare_pass_prune_snip = {&snip_schema, snip_apply, 1};
