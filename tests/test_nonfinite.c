/* test_nonfinite.c — NaN and Inf never pass as good numbers (issue 10, defect 3): a checkpoint holding
 * them is refused naming the tensor (and a model holding them is not saved); evaluation, fidelity,
 * attention fidelity and training stop with PARE_ENUMERIC naming the batch and the first layer whose
 * output is not finite; the fidelity metric on arrays names the side, row and class; medians and
 * quantiles of data with a NaN are NaN. Each case also checks the clean model still gives numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "data/task.h"
#include "eval/attn_fidelity.h"
#include "eval/fidelity.h"
#include "eval/stats.h"
#include "graph/exec.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"
#include "train/train.h"

static char dir[64];

static pare_model *build(const char *kind, int64_t V, int64_t T, int64_t classes)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, kind},           {"vocab", PARE_KV_NUM, (double)V, NULL},
                    {"max_T", PARE_KV_NUM, (double)T, NULL},  {"d", PARE_KV_NUM, 16, NULL},
                    {"heads", PARE_KV_NUM, 2, NULL},          {"layers", PARE_KV_NUM, 2, NULL},
                    {"classes", PARE_KV_NUM, (double)classes, NULL}};
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 7) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK)
        diag("build failed: %s", pare_errmsg());
    return m;
}

static int has(const char *needle) { return strstr(pare_errmsg(), needle) != NULL; }

/* Write value into element k of parameter `name` of m (made private first: clones share blobs). */
static float poke(pare_model *m, const char *name, int64_t k, float value)
{
    int i = pare_model_find_param(m, name);
    if (i < 0) {
        diag("no parameter %s", name);
        exit(1);
    }
    pare_param_make_private(&m->params[i]);
    float old = m->params[i].blob->data[k];
    m->params[i].blob->data[k] = value;
    return old;
}

/* Overwrite element k of tensor `name` in the checkpoint at path with value (little-endian F32). */
static int patch_file(const char *path, const char *name, int64_t k, float value)
{
    pare_st_file *f = NULL;
    if (pare_safetensors_open(&f, path) != PARE_OK) return -1;
    const pare_st_tensor *t = pare_safetensors_find(f, name);
    long off = t ? (long)(f->data_start + t->begin + (uint64_t)k * 4) : -1;
    pare_safetensors_close(f);
    FILE *fp = off >= 0 ? fopen(path, "r+b") : NULL;
    if (!fp) return -1;
    unsigned char b[4];
    uint32_t u;
    memcpy(&u, &value, 4);
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(u >> (8 * i));
    int okw = fseek(fp, off, SEEK_SET) == 0 && fwrite(b, 1, 4, fp) == 4;
    return fclose(fp) == 0 && okw ? 0 : -1;
}

