/* test_head_gates.c — Voita et al. 2019's head gates and head confidence (compress/prune/heads.h,
 * graph/tf_headgate.c): the hard-concrete gate and the L0 term against formulas written out here; the
 * transform's forward and backward against finite differences with the noise u fixed; the penalty's
 * gradient against finite differences; a gated model at init equal to the plain one; pruning (heads with
 * z = 0 dropped, the others' z folded) equal to the gated model at inference, with the kept counts per
 * encoder / decoder / cross-attention; a training forward sampling u; head confidence against a
 * one-example-at-a-time reference from the executor's attention probabilities; the errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/prune/heads.h"
#include "core/arena.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "train/train.h"

enum { H = 4, C = 16 };

static pare_dataset tr, te;

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encdec"},          {"vocab", PARE_KV_NUM, tr.vocab, NULL},
        {"src_vocab", PARE_KV_NUM, tr.src_vocab, NULL}, {"max_T", PARE_KV_NUM, (double)tr.T, NULL},
        {"src_max_T", PARE_KV_NUM, (double)tr.S, NULL}, {"d", PARE_KV_NUM, C, NULL},
        {"heads", PARE_KV_NUM, H, NULL},             {"layers", PARE_KV_NUM, 1, NULL},
        {"ffn", PARE_KV_NUM, 24, NULL},              {"seed", PARE_KV_NUM, 3, NULL},
        {"dropout", PARE_KV_NUM, 0.1, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, (int)(sizeof kv / sizeof kv[0])) != PARE_OK ||
        pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 9, 0.3); /* weights larger than the init, so that heads differ clearly */
    return m;
}

/* the formulas, written out (Louizos et al. 2018, eq. 10-12 with β = 2/3, γ = −0.1, ζ = 1.1) */
static double ref_gate(double la, double u, int train)
{
    double v = train ? (log(u) - log(1 - u) + la) / (2.0 / 3.0) : la;
    double s = 1 / (1 + exp(-v)), sb = s * 1.2 - 0.1;
    return fmin(1, fmax(0, sb));
}
static double ref_l0(double la) { return 1 / (1 + exp(-(la - (2.0 / 3.0) * log(0.1 / 1.1)))); }

static void formula_tests(void)
{
    double worst = 0, worst_d = 0, worst_p = 0;
    const double las[] = {-4, -1.3, -0.2, 0, 0.4, 1.7, 3, 6}, us[] = {0.02, 0.3, 0.5, 0.77, 0.98};
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 5; j++)
            for (int train = 0; train < 2; train++) {
                double dz, z = pare_hc_gate(las[i], us[j], train, &dz), e = 1e-5;
                worst = fmax(worst, fabs(z - ref_gate(las[i], us[j], train)));
                double fd = (ref_gate(las[i] + e, us[j], train) - ref_gate(las[i] - e, us[j], train)) / (2 * e);
                if (z > 1e-4 && z < 1 - 1e-4) worst_d = fmax(worst_d, fabs(dz - fd));
                else if (z == 0 || z == 1) worst_d = fmax(worst_d, fabs(dz)); /* clamped: no gradient */
            }
    for (int i = 0; i < 8; i++) {
        double dp, p = pare_hc_nonzero(las[i], &dp), e = 1e-5;
        worst_p = fmax(worst_p, fabs(p - ref_l0(las[i])) + fabs(dp - (ref_l0(las[i] + e) - ref_l0(las[i] - e)) / (2 * e)));
    }
    ok(worst < 1e-12, "hard-concrete gate (training sample and deterministic) matches the formula (worst %.2g)", worst);
    ok(worst_d < 1e-6, "dz/dlog alpha matches finite differences, 0 where clamped (worst %.2g)", worst_d);
    ok(worst_p < 1e-6, "P(z != 0) and its derivative match the formula (worst %.2g)", worst_p);
    ok(ref_gate(3, 0.5, 0) == 1.0 && pare_hc_gate(3, 0.5, 0, NULL) == 1.0 && pare_hc_gate(-3, 0.5, 0, NULL) == 0.0,
       "deterministic gate: 1 at log alpha 3, 0 at -3");
}

