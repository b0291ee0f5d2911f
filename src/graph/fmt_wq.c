/* fmt_wq.c — weight-only quantized Linears on the kernels of kernels/wq.h: int8 / int3 / int2 groups with f32
 * activations, packed binary / ternary rows (add / subtract kernels), W4A8 (int4 weights × per-token int8
 * activations on VNNI). Labelled by kind: "int8_wo", "int3", "int2", "binary", "ternary", "w4a8".
 *
 * Deliberately not here: training (not trainable: fine-tune the f32 model, or under fake quantization, and
 * quantize after), a fused activation epilogue (the Linear op applies it after forward). */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status wq_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                              const float *bias, int64_t M)
{
    (void)n;
    return pare_linear_wq(y, in, &w->q->wq, bias, M, x->workspace);
}

static size_t wq_workspace(const pare_param *w, int64_t M) { return pare_wq_workspace(&w->q->wq, M); }

static const char *wq_label(const pare_param *w) { return pare_wq_kind_name(w->q->wq.kind); }

const pare_format_traits pare_format_wq = {
    .name = "wq",
    .forward = wq_forward,
    .workspace = wq_workspace,
    .label = wq_label,
    .describe = pare_format_describe_q,
};
