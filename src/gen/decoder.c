/* decoder.c — incremental decoding of a causal language model with a KV cache (generate.h).
 *
 * The decoder owns an inference executor (graph/exec.h) made for R rows, and runs the graph's nodes on
 * the rows of each call itself: x->B = 1, x->T = M makes every row-local op of ops.c see M rows, so the
 * Linear runs through the weight's format traits with the executor's packed weights and workspace, the
 * LayerNorm with the node's ε, GELU in the node's form — the very code a full forward runs. Two ops
 * depend on where a row sits in its sequence and are done here: POSADD (row r of sequence b at position
 * p reads row p + pos_offset of the table) and ATTENTION (below). The executor's memory plan holds
 * because the nodes run in the graph's order, as its forward would run them.
 *
 * KV cache: per attention node, K and V of (B, H, T_cap, D) floats: sequence b's key at position p of
 * head h is kc + ((b·H + h)·T_cap + p)·D. A call first writes the new rows' keys and values at their
 * positions, then each new query (b, p, h) attends keys 0..p of sequence b: scores scale·q·k, a softmax
 * with the maximum subtracted, the weighted sum of values — the dense causal attention of attn/full.c,
 * one query at a time. Positions beyond a sequence's length are never read, so nothing is cleared.
 *
 * Only the rows whose logits are asked for (the last new token of each sequence) go through the head:
 * the head's input rows are compacted first, so a prompt of 500 tokens costs one head GEMM row, not 500.
 *
 * Without a cache (cache = 0, or an attention variant other than full and flash, which a cache does not
 * extend), every feed runs the model's own executor over each whole sequence so far (feed_recompute).
 *
 * Encoder-decoders (kind encdec, e.g. BART from load_hf): pare_decoder_set_source runs the model's own
 * executor once over the sources (B, src_max_T) and keeps each cross-attention's keys and values
 * (the xattn.kv Linear's output, (B·S, 2C)) and the source lengths; nodes on source rows are then
 * skipped, and a CROSS_ATTENTION node attends each new query to its sequence's kept keys below its
 * source length (the softmax of nn_cross_attention.c, one query at a time). Recompute mode binds the
 * kept source to its executor.
 *
 * Deliberately not here: a cache for sparse or kernelised variants, a paged or shared cache, speculative
 * decoding, int8 attention products (the cached attention runs in f32).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/arena.h"
#include "gen/generate.h"
#include "graph/exec.h"
#include "graph/ops.h"
#include "kernels/nn_half.h"

/* Rows per call of the executor: a prompt longer than this is fed in chunks (each chunk's keys are in
 * the cache before the next attends to them, so chunking changes nothing but the GEMM shapes). */
#define DEC_CHUNK 256
/* The executor is made for (R / DEC_EXEC_T, DEC_EXEC_T): its dense attention's planned probabilities
 * are R·H·DEC_EXEC_T floats, which the decoder never uses; a small T keeps them small. */
#define DEC_EXEC_T 16

typedef enum node_kind { NK_SKIP = 0, NK_ROWLOCAL, NK_POSADD, NK_ATTN, NK_XATTN } node_kind;

/* Ops whose output row r depends on input row r only: they run through ops.c on the new rows. Indexed
 * by op id; an op added later is 0 here and refused by name until someone checks it is row-local. */
static const unsigned char row_local[PARE_OP_COUNT] = {
    [PARE_OP_EMBEDDING] = 1, [PARE_OP_LINEAR] = 1, [PARE_OP_LAYERNORM] = 1, [PARE_OP_GELU] = 1,
    [PARE_OP_RELU] = 1,      [PARE_OP_ADD] = 1,    [PARE_OP_DROPOUT] = 1,   [PARE_OP_CAST] = 1,
    [PARE_OP_TANH] = 1,      [PARE_OP_TT_LINEAR] = 1, /* its cache and workspace are per call, rows independent */
    [PARE_OP_ADD_LAYERNORM] = 1, /* the fuse pass's residual Add + LayerNorm */
};

typedef struct dec_layer {
    float *k, *v;  /* (B, H, T_cap, D) each; cross-attention: k holds the memory's [k | v] (B, S, 2C), v NULL */
    int64_t H, D;
    int kv_value;  /* cross-attention: the value id of its kv input (kept by the source executor) */
} dec_layer;

