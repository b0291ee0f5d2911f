/* test_checkpoint_q.c — quantized checkpoints and quantized embedding tables:
 *   - every quantized format with a checkpoint form (int8 per channel / per tensor / PyTorch's scheme / LLM.int8(),
 *     q8_0, q4_0, q4_1, int4_group sym and asym, int8_group, simulated) saves → loads with the same stored bytes and
 *     bit-identical logits; the file's data block is exactly the quantized size (+ the f32 tensors); {masters} adds
 *     the f32 masters back bit for bit; {f32} writes the old form; an older checkpoint (the fuzz corpus) still loads;
 *   - damaged stored forms (unknown format name, missing / extra / mistyped tensor, a -128 Q8_0 code, a NaN scale,
 *     a bad activation mode) are PARE_EFORMAT naming the tensor (and the valid formats);
 *   - a quantized embedding lookup equals dequantize-then-lookup exactly (int8 rows, every qblock kind), and a tied
 *     LM head quantizes its table once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "io/safetensors.h"
#include "kernels/embed_q.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "test_tmpdir.h"

/* a model of the options, its trainable weights moved by 0.1 · N(0, 1) (seed 5) so a load that rebuilt them shows */
static pare_model *build(const pare_kv *kv, int n)
{
    pare_model *m = build_model(kv, n);
    if (m) perturb_trainable(m, 5, 0.1);
    return m;
}

/* logits of a and b on one batch: 1 if identical */
static int same_logits(pare_model *a, pare_model *b)
{
    int64_t B = 2, T = a->max_T;
    int32_t tok[256], len[2] = {(int32_t)T, (int32_t)T - 2};
    pare_rng r;
    pare_rng_seed(&r, 17);
    for (int64_t i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&r, (uint64_t)a->vocab);
    pare_exec *xa = NULL, *xb = NULL;
    int same = 0;
    if (pare_exec_new(&xa, a, B, T, PARE_EXEC_INFER) == PARE_OK && pare_exec_new(&xb, b, B, T, PARE_EXEC_INFER) == PARE_OK &&
        pare_exec_bind(xa, tok, len, NULL) == PARE_OK && pare_exec_bind(xb, tok, len, NULL) == PARE_OK &&
        pare_exec_forward(xa) == PARE_OK && pare_exec_forward(xb) == PARE_OK) {
        int64_t n = (a->lm ? B * T : B) * a->nclass;
        same = memcmp(pare_exec_logits(xa), pare_exec_logits(xb), (size_t)n * sizeof(float)) == 0;
    } else diag("run: %s", pare_errmsg());
    pare_exec_free(xa);
    pare_exec_free(xb);
    return same;
}

