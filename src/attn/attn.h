/* attn.h — every attention variant behind one interface: a registry of variant descriptors, each with
 * its option schema, and one forward/backward calling convention on strided views of q, k, v.
 *
 *     pare_kv kv[] = {{"window", PARE_KV_NUM, 3}, {"random", PARE_KV_NUM, 2}, {"global", PARE_KV_NUM, 2},
 *                     {"block", PARE_KV_NUM, 64}};
 *     pare_attn *a;
 *     PARE_TRY(pare_attn_create(&a, "bigbird", kv, 4, T, H, D, causal));   // validated, pattern built
 *     void *cache = malloc(pare_attn_cache_bytes(a, B)), *work = malloc(pare_attn_work_bytes(a, B));
 *     pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work,
 *                         .work_bytes = pare_attn_work_bytes(a, B),
 *                         .q = qkv, .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .lengths = lengths, .B = B};
 *     PARE_TRY(pare_attn_forward(a, &x));             // out (B·T, C) from the packed qkv (B·T, 3C), no copies
 *     x.dout = dout, x.dq = dqkv, x.dk = dqkv + C, x.dv = dqkv + 2 * C, x.ldd = 3 * C;
 *     PARE_TRY(pare_attn_backward(a, &x));            // adds into dq, dk, dv
 *     pare_attn_free(a);
 *
 * Layout. q, k, v are row-major views of B·T rows with row stride ld (floats): token t of sequence b is
 * row b·T + t, head h its columns [h·D, h·D + D). The graph's packed qkv (B·T, 3C) = [q | k | v] is passed
 * as q = qkv, k = qkv + C, v = qkv + 2C, ld = 3C. out and dout: (B·T, H·D) with row stride ldo; dq, dk,
 * dv: like q, k, v with row stride ldd (they may be the three parts of one packed dqkv).
 *
 * Semantics shared by all variants: scale 1/sqrt(D); lengths (B) or NULL: keys at positions >= lengths[b]
 * are masked, padded queries still attend to the valid keys their pattern allows (as nn.h's attention);
 * causal: key j > query i masked, applied inside each variant's pattern; a query that sees no key gets
 * output 0 (and no gradient). Sparse variants compute only the (query, key) tiles their pattern lists,
 * so their cost scales as the method says, not as T² with a mask.
 *
 * Calls. T, H, D and causal are fixed at creation (the pattern depends on them); B may change per call.
 * The caller owns two buffers: the cache (pare_attn_cache_bytes(a, B)), written by forward and read by
 * backward, and a scratch workspace (pare_attn_work_bytes(a, B): one slot per worker thread). A call
 * runs on as many threads as slots fit in work_bytes, at most B·H and omp_get_max_threads(); (b, h) pairs
 * are distributed over them (OpenMP), and every pair's numbers do not depend on the thread count. Backward ADDS into dq, dk,
 * dv (and dparams), needs the forward's out and cache, and leaves both unchanged.
 *
 * Learned parameters (Linformer's E and F, LSRA's convolution): a variant lists them with param_shapes;
 * the caller keeps them in one array (pare_attn_param_count floats, in the listed order) passed as
 * params, and their gradients in dparams (linformer's E and F, lsra's convolution).
 *
 * bf16. A bf16 q, k, v (q16, k16, v16, row stride ld in elements) runs pare_attn_forward_bf16: both batched
 * products on bf16 operands with f32 accumulation (kernels/attn_half.h), the softmax in f32, P rounded to bf16
 * before P·V, out f32, the same cache as forward (backward runs on the widened values: graph/ops.c). full and
 * the tile engine (flash, block, fixed, longformer, bigbird, longnet) have it; the others refuse
 * (pare_attn_bf16_kinds lists them; docs/mixed-precision.md).
 *
 * Deliberately not here: dropout on attention probabilities, additive biases (ALiBi, relative
 * positions), cross-attention with a different key length, and the graph op that calls this (graph/).
 */
#ifndef PARE_ATTN_H
#define PARE_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"

