/* fuse.c — the `fuse` pass: operator fusion as a pattern-matching rewrite of the graph, one rule per fusion
 * (docs/fusion.md). The unfused graph (model option fused=false) computes attention one op per line; each
 * rule finds its pattern, checks that the intermediate values are read by the pattern alone, and replaces the
 * nodes by fewer ones that compute the same thing in fewer passes over memory:
 *
 *   qkv            Linears reading one input whose outputs feed attention heads  → one Linear, weights
 *                  stacked by rows; the heads read their column blocks in place (node.in_col)
 *   strided        head_split / head_merge (view+transpose+contiguous) → the batched products read q, k, v
 *                  and write the output with strides
 *   softmax        div(√D) + mask_add + softmax → masked_softmax
 *   attention      split + Q·Kᵀ + scale + mask + softmax + P·V + merge (in any of the forms above) → the
 *                  ATTENTION op over one (B·T, 3C) projection (src/attn/full.c); q, k and v from three
 *                  Linears are stacked first (the qkv rule on them)
 *   linear_gelu    Linear + GELU → a Linear with a GELU epilogue (oneDNN's post-op on packed f32 weights)
 *   linear_relu    Linear + ReLU → a Linear with a ReLU epilogue
 *   add_layernorm  residual Add + the LayerNorm that alone reads it → add_layernorm
 *
 * Rules run in that order, each over the whole graph; a rule whose pattern is absent changes nothing. All
 * rules on the unfused graph give the fused builder's graph (qkv + attention: the same nodes, names and
 * weights) plus the Linear and LayerNorm fusions it never had.
 *
 * Edits happen in place on the clone pare_apply gives: nodes are rewritten, rewired and marked dead, and
 * at the end dead nodes are dropped, unused values and parameters compacted away and the graph checked
 * (graph/rewrite.h: pare_model_compact). Weight transforms on stacked Linears (masks, QAT scales) are
 * stacked with them; quantized weights cannot be (quantize after fusing).
 *
 * Deliberately not here: fusing across a value something else also reads (the pre-LN residual stream: an
 * Add whose sum feeds the next block as well as the LayerNorm), dropout in patterns (identity at inference,
 * aliased away by the executor), dequantize + Linear (no graph pattern: every quantized format already
 * dequantizes inside its kernel, docs/fusion.md), bf16.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/arena.h"
#include "compress/pass.h"
#include "graph/ops.h"
#include "graph/rewrite.h"
#include "graph/transform.h"

/* ---- the rules: an append-only enum and its table ---- */

typedef enum fuse_rule {
    RULE_QKV = 0,
    RULE_STRIDED,
    RULE_SOFTMAX,
    RULE_ATTENTION,
    RULE_LINEAR_GELU,
    RULE_LINEAR_RELU,
    RULE_ADD_LAYERNORM,
    RULE_COUNT
} fuse_rule;

typedef struct fuser {
    pare_model *m;
    unsigned char *dead;     /* (nnodes) nodes a rule replaced, dropped at the end */
    const char *layers;      /* a pattern fuses when the name of its anchor node matches this glob */
    int64_t fused[RULE_COUNT];
} fuser;

typedef struct rule_desc {
    const char *name;
    pare_status (*apply)(fuser *f);
} rule_desc;

static pare_status rule_qkv(fuser *f);
static pare_status rule_strided(fuser *f);
static pare_status rule_softmax(fuser *f);
static pare_status rule_attention(fuser *f);
static pare_status rule_linear_gelu(fuser *f);
static pare_status rule_linear_relu(fuser *f);
static pare_status rule_add_layernorm(fuser *f);

static const rule_desc rules[] = {
    [RULE_QKV] = {"qkv", rule_qkv},
    [RULE_STRIDED] = {"strided", rule_strided},
    [RULE_SOFTMAX] = {"softmax", rule_softmax},
    [RULE_ATTENTION] = {"attention", rule_attention},
    [RULE_LINEAR_GELU] = {"linear_gelu", rule_linear_gelu},
    [RULE_LINEAR_RELU] = {"linear_relu", rule_linear_relu},
    [RULE_ADD_LAYERNORM] = {"add_layernorm", rule_add_layernorm},
};
_Static_assert(sizeof rules / sizeof rules[0] == RULE_COUNT, "fuse rules out of date with fuse_rule");

