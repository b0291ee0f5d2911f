/* serialize.c — the graph as JSON (serialize.h), written with cJSON and read back with every field
 * checked, since the text comes from a file anyone can edit. */
#include "serialize.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "ops.h"
#include "rewrite.h"
#include "transform.h"

#define GRAPH_VERSION 1
#define MAX_COLS ((int64_t)1 << 31)

static const char *const rows_names[] = {"tokens", "seqs", "att", "one", "src", "src_att", "cross_att"};
static const char *const kind_names[] = {"tokens", "lengths", "labels", "act", "cache", "target", "types", "src_tokens",
                                         "src_lengths"};
static const char *const pool_names[] = {"cls", "mean"};
static const char *const operand_names[] = {"weight", "input"};
_Static_assert(sizeof rows_names / sizeof rows_names[0] == PARE_ROWS_COUNT, "rows names out of date");
_Static_assert(sizeof kind_names / sizeof kind_names[0] == PARE_VAL_KIND_COUNT, "value kind names out of date");
_Static_assert(sizeof pool_names / sizeof pool_names[0] == PARE_POOL_COUNT, "pool names out of date");
_Static_assert(sizeof operand_names / sizeof operand_names[0] == PARE_TF_OPERAND_COUNT, "operand names out of date");

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

/* ---- writing ---- */

static int add_num(cJSON *o, const char *k, double v) { return cJSON_AddNumberToObject(o, k, v) != NULL; }
static int add_str(cJSON *o, const char *k, const char *v) { return cJSON_AddStringToObject(o, k, v) != NULL; }

/* TT_LINEAR's shape, "tt": {"n": [4, 8], "k": [8, 4], "r": [1, 3, 1]} (absent for every other node). */
static int tt_json(cJSON *o, const pare_tt_shape *tt)
{
    cJSON *t = cJSON_AddObjectToObject(o, "tt");
    const char *keys[3] = {"n", "k", "r"};
    const int64_t *vals[3] = {tt->n, tt->k, tt->r};
    for (int i = 0; t && i < 3; i++) {
        cJSON *arr = cJSON_AddArrayToObject(t, keys[i]);
        for (int j = 0; arr && j < tt->d + (i == 2); j++)
            if (!cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)vals[i][j]))) arr = NULL;
        if (!arr) return 0;
    }
    return t != NULL;
}

static cJSON *attrs_json(const pare_node *n)
{
    const pare_node_attrs *a = &n->a;
    cJSON *o = cJSON_CreateObject();
    int okk = o && add_num(o, "heads", a->heads) && add_num(o, "causal", a->causal) && add_num(o, "bmm_i8", a->bmm_i8) &&
              add_str(o, "attn", !a->attn || a->attn == pare_attn_config_default() ? "" : a->attn->spec) && add_num(o, "p", a->p) && add_str(o, "pool", (unsigned)a->pool < PARE_POOL_COUNT ? pool_names[a->pool] : "cls") &&
              add_num(o, "weight", a->weight) && add_num(o, "temperature", a->temperature) &&
              add_str(o, "dtype", pare_dtype_name(a->dtype)) && add_num(o, "eps", a->eps) &&
              add_num(o, "gelu_erf", a->gelu_erf) && add_num(o, "pos_offset", a->pos_offset) &&
              add_num(o, "scale", a->scale) && (a->tt.d == 0 || tt_json(o, &a->tt)) &&
              (a->keep == 0 || add_num(o, "keep", a->keep)) &&
              (a->epilogue == 0 || add_str(o, "epilogue", pare_epilogue_name(a->epilogue))) &&
              (a->strided == 0 || add_num(o, "strided", a->strided)) &&
              (a->head_dim == 0 || add_num(o, "head_dim", a->head_dim));
    if (!okk) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* "tf": [{"kind": "fake_quant", "operand": "weight", "bits": 8, "learn": 1, "aux": ["enc.0.attn.qkv.wscale"]}]
 * ("group" and "per_token" only when not 0, so older checkpoints read as before) */
static int tf_json(const pare_model *m, const pare_node *n, cJSON *o)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "tf");
    int okk = arr != NULL;
    for (int t = 0; okk && t < n->ntf; t++) {
        const pare_transform *f = &n->tf[t];
        cJSON *e = cJSON_CreateObject(), *aux = NULL;
        okk = e && cJSON_AddItemToArray(arr, e) && add_str(e, "kind", pare_tf_name(f->kind)) &&
              add_str(e, "operand", operand_names[f->operand]) && add_num(e, "bits", f->bits) &&
              add_num(e, "learn", f->learn) && (!f->group || add_num(e, "group", f->group)) &&
              (!f->per_token || add_num(e, "per_token", f->per_token)) && (aux = cJSON_AddArrayToObject(e, "aux"));
        for (int a = 0; okk && a < PARE_TF_MAX_AUX; a++)
            if (f->aux[a] >= 0) okk = cJSON_AddItemToArray(aux, cJSON_CreateString(m->params[f->aux[a]].name));
    }
    return okk;
}