/* f = Σ R ⊙ W_eff through the transform kind alone, in double */
static double tf_loss(pare_model *m, int64_t node, const float *R, float *scratch)
{
    const pare_node *n = &m->nodes[node];
    const pare_transform *t = pare_node_transform(n, PARE_TF_WEIGHT);
    const pare_param *w = &m->params[n->param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    float *y = malloc(sizeof(float) * (size_t)(N * K));
    pare_tf_ctx c = {.m = m, .n = n, .t = t, .rows = N, .cols = K, .scratch = scratch, .update = 0, .train = 1};
    pare_tf_head_gate.forward(&c, y, w->blob->data);
    double f = 0;
    for (int64_t i = 0; i < N * K; i++) f += (double)R[i] * y[i];
    free(y);
    return f;
}

static void transform_tests(void)
{
    pare_model *m = build();
    if (!ok(m && pare_head_gates_attach(m, 0.1, 0.05, 0.0, "dec.0.xattn") == PARE_OK, "gates on the cross-attention: %s",
            m ? pare_errmsg() : "no model"))
        return;
    int64_t node = pare_model_find_node(m, "dec.0.xattn.out");
    const pare_transform *t = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    ok(t && t->kind == PARE_TF_HEAD_GATE && pare_head_gates_count(m) == 1, "one head_gate transform on dec.0.xattn.out");
    pare_param *w = &m->params[m->nodes[node].param[0]], *lp = &m->params[t->aux[0]], *sp = &m->params[t->aux[1]];
    pare_param_make_private(w), pare_param_make_private(lp), pare_param_make_private(sp);
    const float la[H] = {0.2f, -0.5f, 1.0f, 5.0f}, u[H] = {0.3f, 0.6f, 0.5f, 0.45f}; /* head 3 clamped at 1 */
    memcpy(lp->blob->data, la, sizeof la), memcpy(sp->blob->data + 2, u, sizeof u);
    int64_t N = w->shape[0], K = w->shape[1];
    float *R = malloc(sizeof(float) * (size_t)(N * K)), *dW = calloc((size_t)(N * K), sizeof(float)),
          *scratch = malloc(sizeof(float) * (size_t)(2 * K));
    pare_rng r;
    pare_rng_seed(&r, 5);
    for (int64_t i = 0; i < N * K; i++) R[i] = (float)pare_rng_normal(&r);
    pare_model_alloc_grads(m);
    pare_model_zero_grad(m);
    pare_tf_ctx c = {.m = m, .n = &m->nodes[node], .t = t, .rows = N, .cols = K, .scratch = scratch, .train = 1};
    tf_loss(m, node, R, scratch);
    pare_tf_head_gate.backward(&c, dW, R, w->blob->data);
    double worst = 0, worst_w = 0, e = 1e-2;
    int interior = 0;
    for (int h = 0; h < H; h++) {
        lp->blob->data[h] = la[h] + (float)e;
        double fp = tf_loss(m, node, R, scratch);
        lp->blob->data[h] = la[h] - (float)e;
        double fm = tf_loss(m, node, R, scratch);
        lp->blob->data[h] = la[h];
        double fd = (fp - fm) / (2 * e);
        worst = fmax(worst, fabs(lp->grad[h] - fd) / (1e-3 + fabs(fd)));
        interior += fabs(fd) > 1e-3;
    }
    for (int64_t i = 0; i < N * K; i += 7) {
        float w0 = w->blob->data[i];
        w->blob->data[i] = w0 + (float)e;
        double fp = tf_loss(m, node, R, scratch);
        w->blob->data[i] = w0 - (float)e;
        double fm = tf_loss(m, node, R, scratch);
        w->blob->data[i] = w0;
        worst_w = fmax(worst_w, fabs(dW[i] - (fp - fm) / (2 * e)));
    }
    ok(interior == 3 && worst < 2e-3, "d log alpha vs finite differences with u fixed, 3 heads inside the clamp and one at 1 "
       "(worst rel %.2g)", worst);
    ok(worst_w < 1e-3, "dW_o vs finite differences (worst %.2g)", worst_w);
    /* the penalty: λ Σ P(z ≠ 0) and its gradient */
    pare_model_zero_grad(m);
    double pen = pare_head_gates_penalty(m, 1), want = 0, worst_g = 0;
    for (int h = 0; h < H; h++) want += 0.1 * ref_l0(la[h]);
    for (int h = 0; h < H; h++) {
        double ee = 1e-3;
        lp->blob->data[h] = la[h] + (float)ee;
        double fp = pare_head_gates_penalty(m, 0);
        lp->blob->data[h] = la[h] - (float)ee;
        double fm = pare_head_gates_penalty(m, 0);
        lp->blob->data[h] = la[h];
        worst_g = fmax(worst_g, fabs(lp->grad[h] - (fp - fm) / (2 * ee)));
    }
    is_close(pen, want, 1e-6, 1e-6, "L0 penalty = lambda * sum_h P(z_h != 0)");
    ok(worst_g < 1e-4, "the penalty's gradient vs finite differences (worst %.2g)", worst_g);
    /* a training forward samples u into the state; two forwards differ */
    pare_exec *x = NULL;
    if (ok(pare_exec_new(&x, m, 2, tr.T, PARE_EXEC_TRAIN) == PARE_OK, "a training executor on the gated model")) {
        pare_exec_bind(x, tr.tokens, tr.lengths, tr.labels);
        pare_exec_bind_source(x, tr.src_tokens, tr.src_lengths);
        pare_exec_forward(x);
        float u1[H];
        memcpy(u1, sp->blob->data + 2, sizeof u1);
        pare_exec_forward(x);
        int fresh = 0, inside = 1;
        for (int h = 0; h < H; h++) fresh += u1[h] != u[h] && u1[h] != sp->blob->data[2 + h], inside &= u1[h] > 0 && u1[h] < 1;
        ok(fresh == H && inside, "training forwards draw a new u in (0, 1) per head each time");
        pare_model_zero_grad(m);
        pare_exec_backward(x);
        int nz = 0;
        for (int h = 0; h < 3; h++) nz += lp->grad[h] != 0;
        ok(nz >= 2, "the model's backward reaches log alpha (%d of 3 unclamped heads)", nz);
    }
    pare_exec_free(x);
    free(R), free(dW), free(scratch);
    pare_model_free(m);
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

static void prune_tests(void)
{
    pare_model *m = build(), *g = m ? pare_model_clone(m) : NULL;
    if (!ok(g && pare_head_gates_attach(g, 0.01, 0.05, 3.0, "") == PARE_OK && pare_head_gates_count(g) == 3,
            "gates on all three attention layers: %s", g ? pare_errmsg() : "no model"))
        return;
    float *l0 = NULL, *l1 = NULL, *l2 = NULL;
    int64_t rows;
    pare_predict_logits(m, &te, 8, &l0, &rows);
    pare_predict_logits(g, &te, 8, &l1, &rows);
    ok(max_diff(l0, l1, rows * te.vocab) == 0, "at log alpha 3 every gate is 1: the gated model's logits are the model's");
    /* set gates: enc {1, 0, mid, 0}; dec {0, 0, 0, 0} (all closed); cross {mid, 1, 1, 0} */
    const char *names[3] = {"enc.0.attn.gate_log_alpha", "dec.0.attn.gate_log_alpha", "dec.0.xattn.gate_log_alpha"};
    const float set[3][H] = {{4, -4, 0.3f, -3}, {-4, -2.5f, -5, -3}, {-0.5f, 4, 2.5f, -6}};
    for (int l = 0; l < 3; l++) {
        pare_param *p = &g->params[pare_model_find_param(g, names[l])];
        pare_param_make_private(p);
        memcpy(p->blob->data, set[l], sizeof set[l]);
    }
    pare_head_scores s;
    if (ok(pare_head_gates_values(g, &s) == PARE_OK && s.n == 3, "gate values of 3 layers")) {
        double worst = 0;
        for (int l = 0; l < 3; l++)
            for (int h = 0; h < H; h++) worst = fmax(worst, fabs(s.score[l * s.hmax + h] - ref_gate(set[l][h], 0.5, 0)));
        ok(worst < 1e-12 && !strcmp(g->nodes[s.node[0]].name, "enc.0.attn"), "gate values are the deterministic gates (worst %.2g)", worst);
        pare_head_scores_free(&s);
    }
    pare_free(l1);
    pare_predict_logits(g, &te, 8, &l1, &rows);
    ok(max_diff(l0, l1, rows * te.vocab) > 1e-2, "closed and half-open gates change the gated model's logits (max diff %.2g)",
       max_diff(l0, l1, rows * te.vocab));
    pare_model *p = NULL;
    int64_t kept[3];
    pare_status st = pare_head_gates_prune(&p, g, kept);
    if (ok(st == PARE_OK, "prune the gated heads: %s", st ? pare_errmsg() : "ok")) {
        ok(kept[0] == 2 && kept[1] == 0 && kept[2] == 3, "kept heads enc/dec/cross = %lld/%lld/%lld (want 2/0/3)",
           (long long)kept[0], (long long)kept[1], (long long)kept[2]);
        const int want_heads[3] = {2, 1, 3}; /* an all-closed layer keeps one head, with z = 0 folded in */
        const char *an[3] = {"enc.0.attn", "dec.0.attn", "dec.0.xattn"};
        int heads_ok = 1;
        for (int l = 0; l < 3; l++) heads_ok &= p->nodes[pare_model_find_node(p, an[l])].a.heads == want_heads[l];
        ok(heads_ok && pare_head_gates_count(p) == 0 && pare_model_find_param(p, names[0]) < 0,
           "the pruned model is plain: heads 2/1/3, no gates, no gate parameters");
        ok(pare_model_param_count(p) < pare_model_param_count(m), "and smaller (%lld < %lld parameters)",
           (long long)pare_model_param_count(p), (long long)pare_model_param_count(m));
        pare_predict_logits(p, &te, 8, &l2, &rows);
        double d = max_diff(l1, l2, rows * te.vocab);
        ok(d < 1e-4, "pruned model's logits = the gated model's at inference (max diff %.2g)", d);
    }
    /* errors */
    pare_model *d0 = NULL;
    ok(pare_head_gates_attach(g, 0.01, 0.05, 3.0, "") == PARE_EINVAL && strstr(pare_errmsg(), "already carries"),
       "gating twice: %s", pare_errmsg());
    ok(pare_head_gates_attach(m, -1, 0.05, 3.0, "") == PARE_EINVAL && strstr(pare_errmsg(), "lambda"), "lambda < 0: %s", pare_errmsg());
    ok(pare_head_gates_attach(m, 0.1, 0.05, 3.0, "enc.*.ffn") == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.attn"),
       "layers matching no attention: %s", pare_errmsg());
    ok(pare_head_gates_prune(&d0, m, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "no gated layer"),
       "pruning a model without gates: %s", pare_errmsg());
    /* drop_heads on a gated model slices the gates with the heads */
    pare_model *d = pare_model_clone(g);
    int drop[1] = {1};
    st = pare_model_drop_heads(d, pare_model_find_node(d, "enc.0.attn"), drop, 1);
    ok(st == PARE_OK && pare_param_numel(&d->params[pare_model_find_param(d, names[0])]) == 3 &&
           d->params[pare_model_find_param(d, names[0])].blob->data[1] == 0.3f,
       "drop_heads on a gated layer keeps the other heads' gates: %s", st ? pare_errmsg() : "ok");
    pare_model_free(d);
    pare_free(l0), pare_free(l1), pare_free(l2);
    pare_model_free(p), pare_model_free(g), pare_model_free(m);
}

static void confidence_tests(void)
{
    pare_model *m = build();
    pare_head_scores s;
    enum { NE = 6 };
    pare_status st = m ? pare_head_confidence(m, &te, 2, NE, 4, &s) : PARE_EINVAL;
    if (!ok(st == PARE_OK && s.n == 3, "head confidence on 3 layers: %s", st ? pare_errmsg() : "ok")) return;
    const char *keep[3] = {"enc.0.attn#att", "dec.0.attn#att", "dec.0.xattn#att"};
    double ref[3][H] = {{0}}, cnt[3] = {0};
    for (int e = 2; e < 2 + NE; e++) { /* one example at a time, straight from the executor */
        pare_exec *x = NULL;
        pare_exec_new_src(&x, m, 1, te.T, te.S, PARE_EXEC_INFER, keep, 3);
        pare_exec_bind(x, te.tokens + e * te.T, te.lengths + e, te.labels + e * te.T);
        pare_exec_bind_source(x, te.src_tokens + e * te.S, te.src_lengths + e);
        pare_exec_forward(x);
        for (int l = 0; l < 3; l++) {
            const float *a;
            int64_t r, cc;
            pare_exec_value(x, keep[l], &a, &r, &cc);
            int64_t Tq = l == 0 ? te.S : te.T, Tk = l == 1 ? te.T : te.S, len = l == 0 ? te.src_lengths[e] : te.lengths[e];
            for (int h = 0; h < H; h++)
                for (int64_t q = 0; q < len; q++) {
                    double mx = 0;
                    for (int64_t k = 0; k < Tk; k++) mx = fmax(mx, a[(h * Tq + q) * Tk + k]);
                    ref[l][h] += mx;
                }
            cnt[l] += (double)len;
        }
        pare_exec_free(x);
    }
    double worst = 0;
    for (int l = 0; l < 3; l++)
        for (int h = 0; h < H; h++) worst = fmax(worst, fabs(s.score[l * s.hmax + h] - ref[l][h] / cnt[l]));
    ok(worst < 1e-6, "confidence = mean over valid queries of the max attention weight (worst %.2g)", worst);
    int in_range = 1;
    for (int l = 0; l < 3; l++)
        for (int h = 0; h < H; h++) in_range &= s.score[l * s.hmax + h] > 0 && s.score[l * s.hmax + h] <= 1;
    ok(in_range, "confidences are in (0, 1]");
    pare_head_scores_free(&s);
    ok(pare_head_confidence(m, &te, te.n - 1, 5, 4, &s) == PARE_EINVAL && strstr(pare_errmsg(), "outside"),
       "a range outside the split: %s", pare_errmsg());
    pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    pare_kv kv[] = {{"n_train", PARE_KV_NUM, 40, NULL}, {"n_test", PARE_KV_NUM, 16, NULL}, {"seed", PARE_KV_NUM, 2, NULL}};
    if (!ok(pare_task_make_kv(&tr, &te, "translate", kv, 3) == PARE_OK, "the translate task")) return tap_done();
    formula_tests();
    transform_tests();
    prune_tests();
    confidence_tests();
    pare_dataset_free(&tr), pare_dataset_free(&te);
    return tap_done();
}
