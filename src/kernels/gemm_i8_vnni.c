/* gemm_i8_vnni.c — pare's own AVX512-VNNI int8 GEMM for the int8 Linear: sums(M,N) = xu(M,K)·q(N,K)^T with
 * xu u8 (the activations' codes + 128, or + a zero point) and q s8 weights packed once at quantization, and
 * the Linear's dequantization (zero-point correction by column sums, per-token × per-channel scale, bias,
 * a fused GELU/ReLU) done on the register tile at the end of K. Issue 18 ("Faster INT8").
 *
 * Layout (gemm_i8_vnni.h): panels of 48 output columns, K in groups of 4 bytes; for each group the 48
 * columns' 4 bytes are adjacent, so three zmm loads give 3 × 16 columns × 4 bytes and each vpdpbusd
 * (u8 × s8, four products summed into each int32 lane, no saturation) takes a broadcast of 4 activation
 * bytes of one row. Register tile: 8 rows × 48 columns = 24 zmm accumulators + 3 weight zmm + 1 broadcast.
 * Per group of 4 k: 3 weight loads, 8 broadcasts, 24 vpdpbusd.
 *
 * Blocking, two orders. Small activations (M·K <= 256 KiB: M = 128 at K = 768): panel by panel (OpenMP over
 * panels), K in blocks of 768, all the row blocks under one panel block (36 KiB, in L1), the activations in L2.
 * Otherwise (GotoBLAS's, with the roles of the operands as they fall here): the panels in column chunks of
 * ~512 KiB (L2), and for each chunk the rows in blocks of 8, whose K bytes stay in L1 while the chunk's
 * panels go by (the weights stream from L2, sequentially); the next row block's activations and output lines
 * are prefetched a share per panel. K in blocks of 4096 (BERT's K = 768, 3072 run in one): the int32 partial
 * sums of K blocks before the last are kept in the output (int32 in place of the f32 y, same size), and the
 * last block dequantizes. OpenMP over (column chunk, row block) pairs, static: every output element is
 * computed by one thread in one fixed order, so the result does not depend on the thread count.
 *
 * Exactness: |Σ_k xu·q| <= 255·128·K fits int32 for K <= U8S8_MAX_K (65793), which pare_i8_vnni_pack_
 * enforces; vpdpbusd wraps only past int32. The dequantization is dequant_row_avx512's operations in the
 * same order ((float)(acc − zz·colsum) · (sx·sw) + bias), so y is bit-identical to the oneDNN path + that
 * pass and to the reference (tests/test_gemm_i8_vnni.c).
 *
 * Deliberately not here: AVX2-VNNI (ymm) and AMX variants, s8·s8 (large K takes oneDNN's s8s8 path), a
 * packed A (the activations are read in place, 4 bytes per broadcast), M tiles other than 8 rows (ragged
 * M runs the same kernel with fewer rows), the quantization of x (gemm_i8_rows.c).
 *
 * Inside a model every weight comes from DRAM once per call: in both orders the kernel asks for the next panel
 * (or column chunk) into L2 while computing the current one, a share per row block (prefetcht1): −1.4% CPU time
 * per BERT-base forward (5 of 5 processes, docs/kernels-int8.md).
 *
 * Entry points (gemm_i8_vnni.h): pare_i8_vnni_available_, pare_i8_vnni_pack_, pare_i8_vnni_free_,
 * pare_i8_vnni_hugepages_, pare_i8_vnni_next_prefetch_, pare_i8_vnni_gemm_.
 */
#include "kernels/gemm_i8_vnni.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/cpu.h"
#include "kernels/act_avx512.h"
#include "kernels/fuse_ops.h"
#include "kernels/gemm_i8_internal.h"

#define NR PARE_I8_VNNI_NR
#define MR PARE_I8_VNNI_MR
/* K block (a multiple of 4; BERT's K = 768, 3072 run in one block: K blocks of 512 or 768 measured 3–10% slower,
 * the weight panel streaming well from L2) and the L2 share of a column chunk of panels */
