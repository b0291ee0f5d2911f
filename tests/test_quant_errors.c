/* test_quant_errors.c — NaN and Inf are reported, never silently quantized: in weights (every pass that
 * reads them), in activations during calibration, and at run time in a quantized model. */
#include <math.h>
#include <string.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "data/task.h"
#include "graph/exec.h"
#include "model/transformer.h"
#include "tap.h"

static pare_model *build(int64_t V, int64_t T)
{
    pare_kv kv[] = {{"vocab", PARE_KV_NUM, (double)V, NULL}, {"max_T", PARE_KV_NUM, (double)T, NULL},
                    {"d", PARE_KV_NUM, 64, NULL},          {"heads", PARE_KV_NUM, 4, NULL},
                    {"layers", PARE_KV_NUM, 1, NULL},      {"classes", PARE_KV_NUM, 4, NULL}};
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 6) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK)
        diag("build failed: %s", pare_errmsg());
    return m;
}

int main(void)
{
    tap_plan_lazy();
    pare_kv tk[] = {{"n_train", PARE_KV_NUM, 64, NULL}, {"n_test", PARE_KV_NUM, 16, NULL}};
    pare_options to;
    pare_dataset train = {0}, test = {0};
    if (pare_opts_resolve(&to, pare_task_schema("recall"), tk, 2) != PARE_OK ||
        pare_task_make(&train, &test, "recall", &to) != PARE_OK) {
        diag("task: %s", pare_errmsg());
        return 1;
    }
    pare_model *m = build(train.vocab, train.T);
    if (!m) return 1;
    pare_pass_ctx ctx = {&train};
    int w = pare_model_find_param(m, "enc.0.ffn.up.weight");
    float keep = m->params[w].blob->data[5];
    m->params[w].blob->data[5] = NAN;
    const char *passes[] = {"dynamic_int8", "static_int8", "llm_int8", "smoothquant", "zeroquant", "rtn",
                            "gptq", "qblock", "fake_quant", "qat"};
    for (size_t i = 0; i < sizeof passes / sizeof *passes; i++) {
        pare_model *q = NULL;
        int needs = pare_pass_find(passes[i])->needs_calib, wo = !strcmp(passes[i], "rtn") || !strcmp(passes[i], "gptq");
        pare_kv kv[] = {{"group", PARE_KV_NUM, 32, NULL}, {"calib_samples", PARE_KV_NUM, 16, NULL}};
        pare_status st = pare_apply_ctx(&q, m, passes[i], kv + !wo, wo + needs, &ctx);
        ok(st != PARE_OK && q == NULL && (strstr(pare_errmsg(), "nan") || strstr(pare_errmsg(), "NaN")),
           "%s refuses a NaN weight: %s", passes[i], pare_errmsg());
        pare_model_free(q);
    }
    m->params[w].blob->data[5] = keep;

    /* a NaN reaching a quantized Linear at run time is an error of the forward, naming it */
    pare_model *q = NULL;
    ok(pare_apply(&q, m, "dynamic_int8", NULL, 0) == PARE_OK, "clean model quantizes");
    int lnw = pare_model_find_param(q, "enc.0.ln2.weight");
    pare_param_make_private(&q->params[lnw]);
    q->params[lnw].blob->data[3] = INFINITY;
    pare_exec *x = NULL;
    pare_status st = pare_exec_new(&x, q, 2, train.T, PARE_EXEC_INFER);
    if (st == PARE_OK) st = pare_exec_bind(x, train.tokens, train.lengths, NULL);
    if (st == PARE_OK) st = pare_exec_forward(x);
    ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "enc.0.ffn.up"), "Inf in activations at run time: %s", pare_errmsg());
    pare_exec_free(x);
    pare_model_free(q);

    /* and during calibration */
    pare_model *c = NULL;
    int ln1 = pare_model_find_param(m, "enc.0.ln1.bias");
    m->params[ln1].blob->data[0] = NAN;
    pare_kv kv[] = {{"calib_samples", PARE_KV_NUM, 16, NULL}};
    st = pare_apply_ctx(&c, m, "static_int8", kv, 1, &ctx);
    ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "calibration"), "NaN seen by calibration: %s", pare_errmsg());
    pare_model_free(m);
    pare_dataset_free(&train), pare_dataset_free(&test);
    return tap_done();
}
