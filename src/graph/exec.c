/* exec.c — executor: binds (B, T), plans memory, runs forward and backward through the op registry.
 *
 * The inference planner is greedy first-fit by decreasing size over value lifetimes [def, last use]
 * in the straight-line node order (the classic offset-assignment heuristic of TFLite's and ONNX
 * Runtime's arena planners). Training keeps everything: backward needs it.
 *
 * Sizes come from dtypes: a value's buffer is rows × cols × its dtype's size (bf16 and f16 2 bytes,
 * masks 1, inputs and f32 4), rounded up to PARE_ALIGN. A gradient is f32 whatever its value's dtype
 * (4 bytes an element): backward adds into gradients, and sums in bf16 would drop the small terms that
 * training lives on (the cast's backward rounds what it passes on to the input's dtype, kernels/cast.h).
 * The graph's dtypes are checked once here (pare_model_check_dtypes), never per forward.
 *
 * Options (pare_exec_new_opts): a node range (a pipeline stage runs its layers only: values it neither
 * makes nor reads get no memory) and activation checkpointing (section "Checkpointing" below: the values
 * internal to a transformer block live only while that block runs, forward or recomputed in backward).
 * Deliberately not here: choosing which blocks to checkpoint (all of them are, Chen et al.'s sqrt(n)
 * segments would keep some), offloading activations to host memory.
 */
#include "exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/tensor.h"
#include "core/timer.h"
#include "format.h"
#include "loss_internal.h"
#include "ops.h"
#include "transform.h"

int64_t pare_exec_seq_len(const pare_exec *x, const pare_value *v)
{
    return v->rows == PARE_ROWS_SRC || v->rows == PARE_ROWS_CACHE_SATT ? x->S : pare_tokens_kept(x->T, v->keep);
}

int64_t pare_exec_rows(const pare_exec *x, const pare_value *v)
{
    const int64_t Tk = pare_tokens_kept(x->T, v->keep); /* T, or fewer after token pruning */
    switch (v->rows) {
    case PARE_ROWS_SEQS: return x->B;
    case PARE_ROWS_CACHE_ATT: return x->B * Tk * Tk;
    case PARE_ROWS_ONE: return 1;
    case PARE_ROWS_SRC: return x->B * x->S;
    case PARE_ROWS_CACHE_SATT: return x->B * x->S * x->S;
    case PARE_ROWS_CACHE_XATT: return x->B * x->T * x->S;
    case PARE_ROWS_TOKENS:
    default: return x->B * Tk;
    }
}

static size_t aligned_bytes(int64_t numel, size_t elem)
{
    size_t b = (size_t)numel * elem;
    return (b + PARE_ALIGN - 1) & ~(size_t)(PARE_ALIGN - 1);
}

/* The buffer of value v: rows × cols of its dtype. */
static size_t value_bytes(const pare_exec *x, const pare_value *v)
{
    return aligned_bytes(pare_exec_rows(x, v) * v->cols, pare_dtype_size(v->dtype));
}

/* The gradient of value v: rows × cols f32, whatever v's dtype (see the top of the file). */
static size_t grad_bytes(const pare_exec *x, const pare_value *v)
{
    return aligned_bytes(pare_exec_rows(x, v) * v->cols, sizeof(float));
}

typedef struct span { int64_t def, last; size_t size, off; int id; } span;

static int by_size_desc(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id; /* deterministic */
}

/* Assign offsets; returns the arena size needed. */
static size_t plan_offsets(span *s, int64_t n)
{
    qsort(s, (size_t)n, sizeof *s, by_size_desc);
    size_t top = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t off = 0;
        for (int again = 1; again;) { /* bump past every placed, time-overlapping block we collide with */
            again = 0;
            for (int64_t j = 0; j < i; j++) {
                if (s[j].last < s[i].def || s[i].last < s[j].def) continue;
                if (off < s[j].off + s[j].size && s[j].off < off + s[i].size) {
                    off = s[j].off + s[j].size;
                    again = 1;
                }
            }
        }
        s[i].off = off;
        if (off + s[i].size > top) top = off + s[i].size;
    }
    return top;
}

/* Pack the effective weight of Linear n (its master under foldable transforms) into x->packed. */
static pare_status pack_folded(pare_exec *x, const pare_node *n)
{
    const pare_param *w = &x->m->params[n->param[0]];
    float *W = pare_alloc(sizeof(float) * (size_t)pare_param_numel(w));
    if (!W) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_tf_fold_weight(x->m, n, W);
    if (st == PARE_OK) st = pare_f32_weight_pack(&x->packed[n->param[0]], W, w->shape[0], w->shape[1]);
    pare_free(W);
    return st;
}

/* Inference: pack every f32 Linear weight (x->packed[param] NULL on entry). */
static pare_status pack_weights(pare_exec *x)
{
    const pare_model *m = x->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->op != PARE_OP_LINEAR) continue;
        int pi = n->param[0];
        const pare_param *w = &m->params[pi];
        /* transforms that depend on parameters only (a mask) are folded into the packed copy once;
         * others (fake quantization of the input) run through the f32 path at every call */
        if (w->format != PARE_FMT_F32 || x->packed[pi] || (n->ntf && !pare_tf_foldable(n))) continue;
        pare_status ps = n->ntf ? pack_folded(x, n) : pare_f32_weight_pack(&x->packed[pi], w->blob->data, w->shape[0], w->shape[1]);
        if (ps != PARE_OK) return pare_fail_ctx(ps, "packing %s", w->name);
        x->packed_bytes += pare_f32_packed_bytes(x->packed[pi]);
    }
    return PARE_OK;
}

pare_status pare_exec_repack(pare_exec *x)
{
    if (x->mode != PARE_EXEC_INFER) return PARE_OK; /* training executors read the masters */
    for (int64_t i = 0; i < x->m->nparams; i++) {
        pare_f32_packed_free(x->packed[i]);
        x->packed[i] = NULL;
    }
    x->packed_bytes = 0;
    return pack_weights(x);
}