pare_status pare_graph_to_json(const pare_model *m, char **out)
{
    *out = NULL;
    cJSON *g = cJSON_CreateObject(), *inputs = NULL, *params = NULL, *nodes = NULL;
    int okk = g && add_num(g, "version", GRAPH_VERSION) && add_str(g, "kind", m->kind) && add_num(g, "vocab", (double)m->vocab) &&
              add_num(g, "max_T", (double)m->max_T) && add_num(g, "d", (double)m->C) && add_num(g, "heads", (double)m->H) &&
              add_num(g, "layers", (double)m->L) && add_num(g, "ffn", (double)m->F) &&
              add_num(g, "classes", (double)m->nclass) && cJSON_AddBoolToObject(g, "lm", m->lm) &&
              (m->src_tokens < 0 || (add_num(g, "src_vocab", (double)m->src_vocab) &&
                                     add_num(g, "src_max_T", (double)m->src_max_T))) &&
              (inputs = cJSON_AddArrayToObject(g, "inputs")) && (params = cJSON_AddArrayToObject(g, "params")) &&
              (nodes = cJSON_AddArrayToObject(g, "nodes"));
    for (int64_t v = 0; okk && v < m->nvalues; v++) {
        const pare_value *val = &m->values[v];
        if (val->producer >= 0) continue;
        cJSON *o = cJSON_CreateObject();
        okk = o && cJSON_AddItemToArray(inputs, o) && add_str(o, "name", val->name) &&
              add_str(o, "kind", kind_names[val->kind]) && add_str(o, "rows", rows_names[val->rows]) &&
              add_num(o, "cols", (double)val->cols);
    }
    for (int64_t i = 0; okk && i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        cJSON *o = cJSON_CreateObject(), *shape = NULL;
        okk = o && cJSON_AddItemToArray(params, o) && add_str(o, "name", p->name) &&
              (shape = cJSON_AddArrayToObject(o, "shape")) && cJSON_AddBoolToObject(o, "trainable", p->trainable);
        for (int d = 0; okk && d < p->ndim; d++) okk = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)p->shape[d]));
    }
    for (int64_t i = 0; okk && i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        cJSON *o = cJSON_CreateObject(), *in = NULL, *pr = NULL, *at = NULL;
        okk = o && cJSON_AddItemToArray(nodes, o) && add_str(o, "op", pare_op_name(n->op)) && add_str(o, "name", n->name) &&
              (in = cJSON_AddArrayToObject(o, "in")) && (pr = cJSON_AddArrayToObject(o, "params")) &&
              add_str(o, "rows", rows_names[m->values[n->out].rows]) && add_num(o, "cols", (double)m->values[n->out].cols) &&
              (at = attrs_json(n)) && cJSON_AddItemToObject(o, "attrs", at);
        if (!okk && at && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "attrs"))) cJSON_Delete(at);
        if (okk && n->ntf) okk = tf_json(m, n, o);
        if (okk && (n->in_col[0] || n->in_col[1] || n->in_col[2])) { /* column views (fusion), absent when none */
            cJSON *cols = cJSON_AddArrayToObject(o, "in_col");
            okk = cols != NULL;
            for (int k = 0; okk && k < n->nin; k++) okk = cJSON_AddItemToArray(cols, cJSON_CreateNumber((double)n->in_col[k]));
        }
        for (int k = 0; okk && k < n->nin; k++) okk = cJSON_AddItemToArray(in, cJSON_CreateString(m->values[n->in[k]].name));
        for (int k = 0; okk && k < n->nparam; k++)
            okk = cJSON_AddItemToArray(pr, cJSON_CreateString(m->params[n->param[k]].name));
    }
    if (okk && m->logits >= 0) okk = add_str(g, "logits", m->values[m->logits].name);
    if (okk && m->loss >= 0) okk = add_str(g, "loss", m->values[m->loss].name);
    char *text = okk ? cJSON_PrintUnformatted(g) : NULL;
    cJSON_Delete(g);
    if (!text) return pare_fail(PARE_ENOMEM, "out of memory writing the graph of a %s", m->kind);
    *out = text;
    return PARE_OK;
}

