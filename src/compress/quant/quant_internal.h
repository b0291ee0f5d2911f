/* quant_internal.h — what the quantization passes share: layer selection, calibration from the pass
 * context, and constructors of the quantized Linear forms (graph.h pare_qlinear). */
#ifndef PARE_QUANT_INTERNAL_H
#define PARE_QUANT_INTERNAL_H

#include "compress/pass.h"
#include "compress/quant/calib.h"

#define QI_LAYER_OPTS(def)                                                                                         \
    {"layers", PARE_OPT_STRING, def, 0, 0, NULL, "glob over Linear layer names to quantize (e.g. \"enc.*.ffn.*\")"}, \
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to leave as they are (\"\": none)"}
/* The token-embedding tables and the LM head / classifier (docs/quantization.md "Embeddings and the LM head"):
 * embeddings = true also quantizes each EMBEDDING node's trainable f32 table (rows dequantized as they are looked up,
 * kernels/embed_q.h; with layers = "" only the tables), head = true also selects the Linear that makes the logits
 * whatever `layers` says. A table tied to a Linear (tie_head) is one parameter: selecting either quantizes it once,
 * for both readers. Defaults false, as GPTQ, AWQ and PyTorch's quantize_dynamic leave nn.Embedding alone. */
#define QI_TABLE_OPTS                                                                                                \
    {"embeddings", PARE_OPT_BOOL, "false", 0, 0, NULL,                                                                \
     "also quantize the token-embedding tables (a scale per row / blocks along a row; with layers = \"\" only them)"}, \
    {"head", PARE_OPT_BOOL, "false", 0, 0, NULL, "also select the LM head / classifier Linear, whatever layers says"}
/* The EMBEDDING nodes (into out, *nout of them) whose tables embeddings = true quantizes: trainable, still f32, not the
 * weight of one of the Linears lin[0..nlin) (a tied table is quantized as that Linear's weight). */
pare_status qi_select_tables(const pare_model *m, const pare_options *o, const int64_t *lin, int64_t nlin, int64_t *out,
                             int64_t *nout);
/* QAT's two fake-quant transforms on Linear `node` (qat_pass.c): weight scales per output channel or per
 * `group` inputs (initialised from max |W|), the input's per tensor (initialised from amax) or per token
 * (dynamic); scale parameters "<node>.wscale" / "<node>.ascale" (log-scales), trainable iff learn. */
pare_status qi_attach_fake_quant(pare_model *m, int64_t node, int bits, int learn, int group, int per_token, float amax);

/* Quantize Linear `node`'s f32 weight into a block format (weight.c; zeroquant's int8_group with group). */
pare_status qi_set_qblock(pare_model *m, int64_t node, pare_qb_kind kind, int64_t group, int sym, const char *method);

/* ZeroQuant's layer-by-layer distillation of the selected Linears (lkd.c): trains their f32 weights and
 * biases in place, layer by layer, under ZeroQuant's fake quantization. */
pare_status qi_zeroquant_lkd(pare_model *m, const int64_t *idx, int64_t n, int group, const pare_dataset *calib,
                             int64_t steps, double lr, int64_t batch, uint64_t seed);

#define QI_CALIB_OPTS(samples)                                                                                      \
    {"calib_samples", PARE_OPT_INT, samples, 1, 1e9, NULL, "calibration examples, from the start of calib's train split"}, \
    {"calib_batch", PARE_OPT_INT, "16", 1, 4096, NULL, "calibration batch size"}

/* The selected Linear nodes (options "layers" and "exclude"), skipping those already quantized when
 * skip_quantized; *idx is malloc'd (free it). */
pare_status qi_select(const pare_model *m, const pare_options *o, int skip_quantized, int64_t **idx, int64_t *n);
pare_param *qi_weight(pare_model *m, int64_t node);
/* Calibrate nodes idx[0..n) with the options calib_samples / calib_batch. */
pare_status qi_calibrate(pare_calib *c, pare_model *m, const pare_pass_ctx *ctx, const pare_options *o,
                         const int64_t *idx, int64_t n, unsigned what);

/* The int8 kernel's form: weights per channel (per_tensor = 0) or per tensor, activations as act says. */
/* per_tensor: 0 per channel, 1 per tensor, QI_W_TORCH PyTorch's qint8 (pare_i8_weight_quantize_torch). */
#define QI_W_TORCH 2
pare_status qi_set_i8(pare_model *m, int64_t node, int per_tensor, const pare_i8_act *act, const char *method);
/* The int8 kernel's form from chosen integers q (N,K) and per-channel scales. */
pare_status qi_set_i8_from_int(pare_model *m, int64_t node, const int8_t *q, const float *scale,
                               const pare_i8_act *act, const char *method);
/* The simulated form: Wq (N,K) the dequantized weights (copied), bits the exact storage, activations
 * fake-quantized with a_spec dynamically (a_sim 1), with a_qp statically (a_sim 2), or not (0). */
pare_status qi_set_sim(pare_model *m, int64_t node, const float *Wq, const pare_qspec *w_spec, double bits, int a_sim,
                       const pare_qspec *a_spec, const pare_qparams *a_qp, const char *method);
/* Weight-only integers on a kernel — int4-group (bits 4), kernels/wq.h's int8 / int3 / int2 (bits 8, 3, 2), W4A8 (bits 4
 * with act_bits 8) — when the shapes fit their layouts, else simulated (other bits, or a layout that does not fit;
 * act_bits 8: int8 per-token activations fake-quantized): q (N,K), scale and zero (N, K/group) as pare_rtn_quantize /
 * pare_gptq_quantize return them; group 0 = per channel; act_bits 32 (f32) or 8. */
pare_status qi_set_weight_only(pare_model *m, int64_t node, const int32_t *q, const float *scale, const int32_t *zero,
                               const float *Wq, int bits, int64_t group, int symmetric, int act_bits, const char *method);

/* The static symmetric (or u8 asymmetric) activation grid for a calibrated range [lo, hi]. */
pare_i8_act qi_static_act(float lo, float hi, int symmetric);

/* The LayerNorm node whose output is node's input, or -1. */
/* Attention's two batched products (Q·Kᵀ, P·V) on int8 for every attention node whose qkv Linear is among the
 * n selected nodes idx: bmm_i8 = 1 (the probabilities' u8 scale per row) or 2 (fixed_p: the fixed 1/255). */
void qi_mark_attention_i8(pare_model *m, const int64_t *idx, int64_t n, int fixed_p);
int64_t qi_ln_before(const pare_model *m, int64_t node);
/* 1 if Linears alone read LayerNorm ln's output, so scaling its channels (SmoothQuant's smoothing, outlier
 * injection) can be undone in their weights; 0 when something else reads it too (a post-LN block's residual Add). */
int qi_ln_feeds_linears(const pare_model *m, int64_t ln);

#endif