static const pare_opt_spec opts[] = {
    {"rules", PARE_OPT_STRING, "all", 0, 0, NULL,
     "all, or a comma list of: qkv (Q/K/V Linears on one input -> one GEMM, stacked weights), strided (head "
     "split/merge copies -> strided batched products), softmax (div+mask_add+softmax -> masked_softmax), attention "
     "(the whole unfused attention -> the attention op over one QKV projection), linear_gelu, linear_relu (Linear + "
     "activation -> Linear with an epilogue), add_layernorm (residual Add + LayerNorm -> one op)"},
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL,
     "glob over node names: a pattern is fused when its anchor matches (the first Linear for qkv and the Linear "
     "fusions, the products for strided, the softmax, the attention's output node, the LayerNorm)"},
};
static const pare_schema schema = {"fuse",
                                   "operator fusion as a graph rewrite, one rule per fusion (docs/fusion.md): the unfused "
                                   "graph (model fused=false) back to fewer, faster ops",
                                   opts, (int)(sizeof opts / sizeof opts[0])};

/* ---- the graph, as the rules see it ---- */

static pare_node *N(fuser *f, int64_t i) { return &f->m->nodes[i]; }

/* The live nodes reading value v (once per input slot) into who[0..max); the model's logits and loss count as
 * a reader (-1). Returns how many. */
static int readers(const fuser *f, int v, int64_t *who, int max)
{
    const pare_model *m = f->m;
    int n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (f->dead[i]) continue;
        for (int k = 0; k < m->nodes[i].nin; k++)
            if (m->nodes[i].in[k] == v) {
                if (n < max) who[n] = i;
                n++;
            }
    }
    if (v == m->logits || v == m->loss) {
        if (n < max) who[n] = -1;
        n++;
    }
    return n;
}

/* The node that alone reads v, once; -1 if none or several. */
static int64_t sole_reader(const fuser *f, int v)
{
    int64_t w = -1;
    return readers(f, v, &w, 1) == 1 ? w : -1;
}

/* The live node making v if its op is `op`, and (reader >= 0) v is read by `reader` alone; else -1. */
static int64_t made_by(const fuser *f, int v, pare_op_id op, int64_t reader)
{
    int p = f->m->values[v].producer;
    if (p < 0 || f->dead[p] || f->m->nodes[p].op != op) return -1;
    return reader < 0 || sole_reader(f, v) == reader ? p : -1;
}

static int anchor(const fuser *f, int64_t i) { return pare_name_match(f->layers, f->m->nodes[i].name); }

/* Every live node reading `from` reads `to` instead, its column view moved right by col; logits and loss follow. */
static void rewire(fuser *f, int from, int to, int64_t col)
{
    pare_model *m = f->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        pare_node *n = &m->nodes[i];
        for (int k = 0; k < n->nin && !f->dead[i]; k++)
            if (n->in[k] == from) n->in[k] = to, n->in_col[k] += col;
    }
    if (m->logits == from) m->logits = to;
    if (m->loss == from) m->loss = to;
}

/* Node i's output value renamed with it (a node's output is named as the node). */
static void rename_node(fuser *f, int64_t i, const char *name)
{
    pare_node *n = N(f, i);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(f->m->values[n->out].name, sizeof f->m->values[n->out].name, "%s", name);
}

/* Give node i the caches its (new) op and attributes declare: those it has of the same name and shape are kept,
 * others made; the ones it no longer needs are left to compaction. */
static pare_status remake_caches(fuser *f, int64_t i)
{
    pare_model *m = f->m;
    pare_cache_spec cs[PARE_NODE_MAX_CACHE];
    int nc = pare_op_caches(m, N(f, i), cs), old[PARE_NODE_MAX_CACHE], nold = N(f, i)->ncache;
    PARE_TRY(pare_node_check_caches(N(f, i), cs, nc));
    memcpy(old, N(f, i)->cache, sizeof old);
    int made[PARE_NODE_MAX_CACHE];
    for (int k = 0; k < nc; k++) {
        char name[PARE_NAME_MAX + 32];
        snprintf(name, sizeof name, "%s#%s", N(f, i)->name, cs[k].suffix);
        name[PARE_NAME_MAX - 1] = '\0'; /* as pare_model_add_value keeps it */
        made[k] = -1;
        for (int j = 0; j < nold; j++) {
            if (old[j] < 0 || strcmp(m->values[old[j]].name, name) != 0) continue;
            const pare_value *v = &m->values[old[j]];
            if (v->rows == cs[k].rows && v->cols == cs[k].cols && v->dtype == cs[k].dtype) made[k] = old[j];
            else m->values[old[j]].name[0] = '\0'; /* a stale cache of that name: it must not shadow the new one */
            old[j] = -1;
        }
        if (made[k] >= 0) continue;
        made[k] = pare_model_add_value(m, name, PARE_VAL_CACHE, cs[k].rows, cs[k].cols, cs[k].dtype);
        if (made[k] < 0) return PARE_ENOMEM;
        m->values[made[k]].producer = (int)i;
    }
    pare_node *n = N(f, i);
    n->ncache = nc;
    for (int k = 0; k < nc; k++) n->cache[k] = made[k];
    return PARE_OK;
}