/* ---- reading ---- */

#define FAIL(...) return pare_fail(PARE_EFORMAT, __VA_ARGS__)

static pare_status get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *v, const char *where)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(e) || !(e->valuedouble >= (double)lo && e->valuedouble <= (double)hi) ||
        e->valuedouble != floor(e->valuedouble))
        FAIL("graph: %s: \"%s\" must be an integer in [%lld, %lld]", where, key, (long long)lo, (long long)hi);
    *v = (int64_t)e->valuedouble;
    return PARE_OK;
}

static pare_status get_float(const cJSON *o, const char *key, double lo, double hi, float *v, const char *where)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(e) || !(e->valuedouble >= lo && e->valuedouble <= hi))
        FAIL("graph: %s: \"%s\" must be a number in [%g, %g]", where, key, lo, hi);
    *v = (float)e->valuedouble;
    return PARE_OK;
}

static pare_status get_str(const cJSON *o, const char *key, size_t max, const char **v, const char *where)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(e) || strlen(e->valuestring) >= max)
        FAIL("graph: %s: \"%s\" must be a string of fewer than %zu bytes", where, key, max);
    *v = e->valuestring;
    return PARE_OK;
}

static pare_status get_enum(const cJSON *o, const char *key, const char *const *names, int n, int *v, const char *where)
{
    const char *s;
    PARE_TRY(get_str(o, key, 64, &s, where));
    *v = name_index(names, n, s);
    if (*v < 0) FAIL("graph: %s: \"%s\" is '%s', not one of the known kinds", where, key, s);
    return PARE_OK;
}

static pare_status get_array(const cJSON *o, const char *key, int max, const cJSON **a, const char *where)
{
    *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(*a) || cJSON_GetArraySize(*a) > max)
        FAIL("graph: %s: \"%s\" must be an array of at most %d entries", where, key, max);
    return PARE_OK;
}

