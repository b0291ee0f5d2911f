/* lottery.h — the primitives of lottery tickets (Frankle & Carbin 2019, "The Lottery Ticket Hypothesis")
 * and of rewinding (Frankle, Dziugaite, Roy & Carbin 2020, "Linear Mode Connectivity and the Lottery Ticket
 * Hypothesis"): a snapshot of a model's trainable weights (at initialisation, or at an early step k of
 * training through a training hook), rewinding a pruned model to a snapshot under its current masks, and the
 * random-mask control (the same number of zeros per layer as a ticket, at random places).
 *
 * Iterative magnitude pruning (IMP) is these primitives plus the magnitude pass of prune.h, in a loop:
 *
 *     pare_snapshot *init;
 *     PARE_TRY(pare_snapshot_take(&init, m));               // θ0 (or pare_snapshot_hooks: θk at step k)
 *     train(m);
 *     for (int r = 1; r <= rounds; r++) {
 *         prune_magnitude(m, 1 − (1 − p)^r);                // masked weights count lowest: masks accumulate
 *         PARE_TRY(pare_rewind(m, init, 1));                // weights back to θ0 (masks kept), Adam reset
 *         train(m);                                         // masked weights get no gradient
 *     }
 *
 * The Lua side (src/lua/lua_lottery.c) is m:snapshot(), pare.snapshot_at(k), m:rewind(snap, {keep_masks}),
 * m:random_masks(like, seed), m:clone(); lua/pare/lottery.lua runs the loop. Docs: docs/pruning-lottery.md.
 * Deliberately not here: the pruning criterion (prune.h's magnitude pass), the loop itself (Lua), and
 * learning-rate rewinding (Renda et al. 2020: the training run restarts its schedule, which is what it does).
 */
#ifndef PARE_LOTTERY_H
#define PARE_LOTTERY_H

#include "train/train.h"

/* A copy of the f32 values of every trainable parameter of a model, by name. Masks (not trainable) are not
 * in it: a snapshot is weights, masks belong to the model that is rewound. */
typedef struct pare_snapshot pare_snapshot;

/* Copy m's trainable parameters; PARE_EINVAL naming a trainable parameter not stored in f32. */
pare_status pare_snapshot_take(pare_snapshot **out, const pare_model *m);
void pare_snapshot_free(pare_snapshot *s); /* NULL ok */
int64_t pare_snapshot_params(const pare_snapshot *s);  /* parameters held */
int64_t pare_snapshot_numel(const pare_snapshot *s);   /* floats held */
/* The saved values of parameter `name` (its numel into *n), or NULL. */
const float *pare_snapshot_get(const pare_snapshot *s, const char *name, int64_t *n);

/* Write the snapshot's values into m's masters (each made private to m), bit for bit, and zero m's AdamW
 * moments and gradients (a rewound model retrains from a fresh optimizer). keep_masks = 1: the masks stay,
 * so the effective weights are exactly snapshot ⊙ mask; 0: every mask is detached (the dense θ). Every
 * trainable parameter of m must be in s with its shape, and every parameter of s in m: PARE_EINVAL naming
 * the first that is not (m is unchanged then: everything is checked before anything is written). */
pare_status pare_rewind(pare_model *m, const pare_snapshot *s, int keep_masks);

/* Random masks: for every Linear of `like` with a mask, a mask on m's Linear of the same name with exactly
 * as many zeros, at places drawn uniformly (Fisher–Yates on a generator seeded by seed and the layer's index).
 * Layers without a mask in like are left as they are in m. PARE_EINVAL naming a layer m lacks or whose shape
 * differs. */
pare_status pare_random_masks(pare_model *m, const pare_model *like, uint64_t seed);

/* A snapshot taken during training: at step 0 (before the first update: θ0) or after `step` optimizer
 * updates (θk, late rewinding). The snapshot is replaced each run that reaches the step. */
typedef struct pare_snapshot_at {
    int64_t step;
    pare_snapshot *snap; /* NULL until taken; owned: pare_snapshot_free(a.snap) */
} pare_snapshot_at;
/* Hooks for pare_train_ex (a must outlive the call). A run shorter than `step` is PARE_EINVAL naming both. */
pare_train_hooks pare_snapshot_hooks(pare_snapshot_at *a);

#endif
