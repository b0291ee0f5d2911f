/* ops_fused.c — the op registry's rows for attention as explicit ops (head_split, bmm_qk, div, mask_add,
 * softmax, bmm_pv, head_merge: the unfused graph, model option fused=false) and for the fused ops the fuse
 * pass makes of them (masked_softmax, the strided products, add_layernorm). Wiring only: the numerics are
 * kernels/fuse_ops.h. docs/fusion.md draws the graphs.
 *
 * Shapes. Head-major values (B,H,T,D) are token rows of C = H·D columns; scores and probabilities (B,H,T,T)
 * are attention rows (B·T·T) of H columns, as the ATTENTION node's "#att". T is the sequence length of the
 * node's token rows (after token pruning, its level's). A node's in_col[k] picks the columns its input k is
 * read from (the fused QKV projection's q, k and v blocks); pare_model_check allows it only where honoured.
 *
 * softmax and masked_softmax read f32 or bf16 scores and write f32 or bf16 (a.dtype) probabilities (nn_half.h, at
 * inference); the batched products and head split / merge are f32 only.
 *
 * Deliberately not here: other attention variants (the ATTENTION op runs them), int8 batched products, bf16 batched
 * products and head split / merge (docs/mixed-precision.md says why).
 */
#include "ops_fused.h"

#include "exec.h"
#include "kernels/fuse_ops.h"
#include "kernels/nn_half.h"

static float *F(const pare_exec *x, int id) { return (float *)x->buf[id]; }
static const int32_t *I(const pare_exec *x, int id) { return (const int32_t *)x->buf[id]; }
static float *G(const pare_exec *x, int id) { return x->grad ? x->grad[id] : NULL; }
static float *GOFF(const pare_exec *x, const pare_node *n, int k)
{
    float *g = G(x, n->in[k]);
    return g ? g + n->in_col[k] : NULL;
}
static const pare_value *VAL(const pare_exec *x, int id) { return &x->m->values[id]; }
static int64_t COLS(const pare_exec *x, int id) { return VAL(x, id)->cols; }
static int64_t NUMEL(const pare_exec *x, int id) { return pare_exec_rows(x, VAL(x, id)) * COLS(x, id); }
/* T of a node: the sequence length of its output's token (or attention) rows */
static int64_t SEQ(const pare_exec *x, const pare_node *n) { return pare_exec_seq_len(x, VAL(x, n->out)); }
static float *PD(const pare_exec *x, const pare_node *n, int i) { return x->m->params[n->param[i]].blob->data; }
static float *PG(const pare_exec *x, const pare_node *n, int i)
{
    pare_param *p = &x->m->params[n->param[i]];
    return p->trainable ? p->grad : NULL;
}

/* Input k of n (or its gradient, grad = 1) as a (B,H,T,D) operand: head-major, or with strided a column block
 * of token rows. */
static pare_bhtd view_in(const pare_exec *x, const pare_node *n, int k, int strided, int grad, int64_t D)
{
    int64_t T = SEQ(x, n), H = n->a.heads;
    float *p = grad ? G(x, n->in[k]) : F(x, n->in[k]);
    if (!p) return (pare_bhtd){0};
    return strided ? pare_bhtd_tokens(p + n->in_col[k], T, COLS(x, n->in[k]), D) : pare_bhtd_heads(p, H, T, D);
}

/* ---- head_split: x (B·T, ≥C) [columns in_col..+C] → (B,H,T,D) ---- */
pare_status pare_op_head_split_fwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out), H = n->a.heads;
    pare_head_split_forward(F(x, n->out), F(x, n->in[0]) + n->in_col[0], COLS(x, n->in[0]), x->B, SEQ(x, n), H, C / H);
    return PARE_OK;
}
void pare_op_head_split_bwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out), H = n->a.heads;
    float *dx = GOFF(x, n, 0);
    if (dx) pare_head_split_backward(dx, G(x, n->out), COLS(x, n->in[0]), x->B, SEQ(x, n), H, C / H);
}
int64_t pare_op_head_split_flops(const pare_exec *x, const pare_node *n)
{
    (void)x, (void)n;
    return 0; /* it moves, it does not compute */
}

