/* rewrite.c — graph edits (insert, rewire, remove, resize) and the whole-graph check.
 *
 * Every public edit works on a clone of the model and moves the clone's graph into the model only when
 * the edit and pare_model_check succeeded, so a failed edit leaves the model exactly as it was. Clones
 * share weight blobs, so this costs the node, value and parameter arrays, not the weights; the price
 * is that an edit drops the training state (gradients and optimizer moments are remade by the next
 * training run, as for any clone). */
#include "rewrite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/arena.h"
#include "ops.h"
#include "transform.h"

/* ---- transactions ---- */

/* Move c's graph into m and free what m had (c's struct is freed, its contents now belong to m). */
static void take(pare_model *m, pare_model *c)
{
    for (int64_t i = 0; i < m->nparams; i++) pare_param_release(&m->params[i]);
    for (int64_t i = 0; i < m->nnodes; i++) pare_attn_config_release(m->nodes[i].a.attn); /* c holds its own references */
    free(m->values);
    free(m->nodes);
    free(m->params);
    *m = *c;
    free(c);
}

/* End of an edit on clone c: check it, then commit into m or drop it. */
static pare_status finish(pare_model *m, pare_model *c, pare_status st)
{
    if (st == PARE_OK) st = pare_model_check(c);
    if (st != PARE_OK) {
        pare_model_free(c);
        return st;
    }
    pare_model_refresh_dims(c);
    take(m, c);
    return PARE_OK;
}

static int node_reads(const pare_node *n, int v)
{
    for (int i = 0; i < n->nin; i++)
        if (n->in[i] == v) return 1;
    return 0;
}

static int is_model_input(const pare_value *v)
{
    return v->kind == PARE_VAL_TOKENS || v->kind == PARE_VAL_LENGTHS || v->kind == PARE_VAL_LABELS || v->kind == PARE_VAL_TYPES ||
           v->kind == PARE_VAL_TARGET || v->kind == PARE_VAL_SRC_TOKENS || v->kind == PARE_VAL_SRC_LENGTHS;
}

/* ---- insert / rewire ---- */

int pare_model_insert_node(pare_model *m, int64_t at, pare_op_id op, const char *name, const int *in, int nin,
                           const int *params, int nparam, pare_rows rows, int64_t cols, pare_node_attrs attrs)
{
    if (at < 0 || at > m->nnodes) {
        pare_fail(PARE_EINVAL, "inserting node '%s': position %lld is outside 0..%lld", name, (long long)at,
                  (long long)m->nnodes);
        return -1;
    }
    if ((unsigned)op >= PARE_OP_COUNT || nin < 0 || nin > PARE_NODE_MAX_IN || nparam < 0 || nparam > PARE_NODE_MAX_PARAMS) {
        pare_fail(PARE_EINVAL, "inserting node '%s': bad op or input/parameter count", name);
        return -1;
    }
    if (pare_model_find_node(m, name) >= 0 || pare_model_find_value(m, name) >= 0) {
        pare_fail(PARE_EINVAL, "inserting node '%s': the model already has a node or value of that name", name);
        return -1;
    }
    for (int i = 0; i < nin; i++) {
        if (in[i] < 0 || in[i] >= m->nvalues) {
            pare_fail(PARE_EINVAL, "inserting node '%s': input %d is not a value of the model", name, i);
            return -1;
        }
        int p = m->values[in[i]].producer;
        if (p >= at) {
            pare_fail(PARE_EINVAL, "inserting node '%s' at %lld: its input '%s' is made later, by node %d", name,
                      (long long)at, m->values[in[i]].name, p);
            return -1;
        }
    }
    for (int i = 0; i < nparam; i++)
        if (params[i] < 0 || params[i] >= m->nparams) {
            pare_fail(PARE_EINVAL, "inserting node '%s': parameter %d is not a parameter of the model", name, i);
            return -1;
        }
    pare_model *c = pare_model_clone(m);
    if (!c) return -1;
    int64_t first_new = c->nvalues;
    int out = pare_model_add_node(c, op, name, in, nin, params, nparam, rows, cols, attrs);
    if (out < 0) {
        pare_model_free(c);
        return -1;
    }
    /* move the appended node to `at`; the values it made keep their ids (values are not ordered) */
    pare_node nd = c->nodes[c->nnodes - 1];
    memmove(&c->nodes[at + 1], &c->nodes[at], sizeof *c->nodes * (size_t)(c->nnodes - 1 - at));
    c->nodes[at] = nd;
    for (int64_t v = 0; v < c->nvalues; v++) {
        if (v >= first_new) c->values[v].producer = (int)at;
        else if (c->values[v].producer >= at) c->values[v].producer++;
    }
    if (finish(m, c, PARE_OK) != PARE_OK) return -1;
    return out;
}

/* Rewire inside model c (no transaction); see pare_model_replace_uses. */
static int replace_uses(pare_model *c, int from, int to)
{
    const pare_value *a = &c->values[from], *b = &c->values[to];
    if (a->rows != b->rows || a->cols != b->cols || a->dtype != b->dtype) {
        pare_fail(PARE_EINVAL, "replacing '%s' by '%s': shapes differ (%lld vs %lld columns, or other rows or dtype)", a->name,
                  b->name, (long long)a->cols, (long long)b->cols);
        return -1;
    }
    int count = 0;
    for (int64_t i = 0; i < c->nnodes; i++) {
        pare_node *n = &c->nodes[i];
        if (!node_reads(n, from)) continue;
        if (b->producer >= i) {
            pare_fail(PARE_EINVAL, "replacing '%s' by '%s': node '%s' reads it before '%s' is made", a->name, b->name,
                      n->name, b->name);
            return -1;
        }
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == from) n->in[k] = to, count++;
    }
    if (c->logits == from) c->logits = to, count++;
    if (c->loss == from) c->loss = to, count++;
    return count;
}

int pare_model_replace_uses(pare_model *m, int from, int to)
{
    if (from < 0 || from >= m->nvalues || to < 0 || to >= m->nvalues) {
        pare_fail(PARE_EINVAL, "replacing a value: ids %d, %d are not values of the model (0..%lld)", from, to,
                  (long long)m->nvalues - 1);
        return -1;
    }
    pare_model *c = pare_model_clone(m);
    if (!c) return -1;
    int n = replace_uses(c, from, to);
    if (finish(m, c, n < 0 ? PARE_EINVAL : PARE_OK) != PARE_OK) return -1;
    return n;
}

/* ---- compaction ---- */

/* Indices of parameters a node refers to besides n->param: its weight transforms' masks and scales. */
static int node_extra_params(pare_node *n, int **out)
{
    int k = 0;
    for (int t = 0; t < n->ntf; t++)
        for (int a = 0; a < PARE_TF_MAX_AUX; a++)
            if (n->tf[t].aux[a] >= 0) out[k++] = &n->tf[t].aux[a];
    return k;
}