#define KC ((int64_t)4096)
#define B_CHUNK_BYTES ((int64_t)512 * 1024)
/* Small activations (M·K <= A_L2_BYTES, e.g. M = 128 at K = 768): panel by panel instead, in K blocks of KP
 * (a 36 KiB panel block stays in L1 across all the row blocks, the activations in L2): +0–5% at M = 128, but
 * at M = 1024 the output rows it writes per panel (1024 rows × 192 bytes at stride 4·N) cost up to 20%. */
#define A_L2_BYTES ((int64_t)256 * 1024)
#define KP ((int64_t)768)
#define HUGE_MIN ((size_t)1 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static int use_huge = 1, next_prefetch = 1;

int pare_i8_vnni_next_prefetch_(int on)
{
    int was = next_prefetch;
    next_prefetch = on != 0;
    return was;
}

int pare_i8_vnni_hugepages_(int on)
{
    int was = use_huge;
    use_huge = on != 0;
    return was;
}

int pare_i8_vnni_available_(void)
{
#ifdef PARE_GEMM_X86
    const pare_cpu *c = pare_cpu_get();
    return c->avx512f && c->avx512bw && c->avx512vnni;
#else
    return 0;
#endif
}

pare_i8_panels *pare_i8_vnni_pack_(const int8_t *q, int64_t N, int64_t K)
{
    if (!pare_i8_vnni_available_() || N < 1 || K < 1 || K > U8S8_MAX_K) return NULL;
    pare_i8_panels *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->N = N, p->K = K, p->np = (N + NR - 1) / NR, p->K4 = (K + 3) / 4;
    size_t bytes = (size_t)(p->np * p->K4) * NR * 4;
    void *d = NULL;
    if (use_huge && bytes >= HUGE_MIN) {
        /* the start 2 MiB-aligned, so every whole 2 MiB of the panels can be one huge page; the tail stays in
         * 4 KiB pages (rounding the size up to 2 MiB would back up to 2 MiB of padding per weight) */
        bytes = (bytes + 4095) & ~(size_t)4095;
        if (posix_memalign(&d, HUGE_ALIGN, bytes)) d = NULL;
        if (d) {
            p->huge = 1;
#ifdef MADV_HUGEPAGE
            (void)madvise(d, bytes, MADV_HUGEPAGE); /* advice only: without THP the pages stay 4 KiB */
#endif
        }
    }
    if (!d && posix_memalign(&d, 64, bytes)) d = NULL;
    if (!d) {
        free(p);
        return NULL;
    }
    p->data = d, p->bytes = bytes;
    const int64_t K4 = p->K4;
#pragma omp parallel for schedule(static) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t pi = 0; pi < p->np; pi++) {
        int8_t *dst = p->data + pi * K4 * NR * 4;
        for (int64_t k4 = 0; k4 < K4; k4++)
            for (int64_t j = 0; j < NR; j++) {
                const int64_t n = pi * NR + j;
                for (int64_t b = 0; b < 4; b++) {
                    const int64_t k = 4 * k4 + b;
                    dst[(k4 * NR + j) * 4 + b] = n < N && k < K ? q[n * K + k] : 0;
                }
            }
    }
    return p;
}

void pare_i8_vnni_free_(pare_i8_panels *p)
{
    if (!p) return;
    free(p->data);
    free(p);
}

#ifdef PARE_GEMM_X86

#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni,fma"))) /* fma: act_avx512.h's GELU */

static inline uint32_t load4(const uint8_t *a)
{
    uint32_t v;
    memcpy(&v, a, 4);
    return v;
}

