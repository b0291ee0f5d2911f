/* prune_struct.c — the structured pruning passes: prune_neurons (FFN neurons), prune_heads (attention heads),
 * prune_layers (whole transformer layers). Each scores its components (structured.h, heads.h) and removes
 * the least important physically (graph/rewrite.h): the result is a smaller dense model whose FLOPs and
 * parameter count fall with what was removed; it saves and loads like any other (the checkpoint stores
 * the graph). Per-layer shares: every layer loses floor(level · count) components and keeps at least one.
 * Deliberately not here: a global ranking across layers (scores of different layers are on different
 * scales: Michel et al. normalise per layer for that reason) and fine-tuning afterwards (m:train).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "heads.h"
#include "structured.h"

#define CALIB_OPTS                                                                                                    \
    {"calib_samples", PARE_OPT_INT, "128", 1, 1e9, NULL, "criterion=taylor/loss: examples (the first of calib's train split)"}, \
    {"calib_batch", PARE_OPT_INT, "1", 1, 1e6, NULL, "batch; 1 takes |gradient| per example (the papers' form), more is faster"}

static const pare_opt_spec neuron_opts[] = {
    {"layers", PARE_OPT_STRING, "*.ffn.up", 0, 0, NULL, "glob over the FFN up projections whose neurons are pruned"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of up projections to leave whole (\"\": none)"},
    {"level", PARE_OPT_FLOAT, "0.3", 0, 0.99, NULL, "share of each layer's neurons removed: floor(level * F)"},
    {"criterion", PARE_OPT_ENUM, "magnitude", 0, 0, "magnitude|taylor",
     "magnitude: L2 norm of the up row; taylor: E|dL/d gate| = E|sum_n W_down[n,j] dW_down[n,j]| (calib=<task>)"},
    {"align", PARE_OPT_INT, "1", 1, 4096, NULL, "keep a multiple of align neurons (removing fewer when needed)"},
    CALIB_OPTS,
};
static const pare_schema neuron_schema = {
    "prune_neurons", "structured: remove the least important FFN neurons physically (up rows, bias, down columns)",
    neuron_opts, (int)(sizeof neuron_opts / sizeof neuron_opts[0])};

static const pare_opt_spec head_opts[] = {
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over attention node names (enc.0.attn, dec.0.xattn)"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of attention nodes to leave whole (\"\": none)"},
    {"level", PARE_OPT_FLOAT, "0.3", 0, 0.99, NULL, "share of each layer's heads removed: floor(level * H)"},
    {"criterion", PARE_OPT_ENUM, "magnitude", 0, 0, "magnitude|taylor",
     "magnitude: L2 norm of the head's output-projection columns; taylor: Michel et al. E|dL/d xi_h| (calib=<task>)"},
    CALIB_OPTS,
};
static const pare_schema head_schema = {
    "prune_heads", "structured: remove the least important attention heads physically (q, k, v rows, output columns)",
    head_opts, (int)(sizeof head_opts / sizeof head_opts[0])};

static const pare_opt_spec layer_opts[] = {
    {"k", PARE_OPT_INT, "1", 1, 1e4, NULL, "layers removed: the k whose removal raises the calibration loss least"},
    {"calib_samples", PARE_OPT_INT, "128", 1, 1e9, NULL, "examples the loss is measured on (the first of calib's train split)"},
    {"calib_batch", PARE_OPT_INT, "32", 1, 1e6, NULL, "evaluation batch"},
};
static const pare_schema layer_schema = {
    "prune_layers", "structured: remove the k transformer layers whose removal raises the loss least (one-shot)",
    layer_opts, (int)(sizeof layer_opts / sizeof layer_opts[0])};

typedef struct ranked { double s; int64_t i; } ranked;
static int by_score(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->s < y->s ? -1 : x->s > y->s ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* The indices of the `drop` lowest of score[0..n) (ties to the lower index) into out. */
static pare_status lowest(const double *score, int64_t n, int64_t drop, int64_t *out)
{
    ranked *r = malloc(sizeof *r * (size_t)(n ? n : 1));
    if (!r) return pare_fail(PARE_ENOMEM, "structured pruning: out of memory");
    for (int64_t i = 0; i < n; i++) r[i].s = score[i], r[i].i = i;
    qsort(r, (size_t)n, sizeof *r, by_score);
    for (int64_t i = 0; i < drop; i++) out[i] = r[i].i;
    free(r);
    return PARE_OK;
}

