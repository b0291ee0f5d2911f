/* sparse_fast.c — the fast sparse Linear kernels of sparse.h: AVX-512 intrinsics (selected at run time by
 * pare_cpu_get()), and portable C for other machines (compiled as PARE_HOT clones: AVX2+FMA / baseline).
 *
 * M >= PARE_SP_TILE_MIN: x (M,K) is transposed into xT, Kp = K + 16 rows (zeros below K, so a block's padded
 * columns read zeros) by Mp = M rounded up to 16 tokens — tile-major on the AVX-512 path (tiles of 64
 * tokens, each (Kp, 64) block contiguous: a row stride of Mp floats mapped a CSR panel's rows onto half
 * of L1's sets), row-major on the portable path. One output channel n (or a block row of br channels) at a
 * time, a tile of 64 tokens lives in 4 (× br) zmm accumulators while the stored weights of n stream by:
 * acc[q] += w · xT[k, m0 + 16q .. +16]. The weights are read once per 64 tokens, never expanded. Output
 * columns are collected 16 at a time (otile) and written as rows.
 * M < PARE_SP_TILE_MIN: one token at a time, a dot product per output channel: CSR with scalar partial
 * sums, 4×1 blocks a 4-lane FMA each, 16×16 blocks a 16-lane FMA per block column.
 * N:M (any M): x read in place, 16 output channels per vector, the slot picked by a permute (nm_block).
 * CSR_I8: tokens quantized per token (pare_quantize_rows_s8_checked), the same tiles on int32 lanes
 * (vpmulld: exact), the float epilogue of the dense int8 reference, written out in scalar code so the
 * compiler (-ffp-contract=off under -std=c11) rounds it the same way.
 *
 * Deliberately not here: software prefetch (tried on the CSR tile: no gain), a gathered CSR decode (row by
 * row, a masked 16-lane gather per panel segment, one reduction per row: 1.6x faster at 768x3072 with hot
 * weights, but 0.74x at 768x768 and slower in the cold-weight benchmark at both), AVX2 intrinsics (the AVX2
 * clone of the portable code stands in), VNNI for CSR_I8 (vpdpbusd wants 4 consecutive k per lane;
 * unstructured rows have no such runs).
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"
#include "kernels/sparse.h"

#define TILE 64
#define PAR_MIN_WORK 200000 /* stored weights × tokens below which one thread runs */

static int g_portable; /* pare_sparse_set_isa("portable"): the tests' switch to the portable code */

static int cpu_avx512(void)
{
    const pare_cpu *c = pare_cpu_get();
    return c->avx512f && c->avx512bw && c->avx512vl;
}

static int use_avx512(void) { return cpu_avx512() && !__atomic_load_n(&g_portable, __ATOMIC_RELAXED); }

const char *pare_sparse_impl(void)
{
    if (use_avx512()) return "avx512";
    return pare_cpu_get()->avx2 && pare_cpu_get()->fma ? "avx2" : "scalar";
}

pare_status pare_sparse_set_isa(const char *isa)
{
    if (isa && (!strcmp(isa, "auto") || !strcmp(isa, "portable"))) {
        __atomic_store_n(&g_portable, isa[0] == 'p', __ATOMIC_RELAXED);
        return PARE_OK;
    }
    if (isa && !strcmp(isa, "avx512")) {
        if (!cpu_avx512()) return pare_fail(PARE_ENOTSUP, "sparse isa 'avx512': this CPU lacks AVX-512 (F, BW, VL)");
        __atomic_store_n(&g_portable, 0, __ATOMIC_RELAXED);
        return PARE_OK;
    }
    return pare_fail(PARE_EINVAL, "sparse isa '%s': valid: auto, avx512, portable", isa ? isa : "(null)");
}

static void *align64(void *p) { return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* xT (Kp, Mp) = x^T, zero-padded rows k >= K and columns m >= M. Blocks of 16 tokens × 16 features:
 * 16 reads of 64 contiguous bytes, 16 writes of 64 contiguous bytes. */
#define DEF_TRANSPOSE(name, T_OUT, T_IN)                                                                              \
    static void name(T_OUT *xT, const T_IN *x, int64_t M, int64_t K, int64_t Mp, int64_t Kp)                          \
    {                                                                                                                 \
        _Pragma("omp parallel for schedule(static) if (M * K >= 65536)")                                              \
        for (int64_t k0 = 0; k0 < Kp; k0 += 16) {                                                                     \
            T_OUT blk[16][16];                                                                                        \
            for (int64_t m0 = 0; m0 < Mp; m0 += 16) {                                                                 \
                if (m0 + 16 <= M && k0 + 16 <= K) {                                                                   \
                    for (int i = 0; i < 16; i++)                                                                      \
                        for (int c = 0; c < 16; c++) blk[c][i] = (T_OUT)x[(m0 + i) * K + k0 + c];                     \
                } else {                                                                                              \
                    for (int i = 0; i < 16; i++)                                                                      \
                        for (int c = 0; c < 16; c++)                                                                  \
                            blk[c][i] = m0 + i < M && k0 + c < K ? (T_OUT)x[(m0 + i) * K + k0 + c] : (T_OUT)0;        \
                }                                                                                                     \
                for (int c = 0; c < 16 && k0 + c < Kp; c++) memcpy(xT + (k0 + c) * Mp + m0, blk[c], sizeof blk[c]);   \
            }                                                                                                         \
        }                                                                                                             \
    }
DEF_TRANSPOSE(transpose_f32, float, float)
DEF_TRANSPOSE(transpose_i8, int32_t, int8_t)

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* r[0..16) := its transpose (16×16 floats in 16 zmm): unpack, 128-bit-lane shuffles, 256-bit shuffles. */
AVX512 __attribute__((always_inline)) static inline void tr16(__m512 *r)
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]), t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44), r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88), t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88), t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88), r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
}

/* tile-major: tokens in tiles of 64, each tile (Kp, width) contiguous, so a panel of a tile is one
 * contiguous 32 KB block (a row stride of Mp floats mapped a panel's rows onto half of L1's sets) */
#define XT(k, m) (xT + ((m) / TILE * TILE) * Kp + (k) * (Mp - (m) / TILE * TILE < TILE ? Mp - (m) / TILE * TILE : TILE) + (m) % TILE)

