/* tp.c — tensor parallelism (dist/tp.h): slicing a replicated transformer into this rank's shard, reading back
 * how each parameter was split, gathering shards, and the global gradient norm over them.
 *
 * Megatron-LM (Shoeybi et al. 2019, §3): the first Linear of each half-block is split by output columns
 * (column-parallel: the attention's qkv, whole heads at a time; the FFN's up), the second by input rows
 * (row-parallel: attn.out, ffn.down), so the nonlinearity in between (the attention of a head, GELU) needs no
 * communication, and one all-reduce (g) per half-block restores the replicated residual stream; its conjugate
 * f sums the input gradient backward. The slicing reuses structured pruning's rewrites (graph/rewrite.h):
 * dropping the other ranks' heads slices qkv's rows and out's columns, dropping the other ranks' FFN channels
 * slices up's rows and down's columns; f and g are then inserted around them and the row-parallel bias moves
 * onto g (added once, after the sum).
 *
 * Deliberately not here: see tp.h (vocabulary-parallel head, sequence parallelism, TP × DP grids, encdec).
 */
#include "tp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/tensor.h"
#include "data/task.h"
#include "dist/dist.h"
#include "graph/exec.h"
#include "train/train.h"
#include "graph/rewrite.h"

#define TP_MAX_HALVES 4096 /* half-blocks (attention, FFN) a model may have: 2048 layers */

int pare_tp_ranks(const pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_TP_COPY || m->nodes[i].op == PARE_OP_TP_REDUCE) return m->nodes[i].a.tp_ranks;
    return 0;
}

int pare_tp_rank(const pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_TP_COPY || m->nodes[i].op == PARE_OP_TP_REDUCE) return m->nodes[i].a.tp_rank;
    return -1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The first node after `from` of op `op` reading value v, or -1. */
static int64_t reader(const pare_model *m, int64_t from, int v, pare_op_id op)
{
    for (int64_t i = from + 1; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->op != op) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == v) return i;
    }
    return -1;
}

/* One half-block to split: its column-parallel and row-parallel Linears (node names: the rewrites and
 * insertions move indices, names stay), the prefix f and g are named after, and the width split (heads for
 * attention, channels for the FFN). */
typedef struct tp_half {
    char col[PARE_NAME_MAX], row[PARE_NAME_MAX], prefix[PARE_NAME_MAX], what[PARE_NAME_MAX];
    int attention;
    int64_t width;
} tp_half;

