/* test_models.h — helpers the C tests share for the small models they build. */
#ifndef PARE_TEST_MODELS_H
#define PARE_TEST_MODELS_H

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "graph/exec.h"
#include "graph/graph.h"
#include "model/transformer.h"
#include "tap.h"

/* Add scale · N(0, 1) (a pare_rng seeded with seed, parameters in order) to every trainable weight: larger
 * than the builders' 0.02 init, so that heads, neurons and layers differ clearly in what they compute. */
static void perturb_trainable(pare_model *m, uint64_t seed, double scale) __attribute__((unused));
static void perturb_trainable(pare_model *m, uint64_t seed, double scale)
{
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (int64_t k = 0; k < pare_param_numel(p); k++) p->blob->data[k] += (float)(scale * pare_rng_normal(&r));
    }
}

/* A model of the builder options kv[0..n) (pare_model_schema) as built (build_model), or with its trainable weights
 * perturbed as above (seed, scale 0.3); NULL (with a diagnostic) when the build fails. */
static pare_model *build_perturbed(const pare_kv *kv, int n, uint64_t seed) __attribute__((unused));
static pare_model *build_model(const pare_kv *kv, int n) __attribute__((unused));
static pare_model *build_model(const pare_kv *kv, int n)
{
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, n) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    return m;
}
static pare_model *build_perturbed(const pare_kv *kv, int n, uint64_t seed)
{
    pare_model *m = build_model(kv, n);
    if (m) perturb_trainable(m, seed, 0.3);
    return m;
}

/* A 2-layer, 4-head encoder classifier (vocabulary 13, 3 classes, seed 5) of width C, FFN F and max_T T,
 * perturbed as above (seed 7); NULL (with a diagnostic) when the build fails. */
static pare_model *tiny_encoder(int64_t T, int64_t C, int64_t F) __attribute__((unused));
static pare_model *tiny_encoder(int64_t T, int64_t C, int64_t F)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, (double)T, NULL},
        {"d", PARE_KV_NUM, (double)C, NULL}, {"heads", PARE_KV_NUM, 4, NULL},  {"layers", PARE_KV_NUM, 2, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"ffn", PARE_KV_NUM, (double)F, NULL}, {"seed", PARE_KV_NUM, 5, NULL},
    };
    return build_perturbed(kv, 9, 7);
}

/* The (B, nclass) logits of m's inference forward on tok (B, T) / len (B), malloc'd; NULL (with a
 * diagnostic) when the run fails. */
static float *tiny_logits(pare_model *m, int64_t B, int64_t T, const int32_t *tok, const int32_t *len, int64_t nclass)
    __attribute__((unused));
static float *tiny_logits(pare_model *m, int64_t B, int64_t T, const int32_t *tok, const int32_t *len, int64_t nclass)
{
    pare_exec *x = NULL;
    float *out = NULL;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) == PARE_OK && pare_exec_bind(x, tok, len, NULL) == PARE_OK &&
        pare_exec_forward(x) == PARE_OK) {
        out = malloc(sizeof *out * (size_t)(B * nclass));
        if (out) memcpy(out, pare_exec_logits(x), sizeof *out * (size_t)(B * nclass));
    } else {
        diag("run: %s", pare_errmsg());
    }
    pare_exec_free(x);
    return out;
}

#endif