/* How many times the live nodes refer to parameter p (operands and transform parameters). */
static int param_uses(const fuser *f, int p)
{
    int uses = 0;
    for (int64_t i = 0; i < f->m->nnodes; i++) {
        const pare_node *n = &f->m->nodes[i];
        if (f->dead[i]) continue;
        for (int k = 0; k < n->nparam; k++) uses += n->param[k] == p;
        for (int t = 0; t < n->ntf; t++)
            for (int a = 0; a < PARE_TF_MAX_AUX; a++) uses += n->tf[t].aux[a] == p;
    }
    return uses;
}

/* Parameter p renamed by its node's new name: "old.x" -> "new.x" when it starts with the node's old name. */
static void rename_param(pare_param *p, const char *old, const char *now)
{
    size_t n = strlen(old);
    if (strncmp(p->name, old, n) != 0 || p->name[n] != '.') return;
    char buf[PARE_NAME_MAX + 64];
    snprintf(buf, sizeof buf, "%s%s", now, p->name + n);
    snprintf(p->name, sizeof p->name, "%.*s", PARE_NAME_MAX - 1, buf);
}

/* Parameter p takes the rows of parameters src[0..n) stacked (each 1-D or (rows, cols) of p's columns). */
static pare_status stack_params(pare_model *m, int p, const int *src, int n)
{
    int64_t rows = 0, cols = m->params[p].ndim > 1 ? m->params[p].shape[1] : 1;
    for (int j = 0; j < n; j++) rows += pare_param_numel(&m->params[src[j]]) / cols;
    pare_blob *b = calloc(1, sizeof *b);
    float *data = b ? pare_alloc(sizeof(float) * (size_t)(rows * cols)) : NULL;
    if (!data) {
        free(b);
        return pare_fail(PARE_ENOMEM, "fuse: out of memory stacking %s", m->params[p].name);
    }
    for (int64_t j = 0, at = 0; j < n; j++) {
        const pare_param *s = &m->params[src[j]];
        memcpy(data + at, s->blob->data, sizeof(float) * (size_t)pare_param_numel(s));
        at += pare_param_numel(s);
    }
    pare_param *d = &m->params[p];
    if (--d->blob->refs == 0) {
        pare_free(d->blob->data);
        free(d->blob);
    }
    b->refs = 1, b->n = (size_t)(rows * cols), b->data = data;
    d->blob = b;
    d->shape[0] = rows;
    return PARE_OK;
}

/* A reader slot that can take a column block of a wider value (node.in_col). */
static int column_reader(const pare_node *n, int k)
{
    return (n->op == PARE_OP_HEAD_SPLIT && k == 0) || (n->op == PARE_OP_BMM_QK && n->a.strided && k < 2) ||
           (n->op == PARE_OP_BMM_PV && n->a.strided && k == 1);
}

/* The name of Linears g stacked: "P.q", "P.k", "P.v" -> "P.qkv" (their last components joined under their common
 * parent); otherwise the first's name with "_stacked". */
static void stacked_name(fuser *f, const int64_t *g, int ng, char *out, size_t n)
{
    const char *first = N(f, g[0])->name, *dot = strrchr(first, '.');
    size_t plen = dot ? (size_t)(dot - first) : 0;
    char tail[PARE_NAME_MAX] = "";
    int same = dot != NULL;
    for (int j = 0; j < ng && same; j++) {
        const char *nm = N(f, g[j])->name, *d = strrchr(nm, '.');
        same = d && (size_t)(d - nm) == plen && !strncmp(nm, first, plen) && strlen(tail) + strlen(d + 1) < sizeof tail;
        if (same) strcat(tail, d + 1);
    }
    char buf[2 * PARE_NAME_MAX + 16];
    if (same && plen + 1 + strlen(tail) < PARE_NAME_MAX) snprintf(buf, sizeof buf, "%.*s.%s", (int)plen, first, tail);
    else snprintf(buf, sizeof buf, "%.*s_stacked", (int)(PARE_NAME_MAX - 9), first);
    snprintf(out, n, "%.*s", (int)n - 1, buf);
}

