/* token_prune.c — token pruning by attention received, SIMULATED (a mask; no speed-up): kind "token_prune".
 * For real shorter sequences use the prune_tokens pass (see the end of this comment).
 *
 * PoWER-BERT (Goyal et al. 2020) and LTP (Kim et al. 2022) score token j of a sequence at a layer by the
 * attention it receives, s_j = Σ_h Σ_i P_h[i, j] over the valid queries i, keep the top-k tokens and run
 * the later layers on them only. pare's executor gives every layer of a model the same B·T token rows
 * (PARE_ROWS_TOKENS with one T, planned once), so the rows cannot shrink from one layer to the next; what
 * this variant does instead, at the layer it is set on, is the masked equivalent for that layer's
 * attention: the dense probabilities P give s_j, the k_b = max(1, ceil(keep · L_b)) highest-scoring valid
 * tokens of sequence b (token 0, [CLS], always among them with keep_first; ties to the lower index) stay
 * visible as keys, and each query's probabilities are renormalised over them,
 *
 *     P'_h[i, j] = P_h[i, j] · m_j / Σ_j' P_h[i, j'] · m_j'     (= the softmax of the scores over kept keys)
 *     O_h = P'_h · V_h
 *
 * so the pruned tokens no longer carry information to any other token from this layer on (their own rows
 * are still computed: a pooled [CLS] or mean over valid rows still sees them through the residual unless
 * the head pools [CLS]). Set per layer with the model's attention option (a growing pruning schedule:
 * "full;token_prune:keep=0.7;token_prune:keep=0.5"). Each layer selects from its own attention; a token
 * dropped at one layer may be selected again at a later one (PoWER-BERT's elimination is monotone).
 *
 * Backward: the selection is piecewise constant in q, k (its gradient is 0 almost everywhere), so with the
 * mask fixed the gradient is full attention's through P' — full.c's backward, run on the cache P' (masked
 * entries exactly 0). Cost: full attention plus the renormalisation and a second P'·V: this variant is
 * SLOWER than full attention; it measures the accuracy side of token pruning, not its speed.
 * The REAL variant, with shorter sequences and the speed-up, is the prune_tokens pass (compress/prune/tokens.c,
 * docs/pruning-tokens.md): TOKEN_SELECT nodes between layers gather the kept rows and the planner sizes every
 * later value at T' = ceil(keep · T). This variant stays: it is the masked reference of the same scoring
 * (within one layer), and its share is of each sequence's own length L (ceil(keep · L)), which fixed-shape
 * levels cannot express (prune_tokens keeps min(L, ceil(keep · T))).
 * Deliberately not here: learned thresholds (LTP's soft masks); bidirectional-only: causal attention is refused.
 */
#include "attn/attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn_internal.h"
#include "kernels/gemm.h"

static const pare_opt_spec tp_opts[] = {
    {"keep", PARE_OPT_FLOAT, "0.5", 0.001, 1, NULL, "share of each sequence's valid tokens kept as keys: ceil(keep * length)"},
    {"keep_first", PARE_OPT_BOOL, "true", 0, 0, NULL, "token 0 ([CLS]) is always kept"},
};
static const pare_schema tp_schema = {
    "token_prune", "SIMULATED token pruning: keys kept = top ceil(keep*len) tokens by attention received (PoWER-BERT); no speed-up",
    tp_opts, (int)(sizeof tp_opts / sizeof tp_opts[0])};

static pare_status tp_init(pare_attn *a)
{
    a->state = NULL;
    return PARE_OK;
}

/* Keys kept for a sequence of valid length L: k = max(1, ceil(keep · L)). */
static int64_t keep_count(double keep, int64_t L)
{
    int64_t k = (int64_t)ceil(keep * (double)L - 1e-9);
    return k < 1 ? 1 : k > L ? L : k;
}

static pare_status tp_forward(const pare_attn *a, const pare_attn_args *x)
{
    PARE_TRY(pare_attn_full.forward(a, x)); /* P (dense) into the cache */
    const int64_t T = a->T, H = a->H, D = a->D, ld = x->ld, ldo = x->ldo;
    const double keep = pare_opt_num(&a->opts, "keep");
    const int first = pare_opt_bool(&a->opts, "keep_first");
    float *att = x->cache;
    double *s = x->work;                                /* (T) significance */
    uint8_t *kept = (uint8_t *)(s + T);                 /* (T) */
    for (int64_t b = 0; b < x->B; b++) {
        const int64_t L = pare_attn_len(x->lengths, b, T), k = keep_count(keep, L);
        for (int64_t j = 0; j < T; j++) s[j] = 0, kept[j] = 0;
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < L; i++) {
                const float *p = att + ((b * H + h) * T + i) * T;
                for (int64_t j = 0; j < L; j++) s[j] += p[j];
            }
        /* the k best valid tokens by selection (k passes; T is small next to the attention's T²) */
        int64_t nk = 0;
        if (first && L > 0) kept[0] = 1, nk = 1;
        while (nk < k) {
            int64_t best = -1;
            for (int64_t j = 0; j < L; j++)
                if (!kept[j] && (best < 0 || s[j] > s[best])) best = j;
            kept[best] = 1, nk++;
        }
#pragma omp parallel for schedule(static) if (H > 1)
        for (int64_t h = 0; h < H; h++) {
            float *A = att + (b * H + h) * T * T;
            for (int64_t i = 0; i < T; i++) {
                float *p = A + i * T, z = 0;
                for (int64_t j = 0; j < T; j++) z += kept[j] ? p[j] : 0.0f;
                const float r = z > 0 ? 1.0f / z : 0.0f;
                for (int64_t j = 0; j < T; j++) p[j] = kept[j] ? p[j] * r : 0.0f;
            }
            /* O (T, D) = P' (T, L) · V[0:L] */
            if (L > 0)
                pare_sgemm(0, 0, T, D, L, 1.0f, A, T, x->v + b * T * ld + h * D, ld, 0.0f, x->out + b * T * ldo + h * D, ldo);
        }
    }
    return PARE_OK;
}

static pare_status tp_backward(const pare_attn *a, const pare_attn_args *x)
{
    return pare_attn_full.backward(a, x); /* through P' with the selection fixed (see above) */
}

static void tp_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    pare_attn_full.cost(a, B, c);
    c->flops_fwd += c->pairs * (2 * a->D + 3); /* renormalisation and the second P'·V */
    const size_t sel = (size_t)a->T * (sizeof(double) + 1);
    if (c->slot_bytes < sel) c->slot_bytes = sel;
}

const pare_attn_variant pare_attn_token_prune = {
    .schema = &tp_schema,
    .can_be_causal = 0,
    .causal_note = "token pruning by attention received is for bidirectional encoders (a decoder's later tokens cannot be scored yet)",
    .init = tp_init,
    .forward = tp_forward,
    .backward = tp_backward,
    .cost = tp_cost,
    .probs_cache = 1,
};
