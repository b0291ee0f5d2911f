/* tf_mask.c — a pruning mask on a Linear weight: W_eff = W ⊙ M with M (N,K) of 0 and 1, a non-trainable
 * parameter; backward dW += dW_eff ⊙ M, so masked weights get exactly zero gradient and their f32
 * masters are never moved by it (removing the mask gives them back). The effective weight depends on
 * parameters only: inference executors fold it into their packed copy once (transform.h, foldable).
 * Deliberately not here: how a mask is chosen (magnitude, movement, N:M: pruning passes) and sparse
 * kernels (a masked layer runs the dense f32 kernel; its speed is the unmasked layer's). */
#include <stdio.h>

#include "transform.h"

static const float *mask_of(const pare_tf_ctx *c) { return c->m->params[c->t->aux[0]].blob->data; }

/* y (N,K) = x (N,K) ⊙ M (N,K) */
static pare_status mask_forward(const pare_tf_ctx *c, float *y, const float *x)
{
    const float *mk = mask_of(c);
    int64_t len = c->rows * c->cols;
#pragma omp parallel for if (len > 65536)
    for (int64_t i = 0; i < len; i++) y[i] = x[i] * mk[i];
    return PARE_OK;
}

/* d of the forward line: dx += dy ⊙ M */
static void mask_backward(const pare_tf_ctx *c, float *dx, const float *dy, const float *x)
{
    (void)x;
    if (!dx) return;
    const float *mk = mask_of(c);
    int64_t len = c->rows * c->cols;
#pragma omp parallel for if (len > 65536)
    for (int64_t i = 0; i < len; i++) dx[i] += dy[i] * mk[i];
}

static const char *mask_describe(const pare_model *m, const pare_transform *t, char *buf, size_t n)
{
    const pare_param *p = &m->params[t->aux[0]];
    int64_t len = pare_param_numel(p), zeros = 0;
    for (int64_t i = 0; i < len; i++) zeros += p->blob->data[i] == 0.0f;
    snprintf(buf, n, "mask %.1f%% zero", len ? 100.0 * (double)zeros / (double)len : 0.0);
    return buf;
}

const pare_tf_traits pare_tf_mask = {
    .name = "mask",
    .foldable = 1,
    .forward = mask_forward,
    .backward = mask_backward,
    .naux = 1,
    .describe = mask_describe,
};
