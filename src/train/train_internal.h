/* train_internal.h — the distillation run as the training loop drives it (distill.c), private to
 * src/train. */
#ifndef PARE_TRAIN_INTERNAL_H
#define PARE_TRAIN_INTERNAL_H

#include "graph/exec.h"
#include "train.h"

/* The checks every loop makes: the data set fits the model (kind, lengths, vocabularies, classes). */
pare_status pare_train_check_fit(const pare_model *m, const pare_dataset *d);

/* A batch gathered from a data set (loop.c): rows idx[0..B). */
typedef struct batch_buf {
    int32_t *tokens, *lengths, *labels, *types;
    float *targets; /* (B) a regression task's scores */
    int32_t *src_tokens, *src_lengths; /* sequence-to-sequence datasets only */
    int64_t *idx;
} batch_buf;
pare_status pare_batch_alloc(batch_buf *b, int64_t B, int64_t T);
/* Gather rows b->idx[0..B) of d and bind them to x (token types, a regression target and sources where
 * the data set and the model have them). */
pare_status pare_batch_bind(batch_buf *b, pare_exec *x, const pare_dataset *d, int64_t B);
void pare_batch_free(batch_buf *b);

typedef struct distill_run {
    const pare_distill *d;
    pare_exec *tx;                          /* the teacher at inference, keeping the captured values */
    int target[PARE_DISTILL_MAX_TERMS];     /* the trained model's target input per term */
    int64_t nodes0, values0, params0;       /* the model before the terms were appended */
    int64_t nodes1, values1;                /* with them (while detached) */
    int xent;                               /* the cross-entropy node, -1 if none */
    float xent_weight0;                     /* its weight before the run */
    int active;
    int64_t B, T;                           /* the batch shape of the run */
    float *pooled[PARE_DISTILL_MAX_TERMS];  /* pool terms: the teacher's value pooled (B, cols) */
} distill_run;

/* Append the terms to m, set the cross-entropy's weight to hard_weight, make the teacher's executor
 * at (B, T). On failure m is as it was. */
pare_status pare_distill_begin(distill_run *r, pare_model *m, const pare_distill *d, int64_t B, int64_t T, uint64_t seed);
/* After pare_exec_bind(x, ...): run the teacher on the batch and bind its values as x's targets. */
/* One teacher forward on the student's batch (its types and source, NULL when the task has none) and its
 * outputs bound as the student's targets. */
pare_status pare_distill_step(distill_run *r, pare_exec *x, const int32_t *tokens, const int32_t *lengths,
                              const int32_t *types, const int32_t *src_tokens, const int32_t *src_lengths);
/* Hide the appended nodes (evaluation of the model itself) and show them again. */
void pare_distill_detach(distill_run *r, pare_model *m);
void pare_distill_attach(distill_run *r, pare_model *m);
/* Cut the terms off and restore the cross-entropy's weight; safe after a failed begin or twice. */
void pare_distill_end(distill_run *r, pare_model *m);

#endif
