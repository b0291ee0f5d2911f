/* qblock_avx512.c — AVX-512 kernels of the block-quantized Linear (qblock.h): int4 weight-only GEMV and
 * panel dequantization, the per-block / per-token activation quantizers, and the VNNI (vpdpbusd) tiles of
 * the int8 / Q8_0 / Q4_0 / Q4_1 products. Selected at run time by qblock.c (pare_qb_isa_for_); compiled
 * with target attributes only, never -march.
 *
 * int4_group, weight-only (f32 activations). Per group and row a 16-entry table T[u] = s·(u − z) (exact in
 * f32, one FMA) is built once; a 64-byte load holds 128 elements in int4_group's chunk layout (qblock.h),
 * and vpermps on it shifted right by 0, 4, …, 28 looks up 16 consecutive weights each (vpermps ignores
 * the index bits above the low 4): 128 dequantized weights for 1 load, 7 shifts and 8 shuffles, then one
 * FMA per 16 with x. The shuffle port is the limit (~1.6 vpermps per cycle measured on Zen 5), which is why
 * the layout avoids a widening vpmovzxbd per 16 bytes. Tiles of 4 rows × up to 4 tokens share every load
 * of x and of the nibbles; the next tile's rows are prefetched. The same unpacking writes f32 panels for
 * the M > 4 path (pare_sgemm).
 *
 * Int8 kinds. vpdpbusd multiplies u8 by s8, adding groups of 4 products into int32 lanes. The weights are
 * the u8 side — Q4 nibbles u = q + 8 (Q4_0) or q (Q4_1) as stored, int8 weights as q ^ 0x80 = q + 128 —
 * and the activations the s8 side. The offset (8 or 128) times the sum of each lane's activations is
 * subtracted lane by lane — the accumulation starts from −c·Σ4(qx) (Q kinds) or −128·Σ(lane's qx over the
 * group) is added at the group's end (int8_group), both computed once per token by the quantizer
 * (qblock_internal.h, the VNNI layout). So every int32 lane holds its exact partial dot product and the
 * float sums only differ in order from the reference (qblock.c: dot_act).
 *   Q kinds: two blocks per 512-bit step; per (token, row, pair): vpdpbusd, cvt, d_w·d_x (lane-mapped
 *   scales), FMA; Q4_1 adds m_w·s_x with one FMA per 16 blocks. Tiles of 4 tokens × 4 rows.
 *   int8_group: int32 accumulation over the whole group, then cvt and one FMA with the group scale; the
 *   token scale at the end. Tiles of 4 tokens × 2 rows (int and float accumulators: 16 registers).
 * Rows of W are split over the OpenMP threads in contiguous chunks; within a chunk, tiles run token block
 * by token block, so the chunk's weights stay in L2 and the tokens' data in L1.
 *
 * Deliberately not here: software prefetch, non-temporal loads, AMX, bf16 / fp16 arithmetic, repacking W
 * into tile-interleaved layouts (llama.cpp's "q4_0_8x8"): the stored layout is the only layout.
 *
 * Entry points (qblock_internal.h): pare_qb_i4g_gemv_avx512_, pare_qb_i4g_panel_avx512_, pare_qb_act_vnni_,
 * pare_qb_gemm_vnni_.
 */
#include <math.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/qblock_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define T512F __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- int4_group, f32 activations ---- */

#define I4_NR 4

/* Scales s and offsets o·s (o = zero point, or 8) of 16 groups from gb of a row, as f32 (o·s is exact). */
T512F static INL void i4g_scales(float *sc, float *os, const pare_qb_weight *w, int64_t row, int64_t gb, int64_t ng)
{
    const int64_t nb = ng - gb < 16 ? ng - gb : 16;
    const __mmask16 m = (__mmask16)((1u << nb) - 1u);
    __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w->scale + row * ng + gb));
    __m512 o = w->zero ? _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, w->zero + row * ng + gb)))
                       : _mm512_set1_ps(8.0f);
    _mm512_storeu_ps(sc, s);
    _mm512_storeu_ps(os, _mm512_mul_ps(o, s));
}

