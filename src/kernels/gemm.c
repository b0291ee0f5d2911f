/* gemm.c — f32 matrix products and Linear (forward, backward) on oneDNN; threads and backend names.
 *
 * pare_sgemm is oneDNN's dnnl_sgemm (row-major BLAS semantics; JIT kernels chosen by oneDNN for the
 * CPU it runs on, OpenMP threading). Linear is one sgemm with W transposed plus a bias pass; its
 * backward is two sgemm with beta = 1 (so it adds into dx and dW, llm.c style) and a column sum.
 *
 * Deliberately not here: int8 (gemm_i8*.c), references (gemm_ref.c), OpenBLAS calls on the hot path
 * (OpenBLAS is linked for comparison benchmarks and reported by pare_kernel_backends; oneDNN was the
 * faster f32 GEMM on every shape we measured, see docs/kernels.md).
 *
 * Entry points: pare_sgemm, pare_linear_f32, pare_linear_f32_backward, pare_set_num_threads,
 * pare_get_num_threads, pare_kernel_backends.
 */
#include "kernels/gemm.h"

#include <assert.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include <dnnl.h>

/* OpenBLAS extensions, declared here rather than through <cblas.h>: the cblas.h found first on the
 * include path may be another vendor's, without them. */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

void pare_sgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta·C; oneDNN's K = 0 handling is not documented, so do it here */
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) C[m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
        return;
    }
    dnnl_status_t st = dnnl_sgemm(transa ? 'T' : 'N', transb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    /* oneDNN only fails on leading dimensions smaller than the matrix (a caller bug): the reference
     * then computes what the arguments mean, slowly, rather than leaving C untouched. */
    assert(st == dnnl_success);
    if (st != dnnl_success) pare_sgemm_ref(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* y(M,N) = x(M,K)·W(N,K)^T + bias(N) */
void pare_linear_f32(float *y, const float *x, const float *W, const float *bias, int64_t M, int64_t N, int64_t K)
{
    pare_sgemm(0, 1, M, N, K, 1.0f, x, K, W, K, 0.0f, y, N);
    if (!bias) return;
#pragma omp parallel for schedule(static) if (M * N >= 32768)
    for (int64_t m = 0; m < M; m++) {
        float *yr = y + m * N;
        for (int64_t n = 0; n < N; n++) yr[n] += bias[n];
    }
}

/* Backward of y = x·W^T + b, adding into the gradients:
 *   dx(M,K) += dy(M,N)·W(N,K)        dW(N,K) += dy(M,N)^T·x(M,K)        dbias(N) += Σ_m dy(m,:) */
void pare_linear_f32_backward(float *dx, float *dW, float *dbias, const float *dy, const float *x, const float *W,
                              int64_t M, int64_t N, int64_t K)
{
    if (dx) pare_sgemm(0, 0, M, K, N, 1.0f, dy, N, W, K, 1.0f, dx, K);
    if (dW) pare_sgemm(1, 0, N, K, M, 1.0f, dy, N, x, K, 1.0f, dW, K);
    if (dbias) {
        /* column slices, each summed over all rows in row order: no race, thread-count independent */
#pragma omp parallel for schedule(static) if (M * N >= 32768)
        for (int64_t n0 = 0; n0 < N; n0 += 64) {
            int64_t n1 = n0 + 64 < N ? n0 + 64 : N;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = n0; n < n1; n++) dbias[n] += dy[m * N + n];
        }
    }
}

/* ---- threads and backends ---- */

void pare_set_num_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n); /* oneDNN (OpenMP runtime) reads omp_get_max_threads() at each call */
    openblas_set_num_threads(n);
}

int pare_get_num_threads(void) { return omp_get_max_threads(); }

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    static const struct { dnnl_cpu_isa_t isa; const char *name; } names[] = {
        {dnnl_cpu_isa_sse41, "sse41"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
        {dnnl_cpu_isa_avx512_mic, "avx512_mic"},
        {dnnl_cpu_isa_avx512_mic_4ops, "avx512_mic_4ops"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].isa == isa) return names[i].name;
    return "unknown isa";
}

/* "onednn 2.6.3 (avx512_core_bf16), openblas 0.3.21 (Haswell)" */
const char *pare_kernel_backends(char *buf, size_t n)
{
    if (!buf || n == 0) return buf;
    const dnnl_version_t *v = dnnl_version();
    /* openblas_get_config(): "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64" */
    char obv[32] = "?", core[32] = "";
    const char *cfg = openblas_get_config();
    if (cfg) {
        char word[64];
        const char *p = cfg;
        int i = 0, len;
        while (sscanf(p, "%63s%n", word, &len) == 1) {
            if (i == 1) snprintf(obv, sizeof obv, "%.31s", word);
            /* the core OpenBLAS picked at run time: the first capitalised word after the flags */
            if (i >= 2 && !core[0] && word[0] >= 'A' && word[0] <= 'Z' && word[1] >= 'a' && word[1] <= 'z' &&
                !strchr(word, '='))
                snprintf(core, sizeof core, "%.31s", word);
            p += len;
            i++;
        }
    }
    snprintf(buf, n, "onednn %d.%d.%d (%s), openblas %s%s%s%s", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()), obv, core[0] ? " (" : "", core, core[0] ? ")" : "");
    return buf;
}

/* ---- compressed weights decoded in panels (gemm.h) ---- */

static size_t panel_slot(int64_t K, int64_t pmax) { return ((size_t)(pmax * K) * sizeof(float) + 63) & ~(size_t)63; }

size_t pare_sgemm_panels_workspace(int64_t K, int64_t pmax)
{
    int procs = omp_get_num_procs();
    return (size_t)(procs < 1 ? 1 : procs) * panel_slot(K, pmax);
}

void pare_sgemm_panels(float *y, const float *x, const float *bias, int64_t M, int64_t N, int64_t K, int64_t pmax,
                       pare_panel_decode decode, const void *w, void *ws)
{
    int procs = omp_get_num_procs(), nth = omp_get_max_threads();
    if (nth > procs) nth = procs;
    if (nth < 1) nth = 1;
    int64_t npan = (N + pmax - 1) / pmax;
    npan = (npan + nth - 1) / nth * nth;
    int64_t P = ((N + npan - 1) / npan + 15) / 16 * 16;
    if (P > pmax) P = pmax;
    npan = (N + P - 1) / P;
    if (nth > npan) nth = (int)npan;
    const size_t slot = panel_slot(K, pmax);
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        float *buf = (float *)(void *)((char *)ws + (size_t)omp_get_thread_num() * slot);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < npan; p++) {
            int64_t n0 = p * P, rows = N - n0 < P ? N - n0 : P;
            decode(buf, w, n0, rows);
            pare_sgemm(0, 1, M, rows, K, 1.0f, x, K, buf, K, 0.0f, y + n0, N);
            if (bias)
                for (int64_t m = 0; m < M; m++)
                    for (int64_t r = 0; r < rows; r++) y[m * N + n0 + r] += bias[n0 + r];
        }
    }
}
