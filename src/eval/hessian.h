/* hessian.h — Hessian traces of the loss per Linear weight, Hutchinson's estimator on the engine's gradients: the
 * sensitivity behind HAWQ-V2/V3's layer ordering (Dong et al. 2020: Ω_l = Tr(H_l)/n_l · ‖Q(W_l) − W_l‖²) and
 * pare.tune's "hawq" strategy (lua/pare/tune.lua, docs/tuning.md).
 *
 *     pare_hessian_result r;
 *     PARE_TRY(pare_hessian_trace(m, &task_train, &(pare_hessian_spec){.layers = "*", .samples = 32,
 *                                 .n = 128, .batch = 32, .eps = 1e-2, .seed = 1}, &r));
 *     for (int64_t i = 0; i < r.n; i++) printf("%s %g ± %g\n", r.name[i], r.trace[i], r.stderr_[i]);
 *     pare_hessian_result_free(&r);
 *
 * Tr(H) = E_v[vᵀ H v] for v with independent Rademacher (±1) entries (Hutchinson 1990). One v spans every selected
 * layer at once, and each layer's estimate takes its own block: E[v_lᵀ (H v)_l] = Tr(H_ll), the cross blocks
 * H_lk v_k average to zero because v_l and v_k are independent. H v comes from a central difference of gradients,
 * H v ≈ (∇L(w + εv) − ∇L(w − εv)) / 2ε, with ε_l = eps · rms(W_l) per layer (a step in each layer's own scale), so
 * one sample costs two gradient passes over the data whatever the number of layers. The loss is the model's training
 * loss averaged over the first n examples of d (full batches of `batch`, no dropout: pare_grad_batches). An estimate
 * is the mean over samples; stderr_ its standard error (sd / √samples).
 *
 * The central difference is exact for a quadratic loss and has an O(ε²) error otherwise; its f32 gradients limit
 * how small eps can be (the difference of two gradients cancels ~|g| · 2^-24 / (ε |Hv|)): 1e-2 of the weights' rms
 * balances the two on the models of tests/test_hessian.c, which checks the estimate against the closed-form trace of
 * a softmax head and vᵀHv against second differences of the loss.
 *
 * Not here: the quantization perturbation ‖Q(W) − W‖² (the caller has both models), block-diagonal or top
 * eigenvalue variants (HAWQ-V1), per-channel traces.
 */
#ifndef PARE_HESSIAN_H
#define PARE_HESSIAN_H

#include <stdint.h>

#include "core/status.h"
#include "data/task.h"
#include "graph/graph.h"

typedef struct pare_hessian_spec {
    const char *layers; /* glob over Linear names ("*", NULL: every Linear) */
    int samples;        /* Rademacher vectors, >= 1 */
    int64_t n, batch;   /* the first n examples of d, batches of `batch` (full batches only; n clamped to d's size) */
    double eps;         /* finite-difference step as a share of each layer's weight rms, > 0 */
    uint64_t seed;      /* of the vectors */
} pare_hessian_spec;

typedef struct pare_hessian_result {
    int64_t n;          /* layers */
    char (*name)[PARE_NAME_MAX];
    double *trace;      /* Tr(H_l) of the mean loss */
    double *stderr_;    /* standard error of each estimate over the samples (0 for one sample) */
    int64_t *numel;     /* weights per layer, for the average trace Tr(H_l) / n_l */
} pare_hessian_result;

/* Hutchinson estimates for every selected f32 Linear weight of m (m is not changed: a clone is perturbed). Errors:
 * PARE_EINVAL for a spec out of range or a pattern matching no Linear (naming the pattern and the Linears), a
 * selected weight that is not f32 (naming it and its format); the gradient pass's own errors (non-finite loss). */
pare_status pare_hessian_trace(const pare_model *m, const pare_dataset *d, const pare_hessian_spec *spec,
                               pare_hessian_result *out);

/* vᵀ H v for one direction v over the selected layers (v: one array per layer, each numel floats), by the same
 * central difference: out (per layer) = v_lᵀ (∇L(w + εv) − ∇L(w − εv))_l / 2ε_l. The building block of the trace,
 * exposed for tests. */
pare_status pare_hessian_vhv(const pare_model *m, const pare_dataset *d, const pare_hessian_spec *spec,
                             const float *const *v, double *out);

void pare_hessian_result_free(pare_hessian_result *r);

#endif