/* ---- blocks (checkpointing and pipeline stages) ---- */

/* The length of "<stack>.<digits>." at the start of name, 0 if it does not start so. */
static size_t block_key(const char *name)
{
    const char *d = strchr(name, '.');
    if (!d || d == name || d[1] < '0' || d[1] > '9') return 0;
    const char *e = d + 1;
    while (*e >= '0' && *e <= '9') e++;
    return *e == '.' ? (size_t)(e + 1 - name) : 0;
}

int64_t pare_exec_blocks(const pare_model *m, int64_t first, int64_t last, int64_t *first_node, int64_t *last_node)
{
    int64_t nb = 0;
    for (int64_t i = first; i < last;) {
        size_t k = block_key(m->nodes[i].name);
        if (!k) {
            i++;
            continue;
        }
        int64_t j = i + 1;
        while (j < last && block_key(m->nodes[j].name) == k && !strncmp(m->nodes[j].name, m->nodes[i].name, k)) j++;
        if (first_node) first_node[nb] = i;
        if (last_node) last_node[nb] = j;
        nb++;
        i = j;
    }
    return nb;
}

/* Checkpointing's plan: x->blk_*, node_block and value_block. A value is internal to block b (remade by
 * its recompute) when b's nodes make it and only b's nodes read it, and it is not the logits, a loss or
 * a kept value. Its span becomes the block's nodes, so the planner lays every block's internals over
 * the same memory. */
static pare_status plan_checkpoint(pare_exec *x, span *s, const unsigned char *keep)
{
    const pare_model *m = x->m;
    int64_t nb = pare_exec_blocks(m, x->first, x->last, NULL, NULL);
    x->blk_first = calloc((size_t)nb + 1, sizeof *x->blk_first);
    x->blk_last = calloc((size_t)nb + 1, sizeof *x->blk_last);
    x->blk_rng = calloc((size_t)nb + 1, sizeof *x->blk_rng);
    x->node_block = malloc(sizeof(int) * (size_t)(m->nnodes + 1));
    x->value_block = malloc(sizeof(int) * (size_t)(m->nvalues + 1));
    if (!x->blk_first || !x->blk_last || !x->blk_rng || !x->node_block || !x->value_block)
        return pare_fail(PARE_ENOMEM, "out of memory planning checkpoints");
    x->nblocks = pare_exec_blocks(m, x->first, x->last, x->blk_first, x->blk_last);
    x->live_block = -1;
    for (int64_t i = 0; i < m->nnodes; i++) x->node_block[i] = -1;
    for (int64_t b = 0; b < x->nblocks; b++)
        for (int64_t i = x->blk_first[b]; i < x->blk_last[b]; i++) {
            if (m->nodes[i].ntf)
                return pare_fail(PARE_ENOTSUP, "checkpoint: %s has a weight transform (a mask, fake quantization, a head gate), "
                                 "which checkpointing does not recompute yet: train without checkpoint", m->nodes[i].name);
            x->node_block[i] = (int)b;
        }
    for (int64_t v = 0; v < m->nvalues; v++) {
        const pare_value *val = &m->values[v];
        int b = val->producer >= 0 ? x->node_block[val->producer] : -1;
        if (b >= 0 && (val->kind != PARE_VAL_ACT && val->kind != PARE_VAL_CACHE)) b = -1;
        /* a loss's output is seeded before backward reaches its block: never remade (nor its gradient zeroed) */
        if (v == m->logits || v == m->loss || (keep && keep[v]) || pare_op_is_loss(m->nodes[val->producer >= 0 ? val->producer : 0].op))
            b = -1;
        x->value_block[v] = b;
    }
    for (int64_t i = 0; i < m->nnodes; i++) /* a reader outside the block keeps the value */
        for (int k = 0; k < m->nodes[i].nin; k++) {
            int v = m->nodes[i].in[k];
            if (v >= 0 && x->value_block[v] >= 0 && x->node_block[i] != x->value_block[v]) x->value_block[v] = -1;
        }
    for (int64_t v = 0; v < m->nvalues; v++) {
        int b = x->value_block[v];
        if (b < 0) continue;
        s[v].def = x->blk_first[b], s[v].last = x->blk_last[b] - 1;
    }
    return PARE_OK;
}

/* plan_offsets with the blocks' internal values (value_block >= 0) in a region of their own after the kept
 * ones: a recompute then never writes over a kept value (the logits, a later block's output), and the
 * last block's internals are intact after forward. s[i].id indexes value_block; 0 when out of memory. */
static size_t plan_two_regions(span *s, int64_t n, const int *value_block)
{
    span *t = malloc(sizeof *t * (size_t)(n + 1));
    if (!t) return 0;
    int64_t na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++)
        if (value_block[s[i].id] < 0) t[na++] = s[i];
    for (int64_t i = 0; i < n; i++)
        if (value_block[s[i].id] >= 0) t[na + nb++] = s[i];
    size_t a = plan_offsets(t, na), b = plan_offsets(t + na, nb);
    for (int64_t i = na; i < na + nb; i++) t[i].off += a; /* a is aligned: every size is */
    memcpy(s, t, sizeof *t * (size_t)n);
    free(t);
    return a + b ? a + b : PARE_ALIGN;
}

