/* amp.c — the `amp` pass: automatic mixed precision by op category (amp.h, docs/amp.md).
 *
 * The placement, on a clone of the model:
 *   1. each node gets its category: the policy's for its op when its name matches `layers` and not `exclude`,
 *      fp32 otherwise; a lower Linear on f32 weights gets the 16-bit storage format (the bf16 pass's
 *      pare_param_set_half); a Linear in another format (int8, blocks, sparse) or under a transform is left
 *      alone and counts as fp32;
 *   2. naive dtypes, in node order: a lower op that has a kernel for the lower dtype L computes (and, where it
 *      can write either, writes) L; a follow op L when every float input is L and it has an L kernel; the rest
 *      f32. Every (value, dtype wanted by a consumer) pair that differs is a category boundary: a cast;
 *   3. folding, to a fixed point: a producer that can write f32 or L (Linear, LayerNorm: a.dtype) and whose value
 *      no consumer wants in L writes f32; a one-input follow op whose output nobody wants in L runs in f32 (its
 *      cast moves to its input, where the producer may fold it in turn); then a LayerNorm whose every consumer
 *      wants L writes L;
 *   4. what is left: a boundary into a consumer that converts inside (a Linear whose format reads the value's
 *      dtype and rounds; a LayerNorm or loss reading 16 bits and widening) is absorbed — unless two or more such
 *      consumers read one value, which then gets one cast node (one rounding instead of several, the same bits);
 *      every other boundary becomes a CAST node right after the value's producer.
 * The graph then passes pare_model_check_dtypes, pare_model_check_formats and pare_model_check.
 *
 * Deliberately not here: the kernels (kernels/nn_half.h, gemm_half.h); training; f16 follow kernels (amp.h).
 */
#include "compress/amp/amp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/format.h"
#include "graph/ops.h"
#include "graph/rewrite.h"

/* ---- the policy table ---- */

static const char *const cat_names[PARE_AMP_CAT_COUNT] = {"lower", "follow", "fp32"};

/* The defaults, by op (PyTorch autocast's lists for CUDA/CPU, INC's bf16 op lists): products lower; elementwise and
 * data movement follow; normalisation, softmax, masks, pooling, losses, embeddings fp32. The embedding (a.dtype) and
 * posadd (follows its input) and the softmaxes (a.dtype, bf16 scores read) have bf16 kernels (nn_half.h) that the
 * policy turns on: embedding=lower writes bf16 wherever a reader wants it, embedding=follow when its table is stored
 * in bf16 (bf16 pass, embeddings = true); softmax=lower writes bf16 probabilities where a reader takes them (none in
 * the unfused graph today: bmm_pv reads f32, so the pass folds them back to f32). */
