/* transformer.h — builders of BERT-style encoders and GPT-style decoders as pare graphs.
 *
 * Encoder (classification):  tokens → embedding (+ learned or sinusoidal positions) → L × pre-LN
 *   blocks [x += Dropout(Attn(LN1(x))·Wo); x += Dropout(Down(GELU(Up(LN2(x)))))] → LN → pool (CLS or
 *   mean) → head (nclass) → cross-entropy; with head=regression: head (1 output, the score) → MSE against
 *   the target input "target" (B, 1) (graph.h: pare_model_regression_target; STS-B).
 * Decoder (causal LM): the same blocks with causal attention → LN → head (vocab) per token.
 *
 * Names: emb.tok, emb.pos, {enc|dec}.<l>.{ln1, attn.qkv, attn, attn.out, drop1, add1, ln2, ffn.up,
 *   ffn.act, ffn.down, drop2, add2}, ln_f, pool, head, loss; parameters add .weight / .bias.
 * fused=false (docs/fusion.md) builds the same model with attention unfused: attn.qkv and the attention
 *   node become attn.{q, k, v} (Linears), attn.{q,k,v}_heads (head splits), attn.scores (Q·Kᵀ), attn.scale
 *   (÷√D), attn.mask (additive key mask), attn.softmax, attn.context (P·V) and attn (the heads merged), with
 *   the same initial weights (q, k, v are the rows of qkv) and the same function; the fuse pass folds it back.
 * Initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm gains (GPT-2 / BERT), the
 * residual output projections scaled by 1/sqrt(2L) as in GPT-2.
 */
#ifndef PARE_TRANSFORMER_H
#define PARE_TRANSFORMER_H

#include "core/options.h"
#include "graph/graph.h"

extern const pare_schema pare_model_schema;

/* Build and initialise a model from resolved options (pare_model_schema). The "attention" text is
 * parsed here, once per distinct layer (attn/attn.h: pare_attn_config_parse); every ATTENTION node keeps
 * its layer's resolved configuration, which also keeps the variant's instance at max_T for executors. */
pare_status pare_transformer_build(pare_model **out, const pare_options *o);
/* The same with the layers' attention given already resolved: attn[l] for layer l (the last repeats;
 * NULL: dense), n >= 1 (n = 0: the "attention" option, as pare_transformer_build). The model's config
 * records their canonical text ("spec0;spec1", trailing repeats dropped) as its "attention", so a
 * checkpoint rebuilds the same model; the builder takes its own references (and keeps an instance at
 * max_T in configurations that hold none yet: pass configurations made for this model). */
pare_status pare_transformer_build_attn(pare_model **out, const pare_options *o, struct pare_attn_config *const *attn,
                                        int n);
/* The number of floats pare_transformer_build would allocate for its parameters, without building
 * (INT64_MAX if it overflows): a checkpoint's loader checks a config against the file's size before
 * building it. Fails as the builder does on options it refuses. */
pare_status pare_transformer_numel(int64_t *numel, const pare_options *o);

#endif