/* One 16×16 block of transpose_f32_avx512: transposed in registers when whole, else as the portable code. */
AVX512 static void transpose_block_avx512(float *xT, const float *x, int64_t M, int64_t K, int64_t Mp, int64_t Kp,
                                          int64_t k0, int64_t m0)
{
    if (m0 + 16 <= M && k0 + 16 <= K) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(x + (m0 + i) * K + k0);
        tr16(r);
        for (int c = 0; c < 16; c++) _mm512_store_ps(XT(k0 + c, m0), r[c]);
    } else {
        for (int64_t c = 0; c < 16 && k0 + c < Kp; c++)
            for (int64_t i = 0; i < 16; i++) XT(k0 + c, m0)[i] = m0 + i < M && k0 + c < K ? x[(m0 + i) * K + k0 + c] : 0.0f;
    }
}
/* The same block of the quantized tokens qx (M, K) int8, as floats (CSR_I8's tiles run float FMAs, exact). */
AVX512 static void transpose_block_i8f_avx512(float *xT, const int8_t *x, int64_t M, int64_t K, int64_t Mp, int64_t Kp,
                                              int64_t k0, int64_t m0)
{
    if (m0 + 16 <= M && k0 + 16 <= K) {
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x + (m0 + i) * K + k0))));
        tr16(r);
        for (int c = 0; c < 16; c++) _mm512_store_ps(XT(k0 + c, m0), r[c]);
    } else {
        for (int64_t c = 0; c < 16 && k0 + c < Kp; c++)
            for (int64_t i = 0; i < 16; i++)
                XT(k0 + c, m0)[i] = m0 + i < M && k0 + c < K ? (float)x[(m0 + i) * K + k0 + c] : 0.0f;
    }
}
#undef XT

/* Rows [k0, k0 + 16) of xT (tile-major), every token: one k-block of the transpose, called from the OpenMP loop of
 * pare_sparse_linear_fast_, which runs the transpose and the tiles in one parallel region (one fork, one barrier
 * between them). The OpenMP region has no AVX-512 code of its own: the function clang outlines for it does not
 * inherit the target attribute. */
AVX512 static void transpose_kblock_avx512(float *xT, const float *x, int64_t M, int64_t K, int64_t Mp, int64_t Kp,
                                           int64_t k0)
{
    for (int64_t m0 = 0; m0 < Mp; m0 += 16) transpose_block_avx512(xT, x, M, K, Mp, Kp, k0, m0);
}

AVX512 static void transpose_kblock_i8f_avx512(float *xT, const int8_t *x, int64_t M, int64_t K, int64_t Mp, int64_t Kp,
                                               int64_t k0)
{
    for (int64_t m0 = 0; m0 < Mp; m0 += 16) transpose_block_i8f_avx512(xT, x, M, K, Mp, Kp, k0, m0);
}

/* Output columns of a token tile, gathered 16 at a time before they are written: y's rows are N floats
 * apart, so writing one column at a time touches a cache line per token — and with N a multiple of 1024 the
 * lines of one column all fall in a few L1 sets (measured: 80% of the kernel's time at 768×768, M = 128).
 * Sixteen consecutive columns fill whole 64-byte lines. */
typedef struct otile {
    float b[16][TILE];
    int64_t g0, m0, mcnt;
    int cnt;
    int avx; /* 1: flush full groups with 16×16 register transposes (set by the AVX-512 kernels only) */
} otile;

AVX512 static void ot_flush16_avx512(otile *o, float *y, int64_t N)
{
    int64_t i0 = 0;
    for (; i0 + 16 <= o->mcnt; i0 += 16) {
        __m512 r[16];
        for (int c = 0; c < 16; c++) r[c] = _mm512_loadu_ps(o->b[c] + i0);
        tr16(r);
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(y + (o->m0 + i0 + i) * N + o->g0, r[i]);
    }
    for (int64_t i = i0; i < o->mcnt; i++)
        for (int c = 0; c < 16; c++) y[(o->m0 + i) * N + o->g0 + c] = o->b[c][i];
    o->cnt = 0;
}

static inline void ot_flush(otile *o, float *y, int64_t N)
{
    if (!o->cnt) return;
    if (o->avx && o->cnt == 16) {
        ot_flush16_avx512(o, y, N);
        return;
    }
    for (int64_t i = 0; i < o->mcnt; i++) {
        float *yr = y + (o->m0 + i) * N + o->g0;
        for (int c = 0; c < o->cnt; c++) yr[c] = o->b[c][i];
    }
    o->cnt = 0;
}

/* Column n of the tile at tokens [m0, m0 + cnt): t[i] (+ bias[n] when bias is given). */
static inline void put_col(otile *o, float *y, int64_t N, int64_t n, int64_t m0, int64_t cnt, const float *t,
                           const float *bias)
{
    if (o->cnt && (o->m0 != m0 || n != o->g0 + o->cnt || o->cnt == 16)) ot_flush(o, y, N);
    if (!o->cnt) o->g0 = n, o->m0 = m0, o->mcnt = cnt;
    float *d = o->b[o->cnt++];
    if (cnt == TILE) { /* a constant trip count: vectorized */
        const float b = bias ? bias[n] : 0.0f;
        if (bias)
            for (int i = 0; i < TILE; i++) d[i] = t[i] + b;
        else
            for (int i = 0; i < TILE; i++) d[i] = t[i];
    } else if (bias) {
        const float b = bias[n];
        for (int64_t i = 0; i < cnt; i++) d[i] = t[i] + b;
    } else {
        for (int64_t i = 0; i < cnt; i++) d[i] = t[i];
    }
}

/* ====================================== AVX-512 ====================================== */

/* N:M, channel-interleaved (sparse.h): 16 output channels in the lanes of a vector, T tokens in T accumulators.
 * Per group g of m inputs and token t: x[t, g·m .. g·m+m-1] broadcast into every m-float lane group of a zmm
 * (one load), then per slot s one vpermps picks each channel's input by its stored position and one FMA with
 * the 16 channels' values of slot s. The values and positions of a group are loaded once per T tokens; x is
 * read in place (no transpose), y written as whole rows of 16 channels (no output transpose).
 * Cost per group and token at 2:4: 1 load, 2 permutes, 2 FMAs for 16 × 4 dense MACs (dense: 4 FMAs). */
