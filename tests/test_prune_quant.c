/* test_prune_quant.c — pruning composed with int8 quantization, both orders, on a tiny encoder (issue 13):
 *
 *   prune → quantize   magnitude 80% (masks) → sparsify format=csr int8=true          (CSR int8 kernel)
 *                      reference: the test writes W ⊙ M into the masters itself (no masks), dynamic_int8;
 *                      the logits agree bit for bit, and the int8 codes are the test's own per-channel
 *                      quantization of W ⊙ M (s = max|row|/127, q = round(w/s)), zero where pruned.
 *   quantize → prune   dynamic_int8 → dequantize (f32 on the grid) → magnitude 80% → sparsify csr int8
 *                      reference: the mask is the test's own ranking of |q·s| (ties to the lower index); the
 *                      original integers at the kept places and 0 elsewhere, requantized by dynamic_int8, give
 *                      the same codes and the composed model's logits bit for bit.
 * Also: dynamic_int8 refuses a masked model (bake first), dequantize refuses an f32 model, the composed logits
 * stay near the masked f32 model's (int8 activations only). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "compress/prune/prune.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/transform.h"
#include "model/transformer.h"
#include "tap.h"

enum { B = 3, T = 8 };
static pare_dataset train, test;

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"vocab", PARE_KV_NUM, train.vocab, NULL}, {"max_T", PARE_KV_NUM, (double)train.T, NULL},
        {"d", PARE_KV_NUM, 32, NULL},            {"heads", PARE_KV_NUM, 4, NULL},
        {"layers", PARE_KV_NUM, 2, NULL},        {"classes", PARE_KV_NUM, 3, NULL},
        {"ffn", PARE_KV_NUM, 64, NULL},          {"seed", PARE_KV_NUM, 3, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 8) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    pare_rng r;
    pare_rng_seed(&r, 11);
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        for (int64_t k = 0; p->trainable && k < pare_param_numel(p); k++) p->blob->data[k] += (float)(0.2 * pare_rng_normal(&r));
    }
    return m;
}

static float *logits(pare_model *m)
{
    int32_t tok[B * T], len[B] = {T, T - 3, 2};
    pare_rng r;
    pare_rng_seed(&r, 17);
    for (int i = 0; i < B * T; i++) tok[i] = 1 + (int32_t)pare_rng_below(&r, (uint64_t)m->vocab - 1);
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

static pare_model *apply(const pare_model *m, const char *pass, const pare_kv *kv, int n)
{
    pare_model *out = NULL;
    if (pare_apply(&out, m, pass, kv, n) != PARE_OK) diag("%s: %s", pass, pare_errmsg());
    return out;
}

static const float *mask_of(const pare_model *m, int64_t node)
{
    const pare_transform *t = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    return t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
}

static int64_t enc_linears(const pare_model *m, int64_t *idx)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && !strncmp(m->nodes[i].name, "enc.", 4)) idx[n++] = i;
    return n;
}

/* The test's own per-channel symmetric int8 quantization of W (N,K): codes q, scales s. */
static void ref_quant(int8_t *q, float *s, const float *W, int64_t N, int64_t K)
{
    for (int64_t r = 0; r < N; r++) {
        float mx = 0;
        for (int64_t k = 0; k < K; k++) mx = fmaxf(mx, fabsf(W[r * K + k]));
        s[r] = mx > 0 ? mx / 127.0f : 1.0f;
        for (int64_t k = 0; k < K; k++) {
            float v = roundf(W[r * K + k] / s[r]);
            q[r * K + k] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

typedef struct pair { float v; int64_t i; } pair;
static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int main(void)
{
    tap_plan_lazy();
    pare_kv tk[] = {{"seed", PARE_KV_NUM, 5, NULL}, {"n_train", PARE_KV_NUM, 64, NULL}, {"n_test", PARE_KV_NUM, 16, NULL},
                    {"max_length", PARE_KV_NUM, T - 1, NULL}};
    if (pare_task_make_kv(&train, &test, "majority", tk, 4) != PARE_OK) return diag("task: %s", pare_errmsg()), 1;
    pare_model *m = build();
    if (!m) return 1;
    int64_t idx[64], n = enc_linears(m, idx);
    const double sp = 0.8;
    pare_kv enc[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
    pare_kv pk[] = {{"sparsity", PARE_KV_NUM, sp, NULL}};
    pare_kv sk[] = {{"layers", PARE_KV_STR, 0, "enc.*"}, {"format", PARE_KV_STR, 0, "csr"}, {"int8", PARE_KV_BOOL, 1, NULL}};

    /* ---- prune, then quantize ---- */
    pare_model *p = apply(m, "prune_magnitude", pk, 1);
    pare_model *c1 = p ? apply(p, "sparsify", sk, 3) : NULL;
    ok(c1 != NULL, "prune → quantize: magnitude 80%% → sparsify csr int8 runs");
    int all_csr = 1;
    for (int64_t l = 0; c1 && l < n; l++)
        all_csr &= !strcmp(pare_format_label(&c1->params[c1->nodes[idx[l]].param[0]]), "csr_int8");
    ok(all_csr, "every encoder Linear is stored csr_int8");
    pare_model *q = NULL;
    ok(pare_apply(&q, p, "dynamic_int8", enc, 1) == PARE_EINVAL && strstr(pare_errmsg(), "bake"),
       "dynamic_int8 on the masked model is refused, pointing to baking: %s", pare_errmsg());
    /* the reference: W ⊙ M written by the test into a clone's masters, then dynamic_int8 */
    pare_model *z = pare_model_clone(m);
    for (int64_t l = 0; l < n; l++) {
        pare_param *w = &z->params[z->nodes[idx[l]].param[0]];
        const float *mk = mask_of(p, idx[l]);
        pare_param_make_private(w);
        for (int64_t j = 0; mk && j < pare_param_numel(w); j++) w->blob->data[j] = mk[j] != 0.0f ? w->blob->data[j] : 0.0f;
    }
    pare_model *r1 = apply(z, "dynamic_int8", enc, 1);
    float *a = c1 ? logits(c1) : NULL, *b = r1 ? logits(r1) : NULL;
    ok(a && b && !memcmp(a, b, sizeof(float) * B * 3), "its logits equal dynamic_int8 of W ⊙ M written by hand, bit for bit");
    int codes_ok = 1, scales_ok = 1;
    for (int64_t l = 0; r1 && l < n; l++) {
        const pare_param *w = &r1->params[r1->nodes[idx[l]].param[0]];
        const float *W = z->params[z->nodes[idx[l]].param[0]].blob->data;
        int64_t N = w->shape[0], K = w->shape[1];
        int8_t *rq = malloc((size_t)(N * K));
        float *rs = malloc(sizeof(float) * (size_t)N);
        ref_quant(rq, rs, W, N, K);
        if (memcmp(rq, w->q->i8.q, (size_t)(N * K))) codes_ok = 0;
        for (int64_t r = 0; r < N; r++)
            if (fabsf(rs[r] - w->q->i8.scale[r]) > 1e-6f * rs[r]) scales_ok = 0;
        for (int64_t j = 0; j < N * K; j++)
            if (mask_of(p, idx[l])[j] == 0.0f && w->q->i8.q[j] != 0) codes_ok = 0;
        free(rq), free(rs);
    }
    ok(codes_ok, "the int8 codes are the test's quantization of W ⊙ M, and 0 wherever the mask pruned");
    ok(scales_ok, "the scales are max|row of W ⊙ M| / 127");
    free(a), free(b);

    /* ---- quantize, then prune ---- */
    pare_model *q8 = apply(m, "dynamic_int8", enc, 1);
    pare_model *d = q8 ? apply(q8, "dequantize", NULL, 0) : NULL;
    int grid = d != NULL;
    for (int64_t l = 0; d && l < n; l++) {
        const pare_param *wq = &q8->params[q8->nodes[idx[l]].param[0]], *wd = &d->params[d->nodes[idx[l]].param[0]];
        const float *W = m->params[m->nodes[idx[l]].param[0]].blob->data;
        int64_t N = wq->shape[0], K = wq->shape[1];
        if (wd->format != PARE_FMT_F32) grid = 0;
        for (int64_t r = 0; r < N; r++)
            for (int64_t k = 0; k < K; k++) {
                float s = wq->q->i8.scale[r], v = wd->blob->data[r * K + k];
                if (fabsf(v - W[r * K + k]) > 0.5f * s * 1.0001f || fabsf(v / s - roundf(v / s)) > 1e-3f) grid = 0;
            }
    }
    ok(grid, "dequantize: f32 weights on the int8 grid (integer multiples of the scale, within s/2 of W)");
    pare_model *p2 = d ? apply(d, "prune_magnitude", pk, 1) : NULL;
    pare_model *c2 = p2 ? apply(p2, "sparsify", sk, 3) : NULL;
    ok(c2 != NULL, "quantize → prune: dynamic_int8 → dequantize → magnitude 80%% → sparsify csr int8 runs");
    int mask_ok = p2 != NULL;
    for (int64_t l = 0; p2 && l < n; l++) {
        const pare_param *wd = &d->params[d->nodes[idx[l]].param[0]];
        int64_t len = pare_param_numel(wd), k = llround(sp * (double)len);
        pair *pr = malloc(sizeof *pr * (size_t)len);
        for (int64_t j = 0; j < len; j++) pr[j] = (pair){fabsf(wd->blob->data[j]), j};
        qsort(pr, (size_t)len, sizeof *pr, cmp_pair);
        const float *mk = mask_of(p2, idx[l]);
        for (int64_t j = 0; j < len; j++)
            if (!mk || (mk[pr[j].i] == 0.0f) != (j < k)) mask_ok = 0;
        free(pr);
    }
    ok(mask_ok, "the mask prunes the smallest |q·s| on the grid (the test's ranking, ties to the lower index)");
    /* the reference: the original integers where kept, 0 where pruned, with the original scales */
    pare_model *zb = pare_model_clone(m);
    for (int64_t l = 0; p2 && l < n; l++) {
        pare_param *w = &zb->params[zb->nodes[idx[l]].param[0]];
        const pare_param *wq = &q8->params[q8->nodes[idx[l]].param[0]];
        const float *mk = mask_of(p2, idx[l]);
        int64_t K = w->shape[1];
        pare_param_make_private(w);
        for (int64_t j = 0; j < pare_param_numel(w); j++)
            w->blob->data[j] = mk[j] != 0.0f ? (float)wq->q->i8.q[j] * wq->q->i8.scale[j / K] : 0.0f;
    }
    pare_model *r2 = apply(zb, "dynamic_int8", enc, 1);
    int same_codes = r2 != NULL;
    for (int64_t l = 0; r2 && p2 && l < n; l++) {
        const pare_param *wr = &r2->params[r2->nodes[idx[l]].param[0]], *wq = &q8->params[q8->nodes[idx[l]].param[0]];
        const float *mk = mask_of(p2, idx[l]);
        for (int64_t j = 0; j < pare_param_numel(wr); j++)
            if (wr->q->i8.q[j] != (mk[j] != 0.0f ? wq->q->i8.q[j] : 0)) same_codes = 0;
        for (int64_t r = 0; r < wr->shape[0]; r++)
            if (fabsf(wr->q->i8.scale[r] - wq->q->i8.scale[r]) > 1e-6f * wq->q->i8.scale[r]) same_codes = 0;
    }
    ok(same_codes, "requantizing keeps the first quantization's integers at the kept places (0 elsewhere) and its scales");
    a = c2 ? logits(c2) : NULL, b = r2 ? logits(r2) : NULL;
    ok(a && b && !memcmp(a, b, sizeof(float) * B * 3), "the composed model's logits equal that reference's, bit for bit");
    float *pf = p2 ? logits(p2) : NULL; /* the same pruned grid weights, f32 activations and kernel */
    double worst = 0, scale = 0;
    for (int i = 0; a && pf && i < B * 3; i++) worst = fmax(worst, fabs(a[i] - pf[i])), scale = fmax(scale, fabs(pf[i]));
    ok(a && pf && worst < 0.05 * scale + 0.02, "int8 activations cost little: composed vs the masked f32 grid model, max |diff| "
       "%.4f (max |logit| %.3f)", worst, scale);
    free(pf);
    free(a), free(b);

    ok(pare_apply(&q, m, "dequantize", NULL, 0) == PARE_EINVAL && strstr(pare_errmsg(), "f32"),
       "dequantize on an f32 model: %s", pare_errmsg());

    pare_model_free(p), pare_model_free(c1), pare_model_free(z), pare_model_free(r1), pare_model_free(q8);
    pare_model_free(d), pare_model_free(p2), pare_model_free(c2), pare_model_free(zb), pare_model_free(r2), pare_model_free(m);
    pare_dataset_free(&train), pare_dataset_free(&test);
    return tap_done();
}
