/* fuse_ops.h — the kernels of the unfused graph's ops (multi-head attention one op per line) and of the
 * fused ops the fuse pass swaps in (docs/fusion.md).
 *
 * The unfused graph (model option fused=false; docs/fusion.md) computes attention the way an exported
 * PyTorch/ONNX BERT does, one op per line:
 *
 *     q, k, v = x·Wqᵀ + bq, x·Wkᵀ + bk, x·Wvᵀ + bv        three Linears             (B·T, C) each
 *     Q = split(q)  ...                                   view+transpose+contiguous (B,H,T,D)
 *     S = Q·Kᵀ                                            batched product           (B,H,T,T)
 *     S = S / √D                                          div
 *     S = S + mask                                        additive key mask: −FLT_MAX where j >= L_b
 *                                                         (or j > i when causal), 0 elsewhere
 *     P = softmax(S)                                      along the keys
 *     O = P·V                                             batched product           (B,H,T,D)
 *     out = merge(O)                                      transpose+view            (B·T, C)
 *
 * and the fuse pass folds them back: div+mask+softmax into one row kernel (pare_masked_softmax_*), the
 * split/merge copies into strided reads and writes of the batched products (a pare_bhtd view), and all
 * of it into the ATTENTION op (src/attn/full.c). The mask is the same as the ATTENTION op's (nn.h:
 * pare_attention_forward_ref): masked probabilities are exactly 0, padded queries attend to the valid keys.
 *
 * Layouts. A (B,H,T,D) operand is a pare_bhtd: element (b,h,t,d) at p[b·sb + h·sh + t·st + d]. Head-major
 * (contiguous, what split makes): pare_bhtd_heads. Token-major (a column block of a (B·T, ld) value,
 * heads side by side, what the strided forms read): pare_bhtd_tokens. Scores and probabilities are
 * contiguous (B,H,T,T).
 *
 * Conventions of nn.h: outputs first, backward adds into gradients (NULL: not wanted), shapes beside
 * every argument. The batched products run pare_sgemm per (b,h) pair, OpenMP over the pairs (as
 * src/attn/full.c); their references (_ref) are plain loops in double.
 *
 * Deliberately not here: attention variants (src/attn/), dropout on the probabilities, bf16.
 *
 * Entry points: pare_head_split_*, pare_head_merge_*, pare_bmm_qk_*, pare_bmm_pv_*, pare_mask_add_*,
 * pare_div_*, pare_masked_softmax_*, pare_add_layernorm_*, pare_epilogue_*.
 */
#ifndef PARE_FUSE_OPS_H
#define PARE_FUSE_OPS_H

#include <stdint.h>

/* A (B,H,T,D) operand in memory: element (b,h,t,d) at p[b·sb + h·sh + t·st + d]. */
typedef struct pare_bhtd {
    float *p;
    int64_t sb, sh, st;
} pare_bhtd;

/* Contiguous (B,H,T,D). */
pare_bhtd pare_bhtd_heads(float *p, int64_t H, int64_t T, int64_t D);
/* The heads of columns [0, H·D) of a (B·T, ld) token-row value starting at p (p already at the block's
 * first column): head h is columns h·D..h·D+D. */
pare_bhtd pare_bhtd_tokens(float *p, int64_t T, int64_t ld, int64_t D);

/* out (B,H,T,D) = the columns x[:, 0..H·D) of x (B·T, ldx) split into heads (view + transpose + contiguous). */
void pare_head_split_forward(float *out, const float *x, int64_t ldx, int64_t B, int64_t T, int64_t H, int64_t D);
/* dx (B·T, ldx) [columns 0..H·D) += the heads of dout (B,H,T,D) merged back. */
void pare_head_split_backward(float *dx, const float *dout, int64_t ldx, int64_t B, int64_t T, int64_t H, int64_t D);
/* out (B·T, H·D) = x (B,H,T,D) with the heads side by side (transpose + view). */
void pare_head_merge_forward(float *out, const float *x, int64_t B, int64_t T, int64_t H, int64_t D);
/* dx (B,H,T,D) += dout (B·T, H·D) split into heads. */
void pare_head_merge_backward(float *dx, const float *dout, int64_t B, int64_t T, int64_t H, int64_t D);