/* Find every half-block of m and check it can be split over `ranks`: messages name the node and the sizes. */
static pare_status find_halves(const pare_model *m, int ranks, tp_half *h, int *nh)
{
    *nh = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        switch (n->op) {
        case PARE_OP_HEAD_SPLIT:
        case PARE_OP_BMM_QK:
            return pare_fail(PARE_EINVAL, "tensor_parallel: node %s is attention as explicit ops (fused=false); tensor "
                             "parallelism splits the fused attention op's heads: build the model with fused=true", n->name);
        case PARE_OP_CROSS_ATTENTION:
            return pare_fail(PARE_ENOTSUP, "tensor_parallel: node %s is cross-attention (an encoder-decoder): not split yet "
                             "(kinds encoder, decoder and tagger are)", n->name);
        case PARE_OP_TOKEN_SELECT:
            return pare_fail(PARE_ENOTSUP, "tensor_parallel: node %s prunes tokens: not split (split first)", n->name);
        default: break;
        }
        for (int k = 0; k < n->nparam; k++)
            if (m->params[n->param[k]].format != PARE_FMT_F32)
                return pare_fail(PARE_ENOTSUP, "tensor_parallel: %s is stored as %s; shards are split from f32 weights "
                                 "(split first, then compress the gathered model)", m->params[n->param[k]].name,
                                 pare_format_name(m->params[n->param[k]].format));
        if (n->ntf)
            return pare_fail(PARE_ENOTSUP, "tensor_parallel: node %s has a weight transform (mask, fake quantization or "
                             "head gate); shards are split from plain Linears", n->name);
        if (*nh >= TP_MAX_HALVES) return pare_fail(PARE_EINVAL, "tensor_parallel: more than %d half-blocks", TP_MAX_HALVES);
        tp_half *t = &h[*nh];
        if (n->op == PARE_OP_ATTENTION) {
            if (n->nparam)
                return pare_fail(PARE_ENOTSUP, "tensor_parallel: %s's attention (%s) has learned parameters shared by its "
                                 "heads; not split (dense attention and per-head variants are)", n->name,
                                 n->a.attn ? n->a.attn->spec : "full");
            int q = m->values[n->in[0]].producer;
            int64_t o = reader(m, i, n->out, PARE_OP_LINEAR);
            if (q < 0 || m->nodes[q].op != PARE_OP_LINEAR || o < 0)
                return pare_fail(PARE_EINVAL, "tensor_parallel: %s is not a qkv Linear → attention → Linear chain", n->name);
            if (n->a.heads % ranks != 0)
                return pare_fail(PARE_EINVAL, "tensor_parallel: %s: heads=%d is not divisible by ranks=%d (each rank holds "
                                 "heads/ranks whole heads)", n->name, n->a.heads, ranks);
            t->attention = 1, t->width = n->a.heads;
            snprintf(t->col, sizeof t->col, "%s", m->nodes[q].name);
            snprintf(t->row, sizeof t->row, "%s", m->nodes[o].name);
            snprintf(t->prefix, sizeof t->prefix, "%s", n->name);
            snprintf(t->what, sizeof t->what, "%s", n->name);
            (*nh)++;
        } else if (n->op == PARE_OP_LINEAR && ends_with(n->name, ".ffn.up")) {
            char down[PARE_NAME_MAX];
            if (snprintf(down, sizeof down, "%.*s.down", (int)(strlen(n->name) - 3), n->name) >= (int)sizeof down)
                return pare_fail(PARE_EINVAL, "tensor_parallel: %s: its down projection's name is too long", n->name);
            int64_t d = pare_model_find_node(m, down), F = m->values[n->out].cols;
            if (d < 0 || m->nodes[d].op != PARE_OP_LINEAR || m->params[m->nodes[d].param[0]].shape[1] != F)
                return pare_fail(PARE_EINVAL, "tensor_parallel: %s has no Linear %s reading its %lld channels", n->name, down,
                                 (long long)F);
            if (F % ranks != 0)
                return pare_fail(PARE_EINVAL, "tensor_parallel: %s: ffn=%lld is not divisible by ranks=%d (each rank holds "
                                 "ffn/ranks channels)", n->name, (long long)F, ranks);
            t->attention = 0, t->width = F;
            snprintf(t->col, sizeof t->col, "%s", n->name);
            snprintf(t->row, sizeof t->row, "%s", down);
            snprintf(t->prefix, sizeof t->prefix, "%.*s", (int)(strlen(n->name) - 3), n->name);
            snprintf(t->what, sizeof t->what, "%s", n->name);
            (*nh)++;
        }
    }
    return PARE_OK;
}

/* Keep columns [lo, hi) of width: drop the rest of the heads (attention) or channels (FFN) of half t. */
static pare_status keep_range(pare_model *c, const tp_half *t, int64_t lo, int64_t hi)
{
    int64_t ndrop = t->width - (hi - lo);
    if (ndrop == 0) return PARE_OK;
    pare_status st;
    if (t->attention) {
        int *drop = malloc(sizeof *drop * (size_t)ndrop);
        if (!drop) return pare_fail(PARE_ENOMEM, "tensor_parallel: out of memory");
        for (int64_t h = 0, k = 0; h < t->width; h++)
            if (h < lo || h >= hi) drop[k++] = (int)h;
        st = pare_model_drop_heads(c, pare_model_find_node(c, t->what), drop, (int)ndrop);
        free(drop);
    } else {
        int64_t *drop = malloc(sizeof *drop * (size_t)ndrop);
        if (!drop) return pare_fail(PARE_ENOMEM, "tensor_parallel: out of memory");
        for (int64_t j = 0, k = 0; j < t->width; j++)
            if (j < lo || j >= hi) drop[k++] = j;
        st = pare_model_drop_channels(c, pare_model_find_node(c, t->col), drop, ndrop);
        free(drop);
    }
    return st;
}

