/* structured.h — structured pruning beyond heads: how much each FFN neuron and each whole transformer
 * layer matters, and the passes that remove the least important ones physically (graph/rewrite.h), so
 * the pruned model is smaller and runs fewer FLOPs. Heads: heads.h scores them; the prune_heads pass
 * here removes them.
 *
 * FFN neurons. Gate neuron j's activation a_t[j] (the down projection's input column j) with ξ_j (1 in
 * the model). As for heads (heads.h), with W_down (C, F) and its gradient dW_down,
 *
 *     ∂L/∂ξ_j = Σ_t a_t[j] · ∂L/∂a_t[j] = Σ_n W_down[n, j] · dW_down[n, j]       (dW = dyᵀ a, da = dy W)
 *
 * so one backward pass scores every neuron of every layer; criterion "taylor" takes E_x |∂L/∂ξ_j|
 * (Molchanov et al. 2019's first-order Taylor criterion at neuron granularity; batch = 1 the per-example
 * |·|, a larger batch |·| of the batch mean). Criterion "magnitude" is the L2 norm of the up projection's
 * row j (no data).
 *
 * Layers. The importance of layer l is the loss increase when it is removed (pare_model_remove_nodes
 * of "<prefix>.l.*": its input takes its output's place), L(m without l) − L(m), over the given examples
 * at inference. One evaluation per layer: exact rather than a gradient proxy, affordable because models
 * have tens of layers, not thousands.
 *
 *     pare_neuron_scores s;
 *     PARE_TRY(pare_neuron_importance(m, "*.ffn.up", PARE_NEURON_TAYLOR, &task.train, 0, 128, 1, &s));
 *     ... s.score[l][j] for j < s.width[l] ...
 *     pare_neuron_scores_free(&s);
 *
 * Passes (pass.h registry): prune_neurons, prune_heads, prune_layers (`pare help NAME`).
 * Deliberately not here: token pruning (tokens.c: a simulated, masked variant — the executor's token rows
 * have one T for every layer) and retraining after pruning (m:train).
 */
#ifndef PARE_PRUNE_STRUCTURED_H
#define PARE_PRUNE_STRUCTURED_H

#include <stdint.h>

#include "data/task.h"
#include "graph/graph.h"

typedef enum pare_neuron_criterion { PARE_NEURON_TAYLOR = 0, PARE_NEURON_MAGNITUDE } pare_neuron_criterion;

typedef struct pare_neuron_scores {
    int n;           /* FFN layers: the selected up projections, in node order */
    int64_t *node;   /* (n) the up projection's node */
    int64_t *down;   /* (n) the Linear reading its neurons (through activations / dropout) */
    int64_t *width;  /* (n) neurons of each */
    double **score;  /* (n) of (width[l]): higher = more important */
} pare_neuron_scores;

/* Score the neurons of the Linears matching `layers` (each must feed one Linear through single-input,
 * parameter-free ops: its FFN's down projection). TAYLOR reads examples [first, first + n) of d in
 * batches of `batch` (d may be NULL for MAGNITUDE). Errors: no match, a Linear not feeding a down
 * projection (naming both), non-f32 weights, a range outside d. */
pare_status pare_neuron_importance(const pare_model *m, const char *layers, pare_neuron_criterion c, const pare_dataset *d,
                                   int64_t first, int64_t n, int64_t batch, pare_neuron_scores *out);
void pare_neuron_scores_free(pare_neuron_scores *s); /* safe twice */

typedef struct pare_layer_scores {
    int n;                         /* layers, in node order */
    char (*prefix)[PARE_NAME_MAX]; /* (n) "enc.3": the layer's nodes are "<prefix>.*" */
    double *score;                 /* (n) L(without the layer) − L(model) */
    double base;                   /* L(model) */
} pare_layer_scores;

/* The layers of m are the prefixes "<p>.<l>" of its self-attention nodes "<p>.<l>.<name>" (enc.3.attn);
 * each is removed in turn from a clone and the mean loss over examples [first, first + n) of d (batches of
 * `batch`, inference) compared with the model's. Errors: no layers, a layer that cannot be removed (its
 * message), a range outside d. */
pare_status pare_layer_importance(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                  pare_layer_scores *out);
void pare_layer_scores_free(pare_layer_scores *s); /* safe twice */

/* The mean inference loss of m over examples [first, first + n) of d (pare_evaluate on that range). */
pare_status pare_range_loss(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch, double *loss);

#endif
