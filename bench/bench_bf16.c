/* bench_bf16.c — the 16-bit float Linear (kernels/gemm_half.h) at BERT-base shapes against the machine's
 * measured bf16 and f32 peaks (issue 15).
 *
 *   build/bench/bench_bf16 [threads=1,2] [M=128]
 *
 * peak    bf16: a loop of independent vdpbf16ps (AVX512-BF16: 16 lanes × 2 products, each a multiply and an
 *         add = 64 FLOP per instruction; 24 independent accumulators); f32: independent AVX-512 FMAs (32 FLOP per
 *         instruction, 12 accumulators), the same micro-benchmark as bench_gemm. One copy per thread, the best
 *         of 5 runs in each of 3 rounds. Not measured (0) where the CPU lacks the instruction.
 * gemm    y(M,N) = x(M,K)·W(N,K)^T + bias at (N,K) in {(768,768), (2304,768), (3072,768), (768,3072)}:
 *           f32_packed   pare_linear_f32_packed (pare's f32 inference Linear)
 *           bf16_linear  pare_linear_half on bf16 weights, end to end: x rounded to bf16, the kernel chosen at
 *                        make (oneDNN's bf16 inner product here), bias
 *           bf16_ip      the same inner product on activations already in bf16 (no conversion): the GEMM alone,
 *                        the figure set against the bf16 peak
 *           bf16_widen   pare_linear_half_widen on the same weights: the portable kernel (CPUs without BF16)
 *           f16_linear   pare_linear_half on f16 weights (the widen kernel: f16 storage, f32 arithmetic)
 *         Medians of 15 samples of back-to-back calls (~4 ms each) after a warm-up until stable, best of 3
 *         rounds (bench_util.h, as bench_gemm). FLOPs: 2·M·N·K.
 *
 * At 1 thread every figure is also taken in the calling thread's CPU time (gflops_cpu, pct_bf16_peak_cpu): on a
 * shared machine the wall-time peak probe and the GEMM are interrupted differently, and their ratio can exceed
 * 100%; in CPU time both count only the cycles they ran. -1 where not measured.
 *
 * Output: '#' lines for people, and lines read by experiments/bench.lua:
 *   bf16peak kind=<f32|bf16> threads=<t> gflops=<g> gflops_cpu=<g> load=<l>
 *   bf16gemm kernel=<k> M= N= K= threads= gflops= pct_bf16_peak= pct_f32_peak= gflops_cpu= pct_bf16_peak_cpu= impl= load=
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include "core/cpu.h"
#include "core/timer.h"
#include "kernels/cast.h"
#include "kernels/gemm.h"
#include "kernels/gemm_half.h"
#include "kernels/gemm_internal.h" /* the bare inner product (bf16_ip): a diagnostic, not an API */

#include "bench_util.h"
#include "bench_peak.h"

#define ROUNDS 3

/* ---- GEMMs ---- */

enum { K_F32_PACKED, K_BF16_LINEAR, K_BF16_IP, K_BF16_WIDEN, K_F16_LINEAR, K_COUNT };
static const char *kernel_names[K_COUNT] = {"f32_packed", "bf16_linear", "bf16_ip", "bf16_widen", "f16_linear"};

typedef struct gcase {
    int64_t M, N, K;
    float *x, *W, *bias, *y; /* x (M,K), W (N,K), bias (N), y (M,N) */
    uint16_t *xb;            /* x in bf16 (M,K), for bf16_ip */
    pare_f32_packed *wp;
    pare_half_weight wb, wh; /* bf16, f16 */
    void *work;
    size_t ws, ws_widen;
} gcase;