/* ---- head_merge: (B,H,T,D) → (B·T, C) ---- */
pare_status pare_op_head_merge_fwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out), H = n->a.heads;
    pare_head_merge_forward(F(x, n->out), F(x, n->in[0]), x->B, SEQ(x, n), H, C / H);
    return PARE_OK;
}
void pare_op_head_merge_bwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out), H = n->a.heads;
    float *dx = G(x, n->in[0]);
    if (dx) pare_head_merge_backward(dx, G(x, n->out), x->B, SEQ(x, n), H, C / H);
}
int64_t pare_op_head_merge_flops(const pare_exec *x, const pare_node *n) { return pare_op_head_split_flops(x, n); }

/* ---- bmm_qk: S (B,H,T,T) = Q·Kᵀ ---- */
pare_status pare_op_bmm_qk_fwd(pare_exec *x, const pare_node *n)
{
    int64_t D = n->a.head_dim;
    pare_bmm_qk_forward(F(x, n->out), view_in(x, n, 0, n->a.strided, 0, D), view_in(x, n, 1, n->a.strided, 0, D), x->B,
                        n->a.heads, SEQ(x, n), D);
    return PARE_OK;
}
void pare_op_bmm_qk_bwd(pare_exec *x, const pare_node *n)
{
    int64_t D = n->a.head_dim;
    pare_bmm_qk_backward(view_in(x, n, 0, n->a.strided, 1, D), view_in(x, n, 1, n->a.strided, 1, D), G(x, n->out),
                         view_in(x, n, 0, n->a.strided, 0, D), view_in(x, n, 1, n->a.strided, 0, D), x->B, n->a.heads,
                         SEQ(x, n), D);
}
int64_t pare_op_bmm_qk_flops(const pare_exec *x, const pare_node *n)
{
    int64_t T = SEQ(x, n);
    return 2 * x->B * n->a.heads * T * T * n->a.head_dim;
}

/* ---- bmm_pv: O (B,H,T,D) = P·V; strided: v a column block of token rows, O written with the heads merged ---- */
static pare_bhtd view_out(const pare_exec *x, const pare_node *n, int grad)
{
    int64_t C = COLS(x, n->out), H = n->a.heads, T = SEQ(x, n);
    float *p = grad ? G(x, n->out) : F(x, n->out);
    return n->a.strided ? pare_bhtd_tokens(p, T, C, C / H) : pare_bhtd_heads(p, H, T, C / H);
}
pare_status pare_op_bmm_pv_fwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out), H = n->a.heads;
    pare_bmm_pv_forward(view_out(x, n, 0), F(x, n->in[0]), view_in(x, n, 1, n->a.strided, 0, C / H), x->B, H, SEQ(x, n),
                        C / H);
    return PARE_OK;
}
void pare_op_bmm_pv_bwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out), H = n->a.heads;
    pare_bmm_pv_backward(G(x, n->in[0]), view_in(x, n, 1, n->a.strided, 1, C / H), view_out(x, n, 1), F(x, n->in[0]),
                         view_in(x, n, 1, n->a.strided, 0, C / H), x->B, H, SEQ(x, n), C / H);
}
int64_t pare_op_bmm_pv_flops(const pare_exec *x, const pare_node *n)
{
    int64_t T = SEQ(x, n);
    return 2 * x->B * T * T * COLS(x, n->out);
}

/* ---- div: out = x / a.scale ---- */
pare_status pare_op_div_fwd(pare_exec *x, const pare_node *n)
{
    pare_div_forward(F(x, n->out), F(x, n->in[0]), n->a.scale, NUMEL(x, n->out));
    return PARE_OK;
}
void pare_op_div_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = G(x, n->in[0]);
    if (dx) pare_div_backward(dx, G(x, n->out), n->a.scale, NUMEL(x, n->out));
}
int64_t pare_op_div_flops(const pare_exec *x, const pare_node *n) { return NUMEL(x, n->out); }

