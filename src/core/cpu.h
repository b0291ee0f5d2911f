/* cpu.h — run-time CPU feature detection (cpuid + xgetbv), so fast paths are chosen on the machine
 * that runs, not the one that compiled. */
#ifndef PARE_CPU_H
#define PARE_CPU_H

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

#endif