static void checkpoints(void)
{
    char path[128], copy[160];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    pare_model *m = build("encoder", 12, 8, 3), *back = NULL;
    if (!ok(pare_model_save(m, path) == PARE_OK, "a finite model saves")) diag("%s", pare_errmsg());
    ok(pare_model_load(&back, path) == PARE_OK && back, "and loads");
    pare_model_free(back);

    const struct { const char *tensor; int64_t k; float v; const char *kind, *at; } cases[] = {
        {"enc.1.ffn.up.weight", 16 * 3 + 5, NAN, "NaN", "(3, 5)"},
        {"head.bias", 2, INFINITY, "Inf", "[2]"},
        {"emb.tok.weight", 0, -INFINITY, "Inf", "(0, 0)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(copy, sizeof copy, "%s/bad%zu.safetensors", dir, i);
        if (pare_model_save(m, copy) != PARE_OK || patch_file(copy, cases[i].tensor, cases[i].k, cases[i].v)) {
            ok(0, "patching %s", cases[i].tensor);
            continue;
        }
        back = NULL;
        pare_status st = pare_model_load(&back, copy);
        ok(st == PARE_ENUMERIC && !back && has(cases[i].tensor) && has(cases[i].kind) && has(cases[i].at) && has(copy),
           "load refuses %s in %s naming the file, tensor and element: %s", cases[i].kind, cases[i].tensor, pare_errmsg());
        pare_model_free(back);
        unlink(copy);
    }

    /* a model holding NaN is not written: the old file stays */
    float keep = poke(m, "enc.0.attn.qkv.bias", 7, NAN);
    pare_status st = pare_model_save(m, path);
    ok(st == PARE_ENUMERIC && has("enc.0.attn.qkv.bias") && has("NaN"), "save refuses a NaN weight: %s", pare_errmsg());
    back = NULL;
    ok(pare_model_load(&back, path) == PARE_OK, "the earlier checkpoint is intact");
    pare_model_free(back);
    poke(m, "enc.0.attn.qkv.bias", 7, keep);
    unlink(path);
    pare_model_free(m);
}

static pare_status make_task(pare_dataset *train, pare_dataset *test, const char *name, int n_train, int n_test)
{
    pare_kv tk[] = {{"n_train", PARE_KV_NUM, n_train, NULL}, {"n_test", PARE_KV_NUM, n_test, NULL}};
    pare_options to;
    pare_status st = pare_opts_resolve(&to, pare_task_schema(name), tk, 2);
    return st == PARE_OK ? pare_task_make(train, test, name, &to) : st;
}

static void evaluation(const pare_dataset *test, pare_model *m, const char *what)
{
    pare_eval_result e;
    pare_status st = pare_evaluate(m, test, 8, &e);
    ok(st == PARE_OK && isfinite(e.loss) && e.accuracy >= 0, "%s: a finite model evaluates", what);

    /* NaN in the second FFN's weights: batch 1 already, named from the re-run */
    float keep = poke(m, "enc.1.ffn.down.weight", 64 * 2 + 1, NAN); /* (16, 64) */
    st = pare_evaluate(m, test, 8, &e);
    ok(st == PARE_ENUMERIC && has("evaluate: non-finite logits (NaN) on batch 1 of") &&
           has("layer enc.1.ffn.down outputs NaN first") && has("enc.1.ffn.down.weight holds NaN at (2, 1)"),
       "%s: evaluate names the batch, the layer and its weight: %s", what, pare_errmsg());
    poke(m, "enc.1.ffn.down.weight", 64 * 2 + 1, keep);

    /* Inf reaching the logits only: the head's bias */
    keep = poke(m, "head.bias", 1, INFINITY);
    st = pare_evaluate(m, test, 8, &e);
    ok(st == PARE_ENUMERIC && has("non-finite logits (Inf)") && has("layer head outputs Inf first") && has("head.bias holds Inf"),
       "%s: an Inf logit is named too (not an argmax at it): %s", what, pare_errmsg());
    poke(m, "head.bias", 1, keep);
}

/* Which batch: a NaN token embedding used only by some examples. */
static void which_batch(const pare_dataset *test, pare_model *m)
{
    int64_t first = -1; /* the first test example holding the largest token id present */
    int32_t tok = 0;
    for (int64_t i = 0; i < test->n * test->T; i++) tok = test->tokens[i] > tok ? test->tokens[i] : tok;
    for (int64_t i = 0; i < test->n * test->T && first < 0; i++)
        if (test->tokens[i] == tok && i % test->T < test->lengths[i / test->T]) first = i / test->T;
    float keep = poke(m, "emb.tok.weight", (int64_t)tok * m->C, NAN);
    pare_eval_result e;
    pare_status st = pare_evaluate(m, test, 4, &e);
    char want[64];
    snprintf(want, sizeof want, "batch %lld of", (long long)(first / 4 + 1));
    ok(st == PARE_ENUMERIC && has(want) && has("layer emb.tok outputs NaN first"),
       "a NaN embedding of token %d (first used by example %lld) is found on its batch: %s", tok, (long long)first,
       pare_errmsg());
    poke(m, "emb.tok.weight", (int64_t)tok * m->C, keep);
}

static void fidelity(const pare_dataset *test, pare_model *m)
{
    pare_model *ref = pare_model_clone(m);
    pare_fidelity_result f;
    pare_status st = pare_fidelity(&f, m, ref, test, 8); /* (called first: ok's arguments are read before it runs) */
    ok(st == PARE_OK && f.cosine > 0.9999 && f.max_abs_err == 0 && f.agreement == 1,
       "a model against its clone: cosine %.6f, max error %g, agreement %g", f.cosine, f.max_abs_err, f.agreement);

    float keep = poke(m, "enc.0.ln2.weight", 3, NAN);
    st = pare_fidelity(&f, m, ref, test, 8);
    ok(st == PARE_ENUMERIC && has("fidelity: the model: non-finite logits (NaN)") && has("layer enc.0.ln2 outputs NaN first"),
       "NaN in the model: an error naming it and the layer, not cosine 1: %s", pare_errmsg());
    poke(m, "enc.0.ln2.weight", 3, keep);

    keep = poke(ref, "enc.1.attn.out.bias", 0, -INFINITY);
    st = pare_fidelity(&f, m, ref, test, 8);
    ok(st == PARE_ENUMERIC && has("fidelity: the reference: non-finite logits") && has("enc.1.attn.out"),
       "Inf in the reference: named as the reference: %s", pare_errmsg());
    poke(ref, "enc.1.attn.out.bias", 0, keep);
    pare_model_free(ref);

    /* on arrays */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6}, z[6] = {0};
    b[4] = NAN;
    st = pare_fidelity_logits(&f, a, b, 2, 3);
    ok(st == PARE_ENUMERIC && has("reference") && has("NaN at row 1, class 1"), "arrays: NaN named by side, row, class: %s",
       pare_errmsg());
    a[0] = INFINITY;
    st = pare_fidelity_logits(&f, a, z, 2, 3);
    ok(st == PARE_ENUMERIC && has("the model's logits hold Inf at row 0, class 0"), "arrays: Inf in the model's: %s",
       pare_errmsg());
    a[0] = 1;
    st = pare_fidelity_logits(&f, a, z, 2, 3);
    ok(st == PARE_OK && f.cosine == 0.0, "a zero reference has cosine 0, not 1 (%g)", f.cosine);
    st = pare_fidelity_logits(&f, z, z, 2, 3);
    ok(st == PARE_OK && f.cosine == 1.0 && f.max_abs_err == 0 && f.agreement == 1, "two zero arrays agree exactly");
}