/* T[u] = s·u − o·s = s·(u − o), exact (the FMA rounds once, and the result is representable). */
T512F static INL __m512 i4g_table(const float *sc, const float *os, int64_t j)
{
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_fmsub_ps(iota, _mm512_set1_ps(sc[j]), _mm512_set1_ps(os[j]));
}

/* y[m0..m0+mr) × [n0, n0+4) (rows past N computed on row N−1, not stored). Groups are walked in blocks of
 * 16 (one fp16 → f32 conversion per block and row); a 16-element slice never straddles a group. */
T512F static INL void i4g_tile(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t m0,
                               const int mr, int64_t n0, const int g128)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g, kc = K / 128 * 128;
    int64_t row[I4_NR];
    const uint8_t *qr[I4_NR];
#pragma GCC unroll 4
    for (int r = 0; r < I4_NR; r++) {
        row[r] = imin(n0 + r, N - 1);
        qr[r] = w->qs + row[r] * (K / 2);
    }
    const float *xm[4];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) xm[i] = x + (m0 + i) * K;
    /* the next tile's rows, fetched one tile ahead: the hardware prefetchers do not follow 4 short
     * interleaved row streams that restart every tile (9 GB/s from DRAM without, 20+ with; see the doc) */
    const int64_t pn = imin(n0 + I4_NR, N - I4_NR > 0 ? N - I4_NR : 0);
    const uint8_t *pf = w->qs + pn * (K / 2);
    __m512 acc[4][I4_NR], acc2[I4_NR];
#pragma GCC unroll 4
    for (int r = 0; r < I4_NR; r++) {
        acc2[r] = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) acc[i][r] = _mm512_setzero_ps();
    }
    for (int64_t gb = 0; gb < ng; gb += 16) {
        float sc[I4_NR][16], os[I4_NR][16];
#pragma GCC unroll 4
        for (int r = 0; r < I4_NR; r++) {
            _mm_prefetch((const char *)(w->scale + (pn + r) * ng + gb), _MM_HINT_T0);
            if (w->zero) _mm_prefetch((const char *)(w->zero + (pn + r) * ng + gb), _MM_HINT_T0);
            i4g_scales(sc[r], os[r], w, row[r], gb, ng);
        }
        const int64_t kb = gb * g, ke = imin(K, (gb + 16) * g);
        int64_t j = 0, next = kb + g; /* group gb + j covers [next − g, next) */
        __m512 tab[I4_NR];
#pragma GCC unroll 4
        for (int r = 0; r < I4_NR; r++) tab[r] = i4g_table(sc[r], os[r], 0);
        int64_t k = kb;
        for (; k < imin(ke, kc); k += 128) { /* whole chunks: one 64-byte load per row, 8 lookups */
            __m512i v[I4_NR];
#pragma GCC unroll 4
            for (int r = 0; r < I4_NR; r++) {
                _mm_prefetch((const char *)(pf + r * (K / 2) + k / 2), _MM_HINT_T0);
                v[r] = _mm512_loadu_si512(qr[r] + k / 2);
            }
            if (g128) { /* groups of 128·n: one table per chunk at most */
                if (k == next) {
                    j++, next += g;
#pragma GCC unroll 4
                    for (int r = 0; r < I4_NR; r++) tab[r] = i4g_table(sc[r], os[r], j);
                }
            }
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                if (!g128 && k + 16 * i == next) {
                    j++, next += g;
#pragma GCC unroll 4
                    for (int r = 0; r < I4_NR; r++) tab[r] = i4g_table(sc[r], os[r], j);
                }
#pragma GCC unroll 4
                for (int r = 0; r < I4_NR; r++) {
                    __m512 wv = _mm512_permutexvar_ps(i ? _mm512_srli_epi32(v[r], 4 * i) : v[r], tab[r]);
                    if (mr == 1) { /* two chains per row: one token leaves the FMA latency exposed otherwise */
                        if (i & 1) acc2[r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xm[0] + k + 16 * i), acc2[r]);
                        else acc[0][r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xm[0] + k + 16 * i), acc[0][r]);
                    } else {
#pragma GCC unroll 4
                        for (int t = 0; t < mr; t++)
                            acc[t][r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xm[t] + k + 16 * i), acc[t][r]);
                    }
                }
            }
        }
        for (; k < ke; k += 32) { /* the last K mod 128 elements: 32-runs, 16 bytes widened to 16 lanes */
            if (k == next) {
                j++, next += g;
#pragma GCC unroll 4
                for (int r = 0; r < I4_NR; r++) tab[r] = i4g_table(sc[r], os[r], j);
            }
#pragma GCC unroll 4
            for (int r = 0; r < I4_NR; r++) {
                __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(qr[r] + k / 2)));
                __m512 wl = _mm512_permutexvar_ps(v, tab[r]);
                __m512 wh = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), tab[r]);
