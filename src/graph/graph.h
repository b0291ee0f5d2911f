/* graph.h — the graph IR: values, parameters, nodes, and the model that owns them.
 *
 * A model is a straight-line graph (a list of nodes in execution order) over three kinds of things:
 *   inputs      tokens (B·T), lengths (B), labels (B or B·T) — bound per batch; and f32 targets (soft
 *               labels, a teacher's outputs) that loss nodes compare values against (see "losses");
 *   parameters  named weights with a storage format (f32, or a quantized format with its kernel);
 *   activations the outputs of nodes, and per-node caches for backward (LayerNorm stats, attention
 *               probabilities, dropout masks, softmax probabilities).
 * Every node and parameter has a stable hierarchical name ("enc.3.attn.qkv", "enc.3.attn.qkv.weight");
 * passes select them with glob patterns (fnmatch) and tables report by them.
 *
 * Activations are 2-D: rows × cols where rows is symbolic (B·T tokens, B sequences), bound when an
 * executor is made for a batch shape (exec.h). That is all a transformer needs and keeps the memory
 * planner simple.
 *
 * Every value has a dtype (core/tensor.h): inputs int32, targets f32, dropout masks uint8, node outputs
 * what their op produces (f32 for every op but CAST). Each op declares the dtypes it accepts per input
 * (ops.c); pare_model_add_node refuses a node whose inputs do not fit, naming the node, the op, the
 * input, its dtype and the accepted ones, and pare_model_check_dtypes checks a whole graph the same way.
 * A change of dtype is a CAST node (pare_model_add_cast); nothing converts silently. docs/dtypes.md.
 *
 * What it deliberately does not do: general broadcasting, dynamic control flow, ops on arbitrary
 * N-D tensors. Models are built by src/model/ builders; passes (src/compress/) rewrite the parameter
 * storage or the node list and return a new model.
 *
 * Entry points: pare_model_new / pare_model_free / pare_model_clone, pare_model_add_* (builders, including
 * pare_model_add_target / pare_model_add_loss / pare_model_add_cast), pare_model_check_dtypes,
 * pare_model_find_param, pare_model_size_bytes.
 */
#ifndef PARE_GRAPH_H
#define PARE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/numfmt.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/gemm_half.h"
#include "kernels/fuse_ops.h"
#include "kernels/gemm_i8.h"
#include "kernels/nn.h"
#include "kernels/wq.h"
#include "kernels/pq.h"
#include "kernels/qblock.h"
#include "kernels/sparse.h"
#include "kernels/tt.h"

#define PARE_NAME_MAX 64
#define PARE_NODE_MAX_IN 3
#define PARE_NODE_MAX_PARAMS 2
#define PARE_NODE_MAX_CACHE 2

