/* ops.c — the op registry: wires graph values to the kernels of src/kernels/.
 *
 * Each op is a forward/backward pair over the executor's buffers. Backward adds into gradients; a
 * NULL gradient pointer means "not needed" (inputs, frozen parameters). The FLOP counts are the
 * multiply-adds ×2 of the products plus a nominal count per element for elementwise work, the same
 * convention for every op so tables compare like with like.
 *
 * Most ops read and write f32 (and int32 inputs): F() and I() take the element type for granted because
 * op_dtypes below declares it and the graph refuses other dtypes when a node is added (pare_model_add_node,
 * pare_model_check_dtypes), so no forward checks or converts anything. The exceptions dispatch on their values'
 * dtypes (DT()): CAST; the Linear's 16-bit input and the attention's bf16 qkv; the elementwise ops that follow
 * their input's dtype under automatic mixed precision (GELU, ReLU, tanh, add, dropout, posadd: bf16 kernels of
 * kernels/nn_half.h, inference only); the Linear, LayerNorm, embedding and (in ops_fused.c) softmax, which may write
 * 16-bit values (a.dtype, f32 by default) and LayerNorm and softmax read them (docs/amp.md); and the embedding and
 * posadd, whose tables may be stored in 16 bits (fmt_half.c; docs/mixed-precision.md).
 */
#include "ops.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "exec.h"
#include "format.h"
#include "ops_fused.h"
#include "dist/tp_ops.h"
#include "transform.h"
#include "attn/attn.h"
#include "kernels/cast.h"
#include "kernels/embed_q.h"
#include "kernels/loss.h"
#include "kernels/nn_half.h"
#include "kernels/token_select.h"

static float *F(const pare_exec *x, int id) { return (float *)x->buf[id]; }
static const int32_t *I(const pare_exec *x, int id) { return (const int32_t *)x->buf[id]; }
/* The gradient of value id, or NULL: none (inference, inputs), or not needed by this backward because no
 * trainable parameter lies upstream of it (exec.h need_grad; every backward below accepts NULL for the
 * gradient of an input that is not needed, and a node whose output is not needed does not run). */
static float *G(const pare_exec *x, int id) { return x->grad && x->need_grad[id] ? x->grad[id] : NULL; }
/* The gradient buffer of value id whether needed or not: for a backward that cannot take NULL there (an
 * attention variant with learnt parameters computes their gradient on its way to dq, dk, dv); what it
 * adds into an unneeded buffer is never read. */
static float *G_ANY(const pare_exec *x, int id) { return x->grad ? x->grad[id] : NULL; }
static pare_param *P(const pare_exec *x, const pare_node *n, int i) { return &x->m->params[n->param[i]]; }
static float *PD(const pare_exec *x, const pare_node *n, int i) { return P(x, n, i)->blob->data; }
static float *PG(const pare_exec *x, const pare_node *n, int i)
{
    pare_param *p = P(x, n, i);
    return p->trainable ? p->grad : NULL;
}
static int64_t ROWS(const pare_exec *x, int id) { return pare_exec_rows(x, &x->m->values[id]); }
static int64_t COLS(const pare_exec *x, int id) { return x->m->values[id].cols; }
static const int32_t *LENGTHS(const pare_exec *x, const pare_node *n) { return I(x, n->in[1]); }
static pare_dtype DT(const pare_exec *x, int id) { return x->m->values[id].dtype; }
static uint16_t *H(const pare_exec *x, int id) { return (uint16_t *)x->buf[id]; }
/* 16-bit values are for inference (docs/amp.md): a training forward over one is refused, naming the node. */
static pare_status no_half_training(const pare_exec *x, const pare_node *n, int id)
{
    if (x->mode != PARE_EXEC_TRAIN) return PARE_OK;
    return pare_fail(PARE_EINVAL, "node %s (op %s): value '%s' is %s, which runs at inference only (training on 16-bit "
                     "values is not here: train the f32 model, then apply amp)", n->name, pare_op_name(n->op),
                     x->m->values[id].name, pare_dtype_name(DT(x, id)));
}
/* Workspace layout of an op that widens or rounds: the bytes before `off` are someone else's (the Linear's
 * format), rounded up to 64 so f32 rows start aligned. */
static size_t ws_align(size_t off) { return (off + 63) & ~(size_t)63; }

/* ---- embedding: out(B·T, C) = table[tokens] ---- */
/* A table as stored: the 16-bit rows of the half format (the bf16 pass's `embeddings` option; fmt_half.c), else the f32
 * master. A 16-bit table trains through its master (backward adds into the master's f32 gradient; the format's refresh
 * rounds the updated master again after each step), as the 16-bit Linears do. */
static const void *TABLE(const pare_exec *x, const pare_node *n, int i, pare_dtype *dt)
{
    const pare_param *p = P(x, n, i);
    if (p->format == PARE_FMT_HALF) {
        *dt = p->q->hw.dtype;
        return p->q->hw.w;
    }
    *dt = PARE_F32;
    return p->blob->data;
}
/* out = table[ids] · scale (scale 0: 1; BART multiplies its token embeddings by √C). A 16-bit table is widened row by
 * row; a 16-bit output (a.dtype: amp) is the f32 result rounded once — the bits of an f32 lookup then a cast. */
static pare_status embedding_q_fwd(pare_exec *x, const pare_node *n);
static pare_status embedding_fwd(pare_exec *x, const pare_node *n)
{
    const pare_format pf = P(x, n, 0)->format;
    if (pf == PARE_FMT_I8_CHANNEL || pf == PARE_FMT_QBLOCK || pf == PARE_FMT_SIMULATED) return embedding_q_fwd(x, n);
    pare_dtype tt, ot = DT(x, n->out);
    const void *tab = TABLE(x, n, 0, &tt);
    if (tt != PARE_F32 || ot != PARE_F32) {
        if (ot != PARE_F32) PARE_TRY(no_half_training(x, n, n->out));
        pare_embedding_half(x->buf[n->out], ot, I(x, n->in[0]), tab, tt, n->a.scale, ROWS(x, n->out), COLS(x, n->out));
        return PARE_OK;
    }
    pare_embedding_forward(F(x, n->out), I(x, n->in[0]), PD(x, n, 0), ROWS(x, n->out), COLS(x, n->out));
    if (n->a.scale != 0 && n->a.scale != 1) pare_scale_inplace(F(x, n->out), n->a.scale, ROWS(x, n->out) * COLS(x, n->out));
    return PARE_OK;
}
/* A quantized table (the quantization passes' `embeddings` option, or a tied LM head quantized as a Linear): the rows
 * the tokens select are dequantized as they are read (kernels/embed_q.h), the values m:apply("dequantize") would hold. */
