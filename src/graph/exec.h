/* exec.h — running a model: bind a batch shape, plan memory, forward, backward.
 *
 *     pare_exec *x;  PARE_TRY(pare_exec_new(&x, model, B, T, PARE_EXEC_INFER));
 *     pare_exec_bind(x, tokens, lengths, labels);    // (B,T), (B), (B) or (B,T)
 *     pare_exec_forward(x);                          // x->loss, pare_exec_logits(x)
 *     pare_exec_free(x);
 *
 * Inference executors pack their f32 Linear weights into oneDNN's layout when they are made and own
 * those copies: the model is never written by running it.
 * Losses and capture (graph/loss.c): x->loss is the weighted sum of every loss node's term
 * (pare_exec_loss_terms lists them); targets are bound after each pare_exec_bind
 * (pare_exec_bind_target); pare_exec_new_keep keeps named values alive for pare_exec_value.
 *
 * Inference executors share one arena among activations whose lifetimes do not overlap (a greedy
 * first-fit planner over the straight-line graph); training executors keep every activation for
 * backward and own one gradient buffer per activation. The planner's figure is planned_bytes; it sizes
 * each buffer as rows × cols × its value's dtype size, and every gradient in f32 (docs/dtypes.md).
 */
#ifndef PARE_EXEC_H
#define PARE_EXEC_H

#include "core/arena.h"
#include "core/rng.h"
#include "graph.h"

typedef enum pare_exec_mode { PARE_EXEC_INFER = 0, PARE_EXEC_TRAIN } pare_exec_mode;

typedef struct pare_exec {
    pare_model *m;
    int64_t B, T;
    int64_t S;             /* encoder-decoder models: the source length of this executor (source rows B·S);
                              0 for models without a source */
    pare_exec_mode mode;
    void **buf;            /* per value: its data, of the value's dtype (inputs int32, activations f32 or a
                              cast's dtype, masks uint8) */
    float **grad;          /* per value: gradient, f32 whatever the value's dtype (TRAIN only, activations only) */
    pare_arena arena;      /* activations, caches, inputs, workspace */
    pare_arena grad_arena; /* gradients of activations (TRAIN) */
    size_t planned_bytes;  /* the planner's peak: activations + caches + inputs + workspace */
    void *workspace;
    size_t workspace_bytes;
    pare_rng rng;          /* dropout masks (TRAIN) */
    float loss;            /* after forward: Σ weight · term over the loss nodes (with only the builder's
                              cross-entropy, weight 1: its mean over non-ignored rows) */
    int profile;           /* set to 1 to accumulate forward time per op kind into op_ns */
    int64_t op_ns[PARE_OP_COUNT];
    /* Observer (calibration): called before node i runs, while its inputs are intact; a non-OK status
     * stops the forward. NULL: none. */
    pare_status (*observe)(void *user, const struct pare_exec *x, int64_t node);
    void *observe_user;
    /* Set to 1 to scan every node's f32 output right after it runs and stop the forward at the first
     * NaN or Inf (PARE_ENUMERIC naming the node, the element and a non-finite parameter of the node, if
     * any; nonfinite_node = the node's index). A diagnosis mode: callers turn it on to re-run a batch
     * whose result was not finite (pare_exec_find_nonfinite); it costs one pass over every activation. */
    int check_finite;
    int64_t nonfinite_node; /* -1, or the node where the last checked forward stopped */
    /* Per node (NULL for all but ATTENTION nodes): the attention instance for this executor's T, made
     * from the node's configuration or borrowed from it (attn_owned[i] = 0: the model's kept instance,
     * not freed here), and the cache its backward reads when it is not the planned "#att" value. */
    struct pare_attn **attn;
    void **attn_cache;
    unsigned char *attn_owned;
    /* Inference: per parameter, the oneDNN-layout copy of an f32 Linear weight (NULL for others),
     * owned by this executor, so running never writes into the model (which clones share). */
    pare_f32_packed **packed;
    size_t packed_bytes;   /* their total, beside planned_bytes */
    /* Losses, targets and capture (graph/loss.c). */
    float *terms;          /* (nnodes): each loss node's term after forward (unweighted), 0 elsewhere */
    unsigned char *bound;  /* (nvalues): target inputs bound since the last pare_exec_bind */
    unsigned char *kept;   /* (nvalues): 1 where the value's memory still holds it after forward (every
                              value of a training executor; inputs, logits, losses and the values asked
                              for by pare_exec_new_keep in an inference one) */
    /* Backward skips what cannot reach a trainable parameter (pare_exec_backward). TRAIN only. */
    unsigned char *need_grad; /* (nvalues), set by each backward: 1 where the value's gradient leads to a
                                 trainable parameter (a parameter of its producer or of a node upstream);
                                 grad[v] is computed, and meaningful, only there */
    int64_t bwd_nodes;        /* after backward: the nodes whose backward ran (the others were skipped) */
    int backward_all;         /* 1: every node's backward runs, needed or not (the behaviour before the skip;
                                 for tests and timing) */
    /* A node range and activation checkpointing (pare_exec_new_opts; exec.c "Checkpointing"). */
    int64_t first, last;      /* the nodes forward and backward run: [0, nnodes) unless a pipeline stage */
    float loss_scale;         /* backward seeds d(loss)·loss_scale (1; a micro-batch's share of a batch) */
    int checkpoint;           /* 1: blocks' internal values are recomputed during backward */
    int64_t nblocks;          /* checkpointed blocks: nodes [blk_first[b], blk_last[b]) */
    int64_t *blk_first, *blk_last;
    int *node_block;          /* (nnodes) a node's block, -1 outside every block */
    int *value_block;         /* (nvalues) the block whose recompute remakes the value, -1: kept */
    pare_rng *blk_rng;        /* (nblocks) the dropout stream at each block's start in the last forward */
    int64_t live_block;       /* the block whose internal values the arena holds now, -1 */
    int64_t recomputed_nodes; /* after backward: forward nodes run again */
} pare_exec;