struct pare_decoder {
    pare_model *m;
    pare_exec *x;       /* inference executor for R rows; its B and T are set per call */
    int64_t B, Tcap, R, V;
    unsigned char *kind; /* (nnodes) node_kind */
    int *layer;          /* (nnodes) index into layers for ATTENTION nodes, -1 elsewhere */
    dec_layer *layers;
    int nlayers;
    int64_t head;        /* the node producing the logits */
    int compact;         /* 1: the head's input rows are compacted to the wanted rows before it runs */
    int64_t *len;        /* (B) tokens held per sequence */
    int64_t *rb, *rp;    /* (R) sequence and position of each row of a call */
    int64_t *want;       /* (R) rows whose logits are wanted, in row order */
    float *scratch;      /* (threads, sscratch) attention scores */
    int64_t sscratch;    /* max(T_cap, src_max_T) */
    int threads;
    size_t cache_bytes;
    char note[256];
    /* Without a KV cache (pare_decoder_new_opts(cache = 0), or an attention variant the cache cannot
     * extend): every feed runs the model's own forward over each whole sequence so far. */
    int recompute;
    pare_exec *full;     /* inference executor at (B, Tfull) */
    int64_t Tfull;
    int32_t *hist;       /* (B, Tfull) every sequence's tokens */
    int32_t *lens32;     /* (B) lengths bound to the executor */
    /* encoder-decoders: the source (pare_decoder_set_source) */
    int has_src;         /* 1: the model takes a source */
    int src_set;         /* 1: pare_decoder_set_source ran */
    int64_t S;           /* source positions kept per sequence (the model's src_max_T) */
    int32_t *src, *slen; /* (B, S) the sources, padded; (B) their lengths */
};

/* ---- checking the graph ---- */

/* 1 if attention node n runs a variant the cache extends (the dense causal attention: full, flash). */
static int cacheable_variant(const pare_node *n)
{
    const pare_attn_config *c = n->a.attn ? n->a.attn : pare_attn_config_default();
    return c->v == &pare_attn_full || c->v == &pare_attn_flash;
}

static pare_status check_attention(const pare_model *m, const pare_node *n)
{
    const pare_attn_config *c = n->a.attn ? n->a.attn : pare_attn_config_default();
    if (!n->a.causal)
        return pare_fail(PARE_EINVAL, "generate: %s is bidirectional attention (every token sees later ones, so a "
                         "prefix's outputs change as tokens are appended and cannot be cached); generation needs a "
                         "causal decoder", n->name);
    if (!cacheable_variant(n))
        return pare_fail(PARE_EINVAL, "generate: %s uses the attention variant '%s'; incremental decoding with a KV "
                         "cache supports full and flash only (the dense causal attention): a sparse pattern or a "
                         "learned length projection does not extend a cached prefix (cache=false recomputes the "
                         "whole prefix at every step instead)", n->name, c->spec);
    int64_t C = m->values[n->out].cols;
    if (n->nin != 2 || n->nparam != 0 || n->a.heads < 1 || C % n->a.heads != 0 || m->values[n->in[0]].cols != 3 * C)
        return pare_fail(PARE_EINVAL, "generate: %s is not self-attention over a packed qkv (B·T, 3C) input; "
                         "incremental decoding supports that form only", n->name);
    return PARE_OK;
}

static void add_note(pare_decoder *d, const char *text)
{
    if (strstr(d->note, text)) return;
    size_t used = strlen(d->note);
    snprintf(d->note + used, sizeof d->note - used, "%s%s", used ? "; " : "", text);
}