static pare_status embedding_q_fwd(pare_exec *x, const pare_node *n)
{
    const pare_param *p = P(x, n, 0);
    if (DT(x, n->out) != PARE_F32)
        return pare_fail(PARE_EINVAL, "node %s (op embedding): its table %s is stored as %s, whose lookup writes f32, but the "
                         "output is %s", n->name, p->name, pare_format_label(p), pare_dtype_name(DT(x, n->out)));
    const int32_t *ids = I(x, n->in[0]);
    int64_t M = ROWS(x, n->out), C = COLS(x, n->out);
    float *out = F(x, n->out);
    if (p->format == PARE_FMT_I8_CHANNEL) pare_embedding_i8(out, ids, p->q->i8.q, p->q->i8.scale, M, C);
    else if (p->format == PARE_FMT_QBLOCK) PARE_TRY(pare_embedding_qb(out, ids, &p->q->qb, M));
    else pare_embedding_forward(out, ids, p->q->w_sim, M, C); /* simulated: its dequantized copy */
    if (n->a.scale != 0 && n->a.scale != 1) pare_scale_inplace(out, n->a.scale, M * C);
    return PARE_OK;
}
static void embedding_bwd(pare_exec *x, const pare_node *n)
{
    float *dt = PG(x, n, 0);
    if (!dt) return;
    /* d table[id] += scale · dout: the output's gradient is this node's alone, so it is scaled in place */
    if (n->a.scale != 0 && n->a.scale != 1) pare_scale_inplace(G(x, n->out), n->a.scale, ROWS(x, n->out) * COLS(x, n->out));
    pare_embedding_backward(dt, G(x, n->out), I(x, n->in[0]), ROWS(x, n->out), COLS(x, n->out));
}

/* ---- positions: out = x + pos[t] ---- */
/* Positions along the target (T) or, for an encoder-decoder's encoder, the source (S). */
static int64_t SEQ_LEN(const pare_exec *x, const pare_node *n) { return pare_exec_seq_len(x, &x->m->values[n->out]); }
/* The input may be bf16 (amp: the output follows it, one rounding of the f32 sum) and the table 16-bit (widened). */
static pare_status posadd_fwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out);
    pare_dtype pt, it = DT(x, n->in[0]);
    const void *pos = TABLE(x, n, 0, &pt);
    if (it != PARE_F32 || pt != PARE_F32) {
        if (it != PARE_F32) PARE_TRY(no_half_training(x, n, n->in[0]));
        pare_posadd_half(x->buf[n->out], x->buf[n->in[0]], it, (const char *)pos + (size_t)(n->a.pos_offset * C) * pare_dtype_size(pt),
                         pt, x->B, SEQ_LEN(x, n), C);
        return PARE_OK;
    }
    pare_posadd_forward(F(x, n->out), F(x, n->in[0]), PD(x, n, 0) + n->a.pos_offset * C, x->B, SEQ_LEN(x, n), C);
    return PARE_OK;
}
static void posadd_bwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out);
    float *dpos = PG(x, n, 0);
    pare_posadd_backward(G(x, n->in[0]), dpos ? dpos + n->a.pos_offset * C : NULL, G(x, n->out), x->B, SEQ_LEN(x, n), C);
}
static int64_t posadd_flops(const pare_exec *x, const pare_node *n) { return ROWS(x, n->out) * COLS(x, n->out); }

/* ---- linear: y(M,N) = x(M,K) W(N,K)^T + b, dispatched on the weight's storage format ---- */

/* Weight transforms (transform.h: a pruning mask, QAT's fake quantization) replace the weight and/or the
 * input by their effective values; the Linear then runs the f32 path on them. A node without transforms
 * pays one test of n->ntf. Transforms act on f32 weights; a quantized format runs its own kernel. */
/* A fused activation (n->a.epilogue, the fuse pass's Linear+GELU / Linear+ReLU; docs/fusion.md): at inference
 * the format's kernel applies it as an epilogue where it can (forward_act: oneDNN's post-op for packed f32),
 * else a loop over y right after the product; training keeps the pre-activation z in the "#pre" cache for
 * backward, which turns the output's gradient into z's in place before the Linear's own backward. */
/* A 16-bit output (a.dtype bf16 or f16: AMP's Linears feeding bf16 ops) is computed in f32 into the head of the
 * workspace and rounded once: the bits of a cast node after an f32-output Linear. The format's kernel gets the
 * rest of the workspace as its own (a format may hand all it is given to oneDNN as scratchpad). */
static size_t linear_fmt_ws(const pare_exec *x, const pare_node *n);
static pare_status linear_fwd_f32(pare_exec *x, const pare_node *n, float *y);
static pare_status linear_fwd(pare_exec *x, const pare_node *n)
{
    const pare_dtype ot = DT(x, n->out);
    if (ot == PARE_F32) return linear_fwd_f32(x, n, F(x, n->out));
    PARE_TRY(no_half_training(x, n, n->out));
    const int64_t len = ROWS(x, n->out) * COLS(x, n->out);
    const size_t head = ws_align(sizeof(float) * (size_t)len);
    void *ws = x->workspace;
    const size_t wsb = x->workspace_bytes;
    float *y = ws;
    x->workspace = (char *)ws + head, x->workspace_bytes = wsb - head;
    pare_status st = linear_fwd_f32(x, n, y);
    x->workspace = ws, x->workspace_bytes = wsb;
    if (st == PARE_OK) pare_half_round(x->buf[n->out], ot, y, len);
    return st;
}
static pare_status linear_fwd_f32(pare_exec *x, const pare_node *n, float *y)
{
    const pare_param *w = P(x, n, 0);
    const float *bias = n->nparam > 1 ? PD(x, n, 1) : NULL;
    int64_t M = ROWS(x, n->out);
    const float *in = F(x, n->in[0]);
    const int epi = n->a.epilogue, train = x->mode == PARE_EXEC_TRAIN;
    float *z = epi && train ? F(x, n->cache[0]) : y; /* the product before the activation */
    const pare_format_traits *fmt = pare_format_get(w->format);
    if (n->ntf && w->format == PARE_FMT_F32 && !(x->packed && x->packed[n->param[0]])) {
        const float *We, *xe; /* an inference executor that packed the folded weight runs the format's path below */
        PARE_TRY(pare_tf_forward(x, n, M, train, &We, &xe));
        pare_linear_f32(z, xe, We, bias, M, w->shape[0], w->shape[1]);
    } else if (epi && !train && fmt->forward_act) {
        return fmt->forward_act(x, n, w, y, in, bias, M);
    } else {
        PARE_TRY(fmt->forward(x, n, w, z, in, bias, M));
    }
    if (epi) pare_epilogue_forward(y, z, epi, M * w->shape[0]);
    return PARE_OK;
}
/* Backward uses the f32 master weights (or, under transforms, their effective values and the kinds'
 * gradient rules), or the format's own backward where it has one (bf16: 16-bit operands, f32 sums, the
 * master's gradient; format.h). */
