/* test_hessian.c — Hutchinson Hessian traces (eval/hessian.h) against two independent references:
 *   - vᵀHv for one direction against the second difference of the loss (pare_evaluate's loss, no gradients),
 *     (L(w + hv) − 2 L(w) + L(w − hv)) / h², on the classifier head and on a middle Linear;
 *   - the head's trace against its closed form: for softmax cross-entropy on logits z = W x + b, the Hessian of the
 *     mean loss in W is mean_b (diag(p_b) − p_b p_bᵀ) ⊗ x_b x_bᵀ, whose trace is mean_b Σ_c p_bc (1 − p_bc) ‖x_b‖²
 *     (x_b captured from the model, p_b the softmax of its logits);
 * then determinism for a seed, and the errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/hessian.h"
#include "graph/exec.h"
#include "test_models.h"
#include "train/train.h"

enum { N = 64, T = 8, V = 13 };

static double loss_of(pare_model *m, const pare_dataset *d)
{
    pare_eval_result e;
    if (pare_evaluate(m, d, 16, &e) != PARE_OK) {
        diag("evaluate: %s", pare_errmsg());
        return NAN;
    }
    return e.loss;
}

static int64_t node_of(const pare_model *m, const char *name)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        if (!strcmp(m->nodes[i].name, name)) return i;
    return -1;
}

/* vᵀHv by the loss's second difference along v on layer `name` (every other weight fixed) */
static double second_difference(const pare_model *m, const pare_dataset *d, const char *name, const float *v, double h)
{
    pare_model *c = pare_model_clone(m);
    pare_param *p = &c->params[c->nodes[node_of(c, name)].param[0]];
    pare_param_make_private(p);
    int64_t k = pare_param_numel(p);
    float *w0 = malloc(sizeof *w0 * (size_t)k);
    memcpy(w0, p->blob->data, sizeof *w0 * (size_t)k);
    double L[3];
    for (int s = -1; s <= 1; s++) {
        for (int64_t j = 0; j < k; j++) p->blob->data[j] = (float)(w0[j] + s * h * v[j]);
        L[s + 1] = loss_of(c, d);
    }
    free(w0);
    pare_model_free(c);
    return (L[0] - 2 * L[1] + L[2]) / (h * h);
}

static void vhv_tests(const pare_model *m, const pare_dataset *d)
{
    const char *layers[] = {"head", "enc.1.ffn.up"};
    for (int li = 0; li < 2; li++) {
        const pare_param *p = &m->params[m->nodes[node_of(m, layers[li])].param[0]];
        int64_t k = pare_param_numel(p);
        float *v = malloc(sizeof *v * (size_t)k);
        pare_rng r;
        pare_rng_seed(&r, 11 + li);
        for (int64_t j = 0; j < k; j++) v[j] = (pare_rng_u64(&r) >> 63) ? 1.0f : -1.0f;
        double got;
        pare_hessian_spec sp = {.layers = layers[li], .samples = 1, .n = N, .batch = 16, .eps = 1e-2, .seed = 1};
        const float *vs[1] = {v};
        int st = pare_hessian_vhv(m, d, &sp, vs, &got) == PARE_OK;
        double ref = second_difference(m, d, layers[li], v, 3e-3);
        diag("%s: vᵀHv %.6g by gradients, %.6g by the loss's second difference", layers[li], got, ref);
        ok(st && fabs(got - ref) <= 0.02 * fabs(ref) + 1e-3, "%s: vᵀHv from gradient differences = the loss's second "
           "difference within 2%% (%.5g vs %.5g)", layers[li], got, ref);
        free(v);
    }
}

