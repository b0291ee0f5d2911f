/* test_head_lrp.c — LRP head relevance (compress/prune/head_lrp.c, Voita et al. 2019 §4.2): the ε-rules of
 * lrp.h conserve relevance up to the biases and ε (each rule against the sum it must keep), the scores of a
 * 1-layer encoder against an independent numpy implementation (tests/lrp_ref.py: its own forward, whose
 * logits must match pare's, and the rules written from explicit contributions z_ij), a head made important
 * by scaling its output projection ranks first, a mask is folded like the baked weights, normalisation,
 * and the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/pass.h"
#include "compress/prune/heads.h"
#include "compress/prune/lrp.h"
#include "core/arena.h"
#include "core/rng.h"
#include "graph/ops.h"
#include "graph/transform.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "train/train.h"

enum { N = 4, T = 6, V = 11 };

static pare_model *build(int layers, int H, int C, const char *pool, uint64_t seed)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, V, NULL},      {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, C, NULL},         {"heads", PARE_KV_NUM, H, NULL},      {"layers", PARE_KV_NUM, layers, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"ffn", PARE_KV_NUM, 24, NULL},       {"seed", PARE_KV_NUM, (double)seed, NULL},
        {"dropout", PARE_KV_NUM, 0.1, NULL}, {"pool", PARE_KV_STR, 0, pool},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 11) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, seed + 7, 0.3);
    return m;
}

static double urand(pare_rng *r) { return 2 * pare_rng_uniform(r) - 1; }

/* ---- the rules conserve relevance ---- */
static void rule_tests(void)
{
    enum { M = 3, K = 7, NO = 5 };
    pare_rng r;
    pare_rng_seed(&r, 1);
    float x[M * K], W[NO * K], b[NO], z[M * NO], zb0[M * NO];
    double Rz[M * NO], Rx[M * K] = {0}, Rx0[M * K] = {0};
    for (int i = 0; i < M * K; i++) x[i] = (float)urand(&r);
    for (int i = 0; i < NO * K; i++) W[i] = (float)urand(&r);
    for (int j = 0; j < NO; j++) b[j] = (float)(0.3 * urand(&r));
    for (int i = 0; i < M * NO; i++) Rz[i] = urand(&r);
    for (int t = 0; t < M; t++)
        for (int j = 0; j < NO; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)x[t * K + k] * W[j * K + k];
            zb0[t * NO + j] = (float)s, z[t * NO + j] = (float)(s + b[j]);
        }
    const double eps = 1e-3;
    pare_lrp_linear(Rx, Rz, x, W, z, M, NO, K, eps);
    double sin = 0, want = 0, sout = 0;
    for (int i = 0; i < M * K; i++) sin += Rx[i];
    for (int t = 0; t < M; t++)
        for (int j = 0; j < NO; j++) sout += Rz[t * NO + j], want += (z[t * NO + j] - b[j]) / pare_lrp_stab(z[t * NO + j], eps) * Rz[t * NO + j];
    is_close(sin, want, 1e-5, 1e-5, "linear: sum of input relevance = sum_j (z_j - b_j)/(z_j + eps sign z_j) R_j");
    pare_lrp_linear(Rx0, Rz, x, W, zb0, M, NO, K, 1e-12);
    sin = 0;
    for (int i = 0; i < M * K; i++) sin += Rx0[i];
    is_close(sin, sout, 1e-5, 1e-5, "linear without bias, eps -> 0: relevance is conserved exactly");
    ok(fabs(want - sout) > 1e-3, "(the bias and eps do change the sum: %.4g vs %.4g)", want, sout);
    /* a reference loop from the contributions z_ij = w_ji x_i */
    double worst = 0;
    for (int t = 0; t < M; t++)
        for (int i = 0; i < K; i++) {
            double ref = 0;
            for (int j = 0; j < NO; j++)
                ref += (double)W[j * K + i] * x[t * K + i] / pare_lrp_stab(z[t * NO + j], eps) * Rz[t * NO + j];
            worst = fmax(worst, fabs(ref - Rx[t * K + i]));
        }
    ok(worst < 1e-12, "linear: R_i = sum_j w_ji x_i / stab(z_j) R_j element by element (max |diff| %.2g)", worst);

    /* LayerNorm */
    float g[K], beta[K], y[M * K];
    double Ry[M * K], Rl[M * K] = {0};
    for (int i = 0; i < K; i++) g[i] = (float)(1 + 0.5 * urand(&r)), beta[i] = (float)(0.2 * urand(&r));
    for (int t = 0; t < M; t++) {
        double mu = 0, var = 0;
        for (int i = 0; i < K; i++) mu += x[t * K + i];
        mu /= K;
        for (int i = 0; i < K; i++) var += (x[t * K + i] - mu) * (x[t * K + i] - mu);
        double rs = 1 / sqrt(var / K + 1e-5);
        for (int i = 0; i < K; i++) y[t * K + i] = (float)((x[t * K + i] - mu) * rs * g[i] + beta[i]);
    }
    for (int i = 0; i < M * K; i++) Ry[i] = urand(&r);
    pare_lrp_layernorm(Rl, Ry, x, y, g, M, K, 1e-5, eps);
    sin = 0, want = 0;
    for (int i = 0; i < M * K; i++) sin += Rl[i], want += (y[i] - beta[i % K]) / pare_lrp_stab(y[i], eps) * Ry[i];
    is_close(sin, want, 1e-5, 1e-5, "layernorm: sum of input relevance = sum_j (y_j - beta_j)/stab(y_j) R_j");

    /* a sum */
    double Ra[M * K] = {0}, Rb[M * K] = {0};
    float s2[M * K];
    for (int i = 0; i < M * K; i++) s2[i] = x[i] + y[i];
    pare_lrp_add(Ra, Rb, Ry, x, y, s2, M * K, eps);
    worst = 0;
    for (int i = 0; i < M * K; i++)
        worst = fmax(worst, fabs(Ra[i] + Rb[i] - ((double)x[i] + y[i]) / pare_lrp_stab(s2[i], eps) * Ry[i]));
    ok(worst < 1e-12, "add: R_a + R_b = (a + b)/stab(z) R elementwise (max |diff| %.2g)", worst);

    /* attention, one head pair: out = P v per head, P rows summing to 1 */
    enum { H = 2, D = 3, Tq = 4 };
    float P[H * Tq * Tq], v[Tq * H * D], out[Tq * H * D];
    double Ro[Tq * H * D], Rv[Tq * H * D] = {0};
    for (int h = 0; h < H; h++)
        for (int t = 0; t < Tq; t++) {
            double sum = 0;
            for (int k = 0; k < Tq; k++) sum += P[(h * Tq + t) * Tq + k] = (float)pare_rng_uniform(&r);
            for (int k = 0; k < Tq; k++) P[(h * Tq + t) * Tq + k] /= (float)sum;
        }
    for (int i = 0; i < Tq * H * D; i++) v[i] = (float)urand(&r), Ro[i] = urand(&r);
    for (int t = 0; t < Tq; t++)
        for (int c = 0; c < H * D; c++) {
            double o = 0;
            for (int k = 0; k < Tq; k++) o += (double)P[((c / D) * Tq + t) * Tq + k] * v[k * H * D + c];
            out[t * H * D + c] = (float)o;
        }
    pare_lrp_attention(Rv, Ro, P, v, H * D, out, H, Tq, Tq, D, 1e-12);
    sin = 0, sout = 0;
    for (int i = 0; i < Tq * H * D; i++) sin += Rv[i], sout += Ro[i];
    is_close(sin, sout, 1e-5, 1e-5, "attention: relevance at the values = relevance at the output (P held constant)");
}