static void linear_bwd(pare_exec *x, const pare_node *n)
{
    const pare_param *w = P(x, n, 0);
    int64_t M = ROWS(x, n->out), N = w->shape[0], K = w->shape[1];
    float *dbias = n->nparam > 1 ? PG(x, n, 1) : NULL;
    /* y = act(z): dz = act'(z) ⊙ dy, in place (the output's gradient is this node's alone) */
    if (n->a.epilogue) pare_epilogue_backward(G(x, n->out), F(x, n->cache[0]), n->a.epilogue, M * N);
    if (n->ntf && w->format == PARE_FMT_F32) {
        pare_tf_backward(x, n, M, G(x, n->in[0]), PG(x, n, 0), dbias, G(x, n->out));
        return;
    }
    const pare_format_traits *fmt = pare_format_get(w->format);
    if (fmt->backward) fmt->backward(x, n, w, G(x, n->in[0]), PG(x, n, 0), dbias, G(x, n->out), x->buf[n->in[0]], M);
    else pare_linear_f32_backward(G(x, n->in[0]), PG(x, n, 0), dbias, G(x, n->out), F(x, n->in[0]), w->blob->data, M, N, K);
}
static int64_t linear_flops(const pare_exec *x, const pare_node *n)
{
    const pare_param *w = P(x, n, 0);
    int64_t act = n->a.epilogue == PARE_EPILOGUE_RELU ? 1 : n->a.epilogue ? 8 : 0; /* as the GELU / ReLU ops count */
    return (2 * w->shape[1] + act) * ROWS(x, n->out) * w->shape[0];
}
static int linear_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    if (!n->a.epilogue) return 0;
    cs[0] = (pare_cache_spec){"pre", m->values[n->out].rows, m->values[n->out].cols, PARE_F32}; /* training only */
    return 1;
}
static size_t linear_ws(const pare_exec *x, const pare_node *n)
{
    size_t ws = linear_fmt_ws(x, n);
    if (DT(x, n->out) == PARE_F32) return ws;
    return ws_align(sizeof(float) * (size_t)(ROWS(x, n->out) * COLS(x, n->out))) + ws;
}
static size_t linear_fmt_ws(const pare_exec *x, const pare_node *n)
{
    const pare_param *w = &x->m->params[n->param[0]];
    int64_t M = ROWS(x, n->out);
    if (n->ntf && w->format == PARE_FMT_F32 && !(x->packed && x->packed[n->param[0]])) /* folded: none */
        return pare_tf_workspace(x, n, M);
    const pare_format_traits *f = pare_format_get(w->format);
    return f->workspace ? f->workspace(w, M) : 0;
}

/* ---- tt_linear: y(M,N) = x(M,K) W^T + b with W a TT-matrix (a sum of Kronecker products for d = 2) ----
 * kernels/tt.h: a chain of GEMMs over the cores; the intermediates are the "#tt" cache, backward's scratch
 * the workspace. The cores are one trainable parameter, so the factored layer fine-tunes and checkpoints
 * like any other. */
static pare_status tt_linear_fwd(pare_exec *x, const pare_node *n)
{
    pare_tt_linear_forward(F(x, n->out), F(x, n->cache[0]), (float *)x->workspace, F(x, n->in[0]), PD(x, n, 0),
                           n->nparam > 1 ? PD(x, n, 1) : NULL, ROWS(x, n->out), &n->a.tt);
    return PARE_OK;
}
static void tt_linear_bwd(pare_exec *x, const pare_node *n)
{
    pare_tt_linear_backward(G(x, n->in[0]), PG(x, n, 0), n->nparam > 1 ? PG(x, n, 1) : NULL, (float *)x->workspace,
                            G(x, n->out), F(x, n->in[0]), F(x, n->cache[0]), PD(x, n, 0), ROWS(x, n->out), &n->a.tt);
}
static int64_t tt_linear_flops(const pare_exec *x, const pare_node *n) { return pare_tt_flops(&n->a.tt, ROWS(x, n->out)); }
static int tt_linear_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    int64_t c = n->a.tt.d >= 2 ? pare_tt_cache_floats(&n->a.tt) : 1;
    cs[0] = (pare_cache_spec){"tt", m->values[n->out].rows, c > 0 ? c : 1, PARE_F32};
    return 1;
}
static size_t tt_linear_ws(const pare_exec *x, const pare_node *n)
{
    return sizeof(float) * (size_t)(ROWS(x, n->out) * pare_tt_work_floats(&n->a.tt));
}

/* ---- layernorm ---- */
/* The input may be 16-bit (widened first) and the output 16-bit (a.dtype: rounded after); the statistics and the
 * normalisation are f32 either way, so the result is round(LN(widen(x))) — AMP's fp32 category with its casts
 * folded in. The f32 copies live in the workspace: input first, then output. */
static pare_status layernorm_fwd(pare_exec *x, const pare_node *n)
{
    const pare_dtype it = DT(x, n->in[0]), ot = DT(x, n->out);
    const int64_t M = ROWS(x, n->out), C = COLS(x, n->out);
    float *in = F(x, n->in[0]), *out = F(x, n->out), *ws = x->workspace;
    if (it != PARE_F32 || ot != PARE_F32) {
        PARE_TRY(no_half_training(x, n, it != PARE_F32 ? n->in[0] : n->out));
        if (it != PARE_F32) pare_half_widen(in = ws, x->buf[n->in[0]], it, M * C), ws += M * C;
        if (ot != PARE_F32) out = ws;
    }
    pare_layernorm_forward_eps(out, F(x, n->cache[0]), F(x, n->cache[1]), in, PD(x, n, 0), PD(x, n, 1), M, C,
                               n->a.eps > 0 ? n->a.eps : 1e-5f);
    if (ot != PARE_F32) pare_half_round(x->buf[n->out], ot, out, M * C);
    return PARE_OK;
}
static size_t layernorm_ws(const pare_exec *x, const pare_node *n)
{
    const size_t rowsz = sizeof(float) * (size_t)(ROWS(x, n->out) * COLS(x, n->out));
    return (DT(x, n->in[0]) != PARE_F32) * rowsz + (DT(x, n->out) != PARE_F32) * rowsz;
}
static void layernorm_bwd(pare_exec *x, const pare_node *n)
{
    pare_layernorm_backward(G(x, n->in[0]), PG(x, n, 0), PG(x, n, 1), G(x, n->out), F(x, n->in[0]), PD(x, n, 0),
                            F(x, n->cache[0]), F(x, n->cache[1]), ROWS(x, n->out), COLS(x, n->out));
}
static int64_t layernorm_flops(const pare_exec *x, const pare_node *n) { return 8 * ROWS(x, n->out) * COLS(x, n->out); }
static int layernorm_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    pare_rows r = m->values[n->out].rows;
    cs[0] = (pare_cache_spec){"mean", r, 1, PARE_F32};
    cs[1] = (pare_cache_spec){"rstd", r, 1, PARE_F32};
    return 2;
}

/* ---- activations ---- */
static int64_t numel_out(const pare_exec *x, const pare_node *n) { return ROWS(x, n->out) * COLS(x, n->out); }
static pare_status gelu_fwd(pare_exec *x, const pare_node *n)
{
    if (DT(x, n->in[0]) == PARE_BF16) {
        PARE_TRY(no_half_training(x, n, n->in[0]));
        (n->a.gelu_erf ? pare_gelu_erf_bf16 : pare_gelu_bf16)(H(x, n->out), H(x, n->in[0]), numel_out(x, n));
    } else if (n->a.gelu_erf) pare_gelu_erf_forward(F(x, n->out), F(x, n->in[0]), numel_out(x, n));
    else pare_gelu_forward(F(x, n->out), F(x, n->in[0]), numel_out(x, n));
    return PARE_OK;
}
static void gelu_bwd(pare_exec *x, const pare_node *n)
{
    if (n->a.gelu_erf) pare_gelu_erf_backward(G(x, n->in[0]), F(x, n->in[0]), G(x, n->out), numel_out(x, n));
    else pare_gelu_backward(G(x, n->in[0]), F(x, n->in[0]), G(x, n->out), numel_out(x, n));
}
static pare_status tanh_fwd(pare_exec *x, const pare_node *n)
{
    if (DT(x, n->in[0]) == PARE_BF16) {
        PARE_TRY(no_half_training(x, n, n->in[0]));
        pare_tanh_bf16(H(x, n->out), H(x, n->in[0]), numel_out(x, n));
        return PARE_OK;
    }
    pare_tanh_forward(F(x, n->out), F(x, n->in[0]), numel_out(x, n));
    return PARE_OK;
}
static void tanh_bwd(pare_exec *x, const pare_node *n)
{
    pare_tanh_backward(G(x, n->in[0]), F(x, n->in[0]), G(x, n->out), numel_out(x, n));
}
static int64_t gelu_flops(const pare_exec *x, const pare_node *n) { return 8 * numel_out(x, n); }
static pare_status relu_fwd(pare_exec *x, const pare_node *n)
{
    if (DT(x, n->in[0]) == PARE_BF16) {
        PARE_TRY(no_half_training(x, n, n->in[0]));
        pare_relu_bf16(H(x, n->out), H(x, n->in[0]), numel_out(x, n));
        return PARE_OK;
    }
    pare_relu_forward(F(x, n->out), F(x, n->in[0]), numel_out(x, n));
    return PARE_OK;
}
static void relu_bwd(pare_exec *x, const pare_node *n)
{
    pare_relu_backward(G(x, n->in[0]), F(x, n->in[0]), G(x, n->out), numel_out(x, n));
}
static int64_t elementwise_flops(const pare_exec *x, const pare_node *n) { return numel_out(x, n); }

