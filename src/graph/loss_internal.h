/* loss_internal.h — what the executor (exec.c) calls in graph/loss.c: checks of captured values and
 * bound targets, the total loss and the seeding of backward. Private to src/graph. */
#ifndef PARE_LOSS_INTERNAL_H
#define PARE_LOSS_INTERNAL_H

#include "exec.h"

/* Value v (found by `name`, -1 if not) can be kept and read after an inference forward in `mode`. */
pare_status pare_exec_check_capture(const pare_model *m, int v, const char *name, pare_exec_mode mode);
/* Every target input has been bound since the last pare_exec_bind. */
pare_status pare_exec_check_bound(const pare_exec *x);
/* Σ weight · term over the loss nodes, in node order, in double. */
float pare_exec_total_loss(const pare_exec *x);
/* d(total)/d(out) = weight for every loss node with a (1, 1) output whose backward runs (x->need_grad;
 * cross-entropy applies its own). */
void pare_exec_seed_losses(pare_exec *x);

#endif