static pare_status compact(pare_model *c)
{
    int64_t nv = c->nvalues, np = c->nparams;
    int *vmap = malloc(sizeof *vmap * (size_t)(nv ? nv : 1)), *pmap = malloc(sizeof *pmap * (size_t)(np ? np : 1));
    if (!vmap || !pmap) {
        free(vmap), free(pmap);
        return pare_fail(PARE_ENOMEM, "out of memory compacting a model");
    }
    for (int64_t v = 0; v < nv; v++) vmap[v] = 0;
    for (int64_t p = 0; p < np; p++) pmap[p] = 0;
    if (c->tokens >= 0) vmap[c->tokens] = 1;
    if (c->lengths >= 0) vmap[c->lengths] = 1;
    if (c->labels >= 0) vmap[c->labels] = 1;
    if (c->types >= 0) vmap[c->types] = 1;
    if (c->src_tokens >= 0) vmap[c->src_tokens] = 1;
    if (c->src_lengths >= 0) vmap[c->src_lengths] = 1;
    for (int64_t i = 0; i < c->nnodes; i++) {
        pare_node *n = &c->nodes[i];
        for (int k = 0; k < n->nin; k++) vmap[n->in[k]] = 1;
        for (int k = 0; k < n->ncache; k++) vmap[n->cache[k]] = 1;
        vmap[n->out] = 1;
        for (int k = 0; k < n->nparam; k++) pmap[n->param[k]] = 1;
        int *extra[PARE_NODE_MAX_TF * PARE_TF_MAX_AUX];
        for (int k = 0, ne = node_extra_params(n, extra); k < ne; k++) pmap[*extra[k]] = 1;
    }
    int64_t kv = 0, kp = 0;
    for (int64_t v = 0; v < nv; v++) {
        if (!vmap[v]) {
            vmap[v] = -1;
            continue;
        }
        c->values[kv] = c->values[v];
        vmap[v] = (int)kv++;
    }
    for (int64_t p = 0; p < np; p++) {
        if (!pmap[p]) {
            pare_param_release(&c->params[p]);
            pmap[p] = -1;
            continue;
        }
        c->params[kp] = c->params[p];
        pmap[p] = (int)kp++;
    }
    c->nvalues = kv, c->nparams = kp;
    for (int64_t i = 0; i < c->nnodes; i++) {
        pare_node *n = &c->nodes[i];
        for (int k = 0; k < n->nin; k++) n->in[k] = vmap[n->in[k]];
        for (int k = 0; k < n->ncache; k++) n->cache[k] = vmap[n->cache[k]];
        n->out = vmap[n->out];
        for (int k = 0; k < n->nparam; k++) n->param[k] = pmap[n->param[k]];
        int *extra[PARE_NODE_MAX_TF * PARE_TF_MAX_AUX];
        for (int k = 0, ne = node_extra_params(n, extra); k < ne; k++) *extra[k] = pmap[*extra[k]];
        c->values[n->out].producer = (int)i;
        for (int k = 0; k < n->ncache; k++) c->values[n->cache[k]].producer = (int)i;
    }
    int *ids[] = {&c->tokens, &c->lengths, &c->labels, &c->logits, &c->loss, &c->types, &c->src_tokens, &c->src_lengths};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        if (*ids[k] >= 0) *ids[k] = vmap[*ids[k]];
    free(vmap), free(pmap);
    return PARE_OK;
}

pare_status pare_model_compact(pare_model *m)
{
    pare_model *c = pare_model_clone(m);
    if (!c) return PARE_ENOMEM;
    return finish(m, c, compact(c));
}

/* ---- removal ---- */

/* Does name match one of the comma-separated globs of pattern? */
static int match_any(const char *pattern, const char *name)
{
    char one[256];
    for (const char *p = pattern; *p;) {
        size_t n = strcspn(p, ",");
        if (n < sizeof one) {
            memcpy(one, p, n);
            one[n] = '\0';
            if (pare_name_match(one, name)) return 1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

pare_status pare_model_remove_nodes(pare_model *m, const char *pattern)
{
    char *del = calloc((size_t)(m->nnodes ? m->nnodes : 1), 1);
    if (!del) return pare_fail(PARE_ENOMEM, "out of memory removing nodes");
    int64_t ndel = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (match_any(pattern, m->nodes[i].name)) del[i] = 1, ndel++;
    if (!ndel) {
        free(del);
        return pare_fail(PARE_EINVAL, "removing nodes '%s': no node matches (node names look like enc.3.attn, enc.3.ffn.up)",
                         pattern);
    }
    /* the values the removed nodes take from the rest, and give to it */
    int in = -1, out = -1, nin = 0, nout = 0;
    const char *in_reader = "", *out_reader = "";
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            const pare_value *v = &m->values[n->in[k]];
            int from_removed = v->producer >= 0 && del[v->producer];
            if (del[i] && !from_removed && !is_model_input(v) && n->in[k] != in) in = n->in[k], nin++, in_reader = n->name;
            if (!del[i] && from_removed && n->in[k] != out) out = n->in[k], nout++, out_reader = n->name;
        }
    }
    pare_status st = PARE_OK;
    int ids[] = {m->logits, m->loss};
    for (int k = 0; k < 2; k++)
        if (ids[k] >= 0 && m->values[ids[k]].producer >= 0 && del[m->values[ids[k]].producer])
            st = pare_fail(PARE_EINVAL, "removing nodes '%s': they make the model's %s ('%s')", pattern,
                           k ? "loss" : "logits", m->values[ids[k]].name);
    if (st == PARE_OK && nout > 1)
        st = pare_fail(PARE_EINVAL, "removing nodes '%s': the rest of the graph reads more than one of their values "
                       "('%s' read by '%s', and others); remove a chain with one output", pattern, m->values[out].name,
                       out_reader);
    if (st == PARE_OK && nout == 1 && nin != 1)
        st = pare_fail(PARE_EINVAL, "removing nodes '%s': they read %d values from the rest of the graph (the last '%s' "
                       "by '%s'); only a chain from one value can be bypassed", pattern, nin,
                       in >= 0 ? m->values[in].name : "-", in_reader);
    if (st != PARE_OK) {
        free(del);
        return st;
    }
    pare_model *c = pare_model_clone(m);
    if (!c) {
        free(del);
        return PARE_ENOMEM;
    }
    if (nout == 1 && replace_uses(c, out, in) < 0) st = PARE_EINVAL;
    if (st == PARE_OK) {
        int64_t k = 0;
        for (int64_t i = 0; i < c->nnodes; i++)
            if (!del[i]) c->nodes[k++] = c->nodes[i];
        c->nnodes = k;
        /* values made by removed nodes lose their producer; compact drops them */
        for (int64_t v = 0; v < c->nvalues; v++)
            if (c->values[v].producer >= 0 && del[c->values[v].producer]) c->values[v].producer = -1;
        st = compact(c);
    }
    free(del);
    return finish(m, c, st);
}

/* ---- resizing ---- */

/* A new f32 blob holding the rows (dim 0) or columns (dim 1) keep[] of param p; p takes it. */
static pare_status slice_param(pare_param *p, int dim, const int64_t *keep, int64_t nkeep)
{
    if (p->format != PARE_FMT_F32 || p->q)
        return pare_fail(PARE_EINVAL, "resizing '%s': it is stored as %s; resize the f32 model, then quantize it",
                         p->name, pare_format_name(p->format));
    int64_t R = p->shape[0], Cc = p->ndim > 1 ? p->shape[1] : 1;
    int64_t nr = dim == 0 ? nkeep : R, nc = dim == 1 ? nkeep : Cc;
    pare_blob *b = calloc(1, sizeof *b);
    if (!b) return pare_fail(PARE_ENOMEM, "out of memory resizing %s", p->name);
    b->refs = 1;
    b->n = (size_t)(nr * nc);
    b->data = pare_alloc((b->n ? b->n : 1) * sizeof(float));
    if (!b->data) {
        free(b);
        return pare_fail(PARE_ENOMEM, "out of memory resizing %s", p->name);
    }
    const float *src = p->blob->data;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t k = 0; k < nc; k++) {
            int64_t sr = dim == 0 ? keep[r] : r, sk = dim == 1 ? keep[k] : k;
            b->data[r * nc + k] = src[sr * Cc + sk];
        }
    if (--p->blob->refs == 0) {
        pare_free(p->blob->data);
        free(p->blob);
    }
    p->blob = b;
    p->shape[0] = nr;
    if (p->ndim > 1) p->shape[1] = nc;
    return PARE_OK;
}

