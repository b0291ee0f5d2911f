/* movement.c — movement pruning (Sanh, Wolf & Rush 2020): weights are scored by how fine-tuning moves them,
 * S = −Σ_t W_t ⊙ G_t (a weight moving away from zero scores high), accumulated every step of the fine-tuning
 * run and pruned by the schedule's sparsity (hard movement, top-v of S); soft movement thresholds the scores
 * instead, S > τ, with the regularizer λ·Σσ(S) pushing every score down, so the sparsity follows from λ and
 * τ rather than being set:
 *     S ← S − lr_s (W ⊙ G / rms(W ⊙ G) + λ σ(S)(1 − σ(S)))      (rms over the layer, this step)
 * A difference from the paper, deliberately: pare's masks pass no gradient to masked weights (their
 * masters must stay intact), so a pruned weight's score stops moving (soft: drifts down with λ) and pruned
 * weights never come back; the paper's straight-through estimator would let them. The schedules call this
 * (schedule.c); these schemas exist for `pare help prune_movement` / `pare help prune_soft_movement`. */
#include "prune_internal.h"

#include <math.h>

static const pare_opt_spec mv_opts[] = {
    {"method", PARE_OPT_ENUM, "movement", 0, 0, "movement", "m:train(task, opts, pare.prune_schedule{method=\"movement\", ...})"},
    PR_LAYER_OPTS,
    PR_PATTERN_OPTS,
    {"schedule", PARE_OPT_ENUM, "gradual", 0, 0, "oneshot|iterative|gradual", "when the top-v masks are taken (see prune_schedule)"},
};
const pare_schema pare_prune_movement_schema = {"prune_movement", "movement pruning: scores S = -sum_t w*g over fine-tuning, prune the lowest (a prune_schedule method)",
                                                mv_opts, (int)(sizeof mv_opts / sizeof mv_opts[0])};

static const pare_opt_spec smv_opts[] = {
    {"method", PARE_OPT_ENUM, "soft_movement", 0, 0, "soft_movement", "m:train(task, opts, pare.prune_schedule{method=\"soft_movement\", ...})"},
    PR_LAYER_OPTS,
    {"lambda", PARE_OPT_FLOAT, "0", 0, 1e9, NULL, "regularizer on sigma(S): larger prunes more"},
    {"threshold", PARE_OPT_FLOAT, "-1", -1e9, 1e9, NULL, "tau: a weight is kept while its score S > tau (scores start at 0)"},
    {"score_lr", PARE_OPT_FLOAT, "0.01", 0, 1e9, NULL, "step size of the score update (w*g in units of its rms over the layer)"},
};
const pare_schema pare_prune_soft_movement_schema = {"prune_soft_movement", "soft movement pruning: keep S > tau, S <- S - lr_s (w*g + lambda sigma'(S)) (a prune_schedule method)",
                                                     smv_opts, (int)(sizeof smv_opts / sizeof smv_opts[0])};

void pare_movement_update(float *S, const float *W, const float *G, int64_t len, int soft, double lambda, double lr_s)
{
    if (!soft) {
        for (int64_t i = 0; i < len; i++) S[i] -= W[i] * G[i];
        return;
    }
    /* w·g in units of its root mean square over the layer: the scale Adam gives the paper's learned scores,
     * so that lambda, threshold and score_lr mean the same on every layer and model */
    double ss = 0;
    for (int64_t i = 0; i < len; i++) ss += (double)W[i] * G[i] * W[i] * G[i];
    double rms = sqrt(ss / (double)(len ? len : 1));
    if (rms == 0) rms = 1;
    for (int64_t i = 0; i < len; i++) {
        double sg = 1.0 / (1.0 + exp(-(double)S[i]));
        S[i] -= (float)(lr_s * ((double)W[i] * G[i] / rms + lambda * sg * (1 - sg)));
    }
}