static void attention(const pare_dataset *test, pare_model *m)
{
    pare_attn_fid r[2];
    const char *specs[] = {"full", "longformer:window=2"};
    pare_status st = pare_attn_fidelity(r, m, test, 1, 4, specs, 2);
    ok(st == PARE_OK && r[0].rel_err < 1e-5 && r[0].nonfinite == 0 && isfinite(r[1].rel_err) && r[1].rel_err > 0,
       "attention fidelity of a finite model: full %.2g, longformer %.3g", r[0].rel_err, r[1].rel_err);

    /* NaN before the captured layer: named, with the layer that made it */
    float keep = poke(m, "enc.0.ffn.up.bias", 4, NAN);
    st = pare_attn_fidelity(r, m, test, 1, 4, specs, 2);
    ok(st == PARE_ENUMERIC && has("captured at enc.1.attn hold NaN") && has("layer enc.0.ffn.up outputs NaN first"),
       "NaN in the captured q, k, v: %s", pare_errmsg());
    poke(m, "enc.0.ffn.up.bias", 4, keep);

    /* finite q, k, v whose scores overflow: full attention itself is not finite */
    int w = pare_model_find_param(m, "enc.1.attn.qkv.bias");
    pare_param_make_private(&m->params[w]);
    float *bias = m->params[w].blob->data, saved[32];
    memcpy(saved, bias, sizeof saved);
    for (int i = 0; i < 32; i++) bias[i] = 1e20f; /* q and k: 8 × 1e40 overflows */
    st = pare_attn_fidelity(r, m, test, 1, 4, specs, 2);
    ok(st == PARE_ENUMERIC && has("full attention on the q, k, v of enc.1.attn gives"),
       "overflowing scores are an error, not a fidelity of 0 error: %s", pare_errmsg());
    memcpy(bias, saved, sizeof saved);
}

