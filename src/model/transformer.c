/* transformer.c — encoder/decoder graph builders, their option schema, and the config record (the
 * resolved options as JSON in pare_model.config) that checkpoints rebuild a model from. */
#include "transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/rng.h"
#include "kernels/nn.h"

static const pare_opt_spec model_opts[] = {
    {"kind", PARE_OPT_ENUM, "encoder", 0, 0, "encoder|decoder|tagger|encdec",
     "encoder: classify a sequence; decoder: causal LM; tagger: bidirectional encoder with a target per token; "
     "encdec: encoder-decoder (translation: a source sequence in, target tokens out; docs/encoder-decoder.md)"},
    {"vocab", PARE_OPT_INT, NULL, 2, 1e7, NULL, "vocabulary size (token ids in [0, vocab))"},
    {"max_T", PARE_OPT_INT, NULL, 1, 1e6, NULL, "longest sequence the model accepts"},
    {"classes", PARE_OPT_INT, "2", 2, 1e6, NULL, "encoder: number of classes (ignored with head=regression: one output)"},
    {"d", PARE_OPT_INT, "64", 1, 65536, NULL, "model width C"},
    {"heads", PARE_OPT_INT, "4", 1, 1024, NULL, "attention heads H (must divide d)"},
    {"layers", PARE_OPT_INT, "2", 0, 1024, NULL, "transformer blocks L"},
    {"ffn", PARE_OPT_INT, "0", 0, 1e6, NULL, "feed-forward width F (0: 4·d)"},
    {"pos", PARE_OPT_ENUM, "learned", 0, 0, "learned|sinusoidal", "position embedding"},
    {"pool", PARE_OPT_ENUM, "cls", 0, 0, "cls|mean", "encoder: sequence pooling before the head"},
    {"act", PARE_OPT_ENUM, "gelu", 0, 0, "gelu|gelu_erf|relu",
     "feed-forward activation: gelu (tanh approximation, GPT-2's), gelu_erf (exact, BERT's), relu"},
    {"dropout", PARE_OPT_FLOAT, "0", 0, 0.95, NULL, "dropout after attention and feed-forward"},
    {"norm", PARE_OPT_ENUM, "pre", 0, 0, "pre|post",
     "LayerNorm placement: pre (x + f(LN(x)), a final LayerNorm; GPT-2) or post (LN(x + f(x)); BERT)"},
    {"ln_eps", PARE_OPT_FLOAT, "1e-5", 1e-14, 1e-2, NULL, "LayerNorm epsilon (BERT checkpoints: 1e-12)"},
    {"type_vocab", PARE_OPT_INT, "0", 0, 1024, NULL, "token-type (segment) embeddings: 0 none, 2 for BERT's pairs"},
    {"emb_norm", PARE_OPT_BOOL, "false", 0, 0, NULL,
     "a LayerNorm after the summed embeddings (BERT; encdec: on both sides, src.ln and emb.ln, as BART)"},
    {"emb_scale", PARE_OPT_FLOAT, "1", 1e-6, 1e6, NULL,
     "token embeddings are multiplied by this before positions are added (BART's scale_embedding: sqrt(d))"},
    {"pos_offset", PARE_OPT_INT, "0", 0, 1024, NULL,
     "position t reads row t + pos_offset of the position table (RoBERTa: 2)"},
    {"pooler", PARE_OPT_ENUM, "none", 0, 0, "none|tanh|relu",
     "encoder: a dense layer + activation after pooling (BERT's pooler: tanh; DistilBERT's pre-classifier: relu)"},
    {"head", PARE_OPT_ENUM, "linear", 0, 0, "linear|mlm|regression",
     "the output head: linear, mlm (BERT's masked-LM head: dense + activation + LayerNorm before the decoder), or "
     "regression (encoder: one output per sequence, MSE against the example's score, e.g. GLUE's STS-B)"},
    {"tie_head", PARE_OPT_BOOL, "false", 0, 0, NULL,
     "decoder/tagger: the output head's weight is the token embedding table (GPT-2, BERT's MLM decoder)"},
    {"head_bias", PARE_OPT_BOOL, "true", 0, 0, NULL, "the output head has a bias (GPT-2's tied head has none)"},
    {"enc_layers", PARE_OPT_INT, "-1", -1, 1024, NULL, "encdec: encoder blocks (-1: as many as layers, the decoder's)"},
    {"src_vocab", PARE_OPT_INT, "0", 0, 1e7, NULL, "encdec: source vocabulary size (0: vocab)"},
    {"src_max_T", PARE_OPT_INT, "0", 0, 1e6, NULL, "encdec: longest source sequence (0: max_T)"},
    {"share_emb", PARE_OPT_BOOL, "false", 0, 0, NULL,
     "encdec: source and target share one token table (needs src_vocab = vocab)"},
    {"fused", PARE_OPT_BOOL, "true", 0, 0, NULL,
     "true: attention is one op over a fused QKV projection (the graph pare always built); false: the unfused graph, "
     "separate Q, K, V Linears and attention as explicit ops (head split, Q·Kᵀ, div, mask, softmax, P·V, head merge), "
     "which the fuse pass folds back (docs/fusion.md). Dense attention, kinds encoder, decoder and tagger only"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "initialisation seed"},
    {"attention", PARE_OPT_STRING, "", 0, 0, NULL,
     "attention variant per layer: \"kind\" or \"kind:key=value,...\" (pare help <kind>); several separated by ';' "
     "apply to layers 0, 1, ... (the last repeats); \"\": dense attention (the full variant). From Lua also a table "
     "{kind = ..., key = value} or a list of them"},
};
const pare_schema pare_model_schema = {"model", "a BERT-style encoder, GPT-style decoder or Transformer-base encoder-decoder", model_opts,
                                       (int)(sizeof model_opts / sizeof model_opts[0])};

typedef struct builder {
    pare_model *m;
    pare_rng rng;
    int failed;
    float eps; /* LayerNorm ε */
} builder;

