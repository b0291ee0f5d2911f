/* test_regression.c — the regression head (head=regression, issue 12: STS-B): its graph (one output, an
 * MSE loss against the "target" input), the loss against a plain C reference, its gradients against
 * finite differences (the whole model, every coordinate of the head) and against the closed form
 * 2/B·Σ (p − t)·h, checkpoints and graph JSON bit for bit, evaluation (Pearson and MSE recomputed here
 * from the predictions), training on a learnable synthetic task, and the errors of mixing a regression
 * model with a classification task and back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/serialize.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "train/train.h"
#include "tap.h"
#include "test_models.h"

enum { V = 13, MAXT = 8 };

static pare_model *build(const char *head, const char *pooler, const char *pool, const char *kind, int64_t layers)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, kind},       {"vocab", PARE_KV_NUM, V, NULL},  {"max_T", PARE_KV_NUM, MAXT, NULL},
        {"d", PARE_KV_NUM, 8, NULL},          {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, (double)layers, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},    {"pool", PARE_KV_STR, 0, pool},   {"pooler", PARE_KV_STR, 0, pooler},
        {"head", PARE_KV_STR, 0, head},       {"seed", PARE_KV_NUM, 7, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, (int)(sizeof kv / sizeof kv[0])) != PARE_OK ||
        pare_transformer_build(&m, &o) != PARE_OK)
        return NULL;
    return m;
}

/* larger weights than the 0.02 init so gradients are not tiny */
static void perturb(pare_model *m, uint64_t seed)
{
    perturb_trainable(m, seed, 0.3);
}

enum { B = 3, T = 6 };
static int32_t tok[B * T], len[B] = {6, 4, 1};
static float tgt[B] = {0.5f, 3.25f, -1.0f};

static pare_status bind_all(pare_exec *x)
{
    PARE_TRY(pare_exec_bind(x, tok, len, NULL));
    return pare_exec_bind_target(x, pare_model_regression_target(x->m), tgt);
}

static double loss_of(pare_exec *x)
{
    bind_all(x);
    pare_exec_forward(x);
    return x->loss;
}

/* Central differences of the loss at coordinate j of p, against p->grad[j]: the relative error, with a floor
 * of 1e-3 of the loss's scale (loss0) under which a difference is float rounding (a key bias's gradient is
 * exactly 0: softmax does not see it). */
static double fd_err(pare_exec *x, pare_param *p, int64_t j, double loss0)
{
    float keep = p->blob->data[j];
    double h = 1e-2;
    p->blob->data[j] = keep + (float)h;
    double lp = loss_of(x);
    p->blob->data[j] = keep - (float)h;
    double lm = loss_of(x);
    p->blob->data[j] = keep;
    double num = (lp - lm) / (2 * h), ana = p->grad[j];
    return fabs(num - ana) / (1e-3 * (loss0 > 1 ? loss0 : 1) + fabs(num) + fabs(ana));
}