/* Ops: append-only; the registry in ops.c is indexed by this enum and guarded by a static assert. */
typedef enum pare_op_id {
    PARE_OP_EMBEDDING = 0, /* in: tokens;           param: table (V,C)          out (B·T, C) */
    PARE_OP_POSADD,        /* in: x (B·T,C);         param: pos (Tmax,C) [learned or fixed]       */
    PARE_OP_LINEAR,        /* in: x (rows,K);        param: weight (N,K), bias (N)   out (rows,N) */
    PARE_OP_LAYERNORM,     /* in: x (rows,C);        param: weight (C), bias (C); cache mean, rstd */
    PARE_OP_GELU,          /* in: x                                                          */
    PARE_OP_RELU,          /* in: x                                                          */
    PARE_OP_ADD,           /* in: a, b (same shape)                                          */
    PARE_OP_DROPOUT,       /* in: x; cache: mask (u8); identity at inference                  */
    PARE_OP_ATTENTION,     /* in: qkv (B·T, 3C), lengths; cache att (B,H,T,T)   out (B·T, C)  */
    PARE_OP_POOL,          /* in: x (B·T,C), lengths                              out (B, C)    */
    PARE_OP_XENT,          /* in: logits (rows,V), labels; cache probs   out: losses (rows, 1)  */
    /* Losses of two f32 values of one shape (rows, N), any node's output or a target input, each with a
     * weight (a.weight) in the total loss; token rows ignore padded positions (in[2] = lengths). They are
     * built with pare_model_add_loss; kernels/loss.h has the formulas. out (1, 1); cache: rows (rows, 1) */
    PARE_OP_MSE,           /* in: a, b [, lengths]   mean over valid elements of (a − b)²              */
    PARE_OP_KLDIV,         /* in: s, t [, lengths]   T²·KL(softmax(t/T) || softmax(s/T)), a.temperature */
    PARE_OP_COSINE,        /* in: a, b [, lengths]   mean over valid rows of 1 − cos(a, b)              */
    PARE_OP_SOFT_XENT,     /* in: s, y [, lengths]   −Σ y log softmax(s), y probabilities (soft labels) */
    PARE_OP_CAST,          /* in: x (f32, bf16 or f16)        out: x in a.dtype (f32, bf16 or f16), same shape */
    PARE_OP_TANH,          /* in: x                                                          */
    /* Encoder-decoder attention (docs/encoder-decoder.md): queries from the decoder, keys and values from
     * the encoder's output (projected once per layer), the source lengths masking the keys, no causal mask. */
    PARE_OP_CROSS_ATTENTION, /* in: q (B·T, C), kv (B·S, 2C), src_lengths; cache att (B,H,T,S)  out (B·T, C) */
    PARE_OP_TT_LINEAR,     /* in: x (rows,K); param: cores (a.tt), bias (N); cache the TT intermediates  out (rows,N):
                              a Linear whose weight is a TT-matrix / sum of Kronecker products (kernels/tt.h) */
    /* Token pruning, physically (PoWER-BERT; docs/pruning-tokens.md, compress/prune/tokens.c): the rows after
     * the select are T' = pare_tokens_kept(T, a.keep) per sequence, its output value's keep says so. */
    PARE_OP_TOKEN_SELECT,  /* in: x (B·Tp, C), lengths (B), att (B·H·Tp, Tp) of the previous attention;
                              cache idx (B·T', 1)                                      out (B·T', C)   */
    PARE_OP_TOKEN_LENGTHS, /* in: lengths (B)          out: int32 (B) min(length, T') at a.keep            */
    /* The other direction of KLDIV (a loss like the ones above; kernels/loss.h): FastBERT's D_KL(p_s, p_t). */
    PARE_OP_KLDIV_REV,     /* in: s, t [, lengths]   T²·KL(softmax(s/T) || softmax(t/T)), a.temperature */
    /* Attention as explicit ops: the unfused graph (model option fused=false) and the intermediate forms of the
     * fuse pass (docs/fusion.md, kernels/attn_ops.h). Head-major values (B,H,T,D) are held as token rows of C
     * columns (the same B·T·C floats); scores and probabilities (B,H,T,T) as attention rows (B·T·T) of H
     * columns, the layout of the ATTENTION node's "#att". Column views: node.in_col. */
    PARE_OP_HEAD_SPLIT,    /* in: x (B·T, ≥C) [its columns in_col[0]..+C]          out (B,H,T,D): view+transpose+contiguous */
    PARE_OP_HEAD_MERGE,    /* in: (B,H,T,D)                                        out (B·T, C): transpose+view       */
    PARE_OP_BMM_QK,        /* in: q, k (B,H,T,D) [a.strided: (B·T, ≥C) columns in_col..+C]   out scores (B,H,T,T) = q·kᵀ */
    PARE_OP_BMM_PV,        /* in: p (B,H,T,T), v (B,H,T,D)   out (B,H,T,D) = p·v [a.strided: v (B·T, ≥C) columns
                              in_col[1]..+C, out (B·T, C) with the heads merged]                                    */
    PARE_OP_DIV,           /* in: x                 out = x / a.scale (attention's √D)                        */
    PARE_OP_MASK_ADD,      /* in: scores (B,H,T,T), lengths   out = scores + mask: −FLT_MAX where key j >= length
                              (or j > i, a.causal), 0 elsewhere: the additive key mask                         */
    PARE_OP_SOFTMAX,       /* in: x                 out: softmax along the last axis (T for attention rows)   */
    PARE_OP_MASKED_SOFTMAX,/* in: scores (B,H,T,T), lengths   out: softmax(scores / a.scale + mask): div+mask_add+softmax */
    PARE_OP_ADD_LAYERNORM, /* in: a, b (rows, C); param: weight (C), bias (C); cache mean, rstd   out = LN(a + b) */
    /* Tensor parallelism (Megatron-LM's f and g; docs/distributed.md, dist/tp.h): a.tp_ranks ranks hold shards. */
    PARE_OP_TP_COPY,       /* in: x (rows, C)                 out = x; backward: dx += Σ_ranks dout (all-reduce) */
    PARE_OP_TP_REDUCE,     /* in: x (rows, C) [param: bias (C)]   out = Σ_ranks x (+ bias); backward: identity    */
    PARE_OP_COUNT
} pare_op_id;

