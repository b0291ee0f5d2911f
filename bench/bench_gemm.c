/* bench_gemm.c — f32 and int8 GEMM throughput at BERT-base shapes, against the measured peak of the core.
 *
 *   build/bench/bench_gemm [M ...]    (M = 128 by default; about 25 s per M on 2 cores)
 *   build/bench/bench_gemm --vnni     (issue 18's int8 kernel comparison alone, ~1 min)
 *
 * Measures, for 1 and 2 threads:
 *   peak     f32: a loop of independent AVX-512 FMAs (AVX2/FMA without AVX-512);
 *            int8: a loop of independent vpdpbusd (AVX512-VNNI, else AVX-VNNI, else not measured).
 *            Twelve accumulators so that latency never limits throughput; one copy per thread; the
 *            best of 15 runs.
 *   gemm     M tokens (128 unless given), (N,K) in {(768,768) attention projections, (2304,768) fused
 *            QKV, (3072,768) FFN up, (768,3072) FFN down}, as y(M,N) = x(M,K)·W(N,K)^T:
 *              f32_onednn     pare_sgemm (oneDNN dnnl_sgemm)
 *              f32_openblas   OpenBLAS cblas_sgemm, for comparison: OpenBLAS limited to 1 thread per call and
 *                             the threads' share of N split with OpenMP (see below)
 *              f32_linear     pare_linear_f32 (sgemm + bias pass)
 *              f32_packed     pare_linear_f32_packed (weights packed once, oneDNN inner product, bias fused)
 *              f32_packed_gelu     pare_linear_f32_packed_gelu (GELU fused as a post-op)
 *              f32_packed+gelu     pare_linear_f32_packed then pare_gelu_forward (the unfused pair)
 *              i8_linear      pare_linear_i8_dynamic end to end: per-token quantization of x, int8
 *                             GEMM (on VNNI: oneDNN's inner product on the weights packed at quantization),
 *                             dequantization + bias
 *              i8_linear_gemm the same call on the same weights without their packed copy: the
 *                             dnnl_gemm_u8s8s32 path (which repacks W on every call), for comparison
 *              i8_linear_onednn  the same call on weights packed for oneDNN's int8 inner product
 *                             (pare_i8_kernel_set(PARE_I8_KERNEL_ONEDNN)); i8_linear runs pare's own VNNI kernel
 *                             (gemm_i8_vnni.c) where the CPU has AVX512-VNNI
 *              i8_s8s8s32     pare_gemm_s8s8s32 alone      i8_u8s8s32     dnnl_gemm_u8s8s32 alone
 * Each figure is the median over 15 samples, each sample timing enough back-to-back calls to last
 * ~4 ms, after single calls until their timings are stable (bench_util.h; the process itself is warmed
 * up first: bench_warm_process); the whole grid is measured in 3 rounds and the best round's median kept
 * (on a shared machine another process's burst of load then spoils one round, not the figure).
 * int8 "GOP/s" counts 2·M·N·K operations like f32 GFLOP/s. The 1-minute load average is printed.
 *
 * OpenBLAS: cblas_sgemm is looked up in libopenblas.so.0 itself (dlsym). Linked by name it resolves to
 * whichever library comes first on the link line, and libpare's link line puts GSL's reference CBLAS
 * (-lgslcblas, ~4.5 GFLOP/s) before OpenBLAS. And OpenBLAS's own pthread pool, spinning beside the OpenMP
 * pool of oneDNN on 2 cores, time-shares badly when another process loads a core; so OpenBLAS is run
 * single-threaded per call, parallelised here over column blocks of N with OpenMP, the same pool as the
 * other kernels.
 *
 * Then (AVX512-VNNI only; `bench_gemm --vnni` runs this section alone) issue 18's comparison, 1 thread, in the
 * calling thread's CPU time so that other processes' load disturbs less: M in {128, 1024} × the four shapes, in
 * 4 rounds each measuring the vpdpbusd peak probe and then, side by side (in reverse order on odd rounds),
 *     vnni_gemm         pare's kernel alone: int32 sums of the u8 activations and the panels (gemm_i8_vnni.c)
 *     onednn_ip         oneDNN's packed int8 inner product alone (what i8_linear_onednn runs)
 *     i8_linear_pare    pare_linear_i8_dynamic end to end on pare's kernel (dequantization in the tile)
 *     i8_linear_onednn  the same on oneDNN's (then the dequantization pass)
 * each kept at its best round, as % of the best peak of the run (both in CPU time).
 *
 * Output: a human table on lines starting with '#', and machine-readable lines (read by experiments/bench.lua):
 *   peak <f32|i8> <threads> <gflops>
 *   gemm <kernel> <M> <N> <K> <threads> <gflops> <warm-up calls>
 *   ratio <kernel>/<kernel> <M> <N> <K> <threads> <ratio>
 *   i8vnni <kernel> <M> <N> <K> <gops_cpu> <peak_cpu> <pct_peak_cpu> <gops_wall> <load>
 *   info <key> <value...>
 */
