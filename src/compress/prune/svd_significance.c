/* svd_significance.c — the "svd_prune" pass: seed 004's post-training pruning by SVD significance
 * ("Efficient Transformers: post-training pruning and quantization...", section 4), as written there:
 *
 *   1. SVD of a layer's weight matrix A ≈ U Σ Vᵀ;
 *   2. keep the top k singular values: A_k = U_k Σ_k V_kᵀ;
 *   3. the reconstruction error of each component, Error_i = ||A_i − A_{k,i}||;
 *   4. prune the components of lower significance, keeping what remains dense (the paper's masks
 *      "deactivate components" of MHSA and PFFN; pare removes them physically, which is the same
 *      function with a smaller, faster model); fine-tuning afterwards is the caller's (m:train).
 *
 * Components: FFN neurons (the rows of an up projection: its weight row, bias entry and the down
 * projection's column go together) or attention heads (the q, k and v rows of a head in the qkv
 * projection, and the output projection's columns). The paper does not say which end of the error
 * ranking is "lower significance"; pare's default prunes the components with the smallest error — those
 * the rank-k structure already explains, the redundant ones — and `prune = "high_error"` takes the other
 * reading. `rank_ratio` sets k = max(1, round(rank_ratio · min(N, K))); `level` the share of each layer's
 * components removed (every layer keeps at least one).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lowrank/svd.h"
#include "compress/pass.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "svd_significance.h"

static const pare_opt_spec svd_prune_opts[] = {
    {"component", PARE_OPT_ENUM, "neurons", 0, 0, "neurons|heads", "what is removed: FFN neurons or attention heads"},
    {"layers", PARE_OPT_STRING, "", 0, 0, NULL, "glob over the Linear layers scored (\"\": *.ffn.up for neurons, *.attn.qkv for heads)"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of layers to leave as they are (\"\": none)"},
    {"level", PARE_OPT_FLOAT, "0.14", 0, 0.99, NULL, "share of each layer's components removed"},
    {"rank_ratio", PARE_OPT_FLOAT, "0.25", 0.001, 1, NULL, "k = rank_ratio · min(N, K) singular values kept in A_k"},
    {"prune", PARE_OPT_ENUM, "low_error", 0, 0, "low_error|high_error", "which end of the error ranking is removed"},
};
static const pare_schema svd_prune_schema = {
    "svd_prune", "post-training pruning by SVD significance (seed 004): components ranked by ||A_i - A_k,i||, removed physically",
    svd_prune_opts, (int)(sizeof svd_prune_opts / sizeof svd_prune_opts[0])};

pare_status pare_svd_component_errors(const float *A, int64_t N, int64_t K, int64_t k, int64_t rows_per, int64_t stride,
                                      int64_t groups, double *err)
{
    double *u, *s, *vt;
    PARE_TRY(pare_svd(A, N, K, &u, &s, &vt));
    int64_t R = N < K ? N : K;
    if (k > R) k = R;
    for (int64_t g = 0; g < groups; g++) err[g] = 0;
    /* A_k row i = Σ_{j<k} u[i,j] s[j] vt[j,:] */
    double *row = malloc(sizeof *row * (size_t)K);
    if (!row) {
        free(u), free(s), free(vt);
        return pare_fail(PARE_ENOMEM, "svd_prune: out of memory");
    }
    for (int64_t i = 0; i < N; i++) {
        int64_t g = (i % stride) / rows_per; /* component of row i (heads: rows s·C + h·D + j) */
        for (int64_t c = 0; c < K; c++) row[c] = A[i * K + c];
        for (int64_t j = 0; j < k; j++) {
            double a = u[i * R + j] * s[j];
            for (int64_t c = 0; c < K; c++) row[c] -= a * vt[j * K + c];
        }
        double e = 0;
        for (int64_t c = 0; c < K; c++) e += row[c] * row[c];
        if (g < groups) err[g] += e;
    }
    for (int64_t g = 0; g < groups; g++) err[g] = sqrt(err[g]);
    free(row), free(u), free(s), free(vt);
    return PARE_OK;
}

