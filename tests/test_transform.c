/* test_transform.c — weight transforms (graph/transform.h) on a hand-built model: the registry; a mask's
 * forward against the same model with W ⊙ M written into its weight; its backward against that model's
 * gradient and against finite differences; masked masters under AdamW steps; the inference executor's
 * packed, folded weight against the training forward; clones, replacing and removing a mask; fake
 * quantization through the mechanism against the old QAT branch of the Linear op (kept here as the
 * reference, bit for bit, forward and backward, fixed and learned scales); and the errors, which name
 * the parameter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/transform.h"
#include "kernels/gemm.h"
#include "kernels/qat.h"
#include "train/train.h"
#include "tap.h"

#include "test_toy.h"

/* A 0/1 mask (rows, cols) keeping about half, seeded. */
static float *mask_new(int64_t rows, int64_t cols, uint64_t seed)
{
    float *mk = malloc(sizeof(float) * (size_t)(rows * cols));
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < rows * cols; i++) mk[i] = pare_rng_below(&r, 2) ? 1.0f : 0.0f;
    return mk;
}


static void test_registry(void)
{
    int good = 1;
    for (int k = 0; k < PARE_TF_COUNT; k++) {
        const pare_tf_traits *t = pare_tf_get(k);
        good &= t && t->name && t->forward && t->backward && t->describe && t->naux >= 0 && t->naux <= PARE_TF_MAX_AUX &&
                !strcmp(pare_tf_name(k), t->name);
        for (int j = 0; j < k; j++) good &= strcmp(pare_tf_get(j)->name, t->name) != 0;
    }
    ok(good && pare_tf_get(PARE_TF_COUNT) == NULL && pare_tf_get(-1) == NULL,
       "transform table: %d kinds, each with a forward, a backward, a description and its own name", PARE_TF_COUNT);
    ok(pare_tf_get(PARE_TF_MASK)->foldable && !pare_tf_get(PARE_TF_MASK)->simulated && pare_tf_get(PARE_TF_FAKE_QUANT)->simulated &&
           !pare_tf_get(PARE_TF_FAKE_QUANT)->foldable,
       "traits: a mask folds into the packed weight; fake quantization is simulated and does not fold");
}