/* f before the column-parallel Linear (it alone reads f's output: a post-norm block's residual keeps reading
 * the LayerNorm's), g after the row-parallel one, which gives g its bias. */
static pare_status insert_f_g(pare_model *c, const tp_half *t, int rank, int ranks)
{
    char name[PARE_NAME_MAX + 4];
    pare_node_attrs a = {.tp_ranks = ranks, .tp_rank = rank};
    int64_t ci = pare_model_find_node(c, t->col);
    int x = c->nodes[ci].in[0];
    snprintf(name, sizeof name, "%s.f", t->prefix);
    int v = pare_model_insert_node(c, ci, PARE_OP_TP_COPY, name, &x, 1, NULL, 0, c->values[x].rows, c->values[x].cols, a);
    if (v < 0) return pare_fail_ctx(PARE_EINVAL, "tensor_parallel: inserting %s", name);
    c->nodes[ci + 1].in[0] = v;
    int64_t ri = pare_model_find_node(c, t->row);
    pare_node *r = &c->nodes[ri];
    int y = r->out, bias = r->nparam > 1 ? r->param[1] : -1;
    if (bias >= 0) r->nparam = 1;
    snprintf(name, sizeof name, "%s.g", t->prefix);
    int g = pare_model_insert_node(c, ri + 1, PARE_OP_TP_REDUCE, name, &y, 1, bias >= 0 ? &bias : NULL, bias >= 0,
                                   c->values[y].rows, c->values[y].cols, a);
    if (g < 0) return pare_fail_ctx(PARE_EINVAL, "tensor_parallel: inserting %s", name);
    for (int64_t i = ri + 2; i < c->nnodes; i++) /* every later reader of the row-parallel output reads g's */
        for (int k = 0; k < c->nodes[i].nin; k++)
            if (c->nodes[i].in[k] == y) c->nodes[i].in[k] = g;
    if (c->logits == y) c->logits = g;
    return PARE_OK;
}

pare_status pare_tp_split(pare_model **out, const pare_model *m, int rank, int ranks)
{
    *out = NULL;
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return pare_fail(PARE_EINVAL, "tensor_parallel: rank %d of %d ranks (rank in [0, ranks), ranks >= 1)", rank, ranks);
    if (pare_tp_ranks(m))
        return pare_fail(PARE_EINVAL, "tensor_parallel: the model is already rank %d's shard of %d (split a replicated "
                         "model)", pare_tp_rank(m), pare_tp_ranks(m));
    if (!strcmp(m->kind, "encdec"))
        return pare_fail(PARE_ENOTSUP, "tensor_parallel: kind encdec is not split yet (encoder, decoder and tagger are)");
    tp_half *h = malloc(sizeof *h * TP_MAX_HALVES);
    if (!h) return pare_fail(PARE_ENOMEM, "tensor_parallel: out of memory");
    int nh = 0;
    pare_status st = find_halves(m, ranks, h, &nh);
    pare_model *c = st == PARE_OK ? pare_model_clone(m) : NULL;
    if (st == PARE_OK && !c) st = pare_fail(PARE_ENOMEM, "tensor_parallel: out of memory cloning the model");
    for (int k = 0; k < nh && st == PARE_OK; k++) {
        int64_t per = h[k].width / ranks;
        st = keep_range(c, &h[k], rank * per, (rank + 1) * per);
    }
    for (int k = 0; k < nh && st == PARE_OK; k++) st = insert_f_g(c, &h[k], rank, ranks);
    free(h);
    if (st == PARE_OK) st = pare_model_check(c);
    if (st != PARE_OK) {
        pare_model_free(c);
        return st;
    }
    pare_model_refresh_dims(c);
    size_t used = strlen(c->applied);
    snprintf(c->applied + used, sizeof c->applied - used, "%stensor_parallel(rank=%d,ranks=%d)", used ? "+" : "", rank,
             ranks);
    *out = c;
    return PARE_OK;
}

