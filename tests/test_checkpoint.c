/* test_checkpoint.c — safetensors checkpoints: save → load round trips (encoder and decoder) give
 * bit-identical parameters and logits; int8 models saved with {f32} keep only their f32 masters and record "applied"
 * (their stored forms: test_checkpoint_q.c); every
 * kind of damaged or foreign file is rejected with the right status and a message naming the file
 * (and the tensor); a failed save leaves the target as it was. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/transform.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "test_tmpdir.h"

static pare_model *build(const pare_kv *kv, int n)
{
    pare_model *m = build_model(kv, n);
    if (m) perturb_trainable(m, 5, 0.1); /* away from their initial values, so a load that rebuilt them would show */
    return m;
}

static pare_model *encoder(void)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 11, NULL}, {"max_T", PARE_KV_NUM, 9, NULL},
                    {"d", PARE_KV_NUM, 16, NULL},         {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL},
                    {"classes", PARE_KV_NUM, 3, NULL},    {"pos", PARE_KV_STR, 0, "sinusoidal"}, {"pool", PARE_KV_STR, 0, "mean"},
                    {"act", PARE_KV_STR, 0, "relu"},     {"ffn", PARE_KV_NUM, 24, NULL},   {"dropout", PARE_KV_NUM, 0.1, NULL},
                    {"seed", PARE_KV_NUM, 42, NULL}};
    return build(kv, (int)(sizeof kv / sizeof kv[0]));
}

static pare_model *decoder(void)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, "decoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 8, NULL},
                    {"d", PARE_KV_NUM, 12, NULL},         {"heads", PARE_KV_NUM, 3, NULL}, {"layers", PARE_KV_NUM, 2, NULL},
                    {"seed", PARE_KV_NUM, 9, NULL}};
    return build(kv, (int)(sizeof kv / sizeof kv[0]));
}

/* Same parameters, names, shapes and bits. */
static int same_params(const pare_model *a, const pare_model *b, const char *what)
{
    if (a->nparams != b->nparams) return ok(0, "%s: parameter count %lld vs %lld", what, (long long)a->nparams, (long long)b->nparams);
    for (int64_t i = 0; i < a->nparams; i++) {
        const pare_param *p = &a->params[i], *q = &b->params[i];
        if (strcmp(p->name, q->name) || p->ndim != q->ndim || p->shape[0] != q->shape[0] || p->shape[1] != q->shape[1] ||
            memcmp(p->blob->data, q->blob->data, p->blob->n * sizeof(float)))
            return ok(0, "%s: parameter %s differs", what, p->name);
    }
    return ok(1, "%s: %lld parameters bit-identical", what, (long long)a->nparams);
}

/* Logits of both models on the same batch are identical. */
static void same_logits(pare_model *a, pare_model *b, const char *what)
{
    int64_t B = 3, T = a->max_T;
    int32_t tok[64], len[3] = {(int32_t)T, (int32_t)T - 3, 2};
    pare_rng r;
    pare_rng_seed(&r, 17);
    for (int64_t i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&r, (uint64_t)a->vocab);
    pare_exec *xa = NULL, *xb = NULL;
    if (!ok(pare_exec_new(&xa, a, B, T, PARE_EXEC_INFER) == PARE_OK && pare_exec_new(&xb, b, B, T, PARE_EXEC_INFER) == PARE_OK &&
                pare_exec_bind(xa, tok, len, NULL) == PARE_OK && pare_exec_bind(xb, tok, len, NULL) == PARE_OK &&
                pare_exec_forward(xa) == PARE_OK && pare_exec_forward(xb) == PARE_OK,
            "%s: both models run", what)) {
        diag("%s", pare_errmsg());
    } else {
        int64_t n = (a->lm ? B * T : B) * a->nclass;
        ok(memcmp(pare_exec_logits(xa), pare_exec_logits(xb), (size_t)n * sizeof(float)) == 0, "%s: identical logits (%lld values)",
           what, (long long)n);
    }
    pare_exec_free(xa);
    pare_exec_free(xb);
}

