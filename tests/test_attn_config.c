/* test_attn_config.c — attention resolved once: the configuration an ATTENTION node keeps.
 *
 * A configuration made from key/values and one parsed from its canonical text are equal and print the
 * same spec; the builder parses a model's attention text once per distinct layer and executors parse
 * nothing (the parse count does not move) while borrowing the instance kept at max_T; clones share the
 * configuration objects; a model built from configurations equals the one built from their text (same
 * config JSON, bit-identical logits); the dense default is the "full" variant (bit-identical logits,
 * gradients and captured probabilities against attention = "full"); errors name the layer and option.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn/attn_internal.h"
#include "graph/exec.h"
#include "model/transformer.h"
#include "tap.h"

enum { B = 3, T = 32, V = 11 };

static pare_status model_opts(pare_options *o, const char *kind, const char *attention)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, kind},         {"vocab", PARE_KV_NUM, V, NULL},
                    {"max_T", PARE_KV_NUM, T, NULL},        {"d", PARE_KV_NUM, 16, NULL},
                    {"heads", PARE_KV_NUM, 2, NULL},        {"layers", PARE_KV_NUM, 3, NULL},
                    {"seed", PARE_KV_NUM, 5, NULL},         {"attention", PARE_KV_STR, 0, attention}};
    return pare_opts_resolve(o, &pare_model_schema, kv, 8);
}

static pare_model *build(const char *kind, const char *attention)
{
    pare_options o;
    pare_model *m = NULL;
    if (model_opts(&o, kind, attention) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build (%s): %s", attention, pare_errmsg());
        return NULL;
    }
    return m;
}

static int32_t tok[B * T], len[B] = {T, 9, 3};

/* Inference logits of m into out (n floats); also a training step's gradient of enc.0.attn.qkv.weight. */
static int64_t run(pare_model *m, float *out, float *grad, int64_t cap)
{
    pare_exec *x = NULL;
    int64_t n = 0;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) != PARE_OK || pare_exec_bind(x, tok, len, NULL) != PARE_OK ||
        pare_exec_forward(x) != PARE_OK) {
        diag("run: %s", pare_errmsg());
        pare_exec_free(x);
        return -1;
    }
    n = m->lm ? B * T * m->vocab : B * m->nclass;
    if (n > cap) n = cap;
    memcpy(out, pare_exec_logits(x), sizeof(float) * (size_t)n);
    pare_exec_free(x);
    if (!grad) return n;
    int w = pare_model_find_param(m, m->lm ? "dec.0.attn.qkv.weight" : "enc.0.attn.qkv.weight");
    if (pare_model_alloc_grads(m) != PARE_OK || pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) != PARE_OK ||
        pare_exec_bind(x, tok, len, NULL) != PARE_OK || pare_exec_forward(x) != PARE_OK ||
        pare_exec_backward(x) != PARE_OK) {
        diag("train step: %s", pare_errmsg());
        pare_exec_free(x);
        return -1;
    }
    memcpy(grad, m->params[w].grad, sizeof(float) * 48 * 16);
    pare_exec_free(x);
    return n;
}

static void test_configs(void)
{
    pare_kv kv[] = {{"window", PARE_KV_NUM, 5, NULL}, {"global", PARE_KV_STR, 0, "1"}};
    pare_attn_config *a = NULL, *b = NULL, *c = NULL;
    ok(pare_attn_config_new(&a, "longformer", kv, 2) == PARE_OK, "a configuration from key/values");
    ok(a && !strcmp(a->spec, "longformer:window=5,global=1"), "its canonical spec: the given keys in schema order (%s)",
       a ? a->spec : "");
    ok(pare_attn_config_parse(&b, "longformer:global=1,window=5") == PARE_OK && pare_attn_config_equal(a, b) &&
           !strcmp(a->spec, b->spec),
       "the same options as text, in another order: an equal configuration with the same spec");
    ok(pare_attn_config_parse(&c, "longformer:window=6,global=1") == PARE_OK && !pare_attn_config_equal(a, c),
       "another window: not equal");
    pare_attn_config_release(c);
    c = NULL;
    ok(pare_attn_config_parse(&c, b->spec) == PARE_OK && pare_attn_config_equal(c, b), "the spec reads back");
    pare_attn_config_release(c);
    pare_kv fl[] = {{"p", PARE_KV_NUM, 0.1, NULL}};
    ok(pare_attn_config_new(&c, "performer", fl, 1) == PARE_EINVAL && strstr(pare_errmsg(), "unknown option 'p'") &&
           strstr(pare_errmsg(), "features"),
       "an unknown option names it and lists the valid ones: %s", pare_errmsg());
    pare_kv bad[] = {{"segments", PARE_KV_STR, 0, "8,16"}, {"rates", PARE_KV_STR, 0, "1;2"}};
    ok(pare_attn_config_new(&c, "longnet", bad, 2) == PARE_EINVAL && strstr(pare_errmsg(), "rates"),
       "a value the spec text cannot carry is refused naming the option: %s", pare_errmsg());

    /* instances: made from the resolved options, or the kept one */
    pare_attn *i1 = NULL, *i2 = NULL;
    int own1 = -1, own2 = -1;
    long p0 = pare_attn_spec_parses();
    ok(pare_attn_config_keep(a, T, 2, 8, 0) == PARE_OK && a->kept, "keep an instance at (T, H, D)");
    ok(pare_attn_config_instance(&i1, &own1, a, T, 2, 8, 0) == PARE_OK && i1 == a->kept && own1 == 0,
       "the same shape borrows the kept instance");
    ok(pare_attn_config_instance(&i2, &own2, a, 8, 2, 8, 0) == PARE_OK && i2 != a->kept && own2 == 1 && i2->T == 8,
       "another T gets its own");
    ok(pare_attn_spec_parses() == p0, "no text parsed for either");
    ok(pare_attn_config_keep(a, 8, 2, 8, 0) == PARE_EINVAL, "a configuration keeps one instance only");
    pare_attn_free(i2);
    pare_attn_config *d = pare_attn_config_default();
    ok(d->v == &pare_attn_full && !strcmp(d->spec, "full") && pare_attn_config_retain(d) == d,
       "the default configuration is the full variant, static");
    pare_attn_config_release(d);
    ok(pare_attn_config_keep(d, T, 2, 8, 0) == PARE_EINVAL, "the static default keeps no instance");
    pare_attn_config_release(a);
    pare_attn_config_release(b);
}