/* The stored forms of p and q hold the same bytes. */
static int same_form(const pare_param *p, const pare_param *q)
{
    if (p->format != q->format) return 0;
    const pare_qlinear *a = p->q, *b = q->q;
    int64_t N = p->shape[0], K = p->shape[1];
    switch (p->format) {
    case PARE_FMT_F32: return 1;
    case PARE_FMT_I8_CHANNEL:
        return !memcmp(a->i8.q, b->i8.q, (size_t)(N * K)) && !memcmp(a->i8.scale, b->i8.scale, sizeof(float) * (size_t)N) &&
               !memcmp(a->i8.colsum, b->i8.colsum, sizeof(int32_t) * (size_t)N) && !memcmp(&a->act, &b->act, sizeof a->act);
    case PARE_FMT_QBLOCK: {
        const pare_qb_weight *x = &a->qb, *y = &b->qb;
        size_t ng = (size_t)(N * (K / x->group));
        return x->kind == y->kind && x->group == y->group && x->symmetric == y->symmetric && pare_qb_bytes(x) == pare_qb_bytes(y) &&
               !memcmp(x->scale, y->scale, 2 * ng) && (!x->min || !memcmp(x->min, y->min, 2 * (size_t)(N * K / 32))) &&
               (!x->zero || !memcmp(x->zero, y->zero, ng)) && !!x->min == !!y->min && !!x->zero == !!y->zero &&
               !memcmp(x->qs, y->qs, pare_qb_bytes(x) - 2 * ng - (x->min ? 2 * (size_t)(N * K / 32) : 0) - (x->zero ? ng : 0));
    }
    case PARE_FMT_WQ: {
        const pare_wq_weight *x = &a->wq, *y = &b->wq;
        size_t ng = (size_t)(N * (K / x->group));
        return x->kind == y->kind && x->group == y->group && x->symmetric == y->symmetric && !!x->zero == !!y->zero &&
               !memcmp(x->qs, y->qs, (size_t)(N * pare_wq_row_bytes(x))) && !memcmp(x->scale, y->scale, 2 * ng) &&
               (!x->zero || !memcmp(x->zero, y->zero, ng)) && a->bits == b->bits;
    }
    case PARE_FMT_PQ: {
        const pare_pq_weight *x = &a->pq, *y = &b->pq;
        return x->d == y->d && x->k == y->k && x->f16 == y->f16 && !memcmp(x->codes, y->codes, (size_t)(N * (K / x->d))) &&
               !memcmp(x->f16 ? (const void *)x->cb16 : (const void *)x->cb, y->f16 ? (const void *)y->cb16 : (const void *)y->cb,
                       (size_t)(x->k * x->d) * (x->f16 ? 2 : 4)) && a->bits == b->bits;
    }
    case PARE_FMT_SIMULATED:
        return !memcmp(a->w_sim, b->w_sim, sizeof(float) * (size_t)(N * K)) && a->a_sim == b->a_sim && a->bits == b->bits &&
               !memcmp(&a->a_qp, &b->a_qp, sizeof a->a_qp);
    default: return 0;
    }
}

static uint64_t data_bytes(const char *path)
{
    pare_st_file *f = NULL;
    if (pare_safetensors_open(&f, path) != PARE_OK) return 0;
    uint64_t n = f->data_bytes;
    pare_safetensors_close(f);
    return n;
}

/* The file's data block holds exactly: each quantized weight's stored bytes (the size column), every other parameter
 * in f32 (fixed tables too: saved, though size_bytes counts them 0); with masters, the quantized weights' f32 too. */
static uint64_t expected_bytes(const pare_model *m, int masters)
{
    uint64_t n = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        int stored = p->q && p->format != PARE_FMT_HALF && p->format != PARE_FMT_SPARSE;
        if (!stored || masters) n += 4 * (uint64_t)pare_param_numel(p);
        if (stored) n += p->format == PARE_FMT_SIMULATED ? 4 * (uint64_t)pare_param_numel(p) : pare_param_bytes(p);
    }
    return n;
}

static void round_trip(pare_model *q, const char *what)
{
    const char *p = path_in("q.safetensors");
    pare_model *back = NULL;
    pare_checkpoint_meta meta;
    if (!ok(pare_model_save(q, p) == PARE_OK && pare_model_load_meta(&back, &meta, p) == PARE_OK, "%s: saves and loads", what)) {
        diag("%s", pare_errmsg());
        return;
    }
    int forms = 1, nq = 0;
    for (int64_t i = 0; i < q->nparams; i++) {
        forms &= same_form(&q->params[i], &back->params[i]);
        nq += q->params[i].format != PARE_FMT_F32;
    }
    ok(forms && nq > 0 && !strcmp(back->applied, q->applied), "%s: %d weights come back in their stored form, the same bytes "
       "(applied \"%s\")", what, nq, back->applied);
    ok(same_logits(q, back), "%s: bit-identical logits after save -> load", what);
    uint64_t got = data_bytes(p), want = expected_bytes(q, 0);
    struct stat sb;
    stat(p, &sb);
    ok(got == want, "%s: the data block is the quantized size: %llu bytes (expected %llu; the model's size column %zu, "
       "the file %lld bytes with its header)", what, (unsigned long long)got, (unsigned long long)want, pare_model_size_bytes(q),
       (long long)sb.st_size);
    pare_model_free(back);
    back = NULL;
    const pare_save_opts masters = {.masters = 1};
    if (ok(pare_model_save_opts(q, p, &masters) == PARE_OK && pare_model_load(&back, p) == PARE_OK, "%s: {masters} saves and loads",
           what)) {
        int same = 1;
        for (int64_t i = 0; i < q->nparams; i++)
            same &= !memcmp(q->params[i].blob->data, back->params[i].blob->data, 4 * q->params[i].blob->n) &&
                    same_form(&q->params[i], &back->params[i]);
        ok(same && same_logits(q, back) && data_bytes(p) == expected_bytes(q, 1),
           "%s: {masters}: the f32 masters bit for bit beside the stored forms, same logits", what);
    }
    pare_model_free(back);
}

