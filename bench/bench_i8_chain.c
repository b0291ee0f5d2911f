/* bench_i8_chain.c — issue 18's bimodality probe: one process times the int8 Linears of a BERT-base forward
 * (12 layers × QKV 2304×768, output 768×768, FFN up 3072×768, FFN down 768×3072; M = 128 tokens by default),
 * and prints where its buffers landed, so that many processes side by side show whether a slow or fast
 * process goes with an address, a page size or a CPU.
 *
 *   build/bench/bench_i8_chain [kernel=pare|onednn] [huge=1|0] [M=128] [reps=15] [offset=0] [layers=12]
 *                              [ab=kernel|huge|cpu|prefetch]
 *
 * kernel: which u8s8 kernel the weights are packed for (pare_i8_kernel_set); huge: pare's panels 2 MiB-aligned
 * and madvise(MADV_HUGEPAGE)'d (pare_i8_vnni_hugepages_; oneDNN's packing is oneDNN's own allocation);
 * offset: bytes added to the activation buffers' 2 MiB-aligned base (alignment / 4K-aliasing probe); layers:
 * distinct weight sets (12: 85 MB, from DRAM every forward; 1: one layer's 7 MB reused by all twelve).
 * Weights are random int8 (pare_i8_weight_from_int), activations N(0,1)-ish; 1 thread (pare_set_num_threads).
 *
 * ab: a paired comparison inside one process instead (load drifts hit both alike): two sets of the same
 * weights, packed for pare's kernel with huge pages and for oneDNN's (ab=kernel) or for pare's kernel without
 * huge pages (ab=huge), forwards alternating A, B, A, B...; or one set with the thread pinned alternately to
 * CPU 0 (A) and CPU 1 (B) (ab=cpu), or with the kernel's next-panel prefetch on (A) and off (B) (ab=prefetch). Prints the median CPU ms of each and the median of the per-pair ratios B/A
 * with their min and max.
 *
 * Output, one line (key=value): the median ms per forward (the 48 Linear calls only) in wall time and in the
 * thread's CPU time (and, on '#' lines, each shape's ms per call and GOP/s), the
 * fastest and slowest forward, the CPU the thread ran on at the start and at the end, AnonHugePages of the
 * process (kB, /proc/self/smaps_rollup), the addresses of the first weight's packed data, the activation and
 * the workspace modulo 4096 and modulo 2 MiB, and the 1-minute load average.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "kernels/gemm_i8_internal.h"
#include "kernels/gemm_i8_vnni.h"

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long anon_huge_kb(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static const char *arg(int argc, char **argv, const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=') return argv[i] + n + 1;
    return def;
}

static void *alloc_at(size_t bytes, size_t offset)
{
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, bytes + offset)) {
        fprintf(stderr, "bench_i8_chain: out of memory\n");
        exit(1);
    }
    memset(p, 0, bytes + offset);
    return (char *)p + offset;
}

int main(int argc, char **argv)
{
    pare_i8_kernel kern;
    if (pare_i8_kernel_parse(arg(argc, argv, "kernel", "pare"), &kern) != PARE_OK) {
        fprintf(stderr, "bench_i8_chain: %s\n", pare_errmsg());
        return 1;
    }
    const int64_t M = atoll(arg(argc, argv, "M", "128")), reps = atoll(arg(argc, argv, "reps", "15"));
    const size_t off = (size_t)atoll(arg(argc, argv, "offset", "0"));
    int nl = atoi(arg(argc, argv, "layers", "12")); /* distinct weight sets, 1..12; forward l uses l % nl */
    nl = nl < 1 ? 1 : nl > 12 ? 12 : nl;
    pare_set_num_threads(1);

    const char *ab = arg(argc, argv, "ab", "");
    const int nsets = *ab ? 2 : 1;
    /* set 0: the kernel and huge pages asked; with ab, set 0 is pare's kernel with huge pages and set 1 the other */
    pare_i8_kernel ks[2] = {kern, PARE_I8_KERNEL_ONEDNN};
    int hs[2] = {atoi(arg(argc, argv, "huge", "1")), 1};
    const int ab_cpu = !strcmp(ab, "cpu"); /* one set of weights, the thread pinned to CPU 0, then CPU 1, ... */
    const int ab_pf = !strcmp(ab, "prefetch"); /* one set, the kernel's next-panel prefetch on (A), off (B) */
    const int one_set = ab_cpu || ab_pf;
    if (!strcmp(ab, "kernel")) ks[0] = PARE_I8_KERNEL_PARE, hs[0] = 1, ks[1] = PARE_I8_KERNEL_ONEDNN;
    else if (one_set) ks[0] = ks[1] = PARE_I8_KERNEL_PARE, hs[0] = hs[1] = 1;
    else if (!strcmp(ab, "huge")) ks[0] = ks[1] = PARE_I8_KERNEL_PARE, hs[0] = 1, hs[1] = 0;
    else if (*ab) {
        fprintf(stderr, "bench_i8_chain: ab=%s: must be kernel, huge, cpu or prefetch\n", ab);
        return 1;
    }
    enum { L = 12, PER = 4 };
    static const int64_t shp[PER][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
    static pare_i8_weight w[2][L][PER];
    float *bias[PER];
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int j = 0; j < PER; j++) {
        const int64_t N = shp[j][0], K = shp[j][1];
        int8_t *q = malloc((size_t)(N * K));
        float *sc = malloc((size_t)N * sizeof(float));
        bias[j] = calloc((size_t)N, sizeof(float));
        for (int64_t n = 0; n < N; n++) sc[n] = 0.01f;
        for (int l = 0; l < L; l++) {
            if (l >= nl) {
                for (int t = 0; t < nsets - one_set; t++) w[t][l][j] = w[t][l % nl][j]; /* shared; freed once */
                continue;
            }
            for (int64_t i = 0; i < N * K; i++) q[i] = (int8_t)((s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 56);
            for (int t = 0; t < nsets - one_set; t++) {
                pare_i8_kernel_set(ks[t]);
                pare_i8_vnni_hugepages_(hs[t]);
                if (pare_i8_weight_from_int(&w[t][l][j], q, sc, N, K) != PARE_OK) {
                    fprintf(stderr, "bench_i8_chain: %s\n", pare_errmsg());
                    return 1;
                }
            }
        }
        free(q), free(sc);
    }
    /* x (M,768) → qkv (M,2304) → [x again: the chain only needs the shapes] → out (M,768) → up (M,3072) → down */
    float *x = alloc_at((size_t)(M * 3072) * 4, off), *h = alloc_at((size_t)(M * 3072) * 4, off);
    for (int64_t i = 0; i < M * 3072; i++) x[i] = (float)((int64_t)((s = s * 6364136223846793005ULL + 1) >> 40) % 2001 - 1000) / 700.0f;
    size_t wsb = pare_linear_i8_workspace(M, 3072, 3072);
    void *ws = alloc_at(wsb, off);

    double *wall = malloc(sizeof(double) * (size_t)reps), *cpu = malloc(sizeof(double) * (size_t)reps);
    double *cpub = malloc(sizeof(double) * (size_t)reps), *ratio = malloc(sizeof(double) * (size_t)reps);
    int cpu0 = sched_getcpu();
    double per[PER] = {0}; /* CPU ns per shape over the timed forwards of set 0 */
    for (int64_t r = -3; r < reps; r++)
        for (int t = 0; t < nsets; t++) {
            const int ws_ = one_set ? 0 : t;
            if (ab_pf) pare_i8_vnni_next_prefetch_(t == 0);
            if (ab_cpu) {
                cpu_set_t cs;
                CPU_ZERO(&cs);
                CPU_SET(t, &cs);
                if (sched_setaffinity(0, sizeof cs, &cs)) {
                    fprintf(stderr, "bench_i8_chain: cannot pin to CPU %d\n", t);
                    return 1;
                }
            }
            /* only the Linears are timed: the clamp between layers is the harness's (a first version timed it too,
             * ~7 ms per forward of a scalar loop) */
            int64_t tw = 0, tc = 0;
            for (int l = 0; l < L; l++) {
                for (int j = 0; j < PER; j++) {
                    int64_t t0 = pare_now_ns(), c0 = cpu_ns();
                    pare_status st = j < 3 ? pare_linear_i8_dynamic(h, x, &w[ws_][l][j], bias[j], M, ws)
                                           : pare_linear_i8_dynamic(x, h, &w[ws_][l][j], bias[j], M, ws);
                    const int64_t dc = cpu_ns() - c0;
                    tw += pare_now_ns() - t0, tc += dc;
                    if (r >= 0 && t == 0) per[j] += (double)dc;
                    if (st != PARE_OK) {
                        fprintf(stderr, "bench_i8_chain: %s\n", pare_errmsg());
                        return 1;
                    }
                }
                /* keep x in a sane range for the next layer (the values do not matter to the time) */
                for (int64_t i = 0; i < M * 768; i++) x[i] = x[i] > 4.0f ? 4.0f : x[i] < -4.0f ? -4.0f : x[i];
            }
            if (r < 0) continue;
            double c = (double)tc * 1e-6;
            if (t == 0) wall[r] = (double)tw * 1e-6, cpu[r] = c;
            else cpub[r] = c, ratio[r] = c / cpu[r];
        }
    if (nsets == 2) {
        qsort(cpu, (size_t)reps, sizeof(double), cmpd);
        qsort(cpub, (size_t)reps, sizeof(double), cmpd);
        qsort(ratio, (size_t)reps, sizeof(double), cmpd);
        double load[1] = {-1};
        getloadavg(load, 1);
        printf("chain_ab layers=%d ab=%s A=%s/huge%d%s B=%s/huge%d%s M=%lld ms_cpu_A=%.2f ms_cpu_B=%.2f ratio_B_over_A=%.3f "
               "ratio_min=%.3f ratio_max=%.3f pairs=%lld anon_huge_kb=%ld load=%.2f\n", nl, ab, pare_i8_kernel_name(ks[0]),
               hs[0], ab_cpu ? "/cpu0" : ab_pf ? "/prefetch" : "", pare_i8_kernel_name(ks[1]), hs[1],
               ab_cpu ? "/cpu1" : ab_pf ? "/no-prefetch" : "", (long long)M, cpu[reps / 2], cpub[reps / 2], ratio[reps / 2],
               ratio[0], ratio[reps - 1], (long long)reps, anon_huge_kb(), load[0]);
        return 0;
    }
    int cpu1 = sched_getcpu();
    for (int j = 0; j < PER; j++) /* per shape: ms per call and GOP/s, CPU time */
        printf("# %lldx%lld: %.3f ms per call, %.1f GOP/s (CPU time)\n", (long long)shp[j][0], (long long)shp[j][1],
               per[j] * 1e-6 / (double)(reps * L), 2.0 * (double)M * (double)(shp[j][0] * shp[j][1]) / (per[j] / (double)(reps * L)));
    qsort(wall, (size_t)reps, sizeof(double), cmpd);
    qsort(cpu, (size_t)reps, sizeof(double), cmpd);
    const pare_i8_packed *pk = w[0][0][0].packed;
    uintptr_t pw = pk && pk->panels ? (uintptr_t)pk->panels->data : (uintptr_t)w[0][0][0].q;
    double load[1] = {-1};
    getloadavg(load, 1);
    printf("chain layers=%d kernel=%s huge=%d M=%lld impl=%s ms_wall=%.2f ms_cpu=%.2f cpu_min=%.2f cpu_max=%.2f cpu_start=%d "
           "cpu_end=%d anon_huge_kb=%ld w_mod4k=%lu w_mod2m=%lu x_mod4k=%lu x_mod2m=%lu ws_mod4k=%lu load=%.2f\n",
           nl, pare_i8_kernel_name(kern), pk && pk->panels ? pk->panels->huge : 0, (long long)M,
           pare_i8_weight_impl(&w[0][0][0]), wall[reps / 2], cpu[reps / 2], cpu[0], cpu[reps - 1], cpu0, cpu1,
           anon_huge_kb(), (unsigned long)(pw % 4096), (unsigned long)(pw % ((uintptr_t)2 << 20)),
           (unsigned long)((uintptr_t)x % 4096), (unsigned long)((uintptr_t)x % ((uintptr_t)2 << 20)),
           (unsigned long)((uintptr_t)ws % 4096), load[0]);
    for (int l = 0; l < L && l < nl; l++)
        for (int j = 0; j < PER; j++) pare_i8_weight_free(&w[0][l][j]);
    return 0;
}
