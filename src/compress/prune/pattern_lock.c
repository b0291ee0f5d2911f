/* pattern_lock.c — pattern lock: the zeros a weight already has become its mask (M = [w ≠ 0]), so
 * fine-tuning keeps the sparsity pattern of a model pruned elsewhere (a loaded checkpoint, a baked mask):
 * masked weights get zero gradient. A weight that already has a mask keeps it and also locks its exact
 * zeros. Deliberately not here: locking an N:M or block layout that the zeros do not have. */
#include "prune_internal.h"

#include <stdlib.h>

#include "core/arena.h"
#include "graph/transform.h"

static const pare_opt_spec lock_opts[] = {PR_LAYER_OPTS};
static const pare_schema lock_schema = {"pattern_lock", "pattern lock: the weights' zeros become masks, kept through fine-tuning",
                                        lock_opts, (int)(sizeof lock_opts / sizeof lock_opts[0])};

static pare_status lock_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    PARE_TRY(pr_select(m, o, NULL, &idx, &n));
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const pare_param *w = pr_weight(m, idx[i]);
        int64_t N = w->shape[0], K = w->shape[1];
        float *mk = pare_alloc(sizeof *mk * (size_t)(N * K));
        if (!mk) st = pare_fail(PARE_ENOMEM, "out of memory for the mask of %s", m->nodes[idx[i]].name);
        else {
            pare_prune_effective(m, idx[i], mk);
            for (int64_t j = 0; j < N * K; j++) mk[j] = mk[j] != 0.0f ? 1.0f : 0.0f;
            st = pare_model_set_mask(m, m->nodes[idx[i]].name, mk, N, K);
        }
        pare_free(mk);
    }
    free(idx);
    return st;
}
const pare_pass pare_pass_pattern_lock = {&lock_schema, lock_apply, 0};