/* The masked model and its reference: a clone whose proj.weight holds W ⊙ M and has no mask. */
static void test_mask(void)
{
    pare_model *m = toy(), *ref = pare_model_clone(m);
    float *mk = mask_new(C2, C, 5);
    ok(pare_model_set_mask(m, "proj", mk, C2, C) == PARE_OK, "set a mask on proj (by its node name)");
    int pw = pare_model_find_param(m, "proj.weight");
    ok(m->nodes[pare_model_find_node(m, "proj")].ntf == 1 && pare_model_find_param(m, "proj.weight.mask") >= 0 &&
           !m->params[pare_model_find_param(m, "proj.weight.mask")].trainable,
       "the mask is one transform on the node and a non-trainable parameter proj.weight.mask");
    ok(pare_model_param_count(m) == pare_model_param_count(ref) && pare_model_size_bytes(m) == pare_model_size_bytes(ref),
       "the mask adds no trained parameters and no stored bytes");
    pare_param_make_private(&ref->params[pw]);
    int64_t kept = 0;
    for (int64_t i = 0; i < C2 * C; i++) ref->params[pw].blob->data[i] *= mk[i], kept += mk[i] != 0;
    diag("mask keeps %lld of %d weights", (long long)kept, C2 * C);

    pare_exec *x = run(m, PARE_EXEC_TRAIN, 1), *xr = run(ref, PARE_EXEC_TRAIN, 1);
    ok(x && xr, "training executors");
    if (!x || !xr) return;
    ok(same(pare_exec_logits(x), pare_exec_logits(xr), B * K) && x->loss == xr->loss,
       "mask forward: logits and loss equal the model whose weight holds W ⊙ M, bit for bit (loss %.6f)", x->loss);
    const float *g = grad_of(m, "proj.weight"), *gr = grad_of(ref, "proj.weight");
    int zero = 1, kept_eq = 1, nonzero = 0;
    for (int64_t i = 0; i < C2 * C; i++) {
        if (mk[i] == 0) zero &= g[i] == 0.0f;
        else kept_eq &= g[i] == gr[i], nonzero += g[i] != 0;
    }
    ok(zero, "mask backward: every masked weight has gradient exactly 0");
    ok(kept_eq && nonzero > 0, "mask backward: kept weights have the reference model's gradient, bit for bit (%d nonzero)", nonzero);
    ok(same(grad_of(m, "emb.weight"), grad_of(ref, "emb.weight"), V * C) && same(grad_of(m, "head.weight"), grad_of(ref, "head.weight"), K * C2),
       "mask backward: gradients of the other parameters (through proj's input) equal the reference's");

    /* finite differences on every coordinate of proj.weight (masked ones: the loss does not move) */
    double worst = 0;
    for (int64_t j = 0; j < C2 * C; j++) {
        float *w = m->params[pw].blob->data, keep = w[j];
        double h = 1e-2;
        w[j] = keep + (float)h;
        pare_exec_forward(x);
        double lp = x->loss;
        w[j] = keep - (float)h;
        pare_exec_forward(x);
        double lm = x->loss;
        w[j] = keep;
        double num = (lp - lm) / (2 * h), err = fabs(num - g[j]) / (2e-3 + fabs(num) + fabs(g[j]));
        if (err > worst) worst = err;
    }
    ok(worst < 2e-2, "mask backward = finite differences on all %d coordinates of proj.weight (worst rel err %.2g)", C2 * C, worst);

    /* inference: the executor packs W ⊙ M once and runs the plain f32 kernel */
    pare_exec *xi = run(m, PARE_EXEC_INFER, 0), *xri = run(ref, PARE_EXEC_INFER, 0);
    ok(xi && xi->packed && xi->packed[pw], "inference executor packed the masked weight (folded, f32 packed kernel)");
    ok(xi && xri && xi->planned_bytes == xri->planned_bytes && xi->packed_bytes == xri->packed_bytes,
       "folded: no workspace for the mask at inference (planned %zu bytes, as the unmasked model)", xi ? xi->planned_bytes : 0);
    is_close_arr(pare_exec_logits(xi), pare_exec_logits(x), B * K, 1e-5, 1e-4, "inference (packed, masked) logits == training forward");
    ok(xri && same(pare_exec_logits(xi), pare_exec_logits(xri), B * K),
       "inference masked == inference of the model holding W ⊙ M, bit for bit (same packed values)");
    pare_exec_free(xi), pare_exec_free(xri);

    /* AdamW without weight decay: masked masters never move; kept ones do */
    float *w0 = malloc(sizeof(float) * C2 * C);
    memcpy(w0, m->params[pw].blob->data, sizeof(float) * C2 * C);
    for (int s = 1; s <= 5; s++) {
        pare_model_zero_grad(m);
        pare_exec_forward(x);
        pare_exec_backward(x);
        pare_adamw_step(m, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, s);
    }
    const float *w = m->params[pw].blob->data;
    int keep_masked = 1, moved = 0;
    for (int64_t i = 0; i < C2 * C; i++) {
        if (mk[i] == 0) keep_masked &= w[i] == w0[i];
        else moved += w[i] != w0[i];
    }
    ok(keep_masked && moved > kept / 2, "5 AdamW steps: masked weights keep their values exactly, %d of %lld kept ones moved", moved,
       (long long)kept);
    /* with decoupled weight decay a masked master only decays (zero gradient, zero moments) */
    memcpy(w0, w, sizeof(float) * C2 * C);
    pare_model_zero_grad(m);
    pare_exec_forward(x);
    pare_exec_backward(x);
    pare_param *P = &m->params[pw];
    int zero_m = 1;
    for (int64_t i = 0; i < C2 * C; i++)
        if (mk[i] == 0) zero_m &= P->adam_m[i] == 0 && P->adam_v[i] == 0 && P->grad[i] == 0;
    float lr = 1e-2f, wd = 0.1f;
    pare_adamw_step(m, lr, 0.9f, 0.999f, 1e-8f, wd, 6);
    int decay_only = 1;
    for (int64_t i = 0; i < C2 * C; i++)
        if (mk[i] == 0) decay_only &= w[i] == w0[i] - lr * (0.0f / (sqrtf(0.0f) + 1e-8f) + wd * w0[i]);
    ok(zero_m && decay_only, "weight decay: a masked master has zero Adam moments and only decays (as torch's prune does)");

    /* training forward == a reference made now, after the steps */
    pare_model *ref2 = pare_model_clone(m);
    pare_node_detach(ref2, pare_model_find_node(ref2, "proj"), PARE_TF_WEIGHT);
    pare_param_make_private(&ref2->params[pw]);
    for (int64_t i = 0; i < C2 * C; i++) ref2->params[pw].blob->data[i] *= mk[i];
    pare_exec *x2 = run(ref2, PARE_EXEC_INFER, 0), *xm = run(m, PARE_EXEC_INFER, 0);
    ok(x2 && xm && same(pare_exec_logits(x2), pare_exec_logits(xm), B * K), "after training, still W ⊙ M: the inference logits agree bit for bit");
    pare_exec_free(x2), pare_exec_free(xm);
    pare_model_free(ref2);

    /* clones: the transform comes with the clone, the mask data is copy-on-write */
    pare_model *c = pare_model_clone(m);
    int mp = pare_model_find_param(m, "proj.weight.mask");
    ok(c && c->nodes[pare_model_find_node(c, "proj")].ntf == 1 && c->params[mp].blob == m->params[mp].blob,
       "a clone carries the mask transform and shares the mask's data");
    float *mk2 = mask_new(C2, C, 9);
    ok(pare_model_set_mask(c, "proj.weight", mk2, C2, C) == PARE_OK && same(m->params[mp].blob->data, mk, C2 * C) &&
           same(c->params[mp].blob->data, mk2, C2 * C) && c->nparams == m->nparams,
       "replacing the clone's mask (by the weight's name) reuses its parameter and leaves the original's mask alone");
    ok(pare_model_set_mask(c, "proj", NULL, 0, 0) == PARE_OK && c->nodes[pare_model_find_node(c, "proj")].ntf == 0,
       "removing a mask drops the transform");
    pare_exec *xc = run(c, PARE_EXEC_TRAIN, 0), *xnm;
    pare_model *plain = pare_model_clone(m);
    pare_node_detach(plain, pare_model_find_node(plain, "proj"), PARE_TF_WEIGHT);
    xnm = run(plain, PARE_EXEC_TRAIN, 0);
    ok(xc && xnm && same(pare_exec_logits(xc), pare_exec_logits(xnm), B * K) && !same(pare_exec_logits(xc), pare_exec_logits(x), B * K),
       "without its mask the model computes with the intact masters again");
    pare_exec_free(xc), pare_exec_free(xnm);
    pare_model_free(plain);

    /* baking: W ⊙ M in the master, no transform, same function; then quantization is allowed */
    pare_model *bk = pare_model_clone(m);
    ok(pare_model_bake_mask(bk, "proj") == PARE_OK && bk->nodes[pare_model_find_node(bk, "proj")].ntf == 0 &&
           m->params[pw].blob != bk->params[pw].blob,
       "bake: the mask is written into a private copy of the weight and dropped");
    pare_exec *xb = run(bk, PARE_EXEC_INFER, 0), *xm2 = run(m, PARE_EXEC_INFER, 0);
    ok(xb && xm2 && same(pare_exec_logits(xb), pare_exec_logits(xm2), B * K), "the baked model computes what the masked one does");
    pare_exec_free(xb), pare_exec_free(xm2);
    pare_model *q = NULL;
    ok(pare_apply(&q, m, "dynamic_int8", NULL, 0) != PARE_OK && strstr(pare_errmsg(), "proj.weight") && strstr(pare_errmsg(), "mask"),
       "quantizing a masked weight is refused, naming it: %s", pare_errmsg());
    ok(pare_apply(&q, bk, "dynamic_int8", NULL, 0) == PARE_OK && q, "the baked model quantizes");
    pare_model_free(q);

    /* errors name the parameter */
    float bad[C2 * C];
    memcpy(bad, mk, sizeof bad);
    ok(pare_model_set_mask(m, "proj", mk, C, C2) == PARE_EINVAL && strstr(pare_errmsg(), "proj.weight") &&
           strstr(pare_errmsg(), "(16, 12)") && strstr(pare_errmsg(), "(12, 16)"),
       "a mask of the wrong shape: %s", pare_errmsg());
    bad[17] = 0.5f;
    ok(pare_model_set_mask(m, "proj", bad, C2, C) == PARE_EINVAL && strstr(pare_errmsg(), "proj.weight") && strstr(pare_errmsg(), "0.5") &&
           strstr(pare_errmsg(), "(1, 1)"),
       "a value other than 0 and 1: %s", pare_errmsg());
    bad[17] = NAN;
    ok(pare_model_set_mask(m, "proj", bad, C2, C) == PARE_EINVAL && strstr(pare_errmsg(), "proj.weight") && strstr(pare_errmsg(), "nan"),
       "a NaN: %s", pare_errmsg());
    ok(same(m->params[mp].blob->data, mk, C2 * C), "a refused mask leaves the old one in place");
    ok(pare_model_set_mask(m, "prj", mk, C2, C) == PARE_EINVAL && strstr(pare_errmsg(), "prj") && strstr(pare_errmsg(), "proj, head"),
       "an unknown name lists the Linear layers: %s", pare_errmsg());
    ok(pare_model_set_mask(m, "act", mk, C2, C) == PARE_EINVAL && strstr(pare_errmsg(), "gelu"), "a non-Linear node: %s", pare_errmsg());
    ok(pare_model_set_mask(m, "emb.weight", mk, C2, C) == PARE_EINVAL && strstr(pare_errmsg(), "emb.weight"),
       "a parameter of no Linear: %s", pare_errmsg());
    pare_model *qi = NULL;
    pare_apply(&qi, bk, "dynamic_int8", NULL, 0);
    ok(qi && pare_model_set_mask(qi, "proj", mk, C2, C) == PARE_EINVAL && strstr(pare_errmsg(), "proj.weight") && strstr(pare_errmsg(), "int8"),
       "a mask on a quantized weight is refused: %s", pare_errmsg());
    ok(pare_model_bake_mask(bk, "proj") == PARE_EINVAL && strstr(pare_errmsg(), "proj.weight"), "baking without a mask: %s", pare_errmsg());
    pare_model_free(qi);
    pare_model_free(bk);
    pare_exec_free(x), pare_exec_free(xr);
    pare_model_free(c), pare_model_free(m), pare_model_free(ref);
    free(mk), free(mk2), free(w0);
}

