/* transform.c — the weight-transform registry (one row per pare_tf_kind, guarded by a static assert),
 * transforms on nodes, the masks' C API, and the generic Linear path through a node's transforms that
 * ops.c and exec.c call (see transform.h). The kinds themselves are tf_mask.c, tf_fakequant.c and tf_headgate.c. */
#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "exec.h"
#include "format.h"
#include "ops.h"

static const pare_tf_traits *const kinds[] = {
    [PARE_TF_MASK] = &pare_tf_mask,
    [PARE_TF_FAKE_QUANT] = &pare_tf_fake_quant,
    [PARE_TF_HEAD_GATE] = &pare_tf_head_gate,
    [PARE_TF_QUANT_NOISE] = &pare_tf_quant_noise,
};
_Static_assert(sizeof kinds / sizeof kinds[0] == PARE_TF_COUNT, "transform registry out of date with pare_tf_kind");

const pare_tf_traits *pare_tf_get(int kind) { return (unsigned)kind < PARE_TF_COUNT ? kinds[kind] : NULL; }

const char *pare_tf_name(int kind)
{
    const pare_tf_traits *t = pare_tf_get(kind);
    return t ? t->name : "?";
}

static const char *operand_name(int operand) { return operand == PARE_TF_WEIGHT ? "weight" : "input"; }

/* ---- transforms on nodes ---- */

const pare_transform *pare_node_transform(const pare_node *n, pare_tf_operand operand)
{
    for (int i = 0; i < n->ntf; i++)
        if (n->tf[i].operand == (int)operand) return &n->tf[i];
    return NULL;
}

const pare_transform *pare_node_find_transform(const pare_node *n, pare_tf_kind kind)
{
    for (int i = 0; i < n->ntf; i++)
        if (n->tf[i].kind == (int)kind) return &n->tf[i];
    return NULL;
}

pare_status pare_node_attach(pare_model *m, int64_t node, const pare_transform *t)
{
    if (node < 0 || node >= m->nnodes) return pare_fail(PARE_EINVAL, "attaching a transform: node %lld does not exist", (long long)node);
    pare_node *n = &m->nodes[node];
    const pare_tf_traits *k = pare_tf_get(t->kind);
    if (!k) return pare_fail(PARE_EINVAL, "%s: transform kind %d is not one of 0..%d", n->name, t->kind, PARE_TF_COUNT - 1);
    if (n->op != PARE_OP_LINEAR)
        return pare_fail(PARE_EINVAL, "%s: a %s transform needs a Linear layer; this node is %s", n->name, k->name, pare_op_name(n->op));
    if ((unsigned)t->operand >= PARE_TF_OPERAND_COUNT)
        return pare_fail(PARE_EINVAL, "%s: transform operand %d is not weight (0) or input (1)", n->name, t->operand);
    const pare_transform *have = pare_node_transform(n, (pare_tf_operand)t->operand);
    if (have)
        return pare_fail(PARE_EINVAL, "%s: its %s already has a %s transform; one transform per operand (remove it first)",
                         n->name, operand_name(t->operand), pare_tf_name(have->kind));
    for (int i = 0; i < PARE_TF_MAX_AUX; i++) {
        int want = i < k->naux;
        if (want && (t->aux[i] < 0 || t->aux[i] >= m->nparams))
            return pare_fail(PARE_EINVAL, "%s: %s transform's auxiliary parameter %d is index %d, not a parameter of the model",
                             n->name, k->name, i, t->aux[i]);
    }
    if (t->kind == PARE_TF_FAKE_QUANT) {
        const pare_param *w = &m->params[n->param[0]];
        int64_t N = w->shape[0], K = w->shape[1];
        if (t->group && (t->operand != PARE_TF_WEIGHT || t->group < 0 || K % t->group))
            return pare_fail(PARE_EINVAL, "%s: fake_quant group=%d: groups are on the weight and must divide its %lld inputs",
                             n->name, t->group, (long long)K);
        if (t->per_token && t->operand != PARE_TF_INPUT)
            return pare_fail(PARE_EINVAL, "%s: fake_quant per_token applies to the input, not the weight", n->name);
        int64_t want = t->operand == PARE_TF_WEIGHT ? (t->group ? N * (K / t->group) : N) : 1;
        if (pare_param_numel(&m->params[t->aux[0]]) != want)
            return pare_fail(PARE_EINVAL, "%s: fake_quant's scales %s hold %lld values; this %s needs %lld", n->name,
                             m->params[t->aux[0]].name, (long long)pare_param_numel(&m->params[t->aux[0]]),
                             operand_name(t->operand), (long long)want);
    }
    if (n->ntf >= PARE_NODE_MAX_TF) return pare_fail(PARE_EINVAL, "%s: already %d transforms", n->name, n->ntf);
    n->tf[n->ntf++] = *t;
    return PARE_OK;
}