static pare_status read_attrs(const cJSON *a, pare_node_attrs *at, char *spec, const char *where)
{
    if (!cJSON_IsObject(a)) FAIL("graph: %s: \"attrs\" must be an object", where);
    int64_t v;
    const char *s;
    int e;
    PARE_TRY(get_int(a, "heads", 0, 65536, &v, where));
    at->heads = (int)v;
    PARE_TRY(get_int(a, "causal", 0, 1, &v, where));
    at->causal = (int)v;
    PARE_TRY(get_int(a, "bmm_i8", 0, 2, &v, where));
    at->bmm_i8 = (int)v;
    PARE_TRY(get_str(a, "attn", PARE_ATTN_SPEC_MAX, &s, where));
    memcpy(spec, s, strlen(s) + 1); /* the attention's canonical spec: resolved by the caller */
    PARE_TRY(get_float(a, "p", 0, 0.95, &at->p, where));
    PARE_TRY(get_enum(a, "pool", pool_names, PARE_POOL_COUNT, &e, where));
    at->pool = (pare_pool_mode)e;
    PARE_TRY(get_float(a, "weight", -1e30, 1e30, &at->weight, where));
    PARE_TRY(get_float(a, "temperature", 0, 1e30, &at->temperature, where));
    /* eps (0: LayerNorm's default 1e-5), gelu_erf and pos_offset are absent in checkpoints written before the
     * Hugging Face architectures (issue 12): they mean the defaults there */
    at->eps = 0, at->gelu_erf = 0, at->pos_offset = 0;
    if (cJSON_GetObjectItemCaseSensitive(a, "eps")) PARE_TRY(get_float(a, "eps", 0, 1, &at->eps, where));
    if (cJSON_GetObjectItemCaseSensitive(a, "gelu_erf")) {
        PARE_TRY(get_int(a, "gelu_erf", 0, 1, &v, where));
        at->gelu_erf = (int)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(a, "pos_offset")) {
        PARE_TRY(get_int(a, "pos_offset", 0, 1 << 20, &v, where));
        at->pos_offset = (int)v;
    }
    at->scale = 0; /* absent in checkpoints written before the embedding scale existed */
    if (cJSON_GetObjectItemCaseSensitive(a, "scale")) PARE_TRY(get_float(a, "scale", 0, 1e6, &at->scale, where));
    at->keep = 0; /* token pruning's share kept (TOKEN_SELECT, TOKEN_LENGTHS); absent for every other node */
    if (cJSON_GetObjectItemCaseSensitive(a, "keep")) PARE_TRY(get_float(a, "keep", 0, 1, &at->keep, where));
    /* the fusion attributes (docs/fusion.md): absent for nodes without them and in older checkpoints */
    at->epilogue = 0;
    if (cJSON_GetObjectItemCaseSensitive(a, "epilogue")) {
        PARE_TRY(get_str(a, "epilogue", 16, &s, where));
        at->epilogue = -1;
        for (int k = 0; k < PARE_EPILOGUE_COUNT; k++)
            if (!strcmp(pare_epilogue_name(k), s)) at->epilogue = k;
        if (at->epilogue < 0) FAIL("graph: %s: \"epilogue\" is '%s', not none, gelu, gelu_erf or relu", where, s);
    }
    at->strided = at->head_dim = 0;
    if (cJSON_GetObjectItemCaseSensitive(a, "strided")) {
        PARE_TRY(get_int(a, "strided", 0, 1, &v, where));
        at->strided = (int)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(a, "head_dim")) {
        PARE_TRY(get_int(a, "head_dim", 0, 1 << 20, &v, where));
        at->head_dim = (int)v;
    }
    at->dtype = PARE_F32; /* absent in checkpoints written before 16-bit activations (issue 15) */
    if (cJSON_GetObjectItemCaseSensitive(a, "dtype")) {
        PARE_TRY(get_str(a, "dtype", 16, &s, where));
        if (pare_dtype_parse(s, &at->dtype) != PARE_OK) return pare_fail_ctx(PARE_EFORMAT, "graph: %s", where);
    }
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(a, "tt"); /* TT_LINEAR only; the node check validates it */
    if (tt) {
        const char *keys[3] = {"n", "k", "r"};
        int64_t *vals[3] = {at->tt.n, at->tt.k, at->tt.r};
        if (!cJSON_IsObject(tt)) FAIL("graph: %s: \"tt\" must be an object of \"n\", \"k\" and \"r\" arrays", where);
        for (int i = 0; i < 3; i++) {
            const cJSON *arr, *x;
            PARE_TRY(get_array(tt, keys[i], PARE_TT_MAX + 1, &arr, where));
            int cnt = cJSON_GetArraySize(arr), j = 0;
            if (i == 0) at->tt.d = cnt;
            if (cnt < 2 || cnt != at->tt.d + (i == 2) || cnt > PARE_TT_MAX + (i == 2))
                FAIL("graph: %s: \"tt\" needs n and k of 2..%d factors each and d + 1 ranks", where, PARE_TT_MAX);
            cJSON_ArrayForEach(x, arr)
            {
                if (!cJSON_IsNumber(x) || !(x->valuedouble >= 1 && x->valuedouble <= (double)(1 << 24)) ||
                    x->valuedouble != floor(x->valuedouble))
                    FAIL("graph: %s: \"tt\".%s[%d] must be an integer in [1, %d]", where, keys[i], j, 1 << 24);
                vals[i][j++] = (int64_t)x->valuedouble;
            }
        }
    }
    return PARE_OK;
}

