/* lsra.c — Lite Transformer's Long-Short Range Attention (Wu et al. 2020, "Lite Transformer with
 * Long-Short Range Attention", §3): kind "lsra".
 *
 * The channels are split between two branches that run side by side:
 *   - heads [0, attn_heads): global attention — exact softmax attention over the whole sequence, run by a
 *     flash sub-instance (full's numbers, O(T) memory), causal where asked;
 *   - heads [attn_heads, H): local context — a depthwise convolution along the tokens of those channels
 *     of v, with learned taps and bias:
 *         out[t, c] = bias[c] + Σ_{s<K} w[c, s] · v[t + s − pad, c],   pad = (K−1)/2, or K−1 when causal
 *     (positions outside [0, L) read as 0, so padded tokens never reach valid ones).
 * attn_heads = 0 means H/2 (the paper splits the channels in halves). The paper's conv branch is a
 * lightweight/dynamic convolution after a GLU; here it is a plain depthwise convolution (the projections
 * around it belong to the graph). Parameters (param_shapes): conv.weight ((H − attn_heads)·D, K) then
 * conv.bias (1, (H − attn_heads)·D); initialised N(0, 1/K) and 0.
 *
 * Backward: the attention heads through flash's backward; the conv: dv[t', c] += Σ_s w[c, s] dout[t' − s +
 * pad, c] (t' < L), dw[c, s] += Σ_t dout[t, c] v[t + s − pad, c], dbias[c] += Σ_t dout[t, c], parallel over
 * channels (each channel's parameter gradients owned by one thread: bit-identical for any thread count).
 * Cost: attention as flash on attn_heads heads; conv 2·T·K FLOPs per channel; memory flash's.
 * Deliberately not here: the GLU and the dynamic (input-dependent) kernels, weight sharing across channel
 * groups (lightweight convolution), the flattened FFN of the paper.
 */
#include "attn/attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"

static const pare_opt_spec lsra_opts[] = {
    {"attn_heads", PARE_OPT_INT, "0", 0, 1 << 20, NULL,
     "heads of the attention branch, the rest are convolution channels (0 = H/2; valid 1..H-1)"},
    {"kernel", PARE_OPT_INT, "7", 1, 1023, NULL, "convolution width K (odd unless causal)"},
};
static const pare_schema lsra_schema = {
    "lsra", "Lite Transformer LSRA: attention on some heads (global) beside a depthwise convolution (local)",
    lsra_opts, 2};

typedef struct lsra_state {
    int64_t ha, K, pad; /* attention heads, kernel width, left padding */
    pare_attn *sub;     /* flash on the first ha heads */
} lsra_state;

static void lsra_free(pare_attn *a)
{
    lsra_state *s = a->state;
    if (s) pare_attn_free(s->sub);
    free(s);
}

static pare_status lsra_init(pare_attn *a)
{
    const int64_t H = a->H, K = pare_opt_int(&a->opts, "kernel");
    int64_t ha = pare_opt_int(&a->opts, "attn_heads");
    if (H < 2)
        return pare_fail(PARE_EINVAL, "lsra: needs H >= 2 heads to split between attention and convolution (H=%lld)",
                         (long long)H);
    if (ha == 0) ha = H / 2;
    if (ha >= H)
        return pare_fail(PARE_EINVAL, "lsra: option 'attn_heads' = %lld leaves no convolution channels (valid: 1..%lld)",
                         (long long)ha, (long long)(H - 1));
    if (!a->causal && K % 2 == 0)
        return pare_fail(PARE_EINVAL, "lsra: option 'kernel' = %lld must be odd for a centred (non-causal) convolution",
                         (long long)K);
    lsra_state *s = calloc(1, sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "lsra: out of memory");
    s->ha = ha, s->K = K, s->pad = a->causal ? K - 1 : (K - 1) / 2;
    pare_status st = pare_attn_create(&s->sub, "flash", NULL, 0, a->T, ha, a->D, a->causal);
    if (st != PARE_OK) {
        free(s);
        return pare_fail_ctx(st, "lsra: attention branch: ");
    }
    a->state = s;
    return PARE_OK;
}

