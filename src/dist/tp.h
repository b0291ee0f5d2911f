/* tp.h — tensor parallelism (Megatron-LM: Shoeybi et al. 2019, §3): one transformer split across the ranks
 * of an mpirun, each rank holding heads/P attention heads and ffn/P feed-forward columns.
 *
 *     pare_model *full;  ...build or load it, the same on every rank (same seed)...
 *     pare_model *tp;
 *     PARE_TRY(pare_tp_split(&tp, full, pare_dist_rank(), pare_dist_size()));   // this rank's shard
 *     ...pare_train(tp, ...) on every rank with the same options: the same steps as one process...
 *     PARE_TRY(pare_tp_gather(full, tp));      // collective: the trained weights, whole, on every rank
 *
 * The shard is a model like any other (an executor runs it; m:train trains it), whose graph has per block:
 *
 *   attention  LN → f → qkv (3C/P, C): this rank's heads' q, k, v rows → attention (H/P heads)
 *                     → out (C, C/P): the matching input columns, no bias → g (+ out's bias) → residual
 *   FFN        LN → f → up (F/P, C) → act → down (C, F/P), no bias → g (+ down's bias) → residual
 *
 * f (TP_COPY) and g (TP_REDUCE) are the graph ops of dist/tp_ops.c: f is the identity forward and an
 * all-reduce of the gradient backward, g an all-reduce forward and the identity backward. Embeddings,
 * positions, LayerNorms, pooling, pooler and head are replicated: their gradients come out equal on every
 * rank by construction (everything above g is the same computation on every rank), so AdamW on each rank
 * keeps them equal without being sent. Clipping by global norm needs the norm over the shards:
 * pare_tp_clip_grad_norm.
 *
 * Parameters keep their names; a sharded one keeps its name with a smaller shape. How each was split is
 * read back from the graph (pare_tp_layout), not stored beside it.
 *
 * Deliberately not here: a vocabulary-parallel embedding and head (the head is replicated), sequence
 * parallelism, a TP group smaller than the world (TP × DP grids), encoder-decoder models (cross-attention),
 * the unfused attention graph (fused=false), quantized or transformed weights (split first, compress after
 * gathering), saving a shard as a checkpoint (gather into a replicated model and save that), incremental
 * decoding of a shard (gen/ refuses the f node by name).
 */
#ifndef PARE_TP_H
#define PARE_TP_H

#include <stdint.h>

#include "core/status.h"
#include "graph/graph.h"

struct pare_dataset;

/* How a parameter of a shard was split. */
typedef enum pare_tp_split_kind {
    PARE_TP_REPLICATED = 0, /* the whole tensor on every rank */
    PARE_TP_ROWS,           /* column-parallel Linear (qkv, ffn.up): a (N/P, K) slice of rows, its bias (N/P) */
    PARE_TP_COLS,           /* row-parallel Linear (attn.out, ffn.down): a (N, K/P) slice of input columns */
} pare_tp_split_kind;

/* *out: rank's shard of the replicated model m (a new model; m is unchanged) for `ranks` ranks. Refused with
 * a message naming the sizes: heads or the FFN width not divisible by ranks ("enc.0.attn: heads=3 is not
 * divisible by ranks=2"), a model that is already a shard, an encdec, the unfused graph, quantized or
 * transformed Linears, an attention variant with learned parameters, rank outside [0, ranks). */
pare_status pare_tp_split(pare_model **out, const pare_model *m, int rank, int ranks);
/* The ranks m is sliced over (the f and g nodes' tp_ranks), 0 for a replicated model. */
int pare_tp_ranks(const pare_model *m);
/* This rank's index among them, as given to pare_tp_split (read from m->applied), -1 for a replicated model. */
int pare_tp_rank(const pare_model *m);
/* How parameter i of shard m was split; *blocks (may be NULL): for PARE_TP_ROWS the number of row blocks
 * sliced alike (3 for a qkv projection: q, k and v; 1 for ffn.up), else 1. */
pare_tp_split_kind pare_tp_layout(const pare_model *m, int64_t i, int *blocks);
/* The full (unsplit) shape of parameter i of shard m. */
void pare_tp_full_shape(const pare_model *m, int64_t i, int64_t shape[2]);
/* Collective: parameter i of shard m whole, its weights (grads = 0) or its gradient (grads = 1), into
 * full[0 .. numel of pare_tp_full_shape) on every rank (an all-reduce of the shards placed in zeros;
 * replicated parameters are copied). A gradient not allocated is PARE_EINVAL. */
pare_status pare_tp_full_param(const pare_model *m, int64_t i, int grads, float *full);
/* Collective: every parameter of shard tp, whole, into the replicated model full (the model it was split
 * from, or one built with the same options): matched by name, shapes checked. */
pare_status pare_tp_gather(pare_model *full, const pare_model *tp);
/* Clipping by the global norm of every trainable gradient of the unsplit model (pare_clip_grad_norm's rule):
 * replicated parameters once, shards summed over the ranks (one all-reduce of a double). Returns the norm
 * before clipping. A replicated model: the local norm, as pare_clip_grad_norm. */
float pare_tp_clip_grad_norm(pare_model *m, float max_norm);
/* One training forward and backward of examples [first, first + n) of d (0-based) in one batch: the loss
 * into *loss and every trainable parameter's gradient into its grad (allocated here if needed, zeroed
 * first). Any model without a source or regression target; on a shard, collective. */
pare_status pare_tp_batch_gradients(pare_model *m, const struct pare_dataset *d, int64_t first, int64_t n, float *loss);

/* The all-reduces of the f and g ops on this rank since the process started (forward and backward): how many,
 * their bytes (each rank's buffer: B·T·C floats), and the time spent in them (waiting for the other ranks
 * included). For experiments: subtract two readings. */
typedef struct pare_tp_comm {
    int64_t allreduces, bytes;
    double seconds;
} pare_tp_comm;
void pare_tp_comm_totals(pare_tp_comm *out);

#endif
