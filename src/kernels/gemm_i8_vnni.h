/* gemm_i8_vnni.h — private to the gemm_i8*.c files: pare's own AVX512-VNNI u8·s8 → s32 GEMM
 * (gemm_i8_vnni.c) and its weight layout. Not for callers (gemm.h, gemm_i8.h choose it through
 * pare_i8_kernel_set / pare_linear_i8_dynamic), nor for the int8 attention.
 *
 *     pare_i8_panels *p = pare_i8_vnni_pack_(q, N, K);          // once, at quantization (NULL: no VNNI)
 *     pare_i8_vnni_gemm_(sums, xu, K, M, p, NULL);              // sums (M,N) int32 = xu(M,K)·q^T
 *     pare_i8_vnni_gemm_(y, xu, K, M, p, &epi);                 // y (M,N) f32, dequantized in the tile
 */
#ifndef PARE_GEMM_I8_VNNI_H
#define PARE_GEMM_I8_VNNI_H

#include <stddef.h>
#include <stdint.h>

/* Output columns per panel: three zmm of 16 int32 (the register tile is PARE_I8_VNNI_MR rows × 48). */
#define PARE_I8_VNNI_NR 48
#define PARE_I8_VNNI_MR 8

/* q (N,K) in panels of 48 output columns; in each panel, K in groups of 4 bytes, the 48 columns' 4 bytes
 * side by side (192 bytes = 3 zmm per group), so one zmm load feeds vpdpbusd for 16 columns:
 *   data[p][k4][j][b] = q[48p + j][4·k4 + b]      (zero beyond N or K)
 * sizes: np = ceil(N/48), K4 = ceil(K/4); a panel is K4·192 bytes. */
typedef struct pare_i8_panels {
    int8_t *data;        /* (np, K4, 48, 4) */
    int64_t N, K, np, K4;
    size_t bytes;        /* of data, as allocated (rounded to 4 KiB when huge) */
    int huge;            /* data starts 2 MiB-aligned and is madvise'd MADV_HUGEPAGE */
} pare_i8_panels;

/* The dequantization done in the tile at the last K block, the same float operations as gemm_i8_rows.c's
 * dequantization pass (bit-identical): y[m,n] = (float)(acc − zz_m·colsum[n]) · (sx[m]·sw[n]) + bias[n],
 * zz_m = zrow[m] or zall; then the pare_epilogue activation on each row segment of the tile. */
typedef struct pare_i8_vnni_epi {
    const float *sx;       /* (M) */
    const int32_t *zrow;   /* (M) or NULL: zall for every row */
    int32_t zall;
    const int32_t *colsum; /* (N) */
    const float *sw;       /* (N) */
    const float *bias;     /* (N) or NULL */
    int epilogue;          /* kernels/fuse_ops.h pare_epilogue (0: none) */
    int gelu16;            /* epilogue is the exact GELU and pare_gelu_erf_avx512_active_(): applied in registers */
} pare_i8_vnni_epi;

/* 1 if this CPU has AVX512-VNNI (+BW): the only ISA the kernel is written for. */
int pare_i8_vnni_available_(void);
/* q (N,K) into panels; NULL if the CPU lacks AVX512-VNNI, K > U8S8_MAX_K or memory runs out. Weights of
 * 1 MiB and more start 2 MiB-aligned and are madvise'd MADV_HUGEPAGE unless pare_i8_vnni_hugepages_(0). */
pare_i8_panels *pare_i8_vnni_pack_(const int8_t *q, int64_t N, int64_t K);
void pare_i8_vnni_free_(pare_i8_panels *p); /* NULL is fine */
/* Process-wide: 1 (default) huge-page panels as above, 0 plain 64-byte-aligned allocations (for the
 * measurement in docs/kernels-int8.md). Returns the previous value. */
int pare_i8_vnni_hugepages_(int on);
/* Process-wide: 1 (default) while computing a panel (or a column chunk) the kernel prefetches the next one into
 * L2, a share per row block; 0 not (for the measurement in docs/kernels-int8.md). Returns the previous value. */
int pare_i8_vnni_next_prefetch_(int on);

/* out (M,N), row stride N: epi NULL → int32 sums Σ_k xu[m,k]·q[n,k] (exact, K <= U8S8_MAX_K); else f32 y
 * dequantized by epi. xu (M,K) u8 with row stride lda >= K. OpenMP over (M chunk, panel) pairs; the result
 * does not depend on the thread count. */
void pare_i8_vnni_gemm_(void *out, const uint8_t *xu, int64_t lda, int64_t M, const pare_i8_panels *p,
                        const pare_i8_vnni_epi *epi);

#endif
