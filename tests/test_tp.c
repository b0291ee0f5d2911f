/* test_tp.c — tensor parallelism's slicing (dist/tp.h) in one process: what each rank's shard holds, how each
 * parameter is split, the graph of f and g, the errors naming sizes, and a shard of one rank computing the
 * model's logits, loss and gradients (f and g are identities then). The shards of 2 ranks against one process
 * under mpirun: tests/t_mpi_tp.sh. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dist/tp.h"
#include "graph/exec.h"
#include "test_models.h"
#include "train/train.h"

static const pare_param *P(const pare_model *m, const char *name)
{
    int i = pare_model_find_param(m, name);
    if (i < 0) diag("no parameter %s", name);
    return i < 0 ? NULL : &m->params[i];
}

/* Shard r of 2 holds: qkv rows s·C + r·C/2 + [0, C/2) for s = q, k, v (whole heads); up rows r·F/2 + [0, F/2) and
 * their biases; out and down columns r·K/2 + [0, K/2); everything else whole. */
static void check_slices(const pare_model *full, const pare_model *s, int r, int64_t C, int64_t F)
{
    char name[64];
    int bad = 0;
    for (int l = 0; l < 2; l++) {
        snprintf(name, sizeof name, "enc.%d.attn.qkv.weight", l);
        const pare_param *a = P(full, name), *b = P(s, name);
        bad |= !a || !b || b->shape[0] != 3 * C / 2 || b->shape[1] != C;
        for (int q = 0; !bad && q < 3; q++)
            for (int64_t j = 0; j < C / 2; j++)
                bad |= memcmp(b->blob->data + (q * C / 2 + j) * C, a->blob->data + (q * C + r * C / 2 + j) * C, sizeof(float) * C);
        snprintf(name, sizeof name, "enc.%d.attn.qkv.bias", l);
        a = P(full, name), b = P(s, name);
        for (int q = 0; a && b && q < 3; q++)
            bad |= memcmp(b->blob->data + q * C / 2, a->blob->data + q * C + r * C / 2, sizeof(float) * C / 2);
        snprintf(name, sizeof name, "enc.%d.ffn.up.weight", l);
        a = P(full, name), b = P(s, name);
        bad |= !a || !b || b->shape[0] != F / 2 || memcmp(b->blob->data, a->blob->data + r * F / 2 * C, sizeof(float) * F / 2 * C);
        const char *cols[2] = {"attn.out", "ffn.down"};
        int64_t K[2] = {C, F};
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "enc.%d.%s.weight", l, cols[k]);
            a = P(full, name), b = P(s, name);
            bad |= !a || !b || b->shape[0] != C || b->shape[1] != K[k] / 2;
            for (int64_t n = 0; !bad && n < C; n++)
                bad |= memcmp(b->blob->data + n * K[k] / 2, a->blob->data + n * K[k] + r * K[k] / 2, sizeof(float) * K[k] / 2);
            snprintf(name, sizeof name, "enc.%d.%s.bias", l, cols[k]);
            a = P(full, name), b = P(s, name);
            bad |= !a || !b || pare_param_numel(b) != C || memcmp(a->blob->data, b->blob->data, sizeof(float) * C);
        }
    }
    const pare_param *a = P(full, "emb.tok.weight"), *b = P(s, "emb.tok.weight");
    bad |= !a || !b || memcmp(a->blob->data, b->blob->data, sizeof(float) * pare_param_numel(a));
    ok(!bad, "shard %d of 2: qkv keeps heads %d-%d of q, k and v, up its F/2 channels, out and down the matching input "
       "columns, their biases and the embeddings whole", r, 2 * r, 2 * r + 1);
}

static int count_op(const pare_model *m, pare_op_id op)
{
    int n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) n += m->nodes[i].op == op;
    return n;
}