static pare_status slice_value(pare_model *c, int v, const int64_t *keep, int64_t nkeep, int depth);

/* Attention node n reads a qkv value resized to keep[]: keep must be whole heads, the same for q, k and v. */
static pare_status slice_attention(pare_model *c, pare_node *n, const int64_t *keep, int64_t nkeep, int depth)
{
    int64_t C = c->values[n->out].cols, H = n->a.heads, D = C / H;
    const char *what = NULL;
    if (n->nparam) what = "its attention variant has learned parameters sized for its head count";
    else if (nkeep % (3 * D) != 0 || nkeep == 0) what = "the kept qkv columns are not whole heads";
    int64_t Hk = nkeep / (3 * D);
    int64_t *heads = NULL, *okeep = NULL;
    if (!what) {
        heads = malloc(sizeof *heads * (size_t)Hk);
        okeep = malloc(sizeof *okeep * (size_t)(Hk * D));
        if (!heads || !okeep) {
            free(heads), free(okeep);
            return pare_fail(PARE_ENOMEM, "out of memory resizing %s", n->name);
        }
        for (int64_t h = 0; h < Hk && !what; h++) {
            int64_t first = keep[h * D];
            if (first % D) what = "the kept qkv columns are not whole heads";
            heads[h] = first / D;
            for (int s = 0; s < 3 && !what; s++)
                for (int64_t j = 0; j < D && !what; j++)
                    if (keep[s * Hk * D + h * D + j] != s * C + heads[h] * D + j)
                        what = "the kept q, k and v columns are not the same whole heads";
        }
    }
    if (what) {
        free(heads), free(okeep);
        return pare_fail(PARE_EINVAL, "resizing '%s' (attention, %lld heads of %lld): %s", n->name, (long long)H,
                         (long long)D, what);
    }
    for (int64_t h = 0; h < Hk; h++)
        for (int64_t j = 0; j < D; j++) okeep[h * D + j] = heads[h] * D + j;
    n->a.heads = (int)Hk;
    for (int k = 0; k < n->ncache; k++) /* the dense attention's probabilities: one column per head */
        if (c->values[n->cache[k]].rows == PARE_ROWS_CACHE_ATT || c->values[n->cache[k]].rows == PARE_ROWS_CACHE_SATT)
            c->values[n->cache[k]].cols = Hk;
    pare_status st = slice_value(c, n->out, okeep, Hk * D, depth + 1);
    free(heads), free(okeep);
    return st;
}

/* A head gate on Linear n's weight (K columns before slicing, H heads of D): the input now holds only the
 * columns keep[], which must be whole heads; log α and the gate's state keep those heads. */
static pare_status slice_gate(pare_model *c, const pare_node *n, const pare_transform *t, int64_t K, const int64_t *keep,
                              int64_t nkeep)
{
    int64_t H = pare_param_numel(&c->params[t->aux[0]]), D = H ? K / H : 0;
    if (!D || nkeep % D)
        return pare_fail(PARE_EINVAL, "resizing '%s': its head gate needs whole heads of %lld columns kept", n->name, (long long)D);
    int64_t Hk = nkeep / D, *hk = malloc(sizeof *hk * (size_t)Hk);
    if (!hk) return pare_fail(PARE_ENOMEM, "out of memory resizing %s", n->name);
    pare_status st = PARE_OK;
    for (int64_t h = 0; h < Hk && st == PARE_OK; h++) {
        hk[h] = keep[h * D] / D;
        for (int64_t j = 0; j < D; j++)
            if (keep[h * D + j] != hk[h] * D + j)
                st = pare_fail(PARE_EINVAL, "resizing '%s': its head gate needs whole heads of %lld columns kept", n->name, (long long)D);
    }
    if (st == PARE_OK) st = slice_param(&c->params[t->aux[0]], 0, hk, Hk);
    int64_t *sk = st == PARE_OK ? malloc(sizeof *sk * (size_t)(Hk + 2)) : NULL; /* the state: λ, lr, then u per head */
    if (st == PARE_OK && !sk) st = pare_fail(PARE_ENOMEM, "out of memory resizing %s", n->name);
    if (st == PARE_OK) {
        sk[0] = 0, sk[1] = 1;
        for (int64_t h = 0; h < Hk; h++) sk[h + 2] = keep[h * D] / D + 2;
        st = slice_param(&c->params[t->aux[1]], 0, sk, Hk + 2);
    }
    free(sk);
    free(hk);
    return st;
}

/* Value v now holds only the columns keep[] of what it held: resize its readers. */
static pare_status slice_value(pare_model *c, int v, const int64_t *keep, int64_t nkeep, int depth)
{
    pare_value *val = &c->values[v];
    if (depth > 64) return pare_fail(PARE_EINVAL, "resizing '%s': the chain of resized values is too long", val->name);
    if (v == c->logits) return pare_fail(PARE_EINVAL, "resizing '%s': it is the model's logits", val->name);
    val->cols = nkeep;
    for (int64_t i = val->producer + 1; i < c->nnodes; i++) {
        pare_node *n = &c->nodes[i];
        if (!node_reads(n, v)) continue;
        pare_status st = PARE_OK;
        switch (n->op) {
        case PARE_OP_GELU:
        case PARE_OP_RELU:
        case PARE_OP_DROPOUT:
        case PARE_OP_CAST:
        case PARE_OP_TANH:
            for (int k = 0; k < n->ncache; k++) c->values[n->cache[k]].cols = nkeep; /* dropout's mask */
            st = slice_value(c, n->out, keep, nkeep, depth + 1);
            break;
        case PARE_OP_LINEAR: {
            if (n->in[0] != v) goto full;
            int64_t K = c->params[n->param[0]].shape[1];
            st = slice_param(&c->params[n->param[0]], 1, keep, nkeep);
            const pare_transform *t = pare_node_transform(n, PARE_TF_WEIGHT); /* a mask's columns follow */
            if (st == PARE_OK && t && t->kind == PARE_TF_MASK) st = slice_param(&c->params[t->aux[0]], 1, keep, nkeep);
            if (st == PARE_OK && t && t->kind == PARE_TF_HEAD_GATE) st = slice_gate(c, n, t, K, keep, nkeep);
            break;
        }
        case PARE_OP_ATTENTION:
            if (n->in[0] != v) goto full;
            st = slice_attention(c, n, keep, nkeep, depth);
            break;
        default:
        full:
            return pare_fail(PARE_EINVAL, "resizing '%s': node '%s' (%s) reads it and needs all its columns (only "
                             "head counts and feed-forward widths can change; the model width cannot)", val->name,
                             n->name, pare_op_name(n->op));
        }
        if (st != PARE_OK) return st;
    }
    return PARE_OK;
}