typedef enum pare_rows {
    PARE_ROWS_TOKENS = 0, /* B·T */
    PARE_ROWS_SEQS,       /* B */
    PARE_ROWS_CACHE_ATT,  /* B·H·T rows of T (attention probabilities) */
    PARE_ROWS_ONE,        /* one row: a loss's value */
    /* Encoder-decoder models (docs/encoder-decoder.md): the source sequence has its own length S, bound
     * with the executor (pare_exec_new_src), so its rows are a kind of their own. */
    PARE_ROWS_SRC,        /* B·S: source tokens and the encoder's activations */
    PARE_ROWS_CACHE_SATT, /* B·H·S rows of S: the encoder's self-attention probabilities */
    PARE_ROWS_CACHE_XATT, /* B·H·T rows of S: cross-attention probabilities */
    PARE_ROWS_COUNT
} pare_rows;

typedef enum pare_value_kind {
    PARE_VAL_TOKENS = 0, /* int32 (B·T) input */
    PARE_VAL_LENGTHS,    /* int32 (B) input */
    PARE_VAL_LABELS,     /* int32 (B) or (B·T) input */
    PARE_VAL_ACT,        /* a node's output, rows × cols, of the dtype its op produces (f32 but for CAST) */
    PARE_VAL_CACHE,      /* backward cache: f32, or uint8 for dropout masks */
    PARE_VAL_TARGET,     /* f32 input, rows × cols, bound per batch with pare_exec_bind_target: soft labels,
                            a teacher's logits or hidden states; no gradient */
    PARE_VAL_TYPES,      /* int32 (B·T) input: token types (BERT's segment ids, 0 for the first sentence of a pair,
                            1 for the second); zeros unless bound with pare_exec_bind_types */
    PARE_VAL_SRC_TOKENS, /* int32 (B·S) input: an encoder-decoder's source tokens (pare_exec_bind_source) */
    PARE_VAL_SRC_LENGTHS,/* int32 (B) input: the source lengths, in [1, S] */
    PARE_VAL_KIND_COUNT
} pare_value_kind;

typedef struct pare_value {
    char name[PARE_NAME_MAX];
    pare_value_kind kind;
    pare_rows rows;
    int64_t cols;      /* elements per row */
    pare_dtype dtype;  /* element type: the buffer holds rows × cols × pare_dtype_size(dtype) bytes */
    int producer;      /* node index, -1 for inputs */
    float keep;        /* token rows (TOKENS, CACHE_ATT) after token pruning: each sequence has
                          T' = pare_tokens_kept(T, keep) positions, not T; 0 (all T) elsewhere. Set by
                          pare_model_add_node from the node's op and inputs (pare_model_refresh_keep), never by hand */
} pare_value;

/* Token positions kept of T at a token-pruning level: T for keep 0 or >= 1, else max(1, ceil(keep · T))
 * (a float keep such as 0.7f gives 7 of 10: the product is rounded at 1e-6 before the ceiling). */
int64_t pare_tokens_kept(int64_t T, float keep);

