/* heads.h — how much each attention head matters, for structured head pruning.
 *
 * Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?": gate every head's output with
 * a variable ξ_h (1 in the model) and score the head by the expected magnitude of the loss's derivative
 * with respect to it,
 *
 *     I_h = E_x | ∂L(x) / ∂ξ_h |,      ∂L/∂ξ_h = Σ_t Σ_{d ∈ h} ctx_t[d] · ∂L/∂ctx_t[d]
 *
 * where ctx is the attention node's output (head-major columns h·D + d) that the output projection
 * reads. No gate is inserted: with W_o the projection's (N, C) weight and dW_o its gradient,
 * Σ_{n, d ∈ h} W_o[n, d] · dW_o[n, d] is exactly Σ_t Σ_{d ∈ h} ctx_t[d] · dctx_t[d] (dW_o = dyᵀ ctx and
 * dctx = dy W_o), so one backward pass of the model scores every head of every layer. The paper then
 * normalises the scores of each layer by their L2 norm (normalize = 1).
 *
 * batch = 1 gives the paper's per-example |·| exactly; a larger batch takes |·| of the batch's mean
 * gradient (faster; heads whose effect changes sign between examples score lower).
 *
 *     pare_head_scores s;
 *     PARE_TRY(pare_head_importance(m, &task.train, 0, 256, 1, 1, &s));
 *     for (int l = 0; l < s.n; l++) ... s.score[l * s.hmax + h] for h < s.heads[l] ...
 *     pare_head_scores_free(&s);
 *
 * Deliberately not here: removing heads (graph/rewrite.h pare_model_drop_heads does it physically) and
 * the pruning loop (experiments/sixteen_heads.lua: Lua drives the order and the evaluation).
 */
#ifndef PARE_PRUNE_HEADS_H
#define PARE_PRUNE_HEADS_H

#include <stdint.h>

#include "data/task.h"
#include "graph/graph.h"

typedef struct pare_head_scores {
    int n;            /* attention nodes (self- and cross-attention), in node order */
    int hmax;         /* the largest head count: the stride of score */
    int64_t *node;    /* (n) node index of each attention layer in the model */
    int *heads;       /* (n) heads of each */
    double *score;    /* (n, hmax) importance; entries at h >= heads[l] are 0 */
} pare_head_scores;

/* Score every head of m's attention layers over examples [first, first + n) of d (Michel et al.); see
 * above for batch and normalize. Errors: a model without attention, an attention output read by anything
 * but one Linear, non-f32 weights, a range outside d, a non-finite loss. */
pare_status pare_head_importance(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                 int normalize, pare_head_scores *out);
void pare_head_scores_free(pare_head_scores *s); /* safe twice */

#endif