/* Keep the output channels keep[] of Linear node `node`: its weight's and bias's rows; its readers are
 * the caller's to resize. */
static pare_status keep_rows(pare_model *c, int64_t node, const int64_t *keep, int64_t nkeep)
{
    pare_node *n = &c->nodes[node];
    PARE_TRY(slice_param(&c->params[n->param[0]], 0, keep, nkeep));
    if (n->nparam > 1) PARE_TRY(slice_param(&c->params[n->param[1]], 0, keep, nkeep));
    for (int k = 0; k < n->ncache; k++) c->values[n->cache[k]].cols = nkeep; /* a fused activation's pre-activation */
    /* the weight's transform follows its rows: a mask (N, K), or fake quantization's scale per output channel */
    const pare_transform *t = pare_node_transform(n, PARE_TF_WEIGHT);
    if (t && t->kind == PARE_TF_HEAD_GATE)
        return pare_fail(PARE_EINVAL, "resizing '%s': its head gate acts on its input columns; its outputs (the model "
                         "width) cannot change", n->name);
    if (t) PARE_TRY(slice_param(&c->params[t->aux[0]], 0, keep, nkeep));
    return PARE_OK;
}

static pare_status keep_channels(pare_model *c, int64_t node, const int64_t *keep, int64_t nkeep)
{
    PARE_TRY(keep_rows(c, node, keep, nkeep));
    return slice_value(c, c->nodes[node].out, keep, nkeep, 0);
}

static pare_status check_linear_node(const pare_model *m, int64_t node, const char *doing)
{
    if (node < 0 || node >= m->nnodes)
        return pare_fail(PARE_EINVAL, "%s: node %lld is not a node of the model (0..%lld)", doing, (long long)node,
                         (long long)m->nnodes - 1);
    if (m->nodes[node].op != PARE_OP_LINEAR)
        return pare_fail(PARE_EINVAL, "%s: node '%s' is %s, not linear", doing, m->nodes[node].name,
                         pare_op_name(m->nodes[node].op));
    return PARE_OK;
}

pare_status pare_model_keep_channels(pare_model *m, int64_t node, const int64_t *keep, int64_t nkeep)
{
    PARE_TRY(check_linear_node(m, node, "keeping channels"));
    const pare_node *n = &m->nodes[node];
    int64_t N = m->values[n->out].cols;
    if (nkeep < 1) return pare_fail(PARE_EINVAL, "resizing '%s': keep at least one of its %lld channels", n->name, (long long)N);
    for (int64_t i = 0; i < nkeep; i++)
        if (keep[i] < 0 || keep[i] >= N || (i && keep[i] <= keep[i - 1]))
            return pare_fail(PARE_EINVAL, "resizing '%s': kept channels must be increasing and in [0, %lld) (got %lld at %lld)",
                             n->name, (long long)N, (long long)keep[i], (long long)i);
    pare_model *c = pare_model_clone(m);
    if (!c) return PARE_ENOMEM;
    return finish(m, c, keep_channels(c, node, keep, nkeep));
}

pare_status pare_model_drop_channels(pare_model *m, int64_t node, const int64_t *drop, int64_t n)
{
    PARE_TRY(check_linear_node(m, node, "dropping channels"));
    const pare_node *nd = &m->nodes[node];
    int64_t N = m->values[nd->out].cols;
    char *gone = calloc((size_t)N, 1);
    int64_t *keep = malloc(sizeof *keep * (size_t)N);
    if (!gone || !keep) {
        free(gone), free(keep);
        return pare_fail(PARE_ENOMEM, "out of memory resizing %s", nd->name);
    }
    pare_status st = PARE_OK;
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        if (drop[i] < 0 || drop[i] >= N)
            st = pare_fail(PARE_EINVAL, "dropping channel %lld of '%s': channels are 0..%lld", (long long)drop[i], nd->name,
                           (long long)N - 1);
        else if (gone[drop[i]])
            st = pare_fail(PARE_EINVAL, "dropping channels of '%s': channel %lld is listed twice", nd->name, (long long)drop[i]);
        else gone[drop[i]] = 1;
    }
    int64_t nkeep = 0;
    for (int64_t i = 0; i < N; i++)
        if (!gone[i]) keep[nkeep++] = i;
    if (st == PARE_OK && nkeep == 0)
        st = pare_fail(PARE_EINVAL, "dropping all %lld channels of '%s': keep at least one (remove the block with "
                       "pare_model_remove_nodes / m:drop_layers instead)", (long long)N, nd->name);
    if (st == PARE_OK) st = pare_model_keep_channels(m, node, keep, nkeep);
    free(gone), free(keep);
    return st;
}

/* Cross-attention node `node` without the heads gone[]: one edit of a clone slices the rows of its q
 * projection (the heads' D channels), of its kv projection (the same heads in k and in v) and, through
 * slice_value, the columns of whatever reads its output (the out projection). Its q and kv inputs must
 * be Linear outputs read by this node only (the builder's layout). */
static pare_status drop_cross_heads(pare_model *m, int64_t node, const char *gone, int H)
{
    const pare_node *a = &m->nodes[node];
    int64_t C = m->values[a->out].cols, D = C / H;
    for (int k = 0; k < 2; k++) {
        int v = a->in[k], p = m->values[v].producer, readers = 0;
        for (int64_t i = 0; i < m->nnodes; i++) readers += node_reads(&m->nodes[i], v);
        if (p < 0 || m->nodes[p].op != PARE_OP_LINEAR || readers != 1)
            return pare_fail(PARE_EINVAL, "dropping heads of '%s': its %s input '%s' is not a linear projection read by it "
                             "alone", a->name, k ? "kv" : "q", m->values[v].name);
    }
    int64_t *kq = malloc(sizeof *kq * (size_t)C), *kkv = malloc(sizeof *kkv * (size_t)(2 * C));
    if (!kq || !kkv) {
        free(kq), free(kkv);
        return pare_fail(PARE_ENOMEM, "out of memory resizing %s", a->name);
    }
    int64_t nq = 0, nkv = 0;
    for (int s = 0; s < 2; s++) /* kv = [k | v], heads split along C in each */
        for (int h = 0; h < H; h++)
            for (int64_t j = 0; !gone[h] && j < D; j++) {
                if (s == 0) kq[nq++] = h * D + j;
                kkv[nkv++] = s * C + h * D + j;
            }
    pare_model *c = pare_model_clone(m);
    pare_status st = c ? PARE_OK : PARE_ENOMEM;
    int qn = m->values[a->in[0]].producer, kvn = m->values[a->in[1]].producer;
    if (st == PARE_OK) st = keep_rows(c, qn, kq, nq);
    if (st == PARE_OK) st = keep_rows(c, kvn, kkv, nkv);
    if (st == PARE_OK) {
        pare_node *cn = &c->nodes[node];
        c->values[cn->in[0]].cols = nq, c->values[cn->in[1]].cols = nkv;
        cn->a.heads = (int)(nq / D);
        for (int k = 0; k < cn->ncache; k++) c->values[cn->cache[k]].cols = cn->a.heads; /* att: a column per head */
        st = slice_value(c, cn->out, kq, nq, 1); /* the kept output channels are the kept q channels */
    }
    free(kq), free(kkv);
    if (!c) return pare_fail(PARE_ENOMEM, "out of memory resizing %s", a->name);
    return finish(m, c, st);
}

