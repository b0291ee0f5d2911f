/* graph.c — model construction, cloning with shared weights, names and sizes. */
#include "graph.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/arena.h"
#include "format.h"
#include "ops.h"

int pare_name_match(const char *pattern, const char *name) { return fnmatch(pattern, name, 0) == 0; }

pare_model *pare_model_new(const char *kind)
{
    pare_model *m = calloc(1, sizeof *m);
    if (!m) {
        pare_fail(PARE_ENOMEM, "out of memory creating a model");
        return NULL;
    }
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    m->tokens = m->lengths = m->labels = m->logits = m->loss = m->types = -1;
    m->src_tokens = m->src_lengths = -1;
    return m;
}

static void blob_release(pare_blob *b)
{
    if (b && --b->refs == 0) {
        pare_free(b->data);
        free(b);
    }
}

void pare_param_release(pare_param *p)
{
    blob_release(p->blob);
    p->blob = NULL;
    pare_free(p->grad);
    pare_free(p->adam_m);
    pare_free(p->adam_v);
    p->grad = p->adam_m = p->adam_v = NULL;
    pare_qlinear_release(p->q);
    p->q = NULL;
}

pare_qlinear *pare_qlinear_new(pare_format f)
{
    pare_qlinear *q = calloc(1, sizeof *q);
    if (!q) {
        pare_fail(PARE_ENOMEM, "out of memory (quantized weights)");
        return NULL;
    }
    q->refs = 1;
    q->format = f;
    return q;
}

void pare_qlinear_release(pare_qlinear *q)
{
    if (!q || --q->refs > 0) return;
    pare_i8_weight_free(&q->i8);
    pare_qb_free(&q->qb);
    pare_sparse_weight_free(&q->sp);
    pare_half_weight_free(&q->hw);
    pare_wq_free(&q->wq);
    pare_pq_free(&q->pq);
    pare_free(q->w_sim);
    free(q);
}

void pare_param_set_q(pare_param *p, pare_qlinear *q)
{
    pare_qlinear_release(p->q);
    p->q = q;
    p->format = q ? q->format : PARE_FMT_F32;
}

void pare_model_free(pare_model *m)
{
    if (!m) return;
    for (int64_t i = 0; i < m->nparams; i++) pare_param_release(&m->params[i]);
    for (int64_t i = 0; i < m->nnodes; i++) pare_attn_config_release(m->nodes[i].a.attn);
    free(m->values);
    free(m->nodes);
    free(m->params);
    free(m);
}

pare_model *pare_model_clone(const pare_model *m)
{
    pare_model *c = malloc(sizeof *c);
    if (!c) goto fail;
    *c = *m; /* sizes, kind, applied and config (the builder's options) come with the struct */
    c->values = malloc(sizeof *c->values * (size_t)(m->nvalues ? m->nvalues : 1));
    c->nodes = malloc(sizeof *c->nodes * (size_t)(m->nnodes ? m->nnodes : 1));
    c->params = malloc(sizeof *c->params * (size_t)(m->nparams ? m->nparams : 1));
    if (!c->values || !c->nodes || !c->params) {
        free(c->values);
        free(c->nodes);
        free(c->params);
        free(c);
        goto fail;
    }
    c->cap_values = m->nvalues, c->cap_nodes = m->nnodes, c->cap_params = m->nparams;
    memcpy(c->values, m->values, sizeof *c->values * (size_t)m->nvalues);
    memcpy(c->nodes, m->nodes, sizeof *c->nodes * (size_t)m->nnodes);
    for (int64_t i = 0; i < m->nnodes; i++) pare_attn_config_retain(c->nodes[i].a.attn); /* immutable: shared */
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *s = &m->params[i];
        pare_param *d = &c->params[i];
        *d = *s;
        d->grad = d->adam_m = d->adam_v = NULL; /* training state is not shared */
        d->run_outlier_cols = d->run_calls = 0; /* nor what running observed */
        if (d->blob) d->blob->refs++;
        if (d->q) d->q->refs++;                  /* quantized forms are immutable: shared */
    }
    return c;
fail:
    pare_fail(PARE_ENOMEM, "out of memory cloning a model");
    return NULL;
}

static int grow(void **arr, int64_t *cap, int64_t n, size_t elem)
{
    if (n < *cap) return 0;
    int64_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) {
        pare_fail(PARE_ENOMEM, "out of memory growing a model graph");
        return -1;
    }
    *arr = p;
    *cap = nc;
    return 0;
}