static int param(builder *b, const char *node, const char *suffix, int ndim, int64_t d0, int64_t d1, int trainable)
{
    char name[PARE_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.%s", node, suffix);
    int64_t shape[2] = {d0, d1};
    int id = pare_model_add_param(b->m, name, ndim, shape, trainable);
    if (id < 0) b->failed = 1;
    return id;
}

static void init_normal(builder *b, int id, double std)
{
    pare_param *p = &b->m->params[id];
    for (int64_t i = 0; i < pare_param_numel(p); i++) p->blob->data[i] = (float)(std * pare_rng_normal(&b->rng));
}

static void init_const(builder *b, int id, float v)
{
    pare_param *p = &b->m->params[id];
    for (int64_t i = 0; i < pare_param_numel(p); i++) p->blob->data[i] = v;
}

static int node(builder *b, pare_op_id op, const char *name, const int *in, int nin, const int *prm, int nprm,
                pare_rows rows, int64_t cols, pare_node_attrs a)
{
    if (b->failed) return -1;
    int id = pare_model_add_node(b->m, op, name, in, nin, prm, nprm, rows, cols, a);
    if (id < 0) b->failed = 1;
    return id;
}

static int linear(builder *b, const char *name, int x, int64_t K, int64_t N, pare_rows rows, double std)
{
    int w = param(b, name, "weight", 2, N, K, 1), bias = param(b, name, "bias", 1, N, 1, 1);
    if (b->failed) return -1;
    init_normal(b, w, std);
    int prm[2] = {w, bias};
    return node(b, PARE_OP_LINEAR, name, &x, 1, prm, 2, rows, N, (pare_node_attrs){0});
}

static int layernorm_rows(builder *b, const char *name, int x, int64_t C, pare_rows rows);
static int layernorm(builder *b, const char *name, int x, int64_t C) { return layernorm_rows(b, name, x, C, PARE_ROWS_TOKENS); }
static int layernorm_rows(builder *b, const char *name, int x, int64_t C, pare_rows rows)
{
    int w = param(b, name, "weight", 1, C, 1, 1), bias = param(b, name, "bias", 1, C, 1, 1);
    if (b->failed) return -1;
    init_const(b, w, 1.0f);
    int prm[2] = {w, bias};
    /* ε is kept on the node only when it is not the kernels' default, so default models are unchanged */
    pare_node_attrs a = {.eps = b->eps == 1e-5f ? 0.0f : b->eps};
    return node(b, PARE_OP_LAYERNORM, name, &x, 1, prm, 2, rows, C, a);
}

/* Shortest "%.Ng" that reads back as the same double, so configs show 0.1 rather than 0.10000000000000001. */
static void number_text(char *buf, size_t n, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Append text to buf[*used..n); 0 when it does not fit. */
static int append(char *buf, size_t n, size_t *used, const char *text)
{
    size_t len = strlen(text);
    if (*used + len >= n) return 0;
    memcpy(buf + *used, text, len + 1);
    *used += len;
    return 1;
}

static int append_json_string(char *buf, size_t n, size_t *used, const char *s)
{
    int fits = append(buf, n, used, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p && fits; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *p);
        else esc[0] = (char)*p, esc[1] = '\0';
        fits = append(buf, n, used, esc);
    }
    return fits && append(buf, n, used, "\"");
}

/* The resolved options as a JSON object: numbers as numbers, bools as true/false, enums and strings
 * as strings, every key of the schema in schema order. Checkpoints rebuild a model from it. */
static pare_status options_json(char *buf, size_t n, const pare_options *o)
{
    const pare_schema *s = o->schema;
    size_t used = 0;
    int fits = append(buf, n, &used, "{");
    for (int i = 0; i < s->nopts && fits; i++) {
        const pare_optval *v = &o->v[i];
        char num[40];
        fits = (i == 0 || append(buf, n, &used, ", ")) && append_json_string(buf, n, &used, s->opts[i].key) &&
               append(buf, n, &used, ": ");
        if (!fits) break;
        switch (s->opts[i].type) {
        case PARE_OPT_INT:
        case PARE_OPT_FLOAT: number_text(num, sizeof num, v->num), fits = append(buf, n, &used, num); break;
        case PARE_OPT_BOOL: fits = append(buf, n, &used, v->num != 0 ? "true" : "false"); break;
        default: fits = append_json_string(buf, n, &used, v->str); break;
        }
    }
    if (!fits || !append(buf, n, &used, "}"))
        return pare_fail(PARE_EINVAL, "%s: the options do not fit in the model's config record (%zu bytes)", s->name, n);
    return PARE_OK;
}

/* The spec of layer l in "spec0;spec1;..." (the last repeats); "" when none. */
static void layer_attention(char *out, size_t n, const char *specs, int64_t l)
{
    const char *p = specs;
    for (int64_t k = 0; k < l; k++) {
        const char *semi = strchr(p, ';');
        if (!semi) break;
        p = semi + 1;
    }
    size_t len = strcspn(p, ";");
    while (len && (*p == ' ')) p++, len--;
    snprintf(out, n, "%.*s", (int)len, p);
}

/* ---- each layer's attention, resolved once ----
 * cfg[l] (l < L) is layer l's configuration (NULL: the dense default); consecutive equal layers share one
 * object, so a variant is made (and kept) once however many layers repeat it. */
static void release_layers(pare_attn_config **cfg, int64_t L)
{
    for (int64_t l = 0; cfg && l < L; l++) pare_attn_config_release(cfg[l]);
    free(cfg);
}

/* cfg[0..L) from the "spec0;spec1;..." text (the last repeats): the only parsing a model's attention gets.
 * Errors name the layer and the option. */
static pare_status parse_layers(pare_attn_config ***out, const char *specs, int64_t L)
{
    pare_attn_config **cfg = calloc((size_t)(L ? L : 1), sizeof *cfg);
    char prev[PARE_ATTN_SPEC_MAX] = "";
    *out = NULL;
    if (!cfg) return pare_fail(PARE_ENOMEM, "out of memory resolving the attention of %lld layers", (long long)L);
    for (int64_t l = 0; l < L; l++) {
        char spec[sizeof prev];
        layer_attention(spec, sizeof spec, specs, l);
        if (!spec[0]) continue;
        if (l > 0 && cfg[l - 1] && !strcmp(spec, prev)) {
            cfg[l] = pare_attn_config_retain(cfg[l - 1]);
            continue;
        }
        pare_status st = pare_attn_config_parse(&cfg[l], spec);
        if (st != PARE_OK) {
            release_layers(cfg, L);
            return pare_fail_ctx(st, "attention of layer %lld", (long long)l);
        }
        memcpy(prev, spec, sizeof prev);
    }
    *out = cfg;
    return PARE_OK;
}

/* cfg[0..L) from given configurations (the last repeats; NULL: dense), each taking a reference; a layer
 * equal to the previous one shares its object. */
static pare_status expand_layers(pare_attn_config ***out, pare_attn_config *const *given, int n, int64_t L)
{
    pare_attn_config **cfg = calloc((size_t)(L ? L : 1), sizeof *cfg);
    *out = NULL;
    if (!cfg) return pare_fail(PARE_ENOMEM, "out of memory resolving the attention of %lld layers", (long long)L);
    for (int64_t l = 0; l < L; l++) {
        pare_attn_config *c = n > 0 ? given[l < n ? l : n - 1] : NULL;
        if (l > 0 && c && cfg[l - 1] && pare_attn_config_equal(c, cfg[l - 1])) c = cfg[l - 1];
        cfg[l] = pare_attn_config_retain(c);
    }
    *out = cfg;
    return PARE_OK;
}

/* Every layer's attention must make a variant at max_T (errors name the layer and the option). keep: the
 * builder's configurations keep that instance (pare_attn_config_keep) for the executors that run at max_T
 * and for the parameters' initialisation. *params (may be NULL): the learned attention parameters of all
 * layers, in floats, saturating at INT64_MAX. */
static pare_status check_layers(pare_attn_config **cfg, int64_t L, int64_t T, int64_t H, int64_t D, int causal,
                                int keep, int64_t *params)
{
    int64_t count = 0, total = 0;
    for (int64_t l = 0; l < L; l++) {
        if (!cfg[l]) continue;
        if (l == 0 || cfg[l] != cfg[l - 1]) {
            pare_attn *a = NULL;
            int owned = 0;
            pare_status st;
            if (keep && !cfg[l]->kept && cfg[l]->refs > 0) {
                st = pare_attn_config_keep(cfg[l], T, H, D, causal);
                a = cfg[l]->kept;
            } else st = pare_attn_config_instance(&a, &owned, cfg[l], T, H, D, causal);
            count = st == PARE_OK ? pare_attn_param_count(a) : 0;
            if (owned) pare_attn_free(a);
            if (st != PARE_OK) return pare_fail_ctx(st, "attention of layer %lld", (long long)l);
        }
        if (__builtin_add_overflow(total, count, &total)) total = INT64_MAX;
    }
    if (params) *params = total;
    return PARE_OK;
}

/* The canonical "spec0;spec1;..." of cfg[0..L), trailing repeats dropped (the last repeats), into buf. */
static pare_status layers_text(char *buf, size_t n, pare_attn_config **cfg, int64_t L)
{
    int64_t last = L - 1;
    while (last > 0 && pare_attn_config_equal(cfg[last], cfg[last - 1])) last--;
    size_t used = 0;
    buf[0] = 0;
    for (int64_t l = 0; l <= last; l++)
        used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s%s", l ? ";" : "", cfg[l] ? cfg[l]->spec : "");
    if (used >= n)
        return pare_fail(PARE_EINVAL, "model: the attention of the layers does not fit in the model's config (%zu bytes "
                         "of text, at most %zu)", used, n - 1);
    return PARE_OK;
}

/* a + b·c, saturating at INT64_MAX (parameter counts of configs nobody could allocate) */
static int64_t add_mul(int64_t a, int64_t b, int64_t c)
{
    int64_t p;
    if (__builtin_mul_overflow(b, c, &p) || __builtin_add_overflow(a, p, &p)) return INT64_MAX;
    return p;
}

/* The token embeddings' scale as a node attribute: 0 (none) for 1, so default models are unchanged. */
static float emb_scale_attr(const pare_options *o)
{
    double s = pare_opt_num(o, "emb_scale");
    return s == 1.0 ? 0.0f : (float)s;
}

/* ---- encoder-decoder (kind=encdec; docs/encoder-decoder.md) ----
 * Transformer-base's layout (Vaswani et al. 2017, Figure 1) with pre-LN blocks as the other kinds:
 *     src.tok + src.pos  -> enc.0 .. enc.{EL-1} (bidirectional self-attention over the source, src_lengths)
 *                        -> enc.ln_f                                               (the memory, B·S rows)
 *     emb.tok + emb.pos  -> dec.0 .. dec.{L-1}: causal self-attention, then cross-attention
 *                           (dec.i.xattn.ln -> xattn.q; memory -> xattn.kv, once per layer; xattn; xattn.out),
 *                           then the feed-forward -> ln_f -> head (per target token) -> loss
 * BART's layout is the same graph with options: norm=post (each LayerNorm after its residual add, and no
 * enc.ln_f / ln_f), emb_norm (src.ln, emb.ln after the positions), emb_scale (√C on the token rows),
 * pos_offset 2, share_emb + tie_head + head_bias (final_logits_bias).
 * Deliberately not here: attention variants (the source and the target both run dense), token types,
 * T5's relative position buckets. */
typedef struct encdec_dims {
    int64_t V, SV, Tm, Sm, C, H, L, EL, F, poff;
    int share, tie, head_bias;
    int post, emb_norm; /* norm=post (BART: LN after each residual add, no final LayerNorms); src.ln, emb.ln */
} encdec_dims;

static pare_status encdec_dims_of(encdec_dims *d, const pare_options *o)
{
    d->V = pare_opt_int(o, "vocab"), d->Tm = pare_opt_int(o, "max_T"), d->C = pare_opt_int(o, "d");
    d->H = pare_opt_int(o, "heads"), d->L = pare_opt_int(o, "layers"), d->F = pare_opt_int(o, "ffn");
    d->EL = pare_opt_int(o, "enc_layers"), d->SV = pare_opt_int(o, "src_vocab"), d->Sm = pare_opt_int(o, "src_max_T");
    d->poff = pare_opt_int(o, "pos_offset");
    d->share = pare_opt_bool(o, "share_emb"), d->tie = pare_opt_bool(o, "tie_head"), d->head_bias = pare_opt_bool(o, "head_bias");
    if (d->F == 0) d->F = 4 * d->C;
    if (d->EL < 0) d->EL = d->L;
    if (d->SV == 0) d->SV = d->V;
    if (d->Sm == 0) d->Sm = d->Tm;
    if (d->C % d->H != 0)
        return pare_fail(PARE_EINVAL, "model: heads=%lld does not divide d=%lld (choose heads among the divisors of d)",
                         (long long)d->H, (long long)d->C);
    if (d->share && d->SV != d->V)
        return pare_fail(PARE_EINVAL, "model: share_emb=true needs src_vocab = vocab (got src_vocab=%lld, vocab=%lld)",
                         (long long)d->SV, (long long)d->V);
    if (d->SV < 2) return pare_fail(PARE_EINVAL, "model: src_vocab=%lld: must be >= 2 (0: vocab)", (long long)d->SV);
    d->post = !strcmp(pare_opt_str(o, "norm"), "post"), d->emb_norm = pare_opt_bool(o, "emb_norm");
    const char *bad = pare_opt_int(o, "type_vocab") != 0          ? "type_vocab (only 0)"
                      : strcmp(pare_opt_str(o, "pooler"), "none")   ? "pooler (only none)"
                      : strcmp(pare_opt_str(o, "head"), "linear")   ? "head (only linear)"
                      : pare_opt_str(o, "attention")[0]             ? "attention (only dense: \"\")"
                                                                    : NULL;
    if (bad) return pare_fail(PARE_EINVAL, "model: kind=encdec does not take option %s", bad);
    return PARE_OK;
}

/* Mirrors build_encdec's parameters. */
static pare_status encdec_numel(int64_t *numel, const pare_options *o)
{
    encdec_dims d;
    PARE_TRY(encdec_dims_of(&d, o));
    int64_t C = d.C, n = add_mul(0, d.V, C);  /* emb.tok */
    if (!d.share) n = add_mul(n, d.SV, C);    /* src.tok */
    n = add_mul(n, d.Tm + d.poff, C);         /* emb.pos */
    n = add_mul(n, d.Sm + d.poff, C);         /* src.pos */
    for (int64_t l = 0; l < d.EL + d.L; l++) { /* the blocks both stacks share */
        n = add_mul(n, 4, C);                 /* ln1, ln2 */
        n = add_mul(n, 3 * C, C + 1);         /* attn.qkv */
        n = add_mul(n, C, C + 1);             /* attn.out */
        n = add_mul(n, d.F, C + 1);           /* ffn.up */
        n = add_mul(n, C, d.F + 1);           /* ffn.down */
    }
    if (d.emb_norm) n = add_mul(n, 4, C);    /* src.ln, emb.ln */
    for (int64_t l = 0; l < d.L; l++) {
        n = add_mul(n, 2, C);                 /* xattn.ln */
        n = add_mul(n, C, C + 1);             /* xattn.q */
        n = add_mul(n, 2 * C, C + 1);         /* xattn.kv */
        n = add_mul(n, C, C + 1);             /* xattn.out */
    }
    if (!d.post) n = add_mul(n, 4, C);        /* enc.ln_f, ln_f */
    n = add_mul(n, d.tie ? 0 : d.V, C);       /* head weight */
    *numel = add_mul(n, d.head_bias ? d.V : 0, 1);
    return PARE_OK;
}

/* One self-attention + feed-forward block named "<blk>.<l>.*" over rows (source or target); for the
 * decoder (xmem >= 0) a cross-attention half between the two reads the memory xmem with src_lengths.
 * Pre-LN (x + f(LN(x))) or, with d->post, post-LN (LN(x + f(x)), BART); each LayerNorm keeps its name. */
static int encdec_block(builder *b, const char *blk, int64_t l, int x, int lengths, int causal, int xmem, int src_lengths,
                        pare_rows rows, const encdec_dims *d, float pdrop, pare_op_id act, pare_node_attrs act_attrs,
                        double resid_std)
{
    char nm[PARE_NAME_MAX];
    int64_t C = d->C;
#define NAME(s) (snprintf(nm, sizeof nm, "%s.%lld.%s", blk, (long long)l, s), nm)
    const int post = d->post;
    int h = post ? x : layernorm_rows(b, NAME("ln1"), x, C, rows);
    int qkv = linear(b, NAME("attn.qkv"), h, C, 3 * C, rows, 0.02);
    int ain[2] = {qkv, lengths};
    int a = node(b, PARE_OP_ATTENTION, NAME("attn"), ain, 2, NULL, 0, rows, C, (pare_node_attrs){.heads = (int)d->H, .causal = causal});
    int proj = linear(b, NAME("attn.out"), a, C, C, rows, resid_std);
    int d1 = node(b, PARE_OP_DROPOUT, NAME("drop1"), &proj, 1, NULL, 0, rows, C, (pare_node_attrs){.p = pdrop});
    int r1[2] = {x, d1};
    x = node(b, PARE_OP_ADD, NAME("add1"), r1, 2, NULL, 0, rows, C, (pare_node_attrs){0});
    if (post) x = layernorm_rows(b, NAME("ln1"), x, C, rows);
    if (xmem >= 0) {
        int hx = post ? x : layernorm_rows(b, NAME("xattn.ln"), x, C, rows);
        int q = linear(b, NAME("xattn.q"), hx, C, C, rows, 0.02);
        int kv = linear(b, NAME("xattn.kv"), xmem, C, 2 * C, PARE_ROWS_SRC, 0.02);
        int xin[3] = {q, kv, src_lengths};
        int xa = node(b, PARE_OP_CROSS_ATTENTION, NAME("xattn"), xin, 3, NULL, 0, rows, C, (pare_node_attrs){.heads = (int)d->H});
        int xo = linear(b, NAME("xattn.out"), xa, C, C, rows, resid_std);
        int dx = node(b, PARE_OP_DROPOUT, NAME("drop_x"), &xo, 1, NULL, 0, rows, C, (pare_node_attrs){.p = pdrop});
        int rx[2] = {x, dx};
        x = node(b, PARE_OP_ADD, NAME("add_x"), rx, 2, NULL, 0, rows, C, (pare_node_attrs){0});
        if (post) x = layernorm_rows(b, NAME("xattn.ln"), x, C, rows);
    }
    int h2 = post ? x : layernorm_rows(b, NAME("ln2"), x, C, rows);
    int up = linear(b, NAME("ffn.up"), h2, C, d->F, rows, 0.02);
    int g = node(b, act, NAME("ffn.act"), &up, 1, NULL, 0, rows, d->F, act_attrs);
    int down = linear(b, NAME("ffn.down"), g, d->F, C, rows, resid_std);
    int d2 = node(b, PARE_OP_DROPOUT, NAME("drop2"), &down, 1, NULL, 0, rows, C, (pare_node_attrs){.p = pdrop});
    int r2[2] = {x, d2};
    x = node(b, PARE_OP_ADD, NAME("add2"), r2, 2, NULL, 0, rows, C, (pare_node_attrs){0});
    if (post) x = layernorm_rows(b, NAME("ln2"), x, C, rows);
#undef NAME
    return x;
}

static pare_status build_encdec(pare_model **out, const pare_options *o)
{
    *out = NULL;
    encdec_dims d;
    PARE_TRY(encdec_dims_of(&d, o));
    builder b = {.m = pare_model_new("encdec"), .eps = (float)pare_opt_num(o, "ln_eps")};
    if (!b.m) return PARE_ENOMEM;
    pare_rng_seed(&b.rng, (uint64_t)pare_opt_num(o, "seed"));
    pare_model *m = b.m;
    pare_status cst = options_json(m->config, sizeof m->config, o);
    if (cst != PARE_OK) {
        pare_model_free(m);
        return cst;
    }
    int64_t C = d.C;
    m->vocab = d.V, m->max_T = d.Tm, m->C = C, m->H = d.H, m->L = d.L, m->F = d.F;
    m->src_vocab = d.SV, m->src_max_T = d.Sm;
    m->nclass = d.V, m->lm = 1;
    float pdrop = (float)pare_opt_num(o, "dropout");
    const char *actname = pare_opt_str(o, "act");
    pare_op_id act = !strcmp(actname, "relu") ? PARE_OP_RELU : PARE_OP_GELU;
    pare_node_attrs act_attrs = {.gelu_erf = !strcmp(actname, "gelu_erf")};
    double resid_std = 0.02 / sqrt(2.0 * (double)(d.L + d.EL ? d.L + d.EL : 1));
    int sinus = !strcmp(pare_opt_str(o, "pos"), "sinusoidal");
    float escale = emb_scale_attr(o);

    int tokens = pare_model_add_input(m, PARE_VAL_TOKENS, "tokens");
    int lengths = pare_model_add_input(m, PARE_VAL_LENGTHS, "lengths");
    int labels = pare_model_add_input(m, PARE_VAL_LABELS, "labels");
    int src = pare_model_add_input(m, PARE_VAL_SRC_TOKENS, "src_tokens");
    int src_len = pare_model_add_input(m, PARE_VAL_SRC_LENGTHS, "src_lengths");
    if (tokens < 0 || lengths < 0 || labels < 0 || src < 0 || src_len < 0) goto fail;

    int tok = param(&b, "emb.tok", "weight", 2, d.V, C, 1);
    int stok = d.share ? tok : param(&b, "src.tok", "weight", 2, d.SV, C, 1);
    int pos = param(&b, "emb.pos", "weight", 2, d.Tm + d.poff, C, !sinus);
    int spos = param(&b, "src.pos", "weight", 2, d.Sm + d.poff, C, !sinus);
    if (b.failed) goto fail;
    init_normal(&b, tok, 0.02);
    if (!d.share) init_normal(&b, stok, 0.02);
    if (sinus) {
        pare_sinusoid_table(m->params[pos].blob->data, d.Tm + d.poff, C);
        pare_sinusoid_table(m->params[spos].blob->data, d.Sm + d.poff, C);
    } else init_normal(&b, pos, 0.02), init_normal(&b, spos, 0.02);

    /* the encoder over the source: its memory, B·S rows */
    int e = node(&b, PARE_OP_EMBEDDING, "src.tok", &src, 1, &stok, 1, PARE_ROWS_SRC, C, (pare_node_attrs){.scale = escale});
    e = node(&b, PARE_OP_POSADD, "src.pos", &e, 1, &spos, 1, PARE_ROWS_SRC, C, (pare_node_attrs){.pos_offset = (int)d.poff});
    if (d.emb_norm) e = layernorm_rows(&b, "src.ln", e, C, PARE_ROWS_SRC);
    for (int64_t l = 0; l < d.EL && !b.failed; l++)
        e = encdec_block(&b, "enc", l, e, src_len, 0, -1, -1, PARE_ROWS_SRC, &d, pdrop, act, act_attrs, resid_std);
    int mem = d.post ? e : layernorm_rows(&b, "enc.ln_f", e, C, PARE_ROWS_SRC);

    /* the decoder over the (shifted) target */
    int x = node(&b, PARE_OP_EMBEDDING, "emb.tok", &tokens, 1, &tok, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){.scale = escale});
    x = node(&b, PARE_OP_POSADD, "emb.pos", &x, 1, &pos, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){.pos_offset = (int)d.poff});
    if (d.emb_norm) x = layernorm(&b, "emb.ln", x, C);
    for (int64_t l = 0; l < d.L && !b.failed; l++)
        x = encdec_block(&b, "dec", l, x, lengths, 1, mem, src_len, PARE_ROWS_TOKENS, &d, pdrop, act, act_attrs, resid_std);
    if (!d.post) x = layernorm(&b, "ln_f", x, C);
    if (d.tie || !d.head_bias) {
        int w = d.tie ? tok : param(&b, "head", "weight", 2, d.V, C, 1), hb = -1;
        if (!d.tie && w >= 0) init_normal(&b, w, 0.02);
        if (d.head_bias) hb = param(&b, "head", "bias", 1, d.V, 1, 1);
        int prm[2] = {w, hb};
        m->logits = b.failed ? -1 : node(&b, PARE_OP_LINEAR, "head", &x, 1, prm, d.head_bias ? 2 : 1, PARE_ROWS_TOKENS, d.V,
                                         (pare_node_attrs){0});
    } else m->logits = linear(&b, "head", x, C, d.V, PARE_ROWS_TOKENS, 0.02);
    int xin[2] = {m->logits, labels};
    m->loss = node(&b, PARE_OP_XENT, "loss", xin, 2, NULL, 0, PARE_ROWS_TOKENS, 1, (pare_node_attrs){0});
    if (b.failed) goto fail;
    *out = m;
    return PARE_OK;