/* Classify every node (refusing what cannot run incrementally) and find the head. */
static pare_status plan_nodes(pare_decoder *d)
{
    const pare_model *m = d->m;
    if (!m->lm || m->logits < 0)
        return pare_fail(PARE_EINVAL, "generate: the model is %s %s (a head per sequence); generation needs a "
                         "decoder (kind decoder: causal attention, a head per token)",
                         m->kind[0] == 'e' ? "an" : "a", m->kind);
    d->head = m->values[m->logits].producer;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        d->layer[i] = -1;
        if (pare_op_is_loss(n->op)) d->kind[i] = NK_SKIP;
        else if (m->values[n->out].rows == PARE_ROWS_SRC) d->kind[i] = NK_SKIP; /* the encoder: set_source ran it */
        else if (i > d->head)
            return pare_fail(PARE_EINVAL, "generate: node %s (op %s) follows the head %s; incremental decoding runs "
                             "the graph up to the logits only", n->name, pare_op_name(n->op), m->nodes[d->head].name);
        else if (n->op == PARE_OP_POSADD) d->kind[i] = NK_POSADD;
        else if (n->op == PARE_OP_ATTENTION) {
            PARE_TRY(check_attention(m, n));
            d->kind[i] = NK_ATTN;
            d->layer[i] = d->nlayers++;
            if (n->a.bmm_i8) add_note(d, "attention's int8 batched products run in f32 with the KV cache");
        } else if (n->op == PARE_OP_CROSS_ATTENTION) {
            int64_t C = m->values[n->out].cols;
            if (n->nin != 3 || n->a.heads < 1 || C % n->a.heads != 0 || m->values[n->in[1]].cols != 2 * C)
                return pare_fail(PARE_EINVAL, "generate: %s is not cross-attention over a packed kv (B·S, 2C) input",
                                 n->name);
            d->kind[i] = NK_XATTN;
            d->layer[i] = d->nlayers++;
        } else if (row_local[n->op]) {
            d->kind[i] = NK_ROWLOCAL;
            const pare_param *w = n->op == PARE_OP_LINEAR ? &m->params[n->param[0]] : NULL;
            if (w && w->q && w->format == PARE_FMT_I8_CHANNEL && w->q->act.mode == PARE_ACT_DYN_TENSOR)
                add_note(d, "int8 activation scales per tensor depend on the rows of each call");
            if (w && w->q && w->format == PARE_FMT_SIMULATED && w->q->a_sim == 1)
                add_note(d, "simulated activation ranges depend on the rows of each call");
        } else
            return pare_fail(PARE_EINVAL, "generate: node %s (op %s) is not supported by incremental decoding "
                             "(supported: embedding, posadd, linear, layernorm, add_layernorm, gelu, relu, tanh, add, "
                             "dropout, cast, causal full/flash attention, cross-attention; losses are skipped; an unfused "
                             "attention is folded into one by the fuse pass)", n->name,
                             pare_op_name(n->op));
    }
    const pare_node *h = &m->nodes[d->head];
    /* Compaction rewrites the head's input in place: only when nothing after the head reads it (losses
     * are skipped, and nothing else follows the head). */
    d->compact = h->op == PARE_OP_LINEAR && h->nin == 1 && m->values[h->in[0]].rows == PARE_ROWS_TOKENS;
    return PARE_OK;
}

/* ---- construction ---- */

/* The source buffers of an encoder-decoder: (B, src_max_T) ids and B lengths. */
static pare_status alloc_source(pare_decoder *d)
{
    d->S = d->m->src_max_T;
    d->src = calloc((size_t)(d->B * d->S), sizeof *d->src);
    d->slen = calloc((size_t)d->B, sizeof *d->slen);
    if (!d->src || !d->slen) return pare_fail(PARE_ENOMEM, "out of memory for a decoder's sources");
    return PARE_OK;
}

/* The recompute mode: a language model whose attention is causal everywhere, run by its own executor at
 * (B, T_cap), or at max_T when a variant cannot be made at T_cap (learned projections sized for max_T).
 * Causal attention makes a position's output independent of the (padded) positions after it. */
