/* tokens.c — the prune_tokens pass: physical token pruning layer by layer (PoWER-BERT, Goyal et al. 2020,
 * with a given static retention configuration; issue 13, docs/pruning-tokens.md).
 *
 * keep = "1;0.7;0.5;0.3" gives layer l a share keep_l of the T positions: before layer l (l >= 1) whose
 * share is below its predecessor's, a TOKEN_SELECT node scores the tokens by the attention they received in
 * layer l − 1 (Σ_h Σ_i P[i, j] over valid queries, its "#att" probabilities), keeps [CLS] and the best
 * T' = ceil(keep_l · T) − 1 others in their order and gathers their rows, and a TOKEN_LENGTHS node gives the
 * level's lengths min(L, T'); layer l, the later ones and the pooling then run on B·T' rows (the executor
 * plans every value at its level's T', graph.h: pare_value.keep). The shapes are static per level, so one
 * plan serves every batch of a (B, T).
 *
 * Supported: bidirectional encoders (kind encoder) with a pooled head, [CLS] (the token every level keeps)
 * or mean pooling (over the tokens that are left), pre- or post-LN, layers named as the builder names
 * them (<blk>.<l>.attn, <blk>.<l>.add1). The layer before each select needs attention probabilities (the
 * full variant, not its int8 products). Refused with a message naming the option: decoders, taggers,
 * encoder-decoders, a first share below 1 (layer 0 has no earlier attention to score by), a share above 1
 * or growing, more shares than layers, a model pruned this way already.
 * Deliberately not here: learned thresholds or per-sequence lengths (LTP); the configuration search of
 * PoWER-BERT (the shares are given); a select inside a layer (between attention and FFN, PoWER-BERT's
 * placement): between layers keeps every layer's residual on one token set.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "compress/pass.h"
#include "graph/rewrite.h"

#define MAX_SHARES 256

static const pare_opt_spec tok_opts[] = {
    {"keep", PARE_OPT_STRING, "1;0.7;0.5;0.3", 0, 0, NULL,
     "share of the T positions each layer runs on, 'k0;k1;...' (the last repeats), k0 = 1, non-increasing, in (0, 1]"},
};
const pare_schema pare_prune_tokens_schema = {
    "prune_tokens",
    "token pruning (PoWER-BERT): between layers keep [CLS] and the tokens that received most attention; later layers run on fewer rows",
    tok_opts, 1};

static pare_status parse_keep(const char *text, float *k, int *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0) || v > 1)
            return pare_fail(PARE_EINVAL, "prune_tokens: keep '%s': entry %d is not a number in (0, 1] (write shares such as "
                             "\"1;0.7;0.5\")", text, *n + 1);
        if (*n == MAX_SHARES) return pare_fail(PARE_EINVAL, "prune_tokens: keep '%s': more than %d shares", text, MAX_SHARES);
        if (*n == 0 && v != 1)
            return pare_fail(PARE_EINVAL, "prune_tokens: keep '%s': the first share must be 1 (layer 0 runs on every token: "
                             "there is no earlier attention to score tokens by)", text);
        if (*n > 0 && v > k[*n - 1])
            return pare_fail(PARE_EINVAL, "prune_tokens: keep '%s': share %d (%g) is above share %d (%g); shares must not grow "
                             "(a removed token does not come back)", text, *n + 1, v, *n, (double)k[*n - 1]);
        k[(*n)++] = (float)v;
        while (*end == ' ') end++;
        if (*end == ';' || *end == ',') end++;
        else if (*end) return pare_fail(PARE_EINVAL, "prune_tokens: keep '%s': separate shares with ';'", text);
        p = end;
    }
    if (*n == 0) return pare_fail(PARE_EINVAL, "prune_tokens: keep is empty; give shares such as \"1;0.7;0.5\"");
    return PARE_OK;
}

static pare_status tokens_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    float keep[MAX_SHARES];
    int nk;
    if (strcmp(m->kind, "encoder") != 0 || m->lm)
        return pare_fail(PARE_EINVAL, "prune_tokens: token pruning is for bidirectional encoders with a pooled "
                         "classification head (kind encoder); this model is a %s", m->kind);
    PARE_TRY(parse_keep(pare_opt_str(o, "keep"), keep, &nk));
    int64_t attn[MAX_SHARES], L = 0, pool = -1;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->op == PARE_OP_TOKEN_SELECT)
            return pare_fail(PARE_EINVAL, "prune_tokens: the model is token-pruned already (node %s); apply the pass to the "
                             "unpruned model", n->name);
        if (n->op == PARE_OP_POOL) pool = i;
        if (n->op != PARE_OP_ATTENTION) continue;
        if (n->a.causal)
            return pare_fail(PARE_EINVAL, "prune_tokens: %s is causal; token pruning is for bidirectional encoders", n->name);
        if (L == MAX_SHARES) return pare_fail(PARE_EINVAL, "prune_tokens: more than %d layers", MAX_SHARES);
        attn[L++] = i;
    }
    if (pool < 0)
        return pare_fail(PARE_EINVAL, "prune_tokens: the model has no pooling node ([CLS] or mean); token pruning needs a "
                         "pooled classification head");
    if (nk > L)
        return pare_fail(PARE_EINVAL, "prune_tokens: keep gives %d shares for a model of %lld layers", nk, (long long)L);
    int lens = m->lengths; /* the lengths of the current level */
    float cur = 1.0f;
    for (int64_t l = 1; l < L; l++) {
        float k = keep[l < nk ? l : nk - 1];
        if (k >= cur) continue;
        /* layer l's input: the residual its add1 reads; the scores: layer l − 1's probabilities */
        const pare_node *an = &m->nodes[attn[l]], *prev = &m->nodes[attn[l - 1]];
        char blk[PARE_NAME_MAX], nm[PARE_NAME_MAX + 16];
        size_t len = strlen(an->name);
        if (len < 6 || strcmp(an->name + len - 5, ".attn") != 0)
            return pare_fail(PARE_EINVAL, "prune_tokens: attention node %s is not named <layer>.attn as the builder names "
                             "it", an->name);
        snprintf(blk, sizeof blk, "%.*s", (int)(len - 5), an->name);
        snprintf(nm, sizeof nm, "%s.add1", blk);
        int64_t add1 = pare_model_find_node(m, nm);
        if (add1 < 0 || add1 < attn[l])
            return pare_fail(PARE_EINVAL, "prune_tokens: layer %s has no residual node %s after its attention", blk, nm);
        if (!prev->ncache || prev->a.bmm_i8)
            return pare_fail(PARE_EINVAL, "prune_tokens: keep share %d (%g) scores tokens by the attention probabilities of %s, "
                             "which its variant '%s'%s does not keep (use the full variant there%s)", (int)l + 1, (double)k,
                             prev->name, prev->a.attn ? prev->a.attn->spec : "full", prev->a.bmm_i8 ? " on int8" : "",
                             prev->a.bmm_i8 ? ", SmoothQuant with quantize_bmm=false" : "");
        int x_in = m->nodes[add1].in[0], att = prev->cache[0];
        int64_t at = m->values[x_in].producer + 1;
        if (at > attn[l]) return pare_fail(PARE_EINVAL, "prune_tokens: layer %s: its residual input is made after its attention", blk);
        pare_node_attrs a = {.keep = k};
        snprintf(nm, sizeof nm, "%s.tokens.len", blk);
        int nl = pare_model_insert_node(m, at, PARE_OP_TOKEN_LENGTHS, nm, &m->lengths, 1, NULL, 0, PARE_ROWS_SEQS, 1, a);
        if (nl < 0) return pare_fail_ctx(PARE_EINVAL, "prune_tokens");
        snprintf(nm, sizeof nm, "%s.tokens", blk);
        int sin[3] = {x_in, lens, att};
        int sel = pare_model_insert_node(m, at + 1, PARE_OP_TOKEN_SELECT, nm, sin, 3, NULL, 0, PARE_ROWS_TOKENS,
                                         m->values[x_in].cols, a);
        if (sel < 0) return pare_fail_ctx(PARE_EINVAL, "prune_tokens");
        /* every later reader of the layer's input reads the selected rows, and of the lengths the level's */
        for (int64_t i = at + 2; i < m->nnodes; i++) {
            pare_node *n = &m->nodes[i];
            for (int q = 0; q < n->nin; q++) {
                if (n->in[q] == x_in) n->in[q] = sel;
                else if (n->in[q] == lens && (n->op == PARE_OP_ATTENTION || n->op == PARE_OP_POOL)) n->in[q] = nl;
            }
        }
        pare_model_refresh_keep(m);
        PARE_TRY(pare_model_check(m));
        lens = nl, cur = k;
        for (int64_t j = l; j < L; j++) attn[j] += 2; /* the two nodes inserted before them */
    }
    return PARE_OK;
}

const pare_pass pare_pass_prune_tokens = {.schema = &pare_prune_tokens_schema, .apply = tokens_apply, .needs_calib = 0};