static void gradcheck(pare_model *m, const char *head_in, const char *what)
{
    pare_exec *x = NULL;
    if (!ok(pare_model_alloc_grads(m) == PARE_OK && pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK, "%s: executor",
            what))
        return;
    ok(bind_all(x) == PARE_OK, "%s: tokens and targets bound", what);
    pare_model_zero_grad(m);
    pare_exec_forward(x);
    /* the loss: mean squared error of the B scores, recomputed here */
    const float *pred = pare_exec_logits(x);
    double ref = 0;
    for (int b = 0; b < B; b++) ref += ((double)pred[b] - tgt[b]) * ((double)pred[b] - tgt[b]) / B;
    is_close(x->loss, ref, 1e-6, 1e-5, "regression loss = mean (score - target)^2 (plain C)");
    pare_exec_backward(x);

    /* the head's gradient in closed form: d/dW = 2/B Σ_b (p_b − t_b) h_b, d/db = 2/B Σ_b (p_b − t_b) */
    const float *h;
    int64_t rows = 0, cols = 0;
    int hw = pare_model_find_param(m, "head.weight"), hb = pare_model_find_param(m, "head.bias");
    if (ok(pare_exec_value(x, head_in, &h, &rows, &cols) == PARE_OK && rows == B && hw >= 0 && hb >= 0,
           "%s: the head's input %s captured", what, head_in)) {
        float dw[64] = {0}, db = 0;
        for (int b = 0; b < B; b++) {
            double e = 2.0 * ((double)pred[b] - tgt[b]) / B;
            db += (float)e;
            for (int64_t c = 0; c < cols && c < 64; c++) dw[c] += (float)(e * h[b * cols + c]);
        }
        is_close_arr(m->params[hw].grad, dw, (long)cols, 1e-6, 1e-4, "head.weight gradient = 2/B sum (p - t) h");
        is_close(m->params[hb].grad[0], db, 1e-6, 1e-4, "head.bias gradient = 2/B sum (p - t)");
    }

    /* finite differences: every coordinate of the head, six of every other parameter */
    double worst_head = 0, worst = 0;
    const char *worst_name = "";
    int checked = 0;
    pare_rng r;
    pare_rng_seed(&r, 11);
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        int head = i == hw || i == hb;
        int64_t n = head ? pare_param_numel(p) : 6;
        for (int64_t k = 0; k < n; k++) {
            int64_t j = head ? k : (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            double e = fd_err(x, p, j, ref);
            if (head && e > worst_head) worst_head = e;
            if (e > worst) worst = e, worst_name = p->name;
            checked++;
        }
    }
    ok(worst_head < 1e-2, "%s: every coordinate of the regression head's gradient vs finite differences (worst rel err %.2g)",
       what, worst_head);
    ok(worst < 2e-2, "%s: whole-model gradient vs finite differences on %d coordinates (worst rel err %.2g at %s)", what,
       checked, worst, worst_name);
    pare_exec_free(x);
}

/* n examples of T tokens in [1, V) (lengths 2..T); target = the number of token 3 in the sequence, scaled
 * to about 0..5 (a regression dataset: nclass 1, labels 0, targets). */
static pare_status synth(pare_dataset *d, const char *name, int64_t n, uint64_t seed, int regression)
{
    PARE_TRY(pare_dataset_alloc(d, name, PARE_TASK_CLASSIFY, n, T, V, regression ? 1 : 3));
    if (regression) PARE_TRY(pare_dataset_alloc_extra(d, 0, 1));
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        int32_t l = 2 + (int32_t)pare_rng_below(&r, T - 1), threes = 0;
        d->lengths[i] = l;
        for (int32_t t = 0; t < l; t++) {
            int32_t v = pare_rng_below(&r, 3) == 0 ? 3 : 1 + (int32_t)pare_rng_below(&r, V - 1);
            d->tokens[i * T + t] = v;
            threes += v == 3;
        }
        if (regression) d->targets[i] = (float)threes * 5.0f / T;
        else d->labels[i] = threes % 3;
    }
    return pare_dataset_check(d);
}

static double pearson_ref(const float *x, const float *y, int64_t n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) mx += x[i] / (double)n, my += y[i] / (double)n;
    for (int64_t i = 0; i < n; i++)
        sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return sxy / sqrt(sxx * syy);
}