static void test_model_parses_once(void)
{
    long p0 = pare_attn_spec_parses();
    pare_model *m = build("encoder", "longformer:window=5;bigbird:block=4,window=3,random=1,global=1");
    ok(m != NULL, "a model with two variants (the last repeats)");
    if (!m) return;
    long p1 = pare_attn_spec_parses();
    ok(p1 - p0 == 2, "the builder parsed each distinct layer's text once (%ld parses)", p1 - p0);
    int at[3], k = 0;
    for (int64_t i = 0; i < m->nnodes && k < 3; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION) at[k++] = (int)i;
    pare_attn_config *c0 = m->nodes[at[0]].a.attn, *c1 = m->nodes[at[1]].a.attn, *c2 = m->nodes[at[2]].a.attn;
    ok(k == 3 && c1 == c2 && c0 != c1, "repeated layers share one configuration object");
    ok(!strcmp(c0->spec, "longformer:window=5") && !strcmp(c1->spec, "bigbird:block=4,window=3,random=1,global=1"),
       "nodes keep the canonical specs (%s; %s)", c0->spec, c1->spec);
    ok(c0->kept && c0->kept->T == T && c1->kept && c1->kept->T == T, "each keeps its instance at max_T");

    pare_model *cl = pare_model_clone(m);
    ok(cl && cl->nodes[at[0]].a.attn == c0 && cl->nodes[at[2]].a.attn == c1 && c1->refs >= 3,
       "a clone shares the configurations (refs %d)", c1->refs);
    pare_exec *x = NULL, *y = NULL;
    ok(pare_exec_new(&x, cl, B, T, PARE_EXEC_TRAIN) == PARE_OK && x->attn[at[0]] == c0->kept && !x->attn_owned[at[0]] &&
           x->attn[at[2]] == c1->kept,
       "an executor at max_T borrows the model's instances");
    if (pare_exec_new(&y, m, B, 24, PARE_EXEC_INFER) != PARE_OK) diag("T=24: %s", pare_errmsg());
    ok(y && y->attn[at[0]] != c0->kept &&
           y->attn_owned[at[0]] && y->attn[at[0]]->T == 24,
       "an executor at T=24 makes its own from the configuration");
    ok(pare_attn_spec_parses() == p1, "executors parsed no attention text");
    pare_exec_free(x);
    pare_exec_free(y);
    pare_model_free(m);
    ok(c1->refs >= 2 && !strcmp(c1->spec, "bigbird:block=4,window=3,random=1,global=1"),
       "the clone keeps the configuration alive after the original is freed");
    pare_model_free(cl);
}

