/* test_graph.c — the graph IR end to end: whole-model gradients against finite differences (encoder
 * and decoder, padding and causal masks), the inference planner against the training executor,
 * clone/apply weight sharing, and the errors of bad shapes and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

static pare_model *build_scaled(const char *kind, int64_t V, int64_t T, int64_t C, int64_t H, int64_t L, int64_t ncls,
                                const char *pos, const char *pool, double emb_scale);
static pare_model *build(const char *kind, int64_t V, int64_t T, int64_t C, int64_t H, int64_t L, int64_t ncls, const char *pos,
                         const char *pool)
{
    return build_scaled(kind, V, T, C, H, L, ncls, pos, pool, 1.0);
}

/* emb_scale: the token embeddings' scale (BART's √d), whose backward scales the table's gradient */
static pare_model *build_scaled(const char *kind, int64_t V, int64_t T, int64_t C, int64_t H, int64_t L, int64_t ncls,
                                const char *pos, const char *pool, double emb_scale)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, kind},  {"vocab", PARE_KV_NUM, (double)V, NULL}, {"max_T", PARE_KV_NUM, (double)T, NULL},
        {"d", PARE_KV_NUM, (double)C, NULL}, {"heads", PARE_KV_NUM, (double)H, NULL}, {"layers", PARE_KV_NUM, (double)L, NULL},
        {"classes", PARE_KV_NUM, (double)ncls, NULL}, {"pos", PARE_KV_STR, 0, pos}, {"pool", PARE_KV_STR, 0, pool},
        {"seed", PARE_KV_NUM, 7, NULL}, {"emb_scale", PARE_KV_NUM, emb_scale, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 11) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    /* larger weights than the 0.02 init so gradients are not tiny */
    perturb_trainable(m, 3, 0.3);
    return m;
}

static double loss_of(pare_exec *x)
{
    pare_exec_forward(x);
    return x->loss;
}

/* Compare d(loss)/d(param) with central differences on a few coordinates of every parameter. */
static void gradcheck(pare_model *m, int64_t B, int64_t T, const int32_t *tok, const int32_t *len, const int32_t *lab,
                      const char *what)
{
    pare_exec *x = NULL;
    if (!ok(pare_model_alloc_grads(m) == PARE_OK && pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK, "%s: executor", what))
        return;
    ok(pare_exec_bind(x, tok, len, lab) == PARE_OK, "%s: bind", what);
    pare_model_zero_grad(m);
    pare_exec_forward(x);
    pare_exec_backward(x);
    pare_rng r;
    pare_rng_seed(&r, 11);
    double worst = 0;
    const char *worst_name = "";
    int checked = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (int k = 0; k < 6; k++) {
            int64_t j = (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            float keep = p->blob->data[j];
            double h = 1e-2;
            p->blob->data[j] = keep + (float)h;
            double lp = loss_of(x);
            p->blob->data[j] = keep - (float)h;
            double lm = loss_of(x);
            p->blob->data[j] = keep;
            double num = (lp - lm) / (2 * h), ana = p->grad[j];
            double err = fabs(num - ana) / (1e-3 + fabs(num) + fabs(ana));
            if (err > worst) worst = err, worst_name = p->name;
            checked++;
        }
    }
    ok(worst < 2e-2, "%s: whole-model gradient vs finite differences on %d coordinates (worst rel err %.2g at %s)", what,
       checked, worst, worst_name);
    pare_exec_free(x);
}

static void planner_matches(pare_model *m, int64_t B, int64_t T, const int32_t *tok, const int32_t *len, const int32_t *lab,
                            const char *what)
{
    pare_exec *tr = NULL, *inf = NULL;
    pare_exec_new(&tr, m, B, T, PARE_EXEC_TRAIN);
    pare_exec_new(&inf, m, B, T, PARE_EXEC_INFER);
    pare_exec_bind(tr, tok, len, lab);
    pare_exec_bind(inf, tok, len, lab);
    pare_exec_forward(tr);
    pare_exec_forward(inf);
    int64_t n = (m->lm ? B * T : B) * m->nclass;
    is_close_arr(pare_exec_logits(inf), pare_exec_logits(tr), (long)n, 1e-6, 1e-5, "planned inference logits == training executor's");
    ok(inf->planned_bytes < tr->planned_bytes, "%s: planner reuses memory (%zu < %zu bytes)", what, inf->planned_bytes,
       tr->planned_bytes);
    is_close(inf->loss, tr->loss, 1e-6, 1e-5, "same loss");
    pare_exec_free(tr);
    pare_exec_free(inf);
}