/* ---- mask_add: scores + the additive key mask of the lengths (in[1]) ---- */
pare_status pare_op_mask_add_fwd(pare_exec *x, const pare_node *n)
{
    pare_mask_add_forward(F(x, n->out), F(x, n->in[0]), I(x, n->in[1]), n->a.causal, x->B, COLS(x, n->out), SEQ(x, n));
    return PARE_OK;
}
void pare_op_mask_add_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = G(x, n->in[0]);
    const float *d = G(x, n->out);
    int64_t len = NUMEL(x, n->out);
    if (!dx) return;
#pragma omp parallel for simd schedule(static) if (len > 65536)
    for (int64_t i = 0; i < len; i++) dx[i] += d[i]; /* a constant added: the gradient passes unchanged */
}
int64_t pare_op_mask_add_flops(const pare_exec *x, const pare_node *n) { return NUMEL(x, n->out); }

/* ---- softmax along the last axis: T for attention rows, else the columns ---- */
static void softmax_dims(const pare_exec *x, const pare_node *n, int64_t *M, int64_t *N)
{
    const pare_value *v = VAL(x, n->out);
    *N = v->rows == PARE_ROWS_CACHE_ATT ? SEQ(x, n) : v->cols;
    *M = NUMEL(x, n->out) / *N;
}
/* f32 or bf16 scores in, f32 or bf16 (a.dtype) probabilities out; with a 16-bit side the rows go through f32 (max and
 * sum in f32, nn_half.h: round(f32 softmax(widen(x))) bit for bit), one row per thread slot of the workspace. */
static pare_status half_at_inference(const pare_exec *x, const pare_node *n)
{
    if (x->mode != PARE_EXEC_TRAIN) return PARE_OK;
    return pare_fail(PARE_EINVAL, "node %s (op %s): 16-bit values run at inference only (training on them is not here: "
                     "train the f32 model, then apply amp)", n->name, pare_op_name(n->op));
}
static int any_half(const pare_exec *x, const pare_node *n) { return VAL(x, n->in[0])->dtype != PARE_F32 || VAL(x, n->out)->dtype != PARE_F32; }
static int slots(const pare_exec *x, int64_t N)
{
    size_t k = x->workspace_bytes / (sizeof(float) * (size_t)(N > 0 ? N : 1));
    int s = pare_softmax_half_slots();
    return k < 1 ? 1 : k < (size_t)s ? (int)k : s;
}
pare_status pare_op_softmax_fwd(pare_exec *x, const pare_node *n)
{
    int64_t M, N;
    softmax_dims(x, n, &M, &N);
    if (any_half(x, n)) {
        PARE_TRY(half_at_inference(x, n));
        pare_softmax_half(x->buf[n->out], VAL(x, n->out)->dtype, x->buf[n->in[0]], VAL(x, n->in[0])->dtype, M, N,
                          x->workspace, slots(x, N));
        return PARE_OK;
    }
    pare_softmax_forward(F(x, n->out), F(x, n->in[0]), M, N);
    return PARE_OK;
}
size_t pare_op_softmax_ws(const pare_exec *x, const pare_node *n)
{
    int64_t M, N;
    softmax_dims(x, n, &M, &N);
    return any_half(x, n) ? pare_softmax_half_work_bytes(N) : 0;
}
void pare_op_softmax_bwd(pare_exec *x, const pare_node *n)
{
    int64_t M, N;
    softmax_dims(x, n, &M, &N);
    float *dx = G(x, n->in[0]);
    if (dx) pare_softmax_backward(dx, F(x, n->out), G(x, n->out), M, N);
}
int64_t pare_op_softmax_flops(const pare_exec *x, const pare_node *n) { return 5 * NUMEL(x, n->out); }

