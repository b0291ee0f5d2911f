/* hf.c — Hugging Face model directories (hf.h): config.json read with cJSON into the builder's options,
 * tensors mapped by one name table per architecture, the same table read backwards to save. */
#include "hf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic.h"
#include "io/safetensors.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "model/transformer.h"

/* ---- the name tables ---- */

typedef enum hf_layout {
    HF_COPY = 0, /* same shape and layout */
    HF_T,        /* transformers' Conv1D: stored (in, out), pare's Linear weight is (out, in) */
    HF_QKV,      /* three tensors (query, key, value) stacked into pare's qkv rows */
    HF_KV,       /* two tensors (key, value) stacked into pare's kv rows (cross-attention's xattn.kv) */
    HF_ROW,      /* a vector stored as one row (1, N): BART's final_logits_bias */
} hf_layout;

/* tensors one pare parameter is made of */
static int hf_parts(hf_layout how) { return how == HF_QKV ? 3 : how == HF_KV ? 2 : 1; }

typedef struct hf_entry {
    const char *pare; /* pare's parameter name, "%d" for the layer */
    const char *hf;   /* HF's, after the model prefix; "%d" for the layer, "%s" for query/key/value (HF_QKV) or
                         key/value (HF_KV) */
    hf_layout how;
} hf_entry;

static const hf_entry bert_names[] = {
    {"emb.tok.weight", "embeddings.word_embeddings.weight", HF_COPY},
    {"emb.pos.weight", "embeddings.position_embeddings.weight", HF_COPY},
    {"emb.type.weight", "embeddings.token_type_embeddings.weight", HF_COPY},
    {"emb.ln.weight", "embeddings.LayerNorm.weight", HF_COPY},
    {"emb.ln.bias", "embeddings.LayerNorm.bias", HF_COPY},
    {"enc.%d.attn.qkv.weight", "encoder.layer.%d.attention.self.%s.weight", HF_QKV},
    {"enc.%d.attn.qkv.bias", "encoder.layer.%d.attention.self.%s.bias", HF_QKV},
    {"enc.%d.attn.out.weight", "encoder.layer.%d.attention.output.dense.weight", HF_COPY},
    {"enc.%d.attn.out.bias", "encoder.layer.%d.attention.output.dense.bias", HF_COPY},
    {"enc.%d.ln1.weight", "encoder.layer.%d.attention.output.LayerNorm.weight", HF_COPY},
    {"enc.%d.ln1.bias", "encoder.layer.%d.attention.output.LayerNorm.bias", HF_COPY},
    {"enc.%d.ffn.up.weight", "encoder.layer.%d.intermediate.dense.weight", HF_COPY},
    {"enc.%d.ffn.up.bias", "encoder.layer.%d.intermediate.dense.bias", HF_COPY},
    {"enc.%d.ffn.down.weight", "encoder.layer.%d.output.dense.weight", HF_COPY},
    {"enc.%d.ffn.down.bias", "encoder.layer.%d.output.dense.bias", HF_COPY},
    {"enc.%d.ln2.weight", "encoder.layer.%d.output.LayerNorm.weight", HF_COPY},
    {"enc.%d.ln2.bias", "encoder.layer.%d.output.LayerNorm.bias", HF_COPY},
    {"pooler.weight", "pooler.dense.weight", HF_COPY},
    {"pooler.bias", "pooler.dense.bias", HF_COPY},
};
/* heads: outside the model prefix */
static const hf_entry bert_cls_head[] = {
    {"head.weight", "classifier.weight", HF_COPY},
    {"head.bias", "classifier.bias", HF_COPY},
};
static const hf_entry bert_mlm_head[] = {
    {"head.transform.weight", "cls.predictions.transform.dense.weight", HF_COPY},
    {"head.transform.bias", "cls.predictions.transform.dense.bias", HF_COPY},
    {"head.ln.weight", "cls.predictions.transform.LayerNorm.weight", HF_COPY},
    {"head.ln.bias", "cls.predictions.transform.LayerNorm.bias", HF_COPY},
    {"head.bias", "cls.predictions.bias", HF_COPY},
};
static const hf_entry roberta_cls_head[] = { /* RobertaClassificationHead: dense + tanh on <s>, then out_proj */
    {"pooler.weight", "classifier.dense.weight", HF_COPY},
    {"pooler.bias", "classifier.dense.bias", HF_COPY},
    {"head.weight", "classifier.out_proj.weight", HF_COPY},
    {"head.bias", "classifier.out_proj.bias", HF_COPY},
};
static const hf_entry roberta_mlm_head[] = {
    {"head.transform.weight", "lm_head.dense.weight", HF_COPY},
    {"head.transform.bias", "lm_head.dense.bias", HF_COPY},
    {"head.ln.weight", "lm_head.layer_norm.weight", HF_COPY},
    {"head.ln.bias", "lm_head.layer_norm.bias", HF_COPY},
    {"head.bias", "lm_head.bias", HF_COPY},
};
static const hf_entry distilbert_names[] = {
    {"emb.tok.weight", "embeddings.word_embeddings.weight", HF_COPY},
    {"emb.pos.weight", "embeddings.position_embeddings.weight", HF_COPY},
    {"emb.ln.weight", "embeddings.LayerNorm.weight", HF_COPY},
    {"emb.ln.bias", "embeddings.LayerNorm.bias", HF_COPY},
    {"enc.%d.attn.qkv.weight", "transformer.layer.%d.attention.%s.weight", HF_QKV},
    {"enc.%d.attn.qkv.bias", "transformer.layer.%d.attention.%s.bias", HF_QKV},
    {"enc.%d.attn.out.weight", "transformer.layer.%d.attention.out_lin.weight", HF_COPY},
    {"enc.%d.attn.out.bias", "transformer.layer.%d.attention.out_lin.bias", HF_COPY},
    {"enc.%d.ln1.weight", "transformer.layer.%d.sa_layer_norm.weight", HF_COPY},
    {"enc.%d.ln1.bias", "transformer.layer.%d.sa_layer_norm.bias", HF_COPY},
    {"enc.%d.ffn.up.weight", "transformer.layer.%d.ffn.lin1.weight", HF_COPY},
    {"enc.%d.ffn.up.bias", "transformer.layer.%d.ffn.lin1.bias", HF_COPY},
    {"enc.%d.ffn.down.weight", "transformer.layer.%d.ffn.lin2.weight", HF_COPY},
    {"enc.%d.ffn.down.bias", "transformer.layer.%d.ffn.lin2.bias", HF_COPY},
    {"enc.%d.ln2.weight", "transformer.layer.%d.output_layer_norm.weight", HF_COPY},
    {"enc.%d.ln2.bias", "transformer.layer.%d.output_layer_norm.bias", HF_COPY},
};
static const hf_entry distilbert_cls_head[] = { /* pre_classifier + ReLU on [CLS], then classifier */
    {"pooler.weight", "pre_classifier.weight", HF_COPY},
    {"pooler.bias", "pre_classifier.bias", HF_COPY},
    {"head.weight", "classifier.weight", HF_COPY},
    {"head.bias", "classifier.bias", HF_COPY},
};
static const hf_entry distilbert_mlm_head[] = {
    {"head.transform.weight", "vocab_transform.weight", HF_COPY},
    {"head.transform.bias", "vocab_transform.bias", HF_COPY},
    {"head.ln.weight", "vocab_layer_norm.weight", HF_COPY},
    {"head.ln.bias", "vocab_layer_norm.bias", HF_COPY},
    {"head.bias", "vocab_projector.bias", HF_COPY},
};
static const hf_entry gpt2_names[] = {
    {"emb.tok.weight", "wte.weight", HF_COPY},
    {"emb.pos.weight", "wpe.weight", HF_COPY},
    {"dec.%d.ln1.weight", "h.%d.ln_1.weight", HF_COPY},
    {"dec.%d.ln1.bias", "h.%d.ln_1.bias", HF_COPY},
    {"dec.%d.attn.qkv.weight", "h.%d.attn.c_attn.weight", HF_T},
    {"dec.%d.attn.qkv.bias", "h.%d.attn.c_attn.bias", HF_COPY},
    {"dec.%d.attn.out.weight", "h.%d.attn.c_proj.weight", HF_T},
    {"dec.%d.attn.out.bias", "h.%d.attn.c_proj.bias", HF_COPY},
    {"dec.%d.ln2.weight", "h.%d.ln_2.weight", HF_COPY},
    {"dec.%d.ln2.bias", "h.%d.ln_2.bias", HF_COPY},
    {"dec.%d.ffn.up.weight", "h.%d.mlp.c_fc.weight", HF_T},
    {"dec.%d.ffn.up.bias", "h.%d.mlp.c_fc.bias", HF_COPY},
    {"dec.%d.ffn.down.weight", "h.%d.mlp.c_proj.weight", HF_T},
    {"dec.%d.ffn.down.bias", "h.%d.mlp.c_proj.bias", HF_COPY},
    {"ln_f.weight", "ln_f.weight", HF_COPY},
    {"ln_f.bias", "ln_f.bias", HF_COPY},
};