static int64_t samples(const pare_options *o, const pare_dataset *d)
{
    int64_t n = pare_opt_int(o, "calib_samples");
    return n > d->n ? d->n : n;
}

static pare_status neurons_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int taylor = !strcmp(pare_opt_str(o, "criterion"), "taylor");
    if (taylor && !ctx->calib)
        return pare_fail(PARE_EINVAL, "prune_neurons: criterion=taylor needs calibration data: give calib=<task>");
    pare_neuron_scores s;
    PARE_TRY(pare_neuron_importance(m, pare_opt_str(o, "layers"), taylor ? PARE_NEURON_TAYLOR : PARE_NEURON_MAGNITUDE,
                                    ctx->calib, 0, taylor ? samples(o, ctx->calib) : 0, pare_opt_int(o, "calib_batch"), &s));
    const char *ex = pare_opt_str(o, "exclude");
    double level = pare_opt_num(o, "level");
    int64_t align = pare_opt_int(o, "align");
    pare_status st = PARE_OK;
    /* names first: a removal renumbers nothing, but look each layer up by name all the same */
    for (int l = 0; st == PARE_OK && l < s.n; l++) {
        const char *name = m->nodes[s.node[l]].name;
        if (*ex && pare_name_match(ex, name)) continue;
        int64_t F = s.width[l], drop = (int64_t)floor(level * (double)F + 1e-9);
        if (drop > F - 1) drop = F - 1;
        int64_t keep = F - drop;
        if (align > 1 && keep % align) keep = keep + align - keep % align > F ? F : keep + align - keep % align;
        drop = F - keep;
        if (drop <= 0) continue;
        int64_t *d = malloc(sizeof *d * (size_t)drop);
        st = d ? lowest(s.score[l], F, drop, d) : pare_fail(PARE_ENOMEM, "prune_neurons: out of memory");
        if (st == PARE_OK) st = pare_model_drop_channels(m, pare_model_find_node(m, name), d, drop);
        free(d);
    }
    pare_neuron_scores_free(&s);
    return st;
}

/* The Linear reading attention node a's output (the output projection), or -1. */
static int64_t out_proj(const pare_model *m, int64_t a)
{
    for (int64_t j = 0; j < m->nnodes; j++)
        if (m->nodes[j].op == PARE_OP_LINEAR && m->nodes[j].in[0] == m->nodes[a].out) return j;
    return -1;
}