/* ---- residual add ---- */
static pare_status add_fwd(pare_exec *x, const pare_node *n)
{
    if (DT(x, n->in[0]) == PARE_BF16) { /* both inputs: op_dtypes' PARE_OUT_IN0 */
        PARE_TRY(no_half_training(x, n, n->in[0]));
        pare_add_bf16(H(x, n->out), H(x, n->in[0]), H(x, n->in[1]), numel_out(x, n));
        return PARE_OK;
    }
    float *o = F(x, n->out);
    const float *a = F(x, n->in[0]), *b = F(x, n->in[1]);
    int64_t len = numel_out(x, n);
#pragma omp parallel for if (len > 65536)
    for (int64_t i = 0; i < len; i++) o[i] = a[i] + b[i];
    return PARE_OK;
}
static void add_bwd(pare_exec *x, const pare_node *n)
{
    const float *d = G(x, n->out);
    int64_t len = numel_out(x, n);
    for (int k = 0; k < 2; k++) {
        float *g = G(x, n->in[k]);
        if (!g) continue;
#pragma omp parallel for if (len > 65536)
        for (int64_t i = 0; i < len; i++) g[i] += d[i];
    }
}

/* ---- dropout (identity at inference) ---- */
static pare_status dropout_fwd(pare_exec *x, const pare_node *n)
{
    int64_t len = numel_out(x, n);
    if (DT(x, n->in[0]) != PARE_F32) { /* inference only: the identity, in the input's dtype */
        PARE_TRY(no_half_training(x, n, n->in[0]));
        if (x->buf[n->out] != x->buf[n->in[0]]) memcpy(x->buf[n->out], x->buf[n->in[0]], (size_t)len * pare_dtype_size(DT(x, n->in[0])));
        return PARE_OK;
    }
    if (x->mode == PARE_EXEC_TRAIN)
        pare_dropout_forward(F(x, n->out), (uint8_t *)x->buf[n->cache[0]], F(x, n->in[0]), len, n->a.p, &x->rng);
    else if (F(x, n->out) != F(x, n->in[0])) /* inference executors alias it away (exec.c) */
        memcpy(F(x, n->out), F(x, n->in[0]), (size_t)len * sizeof(float));
    return PARE_OK;
}
static void dropout_bwd(pare_exec *x, const pare_node *n)
{
    pare_dropout_backward(G(x, n->in[0]), G(x, n->out), (const uint8_t *)x->buf[n->cache[0]], numel_out(x, n), n->a.p);
}
static int dropout_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    cs[0] = (pare_cache_spec){"mask", m->values[n->out].rows, m->values[n->out].cols, PARE_U8};
    return 1;
}

/* ---- attention: qkv (B·T, 3C) -> out (B·T, C), through the node's variant (src/attn) ----
 * The executor holds the instance for its T (exec.c). The dense attention is the "full" variant: its
 * cache, the probabilities (B,H,T,T), is the planned value "<node>#att"; other variants' caches are the
 * executor's. SmoothQuant's int8 batched products (n->a.bmm_i8, inference) are the variant's
 * forward_i8; a variant without one runs in f32. */
static pare_attn *VARIANT(const pare_exec *x, const pare_node *n) { return x->attn[n - x->m->nodes]; }
/* A bf16 qkv (op_dtypes allows it; attention_check holds it to a variant with a bf16 forward): the forward runs
 * on bf16 products with f32 accumulation (kernels/attn_half.h), the output stays f32. Backward widens the bf16
 * qkv (exactly) into the workspace after the variant's scratch and runs the f32 backward: gradients in f32 of
 * the attention of the bf16 operands (for full, from the f32 probabilities the bf16 forward cached). */
static int QKV16(const pare_exec *x, const pare_node *n) { return x->m->values[n->in[0]].dtype == PARE_BF16; }
static int BMM_I8(const pare_exec *x, const pare_node *n)
{
    return n->a.bmm_i8 && x->mode == PARE_EXEC_INFER && !QKV16(x, n) && pare_attn_has_i8(VARIANT(x, n));
}
static pare_attn_args variant_args(const pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out);
    void *cache = n->ncache ? x->buf[n->cache[0]] : x->attn_cache[n - x->m->nodes];
    pare_attn_args a = {.out = F(x, n->out), .ldo = C, .cache = cache, .work = x->workspace,
                        .work_bytes = x->workspace_bytes, .ld = 3 * C, .lengths = LENGTHS(x, n), .B = x->B,
                        .params = n->nparam ? PD(x, n, 0) : NULL, .i8_p_fixed = n->a.bmm_i8 == 2};
    if (QKV16(x, n)) {
        const uint16_t *qkv = x->buf[n->in[0]];
        a.q16 = qkv, a.k16 = qkv + C, a.v16 = qkv + 2 * C;
    } else {
        const float *qkv = F(x, n->in[0]);
        a.q = qkv, a.k = qkv + C, a.v = qkv + 2 * C;
    }
    return a;
}
/* Backward of a bf16 qkv: the variant's scratch first, then the widened qkv (B·T, 3C) f32. */
static size_t attention_scratch16(const pare_exec *x, const pare_node *n)
{
    return (pare_attn_work_bytes(VARIANT(x, n), x->B) + 63) & ~(size_t)63;
}