/* Executor options beyond (B, T, mode): a node range (a pipeline stage) and activation checkpointing. */
typedef struct pare_exec_opts {
    int64_t first, last; /* run nodes [first, last) only (last = 0: to the end); memory is planned for the values
                            those nodes produce or read (and every input), the others get none */
    int checkpoint;      /* TRAIN: keep only what crosses a block (a run of nodes named "<stack>.<i>.*", a
                            transformer layer); each block's internal values share one region and are
                            recomputed from its kept input during backward (Chen et al. 2016, "Training deep
                            nets with sublinear memory cost"; GPipe's re-materialization). Gradients are
                            bit-identical to keeping everything (the recompute runs the same kernels on the
                            same inputs, dropout from the same saved stream). Weight transforms (masks, fake
                            quantization, head gates) are refused: their forwards may update state. */
} pare_exec_opts;

/* Refuses (PARE_EINVAL naming the node) a graph whose dtypes do not fit its ops: pare_model_check_dtypes,
 * once here, so no forward checks them. */
pare_status pare_exec_new(pare_exec **out, pare_model *m, int64_t B, int64_t T, pare_exec_mode mode);
/* pare_exec_new that also keeps the values named in keep[0..nkeep) (node outputs such as "enc.1.add2"
 * or "head", f32 caches such as "enc.0.attn#att") alive to the end of the forward, for
 * pare_exec_value: the inference planner extends their lifetimes as it does the logits'. An unknown
 * name, a byte mask, or attention probabilities that this executor does not compute (the int8 path at
 * inference; variants other than full have no "#att" value) are PARE_EINVAL naming the value. */
pare_status pare_exec_new_keep(pare_exec **out, pare_model *m, int64_t B, int64_t T, pare_exec_mode mode,
                               const char *const *keep, int nkeep);
/* Encoder-decoder models (docs/encoder-decoder.md): pare_exec_new_keep with the source length S in
 * [1, the model's src_max_T] (pare_exec_new and pare_exec_new_keep use S = src_max_T). A model without a
 * source input is PARE_EINVAL ("... has no source input"). */
pare_status pare_exec_new_src(pare_exec **out, pare_model *m, int64_t B, int64_t T, int64_t S, pare_exec_mode mode,
                              const char *const *keep, int nkeep);
/* pare_exec_new_src with options (NULL: none). */
pare_status pare_exec_new_opts(pare_exec **out, pare_model *m, int64_t B, int64_t T, int64_t S, pare_exec_mode mode,
                               const pare_exec_opts *o);
/* The blocks of m (runs of consecutive nodes named "<stack>.<i>.<...>", one per transformer layer) within
 * nodes [first, last): their count; first_node/last_node (may be NULL) get each block's [first, last). */
int64_t pare_exec_blocks(const pare_model *m, int64_t first, int64_t last, int64_t *first_node, int64_t *last_node);
void pare_exec_free(pare_exec *x); /* safe with NULL */
/* An inference executor packs the model's f32 Linear weights when it is made; after training changed
 * them, this packs them again so the executor can be reused (mutual distillation's peers). A training
 * executor reads the weights themselves: no-op. */
pare_status pare_exec_repack(pare_exec *x);

/* Copy a batch in: tokens (B,T), lengths (B) (NULL = all T), labels (B) or (B,T) (NULL = zeros; and a
 * regression model's target, pare_model_regression_target, zeros and bound: a forward without gold).
 * Token ids outside [0, vocab) and lengths outside [1, T] are rejected with PARE_EINVAL. */
pare_status pare_exec_bind(pare_exec *x, const int32_t *tokens, const int32_t *lengths, const int32_t *labels);
/* Token types (B, T) for a model with a token-types input (BERT's segments), after pare_exec_bind (which
 * resets them to 0); each in [0, rows of the type embedding table). */
pare_status pare_exec_bind_types(pare_exec *x, const int32_t *types);
/* The source of an encoder-decoder model, after pare_exec_bind (which resets it to one PAD-led row of
 * full length): tokens (B, S) with ids in [0, src_vocab), lengths (B) in [1, S] (NULL = all S).
 * PARE_EINVAL naming the problem for a model without a source input or an id or length out of range. */