/* ---- against numpy ---- */
static int has_numpy(void) { return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

static void dump(FILE *f, const pare_model *m, const pare_dataset *d, double eps)
{
    fprintf(f, "eps %.17g\ninputs %d %d %d\n", eps, m->tokens, m->lengths, m->logits);
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        fprintf(f, "node %s %s %d %d", pare_op_name(n->op), n->name, n->out, n->nin);
        for (int k = 0; k < n->nin; k++) fprintf(f, " %d", n->in[k]);
        fprintf(f, " %d", n->nparam);
        for (int k = 0; k < n->nparam; k++) fprintf(f, " %s", n->param[k] >= 0 ? m->params[n->param[k]].name : "-");
        fprintf(f, " heads=%d causal=%d pool=%d eps=%.9g gelu_erf=%d pos_offset=%d scale=%.9g\n", n->a.heads, n->a.causal,
                (int)n->a.pool, n->a.eps, n->a.gelu_erf, n->a.pos_offset, n->a.scale);
    }
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        int64_t rows = p->ndim == 2 ? p->shape[0] : 1, cols = p->ndim == 2 ? p->shape[1] : p->shape[0];
        fprintf(f, "param %s %lld %lld\n", p->name, (long long)rows, (long long)cols);
        for (int64_t k = 0; k < rows * cols; k++) fprintf(f, "%s%.9g", k ? " " : "", p->blob->data[k]);
        fputc('\n', f);
    }
    for (int64_t e = 0; e < d->n; e++) {
        fprintf(f, "example %d %d", (int)d->T, d->lengths[e]);
        for (int64_t t = 0; t < d->T; t++) fprintf(f, " %d", d->tokens[e * d->T + t]);
        fputc('\n', f);
    }
}