/* Rewrite src into dst: __metadata__ "quant" with `from` replaced by `to` (NULL: unchanged), tensor `drop` left out,
 * byte `poke` of tensor `patch` set to `val`, and a 4-byte F32 tensor `extra` added. */
static void rewrite(const char *src, const char *dst, const char *from, const char *to, const char *drop, const char *patch,
                    size_t poke, unsigned char val, const char *extra)
{
    pare_st_file *f = NULL;
    if (pare_safetensors_open(&f, src) != PARE_OK) {
        diag("rewrite: %s", pare_errmsg());
        return;
    }
    pare_st_out_any *t = calloc((size_t)f->ntensors + 1, sizeof *t);
    void **bufs = calloc((size_t)f->ntensors + 1, sizeof *bufs);
    int64_t n = 0;
    for (int64_t i = 0; i < f->ntensors; i++) {
        const pare_st_tensor *s = &f->tensors[i];
        if (drop && !strcmp(s->name, drop)) continue;
        size_t bytes = (size_t)(s->end - s->begin);
        bufs[n] = malloc(bytes ? bytes : 1);
        pare_safetensors_read_raw(f, s, bufs[n], bytes);
        if (patch && !strcmp(s->name, patch) && poke < bytes) ((unsigned char *)bufs[n])[poke] = val;
        t[n] = (pare_st_out_any){s->name, s->dtype, s->ndim, s->shape, bufs[n]};
        n++;
    }
    static const int64_t one[1] = {1};
    static const float zero[1] = {0};
    if (extra) t[n++] = (pare_st_out_any){extra, PARE_ST_F32, 1, one, zero};
    const char **meta = calloc((size_t)(2 * f->nmeta + 1), sizeof *meta);
    char *edited = NULL;
    for (int64_t i = 0; i < f->nmeta; i++) {
        meta[2 * i] = f->meta[2 * i], meta[2 * i + 1] = f->meta[2 * i + 1];
        const char *at = from && !strcmp(f->meta[2 * i], "quant") ? strstr(f->meta[2 * i + 1], from) : NULL;
        if (from && !strcmp(f->meta[2 * i], "quant") && !at) diag("rewrite: '%s' not in quant", from);
        if (at) {
            size_t len = strlen(f->meta[2 * i + 1]) + strlen(to) + 1;
            edited = malloc(len);
            snprintf(edited, len, "%.*s%s%s", (int)(at - f->meta[2 * i + 1]), f->meta[2 * i + 1], to, at + strlen(from));
            meta[2 * i + 1] = edited;
        }
    }
    if (pare_safetensors_write(dst, t, n, meta, f->nmeta) != PARE_OK) diag("rewrite: %s", pare_errmsg());
    for (int64_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs), free(t), free(meta), free(edited);
    pare_safetensors_close(f);
}

static void load_fails(const char *path, const char *w1, const char *w2, const char *what)
{
    pare_model *m = NULL;
    pare_status st = pare_model_load(&m, path);
    const char *msg = pare_errmsg();
    if (!ok(st == PARE_EFORMAT && !m && strstr(msg, path) && (!w1 || strstr(msg, w1)) && (!w2 || strstr(msg, w2)), "%s: EFORMAT",
            what))
        diag("status %s, message: %s", pare_status_name(st), msg);
    else diag("%s", msg);
    pare_model_free(m);
}

