/* fmt_qblock.c — group-wise int4/int8 weights and llama.cpp's blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and the
 * k-quants Q4_K, Q5_K, Q6_K) on the block kernels of kernels/qblock.h. */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status qb_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                              const float *bias, int64_t M)
{
    (void)n;
    return pare_linear_qb(y, in, &w->q->qb, bias, M, x->workspace);
}

static size_t qb_workspace(const pare_param *w, int64_t M) { return pare_qb_workspace(&w->q->qb, M); }

static const char *qb_label(const pare_param *w) { return pare_qb_kind_name(w->q->qb.kind); }

const pare_format_traits pare_format_qblock = {
    .name = "qblock",
    .forward = qb_forward,
    .workspace = qb_workspace,
    .label = qb_label,
    .describe = pare_format_describe_q,
    .save = pare_fmt_qblock_save, /* checkpoints: fmt_io.c */
    .load = pare_fmt_qblock_load,
};