static pare_status attention_fwd(pare_exec *x, const pare_node *n)
{
    pare_attn_args a = variant_args(x, n);
    if (QKV16(x, n)) return pare_attn_forward_bf16(VARIANT(x, n), &a);
    return BMM_I8(x, n) ? pare_attn_forward_i8(VARIANT(x, n), &a) : pare_attn_forward(VARIANT(x, n), &a);
}
static void attention_bwd(pare_exec *x, const pare_node *n)
{
    pare_attn_args a = variant_args(x, n);
    int64_t C = COLS(x, n->out);
    float *dqkv = n->nparam ? G_ANY(x, n->in[0]) : G(x, n->in[0]); /* learnt parameters: their gradient needs the pass */
    if (!dqkv) return;
    if (QKV16(x, n)) { /* widen (exact) into the workspace after the variant's scratch (attention_ws sized it) */
        const size_t off = attention_scratch16(x, n);
        float *w = (float *)((char *)x->workspace + off); /* (B·T, 3C) */
        pare_cast_forward(w, PARE_F32, a.q16, PARE_BF16, ROWS(x, n->in[0]) * 3 * C);
        a.q16 = a.k16 = a.v16 = NULL;
        a.q = w, a.k = w + C, a.v = w + 2 * C, a.work_bytes = off;
    }
    a.dout = G(x, n->out), a.dq = dqkv, a.dk = dqkv + C, a.dv = dqkv + 2 * C, a.ldd = 3 * C;
    a.dparams = n->nparam ? PG(x, n, 0) : NULL;
    a.dprobs = n->ncache ? G(x, n->cache[0]) : NULL; /* a loss reads "<node>#att" (exec.c gives it a gradient) */
    pare_status st = pare_attn_backward(VARIANT(x, n), &a);
    assert(st == PARE_OK); /* arguments were checked by the forward of the same call */
    (void)st;
}
static int64_t attention_flops(const pare_exec *x, const pare_node *n)
{
    pare_attn_cost c;
    pare_attn_cost_of(VARIANT(x, n), x->B, &c);
    return c.flops_fwd;
}
static int attention_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    if (!n->a.attn || !n->a.attn->v->probs_cache) return 0; /* O(T) for flash and the sparse ones: their own */
    pare_rows r = m->values[n->in[0]].rows == PARE_ROWS_SRC ? PARE_ROWS_CACHE_SATT : PARE_ROWS_CACHE_ATT;
    cs[0] = (pare_cache_spec){"att", r, n->a.heads, PARE_F32};
    return 1;
}
static size_t attention_ws(const pare_exec *x, const pare_node *n)
{
    if (QKV16(x, n)) {
        size_t fwd = pare_attn_bf16_work_bytes(VARIANT(x, n), x->B), bwd = 0;
        if (x->mode == PARE_EXEC_TRAIN)
            bwd = attention_scratch16(x, n) + (size_t)(ROWS(x, n->in[0]) * COLS(x, n->in[0])) * sizeof(float);
        return fwd > bwd ? fwd : bwd;
    }
    if (BMM_I8(x, n)) return pare_attn_i8_work_bytes(VARIANT(x, n), x->B);
    return pare_attn_work_bytes(VARIANT(x, n), x->B);
}
/* A bf16 qkv needs a variant with a bf16 forward, and not SmoothQuant's int8 products (they read f32). */
/* A bf16 qkv needs a variant with a bf16 forward and no int8 batched products; every other input reads what the
 * row says. */
static int attention_takes(const pare_node *n, int k, pare_dtype t)
{
    if (k != 0 || t != PARE_BF16) return 1;
    const pare_attn_variant *v = n->a.attn ? n->a.attn->v : pare_attn_config_default()->v;
    return pare_attn_variant_has_bf16(v) && !n->a.bmm_i8;
}
static pare_status attention_check(const pare_model *m, const pare_node *n, int nin)
{
    if (nin < 1 || attention_takes(n, 0, m->values[n->in[0]].dtype)) return PARE_OK;
    const pare_attn_variant *v = n->a.attn ? n->a.attn->v : pare_attn_config_default()->v;
    if (!pare_attn_variant_has_bf16(v)) {
        char list[256];
        return pare_fail(PARE_EINVAL, "node %s (op attention): input 0 '%s' is bf16, but its attention variant %s has no "
                         "bf16 kernel (variants with one: %s): choose one of those, or cast the value to f32", n->name,
                         m->values[n->in[0]].name, v->schema->name, pare_attn_bf16_kinds(list, sizeof list));
    }
    return pare_fail(PARE_EINVAL, "node %s (op attention): input 0 '%s' is bf16, but the node runs SmoothQuant's int8 "
                     "batched products (bmm_i8), which read f32: cast the value to f32, or quantize with "
                     "quantize_bmm=false", n->name, m->values[n->in[0]].name);
}

/* ---- cross-attention: q (B·T, C), kv (B·S, 2C), src_lengths -> out (B·T, C); cache att (B,H,T,S) ----
 * Dense only (kernels/nn_cross_attention.c). The probabilities are the planned value "<node>#att", so
 * they can be captured like the self-attention's. */
static pare_status xattn_fwd(pare_exec *x, const pare_node *n)
{
    pare_cross_attention_forward(F(x, n->out), F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[1]), I(x, n->in[2]), x->B,
                                 x->T, x->S, COLS(x, n->out), n->a.heads);
    return PARE_OK;
}
static void xattn_bwd(pare_exec *x, const pare_node *n)
{
    pare_cross_attention_backward(G(x, n->in[0]), G(x, n->in[1]), G(x, n->out), F(x, n->cache[0]), G(x, n->cache[0]),
                                  F(x, n->in[0]), F(x, n->in[1]), I(x, n->in[2]), x->B, x->T, x->S, COLS(x, n->out),
                                  n->a.heads);
}
static int64_t xattn_flops(const pare_exec *x, const pare_node *n) { return 4 * x->B * x->T * x->S * COLS(x, n->out); }
static int xattn_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    (void)m;
    cs[0] = (pare_cache_spec){"att", PARE_ROWS_CACHE_XATT, n->a.heads, PARE_F32};
    return 1;
}

/* ---- pooling (over T, or T' after token pruning) ---- */
static int64_t IN_LEN(const pare_exec *x, const pare_node *n) { return pare_exec_seq_len(x, &x->m->values[n->in[0]]); }
static pare_status pool_fwd(pare_exec *x, const pare_node *n)
{
    pare_pool_forward(F(x, n->out), F(x, n->in[0]), LENGTHS(x, n), n->a.pool, x->B, IN_LEN(x, n), COLS(x, n->out));
    return PARE_OK;
}
static void pool_bwd(pare_exec *x, const pare_node *n)
{
    pare_pool_backward(G(x, n->in[0]), G(x, n->out), LENGTHS(x, n), n->a.pool, x->B, IN_LEN(x, n), COLS(x, n->out));
}
static int64_t pool_flops(const pare_exec *x, const pare_node *n) { return x->B * IN_LEN(x, n) * COLS(x, n->out); }

/* ---- softmax cross-entropy: losses (rows, 1) ---- */
static pare_status xent_fwd(pare_exec *x, const pare_node *n)
{
    int64_t M = ROWS(x, n->in[0]), V = COLS(x, n->in[0]);
    x->terms[n - x->m->nodes] = pare_crossentropy_forward(F(x, n->out), F(x, n->cache[0]), F(x, n->in[0]), I(x, n->in[1]), M, V);
    return PARE_OK;
}
static void xent_bwd(pare_exec *x, const pare_node *n)
{
    int64_t M = ROWS(x, n->in[0]), V = COLS(x, n->in[0]), count = 0;
    const int32_t *t = I(x, n->in[1]);
    for (int64_t i = 0; i < M; i++) count += t[i] >= 0;
    /* per-row losses are not seeded: the weight (and a pipeline micro-batch's share, exec.h loss_scale) apply here */
    if (count)
        pare_crossentropy_backward(G(x, n->in[0]), F(x, n->cache[0]), t, 1.0f / (float)count * n->a.weight * x->loss_scale, M, V);
}
static int64_t xent_flops(const pare_exec *x, const pare_node *n) { return 4 * ROWS(x, n->in[0]) * COLS(x, n->in[0]); }
static int xent_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    cs[0] = (pare_cache_spec){"probs", m->values[n->in[0]].rows, m->values[n->in[0]].cols, PARE_F32};
    return 1;
}