/* Storage formats of a Linear weight (DESIGN.md: formats carry their kernels). Append-only. */
typedef enum pare_format {
    PARE_FMT_F32 = 0,
    PARE_FMT_I8_CHANNEL, /* int8 weights, one scale per output channel (or one per tensor); int8 activations
                            quantized as q->act says (dynamic per token / per tensor, static, LLM.int8) */
    PARE_FMT_QBLOCK,     /* group-wise int4/int8 and llama.cpp blocks Q8_0/Q4_0/Q4_1 (kernels/qblock.h) */
    PARE_FMT_SIMULATED,  /* fake quantization: the dequantized weights in f32, activations fake-quantized;
                            no kernel of its own, labelled "simulated" wherever it is reported */
    PARE_FMT_SPARSE,     /* zeros not stored: CSR (f32 or int8), N:M, block 4x1 / 16x16 (kernels/sparse.h); made by
                            the sparsify pass from the f32 masters, which hold the zeros (issue 13) */
    PARE_FMT_HALF,       /* bf16 or f16 weights, activations rounded to the same dtype inside the op, f32 accumulation
                            (kernels/gemm_half.h); made by the bf16 pass (issue 15). Labelled "bf16" / "f16" */
    PARE_FMT_WQ,         /* weight-only int8/int3/int2 groups, packed binary/ternary rows, W4A8 (kernels/wq.h); made by
                            rtn / gptq (bits 8, 3, 2; act_bits=8) and the binary / ternary passes (issue 18) */
    PARE_FMT_PQ,         /* product quantization: uint8 codes of d-input blocks + a k-centroid codebook (kernels/pq.h);
                            made by the pq pass (issue 18) */
    PARE_FMT_COUNT
} pare_format;

/* "f32", "int8", "qblock", "simulated", "sparse", "half", "wq"; the formats' traits (kernels, labels) are in format.h. */
const char *pare_format_name(pare_format f);

/* How a quantized Linear runs: made by a pass, immutable afterwards, shared (reference-counted)
 * between a model and its clones. The f32 master weights stay in the parameter's blob. */
typedef struct pare_qlinear {
    int refs;
    pare_format format;
    pare_i8_weight i8;      /* I8_CHANNEL */
    pare_i8_act act;        /* I8_CHANNEL: how activations are quantized */
    pare_qb_weight qb;      /* QBLOCK */
    pare_sparse_weight sp;  /* SPARSE */
    pare_half_weight hw;    /* HALF: the bf16 / f16 weights (and oneDNN's packed copy) */
    pare_wq_weight wq;      /* WQ: weight-only int8/int3/int2, binary/ternary, W4A8 */
    pare_pq_weight pq;      /* PQ: codes and codebook */
    float *w_sim;           /* SIMULATED: dequantized weights (N,K) */
    int a_sim;              /* SIMULATED: 0 activations in f32, 1 fake-quantized dynamically (ranges from each
                               batch), 2 fake-quantized with the static a_qp */
    pare_qspec w_spec, a_spec;
    pare_qparams a_qp;
    double bits;            /* exact storage bits of the weight: values, scales, zero points */
    char desc[96];          /* what runs, for tables: "int8 w/channel a/token", "q4_0", "sim int4 w/group128" */
    char method[64];        /* how the values were chosen: "rtn", "gptq", "static kl", "smoothquant a=0.50" */
} pare_qlinear;

pare_qlinear *pare_qlinear_new(pare_format f); /* refs = 1; NULL + message on ENOMEM */
void pare_qlinear_release(pare_qlinear *q);    /* NULL ok; frees at refs 0 */

typedef struct pare_blob { /* a reference-counted block of f32 weights, shared between models */
    int refs;
    size_t n;
    float *data;
} pare_blob;

typedef struct pare_param {
    char name[PARE_NAME_MAX]; /* "enc.0.attn.qkv.weight" */
    int ndim;
    int64_t shape[2];         /* (N, K) for Linear weights, (C) for vectors, (V, C) for tables */
    int trainable;            /* 0 for fixed sinusoidal positions */
    pare_blob *blob;          /* f32 master copy (shared between clones until written) */
    float *grad;              /* (same shape), training only; owned */
    float *adam_m, *adam_v;   /* AdamW moments, training only; owned */
    pare_format format;       /* how the kernels see it: F32, or q->format */
    pare_qlinear *q;          /* quantized Linear weights (NULL for F32), shared with clones; the
                                 f32 weights' oneDNN-layout copies belong to inference executors */
    /* Run statistics, the one thing running a model writes into it: declared here, owned by this model
     * (its params array is never shared; a clone starts them at zero), never part of what the model
     * computes, saves or reports in m:info(). LLM.int8(): input features run in f32, and forward calls,
     * summed over every executor of this model (m:quant_report's outlier_fraction). */
    _Atomic long long run_outlier_cols, run_calls;
} pare_param;