void pare_node_detach(pare_model *m, int64_t node, pare_tf_operand operand)
{
    pare_node *n = &m->nodes[node];
    for (int i = 0; i < n->ntf; i++)
        if (n->tf[i].operand == (int)operand) {
            for (int j = i + 1; j < n->ntf; j++) n->tf[j - 1] = n->tf[j];
            n->ntf--;
            memset(&n->tf[n->ntf], 0, sizeof n->tf[n->ntf]);
            return;
        }
}

int pare_model_has_simulated_tf(const pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].ntf; k++)
            if (pare_tf_get(m->nodes[i].tf[k].kind)->simulated) return 1;
    return 0;
}

/* ---- masks ---- */

/* The Linear node named `name`, or whose weight is named so; -1 with a message. */
static int64_t find_linear(const pare_model *m, const char *name, const char *doing)
{
    int64_t node = pare_model_find_node(m, name);
    if (node >= 0) {
        if (m->nodes[node].op != PARE_OP_LINEAR)
            return pare_fail(PARE_EINVAL, "%s: %s is a %s node; masks go on Linear weights", doing, name, pare_op_name(m->nodes[node].op)), -1;
        return node;
    }
    int p = pare_model_find_param(m, name);
    for (int64_t i = 0; p >= 0 && i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && m->nodes[i].param[0] == p) return i;
    char some[256] = "";
    size_t used = 0;
    int shown = 0;
    for (int64_t i = 0; i < m->nnodes && used < sizeof some - 1; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR)
            used += (size_t)snprintf(some + used, sizeof some - used, "%s%s", shown++ ? ", " : "", m->nodes[i].name);
    pare_fail(PARE_EINVAL, "%s: %s is %s; name a Linear layer or its weight (Linear layers: %s)", doing, name,
              p >= 0 ? "a parameter of no Linear layer" : "neither a layer nor a parameter", shown ? some : "none");
    return -1;
}

