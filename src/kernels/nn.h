/* nn.h — the f32 layer kernels of a transformer, llm.c style: each layer is a pair
 * x_forward / x_backward of plain functions. Outputs first, then inputs, then sizes.
 * Backward functions ADD into gradients (callers zero them separately). Forward saves what backward
 * needs in caller-owned caches (mean/rstd, attention probabilities, dropout masks).
 *
 * Shapes use the letters of core/tensor.h: B batch, T tokens, C channels, H heads (D = C/H),
 * V vocabulary, M rows (= B·T for token-wise ops).
 *
 * Padding: `lengths` (B) gives each sequence's valid length (NULL = all T valid). Keys at positions
 * >= length are masked out of attention; pooling and losses ignore padded positions.
 */
#ifndef PARE_NN_H
#define PARE_NN_H

#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

/* out(M,C) = table[ids[m]]. ids are checked by the caller to be in [0, V). */
void pare_embedding_forward(float *out, const int32_t *ids, const float *table, int64_t M, int64_t C);
void pare_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t M, int64_t C);
/* x (n) *= s (an embedding's scale, forward on its output and backward on its gradient) */
void pare_scale_inplace(float *x, float s, int64_t n);

/* out(B,T,C) = inp(B,T,C) + pos(T,C) (learned or sinusoidal positions; pos has >= T rows). */
void pare_posadd_forward(float *out, const float *inp, const float *pos, int64_t B, int64_t T, int64_t C);
void pare_posadd_backward(float *dinp, float *dpos, const float *dout, int64_t B, int64_t T, int64_t C); /* dinp/dpos may be NULL */
/* The fixed sinusoidal table of "Attention is all you need": pos(T,C). */
void pare_sinusoid_table(float *pos, int64_t T, int64_t C);

/* LayerNorm over the last dim with eps = 1e-5. mean, rstd: (M) caches for backward (may be NULL in
 * forward-only use). Backward: any of dinp, dweight, dbias may be NULL. */
void pare_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                            const float *bias, int64_t M, int64_t C);
void pare_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, const float *mean, const float *rstd, int64_t M, int64_t C);

/* GELU, tanh approximation (as GPT-2 and BERT's fast path). */
/* LayerNorm with a given ε (pare_layernorm_forward uses 1e-5). */
void pare_layernorm_forward_eps(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                const float *bias, int64_t M, int64_t C, float eps);
/* GELU, exact erf form 0.5 x (1 + erf(x/√2)) (pare_gelu_* is the tanh approximation), and tanh. */
void pare_gelu_erf_forward(float *out, const float *inp, int64_t n);
/* The instruction set of the activations' hand-written kernels (the exact GELU's forward: act_avx512.c, else the
 * portable vectorised loop): "auto" (the best this CPU has), "avx512", "avx2", "scalar" (avx2 and scalar both run
 * the portable loop). PARE_ENOTSUP for a tier the CPU lacks, PARE_EINVAL for another name. */
pare_status pare_nn_set_isa(const char *isa);
/* 1 when pare_gelu_erf_forward runs act_avx512.h's pare_gelu_erf16_ (AVX-512 and not capped): kernels that apply the
 * GELU in registers (the int8 GEMM's fused epilogue) do so only then, and call pare_epilogue_forward otherwise. */
int pare_gelu_erf_avx512_active_(void);
/* The AVX-512 span itself (serial), for nn.c's dispatch and the tests; only call it where the CPU has AVX-512F. */
void pare_gelu_erf_span_avx512_(float *out, const float *inp, int64_t n);
void pare_gelu_erf_backward(float *dinp, const float *inp, const float *dout, int64_t n);
void pare_tanh_forward(float *out, const float *inp, int64_t n);
void pare_tanh_backward(float *dinp, const float *inp, const float *dout, int64_t n);
void pare_gelu_forward(float *out, const float *inp, int64_t n);
void pare_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);
void pare_relu_forward(float *out, const float *inp, int64_t n);
void pare_relu_backward(float *dinp, const float *inp, const float *dout, int64_t n);

