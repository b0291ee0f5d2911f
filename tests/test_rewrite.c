/* test_rewrite.c — graph rewriting (graph/rewrite.h): dropping heads and FFN neurons against a
 * reference that zeroes their contribution in the unedited model, the sliced weights against the
 * original rows and columns, removing a layer against a model built without it, a rewrite that
 * replaces two Linears by one product Linear, gradients of an edited model against finite differences,
 * and the errors (each names what is wrong, and leaves the model as it was). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

static pare_model *build(const char *kind, int64_t L, int64_t H, uint64_t seed)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, kind},        {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 9, NULL},
        {"d", PARE_KV_NUM, 32, NULL},          {"heads", PARE_KV_NUM, (double)H, NULL},
        {"layers", PARE_KV_NUM, (double)L, NULL}, {"classes", PARE_KV_NUM, 3, NULL}, {"ffn", PARE_KV_NUM, 48, NULL},
        {"seed", PARE_KV_NUM, 5, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 9) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, seed, 0.3); /* weights larger than the 0.02 init, so that every head and neuron matters */
    return m;
}

enum { B = 3, T = 9 };
static int32_t tok[B * T], len[B] = {9, 6, 2}, lab[B * T];

/* The model's logits on the fixed batch (malloc'd), NULL + diagnostic on failure. */
static float *logits(pare_model *m, int64_t *n)
{
    pare_exec *x = NULL;
    float *out = NULL;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) != PARE_OK || pare_exec_bind(x, tok, len, NULL) != PARE_OK ||
        pare_exec_forward(x) != PARE_OK) {
        diag("running failed: %s", pare_errmsg());
    } else {
        *n = (m->lm ? B * T : B) * m->nclass;
        out = malloc(sizeof *out * (size_t)*n);
        memcpy(out, pare_exec_logits(x), sizeof *out * (size_t)*n);
    }
    pare_exec_free(x);
    return out;
}

static double max_rel_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0, scale = 1e-6;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]) / scale);
    return worst;
}

static pare_param *param(pare_model *m, const char *name)
{
    int i = pare_model_find_param(m, name);
    return i >= 0 ? &m->params[i] : NULL;
}

/* Zero columns [c0, c1) of weight `name` in m (a private copy). */
static void zero_cols(pare_model *m, const char *name, int64_t c0, int64_t c1)
{
    pare_param *p = param(m, name);
    pare_param_make_private(p);
    for (int64_t r = 0; r < p->shape[0]; r++)
        for (int64_t c = c0; c < c1; c++) p->blob->data[r * p->shape[1] + c] = 0;
}

static void compare_logits(pare_model *a, pare_model *b, double tol, const char *what)
{
    int64_t na = 0, nb = 0;
    float *la = logits(a, &na), *lb = logits(b, &nb);
    if (ok(la && lb && na == nb, "%s: both run", what)) {
        double d = max_rel_diff(la, lb, na);
        ok(d <= tol, "%s: logits agree (max diff %.2e of the largest, tolerance %.0e)", what, d, tol);
    }
    free(la), free(lb);
}

