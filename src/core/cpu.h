/* cpu.h — run-time CPU feature detection (cpuid + xgetbv), so fast paths are chosen on the machine
 * that runs, not the one that compiled. */
#ifndef PARE_CPU_H
#define PARE_CPU_H

#include "status.h"

/* PARE_HOT: compile a hot loop three times — AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the
 * baseline — and let the loader pick the best for the CPU that runs (GCC target_clones / ifunc).
 * The build itself never assumes more than baseline x86-64, so one binary runs everywhere. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PARE_NO_CLONES)
#define PARE_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PARE_HOT
#endif

typedef struct pare_cpu {
    char model[64];
    int sse42, avx, avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avxvnni;
    int amx_tile, amx_int8, amx_bf16;
    int logical_cores;
} pare_cpu;

/* Detected once, then cached. */
const pare_cpu *pare_cpu_get(void);
/* "avx2 fma avx512f avx512bw avx512vnni avx512bf16" into buf. */
const char *pare_cpu_features_str(char *buf, int n);

/* The instruction-set tiers of the block kernels (kernels/qblock*, kernels/wq*): 0 scalar, 1 AVX2 + FMA + F16C,
 * 2 AVX-512 F/BW/VL (and VNNI when need_vnni). pare_cpu_tier is this CPU's best tier. */
enum { PARE_TIER_SCALAR = 0, PARE_TIER_AVX2, PARE_TIER_AVX512 };
int pare_cpu_tier(int need_vnni);
/* A cap on the tiers from its name: "auto" (AVX-512), "avx512", "avx2", "scalar", stored in *cap atomically.
 * PARE_ENOTSUP for a tier this CPU lacks, PARE_EINVAL for another name; the messages begin with `what` ("wq",
 * "qblock", "activation": whose kernels the cap is for). */
pare_status pare_cpu_tier_cap(int *cap, const char *name, const char *what);
/* "scalar", "avx2", "avx512" */
const char *pare_cpu_tier_name(int tier);

#endif