#define AVX512_INLINE AVX512 __attribute__((always_inline)) static inline
/* Each lane's input from the group broadcast in xb: in-lane vpermilps when the group fits a 128-bit lane (m <= 4:
 * cheaper than the cross-lane vpermps, which 4:8 and wider need). */
AVX512_INLINE __m512 nm_pick(__m512i ix, __m512 xb, const int m)
{
    return m <= 4 ? _mm512_permutevar_ps(xb, ix) : _mm512_permutexvar_ps(ix, xb);
}

AVX512_INLINE __m512 nm_bcast(const float *p, const int m)
{
    if (m == 16) return _mm512_loadu_ps(p);
    if (m == 8) return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd((const double *)p)));
    if (m == 4) return _mm512_broadcast_f32x4(_mm_loadu_ps(p));
    double d;
    memcpy(&d, p, sizeof d);
    return _mm512_castpd_ps(_mm512_set1_pd(d));
}

/* Channel block c (channels 16c .. 16c+15), tokens [t0, t0 + T). */
AVX512_INLINE void nm_block(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t c,
                            int64_t t0, const int T, const int m, const int n)
{
    const int64_t N = w->N, K = w->K, G = K / m;
    const int64_t per = G * n;
    const float *v = w->val + c * per * PARE_SP_NM_CB;
    const uint8_t *ps = w->pos + c * per * PARE_SP_NM_CB;
    const float *xt = x + t0 * K;
    __m512 acc[8], acc2[4];
#pragma GCC unroll 8
    for (int t = 0; t < 8; t++) acc[t] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++) acc2[t] = _mm512_setzero_ps();
    if (T == 1) { /* one token: four groups in flight (four FMA chains) */
        int64_t g = 0;
        for (; g + 4 <= G; g += 4)
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                const __m512 xb = nm_bcast(xt + (g + u) * m, m);
                for (int sl = 0; sl < n; sl++) {
                    const int64_t j = ((g + u) * n + sl) * PARE_SP_NM_CB;
                    const __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ps + j)));
                    acc2[u] = _mm512_fmadd_ps(nm_pick(ix, xb, m), _mm512_loadu_ps(v + j), acc2[u]);
                }
            }
        for (; g < G; g++) {
            const __m512 xb = nm_bcast(xt + g * m, m);
            for (int sl = 0; sl < n; sl++) {
                const int64_t j = (g * n + sl) * PARE_SP_NM_CB;
                const __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ps + j)));
                acc2[0] = _mm512_fmadd_ps(nm_pick(ix, xb, m), _mm512_loadu_ps(v + j), acc2[0]);
            }
        }
        acc[0] = _mm512_add_ps(_mm512_add_ps(acc2[0], acc2[1]), _mm512_add_ps(acc2[2], acc2[3]));
    } else {
        for (int64_t g = 0; g < G; g++) {
            __m512 xb[8];
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) xb[t] = nm_bcast(xt + t * K + g * m, m);
#pragma GCC unroll 4
            for (int sl = 0; sl < n; sl++) {
                const int64_t j = (g * n + sl) * PARE_SP_NM_CB;
                const __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ps + j)));
                const __m512 vs = _mm512_loadu_ps(v + j);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) acc[t] = _mm512_fmadd_ps(nm_pick(ix, xb[t], m), vs, acc[t]);
            }
        }
    }
    const int64_t n0 = c * PARE_SP_NM_CB;
    const __mmask16 k = n0 + 16 <= N ? (__mmask16)0xffff : (__mmask16)((1u << (N - n0)) - 1);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(k, bias + n0) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + (t0 + t) * N + n0, k, _mm512_add_ps(acc[t], b));
}

/* Channel blocks [c0, c1), every token: blocks of 8 tokens, the rest 4 / 2 / 1 at a time. */
AVX512_INLINE void nm_blocks_m(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M,
                               int64_t c0, int64_t c1, const int m, const int n)
{
    for (int64_t c = c0; c < c1; c++) {
        int64_t t = 0;
        for (; t + 8 <= M; t += 8) nm_block(y, x, w, bias, c, t, 8, m, n);
        if (t + 4 <= M) nm_block(y, x, w, bias, c, t, 4, m, n), t += 4;
        if (t + 2 <= M) nm_block(y, x, w, bias, c, t, 2, m, n), t += 2;
        if (t < M) nm_block(y, x, w, bias, c, t, 1, m, n);
    }
}

AVX512 static void nm_avx512(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M,
                             int64_t c0, int64_t c1)
{
    const int n = w->spec.n, m = w->spec.m; /* 2:4 and 4:8 with constant slot counts (unrolled), the rest generic */
    if (m == 4 && n == 2) nm_blocks_m(y, x, w, bias, M, c0, c1, 4, 2);
    else if (m == 8 && n == 4) nm_blocks_m(y, x, w, bias, M, c0, c1, 8, 4);
    else if (m == 2) nm_blocks_m(y, x, w, bias, M, c0, c1, 2, n);
    else if (m == 4) nm_blocks_m(y, x, w, bias, M, c0, c1, 4, n);
    else if (m == 8) nm_blocks_m(y, x, w, bias, M, c0, c1, 8, n);
    else nm_blocks_m(y, x, w, bias, M, c0, c1, 16, n);
}

/* CSR tiles, rows [n0, n1): per token tile, panel by panel (x's 128 rows × 64 tokens, 32 KB, stay in L1),
 * every row's nonzeros in the panel into its accumulators yacc[n] (64 lanes, carried across panels).
 * i8 (CSR_I8): the same float FMAs on the integer values (xT holds the quantized tokens as floats, the weights
 * are converted as they are broadcast). Exact: a panel's sum has at most 128 products of |q| <= 127, so every
 * partial sum is an integer below 128·127² < 2^24, which f32 holds exactly; each panel's sum is converted to
 * int32 and added to the int32 accumulators, and the float epilogue of the dense int8 reference follows. */