static void drop_heads(void)
{
    pare_model *m = build("encoder", 2, 8, 3); /* d=32, 8 heads of 4 */
    if (!m) return;
    int64_t C = 32, D = 4, before = pare_model_param_count(m);
    int heads[] = {6, 1, 4};
    pare_model *p = pare_model_clone(m), *ref = pare_model_clone(m);
    int node = pare_model_find_node(p, "enc.1.attn");
    if (!ok(pare_model_drop_heads(p, node, heads, 3) == PARE_OK, "drop 3 of 8 heads in layer 1")) diag("%s", pare_errmsg());
    node = pare_model_find_node(p, "enc.1.attn");
    ok(p->nodes[node].a.heads == 5 && p->values[p->nodes[node].out].cols == 20 &&
           p->values[p->nodes[node].in[0]].cols == 60,
       "the attention node has 5 heads, qkv 60 columns, output 20");
    pare_param *wq = param(p, "enc.1.attn.qkv.weight"), *wo = param(p, "enc.1.attn.out.weight");
    ok(wq->shape[0] == 60 && wq->shape[1] == C && wo->shape[0] == C && wo->shape[1] == 20,
       "qkv weight (60, 32), out weight (32, 20)");
    /* the kept rows and columns are the original ones, bit for bit */
    int kept[] = {0, 2, 3, 5, 7}, same = 1;
    const pare_param *mq = param(m, "enc.1.attn.qkv.weight"), *mo = param(m, "enc.1.attn.out.weight");
    for (int s = 0; s < 3; s++)
        for (int h = 0; h < 5; h++)
            for (int64_t j = 0; j < D; j++)
                same &= !memcmp(&wq->blob->data[((s * 5 + h) * D + j) * C], &mq->blob->data[(s * C + kept[h] * D + j) * C],
                                sizeof(float) * (size_t)C);
    for (int64_t r = 0; r < C; r++)
        for (int h = 0; h < 5; h++)
            same &= !memcmp(&wo->blob->data[r * 20 + h * D], &mo->blob->data[r * C + kept[h] * D], sizeof(float) * (size_t)D);
    ok(same, "sliced q, k, v rows and output columns are the original heads' weights");
    ok(pare_model_param_count(p) == before - 3 * D * (3 * (C + 1) + C), "parameter count falls by 3 heads (%lld -> %lld)",
       (long long)before, (long long)pare_model_param_count(p));
    ok(pare_model_param_count(m) == before && param(m, "enc.1.attn.qkv.weight")->shape[0] == 3 * C,
       "the model it was cloned from is unchanged");
    /* reference: the unedited model with the dropped heads' contribution (their output columns) zeroed */
    for (int i = 0; i < 3; i++) zero_cols(ref, "enc.1.attn.out.weight", heads[i] * D, (heads[i] + 1) * D);
    compare_logits(ref, p, 1e-5, "heads dropped vs zeroed");
    /* and a second layer, down to one head */
    int more[] = {0, 1, 2, 3, 4, 5, 7};
    ok(pare_model_drop_heads(p, pare_model_find_node(p, "enc.0.attn"), more, 7) == PARE_OK && p->H == 5,
       "layer 0 down to 1 head; the summary's heads is the largest (5)");
    for (int i = 0; i < 7; i++) zero_cols(ref, "enc.0.attn.out.weight", more[i] * D, (more[i] + 1) * D);
    compare_logits(ref, p, 1e-5, "layers of 1 and 5 heads vs zeroed");
    pare_model_free(p), pare_model_free(ref), pare_model_free(m);
}

static void drop_neurons(void)
{
    pare_model *m = build("decoder", 2, 4, 4);
    if (!m) return;
    int64_t drop[20];
    for (int i = 0; i < 20; i++) drop[i] = (i * 7 + 3) % 48; /* 20 distinct neurons of 48 */
    pare_model *p = pare_model_clone(m), *ref = pare_model_clone(m);
    if (!ok(pare_model_drop_channels(p, pare_model_find_node(p, "dec.0.ffn.up"), drop, 20) == PARE_OK,
            "drop 20 of 48 FFN neurons in layer 0"))
        diag("%s", pare_errmsg());
    ok(param(p, "dec.0.ffn.up.weight")->shape[0] == 28 && param(p, "dec.0.ffn.up.bias")->shape[0] == 28 &&
           param(p, "dec.0.ffn.down.weight")->shape[1] == 28 && p->values[pare_model_find_value(p, "dec.0.ffn.act")].cols == 28,
       "up (28, 32) + bias 28, activation 28 columns, down (32, 28)");
    ok(p->F == 48 && param(p, "dec.1.ffn.up.weight")->shape[0] == 48, "layer 1 keeps 48 (the summary's ffn: the largest)");
    for (int i = 0; i < 20; i++) zero_cols(ref, "dec.0.ffn.down.weight", drop[i], drop[i] + 1);
    compare_logits(ref, p, 1e-5, "FFN neurons dropped vs zeroed (decoder)");
    /* with masks on both projections: the masks' rows and columns follow the weights' */
    pare_model *mk = pare_model_clone(m);
    float *mu = malloc(sizeof(float) * 48 * 32), *md = malloc(sizeof(float) * 32 * 48);
    for (int i = 0; i < 48 * 32; i++) mu[i] = (float)(i % 5 != 0), md[i] = (float)(i % 3 != 0);
    ok(pare_model_set_mask(mk, "dec.0.ffn.up", mu, 48, 32) == PARE_OK && pare_model_set_mask(mk, "dec.0.ffn.down", md, 32, 48) == PARE_OK,
       "masks on ffn.up and ffn.down");
    pare_model *mp = pare_model_clone(mk);
    if (!ok(pare_model_drop_channels(mp, pare_model_find_node(mp, "dec.0.ffn.up"), drop, 20) == PARE_OK &&
                param(mp, "dec.0.ffn.up.weight.mask")->shape[0] == 28 && param(mp, "dec.0.ffn.down.weight.mask")->shape[1] == 28,
            "dropping neurons of masked layers slices the masks (28 rows, 28 columns)"))
        diag("%s", pare_errmsg());
    for (int i = 0; i < 20; i++) zero_cols(mk, "dec.0.ffn.down.weight", drop[i], drop[i] + 1);
    compare_logits(mk, mp, 1e-5, "masked FFN neurons dropped vs zeroed");
    free(mu), free(md);
    pare_model_free(mk), pare_model_free(mp);
    pare_model_free(p), pare_model_free(ref), pare_model_free(m);
}