/* ---- masked_softmax: softmax(scores / a.scale + mask), div + mask_add + softmax in one pass ---- */
pare_status pare_op_masked_softmax_fwd(pare_exec *x, const pare_node *n)
{
    if (any_half(x, n)) {
        PARE_TRY(half_at_inference(x, n));
        pare_masked_softmax_half(x->buf[n->out], VAL(x, n->out)->dtype, x->buf[n->in[0]], VAL(x, n->in[0])->dtype,
                                 n->a.scale, I(x, n->in[1]), n->a.causal, x->B, COLS(x, n->out), SEQ(x, n), x->workspace,
                                 slots(x, SEQ(x, n)));
        return PARE_OK;
    }
    pare_masked_softmax_forward(F(x, n->out), F(x, n->in[0]), n->a.scale, I(x, n->in[1]), n->a.causal, x->B,
                                COLS(x, n->out), SEQ(x, n));
    return PARE_OK;
}
size_t pare_op_masked_softmax_ws(const pare_exec *x, const pare_node *n)
{
    return any_half(x, n) ? pare_softmax_half_work_bytes(SEQ(x, n)) : 0;
}
void pare_op_masked_softmax_bwd(pare_exec *x, const pare_node *n)
{
    float *dx = G(x, n->in[0]);
    if (dx) pare_masked_softmax_backward(dx, F(x, n->out), G(x, n->out), n->a.scale, x->B, COLS(x, n->out), SEQ(x, n));
}
int64_t pare_op_masked_softmax_flops(const pare_exec *x, const pare_node *n) { return 7 * NUMEL(x, n->out); }

/* ---- add_layernorm: LN(a + b) ----
 * As layernorm (ops.c): a 16-bit a or b is widened into the workspace first, a 16-bit output (a.dtype, AMP's
 * fold of a cast into its producer) rounded from the f32 result after; the sum and the statistics are f32. */
pare_status pare_op_add_layernorm_fwd(pare_exec *x, const pare_node *n)
{
    const int64_t C = COLS(x, n->out), len = NUMEL(x, n->out);
    const pare_dtype ot = VAL(x, n->out)->dtype;
    float *in[2] = {F(x, n->in[0]), F(x, n->in[1])}, *out = F(x, n->out), *ws = x->workspace;
    for (int k = 0; k < 2; k++) {
        const pare_dtype t = VAL(x, n->in[k])->dtype;
        if (t == PARE_F32) continue;
        if (x->mode == PARE_EXEC_TRAIN) break;
        pare_half_widen(in[k] = ws, x->buf[n->in[k]], t, len), ws += len;
    }
    if (x->mode == PARE_EXEC_TRAIN &&
        (ot != PARE_F32 || VAL(x, n->in[0])->dtype != PARE_F32 || VAL(x, n->in[1])->dtype != PARE_F32))
        return pare_fail(PARE_EINVAL, "node %s (op add_layernorm): 16-bit values run at inference only (training on "
                         "them is not here: train the f32 model, then apply amp)", n->name);
    if (ot != PARE_F32) out = ws;
    pare_add_layernorm_forward(out, F(x, n->cache[0]), F(x, n->cache[1]), in[0], in[1], PD(x, n, 0), PD(x, n, 1), len / C,
                               C, n->a.eps > 0 ? n->a.eps : 1e-5f);
    if (ot != PARE_F32) pare_half_round(x->buf[n->out], ot, out, len);
    return PARE_OK;
}
size_t pare_op_add_layernorm_ws(const pare_exec *x, const pare_node *n)
{
    const size_t sz = sizeof(float) * (size_t)NUMEL(x, n->out);
    return sz * (size_t)((VAL(x, n->in[0])->dtype != PARE_F32) + (VAL(x, n->in[1])->dtype != PARE_F32) +
                         (VAL(x, n->out)->dtype != PARE_F32));
}
void pare_op_add_layernorm_bwd(pare_exec *x, const pare_node *n)
{
    int64_t C = COLS(x, n->out);
    pare_add_layernorm_backward(G(x, n->in[0]), G(x, n->in[1]), PG(x, n, 0), PG(x, n, 1), G(x, n->out), F(x, n->in[0]),
                                F(x, n->in[1]), PD(x, n, 0), F(x, n->cache[0]), F(x, n->cache[1]), NUMEL(x, n->out) / C, C);
}
int64_t pare_op_add_layernorm_flops(const pare_exec *x, const pare_node *n) { return 9 * NUMEL(x, n->out); }
int pare_op_add_layernorm_caches(const pare_model *m, const pare_node *n, pare_cache_spec *cs)
{
    pare_rows r = m->values[n->out].rows;
    cs[0] = (pare_cache_spec){"mean", r, 1, PARE_F32};
    cs[1] = (pare_cache_spec){"rstd", r, 1, PARE_F32};
    return 2;
}
