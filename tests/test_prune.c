/* test_prune.c — pruning (compress/prune/) on a tiny encoder, each criterion against a reference written
 * here (plain loops: sorting with index tie-breaks, not the engine's selection): magnitude per layer and
 * global, N:M (exactly N of every M along the input), blocks (blockwise, lowest L2 norms), SNIP and Taylor
 * from the calibration gradients, exact sparsity, the cubic and iterative schedules' values, masked weights
 * held at zero through fine-tuning with the masters given back when the mask goes, a gradual schedule's
 * final sparsity, group lasso's penalty and gradient, checkpoints bit-identical, and the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/prune/prune.h"
#include "core/arena.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/transform.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

static pare_dataset train, test;

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"vocab", PARE_KV_NUM, train.vocab, NULL}, {"max_T", PARE_KV_NUM, (double)train.T, NULL},
        {"d", PARE_KV_NUM, 32, NULL},            {"heads", PARE_KV_NUM, 4, NULL},
        {"layers", PARE_KV_NUM, 2, NULL},        {"classes", PARE_KV_NUM, 2, NULL},
        {"ffn", PARE_KV_NUM, 48, NULL},          {"seed", PARE_KV_NUM, 3, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 8) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 11, 0.2); /* spread the weights so magnitudes differ clearly */
    return m;
}

static const float *mask_of(const pare_model *m, int64_t node)
{
    const pare_transform *t = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    return t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
}

/* ---- the reference: the k lowest of v by (value, index), by sorting ---- */
typedef struct pair { float v; int64_t i; } pair;
static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}
/* keep[i] = 0 for the k lowest */
static void ref_lowest(unsigned char *keep, const float *v, int64_t n, int64_t k)
{
    pair *p = malloc(sizeof *p * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = (pair){v[i], i}, keep[i] = 1;
    qsort(p, (size_t)n, sizeof *p, cmp_pair);
    for (int64_t j = 0; j < k; j++) keep[p[j].i] = 0;
    free(p);
}

/* The Linear layers a pass with layers="*", exclude="head" selects. */
static int64_t linears(const pare_model *m, int64_t *idx)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && strcmp(m->nodes[i].name, "head")) idx[n++] = i;
    return n;
}

static pare_model *apply(const pare_model *m, const char *pass, const pare_kv *kv, int n, int calib)
{
    pare_model *out = NULL;
    pare_pass_ctx ctx = {calib ? &train : NULL};
    if (pare_apply_ctx(&out, m, pass, kv, n, &ctx) != PARE_OK) diag("%s: %s", pass, pare_errmsg());
    return out;
}

/* Compare p's masks on idx with reference masks from per-layer scores (per layer: k = round(s·NK)). */
static int masks_match_per_layer(const pare_model *p, const int64_t *idx, int64_t n, float **score, double s, const char *what)
{
    int good = 1;
    for (int64_t l = 0; l < n; l++) {
        const pare_param *w = &p->params[p->nodes[idx[l]].param[0]];
        int64_t len = w->shape[0] * w->shape[1], k = llround(s * (double)len), zeros = 0;
        unsigned char *keep = malloc((size_t)len);
        ref_lowest(keep, score[l], len, k);
        const float *mk = mask_of(p, idx[l]);
        for (int64_t j = 0; mk && j < len; j++) {
            zeros += mk[j] == 0.0f;
            if ((mk[j] != 0.0f) != keep[j]) good = 0;
        }
        if (!mk || zeros != k) good = 0, diag("%s: %s has %lld zeros, want %lld", what, p->nodes[idx[l]].name, (long long)zeros, (long long)k);
        free(keep);
    }
    return ok(good, "%s: every layer's mask equals the reference (the round(s*NK) lowest scores)", what);
}

static float **alloc_scores(const pare_model *m, const int64_t *idx, int64_t n)
{
    float **s = calloc((size_t)n, sizeof *s);
    for (int64_t l = 0; l < n; l++) {
        const pare_param *w = &m->params[m->nodes[idx[l]].param[0]];
        s[l] = calloc((size_t)(w->shape[0] * w->shape[1]), sizeof(float));
    }
    return s;
}
static void free_scores(float **s, int64_t n)
{
    for (int64_t l = 0; l < n; l++) free(s[l]);
    free(s);
}