static pare_status heads_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int taylor = !strcmp(pare_opt_str(o, "criterion"), "taylor");
    if (taylor && !ctx->calib)
        return pare_fail(PARE_EINVAL, "prune_heads: criterion=taylor needs calibration data: give calib=<task>");
    const char *layers = pare_opt_str(o, "layers"), *ex = pare_opt_str(o, "exclude");
    double level = pare_opt_num(o, "level");
    pare_head_scores hs = {0};
    if (taylor)
        PARE_TRY(pare_head_importance(m, ctx->calib, 0, samples(o, ctx->calib), pare_opt_int(o, "calib_batch"), 1, &hs));
    pare_status st = PARE_OK;
    int matched = 0, l = -1;
    for (int64_t i = 0; st == PARE_OK && i < m->nnodes; i++) {
        const pare_node *a = &m->nodes[i];
        if (a->op != PARE_OP_ATTENTION && a->op != PARE_OP_CROSS_ATTENTION) continue;
        l++;
        if (!pare_name_match(layers, a->name) || (*ex && pare_name_match(ex, a->name))) continue;
        matched++;
        int H = a->a.heads;
        int64_t drop = (int64_t)floor(level * H + 1e-9);
        if (drop > H - 1) drop = H - 1;
        if (drop <= 0) continue;
        double *score = malloc(sizeof *score * (size_t)H);
        int64_t *d = malloc(sizeof *d * (size_t)drop);
        int *hd = malloc(sizeof *hd * (size_t)drop);
        if (!score || !d || !hd) st = pare_fail(PARE_ENOMEM, "prune_heads: out of memory");
        if (st == PARE_OK && taylor) {
            for (int h = 0; h < H; h++) score[h] = hs.score[l * hs.hmax + h];
        } else if (st == PARE_OK) {
            int64_t p = out_proj(m, i);
            const pare_param *w = p >= 0 ? &m->params[m->nodes[p].param[0]] : NULL;
            if (!w || w->format != PARE_FMT_F32 || w->shape[1] % H)
                st = pare_fail(PARE_EINVAL, "prune_heads: the output of '%s' is not read by an f32 Linear (the output "
                               "projection the magnitude is taken from)", a->name);
            for (int h = 0; st == PARE_OK && h < H; h++) {
                int64_t K = w->shape[1], D = K / H;
                double s2 = 0;
                for (int64_t r = 0; r < w->shape[0]; r++)
                    for (int64_t c = h * D; c < (h + 1) * D; c++) s2 += (double)w->blob->data[r * K + c] * w->blob->data[r * K + c];
                score[h] = sqrt(s2);
            }
        }
        if (st == PARE_OK) st = lowest(score, H, drop, d);
        for (int64_t k = 0; st == PARE_OK && k < drop; k++) hd[k] = (int)d[k];
        if (st == PARE_OK) st = pare_model_drop_heads(m, i, hd, (int)drop);
        free(score), free(d), free(hd);
    }
    pare_head_scores_free(&hs);
    if (st == PARE_OK && !matched)
        st = pare_fail(PARE_EINVAL, "prune_heads: layers='%s' matches no attention node (names like enc.0.attn, dec.0.xattn)", layers);
    return st;
}

static pare_status layers_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    if (!ctx->calib)
        return pare_fail(PARE_EINVAL, "prune_layers: the loss increase of each layer's removal is measured on data: give calib=<task>");
    pare_layer_scores s;
    PARE_TRY(pare_layer_importance(m, ctx->calib, 0, samples(o, ctx->calib), pare_opt_int(o, "calib_batch"), &s));
    int64_t k = pare_opt_int(o, "k");
    pare_status st = PARE_OK;
    if (k >= s.n)
        st = pare_fail(PARE_EINVAL, "prune_layers: k=%lld would remove every one of the model's %d layers (k < %d)", (long long)k,
                       s.n, s.n);
    int64_t *d = st == PARE_OK ? malloc(sizeof *d * (size_t)k) : NULL;
    if (st == PARE_OK && !d) st = pare_fail(PARE_ENOMEM, "prune_layers: out of memory");
    if (st == PARE_OK) st = lowest(s.score, s.n, k, d);
    for (int64_t i = 0; st == PARE_OK && i < k; i++) {
        char pat[PARE_NAME_MAX + 4];
        snprintf(pat, sizeof pat, "%s.*", s.prefix[d[i]]);
        st = pare_model_remove_nodes(m, pat);
    }
    if (st == PARE_OK) pare_model_refresh_dims(m);
    free(d);
    pare_layer_scores_free(&s);
    return st;
}

const pare_pass pare_pass_prune_neurons = {&neuron_schema, neurons_apply, 0};
const pare_pass pare_pass_prune_heads = {&head_schema, heads_apply, 0};
const pare_pass pare_pass_prune_layers = {&layer_schema, layers_apply, 0};
