/* test_lottery.c — lottery-ticket primitives (compress/prune/lottery.h) on a tiny encoder, checked with plain
 * loops written here: a snapshot holds exactly the trainable weights; snapshot_at(0) is θ0 and snapshot_at(k)
 * is taken after k updates; rewinding restores the saved masters bit for bit under the current masks (the
 * effective weights are snapshot ⊙ mask, the masks and untouched, AdamW state zeroed), or removes the masks;
 * iterative magnitude pruning accumulates masks (each round's zeros contain the last round's, per-layer
 * sparsity 1 − (1 − p)^k to one weight); the random-reinit control keeps the ticket's mask on another model's
 * θ0, the random-mask control has the ticket's per-layer zero counts at other places (uniformly: overlap with
 * the ticket's zeros near the sparsity); errors name the parameter, layer or step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/prune/lottery.h"
#include "compress/prune/prune.h"
#include "core/arena.h"
#include "graph/transform.h"
#include "model/transformer.h"
#include "tap.h"

static pare_dataset train, test;

static pare_model *build(int d, int seed)
{
    pare_kv kv[] = {
        {"vocab", PARE_KV_NUM, train.vocab, NULL}, {"max_T", PARE_KV_NUM, (double)train.T, NULL},
        {"d", PARE_KV_NUM, d, NULL},             {"heads", PARE_KV_NUM, 4, NULL},
        {"layers", PARE_KV_NUM, 2, NULL},        {"classes", PARE_KV_NUM, 2, NULL},
        {"ffn", PARE_KV_NUM, 48, NULL},          {"seed", PARE_KV_NUM, seed, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 8) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    return m;
}

static pare_status train_steps(pare_model *m, int steps, const pare_train_hooks *h)
{
    pare_kv to[] = {{"steps", PARE_KV_NUM, steps, NULL}, {"batch", PARE_KV_NUM, 16, NULL}, {"lr", PARE_KV_NUM, 3e-3, NULL},
                    {"warmup", PARE_KV_NUM, 1, NULL}};
    pare_options o;
    pare_train_result r;
    PARE_TRY(pare_opts_resolve(&o, &pare_train_schema, to, 4));
    return pare_train_ex(m, &train, NULL, &o, NULL, h, NULL, NULL, &r);
}

static pare_model *magnitude(const pare_model *m, double s)
{
    pare_model *out = NULL;
    pare_kv kv[] = {{"sparsity", PARE_KV_NUM, s, NULL}};
    if (pare_apply(&out, m, "prune_magnitude", kv, 1) != PARE_OK) diag("prune: %s", pare_errmsg());
    return out;
}

static const float *mask_of(const pare_model *m, int64_t node)
{
    const pare_transform *t = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    return t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
}

static int64_t linears(const pare_model *m, int64_t *idx)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && strcmp(m->nodes[i].name, "head")) idx[n++] = i;
    return n;
}

/* 1 when every trainable master of m equals the snapshot's bytes. */
static int masters_equal(const pare_model *m, const pare_snapshot *s, char *worst, size_t nw)
{
    worst[0] = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        int64_t n;
        const float *v = pare_snapshot_get(s, p->name, &n);
        if (!v || n != pare_param_numel(p) || memcmp(v, p->blob->data, sizeof(float) * (size_t)n)) {
            snprintf(worst, nw, "%s", p->name);
            return 0;
        }
    }
    return 1;
}

static int64_t zeros_of(const float *mk, int64_t len)
{
    int64_t z = 0;
    for (int64_t j = 0; j < len; j++) z += mk[j] == 0.0f;
    return z;
}