/* BART (BartForConditionalGeneration, BartModel): an encdec with norm=post, emb_norm, pos_offset 2, one
 * shared token table; encoder and decoder layers name their halves alike */
#define BART_BLOCK(pre, blk)                                                                          \
    {blk ".%d.attn.qkv.weight", pre ".layers.%d.self_attn.%s_proj.weight", HF_QKV},                  \
    {blk ".%d.attn.qkv.bias", pre ".layers.%d.self_attn.%s_proj.bias", HF_QKV},                      \
    {blk ".%d.attn.out.weight", pre ".layers.%d.self_attn.out_proj.weight", HF_COPY},                \
    {blk ".%d.attn.out.bias", pre ".layers.%d.self_attn.out_proj.bias", HF_COPY},                    \
    {blk ".%d.ln1.weight", pre ".layers.%d.self_attn_layer_norm.weight", HF_COPY},                   \
    {blk ".%d.ln1.bias", pre ".layers.%d.self_attn_layer_norm.bias", HF_COPY},                       \
    {blk ".%d.ffn.up.weight", pre ".layers.%d.fc1.weight", HF_COPY},                                 \
    {blk ".%d.ffn.up.bias", pre ".layers.%d.fc1.bias", HF_COPY},                                     \
    {blk ".%d.ffn.down.weight", pre ".layers.%d.fc2.weight", HF_COPY},                               \
    {blk ".%d.ffn.down.bias", pre ".layers.%d.fc2.bias", HF_COPY},                                   \
    {blk ".%d.ln2.weight", pre ".layers.%d.final_layer_norm.weight", HF_COPY},                       \
    {blk ".%d.ln2.bias", pre ".layers.%d.final_layer_norm.bias", HF_COPY}
static const hf_entry bart_names[] = {
    {"emb.tok.weight", "shared.weight", HF_COPY},
    {"src.pos.weight", "encoder.embed_positions.weight", HF_COPY},
    {"src.ln.weight", "encoder.layernorm_embedding.weight", HF_COPY},
    {"src.ln.bias", "encoder.layernorm_embedding.bias", HF_COPY},
    {"emb.pos.weight", "decoder.embed_positions.weight", HF_COPY},
    {"emb.ln.weight", "decoder.layernorm_embedding.weight", HF_COPY},
    {"emb.ln.bias", "decoder.layernorm_embedding.bias", HF_COPY},
    BART_BLOCK("encoder", "enc"),
    BART_BLOCK("decoder", "dec"),
    {"dec.%d.xattn.q.weight", "decoder.layers.%d.encoder_attn.q_proj.weight", HF_COPY},
    {"dec.%d.xattn.q.bias", "decoder.layers.%d.encoder_attn.q_proj.bias", HF_COPY},
    {"dec.%d.xattn.kv.weight", "decoder.layers.%d.encoder_attn.%s_proj.weight", HF_KV},
    {"dec.%d.xattn.kv.bias", "decoder.layers.%d.encoder_attn.%s_proj.bias", HF_KV},
    {"dec.%d.xattn.out.weight", "decoder.layers.%d.encoder_attn.out_proj.weight", HF_COPY},
    {"dec.%d.xattn.out.bias", "decoder.layers.%d.encoder_attn.out_proj.bias", HF_COPY},
    {"dec.%d.xattn.ln.weight", "decoder.layers.%d.encoder_attn_layer_norm.weight", HF_COPY},
    {"dec.%d.xattn.ln.bias", "decoder.layers.%d.encoder_attn_layer_norm.bias", HF_COPY},
};
#undef BART_BLOCK
static const hf_entry bart_lm_head[] = { /* the LM head is the shared table (not in the file) + this bias */
    {"head.bias", "final_logits_bias", HF_ROW},
};

typedef struct hf_arch {
    const char *name;              /* model_type */
    const hf_entry *body, *head;   /* body names take the prefix, head names do not */
    int nbody, nhead;
    const char *prefix;            /* "bert.", "transformer." (absent in base-model files) */
    const char *qkv[3];            /* the three projections' names (HF_QKV; HF_KV the last two): query/key/value,
                                      q_lin/k_lin/v_lin, q/k/v */
} hf_arch;

#define N(a) (int)(sizeof a / sizeof a[0])

/* The HF source of pare parameter `name`: names[0..3) (one, or q/k/v) and the layout; 0 if unmapped. */
static int hf_source(const hf_arch *a, const char *prefix, int64_t L, const char *name, char hf[3][160],
                     hf_layout *how)
{
    static const char *const std_qkv[3] = {"query", "key", "value"};
    const char *const *qkv = a->qkv[0] ? a->qkv : std_qkv;
    for (int part = 0; part < 2; part++) { /* heads first: they may rename a body parameter (RoBERTa's pooler) */
        const hf_entry *t = part ? a->body : a->head;
        int n = part ? a->nbody : a->nhead;
        const char *pre = part ? prefix : "";
        for (int i = 0; i < n; i++) {
            int layered = strstr(t[i].pare, "%d") != NULL;
            for (int64_t l = 0; l < (layered ? L : 1); l++) {
                char p[PARE_NAME_MAX];
                snprintf(p, sizeof p, t[i].pare, (int)l);
                if (strcmp(p, name) != 0) continue;
                *how = t[i].how;
                for (int k = 0; k < hf_parts(t[i].how); k++) {
                    char body[160];
                    if (t[i].how == HF_QKV) snprintf(body, sizeof body, t[i].hf, (int)l, qkv[k]);
                    else if (t[i].how == HF_KV) snprintf(body, sizeof body, t[i].hf, (int)l, qkv[1 + k]);
                    else snprintf(body, sizeof body, t[i].hf, (int)l);
                    snprintf(hf[k], 160, "%s%s", pre, body);
                }
                return 1;
            }
        }
    }
    return 0;
}

/* the architectures both directions use (loading picks by config.json, saving by the model's options) */
static const hf_arch arch_bert = {"bert", bert_names, bert_cls_head, N(bert_names), N(bert_cls_head), "bert.", {0}};
static const hf_arch arch_bert_mlm = {"bert", bert_names, bert_mlm_head, N(bert_names), N(bert_mlm_head), "bert.", {0}};
static const hf_arch arch_gpt2 = {"gpt2", gpt2_names, NULL, N(gpt2_names), 0, "transformer.", {0}};
static const hf_arch arch_roberta = {"roberta", bert_names, roberta_cls_head, N(bert_names), N(roberta_cls_head),
                                     "roberta.", {0}};
static const hf_arch arch_roberta_mlm = {"roberta", bert_names, roberta_mlm_head, N(bert_names), N(roberta_mlm_head),
                                         "roberta.", {0}};
static const hf_arch arch_distilbert = {"distilbert", distilbert_names, distilbert_cls_head, N(distilbert_names),
                                        N(distilbert_cls_head), "distilbert.", {"q_lin", "k_lin", "v_lin"}};
static const hf_arch arch_distilbert_mlm = {"distilbert", distilbert_names, distilbert_mlm_head, N(distilbert_names),
                                            N(distilbert_mlm_head), "distilbert.", {"q_lin", "k_lin", "v_lin"}};