/* gone[h] = 1 for each of heads[0..n) of attention node a (self- or cross-): each in range, none twice,
 * at least one kept (`instead` says what removes them all). */
static pare_status mark_heads(const pare_node *a, const int *heads, int n, char *gone, size_t cap, const char *instead)
{
    int H = a->a.heads;
    if (H > (int)cap) return pare_fail(PARE_EINVAL, "dropping heads of '%s': more than %zu heads", a->name, cap);
    for (int i = 0; i < n; i++) {
        if (heads[i] < 0 || heads[i] >= H)
            return pare_fail(PARE_EINVAL, "dropping head %d of '%s': its heads are 0..%d", heads[i], a->name, H - 1);
        if (gone[heads[i]]) return pare_fail(PARE_EINVAL, "dropping heads of '%s': head %d is listed twice", a->name, heads[i]);
        gone[heads[i]] = 1;
    }
    if (n >= H)
        return pare_fail(PARE_EINVAL, "dropping all %d heads of '%s': keep at least one (remove %s instead)", H, a->name,
                         instead);
    return PARE_OK;
}

pare_status pare_model_drop_heads(pare_model *m, int64_t node, const int *heads, int n)
{
    if (node >= 0 && node < m->nnodes && m->nodes[node].op == PARE_OP_CROSS_ATTENTION) {
        const pare_node *a = &m->nodes[node];
        char gone[1024] = {0};
        PARE_TRY(mark_heads(a, heads, n, gone, sizeof gone, "the cross-attention half with pare_model_remove_nodes"));
        return drop_cross_heads(m, node, gone, a->a.heads);
    }
    if (node < 0 || node >= m->nnodes || m->nodes[node].op != PARE_OP_ATTENTION)
        return pare_fail(PARE_EINVAL, "dropping heads: node %lld is not an attention node (self- or cross-attention)", (long long)node);
    const pare_node *a = &m->nodes[node];
    int H = a->a.heads;
    int64_t C = m->values[a->out].cols, D = C / H;
    int qkv_node = m->values[a->in[0]].producer;
    if (qkv_node < 0 || m->nodes[qkv_node].op != PARE_OP_LINEAR)
        return pare_fail(PARE_EINVAL, "dropping heads of '%s': its qkv input '%s' is not made by a linear node", a->name,
                         m->values[a->in[0]].name);
    char gone[1024] = {0};
    PARE_TRY(mark_heads(a, heads, n, gone, sizeof gone,
                        "the attention half or the layer with pare_model_remove_nodes / m:drop_layers"));
    int64_t *keep = malloc(sizeof *keep * (size_t)(3 * C));
    if (!keep) return pare_fail(PARE_ENOMEM, "out of memory resizing %s", a->name);
    int64_t k = 0;
    for (int s = 0; s < 3; s++)
        for (int h = 0; h < H; h++)
            if (!gone[h])
                for (int64_t j = 0; j < D; j++) keep[k++] = s * C + h * D + j;
    pare_status st = pare_model_keep_channels(m, qkv_node, keep, k);
    free(keep);
    return st;
}

/* ---- the whole-graph check ---- */

#define BAD(...) return pare_fail(PARE_EINVAL, __VA_ARGS__)

/* Lengths value l fits token rows x: the lengths input for all T positions, or after token pruning the
 * TOKEN_LENGTHS output of x's level (docs/pruning-tokens.md). */
static int lengths_fit(const pare_model *m, int l, const pare_value *x)
{
    const pare_value *v = &m->values[l];
    if (x->keep == 0) return v->kind == PARE_VAL_LENGTHS;
    return v->kind == PARE_VAL_ACT && v->producer >= 0 && m->nodes[v->producer].op == PARE_OP_TOKEN_LENGTHS &&
           v->keep == x->keep;
}

/* The columns op n reads of input k through a column view (node.in_col), 0 if it reads the whole input. */
static int64_t col_view_width(const pare_model *m, const pare_node *n, int k)
{
    if (k >= n->nin) return 0;
    switch (n->op) {
    case PARE_OP_HEAD_SPLIT: return k == 0 ? m->values[n->out].cols : 0;
    case PARE_OP_BMM_QK: return n->a.strided && k < 2 ? (int64_t)n->a.heads * n->a.head_dim : 0;
    case PARE_OP_BMM_PV: return n->a.strided && k == 1 ? m->values[n->out].cols : 0;
    default: return 0;
    }
}