/* ---- losses between two f32 values (kernels/loss.h): out (1, 1) = the term; cache rows (rows, 1) ----
 * Token rows (B·T) are masked by the lengths in in[2]; other rows (sequences, attention caches) are all
 * valid, passed to the kernels as B = rows, T = 1. The executor seeds d(out) with the node's weight. */
typedef struct loss_dims { int64_t B, T, N; const int32_t *lengths; } loss_dims;

static loss_dims LOSS(const pare_exec *x, const pare_node *n)
{
    const pare_value *v = &x->m->values[n->in[0]];
    if (v->rows == PARE_ROWS_TOKENS) return (loss_dims){x->B, pare_exec_seq_len(x, v), v->cols, n->nin > 2 ? I(x, n->in[2]) : NULL};
    return (loss_dims){ROWS(x, n->in[0]), 1, v->cols, NULL};
}
static float *TERM(const pare_exec *x, const pare_node *n)
{
    return &x->terms[n - x->m->nodes];
}
static float DLOSS(const pare_exec *x, const pare_node *n) { return G(x, n->out)[0]; }

static pare_status mse_fwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    *TERM(x, n) = F(x, n->out)[0] = pare_mse_forward(F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[1]), d.lengths, d.B, d.T, d.N);
    return PARE_OK;
}
static void mse_bwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    pare_mse_backward(G(x, n->in[0]), G(x, n->in[1]), F(x, n->in[0]), F(x, n->in[1]), d.lengths, DLOSS(x, n), d.B, d.T, d.N);
}
static pare_status kldiv_fwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    *TERM(x, n) = F(x, n->out)[0] = pare_kldiv_forward(F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[1]), n->a.temperature,
                                                       d.lengths, d.B, d.T, d.N);
    return PARE_OK;
}
static void kldiv_bwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    pare_kldiv_backward(G(x, n->in[0]), G(x, n->in[1]), F(x, n->in[0]), F(x, n->in[1]), n->a.temperature, d.lengths,
                        DLOSS(x, n), d.B, d.T, d.N);
}
static pare_status kldiv_rev_fwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    *TERM(x, n) = F(x, n->out)[0] = pare_kldiv_reverse_forward(F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[1]),
                                                               n->a.temperature, d.lengths, d.B, d.T, d.N);
    return PARE_OK;
}
static void kldiv_rev_bwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    pare_kldiv_reverse_backward(G(x, n->in[0]), G(x, n->in[1]), F(x, n->in[0]), F(x, n->in[1]), n->a.temperature, d.lengths,
                                DLOSS(x, n), d.B, d.T, d.N);
}
static pare_status cosine_fwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    *TERM(x, n) = F(x, n->out)[0] = pare_cosine_forward(F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[1]), d.lengths, d.B, d.T, d.N);
    return PARE_OK;
}
static void cosine_bwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    pare_cosine_backward(G(x, n->in[0]), G(x, n->in[1]), F(x, n->in[0]), F(x, n->in[1]), d.lengths, DLOSS(x, n), d.B, d.T, d.N);
}
static pare_status soft_xent_fwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    *TERM(x, n) = F(x, n->out)[0] = pare_soft_xent_forward(F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[1]), d.lengths, d.B,
                                                           d.T, d.N);
    return PARE_OK;
}
static void soft_xent_bwd(pare_exec *x, const pare_node *n)
{
    loss_dims d = LOSS(x, n);
    pare_soft_xent_backward(G(x, n->in[0]), G(x, n->in[1]), F(x, n->in[0]), F(x, n->in[1]), d.lengths, DLOSS(x, n), d.B, d.T,
                            d.N);
}
static int64_t mse_flops(const pare_exec *x, const pare_node *n) { return 3 * ROWS(x, n->in[0]) * COLS(x, n->in[0]); }
static int64_t cosine_flops(const pare_exec *x, const pare_node *n) { return 6 * ROWS(x, n->in[0]) * COLS(x, n->in[0]); }
static int64_t kldiv_flops(const pare_exec *x, const pare_node *n) { return 10 * ROWS(x, n->in[0]) * COLS(x, n->in[0]); }
static int64_t soft_xent_flops(const pare_exec *x, const pare_node *n) { return 5 * ROWS(x, n->in[0]) * COLS(x, n->in[0]); }
static int loss_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    cs[0] = (pare_cache_spec){"rows", m->values[n->in[0]].rows, 1, PARE_F32};
    return 1;
}

/* ---- cast: out = x converted to a.dtype; dx += dout rounded to x's dtype (kernels/cast.h) ---- */
static pare_status cast_fwd(pare_exec *x, const pare_node *n)
{
    const pare_value *in = &x->m->values[n->in[0]], *out = &x->m->values[n->out];
    pare_cast_forward(x->buf[n->out], out->dtype, x->buf[n->in[0]], in->dtype, numel_out(x, n));
    return PARE_OK;
}
static void cast_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = G(x, n->in[0]); /* f32 whatever x's dtype (exec.c) */
    if (dx) pare_cast_backward(dx, G(x, n->out), x->m->values[n->in[0]].dtype, numel_out(x, n));
}

static int64_t no_flops(const pare_exec *x, const pare_node *n)
{
    (void)x, (void)n;
    return 0;
}

/* ---- token pruning (kernels/token_select.h): x (B·Tp, C) -> (B·T', C) by the attention received ----
 * in[1] the lengths at Tp (the input, or the previous level's TOKEN_LENGTHS), in[2] the previous
 * attention's probabilities "#att" (B, H, Tp, Tp); the cache idx holds each kept row's source position. */
static pare_status tsel_fwd(pare_exec *x, const pare_node *n)
{
    const pare_value *in = &x->m->values[n->in[0]];
    pare_token_select_forward(F(x, n->out), F(x, n->cache[0]), F(x, n->in[0]), F(x, n->in[2]), LENGTHS(x, n), x->B,
                              pare_exec_seq_len(x, in), SEQ_LEN(x, n), COLS(x, n->in[2]), COLS(x, n->out), x->workspace);
    return PARE_OK;
}
static void tsel_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = G(x, n->in[0]);
    if (dx)
        pare_token_select_backward(dx, G(x, n->out), F(x, n->cache[0]), x->B, pare_exec_seq_len(x, &x->m->values[n->in[0]]),
                                   SEQ_LEN(x, n), COLS(x, n->out));
}
static int64_t tsel_flops(const pare_exec *x, const pare_node *n)
{
    int64_t Tp = pare_exec_seq_len(x, &x->m->values[n->in[0]]);
    return x->B * COLS(x, n->in[2]) * Tp * Tp; /* the significance sums; the gather moves, it does not compute */
}
static int tsel_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    (void)m, (void)n;
    cs[0] = (pare_cache_spec){"idx", PARE_ROWS_TOKENS, 1, PARE_F32};
    return 1;
}
static size_t tsel_ws(const pare_exec *x, const pare_node *n)
{
    return pare_token_select_work_bytes(pare_exec_seq_len(x, &x->m->values[n->in[0]]));
}
static pare_status tlen_fwd(pare_exec *x, const pare_node *n)
{
    const int64_t Tk = SEQ_LEN(x, n);
    const int32_t *l = I(x, n->in[0]);
    int32_t *o = (int32_t *)x->buf[n->out];
    for (int64_t b = 0; b < x->B; b++) o[b] = l[b] < Tk ? l[b] : (int32_t)Tk;
    return PARE_OK;
}

