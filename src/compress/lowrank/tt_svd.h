/* tt_svd.h — TT-SVD of a Linear weight and the rewrite of a Linear node into a tt_linear node: what the
 * kronecker and tensor_train passes share (kronecker.c, tensor_train.c).
 *
 * TT-SVD (Oseledets 2011, Alg. 1) on the TT-matrix view of W (N, K): index W by the mode pairs
 * (a_0 c_0)(a_1 c_1)..(a_{d-1} c_{d-1}); at step j the remainder (r_j·n_j·k_j, rest) is decomposed by a
 * truncated SVD, U becomes core j and S·Vᵀ the next remainder. The left cores are orthonormal, so
 *
 *     ||W − W_TT||²_F = Σ_j (the squared singular values dropped at step j)            (exactly)
 *
 * For d = 2 this is the Van Loan–Pitsianis Kronecker approximation: the remainder at step 0 is the
 * rearrangement R(W) (n_0·k_0, n_1·k_1), R[(a,c), (b,e)] = W[a·n_1 + b, c·k_1 + e], whose best rank-r
 * approximation (Eckart–Young) gives the best Σ_{i<r} A_i ⊗ B_i. The last split puts √S on both sides
 * (balanced factors train better; the product is the same).
 */
#ifndef PARE_TT_SVD_H
#define PARE_TT_SVD_H

#include "core/status.h"
#include "graph/graph.h"

/* cores (malloc'd, pare_tt_numel(s) floats) of W (N, K) = (Π s->n, Π s->k). s gives d, n, k; its ranks are
 * set: at each step the smallest rank keeping `energy` of the step's Σσ² (energy 0: all), then capped at
 * max_rank (0: no cap). *err2 (may be NULL): Σ of the dropped σ², the exact squared error. */
pare_status pare_tt_svd(float **cores, pare_tt_shape *s, const float *W, int64_t max_rank, double energy, double *err2);

/* N's d factors, as balanced as the primes allow (d = 2: the divisor closest to √N, smaller first). */
void pare_tt_auto_factors(int64_t N, int d, int64_t *f);
/* "4,8,8" → f[0..d) with *d set; PARE_EINVAL naming `what` for anything but 2..PARE_TT_MAX positive integers. */
pare_status pare_tt_parse_factors(const char *text, int64_t *f, int *d, const char *what);

/* Can Linear node i be factorized (f32 weight, no transform, name room)? PARE_EINVAL naming pass and node. */
pare_status pare_tt_check_linear(const pare_model *m, int64_t i, const char *pass);
/* Linear node i becomes a tt_linear node of the same name, input, output and bias, with shape s and
 * parameter "<name>.cores" holding cores; its weight is dropped by the caller's pare_model_compact. */
pare_status pare_tt_replace_linear(pare_model *m, int64_t i, const pare_tt_shape *s, const float *cores);

#endif