/* The registry, append-only (the order of listings). */
typedef enum pare_attn_kind {
    PARE_ATTN_FULL = 0,   /* dense softmax attention, the reference */
    PARE_ATTN_FLASH,      /* tiled exact attention with online softmax, O(T) memory */
    PARE_ATTN_BLOCK,      /* BlockBERT: blockwise attention with a per-head block permutation */
    PARE_ATTN_FIXED,      /* Sparse Transformer fixed patterns: local, radius, strided, fixed */
    PARE_ATTN_LONGFORMER, /* sliding window, dilated window, symmetric global tokens */
    PARE_ATTN_BIGBIRD,    /* random + window + global blocks */
    PARE_ATTN_LONGNET,    /* dilated attention over segment lengths × dilation rates */
    PARE_ATTN_LINEAR,     /* linear attention, elu+1 feature map; causal by prefix sums */
    PARE_ATTN_LINFORMER,  /* learned length projections E, F (k × T) of keys and values */
    PARE_ATTN_PERFORMER,  /* FAVOR+ positive orthogonal random features */
    PARE_ATTN_REFORMER,   /* LSH attention: random rotations, buckets, chunks, shared QK */
    PARE_ATTN_AXIAL,      /* rows then columns of a 2-D reshaping */
    PARE_ATTN_LSRA,       /* Lite Transformer: attention heads beside depthwise-convolution heads */
    PARE_ATTN_TOKEN_PRUNE,/* token pruning by attention received (PoWER-BERT), SIMULATED by a key mask (issue 13) */
    PARE_ATTN_KIND_COUNT
} pare_attn_kind;

typedef struct pare_attn pare_attn;
typedef struct pare_attn_variant pare_attn_variant;

/* The tensors of one call. Forward reads q, k, v, lengths, params and writes out, cache (and pairs);
 * backward reads those and dout, and adds into dq, dk, dv, dparams. */
typedef struct pare_attn_args {
    /* outputs */
    float *out;              /* (B·T, H·D), row stride ldo: written by forward, read by backward */
    int64_t ldo;             /* row stride of out and dout (floats) */
    float *dq, *dk, *dv;     /* backward adds into these; (B·T, H·D) views with row stride ldd */
    int64_t ldd;
    float *dparams;          /* backward adds into it (pare_attn_param_count floats); NULL if none */
    void *cache;             /* pare_attn_cache_bytes(a, B) bytes: forward writes, backward reads */
    void *work;              /* scratch of work_bytes >= one slot (see pare_attn_work_bytes) */
    size_t work_bytes;
    int64_t *pairs;          /* optional (NULL): set to the (query, key) scores computed, Σ over b, h */
    /* inputs */
    const float *dout;       /* backward: (B·T, H·D), row stride ldo */
    const float *dprobs;     /* backward, optional (NULL): the loss's gradient w.r.t. the probabilities, laid out
                              * as the cache (B,H,T,T) — a distillation loss on "<node>#att" (TinyBERT's attention
                              * term); only variants with probs_cache accept it */
    const float *q, *k, *v;  /* (B·T, H·D) views, row stride ld; NULL in a bf16 forward */
    const uint16_t *q16, *k16, *v16; /* bf16 forward (pare_attn_forward_bf16): the same views in bf16 (row stride
                              * ld elements); q, k, v are NULL then. NULL otherwise */
    int impl16;              /* bf16 forward: a pare_attn16_impl (kernels/attn_half.h); 0 = the best for this CPU */
    int64_t ld;
    const int32_t *lengths;  /* (B) valid lengths, or NULL (all T) */
    const float *params;     /* learned parameters or NULL if the variant has none */
    int64_t B;
    int i8_p_fixed;          /* int8 forward: 1 P on the fixed grid 1/255, 0 a scale per query row
                              * (kernels/gemm_i8.h pare_attn_p_scale; the node's bmm_i8 = 2 or 1) */
} pare_attn_args;

/* Cost of one call with all lengths = T. pairs counts the (query, key) scores actually computed (for
 * tiled sparse variants: whole tiles, masked entries inside a tile included), so
 * flops ≈ pairs · (4D + softmax) forward. Memory = cache_bytes + slot_bytes · threads (intermediates
 * beyond q, k, v, out and their gradients). */
typedef struct pare_attn_cost {
    int64_t pairs;        /* scores computed per forward, Σ over B·H */
    int64_t flops_fwd;    /* floating-point operations of one forward */
    int64_t flops_bwd;    /* of one backward (recomputation included) */
    size_t cache_bytes;   /* kept from forward to backward */
    size_t slot_bytes;    /* scratch per worker thread (max of forward and backward) */
} pare_attn_cost;

