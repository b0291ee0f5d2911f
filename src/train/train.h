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

/* The optimizer's options (steps, batch, the learning-rate schedule, AdamW, clipping) as entries of a pare_opt_spec
 * array: pare_train_schema's first ten, shared by every schema that trains with pare's AdamW loop (nas_train). */
#define PARE_TRAIN_OPTIM_OPTS \
    {"steps", PARE_OPT_INT, "1000", 1, 1e9, NULL, "optimizer steps"}, \
    {"batch", PARE_OPT_INT, "32", 1, 1e6, NULL, "sequences per batch"}, \
    {"lr", PARE_OPT_FLOAT, "1e-3", 0, 10, NULL, "peak learning rate"}, \
    {"warmup", PARE_OPT_INT, "100", 0, 1e9, NULL, "linear warm-up steps"}, \
    {"min_lr_ratio", PARE_OPT_FLOAT, "0.1", 0, 1, NULL, "cosine decay floor as a fraction of lr"}, \
    {"weight_decay", PARE_OPT_FLOAT, "0.01", 0, 10, NULL, "AdamW decoupled weight decay (matrices only)"}, \
    {"beta1", PARE_OPT_FLOAT, "0.9", 0, 0.999999, NULL, "AdamW first-moment decay"}, \
    {"beta2", PARE_OPT_FLOAT, "0.98", 0, 0.999999, NULL, "AdamW second-moment decay"}, \
    {"eps", PARE_OPT_FLOAT, "1e-8", 0, 1, NULL, "AdamW epsilon"}, \
    {"clip", PARE_OPT_FLOAT, "1.0", 0, 1e9, NULL, "gradient clipping by global norm (0: off)"}

typedef struct pare_train_progress {
    int64_t step, steps;
    float loss;       /* running mean of recent batch losses */
    float lr;
    double elapsed_s, eta_s;
    double eval_accuracy; /* last evaluation, or -1 (and always -1 for a regression model) */
    double eval_pearson;  /* regression model: the last evaluation's Pearson correlation, NAN if none */
} pare_train_progress;

/* Called after every step; return non-zero to stop early. */
typedef int (*pare_progress_fn)(void *ud, const pare_train_progress *p);

/* Each loss term of a run (the model's own loss, a teacher's terms) early and late, so that a script can see
 * which terms fell: the unweighted term averaged over the first and over the last `window` steps run
 * (window = steps / 10, between 1 and 100; the two windows overlap when fewer than 2·window steps ran). */
#define PARE_TRAIN_MAX_TERMS 17 /* the model's loss + PARE_DISTILL_MAX_TERMS */
typedef struct pare_train_term {
    char name[PARE_NAME_MAX]; /* the loss node: "loss" (the model's own), "distill.<i>.<op>" (the i-th term, from 0) */
    pare_op_id op;
    float weight;             /* its weight in the total loss during the run */
    double first, last;       /* mean unweighted term over the first / the last window steps */
} pare_train_term;

#define PARE_PP_MAX_STAGES 64
typedef struct pare_train_result {
    int64_t steps;
    float final_loss;
    double seconds;
    double best_eval_accuracy; /* -1 if never evaluated (always, for a regression model) */
    double best_eval_pearson;  /* regression model: the best evaluation's Pearson correlation, NAN if never */
    int ranks;                 /* processes the batches were split over (data-parallel under mpirun), else 1 */
    double comm_seconds;       /* of seconds, those in the gradient all-reduce (0 with one process) */
    double wait_seconds;       /* and those waiting for the slowest rank before it */
    size_t planned_bytes;      /* the training executor's planned memory (exec.h planned_bytes: activations, their
                                  gradients, caches); a pipeline stage: all its executors (micro-batches in flight) */
    int64_t recomputed_nodes;  /* checkpoint: forward nodes run again in the last step's backward (0 without) */
    /* pipeline parallelism (pipeline.c; stages 0 without): this rank's stage of `stages`, its schedule and, per
     * stage, the measured bubble (idle / total time of the schedule, summed over the steps) and planned bytes */
    int stages, stage;
    int64_t micro_batches;
    char schedule[8];          /* "gpipe" or "1f1b" */
    double bubble[PARE_PP_MAX_STAGES];
    double stage_bytes[PARE_PP_MAX_STAGES];
    double stage_busy[PARE_PP_MAX_STAGES]; /* seconds in the stage's forwards and backwards, over the run */
    double msg_bytes;          /* the activations stage 0 sends per micro-batch (the gradients going back: as many f32) */
    double bubble_theory;      /* (p - 1) / (m + p - 1) */
    int nterms;                /* loss terms of the run (terms[0..nterms)), in graph order */
    int64_t window;            /* steps averaged in first / last */
    pare_train_term terms[PARE_TRAIN_MAX_TERMS];
} pare_train_result;