static const hf_arch arch_bart = {"bart", bart_names, bart_lm_head, N(bart_names), N(bart_lm_head), "model.",
                                  {"q", "k", "v"}};
static const hf_arch arch_bart_model = {"bart", bart_names, NULL, N(bart_names), 0, "model.", {"q", "k", "v"}};

/* ---- config.json ---- */

static pare_status read_text(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > ((size_t)64 << 20)) {
                free(buf), fclose(f);
                return pare_fail(PARE_EFORMAT, "%s: larger than 64 MB: not a config", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf), fclose(f);
                return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return pare_fail(PARE_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    return PARE_OK;
}

/* A whole number in 0..2^53 (a JSON number outside it has no exact integer; converting it is UB). */
static int json_count(const cJSON *e, int64_t *v)
{
    if (!cJSON_IsNumber(e)) return 0;
    double d = e->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
    *v = (int64_t)d;
    return 1;
}

static int cfg_int(const cJSON *c, const char *key, int64_t dflt, int64_t *v)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!e || cJSON_IsNull(e)) {
        *v = dflt;
        return dflt >= 0;
    }
    return json_count(e, v);
}

static const char *cfg_str(const cJSON *c, const char *key, const char *dflt)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsString(e) ? e->valuestring : dflt;
}

/* The head of a *ForSequenceClassification config as builder options: classes = num_labels (default: the
 * size of id2label, else 2), or head=regression when transformers would fit a regression (its rule:
 * problem_type "regression", or none given with num_labels 1; GLUE's STS-B). */
static pare_status cls_head(const char *path, const char *head, const cJSON *c, pare_kv *kv, int *n)
{
    const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(c, "id2label");
    const char *pt = cfg_str(c, "problem_type", "");
    int64_t ncls;
    if (!cfg_int(c, "num_labels", cJSON_IsObject(id2) ? cJSON_GetArraySize(id2) : 2, &ncls) || ncls < 1)
        return pare_fail(PARE_EFORMAT, "%s: %s: num_labels must be an integer >= 1", path, head);
    if (pt[0] && strcmp(pt, "regression") != 0 && strcmp(pt, "single_label_classification") != 0)
        return pare_fail(PARE_EFORMAT, "%s: %s with problem_type '%s': pare's heads are single_label_classification "
                         "(softmax over num_labels >= 2) and regression (num_labels 1)", path, head, pt);
    if (!strcmp(pt, "regression") || (!pt[0] && ncls == 1)) {
        if (ncls != 1)
            return pare_fail(PARE_EFORMAT, "%s: %s with problem_type 'regression' and %lld labels: pare's regression "
                             "head has one output (num_labels 1)", path, head, (long long)ncls);
        kv[(*n)++] = (pare_kv){"head", PARE_KV_STR, 0, "regression"};
    } else {
        if (ncls < 2)
            return pare_fail(PARE_EFORMAT, "%s: %s with problem_type '%s' and 1 label: a classifier needs at least 2 "
                             "(num_labels 1 is a regression head: problem_type 'regression')", path, head, pt);
        kv[(*n)++] = (pare_kv){"classes", PARE_KV_NUM, (double)ncls, NULL};
    }
    return PARE_OK;
}

/* The builder's options for the architecture in config.json; arch/head named in info. */
static pare_status options_of(const char *path, const cJSON *c, pare_kv *kv, int *n, const hf_arch **arch,
                              pare_hf_info *info, char *act_buf)
{
    const char *type = cfg_str(c, "model_type", "");
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(c, "architectures");
    const char *head = cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0))
                           ? cJSON_GetArrayItem(archs, 0)->valuestring
                           : "";
    snprintf(info->head, sizeof info->head, "%s", head);
    snprintf(info->arch, sizeof info->arch, "%s", type);
    int64_t V, C, L, H, F, P, NT;
    *n = 0;