static const pare_amp_cat defaults[] = {
    [PARE_OP_EMBEDDING] = PARE_AMP_FP32,
    [PARE_OP_POSADD] = PARE_AMP_FP32,        /* the embeddings' sum: the residual stream starts in f32 (follow: bf16) */
    [PARE_OP_LINEAR] = PARE_AMP_LOWER,
    [PARE_OP_LAYERNORM] = PARE_AMP_FP32,
    [PARE_OP_GELU] = PARE_AMP_FOLLOW,
    [PARE_OP_RELU] = PARE_AMP_FOLLOW,
    [PARE_OP_ADD] = PARE_AMP_FOLLOW,
    [PARE_OP_DROPOUT] = PARE_AMP_FOLLOW,
    [PARE_OP_ATTENTION] = PARE_AMP_LOWER,    /* its batched products; softmax inside stays the variant's */
    [PARE_OP_POOL] = PARE_AMP_FP32,
    [PARE_OP_XENT] = PARE_AMP_FP32,
    [PARE_OP_MSE] = PARE_AMP_FP32,
    [PARE_OP_KLDIV] = PARE_AMP_FP32,
    [PARE_OP_COSINE] = PARE_AMP_FP32,
    [PARE_OP_SOFT_XENT] = PARE_AMP_FP32,
    [PARE_OP_CAST] = PARE_AMP_NONE,
    [PARE_OP_TANH] = PARE_AMP_FOLLOW,
    [PARE_OP_CROSS_ATTENTION] = PARE_AMP_LOWER,
    [PARE_OP_TT_LINEAR] = PARE_AMP_LOWER,
    [PARE_OP_TOKEN_SELECT] = PARE_AMP_FOLLOW, /* a gather */
    [PARE_OP_TOKEN_LENGTHS] = PARE_AMP_FP32,  /* integers */
    [PARE_OP_KLDIV_REV] = PARE_AMP_FP32,
    [PARE_OP_HEAD_SPLIT] = PARE_AMP_FOLLOW,
    [PARE_OP_HEAD_MERGE] = PARE_AMP_FOLLOW,
    [PARE_OP_BMM_QK] = PARE_AMP_LOWER,
    [PARE_OP_BMM_PV] = PARE_AMP_LOWER,
    [PARE_OP_DIV] = PARE_AMP_FOLLOW,
    [PARE_OP_MASK_ADD] = PARE_AMP_FP32,      /* −FLT_MAX is not a bf16-safe mask; it feeds the softmax */
    [PARE_OP_SOFTMAX] = PARE_AMP_FP32,
    [PARE_OP_MASKED_SOFTMAX] = PARE_AMP_FP32,
    [PARE_OP_ADD_LAYERNORM] = PARE_AMP_FP32,
    [PARE_OP_TP_COPY] = PARE_AMP_FP32,       /* tensor parallelism's all-reduces move f32 */
    [PARE_OP_TP_REDUCE] = PARE_AMP_FP32,
};
_Static_assert(sizeof defaults / sizeof defaults[0] == PARE_OP_COUNT, "amp policy defaults out of date with pare_op_id");

const char *pare_amp_cat_name(pare_amp_cat c) { return (unsigned)c < PARE_AMP_CAT_COUNT ? cat_names[c] : "-"; }

void pare_amp_policy_default(pare_amp_cat pol[PARE_OP_COUNT]) { memcpy(pol, defaults, sizeof defaults); }

static void op_list(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < PARE_OP_COUNT && used < n; i++)
        if (defaults[i] != PARE_AMP_NONE) used += (size_t)snprintf(buf + used, n - used, used ? ", %s" : "%s", pare_op_name(i));
}

pare_status pare_amp_policy_parse(pare_amp_cat pol[PARE_OP_COUNT], const char *edits)
{
    pare_amp_cat tmp[PARE_OP_COUNT];
    memcpy(tmp, pol, sizeof tmp);
    const char *p = edits ? edits : "";
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *end = p;
        while (*end && *end != ',') end++;
        char item[96];
        size_t len = (size_t)(end - p) < sizeof item - 1 ? (size_t)(end - p) : sizeof item - 1;
        memcpy(item, p, len);
        item[len] = '\0';
        while (len && isspace((unsigned char)item[len - 1])) item[--len] = '\0';
        p = end;
        char *eq = strchr(item, '=');
        if (!eq) return pare_fail(PARE_EINVAL, "amp policy: '%s' is not op=category (e.g. gelu=fp32; categories: lower, follow, fp32)", item);
        *eq = '\0';
        char *op = item, *cat = eq + 1;
        for (size_t k = strlen(op); k && isspace((unsigned char)op[k - 1]);) op[--k] = '\0';
        while (isspace((unsigned char)*cat)) cat++;
        int id = -1, c = -1;
        for (int i = 0; i < PARE_OP_COUNT; i++)
            if (!strcmp(pare_op_name(i), op)) id = i;
        if (id < 0 || defaults[id] == PARE_AMP_NONE) {
            char list[1024];
            op_list(list, sizeof list);
            return pare_fail(PARE_EINVAL, "amp policy: '%s' is not an op with a category%s (valid: %s)", op,
                             id >= 0 ? " (a cast converts; amp places the casts)" : "", list);
        }
        for (int k = 0; k < PARE_AMP_CAT_COUNT; k++)
            if (!strcmp(cat_names[k], cat)) c = k;
        if (c < 0) return pare_fail(PARE_EINVAL, "amp policy: %s=%s: category '%s' is not one of lower, follow, fp32", op, cat, cat);
        tmp[id] = (pare_amp_cat)c;
    }
    memcpy(pol, tmp, sizeof tmp);
    return PARE_OK;
}

