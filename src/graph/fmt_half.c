/* fmt_half.c — 16-bit float Linear weights (bf16 or f16): the weights rounded from the f32 master, the
 * activations rounded to the same dtype inside the op, f32 accumulation and output, on the kernels of
 * kernels/gemm_half.h (oneDNN's bf16 inner product where the CPU has one, else pare's widen kernel: 16-bit
 * storage, f32 arithmetic). The input is an f32 value, or a value already in the weights' dtype (a cast's
 * output: read as it is, no rounding left to do). Made by the bf16 pass (compress/quant/half.c) and by checkpoint loading (the
 * 16-bit weights are a function of the master, so checkpoints store the dtype beside the f32 masters and
 * rebuild the same bits).
 *
 * Training (bf16; docs/mixed-precision.md "Training in bf16"): forward on the 16-bit weights as at inference;
 * backward on 16-bit operands with f32 sums (pare_linear_half_backward: dx from r(dy) and the stored weights, the
 * master's gradient from r(dy) and r(x), the bias's from the f32 dy); the optimizer updates the f32 master and
 * refresh rounds it into the stored weights (and oneDNN's packed copy) again after every step. f16 weights are
 * refused for training (train_check): f16 needs loss scaling (its range ends at 65504 and gradients below 2^-24
 * vanish), which pare does not implement; bf16 has f32's exponent range and needs none.
 *
 * Embedding tables (the bf16 pass's `embeddings` option; docs/mixed-precision.md "Embeddings and softmax in bf16"):
 * the same format on a (V, C) table, made by pare_param_set_half_table — the rows rounded, no oneDNN packed copy (a
 * lookup reads rows, not GEMM panels). The EMBEDDING and POSADD ops read hw.w (ops.c TABLE), widening rows on the fly;
 * training adds into the master's gradient and refresh rounds the master again, as for a Linear. A table tied to a
 * Linear head (tie_head) is one parameter: stored once in 16 bits, read by both ops.
 *
 * Entry points: pare_format_half (the traits), pare_param_set_half, pare_param_set_half_table (format.h).
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

/* The Linear's backward on 16-bit operands (gemm_half.h); in is f32 or already in the weights' dtype. Its only
 * failure is memory for the rounded operands: then the reference, which needs none (exact, slow), rather than
 * no gradient, since an op's backward cannot return a status. */
static void half_backward(pare_exec *x, const pare_node *n, const pare_param *w, float *dx, float *dw, float *dbias,
                          const float *dy, const void *in, int64_t M)
{
    const pare_half_weight *hw = &w->q->hw;
    const int in16 = x->m->values[n->in[0]].dtype == hw->dtype;
    const float *xf = in16 ? NULL : in;
    const uint16_t *xh = in16 ? in : NULL;
    if (pare_linear_half_backward(dx, dw, dbias, dy, xf, xh, hw, M) != PARE_OK)
        pare_linear_half_backward_ref(dx, dw, dbias, dy, xf, xh, hw, M);
}

/* The master changed (an optimizer step): round it again into this parameter's own 16-bit weights. */
static pare_status half_refresh(pare_param *p)
{
    pare_qlinear *q = p->q;
    if (q->refs > 1) { /* shared with a clone, which keeps its weights: this model gets its own, made afresh */
        char method[sizeof q->method];
        snprintf(method, sizeof method, "%s", q->method);
        return q->hw.packed ? pare_param_set_half(p, q->hw.dtype, method) : pare_param_set_half_table(p, q->hw.dtype, method);
    }
    return pare_half_weight_refresh(&q->hw, p->blob->data);
}

static pare_status half_train_check(const pare_param *w)
{
    if (w->q->hw.dtype == PARE_BF16) return PARE_OK;
    return pare_fail(PARE_EINVAL, "parameter %s is stored as %s, which pare does not train: f16 training needs loss "
                     "scaling (f16's range ends at 65504 and gradients below 2^-24 vanish), which is not implemented; "
                     "store it in bf16 (the bf16 pass's dtype = \"bf16\", its default), which has f32's range and needs "
                     "none, or train in f32", w->name, pare_format_label(w));
}

const pare_format_traits pare_format_half = {
    .name = "half",
    .trainable = 1,
    .backward = half_backward,
    .refresh = half_refresh,
    .train_check = half_train_check,
    .forward = half_forward,
    .workspace = half_workspace,
    .label = half_label,
    .describe = half_describe,
    .packed_bytes = half_packed_bytes,
    .in_dtypes = half_in_dtypes,
};

static pare_status set_half(pare_param *p, pare_dtype dt, const char *method, int pack)
{
    if (p->ndim != 2)
        return pare_fail(PARE_EINVAL, "%s: parameter %s is not a 2-D %s", pare_dtype_name(dt), p->name,
                         pack ? "Linear weight" : "table");
    if (dt != PARE_BF16 && dt != PARE_F16)
        return pare_fail(PARE_EINVAL, "parameter %s: dtype %s is not a 16-bit float (bf16 or f16)", p->name, pare_dtype_name(dt));
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_HALF);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_half_weight_make(&q->hw, p->blob->data, p->shape[0], p->shape[1], dt, pack);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "%s %s", pack ? "weight" : "table", p->name);
    }
    q->bits = 8.0 * (double)pare_half_weight_bytes(&q->hw);
    snprintf(q->desc, sizeof q->desc, pack ? "%s w+a, f32 accumulation" : "%s table, rows widened to f32", pare_dtype_name(dt));
    snprintf(q->method, sizeof q->method, "%s", method ? method : "");
    pare_param_set_q(p, q);
    return PARE_OK;
}

pare_status pare_param_set_half(pare_param *p, pare_dtype dt, const char *method) { return set_half(p, dt, method, 1); }
pare_status pare_param_set_half_table(pare_param *p, pare_dtype dt, const char *method) { return set_half(p, dt, method, 0); }
