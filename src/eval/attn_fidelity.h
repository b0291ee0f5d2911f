/* attn_fidelity.h — how far each attention variant's output is from full attention on a trained
 * model's own activations.
 *
 * One forward of the model over the first n examples of a dataset captures the packed q, k, v of one
 * attention layer (its input, after the QKV projection), with the examples' padding lengths. Each
 * variant is then run on exactly those q, k, v at the layer's (T, H, D, causal), and its output is
 * compared with full softmax attention on the same inputs, over the valid (unpadded) query rows:
 *
 *     pare_attn_fid r[2];
 *     const char *specs[] = {"longformer:window=16", "performer:features=64"};
 *     PARE_TRY(pare_attn_fidelity(r, m, test, 0, 64, specs, 2));   // layer 0, 64 test examples
 *     r[0].rel_err, r[0].pairs_frac ...
 *
 * Variants with learned parameters (linformer's E and F, lsra's convolution) are run with their
 * initial values (pare_attn_param_init, seed 1): the model was trained with full attention, so there
 * is nothing else to use; their error measures the untrained approximation. The model's own layer
 * need not use full attention: whatever it was trained with, its q, k, v are what the variants see.
 * This file does not retrain, fine-tune or swap attention inside the model.
 */
#ifndef PARE_ATTN_FIDELITY_H
#define PARE_ATTN_FIDELITY_H

#include <stdint.h>

#include "data/task.h"
#include "graph/graph.h"

typedef struct pare_attn_fid {
    double rel_err;      /* ‖o − o_full‖_F / ‖o_full‖_F over valid query rows, all heads */
    double max_abs_err;  /* largest |o − o_full| entry */
    double cosine;       /* mean over valid (row, head) of the cosine between o and o_full */
    int64_t pairs;       /* (query, key) scores the variant computed for the n examples, Σ over heads */
    double pairs_frac;   /* pairs / full attention's pairs (the budget actually spent) */
    int64_t T, H, D;     /* the layer's shape */
    int causal;
    int64_t nonfinite;   /* NaN/Inf entries of the variant's output over valid rows; when > 0, rel_err,
                            max_abs_err and cosine are NaN (never the numbers of the finite part) */
} pare_attn_fid;

/* Fill out[0..nspec) for specs[0..nspec) at attention layer `layer` (0-based, in graph order) of m on
 * the first n examples of d (n <= d->n; examples are d's rows 0..n-1). Errors name the layer (out of
 * range: the count), n, or the spec (its option messages come from pare_attn_create_spec). NaN or Inf in
 * the captured q, k, v (the model itself is not finite) or in full attention's output on them is
 * PARE_ENUMERIC naming the layer (and, for the capture, the first layer of the model producing it); a
 * variant's own non-finite output is reported in its row (nonfinite, NaN errors), not as an error. */
pare_status pare_attn_fidelity(pare_attn_fid *out, pare_model *m, const pare_dataset *d, int64_t layer, int64_t n,
                               const char *const *specs, int nspec);

/* The number of attention layers of m. */
int64_t pare_attn_layers(const pare_model *m);

#endif