/* Stack the Linears g[0..ng) (live, all reading one value) into one, in this order of rows: the earliest of
 * them in the graph (the host) takes the stacked weight, bias and transform parameters and the stacked name;
 * the readers of the others read its output at their column offset; the others die. Refuses (naming the
 * layer) what cannot be stacked: quantized weights, mismatched biases or transforms, shared weights. */
static pare_status stack_linears(fuser *f, const int64_t *g, int ng)
{
    pare_model *m = f->m;
    int64_t host = g[0];
    for (int j = 1; j < ng; j++)
        if (g[j] < host) host = g[j];
    const pare_node *h = N(f, host);
    for (int j = 0; j < ng; j++) {
        const pare_node *n = N(f, g[j]);
        const pare_param *w = &m->params[n->param[0]];
        if (w->format != PARE_FMT_F32 || w->q)
            return pare_fail(PARE_EINVAL, "fuse qkv: %s is stored as %s; quantized weights cannot be stacked (fuse the "
                             "f32 model, then quantize the stacked projection)", n->name, pare_format_name(w->format));
        if (n->nparam != h->nparam || w->shape[1] != m->params[h->param[0]].shape[1] || w->trainable != m->params[h->param[0]].trainable)
            return pare_fail(PARE_EINVAL, "fuse qkv: %s and %s differ in their bias or inputs", n->name, h->name);
        for (int k = 0; k < n->nparam; k++)
            if (param_uses(f, n->param[k]) != 1)
                return pare_fail(PARE_EINVAL, "fuse qkv: %s's parameter %s is shared with another layer", n->name,
                                 m->params[n->param[k]].name);
        if (n->ntf != h->ntf)
            return pare_fail(PARE_EINVAL, "fuse qkv: %s and %s carry different weight transforms", n->name, h->name);
        for (int t = 0; t < n->ntf; t++) {
            const pare_transform *a = &n->tf[t], *b = &h->tf[t];
            if (a->kind != b->kind || a->operand != b->operand || a->bits != b->bits || a->learn != b->learn ||
                a->group != b->group || a->per_token != b->per_token)
                return pare_fail(PARE_EINVAL, "fuse qkv: %s and %s carry different weight transforms", n->name, h->name);
            if (a->kind == PARE_TF_HEAD_GATE)
                return pare_fail(PARE_EINVAL, "fuse qkv: %s carries a head gate; remove it (or fuse first)", n->name);
            if (a->operand == PARE_TF_INPUT && !a->per_token && a->aux[0] >= 0) { /* one scale per tensor: the same input,
                                                                                  the same scale */
                const pare_param *sa = &m->params[a->aux[0]], *sb = &m->params[b->aux[0]];
                if (pare_param_numel(sa) != 1 || pare_param_numel(sb) != 1 || sa->blob->data[0] != sb->blob->data[0])
                    return pare_fail(PARE_EINVAL, "fuse qkv: %s and %s fake-quantize their common input with different "
                                     "scales", n->name, h->name);
            }
            for (int x = 0; x < PARE_TF_MAX_AUX; x++)
                if (a->aux[x] >= 0 && param_uses(f, a->aux[x]) != 1)
                    return pare_fail(PARE_EINVAL, "fuse qkv: %s's transform parameter %s is shared", n->name,
                                     m->params[a->aux[x]].name);
        }
    }
    char name[PARE_NAME_MAX], old[PARE_NAME_MAX];
    stacked_name(f, g, ng, name, sizeof name);
    if (strcmp(name, h->name) != 0 && (pare_model_find_node(m, name) >= 0 || pare_model_find_value(m, name) >= 0))
        return pare_fail(PARE_EINVAL, "fuse qkv: the stacked projection would be named %s, which the model already uses", name);
    snprintf(old, sizeof old, "%s", h->name);
    /* the weight, the bias and the weight transforms' parameters, stacked by rows into the host's */
    int src[16];
    if (ng > 16) return pare_fail(PARE_EINVAL, "fuse qkv: %d Linears on one input; at most 16 are stacked", ng);
    for (int k = 0; k < h->nparam; k++) {
        for (int j = 0; j < ng; j++) src[j] = N(f, g[j])->param[k];
        PARE_TRY(stack_params(m, h->param[k], src, ng));
        rename_param(&m->params[h->param[k]], old, name);
    }
    for (int t = 0; t < h->ntf; t++)
        for (int x = 0; x < PARE_TF_MAX_AUX; x++) {
            int p = N(f, host)->tf[t].aux[x];
            if (p < 0) continue;
            if (N(f, host)->tf[t].operand == PARE_TF_WEIGHT) {
                for (int j = 0; j < ng; j++) src[j] = N(f, g[j])->tf[t].aux[x];
                PARE_TRY(stack_params(m, p, src, ng));
            }
            rename_param(&m->params[p], old, name);
        }
    int64_t total = 0, off[16];
    for (int j = 0; j < ng; j++) off[j] = total, total += m->values[N(f, g[j])->out].cols;
    int hout = N(f, host)->out;
    /* the host's own rows may not come first: its readers move too */
    for (int j = 0; j < ng; j++)
        if (g[j] == host && off[j]) {
            rewire(f, hout, hout, off[j]);
        }
    for (int j = 0; j < ng; j++) {
        if (g[j] == host) continue;
        rewire(f, N(f, g[j])->out, hout, off[j]);
        f->dead[g[j]] = 1;
    }
    m->values[hout].cols = total;
    rename_node(f, host, name);
    return PARE_OK;
}