#define KV_NUM(k, v) (kv[(*n)++] = (pare_kv){k, PARE_KV_NUM, (double)(v), NULL})
#define KV_STR(k, v) (kv[(*n)++] = (pare_kv){k, PARE_KV_STR, 0, v})
#define KV_BOOL(k, v) (kv[(*n)++] = (pare_kv){k, PARE_KV_BOOL, (double)(v), NULL})
    if (!strcmp(type, "bert")) {
        if (!cfg_int(c, "vocab_size", -1, &V) || !cfg_int(c, "hidden_size", -1, &C) ||
            !cfg_int(c, "num_hidden_layers", -1, &L) || !cfg_int(c, "num_attention_heads", -1, &H) ||
            !cfg_int(c, "intermediate_size", -1, &F) || !cfg_int(c, "max_position_embeddings", 512, &P) ||
            !cfg_int(c, "type_vocab_size", 2, &NT))
            return pare_fail(PARE_EFORMAT, "%s: a bert config needs integer vocab_size, hidden_size, num_hidden_layers, "
                             "num_attention_heads and intermediate_size", path);
        const char *act = cfg_str(c, "hidden_act", "gelu");
        if (!strcmp(act, "gelu")) strcpy(act_buf, "gelu_erf");
        else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) strcpy(act_buf, "gelu");
        else if (!strcmp(act, "relu")) strcpy(act_buf, "relu");
        else return pare_fail(PARE_EFORMAT, "%s: hidden_act '%s' is not one pare runs (gelu, gelu_new, relu)", path, act);
        const cJSON *eps = cJSON_GetObjectItemCaseSensitive(c, "layer_norm_eps");
        double e = cJSON_IsNumber(eps) ? eps->valuedouble : 1e-12;
        KV_NUM("vocab", V), KV_NUM("max_T", P), KV_NUM("d", C), KV_NUM("heads", H), KV_NUM("layers", L),
            KV_NUM("ffn", F), KV_STR("act", act_buf), KV_STR("norm", "post"), KV_NUM("ln_eps", e),
            KV_NUM("type_vocab", NT), KV_BOOL("emb_norm", 1);
        if (!strcmp(head, "BertForSequenceClassification")) {
            PARE_TRY(cls_head(path, head, c, kv, n));
            KV_STR("kind", "encoder"), KV_STR("pooler", "tanh"), KV_STR("pool", "cls");
            *arch = &arch_bert;
        } else if (!strcmp(head, "BertForMaskedLM") || !strcmp(head, "BertForPreTraining")) {
            KV_STR("kind", "tagger"), KV_STR("head", "mlm"), KV_BOOL("tie_head", 1);
            *arch = &arch_bert_mlm;
        } else
            return pare_fail(PARE_EFORMAT, "%s: architecture '%s' (bert): pare loads BertForSequenceClassification and "
                             "BertForMaskedLM", path, head[0] ? head : "(none given)");
    } else if (!strcmp(type, "roberta")) {
        if (!cfg_int(c, "vocab_size", -1, &V) || !cfg_int(c, "hidden_size", -1, &C) ||
            !cfg_int(c, "num_hidden_layers", -1, &L) || !cfg_int(c, "num_attention_heads", -1, &H) ||
            !cfg_int(c, "intermediate_size", -1, &F) || !cfg_int(c, "max_position_embeddings", 514, &P) ||
            !cfg_int(c, "type_vocab_size", 1, &NT))
            return pare_fail(PARE_EFORMAT, "%s: a roberta config needs integer vocab_size, hidden_size, "
                             "num_hidden_layers, num_attention_heads and intermediate_size", path);
        int64_t pad;
        if (!cfg_int(c, "pad_token_id", 1, &pad) || P <= pad + 1)
            return pare_fail(PARE_EFORMAT, "%s: max_position_embeddings %lld leaves no position after the padding id "
                             "%lld (RoBERTa's positions start at pad_token_id + 1)", path, (long long)P, (long long)pad);
        const char *act = cfg_str(c, "hidden_act", "gelu");
        if (!strcmp(act, "gelu")) strcpy(act_buf, "gelu_erf");
        else if (!strcmp(act, "gelu_new")) strcpy(act_buf, "gelu");
        else return pare_fail(PARE_EFORMAT, "%s: hidden_act '%s' is not one pare runs (gelu, gelu_new)", path, act);
        const cJSON *eps = cJSON_GetObjectItemCaseSensitive(c, "layer_norm_eps");
        /* positions are numbered from pad_token_id + 1 (right-padded rows): table row t + pad + 1 */
        KV_NUM("vocab", V), KV_NUM("max_T", P - pad - 1), KV_NUM("pos_offset", pad + 1), KV_NUM("d", C),
            KV_NUM("heads", H), KV_NUM("layers", L), KV_NUM("ffn", F), KV_STR("act", act_buf), KV_STR("norm", "post"),
            KV_NUM("ln_eps", cJSON_IsNumber(eps) ? eps->valuedouble : 1e-5), KV_NUM("type_vocab", NT),
            KV_BOOL("emb_norm", 1);
        if (!strcmp(head, "RobertaForSequenceClassification")) {
            PARE_TRY(cls_head(path, head, c, kv, n));
            KV_STR("kind", "encoder"), KV_STR("pooler", "tanh"), KV_STR("pool", "cls");
            *arch = &arch_roberta;
        } else if (!strcmp(head, "RobertaForMaskedLM")) {
            KV_STR("kind", "tagger"), KV_STR("head", "mlm"), KV_BOOL("tie_head", 1);
            *arch = &arch_roberta_mlm;
        } else
            return pare_fail(PARE_EFORMAT, "%s: architecture '%s' (roberta): pare loads RobertaForSequenceClassification "
                             "and RobertaForMaskedLM", path, head[0] ? head : "(none given)");
    } else if (!strcmp(type, "distilbert")) {
        if (!cfg_int(c, "vocab_size", -1, &V) || !cfg_int(c, "dim", -1, &C) || !cfg_int(c, "n_layers", -1, &L) ||
            !cfg_int(c, "n_heads", -1, &H) || !cfg_int(c, "hidden_dim", -1, &F) ||
            !cfg_int(c, "max_position_embeddings", 512, &P))
            return pare_fail(PARE_EFORMAT, "%s: a distilbert config needs integer vocab_size, dim, n_layers, n_heads and "
                             "hidden_dim", path);
        const cJSON *sin = cJSON_GetObjectItemCaseSensitive(c, "sinusoidal_pos_embds");
        if (cJSON_IsTrue(sin))
            return pare_fail(PARE_EFORMAT, "%s: sinusoidal_pos_embds = true (DistilBERT's own sinusoid table) is not "
                             "supported; learned positions are", path);
        const char *act = cfg_str(c, "activation", "gelu");
        if (!strcmp(act, "gelu")) strcpy(act_buf, "gelu_erf");
        else if (!strcmp(act, "relu")) strcpy(act_buf, "relu");
        else return pare_fail(PARE_EFORMAT, "%s: activation '%s' is not one pare runs (gelu, relu)", path, act);
        KV_NUM("vocab", V), KV_NUM("max_T", P), KV_NUM("d", C), KV_NUM("heads", H), KV_NUM("layers", L),
            KV_NUM("ffn", F), KV_STR("act", act_buf), KV_STR("norm", "post"), KV_NUM("ln_eps", 1e-12),
            KV_BOOL("emb_norm", 1);
        if (!strcmp(head, "DistilBertForSequenceClassification")) {
            PARE_TRY(cls_head(path, head, c, kv, n));
            KV_STR("kind", "encoder"), KV_STR("pooler", "relu"), KV_STR("pool", "cls");
            *arch = &arch_distilbert;
        } else if (!strcmp(head, "DistilBertForMaskedLM")) {
            KV_STR("kind", "tagger"), KV_STR("head", "mlm"), KV_BOOL("tie_head", 1);
            *arch = &arch_distilbert_mlm;
        } else
            return pare_fail(PARE_EFORMAT, "%s: architecture '%s' (distilbert): pare loads "
                             "DistilBertForSequenceClassification and DistilBertForMaskedLM", path,
                             head[0] ? head : "(none given)");
    } else if (!strcmp(type, "gpt2")) {
        if (!cfg_int(c, "vocab_size", -1, &V) || !cfg_int(c, "n_embd", -1, &C) || !cfg_int(c, "n_layer", -1, &L) ||
            !cfg_int(c, "n_head", -1, &H) || !cfg_int(c, "n_positions", 1024, &P) || !cfg_int(c, "n_inner", 4 * C, &F))
            return pare_fail(PARE_EFORMAT, "%s: a gpt2 config needs integer vocab_size, n_embd, n_layer and n_head", path);
        const char *act = cfg_str(c, "activation_function", "gelu_new");
        if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) strcpy(act_buf, "gelu");
        else if (!strcmp(act, "gelu")) strcpy(act_buf, "gelu_erf");
        else if (!strcmp(act, "relu")) strcpy(act_buf, "relu");
        else return pare_fail(PARE_EFORMAT, "%s: activation_function '%s' is not one pare runs (gelu_new, gelu, relu)",
                              path, act);
        if (head[0] && strcmp(head, "GPT2LMHeadModel") != 0 && strcmp(head, "GPT2Model") != 0)
            return pare_fail(PARE_EFORMAT, "%s: architecture '%s' (gpt2): pare loads GPT2LMHeadModel and GPT2Model", path,
                             head);
        const cJSON *eps = cJSON_GetObjectItemCaseSensitive(c, "layer_norm_epsilon");
        double e = cJSON_IsNumber(eps) ? eps->valuedouble : 1e-5;
        KV_STR("kind", "decoder"), KV_NUM("vocab", V), KV_NUM("max_T", P), KV_NUM("d", C), KV_NUM("heads", H),
            KV_NUM("layers", L), KV_NUM("ffn", F), KV_STR("act", act_buf), KV_STR("norm", "pre"), KV_NUM("ln_eps", e),
            KV_BOOL("tie_head", 1), KV_BOOL("head_bias", 0);
        *arch = &arch_gpt2;
    } else if (!strcmp(type, "bart")) {
        int64_t EL, EH, EF;
        if (!cfg_int(c, "vocab_size", -1, &V) || !cfg_int(c, "d_model", -1, &C) || !cfg_int(c, "decoder_layers", -1, &L) ||
            !cfg_int(c, "encoder_layers", -1, &EL) || !cfg_int(c, "decoder_attention_heads", -1, &H) ||
            !cfg_int(c, "encoder_attention_heads", -1, &EH) || !cfg_int(c, "decoder_ffn_dim", -1, &F) ||
            !cfg_int(c, "encoder_ffn_dim", -1, &EF) || !cfg_int(c, "max_position_embeddings", 1024, &P))
            return pare_fail(PARE_EFORMAT, "%s: a bart config needs integer vocab_size, d_model, encoder_layers, "
                             "decoder_layers, encoder_attention_heads, decoder_attention_heads, encoder_ffn_dim and "
                             "decoder_ffn_dim", path);
        /* pare's encdec has one width per model: both stacks share heads and FFN width */
        if (EH != H || EF != F)
            return pare_fail(PARE_EFORMAT, "%s: bart with encoder_%s %lld and decoder_%s %lld: pare's encoder-decoder "
                             "has one value for both stacks", path, EH != H ? "attention_heads" : "ffn_dim",
                             (long long)(EH != H ? EH : EF), EH != H ? "attention_heads" : "ffn_dim",
                             (long long)(EH != H ? H : F));
        const char *act = cfg_str(c, "activation_function", "gelu");
        if (!strcmp(act, "gelu")) strcpy(act_buf, "gelu_erf");
        else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) strcpy(act_buf, "gelu");
        else if (!strcmp(act, "relu")) strcpy(act_buf, "relu");
        else return pare_fail(PARE_EFORMAT, "%s: activation_function '%s' is not one pare runs (gelu, gelu_new, relu)",
                              path, act);
        /* mBART-style keys change the layout (pre-LN, a final LayerNorm); an untied LM head is another tensor */
        static const char *const refused[] = {"normalize_before", "add_final_layer_norm"};
        for (int i = 0; i < 2; i++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, refused[i])))
                return pare_fail(PARE_EFORMAT, "%s: bart with %s = true (mBART's layout) is not supported: pare loads "
                                 "BART's post-LayerNorm blocks", path, refused[i]);
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings")))
            return pare_fail(PARE_EFORMAT, "%s: bart with tie_word_embeddings = false (a separate lm_head.weight) is not "
                             "supported: pare ties the LM head to model.shared", path);
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(c, "scale_embedding");
        if (sc && !cJSON_IsBool(sc) && !cJSON_IsNull(sc))
            return pare_fail(PARE_EFORMAT, "%s: scale_embedding must be true or false", path);
        if (P < 1 || P > 1000000)
            return pare_fail(PARE_EFORMAT, "%s: max_position_embeddings %lld: must be in [1, 1000000]", path, (long long)P);
        /* positions are BartLearnedPositionalEmbedding's: table row t + 2 (embed_positions has P + 2 rows) */
        KV_STR("kind", "encdec"), KV_NUM("vocab", V), KV_NUM("max_T", P), KV_NUM("src_max_T", P), KV_NUM("d", C),
            KV_NUM("heads", H), KV_NUM("layers", L), KV_NUM("enc_layers", EL), KV_NUM("ffn", F), KV_STR("act", act_buf),
            KV_STR("norm", "post"), KV_NUM("ln_eps", 1e-5), KV_BOOL("emb_norm", 1), KV_NUM("pos_offset", 2),
            KV_BOOL("share_emb", 1), KV_BOOL("tie_head", 1);
        if (cJSON_IsTrue(sc)) KV_NUM("emb_scale", sqrt((double)C));
        if (!strcmp(head, "BartForConditionalGeneration")) {
            KV_BOOL("head_bias", 1);
            *arch = &arch_bart;
        } else if (!strcmp(head, "BartModel")) {
            KV_BOOL("head_bias", 0); /* logits: the last hidden states against the shared table */
            *arch = &arch_bart_model;
        } else
            return pare_fail(PARE_EFORMAT, "%s: architecture '%s' (bart): pare loads BartForConditionalGeneration and "
                             "BartModel", path, head[0] ? head : "(none given)");
    } else
        return pare_fail(PARE_EFORMAT, "%s: model_type '%s' is not one pare loads (bert, roberta, distilbert, gpt2, "
                         "bart)", path, type[0] ? type : "(none given)");
