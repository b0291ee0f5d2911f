/* test_graph_losses.c — losses, targets and capture through the graph: a hand-built model with a
 * cross-entropy head, an MSE from a Linear's output to a target, an MSE between two trained values and
 * a KL divergence against target logits. Checks: the cross-entropy alone gives exactly today's loss;
 * each term against a reference computed here; whole-model gradients against finite differences;
 * α·xent + (1−α)·KL has the weighted sum of the single-term gradients; padded rows carry no loss;
 * capture returns what a separate run computes; a teacher's captured outputs bound as a student's
 * targets; and the errors (unbound targets, shapes, caches as inputs, unknown names, NaN targets). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "graph/exec.h"
#include "graph/ops.h"
#include "kernels/nn.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

enum { B = 3, T = 4, V = 11, C = 6, C2 = 5, K = 3 };

typedef struct toy {
    pare_model *m;
    int h1, t_hidden, t_logits;      /* values */
    int n_xent, n_mse, n_pair, n_kl; /* nodes */
} toy;

static int param(pare_model *m, const char *name, int64_t r, int64_t c, pare_rng *rng)
{
    int64_t shape[2] = {r, c};
    int p = pare_model_add_param(m, name, c ? 2 : 1, shape, 1);
    for (int64_t i = 0; i < pare_param_numel(&m->params[p]); i++) m->params[p].blob->data[i] = (float)(0.5 * pare_rng_normal(rng));
    return p;
}

/*  tokens → emb (B·T, C) → proj (B·T, C2) → gelu → mean pool (B, C2) → head (B, K) → cross-entropy
 *                 └→ tproj (B·T, C2)
 *  mse   = MSE(proj, t.hidden)       a Linear's output against a target, padded tokens masked
 *  pair  = MSE(tproj, proj)          two trained values: gradients into both
 *  kl    = KL(head ∥ t.logits, T=2)  soft targets */
static toy toy_new(void)
{
    toy t = {0};
    pare_rng r;
    pare_rng_seed(&r, 17);
    pare_model *m = t.m = pare_model_new("encoder");
    m->vocab = V, m->max_T = T, m->C = C, m->nclass = K;
    int tok = pare_model_add_input(m, PARE_VAL_TOKENS, "tokens"), len = pare_model_add_input(m, PARE_VAL_LENGTHS, "lengths");
    int lab = pare_model_add_input(m, PARE_VAL_LABELS, "labels");
    m->values[lab].rows = PARE_ROWS_SEQS;
    int emb = param(m, "emb.weight", V, C, &r), pw = param(m, "proj.weight", C2, C, &r), pb = param(m, "proj.bias", C2, 0, &r);
    int tw = param(m, "tproj.weight", C2, C, &r), hw = param(m, "head.weight", K, C2, &r), hb = param(m, "head.bias", K, 0, &r);
    pare_node_attrs none = {0};
    int h0 = pare_model_add_node(m, PARE_OP_EMBEDDING, "emb", &tok, 1, &emb, 1, PARE_ROWS_TOKENS, C, none);
    int pp[2] = {pw, pb};
    t.h1 = pare_model_add_node(m, PARE_OP_LINEAR, "proj", &h0, 1, pp, 2, PARE_ROWS_TOKENS, C2, none);
    int g = pare_model_add_node(m, PARE_OP_GELU, "act", &t.h1, 1, NULL, 0, PARE_ROWS_TOKENS, C2, none);
    int pin[2] = {g, len};
    int pool = pare_model_add_node(m, PARE_OP_POOL, "pool", pin, 2, NULL, 0, PARE_ROWS_SEQS, C2,
                                   (pare_node_attrs){.pool = PARE_POOL_MEAN});
    int hp[2] = {hw, hb};
    m->logits = pare_model_add_node(m, PARE_OP_LINEAR, "head", &pool, 1, hp, 2, PARE_ROWS_SEQS, K, none);
    int xin[2] = {m->logits, lab};
    m->loss = pare_model_add_node(m, PARE_OP_XENT, "loss", xin, 2, NULL, 0, PARE_ROWS_SEQS, 1, none);
    int h2 = pare_model_add_node(m, PARE_OP_LINEAR, "tproj", &h0, 1, &tw, 1, PARE_ROWS_TOKENS, C2, none);
    t.t_hidden = pare_model_add_target(m, "t.hidden", PARE_ROWS_TOKENS, C2);
    t.t_logits = pare_model_add_target(m, "t.logits", PARE_ROWS_SEQS, K);
    pare_model_add_loss(m, PARE_OP_MSE, "mse", t.h1, t.t_hidden, 1.0f, 0);
    pare_model_add_loss(m, PARE_OP_MSE, "pair", h2, t.h1, 1.0f, 0);
    pare_model_add_loss(m, PARE_OP_KLDIV, "kl", m->logits, t.t_logits, 1.0f, 2.0f);
    t.n_xent = pare_model_find_node(m, "loss"), t.n_mse = pare_model_find_node(m, "mse");
    t.n_pair = pare_model_find_node(m, "pair"), t.n_kl = pare_model_find_node(m, "kl");
    return t;
}