/* The weight transforms of the node just added (its "tf" array, absent for none), attached through
 * pare_node_attach, which checks kinds, operands and parameters; shapes are checked with the graph. */
static pare_status read_tf(pare_model *m, const cJSON *arr, const char *where)
{
    if (!arr) return PARE_OK;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PARE_NODE_MAX_TF)
        FAIL("graph: %s: \"tf\" must be an array of at most %d transforms", where, PARE_NODE_MAX_TF);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        pare_transform t = {.aux = {-1, -1}};
        const char *kind, *operand;
        int64_t v;
        PARE_TRY(get_str(e, "kind", 64, &kind, where));
        PARE_TRY(get_str(e, "operand", 64, &operand, where));
        t.kind = -1;
        for (int k = 0; k < PARE_TF_COUNT; k++)
            if (!strcmp(pare_tf_name(k), kind)) t.kind = k;
        if (t.kind < 0) FAIL("graph: %s: unknown transform kind '%s'", where, kind);
        t.operand = name_index(operand_names, PARE_TF_OPERAND_COUNT, operand);
        if (t.operand < 0) FAIL("graph: %s: transform operand '%s' is not weight or input", where, operand);
        PARE_TRY(get_int(e, "bits", 0, 8, &v, where));
        t.bits = (int)v;
        PARE_TRY(get_int(e, "learn", 0, 1, &v, where));
        t.learn = (int)v;
        if (cJSON_GetObjectItemCaseSensitive(e, "group")) { /* optional: written when not 0 */
            PARE_TRY(get_int(e, "group", 0, 1 << 30, &v, where));
            t.group = (int)v;
        }
        if (cJSON_GetObjectItemCaseSensitive(e, "per_token")) {
            PARE_TRY(get_int(e, "per_token", 0, 1, &v, where));
            t.per_token = (int)v;
        }
        const cJSON *aux, *x;
        PARE_TRY(get_array(e, "aux", PARE_TF_MAX_AUX, &aux, where));
        int na = 0;
        cJSON_ArrayForEach(x, aux)
        {
            if (!cJSON_IsString(x) || (t.aux[na++] = pare_model_find_param(m, x->valuestring)) < 0)
                FAIL("graph: %s: transform parameter %d names no listed parameter", where, na - 1);
        }
        if (pare_node_attach(m, m->nnodes - 1, &t) != PARE_OK) return pare_fail_ctx(PARE_EFORMAT, "graph");
    }
    return PARE_OK;
}