/* One tile: rows [0, mr) of a (row stride lda) × one panel's k groups [0, kg) (b: the panel at the block's
 * first group), tail: the last group holds only kt < 4 valid bytes of a (0: none). first: start from 0,
 * else add to the int32 partial sums in out; last: dequantize into f32 (epi) or store int32 (epi NULL).
 * out: the tile's (0, 0) in the output, row stride ldo; nv: valid columns of the tile (<= 48). */
VNNI_TARGET __attribute__((always_inline)) static inline void
tile(void *out, int64_t ldo, const uint8_t *a, int64_t lda, const int8_t *b, int64_t kg, int kt, const int mr,
     int64_t nv, int first, int last, const pare_i8_vnni_epi *epi, int64_t m0, int64_t n0)
{
    /* named accumulators (an array indexed in loops stays on the stack with GCC): rows past mr are dead code */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define DECL(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = c##i##0, c##i##2 = c##i##0; \
    const uint8_t *a##i = a + (i < mr ? i : 0) * lda;
    ROWS(DECL)
#undef DECL
#define STEP(i)                                                                                                 \
    if (i < mr) {                                                                                               \
        const __m512i av = _mm512_set1_epi32((int)load4(a##i + 4 * g));                                        \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, av, b0);                                                         \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, av, b1);                                                         \
        c##i##2 = _mm512_dpbusd_epi32(c##i##2, av, b2);                                                         \
    }
    const int64_t kfull = kt ? kg - 1 : kg;
    for (int64_t g = 0; g < kfull; g++) {
        const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + 64), b2 = _mm512_load_si512(b + 128);
        b += NR * 4;
        ROWS(STEP)
    }
#undef STEP
    if (kt) { /* the last K group with kt valid bytes: never read past the row (the weights there are 0) */
        const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + 64), b2 = _mm512_load_si512(b + 128);
#define STEP(i)                                                                                                 \
    if (i < mr) {                                                                                               \
        uint32_t v = 0;                                                                                         \
        memcpy(&v, a##i + 4 * kfull, (size_t)kt);                                                               \
        const __m512i av = _mm512_set1_epi32((int)v);                                                           \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, av, b0);                                                         \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, av, b1);                                                         \
        c##i##2 = _mm512_dpbusd_epi32(c##i##2, av, b2);                                                         \
    }
        ROWS(STEP)
#undef STEP
    }
    __m512i c[MR][3];
#define SAVE(i) c[i][0] = c##i##0, c[i][1] = c##i##1, c[i][2] = c##i##2;
    ROWS(SAVE)
#undef SAVE
#undef ROWS
    __mmask16 mk[3];
    for (int j = 0; j < 3; j++) {
        int64_t r = nv - 16 * j;
        mk[j] = r >= 16 ? (__mmask16)0xffff : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1u);
    }
    for (int i = 0; i < mr; i++) {
        int32_t *o = (int32_t *)out + i * ldo;
        if (!first)
            for (int j = 0; j < 3; j++) c[i][j] = _mm512_add_epi32(c[i][j], _mm512_maskz_loadu_epi32(mk[j], o + 16 * j));
        if (!last || !epi) {
            for (int j = 0; j < 3; j++) _mm512_mask_storeu_epi32(o + 16 * j, mk[j], c[i][j]);
            continue;
        }
        /* dequant_row_avx512 (gemm_i8_rows.c), the same operations in the same order */
        const int64_t m = m0 + i;
        const __m512 vsx = _mm512_set1_ps(epi->sx[m]);
        const int32_t zz = epi->zrow ? epi->zrow[m] : epi->zall;
        const __m512i vzz = _mm512_set1_epi32(zz);
        float *y = (float *)out + i * ldo;
        for (int j = 0; j < 3; j++) {
            const int64_t n = n0 + 16 * j;
            __m512i acc = c[i][j];
            if (zz) acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(mk[j], epi->colsum + n), vzz));
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(vsx, _mm512_maskz_loadu_ps(mk[j], epi->sw + n)));
            if (epi->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk[j], epi->bias + n));
            if (epi->gelu16) v = pare_gelu_erf16_(v); /* what pare_gelu_erf_forward runs, without the call per row */
            _mm512_mask_storeu_ps(y + 16 * j, mk[j], v);
        }
        if (epi->epilogue && !epi->gelu16) pare_epilogue_forward(y, y, epi->epilogue, nv);
    }
}