static pare_status new_recompute(pare_decoder *d, const char *why)
{
    const pare_model *m = d->m;
    if (!m->lm || m->logits < 0) return plan_nodes(d); /* its message: not a decoder */
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->op == PARE_OP_ATTENTION && !n->a.causal && m->values[n->out].rows != PARE_ROWS_SRC) /* not the encoder's */
            return check_attention(m, n);
    }
    d->recompute = 1;
    snprintf(d->note, sizeof d->note, "%s", why);
    d->Tfull = d->Tcap;
    pare_status st = pare_exec_new(&d->full, d->m, d->B, d->Tfull, PARE_EXEC_INFER);
    if (st != PARE_OK && d->Tcap < m->max_T) {
        d->Tfull = m->max_T;
        st = pare_exec_new(&d->full, d->m, d->B, d->Tfull, PARE_EXEC_INFER);
    }
    if (st != PARE_OK) return pare_fail_ctx(st, "generate: the executor recomputing each prefix");
    d->hist = calloc((size_t)(d->B * d->Tfull), sizeof *d->hist);
    d->lens32 = calloc((size_t)d->B, sizeof *d->lens32);
    d->len = calloc((size_t)d->B, sizeof *d->len);
    if (!d->hist || !d->lens32 || !d->len) return pare_fail(PARE_ENOMEM, "out of memory for a decoder");
    return PARE_OK;
}

pare_status pare_decoder_new(pare_decoder **out, pare_model *m, int64_t B, int64_t T_cap)
{
    return pare_decoder_new_opts(out, m, B, T_cap, 1);
}

pare_status pare_decoder_new_opts(pare_decoder **out, pare_model *m, int64_t B, int64_t T_cap, int cache)
{
    *out = NULL;
    if (B < 1) return pare_fail(PARE_EINVAL, "generate: batch of %lld prompts: must be >= 1", (long long)B);
    if (T_cap < 1 || T_cap > m->max_T)
        return pare_fail(PARE_EINVAL, "generate: %lld tokens per sequence: must be in [1, %lld] (the model's max_T)",
                         (long long)T_cap, (long long)m->max_T);
    pare_decoder *d = calloc(1, sizeof *d);
    if (!d) return pare_fail(PARE_ENOMEM, "out of memory creating a decoder");
    d->m = m, d->B = B, d->Tcap = T_cap, d->V = m->vocab;
    d->has_src = m->src_tokens >= 0;
    d->kind = calloc((size_t)m->nnodes + 1, 1);
    d->layer = calloc((size_t)m->nnodes + 1, sizeof *d->layer);
    if (!d->kind || !d->layer) goto nomem;
    const char *variant = NULL, *vnode = NULL; /* the first attention the cache cannot extend */
    for (int64_t i = 0; i < m->nnodes && !variant; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION && !cacheable_variant(&m->nodes[i]))
            variant = m->nodes[i].a.attn->spec, vnode = m->nodes[i].name;
    if (!cache || variant) {
        char why[256];
        if (cache)
            snprintf(why, sizeof why, "no KV cache: %.40s's attention '%.80s' does not extend a cached prefix; each "
                     "step recomputes the prefix", vnode, variant);
        else snprintf(why, sizeof why, "no KV cache (cache=false): every step recomputes the whole prefix");
        pare_status rs = new_recompute(d, why);
        if (rs == PARE_OK && d->has_src) rs = alloc_source(d);
        if (rs != PARE_OK) {
            pare_decoder_free(d);
            return rs;
        }
        *out = d;
        return PARE_OK;
    }
    pare_status st = plan_nodes(d);
    if (st != PARE_OK) {
        pare_decoder_free(d);
        return st;
    }
    /* R rows per call: every sequence's one new token at least, a prompt chunk at most */
    int64_t et = m->max_T < DEC_EXEC_T ? m->max_T : DEC_EXEC_T;
    int64_t R = B * T_cap < DEC_CHUNK ? B * T_cap : DEC_CHUNK;
    if (R < B) R = B;
    int64_t eb = (R + et - 1) / et;
    d->R = eb * et;
    st = pare_exec_new(&d->x, m, eb, et, PARE_EXEC_INFER);
    if (st != PARE_OK) {
        pare_decoder_free(d);
        return pare_fail_ctx(st, "generate: the decoder's executor");
    }
    d->layers = calloc((size_t)d->nlayers + 1, sizeof *d->layers);
    d->len = calloc((size_t)B, sizeof *d->len);
    d->rb = malloc(sizeof *d->rb * (size_t)d->R);
    d->rp = malloc(sizeof *d->rp * (size_t)d->R);
    d->want = malloc(sizeof *d->want * (size_t)d->R);
    d->threads = omp_get_max_threads();
    d->sscratch = T_cap > m->src_max_T ? T_cap : m->src_max_T; /* self- or cross-attention scores */
    d->scratch = malloc(sizeof *d->scratch * (size_t)(d->threads * d->sscratch));
    if (!d->layers || !d->len || !d->rb || !d->rp || !d->want || !d->scratch) goto nomem;
    if (d->has_src && alloc_source(d) != PARE_OK) goto nomem;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (d->layer[i] < 0) continue;
        const pare_node *n = &m->nodes[i];
        dec_layer *l = &d->layers[d->layer[i]];
        int64_t C = m->values[n->out].cols;
        l->H = n->a.heads, l->D = C / n->a.heads;
        if (n->op == PARE_OP_CROSS_ATTENTION) { /* the memory's keys and values, written by set_source */
            size_t bytes = sizeof(float) * (size_t)(B * d->S * 2 * C);
            l->kv_value = n->in[1];
            if (!(l->k = pare_alloc(bytes))) goto nomem;
            d->cache_bytes += bytes;
            continue;
        }
        size_t bytes = sizeof(float) * (size_t)(B * T_cap * C);
        l->k = pare_alloc(bytes), l->v = pare_alloc(bytes);
        if (!l->k || !l->v) goto nomem;
        d->cache_bytes += 2 * bytes;
    }
    *out = d;
    return PARE_OK;
