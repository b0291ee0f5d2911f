/* test_prune_struct.c — structured pruning (compress/prune/structured.h, prune_struct.c): FFN neuron
 * importance against central differences of a gated copy (neuron j's down-projection column scaled by
 * 1 ± ε, each example's loss at inference) and against plain row norms; the prune_neurons / prune_heads
 * passes against the dense model with the removed neurons' / heads' output columns zeroed (the same
 * function); layer importance against the loss of the dense model with the layer's residual branches
 * zeroed (pre-LN: the layer is then the identity); prune_layers removing the argmin; errors; a pruned
 * model saves and loads with identical logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/pass.h"
#include "compress/prune/heads.h"
#include "compress/prune/structured.h"
#include "core/arena.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "graph/rewrite.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "train/train.h"

enum { N = 6, T = 8, L = 3, H = 4, C = 16, F = 24 };

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, C, NULL},         {"heads", PARE_KV_NUM, H, NULL},  {"layers", PARE_KV_NUM, L, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"ffn", PARE_KV_NUM, F, NULL},    {"seed", PARE_KV_NUM, 7, NULL},
        {"dropout", PARE_KV_NUM, 0.2, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 10) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 13, 0.3); /* weights larger than the 0.02 init, so that neurons and layers differ clearly */
    return m;
}

static int32_t tok[N * T], len[N], lab[N];
static pare_dataset D;

static pare_dataset view(int64_t i)
{
    pare_dataset v = D;
    v.n = 1, v.tokens = D.tokens + i * T, v.lengths = D.lengths + i, v.labels = D.labels + i;
    return v;
}

static double loss_of(pare_model *m, const pare_dataset *d)
{
    pare_eval_result e;
    if (pare_evaluate(m, d, d->n, &e) != PARE_OK) return diag("evaluate: %s", pare_errmsg()), NAN;
    return e.loss;
}

/* Scale columns [c0, c1) of parameter `name` (N, K) of a private copy by g. */
static void scale_cols(pare_model *c, const char *name, int64_t c0, int64_t c1, double g)
{
    pare_param *w = &c->params[pare_model_find_param(c, name)];
    pare_param_make_private(w);
    int64_t K = w->shape[1];
    for (int64_t r = 0; r < w->shape[0]; r++)
        for (int64_t k = c0; k < c1; k++) w->blob->data[r * K + k] *= (float)g;
}

static double gated_loss(const pare_model *m, int64_t i, int l, int64_t j, double g)
{
    pare_model *c = pare_model_clone(m);
    char name[64];
    snprintf(name, sizeof name, "enc.%d.ffn.down.weight", l);
    scale_cols(c, name, j, j + 1, g);
    pare_dataset v = view(i);
    double e = loss_of(c, &v);
    pare_model_free(c);
    return e;
}