int main(void)
{
    tap_plan_lazy();
    const int64_t C = 16, F = 24, T = 6, B = 3;
    pare_model *full = tiny_encoder(T, C, F), *s[2] = {NULL, NULL}, *one = NULL;
    if (!full) return 1;
    for (int r = 0; r < 2; r++) ok(pare_tp_split(&s[r], full, r, 2) == PARE_OK, "split rank %d of 2", r);
    if (!s[0] || !s[1]) return tap_done();
    for (int r = 0; r < 2; r++) check_slices(full, s[r], r, C, F);
    ok(pare_tp_ranks(s[1]) == 2 && pare_tp_rank(s[1]) == 1 && pare_tp_ranks(full) == 0 && pare_tp_rank(full) == -1,
       "pare_tp_ranks / pare_tp_rank read back 2 and 1 (0 and -1 for the replicated model)");
    ok(count_op(s[0], PARE_OP_TP_COPY) == 4 && count_op(s[0], PARE_OP_TP_REDUCE) == 4 && s[0]->H == 2,
       "an f and a g per half-block: 4 of each over 2 layers; the shard's summary has 2 heads (got %d, %d, %lld)",
       count_op(s[0], PARE_OP_TP_COPY), count_op(s[0], PARE_OP_TP_REDUCE), (long long)s[0]->H);
    int64_t g = pare_model_find_node(s[0], "enc.0.attn.g"), o = pare_model_find_node(s[0], "enc.0.attn.out");
    ok(g >= 0 && o >= 0 && s[0]->nodes[o].nparam == 1 && s[0]->nodes[g].nparam == 1 &&
           !strcmp(s[0]->params[s[0]->nodes[g].param[0]].name, "enc.0.attn.out.bias") &&
           s[0]->nodes[g].in[0] == s[0]->nodes[o].out,
       "the row-parallel out projection has no bias; g reads it and adds enc.0.attn.out.bias once");
    struct { const char *name; pare_tp_split_kind kind; int blocks; } lay[] = {
        {"enc.1.attn.qkv.weight", PARE_TP_ROWS, 3}, {"enc.1.attn.qkv.bias", PARE_TP_ROWS, 3},
        {"enc.1.ffn.up.weight", PARE_TP_ROWS, 1},   {"enc.1.ffn.up.bias", PARE_TP_ROWS, 1},
        {"enc.1.attn.out.weight", PARE_TP_COLS, 1}, {"enc.1.ffn.down.weight", PARE_TP_COLS, 1},
        {"enc.1.ffn.down.bias", PARE_TP_REPLICATED, 1}, {"enc.1.ln2.weight", PARE_TP_REPLICATED, 1},
        {"emb.tok.weight", PARE_TP_REPLICATED, 1}, {"head.weight", PARE_TP_REPLICATED, 1},
    };
    int lay_ok = 1;
    for (size_t k = 0; k < sizeof lay / sizeof lay[0]; k++) {
        int blocks, i = pare_model_find_param(s[1], lay[k].name);
        int got = i < 0 ? -1 : (int)pare_tp_layout(s[1], i, &blocks);
        int64_t shape[2];
        if (i >= 0) pare_tp_full_shape(s[1], i, shape);
        const pare_param *w = P(full, lay[k].name);
        if (i < 0 || got != (int)lay[k].kind || blocks != lay[k].blocks || !w || shape[0] != w->shape[0] ||
            shape[1] != (w->ndim > 1 ? w->shape[1] : 1)) {
            diag("%s: layout %d blocks %d, want %d, %d", lay[k].name, (int)got, blocks, (int)lay[k].kind, lay[k].blocks);
            lay_ok = 0;
        }
    }
    ok(lay_ok, "pare_tp_layout: qkv rows in 3 blocks, up rows, out and down columns, the rest replicated; full shapes "
       "those of the model");

    /* a shard of 2 in a world of one: the executor runs, the forward refuses naming both sizes */
    int32_t tok[3 * 6], len[3] = {6, 4, 2}, lab[3] = {0, 2, 1};
    for (int i = 0; i < B * T; i++) tok[i] = (i * 5 + 1) % 13;
    pare_exec *x = NULL;
    pare_status st = pare_exec_new(&x, s[0], B, T, PARE_EXEC_INFER);
    if (st == PARE_OK) st = pare_exec_bind(x, tok, len, lab);
    if (st == PARE_OK) st = pare_exec_forward(x);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "sliced for 2 ranks") && strstr(pare_errmsg(), "this run has 1"),
       "a shard of 2 run alone: %s", pare_errmsg());
    pare_exec_free(x);

    /* a shard of one rank: f and g are identities, the bias is added after the product instead of with it */
    ok(pare_tp_split(&one, full, 0, 1) == PARE_OK, "split for 1 rank");
    pare_exec *xf = NULL, *xs = NULL;
    st = pare_exec_new(&xf, full, B, T, PARE_EXEC_TRAIN);
    if (st == PARE_OK) st = pare_exec_new(&xs, one, B, T, PARE_EXEC_TRAIN);
    if (st == PARE_OK) st = pare_exec_bind(xf, tok, len, lab);
    if (st == PARE_OK) st = pare_exec_bind(xs, tok, len, lab);
    if (st == PARE_OK) st = pare_exec_forward(xf);
    if (st == PARE_OK) st = pare_exec_forward(xs);
    if (st == PARE_OK) st = pare_model_alloc_grads(full);
    if (st == PARE_OK) st = pare_model_alloc_grads(one);
    if (st == PARE_OK) pare_model_zero_grad(full), pare_model_zero_grad(one);
    if (st == PARE_OK) st = pare_exec_backward(xf);
    if (st == PARE_OK) st = pare_exec_backward(xs);
    ok(st == PARE_OK, "forward and backward of the model and its 1-rank shard (%s)", st == PARE_OK ? "ok" : pare_errmsg());
    if (st == PARE_OK) {
        is_close_arr(pare_exec_logits(xs), pare_exec_logits(xf), B * 3, 1e-6, 1e-5, "1-rank shard: logits");
        is_close(xs->loss, xf->loss, 1e-6, 1e-6, "1-rank shard: loss");
        int gbad = 0;
        for (int64_t i = 0; i < full->nparams; i++) {
            const pare_param *a = &full->params[i], *b = P(one, a->name);
            if (!a->grad) continue;
            for (int64_t k = 0; b && k < pare_param_numel(a); k++)
                if (fabsf(a->grad[k] - b->grad[k]) > 1e-6f + 1e-5f * fabsf(a->grad[k])) {
                    diag("%s[%lld]: %g vs %g", a->name, (long long)k, (double)b->grad[k], (double)a->grad[k]);
                    gbad = 1;
                    break;
                }
        }
        ok(!gbad, "1-rank shard: every parameter's gradient equals the model's (f's and g's backward: identities and "
           "the bias's column sums)");
        float nf = pare_clip_grad_norm(full, 0), ns = pare_tp_clip_grad_norm(one, 0);
        is_close(ns, nf, 1e-6, 1e-5, "pare_tp_clip_grad_norm of a 1-rank shard = pare_clip_grad_norm of the model");
    }
    pare_exec_free(xf), pare_exec_free(xs);

    /* errors naming the sizes */
    pare_model *bad = NULL;
    ok(pare_tp_split(&bad, full, 0, 3) == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.attn: heads=4 is not divisible by ranks=3"),
       "4 heads over 3 ranks: %s", pare_errmsg());
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 6, NULL},
                    {"d", PARE_KV_NUM, 16, NULL}, {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 1, NULL},
                    {"ffn", PARE_KV_NUM, 25, NULL}};
    pare_model *odd = build_model(kv, 7);
    ok(odd && pare_tp_split(&bad, odd, 1, 2) == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.ffn.up: ffn=25 is not divisible by ranks=2"),
       "ffn 25 over 2 ranks: %s", pare_errmsg());
    ok(pare_tp_split(&bad, s[0], 0, 2) == PARE_EINVAL && strstr(pare_errmsg(), "already rank 0's shard of 2"),
       "a shard is not split again: %s", pare_errmsg());
    ok(pare_tp_split(&bad, full, 2, 2) == PARE_EINVAL && !bad, "rank 2 of 2 is refused: %s", pare_errmsg());
    pare_model_free(odd);
    pare_model_free(one);
    pare_model_free(s[0]), pare_model_free(s[1]);
    pare_model_free(full);
    return tap_done();
}