/* ---- fake quantization: the Linear op's QAT branch before transforms, kept verbatim as the reference ---- */
typedef struct old_qat { int bits, learn, qat_w, qat_a; } old_qat;

static void old_fq(const pare_model *m, const old_qat *a, const float *W, const float *in, float *Wq, float *xq, float *sw,
                   float *sa, int64_t M, int64_t N, int64_t Kd)
{
    const float *lw = m->params[a->qat_w].blob->data, *la = m->params[a->qat_a].blob->data;
    int qmax = (1 << (a->bits - 1)) - 1;
    for (int64_t i = 0; i < N; i++) sw[i] = expf(lw[i]);
    sa[0] = expf(la[0]);
    pare_fq_forward(Wq, W, sw, 1, N, Kd, -qmax, qmax);
    pare_fq_forward(xq, in, sa, 0, M, Kd, -qmax, qmax);
}

/* The old linear_fwd (training: fixed scales observe first) on copies of the log-scales lw (N), la (1). */
static void old_forward(pare_model *m, const old_qat *a, float *y, const float *in, const float *W, const float *bias, int train,
                        int64_t M, int64_t N, int64_t Kd, float *Wq, float *xq, float *sw, float *sa)
{
    if (train && !a->learn) {
        float *lw = m->params[a->qat_w].blob->data, *la = m->params[a->qat_a].blob->data;
        sa[0] = expf(la[0]);
        pare_fq_observe(sw, sa, W, in, M, N, Kd, a->bits);
        for (int64_t i = 0; i < N; i++) lw[i] = logf(sw[i]);
        la[0] = logf(sa[0]);
    }
    old_fq(m, a, W, in, Wq, xq, sw, sa, M, N, Kd);
    pare_linear_f32(y, xq, Wq, bias, M, N, Kd);
}