fail:
    pare_model_free(m);
    return pare_fail_ctx(PARE_ENOMEM, "building the encdec");
}

/* Self-attention of layer l as explicit ops over h (B·T, C) (docs/fusion.md, kernels/fuse_ops.h): separate Q, K
 * and V Linears — initialised from the random stream in the order of the fused (3C, C) projection's rows, so the
 * fuse pass gives back today's weights bit for bit — then split into heads, Q·Kᵀ, ÷√D, the additive key mask,
 * softmax, P·V, heads merged. Returns the (B·T, C) output, named <blk>.<l>.attn as the ATTENTION node's. */
static int unfused_attention(builder *b, const char *blk, int64_t l, int h, int lengths, int64_t C, int64_t H, int causal)
{
    char nm[PARE_NAME_MAX];
#define NAME(s) (snprintf(nm, sizeof nm, "%s.%lld.%s", blk, (long long)l, s), nm)
    const int64_t D = C / H;
    const char *proj[3] = {"attn.q", "attn.k", "attn.v"}, *split[3] = {"attn.q_heads", "attn.k_heads", "attn.v_heads"};
    int heads[3];
    for (int k = 0; k < 3; k++) {
        int y = linear(b, NAME(proj[k]), h, C, C, PARE_ROWS_TOKENS, 0.02);
        heads[k] = node(b, PARE_OP_HEAD_SPLIT, NAME(split[k]), &y, 1, NULL, 0, PARE_ROWS_TOKENS, C,
                        (pare_node_attrs){.heads = (int)H});
    }
    int s = node(b, PARE_OP_BMM_QK, NAME("attn.scores"), heads, 2, NULL, 0, PARE_ROWS_CACHE_ATT, H,
                 (pare_node_attrs){.heads = (int)H, .head_dim = (int)D});
    s = node(b, PARE_OP_DIV, NAME("attn.scale"), &s, 1, NULL, 0, PARE_ROWS_CACHE_ATT, H,
             (pare_node_attrs){.scale = sqrtf((float)D)});
    int sm[2] = {s, lengths};
    s = node(b, PARE_OP_MASK_ADD, NAME("attn.mask"), sm, 2, NULL, 0, PARE_ROWS_CACHE_ATT, H, (pare_node_attrs){.causal = causal});
    int p = node(b, PARE_OP_SOFTMAX, NAME("attn.softmax"), &s, 1, NULL, 0, PARE_ROWS_CACHE_ATT, H, (pare_node_attrs){0});
    int pv[2] = {p, heads[2]};
    int o = node(b, PARE_OP_BMM_PV, NAME("attn.context"), pv, 2, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){.heads = (int)H});
    return node(b, PARE_OP_HEAD_MERGE, NAME("attn"), &o, 1, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){.heads = (int)H});