/* ---- qkv ---- */

/* Node i is a Linear whose output only column readers read (the projections of attention heads). */
static int projection(const fuser *f, int64_t i)
{
    const pare_node *n = &f->m->nodes[i];
    if (f->dead[i] || n->op != PARE_OP_LINEAR || n->a.epilogue || n->in_col[0]) return 0;
    int64_t who[8];
    int r = readers(f, n->out, who, 8);
    if (r < 1 || r > 8) return 0;
    for (int k = 0; k < r; k++) {
        if (who[k] < 0) return 0;
        const pare_node *rd = &f->m->nodes[who[k]];
        for (int s = 0; s < rd->nin; s++)
            if (rd->in[s] == n->out && !column_reader(rd, s)) return 0;
    }
    return 1;
}

static pare_status rule_qkv(fuser *f)
{
    pare_model *m = f->m;
    int64_t *g = malloc(sizeof *g * (size_t)(m->nnodes ? m->nnodes : 1));
    if (!g) return pare_fail(PARE_ENOMEM, "fuse: out of memory");
    pare_status st = PARE_OK;
    for (int64_t i = 0; i < m->nnodes && st == PARE_OK; i++) {
        if (!projection(f, i) || !anchor(f, i)) continue;
        int ng = 0;
        for (int64_t j = i; j < m->nnodes; j++)
            if (projection(f, j) && m->nodes[j].in[0] == m->nodes[i].in[0]) g[ng++] = j;
        if (ng < 2) continue;
        st = stack_linears(f, g, ng);
        if (st == PARE_OK) f->fused[RULE_QKV]++;
    }
    free(g);
    return st;
}

/* ---- strided: the batched products read (and P·V writes) through strides, no head split / merge copies ---- */

static pare_status rule_strided(fuser *f)
{
    pare_model *m = f->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (f->dead[i] || N(f, i)->a.strided || !anchor(f, i)) continue;
        if (N(f, i)->op == PARE_OP_BMM_QK) {
            int64_t s0 = made_by(f, N(f, i)->in[0], PARE_OP_HEAD_SPLIT, i), s1 = made_by(f, N(f, i)->in[1], PARE_OP_HEAD_SPLIT, i);
            if (s0 < 0 || s1 < 0 || N(f, s0)->a.heads != N(f, i)->a.heads || N(f, s1)->a.heads != N(f, i)->a.heads) continue;
            pare_node *n = N(f, i);
            n->in[0] = N(f, s0)->in[0], n->in_col[0] = N(f, s0)->in_col[0];
            n->in[1] = N(f, s1)->in[0], n->in_col[1] = N(f, s1)->in_col[0];
            n->a.strided = 1;
            f->dead[s0] = f->dead[s1] = 1;
            f->fused[RULE_STRIDED]++;
        } else if (N(f, i)->op == PARE_OP_BMM_PV) {
            int64_t sv = made_by(f, N(f, i)->in[1], PARE_OP_HEAD_SPLIT, i), mg = sole_reader(f, N(f, i)->out);
            if (sv < 0 || mg < 0 || N(f, mg)->op != PARE_OP_HEAD_MERGE || N(f, mg)->a.heads != N(f, i)->a.heads ||
                N(f, sv)->a.heads != N(f, i)->a.heads)
                continue;
            /* the merge node becomes the product (its output, named as the attention, stays) */
            pare_node *o = N(f, mg);
            int heads = N(f, i)->a.heads;
            o->op = PARE_OP_BMM_PV;
            o->nin = 2;
            o->in[0] = N(f, i)->in[0], o->in_col[0] = 0;
            o->in[1] = N(f, sv)->in[0], o->in_col[1] = N(f, sv)->in_col[0];
            o->a = (pare_node_attrs){.heads = heads, .strided = 1};
            f->dead[i] = f->dead[sv] = 1;
            PARE_TRY(remake_caches(f, mg));
            f->fused[RULE_STRIDED]++;
        }
    }
    return PARE_OK;
}