static pare_status check_node(const pare_model *m, int64_t i)
{
    const pare_node *n = &m->nodes[i];
    const char *op = (unsigned)n->op < PARE_OP_COUNT ? pare_op_name(n->op) : "?";
    if ((unsigned)n->op >= PARE_OP_COUNT) BAD("node '%s': unknown op %d", n->name, (int)n->op);
    if (n->nin < 1 || n->nin > PARE_NODE_MAX_IN || n->nparam < 0 || n->nparam > PARE_NODE_MAX_PARAMS || n->ncache < 0 ||
        n->ncache > PARE_NODE_MAX_CACHE)
        BAD("node '%s' (%s): bad input, parameter or cache count", n->name, op);
    for (int k = 0; k < n->nin; k++) {
        if (n->in[k] < 0 || n->in[k] >= m->nvalues) BAD("node '%s' (%s): input %d is not a value", n->name, op, k);
        if (m->values[n->in[k]].producer >= i)
            BAD("node '%s' (%s): input '%s' is made later in the graph", n->name, op, m->values[n->in[k]].name);
    }
    for (int k = 0; k < n->nparam; k++)
        if (n->param[k] < 0 || n->param[k] >= m->nparams) BAD("node '%s' (%s): parameter %d is not a parameter", n->name, op, k);
    if (n->out < 0 || n->out >= m->nvalues || m->values[n->out].producer != i)
        BAD("node '%s' (%s): its output is not a value it makes", n->name, op);
    const pare_value *out = &m->values[n->out], *x = &m->values[n->in[0]];
    const pare_param *w = n->nparam ? &m->params[n->param[0]] : NULL, *b = n->nparam > 1 ? &m->params[n->param[1]] : NULL;
    int64_t C = out->cols;
    if (C < 1) BAD("node '%s' (%s): output of %lld columns", n->name, op, (long long)C);
    for (int k = 0; k < PARE_NODE_MAX_IN; k++) { /* column views: only where the op reads through one */
        int64_t width = col_view_width(m, n, k);
        if (n->in_col[k] == 0 && width <= 0) continue;
        if (width <= 0 || k >= n->nin || n->in_col[k] < 0 || n->in_col[k] + width > m->values[n->in[k]].cols)
            BAD("node '%s' (%s): input %d is read from column %lld, which %s", n->name, op, k, (long long)n->in_col[k],
                width <= 0 ? "this op does not do (column views: head_split, and the strided bmm_qk and bmm_pv)"
                           : "leaves too few columns for the op");
    }
#define WANT(cond, ...)                                                                                              \
    do {                                                                                                             \
        if (!(cond)) BAD("node '%s' (%s): " __VA_ARGS__);                                                            \
    } while (0)
    switch (n->op) {
    case PARE_OP_EMBEDDING:
        WANT(((x->kind == PARE_VAL_TOKENS && w && w->shape[0] == m->vocab) || (x->kind == PARE_VAL_TYPES && w) ||
              (x->kind == PARE_VAL_SRC_TOKENS && w && w->shape[0] >= m->src_vocab)) &&
                 w->ndim == 2 && w->shape[1] == C && out->rows == x->rows,
             "needs tokens and a (vocab=%lld, %lld) table, token types and a (types, %lld) table, or source tokens and "
             "a (src_vocab=%lld, %lld) table", n->name, op, (long long)m->vocab, (long long)C, (long long)C,
             (long long)m->src_vocab, (long long)C);
        break;
    case PARE_OP_POSADD:
        WANT(n->a.pos_offset >= 0 && w && w->ndim == 2 && w->shape[1] == C && x->cols == C &&
                 w->shape[0] >= (x->rows == PARE_ROWS_SRC ? m->src_max_T : m->max_T) + n->a.pos_offset &&
                 (x->rows == PARE_ROWS_TOKENS || x->rows == PARE_ROWS_SRC) && out->rows == x->rows,
             "needs a (max_T + offset=%lld, %lld) table and an input of %lld columns", n->name, op,
             (long long)((x->rows == PARE_ROWS_SRC ? m->src_max_T : m->max_T) + n->a.pos_offset),
             (long long)C, (long long)C);
        break;
    case PARE_OP_LINEAR:
        WANT(w && w->ndim == 2 && w->shape[0] == C && w->shape[1] == x->cols,
             "weight %s is (%lld, %lld) but the input has %lld columns and the output %lld", n->name, op,
             w ? w->name : "-", w ? (long long)w->shape[0] : 0LL, w ? (long long)w->shape[1] : 0LL, (long long)x->cols,
             (long long)C);
        WANT(!b || (b->ndim == 1 && b->shape[0] == C), "bias %s has %lld elements, not %lld", n->name, op, b->name,
             b ? (long long)b->shape[0] : 0LL, (long long)C);
        WANT(x->rows == out->rows, "input and output rows differ", n->name, op);
        WANT(n->a.epilogue >= 0 && n->a.epilogue < PARE_EPILOGUE_COUNT &&
                 n->ncache == (n->a.epilogue ? 1 : 0) && (!n->ncache || m->values[n->cache[0]].cols == C),
             "its fused activation (epilogue %d) is not one of none, gelu, gelu_erf, relu, or its pre-activation "
             "cache does not have the output's shape", n->name, op, n->a.epilogue);
        for (int t = 0; t < n->ntf; t++) {
            const pare_transform *f = &n->tf[t];
            const pare_tf_traits *k = pare_tf_get(f->kind);
            WANT(k && (unsigned)f->operand < PARE_TF_OPERAND_COUNT, "transform %d is of an unknown kind or operand", n->name,
                 op, t);
            for (int a = 0; a < k->naux; a++)
                WANT(f->aux[a] >= 0 && f->aux[a] < m->nparams, "its %s transform's parameter %d is missing", n->name, op,
                     k->name, a);
            const pare_param *aux = &m->params[f->aux[0]];
            if (f->kind == PARE_TF_HEAD_GATE) {
                int64_t H = pare_param_numel(aux);
                WANT(f->operand == PARE_TF_WEIGHT && H >= 1 && x->cols % H == 0 &&
                         pare_param_numel(&m->params[f->aux[1]]) == H + 2,
                     "its head gate has %lld heads (state %lld) for %lld input columns", n->name, op, (long long)H,
                     (long long)pare_param_numel(&m->params[f->aux[1]]), (long long)x->cols);
                continue;
            }
            if (f->kind == PARE_TF_QUANT_NOISE) {
                WANT(f->operand == PARE_TF_WEIGHT && f->group >= 1 && x->cols % f->group == 0 &&
                         pare_param_numel(aux) == 4 + C * (x->cols / (f->group ? f->group : 1)) &&
                         (f->bits == 8 || f->bits == 4 || (f->bits == 0 && f->aux[1] >= 0 && f->aux[1] < m->nparams &&
                                                          pare_param_numel(&m->params[f->aux[1]]) % f->group == 0 &&
                                                          pare_param_numel(&m->params[f->aux[1]]) >= f->group &&
                                                          pare_param_numel(&m->params[f->aux[1]]) <= 256LL * f->group)),
                     "its quant_noise transform (bits %d, block %d, state %lld; bits 8, 4 or 0 with a codebook of 1..256 centroids) "
                     "does not fit its %lld inputs", n->name, op,
                     f->bits, f->group, (long long)pare_param_numel(aux), (long long)x->cols);
                continue;
            }
            int64_t want = f->kind == PARE_TF_MASK ? C * x->cols
                           : f->operand == PARE_TF_WEIGHT ? (f->group ? C * (x->cols / f->group) : C) : 1;
            WANT(!f->group || (f->operand == PARE_TF_WEIGHT && f->group > 0 && x->cols % f->group == 0),
                 "its fake_quant group %d does not divide its %lld inputs", n->name, op, f->group, (long long)x->cols);
            WANT(pare_param_numel(aux) == want && (f->kind != PARE_TF_MASK || f->operand == PARE_TF_WEIGHT),
                 "its %s transform's parameter %s has %lld elements, not %lld", n->name, op, k->name, aux->name,
                 (long long)pare_param_numel(aux), (long long)want);
            WANT(f->kind != PARE_TF_FAKE_QUANT || (f->bits >= 2 && f->bits <= 8), "fake_quant bits %d outside 2..8", n->name,
                 op, f->bits);
        }
        break;
    case PARE_OP_TT_LINEAR: {
        const pare_tt_shape *tt = &n->a.tt;
        if (pare_tt_check(tt, n->name) != PARE_OK) return pare_fail_ctx(PARE_EINVAL, "node '%s' (%s)", n->name, op);
        WANT(pare_tt_rows(tt) == C && pare_tt_cols(tt) == x->cols,
             "its TT factors give a (%lld, %lld) weight but the input has %lld columns and the output %lld", n->name, op,
             (long long)pare_tt_rows(tt), (long long)pare_tt_cols(tt), (long long)x->cols, (long long)C);
        WANT(w && pare_param_numel(w) == pare_tt_numel(tt), "cores %s hold %lld floats; the TT shape needs %lld", n->name,
             op, w ? w->name : "-", w ? (long long)pare_param_numel(w) : 0LL, (long long)pare_tt_numel(tt));
        WANT(w->format == PARE_FMT_F32 && n->ntf == 0, "its cores must be f32, without transforms", n->name, op);
        WANT(!b || (b->ndim == 1 && b->shape[0] == C), "bias %s has %lld elements, not %lld", n->name, op, b->name,
             b ? (long long)b->shape[0] : 0LL, (long long)C);
        WANT(x->rows == out->rows, "input and output rows differ", n->name, op);
        break;
    }
    case PARE_OP_LAYERNORM:
        WANT(w && b && pare_param_numel(w) == C && pare_param_numel(b) == C && x->cols == C && x->rows == out->rows,
             "weight, bias and input must have %lld columns", n->name, op, (long long)C);
        break;
    case PARE_OP_GELU:
    case PARE_OP_RELU:
    case PARE_OP_DROPOUT:
    case PARE_OP_CAST:
    case PARE_OP_TANH:
        WANT(x->cols == C && x->rows == out->rows, "input (%lld columns) and output (%lld) differ", n->name, op,
             (long long)x->cols, (long long)C);
        break;
    case PARE_OP_ADD:
        WANT(n->nin == 2 && x->cols == C && m->values[n->in[1]].cols == C && x->rows == out->rows &&
                 m->values[n->in[1]].rows == out->rows && x->keep == m->values[n->in[1]].keep,
             "both inputs must have the output's %lld columns (got %lld and %lld) and as many tokens", n->name, op, (long long)C,
             (long long)x->cols, n->nin == 2 ? (long long)m->values[n->in[1]].cols : -1LL);
        break;
    case PARE_OP_ATTENTION:
        /* over the target tokens with their lengths, or (an encoder-decoder's encoder) over the source */
        WANT(n->nin == 2 && ((x->rows == PARE_ROWS_TOKENS && lengths_fit(m, n->in[1], x)) ||
                             (x->rows == PARE_ROWS_SRC && m->values[n->in[1]].kind == PARE_VAL_SRC_LENGTHS && !n->a.causal)),
             "needs qkv and lengths (token rows; after token pruning the lengths of its level), or source qkv and source "
             "lengths (source rows, not causal)", n->name, op);
        WANT(n->a.heads >= 1 && C % n->a.heads == 0, "%d heads do not divide its %lld columns", n->name, op, n->a.heads,
             (long long)C);
        WANT(x->cols == 3 * C && out->rows == x->rows,
             "its qkv input has %lld columns; %d heads of %lld need %lld", n->name, op, (long long)x->cols, n->a.heads,
             (long long)(C / n->a.heads), (long long)(3 * C));
        WANT(x->rows == PARE_ROWS_TOKENS || !n->a.attn || n->a.attn == pare_attn_config_default(),
             "attention over the source is dense (variant '%s' is not supported there)", n->name, op, n->a.attn->spec);
        break;
    case PARE_OP_CROSS_ATTENTION: {
        const pare_value *kv = n->nin == 3 ? &m->values[n->in[1]] : NULL, *sl = n->nin == 3 ? &m->values[n->in[2]] : NULL;
        WANT(kv && sl->kind == PARE_VAL_SRC_LENGTHS && kv->rows == PARE_ROWS_SRC && x->rows == PARE_ROWS_TOKENS &&
                 out->rows == PARE_ROWS_TOKENS,
             "needs queries (target tokens), keys and values (source rows) and the source lengths", n->name, op);
        WANT(n->a.heads >= 1 && C % n->a.heads == 0, "%d heads do not divide its %lld columns", n->name, op, n->a.heads,
             (long long)C);
        WANT(x->cols == C && kv->cols == 2 * C, "q has %lld columns and kv %lld; %d heads of %lld need %lld and %lld",
             n->name, op, (long long)x->cols, (long long)kv->cols, n->a.heads, (long long)(C / n->a.heads), (long long)C,
             (long long)(2 * C));
        break;
    }
    case PARE_OP_POOL:
        WANT(n->nin == 2 && x->cols == C && x->rows == PARE_ROWS_TOKENS && lengths_fit(m, n->in[1], x) &&
                 out->rows == PARE_ROWS_SEQS,
             "needs tokens rows of %lld columns and lengths (after token pruning, those of its level)", n->name, op,
             (long long)C);
        break;
    case PARE_OP_TOKEN_SELECT: {
        const pare_value *att = n->nin == 3 ? &m->values[n->in[2]] : NULL;
        WANT(att && x->rows == PARE_ROWS_TOKENS && out->rows == PARE_ROWS_TOKENS && x->cols == C && lengths_fit(m, n->in[1], x) &&
                 att->rows == PARE_ROWS_CACHE_ATT && att->keep == x->keep && att->cols >= 1 && att->producer >= 0 &&
                 !m->nodes[att->producer].a.bmm_i8, /* the int8 products compute no probabilities at inference */
             "needs token rows of %lld columns, their lengths and the f32 attention probabilities (#att, not the "
             "int8 products) of the same tokens", n->name, op, (long long)C);
        WANT(n->a.keep > 0 && n->a.keep <= 1 && (x->keep == 0 || n->a.keep <= x->keep),
             "keep %g must be in (0, 1] and at most its input's %g (tokens are only removed)", n->name, op,
             (double)n->a.keep, (double)(x->keep == 0 ? 1 : x->keep));
        break;
    }
    case PARE_OP_TOKEN_LENGTHS:
        WANT(n->nin == 1 && x->kind == PARE_VAL_LENGTHS && out->rows == PARE_ROWS_SEQS && C == 1 && n->a.keep > 0 &&
                 n->a.keep <= 1,
             "needs the lengths input, one output column and keep in (0, 1] (got %g)", n->name, op, (double)n->a.keep);
        break;
    case PARE_OP_HEAD_SPLIT:
    case PARE_OP_HEAD_MERGE:
        WANT(n->nin == 1 && x->rows == PARE_ROWS_TOKENS && out->rows == PARE_ROWS_TOKENS && n->a.heads >= 1 &&
                 C % n->a.heads == 0 && (n->op == PARE_OP_HEAD_SPLIT || x->cols == C),
             "needs token rows, %d heads dividing its %lld columns%s", n->name, op, n->a.heads, (long long)C,
             n->op == PARE_OP_HEAD_MERGE ? " and an input of as many" : "");
        break;
    case PARE_OP_BMM_QK: {
        const pare_value *k = n->nin == 2 ? &m->values[n->in[1]] : NULL;
        int64_t HD = (int64_t)n->a.heads * n->a.head_dim;
        WANT(k && n->a.heads >= 1 && n->a.head_dim >= 1 && C == n->a.heads && out->rows == PARE_ROWS_CACHE_ATT &&
                 x->rows == PARE_ROWS_TOKENS && k->rows == PARE_ROWS_TOKENS && x->keep == k->keep &&
                 (n->a.strided ? x->cols >= HD && k->cols >= HD : x->cols == HD && k->cols == HD),
             "needs q and k of %d heads of %d (token rows%s) and scores of a column per head", n->name, op, n->a.heads,
             n->a.head_dim, n->a.strided ? ", read in place" : ", head-major");
        break;
    }
    case PARE_OP_BMM_PV: {
        const pare_value *v = n->nin == 2 ? &m->values[n->in[1]] : NULL;
        WANT(v && n->a.heads >= 1 && C % n->a.heads == 0 && x->rows == PARE_ROWS_CACHE_ATT && x->cols == n->a.heads &&
                 v->rows == PARE_ROWS_TOKENS && out->rows == PARE_ROWS_TOKENS && x->keep == v->keep &&
                 (n->a.strided ? v->cols >= C : v->cols == C),
             "needs probabilities of a column per head (%d), values of %lld columns and token rows out", n->name, op,
             n->a.heads, (long long)C);
        break;
    }
    case PARE_OP_DIV:
    case PARE_OP_SOFTMAX:
        WANT(n->nin == 1 && x->cols == C && x->rows == out->rows && (n->op != PARE_OP_DIV || (n->a.scale > 0 && isfinite(n->a.scale))),
             "input and output differ in shape%s", n->name, op, n->op == PARE_OP_DIV ? ", or the divisor (scale) is not > 0" : "");
        break;
    case PARE_OP_MASK_ADD:
    case PARE_OP_MASKED_SOFTMAX:
        WANT(n->nin == 2 && x->rows == PARE_ROWS_CACHE_ATT && out->rows == x->rows && x->cols == C &&
                 lengths_fit(m, n->in[1], x) && (n->op == PARE_OP_MASK_ADD || (n->a.scale > 0 && isfinite(n->a.scale))),
             "needs attention scores (a column per head) and the lengths of their tokens%s", n->name, op,
             n->op == PARE_OP_MASKED_SOFTMAX ? ", and a divisor (scale) > 0" : "");
        break;
    case PARE_OP_ADD_LAYERNORM:
        WANT(n->nin == 2 && w && b && pare_param_numel(w) == C && pare_param_numel(b) == C && x->cols == C &&
                 m->values[n->in[1]].cols == C && x->rows == out->rows && m->values[n->in[1]].rows == out->rows &&
                 x->keep == m->values[n->in[1]].keep,
             "needs two inputs, a weight and a bias of %lld columns", n->name, op, (long long)C);
        break;
    case PARE_OP_TP_COPY:
    case PARE_OP_TP_REDUCE: /* tensor parallelism (dist/tp.h): same shape in and out; g may hold the bias */
        WANT(n->nin == 1 && x->cols == C && x->rows == out->rows && n->a.tp_ranks >= 1 &&
                 (n->nparam == 0 || (n->op == PARE_OP_TP_REDUCE && n->nparam == 1 && pare_param_numel(w) == C)),
             "needs one input of its %lld columns, tp_ranks >= 1 (got %d), and (tp_reduce) at most a bias of %lld", n->name,
             op, (long long)C, n->a.tp_ranks, (long long)C);
        break;
    case PARE_OP_XENT:
        WANT(n->nin == 2 && m->values[n->in[1]].kind == PARE_VAL_LABELS && m->values[n->in[1]].rows == x->rows &&
                 (x->rows == PARE_ROWS_TOKENS || x->rows == PARE_ROWS_SEQS) && out->rows == x->rows && C == 1,
             "needs logits and labels of the same rows, and one output column", n->name, op);
        break;
    default: /* the losses of two values: shapes checked by pare_model_add_loss, kept by the rewrites */
        WANT(n->nin >= 2 && x->cols == m->values[n->in[1]].cols && x->rows == m->values[n->in[1]].rows &&
                 x->keep == m->values[n->in[1]].keep && x->rows != PARE_ROWS_ONE && out->rows == PARE_ROWS_ONE && C == 1,
             "its two inputs differ in shape", n->name, op);
        WANT(n->nin < 3 || (m->values[n->in[2]].kind == PARE_VAL_LENGTHS && x->rows == PARE_ROWS_TOKENS),
             "a third input must be the lengths of token rows", n->name, op);
        WANT(!pare_op_has_temperature(n->op) || n->a.temperature > 0, "temperature %g must be > 0", n->name, op,
             (double)n->a.temperature);
        for (int k = 0; k < 2; k++)
            WANT(m->values[n->in[k]].kind == PARE_VAL_ACT || m->values[n->in[k]].kind == PARE_VAL_TARGET,
                 "input '%s' is not an activation or target", n->name, op, m->values[n->in[k]].name);
        break;
    }
#undef WANT
    return PARE_OK;
}