static void head_trace_test(pare_model *m, const pare_dataset *d)
{
    /* x: the head's input; p: softmax of the logits */
    const pare_node *hd = &m->nodes[node_of(m, "head")];
    const char *xname = m->values[hd->in[0]].name;
    pare_captured cx;
    float *logits = NULL;
    int64_t rows = 0;
    if (pare_capture(m, d, 0, N, 16, &xname, 1, &cx) != PARE_OK || pare_predict_logits(m, d, 16, &logits, &rows) != PARE_OK) {
        ok(0, "capture the head's input and the logits: %s", pare_errmsg());
        return;
    }
    double exact = 0;
    for (int b = 0; b < N; b++) {
        const float *z = logits + b * 3;
        double mx = fmax(z[0], fmax(z[1], z[2])), e[3], s = 0, xx = 0;
        for (int c = 0; c < 3; c++) e[c] = exp(z[c] - mx), s += e[c];
        for (int64_t j = 0; j < cx.cols; j++) xx += (double)cx.data[b * cx.cols + j] * cx.data[b * cx.cols + j];
        for (int c = 0; c < 3; c++) exact += (e[c] / s) * (1 - e[c] / s) * xx;
    }
    exact /= N;
    pare_free(cx.data), pare_free(logits);
    pare_hessian_result r;
    pare_hessian_spec sp = {.layers = "head", .samples = 400, .n = N, .batch = 16, .eps = 1e-2, .seed = 3};
    if (pare_hessian_trace(m, d, &sp, &r) != PARE_OK) {
        ok(0, "hessian trace of the head: %s", pare_errmsg());
        return;
    }
    diag("head: Hutchinson %.6g ± %.3g (400 samples), closed form %.6g", r.trace[0], r.stderr_[0], exact);
    ok(r.n == 1 && !strcmp(r.name[0], "head") && r.numel[0] == 3 * cx.cols, "one layer, the head, with its %lld weights",
       (long long)(3 * cx.cols));
    ok(fabs(r.trace[0] - exact) <= 4 * r.stderr_[0] + 0.005 * exact,
       "the head's trace matches the closed form mean Σ p(1−p)‖x‖² within 4 standard errors");
    ok(r.stderr_[0] < 0.1 * exact, "and the estimate is tight enough for that to mean something (stderr %.3g of %.4g)",
       r.stderr_[0], exact);
    pare_hessian_result_free(&r);
}

static void all_layers_test(const pare_model *m, const pare_dataset *d)
{
    pare_hessian_result a, b;
    pare_hessian_spec sp = {.layers = "*", .samples = 8, .n = 32, .batch = 16, .eps = 1e-2, .seed = 5};
    int st = pare_hessian_trace(m, d, &sp, &a) == PARE_OK && pare_hessian_trace(m, d, &sp, &b) == PARE_OK;
    int linears = 0;
    for (int64_t i = 0; i < m->nnodes; i++) linears += m->nodes[i].op == PARE_OP_LINEAR;
    ok(st && a.n == linears, "every Linear gets a trace (%lld of %d)", (long long)(st ? a.n : -1), linears);
    int same = st, finite = st;
    for (int64_t i = 0; st && i < a.n; i++) same &= a.trace[i] == b.trace[i], finite &= isfinite(a.trace[i]);
    ok(same && finite, "finite, and the same seed gives the same estimates bit for bit");
    if (st) pare_hessian_result_free(&a), pare_hessian_result_free(&b);
}

static void error_tests(pare_model *m, const pare_dataset *d)
{
    pare_hessian_result r;
    pare_hessian_spec sp = {.layers = "enc.9.*", .samples = 2, .n = 16, .batch = 16, .eps = 1e-2, .seed = 1};
    ok(pare_hessian_trace(m, d, &sp, &r) == PARE_EINVAL && strstr(pare_errmsg(), "matches no Linear") &&
       strstr(pare_errmsg(), "enc.0.attn.qkv"), "a pattern matching nothing names the Linears: %s", pare_errmsg());
    sp.layers = "*", sp.eps = 0;
    ok(pare_hessian_trace(m, d, &sp, &r) == PARE_EINVAL && strstr(pare_errmsg(), "eps"), "eps 0 is refused: %s", pare_errmsg());
    sp.eps = 1e-2, sp.samples = 0;
    ok(pare_hessian_trace(m, d, &sp, &r) == PARE_EINVAL && strstr(pare_errmsg(), "samples"), "0 samples are refused");
}

int main(void)
{
    tap_plan_lazy();
    static int32_t tok[N * T], len[N], lab[N];
    pare_rng r;
    pare_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        len[i] = 3 + i % 5;
        lab[i] = (int32_t)pare_rng_below(&r, 3);
        for (int t = 0; t < T; t++) tok[i * T + t] = t < len[i] ? 1 + (int32_t)pare_rng_below(&r, V - 1) : 0;
    }
    pare_dataset d = {.name = "hessian/test", .kind = PARE_TASK_CLASSIFY, .n = N, .T = T, .vocab = V, .nclass = 3,
                      .tokens = tok, .lengths = len, .labels = lab};
    pare_model *m = tiny_encoder(T, 16, 32);
    if (!m) return tap_done();
    vhv_tests(m, &d);
    head_trace_test(m, &d);
    all_layers_test(m, &d);
    error_tests(m, &d);
    pare_model_free(m);
    return tap_done();
}