/* ---- softmax: div + mask_add + softmax -> masked_softmax ---- */

static pare_status rule_softmax(fuser *f)
{
    pare_model *m = f->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (f->dead[i] || N(f, i)->op != PARE_OP_SOFTMAX || !anchor(f, i)) continue;
        int64_t mk = made_by(f, N(f, i)->in[0], PARE_OP_MASK_ADD, i);
        int64_t dv = mk >= 0 ? made_by(f, N(f, mk)->in[0], PARE_OP_DIV, mk) : -1;
        if (dv < 0) continue;
        pare_node *n = N(f, i);
        n->op = PARE_OP_MASKED_SOFTMAX;
        n->nin = 2;
        n->in[0] = N(f, dv)->in[0], n->in[1] = N(f, mk)->in[1];
        n->a = (pare_node_attrs){.scale = N(f, dv)->a.scale, .causal = N(f, mk)->a.causal};
        f->dead[mk] = f->dead[dv] = 1;
        PARE_TRY(remake_caches(f, i));
        f->fused[RULE_SOFTMAX]++;
    }
    return PARE_OK;
}

/* ---- attention: the whole pattern, in whichever of the forms above, -> the ATTENTION op ---- */

/* The (B·T, ≥C) value input k of product node p reads, and its column: through a head split or in place. Records
 * the split in *split (-1 for none). Returns the value, -1 if neither. */
static int head_source(const fuser *f, int64_t p, int k, int64_t *col, int64_t *split)
{
    const pare_node *n = &f->m->nodes[p];
    *split = -1;
    if (n->a.strided) {
        *col = n->in_col[k];
        return n->in[k];
    }
    int64_t s = made_by(f, n->in[k], PARE_OP_HEAD_SPLIT, p);
    if (s < 0 || f->m->nodes[s].a.heads != n->a.heads) return -1;
    *split = s;
    *col = f->m->nodes[s].in_col[0];
    return f->m->nodes[s].in[0];
}

