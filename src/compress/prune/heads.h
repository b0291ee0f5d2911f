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

#include "core/options.h"
#include "data/task.h"
#include "graph/graph.h"
#include "train/train.h"

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

/* ---- hard-concrete L0 head gates (Voita et al. 2019, after Louizos et al. 2018; head_gates.c) ----
 * A gate z_h per head on every selected attention layer's output projection (the head_gate weight
 * transform, graph/transform.h), trained with the model under the penalty λ Σ_h P(z_h ≠ 0) (the hooks
 * below add it and its gradient to every step), then removed: heads whose deterministic gate is 0 are
 * dropped physically and the others' z folded into the output projection.
 *
 * The gates have their own learning rate: a gate moves from open to closed as log α crosses about 5
 * (z = 1 above 2.4, 0 below −2.4), which AdamW at a fine-tuning rate (1e-3: at most ~1e-3 per step)
 * would need thousands of steps for. With gate_lr > 0 the hooks take the log α gradients out of the
 * model's AdamW step and update log α with their own Adam (β = 0.9, 0.999) at the constant rate gate_lr;
 * gate_lr = 0 leaves them to the model's optimizer.
 *
 *     PARE_TRY(pare_head_gates_attach(g, 0.01, 0.05, 3.0, ""));    // g: a clone of a trained model
 *     pare_head_gate_run run = {0};
 *     pare_train_hooks h = pare_head_gates_hooks(&run);
 *     PARE_TRY(pare_train_ex(g, &train, NULL, &o, NULL, &h, NULL, NULL, &r));
 *     pare_model *p;  PARE_TRY(pare_head_gates_prune(&p, g));       // a plain model, fewer heads
 *
 * attach: layers is a comma-separated list of globs on the attention nodes' names ("enc.*.attn",
 * "dec.*.xattn"; "" = every self- and cross-attention); log α starts at init_log_alpha for every head
 * (3: the deterministic gate is 1, a trained model starts unchanged). λ ≥ 0 is kept in the gate's
 * state parameter, so a gated model carries its own penalty (and saves it). Errors: no attention layer
 * matching, an output projection that is not one f32 Linear reading the heads, a layer already gated or
 * carrying another transform on that weight. */
pare_status pare_head_gates_attach(pare_model *m, double lambda, double gate_lr, double init_log_alpha, const char *layers);
/* The options of m:head_gates (`pare help head_gates`): lambda, gate_lr, init, layers. */
extern const pare_schema pare_head_gates_schema;
/* Gated layers of m (0: none). */
int pare_head_gates_count(const pare_model *m);
/* The L0 penalty Σ_layers λ_l Σ_h P(z_h ≠ 0); with add_grad, λ_l ∂P/∂log α into the log α gradients
 * (allocated: a training run's). */
double pare_head_gates_penalty(pare_model *m, int add_grad);
/* Training hooks adding the penalty after every backward and stepping the gates (pare_train_ex); run is
 * their state for one training call (zeroed by the caller; its buffers are freed by the end hook). */
typedef struct pare_head_gate_run {
    float *grad, *m, *v;   /* (n) every gate's log α gradient and Adam moments, gated layers in node order */
    int64_t n, t;
} pare_head_gate_run;
pare_train_hooks pare_head_gates_hooks(pare_head_gate_run *run);
/* The gates of m as scores: per gated layer (in node order; node = the attention node), score = the
 * deterministic gate z_h in [0, 1]. */
pare_status pare_head_gates_values(const pare_model *m, pare_head_scores *out);
/* *out = a plain copy of m: in each gated layer, the heads whose deterministic gate is 0 dropped (a layer
 * keeps at least one head: if every gate is 0 the one with the largest log α stays, with z = 0 folded in,
 * so its output is 0), the others' z multiplied into the output projection's columns, the gates and their
 * parameters removed. kept[3] (may be NULL) = heads with z > 0 in encoder self-attention ("enc.*"),
 * decoder self-attention and cross-attention ("*.xattn" / cross-attention nodes). */
pare_status pare_head_gates_prune(pare_model **out, const pare_model *m, int64_t kept[3]);

/* ---- head confidence (Voita et al. 2019's second measure; head_conf.c) ----
 * The mean, over examples [first, first + n) of d and their valid query positions (t < length; an encoder
 * layer's queries: s < source length), of a head's largest attention weight max_k p[t, k], for every
 * self- and cross-attention layer of m (dense attention, which keeps its probabilities): the cheaper measure
 * Voita et al. report beside LRP relevance (below). */
pare_status pare_head_confidence(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                 pare_head_scores *out);

/* ---- head relevance by LRP (Voita et al. 2019, §4.2; head_lrp.c, rules in lrp.h) ----
 * For each of examples [first, first + n) of d: the top-1 logit's value as relevance (per-token logits: at
 * every valid position, divided by the length), propagated back with the ε-rule (eps ≥ 0, the stabiliser)
 * through Linear, LayerNorm, residual sums, activations, pooling and attention (probabilities held
 * constant) to each attention node's output; a head's relevance is the sum over its columns and the
 * example's rows, averaged over the examples. normalize: each layer's scores divided by their sum (by the
 * sum of their magnitudes if that sum is not positive), so a layer's heads sum to 1. batch: examples per
 * captured forward. Errors: non-dense attention (no probabilities kept), weights not in f32, an op without
 * a rule, a range outside d. */
pare_status pare_head_relevance(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                double eps, int normalize, pare_head_scores *out);

#endif
