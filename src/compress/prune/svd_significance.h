/* svd_significance.h — the reconstruction errors behind the svd_prune pass (seed 004; the pass and its
 * reading of the paper are described in svd_significance.c, docs/pruning-svd.md). */
#ifndef PARE_SVD_SIGNIFICANCE_H
#define PARE_SVD_SIGNIFICANCE_H

#include <stdint.h>

#include "core/status.h"

/* err[g] = ||A_g − A_{k,g}||_F for the components g < groups of A (N, K), A_k its rank-k truncated SVD.
 * Row i belongs to component (i mod stride) / rows_per: neurons are rows (rows_per 1, stride N); the heads
 * of a qkv projection (3C, C) are rows s·C + h·D + j (rows_per D, stride C). */
pare_status pare_svd_component_errors(const float *A, int64_t N, int64_t K, int64_t k, int64_t rows_per, int64_t stride,
                                      int64_t groups, double *err);

#endif