static void old_backward(pare_model *m, const old_qat *a, float *dx, float *dW, float *dbias, float *dlw, float *dla, const float *dy,
                         const float *in, const float *W, int64_t M, int64_t N, int64_t Kd)
{
    int qmax = (1 << (a->bits - 1)) - 1;
    float *Wq = calloc((size_t)(N * Kd), 4), *xq = calloc((size_t)(M * Kd), 4), *dWq = calloc((size_t)(N * Kd), 4);
    float *dxq = calloc((size_t)(M * Kd), 4), *sw = calloc((size_t)N, 4), sa, *dsw = calloc((size_t)N, 4), dsa = 0;
    old_fq(m, a, W, in, Wq, xq, sw, &sa, M, N, Kd);
    pare_linear_f32_backward(dxq, dWq, dbias, dy, xq, Wq, M, N, Kd);
    float gw = 1.0f / sqrtf((float)Kd * (float)qmax), ga = 1.0f / sqrtf((float)(M * Kd) * (float)qmax);
    pare_fq_backward(dW, a->learn ? dsw : NULL, dWq, W, sw, 1, N, Kd, -qmax, qmax, gw);
    pare_fq_backward(dx, a->learn ? &dsa : NULL, dxq, in, &sa, 0, M, Kd, -qmax, qmax, ga);
    if (a->learn) {
        for (int64_t i = 0; i < N; i++) dlw[i] += sw[i] * dsw[i];
        dla[0] += sa * dsa;
    }
    free(Wq), free(xq), free(dWq), free(dxq), free(sw), free(dsw);
}

