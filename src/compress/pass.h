/* pass.h — the pass manager: every compression technique is a pass over a model with a declared
 * option schema, listed once in the registry of pass.c.
 *
 *     pare_model *q;
 *     pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
 *     PARE_TRY(pare_apply(&q, model, "dynamic_int8", kv, 1));   // model is unchanged; q shares weights
 *
 * A pass receives a clone of the input model (parameters share their f32 blobs with the original;
 * call pare_param_make_private before writing one) and the validated options.
 */
#ifndef PARE_PASS_H
#define PARE_PASS_H

#include "core/options.h"
#include "data/task.h"
#include "graph/graph.h"

/* What a pass may need beyond its options. */
typedef struct pare_pass_ctx {
    const pare_dataset *calib; /* calibration examples (static quantization, SmoothQuant, GPTQ, QAT), or NULL */
} pare_pass_ctx;

typedef struct pare_pass {
    const pare_schema *schema; /* schema->name is the pass's name */
    pare_status (*apply)(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx);
    int needs_calib;           /* 1: pare_apply fails with a clear message without ctx->calib */
} pare_pass;

pare_status pare_apply(pare_model **out, const pare_model *in, const char *name, const pare_kv *kv, int nkv);
/* The same with a context (calibration data). */
pare_status pare_apply_ctx(pare_model **out, const pare_model *in, const char *name, const pare_kv *kv, int nkv,
                           const pare_pass_ctx *ctx);
/* NULL with a message listing the valid pass names when unknown. */
const pare_pass *pare_pass_find(const char *name);
int pare_pass_count(void);
const pare_pass *pare_pass_at(int i);

/* Helpers for passes: the Linear nodes whose names match `layers` and not `exclude` ("" = none).
 * Writes node indices to idx (capacity m->nnodes) and returns how many; PARE_EINVAL naming the
 * pattern and listing the Linear layers when none match. */
pare_status pare_select_linears(const pare_model *m, const char *layers, const char *exclude, int64_t *idx, int64_t *n);

/* The passes (one file each under src/compress/<family>/), append-only; the registry in pass.c is
 * indexed by this enum and guarded by a static assert on the count. */
typedef enum pare_pass_id {
    PARE_PASS_DYNAMIC_INT8 = 0,
    PARE_PASS_STATIC_INT8,
    PARE_PASS_LLM_INT8,
    PARE_PASS_SMOOTHQUANT,
    PARE_PASS_INJECT_OUTLIERS,
    PARE_PASS_ZEROQUANT,
    PARE_PASS_RTN,
    PARE_PASS_GPTQ,
    PARE_PASS_QBLOCK,
    PARE_PASS_FAKE_QUANT,
    PARE_PASS_MIXED,
    PARE_PASS_QAT,
    PARE_PASS_QAT_CONVERT,
    PARE_PASS_LOWRANK,
    PARE_PASS_SVD_PRUNE,
    PARE_PASS_PRUNE_MAGNITUDE, /* src/compress/prune/ (issue 13) */
    PARE_PASS_PRUNE_SNIP,
    PARE_PASS_PRUNE_TAYLOR,
    PARE_PASS_PATTERN_LOCK,
    PARE_PASS_SPARSIFY,       /* prune/sparsify.c: pruned weights into sparse layouts (issue 13) */
    PARE_PASS_PRUNE_NEURONS,  /* prune/prune_struct.c: structured pruning, removed physically (issue 13) */
    PARE_PASS_PRUNE_HEADS,
    PARE_PASS_PRUNE_LAYERS,
    PARE_PASS_SPARSEGPT,      /* prune/sparsegpt.c: one-shot OBS pruning with the calibration Hessian (issue 13) */
    PARE_PASS_DEQUANTIZE,     /* quant/dequantize.c: quantized weights back to f32 on their grid (issue 13: quantize, then prune) */
    PARE_PASS_KRONECKER,      /* lowrank/kronecker.c: sums of Kronecker products, a tt_linear node (issue 13) */
    PARE_PASS_TENSOR_TRAIN,   /* lowrank/tensor_train.c: TT-matrices by TT-SVD, a tt_linear node (issue 13) */
    PARE_PASS_PRUNE_TOKENS,   /* prune/tokens.c: token pruning between layers, shorter sequences (issue 13) */
    PARE_PASS_BF16,           /* quant/half.c: Linears in bf16 / f16 on real kernels (issue 15) */
    PARE_PASS_FUSE,           /* fuse/fuse.c: operator fusion as a graph rewrite, one rule per fusion (issue 15) */
    PARE_PASS_AMP,            /* amp/amp.c: automatic mixed precision by op category, casts placed and folded (issue 15) */
    PARE_PASS_BINARY,         /* quant/binary.c: packed 1-bit and ternary weights on add/subtract kernels (issue 18) */
    PARE_PASS_TERNARY,
    PARE_PASS_PQ,             /* quant/pq.c: product quantization on the lookup-table kernel (issue 18) */
    PARE_PASS_QUANT_NOISE,    /* quant/pq.c: Quant-Noise training, a weight transform (issue 18) */
    PARE_PASS_OUTLIER_SUPPRESSION, /* quant/outlier_suppression.c: gamma migration + token-wise clipping, static W8A8 (issue 18) */
    PARE_PASS_COUNT
} pare_pass_id;

extern const pare_pass pare_pass_dynamic_int8, pare_pass_static_int8, pare_pass_llm_int8, pare_pass_smoothquant,
    pare_pass_inject_outliers, pare_pass_zeroquant, pare_pass_rtn, pare_pass_gptq, pare_pass_qblock,
    pare_pass_fake_quant, pare_pass_mixed, pare_pass_qat, pare_pass_qat_convert, pare_pass_lowrank, pare_pass_svd_prune;
extern const pare_pass pare_pass_prune_magnitude, pare_pass_prune_snip, pare_pass_prune_taylor, pare_pass_pattern_lock,
    pare_pass_sparsify;
extern const pare_pass pare_pass_prune_neurons, pare_pass_prune_heads, pare_pass_prune_layers;
extern const pare_pass pare_pass_sparsegpt, pare_pass_dequantize, pare_pass_prune_tokens;
extern const pare_pass pare_pass_kronecker, pare_pass_tensor_train;
extern const pare_pass pare_pass_bf16;
extern const pare_pass pare_pass_fuse;
extern const pare_pass pare_pass_amp;
extern const pare_pass pare_pass_binary, pare_pass_ternary;
extern const pare_pass pare_pass_pq, pare_pass_quant_noise;
extern const pare_pass pare_pass_outlier_suppression;

#endif
