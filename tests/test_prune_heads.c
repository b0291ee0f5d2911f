/* test_prune_heads.c — head importance (compress/prune/heads.h, Michel et al. 2019) against finite
 * differences: the gate ξ_h of head h is emulated by scaling the output projection's columns of that head
 * by (1 ± ε) in a copy of the model, each example's loss is taken at inference (pare_evaluate on a
 * one-example view), and |(L+ − L−) / 2ε| averaged over examples must equal the score. The model has
 * dropout 0.2, so a score taken with dropout on would not match. Also: per-layer L2 normalisation, the
 * batched form (|mean gradient|), and the errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "compress/prune/heads.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "train/train.h"

enum { N = 5, T = 8, L = 2, H = 4, C = 32 };

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, C, NULL},         {"heads", PARE_KV_NUM, H, NULL},  {"layers", PARE_KV_NUM, L, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"ffn", PARE_KV_NUM, 48, NULL},   {"seed", PARE_KV_NUM, 5, NULL},
        {"dropout", PARE_KV_NUM, 0.2, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 10) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 11, 0.25); /* weights larger than the 0.02 init, so that heads differ clearly */
    return m;
}

static int32_t tok[N * T], len[N], lab[N];

/* Example i of d alone. */
static pare_dataset view(const pare_dataset *d, int64_t i)
{
    pare_dataset v = *d;
    v.n = 1, v.tokens = d->tokens + i * T, v.lengths = d->lengths + i, v.labels = d->labels + i;
    return v;
}

/* The loss of example i with head h of layer l scaled by g (the output projection's columns). */
static double gated_loss(const pare_model *m, const pare_dataset *d, int64_t i, int l, int h, double g)
{
    pare_model *c = pare_model_clone(m);
    char name[64];
    snprintf(name, sizeof name, "enc.%d.attn.out.weight", l);
    pare_param *w = &c->params[pare_model_find_param(c, name)];
    pare_param_make_private(w);
    int64_t K = w->shape[1], D = K / H;
    for (int64_t r = 0; r < w->shape[0]; r++)
        for (int64_t k = h * D; k < (h + 1) * D; k++) w->blob->data[r * K + k] *= (float)g;
    pare_dataset v = view(d, i);
    pare_eval_result e;
    pare_status st = pare_evaluate(c, &v, 1, &e);
    pare_model_free(c);
    if (st != PARE_OK) diag("evaluate: %s", pare_errmsg());
    return e.loss;
}

int main(void)
{
    tap_plan_lazy();
    pare_model *m = build();
    if (!ok(m != NULL, "a 2-layer, 4-head encoder with dropout 0.2")) return tap_done();
    pare_rng r;
    pare_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        len[i] = 3 + i;
        lab[i] = (int32_t)pare_rng_below(&r, 3);
        for (int t = 0; t < T; t++) tok[i * T + t] = t < len[i] ? 1 + (int32_t)pare_rng_below(&r, 12) : 0;
    }
    pare_dataset d = {.name = "heads/test", .kind = PARE_TASK_CLASSIFY, .n = N, .T = T, .vocab = 13, .nclass = 3,
                      .tokens = tok, .lengths = len, .labels = lab};

    pare_head_scores s;
    pare_status st = pare_head_importance(m, &d, 0, N, 1, 0, &s);
    if (!ok(st == PARE_OK && s.n == L && s.hmax == H, "scores for %d layers of %d heads", L, H))
        return diag("%s", pare_errmsg()), tap_done();
    const double eps = 1e-2;
    double want[L * H], signed_mean[L * H], worst = 0, top = 0;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            double a = 0, sg = 0;
            for (int i = 0; i < N; i++) {
                double g = (gated_loss(m, &d, i, l, h, 1 + eps) - gated_loss(m, &d, i, l, h, 1 - eps)) / (2 * eps);
                a += fabs(g), sg += g;
            }
            want[l * H + h] = a / N, signed_mean[l * H + h] = sg / N;
            top = fmax(top, want[l * H + h]);
        }
    for (int k = 0; k < L * H; k++) worst = fmax(worst, fabs(s.score[k] - want[k]));
    ok(worst <= 2e-3 * top && top > 0, "I_h = mean |dL/dxi_h| matches central differences on gated copies: max |diff| %.2g "
       "of max score %.3g", worst, top);
    int distinct = 0;
    for (int k = 1; k < L * H; k++) distinct += fabs(s.score[k] - s.score[0]) > 1e-3 * top;
    ok(distinct > 0, "the heads' scores differ (the check is not of a constant)");
    ok(s.node[0] == pare_model_find_node(m, "enc.0.attn") && s.node[1] == pare_model_find_node(m, "enc.1.attn") &&
           s.heads[0] == H && s.heads[1] == H,
       "layers in node order, named by their attention nodes");
    pare_head_scores_free(&s);

    /* normalised per layer by the L2 norm (the paper's choice) */
    st = pare_head_importance(m, &d, 0, N, 1, 1, &s);
    double n0 = 0, n1 = 0, ratio = 0;
    for (int h = 0; st == PARE_OK && h < H; h++) n0 += s.score[h] * s.score[h], n1 += s.score[H + h] * s.score[H + h];
    if (st == PARE_OK) ratio = s.score[1] / s.score[0];
    ok(st == PARE_OK && fabs(n0 - 1) < 1e-9 && fabs(n1 - 1) < 1e-9, "normalize: each layer's scores have unit L2 norm");
    ok(fabs(ratio - want[1] / want[0]) < 2e-3 * fabs(ratio), "normalize keeps the ratios within a layer");
    pare_head_scores_free(&s);

    /* one batch of all N: |mean gradient| */
    st = pare_head_importance(m, &d, 0, N, N, 0, &s);
    worst = 0;
    for (int k = 0; st == PARE_OK && k < L * H; k++) worst = fmax(worst, fabs(s.score[k] - fabs(signed_mean[k])));
    ok(st == PARE_OK && worst <= 2e-3 * top, "batch=N scores |mean over examples of dL/dxi_h| (max |diff| %.2g)", worst);
    pare_head_scores_free(&s);

    /* errors */
    st = pare_head_importance(m, &d, 3, N, 1, 1, &s);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "outside heads/test"), "a range outside the data is named: %s",
       pare_errmsg());
    pare_model *q = NULL;
    pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
    if (pare_apply(&q, m, "dynamic_int8", kv, 1) == PARE_OK) {
        st = pare_head_importance(q, &d, 0, N, 1, 1, &s);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "int8"), "a quantized model is refused, naming the format: %s",
           pare_errmsg());
        pare_model_free(q);
    } else {
        ok(0, "dynamic_int8: %s", pare_errmsg());
    }
    pare_model_free(m);
    return tap_done();
}
