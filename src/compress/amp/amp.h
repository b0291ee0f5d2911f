/* amp.h — automatic mixed precision as a graph pass (issue 15; docs/amp.md), in the manner of PyTorch's autocast
 * and Intel Neural Compressor's bf16 mixed precision: every op has a category,
 *
 *   lower   runs in the lower dtype (bf16 by default): Linear / GEMMs, attention's batched products — where the
 *           op has a kernel for it (read from op_dtypes at run time: the ops without one stay f32, and the
 *           report says so, "attention: f32 (no bf16 kernel)");
 *   follow  runs in the dtype of its input: GELU, ReLU, tanh, residual add, dropout, head split / merge — in
 *           bf16 when every input is bf16 and the op has a bf16 kernel, else f32;
 *   fp32    stays in f32: LayerNorm statistics, softmax, pooling, losses, embeddings' output;
 *
 * and the pass places the dtypes and the casts between categories, then folds each cast into its producer where
 * the producer can write the wanted dtype (a LayerNorm read only by bf16 Linears writes bf16; a Linear read only
 * by f32 ops writes f32) or into its consumer where the consumer converts inside anyway (a bf16 Linear rounds an
 * f32 input, a LayerNorm widens a bf16 one: the same bits). What is left becomes CAST nodes.
 *
 *     pare_amp_cat pol[PARE_OP_COUNT];
 *     pare_amp_policy_default(pol);
 *     PARE_TRY(pare_amp_policy_parse(pol, "gelu=fp32, linear=lower"));   // edits; errors name the choices
 *     m:apply("amp", {dtype = "bf16", policy = {gelu = "fp32"}, layers = "enc.*", exclude = "*.cls*"})  -- Lua
 *
 * Entry points: pare_pass_amp (registered in compress/pass.c), the policy table below (pare.amp_policy() in Lua).
 *
 * Deliberately not here: training (bf16 values run at inference: the ops refuse a training forward over one), f16
 * follow kernels (with dtype=f16 the follow ops stay f32), loss scaling, per-node overrides beyond the layers /
 * exclude globs, changing a Linear already in another storage format (int8, blocks, sparse: left alone).
 */
#ifndef PARE_AMP_H
#define PARE_AMP_H

#include "compress/pass.h"

typedef enum pare_amp_cat {
    PARE_AMP_LOWER = 0,
    PARE_AMP_FOLLOW,
    PARE_AMP_FP32,
    PARE_AMP_CAT_COUNT,
    PARE_AMP_NONE = PARE_AMP_CAT_COUNT /* the cast op: it converts, it has no category (not in the policy) */
} pare_amp_cat;

/* "lower", "follow", "fp32" ("-" for PARE_AMP_NONE). */
const char *pare_amp_cat_name(pare_amp_cat c);
/* The default category of every op (indexed by pare_op_id; the cast's is PARE_AMP_NONE). */
void pare_amp_policy_default(pare_amp_cat pol[PARE_OP_COUNT]);
/* Apply edits "op=category, op=category" (spaces allowed, "" none) to pol. PARE_EINVAL naming the entry and listing
 * the valid op names or categories; pol is left unchanged on error. */
pare_status pare_amp_policy_parse(pare_amp_cat pol[PARE_OP_COUNT], const char *edits);

extern const pare_pass pare_pass_amp;

#endif
