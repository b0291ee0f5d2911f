/* bench_peak.h — what the GEMM benches share: the machine's peak probes (chains of independent FMA /
 * VNNI / vdpbf16ps instructions, one per accumulator, opaque to the compiler), the best-of-5 run of a probe
 * on n threads, the calling thread's CPU time and the median. Included by bench_gemm.c and bench_bf16.c
 * after <immintrin.h> (BENCH_X86 defined on x86-64) and bench_util.h. */
#ifndef PARE_BENCH_PEAK_H
#define PARE_BENCH_PEAK_H

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/timer.h"

/* The calling thread's CPU time: on a shared machine (the development machine runs at load 4-12) a single-thread
 * kernel's CPU time is what it costs when it runs; wall time adds whatever else held the core. Figures in CPU time
 * are reported beside the wall-time ones at 1 thread (at 2 threads the calling thread's time says nothing of the
 * other's). */
static __attribute__((unused)) int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static __attribute__((unused)) double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- peak micro-benchmarks: returns operations done by one call ---- */

#define PEAK_ITERS 4000000L
#define ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define ACC24(X) ACC12(X) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)

#ifdef BENCH_X86
/* The empty asm with "+v" makes every accumulator opaque, so the compiler keeps all 12 chains. */
__attribute__((target("avx512f"), noinline, unused)) static double peak_f32_avx512(long iters, float *sink)
{
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i) * 1e-3f);
    ACC12(DECL)
#undef DECL
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, x, y); __asm__ volatile("" : "+v"(a##i));
        ACC12(STEP)
#undef STEP
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
    ACC12(SUM)
#undef SUM
    *sink = _mm512_reduce_add_ps(s);
    return (double)iters * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"), noinline, unused)) static double peak_f32_avx2(long iters, float *sink)
{
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)(i) * 1e-3f);
    ACC12(DECL)
#undef DECL
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, x, y); __asm__ volatile("" : "+x"(a##i));
        ACC12(STEP)
#undef STEP
    }
    __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, a##i);
    ACC12(SUM)
#undef SUM
    float t[8];
    _mm256_storeu_ps(t, s);
    *sink = t[0] + t[7];
    return (double)iters * 12 * 8 * 2;
}

/* vpdpbusd: 64 u8·s8 products summed in groups of 4 into 16 int32 = 128 operations per instruction */
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline, unused)) static double peak_i8_avx512vnni(long iters, float *sink)
{
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
    ACC12(DECL)
#undef DECL
    const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
    for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y); __asm__ volatile("" : "+v"(a##i));
        ACC12(STEP)
#undef STEP
    }
    __m512i s = _mm512_setzero_si512();
#define SUM(i) s = _mm512_add_epi32(s, a##i);
    ACC12(SUM)
#undef SUM
    *sink = (float)_mm512_reduce_add_epi32(s);
    return (double)iters * 12 * 64 * 2;
}

__attribute__((target("avx2,avxvnni"), noinline, unused)) static double peak_i8_avxvnni(long iters, float *sink)
{
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
    ACC12(DECL)
#undef DECL
    const __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2);
    for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm256_dpbusd_avx_epi32(a##i, x, y); __asm__ volatile("" : "+x"(a##i));
        ACC12(STEP)
#undef STEP
    }
    __m256i s = _mm256_setzero_si256();
#define SUM(i) s = _mm256_add_epi32(s, a##i);
    ACC12(SUM)
#undef SUM
    *sink = (float)_mm256_extract_epi32(s, 0);
    return (double)iters * 12 * 32 * 2;
}
/* vdpbf16ps: acc[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1] over 16 f32 lanes: 32 products, 64 FLOP. 24 chains:
 * with 12 (enough for the FMA) Zen 5 reached ~260 GFLOP/s per core and its own GEMM ~400, so the
 * instruction's latency × throughput exceeds 12 there; 24 gave ~420. */
__attribute__((target("avx512f,avx512bf16"), noinline, unused)) static double peak_bf16(long iters, float *sink)
{
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i) * 1e-3f);
    ACC24(DECL)