static pare_model *apply(const pare_model *m, const char *pass, const pare_kv *kv, int n)
{
    pare_model *q = NULL;
    if (pare_apply(&q, m, pass, kv, n) != PARE_OK) diag("%s: %s", pass, pare_errmsg());
    return q;
}

int main(void)
{
    tap_plan_lazy();
    snprintf(dir, sizeof dir, "/tmp/pare-ckq-XXXXXX");
    if (!mkdtemp(dir)) return printf("Bail out! cannot make a temporary directory\n"), 1;
    pare_kv ekv[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 40, NULL}, {"max_T", PARE_KV_NUM, 9, NULL},
                     {"d", PARE_KV_NUM, 32, NULL},         {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL},
                     {"classes", PARE_KV_NUM, 3, NULL},    {"pos", PARE_KV_STR, 0, "sinusoidal"}, {"ffn", PARE_KV_NUM, 64, NULL},
                     {"seed", PARE_KV_NUM, 42, NULL}};
    pare_kv lkv[] = {{"kind", PARE_KV_STR, 0, "decoder"}, {"vocab", PARE_KV_NUM, 50, NULL}, {"max_T", PARE_KV_NUM, 8, NULL},
                     {"d", PARE_KV_NUM, 32, NULL},         {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 1, NULL},
                     {"tie_head", PARE_KV_BOOL, 1, NULL},  {"seed", PARE_KV_NUM, 3, NULL}};
    pare_model *enc = build(ekv, (int)(sizeof ekv / sizeof ekv[0])), *lm = build(lkv, (int)(sizeof lkv / sizeof lkv[0]));
    if (!enc || !lm) return printf("Bail out! cannot build models\n"), 1;

    /* ---- every format with a checkpoint form: round trips ---- */
    static const struct {
        const char *pass, *k1, *v1, *k2, *v2, *what;
        double n2;
        const char *k3, *v3; /* a third option (a string), or none */
    } cases[] = {
        {"dynamic_int8", NULL, NULL, NULL, NULL, "int8 per channel, dynamic per token", 0, NULL, NULL},
        {"dynamic_int8", "weights", "tensor", "acts", "tensor", "int8 per tensor, dynamic per tensor", 0, NULL, NULL},
        {"dynamic_int8", "scheme", "torch", NULL, NULL, "int8 PyTorch's scheme (codes down to -128)", 0, NULL, NULL},
        {"llm_int8", NULL, NULL, NULL, NULL, "LLM.int8()", 0, NULL, NULL},
        {"qblock", "format", "q8_0", NULL, NULL, "q8_0", 0, NULL, NULL},
        {"qblock", "format", "q4_0", NULL, NULL, "q4_0", 0, NULL, NULL},
        {"qblock", "format", "q4_1", NULL, NULL, "q4_1", 0, NULL, NULL},
        {"qblock", "format", "int4_group", "symmetric", "false", "int4_group asymmetric", 0, NULL, NULL},
        {"qblock", "format", "int8_group", NULL, NULL, "int8_group", 0, NULL, NULL},
        {"rtn", "bits", "4", "group", NULL, "rtn int4 group 32 (the int4 kernel)", 32, NULL, NULL},
        {"rtn", "bits", "3", "group", NULL, "rtn int3 group 32 (the wq kernel)", 32, NULL, NULL},
        {"rtn", "bits", "2", "group", NULL, "rtn int2 group 32 asymmetric (the wq kernel)", 32, "symmetric", "false"},
        {"rtn", "bits", "8", "group", NULL, "rtn int8 per channel (the wq kernel)", 0, NULL, NULL},
        {"rtn", "bits", "4", "group", NULL, "rtn W4A8 group 32 (the wq kernel)", 32, "act_bits", "8"},
        {"rtn", "bits", "5", "group", NULL, "rtn int5 (simulated)", 32, NULL, NULL},
        {"pq", "codebook", "f16", "k", NULL, "pq block 8, k 16, f16 codebook (the lookup-table kernel)", 16, NULL, NULL},
        {"pq", "block", "4", "k", NULL, "pq block 4, k 32, f32 codebook", 32, NULL, NULL},
        {"binary", NULL, NULL, NULL, NULL, "binary (the wq kernel)", 0, NULL, NULL},
        {"ternary", NULL, NULL, NULL, NULL, "ternary (the wq kernel)", 0, NULL, NULL},
        {"fake_quant", NULL, NULL, NULL, NULL, "fake_quant (simulated, activations too)", 0, NULL, NULL},
    };
    pare_model *q4 = NULL;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pare_kv kv[3];
        int n = 0;
        if (cases[c].k1) kv[n++] = (pare_kv){cases[c].k1, PARE_KV_STR, 0, cases[c].v1};
        if (cases[c].k2) kv[n++] = cases[c].v2 ? (pare_kv){cases[c].k2, PARE_KV_STR, 0, cases[c].v2} : (pare_kv){cases[c].k2, PARE_KV_NUM, cases[c].n2, NULL};
        if (cases[c].k3) kv[n++] = (pare_kv){cases[c].k3, PARE_KV_STR, 0, cases[c].v3};
        pare_model *q = apply(enc, cases[c].pass, kv, n);
        if (!ok(q != NULL, "%s applies", cases[c].what)) continue;
        round_trip(q, cases[c].what);
        if (c == 5) q4 = q;
        else pare_model_free(q);
    }
    /* a static activation grid (static_int8 needs calibration data: the Lua tests cover it; here the grid alone) */
    {
        pare_model *s = apply(enc, "dynamic_int8", NULL, 0);
        for (int64_t i = 0; s && i < s->nparams; i++)
            if (s->params[i].format == PARE_FMT_I8_CHANNEL) s->params[i].q->act = (pare_i8_act){PARE_ACT_STATIC, 0, 0.0371f, 17, 0, 0, 0};
        if (s) round_trip(s, "int8 with a static asymmetric activation grid");
        pare_model_free(s);
    }

    /* a model with tables and a tied LM head quantized: embeddings=true, head=true */
    pare_kv tk[] = {{"format", PARE_KV_STR, 0, "q4_0"}, {"embeddings", PARE_KV_BOOL, 1, NULL}, {"head", PARE_KV_BOOL, 1, NULL}};
    pare_model *lq = apply(lm, "qblock", tk, 3);
    if (lq) round_trip(lq, "decoder, q4_0 with the tied embedding / LM head");

    /* {f32}: the old form, loaded as f32 */
    if (q4) {
        const pare_save_opts old = {.f32 = 1};
        pare_model *back = NULL;
        const char *p = path_in("old.safetensors");
        if (ok(pare_model_save_opts(q4, p, &old) == PARE_OK && pare_model_load(&back, p) == PARE_OK, "{f32}: saves and loads")) {
            int f32 = 1;
            for (int64_t i = 0; i < back->nparams; i++) f32 &= back->params[i].format == PARE_FMT_F32;
            ok(f32 && back->applied[0] == '\0' && data_bytes(p) == expected_bytes(enc, 0), "{f32}: f32 masters only, loaded as f32");
        }
        pare_model_free(back);
    }
    /* ---- damaged stored forms ---- */
    if (q4) {
        const char *src = path_in("src.safetensors"), *bad = path_in("bad.safetensors");
        pare_model_save(q4, src);
        rewrite(src, bad, "\"format\":\"qblock\"", "\"format\":\"qblockz\"", NULL, NULL, 0, 0, NULL);
        load_fails(bad, "'qblockz'", "valid: int8, qblock, simulated, wq, pq", "an unknown format name names the weight and the valid ones");
        rewrite(src, bad, "\"kind\":\"q4_0\"", "\"kind\":\"q9_0\"", NULL, NULL, 0, 0, NULL);
        load_fails(bad, "kind 'q9_0'", "enc.", "an unknown block kind");
        rewrite(src, bad, NULL, NULL, "enc.0.ffn.up.weight.scale", NULL, 0, 0, NULL);
        load_fails(bad, "tensor 'enc.0.ffn.up.weight.scale' is missing", NULL, "a missing scale tensor");
        rewrite(src, bad, NULL, NULL, NULL, NULL, 0, 0, "enc.0.ffn.up.weight.bogus");
        load_fails(bad, "'enc.0.ffn.up.weight.bogus'", "not part of the qblock form", "an extra tensor of a stored form");
        rewrite(src, bad, NULL, NULL, NULL, "enc.0.ffn.up.weight.scale", 1, 0x7e, NULL);
        load_fails(bad, "'enc.0.ffn.up.weight.scale'", "NaN", "a NaN fp16 scale");
        rewrite(src, bad, "\"group\":32", "\"group\":48", NULL, NULL, 0, 0, NULL);
        load_fails(bad, "\"group\"", "enc.0.attn.qkv.weight", "a group that is not 32");
    }
    {
        pare_model *q8 = apply(enc, "qblock", (pare_kv[]){{"format", PARE_KV_STR, 0, "q8_0"}}, 1);
        pare_model *i8 = apply(enc, "dynamic_int8", NULL, 0);
        const char *src = path_in("src8.safetensors"), *bad = path_in("bad8.safetensors");
        if (q8 && pare_model_save(q8, src) == PARE_OK) {
            rewrite(src, bad, NULL, NULL, NULL, "enc.1.attn.out.weight.qs", 5, 0x80, NULL);
            load_fails(bad, "'enc.1.attn.out.weight.qs'", "-128", "a -128 Q8_0 code");
        }
        if (i8 && pare_model_save(i8, src) == PARE_OK) {
            rewrite(src, bad, "\"act_mode\":\"dynamic_token\"", "\"act_mode\":\"sometimes\"", NULL, NULL, 0, 0, NULL);
            load_fails(bad, "act_mode 'sometimes'", "dynamic_token", "an unknown activation mode");
            rewrite(src, bad, NULL, NULL, "enc.0.attn.qkv.weight.q", NULL, 0, 0, NULL);
            load_fails(bad, "'enc.0.attn.qkv.weight.q' is missing", NULL, "missing int8 codes");
            rewrite(src, bad, NULL, NULL, NULL, "enc.0.attn.qkv.weight.scale", 3, 0xff, NULL);
            load_fails(bad, "enc.0.attn.qkv.weight", "scale", "a NaN channel scale");
        }
        pare_model_free(q8);
        pare_model_free(i8);
    }

    /* ---- quantized embedding lookups: exactly dequantize-then-lookup ---- */
    {
        int64_t V = 37, C = 64, M = 23;
        float *E = malloc(sizeof *E * (size_t)(V * C)), *D = malloc(sizeof *D * (size_t)(V * C));
        float *a = malloc(sizeof *a * (size_t)(M * C)), *b = malloc(sizeof *b * (size_t)(M * C));
        int32_t ids[23];
        pare_rng r;
        pare_rng_seed(&r, 9);
        for (int64_t i = 0; i < V * C; i++) E[i] = (float)pare_rng_normal(&r) * (i % 7 == 0 ? 3.0f : 0.5f);
        for (int64_t i = 0; i < M; i++) ids[i] = (int32_t)pare_rng_below(&r, (uint64_t)V);
        ids[0] = 0, ids[1] = (int32_t)V - 1;
        pare_i8_weight w;
        if (pare_i8_weight_quantize(&w, E, V, C) == PARE_OK) {
            for (int64_t v = 0; v < V; v++)
                for (int64_t c = 0; c < C; c++) D[v * C + c] = (float)w.q[v * C + c] * w.scale[v];
            pare_embedding_i8(a, ids, w.q, w.scale, M, C);
            pare_embedding_forward(b, ids, D, M, C);
            ok(!memcmp(a, b, sizeof *a * (size_t)(M * C)), "int8 table (a scale per row): lookup == dequantize-then-lookup, bit for bit");
            pare_i8_weight_free(&w);
        }
        static const struct {
            pare_qb_kind k;
            int64_t group;
            int sym;
        } kinds[] = {{PARE_QB_Q8_0, 32, 1}, {PARE_QB_Q4_0, 32, 1}, {PARE_QB_Q4_1, 32, 0}, {PARE_QB_I4G, 64, 1}, {PARE_QB_I4G, 32, 0},
                     {PARE_QB_I8G, 32, 1}};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            pare_qb_weight qb;
            if (pare_qb_quantize(&qb, kinds[k].k, E, V, C, kinds[k].group, kinds[k].sym) != PARE_OK) {
                ok(0, "quantize %s: %s", pare_qb_kind_name(kinds[k].k), pare_errmsg());
                continue;
            }
            int st = pare_embedding_qb(a, ids, &qb, M) == PARE_OK && pare_embedding_qb_ref(b, ids, &qb, M) == 0;
            ok(st && !memcmp(a, b, sizeof *a * (size_t)(M * C)), "%s table (group %lld%s): lookup == dequantize-then-lookup, bit for bit",
               pare_qb_kind_name(kinds[k].k), (long long)kinds[k].group, kinds[k].sym ? "" : " asym");
            pare_qb_free(&qb);
        }
        free(E), free(D), free(a), free(b);
    }

    /* ---- in a model: the quantized table and the dequantized model give the same logits; sizes; tying ---- */
    {
        pare_kv k1[] = {{"format", PARE_KV_STR, 0, "q8_0"}, {"embeddings", PARE_KV_BOOL, 1, NULL}, {"layers", PARE_KV_STR, 0, ""}};
        pare_model *t = apply(enc, "qblock", k1, 3), *d = NULL;
        int tok = pare_model_find_param(enc, "emb.tok.weight");
        if (t && tok >= 0) {
            const pare_param *p = &t->params[tok];
            ok(p->format == PARE_FMT_QBLOCK && p->q->qb.kind == PARE_QB_Q8_0, "qblock embeddings=true layers=\"\": the token table "
               "alone is q8_0");
            size_t f32b = 4 * (size_t)pare_param_numel(p), qb = pare_param_bytes(p);
            ok(pare_model_size_bytes(enc) - pare_model_size_bytes(t) == f32b - qb && qb == (size_t)(p->shape[0] * p->shape[1] / 32 * 34),
               "the size column counts the table in q8_0: %zu bytes instead of %zu", qb, f32b);
            /* dequantizing the table by hand gives an f32 model that computes the same logits */
            d = pare_model_clone(t);
            pare_param *dp = &d->params[tok];
            if (pare_param_make_private(dp) == PARE_OK) {
                pare_qb_dequantize(dp->blob->data, &dp->q->qb);
                pare_param_set_q(dp, NULL);
                ok(same_logits(t, d), "a model with a q8_0 table == the model with that table dequantized, logits bit for bit");
            }
        }
        pare_model_free(t);
        pare_model_free(d);
        /* tying: the LM head's weight is the token table; dynamic_int8 on the head alone quantizes both readers */
        pare_kv k2[] = {{"layers", PARE_KV_STR, 0, "head"}};
        pare_model *h = apply(lm, "dynamic_int8", k2, 1);
        int et = pare_model_find_param(lm, "emb.tok.weight");
        ok(h && et >= 0 && h->params[et].format == PARE_FMT_I8_CHANNEL && pare_model_find_param(lm, "head.weight") < 0,
           "tied LM head quantized: the one table parameter is int8, for the head and the lookup");
        pare_kv k3[] = {{"embeddings", PARE_KV_BOOL, 1, NULL}, {"exclude", PARE_KV_STR, 0, "head"}};
        pare_model *x = NULL;
        pare_status st = pare_apply(&x, lm, "dynamic_int8", k3, 2);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "tied to Linear head"), "embeddings=true with the tied head excluded is "
           "refused: %s", pare_errmsg());
        pare_model_free(x);
        pare_model_free(h);
    }

    pare_model_free(q4);
    pare_model_free(lq);
    pare_model_free(enc);
    pare_model_free(lm);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) diag("cannot remove %s", dir);
    return tap_done();
}