pare_status pare_model_set_mask(pare_model *m, const char *name, const float *mask, int64_t rows, int64_t cols)
{
    int64_t node = find_linear(m, name, mask ? "setting a mask" : "removing a mask");
    if (node < 0) return PARE_EINVAL;
    const pare_param *w = &m->params[m->nodes[node].param[0]];
    if (!mask) {
        pare_node_detach(m, node, PARE_TF_WEIGHT);
        return PARE_OK;
    }
    const pare_transform *have = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    if (have && have->kind != PARE_TF_MASK)
        return pare_fail(PARE_EINVAL, "mask for %s: the weight is under %s (QAT); one transform per operand: attach the mask "
                         "before applying qat, or after qat_convert on a model that is f32 again", w->name, pare_tf_name(have->kind));
    if (w->format != PARE_FMT_F32)
        return pare_fail(PARE_EINVAL, "mask for %s: the weight is stored as %s; masks act on f32 weights: set the mask on the "
                         "f32 model, bake it (pare_model_bake_mask), then quantize", w->name, pare_format_label(w));
    if (rows != w->shape[0] || cols != w->shape[1])
        return pare_fail(PARE_EINVAL, "mask for %s is (%lld, %lld); the weight is (%lld, %lld)", w->name, (long long)rows,
                         (long long)cols, (long long)w->shape[0], (long long)w->shape[1]);
    for (int64_t i = 0; i < rows * cols; i++)
        if (!(mask[i] == 0.0f || mask[i] == 1.0f))
            return pare_fail(PARE_EINVAL, "mask for %s holds %g at (%lld, %lld); a mask holds only 0 (pruned) and 1 (kept)",
                             w->name, (double)mask[i], (long long)(i / cols), (long long)(i % cols));
    char mname[PARE_NAME_MAX + 8];
    if ((size_t)snprintf(mname, sizeof mname, "%s.mask", w->name) >= PARE_NAME_MAX)
        return pare_fail(PARE_EINVAL, "mask for %s: the name %s is longer than %d characters", w->name, mname, PARE_NAME_MAX - 1);
    int64_t shape[2] = {rows, cols};
    int64_t wshape0 = w->shape[0], wshape1 = w->shape[1];
    int mp = pare_model_find_param(m, mname);
    if (mp >= 0 && (m->params[mp].ndim != 2 || m->params[mp].shape[0] != wshape0 || m->params[mp].shape[1] != wshape1))
        return pare_fail(PARE_EINVAL, "mask for %s: the model has a parameter %s of another shape", w->name, mname);
    if (mp < 0 && (mp = pare_model_add_param(m, mname, 2, shape, 0)) < 0) return PARE_ENOMEM; /* w moved with params */
    pare_param *p = &m->params[mp];
    PARE_TRY(pare_param_make_private(p)); /* clones share it until written */
    memcpy(p->blob->data, mask, sizeof(float) * (size_t)(rows * cols));
    if (!have) {
        pare_transform t = {.kind = PARE_TF_MASK, .operand = PARE_TF_WEIGHT, .aux = {mp, -1}};
        return pare_node_attach(m, node, &t);
    }
    return PARE_OK;
}

pare_status pare_model_bake_mask(pare_model *m, const char *name)
{
    int64_t node = find_linear(m, name, "baking a mask");
    if (node < 0) return PARE_EINVAL;
    const pare_transform *t = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    pare_param *w = &m->params[m->nodes[node].param[0]];
    if (!t || t->kind != PARE_TF_MASK) return pare_fail(PARE_EINVAL, "baking a mask: %s has no mask", w->name);
    const float *mk = m->params[t->aux[0]].blob->data;
    PARE_TRY(pare_param_make_private(w));
    for (int64_t i = 0; i < pare_param_numel(w); i++) w->blob->data[i] *= mk[i];
    pare_node_detach(m, node, PARE_TF_WEIGHT);
    return PARE_OK;
}

/* ---- the Linear path through transforms ----
 * Workspace of a Linear node, per transform in tf order: the effective operand (rows·cols), in training
 * its gradient (rows·cols), then the kind's scratch. Forward and backward lay it out the same way, so
 * backward's recompute finds the kind's scratch where its forward put it. */
typedef struct tf_slot {
    pare_tf_ctx c;
    const float *master;
    float *eff, *deff; /* (rows, cols) */
} tf_slot;

