/* test_backward_skip.c — backward skips the work that cannot reach a trainable parameter (graph/exec.h:
 * pare_exec_backward, need_grad, bwd_nodes, backward_all). Three freezings of one small encoder:
 *   - FastBERT's (compress/distill/fastbert.h): a frozen backbone and final head under trainable exits,
 *     pulled towards the final head by reverse-KL loss nodes inside the same graph;
 *   - the embeddings and the first layer frozen, the rest trained (fine-tuning the top layers);
 *   - every weight frozen but a learnt quantization scale of one Linear (a transform's auxiliary parameter).
 * For each: the trainable parameters' gradients are bit-identical to running every node's backward
 * (backward_all = 1, the behaviour before the skip); need_grad marks exactly the values expected from the
 * node names, worked out here independently; the count of nodes run is that of the marked nodes and below
 * the total; and the skipped nodes are really skipped: the gradient buffers of unmarked values, filled with
 * 1.0f before backward, keep their bits afterwards (no skipped node, and no running node, wrote into
 * them — the first trained node reads a frozen input and gets no gradient buffer for it). Then everything
 * trainable: nothing is skipped and the gradients are again the same bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/distill/fastbert.h"
#include "graph/exec.h"
#include "graph/ops.h"
#include "graph/transform.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

enum { B = 4, T = 8, K = 3 };
static int32_t tok[B * T], len[B] = {8, 3, 6, 1}, lab[B] = {0, 2, 1, 1};

static pare_model *build(const char *norm)
{
    pare_kv kv[] = {
        {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, T, NULL}, {"d", PARE_KV_NUM, 16, NULL},
        {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, 3, NULL}, {"classes", PARE_KV_NUM, K, NULL},
        {"ffn", PARE_KV_NUM, 24, NULL},   {"seed", PARE_KV_NUM, 7, NULL},   {"norm", PARE_KV_STR, 0, norm},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 9) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 11, 0.3);
    return m;
}

/* the trainable parameters' gradients after one forward + backward, concatenated (*n floats) */
static float *step(pare_model *m, pare_exec *x, int all, int64_t *n)
{
    x->backward_all = all;
    pare_model_zero_grad(m);
    if (pare_exec_bind(x, tok, len, lab) != PARE_OK || pare_exec_forward(x) != PARE_OK || pare_exec_backward(x) != PARE_OK) {
        diag("step failed: %s", pare_errmsg());
        return NULL;
    }
    *n = 0;
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].trainable) *n += pare_param_numel(&m->params[i]);
    float *g = malloc(sizeof(float) * (size_t)(*n ? *n : 1)), *p = g;
    for (int64_t i = 0; i < m->nparams; i++) {
        if (!m->params[i].trainable) continue;
        memcpy(p, m->params[i].grad, sizeof(float) * (size_t)pare_param_numel(&m->params[i]));
        p += pare_param_numel(&m->params[i]);
    }
    return g;
}

static int64_t grad_numel(const pare_exec *x, int64_t v) { return pare_exec_rows(x, &x->m->values[v]) * x->m->values[v].cols; }

/* 1.0f: adding any gradient term above 6e-8 changes its bits, as does zeroing or overwriting it (a NaN
 * would not do: NaN + x keeps the NaN's bits) */
static const uint32_t SENTINEL = 0x3f800000;

/* Check one freezing of m, where want[v] says which values should be marked (from names, by the caller). */
static void check(pare_model *m, const unsigned char *want, const char *what)
{
    pare_exec *x = NULL;
    if (!ok(pare_model_alloc_grads(m) == PARE_OK && pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK,
            "%s: training executor", what))
        return;
    int64_t na = 0, ns = 0, ran_all, nodes_bwd = 0, want_run = 0;
    float *ga = step(m, x, 1, &na);
    ran_all = x->bwd_nodes;
    /* the unmarked values' gradient buffers get the sentinel; a backward must leave them as they are */
    int64_t filled = 0;
    for (int64_t v = 0; v < m->nvalues; v++) {
        if (want[v] || !x->grad[v]) continue;
        uint32_t *g = (uint32_t *)x->grad[v];
        for (int64_t i = 0; i < grad_numel(x, v); i++) g[i] = SENTINEL;
        filled++;
    }
    float *gs = step(m, x, 0, &ns);
    for (int64_t i = 0; i < m->nnodes; i++)
        if (pare_op_get(m->nodes[i].op)->backward) nodes_bwd++, want_run += want[m->nodes[i].out];
    ok(ga && gs && na == ns && na > 0 && !memcmp(ga, gs, sizeof(float) * (size_t)na),
       "%s: the %lld gradient entries of the trainable parameters are bit-identical to every node's backward", what,
       (long long)na);
    int64_t bad = -1;
    for (int64_t v = 0; v < m->nvalues && bad < 0; v++)
        if (x->need_grad[v] != want[v]) bad = v;
    ok(bad < 0, "%s: need_grad marks exactly the values downstream of a trainable parameter%s%s", what,
       bad < 0 ? "" : "; first wrong: ", bad < 0 ? "" : m->values[bad].name);
    ok(ran_all == nodes_bwd && x->bwd_nodes == want_run && want_run < nodes_bwd,
       "%s: %lld of the %lld nodes with a backward ran (every one with backward_all)", what, (long long)x->bwd_nodes,
       (long long)nodes_bwd);
    int64_t touched = -1;
    for (int64_t v = 0; v < m->nvalues && touched < 0; v++) {
        if (want[v] || !x->grad[v]) continue;
        const uint32_t *g = (const uint32_t *)x->grad[v];
        for (int64_t i = 0; i < grad_numel(x, v); i++)
            if (g[i] != SENTINEL) {
                touched = v;
                break;
            }
    }
    ok(filled > 0 && touched < 0, "%s: the gradients of the %lld unmarked values are untouched (nothing skipped wrote them)%s%s",
       what, (long long)filled, touched < 0 ? "" : "; written: ", touched < 0 ? "" : m->values[touched].name);
    free(gs);
    /* a second backward marks and zeroes the same way */
    gs = step(m, x, 0, &ns);
    ok(gs && ns == na && !memcmp(ga, gs, sizeof(float) * (size_t)na), "%s: a second backward gives the same bits", what);
    free(ga), free(gs);
    pare_exec_free(x);
}