#undef NAME
}

/* Mirrors pare_transformer_build's parameters below, in its order; test_checkpoint.c checks that the
 * two agree on every kind, with and without attention variants that have parameters. */
pare_status pare_transformer_numel(int64_t *numel, const pare_options *o)
{
    *numel = 0;
    const char *kind = pare_opt_str(o, "kind");
    if (!strcmp(kind, "encdec")) return encdec_numel(numel, o);
    int decoder = !strcmp(kind, "decoder"), per_token = decoder || !strcmp(kind, "tagger");
    int64_t V = pare_opt_int(o, "vocab"), Tm = pare_opt_int(o, "max_T"), C = pare_opt_int(o, "d");
    int64_t H = pare_opt_int(o, "heads"), L = pare_opt_int(o, "layers"), F = pare_opt_int(o, "ffn");
    int regression = !strcmp(pare_opt_str(o, "head"), "regression");
    int64_t ncls = per_token ? V : regression ? 1 : pare_opt_int(o, "classes");
    if (F == 0) F = 4 * C;
    if (C % H != 0)
        return pare_fail(PARE_EINVAL, "model: heads=%lld does not divide d=%lld (choose heads among the divisors of d)",
                         (long long)H, (long long)C);
    int64_t attn_params;
    pare_attn_config **cfg;
    PARE_TRY(parse_layers(&cfg, pare_opt_str(o, "attention"), L));
    pare_status ast = check_layers(cfg, L, Tm, H, C / H, decoder, 0, &attn_params);
    release_layers(cfg, L);
    PARE_TRY(ast);
    int64_t n = add_mul(attn_params, V, C); /* the variants' parameters, emb.tok */
    n = add_mul(n, Tm + pare_opt_int(o, "pos_offset"), C); /* emb.pos */
    n = add_mul(n, pare_opt_int(o, "type_vocab"), C);      /* emb.type */
    if (pare_opt_bool(o, "emb_norm")) n = add_mul(n, 2, C); /* emb.ln */
    for (int64_t l = 0; l < L; l++) {
        n = add_mul(n, 2, C);         /* ln1 */
        n = add_mul(n, 3 * C, C + 1); /* attn.qkv weight (3C, C) and bias */
        n = add_mul(n, C, C + 1);     /* attn.out */
        n = add_mul(n, 2, C);     /* ln2 */
        n = add_mul(n, F, C + 1); /* ffn.up (F, C) and bias */
        n = add_mul(n, C, F + 1); /* ffn.down (C, F) and bias */
    }
    if (!strcmp(pare_opt_str(o, "norm"), "pre")) n = add_mul(n, 2, C); /* ln_f */
    if (!per_token && strcmp(pare_opt_str(o, "pooler"), "none") != 0) n = add_mul(n, C, C + 1); /* pooler */
    if (per_token && !strcmp(pare_opt_str(o, "head"), "mlm")) n = add_mul(n, C, C + 3); /* head.transform, head.ln */
    int tied = per_token && pare_opt_bool(o, "tie_head");
    n = add_mul(n, tied ? 0 : ncls, C);                    /* head weight (V, C), or the token table */
    *numel = add_mul(n, pare_opt_bool(o, "head_bias") ? ncls : 0, 1); /* head bias */
    return PARE_OK;
}