static void set_weights(toy *t, float xent, float mse, float pair, float kl)
{
    t->m->nodes[t->n_xent].a.weight = xent, t->m->nodes[t->n_mse].a.weight = mse;
    t->m->nodes[t->n_pair].a.weight = pair, t->m->nodes[t->n_kl].a.weight = kl;
}

static int32_t tok[B * T], len[B] = {4, 2, 3}, lab[B] = {2, 0, 1};
static float th[B * T * C2], tl[B * K];

static pare_status bind_all(pare_exec *x, const toy *t)
{
    PARE_TRY(pare_exec_bind(x, tok, len, lab));
    PARE_TRY(pare_exec_bind_target(x, t->t_hidden, th));
    return pare_exec_bind_target(x, t->t_logits, tl);
}

/* Gradients of every parameter, concatenated, after one forward + backward. */
static float *grads(toy *t, pare_exec *x, int64_t *n)
{
    pare_model *m = t->m;
    pare_model_zero_grad(m);
    pare_exec_forward(x);
    pare_exec_backward(x);
    *n = 0;
    for (int64_t i = 0; i < m->nparams; i++) *n += pare_param_numel(&m->params[i]);
    float *g = malloc(sizeof(float) * (size_t)*n), *p = g;
    for (int64_t i = 0; i < m->nparams; i++) {
        memcpy(p, m->params[i].grad, sizeof(float) * (size_t)pare_param_numel(&m->params[i]));
        p += pare_param_numel(&m->params[i]);
    }
    return g;
}

/* Every parameter coordinate: analytic gradient against central differences of x->loss. */
static void gradcheck(pare_model *m, pare_exec *x, const char *what)
{
    pare_model_zero_grad(m);
    pare_exec_forward(x);
    pare_exec_backward(x);
    double worst = 0;
    const char *at = "";
    int checked = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        for (int64_t j = 0; j < pare_param_numel(p); j++) {
            float keep = p->blob->data[j];
            double h = 1e-2;
            p->blob->data[j] = keep + (float)h;
            pare_exec_forward(x);
            double lp = x->loss;
            p->blob->data[j] = keep - (float)h;
            pare_exec_forward(x);
            double lm = x->loss;
            p->blob->data[j] = keep;
            double num = (lp - lm) / (2 * h), ana = p->grad[j];
            double err = fabs(num - ana) / (2e-3 + fabs(num) + fabs(ana));
            if (err > worst) worst = err, at = p->name;
            checked++;
        }
    }
    ok(worst < 2e-2, "%s: gradients = finite differences on all %d coordinates (worst rel err %.2g at %s)", what, checked,
       worst, at);
}

static pare_model *encoder(int64_t d, int64_t layers, int seed)
{
    char ds[16];
    snprintf(ds, sizeof ds, "%lld", (long long)d);
    pare_kv kv[] = {{"vocab", PARE_KV_NUM, V, NULL},  {"max_T", PARE_KV_NUM, T, NULL},       {"d", PARE_KV_NUM, (double)d, NULL},
                    {"heads", PARE_KV_NUM, 2, NULL},  {"layers", PARE_KV_NUM, (double)layers, NULL},
                    {"classes", PARE_KV_NUM, K, NULL}, {"seed", PARE_KV_NUM, seed, NULL}};
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 7) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) return NULL;
    return m;
}