/* ---- gradients for the SNIP / Taylor references: per calibration batch ---- */
typedef struct gacc { const int64_t *idx; int64_t n; float **sum, **sq; int batches; } gacc;
static pare_status grad_cb(void *ud, pare_model *m)
{
    gacc *a = ud;
    a->batches++;
    for (int64_t l = 0; l < a->n; l++) {
        const pare_param *w = &m->params[m->nodes[a->idx[l]].param[0]];
        for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++) {
            a->sum[l][j] += w->grad[j];
            double t = (double)w->blob->data[j] * w->grad[j];
            a->sq[l][j] += (float)(t * t);
        }
    }
    return PARE_OK;
}


/* ---- movement references: hooks that accumulate the scores here, then call the schedule's own ---- */
typedef struct mref {
    pare_train_hooks inner;
    const int64_t *idx;
    int64_t n;
    float **S;
    int soft;
    double lambda, lr_s;
} mref;
static pare_status mref_begin(void *ud, pare_model *m, int64_t steps) { mref *r = ud; return r->inner.begin(r->inner.ud, m, steps); }
static pare_status mref_backward(void *ud, pare_model *m, int64_t step, float *extra)
{
    mref *r = ud;
    for (int64_t l = 0; l < r->n; l++) {
        const pare_param *w = &m->params[m->nodes[r->idx[l]].param[0]];
        int64_t len = pare_param_numel(w);
        double ss = 0;
        for (int64_t j = 0; j < len; j++) ss += (double)w->blob->data[j] * w->grad[j] * w->blob->data[j] * w->grad[j];
        double rms = sqrt(ss / (double)len);
        for (int64_t j = 0; j < len; j++) {
            double wg = (double)w->blob->data[j] * w->grad[j];
            if (!r->soft) r->S[l][j] -= (float)wg;
            else {
                double sg = 1 / (1 + exp(-(double)r->S[l][j]));
                r->S[l][j] -= (float)(r->lr_s * (wg / (rms > 0 ? rms : 1) + r->lambda * sg * (1 - sg)));
            }
        }
    }
    return r->inner.after_backward(r->inner.ud, m, step, extra);
}
static pare_status mref_step(void *ud, pare_model *m, int64_t step) { mref *r = ud; return r->inner.after_step(r->inner.ud, m, step); }
static void mref_end(void *ud, pare_model *m) { mref *r = ud; r->inner.end(r->inner.ud, m); }