#pragma GCC unroll 4
                for (int t = 0; t < mr; t++) {
                    acc[t][r] = _mm512_fmadd_ps(wl, _mm512_loadu_ps(xm[t] + k), acc[t][r]);
                    acc[t][r] = _mm512_fmadd_ps(wh, _mm512_loadu_ps(xm[t] + k + 16), acc[t][r]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
        for (int r = 0; r < I4_NR && n0 + r < N; r++) {
            float v = _mm512_reduce_add_ps(mr == 1 ? _mm512_add_ps(acc[0][r], acc2[r]) : acc[i][r]);
            y[(m0 + i) * N + n0 + r] = bias ? v + bias[n0 + r] : v;
        }
}

#define I4_TILE(name, MR, G128)                                                                                   \
    T512F static void name(float *y, const float *x, const pare_qb_weight *w, const float *b, int64_t m, int64_t n) \
    {                                                                                                             \
        i4g_tile(y, x, w, b, m, MR, n, G128);                                                                     \
    }
I4_TILE(i4g_1, 1, 0)
I4_TILE(i4g_2, 2, 0)
I4_TILE(i4g_3, 3, 0)
I4_TILE(i4g_4, 4, 0)
I4_TILE(i4g_1_g128, 1, 1)
I4_TILE(i4g_2_g128, 2, 1)
I4_TILE(i4g_3_g128, 3, 1)
I4_TILE(i4g_4_g128, 4, 1)

void pare_qb_i4g_gemv_avx512_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    typedef void (*tile_fn)(float *, const float *, const pare_qb_weight *, const float *, int64_t, int64_t);
    static const tile_fn tiles[2][4] = {{i4g_1, i4g_2, i4g_3, i4g_4}, {i4g_1_g128, i4g_2_g128, i4g_3_g128, i4g_4_g128}};
    const tile_fn *t = tiles[w->group % 128 == 0];
    const int64_t N = w->N, nblk = (N + I4_NR - 1) / I4_NR;
#pragma omp parallel for schedule(static) if (M * N * w->K >= QB_PAR_MIN_WORK && nblk > 1)
    for (int64_t b = 0; b < nblk; b++)
        for (int64_t m0 = 0; m0 < M; m0 += 4) t[imin(4, M - m0) - 1](y, x, w, bias, m0, b * I4_NR);
}

T512F void pare_qb_i4g_panel_avx512_(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows)
{
    const int64_t K = w->K, g = w->group, ng = K / g, kc = K / 128 * 128;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *qr = w->qs + (n0 + r) * (K / 2);
        float *d = dst + r * K;
        for (int64_t gb = 0; gb < ng; gb += 16) {
            float sc[16], os[16];
            i4g_scales(sc, os, w, n0 + r, gb, ng);
            const int64_t kb = gb * g, ke = imin(K, (gb + 16) * g);
            int64_t k = kb, j = 0, next = kb + g;
            __m512 tab = i4g_table(sc, os, 0);
            for (; k < imin(ke, kc); k += 128) {
                __m512i v = _mm512_loadu_si512(qr + k / 2);
#pragma GCC unroll 4
                for (int i = 0; i < 8; i++) {
                    if (k + 16 * i == next) j++, next += g, tab = i4g_table(sc, os, j);
                    _mm512_storeu_ps(d + k + 16 * i, _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4 * i), tab));
                }
            }
            for (; k < ke; k += 32) {
                if (k == next) j++, next += g, tab = i4g_table(sc, os, j);
                __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(qr + k / 2)));
                _mm512_storeu_ps(d + k, _mm512_permutexvar_ps(v, tab));
                _mm512_storeu_ps(d + k + 16, _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), tab));
            }
        }
    }
}