#include <dlfcn.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include "core/cpu.h"
#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "kernels/gemm_i8_internal.h"
#include "kernels/gemm_i8_vnni.h"
#include "kernels/nn.h"

#include "bench_util.h"
#include "bench_peak.h"

/* cblas_sgemm of OpenBLAS, found with dlsym in OpenBLAS's own library (see the top of the file) */
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
typedef void (*cblas_sgemm_fn)(int order, int transa, int transb, int M, int N, int K, float alpha, const float *A,
                               int lda, const float *B, int ldb, float beta, float *C, int ldc);
static cblas_sgemm_fn openblas_sgemm;
void openblas_set_num_threads(int num_threads);

static void openblas_init(void)
{
    void *h = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
    if (!h) h = dlopen("libopenblas.so.0", RTLD_LAZY);
    if (h) openblas_sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
}

/* y(M,N) = x(M,K)·W(N,K)^T with OpenBLAS single-threaded, each OpenMP thread on its slice of N (multiples of 16). */
static int openblas_linear(float *y, const float *x, const float *W, int64_t M, int64_t N, int64_t K)
{
    if (!openblas_sgemm) return 1;
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t blocks = (N + 15) / 16, n0 = blocks * t / nt * 16, n1 = blocks * (t + 1) / nt * 16;
        n1 = n1 < N ? n1 : N;
        if (n1 > n0)
            openblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)(n1 - n0), (int)K, 1.0f, x, (int)K,
                           W + n0 * K, (int)K, 0.0f, y + n0, (int)N);
    }
    return 0;
}

#define ROUNDS 3

/* ---- GEMM benchmarks ---- */

typedef struct gemm_case {
    int64_t M, N, K;
    float *x, *W, *bias, *y;       /* x (M,K), W (N,K), bias (N), y (M,N) */
    int8_t *xq;                    /* (M,K) quantized x, for the bare int8 GEMMs */
    uint8_t *xu;                   /* (M,K) xq + 128 */
    int32_t *acc;                  /* (M,N) */
    pare_f32_packed *wp;           /* W packed for pare_linear_f32_packed */
    pare_i8_weight w;              /* packed for the default kernel (pare's VNNI kernel on AVX512-VNNI) */
    pare_i8_weight wo;             /* packed for oneDNN's inner product */
    pare_i8_weight wg;             /* w without its packed copy (shares w's arrays; never freed) */
    void *ws;
} gemm_case;

enum { K_F32_ONEDNN, K_F32_OPENBLAS, K_F32_LINEAR, K_F32_PACKED, K_F32_PACKED_GELU, K_F32_PACKED_GELU_PASS,
       K_I8_LINEAR, K_I8_LINEAR_GEMM, K_I8_LINEAR_ONEDNN, K_I8_S8S8, K_I8_U8S8,
       K_VNNI_GEMM, K_ONEDNN_IP, K_COUNT }; /* the last two: the --vnni section only */