#define PARE_ATTN_MAX_PARAMS 8
typedef struct pare_attn_param {
    char name[32];        /* "E", "F", "conv.weight" */
    int64_t rows, cols;   /* row-major block of the params array */
} pare_attn_param;

/* One variant = one file = one descriptor. Functions marked optional may be NULL. */
struct pare_attn_variant {
    const pare_schema *schema; /* schema->name is the kind ("bigbird"); options with defaults and ranges */
    int can_be_causal;         /* 0: pare_attn_create refuses causal = 1 */
    const char *causal_note;   /* why it cannot be causal, or how causal is applied (errors, docs) */
    /* Validate a->opts against a->T, H, D, causal (messages name the option) and build a->state.
     * On failure it frees what it built. */
    pare_status (*init)(pare_attn *a);
    void (*free)(pare_attn *a); /* optional: frees a->state (default: free(a->state)) */
    pare_status (*forward)(const pare_attn *a, const pare_attn_args *x);
    pare_status (*backward)(const pare_attn *a, const pare_attn_args *x);
    void (*cost)(const pare_attn *a, int64_t B, pare_attn_cost *c);
    /* optional: multiplicity of key j for query i in head h, mask (T,T), before padding (causal
     * included). Default: dense (1 for every visible key). */
    void (*mask)(const pare_attn *a, int64_t h, uint8_t *mask);
    /* optional: learned parameters; returns how many blocks (<= PARE_ATTN_MAX_PARAMS), 0 or NULL = none */
    int (*param_shapes)(const pare_attn *a, pare_attn_param *p);
    /* optional: initial values of params (pare_attn_param_count floats), deterministic by rng */
    void (*param_init)(const pare_attn *a, float *params, pare_rng *rng);
    /* 1: the cache is exactly the attention probabilities (B,H,T,T), masked entries 0 (full). The graph
     * then plans it as a named value ("<node>#att") that distillation can capture. */
    int probs_cache;
    /* optional: inference forward with both batched products on int8 (SmoothQuant, kernels/gemm_i8.h);
     * needs the packed qkv layout (k = q + H·D, v = q + 2·H·D, ld = 3·H·D, ldo = H·D), writes no cache,
     * and its scratch is work_i8_bytes(a, B) in x->work (one block, not slots). */
    pare_status (*forward_i8)(const pare_attn *a, const pare_attn_args *x);
    size_t (*work_i8_bytes)(const pare_attn *a, int64_t B);
    /* optional: forward on a bf16 q, k, v (x->q16, k16, v16; kernels/attn_half.h: bf16 products, f32
     * accumulation, f32 softmax, P rounded to bf16 before P·V), f32 out; writes the same cache as forward
     * (so the f32 backward can follow on the widened q, k, v). Its scratch: slots of slot_bf16_bytes(a) bytes,
     * one per thread (pare_attn_bf16_work_bytes; the thread count follows work_bytes as for forward). */
    pare_status (*forward_bf16)(const pare_attn *a, const pare_attn_args *x);
    size_t (*slot_bf16_bytes)(const pare_attn *a);
};

/* An instance: a variant with validated options for one (T, H, D, causal). */
struct pare_attn {
    const pare_attn_variant *v;
    pare_options opts;    /* resolved against v->schema */
    int64_t T, H, D;
    int causal;
    void *state;          /* the variant's derived state (patterns, random choices) */
};

/* ---- registry ---- */
const pare_attn_variant *pare_attn_find(const char *kind); /* NULL + message listing the valid kinds */
int pare_attn_count(void);
const pare_attn_variant *pare_attn_at(int i);              /* by pare_attn_kind; NULL out of range */
/* "full, flash, block, ..." into buf. */
const char *pare_attn_kinds(char *buf, size_t n);

/* ---- instances ---- */
/* Resolve kv against the kind's schema, check T, H, D >= 1 and causal, and build the variant's state. */
pare_status pare_attn_create(pare_attn **out, const char *kind, const pare_kv *kv, int nkv, int64_t T, int64_t H,
                             int64_t D, int causal);