int pare_model_add_value(pare_model *m, const char *name, pare_value_kind kind, pare_rows rows, int64_t cols,
                         pare_dtype dtype)
{
    if (grow((void **)&m->values, &m->cap_values, m->nvalues, sizeof *m->values)) return -1;
    pare_value *v = &m->values[m->nvalues];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->kind = kind;
    v->rows = rows;
    v->cols = cols;
    v->dtype = dtype;
    v->producer = -1;
    return (int)m->nvalues++;
}

int pare_model_add_input(pare_model *m, pare_value_kind kind, const char *name)
{
    pare_rows rows = kind == PARE_VAL_LENGTHS || kind == PARE_VAL_SRC_LENGTHS ? PARE_ROWS_SEQS
                     : kind == PARE_VAL_SRC_TOKENS                          ? PARE_ROWS_SRC
                                                                            : PARE_ROWS_TOKENS;
    int id = pare_model_add_value(m, name, kind, rows, 1, PARE_I32); /* tokens, lengths, labels, types, source */
    if (id < 0) return -1;
    if (kind == PARE_VAL_TOKENS) m->tokens = id;
    if (kind == PARE_VAL_LENGTHS) m->lengths = id;
    if (kind == PARE_VAL_LABELS) m->labels = id;
    if (kind == PARE_VAL_TYPES) m->types = id;
    if (kind == PARE_VAL_SRC_TOKENS) m->src_tokens = id;
    if (kind == PARE_VAL_SRC_LENGTHS) m->src_lengths = id;
    return id;
}

int pare_model_add_param(pare_model *m, const char *name, int ndim, const int64_t *shape, int trainable)
{
    if (grow((void **)&m->params, &m->cap_params, m->nparams, sizeof *m->params)) return -1;
    pare_param *p = &m->params[m->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = shape[0];
    p->shape[1] = ndim > 1 ? shape[1] : 1;
    p->trainable = trainable;
    p->format = PARE_FMT_F32;
    p->blob = calloc(1, sizeof *p->blob);
    if (!p->blob) {
        pare_fail(PARE_ENOMEM, "out of memory for parameter %s", name);
        return -1;
    }
    p->blob->refs = 1;
    p->blob->n = (size_t)pare_param_numel(p);
    p->blob->data = pare_calloc(p->blob->n * sizeof(float));
    if (!p->blob->data) {
        free(p->blob);
        p->blob = NULL;
        return -1;
    }
    return (int)m->nparams++;
}

int64_t pare_tokens_kept(int64_t T, float keep)
{
    if (!(keep > 0.0f) || keep >= 1.0f) return T;
    int64_t k = (int64_t)ceil((double)keep * (double)T - 1e-6);
    return k < 1 ? 1 : k > T ? T : k;
}

static int token_rows(pare_rows r) { return r == PARE_ROWS_TOKENS || r == PARE_ROWS_CACHE_ATT; }

/* The keep of node n's token-row output and caches (graph.h: pare_model_refresh_keep). */
static void node_keep(pare_model *m, const pare_node *n)
{
    float k = 0.0f;
    if (n->op == PARE_OP_TOKEN_SELECT || n->op == PARE_OP_TOKEN_LENGTHS) k = n->a.keep;
    else
        for (int i = 0; i < n->nin; i++)
            if (token_rows(m->values[n->in[i]].rows)) {
                k = m->values[n->in[i]].keep;
                break;
            }
    if (token_rows(m->values[n->out].rows) || n->op == PARE_OP_TOKEN_LENGTHS) m->values[n->out].keep = k;
    for (int c = 0; c < n->ncache; c++)
        if (token_rows(m->values[n->cache[c]].rows)) m->values[n->cache[c]].keep = k;
}

void pare_model_refresh_keep(pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++) node_keep(m, &m->nodes[i]);
}