/* keep (nvalues) or NULL: values whose lifetime reaches the end of the forward (pare_exec_new_keep) */
static pare_status exec_new(pare_exec **out, pare_model *m, int64_t B, int64_t T, int64_t S, pare_exec_mode mode,
                            const unsigned char *keep, const pare_exec_opts *eo)
{
    *out = NULL;
    int64_t first = eo ? eo->first : 0, last = eo && eo->last ? eo->last : m->nnodes;
    if (first < 0 || last > m->nnodes || first >= last)
        return pare_fail(PARE_EINVAL, "executor: nodes [%lld, %lld) are not a range of the model's %lld", (long long)first,
                         (long long)last, (long long)m->nnodes);
    if (eo && eo->checkpoint && mode != PARE_EXEC_TRAIN)
        return pare_fail(PARE_EINVAL, "checkpoint: only a training executor recomputes activations");
    if (B < 1) return pare_fail(PARE_EINVAL, "batch size %lld: must be >= 1", (long long)B);
    if (T < 1 || T > m->max_T)
        return pare_fail(PARE_EINVAL, "sequence length %lld: must be in [1, %lld] (the model's max_T)", (long long)T,
                         (long long)m->max_T);
    if (m->src_tokens >= 0 && (S < 1 || S > m->src_max_T))
        return pare_fail(PARE_EINVAL, "source length %lld: must be in [1, %lld] (the model's src_max_T)", (long long)S,
                         (long long)m->src_max_T);
    if (m->src_tokens < 0) S = 0;
    PARE_TRY(pare_model_check_dtypes(m)); /* the forwards take their buffers' dtypes for granted */
    PARE_TRY(pare_model_check_formats(m)); /* and a Linear's input the dtype its weight's format reads */
    for (int64_t i = 0; i < m->nnodes; i++) { /* token pruning scores by f32 probabilities the int8 path does not make */
        const pare_node *n = &m->nodes[i];
        if (n->op == PARE_OP_TOKEN_SELECT && m->values[n->in[2]].producer >= 0 &&
            m->nodes[m->values[n->in[2]].producer].a.bmm_i8)
            return pare_fail(PARE_EINVAL, "%s scores tokens by the attention probabilities of %s, which runs its products "
                             "on int8 (SmoothQuant) and keeps none: quantize with quantize_bmm=false",
                             n->name, m->nodes[m->values[n->in[2]].producer].name);
    }
    pare_exec *x = calloc(1, sizeof *x);
    span *s = NULL;
    int *alias = NULL;
    unsigned char *has_grad = NULL; /* TRAIN: which values get a gradient buffer */
    unsigned char *touched = NULL;  /* values the range makes or reads, and inputs */
    span *gs = NULL;                /* checkpointing: the gradients' spans */
    if (!x) return pare_fail(PARE_ENOMEM, "out of memory creating an executor");
    x->m = m, x->B = B, x->T = T, x->S = S, x->mode = mode;
    x->first = first, x->last = last, x->loss_scale = 1.0f, x->live_block = -1;
    x->checkpoint = eo && eo->checkpoint;
    pare_rng_seed(&x->rng, 0x5eed);
    x->nonfinite_node = -1;
    if (mode == PARE_EXEC_INFER) { /* this executor's copies of the f32 Linear weights in oneDNN's layout */
        x->packed = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof *x->packed);
        if (!x->packed) goto nomem;
        pare_status ps = pack_weights(x);
        if (ps != PARE_OK) {
            pare_exec_free(x);
            return ps;
        }
    }
    x->buf = calloc((size_t)m->nvalues, sizeof *x->buf);
    s = calloc((size_t)m->nvalues, sizeof *s);
    x->terms = calloc((size_t)m->nnodes + 1, sizeof *x->terms);
    x->bound = calloc((size_t)m->nvalues, 1);
    x->kept = calloc((size_t)m->nvalues, 1);
    touched = calloc((size_t)m->nvalues + 1, 1);
    if (!x->buf || !s || !x->terms || !x->bound || !x->kept || !touched) goto nomem;
    /* an input, a value the range makes, or one made before it and read from `first` on (by the range or, passing
     * through a pipeline stage, by a later one) */
    for (int64_t v = 0; v < m->nvalues; v++)
        touched[v] = m->values[v].producer < 0 || (m->values[v].producer >= first && m->values[v].producer < last);
    for (int64_t i = first; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].nin; k++)
            if (m->nodes[i].in[k] >= 0 && m->values[m->nodes[i].in[k]].producer < last) touched[m->nodes[i].in[k]] = 1;
    if (mode == PARE_EXEC_TRAIN && !(x->need_grad = calloc((size_t)m->nvalues + 1, 1))) goto nomem;
    /* Attention: each node's instance comes from its resolved configuration (no text is parsed here);
     * the model's own instance is borrowed when this executor runs at the shape it was made for. A
     * variant whose cache is the probabilities uses the node's planned "#att" value; others get theirs. */
    size_t attn_bytes = 0;
    x->attn = calloc((size_t)m->nnodes + 1, sizeof *x->attn);
    x->attn_cache = calloc((size_t)m->nnodes + 1, sizeof *x->attn_cache);
    x->attn_owned = calloc((size_t)m->nnodes + 1, 1);
    if (!x->attn || !x->attn_cache || !x->attn_owned) goto nomem;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->op != PARE_OP_ATTENTION) continue;
        const pare_attn_config *c = n->a.attn ? n->a.attn : pare_attn_config_default();
        int64_t C = m->values[n->out].cols;
        /* an encoder-decoder's encoder runs over S; a layer after token pruning over its T' */
        int64_t Tn = m->values[n->out].rows == PARE_ROWS_SRC ? S : pare_tokens_kept(T, m->values[n->out].keep);
        int owned = 0;
        pare_status as = pare_attn_config_instance(&x->attn[i], &owned, c, Tn, n->a.heads, C / n->a.heads, n->a.causal);
        x->attn_owned[i] = (unsigned char)owned;
        if (as != PARE_OK) {
            free(s);
            free(touched);
            pare_exec_free(x);
            return pare_fail_ctx(as, "%s at T=%lld", n->name, (long long)Tn);
        }
        int64_t want = n->nparam ? pare_param_numel(&m->params[n->param[0]]) : 0;
        if (pare_attn_param_count(x->attn[i]) != want) {
            free(s);
            free(touched);
            pare_exec_free(x);
            return pare_fail(PARE_EINVAL, "%s: %s has learned parameters sized for T=%lld (the model's max_T); run it at "
                             "that length, not T=%lld", n->name, c->spec, (long long)m->max_T, (long long)T);
        }
        if (n->ncache || i < first || i >= last) continue; /* the probabilities: a planned value (ops.c, attention_caches) */
        size_t cb = pare_attn_cache_bytes(x->attn[i], B);
        x->attn_cache[i] = pare_alloc(cb ? cb : PARE_ALIGN);
        if (!x->attn_cache[i]) goto nomem;
        attn_bytes += cb;
    }

    for (int64_t i = first; i < last; i++) {
        const pare_op_desc *d = pare_op_get(m->nodes[i].op);
        size_t ws = d->workspace ? d->workspace(x, &m->nodes[i]) : 0;
        if (ws > x->workspace_bytes) x->workspace_bytes = ws;
    }
    x->workspace_bytes = (x->workspace_bytes + PARE_ALIGN - 1) & ~(size_t)(PARE_ALIGN - 1);

    /* lifetimes */
    for (int64_t v = 0; v < m->nvalues; v++) {
        const pare_value *val = &m->values[v];
        s[v].id = (int)v;
        s[v].size = value_bytes(x, val);
        s[v].def = val->producer < 0 ? 0 : val->producer;
        s[v].last = s[v].def;
        if (mode == PARE_EXEC_TRAIN || val->producer < 0 || v == m->logits || v == m->loss || (keep && keep[v]))
            s[v].last = m->nnodes;
    }
    for (int64_t i = 0; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].nin; k++)
            if (s[m->nodes[i].in[k]].last < i) s[m->nodes[i].in[k]].last = i;
    for (int64_t v = 0; v < m->nvalues; v++)
        if (!touched[v]) s[v].size = 0, s[v].def = s[v].last = 0; /* outside this executor's range */
    if (x->checkpoint) {
        pare_status cs = plan_checkpoint(x, s, keep);
        if (cs != PARE_OK) {
            free(s);
            free(touched);
            pare_exec_free(x);
            return cs;
        }
    }
    /* At inference dropout is the identity: its output shares its input's memory (alias[v] = the
     * value it shares with), whose lifetime grows to cover the output's uses. */
    alias = calloc((size_t)m->nvalues, sizeof *alias);
    if (!alias) goto nomem;
    for (int64_t v = 0; v < m->nvalues; v++) alias[v] = (int)v;
    if (mode == PARE_EXEC_INFER)
        for (int64_t i = 0; i < m->nnodes; i++) {
            const pare_node *n = &m->nodes[i];
            if (n->op != PARE_OP_DROPOUT) continue;
            int src = alias[n->in[0]];
            alias[n->out] = src;
            if (s[n->out].last > s[src].last) s[src].last = s[n->out].last;
            s[n->out].size = 0;
            s[n->cache[0]].size = 0; /* the mask is not used at inference */
        }
    if (mode == PARE_EXEC_INFER) /* caches only training writes and reads (a fused Linear's pre-activation): no memory */
        for (int64_t i = 0; i < m->nnodes; i++) {
            const pare_node *n = &m->nodes[i];
            for (int k = 0; k < n->ncache; k++)
                if (pare_op_cache_train_only(n, k)) s[n->cache[k]].size = 0;
        }
    for (int64_t v = 0; v < m->nvalues; v++) x->kept[v] = s[v].last == m->nnodes; /* s is still indexed by id */
    size_t act = x->checkpoint ? plan_two_regions(s, m->nvalues, x->value_block) : plan_offsets(s, m->nvalues);
    if (!act && m->nvalues) goto nomem;
    x->planned_bytes = act + x->workspace_bytes + attn_bytes;

    size_t grads = 0;
    if (mode == PARE_EXEC_TRAIN) {
        x->grad = calloc((size_t)m->nvalues, sizeof *x->grad);
        has_grad = calloc((size_t)m->nvalues + 1, 1);
        if (!x->grad || !has_grad) goto nomem;
        /* every activation has a gradient; a cache only when a node reads it (a distillation loss on an
         * attention's probabilities "<node>#att": the attention's backward then adds it, attn.h dprobs) */
        for (int64_t v = 0; v < m->nvalues; v++) has_grad[v] = m->values[v].kind == PARE_VAL_ACT && touched[v];
        for (int64_t i = 0; i < m->nnodes; i++)
            for (int j = 0; j < m->nodes[i].nin; j++) {
                int v = m->nodes[i].in[j];
                if (v >= 0 && m->values[v].kind == PARE_VAL_CACHE && m->values[v].dtype == PARE_F32 && touched[v]) has_grad[v] = 1;
            }
        if (x->checkpoint) { /* internal gradients share memory across blocks as their values do */
            if (!(gs = calloc((size_t)m->nvalues + 1, sizeof *gs))) goto nomem;
            for (int64_t v = 0; v < m->nvalues; v++) {
                int b = x->value_block[v];
                gs[v].id = (int)v;
                gs[v].size = has_grad[v] ? grad_bytes(x, &m->values[v]) : 0;
                gs[v].def = b >= 0 ? x->blk_first[b] : 0;
                gs[v].last = b >= 0 ? x->blk_last[b] - 1 : m->nnodes;
            }
            if (!(grads = plan_two_regions(gs, m->nvalues, x->value_block))) goto nomem;
        } else
            for (int64_t v = 0; v < m->nvalues; v++)
                if (has_grad[v]) grads += grad_bytes(x, &m->values[v]);
        x->planned_bytes += grads;
    }
    if (pare_arena_init(&x->arena, act + x->workspace_bytes) != PARE_OK) goto nomem;
    unsigned char *base = pare_arena_alloc(&x->arena, act + x->workspace_bytes);
    for (int64_t i = 0; i < m->nvalues; i++) x->buf[s[i].id] = base + s[i].off;
    for (int64_t v = 0; v < m->nvalues; v++)
        if (alias[v] != v) x->buf[v] = x->buf[alias[v]];
    free(alias);
    alias = NULL;
    x->workspace = x->workspace_bytes ? base + act : NULL;
    if (mode == PARE_EXEC_TRAIN) {
        if (pare_arena_init(&x->grad_arena, grads ? grads : PARE_ALIGN) != PARE_OK) goto nomem;
        if (gs) {
            unsigned char *gbase = pare_arena_alloc(&x->grad_arena, grads ? grads : PARE_ALIGN);
            for (int64_t i = 0; i < m->nvalues; i++)
                if (has_grad[gs[i].id]) x->grad[gs[i].id] = (float *)(gbase + gs[i].off);
        } else
            for (int64_t v = 0; v < m->nvalues; v++)
                if (has_grad[v]) x->grad[v] = pare_arena_alloc(&x->grad_arena, grad_bytes(x, &m->values[v]));
    }
    free(has_grad);
    free(touched);
    free(gs);
    free(s);
    *out = x;
    return PARE_OK;
