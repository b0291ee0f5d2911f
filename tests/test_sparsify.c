/* test_sparsify.c — the sparse storage format (graph/fmt_sparse.c) and the sparsify pass
 * (compress/prune/sparsify.c) on a tiny encoder with pruning masks of four shapes.
 *
 * Checks:
 *   - format=auto picks CSR for an unstructured mask, 2:4 for a 2:4 mask, 4×1 and 16×16 blocks for block
 *     masks, and leaves unpruned layers f32; the input model keeps its masks and masters;
 *   - the sparse model's logits equal the masked f32 model's (to float rounding: another summation order);
 *   - sizes: each sparse weight reports its layout's bytes, indices included, and the model shrinks;
 *   - int8=true on CSR gives the same logits, bit for bit, as dynamic_int8 on the same (baked) weights;
 *   - checkpoints: save → load restores every sparse layout byte for byte (spec, indices, values, scales)
 *     and the logits bit for bit;
 *   - errors naming the layer: a layer that is not 2:4, zeros not in blocks, int8 with N:M, a model with no
 *     pruned layer, a layer already int8, an unknown option.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/pass.h"
#include "core/options.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/transform.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"

enum { B = 3, T = 9 };

static pare_model *encoder(void)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 11, NULL}, {"max_T", PARE_KV_NUM, T, NULL},
                    {"d", PARE_KV_NUM, 32, NULL},         {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL},
                    {"classes", PARE_KV_NUM, 3, NULL},    {"ffn", PARE_KV_NUM, 64, NULL},  {"seed", PARE_KV_NUM, 42, NULL}};
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, (int)(sizeof kv / sizeof kv[0])) != PARE_OK ||
        pare_transformer_build(&m, &o) != PARE_OK)
        diag("build failed: %s", pare_errmsg());
    return m;
}

/* A mask (N,K): kind 'u' unstructured with ~sp zeros, 'n' 2 of every 4 kept, 'b' 4×1 / 'B' 16×16 blocks. */
static void set_mask(pare_model *m, const char *layer, char kind, double sp, uint64_t seed)
{
    char wn[96];
    snprintf(wn, sizeof wn, "%s.weight", layer);
    const pare_param *w = &m->params[pare_model_find_param(m, wn)];
    int64_t N = w->shape[0], K = w->shape[1];
    float *mk = malloc(sizeof(float) * (size_t)(N * K));
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < N * K; i++) mk[i] = 1;
    if (kind == 'u')
        for (int64_t i = 0; i < N * K; i++) mk[i] = pare_rng_uniform(&r) < sp ? 0.0f : 1.0f;
    if (kind == 'n')
        for (int64_t i = 0; i < N * K; i += 4) {
            int a = (int)pare_rng_below(&r, 4), b = (a + 1 + (int)pare_rng_below(&r, 3)) % 4; /* the two dropped */
            mk[i + a] = mk[i + b] = 0;
        }
    if (kind == 'b' || kind == 'B') {
        int br = kind == 'b' ? 4 : 16, bc = kind == 'b' ? 1 : 16;
        for (int64_t i = 0; i < N; i += br)
            for (int64_t j = 0; j < K; j += bc)
                if (pare_rng_uniform(&r) < sp)
                    for (int64_t a = i; a < i + br && a < N; a++)
                        for (int64_t c = j; c < j + bc && c < K; c++) mk[a * K + c] = 0;
    }
    if (pare_model_set_mask(m, layer, mk, N, K) != PARE_OK) diag("set_mask %s: %s", layer, pare_errmsg());
    free(mk);
}

/* The logits (B, nclass) of m on a fixed batch, malloc'd; NULL + diag on failure. */
static float *logits(pare_model *m)
{
    int32_t tok[B * T], len[B] = {T, T - 3, 2};
    pare_rng r;
    pare_rng_seed(&r, 17);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&r, (uint64_t)m->vocab);
    pare_exec *x = NULL;
    float *out = NULL;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) == PARE_OK && pare_exec_bind(x, tok, len, NULL) == PARE_OK &&
        pare_exec_forward(x) == PARE_OK) {
        out = malloc(sizeof(float) * (size_t)(B * m->nclass));
        memcpy(out, pare_exec_logits(x), sizeof(float) * (size_t)(B * m->nclass));
    } else {
        diag("forward: %s", pare_errmsg());
    }
    pare_exec_free(x);
    return out;
}

static const pare_param *weight(const pare_model *m, const char *layer)
{
    char wn[96];
    snprintf(wn, sizeof wn, "%s.weight", layer);
    return &m->params[pare_model_find_param(m, wn)];
}

static pare_status sparsify(pare_model **out, const pare_model *m, const pare_kv *kv, int n)
{
    return pare_apply(out, m, "sparsify", kv, n);
}