/* One instance per row count, so the tile's loops over rows unroll and its accumulators stay in registers. */
#define TILE_FN(R)                                                                                              \
    VNNI_TARGET static void tile_##R(void *out, int64_t ldo, const uint8_t *a, int64_t lda, const int8_t *b,   \
                                     int64_t kg, int kt, int64_t nv, int first, int last,                      \
                                     const pare_i8_vnni_epi *epi, int64_t m0, int64_t n0)                      \
    {                                                                                                           \
        tile(out, ldo, a, lda, b, kg, kt, R, nv, first, last, epi, m0, n0);                                     \
    }
TILE_FN(1)
TILE_FN(2)
TILE_FN(3)
TILE_FN(4)
TILE_FN(5)
TILE_FN(6)
TILE_FN(7)
TILE_FN(8)
#undef TILE_FN

typedef void (*tile_fn)(void *, int64_t, const uint8_t *, int64_t, const int8_t *, int64_t, int, int64_t, int, int,
                        const pare_i8_vnni_epi *, int64_t, int64_t);
static const tile_fn tiles[MR + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6, tile_7, tile_8};

/* rows [m, m + r) × panels [p0, p1) over every K block */
VNNI_TARGET static void block(void *out, const uint8_t *xu, int64_t lda, const pare_i8_panels *p,
                              const pare_i8_vnni_epi *epi, int64_t m, int r, int64_t p0, int64_t p1, int64_t M_total)
{
    const int64_t N = p->N, K = p->K, K4 = p->K4, nkb = (K + KC - 1) / KC;
    for (int64_t kb = 0; kb < nkb; kb++) {
        const int64_t k0 = kb * KC, k1 = k0 + KC < K ? k0 + KC : K; /* bytes of a in this block */
        const int64_t kg = (k1 - k0 + 3) / 4;
        const int kt = (int)((k1 - k0) % 4);
        const int first = kb == 0, last = kb == nkb - 1;
        /* the next row block's activations of this K block, a share per panel, into L1 ahead of use; and
         * its output lines of each panel, for writing (at M = 1024 the output leaves the caches: +2–5%) */
        const int64_t lines = (k1 - k0 + 63) / 64, np_ = p1 - p0;
        const int pf = m + MR + MR <= M_total;
        for (int64_t pi = p0; pi < p1; pi++) {
            if (pf) {
                const int64_t l0 = (pi - p0) * lines / np_, l1 = (pi - p0 + 1) * lines / np_;
                for (int i = 0; i < MR; i++)
                    for (int64_t l = l0; l < l1; l++) _mm_prefetch((const char *)(xu + (m + MR + i) * lda + k0 + 64 * l), _MM_HINT_T0);
            }
            const int64_t n0 = pi * NR, nv = N - n0 < NR ? N - n0 : NR;
            if (pf && last)
                for (int i = 0; i < MR; i++) {
                    const char *o = (const char *)out + ((m + MR + i) * N + n0) * 4;
                    _mm_prefetch(o, _MM_HINT_ET0), _mm_prefetch(o + 64, _MM_HINT_ET0), _mm_prefetch(o + 128, _MM_HINT_ET0);
                }
            tiles[r]((char *)out + (size_t)(m * N + n0) * 4, N, xu + m * lda + k0, lda,
                     p->data + (pi * K4 + k0 / 4) * NR * 4, kg, kt, nv, first, last, epi, m, n0);
        }
    }
}