/* value v is the output or a cache of a node whose name starts with prefix */
static int producer_is(const pare_model *m, int64_t v, const char *prefix)
{
    int p = m->values[v].producer;
    return p >= 0 && !strncmp(m->nodes[p].name, prefix, strlen(prefix));
}

int main(void)
{
    tap_plan_lazy();
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)((i * 7 + 3) % 13);

    /* ---- FastBERT: trainable exits over a frozen backbone, reverse-KL terms to the final head ---- */
    pare_model *base = build("pre");
    if (!ok(base != NULL, "encoder builds")) return tap_done();
    pare_options eo;
    pare_kv ekv[] = {{"hidden", PARE_KV_NUM, 8, NULL}};
    pare_model *fb = NULL;
    ok(pare_opts_resolve(&eo, &pare_fastbert_exits_schema, ekv, 1) == PARE_OK && pare_fastbert_add_exits(&fb, base, &eo) == PARE_OK,
       "exits added");
    int64_t ex[8];
    int nex = 0;
    pare_fastbert_exits(fb, ex, 8, &nex, NULL);
    for (int e = 0; e < nex; e++) {
        char name[32];
        snprintf(name, sizeof name, "self.%d", e);
        pare_model_add_loss(fb, PARE_OP_KLDIV_REV, name, fb->nodes[ex[e]].out, fb->logits, 1.0f, 2.0f);
    }
    for (int64_t i = 0; i < fb->nparams; i++) fb->params[i].trainable = !strncmp(fb->params[i].name, "exit.", 5);
    unsigned char *want = calloc((size_t)fb->nvalues, 1);
    for (int64_t v = 0; v < fb->nvalues; v++) want[v] = producer_is(fb, v, "exit.") || producer_is(fb, v, "self.");
    check(fb, want, "frozen backbone, trainable exits");
    free(want);

    /* ---- the embeddings and layer 0 frozen, layers 1-2 and the head trained ---- */
    pare_model *top = pare_model_clone(base);
    for (int64_t i = 0; i < top->nparams; i++) {
        const char *nm = top->params[i].name;
        top->params[i].trainable = strncmp(nm, "emb.", 4) != 0 && strncmp(nm, "enc.0.", 6) != 0;
    }
    want = calloc((size_t)top->nvalues, 1);
    for (int64_t v = 0; v < top->nvalues; v++) /* from enc.1 on, everything a node produces is downstream */
        want[v] = top->values[v].producer >= pare_model_find_node(top, "enc.1.ln1");
    ok(pare_model_find_node(top, "enc.1.ln1") > 0, "the second layer's first node is enc.1.ln1");
    check(top, want, "embeddings and layer 0 frozen");
    free(want);

    /* ---- all weights frozen but a learnt quantization scale of enc.1.ffn.up (a transform's aux) ---- */
    pare_model *q = pare_model_clone(base);
    int node = pare_model_find_node(q, "enc.1.ffn.up");
    int64_t N = q->params[q->nodes[node].param[0]].shape[0], shape[2] = {N, 1};
    for (int64_t i = 0; i < q->nparams; i++) q->params[i].trainable = 0;
    int lw = pare_model_add_param(q, "enc.1.ffn.up.wscale", 1, shape, 1);
    for (int64_t i = 0; i < N; i++) q->params[lw].blob->data[i] = logf(0.02f);
    pare_transform tw = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_WEIGHT, .bits = 4, .learn = 1, .aux = {lw, -1}};
    ok(pare_node_attach(q, node, &tw) == PARE_OK, "an LSQ fake quantization on enc.1.ffn.up");
    want = calloc((size_t)q->nvalues, 1);
    for (int64_t v = 0; v < q->nvalues; v++) want[v] = q->values[v].producer >= node;
    check(q, want, "only a quantization scale trained");
    free(want);

    /* ---- everything trainable: nothing to skip ---- */
    pare_model *all = pare_model_clone(base);
    pare_exec *x = NULL;
    int64_t na = 0, ns = 0;
    if (ok(pare_model_alloc_grads(all) == PARE_OK && pare_exec_new(&x, all, B, T, PARE_EXEC_TRAIN) == PARE_OK, "all trainable")) {
        float *ga = step(all, x, 1, &na);
        int64_t ran = x->bwd_nodes;
        float *gs = step(all, x, 0, &ns);
        ok(ga && gs && na == ns && !memcmp(ga, gs, sizeof(float) * (size_t)na) && x->bwd_nodes == ran,
           "all trainable: every node runs (%lld) and the gradients are the same bits", (long long)ran);
        free(ga), free(gs);
    }
    pare_exec_free(x);
    pare_model_free(all), pare_model_free(q), pare_model_free(top), pare_model_free(fb), pare_model_free(base);
    return tap_done();
}