static void round_trip(pare_model *m, const char *file, const char *what)
{
    const char *p = path_in(file);
    pare_model *back = NULL;
    if (!ok(pare_model_save(m, p) == PARE_OK, "%s: save", what)) diag("%s", pare_errmsg());
    if (!ok(pare_model_load(&back, p) == PARE_OK, "%s: load", what)) {
        diag("%s", pare_errmsg());
        return;
    }
    ok(!strcmp(back->kind, m->kind) && !strcmp(back->config, m->config), "%s: kind and config come back (%s)", what, back->config);
    same_params(m, back, what);
    same_logits(m, back, what);
    pare_model_free(back);
}

static int write_file(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(buf, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    if (b && fread(b, 1, *n, f) != *n) free(b), b = NULL;
    fclose(f);
    return b;
}

/* A hand-made file: 8-byte length, header text, ndata zero bytes of data. */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t ndata)
{
    size_t h = strlen(header), n = 8 + h + ndata;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, h);
    if (write_file(path, b, n)) diag("cannot write %s", path);
    free(b);
}

/* Load must fail with status want and a message naming the file and containing each of the words. */
static void load_fails(const char *path, pare_status want, const char *w1, const char *w2, const char *what)
{
    pare_model *m = NULL;
    pare_status st = pare_model_load(&m, path);
    const char *msg = pare_errmsg();
    int r = ok(st == want && !m && strstr(msg, path) && (!w1 || strstr(msg, w1)) && (!w2 || strstr(msg, w2)), "%s: %s", what,
               pare_status_name(want));
    if (!r) diag("status %s, message: %s", pare_status_name(st), msg);
    else diag("%s", msg);
    pare_model_free(m);
}

static void raw_case(const char *file, const char *header, size_t ndata, pare_status want, const char *w1, const char *w2,
                     const char *what)
{
    const char *p = path_in(file);
    write_raw(p, strlen(header), header, ndata);
    load_fails(p, want, w1, w2, what);
}

/* Write m's parameters with one of them dropped, reshaped, or an extra one added. */
static void write_variant(const pare_model *m, const char *path, const char *drop, const char *reshape, int extra, int with_config)
{
    pare_st_out *t = calloc((size_t)m->nparams + 1, sizeof *t);
    int64_t n = 0, bigger[2];
    float *pad = NULL;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (drop && !strcmp(p->name, drop)) continue;
        t[n] = (pare_st_out){p->name, p->ndim, p->shape, p->blob->data};
        if (reshape && !strcmp(p->name, reshape)) {
            bigger[0] = p->shape[0] + 1, bigger[1] = p->shape[1];
            pad = calloc((size_t)(bigger[0] * bigger[1]), sizeof *pad);
            t[n].shape = bigger, t[n].data = pad;
        }
        n++;
    }
    static const int64_t one[1] = {4};
    static const float four[4] = {1, 2, 3, 4};
    if (extra) t[n++] = (pare_st_out){"enc.9.extra.weight", 1, one, four};
    const char *meta[] = {"format", "pare", "config", m->config};
    if (pare_safetensors_write_f32(path, t, n, meta, with_config ? 2 : 1) != PARE_OK) diag("write: %s", pare_errmsg());
    free(pad);
    free(t);
}

/* m saved with its graph metadata edited: the first occurrence of `from` replaced by `to`. */
static void write_graph_edit(const pare_model *m, const char *path, const char *from, const char *to)
{
    const char *tmp = path_in("graph-src.safetensors");
    pare_st_file *f = NULL;
    if (pare_model_save(m, tmp) != PARE_OK || pare_safetensors_open(&f, tmp) != PARE_OK) {
        diag("graph edit: %s", pare_errmsg());
        return;
    }
    const char *g = pare_safetensors_meta(f, "graph");
    const char *at = g ? strstr(g, from) : NULL;
    if (!at) diag("graph edit: '%s' not found in the graph", from);
    size_t n = g ? strlen(g) + strlen(to) + 1 : 1;
    char *edited = calloc(n, 1);
    if (at) snprintf(edited, n, "%.*s%s%s", (int)(at - g), g, to, at + strlen(from));
    pare_st_out *t = calloc((size_t)m->nparams, sizeof *t);
    for (int64_t i = 0; i < m->nparams; i++)
        t[i] = (pare_st_out){m->params[i].name, m->params[i].ndim, m->params[i].shape, m->params[i].blob->data};
    const char *meta[] = {"format", "pare", "config", m->config, "graph", edited};
    if (pare_safetensors_write_f32(path, t, m->nparams, meta, 3) != PARE_OK) diag("write: %s", pare_errmsg());
    pare_safetensors_close(f);
    free(edited);
    free(t);
}