nomem:
    free(s);
    free(alias);
    free(has_grad);
    free(touched);
    free(gs);
    pare_exec_free(x);
    return pare_fail(PARE_ENOMEM, "out of memory planning activations for batch %lld × %lld tokens", (long long)B, (long long)T);
}

void pare_exec_free(pare_exec *x)
{
    if (!x) return;
    for (int64_t i = 0; x->attn && x->attn_cache && x->attn_owned && i < x->m->nnodes; i++) {
        if (x->attn_owned[i]) pare_attn_free(x->attn[i]);
        pare_free(x->attn_cache[i]);
    }
    free(x->attn);
    free(x->attn_cache);
    free(x->attn_owned);
    for (int64_t i = 0; x->packed && i < x->m->nparams; i++) pare_f32_packed_free(x->packed[i]);
    free(x->packed);
    pare_arena_free(&x->arena);
    pare_arena_free(&x->grad_arena);
    free(x->buf);
    free(x->grad);
    free(x->terms);
    free(x->bound);
    free(x->kept);
    free(x->need_grad);
    free(x->blk_first);
    free(x->blk_last);
    free(x->blk_rng);
    free(x->node_block);
    free(x->value_block);
    free(x);
}

pare_status pare_exec_new(pare_exec **out, pare_model *m, int64_t B, int64_t T, pare_exec_mode mode)
{
    return exec_new(out, m, B, T, m->src_max_T, mode, NULL, NULL);
}