pare_status pare_model_check(const pare_model *m)
{
    int ids[] = {m->tokens, m->lengths, m->labels, m->logits, m->loss, m->types, m->src_tokens, m->src_lengths};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        if (ids[k] < -1 || ids[k] >= m->nvalues) BAD("model: its input, logits or loss id %d is not a value", ids[k]);
    for (int64_t v = 0; v < m->nvalues; v++)
        if (m->values[v].producer < -1 || m->values[v].producer >= m->nnodes)
            BAD("value '%s': its producer %d is not a node", m->values[v].name, m->values[v].producer);
    for (int64_t i = 0; i < m->nnodes; i++) PARE_TRY(check_node(m, i));
    PARE_TRY(pare_model_check_dtypes(m));
    if (m->logits >= 0) {
        const pare_value *l = &m->values[m->logits];
        if (l->cols != m->nclass || l->rows != (m->lm ? PARE_ROWS_TOKENS : PARE_ROWS_SEQS))
            BAD("model: logits '%s' have %lld columns per %s; the model has %lld classes per %s", l->name,
                (long long)l->cols, l->rows == PARE_ROWS_TOKENS ? "token" : "row", (long long)m->nclass,
                m->lm ? "token" : "sequence");
    }
    return PARE_OK;
}

void pare_model_refresh_dims(pare_model *m)
{
    int64_t L = 0, H = 0, F = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        /* an attention layer: the ATTENTION op, or an unfused one's batched P·V (docs/fusion.md) */
        if ((n->op == PARE_OP_ATTENTION || n->op == PARE_OP_BMM_PV) && m->values[n->out].rows == PARE_ROWS_TOKENS) {
            /* encdec: decoder layers */
            L++;
            if (n->a.heads > H) H = n->a.heads;
        }
        size_t len = strlen(n->name);
        if (n->op == PARE_OP_LINEAR && len > 7 && !strcmp(n->name + len - 7, ".ffn.up") && m->values[n->out].cols > F)
            F = m->values[n->out].cols;
    }
    m->L = L;
    if (H) m->H = H;
    if (F) m->F = F;
}