#undef KV_NUM
#undef KV_STR
#undef KV_BOOL
    return PARE_OK;
}

/* ---- loading ---- */

static int ignored_tensor(const char *name)
{
    size_t n = strlen(name);
#define ENDS(s) (n >= sizeof s - 1 && !strcmp(name + n - (sizeof s - 1), s))
    return ENDS("position_ids") || ENDS("attn.bias") || ENDS("attn.masked_bias") || ENDS("lm_head.weight") ||
           ENDS("cls.predictions.decoder.weight") || ENDS("cls.predictions.decoder.bias") ||
           ENDS("lm_head.decoder.weight") || ENDS("lm_head.decoder.bias") || ENDS("vocab_projector.weight") ||
           ENDS("encoder.embed_tokens.weight") || ENDS("decoder.embed_tokens.weight"); /* BART: tied to shared */
#undef ENDS
}

/* The tensor `name` of f, accepting TensorFlow-era LayerNorm names (gamma, beta) for weight, bias. */
static const pare_st_tensor *find_tensor(const pare_st_file *f, const char *name)
{
    const pare_st_tensor *t = pare_safetensors_find(f, name);
    if (t || !strstr(name, "LayerNorm.")) return t;
    char alt[192];
    size_t n = strlen(name);
    if (n > 7 && !strcmp(name + n - 7, ".weight")) snprintf(alt, sizeof alt, "%.*s.gamma", (int)(n - 7), name);
    else if (n > 5 && !strcmp(name + n - 5, ".bias")) snprintf(alt, sizeof alt, "%.*s.beta", (int)(n - 5), name);
    else return NULL;
    return pare_safetensors_find(f, alt);
}

static int64_t tensor_numel(const pare_st_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static pare_status read_param(const pare_st_file *f, const hf_arch *a, pare_param *p, const char *const hf[3], hf_layout how,
                              char *used)
{
    int parts = hf_parts(how);
    int64_t N = p->shape[0], K = p->ndim > 1 ? p->shape[1] : 1, per = pare_param_numel(p) / parts;
    float *tmp = how == HF_T ? malloc(sizeof(float) * (size_t)(N * K)) : NULL;
    if (how == HF_T && !tmp) return pare_fail(PARE_ENOMEM, "out of memory reading %s", hf[0]);
    pare_status st = PARE_OK;
    for (int k = 0; k < parts && st == PARE_OK; k++) {
        const pare_st_tensor *t = find_tensor(f, hf[k]);
        if (!t) {
            st = pare_fail(PARE_EFORMAT, "%s: tensor '%s' is missing (pare's %s needs it for %s)", f->path, hf[k], a->name,
                           p->name);
            break;
        }
        used[t - f->tensors] = 1;
        int64_t r = how == HF_T ? K : how == HF_ROW ? 1 : N / parts, c = how == HF_T || how == HF_ROW ? N : K; /* HF's */
        int two = how == HF_T || how == HF_ROW || p->ndim == 2;
        if (t->ndim != (two ? 2 : 1) || t->shape[0] != r || (two && t->shape[1] != c)) {
            char want[64];
            if (two) snprintf(want, sizeof want, "[%lld, %lld]", (long long)r, (long long)c);
            else snprintf(want, sizeof want, "[%lld]", (long long)r);
            st = pare_fail(PARE_EFORMAT, "%s: tensor '%s' has %d dimensions and %lld elements; pare's %s needs %s for %s",
                           f->path, hf[k], t->ndim, (long long)tensor_numel(t), a->name, want, p->name);
            break;
        }
        st = pare_safetensors_read_as_f32(f, t, how == HF_T ? tmp : p->blob->data + k * per, (size_t)per);
    }
    if (st == PARE_OK && how == HF_T)
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < N; j++) p->blob->data[j * K + i] = tmp[i * N + j];
    free(tmp);
    return st;
}

/* One more than the highest layer number in m's parameter names ("enc.3.", "dec.5."): an encoder-decoder's
 * encoder may have more layers than m->L (the decoder's). */
static int64_t layer_bound(const pare_model *m)
{
    int64_t L = m->L;
    for (int64_t i = 0; i < m->nparams; i++) {
        long l = -1;
        if (sscanf(m->params[i].name, "%*[a-z].%ld.", &l) == 1 && l >= L) L = l + 1;
    }
    return L;
}

/* config.json's pruned_heads ({"2": [0, 5], ...}, possibly {}) applied to m's attention layers. */
static pare_status apply_pruned_heads(pare_model *m, const cJSON *ph, const char *dir)
{
    if (cJSON_IsNull(ph)) return PARE_OK;
    if (!cJSON_IsObject(ph)) return pare_fail(PARE_EFORMAT, "%s/config.json: pruned_heads must be an object", dir);
    if (!strcmp(m->kind, "encdec") && ph->child)
        return pare_fail(PARE_EFORMAT, "%s/config.json: pruned_heads in an encoder-decoder (bart): transformers does not "
                         "prune BART's heads, and pare does not read such a key", dir);
    const char *blk = !strcmp(m->kind, "decoder") ? "dec" : "enc";
    for (const cJSON *e = ph->child; e; e = e->next) {
        char *end;
        long layer = strtol(e->string, &end, 10);
        char name[PARE_NAME_MAX];
        snprintf(name, sizeof name, "%s.%ld.attn", blk, layer);
        int node = *end || layer < 0 ? -1 : pare_model_find_node(m, name);
        if (node < 0 || !cJSON_IsArray(e))
            return pare_fail(PARE_EFORMAT, "%s/config.json: pruned_heads key '%s' is not a layer of the model (0..%lld) "
                             "with a list of heads", dir, e->string, (long long)m->L - 1);
        int heads[1024], n = 0;
        const cJSON *h;
        cJSON_ArrayForEach(h, e)
        {
            int64_t hv;
            if (!json_count(h, &hv) || hv > INT_MAX || n >= 1024)
                return pare_fail(PARE_EFORMAT, "%s/config.json: pruned_heads['%s'] must list head numbers", dir, e->string);
            heads[n++] = (int)hv;
        }
        if (n && pare_model_drop_heads(m, node, heads, n) != PARE_OK)
            return pare_fail_ctx(PARE_EFORMAT, "%s/config.json: pruned_heads['%s']", dir, e->string);
    }
    return PARE_OK;
}