pare_status pare_exec_new_opts(pare_exec **out, pare_model *m, int64_t B, int64_t T, int64_t S, pare_exec_mode mode,
                               const pare_exec_opts *o)
{
    *out = NULL;
    if (S != m->src_max_T && m->src_tokens < 0)
        return pare_fail(PARE_EINVAL, "source length %lld given to a %s, which has no source input (an encdec model has)",
                         (long long)S, m->kind);
    return exec_new(out, m, B, T, S, mode, NULL, o);
}

pare_status pare_exec_new_keep(pare_exec **out, pare_model *m, int64_t B, int64_t T, pare_exec_mode mode,
                               const char *const *keep, int nkeep)
{
    return pare_exec_new_src(out, m, B, T, m->src_max_T, mode, keep, nkeep);
}

pare_status pare_exec_new_src(pare_exec **out, pare_model *m, int64_t B, int64_t T, int64_t S, pare_exec_mode mode,
                              const char *const *keep, int nkeep)
{
    *out = NULL;
    if (S != m->src_max_T && m->src_tokens < 0)
        return pare_fail(PARE_EINVAL, "source length %lld given to a %s, which has no source input (an encdec model has)",
                         (long long)S, m->kind);
    unsigned char *k = calloc((size_t)m->nvalues + 1, 1);
    if (!k) return pare_fail(PARE_ENOMEM, "out of memory creating an executor");
    for (int i = 0; i < nkeep; i++) {
        int v = pare_model_find_value(m, keep[i]);
        pare_status st = pare_exec_check_capture(m, v, keep[i], mode);
        if (st != PARE_OK) {
            free(k);
            return st;
        }
        k[v] = 1;
    }
    pare_status st = exec_new(out, m, B, T, S, mode, k, NULL);
    free(k);
    return st;
}

pare_status pare_exec_bind(pare_exec *x, const int32_t *tokens, const int32_t *lengths, const int32_t *labels)
{
    const pare_model *m = x->m;
    int64_t BT = x->B * x->T;
    int32_t *tk = x->buf[m->tokens], *ln = x->buf[m->lengths], *lb = x->buf[m->labels];
    for (int64_t i = 0; i < BT; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->vocab)
            return pare_fail(PARE_EINVAL, "token id %d at batch row %lld, position %lld is outside the vocabulary [0, %lld)",
                             tokens[i], (long long)(i / x->T), (long long)(i % x->T), (long long)m->vocab);
        tk[i] = tokens[i];
    }
    for (int64_t b = 0; b < x->B; b++) {
        int32_t l = lengths ? lengths[b] : (int32_t)x->T;
        if (l < 1 || l > x->T)
            return pare_fail(PARE_EINVAL, "length %d of batch row %lld is outside [1, %lld]", l, (long long)b, (long long)x->T);
        ln[b] = l;
    }
    int64_t nl = m->lm ? BT : x->B, ncls = m->lm ? m->vocab : m->nclass;
    for (int64_t i = 0; i < nl; i++) {
        int32_t t = labels ? labels[i] : 0;
        if (t >= ncls)
            return pare_fail(PARE_EINVAL, "label %d at row %lld is outside [0, %lld)", t, (long long)i, (long long)ncls);
        lb[i] = t;
    }
    if (m->types >= 0) memset(x->buf[m->types], 0, sizeof(int32_t) * (size_t)BT); /* one segment unless bound */
    if (m->src_tokens >= 0) { /* a source of PAD of full length unless bound: defined, never stale */
        memset(x->buf[m->src_tokens], 0, sizeof(int32_t) * (size_t)(x->B * x->S));
        for (int64_t b = 0; b < x->B; b++) ((int32_t *)x->buf[m->src_lengths])[b] = (int32_t)x->S;
    }
    memset(x->bound, 0, (size_t)m->nvalues); /* a new batch: its targets are bound after this */
    int reg = labels ? -1 : pare_model_regression_target(m);
    if (reg >= 0) { /* no gold given (benchmarks, calibration): a regression model's scores are 0, as the labels */
        memset(x->buf[reg], 0, sizeof(float) * (size_t)x->B);
        x->bound[reg] = 1;
    }
    return PARE_OK;
}

