/* tf_fakequant.c — fake quantization for quantization-aware training (QAT): the operand on a symmetric
 * bits-bit grid, y = s·clamp(round(x/s), −qmax, qmax), with the straight-through estimator inside the
 * grid and, for learned scales, the LSQ gradient (Esser et al., 2020; kernels/qat.h has the formulas).
 * On a Linear's weight the scales are per output channel (N), on its input one per tensor. The aux
 * parameter holds log-scales, so an optimizer step changes a scale by a ratio whatever its magnitude.
 * Fixed scales (learn 0) follow the data in a training forward: the weights' max |·| per channel, the
 * activations' moving max (kernels/qat.h, pare_fq_observe_*).
 * ZeroQuant's scheme (group on the weight: a scale per g inputs of each channel; per_token on the input: a
 * scale per row, max |x_row|/qmax at every forward, never learned) runs the same kernels on a view: the
 * (N·K/g, g) matrix of the weight's groups, the (M, K) rows of the input.
 * Deliberately not here: asymmetric grids, and conversion to real kernels (the qat_convert pass). Scratch: the scales (n) and their gradients (n), n = N or 1. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/qat.h"
#include "transform.h"

static int per_row(const pare_tf_ctx *c) { return c->t->operand == PARE_TF_WEIGHT || c->t->per_token; }
/* The operand as the kernels see it: a weight in groups of g is the (N·K/g, g) matrix of its groups (one
 * scale per row of that view); a per-token input is its (M, K) rows. */
static int64_t view_rows(const pare_transform *t, int64_t rows, int64_t cols)
{
    return t->group ? rows * (cols / t->group) : rows;
}
static int64_t view_cols(const pare_transform *t, int64_t cols) { return t->group ? t->group : cols; }
static int64_t nscales(const pare_tf_ctx *c) { return per_row(c) ? view_rows(c->t, c->rows, c->cols) : 1; }
static int qmax_of(const pare_transform *t) { return (1 << (t->bits - 1)) - 1; }

static int64_t fq_scratch(const pare_transform *t, int64_t rows, int64_t cols)
{
    return 2 * (t->operand == PARE_TF_WEIGHT || t->per_token ? view_rows(t, rows, cols) : 1);
}

/* y (rows, cols) = fq(x) with s = exp(log-scales); in a training forward, fixed scales first follow x */
static pare_status fq_forward(const pare_tf_ctx *c, float *y, const float *x)
{
    const pare_transform *t = c->t;
    pare_param *lp = &c->m->params[t->aux[0]];
    float *s = c->scratch;
    int64_t ns = nscales(c), R = view_rows(t, c->rows, c->cols), K = view_cols(t, c->cols);
    int qmax = qmax_of(t);
    if (t->per_token) { /* dynamic: every row's own max, at training and inference alike */
        pare_fq_observe_weight(s, x, R, K, t->bits);
        pare_fq_forward(y, x, s, 1, R, K, -qmax, qmax);
        return PARE_OK;
    }
    if (c->update && !t->learn) {
        PARE_TRY(pare_param_make_private(lp)); /* written here: clones keep theirs */
        float *ls = lp->blob->data;
        if (per_row(c)) {
            pare_fq_observe_weight(s, x, R, K, t->bits);
            for (int64_t i = 0; i < ns; i++) ls[i] = logf(s[i]);
        } else {
            s[0] = expf(ls[0]);
            pare_fq_observe_act(s, x, c->rows * c->cols, t->bits);
            ls[0] = logf(s[0]);
        }
    }
    const float *ls = lp->blob->data;
    for (int64_t i = 0; i < ns; i++) s[i] = expf(ls[i]);
    pare_fq_forward(y, x, s, per_row(c), R, K, -qmax, qmax);
    return PARE_OK;
}

/* d of the forward line: dx += dy inside the grid (STE); d log s += s · ds, ds the LSQ gradient with
 * LSQ's step-size scale g = 1/sqrt(elements per scale · qmax) */
static void fq_backward(const pare_tf_ctx *c, float *dx, const float *dy, const float *x)
{
    const pare_transform *t = c->t;
    pare_param *lp = &c->m->params[t->aux[0]];
    int64_t ns = nscales(c), R = view_rows(t, c->rows, c->cols), K = view_cols(t, c->cols);
    float *s = c->scratch, *ds = s + ns, *lg = lp->trainable ? lp->grad : NULL;
    int learn = t->learn && lg && !t->per_token, qmax = qmax_of(t);
    memset(ds, 0, sizeof(float) * (size_t)ns);
    float g = per_row(c) ? 1.0f / sqrtf((float)K * (float)qmax) : 1.0f / sqrtf((float)(R * K) * (float)qmax);
    pare_fq_backward(dx, learn ? ds : NULL, dy, x, s, per_row(c), R, K, -qmax, qmax, g);
    if (learn)
        for (int64_t i = 0; i < ns; i++) lg[i] += s[i] * ds[i];
}

static const char *fq_describe(const pare_model *m, const pare_transform *t, char *buf, size_t n)
{
    (void)m;
    if (t->per_token) snprintf(buf, n, "fake_quant int%d per token", t->bits);
    else if (t->group) snprintf(buf, n, "fake_quant int%d group %d %s", t->bits, t->group, t->learn ? "lsq" : "fixed");
    else snprintf(buf, n, "fake_quant int%d %s", t->bits, t->learn ? "lsq" : "fixed");
    return buf;
}

const pare_tf_traits pare_tf_fake_quant = {
    .name = "fake_quant",
    .simulated = 1,
    .forward = fq_forward,
    .backward = fq_backward,
    .scratch = fq_scratch,
    .naux = 1,
    .describe = fq_describe,
};