pare_status pare_exec_bind_source(pare_exec *x, const int32_t *src_tokens, const int32_t *src_lengths);
/* Copy a target input in: data (rows × cols) as the value declares them at this (B, T). Bind targets
 * after pare_exec_bind (which starts a new batch and forgets them): a forward with a target not bound
 * is PARE_EINVAL naming it. Non-finite data is PARE_ENUMERIC naming the element. */
pare_status pare_exec_bind_target(pare_exec *x, int value, const float *data);
pare_status pare_exec_forward(pare_exec *x);
/* Zero activation gradients, seed d(mean loss) and run the ops' backward in reverse. Adds into
 * parameter gradients (zero them with pare_model_zero_grad).
 *
 * Only the work that can reach a trainable parameter runs. From the parameters' trainable flags at this
 * call (a weight transform's trainable auxiliary parameters count), one pass over the nodes marks
 * need_grad[v] for every value downstream of a trainable parameter; a node whose output is not marked
 * is skipped (neither its input gradients nor its frozen parameters' are computed), and a node that runs
 * gets no gradient buffer (NULL) for inputs that are not marked. A frozen backbone under trainable heads
 * (FastBERT's exits, linear probes, fine-tuning the top layers) then costs its forward only. The
 * gradients of the trainable parameters are bit-identical to running every node: every consumer of a
 * marked value is itself marked, so each marked gradient receives the same terms in the same order. */
pare_status pare_exec_backward(pare_exec *x);
/* pare_exec_backward in two halves, for a pipeline stage: begin marks, zeroes the activation gradients of
 * the executor's range and seeds the losses in it (times loss_scale); the caller may then add gradients
 * received from the next stage into x->grad[v]; run runs the range's backward (with recompute). */
pare_status pare_exec_backward_begin(pare_exec *x);
pare_status pare_exec_backward_run(pare_exec *x);

/* Early exit (compress/distill/fastbert.h): run the nodes [first, last) of the bound batch (first = 0
 * checks the targets are bound, as pare_exec_forward does; last = nnodes sets x->loss). Running
 * [0, a) then [a, nnodes) is exactly pare_exec_forward. */
pare_status pare_exec_forward_nodes(pare_exec *x, int64_t first, int64_t last);
/* Shrink the batch in flight to the examples keep[0..nkeep) (strictly increasing, in [0, B)) before node
 * `next` runs: every value computed before `next` (or an input) and read by a node from `next` on has its
 * rows of those examples moved to the front, and x->B becomes nkeep, so the rest of the forward runs on
 * nkeep examples (the time saved is real). Inference executors only; a value read across `next` whose
 * rows are not per example is PARE_EINVAL naming it. The executor keeps its buffers: set x->B back to at
 * most the batch it was made for before the next pare_exec_bind (which binds x->B examples). */
pare_status pare_exec_keep_examples(pare_exec *x, int64_t next, const int64_t *keep, int64_t nkeep);

/* Re-run the forward of the bound batch with check_finite on, to find where a non-finite result came
 * from. Returns PARE_ENUMERIC with a message such as
 *     "layer enc.0.ffn.up outputs NaN first (row 3, column 17; its parameter enc.0.ffn.up.weight
 *      holds NaN at (5, 2))"
 * and *node set to that node; PARE_OK with *node = -1 if the re-run is finite everywhere; any other
 * status if the forward itself fails. check_finite is restored afterwards. */
pare_status pare_exec_find_nonfinite(pare_exec *x, int64_t *node);

/* The data of value `name` after forward, f32 rows × cols (rows at this (B, T)). PARE_EINVAL if there
 * is no such value, it is not f32, or an inference executor did not keep it (pare_exec_new_keep). */
pare_status pare_exec_value(const pare_exec *x, const char *name, const float **data, int64_t *rows, int64_t *cols);
/* One loss node's contribution after forward. */
typedef struct pare_loss_term {
    const char *name;  /* the node's name ("loss" for the builder's cross-entropy) */
    pare_op_id op;
    float weight;      /* its weight in x->loss */
    float value;       /* the unweighted term */
} pare_loss_term;
/* Fills terms[0..min(n, max)) in node order; returns n, the number of loss nodes. */
int pare_exec_loss_terms(const pare_exec *x, pare_loss_term *terms, int max);

/* Rows of a value at this executor's (B, T). Token rows after token pruning count T' = pare_tokens_kept(T,
 * v->keep) positions per sequence (B·T', B·T'·T' for attention probabilities). */
int64_t pare_exec_rows(const pare_exec *x, const pare_value *v);
/* Positions per sequence of a token-row value: T (or T' after token pruning), S for source rows. */
int64_t pare_exec_seq_len(const pare_exec *x, const pare_value *v);
/* logits: (B, nclass) for classifiers, (B·T, V) for LMs. */
const float *pare_exec_logits(const pare_exec *x);
/* Total forward FLOPs at (B, T), and per op kind into by_op[PARE_OP_COUNT] (may be NULL). */
int64_t pare_exec_flops(const pare_exec *x, int64_t *by_op);

pare_status pare_model_alloc_grads(pare_model *m);
void pare_model_zero_grad(pare_model *m);

#endif