AVX512 __attribute__((always_inline)) static inline void csr_tiles(float *y, const float *xT, int64_t Mp, int64_t M,
                                                                   const pare_sparse_weight *w, const float *bias,
                                                                   const float *sx, float *yacc, int64_t n0,
                                                                   int64_t n1, const int i8)
{
    const int64_t N = w->N;
    otile o;
    o.cnt = 0, o.mcnt = 0, o.avx = 1;
    const uint8_t *col = w->pcol;
    const float *v = w->val;
    const int8_t *qv = w->qval;
#define VAL(j) (i8 ? (float)qv[j] : v[j])
#define LOAD_ACC(ptr) (p && !i8 ? _mm512_load_ps(ptr) : z)
#define STORE_ACC(ptr, sum)                                                                                            \
    do {                                                                                                               \
        if (!i8) _mm512_store_ps(ptr, sum);                                                                            \
        else {                                                                                                         \
            __m512i si_ = _mm512_cvtps_epi32(sum);                                                                     \
            if (p) si_ = _mm512_add_epi32(si_, _mm512_load_si512(ptr));                                                \
            _mm512_store_si512(ptr, si_);                                                                              \
        }                                                                                                              \
    } while (0)
    for (int64_t m0 = 0; m0 < Mp; m0 += TILE) {
        const int nv = Mp - m0 >= TILE ? 4 : (int)((Mp - m0) / 16);
        const int64_t ws = Mp - m0 >= TILE ? TILE : Mp - m0; /* the tile's row stride (tile-major xT) */
        for (int64_t p = 0; p < w->npanel; p++) {
            const float *xp = xT + m0 * (w->K + 16) + p * PARE_SP_PANEL * ws;
            const uint32_t *rp = w->rowptr + p * (N + 1);
            for (int64_t n = n0; n < n1; n++) {
                uint32_t j = rp[n];
                const uint32_t e = rp[n + 1];
                float *acc = yacc + n * TILE;
                if (j == e) { /* the first panel starts the accumulators (no separate clearing pass) */
                    if (!p) memset(acc, 0, sizeof(float) * TILE);
                    continue;
                }
                const __m512 z = _mm512_setzero_ps();
                if (nv == 4) { /* two nonzeros per step into two sets of accumulators: 8 independent FMA chains */
                    __m512 a0 = LOAD_ACC(acc), a1 = LOAD_ACC(acc + 16), a2 = LOAD_ACC(acc + 32), a3 = LOAD_ACC(acc + 48),
                           c0 = z, c1 = z, c2 = z, c3 = z;
                    /* four nonzeros per step: their values in one 16-byte load broadcast to every lane
                     * group, each picked by an in-lane vpermilps, their columns in one 32-bit load: 18 loads
                     * per 4 nonzeros instead of 24 (the load ports bound this loop) */
#define CSR_STEP(A0, A1, A2, A3, S, C)                                                                               \
    do {                                                                                                           \
        const float *xr_ = xp + (int64_t)(C) * TILE;                                                              \
        A0 = _mm512_fmadd_ps(S, _mm512_load_ps(xr_), A0), A1 = _mm512_fmadd_ps(S, _mm512_load_ps(xr_ + 16), A1);  \
        A2 = _mm512_fmadd_ps(S, _mm512_load_ps(xr_ + 32), A2), A3 = _mm512_fmadd_ps(S, _mm512_load_ps(xr_ + 48), A3); \
    } while (0)
                    for (; j + 4 <= e; j += 4) {
                        uint32_t c4, q4;
                        if (i8) memcpy(&q4, qv + j, sizeof q4);
                        const __m512 vv = _mm512_broadcast_f32x4(
                            i8 ? _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128((int)q4))) : _mm_loadu_ps(v + j));
                        memcpy(&c4, col + j, sizeof c4);
                        CSR_STEP(a0, a1, a2, a3, _mm512_permute_ps(vv, 0x00), c4 & 0xff);
                        CSR_STEP(c0, c1, c2, c3, _mm512_permute_ps(vv, 0x55), (c4 >> 8) & 0xff);
                        CSR_STEP(a0, a1, a2, a3, _mm512_permute_ps(vv, 0xaa), (c4 >> 16) & 0xff);
                        CSR_STEP(c0, c1, c2, c3, _mm512_permute_ps(vv, 0xff), c4 >> 24);
                    }
                    for (; j + 2 <= e; j += 2) {
                        CSR_STEP(a0, a1, a2, a3, _mm512_set1_ps(VAL(j)), col[j]);
                        CSR_STEP(c0, c1, c2, c3, _mm512_set1_ps(VAL(j + 1)), col[j + 1]);
                    }
#undef CSR_STEP
                    if (j < e) {
                        const float *xr = xp + (int64_t)col[j] * TILE;
                        __m512 s = _mm512_set1_ps(VAL(j));
                        a0 = _mm512_fmadd_ps(s, _mm512_load_ps(xr), a0);
                        a1 = _mm512_fmadd_ps(s, _mm512_load_ps(xr + 16), a1);
                        a2 = _mm512_fmadd_ps(s, _mm512_load_ps(xr + 32), a2);
                        a3 = _mm512_fmadd_ps(s, _mm512_load_ps(xr + 48), a3);
                    }
                    STORE_ACC(acc, _mm512_add_ps(a0, c0));
                    STORE_ACC(acc + 16, _mm512_add_ps(a1, c1));
                    STORE_ACC(acc + 32, _mm512_add_ps(a2, c2));
                    STORE_ACC(acc + 48, _mm512_add_ps(a3, c3));
                } else { /* the last tile, 1..3 vectors */
                    for (int q = 0; q < nv; q++) {
                        __m512 a = LOAD_ACC(acc + 16 * q);
                        for (uint32_t k = j; k < e; k++)
                            a = _mm512_fmadd_ps(_mm512_set1_ps(VAL(k)), _mm512_load_ps(xp + (int64_t)col[k] * ws + 16 * q), a);
                        STORE_ACC(acc + 16 * q, a);
                    }
                }
            }
        }
        const int64_t cnt = M - m0 < TILE ? M - m0 : TILE;
        for (int64_t n = n0; n < n1; n++) {
            if (!i8) {
                put_col(&o, y, N, n, m0, cnt, yacc + n * TILE, bias);
                continue;
            }
            const int32_t *t = (const int32_t *)(yacc + n * TILE);
            float f[TILE];
            for (int64_t i = 0; i < cnt; i++) { /* the dense int8 reference's epilogue, operation for operation */
                float sc = sx[m0 + i] * w->scale[n];
                float r = (float)t[i] * sc;
                if (bias) r = r + bias[n];
                f[i] = r;
            }
            put_col(&o, y, N, n, m0, cnt, f, NULL);
        }
    }
    ot_flush(&o, y, N);
#undef VAL
#undef LOAD_ACC
#undef STORE_ACC
}

