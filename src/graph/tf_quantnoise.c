/* tf_quantnoise.c — Quant-Noise (Fan, Stock, Graham, Grave, Gribonval, Jégou & Joulin 2020, "Training with
 * Quantization Noise for Extreme Model Compression") as a weight transform on a Linear's weight W (N, K).
 *
 * The weight is cut into blocks of d = t->group consecutive inputs (N·K/d of them, PQ's subvectors). In each
 * training forward every block is drawn into the noise with probability p (state[0]); drawn blocks are replaced
 * by their quantized value, the others pass as they are:
 *
 *     W_eff[b] = φ(W)[b]  if mask[b] = 1   (mask[b] ~ Bernoulli(p), drawn once per training forward)
 *              = W[b]     otherwise
 *     dW += dW_eff                          (straight-through for the quantized blocks; the others' gradient is
 *                                            exact, which is the point: an unbiased gradient for most weights)
 *
 * φ is t->bits: 8 or 4 — symmetric scalar quantization per output channel, s = max|W_row| / qmax, exactly QAT's
 * fixed-scale fake quantization (kernels/qat.h: pare_fq_observe_weight, pare_fq_forward); 0 — PQ: each block
 * replaced by its nearest centroid of the codebook aux[1] (k, d), which the pass fits by k-means and which is
 * refitted (5 Lloyd iterations from the current centroids, pare_kmeans_from) every state[1] training forwards
 * (0: never) so it follows the weights. At inference (and when an executor folds it) the transform is the
 * identity: the model is the f32 one, to be quantized after training (the pq or rtn pass).
 * So p = 0 is plain training (not one random number is drawn) and p = 1 is full fake quantization of the weight.
 *
 * The mask of the last training forward is kept in the state (state[4..)), so backward's recompute sees the
 * same blocks; state[2] counts training forwards, state[3] is how many blocks the last one quantized.
 * Deliberately not here: the paper's "proxy" noise (blocks zeroed and rescaled, as in fairseq's quant_noise),
 * noise on activations or embeddings, and scalar grids other than symmetric per channel.
 * Scratch: int — the per-channel scales (N) and the fully quantized weight (N, K); pq — none.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/pq.h"
#include "kernels/qat.h"
#include "transform.h"

#define QN_REFRESH_ITERS 5

static int64_t qn_scratch(const pare_transform *t, int64_t rows, int64_t cols)
{
    return t->bits ? rows + rows * cols : 0;
}

/* y (N, K) = W_eff from the master x (N, K) */
static pare_status qn_forward(const pare_tf_ctx *c, float *y, const float *x)
{
    const pare_transform *t = c->t;
    int64_t N = c->rows, K = c->cols, d = t->group, nb = N * (K / d);
    memcpy(y, x, sizeof(float) * (size_t)(N * K));
    if (!c->train) return PARE_OK; /* inference: the f32 weight */
    pare_param *sp = &c->m->params[t->aux[0]];
    pare_param *cp = t->bits ? NULL : &c->m->params[t->aux[1]];
    int64_t k = cp ? pare_param_numel(cp) / d : 0;
    if (c->update) { /* a new draw for this forward, kept for backward's recompute */
        PARE_TRY(pare_param_make_private(sp)); /* written here: clones keep theirs */
        float *st = sp->blob->data, *mask = st + 4;
        float p = st[0];
        st[2] += 1.0f;
        if (cp && st[1] > 0 && fmodf(st[2], st[1]) == 0.0f) { /* the codebook follows the weights */
            uint8_t *as = malloc((size_t)nb);
            if (!as) return pare_fail(PARE_ENOMEM, "%s: quant_noise: out of memory refitting the codebook", c->n->name);
            pare_status s2 = pare_param_make_private(cp);
            if (s2 == PARE_OK) s2 = pare_kmeans_from(cp->blob->data, as, NULL, x, nb, d, k, QN_REFRESH_ITERS);
            free(as);
            if (s2 != PARE_OK) return pare_fail_ctx(s2, "%s: quant_noise refitting its codebook", c->n->name);
        }
        int64_t cnt = 0;
        for (int64_t b = 0; b < nb; b++) {
            mask[b] = p >= 1.0f ? 1.0f : p <= 0.0f ? 0.0f : pare_rng_uniform(c->rng) < (double)p ? 1.0f : 0.0f;
            cnt += mask[b] != 0.0f;
        }
        st[3] = (float)cnt;
    }
    const float *mask = sp->blob->data + 4;
    if (t->bits) {
        int qmax = (1 << (t->bits - 1)) - 1;
        float *s = c->scratch, *q = c->scratch + N;
        pare_fq_observe_weight(s, x, N, K, t->bits);
        pare_fq_forward(q, x, s, 1, N, K, -qmax, qmax);
        for (int64_t b = 0; b < nb; b++)
            if (mask[b] != 0.0f) memcpy(y + b * d, q + b * d, sizeof(float) * (size_t)d);
    } else {
        const float *cb = cp->blob->data;
        for (int64_t b = 0; b < nb; b++) {
            if (mask[b] == 0.0f) continue;
            uint8_t a;
            pare_pq_assign(&a, x + b * d, 1, d, cb, k);
            memcpy(y + b * d, cb + (int64_t)a * d, sizeof(float) * (size_t)d);
        }
    }
    return PARE_OK;
}

/* d of the forward: dx += dy, straight through the quantized blocks and exact for the others */
static void qn_backward(const pare_tf_ctx *c, float *dx, const float *dy, const float *x)
{
    (void)x;
    if (dx)
        for (int64_t i = 0; i < c->rows * c->cols; i++) dx[i] += dy[i];
}

static const char *qn_describe(const pare_model *m, const pare_transform *t, char *buf, size_t n)
{
    const float *st = m->params[t->aux[0]].blob->data;
    if (t->bits) snprintf(buf, n, "quant_noise p=%g int%d block %d", (double)st[0], t->bits, t->group);
    else
        snprintf(buf, n, "quant_noise p=%g pq block %d k=%lld", (double)st[0], t->group,
                 (long long)(pare_param_numel(&m->params[t->aux[1]]) / t->group));
    return buf;
}

const pare_tf_traits pare_tf_quant_noise = {
    .name = "quant_noise",
    .foldable = 1, /* identity at inference */
    .forward = qn_forward,
    .backward = qn_backward,
    .scratch = qn_scratch,
    .naux = 1,
    .describe = qn_describe,
};