#undef DECL
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), y = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (long it = 0; it < iters; it++) {
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y); __asm__ volatile("" : "+v"(a##i));
        ACC24(STEP)
#undef STEP
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
    ACC24(SUM)
#undef SUM
    *sink = _mm512_reduce_add_ps(s);
    return (double)iters * 24 * 16 * 4;
}
#endif

typedef double (*peak_fn)(long iters, float *sink);

typedef struct peak_ctx { peak_fn fn; int threads; float *sink; } peak_ctx;

static pare_status peak_warm(void *ctx, double *ms)
{
    peak_ctx *c = ctx;
    int64_t t0 = pare_now_ns();
#pragma omp parallel num_threads(c->threads)
    c->fn(PEAK_ITERS / 8, &c->sink[omp_get_thread_num() % 64]);
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

/* GFLOP/s (or GOP/s) of `threads` copies of fn running at once; the best of 5 runs (a peak is an upper
 * bound: anything lower is interference), after a warm-up until stable (clocks up, code in cache).
 * cpu (may be NULL): the same in the calling thread's CPU time (threads = 1 only, else 0). */
static __attribute__((unused)) double run_peak(peak_fn fn, int threads, double *cpu)
{
    double best = 0, best_cpu = 0;
    float sink[64] = {0};
    peak_ctx pc = {fn, threads, sink};
    bench_warm(peak_warm, &pc, 1);
    for (int r = 0; r < 5; r++) {
        double ops = 0;
        int64_t t0 = pare_now_ns(), c0 = thread_cpu_ns();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
        ops += fn(PEAK_ITERS, &sink[omp_get_thread_num() % 64]);
        double v = ops / (double)(pare_now_ns() - t0), vc = ops / (double)(thread_cpu_ns() - c0);
        best = v > best ? v : best;
        best_cpu = vc > best_cpu ? vc : best_cpu;
    }
    if (cpu) *cpu = threads == 1 ? best_cpu : 0;
    return best;
}

/* ---- timing one kernel call ---- */

#ifndef SAMPLES
#define SAMPLES 15          /* timed samples per measurement */
#define SAMPLE_NS 4000000LL /* a sample: back-to-back calls adding up to about 4 ms */
#endif

typedef int (*bench_call_fn)(void *ctx); /* one call of the kernel under test; non-zero: it failed */
typedef struct bench_call { bench_call_fn fn; void *ctx; const char *name; } bench_call;

static pare_status bench_call_warm(void *ctx, double *ms)
{
    const bench_call *bc = ctx;
    int64_t t0 = pare_now_ns();
    if (bc->fn(bc->ctx)) return pare_fail(PARE_EINTERNAL, "%s failed", bc->name);
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

/* GFLOP/s of a call doing `flop` operations: the median over SAMPLES samples of `inner` back-to-back calls
 * (about SAMPLE_NS each), after single calls until their timings are stable (at least 3: bench_util.h); -1
 * if the call failed. cpu (may be NULL): the same median in the calling thread's CPU time; warm (may be
 * NULL): the warm-up calls made. */
static __attribute__((unused)) double bench_gflops(bench_call *bc, double flop, double *cpu, int64_t *warm)
{
    pare_warmup_opts w = bench_warmup_opts(3);
    pare_warmup_result wr;
    if (pare_warmup(&wr, &w, INT64_MAX, bench_call_warm, bc) != PARE_OK) return -1;
    if (warm) *warm = wr.runs;
    int64_t t0 = pare_now_ns();
    bc->fn(bc->ctx);
    int64_t one = pare_now_ns() - t0;
    int inner = one > 0 ? (int)(SAMPLE_NS / one) : 100;
    inner = inner < 1 ? 1 : inner > 10000 ? 10000 : inner;
    double v[SAMPLES], vc[SAMPLES], f = flop * inner;
    for (int s = 0; s < SAMPLES; s++) {
        int64_t c0 = thread_cpu_ns();
        t0 = pare_now_ns();
        for (int i = 0; i < inner; i++) bc->fn(bc->ctx);
        v[s] = f / (double)(pare_now_ns() - t0);
        vc[s] = f / (double)(thread_cpu_ns() - c0);
    }
    if (cpu) *cpu = median(vc, SAMPLES);
    return median(v, SAMPLES);
}

#endif
