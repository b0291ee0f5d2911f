/* tf_headgate.c — a hard-concrete gate per attention head (Louizos, Welling & Kingma 2018, "Learning
 * Sparse Neural Networks through L0 Regularization"; Voita et al. 2019, "Analyzing Multi-Head
 * Self-Attention: Specialized Heads Do the Heavy Lifting, the Rest Can Be Pruned"), as a weight transform
 * on the output projection W_o (N, K) that reads the attention's head-major output: scaling head h's
 * columns of W_o by z_h is exactly scaling the head's output by z_h (W_o·(z ⊙ ctx) = (W_o ⊙ z)·ctx).
 *
 *     W_eff[n, h·D + d] = W_o[n, h·D + d] · z_h              D = K / H, H = the log α parameter's length
 *     dW_o += dW_eff ⊙ z        d log α_h += (Σ_{n, d} dW_eff[n, h·D + d] · W_o[n, h·D + d]) · ∂z_h/∂log α_h
 *
 * z follows transform.h (pare_hc_gate): a sample per head in a training executor's forward (u drawn from the
 * executor's generator and kept in the gate's state parameter after λ and the gates' learning rate, so backward's recompute sees the same z),
 * the deterministic gate elsewhere — which depends on parameters only, so inference folds it (foldable).
 * The L0 penalty λ Σ_h P(z_h ≠ 0) is not here: the training hooks of compress/prune/heads.h add it.
 * Deliberately not here: gates on anything but whole heads, and other (β, γ, ζ) than Louizos's
 * (2/3, −0.1, 1.1). Scratch: z (K) and ∂z/∂log α (K), per head in the first H entries. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "transform.h"

static double sigmoid(double v) { return v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v)); }

double pare_hc_gate(double log_alpha, double u, int train, double *dz)
{
    double s, ds; /* s and ∂s/∂log α */
    if (train) {
        s = sigmoid((log(u) - log(1.0 - u) + log_alpha) / PARE_HC_BETA);
        ds = s * (1.0 - s) / PARE_HC_BETA;
    } else {
        s = sigmoid(log_alpha);
        ds = s * (1.0 - s);
    }
    double sb = s * (PARE_HC_ZETA - PARE_HC_GAMMA) + PARE_HC_GAMMA;
    if (dz) *dz = sb > 0.0 && sb < 1.0 ? ds * (PARE_HC_ZETA - PARE_HC_GAMMA) : 0.0;
    return sb <= 0.0 ? 0.0 : sb >= 1.0 ? 1.0 : sb;
}

double pare_hc_nonzero(double log_alpha, double *dp)
{
    double p = sigmoid(log_alpha - PARE_HC_BETA * log(-PARE_HC_GAMMA / PARE_HC_ZETA));
    if (dp) *dp = p * (1.0 - p);
    return p;
}

static int64_t hg_scratch(const pare_transform *t, int64_t rows, int64_t cols)
{
    (void)t, (void)rows;
    return 2 * cols;
}

static int64_t heads_of(const pare_tf_ctx *c) { return pare_param_numel(&c->m->params[c->t->aux[0]]); }

/* y (N, K) = x (N, K) with head h's columns times z_h; z and ∂z/∂log α into scratch */
static pare_status hg_forward(const pare_tf_ctx *c, float *y, const float *x)
{
    int64_t H = heads_of(c), K = c->cols, D = H ? K / H : 0;
    if (H < 1 || D * H != K)
        return pare_fail(PARE_EINVAL, "%s: head gate of %lld heads on a weight of %lld columns", c->n->name, (long long)H, (long long)K);
    const float *la = c->m->params[c->t->aux[0]].blob->data;
    pare_param *sp = &c->m->params[c->t->aux[1]];
    float *z = c->scratch, *dz = c->scratch + K;
    if (c->train && c->update) { /* a new sample for this forward, kept for backward's recompute */
        PARE_TRY(pare_param_make_private(sp)); /* written here: clones keep theirs */
        for (int64_t h = 0; h < H; h++) {
            double u = pare_rng_uniform(c->rng);
            sp->blob->data[2 + h] = (float)(u < 1e-6 ? 1e-6 : u > 1.0 - 1e-6 ? 1.0 - 1e-6 : u);
        }
    }
    const float *u = sp->blob->data + 2;
    for (int64_t h = 0; h < H; h++) {
        double d;
        z[h] = (float)pare_hc_gate(la[h], u[h], c->train, &d);
        dz[h] = (float)d;
    }
    for (int64_t n = 0; n < c->rows; n++)
        for (int64_t k = 0; k < K; k++) y[n * K + k] = x[n * K + k] * z[k / D];
    return PARE_OK;
}

/* d of the forward's last line: dx += dy · z_h; d log α_h += Σ dy · x over the head's columns · ∂z_h/∂log α_h */
static void hg_backward(const pare_tf_ctx *c, float *dx, const float *dy, const float *x)
{
    int64_t H = heads_of(c), K = c->cols, D = K / H;
    const float *z = c->scratch, *dz = c->scratch + K;
    pare_param *lp = &c->m->params[c->t->aux[0]];
    float *lg = lp->trainable ? lp->grad : NULL;
    if (dx)
        for (int64_t n = 0; n < c->rows; n++)
            for (int64_t k = 0; k < K; k++) dx[n * K + k] += dy[n * K + k] * z[k / D];
    if (!lg) return;
    for (int64_t h = 0; h < H; h++) {
        if (dz[h] == 0.0f) continue;
        double sum = 0;
        for (int64_t n = 0; n < c->rows; n++)
            for (int64_t k = h * D; k < (h + 1) * D; k++) sum += (double)dy[n * K + k] * (double)x[n * K + k];
        lg[h] += (float)(sum * dz[h]);
    }
}

static const char *hg_describe(const pare_model *m, const pare_transform *t, char *buf, size_t n)
{
    const pare_param *p = &m->params[t->aux[0]];
    int64_t H = pare_param_numel(p), open = 0;
    for (int64_t h = 0; h < H; h++) open += pare_hc_gate(p->blob->data[h], 0.5, 0, NULL) > 0.0;
    snprintf(buf, n, "head_gate %lld/%lld open, lambda %g", (long long)open, (long long)H,
             (double)m->params[t->aux[1]].blob->data[0]);
    return buf;
}

const pare_tf_traits pare_tf_head_gate = {
    .name = "head_gate",
    .foldable = 1,
    .forward = hg_forward,
    .backward = hg_backward,
    .scratch = hg_scratch,
    .naux = 2,
    .describe = hg_describe,
};