/* ---- activation quantizers (VNNI layout, qblock_internal.h) ---- */

/* Max over lanes of |x| as float bits (>= 0x7f800000: NaN or Inf somewhere). */
T512 static INL uint32_t absmax_bits2(__m512 a, __m512 b)
{
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    __m512i t =
        _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(a), m), _mm512_and_si512(_mm512_castps_si512(b), m));
    return (uint32_t)_mm512_reduce_max_epu32(t);
}

/* roundf on 16 lanes (half away from zero), exactly: t = trunc(v), v − t is exact, add ±1 when |v − t| >= ½. */
T512 static INL __m512i roundf_epi32(__m512 v)
{
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512i one = _mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)),
                                  _mm512_castps_si512(_mm512_set1_ps(1.0f)));
    return _mm512_cvtps_epi32(_mm512_mask_add_ps(t, up, t, _mm512_castsi512_ps(one)));
}

/* One token of a Q kind into its records (and s16 for Q4_1). 0 on success, 1 as act_row_canon (qblock.c),
 * whose arithmetic this reproduces bit for bit (llama.cpp's quantize_row_q8_0_ref / _q8_1_ref). */
T512 static int act_row_q(uint8_t *rec, float *s16, int64_t s16n, const float *x, const pare_qb_weight *w)
{
    const int64_t nb = w->K / 32, npair = (nb + 1) / 2;
    const int q4 = w->kind != PARE_QB_Q8_0;
    const int c = w->kind == PARE_QB_Q8_0 ? 128 : w->kind == PARE_QB_Q4_0 ? 8 : 0;
    for (int64_t p = 0; p < npair; p++) {
        uint8_t *rc = rec + p * QB_REC_BYTES;
        float dl[16];
        memset(rc, 0, 64);
        for (int h = 0; h < 2; h++) {
            int64_t b = 2 * p + h;
            float dx = 0.0f;
            if (b < nb) {
                __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
                uint32_t mx = absmax_bits2(v0, v1);
                if (mx >= 0x7f800000u) return 1;
                float amax;
                memcpy(&amax, &mx, sizeof amax);
                const float dd = amax / ((1 << 7) - 1);
                float id = dd ? 1.0f / dd : 0.0f;
                if (!isfinite(id)) id = 0.0f;
                uint16_t hd = pare_f32_to_f16(dd);
                if ((hd & 0x7c00u) == 0x7c00u) return 1;
                dx = pare_f16_to_f32(hd);
                __m512 vid = _mm512_set1_ps(id);
                __m512i i0 = roundf_epi32(_mm512_mul_ps(v0, vid)), i1 = roundf_epi32(_mm512_mul_ps(v1, vid));
                if (s16) {
                    int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
                    uint16_t hs = pare_f32_to_f16((float)sum * dd);
                    if ((hs & 0x7c00u) == 0x7c00u) return 1;
                    s16[b] = pare_f16_to_f32(hs);
                }
                /* Q8_0: block h at bytes 32h; Q4: its elements 0-15 at 16h, 16-31 at 32 + 16h */
                _mm_storeu_si128((__m128i *)(void *)(rc + (q4 ? 16 * h : 32 * h)), _mm512_cvtepi32_epi8(i0));
                _mm_storeu_si128((__m128i *)(void *)(rc + (q4 ? 32 + 16 * h : 32 * h + 16)), _mm512_cvtepi32_epi8(i1));
            }
            for (int l = 0; l < 16; l++)
                if ((q4 ? (l >> 2) & 1 : l >> 3) == h) dl[l] = dx;
        }
        _mm512_storeu_ps(rc + 64, _mm512_loadu_ps(dl));
        __m512i corr = _mm512_setzero_si512();
        if (c)
            corr = _mm512_sub_epi32(corr, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)c),
                                                              _mm512_loadu_si512(rc)));
        _mm512_storeu_si512(rc + 128, corr);
    }
    if (s16)
        for (int64_t b = nb; b < s16n; b++) s16[b] = 0.0f;
    return 0;
}

