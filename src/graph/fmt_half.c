/* fmt_half.c — 16-bit float Linear weights (bf16 or f16): the weights rounded from the f32 master, the
 * activations rounded to the same dtype inside the op, f32 accumulation and output, on the kernels of
 * kernels/gemm_half.h (oneDNN's bf16 inner product where the CPU has one, else pare's widen kernel: 16-bit
 * storage, f32 arithmetic). The input is an f32 value, or a value already in the weights' dtype (a cast's
 * output: read as it is, no rounding left to do). Made by the bf16 pass (compress/quant/half.c) and by checkpoint loading (the
 * 16-bit weights are a function of the master, so checkpoints store the dtype beside the f32 masters and
 * rebuild the same bits). Not trainable: a 16-bit weight is made from the master after training.
 *
 * Entry points: pare_format_half (the traits), pare_param_set_half (format.h).
 */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status half_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                                const float *bias, int64_t M)
{
    if (x->m->values[n->in[0]].dtype == w->q->hw.dtype) /* a value already in the weights' dtype: read as it is */
        return pare_linear_half_in16(y, (const uint16_t *)(const void *)in, &w->q->hw, bias, M, x->workspace,
                                     x->workspace_bytes);
    return pare_linear_half(y, in, &w->q->hw, bias, M, x->workspace, x->workspace_bytes);
}

/* f32 (rounded inside), or a value of the weights' own dtype */
static unsigned half_in_dtypes(const pare_param *w) { return PARE_DTYPE_BIT(PARE_F32) | PARE_DTYPE_BIT(w->q->hw.dtype); }

static size_t half_workspace(const pare_param *w, int64_t M) { return pare_linear_half_workspace(&w->q->hw, M); }

static const char *half_label(const pare_param *w) { return pare_dtype_name(w->q->hw.dtype); }

static const char *half_describe(const pare_param *w, char *buf, size_t n)
{
    snprintf(buf, n, "%s (%s)", w->q->desc, pare_half_weight_impl(&w->q->hw));
    return buf;
}

static size_t half_packed_bytes(const pare_param *w) { return pare_half_weight_packed_bytes(&w->q->hw); }

const pare_format_traits pare_format_half = {
    .name = "half",
    .forward = half_forward,
    .workspace = half_workspace,
    .label = half_label,
    .describe = half_describe,
    .packed_bytes = half_packed_bytes,
    .in_dtypes = half_in_dtypes,
};

pare_status pare_param_set_half(pare_param *p, pare_dtype dt, const char *method)
{
    if (p->ndim != 2) return pare_fail(PARE_EINVAL, "%s: parameter %s is not a 2-D Linear weight", pare_dtype_name(dt), p->name);
    if (dt != PARE_BF16 && dt != PARE_F16)
        return pare_fail(PARE_EINVAL, "parameter %s: dtype %s is not a 16-bit float (bf16 or f16)", p->name, pare_dtype_name(dt));
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_HALF);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_half_weight_make(&q->hw, p->blob->data, p->shape[0], p->shape[1], dt, 1);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "weight %s", p->name);
    }
    q->bits = 8.0 * (double)pare_half_weight_bytes(&q->hw);
    snprintf(q->desc, sizeof q->desc, "%s w+a, f32 accumulation", pare_dtype_name(dt));
    snprintf(q->method, sizeof q->method, "%s", method ? method : "");
    pare_param_set_q(p, q);
    return PARE_OK;
}