/* S (B,H,T,T) = Q·Kᵀ per (b,h). */
void pare_bmm_qk_forward(float *S, pare_bhtd q, pare_bhtd k, int64_t B, int64_t H, int64_t T, int64_t D);
void pare_bmm_qk_ref(float *S, pare_bhtd q, pare_bhtd k, int64_t B, int64_t H, int64_t T, int64_t D);
/* dQ += dS·K, dK += dSᵀ·Q (dq.p or dk.p NULL: skipped). */
void pare_bmm_qk_backward(pare_bhtd dq, pare_bhtd dk, const float *dS, pare_bhtd q, pare_bhtd k, int64_t B, int64_t H,
                          int64_t T, int64_t D);
/* O (B,H,T,D) = P (B,H,T,T) · V per (b,h). */
void pare_bmm_pv_forward(pare_bhtd o, const float *P, pare_bhtd v, int64_t B, int64_t H, int64_t T, int64_t D);
void pare_bmm_pv_ref(pare_bhtd o, const float *P, pare_bhtd v, int64_t B, int64_t H, int64_t T, int64_t D);
/* dP += dO·Vᵀ, dV += Pᵀ·dO (dP or dv.p NULL: skipped). */
void pare_bmm_pv_backward(float *dP, pare_bhtd dv, pare_bhtd dout, const float *P, pare_bhtd v, int64_t B, int64_t H,
                          int64_t T, int64_t D);

/* out (B,H,T,T) = S + mask, mask −FLT_MAX where key j is not visible to query i of sequence b (j >= L_b, or
 * j > i when causal; L_b = lengths[b], NULL: T), 0 where it is. out may be S. Backward: dS += dout. */
void pare_mask_add_forward(float *out, const float *S, const int32_t *lengths, int causal, int64_t B, int64_t H,
                           int64_t T);
/* out (n) = x / s; dx += dout / s. */
void pare_div_forward(float *out, const float *x, float s, int64_t n);
void pare_div_backward(float *dx, const float *dout, float s, int64_t n);

/* P (B,H,T,T) = softmax(S / s + mask) along the keys, the mask of pare_mask_add_forward: one pass per row
 * over the visible keys, masked entries exactly 0 (div + mask_add + softmax fused). */
void pare_masked_softmax_forward(float *P, const float *S, float s, const int32_t *lengths, int causal, int64_t B,
                                 int64_t H, int64_t T);
/* dS += (P ⊙ (dP − Σ P ⊙ dP)) / s. */
void pare_masked_softmax_backward(float *dS, const float *P, const float *dP, float s, int64_t B, int64_t H, int64_t T);

/* out (M,C) = LayerNorm(a + b) with weight, bias (C), ε eps; mean, rstd (M) for backward (may be NULL): the
 * residual add and the LayerNorm in one pass over the rows, the sum never written to memory. */
void pare_add_layernorm_forward(float *out, float *mean, float *rstd, const float *a, const float *b,
                                const float *weight, const float *bias, int64_t M, int64_t C, float eps);
/* da, db (either may be NULL) += d(a + b); dweight, dbias (may be NULL) +=; the sum recomputed from a and b. */
void pare_add_layernorm_backward(float *da, float *db, float *dweight, float *dbias, const float *dout, const float *a,
                                 const float *b, const float *weight, const float *mean, const float *rstd, int64_t M,
                                 int64_t C);

/* The activation a fused Linear applies to its output (graph.h: a node's a.epilogue), append-only: the value
 * is what a checkpoint stores. GELU's two forms are those of nn.h. */
typedef enum pare_epilogue {
    PARE_EPILOGUE_NONE = 0,
    PARE_EPILOGUE_GELU,     /* tanh approximation (pare_gelu_forward) */
    PARE_EPILOGUE_GELU_ERF, /* exact erf form (pare_gelu_erf_forward) */
    PARE_EPILOGUE_RELU,
    PARE_EPILOGUE_COUNT
} pare_epilogue;
/* "none", "gelu", "gelu_erf", "relu"; "?" out of range. */
const char *pare_epilogue_name(int e);

/* Linear epilogues (pare_epilogue): y (n) = act(z) (y may be z); and the backward in place, dy (n) = act'(z) ⊙ dy
 * (the output's gradient becomes the pre-activation's, which the Linear's backward then reads). The fused
 * Linear's loop for the formats whose kernel has no activation post-op; NONE copies / leaves dy. */
void pare_epilogue_forward(float *y, const float *z, int epilogue, int64_t n);
void pare_epilogue_backward(float *dy, const float *z, int epilogue, int64_t n);

#endif