pare_status pare_exec_bind_types(pare_exec *x, const int32_t *types)
{
    const pare_model *m = x->m;
    if (m->types < 0) return pare_fail(PARE_EINVAL, "token types given to a %s without token-type embeddings", m->kind);
    int64_t ntypes = 0; /* the rows of the table the types index */
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_EMBEDDING && m->nodes[i].in[0] == m->types)
            ntypes = m->params[m->nodes[i].param[0]].shape[0];
    int32_t *ty = x->buf[m->types];
    for (int64_t i = 0; i < x->B * x->T; i++) {
        if (types[i] < 0 || types[i] >= ntypes)
            return pare_fail(PARE_EINVAL, "token type %d at batch row %lld, position %lld is outside [0, %lld)", types[i],
                             (long long)(i / x->T), (long long)(i % x->T), (long long)ntypes);
        ty[i] = types[i];
    }
    return PARE_OK;
}

pare_status pare_exec_bind_source(pare_exec *x, const int32_t *src_tokens, const int32_t *src_lengths)
{
    const pare_model *m = x->m;
    if (m->src_tokens < 0 || m->src_lengths < 0)
        return pare_fail(PARE_EINVAL, "a source sequence given to a %s, which has no source input (only kind=encdec "
                         "models take one)", m->kind);
    int32_t *st = x->buf[m->src_tokens], *sl = x->buf[m->src_lengths];
    for (int64_t i = 0; i < x->B * x->S; i++) {
        if (src_tokens[i] < 0 || src_tokens[i] >= m->src_vocab)
            return pare_fail(PARE_EINVAL, "source token id %d at batch row %lld, position %lld is outside the source "
                             "vocabulary [0, %lld)", src_tokens[i], (long long)(i / x->S), (long long)(i % x->S),
                             (long long)m->src_vocab);
        st[i] = src_tokens[i];
    }
    for (int64_t b = 0; b < x->B; b++) {
        int32_t l = src_lengths ? src_lengths[b] : (int32_t)x->S;
        if (l < 1 || l > x->S)
            return pare_fail(PARE_EINVAL, "source length %d of batch row %lld is outside [1, %lld] (the executor's S)", l,
                             (long long)b, (long long)x->S);
        sl[b] = l;
    }
    return PARE_OK;
}

/* The index of the first NaN or ±Inf of y (n) of float dtype t, or -1; *nan tells which. A bf16 or f16
 * element is not finite when its exponent bits are all ones (a cast to f16 overflows beyond 65504). */
static int64_t first_nonfinite(const void *y, pare_dtype t, int64_t n, int *nan)
{
    if (t == PARE_F32) {
        int64_t bad = pare_first_nonfinite(y, n);
        *nan = bad >= 0 && isnan(((const float *)y)[bad]);
        return bad;
    }
    uint16_t e = t == PARE_BF16 ? 0x7f80u : 0x7c00u, mant = t == PARE_BF16 ? 0x007fu : 0x03ffu;
    const uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        if ((h[i] & e) == e) {
            *nan = (h[i] & mant) != 0;
            return i;
        }
    return -1;
}

/* check_finite: node i has just run; PARE_ENUMERIC if its (float) output holds NaN or Inf. */
static pare_status check_output(pare_exec *x, int64_t i)
{
    const pare_model *m = x->m;
    const pare_node *n = &m->nodes[i];
    const pare_value *v = &m->values[n->out];
    if (v->kind != PARE_VAL_ACT || !pare_dtype_is_float(v->dtype)) return PARE_OK;
    int nan = 0;
    int64_t bad = first_nonfinite(x->buf[n->out], v->dtype, pare_exec_rows(x, v) * v->cols, &nan);
    if (bad < 0) return PARE_OK;
    x->nonfinite_node = i;
    char why[160] = ""; /* a parameter of the node that is itself not finite explains it */
    for (int k = 0; k < n->nparam && !why[0]; k++) {
        const pare_param *p = &m->params[n->param[k]];
        int64_t pb = p->blob ? pare_first_nonfinite(p->blob->data, pare_param_numel(p)) : -1;
        if (pb < 0) continue;
        const char *kind = isnan(p->blob->data[pb]) ? "NaN" : "Inf";
        if (p->ndim == 2)
            snprintf(why, sizeof why, "; its parameter %s holds %s at (%lld, %lld)", p->name, kind,
                     (long long)(pb / p->shape[1]), (long long)(pb % p->shape[1]));
        else snprintf(why, sizeof why, "; its parameter %s holds %s at [%lld]", p->name, kind, (long long)pb);
    }
    return pare_fail(PARE_ENUMERIC, "layer %s outputs %s first (row %lld, column %lld%s)", n->name, nan ? "NaN" : "Inf",
                     (long long)(bad / v->cols), (long long)(bad % v->cols), why);
}