static const pare_op_desc ops[] = {
    [PARE_OP_EMBEDDING] = {"embedding", embedding_fwd, embedding_bwd, no_flops, NULL, NULL},
    [PARE_OP_POSADD] = {"posadd", posadd_fwd, posadd_bwd, posadd_flops, NULL, NULL},
    [PARE_OP_LINEAR] = {"linear", linear_fwd, linear_bwd, linear_flops, linear_caches, linear_ws},
    [PARE_OP_LAYERNORM] = {"layernorm", layernorm_fwd, layernorm_bwd, layernorm_flops, layernorm_caches, layernorm_ws},
    [PARE_OP_GELU] = {"gelu", gelu_fwd, gelu_bwd, gelu_flops, NULL, NULL},
    [PARE_OP_RELU] = {"relu", relu_fwd, relu_bwd, elementwise_flops, NULL, NULL},
    [PARE_OP_ADD] = {"add", add_fwd, add_bwd, elementwise_flops, NULL, NULL},
    [PARE_OP_DROPOUT] = {"dropout", dropout_fwd, dropout_bwd, no_flops, dropout_caches, NULL},
    [PARE_OP_ATTENTION] = {"attention", attention_fwd, attention_bwd, attention_flops, attention_caches, attention_ws},
    [PARE_OP_POOL] = {"pool", pool_fwd, pool_bwd, pool_flops, NULL, NULL},
    [PARE_OP_XENT] = {"cross_entropy", xent_fwd, xent_bwd, xent_flops, xent_caches, NULL},
    [PARE_OP_MSE] = {"mse", mse_fwd, mse_bwd, mse_flops, loss_caches, NULL},
    [PARE_OP_KLDIV] = {"kl_div", kldiv_fwd, kldiv_bwd, kldiv_flops, loss_caches, NULL},
    [PARE_OP_COSINE] = {"cosine", cosine_fwd, cosine_bwd, cosine_flops, loss_caches, NULL},
    [PARE_OP_SOFT_XENT] = {"soft_cross_entropy", soft_xent_fwd, soft_xent_bwd, soft_xent_flops, loss_caches, NULL},
    [PARE_OP_CAST] = {"cast", cast_fwd, cast_bwd, elementwise_flops, NULL, NULL},
    [PARE_OP_TANH] = {"tanh", tanh_fwd, tanh_bwd, gelu_flops, NULL, NULL},
    [PARE_OP_CROSS_ATTENTION] = {"cross_attention", xattn_fwd, xattn_bwd, xattn_flops, xattn_caches, NULL},
    [PARE_OP_TT_LINEAR] = {"tt_linear", tt_linear_fwd, tt_linear_bwd, tt_linear_flops, tt_linear_caches, tt_linear_ws},
    [PARE_OP_TOKEN_SELECT] = {"token_select", tsel_fwd, tsel_bwd, tsel_flops, tsel_caches, tsel_ws},
    [PARE_OP_TOKEN_LENGTHS] = {"token_lengths", tlen_fwd, NULL, no_flops, NULL, NULL},
    [PARE_OP_KLDIV_REV] = {"kl_div_reverse", kldiv_rev_fwd, kldiv_rev_bwd, kldiv_flops, loss_caches, NULL},
    /* attention as explicit ops and the fused ops of the fuse pass (ops_fused.c, docs/fusion.md) */
#define FUSED(id, name, f) [id] = {name, pare_op_##f##_fwd, pare_op_##f##_bwd, pare_op_##f##_flops, NULL, NULL}
    FUSED(PARE_OP_HEAD_SPLIT, "head_split", head_split),
    FUSED(PARE_OP_HEAD_MERGE, "head_merge", head_merge),
    FUSED(PARE_OP_BMM_QK, "bmm_qk", bmm_qk),
    FUSED(PARE_OP_BMM_PV, "bmm_pv", bmm_pv),
    FUSED(PARE_OP_DIV, "div", div),
    FUSED(PARE_OP_MASK_ADD, "mask_add", mask_add),
    [PARE_OP_SOFTMAX] = {"softmax", pare_op_softmax_fwd, pare_op_softmax_bwd, pare_op_softmax_flops, NULL, pare_op_softmax_ws},
    [PARE_OP_MASKED_SOFTMAX] = {"masked_softmax", pare_op_masked_softmax_fwd, pare_op_masked_softmax_bwd,
                                pare_op_masked_softmax_flops, NULL, pare_op_masked_softmax_ws},
#undef FUSED
    [PARE_OP_ADD_LAYERNORM] = {"add_layernorm", pare_op_add_layernorm_fwd, pare_op_add_layernorm_bwd,
                               pare_op_add_layernorm_flops, pare_op_add_layernorm_caches, pare_op_add_layernorm_ws},
    /* tensor parallelism's f and g (dist/tp_ops.c) */
    [PARE_OP_TP_COPY] = {"tp_copy", pare_op_tp_copy_fwd, pare_op_tp_copy_bwd, pare_op_tp_copy_flops, NULL, NULL},
    [PARE_OP_TP_REDUCE] = {"tp_reduce", pare_op_tp_reduce_fwd, pare_op_tp_reduce_bwd, pare_op_tp_reduce_flops, NULL, NULL},
};
_Static_assert(sizeof ops / sizeof ops[0] == PARE_OP_COUNT, "op registry out of date with pare_op_id");

/* What each op accepts per input and produces (ops.h, docs/dtypes.md). A row lists the dtypes the op
 * has kernels for: an op gains bf16 here in the same commit as its bf16 kernel, never before. Kept as a
 * table of its own, as is_loss below, so the checker reads data rather than calling into the ops. */