nomem:
    pare_decoder_free(d);
    return pare_fail(PARE_ENOMEM, "out of memory for a decoder of %lld sequences × %lld tokens", (long long)B,
                     (long long)T_cap);
}

void pare_decoder_free(pare_decoder *d)
{
    if (!d) return;
    for (int i = 0; d->layers && i < d->nlayers; i++) pare_free(d->layers[i].k), pare_free(d->layers[i].v);
    free(d->layers);
    pare_exec_free(d->x);
    pare_exec_free(d->full);
    free(d->hist), free(d->lens32), free(d->src), free(d->slen);
    free(d->kind), free(d->layer), free(d->len), free(d->rb), free(d->rp), free(d->want), free(d->scratch);
    free(d);
}

void pare_decoder_reset(pare_decoder *d) { memset(d->len, 0, sizeof *d->len * (size_t)d->B); }
int64_t pare_decoder_len(const pare_decoder *d, int64_t b) { return b >= 0 && b < d->B ? d->len[b] : 0; }
size_t pare_decoder_cache_bytes(const pare_decoder *d) { return d->cache_bytes; }
const char *pare_decoder_note(const pare_decoder *d) { return d->note; }

/* ---- the two position-dependent ops ---- */

/* out (M, C) = in (M, C) + pos[rp[r] + pos_offset] */
static void posadd_rows(pare_decoder *d, const pare_node *n, int64_t M)
{
    const pare_exec *x = d->x;
    int64_t C = d->m->values[n->out].cols;
    const pare_param *p = &d->m->params[n->param[0]];
    const pare_dtype it = d->m->values[n->in[0]].dtype;
    if (p->format == PARE_FMT_HALF || it != PARE_F32) { /* a 16-bit table or a bf16 input (nn_half.h), as ops.c's posadd */
        const pare_dtype pt = p->format == PARE_FMT_HALF ? p->q->hw.dtype : PARE_F32;
        const void *tab = p->format == PARE_FMT_HALF ? (const void *)p->q->hw.w : (const void *)p->blob->data;
        pare_posadd_half_at(x->buf[n->out], x->buf[n->in[0]], it,
                            (const char *)tab + (size_t)((int64_t)n->a.pos_offset * C) * pare_dtype_size(pt), pt, d->rp, M, C);
        return;
    }
    const float *pos = p->blob->data + (int64_t)n->a.pos_offset * C;
    float *out = x->buf[n->out];
    const float *in = x->buf[n->in[0]];
    for (int64_t r = 0; r < M; r++)
        for (int64_t c = 0; c < C; c++) out[r * C + c] = in[r * C + c] + pos[d->rp[r] * C + c];
}

/* qkv (M, 3C) -> out (M, C): the new keys and values into the cache, then each new query (row r, head h)
 * against keys 0..rp[r] of its sequence. */
