/* fmt_i8.c — int8 weights with a scale per output channel (or per tensor), activations quantized as
 * the weight's act mode says (dynamic per token / per tensor, static, LLM.int8() outlier columns),
 * on the VNNI int8 kernels of kernels/gemm_i8.h; a fused activation (the fuse pass's Linear+GELU) runs in
 * their dequantization pass. */
#include <stdio.h>

#include "exec.h"
#include "format.h"

/* epilogue: a fused activation applied in the dequantization pass (forward_act) */
static pare_status i8_run(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                          const float *bias, int64_t M, int epilogue)
{
    pare_qlinear *q = w->q;
    int64_t nout = 0;
    pare_status st = pare_linear_i8_act_epilogue(y, in, &q->i8, NULL /* outlier columns from the int8 weights */, bias, M,
                                                 &q->act, x->workspace, &nout, epilogue);
    if (q->act.outlier_threshold > 0) { /* LLM.int8(): how many features ran in f32, into the model's run statistics
                                           (graph.h: the one thing running writes; q is shared with clones) */
        pare_param *stats = &x->m->params[n->param[0]];
        stats->run_outlier_cols += nout;
        stats->run_calls++;
    }
    return st;
}

static pare_status i8_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                              const float *bias, int64_t M)
{
    return i8_run(x, n, w, y, in, bias, M, 0);
}
static pare_status i8_forward_act(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                                  const float *bias, int64_t M)
{
    return i8_run(x, n, w, y, in, bias, M, n->a.epilogue);
}

static size_t i8_workspace(const pare_param *w, int64_t M)
{
    return pare_linear_i8_act_workspace(M, w->shape[0], w->shape[1], &w->q->act);
}

static const char *i8_describe(const pare_param *w, char *buf, size_t n)
{
    snprintf(buf, n, "%s (%s)", w->q->desc, pare_i8_weight_impl(&w->q->i8));
    return buf;
}

static size_t i8_packed_bytes(const pare_param *w) { return pare_i8_weight_packed_bytes(&w->q->i8); }

const pare_format_traits pare_format_i8_channel = {
    .name = "int8",
    .forward = i8_forward,
    .forward_act = i8_forward_act,
    .workspace = i8_workspace,
    .describe = i8_describe,
    .packed_bytes = i8_packed_bytes,
    .save = pare_fmt_i8_save, /* checkpoints: fmt_io.c */
    .load = pare_fmt_i8_load,
};
