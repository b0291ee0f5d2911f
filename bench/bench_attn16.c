/* bench_attn16.c — attention on a bf16 qkv (pare_attn_forward_bf16, kernels/attn_half.h) against the f32 forward
 * of the same variant, at BERT-base heads (H = 12, D = 64), B = 1, bidirectional (issue 15).
 *
 *   build/bench/bench_attn16 [T=128,512] [variants=full,flash] [threads=1] [rounds=3]
 *
 * Per (variant, T): the f32 forward on an f32 qkv, the bf16 forward with the implementation chosen for this CPU
 * (dpbf16: vdpbf16ps where the CPU has AVX512-BF16) and the bf16 forward forced onto the portable widen path.
 * Each is a bench_gflops measurement (bench_peak.h: warm-up until stable, the median of 15 samples of
 * back-to-back calls of ~4 ms) in the calling thread's CPU time at 1 thread (wall time otherwise); the three are
 * measured one after the other in each of `rounds` rounds, and a ratio is the median over rounds of the
 * per-round ratio f32 / bf16 (> 1: bf16 faster). FLOPs: the variant's flops_fwd (pare_attn_cost_of), the same
 * for all three. Nothing is asserted.
 *
 * Output: '#' lines for people, and
 *   attn16 variant=<v> T=<t> H=12 D=64 threads=<n> path=<f32|bf16|bf16_widen> ms=<median ms> gflops=<g> load=<l>
 *   attn16_ratio variant=<v> T=<t> threads=<n> metric=<f32_over_bf16|f32_over_bf16_widen> value=<r> min=<r> max=<r>
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/cpu.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/timer.h"
#include "kernels/attn_half.h"

#include "bench_util.h"
#include "bench_peak.h"

enum { P_F32, P_BF16, P_WIDEN, P_COUNT };
static const char *path_names[P_COUNT] = {"f32", "bf16", "bf16_widen"};

typedef struct acase {
    pare_attn *a;
    pare_attn_args x[P_COUNT];
} acase;

typedef struct acall {
    acase *c;
    int path;
} acall;

static int call(void *ctx)
{
    acall *k = ctx;
    pare_attn_args *x = &k->c->x[k->path];
    return (k->path == P_F32 ? pare_attn_forward(k->c->a, x) : pare_attn_forward_bf16(k->c->a, x)) != PARE_OK;
}

static int parse_list(const char *s, char items[][32], int cap)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t && n < cap; t = strtok(NULL, ",")) snprintf(items[n++], 32, "%s", t);
    return n;
}

int main(int argc, char **argv)
{
    const char *Ts = "128,512", *vars = "full,flash";
    int threads = 1, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "T=", 2)) Ts = argv[i] + 2;
        else if (!strncmp(argv[i], "variants=", 9)) vars = argv[i] + 9;
        else if (!strncmp(argv[i], "threads=", 8)) threads = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "rounds=", 7)) rounds = atoi(argv[i] + 7);
        else {
            fprintf(stderr, "bench_attn16: unknown argument '%s' (T=, variants=, threads=, rounds=)\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1 || rounds < 1 || rounds > 64) {
        fprintf(stderr, "bench_attn16: threads >= 1 and rounds in [1, 64]\n");
        return 2;
    }
    omp_set_num_threads(threads);
    char feat[256], tl[8][32], vl[8][32];
    const int nT = parse_list(Ts, tl, 8), nV = parse_list(vars, vl, 8);
    printf("# bench_attn16: %s; %s; threads=%d; bf16 implementation: %s; %s\n", pare_cpu_get()->model,
           pare_cpu_features_str(feat, sizeof feat), threads, pare_attn16_impl_name(pare_attn16_resolve(0)), load_note());
    bench_warm_process();
    const int64_t H = 12, D = 64, C = H * D, B = 1;
    for (int it = 0; it < nT; it++)
        for (int iv = 0; iv < nV; iv++) {
            const int64_t T = atol(tl[it]);
            acase c = {0};
            if (pare_attn_create_spec(&c.a, vl[iv], T, H, D, 0) != PARE_OK) {
                fprintf(stderr, "bench_attn16: %s\n", pare_errmsg());
                return 1;
            }
            const int64_t n = B * T * 3 * C;
            float *qkv = malloc(sizeof *qkv * (size_t)n), *out = malloc(sizeof *out * (size_t)(B * T * C));
            uint16_t *q16 = malloc(sizeof *q16 * (size_t)n);
            pare_rng r;
            pare_rng_seed(&r, 1);
            for (int64_t i = 0; i < n; i++) qkv[i] = (float)pare_rng_normal(&r), q16[i] = pare_f32_to_bf16(qkv[i]);
            size_t cb = pare_attn_cache_bytes(c.a, B), w32 = pare_attn_work_bytes(c.a, B),
                   w16 = pare_attn_bf16_work_bytes(c.a, B), wb = w32 > w16 ? w32 : w16;
            void *cache = malloc(cb ? cb : 1), *work = malloc(wb ? wb : 1);
            for (int p = 0; p < P_COUNT; p++) {
                pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .ld = 3 * C,
                                    .B = B};
                if (p == P_F32) x.q = qkv, x.k = qkv + C, x.v = qkv + 2 * C;
                else x.q16 = q16, x.k16 = q16 + C, x.v16 = q16 + 2 * C;
                x.impl16 = p == P_WIDEN ? PARE_ATTN16_WIDEN : PARE_ATTN16_AUTO;
                c.x[p] = x;
            }
            pare_attn_cost cost;
            pare_attn_cost_of(c.a, B, &cost);
            double ratio[2][64], ms[P_COUNT][64];
            for (int rd = 0; rd < rounds; rd++) {
                double g[P_COUNT];
                for (int p = 0; p < P_COUNT; p++) {
                    acall k = {&c, p};
                    bench_call bc = {call, &k, path_names[p]};
                    double cpu = -1, wall = bench_gflops(&bc, (double)cost.flops_fwd, &cpu, NULL);
                    g[p] = threads == 1 ? cpu : wall;
                    ms[p][rd] = (double)cost.flops_fwd / (g[p] * 1e6);
                }
                ratio[0][rd] = g[P_BF16] / g[P_F32], ratio[1][rd] = g[P_WIDEN] / g[P_F32];
            }
            for (int p = 0; p < P_COUNT; p++) {
                const double m = median(ms[p], rounds);
                printf("attn16 variant=%s T=%lld H=%lld D=%lld threads=%d path=%s ms=%.4f gflops=%.2f load=%s\n", vl[iv],
                       (long long)T, (long long)H, (long long)D, threads, path_names[p], m,
                       (double)cost.flops_fwd / (m * 1e6), load_note());
            }
            for (int k = 0; k < 2; k++) {
                double lo = INFINITY, hi = 0;
                for (int rd = 0; rd < rounds; rd++) lo = fmin(lo, ratio[k][rd]), hi = fmax(hi, ratio[k][rd]);
                printf("attn16_ratio variant=%s T=%lld threads=%d metric=%s value=%.3f min=%.3f max=%.3f\n", vl[iv],
                       (long long)T, threads, k ? "f32_over_bf16_widen" : "f32_over_bf16", median(ratio[k], rounds), lo,
                       hi);
            }
            free(qkv), free(out), free(q16), free(cache), free(work);
            pare_attn_free(c.a);
        }
    return 0;
}