static void training(const pare_dataset *train, const pare_dataset *test, pare_model *m)
{
    pare_kv kv[] = {{"steps", PARE_KV_NUM, 3, NULL}, {"batch", PARE_KV_NUM, 4, NULL}};
    pare_options o;
    pare_opts_resolve(&o, &pare_train_schema, kv, 2);
    pare_model *c = pare_model_clone(m);
    poke(c, "enc.1.ln1.bias", 0, NAN);
    pare_train_result r;
    pare_status st = pare_train(c, train, test, &o, NULL, NULL, &r);
    ok(st == PARE_ENUMERIC && has("train: loss became NaN") && !has("-nan") && has("layer enc.1.ln1 outputs NaN first") &&
           !has("learning rate"),
       "a NaN weight stops training naming it (not 'lower the learning rate'): %s", pare_errmsg());
    pare_model_free(c);
}

static void lm(void)
{
    pare_dataset train = {0}, test = {0};
    if (make_task(&train, &test, "copy_lm", 16, 8) != PARE_OK) {
        ok(0, "copy_lm task: %s", pare_errmsg());
        return;
    }
    pare_model *m = build("decoder", train.vocab, train.T > test.T ? train.T : test.T, 2);
    pare_eval_result e;
    pare_status st = pare_evaluate(m, &test, 4, &e);
    ok(st == PARE_OK && isfinite(e.perplexity), "decoder: finite perplexity %.2f", e.perplexity);
    float keep = poke(m, "ln_f.weight", 0, NAN);
    st = pare_evaluate(m, &test, 4, &e);
    ok(st == PARE_ENUMERIC && has("layer ln_f outputs NaN first"),
       "decoder: no perplexity from NaN logits: %s", pare_errmsg());
    poke(m, "ln_f.weight", 0, keep);
    pare_model_free(m);
    pare_dataset_free(&train), pare_dataset_free(&test);
}

static void stats(void)
{
    const double x[] = {1, NAN, 3, 2, 5};
    ok(isnan(pare_stats_median(x, 5)), "median of data with a NaN is NaN (was 2)");
    ok(isnan(pare_stats_quantile(x, 5, 0.9)), "quantile of data with a NaN is NaN");
    ok(pare_stats_median(x + 2, 3) == 3, "median without NaN unchanged");
    double lo, hi;
    ok(pare_stats_bootstrap_ci(x, 5, 0.95, 100, 1, &lo, &hi) == PARE_ENUMERIC, "bootstrap refuses NaN");
}

int main(void)
{
    tap_plan_lazy();
    snprintf(dir, sizeof dir, "/tmp/pare-nonfinite-XXXXXX");
    if (!mkdtemp(dir)) return printf("Bail out! cannot make a temporary directory\n"), 1;
    checkpoints();
    rmdir(dir);

    pare_dataset train = {0}, test = {0};
    if (make_task(&train, &test, "recall", 32, 20) != PARE_OK) {
        printf("Bail out! task: %s\n", pare_errmsg());
        return 1;
    }
    pare_model *m = build("encoder", train.vocab, train.T > test.T ? train.T : test.T, train.nclass);
    if (!m) return 1;
    evaluation(&test, m, "encoder");
    which_batch(&test, m);
    fidelity(&test, m);
    attention(&test, m);
    training(&train, &test, m);
    pare_model_free(m);
    pare_dataset_free(&train), pare_dataset_free(&test);
    lm();
    stats();
    return tap_done();
}
