/* tt.h — a Linear whose weight is a tensor-train matrix (TT-matrix), applied without forming the weight.
 *
 * Oseledets, "Tensor-Train Decomposition" (SIAM J. Sci. Comput. 2011); Novikov et al., "Tensorizing Neural
 * Networks" (NeurIPS 2015). With N = Π n_j, K = Π k_j (row-major multi-indices a = (a_0..a_{d-1}),
 * c = (c_0..c_{d-1})) and cores G_j (r_j, n_j, k_j, r_{j+1}), r_0 = r_d = 1:
 *
 *     W[a, c] = G_0[:, a_0, c_0, :] · G_1[:, a_1, c_1, :] ··· G_{d-1}[:, a_{d-1}, c_{d-1}, :]
 *     y (M, N) = x (M, K) · Wᵀ + bias
 *
 * A sum of r Kronecker products Σ_i A_i ⊗ B_i (A_i (n_0, k_0), B_i (n_1, k_1)) is the TT-matrix with d = 2
 * and rank r_1 = r: G_0[0, a, c, i] = A_i[a, c], G_1[i, b, e, 0] = B_i[b, e]. One kernel runs both.
 *
 * The product contracts one core at a time, last first. After core j the state Z_j holds, per row of x,
 * (c_0..c_{j-1}, ρ_j, a_j..a_{d-1}) (ρ_j of size r_j), and
 *
 *     Z_j[o] (r_j·n_j, P_j) = G_j (r_j·n_j, k_j·r_{j+1}) · Z_{j+1}[o] (k_j·r_{j+1}, P_j)
 *
 * for each of the M·Π_{i<j} k_i blocks o, P_j = Π_{i>j} n_i: one GEMM when P_j = 1 (the last core);
 * otherwise the blocks are transposed to (P_j, k_j·r_{j+1}) so the step is still one GEMM (B·P_j, k_j·r_{j+1})
 * · G_jᵀ, and transposed back (a batch of B small GEMMs, one oneDNN call each, was 10-100× slower). Z_d is x, Z_0 is y. The intermediates Z_{d-1}..Z_1 are kept in a cache
 * for backward (pare_tt_cache_floats per row). Cost: Σ_j 2·M·Π_{i<j}k_i·r_j·n_j·k_j·r_{j+1}·P_j FLOPs.
 *
 * Deliberately not here: how the cores are found (TT-SVD, compress/lowrank/tt_svd.c), fused or
 * reordered layouts that would make every step one GEMM (each would cost a transpose per step).
 *
 * Entry points: pare_tt_linear_forward / _backward (fast, GEMMs), pare_tt_to_dense (plain loops: the
 * reference the tests compare against), the shape helpers.
 */
#ifndef PARE_TT_H
#define PARE_TT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define PARE_TT_MAX 6 /* at most this many cores */

typedef struct pare_tt_shape {
    int d;                      /* cores, 2..PARE_TT_MAX; 0 for nodes that are not TT-matrices */
    int64_t n[PARE_TT_MAX];     /* output factors: N = Π n[j] */
    int64_t k[PARE_TT_MAX];     /* input factors:  K = Π k[j] */
    int64_t r[PARE_TT_MAX + 1]; /* ranks, r[0] = r[d] = 1 */
} pare_tt_shape;

/* PARE_OK if s is a valid shape (2 ≤ d ≤ PARE_TT_MAX, factors and ranks ≥ 1, r[0] = r[d] = 1); PARE_EINVAL
 * with a message naming `what` otherwise. */
pare_status pare_tt_check(const pare_tt_shape *s, const char *what);
int64_t pare_tt_rows(const pare_tt_shape *s);   /* N */
int64_t pare_tt_cols(const pare_tt_shape *s);   /* K */
int64_t pare_tt_numel(const pare_tt_shape *s);  /* Σ r_j n_j k_j r_{j+1}: the cores' floats */
int64_t pare_tt_core_offset(const pare_tt_shape *s, int j); /* where core j starts in the packed cores */
int64_t pare_tt_cache_floats(const pare_tt_shape *s);       /* per row of x: the intermediates Z_{d-1}..Z_1 */
int64_t pare_tt_work_floats(const pare_tt_shape *s);        /* per row of x: backward's scratch */
int64_t pare_tt_flops(const pare_tt_shape *s, int64_t M);   /* forward */

/* y (M, N) = x (M, K) · W(cores)ᵀ + bias (N, may be NULL); z (M · pare_tt_cache_floats) receives the
 * intermediates; work: M · pare_tt_work_floats floats of scratch. cores: the d cores packed one after the
 * other, each (r_j, n_j, k_j, r_{j+1}) row-major. */
void pare_tt_linear_forward(float *y, float *z, float *work, const float *x, const float *cores, const float *bias,
                            int64_t M, const pare_tt_shape *s);
/* Backward of the forward above, adding into dx (M, K), dcores (numel), dbias (N); each may be NULL.
 * z: the forward's intermediates; work: M · pare_tt_work_floats floats. */
void pare_tt_linear_backward(float *dx, float *dcores, float *dbias, float *work, const float *dy, const float *x,
                             const float *z, const float *cores, int64_t M, const pare_tt_shape *s);

/* W (N, K) from the cores by the definition above (plain loops, double accumulation). */
void pare_tt_to_dense(float *W, const float *cores, const pare_tt_shape *s);

#endif
