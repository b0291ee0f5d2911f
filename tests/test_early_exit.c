/* test_early_exit.c — the executor's segments and shrinking batches (graph/exec.h: pare_exec_forward_nodes,
 * pare_exec_keep_examples) that FastBERT's early exit runs on (compress/distill/fastbert.h), and its
 * normalised entropy: a forward in two segments against the whole one, a batch shrunk between layers against
 * the full batch's rows of the kept examples, the executor reused at its full batch afterwards, a model with
 * inference dropout (values sharing memory), the errors, and the entropy against a plain reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/distill/fastbert.h"
#include "graph/exec.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

enum { B = 5, T = 9, K = 3 };
static int32_t tok[B * T], len[B] = {9, 4, 7, 1, 9}, lab[B] = {0, 1, 2, 1, 0};

static pare_model *build(const char *norm, double dropout)
{
    pare_kv kv[] = {
        {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, T, NULL}, {"d", PARE_KV_NUM, 16, NULL},
        {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, 3, NULL}, {"classes", PARE_KV_NUM, K, NULL},
        {"ffn", PARE_KV_NUM, 24, NULL},   {"seed", PARE_KV_NUM, 7, NULL},   {"norm", PARE_KV_STR, 0, norm},
        {"dropout", PARE_KV_NUM, dropout, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 10) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 11, 0.3);
    return m;
}

static void check_model(const char *norm, double dropout)
{
    pare_model *m = build(norm, dropout);
    if (!m) {
        ok(0, "%s: build", norm);
        return;
    }
    pare_exec *x = NULL;
    float full[B * K], seg[B * K];
    int okf = pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) == PARE_OK && pare_exec_bind(x, tok, len, lab) == PARE_OK &&
              pare_exec_forward(x) == PARE_OK;
    ok(okf, "%s: full forward (%s)", norm, okf ? "" : pare_errmsg());
    if (!okf) goto out;
    memcpy(full, pare_exec_logits(x), sizeof full);
    float loss = x->loss;
    int64_t mid = pare_model_find_node(m, "enc.1.attn.qkv"); /* the second layer starts around here */
    ok(mid > 0, "%s: a node inside the model", norm);
    /* two segments are the whole forward, bit for bit */
    pare_exec_bind(x, tok, len, lab);
    okf = pare_exec_forward_nodes(x, 0, mid) == PARE_OK && pare_exec_forward_nodes(x, mid, m->nnodes) == PARE_OK;
    ok(okf && !memcmp(pare_exec_logits(x), full, sizeof full) && x->loss == loss, "%s: [0, mid) + [mid, end) = forward",
       norm);
    /* shrink to examples 0, 2, 4 after the first layer (after a segment ending inside layer 1 too) */
    for (int at = 0; at < 2; at++) {
        int64_t cut = at ? mid + 2 : pare_model_find_node(m, "enc.1.ln1");
        if (!strcmp(norm, "post")) cut = at ? mid + 2 : mid; /* post-norm: enc.1 starts with its qkv */
        int64_t keep[3] = {0, 2, 4};
        x->B = B;
        pare_exec_bind(x, tok, len, lab);
        okf = pare_exec_forward_nodes(x, 0, cut) == PARE_OK && pare_exec_keep_examples(x, cut, keep, 3) == PARE_OK &&
              x->B == 3 && pare_exec_forward_nodes(x, cut, m->nnodes) == PARE_OK;
        ok(okf, "%s: shrink before node %lld and finish (%s)", norm, (long long)cut, okf ? "" : pare_errmsg());
        if (!okf) continue;
        for (int k = 0; k < 3; k++) memcpy(seg + k * K, full + keep[k] * K, sizeof(float) * K);
        is_close_arr(pare_exec_logits(x), seg, 3 * K, 1e-5, 1e-4, "the kept examples' logits are the full batch's rows");
    }
    /* the executor at its full batch again */
    x->B = B;
    pare_exec_bind(x, tok, len, lab);
    okf = pare_exec_forward(x) == PARE_OK;
    ok(okf && !memcmp(pare_exec_logits(x), full, sizeof full), "%s: reused at the full batch: the same logits", norm);
    /* errors */
    int64_t bad[2] = {2, 1}, one[1] = {7};
    pare_exec_bind(x, tok, len, lab);
    ok(pare_exec_keep_examples(x, mid, bad, 2) == PARE_EINVAL && strstr(pare_errmsg(), "not increasing"),
       "keep not increasing: refused (%s)", pare_errmsg());
    ok(pare_exec_keep_examples(x, mid, one, 1) == PARE_EINVAL && x->B == B, "keep outside the batch: refused");
    ok(pare_exec_keep_examples(x, mid, one, 0) == PARE_EINVAL, "keeping nothing: refused");
    ok(pare_exec_forward_nodes(x, 3, 1) == PARE_EINVAL && pare_exec_forward_nodes(x, 0, m->nnodes + 1) == PARE_EINVAL,
       "a node range outside the model: refused");
out:
    pare_exec_free(x);
    pare_model_free(m);
}

static void check_entropy(void)
{
    float u[4] = {0.3f, 0.3f, 0.3f, 0.3f}, sharp[3] = {200, 0, 0}, z[5];
    ok(fabs(pare_fastbert_entropy(u, 4) - 1) < 1e-12, "uniform: entropy 1");
    ok(pare_fastbert_entropy(sharp, 3) < 1e-12, "one certain class: entropy 0");
    pare_rng r;
    pare_rng_seed(&r, 3);
    double worst = 0;
    for (int t = 0; t < 50; t++) {
        for (int c = 0; c < 5; c++) z[c] = (float)(3 * pare_rng_normal(&r));
        double s = 0, h = 0;
        for (int c = 0; c < 5; c++) s += exp(z[c]);
        for (int c = 0; c < 5; c++) h -= exp(z[c]) / s * log(exp(z[c]) / s);
        worst = fmax(worst, fabs(pare_fastbert_entropy(z, 5) - h / log(5.0)));
    }
    ok(worst < 1e-9, "random logits: H(p)/log C as the plain formula (worst %.2g)", worst);
}

int main(void)
{
    tap_plan_lazy();
    for (int i = 0; i < B * T; i++) tok[i] = 1 + (i * 7) % 12;
    check_model("pre", 0);
    check_model("post", 0.1); /* inference dropout: its output shares its input's memory */
    check_entropy();
    return tap_done();
}