/* One token of int8_group: q (K), *sx, corr (K/group vectors of 16 int32). As act_row_canon, bit for bit. */
T512 static int act_row_i8g(int8_t *q, float *sx, int32_t *corr, const float *x, const pare_qb_weight *w)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    __m512i mx = _mm512_setzero_si512();
    for (int64_t k = 0; k < K; k += 16)
        mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + k)), m));
    uint32_t mb = (uint32_t)_mm512_reduce_max_epu32(mx);
    if (mb >= 0x7f800000u) return 1;
    float amax;
    memcpy(&amax, &mb, sizeof amax);
    float inv = 127.0f / amax;
    if (!(amax > 0.0f) || !isfinite(inv)) inv = 0.0f;
    *sx = amax / 127.0f;
    const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int64_t k = 0; k < K; k += 16) {
        __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + k), vinv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        _mm_storeu_si128((__m128i *)(void *)(q + k), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
    }
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    for (int64_t gi = 0; gi < ng; gi++) {
        __m512i acc = _mm512_setzero_si512();
        int64_t k = gi * g, end = k + g;
        for (; k + 64 <= end; k += 64) acc = _mm512_dpbusd_epi32(acc, c80, _mm512_loadu_si512(q + k));
        if (k < end) acc = _mm512_dpbusd_epi32(acc, c80, _mm512_maskz_loadu_epi8(0xffffffffull, q + k));
        _mm512_storeu_si512(corr + gi * 16, _mm512_sub_epi32(_mm512_setzero_si512(), acc));
    }
    return 0;
}

int64_t pare_qb_act_vnni_(qb_act *a, const float *x, const pare_qb_weight *w, int64_t M)
{
    const int64_t K = w->K, ng = K / w->group;
    int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (M * K >= QB_PAR_MIN_WORK / 4 && M > 1)
    for (int64_t m = 0; m < M; m++) {
        int e = w->kind == PARE_QB_I8G
                    ? act_row_i8g(a->q + m * K, a->d + m, a->corr + m * ng * 16, x + m * K, w)
                    : act_row_q(a->rec + m * a->rec_stride, a->s16 ? a->s16 + m * a->s16_stride : NULL, a->s16_stride,
                                x + m * K, w);
        if (e && m < bad) bad = m;
    }
    return bad;
}

/* ---- Q kinds: VNNI tiles ---- */

#define Q_NR 4
#define Q_MR 4

/* One pair of blocks (p; pc = p's index in its chunk of 8) of tokens × rows into acc. full = 0: the last,
 * odd block alone (its partner's bytes are not loaded). */
T512 static INL void q_pair(__m512 acc[Q_MR][Q_NR], const uint8_t *const *qr, const uint8_t *pf, int64_t rb,
                            const __m512 *dw16, const uint8_t *const *rec, int64_t p, int64_t pc, const int mr,
                            const int full, const pare_qb_kind kind)
{
    const __m512i shifts = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0), lo4 = _mm512_set1_epi8(0x0f),
                  x80 = _mm512_set1_epi8((char)0x80);
    /* lane -> block of the pair (0 or 1), offset to the pair's place among the chunk's 16 scales */
    const __m512i pidx = kind == PARE_QB_Q8_0 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                                              : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    const __m512i sidx = _mm512_add_epi32(pidx, _mm512_set1_epi32((int)(2 * pc)));
