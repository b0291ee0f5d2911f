/* svd.c — pare_svd through GSL (svd.h). */
#include "svd.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <stdlib.h>

/* W is read through one of the two pointers: the float weight of a layer, or a double matrix (TT-SVD's
 * remainders). */
static pare_status svd_any(const float *W, const double *Wd, int64_t N, int64_t K, double **u, double **s, double **vt)
{
    *u = *s = *vt = NULL;
    if (N < 1 || K < 1) return pare_fail(PARE_EINVAL, "svd: a (%lld, %lld) matrix has no singular values", (long long)N, (long long)K);
    int tall = N >= K; /* GSL needs rows >= columns: decompose W, or Wᵀ */
    int64_t M = tall ? N : K, R = tall ? K : N;
    gsl_error_handler_t *old = gsl_set_error_handler_off(); /* GSL's default handler aborts */
    gsl_matrix *A = gsl_matrix_alloc((size_t)M, (size_t)R), *V = gsl_matrix_alloc((size_t)R, (size_t)R);
    gsl_vector *S = gsl_vector_alloc((size_t)R), *work = gsl_vector_alloc((size_t)R);
    double *U = malloc(sizeof *U * (size_t)(N * R)), *Sv = malloc(sizeof *Sv * (size_t)R), *Vt = malloc(sizeof *Vt * (size_t)(R * K));
    pare_status st = A && V && S && work && U && Sv && Vt ? PARE_OK : pare_fail(PARE_ENOMEM, "svd: out of memory for a "
                                                                          "(%lld, %lld) matrix", (long long)N, (long long)K);
    if (st == PARE_OK) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < R; j++) gsl_matrix_set(A, (size_t)i, (size_t)j,
                               W ? (tall ? W[i * K + j] : W[j * K + i]) : (tall ? Wd[i * K + j] : Wd[j * K + i]));
        int rc = gsl_linalg_SV_decomp(A, V, S, work); /* A ← U (M, R), V (R, R), S (R) */
        if (rc) st = pare_fail(PARE_ENUMERIC, "svd: GSL failed on a (%lld, %lld) matrix: %s", (long long)N, (long long)K,
                               gsl_strerror(rc));
    }
    if (st == PARE_OK) {
        for (int64_t j = 0; j < R; j++) Sv[j] = gsl_vector_get(S, (size_t)j);
        /* W = A S Vᵀ (tall) or W = (A S Vᵀ)ᵀ = V S Aᵀ */
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < R; j++) U[i * R + j] = tall ? gsl_matrix_get(A, (size_t)i, (size_t)j) : gsl_matrix_get(V, (size_t)i, (size_t)j);
        for (int64_t j = 0; j < R; j++)
            for (int64_t k = 0; k < K; k++) Vt[j * K + k] = tall ? gsl_matrix_get(V, (size_t)k, (size_t)j) : gsl_matrix_get(A, (size_t)k, (size_t)j);
    }
    gsl_matrix_free(A), gsl_matrix_free(V), gsl_vector_free(S), gsl_vector_free(work);
    gsl_set_error_handler(old);
    if (st != PARE_OK) {
        free(U), free(Sv), free(Vt);
        return st;
    }
    *u = U, *s = Sv, *vt = Vt;
    return PARE_OK;
}

pare_status pare_svd(const float *W, int64_t N, int64_t K, double **u, double **s, double **vt)
{
    return svd_any(W, NULL, N, K, u, s, vt);
}

pare_status pare_svd_d(const double *W, int64_t N, int64_t K, double **u, double **s, double **vt)
{
    return svd_any(NULL, W, N, K, u, s, vt);
}

int64_t pare_svd_rank_for_energy(const double *s, int64_t R, double energy)
{
    double total = 0, kept = 0;
    for (int64_t j = 0; j < R; j++) total += s[j] * s[j];
    for (int64_t r = 1; r <= R; r++) {
        kept += s[r - 1] * s[r - 1];
        if (kept >= energy * total) return r;
    }
    return R;
}