static void attend_rows(pare_decoder *d, const pare_node *n, int64_t M)
{
    const dec_layer *l = &d->layers[d->layer[n - d->m->nodes]];
    const int64_t H = l->H, D = l->D, C = H * D, Tc = d->Tcap;
    const float *qkv = d->x->buf[n->in[0]];
    float *out = d->x->buf[n->out];
    for (int64_t r = 0; r < M; r++)
        for (int64_t h = 0; h < H; h++) {
            size_t at = (size_t)(((d->rb[r] * H + h) * Tc + d->rp[r]) * D);
            memcpy(l->k + at, qkv + r * 3 * C + C + h * D, sizeof(float) * (size_t)D);
            memcpy(l->v + at, qkv + r * 3 * C + 2 * C + h * D, sizeof(float) * (size_t)D);
        }
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t work = M * H;
#pragma omp parallel for schedule(dynamic, 1) if (work > 1) num_threads(d->threads)
    for (int64_t rh = 0; rh < work; rh++) {
        const int64_t r = rh / H, h = rh % H, nk = d->rp[r] + 1;
        const float *q = qkv + r * 3 * C + h * D;
        const float *K = l->k + (d->rb[r] * H + h) * Tc * D, *Vc = l->v + (d->rb[r] * H + h) * Tc * D;
        float *s = d->scratch + (int64_t)omp_get_thread_num() * d->sscratch, *o = out + r * C + h * D;
        float mx = -INFINITY;
        for (int64_t j = 0; j < nk; j++) {
            float acc = 0.0f;
            for (int64_t e = 0; e < D; e++) acc += q[e] * K[j * D + e];
            s[j] = scale * acc;
            if (s[j] > mx) mx = s[j];
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < nk; j++) s[j] = expf(s[j] - mx), sum += s[j];
        const float inv = 1.0f / sum;
        for (int64_t e = 0; e < D; e++) o[e] = 0.0f;
        for (int64_t j = 0; j < nk; j++) {
            const float w = s[j] * inv;
            for (int64_t e = 0; e < D; e++) o[e] += w * Vc[j * D + e];
        }
    }
}

/* new queries q (M, C) of the rows against their sequences' memory: out (M, C) */
static void cross_attend_rows(pare_decoder *d, const pare_node *n, int64_t M)
{
    const dec_layer *l = &d->layers[d->layer[n - d->m->nodes]];
    const int64_t H = l->H, D = l->D, C = H * D, S = d->S;
    const float *q = d->x->buf[n->in[0]];
    float *out = d->x->buf[n->out];
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t work = M * H;
#pragma omp parallel for schedule(dynamic, 1) if (work > 1) num_threads(d->threads)
    for (int64_t rh = 0; rh < work; rh++) {
        const int64_t r = rh / H, h = rh % H, b = d->rb[r], nk = d->slen[b];
        const float *qi = q + r * C + h * D, *kv = l->k + b * S * 2 * C;
        float *s = d->scratch + (int64_t)omp_get_thread_num() * d->sscratch, *o = out + r * C + h * D;
        float mx = -INFINITY;
        for (int64_t j = 0; j < nk; j++) {
            float acc = 0.0f;
            for (int64_t e = 0; e < D; e++) acc += qi[e] * kv[j * 2 * C + h * D + e];
            s[j] = scale * acc;
            if (s[j] > mx) mx = s[j];
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < nk; j++) s[j] = expf(s[j] - mx), sum += s[j];
        for (int64_t e = 0; e < D; e++) o[e] = 0.0f;
        for (int64_t j = 0; j < nk; j++) {
            const float w = s[j] / sum;
            for (int64_t e = 0; e < D; e++) o[e] += w * kv[j * 2 * C + C + h * D + e];
        }
    }
}