#define DT_F32 PARE_DTYPE_BIT(PARE_F32)
#define DT_I32 PARE_DTYPE_BIT(PARE_I32)
#define DT_U8 PARE_DTYPE_BIT(PARE_U8)
#define DT_BF16 PARE_DTYPE_BIT(PARE_BF16)
#define DT_FLOAT PARE_DTYPES_FLOAT
static const pare_op_dtypes op_dtypes[] = {
    /*                       inputs                  produces      attr               caches */
    [PARE_OP_EMBEDDING] = {{DT_I32},                 PARE_OUT_ATTR, DT_FLOAT,         0},      /* tokens; out a.dtype (f32
                                                      by default; amp), the table f32 or 16-bit (fmt_half.c) */
    [PARE_OP_POSADD] = {{DT_F32 | DT_BF16},          PARE_OUT_IN0, 0,                 0},      /* bf16: nn_half.h */
    [PARE_OP_LINEAR] = {{DT_FLOAT},                  PARE_OUT_ATTR, DT_FLOAT,         DT_F32}, /* #pre; x: what the weight's
                                                      format reads (format.h in_dtypes; f32 for every format but the
                                                      16-bit one), checked by pare_model_check_formats; out: a.dtype,
                                                      f32 by default, 16-bit rounded from the f32 result (amp) */
    [PARE_OP_LAYERNORM] = {{DT_FLOAT},               PARE_OUT_ATTR, DT_FLOAT,         DT_F32}, /* mean, rstd; 16-bit x
                                                      widened, out a.dtype (f32 by default), statistics in f32 */
    [PARE_OP_GELU] = {{DT_F32 | DT_BF16},            PARE_OUT_IN0, 0,                 0},      /* bf16: nn_half.h */
    [PARE_OP_RELU] = {{DT_F32 | DT_BF16},            PARE_OUT_IN0, 0,                 0},
    [PARE_OP_ADD] = {{DT_F32 | DT_BF16, DT_F32 | DT_BF16}, PARE_OUT_IN0, 0,           0},      /* a, b of one dtype */
    [PARE_OP_DROPOUT] = {{DT_F32 | DT_BF16},         PARE_OUT_IN0, 0,                 DT_U8},  /* mask; bf16: inference */
    [PARE_OP_ATTENTION] = {{DT_F32 | DT_BF16, DT_I32}, PARE_F32,   0,                 DT_F32, attention_check, attention_takes}, /* qkv,
                                                      lengths; att. bf16 qkv: variants with a bf16 forward only */
    [PARE_OP_POOL] = {{DT_F32, DT_I32},              PARE_F32,     0,                 0},      /* x, lengths */
    [PARE_OP_XENT] = {{DT_F32, DT_I32},              PARE_F32,     0,                 DT_F32}, /* logits, labels; probs */
    [PARE_OP_MSE] = {{DT_F32, DT_F32, DT_I32},       PARE_F32,     0,                 DT_F32}, /* a, b [, lengths] */
    [PARE_OP_KLDIV] = {{DT_F32, DT_F32, DT_I32},     PARE_F32,     0,                 DT_F32},
    [PARE_OP_COSINE] = {{DT_F32, DT_F32, DT_I32},    PARE_F32,     0,                 DT_F32},
    [PARE_OP_SOFT_XENT] = {{DT_F32, DT_F32, DT_I32}, PARE_F32,     0,                 DT_F32},
    [PARE_OP_CAST] = {{PARE_DTYPES_FLOAT},           PARE_OUT_ATTR, PARE_DTYPES_FLOAT, 0},
    [PARE_OP_TANH] = {{DT_F32 | DT_BF16},            PARE_OUT_IN0, 0,                 0},
    [PARE_OP_CROSS_ATTENTION] = {{DT_F32, DT_F32, DT_I32}, PARE_F32,  0,                 DT_F32}, /* q, kv, src_lengths; att */
    [PARE_OP_TT_LINEAR] = {{DT_F32},                 PARE_F32,     0,                 DT_F32}, /* x; the intermediates */
    [PARE_OP_TOKEN_SELECT] = {{DT_F32, DT_I32, DT_F32}, PARE_F32,    0,                 DT_F32}, /* x, lengths, att; idx */
    [PARE_OP_TOKEN_LENGTHS] = {{DT_I32},             PARE_I32,     0,                 0},      /* lengths */
    [PARE_OP_KLDIV_REV] = {{DT_F32, DT_F32, DT_I32}, PARE_F32,     0,                 DT_F32},
    [PARE_OP_HEAD_SPLIT] = {{DT_F32},                PARE_F32,     0,                 0},
    [PARE_OP_HEAD_MERGE] = {{DT_F32},                PARE_F32,     0,                 0},
    [PARE_OP_BMM_QK] = {{DT_F32, DT_F32},            PARE_F32,     0,                 0},      /* q, k */
    [PARE_OP_BMM_PV] = {{DT_F32, DT_F32},            PARE_F32,     0,                 0},      /* p, v */
    [PARE_OP_DIV] = {{DT_F32},                       PARE_F32,     0,                 0},
    [PARE_OP_MASK_ADD] = {{DT_F32, DT_I32},          PARE_F32,     0,                 0},      /* scores, lengths */
    [PARE_OP_SOFTMAX] = {{DT_F32 | DT_BF16},         PARE_OUT_ATTR, DT_F32 | DT_BF16, 0},      /* bf16 in / out:
                                                      nn_half.h, max and sum in f32 */
    [PARE_OP_MASKED_SOFTMAX] = {{DT_F32 | DT_BF16, DT_I32}, PARE_OUT_ATTR, DT_F32 | DT_BF16, 0}, /* scores, lengths */
    [PARE_OP_ADD_LAYERNORM] = {{DT_FLOAT, DT_FLOAT}, PARE_OUT_ATTR, DT_FLOAT,         DT_F32}, /* a, b; mean, rstd; as
                                                      layernorm: 16-bit inputs widened, out a.dtype (f32 by default) */
    [PARE_OP_TP_COPY] = {{DT_F32},                   PARE_F32,     0,                 0},      /* f32 all-reduces */
    [PARE_OP_TP_REDUCE] = {{DT_F32},                 PARE_F32,     0,                 0},
};
_Static_assert(sizeof op_dtypes / sizeof op_dtypes[0] == PARE_OP_COUNT, "op dtypes out of date with pare_op_id");

/* Terms of the total loss (exec.c sums weight · term over them). */
static const unsigned char is_loss[PARE_OP_COUNT] = {
    [PARE_OP_XENT] = 1, [PARE_OP_MSE] = 1, [PARE_OP_KLDIV] = 1, [PARE_OP_COSINE] = 1, [PARE_OP_SOFT_XENT] = 1,
    [PARE_OP_KLDIV_REV] = 1,
};
/* Losses that soften their two logits by a.temperature (checked > 0 wherever a node is made or loaded). */
static const unsigned char has_temperature[PARE_OP_COUNT] = {[PARE_OP_KLDIV] = 1, [PARE_OP_KLDIV_REV] = 1};

int pare_op_cache_train_only(const pare_node *n, int k) { return n->op == PARE_OP_LINEAR && n->a.epilogue && k == 0; }

int pare_op_is_loss(pare_op_id id) { return (unsigned)id < PARE_OP_COUNT && is_loss[id]; }
int pare_op_has_temperature(pare_op_id id) { return (unsigned)id < PARE_OP_COUNT && has_temperature[id]; }

int pare_op_find_loss(const char *name)
{
    for (int i = 0; i < PARE_OP_COUNT; i++)
        if (is_loss[i] && !strcmp(ops[i].name, name)) return i;
    return -1;
}

const pare_op_desc *pare_op_get(pare_op_id id)
{
    assert((unsigned)id < PARE_OP_COUNT);
    return &ops[id];
}

const char *pare_op_name(pare_op_id id) { return pare_op_get(id)->name; }

const pare_op_dtypes *pare_op_dtypes_of(pare_op_id id)
{
    assert((unsigned)id < PARE_OP_COUNT);
    return &op_dtypes[id];
}

unsigned pare_node_reads(const pare_node *n, int k)
{
    const pare_op_dtypes *d = pare_op_dtypes_of(n->op);
    unsigned mask = k >= 0 && k < PARE_NODE_MAX_IN ? d->in[k] : 0;
    for (int t = 0; d->takes && t < PARE_DTYPE_COUNT; t++)
        if ((mask & PARE_DTYPE_BIT(t)) && !d->takes(n, k, (pare_dtype)t)) mask &= ~PARE_DTYPE_BIT(t);
    return mask;
}

pare_dtype pare_op_out_dtype(const pare_model *m, const pare_node *n)
{
    const pare_op_dtypes *d = pare_op_dtypes_of(n->op);
    if (d->out == PARE_OUT_IN0) return n->nin > 0 && n->in[0] >= 0 && n->in[0] < m->nvalues ? m->values[n->in[0]].dtype : PARE_F32;
    return d->out == PARE_OUT_ATTR ? n->a.dtype : (pare_dtype)d->out;
}

int pare_op_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    const pare_op_desc *d = pare_op_get(n->op);
    return d->caches ? d->caches(m, n, cs) : 0;
}