#pragma GCC unroll 4
    for (int r = 0; r < Q_NR; r++) {
        __m512i wu;
        if (kind == PARE_QB_Q8_0 || !(p & 1))
            _mm_prefetch((const char *)(pf + r * rb + p * (kind == PARE_QB_Q8_0 ? 64 : 32)), _MM_HINT_T0);
        if (kind == PARE_QB_Q8_0) {
            __m512i wz =
                full ? _mm512_loadu_si512(qr[r] + p * 64) : _mm512_maskz_loadu_epi8(0xffffffffull, qr[r] + p * 64);
            wu = _mm512_xor_si512(wz, x80);
        } else {
            __m256i b = full ? _mm256_loadu_si256((const __m256i *)(const void *)(qr[r] + p * 32))
                             : _mm256_maskz_loadu_epi8(0xffffu, qr[r] + p * 32);
            wu = _mm512_and_si512(_mm512_srlv_epi64(_mm512_broadcast_i64x4(b), shifts), lo4);
        }
        const __m512 dw = _mm512_permutexvar_ps(sidx, dw16[r]);
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            const uint8_t *rc = rec[i] + p * QB_REC_BYTES;
            /* An opaque copy of the pointer per row: the tokens' records stay memory operands of vpdpbusd /
             * vmulps, re-read for every row, instead of being hoisted into 12 registers next to the 16
             * accumulators (GCC then spilled the accumulators: 2× slower). */
            __asm__ volatile("" : "+r"(rc));
            __m512i init = kind == PARE_QB_Q4_1 ? _mm512_setzero_si512() : _mm512_loadu_si512(rc + 128);
            __m512i dot = _mm512_dpbusd_epi32(init, wu, _mm512_loadu_si512(rc));
            __m512 sc = _mm512_mul_ps(dw, _mm512_loadu_ps((const float *)(const void *)(rc + 64)));
            acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[i][r]);
        }
    }
}

/* y[m0..m0+mr) × [n0, n0+4) for kind (a compile-time constant after inlining). */
T512 static INL void q_tile(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t m0,
                            const int mr, int64_t n0, const pare_qb_kind kind)
{
    const int64_t N = w->N, K = w->K, nb = K / 32, npair = (nb + 1) / 2, nfull = nb / 2;
    const int64_t rb = kind == PARE_QB_Q8_0 ? K : K / 2;
    const uint8_t *qr[Q_NR];
    const uint16_t *sr[Q_NR], *mnr[Q_NR];
#pragma GCC unroll 4
    for (int r = 0; r < Q_NR; r++) {
        int64_t row = imin(n0 + r, N - 1);
        qr[r] = w->qs + row * rb;
        sr[r] = w->scale + row * nb;
        mnr[r] = kind == PARE_QB_Q4_1 ? w->min + row * nb : NULL;
    }
    /* the next tile's rows, one tile ahead (as i4g_tile) */
    const int64_t pn = imin(n0 + Q_NR, N - Q_NR > 0 ? N - Q_NR : 0);
    const uint8_t *pf = w->qs + pn * rb;
    const uint16_t *psr = w->scale + pn * nb, *pmn = kind == PARE_QB_Q4_1 ? w->min + pn * nb : NULL;
    const uint8_t *rec[Q_MR];
    const float *s16[Q_MR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        rec[i] = a->rec + (m0 + i) * a->rec_stride;
        s16[i] = kind == PARE_QB_Q4_1 ? a->s16 + (m0 + i) * a->s16_stride : NULL;
    }
    __m512 acc[Q_MR][Q_NR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int r = 0; r < Q_NR; r++) acc[i][r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < npair; c += 8) { /* 8 pairs = 16 blocks: one vector of scales per row */
        const int64_t b0 = 2 * c, nbc = imin(16, nb - b0);
        const __mmask16 bm = (__mmask16)((1u << nbc) - 1u);
        __m512 dw16[Q_NR];
#pragma GCC unroll 4
        for (int r = 0; r < Q_NR; r++) {
            _mm_prefetch((const char *)(psr + r * nb + b0), _MM_HINT_T0);
            if (kind == PARE_QB_Q4_1) _mm_prefetch((const char *)(pmn + r * nb + b0), _MM_HINT_T0);
            dw16[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(bm, sr[r] + b0));
        }
        const int64_t pend = imin(c + 8, nfull);
        for (int64_t p = c; p < pend; p++) q_pair(acc, qr, pf, rb, dw16, rec, p, p - c, mr, 1, kind);
        if (nfull < npair && nfull >= c && nfull < c + 8)
            q_pair(acc, qr, pf, rb, dw16, rec, nfull, nfull - c, mr, 0, kind);
        if (kind == PARE_QB_Q4_1)
#pragma GCC unroll 4
            for (int r = 0; r < Q_NR; r++) {
                __m512 mv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(bm, mnr[r] + b0));
#pragma GCC unroll 4
                for (int i = 0; i < mr; i++) acc[i][r] = _mm512_fmadd_ps(mv, _mm512_loadu_ps(s16[i] + b0), acc[i][r]);
            }
    }
    for (int i = 0; i < mr; i++)
        for (int r = 0; r < Q_NR && n0 + r < N; r++) {
            float v = _mm512_reduce_add_ps(acc[i][r]);
            y[(m0 + i) * N + n0 + r] = bias ? v + bias[n0 + r] : v;
        }
}

