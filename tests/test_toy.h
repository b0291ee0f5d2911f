/* test_toy.h — the hand-built toy model of the weight-transform tests (test_transform.c, test_pq.c's Quant-Noise):
 *
 *   tokens → emb (B·T, C) → proj (B·T, C2) → gelu → mean pool (B, C2) → head (B, K) → cross-entropy,
 *
 * its fixed batch (tok, len, lab), an executor that runs it on that batch, and parameter accessors. emb's output
 * feeds proj only, so proj's input gradient is the whole of emb's output gradient. Include it where the file's own
 * code no longer needs the names B, T, V, C, C2, K for anything else. */
#ifndef PARE_TEST_TOY_H
#define PARE_TEST_TOY_H

#include <string.h>

#include "core/rng.h"
#include "graph/exec.h"
#include "graph/graph.h"
#include "tap.h"

enum { B = 3, T = 4, V = 11, C = 16, C2 = 12, K = 3 };

static int32_t tok[B * T] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 3}, len[B] = {4, 2, 3}, lab[B] = {2, 0, 1};

static int param(pare_model *m, const char *name, int64_t r, int64_t c, pare_rng *rng) __attribute__((unused));
static int param(pare_model *m, const char *name, int64_t r, int64_t c, pare_rng *rng)
{
    int64_t shape[2] = {r, c};
    int p = pare_model_add_param(m, name, c ? 2 : 1, shape, 1);
    for (int64_t i = 0; i < pare_param_numel(&m->params[p]); i++) m->params[p].blob->data[i] = (float)(0.5 * pare_rng_normal(rng));
    return p;
}

/* The model above, weights N(0, 0.25) from seed 17. */
static pare_model *toy(void) __attribute__((unused));
static pare_model *toy(void)
{
    pare_rng r;
    pare_rng_seed(&r, 17);
    pare_model *m = pare_model_new("encoder");
    m->vocab = V, m->max_T = T, m->C = C, m->nclass = K;
    int tk = pare_model_add_input(m, PARE_VAL_TOKENS, "tokens"), ln = pare_model_add_input(m, PARE_VAL_LENGTHS, "lengths");
    int lb = pare_model_add_input(m, PARE_VAL_LABELS, "labels");
    m->values[lb].rows = PARE_ROWS_SEQS;
    int emb = param(m, "emb.weight", V, C, &r), pw = param(m, "proj.weight", C2, C, &r), pb = param(m, "proj.bias", C2, 0, &r);
    int hw = param(m, "head.weight", K, C2, &r), hb = param(m, "head.bias", K, 0, &r);
    pare_node_attrs none = {0};
    int h0 = pare_model_add_node(m, PARE_OP_EMBEDDING, "emb", &tk, 1, &emb, 1, PARE_ROWS_TOKENS, C, none);
    int pp[2] = {pw, pb}, hp[2] = {hw, hb};
    int h1 = pare_model_add_node(m, PARE_OP_LINEAR, "proj", &h0, 1, pp, 2, PARE_ROWS_TOKENS, C2, none);
    int g = pare_model_add_node(m, PARE_OP_GELU, "act", &h1, 1, NULL, 0, PARE_ROWS_TOKENS, C2, none);
    int pin[2] = {g, ln};
    int pool = pare_model_add_node(m, PARE_OP_POOL, "pool", pin, 2, NULL, 0, PARE_ROWS_SEQS, C2, (pare_node_attrs){.pool = PARE_POOL_MEAN});
    m->logits = pare_model_add_node(m, PARE_OP_LINEAR, "head", &pool, 1, hp, 2, PARE_ROWS_SEQS, K, none);
    int xin[2] = {m->logits, lb};
    m->loss = pare_model_add_node(m, PARE_OP_XENT, "loss", xin, 2, NULL, 0, PARE_ROWS_SEQS, 1, none);
    return m;
}

static pare_exec *run(pare_model *m, pare_exec_mode mode, int backward) __attribute__((unused));
static pare_exec *run(pare_model *m, pare_exec_mode mode, int backward)
{
    pare_exec *x = NULL;
    if (mode == PARE_EXEC_TRAIN && pare_model_alloc_grads(m) != PARE_OK) return NULL;
    if (pare_exec_new(&x, m, B, T, mode) != PARE_OK || pare_exec_bind(x, tok, len, lab) != PARE_OK) {
        diag("executor: %s", pare_errmsg());
        pare_exec_free(x);
        return NULL;
    }
    if (mode == PARE_EXEC_TRAIN) pare_model_zero_grad(m);
    pare_status st = pare_exec_forward(x);
    if (st == PARE_OK && backward) st = pare_exec_backward(x);
    if (st != PARE_OK) diag("run: %s", pare_errmsg());
    return x;
}

static int same(const float *a, const float *b, int64_t n) __attribute__((unused));
static int same(const float *a, const float *b, int64_t n) { return !memcmp(a, b, sizeof(float) * (size_t)n); }

static const float *grad_of(pare_model *m, const char *name) __attribute__((unused));
static const float *grad_of(pare_model *m, const char *name) { return m->params[pare_model_find_param(m, name)].grad; }
static float *data_of(pare_model *m, const char *name) __attribute__((unused));
static float *data_of(pare_model *m, const char *name) { return m->params[pare_model_find_param(m, name)].blob->data; }

#endif