AVX512 static void csr_f32_avx512(float *y, const float *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                                  const float *bias, float *yacc, int64_t n0, int64_t n1)
{
    csr_tiles(y, xT, Mp, M, w, bias, NULL, yacc, n0, n1, 0);
}

/* CSR_I8 on xT holding the quantized tokens as floats (tile-major), int32 sums in yacc. */
AVX512 static void csr_i8f_avx512(float *y, const float *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                                  const float *sx, const float *bias, float *yacc, int64_t n0, int64_t n1)
{
    csr_tiles(y, xT, Mp, M, w, bias, sx, yacc, n0, n1, 1);
}

/* BSR 4×1: block rows [i0, i1), tiles of 64 tokens × 4 channels (16 accumulators, 4 loads per 16 FMAs). */
AVX512 static void bsr4_avx512(float *y, const float *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                               const float *bias, int64_t i0, int64_t i1)
{
    const int64_t N = w->N;
    otile o;
    o.cnt = 0, o.mcnt = 0, o.avx = 1;
    float t[4][TILE] __attribute__((aligned(64)));
    for (int64_t m0 = 0; m0 < Mp; m0 += TILE) {
        const int nv = Mp - m0 >= TILE ? 4 : (int)((Mp - m0) / 16);
        const int64_t ws = Mp - m0 >= TILE ? TILE : Mp - m0; /* the tile's row stride (tile-major xT) */
        const float *xb = xT + m0 * (w->K + 16);
        for (int64_t i = i0; i < i1; i++) {
            /* 16 named accumulators (an array of them is spilled to the stack by GCC) */
            __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,
                   a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            const uint32_t jb = w->rowptr[i], je = w->rowptr[i + 1];
            if (nv == 4) {
                for (uint32_t j = jb; j < je; j++) {
                    const float *xr = xb + (int64_t)w->col[j] * ws, *v = w->val + (int64_t)j * 4;
                    __m512 x0 = _mm512_load_ps(xr), x1 = _mm512_load_ps(xr + 16), x2 = _mm512_load_ps(xr + 32),
                           x3 = _mm512_load_ps(xr + 48);
                    __m512 s = _mm512_set1_ps(v[0]);
                    a00 = _mm512_fmadd_ps(s, x0, a00), a01 = _mm512_fmadd_ps(s, x1, a01);
                    a02 = _mm512_fmadd_ps(s, x2, a02), a03 = _mm512_fmadd_ps(s, x3, a03);
                    s = _mm512_set1_ps(v[1]);
                    a10 = _mm512_fmadd_ps(s, x0, a10), a11 = _mm512_fmadd_ps(s, x1, a11);
                    a12 = _mm512_fmadd_ps(s, x2, a12), a13 = _mm512_fmadd_ps(s, x3, a13);
                    s = _mm512_set1_ps(v[2]);
                    a20 = _mm512_fmadd_ps(s, x0, a20), a21 = _mm512_fmadd_ps(s, x1, a21);
                    a22 = _mm512_fmadd_ps(s, x2, a22), a23 = _mm512_fmadd_ps(s, x3, a23);
                    s = _mm512_set1_ps(v[3]);
                    a30 = _mm512_fmadd_ps(s, x0, a30), a31 = _mm512_fmadd_ps(s, x1, a31);
                    a32 = _mm512_fmadd_ps(s, x2, a32), a33 = _mm512_fmadd_ps(s, x3, a33);
                }
            } else { /* the last tile, 1..3 vectors: only the first nv of each row's accumulators are kept */
                for (uint32_t j = jb; j < je; j++) {
                    const float *xr = xb + (int64_t)w->col[j] * ws, *v = w->val + (int64_t)j * 4;
                    __m512 x0 = _mm512_load_ps(xr), x1 = nv > 1 ? _mm512_load_ps(xr + 16) : x0,
                           x2 = nv > 2 ? _mm512_load_ps(xr + 32) : x0;
                    __m512 s = _mm512_set1_ps(v[0]);
                    a00 = _mm512_fmadd_ps(s, x0, a00), a01 = _mm512_fmadd_ps(s, x1, a01), a02 = _mm512_fmadd_ps(s, x2, a02);
                    s = _mm512_set1_ps(v[1]);
                    a10 = _mm512_fmadd_ps(s, x0, a10), a11 = _mm512_fmadd_ps(s, x1, a11), a12 = _mm512_fmadd_ps(s, x2, a12);
                    s = _mm512_set1_ps(v[2]);
                    a20 = _mm512_fmadd_ps(s, x0, a20), a21 = _mm512_fmadd_ps(s, x1, a21), a22 = _mm512_fmadd_ps(s, x2, a22);
                    s = _mm512_set1_ps(v[3]);
                    a30 = _mm512_fmadd_ps(s, x0, a30), a31 = _mm512_fmadd_ps(s, x1, a31), a32 = _mm512_fmadd_ps(s, x2, a32);
                }
            }
            _mm512_store_ps(t[0], a00), _mm512_store_ps(t[0] + 16, a01), _mm512_store_ps(t[0] + 32, a02);
            _mm512_store_ps(t[0] + 48, a03), _mm512_store_ps(t[1], a10), _mm512_store_ps(t[1] + 16, a11);
            _mm512_store_ps(t[1] + 32, a12), _mm512_store_ps(t[1] + 48, a13), _mm512_store_ps(t[2], a20);
            _mm512_store_ps(t[2] + 16, a21), _mm512_store_ps(t[2] + 32, a22), _mm512_store_ps(t[2] + 48, a23);
            _mm512_store_ps(t[3], a30), _mm512_store_ps(t[3] + 16, a31), _mm512_store_ps(t[3] + 32, a32);
            _mm512_store_ps(t[3] + 48, a33);
            for (int r = 0; r < 4 && i * 4 + r < N; r++)
                put_col(&o, y, N, i * 4 + r, m0, (M - m0 < TILE ? M - m0 : TILE), t[r], bias);
        }
    }
    ot_flush(&o, y, N);
}