typedef struct pare_node_attrs {
    int heads;          /* ATTENTION */
    int causal;         /* ATTENTION */
    int bmm_i8;         /* ATTENTION: the two batched products on int8 (SmoothQuant), inference only: 1 with a
                           scale of the probabilities per query row, 2 with the fixed 1/255 (gemm_i8.h) */
    struct pare_attn_config *attn; /* ATTENTION: the variant and its resolved options (attn/attn.h), one
                           reference held by the node, shared by clones; NULL given to pare_model_add_node
                           means dense attention (pare_attn_config_default, the "full" variant). Serializable
                           state: the kind name and the given options' key = value text, held canonically in
                           attn->spec ("kind" or "kind:key=value,..."): save the spec, and on load give the
                           node pare_attn_config_parse(spec). The node's caches follow the variant (a
                           "#att" value iff attn->v->probs_cache), so a pass that swaps a node's attention
                           rebuilds the node (pare_model_add_node) rather than writing this field. */
    float p;            /* DROPOUT */
    pare_pool_mode pool;/* POOL */
    float weight;       /* loss ops (XENT, MSE, ...): the term's weight in the executor's total loss. A loss
                           node made with weight 0 gets 1 (pare_model_add_node); a zero weight is set after
                           creation (pare_model_add_loss, or writing the field) */
    float temperature;  /* KLDIV, KLDIV_REV (pare_op_has_temperature): T > 0 (0 at creation gets 1) */
    pare_dtype dtype;   /* CAST: the output's dtype (f32, bf16 or f16) */
    float eps;          /* LAYERNORM: ε of the variance (0: 1e-5; BERT checkpoints use 1e-12) */
    int gelu_erf;       /* GELU: 1 the exact form 0.5 x (1 + erf(x/√2)) (BERT family), 0 the tanh form (GPT-2) */
    int pos_offset;     /* POSADD: position t reads row t + pos_offset of the table (RoBERTa: 2) */
    float scale;        /* EMBEDDING: the looked-up rows are multiplied by it (0: 1, none; BART's scale_embedding: √C) */
    pare_tt_shape tt;   /* TT_LINEAR: the cores' factors and ranks (kernels/tt.h); d = 0 for every other op */
    float keep;         /* TOKEN_SELECT, TOKEN_LENGTHS: the share of the T positions kept, (0, 1] */
    int epilogue;       /* LINEAR: an activation applied to its output (kernels/fuse_ops.h pare_epilogue; 0 none):
                           Linear+GELU / Linear+ReLU fused */
    int strided;        /* BMM_QK, BMM_PV: q, k, v read in place from token rows (and BMM_PV's output written
                           with the heads merged) instead of head-major values: view+transpose+contiguous fused */
    int head_dim;       /* BMM_QK: D, the size of a head (its scores have a column per head, not per channel) */
    int tp_ranks;       /* TP_COPY, TP_REDUCE: the ranks the model is sliced over (the run must have as many) */
    int tp_rank;        /* TP_COPY, TP_REDUCE: the rank whose shard this model is (dist/tp.h) */
} pare_node_attrs;


/* Weight transforms (transform.h has the kinds' traits and the API). A transform replaces an operand of
 * a node in forward by a function of its master and auxiliary parameters, with the technique's gradient
 * rule in backward: a pruning mask, QAT's fake quantization. This struct is its whole state (plain ints:
 * clones copy it with the node, checkpoints store it as is). */