static void layout(tf_slot *s, struct pare_exec *x, const pare_node *n, int64_t M, int update)
{
    const pare_param *w = &x->m->params[n->param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    int train = x->mode == PARE_EXEC_TRAIN;
    float *p = x->workspace;
    for (int i = 0; i < n->ntf; i++) {
        const pare_transform *t = &n->tf[i];
        const pare_tf_traits *k = pare_tf_get(t->kind);
        int64_t rows = t->operand == PARE_TF_WEIGHT ? N : M;
        s[i].c = (pare_tf_ctx){.m = x->m, .n = n, .t = t, .rows = rows, .cols = K, .update = update, .train = train,
                               .rng = train ? &x->rng : NULL};
        s[i].master = t->operand == PARE_TF_WEIGHT ? w->blob->data : (const float *)x->buf[n->in[0]];
        s[i].eff = p, p += rows * K;
        s[i].deff = train ? p : NULL, p += train ? rows * K : 0;
        s[i].c.scratch = p, p += k->scratch ? k->scratch(t, rows, K) : 0;
    }
}

size_t pare_tf_workspace(const struct pare_exec *x, const pare_node *n, int64_t M)
{
    const pare_param *w = &x->m->params[n->param[0]];
    int64_t N = w->shape[0], K = w->shape[1], floats = 0;
    for (int i = 0; i < n->ntf; i++) {
        const pare_transform *t = &n->tf[i];
        const pare_tf_traits *k = pare_tf_get(t->kind);
        int64_t rows = t->operand == PARE_TF_WEIGHT ? N : M;
        floats += rows * K * (x->mode == PARE_EXEC_TRAIN ? 2 : 1) + (k->scratch ? k->scratch(t, rows, K) : 0);
    }
    return sizeof(float) * (size_t)floats;
}

/* Run the kinds' forwards over the slots; *W, *in the effective operands. */
static pare_status run_forward(const tf_slot *s, struct pare_exec *x, const pare_node *n, const float **W, const float **in)
{
    *W = x->m->params[n->param[0]].blob->data;
    *in = (const float *)x->buf[n->in[0]];
    for (int i = 0; i < n->ntf; i++) {
        PARE_TRY(pare_tf_get(n->tf[i].kind)->forward(&s[i].c, s[i].eff, s[i].master));
        if (n->tf[i].operand == PARE_TF_WEIGHT) *W = s[i].eff;
        else *in = s[i].eff;
    }
    return PARE_OK;
}

pare_status pare_tf_forward(struct pare_exec *x, const pare_node *n, int64_t M, int update, const float **W, const float **in)
{
    tf_slot s[PARE_NODE_MAX_TF];
    layout(s, x, n, M, update);
    return run_forward(s, x, n, W, in);
}

void pare_tf_backward(struct pare_exec *x, const pare_node *n, int64_t M, float *dx, float *dW, float *dbias, const float *dy)
{
    const pare_param *w = &x->m->params[n->param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    tf_slot s[PARE_NODE_MAX_TF];
    layout(s, x, n, M, 0);
    const float *We, *xe;
    pare_status st = run_forward(s, x, n, &We, &xe); /* the workspace is shared by every node: recompute */
    (void)st; /* the training forward of this batch ran the same computation and succeeded */
    float *gW = dW, *gx = dx; /* where the f32 backward writes: the masters' gradients, or scratch for transformed ones */
    for (int i = 0; i < n->ntf; i++) {
        memset(s[i].deff, 0, sizeof(float) * (size_t)(s[i].c.rows * K));
        if (n->tf[i].operand == PARE_TF_WEIGHT) gW = s[i].deff;
        else gx = s[i].deff;
    }
    pare_linear_f32_backward(gx, gW, dbias, dy, xe, We, M, N, K);
    for (int i = 0; i < n->ntf; i++) /* each kind's rule: d(effective) into the master's gradient and its aux */
        pare_tf_get(n->tf[i].kind)->backward(&s[i].c, n->tf[i].operand == PARE_TF_WEIGHT ? dW : dx, s[i].deff, s[i].master);
}

int pare_tf_foldable(const pare_node *n)
{
    for (int i = 0; i < n->ntf; i++)
        if (n->tf[i].operand != PARE_TF_WEIGHT || !pare_tf_get(n->tf[i].kind)->foldable) return 0;
    return 1;
}

pare_status pare_tf_fold_weight(pare_model *m, const pare_node *n, float *W)
{
    const pare_param *w = &m->params[n->param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    memcpy(W, w->blob->data, sizeof(float) * (size_t)(N * K));
    for (int i = 0; i < n->ntf; i++) {
        const pare_transform *t = &n->tf[i];
        const pare_tf_traits *k = pare_tf_get(t->kind);
        int64_t ns = k->scratch ? k->scratch(t, N, K) : 0;
        float *scratch = ns ? malloc(sizeof(float) * (size_t)ns) : NULL, *src = malloc(sizeof(float) * (size_t)(N * K));
        if ((ns && !scratch) || !src) {
            free(scratch), free(src);
            return pare_fail(PARE_ENOMEM, "out of memory folding the transforms of %s", n->name);
        }
        memcpy(src, W, sizeof(float) * (size_t)(N * K));
        pare_tf_ctx c = {.m = m, .n = n, .t = t, .rows = N, .cols = K, .scratch = scratch, .update = 0};
        pare_status st = k->forward(&c, W, src);
        free(scratch), free(src);
        PARE_TRY(st);
    }
    return PARE_OK;
}