/* BSR 16×16: block rows [i0, i1), tiles of 16 tokens × 16 channels (one accumulator per channel). */
AVX512 static void bsr16_avx512(float *y, const float *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                                const float *bias, int64_t i0, int64_t i1)
{
    const int64_t N = w->N;
    otile o;
    o.cnt = 0, o.mcnt = 0, o.avx = 1;
    float t[16] __attribute__((aligned(64)));
    for (int64_t m0 = 0; m0 < Mp; m0 += 16) {
        const int64_t t0 = m0 / TILE * TILE, ws = Mp - t0 >= TILE ? TILE : Mp - t0; /* tile-major xT */
        const float *xb = xT + t0 * (w->K + 16) + (m0 - t0);
        for (int64_t i = i0; i < i1; i++) {
            __m512 a[16];
            for (int r = 0; r < 16; r++) a[r] = _mm512_setzero_ps();
            for (uint32_t j = w->rowptr[i]; j < w->rowptr[i + 1]; j++) {
                const float *xr = xb + (int64_t)w->col[j] * 16 * ws, *v = w->val + (int64_t)j * 256;
                for (int c = 0; c < 16; c++) {
                    __m512 xc = _mm512_load_ps(xr + c * ws);
                    for (int r = 0; r < 16; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(v[c * 16 + r]), xc, a[r]);
                }
            }
            for (int r = 0; r < 16 && i * 16 + r < N; r++) {
                _mm512_store_ps(t, a[r]);
                put_col(&o, y, N, i * 16 + r, m0, (M - m0 < 16 ? M - m0 : 16), t, bias);
            }
        }
    }
    ot_flush(&o, y, N);
}

/* One token, CSR: panel by panel, rows inside (the storage order: the weights stream sequentially), four
 * scalar partial sums per row segment. A 16-lane masked gather per step measured 1.4x slower (segments
 * are short, ~13 nonzeros at 90% zeros, and a gather costs about a load per lane). */
AVX512 static void dot_csr_avx512(float *yr, const float *xr, const pare_sparse_weight *w, const float *bias, int64_t n0,
                                  int64_t n1)
{
    const int64_t N = w->N;
    for (int64_t n = n0; n < n1; n++) yr[n] = bias ? bias[n] : 0.0f;
    for (int64_t p = 0; p < w->npanel; p++) {
        const float *xp = xr + p * PARE_SP_PANEL;
        const uint32_t *rp = w->rowptr + p * (N + 1);
        for (int64_t n = n0; n < n1; n++) {
            const uint32_t e = rp[n + 1];
            uint32_t j = rp[n];
            if (j == e) continue;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            const uint8_t *c = w->pcol;
            const float *v = w->val;
            for (; j + 4 <= e; j += 4)
                s0 += v[j] * xp[c[j]], s1 += v[j + 1] * xp[c[j + 1]], s2 += v[j + 2] * xp[c[j + 2]],
                    s3 += v[j + 3] * xp[c[j + 3]];
            for (; j < e; j++) s0 += v[j] * xp[c[j]];
            yr[n] += (s0 + s1) + (s2 + s3);
        }
    }
}

/* One token, BSR: block rows [i0, i1). 4×1: four blocks per step (x gathered 4 times each); 16×16: a
 * column of the block (16 channels) times a broadcast x. */
AVX512 static void dot_bsr_avx512(float *yr, const float *xr, const pare_sparse_weight *w, const float *bias, int64_t i0,
                                  int64_t i1)
{
    const int64_t N = w->N, K = w->K;
    float t[16] __attribute__((aligned(64)));
    if (w->spec.br == 4) { /* a 4-lane FMA per block with x[k] broadcast, four blocks in flight (gathering x for
                              four blocks at once measured slower: a 16-lane gather costs ~16 loads) */
        for (int64_t i = i0; i < i1; i++) {
            __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            uint32_t j = w->rowptr[i];
            const uint32_t e = w->rowptr[i + 1];
            const float *v = w->val;
            const uint16_t *col = w->col;
            for (; j + 4 <= e; j += 4) {
                a0 = _mm_fmadd_ps(_mm_loadu_ps(v + (int64_t)j * 4), _mm_set1_ps(xr[col[j]]), a0);
                a1 = _mm_fmadd_ps(_mm_loadu_ps(v + (int64_t)j * 4 + 4), _mm_set1_ps(xr[col[j + 1]]), a1);
                a2 = _mm_fmadd_ps(_mm_loadu_ps(v + (int64_t)j * 4 + 8), _mm_set1_ps(xr[col[j + 2]]), a2);
                a3 = _mm_fmadd_ps(_mm_loadu_ps(v + (int64_t)j * 4 + 12), _mm_set1_ps(xr[col[j + 3]]), a3);
            }
            for (; j < e; j++) a0 = _mm_fmadd_ps(_mm_loadu_ps(v + (int64_t)j * 4), _mm_set1_ps(xr[col[j]]), a0);
            _mm_storeu_ps(t, _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)));
            for (int r = 0; r < 4 && i * 4 + r < N; r++) yr[i * 4 + r] = t[r] + (bias ? bias[i * 4 + r] : 0.0f);
        }
        return;
    }
    for (int64_t i = i0; i < i1; i++) {
        __m512 acc = _mm512_setzero_ps();
        for (uint32_t j = w->rowptr[i]; j < w->rowptr[i + 1]; j++) {
            const float *v = w->val + (int64_t)j * 256;
            int64_t k0 = (int64_t)w->col[j] * 16;
            for (int c = 0; c < 16 && k0 + c < K; c++)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(v + c * 16), _mm512_set1_ps(xr[k0 + c]), acc);
        }
        _mm512_store_ps(t, acc);
        for (int r = 0; r < 16 && i * 16 + r < N; r++) yr[i * 16 + r] = t[r] + (bias ? bias[i * 16 + r] : 0.0f);
    }
}

/* ====================================== portable ====================================== */

PARE_HOT static void rows_f32_c(float *y, const float *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                                const float *bias, int64_t n0, int64_t n1)
{
    const int64_t N = w->N;
    otile o;
    o.cnt = 0, o.mcnt = 0, o.avx = 0;
    float t[TILE];
    for (int64_t m0 = 0; m0 < Mp; m0 += TILE) {
        const int64_t width = Mp - m0 < TILE ? Mp - m0 : TILE;
        for (int64_t n = n0; n < n1; n++) {
            for (int64_t i = 0; i < TILE; i++) t[i] = 0;
            for (int64_t p = 0; p < w->npanel; p++) {
                int64_t b = w->rowptr[p * (N + 1) + n], e = w->rowptr[p * (N + 1) + n + 1];
                for (int64_t j = b; j < e; j++) {
                    const float *xr = xT + m0 + (p * PARE_SP_PANEL + w->pcol[j]) * Mp;
                    const float v = w->val[j];
                    if (width == TILE)
                        for (int i = 0; i < TILE; i++) t[i] += v * xr[i];
                    else
                        for (int64_t i = 0; i < width; i++) t[i] += v * xr[i];
                }
            }
            put_col(&o, y, N, n, m0, (M - m0 < TILE ? M - m0 : TILE), t, bias);
        }
    }
    ot_flush(&o, y, N);
}