/* Build with cfg[0..L) as the layers' attention (checked and kept at max_T here). */
static pare_status build(pare_model **out, const pare_options *o, pare_attn_config **cfg)
{
    *out = NULL;
    const char *kind = pare_opt_str(o, "kind");
    if (!strcmp(kind, "encdec") && !pare_opt_bool(o, "fused"))
        return pare_fail(PARE_EINVAL, "model: fused=false (attention as explicit ops) is built for kind encoder, decoder "
                         "and tagger; an encdec's attention stays fused (fused=true)");
    if (!strcmp(kind, "encdec")) return build_encdec(out, o);
    int decoder = !strcmp(kind, "decoder");          /* causal attention */
    int per_token = decoder || !strcmp(kind, "tagger"); /* a target per token (LM-kind tasks), no pooling */
    int64_t V = pare_opt_int(o, "vocab"), Tm = pare_opt_int(o, "max_T"), C = pare_opt_int(o, "d");
    int64_t H = pare_opt_int(o, "heads"), L = pare_opt_int(o, "layers"), F = pare_opt_int(o, "ffn");
    int64_t ncls = pare_opt_int(o, "classes");
    float pdrop = (float)pare_opt_num(o, "dropout");
    if (F == 0) F = 4 * C;
    if (C % H != 0)
        return pare_fail(PARE_EINVAL, "model: heads=%lld does not divide d=%lld (choose heads among the divisors of d)",
                         (long long)H, (long long)C);
    PARE_TRY(check_layers(cfg, L, Tm, H, C / H, decoder, 1, NULL));
    const int unfused = !pare_opt_bool(o, "fused");
    for (int64_t l = 0; unfused && l < L; l++)
        if (cfg[l] && strcmp(cfg[l]->spec, "full") != 0)
            return pare_fail(PARE_EINVAL, "model: fused=false builds dense attention as explicit ops; layer %lld asks for "
                             "attention '%s' (variants run inside the attention op: keep fused=true)", (long long)l,
                             cfg[l]->spec);

    const char *norm = pare_opt_str(o, "norm"), *pooler = pare_opt_str(o, "pooler"), *actname = pare_opt_str(o, "act");
    int post = !strcmp(norm, "post"), mlm = !strcmp(pare_opt_str(o, "head"), "mlm");
    int regression = !strcmp(pare_opt_str(o, "head"), "regression");
    int tie = pare_opt_bool(o, "tie_head"), head_bias = pare_opt_bool(o, "head_bias");
    int64_t NT = pare_opt_int(o, "type_vocab"), poff = pare_opt_int(o, "pos_offset");
    if ((tie || mlm) && !per_token)
        return pare_fail(PARE_EINVAL, "model: %s needs a head per token (kind decoder or tagger, not %s)",
                         tie ? "tie_head" : "head=mlm", kind);
    if (regression && per_token)
        return pare_fail(PARE_EINVAL, "model: head=regression scores a whole sequence (kind encoder); kind %s has a head "
                         "per token (head linear or mlm)", kind);
    if (strcmp(pooler, "none") != 0 && per_token)
        return pare_fail(PARE_EINVAL, "model: pooler=%s pools a sequence; kind %s has a head per token (pooler=none)",
                         pooler, kind);
    builder b = {.m = pare_model_new(kind), .eps = (float)pare_opt_num(o, "ln_eps")};
    if (!b.m) return PARE_ENOMEM;
    pare_rng_seed(&b.rng, (uint64_t)pare_opt_num(o, "seed"));
    pare_model *m = b.m;
    pare_status cst = options_json(m->config, sizeof m->config, o);
    if (cst != PARE_OK) {
        pare_model_free(m);
        return cst;
    }
    m->vocab = V, m->max_T = Tm, m->C = C, m->H = H, m->L = L, m->F = F;
    m->nclass = per_token ? V : regression ? 1 : ncls;
    m->lm = per_token;
    const char *blk = decoder ? "dec" : "enc";

    int tokens = pare_model_add_input(m, PARE_VAL_TOKENS, "tokens");
    int lengths = pare_model_add_input(m, PARE_VAL_LENGTHS, "lengths");
    int labels = pare_model_add_input(m, PARE_VAL_LABELS, "labels");
    if (tokens < 0 || lengths < 0 || labels < 0) goto fail;
    if (!per_token) m->values[labels].rows = PARE_ROWS_SEQS;

    int tok = param(&b, "emb.tok", "weight", 2, V, C, 1);
    int sinus = !strcmp(pare_opt_str(o, "pos"), "sinusoidal");
    int pos = param(&b, "emb.pos", "weight", 2, Tm + poff, C, !sinus);
    if (b.failed) goto fail;
    init_normal(&b, tok, 0.02);
    if (sinus) pare_sinusoid_table(m->params[pos].blob->data, Tm + poff, C);
    else init_normal(&b, pos, 0.02);
    int x = node(&b, PARE_OP_EMBEDDING, "emb.tok", &tokens, 1, &tok, 1, PARE_ROWS_TOKENS, C,
                 (pare_node_attrs){.scale = emb_scale_attr(o)});
    x = node(&b, PARE_OP_POSADD, "emb.pos", &x, 1, &pos, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){.pos_offset = (int)poff});
    if (NT > 0) { /* token types (segments): their embedding is added to the tokens' */
        int types = pare_model_add_input(m, PARE_VAL_TYPES, "types");
        int ty = param(&b, "emb.type", "weight", 2, NT, C, 1);
        if (types < 0 || b.failed) goto fail;
        init_normal(&b, ty, 0.02);
        int te = node(&b, PARE_OP_EMBEDDING, "emb.type", &types, 1, &ty, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
        int sum[2] = {x, te};
        x = node(&b, PARE_OP_ADD, "emb.sum", sum, 2, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    }
    if (pare_opt_bool(o, "emb_norm")) x = layernorm(&b, "emb.ln", x, C);

    double resid_std = 0.02 / sqrt(2.0 * (double)(L ? L : 1));
    pare_op_id act = !strcmp(actname, "relu") ? PARE_OP_RELU : PARE_OP_GELU;
    pare_node_attrs act_attrs = {.gelu_erf = !strcmp(actname, "gelu_erf")};
    for (int64_t l = 0; l < L && !b.failed; l++) {
        char nm[PARE_NAME_MAX];
#define NAME(s) (snprintf(nm, sizeof nm, "%s.%lld.%s", blk, (long long)l, s), nm)
        /* pre: x + f(LN(x)); post: LN(x + f(x)) (the LayerNorms keep their names: ln1 with attention) */
        int h = post ? x : layernorm(&b, NAME("ln1"), x, C);
        int a;
        if (unfused) a = unfused_attention(&b, blk, l, h, lengths, C, H, decoder); /* docs/fusion.md */
        else {
            int qkv = linear(&b, NAME("attn.qkv"), h, C, 3 * C, PARE_ROWS_TOKENS, 0.02);
            int ain[2] = {qkv, lengths};
            pare_node_attrs aa = {.heads = (int)H, .causal = decoder, .attn = cfg[l]};
            int aprm = -1; /* a variant's learned parameters (Linformer's E, F; LSRA's convolution), sized at max_T */
            pare_attn *var = NULL;
            int owned = 0;
            if (cfg[l] && pare_attn_config_instance(&var, &owned, cfg[l], Tm, H, C / H, decoder) != PARE_OK) b.failed = 1;
            if (var && pare_attn_param_count(var) > 0) {
                aprm = param(&b, NAME("attn"), "params", 1, pare_attn_param_count(var), 1, 1);
                if (aprm >= 0) pare_attn_param_init(var, m->params[aprm].blob->data, &b.rng);
            }
            if (owned) pare_attn_free(var);
            a = node(&b, PARE_OP_ATTENTION, NAME("attn"), ain, 2, aprm >= 0 ? &aprm : NULL, aprm >= 0, PARE_ROWS_TOKENS, C,
                     aa);
        }
        int proj = linear(&b, NAME("attn.out"), a, C, C, PARE_ROWS_TOKENS, resid_std);
        int d1 = node(&b, PARE_OP_DROPOUT, NAME("drop1"), &proj, 1, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){.p = pdrop});
        int r1[2] = {x, d1};
        x = node(&b, PARE_OP_ADD, NAME("add1"), r1, 2, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
        if (post) x = layernorm(&b, NAME("ln1"), x, C);
        int h2 = post ? x : layernorm(&b, NAME("ln2"), x, C);
        int up = linear(&b, NAME("ffn.up"), h2, C, F, PARE_ROWS_TOKENS, 0.02);
        int g = node(&b, act, NAME("ffn.act"), &up, 1, NULL, 0, PARE_ROWS_TOKENS, F, act_attrs);
        int down = linear(&b, NAME("ffn.down"), g, F, C, PARE_ROWS_TOKENS, resid_std);
        int d2 = node(&b, PARE_OP_DROPOUT, NAME("drop2"), &down, 1, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){.p = pdrop});
        int r2[2] = {x, d2};
        x = node(&b, PARE_OP_ADD, NAME("add2"), r2, 2, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
        if (post) x = layernorm(&b, NAME("ln2"), x, C);
#undef NAME
    }
    if (!post) x = layernorm(&b, "ln_f", x, C);
    pare_rows head_rows = PARE_ROWS_TOKENS;
    if (!per_token) {
        int pin[2] = {x, lengths};
        pare_pool_mode pm = !strcmp(pare_opt_str(o, "pool"), "mean") ? PARE_POOL_MEAN : PARE_POOL_CLS;
        x = node(&b, PARE_OP_POOL, "pool", pin, 2, NULL, 0, PARE_ROWS_SEQS, C, (pare_node_attrs){.pool = pm});
        head_rows = PARE_ROWS_SEQS;
        if (strcmp(pooler, "none") != 0) {
            x = linear(&b, "pooler", x, C, C, PARE_ROWS_SEQS, 0.02);
            x = node(&b, !strcmp(pooler, "tanh") ? PARE_OP_TANH : PARE_OP_RELU, "pooler.act", &x, 1, NULL, 0, PARE_ROWS_SEQS,
                     C, (pare_node_attrs){0});
        }
    }
    if (mlm) { /* BERT's prediction-head transform */
        x = linear(&b, "head.transform", x, C, C, PARE_ROWS_TOKENS, 0.02);
        x = node(&b, act, "head.act", &x, 1, NULL, 0, PARE_ROWS_TOKENS, C, act_attrs);
        x = layernorm(&b, "head.ln", x, C);
    }
    if (tie || !head_bias) {
        int w = tie ? tok : param(&b, "head", "weight", 2, m->nclass, C, 1), hb = -1;
        if (!tie && w >= 0) init_normal(&b, w, 0.02);
        if (head_bias) hb = param(&b, "head", "bias", 1, m->nclass, 1, 1);
        int prm[2] = {w, hb};
        m->logits = b.failed ? -1 : node(&b, PARE_OP_LINEAR, "head", &x, 1, prm, head_bias ? 2 : 1, head_rows, m->nclass,
                                         (pare_node_attrs){0});
    } else m->logits = linear(&b, "head", x, C, m->nclass, head_rows, 0.02);
    if (regression) { /* the score (B, 1) against the example's target: mean squared error */
        int target = b.failed ? -1 : pare_model_add_target(m, "target", PARE_ROWS_SEQS, 1);
        m->loss = target < 0 ? -1 : pare_model_add_loss(m, PARE_OP_MSE, "loss", m->logits, target, 1.0f, 0.0f);
        if (m->loss < 0) b.failed = 1;
    } else {
        int xin[2] = {m->logits, labels};
        m->loss = node(&b, PARE_OP_XENT, "loss", xin, 2, NULL, 0, head_rows, 1, (pare_node_attrs){0});
    }
    if (b.failed) goto fail;
    *out = m;
    return PARE_OK;
fail:
    pare_model_free(m);
    return pare_fail_ctx(PARE_ENOMEM, "building the %s", kind);
}

pare_status pare_transformer_build(pare_model **out, const pare_options *o)
{
    pare_attn_config **cfg;
    int64_t L = pare_opt_int(o, "layers");
    *out = NULL;
    PARE_TRY(parse_layers(&cfg, pare_opt_str(o, "attention"), L));
    pare_status st = build(out, o, cfg);
    release_layers(cfg, L);
    return st;
}

static int attention_option(const pare_schema *s)
{
    int i = 0;
    while (strcmp(s->opts[i].key, "attention") != 0) i++; /* in pare_model_schema by construction */
    return i;
}

pare_status pare_transformer_build_attn(pare_model **out, const pare_options *o, pare_attn_config *const *attn, int n)
{
    pare_attn_config **cfg;
    int64_t L = pare_opt_int(o, "layers");
    *out = NULL;
    if (n < 1) return pare_transformer_build(out, o);
    pare_options *oo = malloc(sizeof *oo); /* o with "attention" = the layers' canonical text, for the config */
    if (!oo) return pare_fail(PARE_ENOMEM, "out of memory building a model");
    *oo = *o;
    pare_status st = expand_layers(&cfg, attn, n, L ? L : 1);
    if (st == PARE_OK) {
        pare_optval *v = &oo->v[attention_option(o->schema)];
        st = layers_text(v->str, sizeof v->str, cfg, L ? L : 1);
        v->given = 1;
        if (st == PARE_OK) st = build(out, oo, cfg);
        release_layers(cfg, L ? L : 1);
    }
    free(oo);
    return st;
}