/* From spec text: "kind" or "kind:key=value,key=value" (e.g. "bigbird:window=3,random=2,global=2,block=16"),
 * for one-off instances (benchmarks, fidelity sweeps). Errors name the option, or list the valid kinds.
 * Models do not use it: they resolve a pare_attn_config once (below). */
pare_status pare_attn_create_spec(pare_attn **out, const char *spec, int64_t T, int64_t H, int64_t D, int causal);
/* The same from options already resolved against v->schema (no parsing). */
pare_status pare_attn_create_opts(pare_attn **out, const pare_attn_variant *v, const pare_options *o, int64_t T,
                                  int64_t H, int64_t D, int causal);
void pare_attn_free(pare_attn *a); /* NULL ok */
const char *pare_attn_name(const pare_attn *a);

/* ---- configurations: a variant with its options resolved, before any (T, H, D) ----
 * What a model keeps on each ATTENTION node (graph.h): made once when the model is built (or a pass
 * changes a node's attention), immutable afterwards and reference-counted, shared by the model, its
 * clones and their executors. Executors make their instance from it for their T with
 * pare_attn_config_instance, which parses nothing (the options are already resolved) and hands out
 * the instance the builder kept (pare_attn_config_keep) when the shape matches, so a model run at its
 * max_T builds each variant's state once.
 *
 * Serializable state: the kind (v->schema->name) and the options the caller gave, as key = value text
 * (pare_optval.str; numbers as the shortest text that reads back as the same double). spec holds
 * exactly that, canonically: "kind" or "kind:key=value,key=value" with the given keys in the schema's
 * order; pare_attn_config_parse(spec) gives back an equal configuration (same kind, same options).
 *
 *     pare_kv kv[] = {{"window", PARE_KV_NUM, 32}};
 *     pare_attn_config *c;
 *     PARE_TRY(pare_attn_config_new(&c, "longformer", kv, 1));   // c->spec = "longformer:window=32"
 *     pare_attn *a; int owned;
 *     PARE_TRY(pare_attn_config_instance(&a, &owned, c, T, H, D, causal));
 *     ...
 *     if (owned) pare_attn_free(a);
 *     pare_attn_config_release(c);
 */
#define PARE_ATTN_SPEC_MAX PARE_OPT_STR_MAX
typedef struct pare_attn_config {
    int refs;                       /* < 0: a static configuration (pare_attn_config_default), never freed */
    const pare_attn_variant *v;     /* the kind */
    pare_options opts;              /* resolved against v->schema; opts.v[i].given marks the caller's keys */
    char spec[PARE_ATTN_SPEC_MAX];  /* canonical text (above): tables, provenance, the model's config JSON */
    pare_attn *kept;                /* an instance at one (T, H, D, causal) (pare_attn_config_keep), or NULL */
} pare_attn_config;

/* Resolve kv against kind's schema (errors name the option and list the valid keys or choices; an
 * unknown kind lists the valid kinds). refs = 1. */
pare_status pare_attn_config_new(pare_attn_config **out, const char *kind, const pare_kv *kv, int nkv);
/* The same from spec text "kind" or "kind:key=value,..." (spec.c); the one place such text is parsed. */
pare_status pare_attn_config_parse(pare_attn_config **out, const char *spec);
/* The built-in dense attention: "full" with no options; static (retain and release do nothing). */
pare_attn_config *pare_attn_config_default(void);
pare_attn_config *pare_attn_config_retain(pare_attn_config *c); /* NULL ok; returns c */
void pare_attn_config_release(pare_attn_config *c);             /* NULL ok; frees at refs 0 */
/* Make an instance at (T, H, D, causal) and keep it in c (replacing none: PARE_EINVAL if one is kept or
 * c is static). Call it while c is still private to its maker (a model builder at max_T). */
pare_status pare_attn_config_keep(pare_attn_config *c, int64_t T, int64_t H, int64_t D, int causal);
/* An instance of c at (T, H, D, causal): the kept one when its shape matches (*owned = 0: do not free
 * it), else a new one (*owned = 1). No text is parsed. */
pare_status pare_attn_config_instance(pare_attn **out, int *owned, const pare_attn_config *c, int64_t T, int64_t H,
                                      int64_t D, int causal);