/* Train m in place (its parameters become private to it). A loss that is not finite stops it with
 * PARE_ENUMERIC naming the step and, when a checked re-run finds one, the first layer whose output is
 * not finite (e.g. a NaN weight); otherwise it suggests a lower learning rate. `eval` may be NULL; it is used when the
 * options ask for evaluation every k steps or for an early stop at a target accuracy. */
pare_status pare_train(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                       pare_progress_fn progress, void *ud, pare_train_result *out);

/* ---- training against a teacher (distill.c): extra loss terms between values of the trained model and
 * values of a teacher captured on the same batch (knowledge distillation: Hinton et al. 2015,
 * DistilBERT, TinyBERT). The total loss is hard_weight · cross-entropy (a regression model's MSE against its
 * targets, head=regression) + Σ weight_i · term_i; the
 * result's loss is its running mean. The teacher runs at inference (no dropout) on every batch and is not
 * changed; the terms are appended to m for the run and removed after it. */
#define PARE_DISTILL_MAX_TERMS 16
_Static_assert(PARE_TRAIN_MAX_TERMS == PARE_DISTILL_MAX_TERMS + 1, "a result holds the model's loss and every term");

typedef struct pare_distill_term {
    pare_op_id op;                  /* PARE_OP_KLDIV, PARE_OP_KLDIV_REV, PARE_OP_MSE, PARE_OP_COSINE, PARE_OP_SOFT_XENT */
    char student[PARE_NAME_MAX];    /* a value of the trained model: "head", "enc.1.add2" */
    char teacher[PARE_NAME_MAX];    /* the teacher's value, its target ("": the same name) */
    float weight;                   /* in the total loss */
    float temperature;              /* KLDIV, KLDIV_REV: T > 0 */
    int project;                    /* widths differ: learn a Linear student -> teacher width (dropped after) */
    int pool;                       /* 0: every row; 1 + pare_pool_mode: each sequence's [CLS] row (1) or mean
                                     * over its valid tokens (2), of both values (BERT-PKD's [CLS] states) */
} pare_distill_term;

typedef struct pare_distill {
    pare_model *teacher;            /* not m; any storage format (it only runs forward) */
    float hard_weight;              /* weight of m's own cross-entropy on the labels (Hinton's α) */
    const pare_distill_term *terms;
    int nterms;                     /* 1 .. PARE_DISTILL_MAX_TERMS */
} pare_distill;

/* Option schemas of the distillation (Lua: m:train(task, opts, {teacher=, hard_weight=, losses={...}});
 * `pare help distill`, `pare help distill_loss`). */
extern const pare_schema pare_distill_schema;      /* hard_weight */
extern const pare_schema pare_distill_loss_schema; /* loss, student, teacher, weight, temperature, project, pool */
/* A term from options resolved against pare_distill_loss_schema. */
pare_status pare_distill_term_from_opts(pare_distill_term *t, const pare_options *o);

/* pare_train with the terms of d (NULL: exactly pare_train). */
pare_status pare_train_distill(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                               const pare_distill *d, pare_progress_fn progress, void *ud, pare_train_result *out);