typedef enum pare_tf_kind {   /* append-only: the value is what a checkpoint stores */
    PARE_TF_MASK = 0,         /* W_eff = W ⊙ M, M (N,K) of 0/1, not trainable; dW += dW_eff ⊙ M */
    PARE_TF_FAKE_QUANT,       /* QAT: s·clamp(round(x/s)) on a symmetric bits-bit grid; STE, LSQ (kernels/qat.h) */
    PARE_TF_HEAD_GATE,        /* hard-concrete L0 gate per head on an output projection's columns (tf_headgate.c) */
    PARE_TF_QUANT_NOISE,      /* Quant-Noise: a random share p of the weight's blocks quantized each training forward,
                                 straight-through gradient; identity at inference (tf_quantnoise.c, issue 18) */
    PARE_TF_COUNT
} pare_tf_kind;

typedef enum pare_tf_operand { /* append-only */
    PARE_TF_WEIGHT = 0,       /* param[0] of a Linear: (N, K) */
    PARE_TF_INPUT,            /* in[0] of a Linear: (M, K) activations */
    PARE_TF_OPERAND_COUNT
} pare_tf_operand;

#define PARE_TF_MAX_AUX 2
#define PARE_NODE_MAX_TF 2    /* at most one transform per operand */

typedef struct pare_transform {
    int kind;                 /* pare_tf_kind */
    int operand;              /* pare_tf_operand */
    int bits;                 /* FAKE_QUANT: grid bit-width 2..8 (qmax = 2^(bits−1) − 1); 0 for other kinds */
    int learn;                /* FAKE_QUANT: 1 scales learned (LSQ), 0 they follow the data; 0 for other kinds */
    int group;                /* FAKE_QUANT on the weight: 0 a scale per output channel; g > 0 one per g consecutive
                                 inputs of a channel (ZeroQuant's group-wise weights; g divides K) */
    int per_token;            /* FAKE_QUANT on the input: 1 a scale per row (token), max |x_row| / qmax recomputed
                                 at every forward, never learned (ZeroQuant's dynamic activations); 0 one per tensor */
    int aux[PARE_TF_MAX_AUX]; /* indices into m->params, -1 unused. MASK: aux[0] the mask (N,K), not trainable.
                                 FAKE_QUANT: aux[0] log-scales, (N) per output channel (N·K/group with group)
                                 on the weight, (1) per tensor on the input (unused per token); trainable iff
                                 learn.
                                 HEAD_GATE: aux[0] log α (H), trainable; aux[1] the gate's state (H + 2), not
                                 trainable: [0] λ, the L0 penalty's weight, [1] the gates' learning rate
                                 (both read by the training hooks of compress/prune/heads.h), [2..H+2) the
                                 noise u of the last training forward.
                                 QUANT_NOISE (bits 8 or 4: scalar per channel, 0: pq; group: the block of inputs):
                                 aux[0] its state (4 + N·K/group), not trainable: [0] p, [1] pq's codebook refresh
                                 period, [2] training forwards so far, [3] blocks quantized by the last one,
                                 [4..) its mask; aux[1] pq's codebook (k, group), not trainable (-1 for int) */
} pare_transform;

typedef struct pare_node {
    pare_op_id op;
    char name[PARE_NAME_MAX];
    int in[PARE_NODE_MAX_IN], nin;        /* value ids */
    int param[PARE_NODE_MAX_PARAMS], nparam;
    int cache[PARE_NODE_MAX_CACHE], ncache;
    int out;                               /* value id */
    pare_node_attrs a;
    pare_transform tf[PARE_NODE_MAX_TF];   /* LINEAR: weight transforms (transform.h), tf[0..ntf) in use */
    int ntf;
    /* Column views: input k is read as its columns [in_col[k], in_col[k] + width) (width: what the op reads,
     * C for the attention ops), so the fused QKV projection's (B·T, 3C) output feeds q, k and v without
     * copies. Only HEAD_SPLIT (in[0]) and the strided BMM_QK (in[0], in[1]) and BMM_PV (in[1]) honour it; 0
     * for every other input (pare_model_check). */
    int64_t in_col[PARE_NODE_MAX_IN];
} pare_node;

/* What the amp pass did (compress/amp/amp.h, docs/amp.md), for m:info(); zero for a model it never saw. Casts:
 * `boundaries` category boundaries its placement crossed (a value of one dtype read where another is wanted),
 * of which `folded` vanished into producers writing the wanted dtype (a LayerNorm writing bf16, a Linear f32),
 * `absorbed` into consumers converting inside (a bf16 Linear rounding an f32 input), and `casts` became cast
 * nodes. report: the same in words, with each op's category. */