int main(void)
{
    tap_plan_lazy();
    pare_rng r;
    pare_rng_seed(&r, 5);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&r, V);
    for (int i = 0; i < B * T * C2; i++) th[i] = (float)pare_rng_normal(&r);
    for (int i = 0; i < B * K; i++) tl[i] = (float)(2.0 * pare_rng_normal(&r));

    toy t = toy_new();
    pare_model *m = t.m;
    ok(m->nodes[t.n_xent].a.weight == 1.0f && m->nodes[t.n_kl].a.temperature == 2.0f,
       "a cross-entropy node made with weight 0 gets weight 1; KL keeps its temperature");
    pare_exec *x = NULL;
    if (!ok(pare_model_alloc_grads(m) == PARE_OK && pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK, "executor"))
        return tap_done();

    /* an unbound target stops the forward, naming it; pare_exec_bind forgets the targets of the last batch */
    pare_exec_bind(x, tok, len, lab);
    ok(pare_exec_forward(x) == PARE_EINVAL && strstr(pare_errmsg(), "t.hidden") && strstr(pare_errmsg(), "not bound"),
       "forward with a target not bound: %s", pare_errmsg());
    ok(bind_all(x, &t) == PARE_OK && pare_exec_forward(x) == PARE_OK, "forward with the targets bound");
    pare_exec_bind(x, tok, len, lab);
    ok(pare_exec_forward(x) == PARE_EINVAL, "a new batch needs its targets again");
    bind_all(x, &t);

    /* ---- the cross-entropy alone: exactly today's number ---- */
    set_weights(&t, 1, 0, 0, 0);
    pare_exec_forward(x);
    float probs[B * K], rows[B];
    float want = pare_crossentropy_forward(rows, probs, (const float *)x->buf[m->logits], lab, B, K);
    ok(x->loss == want, "cross-entropy weight 1, the others 0: x->loss is the mean cross-entropy bit for bit (%.9g)", x->loss);

    /* ---- each term against a reference computed here ---- */
    pare_loss_term terms[8];
    int nt = pare_exec_loss_terms(x, terms, 8);
    ok(nt == 4 && !strcmp(terms[0].name, "loss") && terms[0].op == PARE_OP_XENT && !strcmp(terms[3].name, "kl") &&
           terms[3].op == PARE_OP_KLDIV && terms[1].weight == 0.0f,
       "pare_exec_loss_terms lists the four loss nodes in order with their weights");
    const float *h1 = x->buf[t.h1], *lg = x->buf[m->logits];
    double mse = 0;
    int nvalid = 0;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < len[b]; p++, nvalid++)
            for (int c = 0; c < C2; c++) {
                double d = h1[(b * T + p) * C2 + c] - th[(b * T + p) * C2 + c];
                mse += d * d;
            }
    mse /= (double)nvalid * C2;
    is_close(terms[1].value, mse, 1e-6, 1e-5, "mse term = mean over valid tokens of (proj − target)²");
    double kl = 0, temp = 2;
    for (int b = 0; b < B; b++) {
        double zs = 0, zt = 0;
        for (int k = 0; k < K; k++) zs += exp(lg[b * K + k] / temp), zt += exp(tl[b * K + k] / temp);
        for (int k = 0; k < K; k++) {
            double p = exp(tl[b * K + k] / temp) / zt, q = exp(lg[b * K + k] / temp) / zs;
            kl += p * log(p / q);
        }
    }
    kl *= temp * temp / B;
    is_close(terms[3].value, kl, 1e-6, 1e-5, "kl term = T²·KL(softmax(t/T) ∥ softmax(s/T)), batch mean, T = 2");
    set_weights(&t, 0.5f, 0.25f, 2.0f, 0.75f);
    pare_exec_forward(x);
    nt = pare_exec_loss_terms(x, terms, 8);
    double total = 0;
    for (int i = 0; i < nt; i++) total += (double)terms[i].weight * terms[i].value;
    is_close(x->loss, total, 1e-7, 1e-6, "x->loss = Σ weight · term");
    const float *loss_out = x->buf[m->nodes[t.n_kl].out];
    ok(loss_out[0] == terms[3].value, "a loss node's (1 x 1) output holds its term");

    /* ---- padded tokens carry no loss ---- */
    set_weights(&t, 0, 1, 0, 0);
    pare_exec_forward(x);
    float before = x->loss, saved = th[1 * T * C2 + 3 * C2 + 1]; /* row b=1, position 3 >= len 2 */
    th[1 * T * C2 + 3 * C2 + 1] = 100.0f;
    pare_exec_bind_target(x, t.t_hidden, th);
    pare_exec_forward(x);
    ok(x->loss == before, "changing the target at a padded token leaves the loss unchanged");
    th[1 * T * C2 + 3 * C2 + 1] = saved;
    pare_exec_bind_target(x, t.t_hidden, th);

    /* ---- gradients against finite differences ---- */
    set_weights(&t, 0, 1, 0, 0);
    gradcheck(t.m, x, "MSE of a Linear's output against a target");
    set_weights(&t, 0, 0, 1, 0);
    gradcheck(t.m, x, "MSE between two trained values (both Linears get gradients)");
    set_weights(&t, 0, 0, 0, 1);
    gradcheck(t.m, x, "KL against target logits, T = 2");
    set_weights(&t, 0.3f, 0.5f, 0.2f, 0.7f);
    gradcheck(t.m, x, "all four terms, weighted");

    /* ---- several terms: the gradient is the weighted sum of the single-term gradients ---- */
    int64_t n;
    const float alpha = 0.3f;
    set_weights(&t, 1, 0, 0, 0);
    float *gx = grads(&t, x, &n);
    float lx = x->loss;
    set_weights(&t, 0, 0, 0, 1);
    float *gk = grads(&t, x, &n);
    float lk = x->loss;
    set_weights(&t, alpha, 0, 0, 1 - alpha);
    float *gm = grads(&t, x, &n);
    float *mix = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) mix[i] = alpha * gx[i] + (1 - alpha) * gk[i];
    is_close(x->loss, alpha * lx + (1 - alpha) * lk, 1e-6, 1e-6, "α·xent + (1−α)·KL: the loss is the weighted sum");
    is_close_arr(gm, mix, (long)n, 1e-6, 1e-5, "α·xent + (1−α)·KL: the gradient is α·∇xent + (1−α)·∇KL");
    set_weights(&t, 0, 0, 0, 0);
    free(gx), free(gk), free(gm);
    gx = grads(&t, x, &n);
    int zero = 1;
    for (int64_t i = 0; i < n; i++) zero &= gx[i] == 0.0f;
    ok(zero && x->loss == 0.0f, "every weight 0: loss 0 and no gradient");
    free(gx), free(mix);

    /* ---- the inference executor computes the same terms ---- */
    set_weights(&t, 0.5f, 0.25f, 2.0f, 0.75f);
    pare_exec_forward(x);
    pare_exec *xi = NULL;
    ok(pare_exec_new(&xi, m, B, T, PARE_EXEC_INFER) == PARE_OK && bind_all(xi, &t) == PARE_OK && pare_exec_forward(xi) == PARE_OK,
       "inference executor with targets");
    is_close(xi->loss, x->loss, 1e-6, 1e-5, "inference total loss = training executor's");
    pare_exec_free(xi);

    /* ---- errors ---- */
    ok(pare_model_add_loss(m, PARE_OP_MSE, "bad", t.h1, t.t_logits, 1, 0) < 0 && strstr(pare_errmsg(), "one shape") &&
           strstr(pare_errmsg(), "(B·T, 5)") && strstr(pare_errmsg(), "(B, 3)"),
       "a loss between values of different shapes: %s", pare_errmsg());
    int ln1 = pare_model_find_value(m, "loss#probs");
    ok(pare_model_add_loss(m, PARE_OP_MSE, "bad", ln1, ln1, 1, 0) < 0 && strstr(pare_errmsg(), "backward cache"),
       "a cache as a loss input: %s", pare_errmsg());
    ok(pare_model_add_loss(m, PARE_OP_KLDIV, "bad", m->logits, t.t_logits, 1, 0) < 0 && strstr(pare_errmsg(), "temperature"),
       "KL with temperature 0: %s", pare_errmsg());
    ok(pare_model_add_loss(m, PARE_OP_XENT, "bad", m->logits, t.t_logits, 1, 1) < 0, "cross-entropy is not a two-value loss: %s",
       pare_errmsg());
    ok(pare_model_add_loss(m, PARE_OP_MSE, "mse", t.h1, t.t_hidden, 1, 0) < 0 && strstr(pare_errmsg(), "already used"),
       "a used name: %s", pare_errmsg());
    ok(pare_model_add_target(m, "proj", PARE_ROWS_TOKENS, 3) < 0, "a target named as a node: %s", pare_errmsg());
    th[7] = NAN;
    ok(pare_exec_bind_target(x, t.t_hidden, th) == PARE_ENUMERIC && strstr(pare_errmsg(), "t.hidden holds NaN at (1, 2)"),
       "a NaN target: %s", pare_errmsg());
    th[7] = 0;
    ok(pare_exec_bind_target(x, m->logits, th) == PARE_EINVAL, "binding a non-target: %s", pare_errmsg());
    ok(pare_op_find_loss("kl_div") == PARE_OP_KLDIV && pare_op_find_loss("cosine") == PARE_OP_COSINE &&
           pare_op_find_loss("kl_div_reverse") == PARE_OP_KLDIV_REV && pare_op_find_loss("gelu") < 0,
       "loss ops by name");
    ok(pare_model_add_loss(m, PARE_OP_KLDIV_REV, "bad", m->logits, t.t_logits, 1, -1) < 0 && strstr(pare_errmsg(), "temperature"),
       "reverse KL with temperature -1: %s", pare_errmsg());
    pare_exec_free(x);
    /* ---- the reverse KL (FastBERT's direction) as a node: its term and whole-model gradients ---- */
    {
        pare_model *c = pare_model_clone(m);
        int n_rev = -1;
        pare_exec *xr = NULL;
        int made = c && pare_model_add_loss(c, PARE_OP_KLDIV_REV, "klr", c->logits, t.t_logits, 1.0f, 2.0f) >= 0;
        if (made) n_rev = pare_model_find_node(c, "klr");
        made = made && pare_model_alloc_grads(c) == PARE_OK && pare_exec_new(&xr, c, B, T, PARE_EXEC_TRAIN) == PARE_OK;
        if (ok(made, "a kl_div_reverse node (T = 2) on a clone")) {
            for (int64_t i = 0; i < c->nnodes; i++)
                if (pare_op_is_loss(c->nodes[i].op)) c->nodes[i].a.weight = i == n_rev ? 1.0f : 0.0f;
            bind_all(xr, &t);
            pare_exec_forward(xr);
            const float *zs = xr->buf[c->logits];
            double rev = 0;
            for (int b = 0; b < B; b++) {
                double s1 = 0, s2 = 0;
                for (int k = 0; k < K; k++) s1 += exp(zs[b * K + k] / temp), s2 += exp(tl[b * K + k] / temp);
                for (int k = 0; k < K; k++) {
                    double q = exp(zs[b * K + k] / temp) / s1, p = exp(tl[b * K + k] / temp) / s2;
                    rev += q * log(q / p);
                }
            }
            rev *= temp * temp / B;
            is_close(xr->loss, rev, 1e-6, 1e-5, "klr term = T²·KL(softmax(s/T) ∥ softmax(t/T)), batch mean, T = 2");
            gradcheck(c, xr, "reverse KL against target logits, T = 2");
        }
        pare_exec_free(xr);
        pare_model_free(c);
    }
    /* the loss terms appended for a run are cut off again */
    {
        pare_model *c = pare_model_clone(m);
        int64_t nn = c->nnodes, nv = c->nvalues, np = c->nparams;
        int tg = pare_model_add_target(c, "extra", PARE_ROWS_SEQS, K);
        int64_t sh[2] = {K, K};
        pare_model_add_param(c, "extra.weight", 2, sh, 1);
        pare_model_add_loss(c, PARE_OP_COSINE, "extra.cos", c->logits, tg, 1, 0);
        pare_model_truncate(c, nn, nv, np);
        ok(c->nnodes == nn && c->nvalues == nv && c->nparams == np && pare_model_find_value(c, "extra") < 0,
           "pare_model_truncate gives back the graph as it was");
        pare_model_free(c);
    }
    pare_model_free(m);

    /* ---- capture: a teacher's values, kept by the inference planner ---- */
    pare_model *teacher = encoder(8, 2, 3), *student = encoder(6, 1, 4);
    if (!ok(teacher && student, "teacher and student build")) return tap_done();
    const char *keep[] = {"enc.0.add2", "head", "enc.1.attn#att"};
    pare_exec *ti = NULL, *tt = NULL, *plain = NULL;
    ok(pare_exec_new_keep(&ti, teacher, B, T, PARE_EXEC_INFER, keep, 3) == PARE_OK, "inference executor keeping 3 values");
    pare_exec_new(&tt, teacher, B, T, PARE_EXEC_TRAIN);
    pare_exec_new(&plain, teacher, B, T, PARE_EXEC_INFER);
    pare_exec_bind(ti, tok, len, lab), pare_exec_bind(tt, tok, len, lab), pare_exec_bind(plain, tok, len, lab);
    pare_exec_forward(ti), pare_exec_forward(tt), pare_exec_forward(plain);
    ok(ti->planned_bytes >= plain->planned_bytes, "keeping values costs memory (%zu >= %zu bytes planned)", ti->planned_bytes,
       plain->planned_bytes);
    for (int k = 0; k < 3; k++) {
        const float *a, *b;
        int64_t ra, ca, rb, cb;
        pare_status s1 = pare_exec_value(ti, keep[k], &a, &ra, &ca), s2 = pare_exec_value(tt, keep[k], &b, &rb, &cb);
        char what[120];
        snprintf(what, sizeof what, "captured %s (%lld x %lld) = the training executor's", keep[k], (long long)ra, (long long)ca);
        if (ok(s1 == PARE_OK && s2 == PARE_OK && ra == rb && ca == cb, "%s found in both", keep[k])) is_close_arr(a, b, (long)(ra * ca), 1e-6, 1e-5, what);
    }
    const float *d;
    int64_t rr, cc;
    ok(pare_exec_value(plain, "enc.0.add2", &d, &rr, &cc) == PARE_EINVAL && strstr(pare_errmsg(), "not kept"),
       "a value the planner did not keep is an error: %s", pare_errmsg());
    ok(pare_exec_value(plain, "head", &d, &rr, &cc) == PARE_OK && rr == B && cc == K, "the logits are always kept");
    pare_exec *bad = NULL;
    const char *nosuch[] = {"enc.7.add2"};
    ok(pare_exec_new_keep(&bad, teacher, B, T, PARE_EXEC_INFER, nosuch, 1) == PARE_EINVAL && strstr(pare_errmsg(), "enc.7.add2") &&
           strstr(pare_errmsg(), "enc.0.ln1"),
       "an unknown name lists the nodes: %.120s...", pare_errmsg());
    const char *mask[] = {"enc.0.drop1#mask"};
    ok(pare_exec_new_keep(&bad, teacher, B, T, PARE_EXEC_INFER, mask, 1) == PARE_EINVAL, "a byte mask is not captured: %s",
       pare_errmsg());

    /* ---- the teacher's outputs as a student's targets: DistilBERT's three terms ---- */
    {
        int th_t = pare_model_add_target(student, "teacher.logits", PARE_ROWS_SEQS, K);
        int tl_n = pare_model_find_node(student, "ln_f");
        int hs = student->nodes[tl_n].out;
        int proj_t = pare_model_add_target(student, "teacher.hidden", PARE_ROWS_TOKENS, 6);
        ok(pare_model_add_loss(student, PARE_OP_KLDIV, "distill.kl", student->logits, th_t, 0.5f, 2.0f) >= 0 &&
               pare_model_add_loss(student, PARE_OP_COSINE, "distill.cos", hs, proj_t, 0.25f, 0) >= 0,
           "student: KL on the logits and cosine on the hidden states");
        student->nodes[student->values[student->loss].producer].a.weight = 0.5f;
        pare_exec *s = NULL;
        pare_model_alloc_grads(student);
        pare_exec_new(&s, student, B, T, PARE_EXEC_TRAIN);
        const float *tlog;
        pare_exec_value(ti, "head", &tlog, &rr, &cc);
        /* the teacher is wider (8): its hidden states are truncated to 6 columns here, standing in for a projection */
        const float *thid;
        pare_exec_value(ti, "enc.0.add2", &thid, &rr, &cc);
        float *h6 = malloc(sizeof(float) * (size_t)(rr * 6));
        for (int64_t i = 0; i < rr; i++) memcpy(h6 + i * 6, thid + i * cc, 6 * sizeof(float));
        int ran = pare_exec_bind(s, tok, len, lab) == PARE_OK && pare_exec_bind_target(s, th_t, tlog) == PARE_OK &&
                  pare_exec_bind_target(s, proj_t, h6) == PARE_OK && pare_exec_forward(s) == PARE_OK &&
                  pare_exec_backward(s) == PARE_OK;
        ok(ran && isfinite(s->loss) && s->loss > 0, "student runs forward and backward against the teacher's captured "
           "outputs (loss %.4f)", s->loss);
        nt = pare_exec_loss_terms(s, terms, 8);
        ok(nt == 3 && fabs(s->loss - (0.5 * terms[0].value + 0.5 * terms[1].value + 0.25 * terms[2].value)) < 1e-5,
           "0.5·xent %.4f + 0.5·KL %.4f + 0.25·cos %.4f", terms[0].value, terms[1].value, terms[2].value);
        free(h6);
        pare_exec_free(s);
    }
    pare_exec_free(ti), pare_exec_free(tt), pare_exec_free(plain);
    pare_model_free(teacher), pare_model_free(student);

    /* ---- a loss on a student's attention probabilities (TinyBERT's attention term) ---- */
    {
        pare_model *a = encoder(6, 2, 9);
        perturb_trainable(a, 11, 0.5);
        int att = pare_model_find_value(a, "enc.1.attn#att");
        int tg = pare_model_add_target(a, "teacher.att", a->values[att].rows, a->values[att].cols);
        ok(pare_model_add_loss(a, PARE_OP_MSE, "distill.att", att, tg, 1, 0) >= 0,
           "an attention's probabilities are a loss input");
        a->nodes[a->values[a->loss].producer].a.weight = 0; /* the attention term alone */
        pare_exec *ax = NULL;
        pare_model_alloc_grads(a);
        if (ok(pare_exec_new(&ax, a, B, T, PARE_EXEC_TRAIN) == PARE_OK, "training executor with the attention term")) {
            float *ta = malloc(sizeof(float) * (size_t)(B * T * T * 2));
            for (int i = 0; i < B * T * T * 2; i++) ta[i] = (float)pare_rng_uniform(&r) * 0.5f;
            pare_exec_bind(ax, tok, len, lab);
            pare_exec_bind_target(ax, tg, ta);
            gradcheck(a, ax, "MSE on the last layer's attention probabilities");
            /* only layer 1's q, k and the layers below get a gradient from it: layer 1's V, O and FFN none */
            int64_t wo = pare_model_find_param(a, "enc.1.attn.out.weight");
            float g = 0;
            for (int64_t i = 0; wo >= 0 && i < pare_param_numel(&a->params[wo]); i++) g += fabsf(a->params[wo].grad[i]);
            ok(wo >= 0 && g == 0.0f, "the attention term gives the output projection after it no gradient (Σ|g| = %g)", g);
            free(ta);
            pare_exec_free(ax);
        }
        int drop = pare_model_find_value(a, "enc.0.drop1#mask");
        ok(drop < 0 || pare_model_add_loss(a, PARE_OP_MSE, "bad.mask", drop, drop, 1, 0) < 0, "other caches stay refused");
        pare_model_free(a);
    }

    /* ---- an inference executor reused after the weights changed: pare_exec_repack ---- */
    {
        pare_model *a = encoder(6, 1, 12);
        pare_exec *old = NULL, *fresh = NULL;
        pare_exec_new(&old, a, B, T, PARE_EXEC_INFER);
        pare_exec_bind(old, tok, len, lab);
        pare_exec_forward(old);
        float stale[B * K];
        perturb_trainable(a, 13, 0.3);
        pare_exec_forward(old);
        memcpy(stale, old->buf[a->logits], sizeof stale);
        ok(pare_exec_repack(old) == PARE_OK && pare_exec_forward(old) == PARE_OK, "repack and run again");
        pare_exec_new(&fresh, a, B, T, PARE_EXEC_INFER);
        pare_exec_bind(fresh, tok, len, lab);
        pare_exec_forward(fresh);
        int differs = 0;
        for (int i = 0; i < B * K; i++) differs |= stale[i] != ((float *)fresh->buf[a->logits])[i];
        ok(differs, "without a repack the executor still ran the old Linear weights");
        is_close_arr(old->buf[a->logits], fresh->buf[a->logits], B * K, 0, 0, "after pare_exec_repack it equals a new executor");
        pare_exec_free(old), pare_exec_free(fresh);
        pare_model_free(a);
    }
    return tap_done();
}