static pare_status rule_attention(fuser *f)
{
    pare_model *m = f->m;
    for (int64_t pv = 0; pv < m->nnodes; pv++) {
        if (f->dead[pv] || N(f, pv)->op != PARE_OP_BMM_PV) continue;
        const int H = N(f, pv)->a.heads;
        int64_t end = pv, sv = -1, sq = -1, sk = -1, qk = -1, sm = -1, mk = -1, dv = -1, vcol = 0, qcol = 0, kcol = 0;
        if (!N(f, pv)->a.strided) { /* its output merged by a head_merge */
            end = sole_reader(f, N(f, pv)->out);
            if (end < 0 || N(f, end)->op != PARE_OP_HEAD_MERGE || N(f, end)->a.heads != H) continue;
        }
        if (!anchor(f, end)) continue;
        int V = head_source(f, pv, 1, &vcol, &sv);
        /* the probabilities: a masked softmax, or softmax(mask_add(div(scores))) */
        int P = N(f, pv)->in[0], lens = -1, causal = 0;
        float scale = 0;
        if ((sm = made_by(f, P, PARE_OP_MASKED_SOFTMAX, pv)) >= 0) {
            qk = made_by(f, N(f, sm)->in[0], PARE_OP_BMM_QK, sm);
            scale = N(f, sm)->a.scale, causal = N(f, sm)->a.causal, lens = N(f, sm)->in[1];
        } else if ((sm = made_by(f, P, PARE_OP_SOFTMAX, pv)) >= 0) {
            mk = made_by(f, N(f, sm)->in[0], PARE_OP_MASK_ADD, sm);
            dv = mk >= 0 ? made_by(f, N(f, mk)->in[0], PARE_OP_DIV, mk) : -1;
            qk = dv >= 0 ? made_by(f, N(f, dv)->in[0], PARE_OP_BMM_QK, dv) : -1;
            if (qk >= 0) scale = N(f, dv)->a.scale, causal = N(f, mk)->a.causal, lens = N(f, mk)->in[1];
        }
        if (V < 0 || qk < 0 || N(f, qk)->a.heads != H) continue;
        const int64_t D = N(f, qk)->a.head_dim, C = (int64_t)H * D;
        /* the attention op scales by 1/√D: another divisor is another function */
        if (m->values[N(f, end)->out].cols != C || !(fabsf(scale - sqrtf((float)D)) <= 1e-6f * sqrtf((float)D))) continue;
        int Q = head_source(f, qk, 0, &qcol, &sq), K = head_source(f, qk, 1, &kcol, &sk);
        if (Q < 0 || K < 0 || (sq >= 0 && sq == sk)) continue;
        int X = -1;
        if (Q == K && K == V && qcol == 0 && kcol == C && vcol == 2 * C && m->values[Q].cols == 3 * C) X = Q;
        else if (Q != K && K != V && Q != V && !qcol && !kcol && !vcol) {
            /* three projections read by this attention alone: stack them first (the qkv rule on them) */
            int64_t lin[3] = {made_by(f, Q, PARE_OP_LINEAR, sq >= 0 ? sq : qk), made_by(f, K, PARE_OP_LINEAR, sk >= 0 ? sk : qk),
                              made_by(f, V, PARE_OP_LINEAR, sv >= 0 ? sv : pv)};
            int fits = 1;
            for (int j = 0; j < 3 && fits; j++)
                fits = lin[j] >= 0 && m->values[m->nodes[lin[j]].out].cols == C && !m->nodes[lin[j]].a.epilogue &&
                       !m->nodes[lin[j]].in_col[0] && m->nodes[lin[j]].in[0] == m->nodes[lin[0]].in[0];
            if (!fits) continue;
            PARE_TRY(stack_linears(f, lin, 3));
            f->fused[RULE_QKV]++;
            int64_t host = lin[0] < lin[1] ? (lin[0] < lin[2] ? lin[0] : lin[2]) : (lin[1] < lin[2] ? lin[1] : lin[2]);
            X = N(f, host)->out;
        }
        if (X < 0) continue;
        /* the output node becomes the attention (its name and output stay: "<block>.attn") */
        int64_t gone[] = {pv, sv, sq, sk, qk, sm, mk, dv};
        for (size_t j = 0; j < sizeof gone / sizeof gone[0]; j++)
            if (gone[j] >= 0 && gone[j] != end) f->dead[gone[j]] = 1;
        pare_node *e = N(f, end);
        e->op = PARE_OP_ATTENTION;
        e->nin = 2, e->nparam = 0;
        e->in[0] = X, e->in[1] = lens;
        memset(e->in_col, 0, sizeof e->in_col);
        e->a = (pare_node_attrs){.heads = H, .causal = causal, .attn = pare_attn_config_retain(pare_attn_config_default())};
        PARE_TRY(remake_caches(f, end));
        f->fused[RULE_ATTENTION]++;
    }
    return PARE_OK;
}

/* ---- Linear + activation -> a Linear with an epilogue ---- */

static pare_status linear_act(fuser *f, pare_op_id act, fuse_rule r)
{
    pare_model *m = f->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (f->dead[i] || N(f, i)->op != act) continue;
        int64_t l = made_by(f, N(f, i)->in[0], PARE_OP_LINEAR, i);
        if (l < 0 || N(f, l)->a.epilogue || !anchor(f, l)) continue;
        N(f, l)->a.epilogue = act == PARE_OP_RELU ? PARE_EPILOGUE_RELU
                              : N(f, i)->a.gelu_erf ? PARE_EPILOGUE_GELU_ERF
                                                    : PARE_EPILOGUE_GELU;
        f->dead[i] = 1;
        rewire(f, N(f, i)->out, N(f, l)->out, 0);
        PARE_TRY(remake_caches(f, l)); /* the pre-activation, kept for training */
        f->fused[r]++;
    }
    return PARE_OK;
}
static pare_status rule_linear_gelu(fuser *f) { return linear_act(f, PARE_OP_GELU, RULE_LINEAR_GELU); }
static pare_status rule_linear_relu(fuser *f) { return linear_act(f, PARE_OP_RELU, RULE_LINEAR_RELU); }