static int count_temp_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    return n;
}

static void cleanup(void)
{
    DIR *d = opendir(dir);
    char p[512];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        chmod(p, 0755);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            DIR *s = opendir(p);
            char q[768];
            for (struct dirent *f; s && (f = readdir(s));)
                if (f->d_name[0] != '.') snprintf(q, sizeof q, "%s/%s", p, f->d_name), remove(q);
            if (s) closedir(s);
        }
        remove(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

int main(void)
{
    tap_plan_lazy();
    snprintf(dir, sizeof dir, "/tmp/pare-ckpt-XXXXXX");
    if (!mkdtemp(dir)) return printf("Bail out! cannot make a temporary directory\n"), 1;

    pare_model *enc = encoder(), *dec = decoder();
    if (!enc || !dec) return printf("Bail out! cannot build models\n"), 1;

    /* the config record */
    ok(strstr(enc->config, "\"kind\": \"encoder\"") && strstr(enc->config, "\"dropout\": 0.1,") &&
           strstr(enc->config, "\"pos\": \"sinusoidal\"") && strstr(enc->config, "\"seed\": 42, \"attention\": \"\"}"),
       "config: enums as strings, numbers as numbers (%s)", enc->config);
    int all = 1;
    for (int i = 0; i < pare_model_schema.nopts; i++) {
        char key[80];
        snprintf(key, sizeof key, "\"%s\": ", pare_model_schema.opts[i].key);
        all &= strstr(enc->config, key) != NULL;
    }
    ok(all, "config: every key of the model schema");
    pare_model *c = pare_model_clone(enc);
    ok(c && !strcmp(c->config, enc->config), "clone copies the config");
    pare_model_free(c);

    /* pare_transformer_numel (what the loader checks a config against) agrees with the builder */
    {
        const char *specs[] = {"", "linformer:k=3;lsra:attn_heads=1,kernel=3", "full;linformer:k=2,share=none"};
        const char *kinds[] = {"encoder", "decoder", "tagger", "encdec"};
        int agree = 1;
        for (int k = 0; k < 4; k++)
            for (int a = 0; a < 3; a++) {
                if ((k == 1 || k == 3) && a != 0) continue; /* linformer cannot be causal; encdec runs dense */
                pare_kv kv[] = {{"kind", PARE_KV_STR, 0, kinds[k]}, {"vocab", PARE_KV_NUM, 7, NULL},
                                {"max_T", PARE_KV_NUM, 6, NULL},     {"d", PARE_KV_NUM, 8, NULL},
                                {"heads", PARE_KV_NUM, 2, NULL},     {"layers", PARE_KV_NUM, 3, NULL},
                                {"classes", PARE_KV_NUM, 5, NULL},   {"ffn", PARE_KV_NUM, a == 2 ? 0 : 12, NULL},
                                {"attention", PARE_KV_STR, 0, specs[a]}};
                pare_options o;
                pare_model *m = NULL;
                int64_t numel = -1, built = 0;
                if (pare_opts_resolve(&o, &pare_model_schema, kv, 9) != PARE_OK || pare_transformer_numel(&numel, &o) != PARE_OK ||
                    pare_transformer_build(&m, &o) != PARE_OK) {
                    diag("%s / '%s': %s", kinds[k], specs[a], pare_errmsg());
                    agree = 0;
                    continue;
                }
                for (int64_t i = 0; i < m->nparams; i++) built += (int64_t)m->params[i].blob->n;
                if (numel != built) diag("%s / '%s': numel %lld, built %lld", kinds[k], specs[a], (long long)numel, (long long)built);
                agree &= numel == built;
                pare_model_free(m);
            }
        ok(agree, "pare_transformer_numel equals the built parameters (encoder, decoder, tagger, encdec; attention with "
           "parameters)");
    }

    /* round trips */
    round_trip(enc, "enc.safetensors", "encoder");
    round_trip(dec, "dec.safetensors", "decoder");
    size_t n = 0;
    unsigned char *bytes = read_file(path_in("enc.safetensors"), &n);
    uint64_t hlen = 0;
    for (int i = 7; bytes && i >= 0; i--) hlen = hlen << 8 | bytes[i];
    ok(bytes && n > 8 && (8 + hlen) % 8 == 0 && !memcmp(bytes + 8, "{\"__metadata__\":{\"format\":\"pare\"", 32),
       "file layout: header padded to 8 bytes, __metadata__ first");

    /* int8 saved with {f32}: f32 masters saved, "applied" recorded, loaded as f32 (the form before quantized checkpoints) */
    pare_model *q = NULL, *back = NULL;
    pare_checkpoint_meta meta;
    const pare_save_opts f32_only = {.f32 = 1};
    ok(pare_apply(&q, enc, "dynamic_int8", NULL, 0) == PARE_OK, "dynamic_int8 applies");
    ok(q && pare_model_save_opts(q, path_in("int8.safetensors"), &f32_only) == PARE_OK, "int8 model saves with {f32}");
    if (ok(pare_model_load_meta(&back, &meta, path_in("int8.safetensors")) == PARE_OK, "int8 checkpoint loads")) {
        int f32 = 1;
        for (int64_t i = 0; i < back->nparams; i++) f32 &= back->params[i].format == PARE_FMT_F32;
        ok(f32 && back->applied[0] == '\0', "int8 checkpoint loads as f32 (applied \"%s\")", back->applied);
        ok(!strcmp(meta.applied, "dynamic_int8") && !strcmp(meta.format, "pare") && meta.pare_version[0],
           "metadata records applied=\"%s\", format \"%s\", version %s", meta.applied, meta.format, meta.pare_version);
        same_params(enc, back, "int8 checkpoint holds the f32 masters");
    }
    pare_model_free(back);
    pare_model_free(q);

    /* damaged and foreign files */
    if (bytes) {
        write_file(path_in("short.safetensors"), bytes, 5);
        load_fails(path_in("short.safetensors"), PARE_EFORMAT, "too short", NULL, "file of 5 bytes");
        write_file(path_in("trunc.safetensors"), bytes, n - 100);
        load_fails(path_in("trunc.safetensors"), PARE_EFORMAT, "outside the data block", "tensor '", "truncated file");
        write_file(path_in("hdrcut.safetensors"), bytes, 8 + hlen / 2);
        load_fails(path_in("hdrcut.safetensors"), PARE_EFORMAT, "larger than the rest of the file", NULL, "file cut inside the header");
    }
    write_raw(path_in("garbage.safetensors"), 0xffffffffffffull, "{}", 0);
    load_fails(path_in("garbage.safetensors"), PARE_EFORMAT, "header length", NULL, "garbage header length");
    raw_case("notjson.safetensors", "{this is not json}", 0, PARE_EFORMAT, "not valid JSON", NULL, "header that is not JSON");
    raw_case("notobj.safetensors", "[1, 2]   ", 0, PARE_EFORMAT, "start with '{'", NULL, "header that is not an object");
    raw_case("range.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,400]}}", 8, PARE_EFORMAT,
             "'a.weight'", "outside the data block", "tensor offsets out of range");
    raw_case("span.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, PARE_EFORMAT,
             "'a.weight'", "needs 8", "offsets that do not match dtype x shape");
    raw_case("dtype.safetensors", "{\"a.weight\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, PARE_EFORMAT,
             "unknown dtype 'F33'", "'a.weight'", "unknown dtype");
    raw_case("overlap.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, PARE_EFORMAT, "overlap", "'b'", "overlapping tensors");
    raw_case("hole.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, PARE_EFORMAT,
             "unindexed bytes before tensor 'a'", NULL, "a hole in the data block");
    raw_case("noconfig0.safetensors", "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             4, PARE_EFORMAT, "no \"config\"", "Hugging Face", "a file without config (hand-made)");
    raw_case("badconfig.safetensors",
             "{\"__metadata__\":{\"config\":\"{\\\"kind\\\": \\\"encoder\\\", \\\"vocab\\\": 11, \\\"max_T\\\": 9, "
             "\\\"dd\\\": 3}\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             4, PARE_EFORMAT, "config in __metadata__", "unknown option 'dd'", "a config the model schema rejects");
    /* a config far larger than the file's data is refused before building (found writing fuzz/fuzz_checkpoint.c:
     * a 200-byte file made the loader allocate and initialise 16 GB before naming a missing tensor) */
    raw_case("huge.safetensors",
             "{\"__metadata__\":{\"config\":\"{\\\"kind\\\": \\\"encoder\\\", \\\"vocab\\\": 10000000, "
             "\\\"max_T\\\": 9, \\\"d\\\": 65536, \\\"heads\\\": 1}\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[0,4]}}",
             4, PARE_EFORMAT, "describes 758441771010 parameters", "holds 0.0 MB of tensor data", "a config far larger than the file");
    write_variant(enc, path_in("noconfig.safetensors"), NULL, NULL, 0, 0);
    load_fails(path_in("noconfig.safetensors"), PARE_EFORMAT, "no \"config\" in __metadata__", NULL, "a file without config");
    write_variant(enc, path_in("missing.safetensors"), "enc.1.ffn.up.bias", NULL, 0, 1);
    load_fails(path_in("missing.safetensors"), PARE_EFORMAT, "'enc.1.ffn.up.bias' is missing", NULL, "a missing tensor");
    write_variant(enc, path_in("extra.safetensors"), NULL, NULL, 1, 1);
    load_fails(path_in("extra.safetensors"), PARE_EFORMAT, "'enc.9.extra.weight' is not a parameter", NULL, "an extra tensor");
    write_variant(enc, path_in("shape.safetensors"), NULL, "enc.0.attn.qkv.weight", 0, 1);
    load_fails(path_in("shape.safetensors"), PARE_EFORMAT, "'enc.0.attn.qkv.weight' has shape [49, 16]", "needs [48, 16]",
               "a wrong shape");
    load_fails(path_in("absent.safetensors"), PARE_EIO, "cannot open", NULL, "a file that does not exist");

    /* the graph in __metadata__ (what m:save writes): anything that does not describe a model the
     * engine can run is refused, naming the node or parameter */
    {
        static const struct {
            const char *from, *to, *w1, *w2, *what;
        } g[] = {
            {"\"op\":\"linear\"", "\"op\":\"linearx\"", "unknown op 'linearx'", NULL, "an unknown op"},
            {"\"in\":[\"enc.0.ln1\"]", "\"in\":[\"enc.0.nope\"]", "node 'enc.0.attn.qkv'", "names no input", "an input that is not there"},
            {"\"shape\":[24,16]", "\"shape\":[16,24]", "node 'enc.0.ffn.up' (linear)", "(16, 24)", "a weight shape the node cannot use"},
            {"\"shape\":[24,16]", "\"shape\":[24000000,16]", "more than the file's data can fill", NULL, "parameters larger than the data"},
            {"\"version\":1", "\"version\":2", "version 2; this pare reads version 1", NULL, "a newer graph version"},
            {"{\"version\"", "[{\"version\"", "graph: not a JSON object", NULL, "a graph that is not an object"},
            {"\"heads\":2,\"causal\":0,\"bmm_i8\":0,\"attn\":\"\"", "\"heads\":2,\"causal\":0,\"bmm_i8\":0,\"attn\":\"nosuch\"", "node 'enc.0.attn'", "nosuch", "an unknown attention variant"},
            {"\"name\":\"enc.0.ln2\"", "\"name\":\"enc.0.ln1\"", "node 'enc.0.ln1'", "used twice", "a duplicate node name"},
            {"\"heads\":2,\"causal\"", "\"heads\":3,\"causal\"", "node 'enc.0.attn' (attention)", "heads", "heads that do not divide"},
            {"\"p\":0.1", "\"p\":2", "\"p\" must be a number in [0, 0.95]", NULL, "a dropout outside its range"},
            {"\"loss\":\"loss\"", "\"loss\":\"head\"", "loss 'head' is not a cross-entropy", NULL, "a loss that is not one"},
        };
        for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
            char file[64];
            snprintf(file, sizeof file, "graph%zu.safetensors", k);
            write_graph_edit(enc, path_in(file), g[k].from, g[k].to);
            load_fails(path_in(file), PARE_EFORMAT, g[k].w1, g[k].w2, g[k].what);
        }
    }

    /* a pruning mask (a weight transform with its mask parameter) comes back with the graph */
    {
        pare_model *mk = pare_model_clone(enc);
        const pare_param *w = &mk->params[pare_model_find_param(mk, "enc.1.ffn.up.weight")];
        int64_t N = w->shape[0], K = w->shape[1];
        float *mask = malloc(sizeof *mask * (size_t)(N * K));
        for (int64_t i = 0; i < N * K; i++) mask[i] = (float)((i * 7) % 3 != 0);
        if (ok(pare_model_set_mask(mk, "enc.1.ffn.up", mask, N, K) == PARE_OK, "masked encoder"))
            round_trip(mk, "masked.safetensors", "a masked model");
        free(mask);
        pare_model_free(mk);
    }

    /* failed saves */
    pare_model *bare = pare_model_new("encoder");
    ok(pare_model_save(bare, path_in("bare.safetensors")) == PARE_EINVAL && strstr(pare_errmsg(), "no graph to save"),
       "an empty model (no graph) is refused: %s", pare_errmsg());
    pare_model_free(bare);
    const char *nodir = path_in("no/such/dir/m.safetensors");
    ok(pare_model_save(enc, nodir) == PARE_EIO && strstr(pare_errmsg(), "directory '") && strstr(pare_errmsg(), "no/such/dir' does not exist") &&
           access(nodir, F_OK) != 0,
       "save into a missing directory names it: %s", pare_errmsg());

    /* a write that fails half-way (file size limit) leaves the old checkpoint in place, no temp file */
    const char *target = path_in("dec.safetensors");
    size_t before_n = 0, after_n = 0;
    unsigned char *before = read_file(target, &before_n);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    int limited = setrlimit(RLIMIT_FSIZE, &lim) == 0;
    pare_status st = pare_model_save(enc, target);
    setrlimit(RLIMIT_FSIZE, &old);
    unsigned char *after = read_file(target, &after_n);
    ok(limited && st == PARE_EIO && strstr(pare_errmsg(), target), "a save that fails mid-write is an error naming the file: %s",
       pare_errmsg());
    ok(before && after && before_n == after_n && !memcmp(before, after, before_n) && count_temp_files() == 0,
       "the target is untouched and no temporary file is left");
    free(before);
    free(after);

    /* a read-only directory (root ignores permissions: skipped then) */
    const char *ro = path_in("ro");
    mkdir(ro, 0755);
    char rofile[300];
    snprintf(rofile, sizeof rofile, "%s/m.safetensors", ro);
    pare_model_save(dec, rofile);
    chmod(ro, 0555);
    if (geteuid() == 0) {
        printf("ok %d - # skip read-only directory: running as root\n", ++tap_n);
    } else {
        before = read_file(rofile, &before_n);
        st = pare_model_save(enc, rofile);
        after = read_file(rofile, &after_n);
        ok(st == PARE_EIO && strstr(pare_errmsg(), rofile) && before && after && before_n == after_n && !memcmp(before, after, before_n),
           "save into a read-only directory fails, target untouched: %s", pare_errmsg());
        free(before);
        free(after);
    }
    chmod(ro, 0755);

    free(bytes);
    pare_model_free(enc);
    pare_model_free(dec);
    cleanup();
    return tap_done();
}