int main(void)
{
    tap_plan_lazy();
    pare_kv tk[] = {{"seed", PARE_KV_NUM, 5, NULL}, {"n_train", PARE_KV_NUM, 256, NULL}, {"n_test", PARE_KV_NUM, 64, NULL},
                    {"max_length", PARE_KV_NUM, 8, NULL}};
    if (pare_task_make_kv(&train, &test, "majority", tk, 4) != PARE_OK) {
        diag("task: %s", pare_errmsg());
        return 1;
    }
    pare_model *m = build();
    if (!m) return 1;
    int64_t idx[64], n = linears(m, idx);
    ok(n >= 6, "the encoder has %lld prunable Linear layers", (long long)n);

    /* ---- magnitude, per layer ---- */
    {
        pare_kv kv[] = {{"sparsity", PARE_KV_NUM, 0.7, NULL}};
        pare_model *p = apply(m, "prune_magnitude", kv, 1, 0);
        float **s = alloc_scores(m, idx, n);
        for (int64_t l = 0; l < n; l++) {
            const pare_param *w = &m->params[m->nodes[idx[l]].param[0]];
            for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++) s[l][j] = fabsf(w->blob->data[j]);
        }
        if (p) masks_match_per_layer(p, idx, n, s, 0.7, "magnitude scope=layer");
        else ok(0, "magnitude scope=layer");
        ok(p && !mask_of(p, pare_model_find_node(p, "head")), "the head is excluded by default");
        ok(!mask_of(m, idx[0]), "the input model is unchanged (no mask)");
        free_scores(s, n);
        pare_model_free(p);
    }

    /* ---- magnitude, global: one threshold; layers differ; the total is exact ---- */
    {
        pare_kv kv[] = {{"sparsity", PARE_KV_NUM, 0.6, NULL}, {"scope", PARE_KV_STR, 0, "global"}};
        pare_model *p = apply(m, "prune_magnitude", kv, 2, 0);
        int64_t total = 0;
        for (int64_t l = 0; l < n; l++) total += pare_param_numel(&m->params[m->nodes[idx[l]].param[0]]);
        float *pool = malloc(sizeof *pool * (size_t)total);
        unsigned char *keep = malloc((size_t)total);
        int64_t off = 0;
        for (int64_t l = 0; l < n; l++) {
            const pare_param *w = &m->params[m->nodes[idx[l]].param[0]];
            for (int64_t j = 0; j < pare_param_numel(w); j++) pool[off++] = fabsf(w->blob->data[j]);
        }
        ref_lowest(keep, pool, total, llround(0.6 * (double)total));
        int good = p != NULL, differ = 0;
        int64_t zeros = 0;
        off = 0;
        for (int64_t l = 0; p && l < n; l++) {
            const float *mk = mask_of(p, idx[l]);
            int64_t len = pare_param_numel(&m->params[m->nodes[idx[l]].param[0]]), lz = 0;
            for (int64_t j = 0; j < len; j++, off++) {
                if (!mk || (mk[j] != 0.0f) != keep[off]) good = 0;
                lz += mk && mk[j] == 0.0f;
            }
            zeros += lz;
            if (llabs(lz - llround(0.6 * (double)len)) > 1) differ++;
        }
        ok(good, "magnitude scope=global: the masks equal the reference over all %lld weights pooled", (long long)total);
        ok(zeros == llround(0.6 * (double)total), "global: %lld zeros of %lld, exactly round(0.6 * total)", (long long)zeros, (long long)total);
        ok(differ > 0, "global: %d layers' sparsities differ from 0.6 (per layer they would all be 0.6)", differ);
        pare_sparsity sp = pare_prune_sparsity(p, NULL);
        ok(sp.zeros == zeros, "pare_prune_sparsity counts the same zeros (%lld)", (long long)sp.zeros);
        free(pool), free(keep);
        pare_model_free(p);
    }

    /* ---- N:M ---- */
    int nm[2][2] = {{2, 4}, {4, 8}};
    for (int c = 0; c < 2; c++) {
        pare_kv kv[] = {{"pattern", PARE_KV_STR, 0, "nm"}, {"n", PARE_KV_NUM, nm[c][0], NULL}, {"m", PARE_KV_NUM, nm[c][1], NULL}};
        pare_model *p = apply(m, "prune_magnitude", kv, 3, 0);
        int exact = p != NULL, top = p != NULL;
        int64_t groups = 0;
        for (int64_t l = 0; p && l < n; l++) {
            const pare_param *w = &m->params[m->nodes[idx[l]].param[0]];
            const float *mk = mask_of(p, idx[l]);
            int64_t N = w->shape[0], K = w->shape[1];
            for (int64_t i = 0; i < N; i++)
                for (int64_t g = 0; g < K; g += nm[c][1], groups++) {
                    int kept = 0;
                    float v[64];
                    unsigned char keep[64];
                    for (int a = 0; a < nm[c][1]; a++) kept += mk[i * K + g + a] != 0.0f, v[a] = fabsf(w->blob->data[i * K + g + a]);
                    if (kept != nm[c][0]) exact = 0;
                    ref_lowest(keep, v, nm[c][1], nm[c][1] - nm[c][0]);
                    for (int a = 0; a < nm[c][1]; a++)
                        if ((mk[i * K + g + a] != 0.0f) != keep[a]) top = 0;
                }
        }
        ok(exact, "%d:%d: every one of %lld groups of %d consecutive input weights keeps exactly %d", nm[c][0], nm[c][1],
           (long long)groups, nm[c][1], nm[c][0]);
        ok(top, "%d:%d: the kept ones are each group's %d largest |w|", nm[c][0], nm[c][1], nm[c][0]);
        pare_model_free(p);
    }

    /* ---- blocks ---- */
    int blk[2][2] = {{4, 1}, {16, 16}};
    for (int c = 0; c < 2; c++) {
        char b[16];
        snprintf(b, sizeof b, "%dx%d", blk[c][0], blk[c][1]);
        pare_kv kv[] = {{"pattern", PARE_KV_STR, 0, "block"}, {"block", PARE_KV_STR, 0, b}, {"sparsity", PARE_KV_NUM, 0.5, NULL}};
        pare_model *p = apply(m, "prune_magnitude", kv, 3, 0);
        int blockwise = p != NULL, lowest = p != NULL;
        for (int64_t l = 0; p && l < n; l++) {
            const pare_param *w = &m->params[m->nodes[idx[l]].param[0]];
            const float *mk = mask_of(p, idx[l]);
            int64_t N = w->shape[0], K = w->shape[1], NB = N / blk[c][0], KB = K / blk[c][1];
            float *bn = malloc(sizeof *bn * (size_t)(NB * KB));
            unsigned char *keep = malloc((size_t)(NB * KB));
            for (int64_t a = 0; a < NB; a++)
                for (int64_t bb = 0; bb < KB; bb++) {
                    double ss = 0;
                    float first = mk[(a * blk[c][0]) * K + bb * blk[c][1]];
                    for (int r = 0; r < blk[c][0]; r++)
                        for (int q = 0; q < blk[c][1]; q++) {
                            int64_t j = (a * blk[c][0] + r) * K + bb * blk[c][1] + q;
                            ss += (double)w->blob->data[j] * w->blob->data[j];
                            if (mk[j] != first) blockwise = 0;
                        }
                    bn[a * KB + bb] = (float)sqrt(ss);
                }
            ref_lowest(keep, bn, NB * KB, llround(0.5 * (double)(NB * KB)));
            for (int64_t a = 0; a < NB * KB; a++)
                if ((mk[(a / KB) * blk[c][0] * K + (a % KB) * blk[c][1]] != 0.0f) != keep[a]) lowest = 0;
            free(bn), free(keep);
        }
        ok(blockwise, "block %s: every block is all kept or all pruned", b);
        ok(lowest, "block %s: the pruned blocks are the half with the lowest L2 norm in each layer", b);
        pare_model_free(p);
    }

    /* ---- SNIP and Taylor against gradients summed here ---- */
    {
        pare_model *g = pare_model_clone(m);
        gacc a = {idx, n, alloc_scores(m, idx, n), alloc_scores(m, idx, n), 0};
        pare_status st = pare_prune_grad_batches(g, &train, 64, 16, grad_cb, &a);
        ok(st == PARE_OK && a.batches == 4, "calibration gradients: 64 examples in 4 batches of 16 (%d)", a.batches);
        float **snip = alloc_scores(m, idx, n);
        for (int64_t l = 0; l < n; l++) {
            const pare_param *w = &m->params[m->nodes[idx[l]].param[0]];
            for (int64_t j = 0; j < pare_param_numel(w); j++) snip[l][j] = fabsf(w->blob->data[j] * a.sum[l][j]);
        }
        pare_kv kv[] = {{"sparsity", PARE_KV_NUM, 0.5, NULL}, {"calib_samples", PARE_KV_NUM, 64, NULL}, {"calib_batch", PARE_KV_NUM, 16, NULL}};
        pare_model *p = apply(m, "prune_snip", kv, 3, 1);
        if (p) masks_match_per_layer(p, idx, n, snip, 0.5, "snip |w * sum g|");
        else ok(0, "snip");
        int differs = 0;
        pare_model *mag = apply(m, "prune_magnitude", kv, 1, 0);
        for (int64_t l = 0; p && mag && l < n; l++)
            for (int64_t j = 0; j < pare_param_numel(&m->params[m->nodes[idx[l]].param[0]]); j++) differs += mask_of(p, idx[l])[j] != mask_of(mag, idx[l])[j];
        ok(differs > 0, "snip's masks differ from magnitude's (%d weights)", differs);
        ok(p && !p->params[m->nodes[idx[0]].param[0]].grad, "the pruned model carries no gradient buffers");
        pare_model_free(p), pare_model_free(mag);
        p = apply(m, "prune_taylor", kv, 3, 1);
        if (p) masks_match_per_layer(p, idx, n, a.sq, 0.5, "taylor sum_b (w * g_b)^2");
        else ok(0, "taylor");
        pare_model_free(p);
        pare_model *none = NULL;
        ok(pare_apply(&none, m, "prune_snip", kv, 1) == PARE_EINVAL && strstr(pare_errmsg(), "calib"),
           "snip without calibration data: %s", pare_errmsg());
        free_scores(a.sum, n), free_scores(a.sq, n), free_scores(snip, n);
        pare_model_free(g);
    }

    /* ---- schedules' values ---- */
    {
        double want[] = {0.1, 0.1 + 0.8 * (1 - pow(0.75, 3)), 0.1 + 0.8 * (1 - pow(0.5, 3)), 0.1 + 0.8 * (1 - pow(0.25, 3)), 0.9};
        int good = 1;
        for (int k = 0; k <= 4; k++) {
            double got = pare_prune_cubic(2 + 3 * k, 0.1, 0.9, 2, 4, 3);
            if (fabs(got - want[k]) > 1e-12) good = 0, diag("cubic at t=%d: %.15g, want %.15g", 2 + 3 * k, got, want[k]);
        }
        ok(good && pare_prune_cubic(0, 0.1, 0.9, 2, 4, 3) == 0.1 && pare_prune_cubic(100, 0.1, 0.9, 2, 4, 3) == 0.9,
           "cubic s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 at t0 + k dt, and s_i before, s_f after");
        pare_kv kv[] = {{"schedule", PARE_KV_STR, 0, "gradual"}, {"initial_sparsity", PARE_KV_NUM, 0.1, NULL},
                        {"sparsity", PARE_KV_NUM, 0.9, NULL}, {"start", PARE_KV_NUM, 2, NULL}, {"every", PARE_KV_NUM, 3, NULL},
                        {"prunes", PARE_KV_NUM, 4, NULL}};
        pare_options o;
        pare_prune_sched *s = NULL;
        pare_status st = pare_opts_resolve(&o, &pare_prune_sched_schema, kv, 6);
        if (st == PARE_OK) st = pare_prune_sched_new(&s, &o);
        good = st == PARE_OK;
        for (int t = 0; good && t < 20; t++) {
            double got = pare_prune_sched_target(s, t);
            int event = t >= 2 && t <= 14 && (t - 2) % 3 == 0;
            if (event ? fabs(got - want[(t - 2) / 3]) > 1e-12 : got != -1) good = 0, diag("gradual target(%d) = %g", t, got);
        }
        ok(good, "gradual schedule: events at 2, 5, 8, 11, 14 with the cubic's values, none elsewhere");
        pare_prune_sched_free(s);
        kv[0].str = "iterative";
        st = pare_opts_resolve(&o, &pare_prune_sched_schema, kv, 6);
        if (st == PARE_OK) st = pare_prune_sched_new(&s, &o);
        good = st == PARE_OK;
        for (int k = 0; good && k < 4; k++) {
            double got = pare_prune_sched_target(s, 2 + 3 * k), w = 1 - pow(0.1, (k + 1) / 4.0);
            if (fabs(got - w) > 1e-12) good = 0, diag("iterative round %d: %g, want %g", k, got, w);
        }
        ok(good && pare_prune_sched_target(s, 14) == -1, "iterative: 4 rounds reaching 1 - (1 - 0.9)^(k/4), the last 0.9");
        pare_prune_sched_free(s);
    }

    /* ---- fine-tuning under masks: zeros stay zero, masters come back ---- */
    {
        pare_kv kv[] = {{"sparsity", PARE_KV_NUM, 0.5, NULL}};
        pare_model *p = apply(m, "prune_magnitude", kv, 1, 0);
        int64_t node = idx[1];
        const pare_param *w = &p->params[p->nodes[node].param[0]];
        int64_t len = pare_param_numel(w);
        float *before = malloc(sizeof *before * (size_t)len), *mk = malloc(sizeof *mk * (size_t)len);
        memcpy(before, w->blob->data, sizeof *before * (size_t)len);
        memcpy(mk, mask_of(p, node), sizeof *mk * (size_t)len);
        pare_kv to[] = {{"steps", PARE_KV_NUM, 20, NULL}, {"batch", PARE_KV_NUM, 16, NULL}, {"lr", PARE_KV_NUM, 3e-3, NULL},
                        {"warmup", PARE_KV_NUM, 2, NULL}, {"weight_decay", PARE_KV_NUM, 0, NULL}};
        pare_options o;
        pare_train_result r;
        pare_status st = pare_opts_resolve(&o, &pare_train_schema, to, 5);
        if (st == PARE_OK) st = pare_train(p, &train, NULL, &o, NULL, NULL, &r);
        ok(st == PARE_OK, "fine-tuning a pruned model runs (%s)", st == PARE_OK ? "ok" : pare_errmsg());
        w = &p->params[p->nodes[node].param[0]];
        float *eff = malloc(sizeof *eff * (size_t)len);
        pare_prune_effective(p, node, eff);
        int zero = 1, masters = 1, moved = 0;
        for (int64_t j = 0; j < len; j++) {
            if (mk[j] == 0.0f && eff[j] != 0.0f) zero = 0;
            if (mk[j] == 0.0f && w->blob->data[j] != before[j]) masters = 0;
            if (mk[j] != 0.0f && w->blob->data[j] != before[j]) moved++;
        }
        ok(zero, "after 20 steps the masked weights are still exactly 0 in the effective weight");
        ok(masters && moved > 0, "the masked masters did not move (weight_decay 0) while %d kept weights did", moved);
        ok(pare_model_set_mask(p, p->nodes[node].name, NULL, 0, 0) == PARE_OK, "removing the mask");
        pare_prune_effective(p, node, eff);
        int back = 1;
        for (int64_t j = 0; j < len; j++)
            if (mk[j] == 0.0f && eff[j] != before[j]) back = 0;
        ok(back, "with the mask removed the pruned weights are their masters again (bit-identical)");
        free(before), free(mk), free(eff);
        pare_model_free(p);
    }

    /* ---- a gradual schedule reaches its sparsity exactly, per layer ---- */
    {
        pare_kv kv[] = {{"method", PARE_KV_STR, 0, "movement"}, {"sparsity", PARE_KV_NUM, 0.8, NULL},
                        {"every", PARE_KV_NUM, 3, NULL}, {"prunes", PARE_KV_NUM, 4, NULL}, {"start", PARE_KV_NUM, 2, NULL}};
        pare_options o, to;
        pare_prune_sched *s = NULL;
        pare_status st = pare_opts_resolve(&o, &pare_prune_sched_schema, kv, 5);
        if (st == PARE_OK) st = pare_prune_sched_new(&s, &o);
        pare_kv tkv[] = {{"steps", PARE_KV_NUM, 16, NULL}, {"batch", PARE_KV_NUM, 16, NULL}, {"lr", PARE_KV_NUM, 1e-3, NULL},
                         {"warmup", PARE_KV_NUM, 2, NULL}};
        if (st == PARE_OK) st = pare_opts_resolve(&to, &pare_train_schema, tkv, 4);
        pare_model *p = pare_model_clone(m);
        pare_train_hooks h = pare_prune_sched_hooks(s);
        pare_train_result r;
        if (st == PARE_OK) st = pare_train_ex(p, &train, NULL, &to, NULL, &h, NULL, NULL, &r);
        ok(st == PARE_OK, "movement, gradual over 16 steps (%s)", st == PARE_OK ? "ok" : pare_errmsg());
        int exact = st == PARE_OK;
        for (int64_t l = 0; exact && l < n; l++) {
            pare_sparsity sp = pare_prune_sparsity(p, p->nodes[idx[l]].name);
            if (llabs(sp.zeros - llround(0.8 * (double)sp.total)) > 1) exact = 0, diag("%s: %lld of %lld", p->nodes[idx[l]].name, (long long)sp.zeros, (long long)sp.total);
        }
        ok(exact, "every layer ends at round(0.8 * NK) zeros (to 1 weight)");
        ok(pare_prune_sched_get_report(s).prunes == 5, "5 pruning events (%lld)", (long long)pare_prune_sched_get_report(s).prunes);
        /* a schedule that would not finish */
        tkv[0].num = 10;
        pare_opts_resolve(&to, &pare_train_schema, tkv, 4);
        pare_model *q = pare_model_clone(m);
        st = pare_train_ex(q, &train, NULL, &to, NULL, &h, NULL, NULL, &r);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "steps=10"), "a schedule longer than training: %s", pare_errmsg());
        pare_model_free(q);

        /* ---- checkpoints: a pruned model saves and loads bit-identically ---- */
        char path[256];
        snprintf(path, sizeof path, "%s/pare-test-prune-%d.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
        pare_model *back = NULL;
        st = pare_model_save(p, path);
        if (st == PARE_OK) st = pare_model_load(&back, path);
        ok(st == PARE_OK, "save and load a pruned model (%s)", st == PARE_OK ? "ok" : pare_errmsg());
        int same = back != NULL;
        for (int64_t l = 0; same && l < n; l++) {
            const float *a = mask_of(p, idx[l]), *b = mask_of(back, pare_model_find_node(back, p->nodes[idx[l]].name));
            const pare_param *wa = &p->params[p->nodes[idx[l]].param[0]];
            const pare_param *wb = &back->params[pare_model_find_param(back, wa->name)];
            int64_t len = pare_param_numel(wa);
            if (!a || !b || memcmp(a, b, sizeof(float) * (size_t)len) || memcmp(wa->blob->data, wb->blob->data, sizeof(float) * (size_t)len))
                same = 0;
        }
        ok(same, "masks and masters are bit-identical after the round trip");
        pare_sparsity s1 = pare_prune_sparsity(p, NULL), s2 = back ? pare_prune_sparsity(back, NULL) : (pare_sparsity){0, 0};
        ok(s1.zeros == s2.zeros && s1.total == s2.total, "the same sparsity (%lld of %lld)", (long long)s2.zeros, (long long)s2.total);
        unlink(path);
        pare_model_free(back);
        pare_model_free(p);
        pare_prune_sched_free(s);
    }


    /* ---- movement and soft movement masks against scores accumulated here ---- */
    for (int soft = 0; soft < 2; soft++) {
        pare_kv kv[] = {{"method", PARE_KV_STR, 0, soft ? "soft_movement" : "movement"}, {"schedule", PARE_KV_STR, 0, "oneshot"},
                        {"sparsity", PARE_KV_NUM, 0.6, NULL}, {"start", PARE_KV_NUM, 5, NULL}, {"lambda", PARE_KV_NUM, 3, NULL},
                        {"score_lr", PARE_KV_NUM, 0.1, NULL}, {"threshold", PARE_KV_NUM, -0.3, NULL}};
        pare_options o, to;
        pare_prune_sched *s = NULL;
        pare_status st = pare_opts_resolve(&o, &pare_prune_sched_schema, kv, 7);
        if (st == PARE_OK) st = pare_prune_sched_new(&s, &o);
        pare_kv tkv[] = {{"steps", PARE_KV_NUM, 6, NULL}, {"batch", PARE_KV_NUM, 16, NULL}, {"lr", PARE_KV_NUM, 1e-3, NULL},
                         {"warmup", PARE_KV_NUM, 1, NULL}};
        if (st == PARE_OK) st = pare_opts_resolve(&to, &pare_train_schema, tkv, 4);
        mref r = {pare_prune_sched_hooks(s), idx, n, alloc_scores(m, idx, n), soft, 3, 0.1};
        pare_train_hooks h = {&r, mref_begin, mref_backward, mref_step, mref_end};
        pare_model *p = pare_model_clone(m);
        pare_train_result tr;
        if (st == PARE_OK) st = pare_train_ex(p, &train, NULL, &to, NULL, &h, NULL, NULL, &tr);
        ok(st == PARE_OK, "%s: a one-shot event after 6 steps (%s)", soft ? "soft movement" : "movement", st == PARE_OK ? "ok" : pare_errmsg());
        if (!soft) masks_match_per_layer(p, idx, n, r.S, 0.6, "movement S = -sum_t w_t * g_t");
        else {
            int good = st == PARE_OK;
            int64_t zeros = 0, total = 0;
            for (int64_t l = 0; good && l < n; l++) {
                const float *mk = mask_of(p, idx[l]);
                int64_t len = pare_param_numel(&p->params[p->nodes[idx[l]].param[0]]);
                for (int64_t j = 0; j < len; j++) {
                    if (!mk || (mk[j] != 0.0f) != (r.S[l][j] > -0.3f)) good = 0;
                    zeros += mk && mk[j] == 0.0f;
                }
                total += len;
            }
            ok(good && zeros > 0 && zeros < total, "soft movement: the mask is exactly S > threshold (%lld of %lld pruned)",
               (long long)zeros, (long long)total);
        }
        free_scores(r.S, n);
        pare_model_free(p);
        pare_prune_sched_free(s);
    }

    /* ---- group lasso ---- */
    {
        pare_model *p = pare_model_clone(m);
        pare_model_alloc_grads(p);
        pare_model_zero_grad(p);
        int64_t one = idx[0];
        const pare_param *w = &p->params[p->nodes[one].param[0]];
        int64_t N = w->shape[0], K = w->shape[1];
        double pen = pare_group_lasso(p, &one, 1, 0.5, 4, 1), want = 0;
        int grad_ok = 1;
        for (int64_t a = 0; a < N; a += 4)
            for (int64_t c = 0; c < K; c++) {
                double ss = 0;
                for (int r = 0; r < 4; r++) ss += (double)w->blob->data[(a + r) * K + c] * w->blob->data[(a + r) * K + c];
                want += 0.5 * sqrt(ss);
                for (int r = 0; r < 4; r++) {
                    double g = 0.5 * w->blob->data[(a + r) * K + c] / sqrt(ss);
                    if (fabs(g - w->grad[(a + r) * K + c]) > 1e-6 + 1e-5 * fabs(g)) grad_ok = 0;
                }
            }
        ok(fabs(pen - want) < 1e-9 * want, "group lasso 4x1: penalty %.6f = lambda * sum of group norms %.6f", pen, want);
        ok(grad_ok, "group lasso: gradient lambda * w / ||w_g|| in every group");
        pare_model_free(p);
    }

    /* ---- errors ---- */
    {
        pare_model *p = NULL;
        pare_kv a[] = {{"pattern", PARE_KV_STR, 0, "nm"}, {"n", PARE_KV_NUM, 4, NULL}, {"m", PARE_KV_NUM, 4, NULL}};
        ok(pare_apply(&p, m, "prune_magnitude", a, 3) == PARE_EINVAL && strstr(pare_errmsg(), "n=4"), "n >= m: %s", pare_errmsg());
        pare_kv b[] = {{"pattern", PARE_KV_STR, 0, "nm"}, {"n", PARE_KV_NUM, 2, NULL}, {"m", PARE_KV_NUM, 5, NULL}};
        ok(pare_apply(&p, m, "prune_magnitude", b, 3) == PARE_EINVAL && strstr(pare_errmsg(), "m=5") && strstr(pare_errmsg(), "enc."),
           "m not dividing K names the layer: %s", pare_errmsg());
        pare_kv c[] = {{"pattern", PARE_KV_STR, 0, "block"}, {"block", PARE_KV_STR, 0, "4by1"}};
        ok(pare_apply(&p, m, "prune_magnitude", c, 2) == PARE_EINVAL && strstr(pare_errmsg(), "4by1"), "bad block: %s", pare_errmsg());
        pare_kv d[] = {{"sparsity", PARE_KV_NUM, 1.5, NULL}};
        ok(pare_apply(&p, m, "prune_magnitude", d, 1) == PARE_EINVAL && strstr(pare_errmsg(), "sparsity"), "sparsity 1.5: %s", pare_errmsg());
        pare_kv e[] = {{"layers", PARE_KV_STR, 0, "nothing.*"}};
        ok(pare_apply(&p, m, "prune_magnitude", e, 1) == PARE_EINVAL && strstr(pare_errmsg(), "nothing.*"), "no layer: %s", pare_errmsg());
        pare_model *q = NULL;
        pare_apply(&q, m, "dynamic_int8", NULL, 0);
        pare_kv f[] = {{"exclude", PARE_KV_STR, 0, ""}};
        ok(q && pare_apply(&p, q, "prune_magnitude", f, 1) == PARE_EINVAL && strstr(pare_errmsg(), "int8"),
           "a quantized layer: %s", pare_errmsg());
        pare_model_free(q);
        pare_model *nanm = pare_model_clone(m);
        pare_param *nw = &nanm->params[nanm->nodes[idx[2]].param[0]];
        pare_param_make_private(nw);
        nw->blob->data[5] = NAN;
        ok(pare_apply(&p, nanm, "prune_magnitude", NULL, 0) == PARE_ENUMERIC && strstr(pare_errmsg(), "NaN") &&
           strstr(pare_errmsg(), nanm->nodes[idx[2]].name), "a NaN weight is reported, not pruned silently: %s", pare_errmsg());
        pare_model_free(nanm);
        pare_kv g[] = {{"method", PARE_KV_STR, 0, "soft_movement"}, {"pattern", PARE_KV_STR, 0, "block"}};
        pare_options o;
        pare_prune_sched *s = NULL;
        ok(pare_opts_resolve(&o, &pare_prune_sched_schema, g, 2) == PARE_OK && pare_prune_sched_new(&s, &o) == PARE_EINVAL &&
           strstr(pare_errmsg(), "unstructured"), "soft movement with blocks: %s", pare_errmsg());
    }

    /* ---- pattern lock: zeros become masks ---- */
    {
        pare_model *z = pare_model_clone(m);
        pare_param *w = &z->params[z->nodes[idx[0]].param[0]];
        pare_param_make_private(w);
        for (int64_t j = 0; j < pare_param_numel(w); j += 3) w->blob->data[j] = 0.0f;
        pare_kv kv[] = {{"layers", PARE_KV_STR, 0, z->nodes[idx[0]].name}};
        pare_model *p = apply(z, "pattern_lock", kv, 1, 0);
        int good = p && mask_of(p, idx[0]);
        for (int64_t j = 0; good && j < pare_param_numel(w); j++)
            if ((mask_of(p, idx[0])[j] == 0.0f) != (w->blob->data[j] == 0.0f)) good = 0;
        ok(good, "pattern_lock: the mask is exactly the weight's zeros");
        pare_model_free(p), pare_model_free(z);
    }

    pare_model_free(m);
    pare_dataset_free(&train), pare_dataset_free(&test);
    return tap_done();
}