/* ---- online (mutual) distillation (mutual.c): Deep Mutual Learning (Zhang et al. 2018). k classifiers
 * trained together on the same batches, each against its labels and its peers' current predictions:
 *     L_k = hard_weight · CE_k + weight/(k − 1) · Σ_{j≠k} T²·KL(softmax(z_j/T) ‖ softmax(z_k/T))
 * Options o: pare_train_schema's (target_accuracy refused); out: k results (or NULL). weight = 0 trains
 * each model exactly as pare_train would alone. Lua: pare.mutual({m1, m2}, task, opts, {weight = 1}). */
#define PARE_MUTUAL_MAX 8
typedef struct pare_mutual {
    float hard_weight, weight, temperature;
} pare_mutual;
extern const pare_schema pare_mutual_schema; /* hard_weight, weight, temperature */
pare_status pare_train_mutual(pare_model *const *ms, int k, const pare_dataset *train, const pare_dataset *eval,
                              const pare_options *o, const pare_mutual *mu, pare_progress_fn progress, void *ud,
                              pare_train_result *out);

/* ---- hooks into the training loop (pruning schedules, regularizers: src/compress/prune/) ----
 * begin: before the gradients and the executor are made, so it may add parameters and transforms (masks: the
 *   executor sizes its workspace for the transforms it finds; none may be attached later) (steps: how many the run
 *   has; an error stops the run).
 * after_backward: the gradients of step s are in the parameters' grad buffers (before clipping); it may add
 *   into them (a regularizer's gradient) and adds its penalty to *extra_loss (reported in the loss).
 * after_step: after the AdamW update of step s (masks may change here).
 * end: after the run, also after a failure. Any may be NULL. */
typedef struct pare_train_hooks {
    void *ud;
    pare_status (*begin)(void *ud, pare_model *m, int64_t steps);
    pare_status (*after_backward)(void *ud, pare_model *m, int64_t step, float *extra_loss);
    pare_status (*after_step)(void *ud, pare_model *m, int64_t step);
    void (*end)(void *ud, pare_model *m);
} pare_train_hooks;

/* ---- pipeline parallelism (pipeline.c): the options pipeline = "gpipe" | "1f1b" and micro_batches of
 * pare_train_schema. Under mpirun -n P the model's blocks (layers) are split into P stages of consecutive
 * blocks (stage 0 also holds what comes before the first block: the embeddings; the last stage what
 * comes after the last: the head and the loss), each global batch into micro_batches micro-batches;
 * activations go forward and gradients backward between neighbouring stages (dist.h send/recv), each
 * stage accumulates its parameters' gradients over the micro-batches and steps its own parameters. At
 * the end every rank holds the whole trained model. One process: one stage (gradient accumulation over
 * the micro-batches). pare_train_ex calls it; evaluation during the run, distillation and hooks are
 * refused. */
pare_status pare_train_pipeline(pare_model *m, const pare_dataset *train, const pare_options *o, pare_progress_fn progress,
                                void *ud, pare_train_result *out);

/* PARE_ENOTSUP naming `who` when o asks for checkpoint, a pipeline or micro_batches: for the loops of their own
 * that take pare_train_schema's options (pare.mutual, FastBERT's exits) and do not run them. */
pare_status pare_train_refuse_parallel(const pare_options *o, const char *who);

/* pare_train_distill with hooks (NULL: exactly pare_train_distill). */
pare_status pare_train_ex(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                          const pare_distill *d, const pare_train_hooks *h, pare_progress_fn progress, void *ud,
                          pare_train_result *out);

/* Learning rate at step s of the schedule: linear warm-up to lr, cosine decay to lr·min_lr_ratio. */
float pare_lr_at(int64_t s, int64_t steps, int64_t warmup, float lr, float min_ratio);

/* One AdamW update of every trainable parameter from its gradient (decoupled weight decay on
 * matrices only, not on biases, LayerNorm gains or 1-D parameters). t counts from 1. */
