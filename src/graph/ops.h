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
    int bytes;
} pare_cache_spec;

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
int pare_op_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs);
/* 1 for ops whose node is a term of the total loss (XENT, MSE, KLDIV, COSINE, SOFT_XENT). */
int pare_op_is_loss(pare_op_id id);
/* A loss op by its registry name ("mse", "kl_div", "cosine", "soft_cross_entropy", "cross_entropy"), or -1. */
int pare_op_find_loss(const char *name);

#endif
