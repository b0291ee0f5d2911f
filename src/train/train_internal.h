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

/* ---- data-parallel training (dp.c): under mpirun each rank runs rows [lo, hi) of every global batch and the
 * gradients are summed over the ranks, weighted by each rank's share of the loss's rows ---- */
typedef struct dp_run {
    int on, rank, size;
    int64_t lo, hi;        /* this rank's rows of a global batch of B: B·rank/size .. B·(rank+1)/size */
    float *flat;           /* (nflat) every trainable gradient, then the loss, the terms, the row count */
    int64_t nflat, ngrad;
    double comm_s;         /* seconds in MPI_Allreduce (with the packing), summed over the run */
    double wait_s;         /* seconds waiting for the slowest rank (a barrier before the all-reduce) */
} dp_run;
/* Off (r->on = 0, lo = 0, hi = B) unless pare_dist_data_parallel(); refuses what it cannot split: a batch
 * smaller than the ranks, distillation, hooks (pruning schedules). After pare_model_alloc_grads. */
pare_status pare_dp_begin(dp_run *r, pare_model *m, int64_t B, int distill, int hooks);
/* The rows of the loss on this rank's share (x bound to it; labels as bound): sequences, or an LM's tokens
 * with a target. */
int64_t pare_dp_rows(const pare_model *m, const int32_t *labels, int64_t B, int64_t T);
/* After backward: every gradient, *loss and terms[0..nt) become the means over the global batch
 * (Σ_r rows_r · value_r / Σ_r rows_r), the same on every rank. */
pare_status pare_dp_allreduce(dp_run *r, pare_model *m, float *loss, float *terms, int nt, int64_t rows);
void pare_dp_end(dp_run *r);

#endif