static void numpy_tests(const pare_dataset *d)
{
    if (!has_numpy()) {
        printf("ok %d # skip needs Debian's python3-numpy (/usr/bin/python3)\n", ++tap_n);
        return;
    }
    enum { H = 4, C = 16, L1 = 1 };
    pare_model *m = build(L1, H, C, "mean", 21);
    if (!ok(m != NULL, "a 1-layer, 4-head encoder (mean pooling)")) return;
    const double eps = 1e-4;
    char path[] = "/tmp/pare_lrp_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f) dump(f, m, d, eps), fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/lrp_ref.py %s", path);
    FILE *p = popen(cmd, "r");
    double lg[N * 3], ref[H];
    int got = 0;
    for (int i = 0; p && i < N * 3; i++) got += fscanf(p, "%lf", &lg[i]) == 1;
    for (int i = 0; p && i < H; i++) got += fscanf(p, "%lf", &ref[i]) == 1;
    if (p) pclose(p);
    unlink(path);
    if (!ok(got == N * 3 + H, "lrp_ref.py answered (%d of %d numbers)", got, N * 3 + H)) return pare_model_free(m);
    float *logits = NULL;
    int64_t rows = 0;
    pare_status st = pare_predict_logits(m, d, 2, &logits, &rows);
    double worst = 0;
    for (int i = 0; st == PARE_OK && i < N * 3; i++) worst = fmax(worst, fabs(logits[i] - lg[i]));
    ok(st == PARE_OK && worst < 1e-4, "the reference's own forward gives pare's logits (max |diff| %.2g)", worst);
    pare_free(logits);
    pare_head_scores s;
    st = pare_head_relevance(m, d, 0, N, 3, eps, 0, &s);
    if (!ok(st == PARE_OK && s.n == 1 && s.heads[0] == H, "relevance of %d heads", H)) return diag("%s", pare_errmsg()), pare_model_free(m);
    double top = 0;
    worst = 0;
    for (int h = 0; h < H; h++) worst = fmax(worst, fabs(s.score[h] - ref[h])), top = fmax(top, fabs(ref[h]));
    ok(worst <= 1e-5 * top + 1e-7 && top > 0, "head relevance == numpy's (max |diff| %.2g of max %.3g)", worst, top);
    diag("pare %.6g %.6g %.6g %.6g, numpy %.6g %.6g %.6g %.6g", s.score[0], s.score[1], s.score[2], s.score[3], ref[0], ref[1],
         ref[2], ref[3]);
    int distinct = 0;
    for (int h = 1; h < H; h++) distinct += fabs(s.score[h] - s.score[0]) > 1e-3 * top;
    ok(distinct > 0, "the heads' relevances differ (the check is not of a constant)");
    pare_head_scores_free(&s);
    pare_model_free(m);
}