typedef void (*act_tile_fn)(float *, const qb_act *, const pare_qb_weight *, const float *, int64_t, int64_t);

#define Q_TILE(name, MR, KIND)                                                                                      \
    T512 static void name(float *y, const qb_act *a, const pare_qb_weight *w, const float *b, int64_t m, int64_t n) \
    {                                                                                                               \
        q_tile(y, a, w, b, m, MR, n, KIND);                                                                         \
    }
Q_TILE(q80_1, 1, PARE_QB_Q8_0)
Q_TILE(q80_2, 2, PARE_QB_Q8_0)
Q_TILE(q80_3, 3, PARE_QB_Q8_0)
Q_TILE(q80_4, 4, PARE_QB_Q8_0)
Q_TILE(q40_1, 1, PARE_QB_Q4_0)
Q_TILE(q40_2, 2, PARE_QB_Q4_0)
Q_TILE(q40_3, 3, PARE_QB_Q4_0)
Q_TILE(q40_4, 4, PARE_QB_Q4_0)
Q_TILE(q41_1, 1, PARE_QB_Q4_1)
Q_TILE(q41_2, 2, PARE_QB_Q4_1)
Q_TILE(q41_3, 3, PARE_QB_Q4_1)
Q_TILE(q41_4, 4, PARE_QB_Q4_1)

/* ---- int8_group: VNNI tiles ---- */

#define I8_NR 2
#define I8_MR 4

T512 static INL void i8g_tile(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t m0,
                              const int mr, int64_t n0)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const int8_t *qr[I8_NR];
    const uint16_t *sr[I8_NR];
#pragma GCC unroll 4
    for (int r = 0; r < I8_NR; r++) {
        int64_t row = imin(n0 + r, N - 1);
        qr[r] = (const int8_t *)w->qs + row * K;
        sr[r] = w->scale + row * ng;
    }
    const int64_t pn = imin(n0 + I8_NR, N - I8_NR > 0 ? N - I8_NR : 0);
    const int8_t *pf = (const int8_t *)w->qs + pn * K;
    const int8_t *xq[I8_MR];
    const int32_t *cr[I8_MR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        xq[i] = a->q + (m0 + i) * K;
        cr[i] = a->corr + (m0 + i) * ng * 16;
    }
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    __m512 facc[I8_MR][I8_NR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int r = 0; r < I8_NR; r++) facc[i][r] = _mm512_setzero_ps();
    for (int64_t gi = 0; gi < ng; gi++) {
        __m512i iacc[I8_MR][I8_NR];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int r = 0; r < I8_NR; r++) iacc[i][r] = _mm512_setzero_si512(); /* the offset is added below */
        int64_t k = gi * g;
        const int64_t end = k + g;
        if (!(gi & 31))
#pragma GCC unroll 2
            for (int r = 0; r < I8_NR; r++) _mm_prefetch((const char *)(w->scale + (pn + r) * ng + gi), _MM_HINT_T0);
        for (; k + 64 <= end; k += 64) {
#pragma GCC unroll 2
            for (int r = 0; r < I8_NR; r++) {
                _mm_prefetch((const char *)(pf + r * K + k), _MM_HINT_T0);
                __m512i wu = _mm512_xor_si512(_mm512_loadu_si512(qr[r] + k), x80);
#pragma GCC unroll 4
                for (int i = 0; i < mr; i++)
                    iacc[i][r] = _mm512_dpbusd_epi32(iacc[i][r], wu, _mm512_loadu_si512(xq[i] + k));
            }
        }
        if (k < end) /* a group of 32·odd ends with half a step: x's upper half 0 */
