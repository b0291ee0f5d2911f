/* sparse.h — sparse Linear kernels: y(M,N) = x(M,K) · W(N,K)^T + bias(N) with W stored without its zeros
 * (issue 13). Four layouts, one struct:
 *
 *   CSR      unstructured, f32: rows of W compressed within column panels of PARE_SP_PANEL (128) inputs — panel
 *            by panel, each panel's rows in order: rowptr (npanel, N+1) u32, the column inside the panel (nnz)
 *            u8, values (nnz) f32. 5 bytes per nonzero + 4 per row and panel. The panels let a tile of 64
 *            tokens × 128 inputs of x (32 KB) stay in L1 while every row's nonzeros in that panel stream by.
 *   CSR_I8   unstructured, int8: the same rows, int8 values quantized per output channel exactly as pare's
 *            dense int8 weights (pare_i8_weight_quantize: scale = max|W[n,:]|/127), activations quantized
 *            per token at run time (pare_quantize_rows_s8), int32 sums, y = acc·(sx[m]·sw[n]) + bias[n]:
 *            the float operations of pare_linear_i8_dynamic_ref, so the result equals the dense int8
 *            reference on the same weights bit for bit. 2 bytes per nonzero + 4 per row and panel + 4 per
 *            channel.
 *   NM       N:M (2:4, 4:8): every group of m consecutive weights of a row keeps n slots: a value f32 and the
 *            slot's position in its group (0..m-1), one byte (not bit-packed). Channel-interleaved: output
 *            channels in blocks of PARE_SP_NM_CB (16), slot j of channel r at pare_sparse_nm_at(K·n/m, r, j)
 *            = ((r/16)·K·n/m + j)·16 + r%16, so one 64-byte load holds slot j of 16 channels; N is padded to
 *            16 with zero channels. Groups with fewer than n nonzeros store explicit zeros. K % m == 0.
 *   BSR      block-sparse, blocks of br × bc (4×1 or 16×16): block rows of br
 *            output channels, rowptr (N/br + 1) u32 in blocks, block column indices u16 (k0 = col·bc), and
 *            per block br·bc f32 values column-major (v[c·br + r] = W[n0+r, k0+c]). N and K are padded to
 *            the block with stored zeros (counted in the bytes).
 *
 * Kernels (sparse_fast.c). For M >= PARE_SP_TILE_MIN (8) rows the input is transposed once into the
 * workspace, tile-major: tiles of 64 tokens (M rounded up to 16), each tile's (K + 16, 64) block contiguous.
 * Each output channel n runs over a tile in 4 vector accumulators: per stored weight one broadcast, 4 loads
 * of xT's row k, 4 FMAs — the weight is read once per 64 tokens. CSR goes panel by panel (a tile's panel is
 * 32 KB), each row's 64 accumulators carried across panels in the workspace. Blocks (BSR) share each load
 * of xT among br output channels (4×1: 4 FMAs per load; 16×16: 16). Output tiles are columns of y; 16 of
 * them are gathered and written as whole rows through 16×16 register transposes. Below 8 rows (decode,
 * M = 1) each token is a row-by-row dot product: four scalar partial sums per row and panel (CSR), a 4-lane
 * FMA per block with x[k] broadcast (4×1), a column of the block times a broadcast x (16×16).
 * N:M, any M, needs neither transpose: 16 output channels in the lanes of a vector; per group of m inputs and
 * token, x's group broadcast into every lane group, each lane's input picked by its stored slot position
 * (vpermilps, vpermps for m > 4), one FMA per slot with the 16 channels' values; 8 tokens in registers.
 * OpenMP over output channels (block rows): the tile paths in chunks of ~192 channels (whole groups of 16),
 * the per-token paths in 64 chunks, N:M by blocks of 16 channels. The vector code is AVX-512 intrinsics (target
 * attributes, never -march), used when pare_cpu_get() reports avx512f/bw/vl; otherwise plain C loops
 * compiled three times (PARE_HOT: AVX-512, AVX2+FMA, baseline clones, the loader picks by CPU) on a
 * row-major transpose.
 *
 *     pare_sparse_weight w;
 *     pare_sparse_spec s = {.kind = PARE_SP_NM, .n = 2, .m = 4};
 *     PARE_TRY(pare_sparse_from_dense(&w, W, N, K, &s));    // PARE_EINVAL if W is not 2:4
 *     void *ws = aligned_alloc(64, pare_sparse_workspace(&w, M) + 64);
 *     PARE_TRY(pare_sparse_linear(y, x, &w, bias, M, ws));
 *     pare_sparse_weight_free(&w);
 *
 * Every layout has a plain reference (pare_sparse_linear_ref: scalar loops over the stored layout) and the
 * tests compare both against the dense reference on the masked weights (tests/test_sparse.c).
 * Deliberately not here: backward (sparse weights are inference formats; training runs on the f32 masters
 * under masks), int8 for NM and BSR, K > 65536 (u16 indices), bit-packed N:M indices, AMX / VNNI.
 */
#ifndef PARE_SPARSE_H
#define PARE_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pare_sp_kind { /* append-only: checkpoints store the spec's text, not this value */
    PARE_SP_CSR = 0,
    PARE_SP_CSR_I8,
    PARE_SP_NM,
    PARE_SP_BSR,
    PARE_SP_KIND_COUNT
} pare_sp_kind;

