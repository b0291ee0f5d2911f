/* gptq.h — GPTQ post-training weight quantization (Frantar et al., 2022) and round-to-nearest on the same grid.
 *
 * GPTQ quantizes a Linear weight W (N,K) one input column at a time and, after each column, moves the
 * rounding error onto the columns not yet quantized so that the layer's output on calibration inputs
 * changes as little as possible. It minimises, row by row, the layer objective
 *
 *     E(W^) = Σ_n (w_n - w^_n) H (w_n - w^_n)^T,      H = 2/n · Σ_rows x x^T   (K,K)
 *
 * where x (K) are the inputs the Linear saw on calibration data (E is twice the summed mean squared
 * output error). Only H is needed, accumulated batch by batch with pare_gptq_hessian_add.
 *
 *     pare_gptq_hessian h;
 *     PARE_TRY(pare_gptq_hessian_init(&h, K));
 *     for (each calibration batch) PARE_TRY(pare_gptq_hessian_add(&h, x, rows));   // x (rows, K)
 *     pare_gptq_opts o = PARE_GPTQ_OPTS_DEFAULT;                                 // 4 bits, per channel, sym
 *     o.group = 128;
 *     double err;
 *     st = pare_gptq_quantize(q, scale, zero, Wq, W, &h, N, K, &o, &err);        // q (N,K), scale (N,K/128)
 *     pare_gptq_hessian_free(&h);
 *
 * The integer grid (shared with pare's other weight quantizers; nearbyintf, round half to even):
 *   symmetric,  b bits: qmax = 2^(b-1)-1, q ∈ [-qmax, qmax], scale = absmax/qmax, zero = 0, w^ = scale·q
 *   asymmetric, b bits: [lo,hi] widened to contain 0, q ∈ [0, 2^b-1], scale = (hi-lo)/(2^b-1),
 *                       zero = round(-lo/scale) clamped to [0, 2^b-1], w^ = scale·(q - zero)
 *   an all-zero unit has scale = 1, zero = 0, hence q = 0.
 * Scales are per (output row, group of `group` consecutive input columns), or per output row when group = 0.
 *
 * Which weights decide a group's scale (docs/quantization-gptq.md):
 *   per channel (group = 0)          the original row, before any error feedback (as the paper's code)
 *   group > 0, act_order = 0         the group's columns as they are when GPTQ reaches the group, i.e. after
 *                                    the error feedback from earlier columns (as the paper's code)
 *   group > 0, act_order = 1         the original weights of the natural contiguous group ("static groups"):
 *                                    the columns are visited in order of decreasing diag(H), so a group's
 *                                    columns are not visited together, but the result keeps the ordinary
 *                                    group-wise layout (scale (N, K/group)) that the storage formats expect.
 *
 * Inputs never seen (H[i,i] = 0, "dead" columns) get H[i,i] = 1 and W[:,i] = 0 before quantizing, as the
 * paper does: their weights cannot affect the output on the calibration data and become 0 in W^.
 *
 * What this does not do: the model-level loop (running the calibration set layer by layer, replacing the
 * weights, sequential vs. parallel inputs) — that is the compression pass; MSE-searched clipping ranges;
 * packing q into bit fields. Numerics: H, its Cholesky factor and the working copy of W are double.
 */
#ifndef PARE_GPTQ_H
#define PARE_GPTQ_H

#include <stdint.h>

#include "core/status.h"

typedef struct pare_gptq_opts {
    int bits;      /* 2..8 */
    int64_t group; /* 0 = one scale per output row (per channel); else group size along K, must divide K */
    int symmetric; /* 1: zero = 0, q ∈ [-qmax, qmax]; 0: asymmetric with an integer zero point */
    int act_order; /* visit columns in order of decreasing diag(H) (groups stay the natural ones, see above) */
    double damp;   /* dampening: damp · mean(diag(H)) is added to H's diagonal; >= 0 (paper and default: 0.01) */
    int64_t block; /* lazy-batch block size (default 128; 0 means 128); the result does not depend on it */
} pare_gptq_opts;