#pragma GCC unroll 4
            for (int r = 0; r < I8_NR; r++) {
                __m512i wu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(0xffffffffull, qr[r] + k), x80);
#pragma GCC unroll 4
                for (int i = 0; i < mr; i++)
                    iacc[i][r] = _mm512_dpbusd_epi32(iacc[i][r], wu, _mm512_maskz_loadu_epi8(0xffffffffull, xq[i] + k));
            }
#pragma GCC unroll 4
        for (int r = 0; r < I8_NR; r++) {
            __m512 s = _mm512_set1_ps(_cvtsh_ss(sr[r][gi]));
#pragma GCC unroll 4
            for (int i = 0; i < mr; i++) {
                /* − 128·Σ(lane's qx): the lane now holds its exact partial dot product */
                __m512i d = _mm512_add_epi32(iacc[i][r], _mm512_loadu_si512(cr[i] + gi * 16));
                facc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, facc[i][r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
        for (int r = 0; r < I8_NR && n0 + r < N; r++) {
            float v = _mm512_reduce_add_ps(facc[i][r]) * a->d[m0 + i];
            y[(m0 + i) * N + n0 + r] = bias ? v + bias[n0 + r] : v;
        }
}

#define I8_TILE(name, MR)                                                                                           \
    T512 static void name(float *y, const qb_act *a, const pare_qb_weight *w, const float *b, int64_t m, int64_t n) \
    {                                                                                                               \
        i8g_tile(y, a, w, b, m, MR, n);                                                                             \
    }
I8_TILE(i8g_1, 1)
I8_TILE(i8g_2, 2)
I8_TILE(i8g_3, 3)
I8_TILE(i8g_4, 4)

/* Rows per chunk of work (contiguous per thread; a chunk's weights stay in L2 across the token blocks). */
#define ROWS_PER_CHUNK 64

void pare_qb_gemm_vnni_(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M)
{
    static const act_tile_fn tiles[PARE_QB_COUNT][4] = {
        [PARE_QB_I8G] = {i8g_1, i8g_2, i8g_3, i8g_4},
        [PARE_QB_Q8_0] = {q80_1, q80_2, q80_3, q80_4},
        [PARE_QB_Q4_0] = {q40_1, q40_2, q40_3, q40_4},
        [PARE_QB_Q4_1] = {q41_1, q41_2, q41_3, q41_4},
    };
    const act_tile_fn *t = tiles[w->kind];
    const int64_t N = w->N, nr = w->kind == PARE_QB_I8G ? I8_NR : Q_NR;
    const int64_t nchunk = (N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
#pragma omp parallel for schedule(static) if (M * N * w->K >= QB_PAR_MIN_WORK && nchunk > 1)
    for (int64_t ch = 0; ch < nchunk; ch++) {
        const int64_t nend = imin(N, (ch + 1) * ROWS_PER_CHUNK);
        for (int64_t m0 = 0; m0 < M; m0 += 4)
            for (int64_t n0 = ch * ROWS_PER_CHUNK; n0 < nend; n0 += nr) t[imin(4, M - m0) - 1](y, a, w, bias, m0, n0);
    }
}

#else /* not x86: never selected (pare_qb_isa_for_ returns QB_ISA_SCALAR) */

void pare_qb_i4g_gemv_avx512_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)x, (void)w, (void)bias, (void)M;
}
void pare_qb_i4g_panel_avx512_(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows)
{
    (void)dst, (void)w, (void)n0, (void)rows;
}
int64_t pare_qb_act_vnni_(qb_act *a, const float *x, const pare_qb_weight *w, int64_t M)
{
    (void)a, (void)x, (void)w;
    return M;
}
void pare_qb_gemm_vnni_(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)a, (void)w, (void)bias, (void)M;
}
#endif