pare_status pare_exec_forward(pare_exec *x)
{
    x->nonfinite_node = -1;
    PARE_TRY(pare_exec_check_bound(x));
    for (int64_t i = x->first; i < x->last; i++) {
        const pare_node *n = &x->m->nodes[i];
        if (x->checkpoint && x->node_block[i] >= 0) { /* the stream its recompute will replay */
            int b = x->node_block[i];
            if (i == x->blk_first[b]) x->blk_rng[b] = x->rng;
            x->live_block = b;
        }
        if (x->observe) PARE_TRY(x->observe(x->observe_user, x, i));
        int64_t t0 = x->profile ? pare_now_ns() : 0;
        pare_status s = pare_op_get(n->op)->forward(x, n);
        if (s != PARE_OK) {
            if (s == PARE_ENUMERIC) x->nonfinite_node = i; /* a kernel that checks its input said so */
            return pare_fail_ctx(s, "forward of %s", n->name);
        }
        if (x->profile) x->op_ns[n->op] += pare_now_ns() - t0;
        if (x->check_finite) PARE_TRY(check_output(x, i));
    }
    if (x->last == x->m->nnodes) x->loss = pare_exec_total_loss(x);
    return PARE_OK;
}

pare_status pare_exec_forward_nodes(pare_exec *x, int64_t first, int64_t last)
{
    if (first < 0 || last > x->m->nnodes || first > last)
        return pare_fail(PARE_EINVAL, "forward of nodes [%lld, %lld): the model has %lld nodes", (long long)first,
                         (long long)last, (long long)x->m->nnodes);
    if (first == 0) PARE_TRY(pare_exec_check_bound(x));
    for (int64_t i = first; i < last; i++) {
        const pare_node *n = &x->m->nodes[i];
        if (x->checkpoint && x->node_block[i] >= 0) {
            int b = x->node_block[i];
            if (i == x->blk_first[b]) x->blk_rng[b] = x->rng;
            x->live_block = b;
        }
        pare_status s = pare_op_get(n->op)->forward(x, n);
        if (s != PARE_OK) return pare_fail_ctx(s, "forward of %s", n->name);
    }
    if (last == x->m->nnodes) x->loss = pare_exec_total_loss(x);
    return PARE_OK;
}

/* rows of value v per example (B rows of a SEQS value: 1), 0 for kinds that cannot be compacted */
static int64_t rows_per_example(const pare_exec *x, const pare_value *v)
{
    switch (v->rows) {
    case PARE_ROWS_TOKENS: return x->T;
    case PARE_ROWS_SEQS: return 1;
    case PARE_ROWS_SRC: return x->S;
    default: return 0;
    }
}

pare_status pare_exec_keep_examples(pare_exec *x, int64_t next, const int64_t *keep, int64_t nkeep)
{
    const pare_model *m = x->m;
    if (x->mode != PARE_EXEC_INFER) return pare_fail(PARE_EINVAL, "keep_examples: an inference executor only");
    if (next < 0 || next > m->nnodes)
        return pare_fail(PARE_EINVAL, "keep_examples: node %lld outside [0, %lld]", (long long)next, (long long)m->nnodes);
    if (nkeep < 1 || nkeep > x->B)
        return pare_fail(PARE_EINVAL, "keep_examples: %lld examples kept of %lld (at least one)", (long long)nkeep, (long long)x->B);
    for (int64_t k = 0; k < nkeep; k++)
        if (keep[k] < 0 || keep[k] >= x->B || (k && keep[k] <= keep[k - 1]))
            return pare_fail(PARE_EINVAL, "keep_examples: keep[%lld] = %lld is not increasing within [0, %lld)", (long long)k,
                             (long long)keep[k], (long long)x->B);
    unsigned char *live = calloc((size_t)m->nvalues + 1, 1);
    if (!live) return pare_fail(PARE_ENOMEM, "keep_examples: out of memory");
    for (int64_t i = next; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].nin; k++) {
            int v = m->nodes[i].in[k];
            if (m->values[v].producer < next) live[v] = 1; /* an input or a value computed before `next` */
        }
    for (int64_t v = 0; v < m->nvalues; v++) { /* check first: nothing is moved unless all can be */
        if (!live[v] || m->values[v].kind == PARE_VAL_CACHE || rows_per_example(x, &m->values[v])) continue;
        free(live);
        return pare_fail(PARE_EINVAL, "keep_examples: value %s, read after node %lld, has rows that are not per example",
                         m->values[v].name, (long long)next);
    }
    for (int64_t v = 0; v < m->nvalues; v++) {
        if (!live[v]) continue;
        int dup = 0; /* an alias (dropout at inference shares its input's memory) is moved once */
        for (int64_t u = 0; u < v && !dup; u++) dup = live[u] && x->buf[u] == x->buf[v];
        if (dup) continue;
        size_t row = (size_t)rows_per_example(x, &m->values[v]) * (size_t)m->values[v].cols * pare_dtype_size(m->values[v].dtype);
        unsigned char *b = x->buf[v];
        for (int64_t k = 0; k < nkeep; k++) /* keep[k] >= k: moving down in order never overwrites a row still to move */
            if (keep[k] != k) memmove(b + (size_t)k * row, b + (size_t)keep[k] * row, row);
    }
    free(live);
    x->B = nkeep;
    return PARE_OK;
}

pare_status pare_exec_find_nonfinite(pare_exec *x, int64_t *node)
{
    int keep = x->check_finite, prof = x->profile;
    x->check_finite = 1, x->profile = 0;
    pare_status st = pare_exec_forward(x);
    x->check_finite = keep, x->profile = prof;
    *node = st == PARE_ENUMERIC ? x->nonfinite_node : -1;
    return st;
}

/* 1 if node n has a parameter that backward trains: its own, or a weight transform's auxiliary one (a
 * learnt quantization scale, a head gate) */
static int node_trains(const pare_model *m, const pare_node *n)
{
    for (int k = 0; k < n->nparam; k++)
        if (m->params[n->param[k]].trainable) return 1;
    for (int t = 0; t < n->ntf; t++)
        for (int j = 0; j < PARE_TF_MAX_AUX; j++)
            if (n->tf[t].aux[j] >= 0 && m->params[n->tf[t].aux[j]].trainable) return 1;
    return 0;
}