/* ---- the pass ---- */

static const pare_opt_spec opts[] = {
    {"dtype", PARE_OPT_ENUM, "bf16", 0, 0, "bf16|f16", "the lower dtype (f16: Linears in f16, the follow ops stay f32: no f16 kernels)"},
    {"policy", PARE_OPT_STRING, "", 0, 0, NULL, "edits of the default categories, \"op=lower|follow|fp32, ...\" (Lua: a table {gelu = \"fp32\"})"},
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over node names the policy applies to; other nodes stay fp32"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of node names to keep in fp32 (\"\": none)"},
};
static const pare_schema schema = {"amp", "automatic mixed precision: ops run in bf16 (lower), their input's dtype (follow) or "
                                   "f32 (fp32) by a policy table; casts placed and folded by the pass",
                                   opts, (int)(sizeof opts / sizeof opts[0])};

typedef struct amp_ctx {
    pare_model *m;
    pare_dtype L;
    pare_amp_cat *cat;   /* (nnodes) effective category */
    int *kernel;         /* (nnodes) lower: 1 if the op computes in L */
    pare_dtype *out;     /* (nnodes) the output's dtype being placed */
    int *fixed_f32;      /* (nnodes) follow ops moved to f32 by folding: they stay there */
    int *flex;           /* (nnodes) 1: the node can write f32 or L (a.dtype), from is_flexible */
} amp_ctx;

static int is_float(pare_dtype t) { return pare_dtype_is_float(t); }

/* the dtype value v holds under the placement */
static pare_dtype vdt(const amp_ctx *c, int v)
{
    const pare_value *val = &c->m->values[v];
    return val->kind == PARE_VAL_ACT && val->producer >= 0 ? c->out[val->producer] : val->dtype;
}

/* can node i write either f32 or L (a.dtype)? (the nodes as they were before casts were inserted) */
static int flexible(const amp_ctx *c, int64_t i) { return c->flex[i]; }
static int is_flexible(const amp_ctx *c, int64_t i)
{
    const pare_op_dtypes *d = pare_op_dtypes_of(c->m->nodes[i].op);
    return c->m->nodes[i].op != PARE_OP_CAST && d->out == PARE_OUT_ATTR && (d->attr & PARE_DTYPE_BIT(PARE_F32)) &&
           (d->attr & PARE_DTYPE_BIT(c->L));
}

/* the dtypes node i reads at input k: the weight's format for a Linear's input, else what the node takes (its op's row,
 * less what the row's predicate refuses: an attention variant without a bf16 forward) */
static unsigned reads(const amp_ctx *c, int64_t i, int k)
{
    const pare_node *n = &c->m->nodes[i];
    if (n->op == PARE_OP_LINEAR && k == 0) return pare_format_in_dtypes(&c->m->params[n->param[0]]);
    return pare_node_reads(n, k);
}

/* the dtype node i wants at input k (a float value) */
static pare_dtype want(const amp_ctx *c, int64_t i, int k)
{
    const pare_node *n = &c->m->nodes[i];
    switch (c->cat[i]) {
    case PARE_AMP_LOWER: return c->kernel[i] ? c->L : PARE_F32;
    case PARE_AMP_FOLLOW: return c->out[i];
    case PARE_AMP_FP32: return PARE_F32;
    default: return vdt(c, n->in[k]); /* a cast reads what it is given */
    }
}

/* does node i read dtype t at input k converting inside (lower and fp32 ops whose kernels take t)? */
static int converts(const amp_ctx *c, int64_t i, int k, pare_dtype t)
{
    if (c->cat[i] == PARE_AMP_FOLLOW) return 0;
    return (reads(c, i, k) & PARE_DTYPE_BIT(t)) != 0;
}