/* The attention node that reads Linear `lin`'s output (its qkv), or -1. */
static int64_t attention_of(const pare_model *m, int64_t lin)
{
    int v = m->nodes[lin].out;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION && m->nodes[i].in[0] == v) return i;
    return -1;
}

typedef struct ranked { double e; int64_t i; } ranked;
static int by_error(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->e < y->e ? -1 : x->e > y->e ? 1 : (x->i > y->i) - (x->i < y->i);
}

static pare_status prune_layer(pare_model *m, const char *name, int heads, double level, double rank_ratio, int high)
{
    int64_t node = pare_model_find_node(m, name); /* by name: earlier removals renumber nothing, but be safe */
    const pare_param *w = &m->params[m->nodes[node].param[0]];
    if (w->format != PARE_FMT_F32 || m->nodes[node].ntf)
        return pare_fail(PARE_EINVAL, "svd_prune: %s is %s%s; score the dense f32 model, then quantize", name,
                         w->format != PARE_FMT_F32 ? "stored as " : "under a weight transform",
                         w->format != PARE_FMT_F32 ? pare_format_name(w->format) : "");
    int64_t N = w->shape[0], K = w->shape[1], R = N < K ? N : K;
    int64_t k = (int64_t)llround(rank_ratio * (double)R);
    if (k < 1) k = 1;
    int64_t att = -1, groups = N, rows_per = 1, stride = N;
    if (heads) {
        att = attention_of(m, node);
        if (att < 0)
            return pare_fail(PARE_EINVAL, "svd_prune: %s does not feed an attention node (component=heads scores a qkv "
                             "projection: layers=*.attn.qkv)", name);
        groups = m->nodes[att].a.heads, stride = N / 3, rows_per = stride / groups;
    }
    double *err = malloc(sizeof *err * (size_t)groups);
    ranked *r = malloc(sizeof *r * (size_t)groups);
    pare_status st = err && r ? pare_svd_component_errors(w->blob->data, N, K, k, rows_per, stride, groups, err) : PARE_ENOMEM;
    int64_t drop = (int64_t)floor(level * (double)groups + 1e-9);
    if (drop > groups - 1) drop = groups - 1;
    if (st == PARE_OK && drop > 0) {
        for (int64_t g = 0; g < groups; g++) r[g].e = high ? -err[g] : err[g], r[g].i = g;
        qsort(r, (size_t)groups, sizeof *r, by_error);
        if (heads) {
            int *h = malloc(sizeof *h * (size_t)drop);
            if (!h) st = PARE_ENOMEM;
            for (int64_t j = 0; h && j < drop; j++) h[j] = (int)r[j].i;
            if (h) st = pare_model_drop_heads(m, att, h, (int)drop);
            free(h);
        } else {
            int64_t *d = malloc(sizeof *d * (size_t)drop);
            if (!d) st = PARE_ENOMEM;
            for (int64_t j = 0; d && j < drop; j++) d[j] = r[j].i;
            if (d) st = pare_model_drop_channels(m, node, d, drop);
            free(d);
        }
    }
    free(err), free(r);
    return st;
}

static pare_status svd_prune_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int heads = !strcmp(pare_opt_str(o, "component"), "heads");
    const char *layers = pare_opt_str(o, "layers");
    if (!*layers) layers = heads ? "*.attn.qkv" : "*.ffn.up";
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n;
    if (!idx) return PARE_ENOMEM;
    pare_status st = pare_select_linears(m, layers, pare_opt_str(o, "exclude"), idx, &n);
    /* names first: each removal rebuilds the graph */
    char (*names)[PARE_NAME_MAX] = st == PARE_OK ? malloc(sizeof *names * (size_t)(n ? n : 1)) : NULL;
    if (st == PARE_OK && !names) st = PARE_ENOMEM;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) memcpy(names[i], m->nodes[idx[i]].name, PARE_NAME_MAX);
    free(idx);
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        st = prune_layer(m, names[i], heads, pare_opt_num(o, "level"), pare_opt_num(o, "rank_ratio"),
                         !strcmp(pare_opt_str(o, "prune"), "high_error"));
    free(names);
    return st;
}

const pare_pass pare_pass_svd_prune = {&svd_prune_schema, svd_prune_apply, 0};
