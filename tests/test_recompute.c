/* test_recompute.c — activation checkpointing (exec.h pare_exec_opts.checkpoint): on an encoder with
 * dropout, a decoder and an encoder-decoder (whose decoder blocks all read the encoder's output), the
 * loss, every parameter gradient and the dropout stream after a step are bit-identical to an executor that
 * keeps every activation, over two steps; the planned memory is smaller; every block but the last is
 * recomputed once; an inference executor refuses the option; a node range outside the model is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "graph/exec.h"
#include "tap.h"
#include "test_models.h"

static float *grads_copy(const pare_model *m, int64_t *n)
{
    int64_t total = 0;
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].grad) total += pare_param_numel(&m->params[i]);
    float *g = malloc(sizeof *g * (size_t)(total + 1)), *at = g;
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].grad) {
            int64_t k = pare_param_numel(&m->params[i]);
            memcpy(at, m->params[i].grad, sizeof *g * (size_t)k);
            at += k;
        }
    *n = total;
    return g;
}

static void check(const char *what, const pare_kv *kv, int nkv, int64_t B, int64_t T)
{
    pare_model *m = build_perturbed(kv, nkv, 11);
    if (!m || pare_model_alloc_grads(m) != PARE_OK) {
        ok(0, "%s: build", what);
        pare_model_free(m);
        return;
    }
    pare_exec *a = NULL, *b = NULL;
    pare_exec_opts co = {.checkpoint = 1};
    if (pare_exec_new(&a, m, B, T, PARE_EXEC_TRAIN) != PARE_OK ||
        pare_exec_new_opts(&b, m, B, T, m->src_max_T, PARE_EXEC_TRAIN, &co) != PARE_OK) {
        ok(0, "%s: executors: %s", what, pare_errmsg());
        goto out;
    }
    int64_t nb = pare_exec_blocks(m, 0, m->nnodes, NULL, NULL);
    ok(b->nblocks == nb && nb >= 2, "%s: %lld blocks checkpointed", what, (long long)b->nblocks);
    ok(b->planned_bytes < a->planned_bytes, "%s: planned bytes %zu with checkpointing < %zu without (%.0f%%)", what,
       b->planned_bytes, a->planned_bytes, 100.0 * (double)b->planned_bytes / (double)a->planned_bytes);
    int32_t *tok = malloc(sizeof *tok * (size_t)(B * T)), *len = malloc(sizeof *len * (size_t)B);
    int32_t *lab = malloc(sizeof *lab * (size_t)(B * T));
    pare_rng r;
    pare_rng_seed(&r, 3);
    for (int step = 0; step < 2; step++) {
        for (int64_t i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&r, 13), lab[i] = (int32_t)pare_rng_below(&r, 3);
        for (int64_t i = 0; i < B; i++) len[i] = (int32_t)(T - (i % 3));
        int64_t na = 0, nbg = 0;
        float *ga = NULL, *gb = NULL;
        pare_status s = pare_exec_bind(a, tok, len, lab);
        if (s == PARE_OK) s = pare_exec_bind(b, tok, len, lab);
        if (s == PARE_OK) s = pare_exec_forward(a);
        if (s == PARE_OK) s = pare_exec_forward(b);
        if (s == PARE_OK) {
            pare_model_zero_grad(m);
            s = pare_exec_backward(a);
            ga = grads_copy(m, &na);
        }
        if (s == PARE_OK) {
            pare_model_zero_grad(m);
            s = pare_exec_backward(b);
            gb = grads_copy(m, &nbg);
        }
        if (!ok(s == PARE_OK, "%s step %d: forward and backward run", what, step)) diag("%s", pare_errmsg());
        ok(a->loss == b->loss, "%s step %d: the loss is bit-identical (%.9g, %.9g)", what, step, (double)a->loss,
           (double)b->loss);
        int64_t bad = -1;
        for (int64_t i = 0; ga && gb && na == nbg && i < na && bad < 0; i++)
            if (memcmp(&ga[i], &gb[i], sizeof(float))) bad = i;
        ok(ga && gb && na == nbg && na > 0 && bad < 0, "%s step %d: all %lld parameter gradients are bit-identical%s", what,
           step, (long long)na, bad >= 0 ? " (not at some index)" : "");
        if (bad >= 0) diag("first difference at %lld: %.9g vs %.9g", (long long)bad, (double)ga[bad], (double)gb[bad]);
        int64_t inner = 0;
        for (int64_t k = 0; k + 1 < b->nblocks; k++) inner += b->blk_last[k] - b->blk_first[k];
        ok(b->recomputed_nodes == inner, "%s step %d: %lld nodes recomputed (every block but the last: %lld)", what, step,
           (long long)b->recomputed_nodes, (long long)inner);
        ok(!memcmp(&a->rng, &b->rng, sizeof a->rng), "%s step %d: the dropout stream goes on as without checkpointing",
           what, step);
        free(ga), free(gb);
    }
    free(tok), free(len), free(lab);
out:
    pare_exec_free(a);
    pare_exec_free(b);
    pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    pare_kv enc[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 9, NULL},
        {"d", PARE_KV_NUM, 16, NULL},        {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, 3, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"dropout", PARE_KV_NUM, 0.2, NULL}, {"seed", PARE_KV_NUM, 5, NULL},
    };
    check("encoder, dropout 0.2", enc, 9, 4, 9);
    pare_kv dec[] = {
        {"kind", PARE_KV_STR, 0, "decoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 8, NULL},
        {"d", PARE_KV_NUM, 16, NULL},        {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, 2, NULL},
        {"tie_head", PARE_KV_BOOL, 1, NULL}, {"seed", PARE_KV_NUM, 6, NULL},
    };
    check("decoder, tied head", dec, 8, 3, 8);
    pare_kv ed[] = {
        {"kind", PARE_KV_STR, 0, "encdec"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 7, NULL},
        {"d", PARE_KV_NUM, 16, NULL},       {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, 2, NULL},
        {"seed", PARE_KV_NUM, 7, NULL},
    };
    check("encoder-decoder", ed, 7, 2, 7);

    pare_model *m = build_model(enc, 9);
    pare_exec *x = NULL;
    pare_exec_opts co = {.checkpoint = 1}, bad = {.first = 3, .last = 2};
    if (m) {
        pare_status s = pare_exec_new_opts(&x, m, 2, 9, m->src_max_T, PARE_EXEC_INFER, &co);
        ok(s == PARE_EINVAL && strstr(pare_errmsg(), "only a training executor"), "checkpoint on an inference executor: %s",
           pare_errmsg());
        s = pare_exec_new_opts(&x, m, 2, 9, m->src_max_T, PARE_EXEC_TRAIN, &bad);
        ok(s == PARE_EINVAL && strstr(pare_errmsg(), "not a range"), "nodes [3, 2): %s", pare_errmsg());
    }
    pare_model_free(m);
    return tap_done();
}