/* need_grad (exec.h): in node order, a node's output and caches are needed iff the node trains a
 * parameter or reads a needed value; inputs, targets and anything upstream of every trainable parameter
 * are not. Over the straight-line graph one pass suffices (a node's inputs come before it). */
static void mark_needed(pare_exec *x)
{
    const pare_model *m = x->m;
    unsigned char *need = x->need_grad;
    if (x->backward_all) {
        memset(need, 1, (size_t)m->nvalues);
        return;
    }
    memset(need, 0, (size_t)m->nvalues);
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        int on = node_trains(m, n);
        for (int k = 0; k < n->nin && !on; k++) on = need[n->in[k]];
        need[n->out] = (unsigned char)on;
        for (int c = 0; c < n->ncache; c++) need[n->cache[c]] = (unsigned char)on; /* "#att" read by a loss */
    }
}

/* ---- Checkpointing ----
 * Forward runs as always, saving the dropout stream at each block's start; the planner has laid every
 * block's internal values (plan_checkpoint) over one region, so after forward only the last block's are
 * intact. Backward, on reaching a block's last node, runs the block's forward again from its kept input
 * (unless its values are the ones in memory: the last block after forward), with the saved stream so
 * dropout draws the same masks, then zeroes the block's internal gradients (their memory is shared too)
 * and goes on with the block's backward. The cost: one more forward of every block but the last. */
static pare_status recompute_block(pare_exec *x, int b)
{
    const pare_model *m = x->m;
    if (x->live_block != b) {
        pare_rng keep = x->rng;
        x->rng = x->blk_rng[b];
        for (int64_t i = x->blk_first[b]; i < x->blk_last[b]; i++) {
            const pare_node *n = &m->nodes[i];
            pare_status s = pare_op_get(n->op)->forward(x, n);
            if (s != PARE_OK) {
                x->rng = keep;
                return pare_fail_ctx(s, "recomputing %s (checkpoint)", n->name);
            }
            x->recomputed_nodes++;
        }
        x->rng = keep;
        x->live_block = b;
    }
    for (int64_t v = 0; v < m->nvalues; v++)
        if (x->value_block[v] == b && x->grad[v]) memset(x->grad[v], 0, grad_bytes(x, &m->values[v]));
    return PARE_OK;
}

pare_status pare_exec_backward_begin(pare_exec *x)
{
    if (x->mode != PARE_EXEC_TRAIN) return pare_fail(PARE_EINVAL, "backward needs an executor made for training");
    const pare_model *m = x->m;
    mark_needed(x);
    if (x->backward_all) memset(x->grad_arena.base, 0, x->grad_arena.used);
    else
        for (int64_t v = 0; v < m->nvalues; v++) /* only the gradients that are computed */
            if (x->need_grad[v] && x->grad[v]) memset(x->grad[v], 0, grad_bytes(x, &m->values[v]));
    pare_exec_seed_losses(x);
    if (x->loss_scale != 1.0f) /* a micro-batch's share of the batch's mean */
        for (int64_t i = x->first; i < x->last; i++) {
            const pare_node *n = &m->nodes[i];
            if (pare_op_is_loss(n->op) && m->values[n->out].rows == PARE_ROWS_ONE && x->grad[n->out] && x->need_grad[n->out])
                x->grad[n->out][0] *= x->loss_scale;
        }
    return PARE_OK;
}

pare_status pare_exec_backward_run(pare_exec *x)
{
    const pare_model *m = x->m;
    x->bwd_nodes = 0, x->recomputed_nodes = 0;
    for (int64_t i = x->last - 1; i >= x->first; i--) {
        const pare_node *n = &m->nodes[i];
        if (x->checkpoint && x->node_block[i] >= 0 && i == x->blk_last[x->node_block[i]] - 1)
            PARE_TRY(recompute_block(x, x->node_block[i]));
        const pare_op_desc *d = pare_op_get(n->op);
        if (!d->backward || !x->need_grad[n->out]) continue;
        d->backward(x, n);
        x->bwd_nodes++;
    }
    return PARE_OK;
}

pare_status pare_exec_backward(pare_exec *x)
{
    PARE_TRY(pare_exec_backward_begin(x));
    return pare_exec_backward_run(x);
}

const float *pare_exec_logits(const pare_exec *x) { return x->buf[x->m->logits]; }

int64_t pare_exec_flops(const pare_exec *x, int64_t *by_op)
{
    int64_t total = 0;
    if (by_op) memset(by_op, 0, sizeof(int64_t) * PARE_OP_COUNT);
    for (int64_t i = 0; i < x->m->nnodes; i++) {
        const pare_node *n = &x->m->nodes[i];
        int64_t f = pare_op_get(n->op)->flops(x, n);
        total += f;
        if (by_op) by_op[n->op] += f;
    }
    return total;
}

pare_status pare_model_alloc_grads(pare_model *m)
{
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        /* every time, not only with the first gradients: a clone or a surgery copy made after an earlier training
         * shares these weights again, and this training must not write into it (a no-op when already private) */
        PARE_TRY(pare_param_make_private(p));
        if (p->grad) continue;
        size_t bytes = (size_t)pare_param_numel(p) * sizeof(float);
        p->grad = pare_calloc(bytes);
        p->adam_m = pare_calloc(bytes);
        p->adam_v = pare_calloc(bytes);
        if (!p->grad || !p->adam_m || !p->adam_v) return pare_fail(PARE_ENOMEM, "out of memory for gradients of %s", p->name);
    }
    return PARE_OK;
}

void pare_model_zero_grad(pare_model *m)
{
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (p->grad) memset(p->grad, 0, (size_t)pare_param_numel(p) * sizeof(float));
    }
}
