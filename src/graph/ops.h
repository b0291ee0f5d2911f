/* ops.h — the op registry: one descriptor per op (name, forward, backward, caches, FLOPs), indexed by
 * pare_op_id and guarded by a static assert on the count. The executor only ever calls through this
 * table; an op's numerics live in src/kernels/ (nn.h, gemm.h), this file only wires values to them. */
#ifndef PARE_OPS_H
#define PARE_OPS_H

#include "graph.h"

struct pare_exec;

typedef struct pare_cache_spec {
    const char *suffix; /* cache value is named "<node>#<suffix>" */
    pare_rows rows;
    int64_t cols;
    pare_dtype dtype;   /* PARE_F32, or PARE_U8 (dropout masks): not a byte count */
} pare_cache_spec;

/* The dtypes an op accepts and produces (docs/dtypes.md), one row per op in a table of ops.c beside the
 * registry. Checked when a node is added and by pare_model_check_dtypes, never while running: an op's
 * forward may take its buffers' element types for granted. An op receiving a dtype it has no kernel for
 * is an error naming the node; nothing converts silently. */
#define PARE_OUT_ATTR (-1) /* produces: the node's a.dtype (CAST; LINEAR, LAYERNORM, ADD_LAYERNORM: f32 by default) */
#define PARE_OUT_IN0 (-2)  /* produces: its input 0's dtype; every float input has that dtype (the elementwise ops
                              that run in bf16 under automatic mixed precision: docs/amp.md) */
typedef struct pare_op_dtypes {
    unsigned in[PARE_NODE_MAX_IN]; /* per input: mask of PARE_DTYPE_BIT(t) accepted; 0: the op has no such input */
    int out;                       /* the output's pare_dtype, or PARE_OUT_ATTR */
    unsigned attr;                 /* PARE_OUT_ATTR: the dtypes a.dtype may name */
    unsigned caches;               /* the dtypes its caches (pare_cache_spec) may have; 0: it keeps none. A
                                      second word on what the caches function says, so an element size
                                      written where a dtype belongs (4 is PARE_U8) is refused at build */
    /* optional: what a row cannot say, run after the row's checks pass (the attention's variant decides
     * whether its bf16 qkv has a kernel). PARE_EINVAL naming the node otherwise. */
    pare_status (*check)(const pare_model *m, const pare_node *n, int nin);
    /* optional, check's predicate: 0 when this node cannot read dtype t at input k although the row lists it */
    int (*takes)(const pare_node *n, int k, pare_dtype t);
} pare_op_dtypes;

typedef struct pare_op_desc {
    const char *name;
    /* out(rows, cols) from ins; params read from x->m. */
    pare_status (*forward)(struct pare_exec *x, const pare_node *n);
    /* Adds into the gradients of inputs and trainable params; NULL for ops without a backward. */
    void (*backward)(struct pare_exec *x, const pare_node *n);
    /* Forward FLOPs at the executor's (B, T). */
    int64_t (*flops)(const struct pare_exec *x, const pare_node *n);
    /* Caches this op keeps for backward; returns how many were written to cs. */
    int (*caches)(const pare_model *m, const pare_node *n, pare_cache_spec *cs);
    /* Scratch bytes the op needs at (B, T) (int8 activations, attention backward), or NULL. */
    size_t (*workspace)(const struct pare_exec *x, const pare_node *n);
} pare_op_desc;

const pare_op_desc *pare_op_get(pare_op_id id);
const char *pare_op_name(pare_op_id id);
const pare_op_dtypes *pare_op_dtypes_of(pare_op_id id);
/* The dtype node n's output has: its op's declaration, n->a.dtype for PARE_OUT_ATTR, the dtype of its input 0 in m
 * for PARE_OUT_IN0 (n need not be in m yet; its inputs must be). */
pare_dtype pare_op_out_dtype(const pare_model *m, const pare_node *n);
/* Check node n's op, its nin inputs (ids, count, dtypes) and the dtype it would produce against the op's
 * declaration (n need not be in m yet: pare_model_add_node checks before appending). PARE_EINVAL naming
 * the node otherwise (graph/dtypes.c). */
pare_status pare_node_check_inputs(const pare_model *m, const pare_node *n, int nin);
/* The dtypes node n has a kernel for at input k: its op's row (op_dtypes), less what the row's takes predicate
 * refuses for this node (a bf16 qkv into an attention variant without a bf16 forward). A pass choosing dtypes
 * (amp) asks this, so it agrees with the checks above. */
unsigned pare_node_reads(const pare_node *n, int k);
/* Check the nc caches the op of n asks for (pare_op_caches) against the dtypes it declares for them. */
pare_status pare_node_check_caches(const pare_node *n, const pare_cache_spec *cs, int nc);
int pare_op_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs);
/* 1 if cache k of node n is written by training forwards and read by backward only, so inference executors give it
 * no memory: a fused Linear's pre-activation "#pre" (docs/fusion.md). */
int pare_op_cache_train_only(const pare_node *n, int k);
/* 1 for ops whose node is a term of the total loss (XENT, MSE, KLDIV, KLDIV_REV, COSINE, SOFT_XENT). */
int pare_op_is_loss(pare_op_id id);
/* 1 for the losses with a softmax temperature a.temperature > 0 (KLDIV, KLDIV_REV). */
int pare_op_has_temperature(pare_op_id id);
/* A loss op by its registry name ("mse", "kl_div", "kl_div_reverse", "cosine", "soft_cross_entropy",
 * "cross_entropy"), or -1. */
int pare_op_find_loss(const char *name);

#endif
