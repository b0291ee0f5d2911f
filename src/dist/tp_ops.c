/* tp_ops.c — the two communication ops of tensor parallelism (Shoeybi et al., Megatron-LM 2019, §3, Figure 3):
 *
 *   f  TP_COPY    forward: identity                 backward: all-reduce (sum over the ranks) of the gradient
 *   g  TP_REDUCE  forward: all-reduce, then + bias  backward: identity (and the bias's gradient)
 *
 * A block's attention half is f → qkv (column-parallel: this rank's heads) → attention → out (row-parallel:
 * the matching input columns, no bias) → g (+ the out projection's bias, added once after the sum); its FFN
 * half is f → up (column-parallel) → activation → down (row-parallel) → g (+ down's bias). So a block costs
 * two all-reduces of (B·T, C) forward and two backward (dist/tp.h builds the graph).
 *
 * Shapes: in and out (rows, C) f32, rows B·T (or B); bias (C). Every rank runs the same graph on the same
 * batch, so every rank reaches each all-reduce in the same order (forward in node order, backward in
 * reverse; a backward skipped because no trainable parameter lies upstream is skipped on every rank alike).
 *
 * Deliberately not here: overlapping the all-reduce with computation, sequence parallelism (Korthikanti et
 * al. 2022: reduce-scatter / all-gather instead of all-reduce around the LayerNorms), and a communicator of
 * its own: the ranks of the tensor-parallel group are the whole MPI world (no combined TP × DP grid yet).
 */
#include "tp_ops.h"

#include <stdatomic.h>
#include <string.h>

#include "core/timer.h"
#include "dist/dist.h"
#include "dist/tp.h"
#include "graph/exec.h"

/* What the all-reduces of f and g cost on this rank since the process started (dist/tp.h pare_tp_comm_totals):
 * counters of the process like MPI's own, read by experiments, never by the numerics. */
static _Atomic int64_t comm_calls, comm_bytes, comm_ns;

void pare_tp_comm_totals(pare_tp_comm *out)
{
    out->allreduces = atomic_load(&comm_calls);
    out->bytes = atomic_load(&comm_bytes);
    out->seconds = (double)atomic_load(&comm_ns) * 1e-9;
}

static pare_status allreduce(float *buf, int64_t n)
{
    int64_t t0 = pare_now_ns();
    pare_status st = pare_dist_allreduce_sum_f32(buf, n);
    atomic_fetch_add(&comm_ns, pare_now_ns() - t0);
    atomic_fetch_add(&comm_calls, 1);
    atomic_fetch_add(&comm_bytes, n * (int64_t)sizeof(float));
    return st;
}

static float *VAL(const pare_exec *x, int id) { return (float *)x->buf[id]; }
static float *GRAD(const pare_exec *x, int id) { return x->grad && x->need_grad[id] ? x->grad[id] : NULL; }
static int64_t NUMEL(const pare_exec *x, int id) { return pare_exec_rows(x, &x->m->values[id]) * x->m->values[id].cols; }

/* The world must be the one the model was sliced for, and not in local mode (a distributed sweep's point,
 * where every rank runs its own work and nothing may be collective). */
static pare_status check_world(const pare_node *n)
{
    int size = pare_dist_size();
    if (pare_dist_local())
        return pare_fail(PARE_EINVAL, "node %s (op %s): a tensor-parallel model runs collectively on all %d ranks, not in "
                         "local mode (inside a distributed sweep's point)", n->name, pare_op_name(n->op), size);
    if (size != n->a.tp_ranks)
        return pare_fail(PARE_EINVAL, "node %s (op %s): the model was sliced for %d ranks (m:tensor_parallel) but this "
                         "run has %d (mpirun -n %d)", n->name, pare_op_name(n->op), n->a.tp_ranks, size, n->a.tp_ranks);
    return PARE_OK;
}

pare_status pare_op_tp_copy_fwd(pare_exec *x, const pare_node *n)
{
    PARE_TRY(check_world(n));
    memcpy(VAL(x, n->out), VAL(x, n->in[0]), (size_t)NUMEL(x, n->out) * sizeof(float));
    return PARE_OK;
}
/* dx += Σ_ranks dout: each rank's dout holds only its shard's share of the gradient (its column-parallel
 * Linear's), the sum is the gradient of the replicated input. The output's gradient is this node's alone, so
 * it is summed in place. MPI's errors are fatal by default (the job ends), and a backward returns nothing. */
void pare_op_tp_copy_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = GRAD(x, n->in[0]), *dy = GRAD(x, n->out);
    if (!dx || !dy) return;
    int64_t len = NUMEL(x, n->out);
    allreduce(dy, len);
    for (int64_t i = 0; i < len; i++) dx[i] += dy[i];
}

pare_status pare_op_tp_reduce_fwd(pare_exec *x, const pare_node *n)
{
    PARE_TRY(check_world(n));
    float *y = VAL(x, n->out);
    int64_t len = NUMEL(x, n->out), C = x->m->values[n->out].cols;
    memcpy(y, VAL(x, n->in[0]), (size_t)len * sizeof(float));
    PARE_TRY(allreduce(y, len));
    if (n->nparam) { /* the row-parallel Linear's bias, added once after the sum (not once per rank) */
        const float *b = x->m->params[n->param[0]].blob->data; /* (C) */
        for (int64_t i = 0; i < len; i += C)
            for (int64_t c = 0; c < C; c++) y[i + c] += b[c];
    }
    return PARE_OK;
}
/* y = Σ_r x_r + b: dx_r = dy on every rank (each rank's dy is the whole gradient, the graph above g being
 * replicated), db = Σ_rows dy. */
void pare_op_tp_reduce_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = GRAD(x, n->in[0]), *dy = GRAD(x, n->out);
    if (!dy) return;
    int64_t len = NUMEL(x, n->out), C = x->m->values[n->out].cols;
    if (dx)
        for (int64_t i = 0; i < len; i++) dx[i] += dy[i];
    const pare_param *p = n->nparam ? &x->m->params[n->param[0]] : NULL;
    if (p && p->trainable && p->grad)
        for (int64_t i = 0; i < len; i += C)
            for (int64_t c = 0; c < C; c++) p->grad[c] += dy[i + c];
}

int64_t pare_op_tp_copy_flops(const pare_exec *x, const pare_node *n)
{
    (void)x, (void)n;
    return 0; /* forward: a copy */
}
int64_t pare_op_tp_reduce_flops(const pare_exec *x, const pare_node *n)
{
    return NUMEL(x, n->out) * ((n->a.tp_ranks > 1 ? n->a.tp_ranks - 1 : 0) + (n->nparam ? 1 : 0));
}