#define K_GRID K_VNNI_GEMM                  /* kernels of the main grid: those before */
static const char *kernel_names[K_COUNT] = {"f32_onednn",      "f32_openblas",    "f32_linear",
                                            "f32_packed",      "f32_packed_gelu", "f32_packed+gelu",
                                            "i8_linear",       "i8_linear_gemm",  "i8_linear_onednn",
                                            "i8_s8s8s32",      "i8_u8s8s32",      "vnni_gemm",
                                            "onednn_ip"};
#define K_IS_F32(k) ((k) < K_I8_LINEAR)

static int run_kernel(int k, gemm_case *c)
{
    const int32_t co = 0;
    switch (k) {
    case K_F32_ONEDNN: pare_sgemm(0, 1, c->M, c->N, c->K, 1.0f, c->x, c->K, c->W, c->K, 0.0f, c->y, c->N); return 0;
    case K_F32_OPENBLAS: return openblas_linear(c->y, c->x, c->W, c->M, c->N, c->K);
    case K_F32_LINEAR: pare_linear_f32(c->y, c->x, c->W, c->bias, c->M, c->N, c->K); return 0;
    case K_F32_PACKED: return pare_linear_f32_packed(c->y, c->x, c->wp, c->bias, c->M) != PARE_OK;
    case K_F32_PACKED_GELU: return pare_linear_f32_packed_gelu(c->y, c->x, c->wp, c->bias, c->M) != PARE_OK;
    case K_F32_PACKED_GELU_PASS:
        if (pare_linear_f32_packed(c->y, c->x, c->wp, c->bias, c->M) != PARE_OK) return 1;
        pare_gelu_forward(c->y, c->y, c->M * c->N);
        return 0;
    case K_I8_LINEAR: return pare_linear_i8_dynamic(c->y, c->x, &c->w, c->bias, c->M, c->ws) != PARE_OK;
    case K_I8_LINEAR_GEMM: return pare_linear_i8_dynamic(c->y, c->x, &c->wg, c->bias, c->M, c->ws) != PARE_OK;
    case K_I8_LINEAR_ONEDNN: return pare_linear_i8_dynamic(c->y, c->x, &c->wo, c->bias, c->M, c->ws) != PARE_OK;
    case K_VNNI_GEMM: {
        const pare_i8_packed *p = c->w.packed;
        if (!p || !p->panels) return 1;
        pare_i8_vnni_gemm_(c->acc, c->xu, c->K, c->M, p->panels, NULL);
        return 0;
    }
    case K_ONEDNN_IP: {
        const pare_i8_packed *p = c->wo.packed;
        return !p || !p->ip || pare_i8_packed_gemm_(p->ip, c->acc, c->xu, c->M, c->y, (size_t)(c->M * c->N) * 4) != 0;
    }
    case K_I8_S8S8: return pare_gemm_s8s8s32(c->acc, c->xq, c->w.q, c->M, c->N, c->K) != PARE_OK;
    case K_I8_U8S8:
        return dnnl_gemm_u8s8s32('N', 'T', 'F', c->M, c->N, c->K, 1.0f, c->xu, c->K, 0, c->w.q, c->K, 0, 0.0f, c->acc,
                                 c->N, &co) != dnnl_success;
    }
    return 1;
}

typedef struct kernel_ctx { int k; gemm_case *c; } kernel_ctx;

static int kernel_call(void *ctx)
{
    kernel_ctx *kc = ctx;
    return run_kernel(kc->k, kc->c);
}

/* GFLOP/s (bench_peak.h's bench_gflops); -1 if the kernel failed. *warm = the warm-up calls; cpu (may be
 * NULL): the same in the calling thread's CPU time. */