pare_status pare_hf_load(pare_model **out, pare_hf_info *info, const char *dir)
{
    *out = NULL;
    pare_hf_info scratch;
    if (!info) info = &scratch;
    memset(info, 0, sizeof *info);
    char path[4096], act[16];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    PARE_TRY(read_text(path, &text));
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return pare_fail(PARE_EFORMAT, "%s: not a JSON object", path);
    }
    pare_kv kv[32];
    int nkv = 0;
    const hf_arch *arch = NULL;
    pare_status st = options_of(path, cfg, kv, &nkv, &arch, info, act);
    pare_options o;
    pare_model *m = NULL;
    if (st == PARE_OK && (st = pare_opts_resolve(&o, &pare_model_schema, kv, nkv)) != PARE_OK)
        st = pare_fail_ctx(PARE_EFORMAT, "%s", path);
    /* heads pruned by transformers' prune_heads: {"layer": [head, ...]}, applied before the tensors are read */
    cJSON *pruned = cJSON_DetachItemFromObjectCaseSensitive(cfg, "pruned_heads");
    cJSON_Delete(cfg);
    if (st != PARE_OK) {
        cJSON_Delete(pruned);
        return st;
    }

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    pare_st_file *f = NULL;
    if (stat(path, &sb) != 0) {
        cJSON_Delete(pruned);
        char alt[4096];
        snprintf(alt, sizeof alt, "%s/model.safetensors.index.json", dir);
        if (stat(alt, &sb) == 0)
            return pare_fail(PARE_EFORMAT, "%s: a sharded checkpoint (model.safetensors.index.json); pare reads one "
                             "model.safetensors", dir);
        snprintf(alt, sizeof alt, "%s/pytorch_model.bin", dir);
        if (stat(alt, &sb) == 0)
            return pare_fail(PARE_EFORMAT, "%s: only pytorch_model.bin (a pickle); pare reads model.safetensors (convert "
                             "it with the safetensors library, or save_pretrained(safe_serialization=True))", dir);
        return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    if ((st = pare_safetensors_open(&f, path)) != PARE_OK) {
        cJSON_Delete(pruned);
        return st;
    }
    /* files of the bare model (BertModel, GPT2Model) have no prefix */
    char probe[160];
    snprintf(probe, sizeof probe, "%s%s", arch->prefix, arch->body[0].hf);
    const char *prefix = pare_safetensors_find(f, probe) ? arch->prefix : "";
    char *used = calloc((size_t)(f->ntensors ? f->ntensors : 1), 1);
    if (!used) st = pare_fail(PARE_ENOMEM, "out of memory");
    if (st == PARE_OK && (st = pare_transformer_build(&m, &o)) != PARE_OK) st = pare_fail_ctx(st, "%s", dir);
    if (st == PARE_OK && pruned) st = apply_pruned_heads(m, pruned, dir);
    cJSON_Delete(pruned);
    int64_t nlayers = st == PARE_OK ? layer_bound(m) : 0;
    for (int64_t i = 0; st == PARE_OK && i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        char hf[3][160];
        hf_layout how;
        if (!hf_source(arch, prefix, nlayers, p->name, hf, &how)) {
            st = pare_fail(PARE_EINVAL, "%s: pare's %s has a parameter '%s' with no Hugging Face name (a pare bug)", dir,
                           arch->name, p->name);
            break;
        }
        const char *names[3] = {hf[0], hf[1], hf[2]};
        st = read_param(f, arch, p, names, how, used);
        if (st == PARE_OK) info->tensors += hf_parts(how);
    }
    for (int64_t i = 0; st == PARE_OK && i < f->ntensors; i++)
        if (!used[i] && !ignored_tensor(f->tensors[i].name))
            st = pare_fail(PARE_EFORMAT, "%s: tensor '%s' is not part of pare's %s (%s): another architecture or head?",
                           path, f->tensors[i].name, arch->name, info->head[0] ? info->head : "no head named");
    if (st == PARE_OK && f->ntensors)
        snprintf(info->dtype, sizeof info->dtype, "%s", pare_st_dtype_name(f->tensors[0].dtype));
    free(used);
    pare_safetensors_close(f);
    if (st != PARE_OK) {
        pare_model_free(m);
        return st;
    }
    snprintf(m->applied, sizeof m->applied, "%s", "");
    *out = m;
    return PARE_OK;
}

/* ---- saving ---- */

/* The builder's options of m (its config record), for deciding the architecture. */
static pare_status model_options(const pare_model *m, pare_options *o, cJSON **root)
{
    *root = cJSON_Parse(m->config);
    if (!cJSON_IsObject(*root)) return pare_fail(PARE_EINVAL, "saving in Hugging Face form: the model has no builder options "
                                                 "(a hand-built graph)");
    pare_kv kv[PARE_MAX_OPTS];
    int n = 0;
    for (const cJSON *e = (*root)->child; e && n < PARE_MAX_OPTS; e = e->next) {
        pare_kv *k = &kv[n++];
        k->key = e->string;
        if (cJSON_IsNumber(e)) k->kind = PARE_KV_NUM, k->num = e->valuedouble;
        else if (cJSON_IsBool(e)) k->kind = PARE_KV_BOOL, k->num = cJSON_IsTrue(e);
        else k->kind = PARE_KV_STR, k->str = cJSON_IsString(e) ? e->valuestring : "";
    }
    return pare_opts_resolve(o, &pare_model_schema, kv, n);
}

static pare_status write_config(const char *path, cJSON *c)
{
    char *text = cJSON_Print(c);
    if (!text) return pare_fail(PARE_ENOMEM, "out of memory writing %s", path);
    size_t n = strlen(text);
    text[n] = '\n';
    pare_status st = pare_atomic_replace(path, text, n + 1, "saving a Hugging Face config");
    free(text);
    return st;
}

/* 1 if a node reads parameter p (as an operand or a transform's auxiliary): a baked mask's parameter is not. */
static int param_used(const pare_model *m, int64_t p)
{
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        for (int k = 0; k < n->nparam; k++)
            if (n->param[k] == p) return 1;
        for (int k = 0; k < n->ntf; k++)
            for (int j = 0; j < PARE_TF_MAX_AUX; j++)
                if (n->tf[k].aux[j] == p) return 1;
    }
    return 0;
}

static pare_status hf_save_plain(const pare_model *m, const char *dir);

/* Pruning masks are written as what they compute, W ⊙ M (Hugging Face has no masks): a clone with every
 * mask baked is saved; other weight transforms (fake quantization, head gates) have no HF form. */
pare_status pare_hf_save(const pare_model *m, const char *dir)
{
    int masked = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].ntf; k++) {
            if (m->nodes[i].tf[k].kind != PARE_TF_MASK || m->nodes[i].tf[k].operand != PARE_TF_WEIGHT)
                return pare_fail(PARE_EINVAL, "%s: %s carries a %s transform, which Hugging Face checkpoints cannot hold "
                                 "(convert or remove it first)", dir, m->nodes[i].name, pare_tf_name(m->nodes[i].tf[k].kind));
            masked = 1;
        }
    if (!masked) return hf_save_plain(m, dir);
    pare_model *c = pare_model_clone(m);
    if (!c) return pare_fail(PARE_ENOMEM, "out of memory saving %s", dir);
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < c->nnodes; i++)
        if (c->nodes[i].ntf) st = pare_model_bake_mask(c, c->nodes[i].name);
    if (st == PARE_OK) st = hf_save_plain(c, dir);
    pare_model_free(c);
    return st;
}