static void test_configs_vs_text(void)
{
    const char *text = "longformer:window=5,global=1;full;bigbird:block=4,window=3,random=1,global=1";
    pare_model *mt = build("encoder", text);
    pare_kv lw[] = {{"global", PARE_KV_NUM, 1, NULL}, {"window", PARE_KV_NUM, 5, NULL}};
    pare_kv bb[] = {{"window", PARE_KV_NUM, 3, NULL}, {"global", PARE_KV_NUM, 1, NULL},
                    {"block", PARE_KV_NUM, 4, NULL}, {"random", PARE_KV_NUM, 1, NULL}};
    pare_attn_config *cfg[4] = {NULL, NULL, NULL, NULL};
    pare_status st = pare_attn_config_new(&cfg[0], "longformer", lw, 2);
    if (st == PARE_OK) st = pare_attn_config_new(&cfg[1], "full", NULL, 0);
    if (st == PARE_OK) st = pare_attn_config_new(&cfg[2], "bigbird", bb, 4);
    if (st == PARE_OK) st = pare_attn_config_new(&cfg[3], "bigbird", bb, 4); /* a repeat of the last */
    pare_options o;
    pare_model *mc = NULL;
    if (st == PARE_OK) st = model_opts(&o, "encoder", "");
    if (st == PARE_OK) st = pare_transformer_build_attn(&mc, &o, cfg, 4);
    for (int i = 0; i < 4; i++) pare_attn_config_release(cfg[i]);
    ok(st == PARE_OK && mt && mc, "the same model from configurations and from text: %s", st ? pare_errmsg() : "");
    if (!mt || !mc) return;
    ok(!strcmp(mt->config, mc->config), "the same config JSON (trailing repeats dropped)");
    if (strcmp(mt->config, mc->config)) diag("text: %s\nconfigs: %s", mt->config, mc->config);
    float a[64], b[64];
    int64_t na = run(mt, a, NULL, 64), nb = run(mc, b, NULL, 64);
    ok(na > 0 && na == nb && !memcmp(a, b, sizeof(float) * (size_t)na), "bit-identical logits");
    pare_model_free(mt);
    pare_model_free(mc);

    /* errors name the layer and the option */
    pare_attn_config *w = NULL;
    pare_kv big[] = {{"window", PARE_KV_NUM, 99, NULL}};
    pare_attn_config *two[2] = {pare_attn_config_default(), NULL};
    ok(pare_attn_config_new(&w, "longformer", big, 1) == PARE_OK, "a window too wide for the model is a valid option");
    two[1] = w;
    ok(pare_transformer_build_attn(&mc, &o, two, 2) == PARE_EINVAL && strstr(pare_errmsg(), "layer 1") &&
           strstr(pare_errmsg(), "window"),
       "building refuses it naming the layer and the option: %s", pare_errmsg());
    pare_attn_config_release(w);
    pare_model *e = build("encoder", "full;bigbird:blok=4");
    ok(!e && strstr(pare_errmsg(), "layer 1") && strstr(pare_errmsg(), "'blok'") && strstr(pare_errmsg(), "block"),
       "text: an unknown option names the layer, the option and the valid ones: %s", pare_errmsg());
    pare_model_free(e);
}

/* The dense default is the full variant: the same numbers, the same probabilities value. */
static void test_dense_is_full(const char *kind)
{
    pare_model *d = build(kind, ""), *f = build(kind, "full");
    ok(d && f, "%s: dense default and attention = \"full\"", kind);
    if (!d || !f) return;
    static float ld[B * T * V], lf[B * T * V], gd[48 * 16], gf[48 * 16];
    int64_t n = run(d, ld, gd, B * T * V), nf = run(f, lf, gf, B * T * V);
    ok(n > 0 && n == nf && !memcmp(ld, lf, sizeof(float) * (size_t)n), "%s: bit-identical logits", kind);
    ok(!memcmp(gd, gf, sizeof gd), "%s: bit-identical gradients", kind);
    const char *att = !strcmp(kind, "decoder") ? "dec.1.attn#att" : "enc.1.attn#att";
    pare_exec *x = NULL;
    const float *p = NULL;
    int64_t rows = 0, cols = 0;
    ok(pare_exec_new_keep(&x, f, B, T, PARE_EXEC_INFER, &att, 1) == PARE_OK && pare_exec_bind(x, tok, len, NULL) == PARE_OK &&
           pare_exec_forward(x) == PARE_OK && pare_exec_value(x, att, &p, &rows, &cols) == PARE_OK,
       "%s: the probabilities of attention = \"full\" are captured by name (%s)", kind, att);
    int sums = p != NULL && rows * cols == B * 2 * T * T;
    for (int64_t r = 0; sums && r < B * 2 * T; r++) {
        double s = 0;
        for (int64_t j = 0; j < T; j++) s += p[r * T + j];
        sums = fabs(s - 1.0) < 1e-5;
    }
    ok(sums, "%s: rows of probabilities sum to 1", kind);
    pare_exec_free(x);
    pare_model_free(d);
    pare_model_free(f);
}

int main(void)
{
    tap_plan_lazy();
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)((i * 7 + 3) % V);
    test_configs();
    test_model_parses_once();
    test_configs_vs_text();
    test_dense_is_full("encoder");
    test_dense_is_full("decoder");
    return tap_done();
}
