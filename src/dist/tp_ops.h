/* tp_ops.h — private to the op registry (graph/ops.c): the two communication ops of tensor parallelism,
 * Megatron-LM's f (TP_COPY) and g (TP_REDUCE), listed in ops.c's table beside the others. dist/tp.h is the
 * public side (slicing a model, gathering its shards); docs/distributed.md "Tensor parallelism". */
#ifndef PARE_TP_OPS_H
#define PARE_TP_OPS_H

#include "graph/ops.h"

struct pare_exec;

pare_status pare_op_tp_copy_fwd(struct pare_exec *x, const pare_node *n);
void pare_op_tp_copy_bwd(struct pare_exec *x, const pare_node *n);
pare_status pare_op_tp_reduce_fwd(struct pare_exec *x, const pare_node *n);
void pare_op_tp_reduce_bwd(struct pare_exec *x, const pare_node *n);
/* Both: the additions of the all-reduce's sum over the ranks (tp_ranks − 1 per element), the reduce's bias. */
int64_t pare_op_tp_copy_flops(const struct pare_exec *x, const pare_node *n);
int64_t pare_op_tp_reduce_flops(const struct pare_exec *x, const pare_node *n);

#endif
