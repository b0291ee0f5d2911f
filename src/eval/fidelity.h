/* fidelity.h — how closely a model's outputs follow a reference model's on the same data: the measure of
 * a compressed model against its f32 original.
 *
 *     pare_fidelity_result f;
 *     PARE_TRY(pare_fidelity(&f, q, fp32, &task_test, 64));   // f.cosine, f.max_abs_err, f.agreement
 *
 * cosine: of the two logit arrays taken as one vector each (all rows, all classes); max_abs_err: the
 * largest |logit − reference logit|; agreement: the fraction of rows (sequences, or tokens for LMs,
 * padding included) whose argmax is the same (ties go to the lowest index in both).
 *
 * Non-finite logits are an error, never a number: NaN compares false, so a max over |Δ| would stay 0,
 * an argmax would stay at index 0 and a cosine guarded by "norm > 0" would read 1 — a perfect match.
 * pare_fidelity fails on the model whose logits are not finite (the message names the batch and the
 * first layer producing NaN/Inf, from pare_predict_logits); pare_fidelity_logits, on arrays the caller
 * made, names the array, row and class. A zero logit vector against a non-zero one has cosine 0 (two
 * zero vectors: 1).
 *
 * Deliberately not here: per-layer fidelity (attention: eval/attn_fidelity.h), KL divergence.
 */
#ifndef PARE_FIDELITY_H
#define PARE_FIDELITY_H

#include <stdint.h>

#include "core/status.h"
#include "data/task.h"
#include "graph/graph.h"

typedef struct pare_fidelity_result {
    double cosine;      /* cos(a, b) over all logits */
    double max_abs_err; /* max |a − b| */
    double agreement;   /* rows with equal argmax / rows (1 for 0 rows) */
    int64_t rows;       /* rows compared: sequences, or sequences × T for LMs */
} pare_fidelity_result;

/* a, b (rows, V): the model's and the reference's logits. PARE_ENUMERIC naming "a"/"b", row and class
 * for a NaN or Inf. */
pare_status pare_fidelity_logits(pare_fidelity_result *out, const float *a, const float *b, int64_t rows, int64_t V);

/* Logits of m and ref on d (pare_predict_logits, batches of `batch`), compared. The models must have the
 * same output shape (PARE_ESHAPE otherwise). */
pare_status pare_fidelity(pare_fidelity_result *out, pare_model *m, pare_model *ref, const pare_dataset *d,
                          int64_t batch);

#endif
