/* prune.h — unstructured and pattern pruning: criteria that score the weights of selected Linear layers,
 * one mask helper that turns scores into masks (per layer or global, unstructured, N:M or blocks), and
 * schedules (one-shot, iterative, gradual) that prune during fine-tuning through the training loop's hooks.
 * Masks are the weight transform of graph/transform.h (W_eff = W ⊙ M): the f32 masters are never written,
 * masked weights get zero gradient, a checkpoint keeps the masks. Sparse kernels and storage formats are
 * not here (the `sparsify` pass, another file); a masked model runs the dense f32 kernel.
 *
 *     pare_model *p;                                   // one-shot: a pass, like the quantizers
 *     pare_kv kv[] = {{"sparsity", PARE_KV_NUM, 0.8}, {"scope", PARE_KV_STR, 0, "global"}};
 *     PARE_TRY(pare_apply(&p, m, "prune_magnitude", kv, 2));
 *
 *     pare_prune_sched *s;                             // gradual (Zhu & Gupta) during fine-tuning
 *     PARE_TRY(pare_prune_sched_new(&s, &sched_opts)); // options of pare_prune_sched_schema
 *     pare_train_hooks h = pare_prune_sched_hooks(s);
 *     PARE_TRY(pare_train_ex(p, &train, NULL, &train_opts, NULL, &h, NULL, NULL, &r));
 *
 * Passes (pass.h registry): prune_magnitude, prune_snip, prune_taylor, pattern_lock. Schedules:
 * pare_prune_sched_schema ("prune_schedule") with methods magnitude, snip, taylor, movement, soft_movement;
 * the schemas prune_movement / prune_soft_movement document the movement options for `pare help`.
 * Entry points: pare_prune_masks (scores → masks → model), pare_prune_sparsity, pare_prune_cubic,
 * pare_prune_sched_*. Docs: docs/pruning.md.
 */
#ifndef PARE_PRUNE_H
#define PARE_PRUNE_H

#include "compress/pass.h"
#include "train/train.h"

/* How a mask is laid out over a weight (N, K). */
typedef enum pare_prune_pattern {
    PARE_PRUNE_UNSTRUCTURED = 0, /* any weight */
    PARE_PRUNE_NM,               /* exactly n kept of every m consecutive weights along K (the input dimension) */
    PARE_PRUNE_BLOCK,            /* whole blocks of br rows × bc columns; a block's score is the L2 norm of its scores */
} pare_prune_pattern;

typedef struct pare_prune_spec {
    pare_prune_pattern pattern;
    double sparsity;   /* UNSTRUCTURED, BLOCK: the fraction of weights (blocks) pruned, exactly round(s·count) */
    int global;        /* 1: one threshold over every selected layer; 0: the sparsity in each layer */
    int n, m;          /* NM */
    int br, bc;        /* BLOCK */
} pare_prune_spec;

/* Resolve the pattern options (pattern, n, m, block, sparsity, scope) of a schema into spec; PARE_EINVAL
 * naming the option (n >= m, a block that is not "RxC", ...). */
pare_status pare_prune_spec_from_opts(pare_prune_spec *spec, const pare_options *o);
/* Check that spec fits layer node's weight (K % m, N % br, K % bc): PARE_EINVAL naming the layer and shape. */
pare_status pare_prune_spec_check(const pare_prune_spec *spec, const pare_model *m, int64_t node);

/* Masks from scores: layers idx[0..n) of m, score[i] (N_i, K_i) with higher = more important (kept).
 * Weights already masked out in m count as -inf (a pruned weight stays pruned: schedules are monotone).
 * Ties go to the lower index (row-major), so the result is deterministic. Writes the masks into m
 * (pare_model_set_mask). */
pare_status pare_prune_masks(pare_model *m, const int64_t *idx, int64_t n, float *const *score, const pare_prune_spec *spec);
/* The mask alone, for one layer (N, K) (no -inf rule; tests and the pieces above use it). */
pare_status pare_prune_mask_layer(float *mask, const float *score, int64_t N, int64_t K, const pare_prune_spec *spec);

/* Zeros over weights: of the masks (or exact zeros of unmasked weights) of the Linear layers matching
 * `layers` ("" or NULL: all). */
typedef struct pare_sparsity { int64_t zeros, total; } pare_sparsity;
pare_sparsity pare_prune_sparsity(const pare_model *m, const char *layers);

/* The effective weight W ⊙ M (or W) of node into out (N, K). */
void pare_prune_effective(const pare_model *m, int64_t node, float *out);

/* Zhu & Gupta (2017) cubic schedule: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·dt))^3 for t in [t0, t0 + n·dt],
 * s_i before t0, s_f after. */
double pare_prune_cubic(int64_t t, double s_i, double s_f, int64_t t0, int64_t n, int64_t dt);

/* Gradients of the loss over the first `samples` examples of d (batches of `batch`, full batches only;
 * train.h's pare_grad_batches: a copy of m without dropout sharing its weights), fn called after each
 * batch's backward with that copy, the gradients in its parameters' grad buffers (same indices as m's).
 * m is not updated. */
pare_status pare_prune_grad_batches(pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch,
                                    pare_status (*fn)(void *ud, pare_model *m), void *ud);

/* ---- group lasso (group_lasso.c): λ Σ_g ‖W_g‖₂ over blocks of br × bc of the effective weights of idx.
 * Adds λ W_g / ‖W_g‖ into the weights' gradients (groups of norm 0 get none: the subgradient 0) and
 * returns the penalty. */
double pare_group_lasso(pare_model *m, const int64_t *idx, int64_t n, double lambda, int br, int bc);

/* ---- schedules (schedule.c) ---- */
extern const pare_schema pare_prune_sched_schema;       /* "prune_schedule" */
extern const pare_schema pare_prune_movement_schema;    /* "prune_movement" (help) */
extern const pare_schema pare_prune_soft_movement_schema; /* "prune_soft_movement" (help) */

typedef struct pare_prune_sched pare_prune_sched;
/* From options resolved against pare_prune_sched_schema; PARE_EINVAL naming a bad combination. */
pare_status pare_prune_sched_new(pare_prune_sched **out, const pare_options *o);
void pare_prune_sched_free(pare_prune_sched *s);
/* The hooks of s for pare_train_ex (s must outlive the training call). */
pare_train_hooks pare_prune_sched_hooks(pare_prune_sched *s);
/* The target sparsity of s at step t (after t+1 optimizer steps; -1: no pruning at t). */
double pare_prune_sched_target(const pare_prune_sched *s, int64_t t);
/* What happened in the last training run. */
typedef struct pare_prune_sched_report {
    int64_t prunes;         /* pruning events */
    double last_target;     /* the last target sparsity (soft movement: the sparsity its threshold gave) */
    double penalty;         /* last group-lasso penalty */
} pare_prune_sched_report;
pare_prune_sched_report pare_prune_sched_get_report(const pare_prune_sched *s);

/* ---- movement (movement.c) ----
 * Scores updated every step from the masters and their gradients: movement S −= W ⊙ G (Sanh et al. 2020,
 * the "−W·G summed" form of hard movement); soft movement S −= lr_s (W ⊙ G / rms(W ⊙ G) + λ σ'(S)), mask = S > τ. */
void pare_movement_update(float *S, const float *W, const float *G, int64_t len, int soft, double lambda, double lr_s);

#endif