static pare_status hf_save_plain(const pare_model *m, const char *dir)
{
    pare_options o;
    cJSON *opts = NULL;
    pare_status st = model_options(m, &o, &opts);
    cJSON_Delete(opts);
    if (st != PARE_OK) return pare_fail_ctx(st, "%s", dir);
    const char *kind = pare_opt_str(&o, "kind"), *act = pare_opt_str(&o, "act");
    int post = !strcmp(pare_opt_str(&o, "norm"), "post"), tie = pare_opt_bool(&o, "tie_head");
    int emb_norm = pare_opt_bool(&o, "emb_norm"), learned = !strcmp(pare_opt_str(&o, "pos"), "learned");
    int mlm = !strcmp(pare_opt_str(&o, "head"), "mlm");
    const char *pooler = pare_opt_str(&o, "pooler");
    int64_t poff = pare_opt_int(&o, "pos_offset"), NT = pare_opt_int(&o, "type_vocab");
    double eps = pare_opt_num(&o, "ln_eps"), escale = pare_opt_num(&o, "emb_scale"), C_ = (double)m->C;
    const hf_arch *a = NULL;
    const char *head = NULL;
    /* the BERT family by position offset (RoBERTa numbers positions after its padding id) and token types
     * (DistilBERT has none) */
    int bert_like = post && emb_norm && learned && escale == 1.0;
    if (bert_like && !strcmp(kind, "encoder") && !strcmp(pooler, "tanh"))
        a = poff > 0 && NT > 0 ? &arch_roberta : &arch_bert,
        head = a == &arch_roberta ? "RobertaForSequenceClassification" : "BertForSequenceClassification";
    else if (bert_like && !strcmp(kind, "encoder") && !strcmp(pooler, "relu") && NT == 0)
        a = &arch_distilbert, head = "DistilBertForSequenceClassification";
    else if (bert_like && !strcmp(kind, "tagger") && tie && mlm)
        a = poff > 0 && NT > 0 ? &arch_roberta_mlm : NT == 0 ? &arch_distilbert_mlm : &arch_bert_mlm,
        head = a == &arch_roberta_mlm ? "RobertaForMaskedLM" : a == &arch_distilbert_mlm ? "DistilBertForMaskedLM"
                                                                                         : "BertForMaskedLM";
    else if (!post && !strcmp(kind, "decoder") && tie && !pare_opt_bool(&o, "head_bias") && learned && escale == 1.0)
        a = &arch_gpt2, head = "GPT2LMHeadModel";
    else if (post && emb_norm && learned && !strcmp(kind, "encdec") && tie && pare_opt_bool(&o, "share_emb"))
        a = pare_opt_bool(&o, "head_bias") ? &arch_bart : &arch_bart_model,
        head = a == &arch_bart ? "BartForConditionalGeneration" : "BartModel";
    if (!a)
        return pare_fail(PARE_EINVAL, "%s: the model is not shaped as a Hugging Face architecture pare writes: BERT, "
                         "RoBERTa (pos_offset > 0) or DistilBERT (no token types, pooler=relu or head=mlm) (norm=post, "
                         "emb_norm, an encoder with pooler=tanh or a tagger with head=mlm and tie_head), GPT-2 (a "
                         "pre-norm decoder with tie_head and no head bias) or BART (an encdec with norm=post, emb_norm, "
                         "share_emb and tie_head)", dir);
    /* what each architecture's config cannot say */
    const char *bad = strcmp(pare_opt_str(&o, "attention"), "") != 0 ? "attention variants"
                      : strcmp(pare_opt_str(&o, "pool"), "cls") != 0 ? "pool=mean"
                      : (a == &arch_bart || a == &arch_bart_model) ? (poff != 2                     ? "pos_offset other than 2"
                                                                      : m->src_max_T != m->max_T     ? "src_max_T other than max_T"
                                                                      : fabs(eps - 1e-5) > 1e-12     ? "ln_eps other than 1e-5"
                                                                      : escale != 1.0 && fabs(escale - sqrt(C_)) > 1e-6 * sqrt(C_)
                                                                          ? "emb_scale other than 1 or sqrt(d)"
                                                                          : NULL)
                      : (a == &arch_roberta || a == &arch_roberta_mlm) ? NULL
                      : poff != 0 ? "pos_offset"
                      : (a == &arch_distilbert || a == &arch_distilbert_mlm) ? (fabs(eps - 1e-12) > 1e-20 ? "ln_eps other than 1e-12"
                                                                                : !strcmp(act, "gelu") ? "act=gelu (tanh form)"
                                                                                                       : NULL)
                                                                             : NULL;
    if (bad)
        return pare_fail(PARE_EINVAL, "%s: options with no Hugging Face %s equivalent: %s", dir, a->name, bad);
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_TOKEN_SELECT)
            return pare_fail(PARE_EINVAL, "%s: the model is token-pruned (%s, prune_tokens), which a Hugging Face %s config "
                             "cannot say: save it with m:save (the checkpoint keeps the schedule)", dir, m->nodes[i].name,
                             a->name);
    int bart = a == &arch_bart || a == &arch_bart_model;
    /* one width per model in HF's configs, but heads pruned per layer are described by pruned_heads: the
     * unedited model with each layer's last heads dropped must have m's shapes; any other edit is refused.
     * (Which heads were dropped does not matter: the kept heads' weights are what is written, in order.) */
    pare_model *fresh = NULL;
    PARE_TRY(pare_transformer_build(&fresh, &o));
    cJSON *pruned = cJSON_CreateObject();
    for (int64_t i = 0; i < m->nnodes && st == PARE_OK; i++) {
        const pare_node *n = &m->nodes[i];
        int j = n->op == PARE_OP_ATTENTION ? pare_model_find_node(fresh, n->name) : -1;
        if (j < 0 || fresh->nodes[j].a.heads <= n->a.heads) continue;
        if (bart) {
            st = pare_fail(PARE_EINVAL, "%s: heads removed from %s: BART's configs have no pruned_heads (transformers "
                           "does not prune BART's heads)", dir, n->name);
            break;
        }
        int H = fresh->nodes[j].a.heads, drop[1024], k = 0;
        for (int h = n->a.heads; h < H && k < 1024; h++) drop[k++] = h;
        st = pare_model_drop_heads(fresh, j, drop, k);
        long layer = -1;
        sscanf(n->name, "%*[a-z].%ld.", &layer);
        char key[32];
        snprintf(key, sizeof key, "%ld", layer);
        cJSON *arr = cJSON_AddArrayToObject(pruned, key);
        for (int h = 0; h < k; h++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(drop[h]));
    }
    int same = st == PARE_OK;
    int64_t used = 0;
    for (int64_t i = 0; same && i < m->nparams; i++) {
        if (!param_used(m, i)) continue; /* a baked mask */
        same = used < fresh->nparams && !strcmp(fresh->params[used].name, m->params[i].name) &&
               fresh->params[used].shape[0] == m->params[i].shape[0] && fresh->params[used].shape[1] == m->params[i].shape[1];
        used++;
    }
    same = same && used == fresh->nparams;
    pare_model_free(fresh);
    if (st != PARE_OK) {
        cJSON_Delete(pruned);
        return st;
    }
    if (!same) {
        cJSON_Delete(pruned);
        return pare_fail(PARE_EINVAL, "%s: the model's layers were edited beyond removing heads (FFN neurons or layers "
                         "removed); Hugging Face %s configs describe one width for every layer", dir, a->name);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        cJSON_Delete(pruned);
        return pare_fail(PARE_EIO, "%s: cannot create: %s", dir, strerror(errno));
    }

    /* tensors: HF names and layouts (q, k, v split; Conv1D transposed); the tied head is not written */
    int64_t cap = m->nparams * 3 + 1, nt = 0;
    pare_st_out *t = calloc((size_t)cap, sizeof *t);
    char (*names)[160] = calloc((size_t)cap, sizeof *names);
    int64_t (*shapes)[2] = calloc((size_t)cap, sizeof *shapes);
    float **bufs = calloc((size_t)cap, sizeof *bufs);
    if (!t || !names || !shapes || !bufs) st = pare_fail(PARE_ENOMEM, "out of memory saving %s", dir);
    const char *prefix = a == &arch_bart_model ? "" : a->prefix; /* BartModel's files have no "model." */
    int64_t nlayers = layer_bound(m);
    for (int64_t i = 0; st == PARE_OK && i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!param_used(m, i)) continue;
        char hf[3][160];
        hf_layout how;
        if (!hf_source(a, prefix, nlayers, p->name, hf, &how)) {
            st = pare_fail(PARE_EINVAL, "%s: parameter '%s' has no Hugging Face %s name", dir, p->name, a->name);
            break;
        }
        int64_t N = p->shape[0], K = p->ndim > 1 ? p->shape[1] : 1;
        int parts = hf_parts(how);
        for (int k = 0; k < parts; k++) {
            memcpy(names[nt], hf[k], sizeof names[nt]);
            t[nt].name = names[nt];
            t[nt].ndim = p->ndim;
            if (how == HF_QKV || how == HF_KV) {
                shapes[nt][0] = N / parts, shapes[nt][1] = K;
                t[nt].data = p->blob->data + k * (N / parts) * K;
            } else if (how == HF_ROW) {
                t[nt].ndim = 2, shapes[nt][0] = 1, shapes[nt][1] = N;
                t[nt].data = p->blob->data;
            } else if (how == HF_T) {
                shapes[nt][0] = K, shapes[nt][1] = N;
                bufs[nt] = malloc(sizeof(float) * (size_t)(N * K));
                if (!bufs[nt]) {
                    st = pare_fail(PARE_ENOMEM, "out of memory saving %s", dir);
                    break;
                }
                for (int64_t r = 0; r < N; r++)
                    for (int64_t c = 0; c < K; c++) bufs[nt][c * N + r] = p->blob->data[r * K + c];
                t[nt].data = bufs[nt];
            } else {
                shapes[nt][0] = N, shapes[nt][1] = K;
                t[nt].data = p->blob->data;
            }
            t[nt].shape = shapes[nt];
            nt++;
        }
    }
    char path[4096];
    if (st == PARE_OK) {
        const char *meta[] = {"format", "pt"};
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = pare_safetensors_write_f32(path, t, nt, meta, 1);
    }
    for (int64_t i = 0; bufs && i < nt; i++) free(bufs[i]);
    free(t), free(names), free(shapes), free(bufs);
    if (st != PARE_OK) {
        cJSON_Delete(pruned);
        return st;
    }

    cJSON *c = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(arr, cJSON_CreateString(head));
    cJSON_AddStringToObject(c, "model_type", a->name);
    /* the builder's (unpruned) sizes: HF describes pruned heads apart, in pruned_heads */
    int64_t ffn = pare_opt_int(&o, "ffn");
    double V = (double)m->vocab, C = (double)m->C, L = (double)pare_opt_int(&o, "layers"),
           H = (double)pare_opt_int(&o, "heads"), F = (double)(ffn ? ffn : 4 * m->C), P = (double)m->max_T;
    const char *hf_act = !strcmp(act, "gelu_erf") ? "gelu" : !strcmp(act, "gelu") ? "gelu_new" : "relu";
    if (bart) {
        int64_t EL = pare_opt_int(&o, "enc_layers");
        cJSON_AddNumberToObject(c, "vocab_size", V), cJSON_AddNumberToObject(c, "d_model", C);
        cJSON_AddNumberToObject(c, "encoder_layers", (double)(EL < 0 ? (int64_t)L : EL));
        cJSON_AddNumberToObject(c, "decoder_layers", L);
        cJSON_AddNumberToObject(c, "encoder_attention_heads", H), cJSON_AddNumberToObject(c, "decoder_attention_heads", H);
        cJSON_AddNumberToObject(c, "encoder_ffn_dim", F), cJSON_AddNumberToObject(c, "decoder_ffn_dim", F);
        cJSON_AddNumberToObject(c, "max_position_embeddings", P);
        cJSON_AddStringToObject(c, "activation_function", hf_act);
        cJSON_AddBoolToObject(c, "scale_embedding", escale != 1.0);
        cJSON_AddNumberToObject(c, "pad_token_id", 1), cJSON_AddNumberToObject(c, "bos_token_id", 0);
        cJSON_AddNumberToObject(c, "eos_token_id", 2), cJSON_AddNumberToObject(c, "decoder_start_token_id", 2);
        cJSON_AddBoolToObject(c, "is_encoder_decoder", 1), cJSON_AddBoolToObject(c, "tie_word_embeddings", 1);
    } else if (a == &arch_distilbert || a == &arch_distilbert_mlm) {
        cJSON_AddNumberToObject(c, "vocab_size", V), cJSON_AddNumberToObject(c, "dim", C);
        cJSON_AddNumberToObject(c, "n_layers", L), cJSON_AddNumberToObject(c, "n_heads", H);
        cJSON_AddNumberToObject(c, "hidden_dim", F), cJSON_AddStringToObject(c, "activation", hf_act);
        cJSON_AddNumberToObject(c, "max_position_embeddings", P);
        cJSON_AddBoolToObject(c, "sinusoidal_pos_embds", 0);
        cJSON_AddNumberToObject(c, "pad_token_id", 0);
    } else if (a == &arch_gpt2) {
        cJSON_AddNumberToObject(c, "vocab_size", V), cJSON_AddNumberToObject(c, "n_embd", C);
        cJSON_AddNumberToObject(c, "n_layer", L), cJSON_AddNumberToObject(c, "n_head", H);
        cJSON_AddNumberToObject(c, "n_positions", P), cJSON_AddNumberToObject(c, "n_ctx", P);
        cJSON_AddNumberToObject(c, "n_inner", F), cJSON_AddStringToObject(c, "activation_function", hf_act);
        cJSON_AddNumberToObject(c, "layer_norm_epsilon", pare_opt_num(&o, "ln_eps"));
        cJSON_AddBoolToObject(c, "tie_word_embeddings", 1);
    } else {
        cJSON_AddNumberToObject(c, "vocab_size", V), cJSON_AddNumberToObject(c, "hidden_size", C);
        cJSON_AddNumberToObject(c, "num_hidden_layers", L), cJSON_AddNumberToObject(c, "num_attention_heads", H);
        cJSON_AddNumberToObject(c, "intermediate_size", F), cJSON_AddStringToObject(c, "hidden_act", hf_act);
        /* RoBERTa: positions start after the padding id, so the table has pad_token_id + 1 more rows */
        cJSON_AddNumberToObject(c, "max_position_embeddings", P + (double)poff);
        cJSON_AddNumberToObject(c, "type_vocab_size", (double)NT);
        cJSON_AddNumberToObject(c, "layer_norm_eps", eps);
        cJSON_AddNumberToObject(c, "pad_token_id", (double)(poff > 0 ? poff - 1 : 0));
        if (poff > 0) cJSON_AddNumberToObject(c, "bos_token_id", 0), cJSON_AddNumberToObject(c, "eos_token_id", 2);
    }
    if (a == &arch_bert || a == &arch_roberta || a == &arch_distilbert) { /* the classifiers' labels */
        cJSON *id2 = cJSON_AddObjectToObject(c, "id2label"), *l2 = cJSON_AddObjectToObject(c, "label2id");
        for (int64_t k = 0; k < m->nclass; k++) {
            char key[32], lab[32];
            snprintf(key, sizeof key, "%lld", (long long)k), snprintf(lab, sizeof lab, "LABEL_%lld", (long long)k);
            cJSON_AddStringToObject(id2, key, lab), cJSON_AddNumberToObject(l2, lab, (double)k);
        }
        if (!strcmp(pare_opt_str(&o, "head"), "regression")) { /* num_labels 1: transformers' MSE head */
            cJSON_AddStringToObject(c, "problem_type", "regression");
        }
    }
    if (pruned->child) cJSON_AddItemToObject(c, "pruned_heads", pruned);
    else cJSON_Delete(pruned);
    cJSON_AddStringToObject(c, "torch_dtype", "float32");
    cJSON_AddStringToObject(c, "pare_applied", m->applied); /* what was done to it (quantized weights are saved as f32) */
    snprintf(path, sizeof path, "%s/config.json", dir);
    st = write_config(path, c);
    cJSON_Delete(c);
    return st;
}