int main(void)
{
    tap_plan_lazy();
    pare_kv tk[] = {{"seed", PARE_KV_NUM, 5, NULL}, {"n_train", PARE_KV_NUM, 256, NULL}, {"n_test", PARE_KV_NUM, 64, NULL},
                    {"max_length", PARE_KV_NUM, 8, NULL}};
    if (pare_task_make_kv(&train, &test, "majority", tk, 4) != PARE_OK) {
        diag("task: %s", pare_errmsg());
        return 1;
    }
    pare_model *m = build(32, 3);
    if (!m) return 1;
    int64_t idx[64], n = linears(m, idx);
    char worst[PARE_NAME_MAX] = "";

    /* ---- snapshots ---- */
    pare_snapshot *init = NULL;
    ok(pare_snapshot_take(&init, m) == PARE_OK, "snapshot of the untrained model");
    int64_t ntrain = 0, numel = 0;
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].trainable) ntrain++, numel += pare_param_numel(&m->params[i]);
    ok(pare_snapshot_params(init) == ntrain && pare_snapshot_numel(init) == numel,
       "it holds the %lld trainable parameters (%lld floats)", (long long)ntrain, (long long)numel);
    ok(masters_equal(m, init, worst, sizeof worst), "and their values bit for bit (%s)", worst);

    pare_snapshot_at a0 = {0, NULL}, a3 = {3, NULL};
    pare_train_hooks h0 = pare_snapshot_hooks(&a0), h3 = pare_snapshot_hooks(&a3);
    pare_model *m2 = pare_model_clone(m);
    ok(train_steps(m, 12, &h0) == PARE_OK && a0.snap, "snapshot_at(0) during a training run (%s)", pare_errmsg());
    ok(a0.snap && masters_equal(m2, a0.snap, worst, sizeof worst) && pare_snapshot_numel(a0.snap) == numel,
       "snapshot_at(0) is θ0, the weights before the first update");
    ok(train_steps(m2, 12, &h3) == PARE_OK && a3.snap, "snapshot_at(3) during the same run (%s)", pare_errmsg());
    {   /* θ3 is neither θ0 nor θ12, and m2 ends where m does (the hook does not disturb training) */
        int64_t k;
        const float *v3 = pare_snapshot_get(a3.snap, "enc.0.ffn.up.weight", &k);
        const float *v0 = pare_snapshot_get(init, "enc.0.ffn.up.weight", NULL);
        const pare_param *w = &m2->params[pare_model_find_param(m2, "enc.0.ffn.up.weight")];
        ok(v3 && memcmp(v3, v0, sizeof(float) * (size_t)k) && memcmp(v3, w->blob->data, sizeof(float) * (size_t)k),
           "snapshot_at(3) differs from θ0 and from the trained weights");
        ok(!masters_equal(m2, a0.snap, worst, sizeof worst), "training moved the weights");
    }
    pare_snapshot *trained = NULL;
    pare_snapshot_take(&trained, m);
    ok(masters_equal(m2, trained, worst, sizeof worst), "a run with snapshot_at(3) trains exactly as one with snapshot_at(0) (%s)", worst);

    /* ---- rewinding under the masks ---- */
    pare_model *p = magnitude(m, 0.6);
    float *before[64];
    for (int64_t l = 0; l < n; l++) {
        int64_t len = pare_param_numel(&p->params[p->nodes[idx[l]].param[0]]);
        before[l] = malloc(sizeof(float) * (size_t)len);
        memcpy(before[l], mask_of(p, idx[l]), sizeof(float) * (size_t)len);
    }
    ok(train_steps(p, 3, NULL) == PARE_OK, "the pruned model trains (gives it AdamW state)");
    ok(pare_rewind(p, init, 1) == PARE_OK, "rewind to θ0 keeping the masks (%s)", pare_errmsg());
    ok(masters_equal(p, init, worst, sizeof worst), "every trainable master is θ0 bit for bit (%s)", worst);
    {
        int eff_ok = 1, masks_ok = 1, adam_ok = 1;
        for (int64_t l = 0; l < n; l++) {
            const pare_param *w = &p->params[p->nodes[idx[l]].param[0]];
            int64_t len = pare_param_numel(w);
            const float *v = pare_snapshot_get(init, w->name, NULL);
            const float *mk = mask_of(p, idx[l]);
            float *eff = malloc(sizeof(float) * (size_t)len);
            pare_prune_effective(p, idx[l], eff);
            if (!mk || memcmp(mk, before[l], sizeof(float) * (size_t)len)) masks_ok = 0;
            for (int64_t j = 0; j < len; j++) {
                float want = before[l][j] != 0.0f ? v[j] : 0.0f;
                if (eff[j] != want) eff_ok = 0;
            }
            free(eff);
        }
        for (int64_t i = 0; i < p->nparams; i++) {
            const pare_param *q = &p->params[i];
            for (int64_t j = 0; q->adam_m && j < pare_param_numel(q); j++)
                if (q->adam_m[j] != 0.0f || q->adam_v[j] != 0.0f) adam_ok = 0;
        }
        ok(masks_ok, "the masks are unchanged by rewinding");
        ok(eff_ok, "the effective weights are θ0 ⊙ mask exactly, on every pruned layer");
        ok(adam_ok, "AdamW moments are zero after rewinding");
    }
    {
        pare_model *q = pare_model_clone(p);
        ok(pare_rewind(q, a3.snap, 0) == PARE_OK && masters_equal(q, a3.snap, worst, sizeof worst),
           "rewind to θ3 with keep_masks=0");
        int none = 1;
        for (int64_t l = 0; l < n; l++) none &= mask_of(q, idx[l]) == NULL;
        ok(none && pare_prune_sparsity(q, "enc.*").zeros == 0, "keep_masks=0 removes every mask (the dense θ3)");
        pare_model_free(q);
    }

    /* ---- masks accumulate over rounds: sparsity 1 − (1 − p)^k ---- */
    {
        const double rate = 0.3;
        pare_model *w = pare_model_clone(m);
        int nested = 1, exact = 1;
        double worst_dev = 0;
        float *prev[64] = {0};
        for (int r = 1; r <= 4; r++) {
            double target = 1.0 - pow(1.0 - rate, r);
            pare_model *q = magnitude(w, target);
            if (!q) {
                exact = 0;
                break;
            }
            for (int64_t l = 0; l < n; l++) {
                const pare_param *wt = &q->params[q->nodes[idx[l]].param[0]];
                int64_t len = pare_param_numel(wt);
                const float *mk = mask_of(q, idx[l]);
                double dev = fabs((double)zeros_of(mk, len) - target * (double)len);
                if (dev > worst_dev) worst_dev = dev;
                if (dev > 1.0) exact = 0;
                for (int64_t j = 0; prev[l] && j < len; j++)
                    if (prev[l][j] == 0.0f && mk[j] != 0.0f) nested = 0;
                free(prev[l]);
                prev[l] = malloc(sizeof(float) * (size_t)len);
                memcpy(prev[l], mk, sizeof(float) * (size_t)len);
            }
            pare_rewind(q, init, 1);
            train_steps(q, 3, NULL);
            pare_model_free(w);
            w = q;
        }
        ok(exact, "4 rounds at p = 0.3: each layer's zeros are (1 − 0.7^k)·NK to one weight (worst off by %.2f)", worst_dev);
        ok(nested, "each round's zeros contain the previous round's (once pruned, always pruned)");
        is_close(pare_prune_sparsity(w, "enc.*").zeros / (double)pare_prune_sparsity(w, "enc.*").total, 1 - pow(0.7, 4), 1e-3,
                 0, "sparsity after 4 rounds = 1 − 0.7^4");
        for (int64_t l = 0; l < n; l++) free(prev[l]);
        pare_model_free(w);
    }

    /* ---- the controls ---- */
    {
        pare_model *fresh = build(32, 99);
        pare_snapshot *fs = NULL;
        pare_snapshot_take(&fs, fresh);
        pare_model *q = pare_model_clone(p);
        ok(pare_rewind(q, fs, 1) == PARE_OK, "random reinit: rewind the ticket to another model's θ0");
        int same_mask = 1;
        for (int64_t l = 0; l < n; l++) {
            int64_t len = pare_param_numel(&q->params[q->nodes[idx[l]].param[0]]);
            if (!mask_of(q, idx[l]) || memcmp(mask_of(q, idx[l]), before[l], sizeof(float) * (size_t)len)) same_mask = 0;
        }
        ok(same_mask && masters_equal(q, fs, worst, sizeof worst), "its masks are the ticket's, its weights the fresh model's");
        ok(!masters_equal(q, init, worst, sizeof worst), "and those differ from the ticket's θ0");
        pare_model_free(q), pare_model_free(fresh), pare_snapshot_free(fs);

        pare_model *r1 = pare_model_clone(m), *r1b = pare_model_clone(m), *r2 = pare_model_clone(m);
        ok(pare_random_masks(r1, p, 7) == PARE_OK && pare_random_masks(r1b, p, 7) == PARE_OK && pare_random_masks(r2, p, 8) == PARE_OK,
           "random masks like the ticket");
        int counts = 1, differ = 1, same_seed = 1, other_seed = 0;
        double worst_overlap = 0;
        for (int64_t l = 0; l < n; l++) {
            int64_t len = pare_param_numel(&r1->params[r1->nodes[idx[l]].param[0]]);
            const float *a = mask_of(r1, idx[l]), *b = mask_of(r1b, idx[l]), *c = mask_of(r2, idx[l]);
            if (!a || zeros_of(a, len) != zeros_of(before[l], len)) counts = 0;
            if (a && !memcmp(a, before[l], sizeof(float) * (size_t)len)) differ = 0;
            if (!b || memcmp(a, b, sizeof(float) * (size_t)len)) same_seed = 0;
            if (c && memcmp(a, c, sizeof(float) * (size_t)len)) other_seed = 1;
            /* uniform places: of the ticket's zeros, about a share s (= the sparsity) are zero in the random mask */
            int64_t both = 0, tz = zeros_of(before[l], len);
            for (int64_t j = 0; a && j < len; j++) both += before[l][j] == 0.0f && a[j] == 0.0f;
            double dev = fabs((double)both / (double)tz - (double)tz / (double)len);
            if (dev > worst_overlap) worst_overlap = dev;
        }
        ok(counts, "each layer has exactly the ticket's number of zeros");
        ok(differ, "at other places than the ticket's");
        ok(same_seed && other_seed, "the same seed gives the same masks, another seed others");
        ok(worst_overlap < 0.08, "places are uniform: the overlap with the ticket's zeros is the sparsity ± %.3f", worst_overlap);
        ok(!mask_of(r1, pare_model_find_node(r1, "head")), "layers the ticket leaves dense stay unmasked");
        pare_model_free(r1), pare_model_free(r1b), pare_model_free(r2);
    }

    /* ---- errors ---- */
    {
        pare_model *other = build(16, 3);
        pare_snapshot *os = NULL;
        pare_snapshot_take(&os, other);
        pare_status st = pare_rewind(other, init, 1);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "rewind: ") && strstr(pare_errmsg(), ".weight"),
           "rewinding a model of another width names the parameter: %s", pare_errmsg());
        ok(masters_equal(other, os, worst, sizeof worst), "and leaves the model unchanged (%s)", worst);
        pare_snapshot_free(os);
        st = pare_random_masks(other, p, 1);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "enc."), "random masks on another shape name the layer: %s", pare_errmsg());
        pare_snapshot_at late = {50, NULL};
        pare_train_hooks hl = pare_snapshot_hooks(&late);
        pare_model *q = pare_model_clone(m);
        st = train_steps(q, 10, &hl);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "steps=10"), "a snapshot step past the run: %s", pare_errmsg());
        pare_model_free(q), pare_model_free(other);
    }

    for (int64_t l = 0; l < n; l++) free(before[l]);
    pare_snapshot_free(init), pare_snapshot_free(trained), pare_snapshot_free(a0.snap), pare_snapshot_free(a3.snap);
    pare_model_free(p), pare_model_free(m), pare_model_free(m2);
    pare_dataset_free(&train), pare_dataset_free(&test);
    return tap_done();
}