static void model_tests(const pare_dataset *d)
{
    enum { H = 4, C = 16, L2 = 2 };
    pare_model *m = build(L2, H, C, "cls", 5);
    if (!ok(m != NULL, "a 2-layer, 4-head encoder (CLS pooling)")) return;
    pare_head_scores s;
    pare_status st = pare_head_relevance(m, d, 0, N, 2, 1e-6, 1, &s);
    if (!ok(st == PARE_OK && s.n == L2, "scores for %d layers", L2)) return diag("%s", pare_errmsg()), pare_model_free(m);
    pare_head_scores raw;
    int normed = pare_head_relevance(m, d, 0, N, 2, 1e-6, 0, &raw) == PARE_OK, positive = 0;
    for (int l = 0; normed && l < L2; l++) {
        double sum = 0, asum = 0, tot = 0;
        for (int h = 0; h < H; h++) sum += raw.score[l * H + h], asum += fabs(raw.score[l * H + h]);
        positive += sum > 0;
        for (int h = 0; h < H; h++) {
            double want = raw.score[l * H + h] / (sum > 0 ? sum : asum);
            normed = normed && fabs(s.score[l * H + h] - want) < 1e-12;
            tot += s.score[l * H + h];
        }
        diag("layer %d: normalised scores sum to %.6f (raw sum %.4g)", l, tot, sum);
    }
    if (normed) pare_head_scores_free(&raw);
    ok(normed && positive > 0, "normalize: a layer's scores / their sum (sum 1; by the sum of magnitudes where the "
       "sum is not positive; %d of %d layers positive)", positive, L2);
    ok(s.node[0] == pare_model_find_node(m, "enc.0.attn") && s.node[1] == pare_model_find_node(m, "enc.1.attn"),
       "layers in node order, named by their attention nodes");
    int low = 0;
    for (int h = 1; h < H; h++)
        if (s.score[H + h] < s.score[H + low]) low = h;
    pare_head_scores_free(&s);

    /* the least relevant head of layer 1, its output projection's columns scaled up, ranks first */
    pare_model *c = pare_model_clone(m);
    pare_param *w = &c->params[pare_model_find_param(c, "enc.1.attn.out.weight")];
    pare_param_make_private(w);
    int64_t K = w->shape[1], D = K / H;
    for (int64_t r = 0; r < w->shape[0]; r++)
        for (int64_t k = low * D; k < (low + 1) * D; k++) w->blob->data[r * K + k] *= 8.0f;
    st = pare_head_relevance(c, d, 0, N, 4, 1e-6, 1, &s);
    int best = 0;
    for (int h = 1; st == PARE_OK && h < H; h++)
        if (s.score[H + h] > s.score[H + best]) best = h;
    ok(st == PARE_OK && best == low, "head %d of enc.1 (least relevant) scaled x8 at the output ranks first (%.3f)", low,
       st == PARE_OK ? s.score[H + low] : 0.0);
    if (st == PARE_OK) pare_head_scores_free(&s);
    pare_model_free(c);

    /* a masked model scores as its baked copy */
    c = pare_model_clone(m);
    pare_model *b = NULL;
    int64_t up = pare_model_find_param(c, "enc.0.ffn.up.weight");
    int64_t rows = c->params[up].shape[0], cols = c->params[up].shape[1];
    float *mask = malloc((size_t)(rows * cols) * sizeof *mask);
    for (int64_t i = 0; i < rows * cols; i++) mask[i] = (float)(i % 3 != 0);
    st = pare_model_set_mask(c, "enc.0.ffn.up", mask, rows, cols);
    free(mask);
    if (st == PARE_OK) b = pare_model_clone(c);
    if (b) st = pare_model_bake_mask(b, "enc.0.ffn.up");
    pare_head_scores sm, sb;
    int same = st == PARE_OK && b && pare_head_relevance(c, d, 0, N, 4, 1e-6, 0, &sm) == PARE_OK;
    same = same && pare_head_relevance(b, d, 0, N, 4, 1e-6, 0, &sb) == PARE_OK;
    double worst = 0, diff_from_dense = 0;
    if (same) {
        pare_head_scores sd;
        if (pare_head_relevance(m, d, 0, N, 4, 1e-6, 0, &sd) == PARE_OK) {
            for (int k = 0; k < L2 * H; k++) diff_from_dense = fmax(diff_from_dense, fabs(sd.score[k] - sm.score[k]));
            pare_head_scores_free(&sd);
        }
        for (int k = 0; k < L2 * H; k++) worst = fmax(worst, fabs(sm.score[k] - sb.score[k]));
        pare_head_scores_free(&sm), pare_head_scores_free(&sb);
    }
    ok(same && worst < 1e-9 && diff_from_dense > 1e-6, "a mask is folded: masked == baked (max |diff| %.2g; vs dense %.2g)",
       worst, diff_from_dense);
    pare_model_free(b);
    pare_model_free(c);

    /* errors */
    st = pare_head_relevance(m, d, 2, N, 1, 1e-6, 1, &s);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "outside lrp/test"), "a range outside the data is named: %s", pare_errmsg());
    st = pare_head_relevance(m, d, 0, N, 1, -1, 1, &s);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "eps"), "a negative eps is refused: %s", pare_errmsg());
    pare_model *q = NULL;
    pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
    if (pare_apply(&q, m, "dynamic_int8", kv, 1) == PARE_OK) {
        st = pare_head_relevance(q, d, 0, N, 1, 1e-6, 1, &s);
        ok(st == PARE_EINVAL && strstr(pare_errmsg(), "int8"), "a quantized model is refused, naming the format: %s",
           pare_errmsg());
        pare_model_free(q);
    } else {
        ok(0, "dynamic_int8: %s", pare_errmsg());
    }
    pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    rule_tests();
    static int32_t tok[N * T], len[N], lab[N];
    pare_rng r;
    pare_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        len[i] = 3 + i % 4;
        lab[i] = (int32_t)pare_rng_below(&r, 3);
        for (int t = 0; t < T; t++) tok[i * T + t] = t < len[i] ? 1 + (int32_t)pare_rng_below(&r, V - 1) : 0;
    }
    pare_dataset d = {.name = "lrp/test", .kind = PARE_TASK_CLASSIFY, .n = N, .T = T, .vocab = V, .nclass = 3,
                      .tokens = tok, .lengths = len, .labels = lab};
    numpy_tests(&d);
    model_tests(&d);
    return tap_done();
}