static pare_status read_graph(pare_model *m, const cJSON *g, uint64_t max_floats, pare_attn_config **prev)
{
    int64_t v, ver;
    PARE_TRY(get_int(g, "version", 1, 1000, &ver, "top level"));
    if (ver != GRAPH_VERSION)
        FAIL("graph: version %lld; this pare reads version %d (a newer pare wrote it?)", (long long)ver, GRAPH_VERSION);
    const char *kind;
    PARE_TRY(get_str(g, "kind", sizeof m->kind, &kind, "top level"));
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    PARE_TRY(get_int(g, "vocab", 1, 1e9, &m->vocab, "top level"));
    PARE_TRY(get_int(g, "max_T", 1, 1e7, &m->max_T, "top level"));
    PARE_TRY(get_int(g, "d", 0, MAX_COLS, &m->C, "top level"));
    PARE_TRY(get_int(g, "heads", 0, MAX_COLS, &m->H, "top level"));
    PARE_TRY(get_int(g, "layers", 0, MAX_COLS, &m->L, "top level"));
    PARE_TRY(get_int(g, "ffn", 0, MAX_COLS, &m->F, "top level"));
    PARE_TRY(get_int(g, "classes", 1, MAX_COLS, &m->nclass, "top level"));
    const cJSON *lm = cJSON_GetObjectItemCaseSensitive(g, "lm");
    if (!cJSON_IsBool(lm)) FAIL("graph: top level: \"lm\" must be true or false");
    m->lm = cJSON_IsTrue(lm);
    if (cJSON_GetObjectItemCaseSensitive(g, "src_vocab") || cJSON_GetObjectItemCaseSensitive(g, "src_max_T")) {
        PARE_TRY(get_int(g, "src_vocab", 1, 1e9, &m->src_vocab, "top level"));  /* encoder-decoder models */
        PARE_TRY(get_int(g, "src_max_T", 1, 1e7, &m->src_max_T, "top level"));
    }

    const cJSON *inputs, *params, *nodes, *e;
    PARE_TRY(get_array(g, "inputs", 1000, &inputs, "top level"));
    PARE_TRY(get_array(g, "params", 1 << 20, &params, "top level"));
    PARE_TRY(get_array(g, "nodes", 1 << 20, &nodes, "top level"));
    char where[PARE_NAME_MAX + 32];
    cJSON_ArrayForEach(e, inputs)
    {
        const char *name;
        int kind_i, rows;
        PARE_TRY(get_str(e, "name", PARE_NAME_MAX, &name, "an input"));
        snprintf(where, sizeof where, "input '%s'", name);
        PARE_TRY(get_enum(e, "kind", kind_names, PARE_VAL_KIND_COUNT, &kind_i, where));
        PARE_TRY(get_enum(e, "rows", rows_names, PARE_ROWS_COUNT, &rows, where));
        PARE_TRY(get_int(e, "cols", 1, MAX_COLS, &v, where));
        if (kind_i == PARE_VAL_ACT || kind_i == PARE_VAL_CACHE) FAIL("graph: %s: an input cannot be of kind %s", where, kind_names[kind_i]);
        if (pare_model_find_value(m, name) >= 0) FAIL("graph: %s: the name is used twice", where);
        int id;
        if (kind_i == PARE_VAL_TARGET) id = pare_model_add_target(m, name, (pare_rows)rows, v);
        else {
            int *slot = kind_i == PARE_VAL_TOKENS        ? &m->tokens
                        : kind_i == PARE_VAL_LENGTHS     ? &m->lengths
                        : kind_i == PARE_VAL_TYPES       ? &m->types
                        : kind_i == PARE_VAL_SRC_TOKENS  ? &m->src_tokens
                        : kind_i == PARE_VAL_SRC_LENGTHS ? &m->src_lengths
                                                         : &m->labels;
            if (kind_i == PARE_VAL_SRC_TOKENS && m->src_max_T < 1)
                FAIL("graph: %s: a source input needs \"src_vocab\" and \"src_max_T\" at the top level", where);
            if (*slot >= 0) FAIL("graph: %s: a second %s input", where, kind_names[kind_i]);
            id = pare_model_add_input(m, (pare_value_kind)kind_i, name);
            if (id >= 0) {
                /* the rows pare_model_add_input gives the kind; labels are per token or per sequence */
                if (v != 1 || (kind_i == PARE_VAL_LABELS ? rows > PARE_ROWS_SEQS : rows != (int)m->values[id].rows))
                    FAIL("graph: %s: rows %s and %lld columns do not fit a %s input", where, rows_names[rows], (long long)v,
                         kind_names[kind_i]);
                m->values[id].rows = (pare_rows)rows;
            }
        }
        if (id < 0) return pare_fail_ctx(PARE_EFORMAT, "graph: %s", where);
    }
    uint64_t floats = 0;
    cJSON_ArrayForEach(e, params)
    {
        const char *name;
        const cJSON *shape, *d, *tr = cJSON_GetObjectItemCaseSensitive(e, "trainable");
        PARE_TRY(get_str(e, "name", PARE_NAME_MAX, &name, "a parameter"));
        snprintf(where, sizeof where, "parameter '%s'", name);
        PARE_TRY(get_array(e, "shape", 2, &shape, where));
        if (!cJSON_IsBool(tr)) FAIL("graph: %s: \"trainable\" must be true or false", where);
        int64_t sh[2] = {1, 1};
        int ndim = 0;
        cJSON_ArrayForEach(d, shape)
        {
            if (!cJSON_IsNumber(d) || !(d->valuedouble >= 1 && d->valuedouble <= (double)MAX_COLS) ||
                d->valuedouble != floor(d->valuedouble))
                FAIL("graph: %s: shape entries must be integers in [1, %lld]", where, (long long)MAX_COLS);
            sh[ndim++] = (int64_t)d->valuedouble;
        }
        if (ndim < 1) FAIL("graph: %s: the shape needs 1 or 2 dimensions", where);
        floats += (uint64_t)sh[0] * (uint64_t)sh[1];
        if (floats > max_floats)
            FAIL("graph: the parameters up to '%s' hold %llu floats, more than the file's data can fill (%llu)", name,
                 (unsigned long long)floats, (unsigned long long)max_floats);
        if (pare_model_find_param(m, name) >= 0) FAIL("graph: %s: the name is used twice", where);
        if (pare_model_add_param(m, name, ndim, sh, cJSON_IsTrue(tr)) < 0) return pare_fail_ctx(PARE_ENOMEM, "graph: %s", where);
    }
    int64_t prev_shape[3] = {0, 0, 0};
    cJSON_ArrayForEach(e, nodes)
    {
        const char *name, *opname;
        const cJSON *in, *pr, *x;
        int rows;
        PARE_TRY(get_str(e, "name", PARE_NAME_MAX, &name, "a node"));
        snprintf(where, sizeof where, "node '%s'", name);
        PARE_TRY(get_str(e, "op", 64, &opname, where));
        int op = -1;
        for (int k = 0; k < PARE_OP_COUNT && op < 0; k++)
            if (!strcmp(pare_op_name((pare_op_id)k), opname)) op = k;
        if (op < 0) FAIL("graph: %s: unknown op '%s'", where, opname);
        PARE_TRY(get_array(e, "in", PARE_NODE_MAX_IN, &in, where));
        PARE_TRY(get_array(e, "params", PARE_NODE_MAX_PARAMS, &pr, where));
        PARE_TRY(get_enum(e, "rows", rows_names, PARE_ROWS_COUNT, &rows, where));
        PARE_TRY(get_int(e, "cols", 1, MAX_COLS, &v, where));
        int ins[PARE_NODE_MAX_IN], prm[PARE_NODE_MAX_PARAMS], nin = 0, np = 0;
        cJSON_ArrayForEach(x, in)
        {
            if (!cJSON_IsString(x) || (ins[nin++] = pare_model_find_value(m, x->valuestring)) < 0)
                FAIL("graph: %s: input %d names no input or earlier node", where, nin - 1);
        }
        cJSON_ArrayForEach(x, pr)
        {
            if (!cJSON_IsString(x) || (prm[np++] = pare_model_find_param(m, x->valuestring)) < 0)
                FAIL("graph: %s: parameter %d names no listed parameter", where, np - 1);
        }
        if (nin < 1) FAIL("graph: %s: no input", where);
        pare_node_attrs at = {0};
        char spec[PARE_ATTN_SPEC_MAX];
        PARE_TRY(read_attrs(cJSON_GetObjectItemCaseSensitive(e, "attrs"), &at, spec, where));
        if (pare_model_find_value(m, name) >= 0) FAIL("graph: %s: the name is used twice", where);
        if (op == PARE_OP_ATTENTION && spec[0]) {
            /* a variant must exist at max_T (its learned parameters are sized there): resolved once and kept,
             * as the builder does; consecutive layers with one spec and shape share the configuration */
            int64_t C = v, H = at.heads;
            if (H < 1 || C % H) FAIL("graph: %s: %lld heads do not divide %lld columns", where, (long long)H, (long long)C);
            if (!*prev || strcmp(spec, (*prev)->spec) != 0 || H != prev_shape[0] || C != prev_shape[1] ||
                at.causal != prev_shape[2]) {
                pare_attn_config_release(*prev);
                *prev = NULL;
                if (pare_attn_config_parse(prev, spec) != PARE_OK ||
                    pare_attn_config_keep(*prev, m->max_T, H, C / H, at.causal) != PARE_OK)
                    return pare_fail_ctx(PARE_EFORMAT, "graph: %s", where);
                prev_shape[0] = H, prev_shape[1] = C, prev_shape[2] = at.causal;
            }
            at.attn = *prev;
        }
        if (pare_model_add_node(m, (pare_op_id)op, name, ins, nin, prm, np, (pare_rows)rows, v, at) < 0)
            return pare_fail_ctx(PARE_EINVAL, "graph: %s", where);
        pare_node *nd = &m->nodes[m->nnodes - 1];
        at.attn = nd->a.attn; /* the node's own reference (the default configuration for dense attention) */
        nd->a = at;           /* exactly as written (the builder turns a zero loss weight into 1) */
        PARE_TRY(read_tf(m, cJSON_GetObjectItemCaseSensitive(e, "tf"), where));
        const cJSON *cols = cJSON_GetObjectItemCaseSensitive(e, "in_col"); /* column views; pare_model_check judges them */
        if (cols) {
            const cJSON *c;
            int k = 0;
            PARE_TRY(get_array(e, "in_col", nin, &cols, where));
            cJSON_ArrayForEach(c, cols)
            {
                if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0 && c->valuedouble <= (double)MAX_COLS) ||
                    c->valuedouble != floor(c->valuedouble))
                    FAIL("graph: %s: \"in_col\"[%d] must be an integer in [0, %lld]", where, k, (long long)MAX_COLS);
                m->nodes[m->nnodes - 1].in_col[k++] = (int64_t)c->valuedouble;
            }
        }
    }
    const char *s;
    if (cJSON_GetObjectItemCaseSensitive(g, "logits")) {
        PARE_TRY(get_str(g, "logits", PARE_NAME_MAX, &s, "top level"));
        if ((m->logits = pare_model_find_value(m, s)) < 0 || m->values[m->logits].producer < 0)
            FAIL("graph: logits '%s' is not a node's output", s);
    }
    if (cJSON_GetObjectItemCaseSensitive(g, "loss")) {
        PARE_TRY(get_str(g, "loss", PARE_NAME_MAX, &s, "top level"));
        if ((m->loss = pare_model_find_value(m, s)) < 0 || m->values[m->loss].producer < 0 ||
            (m->nodes[m->values[m->loss].producer].op != PARE_OP_XENT && pare_model_regression_target(m) < 0))
            FAIL("graph: loss '%s' is not a cross-entropy node's output, nor a regression head's mse of the logits "
                 "(B, 1) against a target (B, 1)", s);
    }
    if (m->tokens < 0 || m->lengths < 0 || m->logits < 0 || m->loss < 0 || m->labels < 0)
        FAIL("graph: a model needs tokens, lengths and labels inputs, logits and a loss");
    PARE_TRY(pare_model_check(m));
    return PARE_OK;
}

pare_status pare_graph_from_json(pare_model **out, const char *json, uint64_t max_floats)
{
    *out = NULL;
    cJSON *g = cJSON_Parse(json);
    if (!cJSON_IsObject(g)) {
        cJSON_Delete(g);
        return pare_fail(PARE_EFORMAT, "graph: not a JSON object");
    }
    pare_model *m = pare_model_new("");
    if (!m) {
        cJSON_Delete(g);
        return PARE_ENOMEM;
    }
    pare_attn_config *prev = NULL; /* the last attention configuration read (graph.c takes references) */
    pare_status st = read_graph(m, g, max_floats, &prev);
    pare_attn_config_release(prev);
    cJSON_Delete(g);
    if (st != PARE_OK) {
        pare_model_free(m);
        return st;
    }
    *out = m;
    return PARE_OK;
}