/* Removing layer 1 of 2 gives the model built with one layer and the same weights, exactly. */
static void remove_layer(void)
{
    pare_model *m = build("encoder", 3, 4, 5), *one = build("encoder", 2, 4, 6);
    if (!m || !one) return;
    pare_model *p = pare_model_clone(m);
    if (!ok(pare_model_remove_nodes(p, "enc.1.*") == PARE_OK, "remove layer 1 of 3")) diag("%s", pare_errmsg());
    ok(p->L == 2 && pare_model_find_param(p, "enc.1.attn.qkv.weight") < 0 && pare_model_find_node(p, "enc.2.attn") >= 0,
       "2 attention layers left; layer 1's parameters are gone, layer 2's stay");
    /* the reference: a 2-layer model whose layer 1 holds layer 2's weights */
    int copied = 0;
    for (int64_t i = 0; i < one->nparams; i++) {
        char name[PARE_NAME_MAX + 8];
        snprintf(name, sizeof name, "%s", one->params[i].name);
        if (!strncmp(name, "enc.1.", 6)) name[4] = '2';
        const pare_param *src = param(m, name);
        if (src && pare_param_numel(src) == pare_param_numel(&one->params[i]))
            memcpy(one->params[i].blob->data, src->blob->data, sizeof(float) * (size_t)pare_param_numel(src)), copied++;
    }
    ok(copied == one->nparams, "reference weights copied (%d of %lld)", copied, (long long)one->nparams);
    int64_t na = 0, nb = 0;
    float *la = logits(p, &na), *lb = logits(one, &nb);
    ok(la && lb && na == nb && !memcmp(la, lb, sizeof(float) * (size_t)na), "logits identical to the 2-layer model's");
    free(la), free(lb);
    /* half a block: the feed-forward of layer 0 goes; the reference zeroes its output (x + 0 = x) */
    pare_model *q = pare_model_clone(m), *z = pare_model_clone(m);
    int64_t nn = q->nnodes, np = q->nparams;
    if (!ok(pare_model_remove_nodes(q, "enc.0.ln2,enc.0.ffn.*,enc.0.drop2,enc.0.add2") == PARE_OK && q->nnodes == nn - 6 &&
                q->nparams == np - 6 && q->L == 3,
            "the feed-forward half of layer 0 removed (6 nodes, 6 parameters)"))
        diag("%s", pare_errmsg());
    zero_cols(z, "enc.0.ffn.down.weight", 0, 48);
    memset(param(z, "enc.0.ffn.down.bias")->blob->data, 0, sizeof(float) * 32);
    la = logits(q, &na), lb = logits(z, &nb);
    ok(la && lb && na == nb && !memcmp(la, lb, sizeof(float) * (size_t)na), "logits identical to the model whose FFN 0 outputs 0");
    free(la), free(lb);
    /* bypassing the FFN's three nodes alone: ln2's output takes ffn.down's place (a valid chain of one width) */
    pare_model_free(z);
    z = pare_model_clone(m);
    ok(pare_model_remove_nodes(z, "enc.0.ffn.*") == PARE_OK && z->nodes[pare_model_find_node(z, "enc.0.drop2")].in[0] ==
                                                                    pare_model_find_value(z, "enc.0.ln2"),
       "removing enc.0.ffn.* makes drop2 read ln2's output");
    pare_model_free(z);
    pare_model_free(q), pare_model_free(p), pare_model_free(one), pare_model_free(m);
}