PARE_HOT static void bsr_c(float *y, const float *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                           const float *bias, int64_t i0, int64_t i1)
{
    const int64_t N = w->N;
    otile o;
    o.cnt = 0, o.mcnt = 0, o.avx = 0;
    const int br = w->spec.br, bc = w->spec.bc;
    float t[16][16];
    for (int64_t m0 = 0; m0 < Mp; m0 += 16)
        for (int64_t i = i0; i < i1; i++) {
            memset(t, 0, sizeof t);
            for (uint32_t j = w->rowptr[i]; j < w->rowptr[i + 1]; j++)
                for (int c = 0; c < bc; c++) {
                    const float *xr = xT + m0 + ((int64_t)w->col[j] * bc + c) * Mp, *v = w->val + (int64_t)j * br * bc + c * br;
                    for (int r = 0; r < br; r++)
                        for (int q = 0; q < 16; q++) t[r][q] += v[r] * xr[q];
                }
            for (int r = 0; r < br && i * br + r < N; r++) put_col(&o, y, N, i * br + r, m0, (M - m0 < 16 ? M - m0 : 16), t[r], bias);
        }
    ot_flush(&o, y, N);
}

PARE_HOT static void rows_i8_c(float *y, const int32_t *xT, int64_t Mp, int64_t M, const pare_sparse_weight *w,
                               const float *sx, const float *bias, int64_t n0, int64_t n1)
{
    const int64_t N = w->N;
    otile o;
    o.cnt = 0, o.mcnt = 0, o.avx = 0;
    int32_t t[16];
    for (int64_t m0 = 0; m0 < Mp; m0 += 16)
        for (int64_t n = n0; n < n1; n++) {
            for (int i = 0; i < 16; i++) t[i] = 0;
            for (int64_t p = 0; p < w->npanel; p++)
                for (uint32_t j = w->rowptr[p * (N + 1) + n]; j < w->rowptr[p * (N + 1) + n + 1]; j++) {
                    const int32_t *xr = xT + m0 + (p * PARE_SP_PANEL + w->pcol[j]) * Mp;
                    const int32_t v = w->qval[j];
                    for (int i = 0; i < 16; i++) t[i] += v * xr[i];
                }
            int64_t cnt = M - m0 < 16 ? M - m0 : 16;
            float f[16];
            for (int64_t i = 0; i < cnt; i++) {
                float sc = sx[m0 + i] * w->scale[n];
                float v = (float)t[i] * sc;
                if (bias) v = v + bias[n];
                f[i] = v;
            }
            put_col(&o, y, N, n, m0, cnt, f, NULL);
        }
    ot_flush(&o, y, N);
}

/* N:M, portable: channel blocks [c0, c1), every token, on x in place; 16 channels' sums side by side (the
 * clones vectorize the r loop). */
PARE_HOT static void nm_c(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M,
                          int64_t c0, int64_t c1)
{
    const int64_t N = w->N, K = w->K;
    const int n = w->spec.n, m = w->spec.m;
    const int64_t per = K / m * n;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t t = 0; t < M; t++) {
            float s[PARE_SP_NM_CB] = {0};
            const float *xr = x + t * K;
            for (int64_t j = 0; j < per; j++) {
                const float *v = w->val + (c * per + j) * PARE_SP_NM_CB;
                const uint8_t *ps = w->pos + (c * per + j) * PARE_SP_NM_CB;
                const float *xg = xr + j / n * m;
                for (int r = 0; r < PARE_SP_NM_CB; r++) s[r] += v[r] * xg[ps[r]];
            }
            for (int r = 0; r < PARE_SP_NM_CB && c * PARE_SP_NM_CB + r < N; r++)
                y[t * N + c * PARE_SP_NM_CB + r] = s[r] + (bias ? bias[c * PARE_SP_NM_CB + r] : 0.0f);
        }
}

/* One token, any layout but CSR_I8, portable: the reference's loops on one token and a range of rows. */
static void dot_c(float *yr, const float *xr, const pare_sparse_weight *w, const float *bias, int64_t n0, int64_t n1)
{
    const int64_t N = w->N, K = w->K;
    if (w->spec.kind == PARE_SP_BSR) {
        const int br = w->spec.br, bc = w->spec.bc;
        for (int64_t i = n0; i < n1; i++) {
            float s[16] = {0};
            for (uint32_t j = w->rowptr[i]; j < w->rowptr[i + 1]; j++)
                for (int c = 0; c < bc; c++) {
                    int64_t k = (int64_t)w->col[j] * bc + c;
                    if (k < K)
                        for (int r = 0; r < br; r++) s[r] += w->val[(int64_t)j * br * bc + c * br + r] * xr[k];
                }
            for (int r = 0; r < br && i * br + r < N; r++) yr[i * br + r] = s[r] + (bias ? bias[i * br + r] : 0.0f);
        }
        return;
    }
    for (int64_t n = n0; n < n1; n++) {
        float s = 0;
        for (int64_t p = 0; p < w->npanel; p++)
            for (uint32_t j = w->rowptr[p * (N + 1) + n]; j < w->rowptr[p * (N + 1) + n + 1]; j++)
                s += w->val[j] * xr[p * PARE_SP_PANEL + w->pcol[j]];
        yr[n] = s + (bias ? bias[n] : 0.0f);
    }
}

static void dot_i8_c(float *yr, const int8_t *qx, float sx, const pare_sparse_weight *w, const float *bias, int64_t n0,
                     int64_t n1)
{
    const int64_t N = w->N;
    for (int64_t n = n0; n < n1; n++) {
        int32_t acc = 0;
        for (int64_t p = 0; p < w->npanel; p++)
            for (uint32_t j = w->rowptr[p * (N + 1) + n]; j < w->rowptr[p * (N + 1) + n + 1]; j++)
                acc += (int32_t)w->qval[j] * qx[p * PARE_SP_PANEL + w->pcol[j]];
        float sc = sx * w->scale[n];
        float v = (float)acc * sc;
        if (bias) v = v + bias[n];
        yr[n] = v;
    }
}