/* Inverted dropout: mask[i] = keep, out = inp * mask / (1-p). p = 0 copies and sets mask to 1. */
void pare_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n, float p, pare_rng *rng);
void pare_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p);

/* Multi-head softmax attention, the definition: the reference of the one dense implementation, the
 * "full" variant of attn/full.c (which models run). On a packed qkv (B,T,3C) = [q | k | v], heads split
 * along C: out (B,T,C); att (B,H,T,T) the softmax probabilities (masked entries 0). Scale 1/sqrt(D).
 * causal: key j > query i masked. lengths (B) or NULL: keys >= lengths[b] masked. Padded queries
 * (i >= lengths[b]) still attend to the valid keys; a sequence of length 0 gets att 0 and out 0.
 * Plain loops with double accumulation, for tests. */
void pare_attention_forward_ref(float *out, float *att, const float *qkv, const int32_t *lengths, int causal,
                                int64_t B, int64_t T, int64_t C, int64_t H);

/* Cross (encoder-decoder) attention (nn_cross_attention.c): queries q (B,T,C) from the decoder, keys and
 * values kv (B,S,2C) = [k | v] from the encoder, heads split along C; out (B,T,C); att (B,H,T,S) the
 * probabilities. Scale 1/sqrt(D). src_lengths (B) or NULL: keys j >= src_lengths[b] masked (att exactly
 * 0); no causal mask. */
void pare_cross_attention_forward(float *out, float *att, const float *q, const float *kv, const int32_t *src_lengths,
                                  int64_t B, int64_t T, int64_t S, int64_t C, int64_t H);
/* Adds into dq (B,T,C) and dkv (B,S,2C) (either may be NULL) from dout (B,T,C) and the forward's att;
 * datt (B,H,T,S) or NULL: a loss's gradient w.r.t. att itself (distillation on "<node>#att"). */
void pare_cross_attention_backward(float *dq, float *dkv, const float *dout, const float *att, const float *datt,
                                   const float *q, const float *kv, const int32_t *src_lengths, int64_t B, int64_t T, int64_t S, int64_t C,
                                   int64_t H);
/* The definition in plain loops with double accumulation (tests). */
void pare_cross_attention_forward_ref(float *out, float *att, const float *q, const float *kv,
                                      const int32_t *src_lengths, int64_t B, int64_t T, int64_t S, int64_t C, int64_t H);

/* Pooling of a sequence to one vector: CLS (token 0) or MEAN over valid tokens. out (B,C). */
typedef enum pare_pool_mode { PARE_POOL_CLS = 0, PARE_POOL_MEAN, PARE_POOL_COUNT } pare_pool_mode;
void pare_pool_forward(float *out, const float *inp, const int32_t *lengths, pare_pool_mode mode, int64_t B,
                       int64_t T, int64_t C);
void pare_pool_backward(float *dinp, const float *dout, const int32_t *lengths, pare_pool_mode mode, int64_t B,
                        int64_t T, int64_t C);

/* Softmax cross-entropy. logits (M,V); targets (M), a target < 0 is ignored (loss 0, no gradient).
 * losses (M); probs (M,V) cache for backward. Returns the mean loss over non-ignored rows. */
float pare_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                                int64_t M, int64_t V);
/* dlogits (M,V) += dloss · (probs - onehot(target)) for each non-ignored row. */
void pare_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, float dloss,
                                int64_t M, int64_t V);

/* Row softmax: out(M,N) = softmax(inp(M,N)) along N. */
void pare_softmax_forward(float *out, const float *inp, int64_t M, int64_t N);
/* The same on the calling thread alone, out may be inp: the row code pare_softmax_forward runs (it calls this per
 * row), so the bf16 softmax of nn_half.h, which runs it on widened rows, gets the f32 op's bits. */
void pare_softmax_rows(float *out, const float *inp, int64_t M, int64_t N);
/* dinp(M,N) += out ⊙ (dout − rowsum(dout ⊙ out)), out being the forward's output. */
void pare_softmax_backward(float *dinp, const float *out, const float *dout, int64_t M, int64_t N);

#endif