static void case_init(gcase *c, int64_t M, int64_t N, int64_t K, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->M = M, c->N = N, c->K = K;
    c->x = xalloc((size_t)(M * K) * 4), c->W = xalloc((size_t)(N * K) * 4), c->bias = xalloc((size_t)N * 4);
    c->y = xalloc((size_t)(M * N) * 4), c->xb = xalloc((size_t)(M * K) * 2);
    uint64_t s = seed;
    for (int64_t i = 0; i < M * K; i++) c->x[i] = (float)((s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / 16777216.0f - 0.5f;
    for (int64_t i = 0; i < N * K; i++) c->W[i] = (float)((s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / 16777216.0f * 0.1f - 0.05f;
    for (int64_t i = 0; i < N; i++) c->bias[i] = 0.01f * (float)(i % 7);
    pare_cast_to_half_fast(c->xb, PARE_BF16, c->x, M * K);
    if (pare_f32_weight_pack(&c->wp, c->W, N, K) != PARE_OK || pare_half_weight_make(&c->wb, c->W, N, K, PARE_BF16, 1) != PARE_OK ||
        pare_half_weight_make(&c->wh, c->W, N, K, PARE_F16, 1) != PARE_OK) {
        fprintf(stderr, "bench_bf16: %s\n", pare_errmsg());
        exit(1);
    }
    pare_half_weight u = c->wb;
    u.packed = NULL;
    c->ws_widen = pare_linear_half_workspace(&u, M);
    c->ws = pare_linear_half_workspace(&c->wb, M);
    if (c->ws < c->ws_widen) c->ws = c->ws_widen;
    c->work = xalloc(c->ws);
}

static void case_free(gcase *c)
{
    free(c->x), free(c->W), free(c->bias), free(c->y), free(c->xb), free(c->work);
    pare_f32_packed_free(c->wp);
    pare_half_weight_free(&c->wb), pare_half_weight_free(&c->wh);
}

static int run_kernel(int k, gcase *c)
{
    switch (k) {
    case K_F32_PACKED: return pare_linear_f32_packed(c->y, c->x, c->wp, c->bias, c->M) != PARE_OK;
    case K_BF16_LINEAR: return pare_linear_half(c->y, c->x, &c->wb, c->bias, c->M, c->work, c->ws) != PARE_OK;
    case K_BF16_IP:
        if (!c->wb.packed) return 1; /* no native bf16 inner product on this CPU */
        return pare_onednn_ip_run(c->wb.packed, c->y, c->xb, c->bias, c->M, PARE_ONEDNN_POST_NONE, c->work, c->ws, NULL) !=
               PARE_OK;
    case K_BF16_WIDEN: return pare_linear_half_widen(c->y, c->x, &c->wb, c->bias, c->M, c->work, c->ws_widen) != PARE_OK;
    case K_F16_LINEAR: return pare_linear_half(c->y, c->x, &c->wh, c->bias, c->M, c->work, c->ws) != PARE_OK;
    }
    return 1;
}

typedef struct kctx { int k; gcase *c; } kctx;

static int kernel_call(void *ctx)
{
    kctx *kc = ctx;
    return run_kernel(kc->k, kc->c);
}

/* GFLOP/s (bench_peak.h's bench_gflops); -1 if the kernel cannot run here. *cpu: in thread CPU time. */
static double bench_kernel(int k, gcase *c, double *cpu)
{
    kctx kc = {k, c};
    bench_call bc = {kernel_call, &kc, kernel_names[k]};
    return bench_gflops(&bc, 2.0 * (double)c->M * (double)c->N * (double)c->K, cpu, NULL);
}

int main(int argc, char **argv)
{
    int threads[8], nt = 0;
    int64_t M = 128;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "threads=", 8)) {
            for (char *p = argv[i] + 8; *p && nt < 8;) {
                threads[nt++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
                else if (*p) break;
            }
        } else if (!strncmp(argv[i], "M=", 2)) {
            M = atoll(argv[i] + 2);
        } else {
            fprintf(stderr, "bench_bf16: unknown argument '%s' (valid: threads=1,2 M=128)\n", argv[i]);
            return 1;
        }
    }
    if (!nt) threads[nt++] = 1, threads[nt++] = 2;
    for (int t = 0; t < nt; t++)
        if (threads[t] < 1) return fprintf(stderr, "bench_bf16: threads must be >= 1\n"), 1;
    if (M < 1) return fprintf(stderr, "bench_bf16: M must be >= 1\n"), 1;

    const pare_cpu *cpu = pare_cpu_get();
    char feat[256];
    printf("# bench_bf16 — the bf16 / f16 Linear at BERT-base shapes against the measured peaks\n");
    printf("# cpu: %s; features: %s; load %s\n", cpu->model, pare_cpu_features_str(feat, sizeof feat), load_note());
    bench_warm_process();

    double pk_f32[8] = {0}, pk_bf16[8] = {0}, pc_f32[8] = {0}, pc_bf16[8] = {0};
#ifdef BENCH_X86
    for (int r = 0; r < ROUNDS; r++)
        for (int t = 0; t < nt; t++) {
            double v, vc;
            if (cpu->avx512f) {
                if ((v = run_peak(peak_f32_avx512, threads[t], &vc)) > pk_f32[t]) pk_f32[t] = v;
                if (vc > pc_f32[t]) pc_f32[t] = vc;
            }
            if (cpu->avx512bf16) {
                if ((v = run_peak(peak_bf16, threads[t], &vc)) > pk_bf16[t]) pk_bf16[t] = v;
                if (vc > pc_bf16[t]) pc_bf16[t] = vc;
            }
        }
#endif
    for (int t = 0; t < nt; t++) {
        printf("# peak threads=%d: f32 %.1f GFLOP/s (avx512 fma), bf16 %.1f GFLOP/s (vdpbf16ps); in CPU time %.1f, %.1f\n",
               threads[t], pk_f32[t], pk_bf16[t], pc_f32[t], pc_bf16[t]);
        printf("bf16peak kind=f32 threads=%d gflops=%.1f gflops_cpu=%.1f load=%s\n", threads[t], pk_f32[t], pc_f32[t],
               load_note());
        printf("bf16peak kind=bf16 threads=%d gflops=%.1f gflops_cpu=%.1f load=%s\n", threads[t], pk_bf16[t], pc_bf16[t],
               load_note());
    }

    enum { NS = 4 };
    static const int64_t shapes[NS][2] = {{768, 768}, {2304, 768}, {3072, 768}, {768, 3072}};
    gcase cs[NS];
    for (int s = 0; s < NS; s++) case_init(&cs[s], M, shapes[s][0], shapes[s][1], 99 + (uint64_t)s);
    printf("# bf16 weights run %s; f16 weights run %s\n", pare_half_weight_impl(&cs[0].wb), pare_half_weight_impl(&cs[0].wh));
    double res[NS][8][K_COUNT], rcpu[NS][8][K_COUNT];
    for (int r = 0; r < ROUNDS; r++)
        for (int t = 0; t < nt; t++) {
            pare_set_num_threads(threads[t]);
            for (int s = 0; s < NS; s++)
                for (int k = 0; k < K_COUNT; k++) {
                    double gc = 0, g = bench_kernel(k, &cs[s], &gc);
                    if (r == 0 || g > res[s][t][k]) res[s][t][k] = g;
                    if (r == 0 || gc > rcpu[s][t][k]) rcpu[s][t][k] = gc;
                }
        }
    printf("# %-12s %5s %5s %5s %7s %10s %12s %11s\n", "kernel", "M", "N", "K", "threads", "GFLOP/s", "% bf16 peak",
           "% f32 peak");
    for (int s = 0; s < NS; s++)
        for (int t = 0; t < nt; t++)
            for (int k = 0; k < K_COUNT; k++) {
                double g = res[s][t][k], gc = threads[t] == 1 ? rcpu[s][t][k] : 0;
                if (g < 0) continue;
                double pb = pk_bf16[t] > 0 ? 100 * g / pk_bf16[t] : -1, pf = pk_f32[t] > 0 ? 100 * g / pk_f32[t] : -1;
                double pbc = gc > 0 && pc_bf16[t] > 0 ? 100 * gc / pc_bf16[t] : -1;
                const char *impl = k == K_F32_PACKED ? pare_f32_packed_impl(cs[s].wp)
                                   : k == K_BF16_WIDEN ? "pare:widen"
                                   : k == K_F16_LINEAR ? pare_half_weight_impl(&cs[s].wh)
                                                       : pare_half_weight_impl(&cs[s].wb);
                printf("# %-12s %5lld %5lld %5lld %7d %10.1f %11.1f%% %10.1f%%\n", kernel_names[k], (long long)M,
                       (long long)cs[s].N, (long long)cs[s].K, threads[t], g, pb, pf);
                printf("bf16gemm kernel=%s M=%lld N=%lld K=%lld threads=%d gflops=%.2f pct_bf16_peak=%.1f "
                       "pct_f32_peak=%.1f gflops_cpu=%.2f pct_bf16_peak_cpu=%.1f impl=%s load=%s\n",
                       kernel_names[k], (long long)M, (long long)cs[s].N, (long long)cs[s].K, threads[t], g, pb, pf, gc, pbc,
                       impl, load_note());
            }
    for (int s = 0; s < NS; s++) case_free(&cs[s]);
    return 0;
}