static int lsra_shapes(const pare_attn *a, pare_attn_param *p)
{
    const lsra_state *s = a->state;
    const int64_t cc = (a->H - s->ha) * a->D;
    p[0] = (pare_attn_param){"conv.weight", cc, s->K};
    p[1] = (pare_attn_param){"conv.bias", 1, cc};
    return 2;
}

static void lsra_param_init(const pare_attn *a, float *params, pare_rng *rng)
{
    const lsra_state *s = a->state;
    const int64_t cc = (a->H - s->ha) * a->D;
    const double sd = 1.0 / sqrt((double)s->K);
    for (int64_t e = 0; e < cc * s->K; e++) params[e] = (float)(sd * pare_rng_normal(rng));
    memset(params + cc * s->K, 0, (size_t)cc * sizeof(float));
}

PARE_HOT static pare_status lsra_forward(const pare_attn *a, const pare_attn_args *x)
{
    const lsra_state *s = a->state;
    PARE_TRY(s->sub->v->forward(s->sub, x));
    const int64_t T = a->T, D = a->D, c0 = s->ha * D, cc = (a->H - s->ha) * D, K = s->K, ld = x->ld, ldo = x->ldo;
    const float *w = x->params, *bias = x->params + cc * K;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < cc; c++)
        for (int64_t b = 0; b < x->B; b++) {
            const int64_t L = pare_attn_len(x->lengths, b, T);
            const float *v = x->v + b * T * ld + c0 + c;
            float *o = x->out + b * T * ldo + c0 + c;
            for (int64_t t = 0; t < T; t++) {
                float acc = bias[c];
                for (int64_t k = 0; k < K; k++) {
                    const int64_t u = t + k - s->pad;
                    if (u >= 0 && u < L) acc += w[c * K + k] * v[u * ld];
                }
                o[t * ldo] = acc;
            }
        }
    return PARE_OK; /* x->pairs: set by the flash sub-call (the convolution forms no scores) */
}

PARE_HOT static pare_status lsra_backward(const pare_attn *a, const pare_attn_args *x)
{
    const lsra_state *s = a->state;
    PARE_TRY(s->sub->v->backward(s->sub, x));
    const int64_t T = a->T, D = a->D, c0 = s->ha * D, cc = (a->H - s->ha) * D, K = s->K, ld = x->ld, ldo = x->ldo,
                  ldd = x->ldd;
    const float *w = x->params;
    float *dw = x->dparams, *dbias = x->dparams + cc * K;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < cc; c++)
        for (int64_t b = 0; b < x->B; b++) {
            const int64_t L = pare_attn_len(x->lengths, b, T);
            const float *v = x->v + b * T * ld + c0 + c, *dO = x->dout + b * T * ldo + c0 + c;
            float *dv = x->dv + b * T * ldd + c0 + c;
            for (int64_t t = 0; t < T; t++) {
                const float g = dO[t * ldo];
                dbias[c] += g;
                for (int64_t k = 0; k < K; k++) {
                    const int64_t u = t + k - s->pad;
                    if (u < 0 || u >= L) continue;
                    dw[c * K + k] += g * v[u * ld];
                    dv[u * ldd] += g * w[c * K + k];
                }
            }
        }
    return PARE_OK;
}

static void lsra_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const lsra_state *s = a->state;
    pare_attn_cost_of(s->sub, B, c);
    const int64_t conv = B * a->T * (a->H - s->ha) * a->D * s->K;
    c->flops_fwd += 2 * conv;
    c->flops_bwd += 4 * conv;
}

/* Attention heads: dense (causal: j <= i); convolution heads: the taps' band −pad <= j − i <= K − 1 − pad. */
static void lsra_mask(const pare_attn *a, int64_t h, uint8_t *m)
{
    const lsra_state *s = a->state;
    const int64_t T = a->T;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++)
            m[i * T + j] = h < s->ha ? (!a->causal || j <= i) : (j - i >= -s->pad && j - i <= s->K - 1 - s->pad);
}

const pare_attn_variant pare_attn_lsra = {
    .schema = &lsra_schema,
    .can_be_causal = 1,
    .causal_note = "causal attention heads and a left-padded (causal) convolution",
    .init = lsra_init,
    .free = lsra_free,
    .forward = lsra_forward,
    .backward = lsra_backward,
    .cost = lsra_cost,
    .mask = lsra_mask,
    .param_shapes = lsra_shapes,
    .param_init = lsra_param_init,
};