void pare_adamw_step(pare_model *m, float lr, float beta1, float beta2, float eps, float weight_decay, int64_t t);
/* Scale gradients so their global L2 norm is at most max_norm (no-op if max_norm <= 0); returns the
 * norm before clipping. */
float pare_clip_grad_norm(pare_model *m, float max_norm);
/* Scale the trainable gradients by max_norm / (norm + 1e-6) when norm > max_norm > 0 (norm measured by the caller:
 * pare_clip_grad_norm, or over every rank's shard in tensor parallelism). */
void pare_clip_to_norm(pare_model *m, float norm, float max_norm);

/* A regression model (head=regression; pare_model_regression_target) on a regression task (the dataset's
 * targets: STS-B's scores) is scored by the correlations of its predictions with the targets over the
 * whole dataset (eval/metrics.h: Pearson, Spearman; NaN when the predictions are constant) and their mean
 * squared error; it has no accuracy or perplexity (NAN). A classification model has no correlations (NAN). */
typedef struct pare_eval_result {
    double accuracy; /* classification: sequences; LM: tokens with a target */
    double loss;     /* mean cross-entropy; regression: the mean squared error (= mse) */
    double perplexity; /* exp(loss) */
    int64_t n;       /* sequences (classify, regression) or target tokens (LM) */
    int regression;  /* 1: the fields below are set and accuracy, perplexity are NAN */
    double pearson, spearman, mse;
} pare_eval_result;

/* Non-finite logits (NaN/Inf) are PARE_ENUMERIC, never an accuracy: the message names the batch, the
 * examples and the first layer whose output is not finite (a checked re-run of that batch), e.g.
 * "evaluate: non-finite logits (NaN) on batch 3 of 4 (examples 128..191 of recall/test, row 5): layer
 * enc.0.ffn.up outputs NaN first (row 3, column 17; its parameter enc.0.ffn.up.weight holds NaN at (5, 2))". */
pare_status pare_evaluate(pare_model *m, const pare_dataset *d, int64_t batch, pare_eval_result *out);
/* Logits of the whole dataset, concatenated in order: (n, nclass) or (n·T, V) (a regression model's
 * predicted scores: (n, 1)). Allocated with
 * pare_alloc; the caller frees. Used for fidelity measures between a model and its compressed copy.
 * Non-finite logits are PARE_ENUMERIC as for pare_evaluate ("non-finite logits (NaN) on batch ..."). */
pare_status pare_predict_logits(pare_model *m, const pare_dataset *d, int64_t batch, float **logits, int64_t *rows);

/* Capture: run examples [first, first + n) of d through m at inference (batches of `batch`) and copy the
 * values named in names[0..k) — node outputs ("enc.1.add2", "head") or f32 caches ("enc.0.attn#att",
 * the attention probabilities, laid out (n, H, T, T)) — into out[i]: data (rows × cols, allocated with
 * pare_alloc, the caller frees), rows = n × the value's rows per example (T for token rows, 1 for
 * sequence rows, T·T for attention rows). Errors name an unknown value or range. */
typedef struct pare_captured { float *data; int64_t rows, cols; } pare_captured;
pare_status pare_capture(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                         const char *const *names, int k, pare_captured *out);

/* Gradients batch by batch: run examples [first, first + n) of d through a copy of m without dropout
 * (parameters shared, gradients its own), forward and backward on each batch of `batch`, then call
 * fn(ud, copy, loss, first example, B) with the copy's parameter gradients (params[i].grad) of that batch's
 * loss (the model's total: a mean over the batch's examples, or tokens for LMs). The criteria that
 * read gradients use it: head importance (Michel et al.), SNIP, Taylor. A parameter in a non-f32 format, a range outside d or a non-finite loss is an error. */
typedef pare_status (*pare_grad_fn)(void *ud, const pare_model *grads, float loss, int64_t first, int64_t B);
pare_status pare_grad_batches(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                              pare_grad_fn fn, void *ud);

#endif
