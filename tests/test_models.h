/* test_models.h — helpers the C tests share for the small models they build. */
#ifndef PARE_TEST_MODELS_H
#define PARE_TEST_MODELS_H

#include "core/rng.h"
#include "graph/graph.h"

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

#endif