#define PARE_SP_MAX_K 65536 /* BSR block columns are u16; kept for every layout */
#define PARE_SP_PANEL 128   /* CSR column panel: in-panel columns are u8 */
#define PARE_SP_NM_CB 16    /* NM: output channels interleaved in blocks of 16 */
#define PARE_SP_TILE_MIN 8  /* from this many rows of x on, the transposed tile kernels; below, per-token dots */

typedef struct pare_sparse_spec {
    pare_sp_kind kind;
    int n, m;   /* NM: n of every m (n < m, both powers of two, m <= 16) */
    int br, bc; /* BSR: 4 × 1 or 16 × 16 */
} pare_sparse_spec;

typedef struct pare_sparse_weight {
    pare_sparse_spec spec;
    int64_t N, K;       /* the dense shape */
    int64_t nnz;        /* stored values: nonzeros (CSR), ceil16(N)·K·n/m (NM), blocks·br·bc (BSR) */
    int64_t nblk;       /* BSR: stored blocks */
    int64_t nonzero;    /* nonzeros of the dense weight (for the sparsity reported) */
    int64_t npanel;     /* CSR, CSR_I8: ceil(K / PARE_SP_PANEL) */
    uint32_t *rowptr;   /* CSR, CSR_I8: (npanel, N+1): panel p, row n is [rowptr[p(N+1)+n], rowptr[p(N+1)+n+1]);
                           BSR: (ceil(N/br)+1), in blocks */
    uint8_t *pcol;      /* CSR, CSR_I8: (nnz) column inside its panel: k = p·PARE_SP_PANEL + pcol */
    uint16_t *col;      /* BSR: (nblk) block column k0/bc */
    uint8_t *pos;       /* NM: (nnz) position in the group, channel-interleaved as val */
    float *val;         /* CSR, NM, BSR: (nnz) */
    int8_t *qval;       /* CSR_I8: (nnz) */
    float *scale;       /* CSR_I8: (N) per output channel */
} pare_sparse_weight;

/* NM: the storage index of slot j (0 .. per-1, per = K·n/m) of output channel r. */
static inline int64_t pare_sparse_nm_at(int64_t per, int64_t r, int64_t j)
{
    return ((r / PARE_SP_NM_CB) * per + j) * PARE_SP_NM_CB + r % PARE_SP_NM_CB;
}

/* "csr", "csr_i8", "nm2:4", "bsr4x1" ... into buf (for tables and checkpoints). */
const char *pare_sparse_spec_str(const pare_sparse_spec *s, char *buf, size_t n);
/* The inverse; PARE_EINVAL naming the text and the valid forms. Checks the ranges of n, m, br, bc. */
pare_status pare_sparse_spec_parse(pare_sparse_spec *s, const char *text);

/* Compress W (N,K). PARE_EINVAL (naming the row, group and counts) when W's zeros do not fit the spec (a
 * group of m with more than n nonzeros), for K > PARE_SP_MAX_K, K % m != 0 (NM) or a bad spec;
 * PARE_ENUMERIC for NaN / Inf (naming the position); PARE_ENOMEM. */
pare_status pare_sparse_from_dense(pare_sparse_weight *out, const float *W, int64_t N, int64_t K,
                                   const pare_sparse_spec *spec);
void pare_sparse_weight_free(pare_sparse_weight *w); /* safe twice */
/* Bytes stored: values, indices, row pointers, scales (what size tables report). */
size_t pare_sparse_bytes(const pare_sparse_weight *w);
/* The dense weight back (N,K), zeros included (tests; CSR_I8 gives q·scale). */
void pare_sparse_to_dense(float *W, const pare_sparse_weight *w);

/* Pattern statistics of a dense W (N,K), for the passes. */
double pare_sparse_zero_fraction(const float *W, int64_t N, int64_t K);
/* Fraction of the br × bc blocks (W padded with zeros) that are all zero. */
double pare_sparse_block_zero_fraction(const float *W, int64_t N, int64_t K, int br, int bc);
/* Number of groups of m holding more than n nonzeros (0: W fits n:m); the first one's row and group in
 * *row, *group (may be NULL) and its count in *count. K % m != 0 gives -1. */
int64_t pare_sparse_nm_violations(const float *W, int64_t N, int64_t K, int n, int m, int64_t *row, int64_t *group,
                                  int *count);

/* Workspace bytes of pare_sparse_linear at M rows (64-byte aligned buffer). */
size_t pare_sparse_workspace(const pare_sparse_weight *w, int64_t M);
/* y(M,N) = x(M,K)·W^T + bias; bias may be NULL. PARE_ENUMERIC naming the row of x holding NaN/Inf
 * (CSR_I8: per-token quantization needs finite rows); PARE_EINVAL for NULL buffers. */
pare_status pare_sparse_linear(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M,
                               void *workspace);
/* Reference twin: scalar loops over the stored layout (CSR_I8: int64 sums, the dense int8 reference's
 * float operations). */
void pare_sparse_linear_ref(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M);
/* What runs on this machine: "avx512", "avx2" or "scalar" (the clone the loader picks). */
const char *pare_sparse_impl(void);

/* "auto" (the default: AVX-512 where the CPU has it), "avx512" (PARE_ENOTSUP without it) or "portable" (the
 * plain C code, as a CPU without AVX-512 runs it): process-wide, for tests and benchmarks. */
pare_status pare_sparse_set_isa(const char *isa);

/* internal: sparse_fast.c's entry, called by pare_sparse_linear after the argument checks */
pare_status pare_sparse_linear_fast_(float *y, const float *x, const pare_sparse_weight *w, const float *bias,
                                     int64_t M, void *workspace);

#endif
