/* train.h — AdamW with warm-up + cosine schedule and gradient clipping; the training and evaluation
 * loops over a pare_dataset.
 *
 *     pare_options o;  pare_opts_resolve(&o, &pare_train_schema, kv, n);
 *     pare_train_result r;  PARE_TRY(pare_train(model, &task_train, &o, progress_fn, ud, &r));
 *     pare_eval_result e;   PARE_TRY(pare_evaluate(model, &task_test, 64, &e));
 *
 * Determinism: batches are drawn by a pare_rng seeded from the "seed" option, dropout masks from a
 * stream split off it, and every kernel is deterministic for a fixed thread count.
 */
#ifndef PARE_TRAIN_H
#define PARE_TRAIN_H

#include "core/options.h"
#include "data/task.h"
#include "graph/graph.h"

extern const pare_schema pare_train_schema;

typedef struct pare_train_progress {
    int64_t step, steps;
    float loss;       /* running mean of recent batch losses */
    float lr;
    double elapsed_s, eta_s;
    double eval_accuracy; /* last evaluation, or -1 */
} pare_train_progress;

/* Called after every step; return non-zero to stop early. */
typedef int (*pare_progress_fn)(void *ud, const pare_train_progress *p);

typedef struct pare_train_result {
    int64_t steps;
    float final_loss;
    double seconds;
    double best_eval_accuracy; /* -1 if never evaluated */
} pare_train_result;

/* Train m in place (its parameters become private to it). A loss that is not finite stops it with
 * PARE_ENUMERIC naming the step and, when a checked re-run finds one, the first layer whose output is
 * not finite (e.g. a NaN weight); otherwise it suggests a lower learning rate. `eval` may be NULL; it is used when the
 * options ask for evaluation every k steps or for an early stop at a target accuracy. */
pare_status pare_train(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                       pare_progress_fn progress, void *ud, pare_train_result *out);

/* Learning rate at step s of the schedule: linear warm-up to lr, cosine decay to lr·min_lr_ratio. */
float pare_lr_at(int64_t s, int64_t steps, int64_t warmup, float lr, float min_ratio);

/* One AdamW update of every trainable parameter from its gradient (decoupled weight decay on
 * matrices only, not on biases, LayerNorm gains or 1-D parameters). t counts from 1. */
void pare_adamw_step(pare_model *m, float lr, float beta1, float beta2, float eps, float weight_decay, int64_t t);
/* Scale gradients so their global L2 norm is at most max_norm (no-op if max_norm <= 0); returns the
 * norm before clipping. */
float pare_clip_grad_norm(pare_model *m, float max_norm);

typedef struct pare_eval_result {
    double accuracy; /* classification: sequences; LM: tokens with a target */
    double loss;     /* mean cross-entropy */
    double perplexity; /* exp(loss) */
    int64_t n;       /* sequences (classify) or target tokens (LM) */
} pare_eval_result;

/* Non-finite logits (NaN/Inf) are PARE_ENUMERIC, never an accuracy: the message names the batch, the
 * examples and the first layer whose output is not finite (a checked re-run of that batch), e.g.
 * "evaluate: non-finite logits (NaN) on batch 3 of 4 (examples 128..191 of recall/test, row 5): layer
 * enc.0.ffn.up outputs NaN first (row 3, column 17; its parameter enc.0.ffn.up.weight holds NaN at (5, 2))". */
pare_status pare_evaluate(pare_model *m, const pare_dataset *d, int64_t batch, pare_eval_result *out);
/* Logits of the whole dataset, concatenated in order: (n, nclass) or (n·T, V). Allocated with
 * pare_alloc; the caller frees. Used for fidelity measures between a model and its compressed copy.
 * Non-finite logits are PARE_ENUMERIC as for pare_evaluate ("non-finite logits (NaN) on batch ..."). */
pare_status pare_predict_logits(pare_model *m, const pare_dataset *d, int64_t batch, float **logits, int64_t *rows);

#endif