pare_tp_split_kind pare_tp_layout(const pare_model *m, int64_t i, int *blocks)
{
    if (blocks) *blocks = 1;
    for (int64_t k = 0; k < m->nnodes; k++) {
        const pare_node *n = &m->nodes[k];
        if (n->op == PARE_OP_TP_COPY) {
            int64_t l = reader(m, k, n->out, PARE_OP_LINEAR);
            if (l < 0) continue;
            const pare_node *L = &m->nodes[l];
            if (L->param[0] != i && !(L->nparam > 1 && L->param[1] == i)) continue;
            if (blocks && reader(m, l, L->out, PARE_OP_ATTENTION) >= 0) *blocks = 3;
            return PARE_TP_ROWS;
        }
        if (n->op == PARE_OP_TP_REDUCE) {
            int p = m->values[n->in[0]].producer;
            if (p >= 0 && m->nodes[p].op == PARE_OP_LINEAR && m->nodes[p].param[0] == i) return PARE_TP_COLS;
        }
    }
    return PARE_TP_REPLICATED;
}

void pare_tp_full_shape(const pare_model *m, int64_t i, int64_t shape[2])
{
    const pare_param *p = &m->params[i];
    int P = pare_tp_ranks(m);
    shape[0] = p->shape[0], shape[1] = p->ndim > 1 ? p->shape[1] : 1;
    switch (pare_tp_layout(m, i, NULL)) {
    case PARE_TP_ROWS: shape[0] *= P; break;
    case PARE_TP_COLS: shape[1] *= P; break;
    default: break;
    }
}

pare_status pare_tp_full_param(const pare_model *m, int64_t i, int grads, float *full)
{
    const pare_param *p = &m->params[i];
    const float *src = grads ? p->grad : p->blob->data;
    if (!src) return pare_fail(PARE_EINVAL, "tp: %s has no gradient (train or compute gradients first)", p->name);
    int blocks, P = pare_tp_ranks(m), r = pare_tp_rank(m);
    pare_tp_split_kind kind = pare_tp_layout(m, i, &blocks);
    int64_t numel = pare_param_numel(p), N = p->shape[0], K = p->ndim > 1 ? p->shape[1] : 1;
    if (kind == PARE_TP_REPLICATED) {
        memcpy(full, src, (size_t)numel * sizeof(float));
        return PARE_OK;
    }
    if (pare_dist_size() != P)
        return pare_fail(PARE_EINVAL, "tp: %s is a shard of %d ranks; gathering it needs a run of %d ranks (this one has %d)",
                         p->name, P, P, pare_dist_size());
    memset(full, 0, (size_t)(numel * P) * sizeof(float));
    if (kind == PARE_TP_ROWS) { /* block s's rows [s·nb, (s+1)·nb) go to full rows s·nb·P + r·nb + [0, nb) */
        int64_t nb = N / blocks;
        for (int s = 0; s < blocks; s++)
            memcpy(full + (s * nb * P + r * nb) * K, src + s * nb * K, (size_t)(nb * K) * sizeof(float));
    } else /* COLS: full (N, K·P), this rank's columns [r·K, (r+1)·K) */
        for (int64_t n = 0; n < N; n++) memcpy(full + n * K * P + r * K, src + n * K, (size_t)K * sizeof(float));
    return pare_dist_allreduce_sum_f32(full, numel * P);
}

