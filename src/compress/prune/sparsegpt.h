/* sparsegpt.h — SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately
 * Pruned in One-Shot", arXiv:2301.00774, Algorithm 1): one-shot second-order pruning of a Linear weight W (N,K)
 * with the calibration Hessian H = 2/n·Σ x xᵀ that GPTQ collects (compress/quant/gptq.h).
 *
 * The columns are visited left to right. Visiting column i removes it from the set F of columns still free;
 * each row w (K) independently has its weight w_i either kept (frozen as it is) or pruned (set to 0), and in
 * the pruned case the other free weights absorb the change by the Optimal Brain Surgeon update
 *
 *     w_F  -=  w_i / [H_F^-1]_ii · [H_F^-1]_{i,F}          (F = {i, ..., K-1} at that moment)
 *
 * which GPTQ's factor U (U[i,:] = [H_F^-1]_{i,:} / sqrt([H_F^-1]_ii), pare_gptq_inv_chol) turns into
 * e = w_i / U[i,i], w_{i+1..} -= e·U[i, i+1..]. Which weights are pruned is decided by the OBS saliency
 * w_i² / [H_F^-1]_ii = (w_i / U[i,i])², on the weights as the earlier updates left them ("adaptive mask
 * selection"):
 *   unstructured   at the start of every block of `blocksize` columns, over all N rows × the block's columns at
 *                  once: exactly round(sparsity · N · b) of them, the lowest saliencies (ties to the lower
 *                  row-major index). blocksize = K chooses the whole layer's mask up front.
 *   N:M            when column i starts a group of m (i % m == 0), in each row the m − n lowest saliencies of
 *                  the group are pruned (n of every m kept; ties: the lower column is pruned first).
 * Lazy batches: within a block the updates are applied column by column, to the later columns at the block's
 * end as one GEMM (as GPTQ). With a fixed mask that is exact for any blocksize (up to the rounding of sums);
 * for N:M the blocksize is adjusted so that blocks and groups nest (a multiple of m, or a divisor of it), so
 * N:M results do not depend on blocksize either.
 *
 * Inputs never seen (H[i,i] = 0, dead columns) get H[i,i] = 1 and W[:,i] = 0 as in GPTQ: their saliency is 0,
 * so they are the first pruned. A prior mask (weights already pruned) forces those weights to be pruned
 * (saliency −inf); a block or group that holds more of them than the target prunes all of them.
 *
 *     pare_sparsegpt_opts o = PARE_SPARSEGPT_OPTS_DEFAULT;    // 50% unstructured, blocksize 128, damp 0.01
 *     o.n = 2, o.m = 4;                                        // or 2:4
 *     double err;
 *     PARE_TRY(pare_sparsegpt_prune(Wp, mask, W, NULL, &h, N, K, &o, &err));   // Wp, mask (N,K)
 *
 * Deliberately not here: the model-level loop (the `sparsegpt` pass, sparsegpt.c: all layers' Hessians from
 * the dense model in one calibration pass, not the paper's sequential layer-by-layer variant), joint
 * sparsification + quantization (the paper's §3.5: prune here, then run gptq), block (4×1, 16×16) patterns.
 * Numerics: H, U and the working copy of W are double; Wp holds exact zeros where mask is 0.
 */
#ifndef PARE_SPARSEGPT_H
#define PARE_SPARSEGPT_H

#include <stdint.h>

#include "compress/quant/gptq.h"
#include "core/status.h"

typedef struct pare_sparsegpt_opts {
    double sparsity;   /* unstructured (n = m = 0): fraction pruned per block of columns, in [0, 1] */
    int n, m;          /* N:M: n kept of every m consecutive weights along K, 1 <= n < m <= 64 (0, 0: unstructured) */
    int64_t blocksize; /* columns per block (mask selection and lazy batch); 0 means 128 */
    double damp;       /* damp · mean(diag H) added to H's diagonal; >= 0 (paper and default 0.01) */
} pare_sparsegpt_opts;

#define PARE_SPARSEGPT_OPTS_DEFAULT {0.5, 0, 0, 128, 0.01}

/* Prune W (N,K).
 *   Wp          (N,K)  the pruned and OBS-updated weights, exactly 0 where mask is 0
 *   mask        (N,K)  1 kept, 0 pruned; may be NULL
 *   prior_mask  (N,K)  weights already pruned (0) that must stay pruned; NULL: none
 *   err_out            the layer objective Σ_n (W − Wp)_n H (W − Wp)_nᵀ with the undampened H; may be NULL
 * Errors: sparsity outside [0, 1], n/m not 1 <= n < m <= 64 (or both 0), m not dividing K, blocksize < 0, damp
 * < 0 or not finite, NULL W/Wp/opts, h without samples (PARE_EINVAL, naming the option and its valid values); h
 * for another K, sizes < 1 (PARE_ESHAPE); W holding NaN/Inf (PARE_ENUMERIC, naming the element); H not
 * positive definite after dampening (PARE_ENUMERIC, suggesting a larger damp); PARE_ENOMEM. */
pare_status pare_sparsegpt_prune(float *Wp, float *mask, const float *W, const float *prior_mask,
                                 const pare_gptq_hessian *h, int64_t N, int64_t K, const pare_sparsegpt_opts *o,
                                 double *err_out);

#endif