pare_status pare_decoder_set_source(pare_decoder *d, const int32_t *const *src, const int64_t *src_lens)
{
    const pare_model *m = d->m;
    if (!d->has_src)
        return pare_fail(PARE_EINVAL, "generate: a source was given, but the model (kind %s) takes none", m->kind);
    for (int64_t b = 0; b < d->B; b++) {
        if (src_lens[b] < 1 || src_lens[b] > d->S)
            return pare_fail(PARE_EINVAL, "generate: source %lld has %lld tokens: must be in [1, %lld] (the model's "
                             "src_max_T)", (long long)b, (long long)src_lens[b], (long long)d->S);
        for (int64_t t = 0; t < src_lens[b]; t++)
            if (src[b][t] < 0 || src[b][t] >= m->src_vocab)
                return pare_fail(PARE_EINVAL, "generate: source %lld, position %lld: id %d is outside the source "
                                 "vocabulary [0, %lld)", (long long)b, (long long)t, src[b][t], (long long)m->src_vocab);
    }
    for (int64_t b = 0; b < d->B; b++) {
        memset(d->src + b * d->S, 0, sizeof(int32_t) * (size_t)d->S);
        memcpy(d->src + b * d->S, src[b], sizeof(int32_t) * (size_t)src_lens[b]);
        d->slen[b] = (int32_t)src_lens[b];
    }
    d->src_set = 1;
    if (d->recompute) return PARE_OK; /* bound with every feed */
    /* the encoder and every cross-attention's kv projection, once: the model's executor at T = 1 */
    const char *keep[64];
    int nkeep = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (d->kind[i] == NK_XATTN) {
            if (nkeep == 64) return pare_fail(PARE_EINVAL, "generate: more than 64 cross-attention layers");
            keep[nkeep++] = m->values[m->nodes[i].in[1]].name;
        }
    pare_exec *x = NULL;
    int32_t *tok = calloc((size_t)d->B, sizeof *tok), *one = malloc(sizeof *one * (size_t)d->B);
    pare_status st = tok && one ? PARE_OK : pare_fail(PARE_ENOMEM, "out of memory encoding the sources");
    for (int64_t b = 0; one && b < d->B; b++) one[b] = 1;
    if (st == PARE_OK) st = pare_exec_new_src(&x, d->m, d->B, 1, d->S, PARE_EXEC_INFER, keep, nkeep);
    if (st == PARE_OK) st = pare_exec_bind(x, tok, one, NULL);
    if (st == PARE_OK) st = pare_exec_bind_source(x, d->src, d->slen);
    if (st == PARE_OK) st = pare_exec_forward(x);
    for (int64_t i = 0; st == PARE_OK && i < m->nnodes; i++) {
        if (d->kind[i] != NK_XATTN) continue;
        const dec_layer *l = &d->layers[d->layer[i]];
        const float *kv;
        int64_t rows, cols;
        st = pare_exec_value(x, m->values[l->kv_value].name, &kv, &rows, &cols);
        if (st == PARE_OK) memcpy(l->k, kv, sizeof(float) * (size_t)(rows * cols));
    }
    pare_exec_free(x);
    free(tok), free(one);
    return st == PARE_OK ? PARE_OK : pare_fail_ctx(st, "generate: encoding the sources");
}

/* ---- one call of the executor on M rows (rb, rp filled; tokens in the executor's input) ---- */

static pare_status run_rows(pare_decoder *d, int64_t M, int64_t nwant, float *logits)
{
    pare_exec *x = d->x;
    const pare_model *m = d->m;
    x->B = 1, x->T = M; /* every row-local op sees M rows (pare_exec_rows) */
    if (m->types >= 0) memset(x->buf[m->types], 0, sizeof(int32_t) * (size_t)M);
    for (int64_t i = 0; i <= d->head; i++) {
        const pare_node *n = &m->nodes[i];
        if (i == d->head) {
            if (nwant == 0) break;
            if (d->compact) { /* the wanted rows (increasing) moved down to rows 0..nwant */
                const pare_value *hv = &m->values[n->in[0]];
                size_t row = pare_dtype_size(hv->dtype) * (size_t)hv->cols; /* a bf16 head input has 2-byte elements */
                unsigned char *in = x->buf[n->in[0]];
                for (int64_t j = 0; j < nwant; j++)
                    if (d->want[j] != j) memmove(in + (size_t)j * row, in + (size_t)d->want[j] * row, row);
                x->T = nwant;
            }
        }
        pare_status st = PARE_OK;
        switch ((node_kind)d->kind[i]) {
        case NK_SKIP: break;
        case NK_ROWLOCAL: st = pare_op_get(n->op)->forward(x, n); break;
        case NK_POSADD: posadd_rows(d, n, M); break;
        case NK_ATTN: attend_rows(d, n, M); break;
        case NK_XATTN: cross_attend_rows(d, n, M); break;
        }
        if (st != PARE_OK) return pare_fail_ctx(st, "generate: forward of %s", n->name);
    }
    if (logits && nwant > 0) {
        const float *y = x->buf[m->logits];
        for (int64_t j = 0; j < nwant; j++)
            memcpy(logits + d->rb[d->want[j]] * d->V, y + (d->compact ? j : d->want[j]) * d->V, sizeof(float) * (size_t)d->V);
    }
    return PARE_OK;
}