pare_status pare_tp_gather(pare_model *full, const pare_model *tp)
{
    if (!pare_tp_ranks(tp)) return pare_fail(PARE_EINVAL, "tp_gather: the model is not a tensor-parallel shard");
    if (pare_tp_ranks(full)) return pare_fail(PARE_EINVAL, "tp_gather: the destination is a shard; give a replicated model");
    for (int64_t i = 0; i < tp->nparams; i++) {
        const pare_param *p = &tp->params[i];
        int j = pare_model_find_param(full, p->name);
        int64_t shape[2];
        pare_tp_full_shape(tp, i, shape);
        if (j < 0) return pare_fail(PARE_EINVAL, "tp_gather: the replicated model has no parameter %s", p->name);
        pare_param *q = &full->params[j];
        int64_t q1 = q->ndim > 1 ? q->shape[1] : 1;
        if (q->shape[0] != shape[0] || q1 != shape[1] || q->format != PARE_FMT_F32)
            return pare_fail(PARE_EINVAL, "tp_gather: %s is (%lld, %lld) whole but (%lld, %lld) %s in the replicated model",
                             p->name, (long long)shape[0], (long long)shape[1], (long long)q->shape[0], (long long)q1,
                             pare_format_name(q->format));
        PARE_TRY(pare_param_make_private(q));
        PARE_TRY(pare_tp_full_param(tp, i, 0, q->blob->data));
    }
    return PARE_OK;
}

float pare_tp_clip_grad_norm(pare_model *m, float max_norm)
{
    double ss[2] = {0, 0}; /* replicated, sharded */
    int P = pare_tp_ranks(m);
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad) continue;
        int sharded = P && pare_tp_layout(m, i, NULL) != PARE_TP_REPLICATED;
        int64_t n = pare_param_numel(p);
        for (int64_t k = 0; k < n; k++) ss[sharded] += (double)p->grad[k] * p->grad[k];
    }
    if (P) pare_dist_allreduce_sum_f64(&ss[1], 1); /* fatal on MPI errors, as every collective here */
    float norm = (float)sqrt(ss[0] + ss[1]);
    pare_clip_to_norm(m, norm, max_norm);
    return norm;
}

pare_status pare_tp_batch_gradients(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, float *loss)
{
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "gradients: examples [%lld, %lld) outside the %lld of '%s'", (long long)first,
                         (long long)(first + n), (long long)d->n, d->name);
    if (d->src_tokens || pare_model_regression_target(m) >= 0 || (d->kind == PARE_TASK_LM) != m->lm)
        return pare_fail(PARE_EINVAL, "gradients: '%s' does not fit this %s (sources and regression heads are not taken "
                         "here)", d->name, m->kind);
    int64_t T = d->T;
    int64_t *idx = malloc(sizeof *idx * (size_t)n);
    int32_t *tok = malloc(sizeof *tok * (size_t)(n * T)), *len = malloc(sizeof *len * (size_t)n);
    int32_t *lab = malloc(sizeof *lab * (size_t)(n * T)), *types = malloc(sizeof *types * (size_t)(n * T));
    pare_exec *x = NULL;
    pare_status st = idx && tok && len && lab && types ? PARE_OK : pare_fail(PARE_ENOMEM, "gradients: out of memory");
    if (st == PARE_OK) st = pare_model_alloc_grads(m);
    if (st == PARE_OK) st = pare_exec_new(&x, m, n, T, PARE_EXEC_TRAIN);
    if (st == PARE_OK) {
        for (int64_t b = 0; b < n; b++) idx[b] = first + b;
        pare_dataset_gather(d, idx, n, tok, len, lab);
        st = pare_exec_bind(x, tok, len, lab);
    }
    if (st == PARE_OK && d->types && m->types >= 0) {
        pare_dataset_gather_extra(d, idx, n, types, NULL);
        st = pare_exec_bind_types(x, types);
    }
    if (st == PARE_OK) st = pare_exec_forward(x);
    if (st == PARE_OK) {
        *loss = x->loss;
        pare_model_zero_grad(m);
        st = pare_exec_backward(x);
    }
    pare_exec_free(x);
    free(idx), free(tok), free(len), free(lab), free(types);
    return st;
}