/* how many float inputs node i has */
static int float_inputs(const amp_ctx *c, int64_t i)
{
    int k = 0;
    for (int j = 0; j < c->m->nodes[i].nin; j++) k += is_float(c->m->values[c->m->nodes[i].in[j]].dtype) ||
                                                       is_float(vdt(c, c->m->nodes[i].in[j]));
    return k;
}

/* Who wants value v in dtype t: counts consumer inputs wanting t; *other those wanting another dtype. The model's
 * logits count as wanting f32 (callers read them as f32). */
static int wanted_in(const amp_ctx *c, int v, pare_dtype t, int *other)
{
    int n = 0, o = 0;
    for (int64_t j = 0; j < c->m->nnodes; j++)
        for (int k = 0; k < c->m->nodes[j].nin; k++)
            if (c->m->nodes[j].in[k] == v) (*(want(c, j, k) == t ? &n : &o))++;
    if (v == c->m->logits || v == c->m->loss) (*(t == PARE_F32 ? &n : &o))++;
    if (other) *other = o;
    return n;
}

/* a follow op's dtype: L if it has an L kernel at every float input and every one is L (and folding has not moved
 * it to f32), else f32; an embedding follows its table (L when the bf16 pass's `embeddings` stored it in L) */
static pare_dtype follow_dtype(const amp_ctx *c, int64_t i)
{
    const pare_node *n = &c->m->nodes[i];
    const pare_op_dtypes *d = pare_op_dtypes_of(n->op);
    if (n->op == PARE_OP_EMBEDDING && !c->fixed_f32[i]) { /* its one float input is its table: L when stored in L */
        const pare_param *t = &c->m->params[n->param[0]];
        return t->format == PARE_FMT_HALF && t->q->hw.dtype == c->L ? c->L : PARE_F32;
    }
    if (c->fixed_f32[i] || d->out != PARE_OUT_IN0) return d->out == PARE_OUT_IN0 || d->out < 0 ? PARE_F32 : (pare_dtype)d->out;
    int any = 0;
    for (int k = 0; k < n->nin; k++) {
        pare_dtype t = vdt(c, n->in[k]);
        if (!is_float(t)) continue;
        if (t != c->L || !(d->in[k] & PARE_DTYPE_BIT(c->L))) return PARE_F32;
        any = 1;
    }
    return any ? c->L : PARE_F32;
}

/* the output dtype of a non-follow node i in the naive placement */
static pare_dtype naive_out(const amp_ctx *c, int64_t i)
{
    const pare_node *n = &c->m->nodes[i];
    const pare_op_dtypes *d = pare_op_dtypes_of(n->op);
    if (c->cat[i] == PARE_AMP_NONE) return n->a.dtype;
    if (flexible(c, i)) return c->cat[i] == PARE_AMP_LOWER && c->kernel[i] ? c->L : PARE_F32;
    if (d->out == PARE_OUT_IN0) return c->cat[i] == PARE_AMP_LOWER && c->kernel[i] ? c->L : PARE_F32;
    if (d->out == PARE_OUT_ATTR) return n->a.dtype;
    return (pare_dtype)d->out;
}

/* (value, dtype) pairs where a consumer wants another dtype than the value holds: the boundaries */
typedef struct boundary {
    int v;
    pare_dtype t;
    int readers, converting; /* consumer inputs wanting t; of which convert inside */
} boundary;

static int collect(const amp_ctx *c, boundary *b, int cap)
{
    int nb = 0;
    for (int64_t j = 0; j < c->m->nnodes; j++)
        for (int k = 0; k < c->m->nodes[j].nin; k++) {
            int v = c->m->nodes[j].in[k];
            pare_dtype have = vdt(c, v), w = want(c, j, k);
            if (!is_float(have) || have == w) continue;
            int f = 0;
            while (f < nb && !(b[f].v == v && b[f].t == w)) f++;
            if (f == nb) {
                if (nb == cap) continue; /* cap = every node input: unreachable */
                b[nb++] = (boundary){v, w, 0, 0};
            }
            b[f].readers++;
            b[f].converting += converts(c, j, k, have);
        }
    return nb;
}