/* ---- residual Add + LayerNorm -> add_layernorm ---- */

static pare_status rule_add_layernorm(fuser *f)
{
    pare_model *m = f->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (f->dead[i] || N(f, i)->op != PARE_OP_LAYERNORM || !anchor(f, i)) continue;
        int64_t ad = made_by(f, N(f, i)->in[0], PARE_OP_ADD, i);
        if (ad < 0) continue; /* the pre-LN residual stream: the sum also feeds the next block (not fused) */
        pare_node *n = N(f, i);
        n->op = PARE_OP_ADD_LAYERNORM;
        n->nin = 2;
        n->in[0] = N(f, ad)->in[0], n->in[1] = N(f, ad)->in[1];
        f->dead[ad] = 1;
        PARE_TRY(remake_caches(f, i)); /* mean and rstd, as the LayerNorm's */
        f->fused[RULE_ADD_LAYERNORM]++;
    }
    return PARE_OK;
}

/* ---- the pass ---- */

/* Drop the dead nodes and what only they used, and check the graph. */
static pare_status finish(fuser *f)
{
    pare_model *m = f->m;
    for (int64_t i = 0; i < m->nnodes; i++) /* a live node reading a value of a dead one is a rule's bug */
        for (int k = 0; k < m->nodes[i].nin && !f->dead[i]; k++) {
            int p = m->values[m->nodes[i].in[k]].producer;
            if (p >= 0 && f->dead[p])
                return pare_fail(PARE_EINTERNAL, "fuse: %s still reads %s, whose node was fused away", m->nodes[i].name,
                                 m->values[m->nodes[i].in[k]].name);
        }
    int64_t kept = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        pare_node *n = &m->nodes[i];
        if (f->dead[i]) {
            m->values[n->out].producer = -1;
            for (int k = 0; k < n->ncache; k++) m->values[n->cache[k]].producer = -1;
            pare_attn_config_release(n->a.attn);
            continue;
        }
        m->nodes[kept++] = *n;
    }
    m->nnodes = kept;
    pare_model_refresh_keep(m);
    return pare_model_compact(m); /* remaps producers, drops unused values and parameters, checks the graph */
}

/* rules text -> which[RULE_COUNT] */
static pare_status parse_rules(const char *text, int *which)
{
    memset(which, 0, sizeof(int) * RULE_COUNT);
    if (!strcmp(text, "all")) {
        for (int r = 0; r < RULE_COUNT; r++) which[r] = 1;
        return PARE_OK;
    }
    int any = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, ",");
        while (n && *p == ' ') p++, n--;
        size_t e = n;
        while (e && p[e - 1] == ' ') e--;
        int found = -1;
        for (int r = 0; r < RULE_COUNT; r++)
            if (strlen(rules[r].name) == e && !strncmp(rules[r].name, p, e)) found = r;
        if (found < 0) {
            char list[256] = "";
            for (int r = 0; r < RULE_COUNT; r++) strcat(strcat(list, r ? ", " : ""), rules[r].name);
            return pare_fail(PARE_EINVAL, "fuse: rules: '%.*s' is not a rule (valid: all, or a comma list of %s)", (int)e, p,
                             list);
        }
        which[found] = any = 1;
        p += n + (p[n] == ',');
    }
    if (!any) return pare_fail(PARE_EINVAL, "fuse: rules is empty (give all, or a comma list of rule names)");
    return PARE_OK;
}

static pare_status apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int which[RULE_COUNT];
    PARE_TRY(parse_rules(pare_opt_str(o, "rules"), which));
    fuser f = {.m = m, .layers = pare_opt_str(o, "layers")};
    int matched = 0;
    for (int64_t i = 0; i < m->nnodes && !matched; i++) matched = pare_name_match(f.layers, m->nodes[i].name);
    if (!matched) return pare_fail(PARE_EINVAL, "fuse: layers='%s' matches no node (names look like enc.0.attn, enc.0.ffn.up)", f.layers);
    f.dead = calloc((size_t)(m->nnodes ? m->nnodes : 1), 1);
    if (!f.dead) return pare_fail(PARE_ENOMEM, "fuse: out of memory");
    pare_status st = PARE_OK;
    for (int r = 0; r < RULE_COUNT && st == PARE_OK; r++)
        if (which[r]) st = rules[r].apply(&f);
    if (st == PARE_OK) st = finish(&f);
    free(f.dead);
    return st;
}

const pare_pass pare_pass_fuse = {&schema, apply, 0};