/* The recompute mode's feed: append, then the model's forward over every sequence so far. A sequence
 * not started yet runs as one pad token (length 1) and is not read. */
static pare_status feed_recompute(pare_decoder *d, const int32_t *const *tokens, const int64_t *n, float *logits)
{
    for (int64_t b = 0; b < d->B; b++) {
        if (n[b] > 0) memcpy(d->hist + b * d->Tfull + d->len[b], tokens[b], sizeof(int32_t) * (size_t)n[b]);
        d->lens32[b] = (int32_t)(d->len[b] + n[b] > 0 ? d->len[b] + n[b] : 1);
    }
    PARE_TRY(pare_exec_bind(d->full, d->hist, d->lens32, NULL));
    if (d->has_src) PARE_TRY(pare_exec_bind_source(d->full, d->src, d->slen));
    PARE_TRY(pare_exec_forward(d->full));
    const float *y = pare_exec_logits(d->full);
    for (int64_t b = 0; b < d->B; b++) {
        if (n[b] == 0) continue;
        d->len[b] += n[b];
        if (logits) memcpy(logits + b * d->V, y + (b * d->Tfull + d->len[b] - 1) * d->V, sizeof(float) * (size_t)d->V);
    }
    return PARE_OK;
}

pare_status pare_decoder_feed(pare_decoder *d, const int32_t *const *tokens, const int64_t *n, float *logits)
{
    for (int64_t b = 0; b < d->B; b++) {
        if (n[b] < 0) return pare_fail(PARE_EINVAL, "generate: %lld tokens for row %lld", (long long)n[b], (long long)b);
        if (n[b] > d->Tcap - d->len[b])
            return pare_fail(PARE_EINVAL, "generate: row %lld would hold %lld tokens, more than the decoder's %lld "
                             "(at most the model's max_T = %lld)", (long long)b, (long long)(d->len[b] + n[b]),
                             (long long)d->Tcap, (long long)d->m->max_T);
        for (int64_t t = 0; t < n[b]; t++)
            if (tokens[b][t] < 0 || tokens[b][t] >= d->V)
                return pare_fail(PARE_EINVAL, "generate: token id %d at row %lld, position %lld is outside the "
                                 "vocabulary [0, %lld)", tokens[b][t], (long long)b, (long long)(d->len[b] + t),
                                 (long long)d->V);
    }
    if (d->has_src && !d->src_set)
        return pare_fail(PARE_EINVAL, "generate: the model is an encoder-decoder: give its sources first "
                         "(pare_decoder_set_source; m:generate's source option)");
    if (d->recompute) return feed_recompute(d, tokens, n, logits);
    int32_t *tk = d->x->buf[d->m->tokens];
    int64_t M = 0, nwant = 0;
    for (int64_t b = 0; b < d->B; b++)
        for (int64_t t = 0; t < n[b]; t++) {
            d->rb[M] = b, d->rp[M] = d->len[b] + t, tk[M] = tokens[b][t];
            if (t == n[b] - 1) d->want[nwant++] = M;
            if (++M == d->R) { /* a full chunk: run it (its keys are cached before the next chunk) */
                PARE_TRY(run_rows(d, M, nwant, logits));
                M = nwant = 0;
            }
        }
    if (M > 0) PARE_TRY(run_rows(d, M, nwant, logits));
    for (int64_t b = 0; b < d->B; b++) d->len[b] += n[b];
    return PARE_OK;
}