/* A hand-built graph x -> A -> B -> pool -> head; A and B replaced by one Linear W = W_B W_A, b = W_B b_A + b_B. */
static void fuse_linears(void)
{
    pare_model *m = pare_model_new("encoder");
    int64_t C = 16, V = 13;
    m->vocab = V, m->max_T = T, m->C = C, m->nclass = 3;
    int tk = pare_model_add_input(m, PARE_VAL_TOKENS, "tokens"), ln = pare_model_add_input(m, PARE_VAL_LENGTHS, "lengths");
    int lb = pare_model_add_input(m, PARE_VAL_LABELS, "labels");
    m->values[lb].rows = PARE_ROWS_SEQS;
    int64_t st[2] = {V, C}, sw[2] = {C, C}, sb[1] = {C}, sh[2] = {3, C}, shb[1] = {3};
    int emb = pare_model_add_param(m, "emb.weight", 2, st, 1);
    int wa = pare_model_add_param(m, "a.weight", 2, sw, 1), ba = pare_model_add_param(m, "a.bias", 1, sb, 1);
    int wb = pare_model_add_param(m, "b.weight", 2, sw, 1), bb = pare_model_add_param(m, "b.bias", 1, sb, 1);
    int wh = pare_model_add_param(m, "head.weight", 2, sh, 1), bh = pare_model_add_param(m, "head.bias", 1, shb, 1);
    pare_rng r;
    pare_rng_seed(&r, 9);
    for (int64_t i = 0; i < m->nparams; i++)
        for (int64_t k = 0; k < pare_param_numel(&m->params[i]); k++) m->params[i].blob->data[k] = (float)(0.4 * pare_rng_normal(&r));
    int x = pare_model_add_node(m, PARE_OP_EMBEDDING, "emb", &tk, 1, &emb, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    int pa[2] = {wa, ba}, pb[2] = {wb, bb}, ph[2] = {wh, bh};
    int a = pare_model_add_node(m, PARE_OP_LINEAR, "a", &x, 1, pa, 2, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    int b = pare_model_add_node(m, PARE_OP_LINEAR, "b", &a, 1, pb, 2, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    int pin[2] = {b, ln};
    int pool = pare_model_add_node(m, PARE_OP_POOL, "pool", pin, 2, NULL, 0, PARE_ROWS_SEQS, C, (pare_node_attrs){.pool = PARE_POOL_MEAN});
    m->logits = pare_model_add_node(m, PARE_OP_LINEAR, "head", &pool, 1, ph, 2, PARE_ROWS_SEQS, 3, (pare_node_attrs){0});
    int xin[2] = {m->logits, lb};
    m->loss = pare_model_add_node(m, PARE_OP_XENT, "loss", xin, 2, NULL, 0, PARE_ROWS_SEQS, 1, (pare_node_attrs){0});
    if (!ok(pare_model_check(m) == PARE_OK, "the hand-built graph checks")) diag("%s", pare_errmsg());

    pare_model *f = pare_model_clone(m);
    int64_t sf[2] = {C, C}, sfb[1] = {C};
    int wf = pare_model_add_param(f, "ab.weight", 2, sf, 1), bf = pare_model_add_param(f, "ab.bias", 1, sfb, 1);
    const float *A = f->params[wa].blob->data, *Bw = f->params[wb].blob->data;
    const float *bA = f->params[ba].blob->data, *bB = f->params[bb].blob->data;
    float *W = f->params[wf].blob->data, *bias = f->params[bf].blob->data;
    for (int64_t i = 0; i < C; i++) {
        double s = bB[i];
        for (int64_t k = 0; k < C; k++) {
            double w = 0;
            for (int64_t j = 0; j < C; j++) w += (double)Bw[i * C + j] * A[j * C + k];
            W[i * C + k] = (float)w;
            s += (double)Bw[i * C + k] * bA[k];
        }
        bias[i] = (float)s;
    }
    int pf[2] = {wf, bf};
    int at = pare_model_find_node(f, "pool");
    int fused = pare_model_insert_node(f, at, PARE_OP_LINEAR, "ab", &x, 1, pf, 2, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    if (!ok(fused >= 0 && pare_model_find_node(f, "ab") == at, "insert the product Linear before pool")) diag("%s", pare_errmsg());
    ok(pare_model_replace_uses(f, pare_model_find_value(f, "b"), fused) == 1, "pool reads it instead of b");
    if (!ok(pare_model_remove_nodes(f, "a,b") == PARE_OK && f->nnodes == 5 && f->nparams == 5 &&
                pare_model_find_param(f, "a.weight") < 0,
            "a and b removed with their parameters (5 nodes left: emb, ab, pool, head, loss)"))
        diag("%s", pare_errmsg());
    compare_logits(m, f, 1e-5, "two Linears vs their product");
    /* inserting where an input is not made yet */
    fused = pare_model_find_value(f, "ab");
    ok(pare_model_insert_node(f, 0, PARE_OP_GELU, "g", &fused, 1, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0}) < 0 &&
           strstr(pare_errmsg(), "made later"),
       "an input made later is refused: %s", pare_errmsg());
    pare_model_free(f), pare_model_free(m);
}

/* Gradients of an edited (heterogeneous) decoder against central differences, and a few training steps. */
static void gradients(void)
{
    pare_model *m = build("decoder", 2, 4, 8);
    if (!m) return;
    int h[] = {2};
    int64_t n[] = {0, 5, 9, 40};
    if (!ok(pare_model_drop_heads(m, pare_model_find_node(m, "dec.1.attn"), h, 1) == PARE_OK &&
                pare_model_drop_channels(m, pare_model_find_node(m, "dec.0.ffn.up"), n, 4) == PARE_OK,
            "decoder with 4 + 3 heads, FFN 44 + 48"))
        return;
    pare_exec *x = NULL;
    if (!ok(pare_model_alloc_grads(m) == PARE_OK && pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK &&
                pare_exec_bind(x, tok, len, lab) == PARE_OK,
            "training executor on the edited model"))
        return;
    pare_model_zero_grad(m);
    pare_exec_forward(x);
    pare_exec_backward(x);
    pare_rng r;
    pare_rng_seed(&r, 2);
    double worst = 0;
    const char *where = "";
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (int k = 0; k < 4; k++) {
            int64_t j = (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            float keep = p->blob->data[j];
            double e = 1e-2;
            p->blob->data[j] = keep + (float)e;
            pare_exec_forward(x);
            double lp = x->loss;
            p->blob->data[j] = keep - (float)e;
            pare_exec_forward(x);
            double lm = x->loss;
            p->blob->data[j] = keep;
            double num = (lp - lm) / (2 * e), err = fabs(num - p->grad[j]) / (1e-3 + fabs(num) + fabs(p->grad[j]));
            if (err > worst) worst = err, where = p->name;
        }
    }
    ok(worst < 2e-2, "gradients match central differences on every parameter (worst %.2e at %s)", worst, where);
    pare_exec_free(x);
    pare_model_free(m);
}

static void errors(void)
{
    pare_model *m = build("encoder", 2, 8, 3);
    if (!m) return;
    int64_t nn = m->nnodes, np = m->nparams;
    int64_t n0 = 0;
    float *l0 = logits(m, &n0);
    int all[8] = {0, 1, 2, 3, 4, 5, 6, 7}, bad[] = {8}, twice[] = {1, 1};
    int a = pare_model_find_node(m, "enc.0.attn");
    ok(pare_model_drop_heads(m, a, all, 8) != PARE_OK && strstr(pare_errmsg(), "keep at least one"),
       "dropping every head: %s", pare_errmsg());
    ok(pare_model_drop_heads(m, a, bad, 1) != PARE_OK && strstr(pare_errmsg(), "heads are 0..7"), "head 8 of 8: %s",
       pare_errmsg());
    ok(pare_model_drop_heads(m, a, twice, 2) != PARE_OK && strstr(pare_errmsg(), "twice"), "a head twice: %s", pare_errmsg());
    ok(pare_model_drop_heads(m, pare_model_find_node(m, "enc.0.ln1"), bad, 1) != PARE_OK &&
           strstr(pare_errmsg(), "not an attention node"),
       "heads of a LayerNorm: %s", pare_errmsg());
    int64_t keep[] = {3, 2};
    ok(pare_model_keep_channels(m, pare_model_find_node(m, "enc.0.ffn.up"), keep, 2) != PARE_OK &&
           strstr(pare_errmsg(), "increasing"),
       "unordered channels: %s", pare_errmsg());
    int64_t some[] = {1, 2};
    ok(pare_model_drop_channels(m, pare_model_find_node(m, "enc.0.attn.out"), some, 2) != PARE_OK &&
           strstr(pare_errmsg(), "enc.0.add1") && strstr(pare_errmsg(), "model width"),
       "the residual stream's width: %s", pare_errmsg());
    ok(pare_model_drop_channels(m, pare_model_find_node(m, "head"), some, 2) != PARE_OK && strstr(pare_errmsg(), "logits"),
       "the logits' classes: %s", pare_errmsg());
    ok(pare_model_remove_nodes(m, "enc.0.attn.qkv") != PARE_OK && strstr(pare_errmsg(), "shapes differ"),
       "removing a node whose input and output differ in width: %s", pare_errmsg());
    ok(pare_model_remove_nodes(m, "head") != PARE_OK && strstr(pare_errmsg(), "logits"), "removing the head: %s", pare_errmsg());
    ok(pare_model_remove_nodes(m, "enc.9.*") != PARE_OK && strstr(pare_errmsg(), "no node matches"), "no match: %s",
       pare_errmsg());
    int64_t n1 = 0;
    float *l1 = logits(m, &n1);
    ok(m->nnodes == nn && m->nparams == np && l0 && l1 && n0 == n1 && !memcmp(l0, l1, sizeof(float) * (size_t)n0),
       "after every refused edit the model is unchanged (same nodes, parameters and logits)");
    free(l0), free(l1);
    /* a quantized weight cannot be resized */
    pare_model *q = NULL;
    if (ok(pare_apply(&q, m, "dynamic_int8", NULL, 0) == PARE_OK, "quantize to int8")) {
        int64_t d[] = {0};
        ok(pare_model_drop_channels(q, pare_model_find_node(q, "enc.0.ffn.up"), d, 1) != PARE_OK &&
               strstr(pare_errmsg(), "enc.0.ffn.up.weight") && strstr(pare_errmsg(), "then quantize"),
           "resizing an int8 weight: %s", pare_errmsg());
    }
    pare_model_free(q);
    /* the check names the node of a mismatch made by hand */
    pare_param *w = param(m, "enc.1.ffn.down.weight");
    w->shape[1] = 47;
    ok(pare_model_check(m) != PARE_OK && strstr(pare_errmsg(), "enc.1.ffn.down") && strstr(pare_errmsg(), "linear"),
       "check names the node: %s", pare_errmsg());
    w->shape[1] = 48;
    m->nodes[pare_model_find_node(m, "enc.1.attn")].a.heads = 5;
    ok(pare_model_check(m) != PARE_OK && strstr(pare_errmsg(), "enc.1.attn") && strstr(pare_errmsg(), "heads"),
       "heads that do not divide: %s", pare_errmsg());
    m->nodes[pare_model_find_node(m, "enc.1.attn")].a.heads = 8;
    ok(pare_model_check(m) == PARE_OK, "and checks again once repaired");
    pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng r;
    pare_rng_seed(&r, 1);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&r, 13), lab[i] = (int32_t)pare_rng_below(&r, 13);
    drop_heads();
    drop_neurons();
    remove_layer();
    fuse_linears();
    gradients();
    errors();
    return tap_done();
}