typedef struct pare_amp_info {
    int boundaries, folded, absorbed, casts;
    char report[1024];
} pare_amp_info;

typedef struct pare_model {
    char kind[16];      /* "encoder" | "decoder" | "tagger" | "encdec" */
    int64_t vocab, max_T, C, H, L, F, nclass;
    int64_t src_vocab, src_max_T; /* encdec: the source vocabulary and longest source; 0 for other models */
    int64_t nvalues, nnodes, nparams;
    pare_value *values;
    pare_node *nodes;
    pare_param *params;
    int64_t cap_values, cap_nodes, cap_params;
    int tokens, lengths, labels; /* input value ids */
    int types;                   /* the token-types input's value id, -1 for models without one */
    int src_tokens, src_lengths; /* encdec: the source inputs' value ids, -1 for models without a source */
    int logits, loss;            /* value ids of the head's logits and per-row losses */
    int lm;                      /* 1: logits per token (B·T, V); 0: per sequence (B, nclass) */
    char applied[256];           /* passes applied so far, "dynamic_int8(...)", for tables */
    char config[2048];           /* the builder's resolved options as a JSON object, every key of its
                                    schema ({"kind": "encoder", "vocab": 12, "dropout": 0, ...}); ""
                                    for graphs built by hand. Checkpoints rebuild the model from it. */
    pare_amp_info amp;           /* the amp pass's summary (zero: not applied); clones copy it */
} pare_model;

pare_model *pare_model_new(const char *kind);
void pare_model_free(pare_model *m); /* safe with NULL */
/* A copy of the graph whose parameters share their f32 blobs with m (copy-on-write by passes); kind,
 * applied and config are copied with it. */
pare_model *pare_model_clone(const pare_model *m);

/* Builders: return the new value id (or param index), -1 on failure with the message kept. */
int pare_model_add_input(pare_model *m, pare_value_kind kind, const char *name);
int pare_model_add_param(pare_model *m, const char *name, int ndim, const int64_t *shape, int trainable);
int pare_model_add_value(pare_model *m, const char *name, pare_value_kind kind, pare_rows rows, int64_t cols,
                         pare_dtype dtype);
/* Appends a node; creates its output value (rows, cols) of the dtype the op produces, and the caches the op
 * requires. Refuses (-1, PARE_EINVAL, nothing appended) an input id that is not a value of the model, more
 * inputs than the op takes, or an input of a dtype the op does not accept:
 *     "node enc.0.ffn.up (op linear): input 0 'enc.0.ln2.bf16' is bf16, but linear accepts f32 there (it
 *      has no bf16 kernel: convert the value with a cast node, pare_model_add_cast)" */
/* An ATTENTION node takes a reference of attrs.attn (the caller keeps its own); the model releases it
 * when freed. */
int pare_model_add_node(pare_model *m, pare_op_id op, const char *name, const int *in, int nin, const int *params,
                        int nparam, pare_rows rows, int64_t cols, pare_node_attrs attrs);
/* A CAST node named `name` converting value `value` (f32, bf16 or f16) to dtype (f32, bf16 or f16), round to
 * nearest even; the output has the value's rows and cols. Its backward adds into the input's (f32)
 * gradient the output's gradient rounded to the input's dtype. Returns the output's value id, -1 and a
 * message naming the node otherwise (an integer value or dtype: int8 needs a scale, a quantization
 * format, not a cast). */
int pare_model_add_cast(pare_model *m, const char *name, int value, pare_dtype dtype);
/* Recompute every value's keep (token pruning) in node order, by the rule pare_model_add_node applies: a
 * TOKEN_SELECT / TOKEN_LENGTHS output has its node's a.keep; any other node's token-row output (and its
 * token-row caches) the keep of its first input with token rows. A rewrite that rewires inputs calls it
 * before pare_model_check. */
void pare_model_refresh_keep(pare_model *m);
/* Check every node of m: its inputs are values of the model of dtypes its op accepts, its output has the
 * dtype the op produces and its caches those the op declares. PARE_OK, or PARE_EINVAL with a message
 * naming the first node that does not fit (as pare_model_add_node's). Runs over the graph once, never
 * per forward: call it after rewriting a graph or loading one. */