#define PARE_GPTQ_OPTS_DEFAULT {4, 0, 1, 0, 0.01, 128}

/* H = 2/n · Σ x x^T over the n calibration rows seen so far, kept as a running mean so that batches can be
 * added one at a time. */
typedef struct pare_gptq_hessian {
    int64_t K, nsamples;
    double *H; /* (K, K), symmetric, both triangles filled */
} pare_gptq_hessian;

/* PARE_EINVAL for K < 1; PARE_ENOMEM. */
pare_status pare_gptq_hessian_init(pare_gptq_hessian *h, int64_t K);
/* Add the rows of x (rows, K). rows = 0 does nothing. PARE_ENUMERIC (naming the row and column) if x holds
 * NaN or Inf; H is then unchanged. */
pare_status pare_gptq_hessian_add(pare_gptq_hessian *h, const float *x, int64_t rows);
void pare_gptq_hessian_free(pare_gptq_hessian *h); /* safe twice */

/* Quantize W (N,K) with GPTQ.
 *   q      (N, K)        integers on the grid (at W's own column positions, also with act_order)
 *   scale  (N, ngroups)  ngroups = group ? K/group : 1
 *   zero   (N, ngroups)  zero points; may be NULL when symmetric (they are all 0)
 *   Wq     (N, K)        the dequantized weights scale·(q - zero), bit-exact; may be NULL
 *   err_out              E(Wq) above with the undampened H; may be NULL
 * Errors (each message names the option and the valid values): bits outside 2..8, group < 0 or not dividing
 * K, damp < 0 or not finite, block < 0, NULL outputs, zero NULL when asymmetric, h without samples
 * (PARE_EINVAL); h for another K, N or K < 1 (PARE_ESHAPE); W holding NaN/Inf (PARE_ENUMERIC, naming the
 * element); H not positive definite after dampening (PARE_ENUMERIC, suggesting a larger damp); PARE_ENOMEM.
 * Uses OpenMP over the rows and BLAS (double) for the factorisation and the block updates. */
pare_status pare_gptq_quantize(int32_t *q, float *scale, int32_t *zero, float *Wq, const float *W,
                               const pare_gptq_hessian *h, int64_t N, int64_t K, const pare_gptq_opts *o,
                               double *err_out);

/* Round-to-nearest on the same grid and with the same output conventions (scale from the original weights of
 * each row or group). Same option errors as pare_gptq_quantize. */
pare_status pare_rtn_quantize(int32_t *q, float *scale, int32_t *zero, float *Wq, const float *W, int64_t N,
                              int64_t K, int bits, int64_t group, int symmetric);

/* The layer objective E(Wq) = Σ_n (W - Wq)_n H (W - Wq)_n^T for any Wq (N,K), with the H accumulated in h
 * (undampened). Returns NaN if h does not match K or has no samples. */
double pare_gptq_objective(const float *W, const float *Wq, const pare_gptq_hessian *h, int64_t N, int64_t K);

/* The factor GPTQ and SparseGPT (compress/prune/sparsegpt.h) share: U (K,K) upper triangular with
 * U^T·U = (P^T·(H + damp·mean(diag H)·I)·P)^-1, where dead diagonals (H[i,i] = 0) count as 1 (in the mean too)
 * and P visits the columns in the order perm (K indices; NULL: natural order). Row i of U is row i of the
 * inverse Hessian of the columns i.. (in visiting order) divided by the square root of its diagonal, so
 * U[i,i]^2 = [H_F^-1]_ii with F = {i, ..., K-1}. U must hold K·K doubles; h must be initialised for K.
 * PARE_ENUMERIC (prefixed by who, naming the column and suggesting a larger damp) when H + damp is not
 * positive definite. */
pare_status pare_gptq_inv_chol(double *U, const pare_gptq_hessian *h, const int64_t *perm, double damp, const char *who);

#endif