static double bench_kernel(int k, gemm_case *c, int64_t *warm, double *cpu)
{
    kernel_ctx kc = {k, c};
    bench_call bc = {kernel_call, &kc, kernel_names[k]};
    return bench_gflops(&bc, 2.0 * (double)c->M * (double)c->N * (double)c->K, cpu, warm);
}

static void case_init(gemm_case *c, int64_t M, int64_t N, int64_t K, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->M = M, c->N = N, c->K = K;
    c->x = xalloc((size_t)(M * K) * 4), c->W = xalloc((size_t)(N * K) * 4), c->bias = xalloc((size_t)N * 4);
    c->y = xalloc((size_t)(M * N) * 4), c->acc = xalloc((size_t)(M * N) * 4);
    c->xq = xalloc((size_t)(M * K)), c->xu = xalloc((size_t)(M * K));
    uint64_t s = seed;
    for (int64_t i = 0; i < M * K; i++) c->x[i] = (float)((s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / 16777216.0f - 0.5f;
    for (int64_t i = 0; i < N * K; i++) c->W[i] = (float)((s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / 16777216.0f * 0.1f - 0.05f;
    for (int64_t i = 0; i < N; i++) c->bias[i] = 0.01f * (float)(i % 7);
    float *sx = xalloc((size_t)M * 4);
    pare_quantize_rows_s8(c->xq, sx, c->x, M, K);
    for (int64_t i = 0; i < M * K; i++) c->xu[i] = (uint8_t)(c->xq[i] + 128);
    free(sx);
    pare_i8_kernel was = pare_i8_kernel_set(PARE_I8_KERNEL_ONEDNN);
    pare_status so = pare_i8_weight_quantize(&c->wo, c->W, N, K);
    pare_i8_kernel_set(was);
    if (so != PARE_OK || pare_f32_weight_pack(&c->wp, c->W, N, K) != PARE_OK ||
        pare_i8_weight_quantize(&c->w, c->W, N, K) != PARE_OK) {
        fprintf(stderr, "bench_gemm: %s\n", pare_errmsg());
        exit(1);
    }
    c->wg = c->w;
    c->wg.packed = NULL;
    c->ws = xalloc(pare_linear_i8_workspace(M, N, K));
}

static void case_free(gemm_case *c)
{
    free(c->x), free(c->W), free(c->bias), free(c->y), free(c->acc), free(c->xq), free(c->xu), free(c->ws);
    pare_i8_weight_free(&c->w);
    pare_i8_weight_free(&c->wo);
    pare_f32_packed_free(c->wp);
}

/* Issue 18: pare's VNNI kernel against oneDNN's, 1 thread, thread CPU time, % of the peak probe measured in
 * the same rounds (see the top of the file). The kernels run in turn, in reverse order on odd rounds: measured
 * in one order only, the first of a pair came out 1–3% slower than when it ran second. */
#define VNNI_ROUNDS 4
static void vnni_section(void)
{
    if (!pare_i8_vnni_available_()) {
        printf("#\n# vnni section: no AVX512-VNNI here, not measured\n");
        return;
    }
    enum { NM = 2, NS = 4, NK = 4 };
    static const int64_t Ms[NM] = {128, 1024}, shapes[NS][2] = {{768, 768}, {2304, 768}, {3072, 768}, {768, 3072}};
    static const int ks[NK] = {K_VNNI_GEMM, K_ONEDNN_IP, K_I8_LINEAR, K_I8_LINEAR_ONEDNN};
    static const char *names[NK] = {"vnni_gemm", "onednn_ip", "i8_linear_pare", "i8_linear_onednn"};
    pare_set_num_threads(1);
    double load0[1] = {-1}, load1[1] = {-1};
    getloadavg(load0, 1);
    double peak_cpu = 0, cpu[NM][NS][NK] = {{{0}}}, wall[NM][NS][NK] = {{{0}}};
    for (int mi = 0; mi < NM; mi++) {
        gemm_case cases[NS];
        for (int s = 0; s < NS; s++) case_init(&cases[s], Ms[mi], shapes[s][0], shapes[s][1], 77 + s);
        for (int r = 0; r < VNNI_ROUNDS; r++) {
            double pc = 0;
            run_peak(peak_i8_avx512vnni, 1, &pc);
            peak_cpu = pc > peak_cpu ? pc : peak_cpu;
            for (int s = 0; s < NS; s++)
                for (int kk = 0; kk < NK; kk++) {
                    const int k = r % 2 ? NK - 1 - kk : kk; /* odd rounds in reverse: no kernel always goes first */
                    double gc = 0, g = bench_kernel(ks[k], &cases[s], NULL, &gc);
                    if (g > 0 && gc > cpu[mi][s][k]) cpu[mi][s][k] = gc, wall[mi][s][k] = g;
                }
        }
        for (int s = 0; s < NS; s++) case_free(&cases[s]);
    }
    getloadavg(load1, 1);
    printf("#\n# issue 18: int8 u8s8 kernels, 1 thread, thread CPU time, best of %d rounds; vpdpbusd peak %.1f GOP/s (CPU "
           "time, best of the rounds); load %.2f -> %.2f\n", VNNI_ROUNDS, peak_cpu, load0[0], load1[0]);
    printf("# %-17s %5s %5s %5s %10s %8s %10s\n", "kernel", "M", "N", "K", "GOP/s cpu", "% peak", "GOP/s wall");
    for (int mi = 0; mi < NM; mi++)
        for (int s = 0; s < NS; s++)
            for (int k = 0; k < NK; k++) {
                double pct = peak_cpu > 0 ? 100.0 * cpu[mi][s][k] / peak_cpu : 0;
                printf("# %-17s %5lld %5lld %5lld %10.1f %7.1f%% %10.1f\n", names[k], (long long)Ms[mi],
                       (long long)shapes[s][0], (long long)shapes[s][1], cpu[mi][s][k], pct, wall[mi][s][k]);
                printf("i8vnni %s %lld %lld %lld %.2f %.2f %.2f %.2f %.2f\n", names[k], (long long)Ms[mi],
                       (long long)shapes[s][0], (long long)shapes[s][1], cpu[mi][s][k], peak_cpu, pct, wall[mi][s][k],
                       load1[0]);
            }
}

int main(int argc, char **argv)
{
    openblas_init();
    const pare_cpu *cpu = pare_cpu_get();
    char feat[256], back[256];
    pare_cpu_features_str(feat, sizeof feat);
    pare_kernel_backends(back, sizeof back);
    printf("# bench_gemm — f32 vs int8 GEMM at BERT-base shapes\n");
    printf("# cpu: %s (%d logical cores)\n# features: %s\n# backends: %s\n", cpu->model, cpu->logical_cores, feat, back);
    double load[1] = {-1};
    getloadavg(load, 1);
    printf("# load average at start: %.2f\n", load[0]);
    printf("info load %.2f\n", load[0]);
    printf("info cpu %s\ninfo backends %s\ninfo i8_path %s\n", cpu->model, back, pare_i8_path_name(pare_linear_i8_path(768)));
    bench_warm_process();
    if (argc > 1 && !strcmp(argv[1], "--vnni")) { /* issue 18's section alone */
        vnni_section();
        return 0;
    }

    static const int threads_list[] = {1, 2};
    enum { NT = 2 };
    double peak_f32[NT] = {0}, peak_i8[NT] = {0};
    peak_fn pf = NULL, pi = NULL;
    const char *pf_name = "none", *pi_name = "none";
#ifdef BENCH_X86
    if (cpu->avx512f) pf = peak_f32_avx512, pf_name = "avx512 fma";
    else if (cpu->avx2 && cpu->fma) pf = peak_f32_avx2, pf_name = "avx2 fma";
    if (cpu->avx512vnni && cpu->avx512bw) pi = peak_i8_avx512vnni, pi_name = "avx512 vpdpbusd";
    else if (cpu->avxvnni) pi = peak_i8_avxvnni, pi_name = "avx-vnni vpdpbusd";
#endif
    for (int r = 0; r < ROUNDS; r++)
        for (int t = 0; t < NT; t++) {
            double v;
            if (pf && (v = run_peak(pf, threads_list[t], NULL)) > peak_f32[t]) peak_f32[t] = v;
            if (pi && (v = run_peak(pi, threads_list[t], NULL)) > peak_i8[t]) peak_i8[t] = v;
        }
    printf("#\n# peak (micro-benchmark, 12 independent accumulators per thread; best of %d runs)\n", 5 * ROUNDS);
    printf("# %-8s %-20s %8s %14s %14s\n", "kind", "instruction", "threads", "G(FL)OP/s", "per thread");
    for (int t = 0; t < NT; t++) {
        int th = threads_list[t];
        printf("# %-8s %-20s %8d %14.1f %14.1f\n", "f32", pf_name, th, peak_f32[t], peak_f32[t] / th);
        printf("# %-8s %-20s %8d %14.1f %14.1f\n", "int8", pi_name, th, peak_i8[t], peak_i8[t] / th);
        printf("peak f32 %d %.1f\npeak i8 %d %.1f\n", th, peak_f32[t], th, peak_i8[t]);
    }

    enum { NS = 4 };
    static const int64_t shapes[NS][2] = {{768, 768}, {2304, 768}, {3072, 768}, {768, 3072}};
    for (int ai = 1; ai < argc || ai == 1; ai++) {
        const int64_t M = ai < argc ? atoll(argv[ai]) : 128;
        if (M < 1) {
            fprintf(stderr, "bench_gemm: M=%s: must be a positive integer\n", argv[ai]);
            return 1;
        }
        printf("#\n# GEMM y(M,N) = x(M,K)·W(N,K)^T, best of %d rounds of medians of %d samples; %% of measured peak for the same threads\n",
               ROUNDS, SAMPLES);
        printf("# %-16s %5s %5s %5s %7s %11s %8s\n", "kernel", "M", "N", "K", "threads", "G(FL)OP/s", "% peak");
        /* ROUNDS passes over every (shape, threads, kernel), keeping the best per-round median: the machine
         * may be shared, and a burst of someone else's load then spoils at most one round of a figure. */
        double res[NS][NT][K_COUNT];
        int64_t warm[NS][NT][K_COUNT]; /* warm-up calls of the round kept */
        gemm_case cases[NS];
        for (size_t s = 0; s < NS; s++) case_init(&cases[s], M, shapes[s][0], shapes[s][1], 1234 + s);
        for (int r = 0; r < ROUNDS; r++)
            for (int t = 0; t < NT; t++) {
                pare_set_num_threads(threads_list[t]);
                openblas_set_num_threads(1); /* OpenBLAS runs inside our OpenMP threads (openblas_linear) */
                for (size_t s = 0; s < NS; s++)
                    for (int k = 0; k < K_GRID; k++) {
                        int64_t wu = 0;
                        double g = bench_kernel(k, &cases[s], &wu, NULL);
                        if (r == 0 || g < 0 || g > res[s][t][k]) {
                            res[s][t][k] = r > 0 && res[s][t][k] < 0 ? -1 : g;
                            warm[s][t][k] = wu;
                        }
                    }
            }
        for (size_t s = 0; s < NS; s++)
            for (int t = 0; t < NT; t++)
                for (int k = 0; k < K_GRID; k++) {
                    const gemm_case *c = &cases[s];
                    double g = res[s][t][k], pk = K_IS_F32(k) ? peak_f32[t] : peak_i8[t];
                    if (g < 0) {
                        printf("# %-16s %5lld %5lld %5lld %7d %11s\n", kernel_names[k], (long long)M, (long long)c->N,
                               (long long)c->K, threads_list[t], "failed");
                        continue;
                    }
                    printf("# %-16s %5lld %5lld %5lld %7d %11.1f %7.1f%%\n", kernel_names[k], (long long)M,
                           (long long)c->N, (long long)c->K, threads_list[t], g, pk > 0 ? 100.0 * g / pk : 0.0);
                    printf("gemm %s %lld %lld %lld %d %.2f %lld\n", kernel_names[k], (long long)M, (long long)c->N,
                           (long long)c->K, threads_list[t], g, (long long)warm[s][t][k]);
                }
        printf("#\n# f32_packed runs oneDNN %s\n", pare_f32_packed_impl(cases[0].wp));
        printf("info f32_packed_impl %s\n", pare_f32_packed_impl(cases[0].wp));
        printf("# i8_linear runs %s (packed copy %zu bytes for %lldx%lld)\n", pare_i8_weight_impl(&cases[0].w),
               pare_i8_weight_packed_bytes(&cases[0].w), (long long)cases[0].N, (long long)cases[0].K);
        printf("info i8_linear_impl %s\n", pare_i8_weight_impl(&cases[0].w));
        for (size_t s = 0; s < NS; s++) case_free(&cases[s]);

        printf("#\n# ratios (same shape, same threads)\n");
        printf("# %5s %5s %5s %7s %18s %18s %18s %18s %18s\n", "M", "N", "K", "threads", "f32_packed/f32_lin",
               "i8_linear/f32_lin", "i8_lin/best_f32", "s8s8/f32_onednn", "u8s8/f32_onednn");
        for (size_t s = 0; s < NS; s++)
            for (int t = 0; t < NT; t++) {
                double *r = res[s][t];
                double r0 = r[K_F32_PACKED] / r[K_F32_LINEAR], r1 = r[K_I8_LINEAR] / r[K_F32_LINEAR],
                       r2 = r[K_I8_S8S8] / r[K_F32_ONEDNN], r3 = r[K_I8_U8S8] / r[K_F32_ONEDNN];
                long long n = shapes[s][0], k = shapes[s][1];
                double bf = r[K_F32_PACKED] > r[K_F32_LINEAR] ? r[K_F32_PACKED] : r[K_F32_LINEAR];
                printf("# %5lld %5lld %5lld %7d %18.2f %18.2f %18.2f %18.2f %18.2f\n", (long long)M, n, k, threads_list[t],
                       r0, r1, r[K_I8_LINEAR] / bf, r2, r3);
                printf("ratio f32_packed/f32_linear %lld %lld %lld %d %.3f\n", (long long)M, n, k, threads_list[t], r0);
                printf("ratio i8_linear/f32_linear %lld %lld %lld %d %.3f\n", (long long)M, n, k, threads_list[t], r1);
                printf("ratio i8_linear/f32_packed %lld %lld %lld %d %.3f\n", (long long)M, n, k, threads_list[t],
                       r[K_I8_LINEAR] / r[K_F32_PACKED]);
                printf("ratio i8_linear/f32_onednn %lld %lld %lld %d %.3f\n", (long long)M, n, k, threads_list[t],
                       r[K_I8_LINEAR] / r[K_F32_ONEDNN]);
                printf("ratio i8_s8s8s32/f32_onednn %lld %lld %lld %d %.3f\n", (long long)M, n, k, threads_list[t], r2);
                printf("ratio i8_linear/i8_linear_onednn %lld %lld %lld %d %.3f\n", (long long)M, n, k, threads_list[t],
                       r[K_I8_LINEAR] / r[K_I8_LINEAR_ONEDNN]);
            }
    }
    if (peak_f32[0] > 0 && peak_i8[0] > 0)
        printf("# peak int8/f32 per core: %.2f\nratio peak_i8/peak_f32 0 0 0 1 %.3f\n", peak_i8[0] / peak_f32[0],
               peak_i8[0] / peak_f32[0]);
    vnni_section();
    return 0;
}
