/* gemm_ref.c — the plain reference twins of gemm.h, used by the tests (and nowhere else on a hot path).
 *
 * Triple loops with double (f32) or int64 (int8) accumulation, no threads, no blocking: slow on
 * purpose, so that they are obviously right. The int8 references quantize with the same scalar
 * helpers (gemm_internal.h) as the fast path, so their quantized activations agree bit for bit and a
 * test can compare the two tightly; the int8 dequantization is written in the same float order as
 * the fast pass (acc·(sx·sw) then + bias).
 *
 * Entry points: pare_sgemm_ref, pare_linear_f32_ref, pare_gemm_s8s8s32_ref, pare_quantize_rows_s8_ref,
 * pare_linear_i8_dynamic_ref.
 */
#include "kernels/gemm.h"

#include <stdlib.h>

#include "kernels/gemm_internal.h"

/* C(M,N) = alpha·op(A)(M,K)·op(B)(K,N) + beta·C, row-major. op(A)[m,k] = transa ? A[k*lda+m] : A[m*lda+k].
 * As in BLAS, C is not read when beta == 0 (it may hold NaN). */
void pare_sgemm_ref(int transa, int transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = transa ? A[k * lda + m] : A[m * lda + k];
                double b = transb ? B[n * ldb + k] : B[k * ldb + n];
                s += a * b;
            }
            double c = (double)alpha * s;
            if (beta != 0.0f) c += (double)beta * C[m * ldc + n];
            C[m * ldc + n] = (float)c;
        }
}

/* y(M,N) = x(M,K)·W(N,K)^T + bias(N) */
void pare_linear_f32_ref(float *y, const float *x, const float *W, const float *bias, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0;
            for (int64_t k = 0; k < K; k++) s += (double)x[m * K + k] * W[n * K + k];
            y[m * N + n] = (float)s;
        }
}

/* C(M,N) = A(M,K)·B(N,K)^T, exact in int64 then narrowed (exact for K <= PARE_I8_MAX_K). */
void pare_gemm_s8s8s32_ref(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t s = 0;
            for (int64_t k = 0; k < K; k++) s += (int64_t)A[m * K + k] * B[n * K + k];
            C[m * N + n] = (int32_t)s;
        }
}

/* q(M,K), scale(M) from x(M,K): per-row max-abs symmetric; a non-finite row gets scale NaN, q = 0. */
void pare_quantize_rows_s8_ref(int8_t *q, float *scale, const float *x, int64_t M, int64_t K)
{
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        uint32_t mx = 0;
        for (int64_t k = 0; k < K; k++) {
            uint32_t b = pare_i8_absbits_(xr[k]);
            if (b > mx) mx = b;
        }
        if (mx >= PARE_I8_NONFINITE) {
            scale[m] = NAN;
            for (int64_t k = 0; k < K; k++) q[m * K + k] = 0;
            continue;
        }
        float inv;
        pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), &scale[m], &inv);
        for (int64_t k = 0; k < K; k++) q[m * K + k] = pare_i8_quant_(xr[k], inv);
    }
}

/* y(M,N) = (Σ_k qx[m,k]·qw[n,k]) · (sx[m]·sw[n]) + bias[n] with qx, sx from pare_quantize_rows_s8_ref. */
void pare_linear_i8_dynamic_ref(float *y, const float *x, const pare_i8_weight *w, const float *bias, int64_t M)
{
    int64_t N = w->N, K = w->K;
    int8_t *qx = malloc((size_t)(M * K) + 1);
    float *sx = malloc((size_t)M * sizeof(float) + 1);
    if (!qx || !sx) { /* a test helper: out of memory is not worth a status here */
        free(qx);
        free(sx);
        for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
        return;
    }
    pare_quantize_rows_s8_ref(qx, sx, x, M, K);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (int64_t)qx[m * K + k] * w->q[n * K + k];
            float s = sx[m] * w->scale[n];
            float v = (float)(int32_t)acc * s;
            if (bias) v = v + bias[n];
            y[m * N + n] = v;
        }
    free(qx);
    free(sx);
}