/* 1 if a and b are the same kind with the same resolved option values (numbers compared as numbers). */
int pare_attn_config_equal(const pare_attn_config *a, const pare_attn_config *b);

/* ---- calls ---- */
size_t pare_attn_cache_bytes(const pare_attn *a, int64_t B);
/* Scratch for forward and backward with one slot per thread the caller's OpenMP would use now
 * (min(B·H, omp_get_max_threads()) slots). */
size_t pare_attn_work_bytes(const pare_attn *a, int64_t B);
/* Check the arguments (PARE_EINVAL naming the field) and run the variant. */
pare_status pare_attn_forward(const pare_attn *a, const pare_attn_args *x);
pare_status pare_attn_backward(const pare_attn *a, const pare_attn_args *x);
void pare_attn_cost_of(const pare_attn *a, int64_t B, pare_attn_cost *c);
/* The int8 inference forward (v->forward_i8): 0 if the variant has none. Its scratch in bytes. */
int pare_attn_has_i8(const pare_attn *a);
size_t pare_attn_i8_work_bytes(const pare_attn *a, int64_t B);
pare_status pare_attn_forward_i8(const pare_attn *a, const pare_attn_args *x);
/* The bf16 forward (v->forward_bf16): 0 if the variant has none. "full, flash, ..." of those that have one.
 * Its scratch in bytes (one slot per thread the caller's OpenMP would use now). pare_attn_forward_bf16 checks
 * the arguments as pare_attn_forward (q16, k16, v16 instead of q, k, v) and refuses a variant without one,
 * naming it and the variants that have one. */
int pare_attn_has_bf16(const pare_attn *a);
int pare_attn_variant_has_bf16(const pare_attn_variant *v);
const char *pare_attn_bf16_kinds(char *buf, size_t n);
size_t pare_attn_bf16_work_bytes(const pare_attn *a, int64_t B);
pare_status pare_attn_forward_bf16(const pare_attn *a, const pare_attn_args *x);
/* The dense (T,T) multiplicity mask of head h (1 = visible; LongNet's overlapping configurations can
 * give 2 or more; padding not applied). For tests and pattern plots; O(T²) memory. */
void pare_attn_mask(const pare_attn *a, int64_t h, uint8_t *mask);

/* ---- learned parameters ---- */
int pare_attn_param_shapes(const pare_attn *a, pare_attn_param *p); /* p: PARE_ATTN_MAX_PARAMS entries */
int64_t pare_attn_param_count(const pare_attn *a);                  /* total floats */
void pare_attn_param_init(const pare_attn *a, float *params, pare_rng *rng);

/* ---- the variants (src/attn/<kind>.c) ---- */
extern const pare_attn_variant pare_attn_full, pare_attn_flash, pare_attn_block, pare_attn_fixed,
    pare_attn_longformer, pare_attn_bigbird, pare_attn_longnet, pare_attn_linear, pare_attn_linformer,
    pare_attn_performer, pare_attn_reformer, pare_attn_axial, pare_attn_lsra,
    pare_attn_token_prune;

/* BigBird's random key blocks of query block qb in head h (written to kb, at most cap); returns their
 * number. For tests and plots; 0 for other kinds. */
int64_t pare_attn_bigbird_random(const pare_attn *a, int64_t h, int64_t qb, int64_t *kb, int64_t cap);

/* ---- helpers for variant files ---- */
/* Valid length of sequence b: clamp(lengths[b], 0, T), T if lengths is NULL. */
static inline int64_t pare_attn_len(const int32_t *lengths, int64_t b, int64_t T)
{
    if (!lengths) return T;
    int64_t L = lengths[b];
    return L < 0 ? 0 : L > T ? T : L;
}
/* Parse a list of integers "2048,4096" (sep ',') or "8:2:2" (sep ':') of option `key` into vals (cap);
 * each must be in [min, max]. PARE_EINVAL naming the kind and option. */
pare_status pare_attn_parse_ints(int64_t *vals, int *n, int cap, const pare_attn *a, const char *key, char sep,
                                 int64_t min, int64_t max);
/* Threads a call may use for work_bytes bytes of slot_bytes each and B·H pairs (>= 1; 0 if too small). */
int pare_attn_threads(size_t work_bytes, size_t slot_bytes, int64_t BH);

#endif