static void test_fake_quant(int bits, int learn)
{
    pare_model *m = toy();
    int node = pare_model_find_node(m, "proj"), pw = pare_model_find_param(m, "proj.weight");
    int64_t M = B * T, one[2] = {1, 1}, ns[2] = {C2, 1};
    int lw = pare_model_add_param(m, "proj.wscale", 1, ns, learn), la = pare_model_add_param(m, "proj.ascale", 1, one, learn);
    for (int i = 0; i < C2; i++) m->params[lw].blob->data[i] = logf(0.05f + 0.01f * (float)i);
    m->params[la].blob->data[0] = logf(0.08f);
    pare_transform tw = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_WEIGHT, .bits = bits, .learn = learn, .aux = {lw, -1}};
    pare_transform ta = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_INPUT, .bits = bits, .learn = learn, .aux = {la, -1}};
    ok(pare_node_attach(m, node, &tw) == PARE_OK && pare_node_attach(m, node, &ta) == PARE_OK, "int%d %s: two fake_quant transforms on proj",
       bits, learn ? "lsq" : "fixed");
    /* the reference's own copy of the scales, as they are before the forward */
    pare_model *r = pare_model_clone(m);
    pare_param_make_private(&r->params[lw]), pare_param_make_private(&r->params[la]);
    pare_exec *x = run(m, PARE_EXEC_TRAIN, 1);
    if (!ok(x != NULL, "training executor")) return;
    const float *in = x->buf[m->nodes[pare_model_find_node(m, "emb")].out];
    int h1 = m->nodes[node].out;
    float y[B * T * C2], Wq[C2 * C], xq[B * T * C], sw[C2], sa;
    old_qat a = {bits, learn, lw, la};
    old_forward(r, &a, y, in, m->params[pw].blob->data, data_of(m, "proj.bias"), 1, M, C2, C, Wq, xq, sw, &sa);
    ok(same(x->buf[h1], y, M * C2), "int%d %s: forward through the mechanism == the old QAT branch, bit for bit", bits, learn ? "lsq" : "fixed");
    ok(same(m->params[lw].blob->data, r->params[lw].blob->data, C2) && same(m->params[la].blob->data, r->params[la].blob->data, 1),
       "int%d %s: the log-scales after the forward are the old branch's%s", bits, learn ? "lsq" : "fixed", learn ? " (unchanged)" : " (followed the data)");
    float dx[B * T * C] = {0}, dW[C2 * C] = {0}, db[C2] = {0}, dlw[C2] = {0}, dla[1] = {0};
    old_backward(r, &a, dx, dW, db, dlw, dla, x->grad[h1], in, m->params[pw].blob->data, M, C2, C);
    int emb_out = m->nodes[pare_model_find_node(m, "emb")].out;
    ok(same(grad_of(m, "proj.weight"), dW, C2 * C) && same(grad_of(m, "proj.bias"), db, C2) && same(x->grad[emb_out], dx, M * C),
       "int%d %s: backward into the weight, the bias and the input == the old branch, bit for bit", bits, learn ? "lsq" : "fixed");
    if (learn)
        ok(same(m->params[lw].grad, dlw, C2) && same(m->params[la].grad, dla, 1) && dlw[0] != 0,
           "int%d lsq: gradients of the log-scales == the old branch, bit for bit", bits);
    else ok(m->params[lw].grad == NULL, "int%d fixed: the scales are not trained", bits);
    /* inference: not folded (the input is fake-quantized at every call), same numbers as training */
    pare_exec *xi = run(m, PARE_EXEC_INFER, 0);
    ok(xi && !xi->packed[pw], "int%d %s: inference runs the fake-quantized f32 path (proj.weight not packed)", bits, learn ? "lsq" : "fixed");
    if (xi) is_close_arr(pare_exec_logits(xi), pare_exec_logits(x), B * K, 1e-5, 1e-4, "fake-quantized inference logits == training forward's");
    ok(pare_model_has_simulated_tf(m) && pare_model_set_mask(m, "proj", (float[C2 * C]){0}, C2, C) == PARE_EINVAL &&
           strstr(pare_errmsg(), "proj.weight") && strstr(pare_errmsg(), "fake_quant"),
       "a mask on a fake-quantized weight is refused (one transform per operand): %s", pare_errmsg());
    pare_exec_free(xi), pare_exec_free(x);
    pare_model_free(r), pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    test_registry();
    test_mask();
    test_fake_quant(8, 1);
    test_fake_quant(4, 0);
    test_fake_quant(3, 1);
    return tap_done();
}