static int same_layout(const pare_sparse_weight *a, const pare_sparse_weight *b)
{
#define SAME(f, n) ((!a->f && !b->f) || (a->f && b->f && !memcmp(a->f, b->f, sizeof *a->f * (size_t)(n))))
    int64_t rows = a->spec.kind == PARE_SP_BSR ? (a->N + a->spec.br - 1) / a->spec.br : a->N;
    int64_t ncol = a->spec.kind == PARE_SP_BSR ? a->nblk : a->nnz;
    return !memcmp(&a->spec, &b->spec, sizeof a->spec) && a->N == b->N && a->K == b->K && a->nnz == b->nnz &&
           a->nblk == b->nblk && a->nonzero == b->nonzero && SAME(rowptr, rows + 1) && SAME(col, ncol) &&
           SAME(pos, a->nnz) && SAME(val, a->nnz) && SAME(qval, a->nnz) && SAME(scale, a->N);
#undef SAME
}

int main(void)
{
    tap_plan_lazy();
    pare_model *m = encoder();
    if (!ok(m != NULL, "tiny encoder built")) return tap_done();
    set_mask(m, "enc.0.ffn.up", 'u', 0.85, 1);
    set_mask(m, "enc.0.ffn.down", 'n', 0.5, 2);
    set_mask(m, "enc.1.ffn.up", 'b', 0.8, 3);
    set_mask(m, "enc.1.attn.qkv", 'B', 0.75, 4);
    float *ref = logits(m);
    size_t f32_bytes = pare_model_size_bytes(m);

    /* ---- format=auto ---- */
    pare_model *s = NULL;
    if (!ok(sparsify(&s, m, NULL, 0) == PARE_OK, "sparsify (auto) applies")) {
        diag("%s", pare_errmsg());
        return tap_done();
    }
    static const struct { const char *layer, *label; } want[] = {
        {"enc.0.ffn.up", "csr"}, {"enc.0.ffn.down", "2:4"}, {"enc.1.ffn.up", "block4x1"}, {"enc.1.attn.qkv", "block16x16"},
        {"enc.0.attn.qkv", "f32"}, {"enc.1.ffn.down", "f32"}, {"head", "f32"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ok(!strcmp(pare_format_label(weight(s, want[i].layer)), want[i].label), "auto: %s stored as %s (got %s)",
           want[i].layer, want[i].label, pare_format_label(weight(s, want[i].layer)));
    ok(pare_node_transform(&m->nodes[pare_model_find_node(m, "enc.0.ffn.up")], PARE_TF_WEIGHT) != NULL &&
           weight(m, "enc.0.ffn.up")->format == PARE_FMT_F32 &&
           pare_sparse_zero_fraction(weight(m, "enc.0.ffn.up")->blob->data, 64, 32) < 0.01,
       "the input model keeps its masks and unpruned masters");
    ok(pare_node_transform(&s->nodes[pare_model_find_node(s, "enc.0.ffn.up")], PARE_TF_WEIGHT) == NULL,
       "the sparse model's masks were baked into its masters");
    ok(strstr(s->applied, "sparsify") != NULL, "applied records sparsify (%s)", s->applied);
    float *got = logits(s);
    if (ref && got) is_close_arr(got, ref, B * 3, 1e-5, 1e-4, "sparse logits == masked f32 logits");
    free(got);
    size_t expect = 0;
    for (int64_t i = 0; i < s->nparams; i++) {
        const pare_param *p = &s->params[i];
        expect += p->format == PARE_FMT_SPARSE ? pare_sparse_bytes(&p->q->sp)
                  : p->trainable && !strstr(p->name, ".mask") ? (size_t)pare_param_numel(p) * sizeof(float) : 0;
    }
    ok(pare_model_size_bytes(s) == expect && expect < f32_bytes, "size: %zu bytes = the layouts' bytes (indices included) + "
       "f32 params, < %zu masked f32", pare_model_size_bytes(s), f32_bytes);
    const pare_param *up = weight(s, "enc.0.ffn.up");
    ok(pare_param_bytes(up) == (size_t)up->q->sp.nonzero * 5 + 65 * 4, "csr enc.0.ffn.up: 5 bytes per nonzero + 4 per row and panel (%zu)",
       pare_param_bytes(up));

    /* ---- checkpoints ---- */
    char dir[] = "/tmp/pare_sparsify_XXXXXX", path[128];
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/s.safetensors", dir);
        pare_model *back = NULL;
        ok(pare_model_save(s, path) == PARE_OK, "save the sparse model");
        if (ok(pare_model_load(&back, path) == PARE_OK, "load it")) {
            int all = 1, n = 0;
            for (int64_t i = 0; i < s->nparams; i++) {
                const pare_param *a = &s->params[i], *b = &back->params[pare_model_find_param(back, a->name)];
                if (a->format != b->format) all = 0;
                else if (a->format == PARE_FMT_SPARSE) all &= same_layout(&a->q->sp, &b->q->sp), n++;
            }
            ok(all && n == 4, "load restores the %d sparse layouts byte for byte", n);
            float *a = logits(s), *b = logits(back);
            ok(a && b && !memcmp(a, b, sizeof(float) * B * 3), "loaded sparse model: identical logits");
            free(a), free(b);
            pare_model_free(back);
        } else {
            diag("%s", pare_errmsg());
        }
        unlink(path);
    }

    /* ---- int8 ---- */
    pare_kv i8kv[] = {{"layers", PARE_KV_STR, 0, "enc.*.ffn.up"}, {"int8", PARE_KV_BOOL, 1, NULL}, {"format", PARE_KV_STR, 0, "csr"}};
    pare_model *s8 = NULL, *baked = pare_model_clone(m), *q8 = NULL;
    pare_model_bake_mask(baked, "enc.0.ffn.up");
    pare_model_bake_mask(baked, "enc.1.ffn.up");
    pare_kv dkv[] = {{"layers", PARE_KV_STR, 0, "enc.*.ffn.up"}};
    if (ok(sparsify(&s8, m, i8kv, 3) == PARE_OK && pare_apply(&q8, baked, "dynamic_int8", dkv, 1) == PARE_OK,
           "sparsify int8=true and dynamic_int8 on the baked weights")) {
        ok(!strcmp(pare_format_label(weight(s8, "enc.1.ffn.up")), "csr_int8"), "int8: block-pruned layer stored csr_int8 too");
        float *a = logits(s8), *b = logits(q8);
        ok(a && b && !memcmp(a, b, sizeof(float) * B * 3), "csr int8 logits == dynamic_int8 logits, bit for bit");
        free(a), free(b);
        char path8[128];
        snprintf(path8, sizeof path8, "%s/s8.safetensors", dir);
        pare_model *back = NULL;
        if (ok(pare_model_save(s8, path8) == PARE_OK && pare_model_load(&back, path8) == PARE_OK, "int8 sparse save/load")) {
            ok(same_layout(&weight(s8, "enc.0.ffn.up")->q->sp, &weight(back, "enc.0.ffn.up")->q->sp),
               "int8 layout (values, scales) restored byte for byte");
            pare_model_free(back);
        }
        unlink(path8);
    } else {
        diag("%s", pare_errmsg());
    }
    rmdir(dir);
    pare_model_free(s8), pare_model_free(q8), pare_model_free(baked);

    /* ---- errors ---- */
    pare_model *bad = NULL;
    pare_kv nm[] = {{"layers", PARE_KV_STR, 0, "enc.0.ffn.up"}, {"format", PARE_KV_STR, 0, "nm"}};
    ok(sparsify(&bad, m, nm, 2) == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.ffn.up") && strstr(pare_errmsg(), "not 2:4") &&
           strstr(pare_errmsg(), "row "), "format=nm on unstructured zeros: %s", pare_errmsg());
    pare_kv nm2[] = {{"layers", PARE_KV_STR, 0, "enc.0.ffn.down"}, {"format", PARE_KV_STR, 0, "nm"}};
    pare_model *ok24 = NULL;
    ok(sparsify(&ok24, m, nm2, 2) == PARE_OK && !strcmp(pare_format_label(weight(ok24, "enc.0.ffn.down")), "2:4"),
       "format=nm on the 2:4 layer");
    pare_model_free(ok24);
    /* 85% unstructured zeros leave ~0.85^4 = 52% of the 4x1 blocks empty: below min_sparsity=0.7 */
    pare_kv bl[] = {{"layers", PARE_KV_STR, 0, "enc.0.ffn.up"}, {"format", PARE_KV_STR, 0, "block"},
                    {"min_sparsity", PARE_KV_NUM, 0.7, NULL}};
    ok(sparsify(&bad, m, bl, 3) == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.ffn.up") &&
           strstr(pare_errmsg(), "not in 4x1 blocks"), "format=block on unstructured zeros: %s", pare_errmsg());
    pare_kv i8nm[] = {{"format", PARE_KV_STR, 0, "nm"}, {"int8", PARE_KV_BOOL, 1, NULL}};
    ok(sparsify(&bad, m, i8nm, 2) == PARE_EINVAL && strstr(pare_errmsg(), "int8=true needs format=csr"), "int8 with nm: %s",
       pare_errmsg());
    pare_model *plain = encoder();
    ok(sparsify(&bad, plain, NULL, 0) == PARE_EINVAL && strstr(pare_errmsg(), "prune first"), "unpruned model: %s",
       pare_errmsg());
    pare_model *q = NULL;
    pare_kv hkv[] = {{"layers", PARE_KV_STR, 0, "head"}};
    pare_apply(&q, m, "dynamic_int8", hkv, 1);
    ok(q && sparsify(&bad, q, hkv, 1) == PARE_EINVAL && strstr(pare_errmsg(), "head is stored as int8"), "int8 layer: %s",
       pare_errmsg());
    pare_kv unk[] = {{"formt", PARE_KV_STR, 0, "csr"}};
    ok(sparsify(&bad, m, unk, 1) == PARE_EINVAL && strstr(pare_errmsg(), "formt") && strstr(pare_errmsg(), "min_sparsity"),
       "unknown option: %s", pare_errmsg());
    ok(bad == NULL, "failed passes return no model");
    pare_model_free(q), pare_model_free(plain);
    free(ref);
    pare_model_free(s);
    pare_model_free(m);
    return tap_done();
}