void pare_i8_vnni_gemm_(void *out, const uint8_t *xu, int64_t lda, int64_t M, const pare_i8_panels *p,
                        const pare_i8_vnni_epi *epi)
{
    const int64_t N = p->N, K = p->K, np = p->np;
    const int64_t kc = K < KC ? K : KC, nmb = (M + MR - 1) / MR;
    const int par_ok = M * N * K >= ((int64_t)1 << 20);
    /* panels per column chunk: their kc·48 bytes fill the L2 share B_CHUNK_BYTES; chunks balanced. Each work
         * item is (column chunk, row block of 8): the row block's activations stay in L1 across the chunk's
     * panels, the chunk's panels in L2 across row blocks. */
    int64_t pc = B_CHUNK_BYTES / ((kc + 3) / 4 * NR * 4);
    if (pc < 1) pc = 1;
    if (pc > np) pc = np;
    const int64_t nnc = (np + pc - 1) / pc;
    pc = (np + nnc - 1) / nnc;
    const int64_t work = nnc * nmb;
    if (M * K <= A_L2_BYTES) {
        const int64_t nkb = (K + KP - 1) / KP;
#pragma omp parallel for schedule(static) if (np > 1 && par_ok)
        for (int64_t pi = 0; pi < np; pi++) {
            const int64_t n0 = pi * NR, nv = N - n0 < NR ? N - n0 : NR;
            for (int64_t kb = 0; kb < nkb; kb++) {
                const int64_t k0 = kb * KP, k1 = k0 + KP < K ? k0 + KP : K;
                const int64_t kg = (k1 - k0 + 3) / 4;
                const int kt = (int)((k1 - k0) % 4);
                for (int64_t m = 0; m < M; m += MR) {
                    if (next_prefetch && pi + 1 < np && kb == 0) { /* the next panel into L2, a share per row block */
                        const size_t lines = (size_t)p->K4 * NR * 4 / 64, mb = (size_t)(m / MR), nb = (size_t)nmb;
                        const char *base = (const char *)(p->data + (size_t)(pi + 1) * p->K4 * NR * 4);
                        for (size_t l = lines * mb / nb; l < lines * (mb + 1) / nb; l++) _mm_prefetch(base + 64 * l, _MM_HINT_T1);
                    }
                    tiles[M - m < MR ? M - m : MR]((char *)out + (size_t)(m * N + n0) * 4, N, xu + m * lda + k0, lda,
                                                   p->data + (pi * p->K4 + k0 / 4) * NR * 4, kg, kt, nv, kb == 0,
                                                   kb == nkb - 1, epi, m, n0);
                }
            }
        }
        return;
    }
    const size_t panel_bytes = (size_t)p->K4 * NR * 4;
#pragma omp parallel for schedule(static) if (work > 1 && par_ok)
    for (int64_t w = 0; w < work; w++) {
        const int64_t ci = w / nmb, mb = w % nmb, m = mb * MR, p0 = ci * pc, p1 = p0 + pc < np ? p0 + pc : np;
        if (next_prefetch && p1 < np) { /* the next chunk's panels into L2, a share per row block */
            const int64_t q1 = p1 + pc < np ? p1 + pc : np;
            const size_t lines = (size_t)(q1 - p1) * panel_bytes / 64, l0 = lines * (size_t)mb / (size_t)nmb,
                         l1 = lines * (size_t)(mb + 1) / (size_t)nmb;
            const char *base = (const char *)(p->data + (size_t)p1 * panel_bytes);
            for (size_t l = l0; l < l1; l++) _mm_prefetch(base + 64 * l, _MM_HINT_T1);
        }
        block(out, xu, lda, p, epi, m, (int)(M - m < MR ? M - m : MR), p0, p1, M);
    }
}

#else

void pare_i8_vnni_gemm_(void *out, const uint8_t *xu, int64_t lda, int64_t M, const pare_i8_panels *p,
                        const pare_i8_vnni_epi *epi)
{
    (void)out, (void)xu, (void)lda, (void)M, (void)p, (void)epi; /* never packed without VNNI */
}

#endif