static int contains(const char *s, const char *a, const char *b)
{
    return strstr(s, a) != NULL && (!b || strstr(s, b) != NULL);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng r;
    pare_rng_seed(&r, 5);
    for (int i = 0; i < B * T; i++) tok[i] = 1 + (int32_t)pare_rng_below(&r, V - 1);

    pare_model *reg = build("regression", "none", "cls", "encoder", 2);
    pare_model *regt = build("regression", "tanh", "mean", "encoder", 1);
    pare_model *cls = build("linear", "none", "cls", "encoder", 1);
    if (!ok(reg && regt && cls, "models build (%s)", reg && regt && cls ? "ok" : pare_errmsg())) return tap_done();
    int t = pare_model_regression_target(reg);
    ok(reg->nclass == 1 && reg->values[reg->logits].cols == 1 && t >= 0 && !strcmp(reg->values[t].name, "target") &&
           reg->nodes[reg->values[reg->loss].producer].op == PARE_OP_MSE,
       "head=regression: one output, an mse loss against the target input 'target'");
    ok(pare_model_regression_target(cls) < 0, "a classifier has no regression target");
    int64_t numel = 0, have = 0;
    pare_options o;
    pare_kv rkv[] = {{"vocab", PARE_KV_NUM, V, NULL}, {"max_T", PARE_KV_NUM, MAXT, NULL}, {"d", PARE_KV_NUM, 8, NULL},
                     {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL}, {"head", PARE_KV_STR, 0, "regression"}};
    pare_opts_resolve(&o, &pare_model_schema, rkv, 6);
    pare_transformer_numel(&numel, &o);
    for (int64_t i = 0; i < reg->nparams; i++) have += pare_param_numel(&reg->params[i]);
    ok(numel == have, "pare_transformer_numel counts the regression head (%lld floats)", (long long)have);

    perturb(reg, 3), perturb(regt, 4);
    gradcheck(reg, "pool", "regression, CLS pooling, no pooler, padded");
    gradcheck(regt, "pooler.act", "regression, mean pooling, tanh pooler");

    /* errors of the builder */
    pare_model *bad = build("regression", "none", "cls", "decoder", 1);
    ok(!bad && contains(pare_errmsg(), "head=regression", "decoder"), "head=regression on a decoder: %s", pare_errmsg());
    bad = build("regression", "none", "cls", "tagger", 1);
    ok(!bad && contains(pare_errmsg(), "head=regression", "tagger"), "head=regression on a tagger is refused");

    /* checkpoints: graph JSON and safetensors, bit for bit */
    char *j1 = NULL, *j2 = NULL;
    pare_model *g = NULL;
    ok(pare_graph_to_json(regt, &j1) == PARE_OK && pare_graph_from_json(&g, j1, UINT64_MAX) == PARE_OK &&
           pare_graph_to_json(g, &j2) == PARE_OK && !strcmp(j1, j2) && pare_model_regression_target(g) >= 0,
       "graph JSON of a regression model reads back to the same text, still a regression model");
    free(j1), free(j2), pare_model_free(g);
    char path[256];
    snprintf(path, sizeof path, "%s/pare-reg-%d.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    pare_model *back = NULL;
    int same = pare_model_save(regt, path) == PARE_OK && pare_model_load(&back, path) == PARE_OK &&
               back->nparams == regt->nparams && pare_model_regression_target(back) >= 0;
    for (int64_t i = 0; same && i < regt->nparams; i++)
        same = !memcmp(back->params[i].blob->data, regt->params[i].blob->data,
                       sizeof(float) * (size_t)pare_param_numel(&regt->params[i]));
    ok(same, "checkpoint save/load of a regression model: every parameter bit-identical");
    if (same) {
        pare_exec *a = NULL, *b2 = NULL;
        pare_exec_new(&a, regt, B, T, PARE_EXEC_INFER), pare_exec_new(&b2, back, B, T, PARE_EXEC_INFER);
        bind_all(a), bind_all(b2);
        pare_exec_forward(a), pare_exec_forward(b2);
        ok(!memcmp(pare_exec_logits(a), pare_exec_logits(b2), sizeof(float) * B) && a->loss == b2->loss,
           "the loaded model's scores and loss are bit-identical");
        pare_exec_free(a), pare_exec_free(b2);
    }
    unlink(path);
    pare_model_free(back);

    /* a forward without gold (benchmarks, calibration): the target reads 0, no unbound-target error */
    {
        pare_exec *x = NULL;
        pare_exec_new(&x, regt, B, T, PARE_EXEC_INFER);
        ok(pare_exec_bind(x, tok, len, NULL) == PARE_OK && pare_exec_forward(x) == PARE_OK,
           "a forward without targets runs (labels NULL: scores of 0)");
        pare_exec_free(x);
    }

    /* evaluation and training on a learnable task: the score is the count of token 3 */
    pare_dataset tr = {0}, te = {0}, ctr = {0};
    if (!ok(synth(&tr, "synth/train", 512, 21, 1) == PARE_OK && synth(&te, "synth/test", 128, 22, 1) == PARE_OK &&
                synth(&ctr, "synth3/train", 64, 23, 0) == PARE_OK,
            "datasets"))
        return tap_done();
    pare_model *m = build("regression", "none", "mean", "encoder", 1);
    pare_eval_result e0, e1;
    ok(pare_evaluate(m, &te, 32, &e0) == PARE_OK && e0.regression && isnan(e0.accuracy) && e0.n == te.n,
       "evaluate a regression model: regression metrics, no accuracy");
    pare_kv tkv[] = {{"steps", PARE_KV_NUM, 300, NULL}, {"batch", PARE_KV_NUM, 16, NULL}, {"lr", PARE_KV_NUM, 3e-3, NULL},
                     {"warmup", PARE_KV_NUM, 20, NULL}, {"eval_every", PARE_KV_NUM, 100, NULL}};
    pare_options to;
    pare_train_result res;
    ok(pare_opts_resolve(&to, &pare_train_schema, tkv, 5) == PARE_OK &&
           pare_train(m, &tr, &te, &to, NULL, NULL, &res) == PARE_OK,
       "train a regression model");
    ok(pare_evaluate(m, &te, 32, &e1) == PARE_OK, "evaluate after training");
    diag("before: pearson %.3f mse %.3f; after: pearson %.3f spearman %.3f mse %.3f; best eval pearson %.3f",
         e0.pearson, e0.mse, e1.pearson, e1.spearman, e1.mse, res.best_eval_pearson);
    ok(e1.pearson > 0.8 && e1.spearman > 0.7 && e1.mse < e0.mse / 4,
       "training fits the counts: pearson %.3f, spearman %.3f, mse %.3f (was %.3f)", e1.pearson, e1.spearman, e1.mse, e0.mse);
    ok(res.best_eval_accuracy == -1 && res.best_eval_pearson >= e1.pearson - 1e-9,
       "the training result's best eval pearson (%.3f), no accuracy", res.best_eval_pearson);
    float *pred = NULL;
    int64_t rows = 0;
    if (ok(pare_predict_logits(m, &te, 32, &pred, &rows) == PARE_OK && rows == te.n, "predicted scores")) {
        double mse = 0;
        for (int64_t i = 0; i < rows; i++) mse += ((double)pred[i] - te.targets[i]) * ((double)pred[i] - te.targets[i]);
        is_close(e1.pearson, pearson_ref(pred, te.targets, rows), 1e-9, 1e-6, "evaluate's pearson = a plain C Pearson");
        is_close(e1.mse, mse / (double)rows, 1e-9, 1e-6, "evaluate's mse = a plain C mean squared error");
        is_close(e1.loss, e1.mse, 0, 0, "evaluate's loss is the mse");
        pare_free(pred);
    }

    /* mixing kinds: each error names both sides */
    pare_eval_result ee;
    ok(pare_evaluate(m, &ctr, 32, &ee) != PARE_OK && contains(pare_errmsg(), "classification task (3 classes)", "regression head"),
       "a classification task given to a regression model: %s", pare_errmsg());
    ok(pare_evaluate(cls, &te, 32, &ee) != PARE_OK && contains(pare_errmsg(), "regression task", "classification head of 3"),
       "a regression task given to a classifier: %s", pare_errmsg());
    ok(pare_train(cls, &tr, NULL, &to, NULL, NULL, &res) != PARE_OK && contains(pare_errmsg(), "regression task", "head=regression"),
       "training a classifier on a regression task is refused the same way");
    pare_kv akv[] = {{"steps", PARE_KV_NUM, 1, NULL}, {"target_accuracy", PARE_KV_NUM, 0.9, NULL}};
    pare_opts_resolve(&to, &pare_train_schema, akv, 2);
    ok(pare_train(m, &tr, &te, &to, NULL, NULL, &res) != PARE_OK && contains(pare_errmsg(), "target_accuracy", "regression"),
       "target_accuracy with a regression model: %s", pare_errmsg());

    pare_dataset_free(&tr), pare_dataset_free(&te), pare_dataset_free(&ctr);
    pare_model_free(m), pare_model_free(reg), pare_model_free(regt), pare_model_free(cls);
    return tap_done();
}