/* "ops: linear=lower (14, 12 in bf16), attention=lower (2, f32: no bf16 kernel), gelu=follow (2, 2 in bf16), ..." */
static void ops_summary(const amp_ctx *c, const pare_amp_cat *pol, char *buf, size_t n)
{
    size_t u = (size_t)snprintf(buf, n, "ops:");
    for (int op = 0; op < PARE_OP_COUNT && u < n; op++) {
        int cnt = 0, low = 0, nokernel = 0;
        for (int64_t i = 0; i < c->m->nnodes; i++) {
            if (c->m->nodes[i].op != (pare_op_id)op) continue;
            cnt++;
            pare_dtype comp = c->cat[i] == PARE_AMP_LOWER ? (c->kernel[i] ? c->L : PARE_F32)
                            : c->cat[i] == PARE_AMP_FOLLOW ? c->out[i] : PARE_F32;
            low += comp == c->L;
            nokernel += c->cat[i] == PARE_AMP_LOWER && !c->kernel[i];
        }
        if (!cnt || pol[op] == PARE_AMP_NONE) continue;
        if (nokernel && !low)
            u += (size_t)snprintf(buf + u, n - u, " %s=%s (%d, %s: no %s kernel),", pare_op_name(op), pare_amp_cat_name(pol[op]),
                                  cnt, "f32", pare_dtype_name(c->L));
        else
            u += (size_t)snprintf(buf + u, n - u, " %s=%s (%d, %d in %s),", pare_op_name(op), pare_amp_cat_name(pol[op]), cnt,
                                  low, pare_dtype_name(c->L));
    }
    if (u < n && u > 0 && buf[u - 1] == ',') buf[u - 1] = '\0';
}