static float *logits(pare_model *m)
{
    float *y = NULL;
    int64_t rows;
    if (pare_predict_logits(m, &D, N, &y, &rows) != PARE_OK) diag("predict: %s", pare_errmsg());
    return y;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

/* Is row r of (R, K) a equal to some row of b (Rb, K)? Returns its index, -1 if none. */
static int64_t find_row(const float *a, int64_t r, const float *b, int64_t Rb, int64_t K)
{
    for (int64_t q = 0; q < Rb; q++)
        if (!memcmp(a + r * K, b + q * K, sizeof(float) * (size_t)K)) return q;
    return -1;
}

static const pare_param *param(const pare_model *m, const char *name)
{
    int64_t i = pare_model_find_param(m, name);
    return i >= 0 ? &m->params[i] : NULL;
}

int main(void)
{
    tap_plan_lazy();
    pare_model *m = build();
    if (!ok(m != NULL, "a 3-layer encoder, 4 heads, FFN 24, dropout 0.2")) return tap_done();
    pare_rng r;
    pare_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        len[i] = 3 + i % 5;
        lab[i] = (int32_t)pare_rng_below(&r, 3);
        for (int t = 0; t < T; t++) tok[i * T + t] = t < len[i] ? 1 + (int32_t)pare_rng_below(&r, 12) : 0;
    }
    D = (pare_dataset){.name = "struct/test", .kind = PARE_TASK_CLASSIFY, .n = N, .T = T, .vocab = 13, .nclass = 3,
                       .tokens = tok, .lengths = len, .labels = lab};

    /* ---- neuron importance: Taylor against central differences of the gated loss ---- */
    pare_neuron_scores s;
    pare_status st = pare_neuron_importance(m, "*.ffn.up", PARE_NEURON_TAYLOR, &D, 0, N, 1, &s);
    if (!ok(st == PARE_OK && s.n == L && s.width[0] == F, "taylor scores for %d layers of %d neurons", L, F))
        return diag("%s", pare_errmsg()), tap_done();
    ok(s.node[1] == pare_model_find_node(m, "enc.1.ffn.up") && s.down[1] == pare_model_find_node(m, "enc.1.ffn.down"),
       "layers in node order; the down projection found through the activation and dropout");
    const double eps = 1e-2;
    double worst = 0, top = 0;
    int distinct = 0;
    for (int l = 0; l < L; l++)
        for (int64_t j = l; j < F; j += 4) { /* a quarter of the neurons of each layer, to stay fast */
            double a = 0;
            for (int i = 0; i < N; i++)
                a += fabs((gated_loss(m, i, l, j, 1 + eps) - gated_loss(m, i, l, j, 1 - eps)) / (2 * eps));
            a /= N;
            top = fmax(top, a);
            worst = fmax(worst, fabs(s.score[l][j] - a));
        }
    for (int l = 0; l < L; l++)
        for (int64_t j = 0; j < F; j++) distinct += fabs(s.score[l][j] - s.score[0][0]) > 1e-3;
    ok(worst <= 2e-3 * top && top > 0, "I_j = mean |dL/dxi_j| matches central differences on gated copies: max |diff| "
       "%.2g of max score %.3g", worst, top);
    ok(distinct > 10, "the neurons' scores differ (%d of %d differ from the first)", distinct, L * F);
    pare_neuron_scores_free(&s);

    /* magnitude against row norms computed here */
    st = pare_neuron_importance(m, "enc.2.ffn.up", PARE_NEURON_MAGNITUDE, NULL, 0, 0, 1, &s);
    worst = 0;
    const pare_param *up2 = param(m, "enc.2.ffn.up.weight");
    for (int64_t j = 0; st == PARE_OK && j < F; j++) {
        double n2 = 0;
        for (int64_t k = 0; k < C; k++) n2 += (double)up2->blob->data[j * C + k] * up2->blob->data[j * C + k];
        worst = fmax(worst, fabs(s.score[0][j] - sqrt(n2)));
    }
    ok(st == PARE_OK && s.n == 1 && worst < 1e-9, "magnitude = L2 norm of the up row (one layer selected; max |diff| %.2g)", worst);
    pare_neuron_scores_free(&s);

    /* ---- prune_neurons: removed physically == zeroed in the dense model ---- */
    pare_model *p = NULL;
    pare_kv kvn[] = {{"level", PARE_KV_NUM, 0.5, NULL}};
    st = pare_apply(&p, m, "prune_neurons", kvn, 1);
    if (!ok(st == PARE_OK, "prune_neurons level=0.5 (magnitude)")) return diag("%s", pare_errmsg()), tap_done();
    pare_model *z = pare_model_clone(m);
    int widths_ok = 1, rows_ok = 1;
    for (int l = 0; l < L; l++) {
        char nu[64], nd[64];
        snprintf(nu, sizeof nu, "enc.%d.ffn.up.weight", l), snprintf(nd, sizeof nd, "enc.%d.ffn.down.weight", l);
        const pare_param *wu = param(m, nu), *pu = param(p, nu);
        widths_ok &= pu->shape[0] == F / 2 && param(p, nd)->shape[1] == F / 2;
        /* the kept rows are the F/2 largest norms, in their original order */
        double norm[F];
        for (int64_t j = 0; j < F; j++) {
            double n2 = 0;
            for (int64_t k = 0; k < C; k++) n2 += (double)wu->blob->data[j * C + k] * wu->blob->data[j * C + k];
            norm[j] = n2;
        }
        int64_t prev = -1;
        for (int64_t q = 0; q < pu->shape[0]; q++) {
            int64_t j = find_row(pu->blob->data, q, wu->blob->data, F, C);
            int rank = 0; /* how many rows are strictly larger */
            for (int64_t t = 0; j >= 0 && t < F; t++) rank += norm[t] > norm[j];
            rows_ok &= j > prev && rank < F / 2;
            prev = j;
        }
        /* zero the dropped neurons' down columns in the dense copy */
        for (int64_t j = 0; j < F; j++) {
            int kept = 0;
            for (int64_t q = 0; q < pu->shape[0]; q++) kept |= find_row(pu->blob->data, q, wu->blob->data, F, C) == j;
            if (!kept) scale_cols(z, nd, j, j + 1, 0.0);
        }
    }
    ok(widths_ok, "every layer keeps F/2 = %d neurons (up rows and down columns)", F / 2);
    ok(rows_ok, "the kept up rows are the largest-norm ones, in order");
    float *yp = logits(p), *yz = logits(z), *y0 = logits(m);
    double dpz = yp && yz ? max_diff(yp, yz, N * 3) : 1, dp0 = yp && y0 ? max_diff(yp, y0, N * 3) : 0;
    ok(dpz < 1e-5 && dp0 > 1e-3, "pruned logits equal the dense model's with those neurons zeroed (max |diff| %.2g; "
       "vs unpruned %.2g)", dpz, dp0);
    ok(!strcmp(p->applied, "prune_neurons"), "the model records the pass: '%s'", p->applied);

    /* saves and loads with identical logits */
    char path[64];
    snprintf(path, sizeof path, "/tmp/pare_struct_%d.safetensors", (int)getpid());
    pare_model *back = NULL;
    st = pare_model_save(p, path);
    if (st == PARE_OK) st = pare_model_load(&back, path);
    float *yb = st == PARE_OK ? logits(back) : NULL;
    ok(st == PARE_OK && yb && yp && !memcmp(yb, yp, sizeof(float) * N * 3), "the pruned model saves and loads bit-identically%s%s",
       st ? ": " : "", st ? pare_errmsg() : "");
    unlink(path);
    pare_free(yb), pare_free(yz), pare_free(yp), pare_free(y0);
    pare_model_free(back), pare_model_free(z), pare_model_free(p);

    /* taylor through the pass: the dropped neurons are the lowest scores */
    pare_kv kvt[] = {{"level", PARE_KV_NUM, 0.25, NULL}, {"criterion", PARE_KV_STR, 0, "taylor"}, {"layers", PARE_KV_STR, 0, "enc.0.ffn.up"}};
    pare_pass_ctx ctx = {.calib = &D};
    st = pare_apply_ctx(&p, m, "prune_neurons", kvt, 3, &ctx);
    pare_neuron_scores_free(&s);
    pare_status st2 = pare_neuron_importance(m, "enc.0.ffn.up", PARE_NEURON_TAYLOR, &D, 0, N, 1, &s);
    int sel_ok = st == PARE_OK && st2 == PARE_OK && param(p, "enc.0.ffn.up.weight")->shape[0] == F - 6 &&
                 param(p, "enc.1.ffn.up.weight")->shape[0] == F;
    for (int64_t q = 0; sel_ok && q < F - 6; q++) {
        int64_t j = find_row(param(p, "enc.0.ffn.up.weight")->blob->data, q, param(m, "enc.0.ffn.up.weight")->blob->data, F, C);
        int below = 0;
        for (int64_t t = 0; t < F; t++) below += s.score[0][t] < s.score[0][j];
        sel_ok &= below >= 6; /* a kept neuron has at least the 6 dropped ones below it */
    }
    ok(sel_ok, "criterion=taylor drops the floor(0.25 F) = 6 lowest Taylor scores of the selected layer only");
    pare_neuron_scores_free(&s);
    pare_model_free(p);
    pare_kv kva[] = {{"level", PARE_KV_NUM, 0.3, NULL}, {"align", PARE_KV_NUM, 4, NULL}};
    st = pare_apply(&p, m, "prune_neurons", kva, 2);
    ok(st == PARE_OK && param(p, "enc.0.ffn.up.weight")->shape[0] == 20, "align=4: 24 - floor(7.2) = 17 kept rounds up to 20");
    pare_model_free(p);

    /* errors */
    kvt[1].str = "taylor";
    st = pare_apply(&p, m, "prune_neurons", kvt, 2);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "calib"), "taylor without data names calib: %s", pare_errmsg());
    pare_kv kvh[] = {{"layers", PARE_KV_STR, 0, "enc.0.attn.qkv"}};
    st = pare_apply(&p, m, "prune_neurons", kvh, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.attn.qkv") && strstr(pare_errmsg(), "down projection"),
       "a Linear that feeds no down projection is named: %s", pare_errmsg());
    pare_kv kvb[] = {{"level", PARE_KV_NUM, 1.5, NULL}};
    st = pare_apply(&p, m, "prune_neurons", kvb, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "level"), "level out of range is named: %s", pare_errmsg());

    /* ---- prune_heads: removed == the heads' output columns zeroed ---- */
    pare_kv kvhd[] = {{"level", PARE_KV_NUM, 0.5, NULL}};
    st = pare_apply(&p, m, "prune_heads", kvhd, 1);
    if (!ok(st == PARE_OK, "prune_heads level=0.5 (magnitude)")) return diag("%s", pare_errmsg()), tap_done();
    z = pare_model_clone(m);
    int heads_ok = 1;
    for (int l = 0; l < L; l++) {
        char na[32], no[64];
        snprintf(na, sizeof na, "enc.%d.attn", l), snprintf(no, sizeof no, "enc.%d.attn.out.weight", l);
        heads_ok &= p->nodes[pare_model_find_node(p, na)].a.heads == H / 2;
        const pare_param *wo = param(m, no);
        int64_t D4 = C / H;
        double hn[H];
        for (int h = 0; h < H; h++) {
            hn[h] = 0;
            for (int64_t rr = 0; rr < C; rr++)
                for (int64_t c = h * D4; c < (h + 1) * D4; c++) hn[h] += (double)wo->blob->data[rr * C + c] * wo->blob->data[rr * C + c];
        }
        for (int h = 0; h < H; h++) {
            int larger = 0;
            for (int g = 0; g < H; g++) larger += hn[g] > hn[h] || (hn[g] == hn[h] && g > h);
            if (larger >= H / 2) scale_cols(z, no, h * D4, (h + 1) * D4, 0.0); /* among the H/2 smallest */
        }
    }
    ok(heads_ok, "every layer keeps H/2 heads");
    yp = logits(p), yz = logits(z);
    dpz = yp && yz ? max_diff(yp, yz, N * 3) : 1;
    ok(dpz < 1e-5, "pruned logits equal the dense model's with the smallest-norm heads zeroed (max |diff| %.2g)", dpz);
    pare_free(yp), pare_free(yz), pare_model_free(z), pare_model_free(p);
    st = pare_apply_ctx(&p, m, "prune_heads", (pare_kv[]){{"criterion", PARE_KV_STR, 0, "taylor"}, {"level", PARE_KV_NUM, 0.25, NULL}},
                        2, &ctx);
    ok(st == PARE_OK && p->nodes[pare_model_find_node(p, "enc.2.attn")].a.heads == H - 1, "prune_heads criterion=taylor runs (%s)",
       st ? pare_errmsg() : "ok");
    pare_model_free(p);

    /* ---- layers: the loss increase on removal == the loss with the layer's branches zeroed ---- */
    pare_layer_scores ls;
    st = pare_layer_importance(m, &D, 0, N, 4, &ls);
    if (!ok(st == PARE_OK && ls.n == L && !strcmp(ls.prefix[2], "enc.2"), "layer scores for enc.0 .. enc.2"))
        return diag("%s", pare_errmsg()), tap_done();
    double base = loss_of(m, &D);
    worst = 0;
    int amin = 0;
    for (int l = 0; l < L; l++) {
        z = pare_model_clone(m);
        const char *parts[] = {"attn.out.weight", "attn.out.bias", "ffn.down.weight", "ffn.down.bias"};
        for (int k = 0; k < 4; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "enc.%d.%s", l, parts[k]);
            pare_param *w = &z->params[pare_model_find_param(z, nm)];
            pare_param_make_private(w);
            memset(w->blob->data, 0, sizeof(float) * (size_t)pare_param_numel(w));
        }
        worst = fmax(worst, fabs(ls.score[l] - (loss_of(z, &D) - base)));
        pare_model_free(z);
        if (ls.score[l] < ls.score[amin]) amin = l;
    }
    ok(worst < 1e-5 && fabs(ls.base - base) < 1e-6, "score = L(layer's branches zeroed) - L (pre-LN: the identity); max |diff| %.2g",
       worst);
    diag("layer scores %.4f %.4f %.4f", ls.score[0], ls.score[1], ls.score[2]);
    pare_kv kvl[] = {{"k", PARE_KV_NUM, 1, NULL}};
    st = pare_apply_ctx(&p, m, "prune_layers", kvl, 1, &ctx);
    char gone[32];
    snprintf(gone, sizeof gone, "enc.%d.attn", amin);
    int nattn = 0;
    for (int64_t i = 0; p && i < p->nnodes; i++) nattn += p->nodes[i].op == PARE_OP_ATTENTION;
    ok(st == PARE_OK && nattn == L - 1 && pare_model_find_node(p, gone) < 0 && p->L == L - 1,
       "prune_layers k=1 removes %s, the least important", gone);
    float *y1 = p ? logits(p) : NULL;
    pare_model *rm = pare_model_clone(m);
    char pat[32];
    snprintf(pat, sizeof pat, "enc.%d.*", amin);
    float *y2 = rm && pare_model_remove_nodes(rm, pat) == PARE_OK ? logits(rm) : NULL;
    ok(y1 && y2 && max_diff(y1, y2, N * 3) == 0, "... and equals m:remove of that layer");
    pare_free(y1), pare_free(y2), pare_model_free(rm), pare_model_free(p);
    pare_layer_scores_free(&ls);
    kvl[0].num = L;
    st = pare_apply_ctx(&p, m, "prune_layers", kvl, 1, &ctx);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "k=3"), "k = every layer is refused: %s", pare_errmsg());
    kvl[0].num = 1;
    st = pare_apply(&p, m, "prune_layers", kvl, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "calib"), "prune_layers without data names calib: %s", pare_errmsg());
    pare_model_free(m);
    return tap_done();
}
