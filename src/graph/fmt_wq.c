/* fmt_wq.c — weight-only quantized Linears on the kernels of kernels/wq.h: int8 / int3 / int2 groups with f32
 * activations, packed binary / ternary rows (add / subtract kernels), W4A8 (int4 weights × per-token int8
 * activations on VNNI). Labelled by kind: "int8_wo", "int3", "int2", "binary", "ternary", "w4a8".
 *
 * Training (binary and ternary only): quantization-aware fine-tuning as BinaryBERT / TernaryBERT train their weights —
 * the forward runs on the packed weights, the backward is the straight-through estimator: dx = dy·Ŵ (the weights
 * the forward used), dW = dy^T·x into the f32 master's gradient as if Ŵ were the master, dbias = Σ dy; after every
 * optimizer step refresh binarizes / ternarizes the master again (α and Δ recomputed). The int8 / int3 / int2 / W4A8
 * kinds are not trainable here (their scales and grids come from rtn / gptq options the format does not keep):
 * train the f32 model, or under qat, and quantize after.
 *
 * Deliberately not here: the papers' refinements of the estimator (gradient clipping at |w| > 1, learned α, BinaryBERT's
 * ternary-weight splitting), a fused activation epilogue (the Linear op applies it after forward). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int sign_kind(const pare_param *w) { return w->q->wq.kind == PARE_WQ_BIN || w->q->wq.kind == PARE_WQ_TER; }

static pare_status wq_train_check(const pare_param *w)
{
    if (sign_kind(w)) return PARE_OK;
    return pare_fail(PARE_EINVAL, "parameter %s is stored as %s, which pare does not train (binary and ternary weights train "
                     "with the straight-through estimator; the rtn / gptq widths do not): train the f32 model, or under qat, "
                     "and quantize after", w->name, pare_format_label(w));
}

/* The straight-through estimator: dx += dy·Ŵ, dw += dy^T·x, dbias += Σ dy. If Ŵ cannot be allocated, dx is taken
 * through the f32 master instead (an op's backward cannot return a status). */
static void wq_backward(pare_exec *x, const pare_node *n, const pare_param *w, float *dx, float *dw, float *dbias,
                        const float *dy, const void *in, int64_t M)
{
    (void)x, (void)n;
    const int64_t N = w->shape[0], K = w->shape[1];
    if (dx) {
        float *Wd = malloc(sizeof *Wd * (size_t)(N * K));
        if (Wd) pare_wq_dequantize(Wd, &w->q->wq);
        pare_sgemm(0, 0, M, K, N, 1.0f, dy, N, Wd ? Wd : w->blob->data, K, 1.0f, dx, K);
        free(Wd);
    }
    if (dw) pare_sgemm(1, 0, N, K, M, 1.0f, dy, N, (const float *)in, K, 1.0f, dw, K);
    if (dbias)
        for (int64_t m = 0; m < M; m++)
            for (int64_t j = 0; j < N; j++) dbias[j] += dy[m * N + j];
}

/* The master binarized / ternarized again (the pass's own quantizer, so the same bits the pass would make). */
static pare_status wq_refresh(pare_param *p)
{
    pare_qlinear *q = p->q;
    pare_wq_weight nw;
    PARE_TRY(pare_wq_quantize_sign(&nw, q->wq.kind, p->blob->data, p->shape[0], p->shape[1]));
    if (q->refs > 1) { /* shared with a clone, which keeps its weights: this model gets its own */
        pare_qlinear *c = pare_qlinear_new(PARE_FMT_WQ);
        if (!c) {
            pare_wq_free(&nw);
            return PARE_ENOMEM;
        }
        c->wq = nw;
        c->bits = q->bits;
        memcpy(c->desc, q->desc, sizeof c->desc);
        memcpy(c->method, q->method, sizeof c->method);
        pare_param_set_q(p, c);
        return PARE_OK;
    }
    pare_wq_free(&q->wq);
    q->wq = nw;
    return PARE_OK;
}

const pare_format_traits pare_format_wq = {
    .name = "wq",
    .trainable = 1,
    .save = pare_fmt_wq_save, /* checkpoints: fmt_io.c */
    .load = pare_fmt_wq_load,
    .backward = wq_backward,
    .refresh = wq_refresh,
    .train_check = wq_train_check,
    .forward = wq_forward,
    .workspace = wq_workspace,
    .label = wq_label,
    .describe = pare_format_describe_q,
};