/* ====================================== dispatch ====================================== */

#define CHUNK_ROWS 192  /* tile paths: output channels per chunk (measured at 768x768 and 768x3072, M = 128) */

/* Units (output channels, or block rows of rows_per_unit channels) per chunk of the tile paths: CHUNK_ROWS
 * channels, fewer when that leaves a thread idle, always whole groups of 16 channels. A chunk runs every token
 * tile and panel over its rows, so each 32 KB panel of xT brought into L1 serves ~192 rows' nonzeros: with 64
 * chunks of 12 rows each panel came from L2 (K = 768) or L3 (K = 3072) for 12 rows, and the kernel ran 1.2x
 * (768x768) to 1.5x (768x3072) slower. */
static int64_t chunk_units(int64_t N, int rows_per_unit)
{
    int64_t nth = omp_get_max_threads(), rows = CHUNK_ROWS;
    if (nth > 1 && (N + nth - 1) / nth < rows) rows = (N + nth - 1) / nth;
    rows = (rows + 15) / 16 * 16;
    return rows / rows_per_unit;
}

pare_status pare_sparse_linear_fast_(float *y, const float *x, const pare_sparse_weight *w, const float *bias,
                                     int64_t M, void *workspace)
{
    const int64_t N = w->N, K = w->K, Mp = (M + 15) / 16 * 16, Kp = K + 16;
    const int avx = use_avx512();
    const int bsr = w->spec.kind == PARE_SP_BSR;
    const int64_t units = bsr ? (N + w->spec.br - 1) / w->spec.br : N; /* output rows or block rows */
    const int par = w->nnz * M >= PAR_MIN_WORK;
    char *p = align64(workspace);
    if (w->spec.kind == PARE_SP_CSR_I8) {
        int8_t *qx = (int8_t *)p;
        p = align64(p + M * K);
        float *sx = (float *)p;
        p = align64(p + sizeof(float) * (size_t)M);
        PARE_TRY(pare_quantize_rows_s8_checked(qx, sx, x, M, K));
        if (M < PARE_SP_TILE_MIN) {
            for (int64_t m = 0; m < M; m++) {
#pragma omp parallel for schedule(static) if (par)
                for (int64_t c = 0; c < 64; c++)
                    dot_i8_c(y + m * N, qx + m * K, sx[m], w, bias, N * c / 64, N * (c + 1) / 64);
            }
            return PARE_OK;
        }
        const int64_t cu = chunk_units(N, 1), nchunk = (units + cu - 1) / cu;
        if (avx) { /* float tiles on the integer values, one parallel region (csr_tiles: exact) */
            float *xT = (float *)p, *yacc = align64(xT + Kp * Mp);
#pragma omp parallel if (par)
            {
#pragma omp for schedule(static)
                for (int64_t k0 = 0; k0 < Kp; k0 += 16) transpose_kblock_i8f_avx512(xT, qx, M, K, Mp, Kp, k0);
#pragma omp for schedule(static)
                for (int64_t c = 0; c < nchunk; c++) {
                    int64_t a = c * cu, b = a + cu < units ? a + cu : units;
                    csr_i8f_avx512(y, xT, Mp, M, w, sx, bias, yacc, a, b);
                }
            }
            return PARE_OK;
        }
        int32_t *xT = (int32_t *)p;
        transpose_i8(xT, qx, M, K, Mp, Kp);
#pragma omp parallel for schedule(static) if (par)
        for (int64_t c = 0; c < nchunk; c++) {
            int64_t a = c * cu, b = a + cu < units ? a + cu : units;
            rows_i8_c(y, xT, Mp, M, w, sx, bias, a, b);
        }
        return PARE_OK;
    }
    if (w->spec.kind == PARE_SP_NM) { /* x in place, any M: parallel over blocks of 16 channels */
        const int64_t nb = (N + PARE_SP_NM_CB - 1) / PARE_SP_NM_CB;
#pragma omp parallel for schedule(static) if (par)
        for (int64_t c = 0; c < nb; c++) {
            if (avx) nm_avx512(y, x, w, bias, M, c, c + 1);
            else nm_c(y, x, w, bias, M, c, c + 1);
        }
        return PARE_OK;
    }
    if (M < PARE_SP_TILE_MIN) {
        for (int64_t m = 0; m < M; m++) {
#pragma omp parallel for schedule(static) if (par)
            for (int64_t c = 0; c < 64; c++) {
                int64_t a = units * c / 64, b = units * (c + 1) / 64;
                if (!avx) dot_c(y + m * N, x + m * K, w, bias, a, b);
                else if (bsr) dot_bsr_avx512(y + m * N, x + m * K, w, bias, a, b);
                else dot_csr_avx512(y + m * N, x + m * K, w, bias, a, b);
            }
        }
        return PARE_OK;
    }
    float *xT = (float *)p, *yacc = align64(xT + Kp * Mp);
    /* chunks of whole groups of 16 output channels, so each chunk's output columns leave through whole 16×16
     * transposes (12-row chunks flushed through the scalar path: 16% of the CSR kernel's time) */
    const int64_t cu = chunk_units(N, bsr ? w->spec.br : 1), nchunk = (units + cu - 1) / cu;
    if (!avx) transpose_f32(xT, x, M, K, Mp, Kp);
#pragma omp parallel if (par)
    {
        if (avx) {
#pragma omp for schedule(static)
            for (int64_t k0 = 0; k0 < Kp; k0 += 16) transpose_kblock_avx512(xT, x, M, K, Mp, Kp, k0);
        }
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nchunk; c++) {
            int64_t a = c * cu, b = a + cu < units ? a + cu : units;
            if (!avx) {
                if (bsr) bsr_c(y, xT, Mp, M, w, bias, a, b);
                else rows_f32_c(y, xT, Mp, M, w, bias, a, b);
            } else if (!bsr) csr_f32_avx512(y, xT, Mp, M, w, bias, yacc, a, b);
            else if (w->spec.br == 4) bsr4_avx512(y, xT, Mp, M, w, bias, a, b);
            else bsr16_avx512(y, xT, Mp, M, w, bias, a, b);
        }
    }
    return PARE_OK;
}
