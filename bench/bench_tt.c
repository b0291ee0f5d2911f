/* bench_tt.c — the tt_linear kernel (kernels/tt.h) against the dense f32 Linear at BERT-base FFN shapes:
 * W (3072, 768) (ffn.up) and (768, 3072) (ffn.down), M = 128 and M = 1 rows; Kronecker sums of rank 1, 4,
 * 16 (factors nearest √N, √K) and 3-core TT-matrices of rank 8 and 16 (balanced factors).
 *
 *   build/bench/bench_tt [reps=30] [threads=T]
 *
 * Each point is timed in interleaved pairs with the dense f32 Linear (pare_linear_f32, oneDNN sgemm) and
 * with the packed one inference executors run (pare_linear_f32_packed); the medians and the ratio
 * dense/factored (> 1: the factored layer is faster) are printed, one line per point:
 *   tt shape=up M=128 kind=kron rank=4 params=... dense_ms=... packed_ms=... tt_ms=... speedup=... speedup_packed=...
 * The 1-minute load average is printed first. Nothing is asserted.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lowrank/tt_svd.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/tt.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    int reps = 30;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "reps=", 5)) reps = atoi(argv[i] + 5);
        if (!strncmp(argv[i], "threads=", 8)) omp_set_num_threads(atoi(argv[i] + 8));
    }
    double load[1] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load[0]) != 1) load[0] = -1;
        fclose(la);
    }
    printf("# load1=%.2f threads=%d reps=%d\n", load[0], omp_get_max_threads(), reps);
    pare_rng r;
    pare_rng_seed(&r, 1);
    const int64_t shapes[2][2] = {{3072, 768}, {768, 3072}};
    const char *sname[2] = {"up", "down"};
    const int64_t Ms[2] = {128, 1};
    struct { const char *kind; int d; int64_t rank; } pts[] = {{"kron", 2, 1}, {"kron", 2, 4}, {"kron", 2, 16},
                                                              {"tt3", 3, 8}, {"tt3", 3, 16}};
    for (int si = 0; si < 2; si++) {
        int64_t N = shapes[si][0], K = shapes[si][1];
        float *W = malloc(sizeof *W * (size_t)(N * K)), *bias = calloc((size_t)N, sizeof *bias);
        for (int64_t i = 0; i < N * K; i++) W[i] = (float)pare_rng_normal(&r) * 0.02f;
        pare_f32_packed *wp = NULL;
        if (pare_f32_weight_pack(&wp, W, N, K) != PARE_OK) return 1;
        for (size_t pi = 0; pi < sizeof pts / sizeof pts[0]; pi++) {
            pare_tt_shape s = {.d = pts[pi].d};
            pare_tt_auto_factors(N, s.d, s.n), pare_tt_auto_factors(K, s.d, s.k);
            float *cores = NULL;
            if (pare_tt_svd(&cores, &s, W, pts[pi].rank, 0, NULL) != PARE_OK) return 1;
            for (int mi = 0; mi < 2; mi++) {
                int64_t M = Ms[mi];
                float *x = malloc(sizeof *x * (size_t)(M * K)), *y = malloc(sizeof *y * (size_t)(M * N));
                float *z = malloc(sizeof *z * (size_t)(M * pare_tt_cache_floats(&s) + 1));
                float *work = malloc(sizeof *work * (size_t)(M * pare_tt_work_floats(&s)));
                for (int64_t i = 0; i < M * K; i++) x[i] = (float)pare_rng_normal(&r);
                int n = M == 1 ? reps * 10 : reps, inner = M == 1 ? 20 : 1;
                double *td = malloc(sizeof *td * (size_t)n), *tp = malloc(sizeof *tp * (size_t)n), *tt = malloc(sizeof *tt * (size_t)n);
                for (int w = 0; w < 3; w++) { /* warm-up */
                    pare_linear_f32(y, x, W, bias, M, N, K);
                    pare_linear_f32_packed(y, x, wp, bias, M);
                    pare_tt_linear_forward(y, z, work, x, cores, bias, M, &s);
                }
                for (int i = 0; i < n; i++) {
                    int64_t t0 = pare_now_ns();
                    for (int k = 0; k < inner; k++) pare_linear_f32(y, x, W, bias, M, N, K);
                    int64_t t1 = pare_now_ns();
                    for (int k = 0; k < inner; k++) pare_linear_f32_packed(y, x, wp, bias, M);
                    int64_t t2 = pare_now_ns();
                    for (int k = 0; k < inner; k++) pare_tt_linear_forward(y, z, work, x, cores, bias, M, &s);
                    int64_t t3 = pare_now_ns();
                    td[i] = (double)(t1 - t0) / inner / 1e6, tp[i] = (double)(t2 - t1) / inner / 1e6;
                    tt[i] = (double)(t3 - t2) / inner / 1e6;
                }
                double md = median(td, n), mp = median(tp, n), mt = median(tt, n);
                printf("tt shape=%s N=%lld K=%lld M=%lld kind=%s rank=%lld n=%lld,%lld,%lld k=%lld,%lld,%lld params=%lld "
                       "dense_params=%lld flops_ratio=%.4f dense_ms=%.4f packed_ms=%.4f tt_ms=%.4f speedup=%.2f speedup_packed=%.2f\n",
                       sname[si], (long long)N, (long long)K, (long long)M, pts[pi].kind, (long long)pts[pi].rank,
                       (long long)s.n[0], (long long)s.n[1], (long long)(s.d > 2 ? s.n[2] : 0), (long long)s.k[0],
                       (long long)s.k[1], (long long)(s.d > 2 ? s.k[2] : 0), (long long)pare_tt_numel(&s),
                       (long long)(N * K), (double)pare_tt_flops(&s, M) / (2.0 * M * N * K), md, mp, mt, md / mt, mp / mt);
                fflush(stdout);
                free(x), free(y), free(z), free(work), free(td), free(tp), free(tt);
            }
            free(cores);
        }
        pare_f32_packed_free(wp), free(W), free(bias);
    }
    return 0;
}