static pare_status amp_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *pctx)
{
    (void)pctx;
    pare_amp_cat pol[PARE_OP_COUNT];
    pare_amp_policy_default(pol);
    PARE_TRY(pare_amp_policy_parse(pol, pare_opt_str(o, "policy")));
    pare_dtype L;
    PARE_TRY(pare_dtype_parse(pare_opt_str(o, "dtype"), &L));
    const char *layers = pare_opt_str(o, "layers"), *exclude = pare_opt_str(o, "exclude");
    const int64_t N = m->nnodes;
    amp_ctx c = {.m = m, .L = L};
    c.cat = calloc((size_t)N + 1, sizeof *c.cat);
    c.kernel = calloc((size_t)N + 1, sizeof *c.kernel);
    c.out = calloc((size_t)N + 1, sizeof *c.out);
    c.fixed_f32 = calloc((size_t)N + 1, sizeof *c.fixed_f32);
    c.flex = calloc((size_t)N + 1, sizeof *c.flex);
    const int cap = (int)(N * PARE_NODE_MAX_IN + 1);
    boundary *b = calloc((size_t)cap, sizeof *b);
    int *cast_of = NULL;
    char *names = NULL; /* (N, PARE_NAME_MAX) the nodes' names: insertions move the nodes, names stay */
    pare_status st = PARE_OK;
    if (!c.cat || !c.kernel || !c.out || !c.fixed_f32 || !c.flex || !b) {
        st = pare_fail(PARE_ENOMEM, "amp: out of memory");
        goto done;
    }
    int matched = 0, left_alone = 0, converted = 0;
    /* 1. categories; lower Linears into the 16-bit format */
    for (int64_t i = 0; i < N; i++) {
        pare_node *n = &m->nodes[i];
        int in_scope = pare_name_match(layers, n->name) && !(*exclude && pare_name_match(exclude, n->name));
        matched += in_scope;
        c.cat[i] = pol[n->op] == PARE_AMP_NONE ? PARE_AMP_NONE : in_scope ? pol[n->op] : PARE_AMP_FP32;
        if (c.cat[i] != PARE_AMP_LOWER) continue;
        if (n->op == PARE_OP_LINEAR) {
            pare_param *w = &m->params[n->param[0]];
            if (w->format == PARE_FMT_F32 && !n->ntf) {
                if ((st = pare_param_set_half(w, L, "amp")) != PARE_OK) {
                    st = pare_fail_ctx(st, "amp: layer %s", n->name);
                    goto done;
                }
                converted++;
            } else if (!(w->format == PARE_FMT_HALF && w->q->hw.dtype == L)) {
                c.cat[i] = PARE_AMP_FP32; /* int8, blocks, sparse, simulated, another 16-bit dtype, transforms */
                left_alone++;
                continue;
            }
        }
        c.kernel[i] = 1;
        for (int k = 0; k < n->nin; k++)
            if (is_float(m->values[n->in[k]].dtype) && !(reads(&c, i, k) & PARE_DTYPE_BIT(L))) c.kernel[i] = 0;
    }
    if (!matched) {
        st = pare_fail(PARE_EINVAL, "amp: layers='%s'%s%s%s matches no node", layers, *exclude ? " exclude='" : "", exclude,
                       *exclude ? "'" : "");
        goto done;
    }
    /* 2. naive placement */
    for (int64_t i = 0; i < N; i++) c.flex[i] = is_flexible(&c, i);
    for (int64_t i = 0; i < N; i++) c.out[i] = c.cat[i] == PARE_AMP_FOLLOW ? follow_dtype(&c, i) : naive_out(&c, i);
    const int boundaries = collect(&c, b, cap);
    /* 3. folding to a fixed point (each step only moves an output from L to f32: it ends) */
    for (int changed = 1; changed;) {
        changed = 0;
        for (int64_t i = N - 1; i >= 0; i--) {
            if (c.out[i] != L || c.cat[i] == PARE_AMP_NONE) continue;
            int fold = flexible(&c, i) || (c.cat[i] == PARE_AMP_FOLLOW && float_inputs(&c, i) == 1);
            if (!fold || wanted_in(&c, m->nodes[i].out, L, NULL)) continue;
            c.out[i] = PARE_F32;
            if (c.cat[i] == PARE_AMP_FOLLOW) c.fixed_f32[i] = 1;
            changed = 1;
        }
        for (int64_t i = 0; i < N; i++)
            if (c.cat[i] == PARE_AMP_FOLLOW && c.out[i] == L && follow_dtype(&c, i) != L) c.out[i] = PARE_F32, changed = 1;
    }
    /* ... then producers in f32 whose every reader wants L write L (a LayerNorm before bf16 Linears only) */
    for (int64_t i = 0; i < N; i++) {
        int other;
        if (c.out[i] == PARE_F32 && flexible(&c, i) && wanted_in(&c, m->nodes[i].out, L, &other) && !other) c.out[i] = L;
    }
    /* 4. what is left: absorbed, or cast nodes */
    names = malloc((size_t)N * PARE_NAME_MAX + 1);
    if (!names) {
        st = pare_fail(PARE_ENOMEM, "amp: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < N; i++) memcpy(names + i * PARE_NAME_MAX, m->nodes[i].name, PARE_NAME_MAX);
    int nb = collect(&c, b, cap), absorbed = 0, ncast = 0;
    cast_of = malloc(sizeof *cast_of * (size_t)(nb + 1));
    if (!cast_of) {
        st = pare_fail(PARE_ENOMEM, "amp: out of memory");
        goto done;
    }
    for (int f = 0; f < nb; f++) {
        int all_convert = b[f].converting == b[f].readers;
        cast_of[f] = all_convert && b[f].readers == 1 ? -2 : -1; /* -2 absorbed; -1 a cast node to make (readers that
                                                                    convert inside still read the value as it is) */
        absorbed += cast_of[f] == -2;
    }
    /* each op's category and what its nodes compute in, before casts move the node indices */
    char ops_text[1024];
    ops_summary(&c, pol, ops_text, sizeof ops_text);
    /* which inputs read a cast: recorded by (node name, input) before insertions move the nodes; the casts are
     * inserted while the graph still holds its old dtypes (each insertion checks the graph), rewired, and only then
     * the dtypes are set, by node name */
    typedef struct rewire { char node[PARE_NAME_MAX]; int k, f; } rewire;
    rewire *rw = calloc((size_t)cap, sizeof *rw);
    int nrw = 0;
    if (!rw) {
        st = pare_fail(PARE_ENOMEM, "amp: out of memory");
        goto done;
    }
    for (int64_t j = 0; j < N; j++)
        for (int k = 0; k < m->nodes[j].nin; k++) {
            int v = m->nodes[j].in[k];
            pare_dtype have = vdt(&c, v), w = want(&c, j, k);
            if (!is_float(have) || have == w) continue;
            int f = 0;
            while (f < nb && !(b[f].v == v && b[f].t == w)) f++;
            if (f == nb || cast_of[f] == -2 || (b[f].converting < b[f].readers && converts(&c, j, k, have))) continue;
            snprintf(rw[nrw].node, PARE_NAME_MAX, "%s", m->nodes[j].name);
            rw[nrw].k = k, rw[nrw].f = f, nrw++;
        }
    for (int f = 0; f < nb && st == PARE_OK; f++) {
        if (cast_of[f] != -1) continue;
        const pare_value *v = &m->values[b[f].v];
        char name[PARE_NAME_MAX];
        snprintf(name, sizeof name, "%.*s.%s", PARE_NAME_MAX - 6, v->name, pare_dtype_name(b[f].t));
        int64_t at = v->producer + 1;
        int id = pare_model_insert_node(m, at, PARE_OP_CAST, name, &b[f].v, 1, NULL, 0, v->rows, v->cols,
                                        (pare_node_attrs){.dtype = b[f].t});
        if (id < 0) st = pare_fail_ctx(PARE_EINVAL, "amp: a cast of %s", m->values[b[f].v].name);
        else cast_of[f] = id, ncast++;
    }
    for (int r = 0; r < nrw && st == PARE_OK; r++) {
        int64_t j = pare_model_find_node(m, rw[r].node);
        if (j >= 0) m->nodes[j].in[rw[r].k] = cast_of[rw[r].f];
    }
    free(rw);
    /* the dtypes: the outputs, a.dtype of the flexible nodes, the casts' outputs */
    for (int64_t i = 0; i < N && st == PARE_OK; i++) {
        int64_t j = pare_model_find_node(m, names + i * PARE_NAME_MAX);
        if (j < 0) continue;
        if (flexible(&c, i)) m->nodes[j].a.dtype = c.out[i];
        m->values[m->nodes[j].out].dtype = c.out[i];
    }
    for (int f = 0; f < nb; f++)
        if (cast_of[f] >= 0) m->values[cast_of[f]].dtype = b[f].t;
    if (st != PARE_OK) goto done;
    if ((st = pare_model_check_dtypes(m)) != PARE_OK || (st = pare_model_check_formats(m)) != PARE_OK ||
        (st = pare_model_check(m)) != PARE_OK) {
        st = pare_fail_ctx(st, "amp: the placed graph does not check (a bug of the pass)");
        goto done;
    }
    /* the report */
    pare_amp_info *ai = &m->amp;
    ai->boundaries = boundaries, ai->absorbed = absorbed, ai->casts = ncast;
    ai->folded = boundaries - absorbed - ncast > 0 ? boundaries - absorbed - ncast : 0;
    char head[320];
    snprintf(head, sizeof head, "%s: %d Linears to %s, %d left alone (other formats); casts: %d at category boundaries, "
             "%d folded into producers, %d absorbed by consumers, %d cast nodes; ", pare_dtype_name(L), converted,
             pare_dtype_name(L), left_alone, boundaries, ai->folded, absorbed, ncast);
    size_t hl = strlen(head), ol = strlen(ops_text);
    if (hl + ol + 1 > sizeof ai->report) ol = sizeof ai->report - hl - 1;
    memcpy(ai->report, head, hl), memcpy(ai->report + hl, ops_text, ol), ai->report[hl + ol] = '\0';
done:
    free(c.cat), free(c.kernel), free(c.out), free(c.fixed_f32), free(c.flex), free(b), free(cast_of), free(names);
    return st;
}

const pare_pass pare_pass_amp = {&schema, amp_apply, 0};
