/* fmt_f32.c — plain f32 weights: oneDNN's packed inner product when the executor holds a packed copy
 * (inference; a fused activation as its post-op), else the f32 GEMM. The reference every other format is compared with. */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status f32_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                               const float *bias, int64_t M)
{
    if (x->packed && x->packed[n->param[0]]) /* the executor's oneDNN-layout copy, bias fused */
        return pare_linear_f32_packed(y, in, x->packed[n->param[0]], bias, M);
    pare_linear_f32(y, in, w->blob->data, bias, M, w->shape[0], w->shape[1]);
    return PARE_OK;
}

/* Linear + activation: oneDNN's eltwise post-op on the packed weights (inference), else the GEMM then the loop. */
static pare_status f32_forward_act(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                                   const float *bias, int64_t M)
{
    if (x->packed && x->packed[n->param[0]])
        return pare_linear_f32_packed_act(y, in, x->packed[n->param[0]], bias, M, n->a.epilogue);
    pare_linear_f32(y, in, w->blob->data, bias, M, w->shape[0], w->shape[1]);
    pare_epilogue_forward(y, y, n->a.epilogue, M * w->shape[0]);
    return PARE_OK;
}

static const char *f32_describe(const pare_param *w, char *buf, size_t n)
{
    char impl[96];
    snprintf(buf, n, "f32 %s (packed)", pare_f32_pack_impl_for(w->shape[0], w->shape[1], impl, sizeof impl));
    return buf;
}

const pare_format_traits pare_format_f32 = {
    .name = "f32",
    .trainable = 1,
    .forward = f32_forward,
    .forward_act = f32_forward_act,
    .describe = f32_describe,
};