pare_status pare_model_check_dtypes(const pare_model *m);

int pare_model_find_param(const pare_model *m, const char *name);
int pare_model_find_node(const pare_model *m, const char *name);

/* ---- losses and targets (graph/loss.c) ----
 * A target is an f32 input (rows × cols) bound per batch: soft labels, a teacher's logits or hidden
 * states captured by pare_exec_value. A loss node compares two f32 values of one shape, each a node's
 * output (which then receives a gradient) or a target; the executor's total loss is the weighted sum
 * of every loss node's term, cross-entropy included (exec.h).
 *
 *     int t = pare_model_add_target(m, "teacher.head", PARE_ROWS_SEQS, m->nclass);
 *     int l = pare_model_add_loss(m, PARE_OP_KLDIV, "distill.kl", m->logits, t, 0.5f, 2.0f);
 *     m->nodes[m->values[m->loss].producer].a.weight = 0.5f;   // the hard loss: α = 0.5
 */
/* A target input named `name` of rows × cols f32; returns its value id, -1 + message on a used name. */
int pare_model_add_target(pare_model *m, const char *name, pare_rows rows, int64_t cols);
/* A loss node op ∈ {MSE, KLDIV, KLDIV_REV, COSINE, SOFT_XENT} over values a (the prediction: student logits
 * for KLDIV, KLDIV_REV and SOFT_XENT) and b (the target: logits for the KLs, probabilities for SOFT_XENT);
 * both f32 node outputs or targets of the same rows and cols. Token rows get the model's lengths as a mask.
 * weight finite; temperature > 0 (the KLs; ignored by the others). Returns the loss's (1, 1) value id, -1 and a
 * message on bad arguments (a backward cache as input: capture it from a teacher and bind it as a target
 * instead, since caches carry no gradient). */
int pare_model_add_loss(pare_model *m, pare_op_id op, const char *name, int a, int b, float weight, float temperature);
/* A regression model (the builder's head=regression): its loss m->loss is an MSE node comparing its logits
 * (B, 1) with a target input of (B, 1), the example's score, bound per batch like the labels. Returns that
 * target's value id, -1 for a model whose loss is a cross-entropy (classification, LM). */
int pare_model_regression_target(const pare_model *m);
/* Value id by name (node outputs are named as their node, caches "<node>#<suffix>"), or -1. */
int pare_model_find_value(const pare_model *m, const char *name);
/* Drop everything appended after the first nnodes nodes, nvalues values and nparams parameters (which no
 * earlier node refers to: the graph is straight-line and append-only), freeing dropped parameters. A
 * training run that appends its extra loss terms uses it to give the model back as it was. */
void pare_model_truncate(pare_model *m, int64_t nnodes, int64_t nvalues, int64_t nparams);
/* Make param i's f32 data private to this model (copy if shared): call it before writing the f32
 * data. */
pare_status pare_param_make_private(pare_param *p);
/* Give a Linear weight its quantized form (takes the caller's reference; NULL makes it f32 again). */
void pare_param_set_q(pare_param *p, pare_qlinear *q);
/* Bytes the model's formats hold in packed layouts (int8 weights in oneDNN's layout, made at
 * quantization; reported beside the storage size, not in it). The f32 weights' packed copies belong to
 * inference executors (pare_exec.packed_bytes). */
size_t pare_model_packed_bytes(const pare_model *m);
/* Release p's weights (its reference to the blob and quantized form) and training state; p is left empty.
 * For code that drops parameters from a model (graph/rewrite.c). */
void pare_param_release(pare_param *p);
int64_t pare_param_numel(const pare_param *p);
/* Storage of a parameter in bytes, as its format stores it. */
size_t pare_param_bytes(const pare_param *p);
size_t pare_model_size_bytes(const pare_model *m);
int64_t pare_model_param_count(const pare_model *m);

/* Glob match of a name against a pattern ("enc.*.ffn.*"), fnmatch semantics. */
int pare_name_match(const char *pattern, const char *name);

#endif