int main(void)
{
    tap_plan_lazy();
    /* registries: every storage format has traits with a forward and a unique name; every pass id a pass */
    {
        int good = 1;
        for (int f = 0; f < PARE_FMT_COUNT; f++) {
            const pare_format_traits *t = pare_format_get((pare_format)f);
            good &= t && t->forward && t->name && !strcmp(pare_format_name((pare_format)f), t->name) && t->describe;
            for (int g = 0; g < f; g++) good &= strcmp(pare_format_get((pare_format)g)->name, t->name) != 0;
        }
        ok(good && pare_format_get(PARE_FMT_COUNT) == NULL, "format table: %d formats, each with a forward, a description and its own name",
           PARE_FMT_COUNT);
        ok(pare_format_get(PARE_FMT_SIMULATED)->simulated && !pare_format_get(PARE_FMT_I8_CHANNEL)->simulated &&
               pare_format_get(PARE_FMT_F32)->trainable && !pare_format_get(PARE_FMT_QBLOCK)->trainable,
           "format traits: only fake quantization is simulated, only f32 trains");
        int passes = pare_pass_count() == PARE_PASS_COUNT;
        for (int i = 0; i < PARE_PASS_COUNT; i++) passes &= pare_pass_at(i) && pare_pass_find(pare_pass_at(i)->schema->name) == pare_pass_at(i);
        ok(passes, "pass registry: %d passes indexed by pare_pass_id, each found by its name", PARE_PASS_COUNT);
    }
    enum { B = 3, T = 6, V = 13 };
    int32_t tok[B * T], len[B] = {6, 4, 1}, lab_cls[B] = {0, 2, 1}, lab_lm[B * T];
    pare_rng r;
    pare_rng_seed(&r, 5);
    for (int i = 0; i < B * T; i++) tok[i] = 1 + (int32_t)pare_rng_below(&r, V - 1);
    for (int i = 0; i < B * T; i++) lab_lm[i] = (i % T == 0) ? -1 : (int32_t)pare_rng_below(&r, V);

    pare_model *enc = build("encoder", V, 8, 8, 2, 2, 3, "learned", "cls");
    pare_model *encm = build("encoder", V, 8, 8, 2, 1, 3, "sinusoidal", "mean");
    pare_model *dec = build("decoder", V, 8, 8, 2, 2, 0 + 2, "learned", "cls");
    if (!ok(enc && encm && dec, "models build")) return tap_done();
    gradcheck(enc, B, T, tok, len, lab_cls, "encoder, CLS pooling, padded");
    gradcheck(encm, B, T, tok, len, lab_cls, "encoder, mean pooling, sinusoidal positions");
    gradcheck(dec, B, T, tok, NULL, lab_lm, "decoder, causal LM with ignored targets");
    pare_model *decs = build_scaled("decoder", V, 8, 8, 2, 1, 2, "learned", "cls", 2.5);
    if (decs) gradcheck(decs, B, T, tok, NULL, lab_lm, "decoder with emb_scale = 2.5 (BART's scaled embeddings)");
    else ok(0, "decoder with emb_scale builds");
    pare_model_free(decs);
    planner_matches(enc, B, T, tok, len, lab_cls, "encoder");
    planner_matches(dec, B, T, tok, NULL, lab_lm, "decoder");

    /* packed inference copies belong to the executor: the model is not written by running it, and a
     * weight change is seen by the next executor */
    {
        pare_exec *a = NULL;
        int w = pare_model_find_param(enc, "enc.0.ffn.up.weight");
        size_t bytes0 = pare_model_packed_bytes(enc);
        ok(pare_exec_new(&a, enc, B, T, PARE_EXEC_INFER) == PARE_OK && a->packed && a->packed[w] && a->packed_bytes > 0,
           "an inference executor packs f32 Linear weights into copies of its own");
        ok(pare_model_packed_bytes(enc) == bytes0, "the model holds no packed copy after it");
        pare_exec_free(a);
        pare_param_make_private(&enc->params[w]);
        for (int64_t k = 0; k < pare_param_numel(&enc->params[w]); k++) enc->params[w].blob->data[k] *= 1.5f;
        planner_matches(enc, B, T, tok, len, lab_cls, "encoder after a weight change");
    }

    /* names */
    ok(pare_model_find_node(enc, "enc.1.ffn.up") >= 0 && pare_model_find_param(enc, "enc.0.attn.qkv.weight") >= 0,
       "stable hierarchical names");

    /* clone shares weights; a pass leaves its input unchanged */
    pare_model *q = NULL;
    pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
    ok(pare_apply(&q, enc, "dynamic_int8", kv, 1) == PARE_OK, "dynamic_int8 applies");
    if (q) {
        int w = pare_model_find_param(q, "enc.0.ffn.up.weight"), h = pare_model_find_param(q, "head.weight");
        ok(q->params[w].format == PARE_FMT_I8_CHANNEL && q->params[h].format == PARE_FMT_F32, "pattern selects enc.* only");
        ok(enc->params[w].format == PARE_FMT_F32 && q->params[w].blob == enc->params[w].blob, "input model unchanged, f32 weights shared");
        ok(pare_model_size_bytes(q) < pare_model_size_bytes(enc), "int8 model is smaller (%zu < %zu)", pare_model_size_bytes(q),
           pare_model_size_bytes(enc));
        pare_exec *a = NULL, *b = NULL;
        pare_exec_new(&a, enc, B, T, PARE_EXEC_INFER);
        pare_exec_new(&b, q, B, T, PARE_EXEC_INFER);
        pare_exec_bind(a, tok, len, lab_cls);
        pare_exec_bind(b, tok, len, lab_cls);
        ok(pare_exec_forward(a) == PARE_OK && pare_exec_forward(b) == PARE_OK, "int8 forward runs");
        double dot = 0, na = 0, nb = 0;
        const float *la = pare_exec_logits(a), *lb = pare_exec_logits(b);
        for (int i = 0; i < B * 3; i++) dot += la[i] * lb[i], na += la[i] * la[i], nb += lb[i] * lb[i];
        ok(dot / sqrt(na * nb) > 0.99, "int8 logits close to f32 (cosine %.5f)", dot / sqrt(na * nb));
        pare_exec_free(a);
        pare_exec_free(b);
        pare_model_free(q);
    }
    kv[0].str = "nothing.*";
    ok(pare_apply(&q, enc, "dynamic_int8", kv, 1) == PARE_EINVAL && strstr(pare_errmsg(), "matches no Linear layer") &&
           strstr(pare_errmsg(), "enc.0.attn.qkv"),
       "a pattern that matches nothing is an error listing the layers: %s", pare_errmsg());
    ok(pare_apply(&q, enc, "nosuchpass", NULL, 0) == PARE_EINVAL && strstr(pare_errmsg(), "dynamic_int8"),
       "unknown technique lists valid ones");
    pare_kv bad[] = {{"bitz", PARE_KV_NUM, 4, NULL}};
    ok(pare_apply(&q, enc, "dynamic_int8", bad, 1) == PARE_EINVAL && strstr(pare_errmsg(), "unknown option 'bitz'") &&
           strstr(pare_errmsg(), "layers"),
       "unknown option names the key and the valid ones: %s", pare_errmsg());

    /* bad input */
    pare_exec *x = NULL;
    ok(pare_exec_new(&x, enc, 2, 9, PARE_EXEC_INFER) == PARE_EINVAL && strstr(pare_errmsg(), "max_T"), "T > max_T rejected: %s",
       pare_errmsg());
    pare_exec_new(&x, enc, B, T, PARE_EXEC_INFER);
    int32_t badtok[B * T];
    memcpy(badtok, tok, sizeof tok);
    badtok[7] = V;
    ok(pare_exec_bind(x, badtok, len, lab_cls) == PARE_EINVAL && strstr(pare_errmsg(), "vocabulary"), "token outside vocab: %s",
       pare_errmsg());
    int32_t badlen[B] = {6, 0, 2};
    ok(pare_exec_bind(x, tok, badlen, lab_cls) == PARE_EINVAL, "length 0 rejected: %s", pare_errmsg());
    pare_exec_free(x);
    pare_kv kb[] = {{"vocab", PARE_KV_NUM, 10, NULL}, {"max_T", PARE_KV_NUM, 8, NULL}, {"d", PARE_KV_NUM, 10, NULL},
                    {"heads", PARE_KV_NUM, 3, NULL}};
    pare_options o;
    pare_model *bm = NULL;
    ok(pare_opts_resolve(&o, &pare_model_schema, kb, 4) == PARE_OK && pare_transformer_build(&bm, &o) == PARE_EINVAL &&
           strstr(pare_errmsg(), "heads=3"),
       "heads not dividing d: %s", pare_errmsg());
    pare_kv kc[] = {{"vocab", PARE_KV_NUM, 10, NULL}, {"max_T", PARE_KV_NUM, 8, NULL}, {"kind", PARE_KV_STR, 0, "bert"}};
    ok(pare_opts_resolve(&o, &pare_model_schema, kc, 3) == PARE_EINVAL && strstr(pare_errmsg(), "encoder|decoder"),
       "bad enum lists choices: %s", pare_errmsg());

    pare_model_free(enc);
    pare_model_free(encm);
    pare_model_free(dec);
    return tap_done();
}
