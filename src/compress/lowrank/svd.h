/* svd.h — the singular value decomposition of a Linear weight, for low-rank factorization (lowrank.c)
 * and SVD-significance pruning (prune/svd_significance.c). GSL's Golub–Reinsch SVD in double precision
 * (gsl_linalg_SV_decomp) on W or Wᵀ, whichever is tall.
 *
 *     W (N, K) = Σ_j s[j] · u_j v_jᵀ,   j < R = min(N, K),   s descending
 *
 * u (N, R) row-major: u[i·R + j] is component i of left vector j; vt (R, K) row-major: vt[j·K + k] is
 * component k of right vector j. The caller frees the three with free().
 */
#ifndef PARE_SVD_H
#define PARE_SVD_H

#include <stdint.h>

#include "core/status.h"

pare_status pare_svd(const float *W, int64_t N, int64_t K, double **u, double **s, double **vt);
/* The same for a double matrix (TT-SVD's remainders, tt_svd.c). */
pare_status pare_svd_d(const double *W, int64_t N, int64_t K, double **u, double **s, double **vt);

/* The smallest rank r whose singular values keep `energy` (0..1] of Σ s², R if none is smaller. */
int64_t pare_svd_rank_for_energy(const double *s, int64_t R, double energy);

#endif
