/* taylor.c — first-order Taylor importance (Molchanov et al. 2019): the loss change from removing w is
 * ≈ g·w, scored per weight as Σ_b (w ⊙ g_b)² over calibration batches b (squared per batch, then summed,
 * as the paper does, so that batches whose gradients cancel in SNIP's sum still count). w is the effective
 * weight. Deliberately not here: the paper's structured (filter) granularity (structured pruning is a
 * separate pass). */
#include "prune_internal.h"

#include <stdlib.h>

static const pare_opt_spec taylor_opts[] = {PR_LAYER_OPTS, PR_PATTERN_OPTS, PR_CALIB_OPTS};
static const pare_schema taylor_schema = {"prune_taylor", "first-order Taylor importance: mask the smallest sum over batches of (w * g_b)^2",
                                          taylor_opts, (int)(sizeof taylor_opts / sizeof taylor_opts[0])};

typedef struct acc { const int64_t *idx; int64_t n; float **s, **w; } acc;

static pare_status add_sq(void *ud, pare_model *m)
{
    acc *a = ud;
    for (int64_t i = 0; i < a->n; i++) {
        const pare_param *w = pr_weight(m, a->idx[i]);
        for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++) {
            float t = a->w[i][j] * w->grad[j];
            a->s[i][j] += t * t;
        }
    }
    return PARE_OK;
}

static pare_status taylor_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    pare_prune_spec spec;
    int64_t *idx, n;
    PARE_TRY(pare_prune_spec_from_opts(&spec, o));
    PARE_TRY(pr_select(m, o, &spec, &idx, &n));
    float **s = pr_scores_new(m, idx, n), **w = pr_scores_new(m, idx, n);
    pare_status st = s && w ? PARE_OK : PARE_ENOMEM;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) pare_prune_effective(m, idx[i], w[i]);
    acc a = {idx, n, s, w};
    if (st == PARE_OK)
        st = pare_prune_grad_batches(m, ctx->calib, pare_opt_int(o, "calib_samples"), pare_opt_int(o, "calib_batch"), add_sq, &a);
    if (st == PARE_OK) st = pare_prune_masks(m, idx, n, s, &spec);
    pr_scores_free(s, n), pr_scores_free(w, n);
    free(idx);
    return st;
}
const pare_pass pare_pass_prune_taylor = {&taylor_schema, taylor_apply, 1};