int pare_model_add_node(pare_model *m, pare_op_id op, const char *name, const int *in, int nin, const int *params,
                        int nparam, pare_rows rows, int64_t cols, pare_node_attrs attrs)
{
    /* the node is made and checked before anything is appended, so a refused one leaves m unchanged */
    pare_node nd;
    memset(&nd, 0, sizeof nd);
    nd.op = op;
    snprintf(nd.name, sizeof nd.name, "%s", name);
    nd.nin = nin;
    for (int i = 0; i < nin && i < PARE_NODE_MAX_IN; i++) nd.in[i] = in[i];
    nd.a = attrs;
    nd.a.attn = op != PARE_OP_ATTENTION ? NULL : attrs.attn ? attrs.attn : pare_attn_config_default();
    if (pare_node_check_inputs(m, &nd, nin) != PARE_OK) return -1;
    if (grow((void **)&m->nodes, &m->cap_nodes, m->nnodes, sizeof *m->nodes)) return -1;
    int out = pare_model_add_value(m, name, PARE_VAL_ACT, rows, cols, pare_op_out_dtype(m, &nd));
    if (out < 0) return -1;
    pare_node *n = &m->nodes[m->nnodes];
    *n = nd;
    n->nparam = nparam;
    for (int i = 0; i < nparam; i++) n->param[i] = params[i];
    n->out = out;
    if (pare_op_is_loss(op) && n->a.weight == 0.0f) n->a.weight = 1.0f; /* a zero weight is set after creation */
    if (pare_op_has_temperature(op) && n->a.temperature == 0.0f) n->a.temperature = 1.0f;
    m->values[out].producer = (int)m->nnodes;
    /* caches the op needs for backward */
    pare_cache_spec cs[PARE_NODE_MAX_CACHE];
    int nc = pare_op_caches(m, n, cs);
    if (pare_node_check_caches(n, cs, nc) != PARE_OK) {
        m->nvalues = out; /* take the output back: the node was not appended */
        return -1;
    }
    for (int i = 0; i < nc; i++) {
        char cname[PARE_NAME_MAX];
        snprintf(cname, sizeof cname, "%s#%s", name, cs[i].suffix);
        int id = pare_model_add_value(m, cname, PARE_VAL_CACHE, cs[i].rows, cs[i].cols, cs[i].dtype);
        if (id < 0) return -1;
        m->values[id].producer = (int)m->nnodes;
        n->cache[n->ncache++] = id;
    }
    node_keep(m, n);
    pare_attn_config_retain(n->a.attn); /* once the node exists: a failure above holds no reference */
    m->nnodes++;
    return out;
}

int pare_model_find_param(const pare_model *m, const char *name)
{
    for (int64_t i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return (int)i;
    return -1;
}

int pare_model_find_node(const pare_model *m, const char *name)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return (int)i;
    return -1;
}

pare_status pare_param_make_private(pare_param *p)
{
    if (p->blob->refs == 1) return PARE_OK;
    pare_blob *b = calloc(1, sizeof *b);
    if (!b) return pare_fail(PARE_ENOMEM, "out of memory copying %s", p->name);
    b->refs = 1;
    b->n = p->blob->n;
    b->data = pare_alloc(b->n * sizeof(float));
    if (!b->data) {
        free(b);
        return PARE_ENOMEM;
    }
    memcpy(b->data, p->blob->data, b->n * sizeof(float));
    p->blob->refs--;
    p->blob = b;
    return PARE_OK;
}

size_t pare_model_packed_bytes(const pare_model *m)
{
    size_t s = 0;
    for (int64_t i = 0; i < m->nparams; i++)
        if (pare_format_get(m->params[i].format)->packed_bytes)
            s += pare_format_get(m->params[i].format)->packed_bytes(&m->params[i]);
    return s;
}

int64_t pare_param_numel(const pare_param *p) { return p->shape[0] * (p->ndim > 1 ? p->shape[1] : 1); }

size_t pare_param_bytes(const pare_param *p)
{
    if (p->q) return (size_t)ceil(p->q->bits / 8.0); /* what the format stores, exactly */
    return p->trainable ? (size_t)pare_param_numel(p) * sizeof(float) : 0; /* fixed tables are recomputed */
}

size_t pare_model_size_bytes(const pare_model *m)
{
    size_t s = 0;
    for (int64_t i = 0; i < m->nparams; i++) s += pare_param_bytes(&m->params[i]);
    return s;
}

int64_t pare_model_param_count(const pare_model *m)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].trainable) n += pare_param_numel(&m->params[i]);
    return n;
}

void pare_model_truncate(pare_model *m, int64_t nnodes, int64_t nvalues, int64_t nparams)
{
    for (int64_t i = nparams; i < m->nparams; i++) pare_param_release(&m->params[i]);
    for (int64_t i = nnodes; i < m->nnodes; i++) pare_attn_config_release(m->nodes[i].a.attn);
    if (nnodes < m->nnodes) m->nnodes = nnodes;
    if (nvalues < m->nvalues) m->nvalues = nvalues;
    if (nparams < m->nparams) m->nparams = nparams;
}
