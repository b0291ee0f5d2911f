/* ops_fused.h — private to the op registry: the ops of the unfused attention graph and the fused ops the
 * fuse pass makes (ops_fused.c), listed in ops.c's table beside the others. Not for callers: the graph
 * reaches every op through pare_op_get. docs/fusion.md has the graphs they form. */
#ifndef PARE_OPS_FUSED_H
#define PARE_OPS_FUSED_H

#include "ops.h"

struct pare_exec;

#define PARE_FUSED_OP(name)                                                                                          \
    pare_status name##_fwd(struct pare_exec *x, const pare_node *n);                                                \
    void name##_bwd(struct pare_exec *x, const pare_node *n);                                                        \
    int64_t name##_flops(const struct pare_exec *x, const pare_node *n);

PARE_FUSED_OP(pare_op_head_split)
PARE_FUSED_OP(pare_op_head_merge)
PARE_FUSED_OP(pare_op_bmm_qk)
PARE_FUSED_OP(pare_op_bmm_pv)
PARE_FUSED_OP(pare_op_div)
PARE_FUSED_OP(pare_op_mask_add)
PARE_FUSED_OP(pare_op_softmax)
PARE_FUSED_OP(pare_op_masked_softmax)
PARE_FUSED_OP(pare_op_add_layernorm)
#undef PARE_FUSED_OP

/* ADD_LAYERNORM's caches: mean and rstd per row, as LAYERNORM's. */
int pare_op_add_layernorm_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs);
size_t pare_op_add_layernorm_ws(const struct pare_exec *x, const pare_node *n); /* 16-bit inputs / output: f32 copies */
/* The softmaxes' workspace: a row of f32 per thread slot when scores or probabilities are bf16 (else 0). */
size_t pare_op_softmax_ws(const struct pare_exec *x, const pare_node *n);
size_t pare_op_masked_softmax_ws(const struct pare_exec *x, const pare_node *n);

#endif
