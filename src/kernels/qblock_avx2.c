/* qblock_avx2.c — AVX2 (+FMA, F16C) kernels of the block-quantized Linear (qblock.h), for CPUs without
 * AVX-512 (or with AVX-512 but no VNNI, for the int8 kinds). Selected at run time by qblock.c.
 *
 * int4_group, weight-only: two 32-byte loads hold a 128-element chunk (qblock.h's layout); shifted by 4·i
 * and masked, their lanes are 16 consecutive nibbles u, converted to float and dequantized exactly by
 * fmadd(u, s, −o·s) = s·(u − o), then FMA'd with x. Tiles of 4 rows with the next tile prefetched; tokens
 * one at a time (the 4 rows stay in L1). About 10 instructions per 16 weights: compute-bound at ~9 GB/s of
 * int4 on Zen 5 with AVX2 only (1.6× the f32 GEMV there, docs/kernels-qblock.md).
 *
 * Int8 kinds, on the canonical activations (qx in natural order, d_x per block / sx per token): llama.cpp's
 * sign trick — vpmaddubsw(|qx|, sign(q_w, qx)) adds pairs of u8·s8 products in int16 without saturating
 * (|q_w|, |qx| <= 127: 2·127·127 < 2^15), vpmaddwd with ones widens to int32. Q4_1 multiplies the nibbles
 * (u8, <= 15) by qx directly. Per block (Q kinds): cvt, then FMA with d_w·d_x; int8_group accumulates int32
 * over the group first. The float sums differ from the reference (qblock.c: dot_act) only in order.
 *
 * Deliberately not here: AVX-VNNI (VEX vpdpbusd), which would help the int8 kinds on the few CPUs that
 * have it without AVX512-VNNI.
 *
 * Entry points (qblock_internal.h): pare_qb_i4g_gemv_avx2_, pare_qb_i4g_panel_avx2_, pare_qb_gemm_avx2_.
 */
#include <string.h>

#include "kernels/qblock_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

T2 static INL float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- int4_group ---- */

#define I4_NR 4

/* One token (x: K) against rows [n0, n0+4) (rows past N computed on row N−1); out[r] = Σ_k x·Ŵ.
 * Weights are dequantized exactly as fmadd(u, s, −o·s) = s·(u − o). With 16 ymm registers only the
 * accumulators stay in registers: the nibbles are shifted straight from memory (L1) and the group's
 * s, −o·s broadcast from memory. */
T2 static void i4g_rows4(float *out, const float *x, const pare_qb_weight *w, int64_t n0)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g, kc = K / 128 * 128;
    int64_t row[I4_NR];
    const uint8_t *qr[I4_NR];
#pragma GCC unroll 8
    for (int r = 0; r < I4_NR; r++) {
        row[r] = imin(n0 + r, N - 1);
        qr[r] = w->qs + row[r] * (K / 2);
    }
    const uint8_t *pf = w->qs + imin(n0 + I4_NR, N - I4_NR > 0 ? N - I4_NR : 0) * (K / 2);
    const __m256i m15 = _mm256_set1_epi32(15);
    __m256 acc[I4_NR], acc2[I4_NR];
    float sv[I4_NR], nosv[I4_NR];
    int64_t gi = -1, next = 0;
#pragma GCC unroll 8
    for (int r = 0; r < I4_NR; r++) acc[r] = _mm256_setzero_ps(), acc2[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k < kc; k += 128) {
#pragma GCC unroll 8
        for (int r = 0; r < I4_NR; r++) _mm_prefetch((const char *)(pf + r * (K / 2) + k / 2), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            if (k + 16 * i == next) {
                gi++, next += g;
                for (int r = 0; r < I4_NR; r++) {
                    sv[r] = _cvtsh_ss(w->scale[row[r] * ng + gi]);
                    nosv[r] = -(w->zero ? (float)w->zero[row[r] * ng + gi] : 8.0f) * sv[r];
                }
            }
            const __m256 x0 = _mm256_loadu_ps(x + k + 16 * i), x1 = _mm256_loadu_ps(x + k + 16 * i + 8);
#pragma GCC unroll 8
            for (int r = 0; r < I4_NR; r++) {
                const __m256i *v = (const __m256i *)(const void *)(qr[r] + k / 2);
                const __m256 s = _mm256_broadcast_ss(&sv[r]), nos = _mm256_broadcast_ss(&nosv[r]);
                __m256i u0 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256(v), 4 * i), m15);
                __m256i u1 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256(v + 1), 4 * i), m15);
                acc[r] = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(u0), s, nos), x0, acc[r]);
                acc2[r] = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(u1), s, nos), x1, acc2[r]);
            }
        }
    }
    for (; k < K; k += 32) { /* 32-runs: bytes j | j+16 */
        if (k == next) {
            gi++, next += g;
            for (int r = 0; r < I4_NR; r++) {
                sv[r] = _cvtsh_ss(w->scale[row[r] * ng + gi]);
                nosv[r] = -(w->zero ? (float)w->zero[row[r] * ng + gi] : 8.0f) * sv[r];
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < I4_NR; r++) {
            const __m256 s = _mm256_broadcast_ss(&sv[r]), nos = _mm256_broadcast_ss(&nosv[r]);
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(qr[r] + k / 2));
            __m256i v0 = _mm256_cvtepu8_epi32(b), v1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
            __m256i u[4] = {_mm256_and_si256(v0, m15), _mm256_and_si256(v1, m15), _mm256_srli_epi32(v0, 4),
                            _mm256_srli_epi32(v1, 4)};
#pragma GCC unroll 8
            for (int q = 0; q < 4; q++)
                acc[r] = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(u[q]), s, nos),
                                         _mm256_loadu_ps(x + k + 8 * q), acc[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < I4_NR; r++) out[r] = hsum8(_mm256_add_ps(acc[r], acc2[r]));
}

void pare_qb_i4g_gemv_avx2_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, nblk = (N + I4_NR - 1) / I4_NR;
#pragma omp parallel for schedule(static) if (M * N * w->K >= QB_PAR_MIN_WORK && nblk > 1)
    for (int64_t b = 0; b < nblk; b++)
        for (int64_t m = 0; m < M; m++) {
            float out[I4_NR];
            i4g_rows4(out, x + m * w->K, w, b * I4_NR);
            for (int r = 0; r < I4_NR && b * I4_NR + r < N; r++)
                y[m * N + b * I4_NR + r] = bias ? out[r] + bias[b * I4_NR + r] : out[r];
        }
}

T2 void pare_qb_i4g_panel_avx2_(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows)
{
    const int64_t K = w->K, g = w->group, ng = K / g, kc = K / 128 * 128;
    const __m256i m15 = _mm256_set1_epi32(15);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t row = n0 + r;
        const uint8_t *qr = w->qs + row * (K / 2);
        float *d = dst + r * K;
        __m256 s = _mm256_setzero_ps(), nos = s;
        int64_t gi = -1, next = 0, k = 0;
#define I4_PANEL_GROUP(kk)                                                                     \
    if ((kk) == next) {                                                                        \
        gi++, next += g;                                                                       \
        float sv = _cvtsh_ss(w->scale[row * ng + gi]);                                         \
        float ov = w->zero ? (float)w->zero[row * ng + gi] : 8.0f;                             \
        s = _mm256_set1_ps(sv), nos = _mm256_set1_ps(-ov * sv);                                \
    }
        for (; k < kc; k += 128) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(const void *)(qr + k / 2));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(const void *)(qr + k / 2 + 32));
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                I4_PANEL_GROUP(k + 16 * i)
                __m256i u0 = _mm256_and_si256(_mm256_srli_epi32(v0, 4 * i), m15);
                __m256i u1 = _mm256_and_si256(_mm256_srli_epi32(v1, 4 * i), m15);
                _mm256_storeu_ps(d + k + 16 * i, _mm256_fmadd_ps(_mm256_cvtepi32_ps(u0), s, nos));
                _mm256_storeu_ps(d + k + 16 * i + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(u1), s, nos));
            }
        }
        for (; k < K; k += 32) {
            I4_PANEL_GROUP(k)
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(qr + k / 2));
            __m256i v0 = _mm256_cvtepu8_epi32(b), v1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
            _mm256_storeu_ps(d + k, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, m15)), s, nos));
            _mm256_storeu_ps(d + k + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, m15)), s, nos));
            _mm256_storeu_ps(d + k + 16, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), s, nos));
            _mm256_storeu_ps(d + k + 24, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4)), s, nos));
        }
#undef I4_PANEL_GROUP
    }
}

/* ---- int8 kinds ---- */

#define A_MR 2
#define A_NR 2

/* 32 weights of block / step k of a row as s8 (Q8_0, I8G, Q4_0: u − 8) or u8 nibbles (Q4_1). */
T2 static INL __m256i load_w32(const uint8_t *qr, int64_t k, pare_qb_kind kind)
{
    if (kind == PARE_QB_I8G || kind == PARE_QB_Q8_0) return _mm256_loadu_si256((const __m256i *)(const void *)(qr + k));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(qr + k / 2));
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), lo4), _mm_and_si128(b, lo4));
    return kind == PARE_QB_Q4_0 ? _mm256_sub_epi8(u, _mm256_set1_epi8(8)) : u;
}

/* 8 int32 lanes of Σ w·x over 32 bytes (see the top of the file). */
T2 static INL __m256i dot32(__m256i wv, __m256i xv, __m256i ax, pare_qb_kind kind)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p =
        kind == PARE_QB_Q4_1 ? _mm256_maddubs_epi16(wv, xv) : _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xv));
    return _mm256_madd_epi16(p, ones);
}

T2 static INL void act_tile(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t m0,
                            const int mr, int64_t n0, const pare_qb_kind kind)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g, rb = qb_row_bytes(w);
    const uint8_t *qr[A_NR];
    const uint16_t *sr[A_NR];
#pragma GCC unroll 8
    for (int r = 0; r < A_NR; r++) {
        int64_t row = imin(n0 + r, N - 1);
        qr[r] = w->qs + row * rb;
        sr[r] = w->scale + row * ng;
    }
    __m256 acc[A_MR][A_NR];
    float macc[A_MR][A_NR]; /* Q4_1: Σ m_w·s_x */
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int r = 0; r < A_NR; r++) acc[i][r] = _mm256_setzero_ps(), macc[i][r] = 0.0f;
    for (int64_t gi = 0; gi < ng; gi++) {
        __m256i iacc[A_MR][A_NR];
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
            for (int r = 0; r < A_NR; r++) iacc[i][r] = _mm256_setzero_si256();
        for (int64_t k = gi * g; k < gi * g + g; k += 32) {
            __m256i xv[A_MR], ax[A_MR];
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                xv[i] = _mm256_loadu_si256((const __m256i *)(const void *)(a->q + (m0 + i) * K + k));
                ax[i] = _mm256_sign_epi8(xv[i], xv[i]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < A_NR; r++) {
                __m256i wv = load_w32(qr[r], k, kind);
#pragma GCC unroll 8
                for (int i = 0; i < mr; i++) iacc[i][r] = _mm256_add_epi32(iacc[i][r], dot32(wv, xv[i], ax[i], kind));
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < A_NR; r++) {
            float sw = _cvtsh_ss(sr[r][gi]);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                /* Q kinds: g = 32, the block's d_w·d_x as in the reference; I8G: s_w now, sx at the end */
                float s = kind == PARE_QB_I8G ? sw : sw * a->d[(m0 + i) * ng + gi];
                acc[i][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[i][r]), _mm256_set1_ps(s), acc[i][r]);
                if (kind == PARE_QB_Q4_1)
                    macc[i][r] += _cvtsh_ss(w->min[imin(n0 + r, N - 1) * ng + gi]) * a->s[(m0 + i) * ng + gi];
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
        for (int r = 0; r < A_NR && n0 + r < N; r++) {
            float v = hsum8(acc[i][r]) + macc[i][r];
            if (kind == PARE_QB_I8G) v *= a->d[m0 + i];
            y[(m0 + i) * N + n0 + r] = bias ? v + bias[n0 + r] : v;
        }
}

typedef void (*act_tile_fn)(float *, const qb_act *, const pare_qb_weight *, const float *, int64_t, int64_t);

#define A_TILE(name, MR, KIND)                                                                                    \
    T2 static void name(float *y, const qb_act *a, const pare_qb_weight *w, const float *b, int64_t m, int64_t n) \
    {                                                                                                             \
        act_tile(y, a, w, b, m, MR, n, KIND);                                                                     \
    }
A_TILE(i8g_1, 1, PARE_QB_I8G)
A_TILE(i8g_2, 2, PARE_QB_I8G)
A_TILE(q80_1, 1, PARE_QB_Q8_0)
A_TILE(q80_2, 2, PARE_QB_Q8_0)
A_TILE(q40_1, 1, PARE_QB_Q4_0)
A_TILE(q40_2, 2, PARE_QB_Q4_0)
A_TILE(q41_1, 1, PARE_QB_Q4_1)
A_TILE(q41_2, 2, PARE_QB_Q4_1)

#define ROWS_PER_CHUNK 64

void pare_qb_gemm_avx2_(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M)
{
    static const act_tile_fn tiles[PARE_QB_COUNT][2] = {
        [PARE_QB_I8G] = {i8g_1, i8g_2},
        [PARE_QB_Q8_0] = {q80_1, q80_2},
        [PARE_QB_Q4_0] = {q40_1, q40_2},
        [PARE_QB_Q4_1] = {q41_1, q41_2},
    };
    const act_tile_fn *t = tiles[w->kind];
    const int64_t N = w->N, nchunk = (N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
#pragma omp parallel for schedule(static) if (M * N * w->K >= QB_PAR_MIN_WORK && nchunk > 1)
    for (int64_t ch = 0; ch < nchunk; ch++) {
        const int64_t nend = imin(N, (ch + 1) * ROWS_PER_CHUNK);
        for (int64_t m0 = 0; m0 < M; m0 += A_MR)
            for (int64_t n0 = ch * ROWS_PER_CHUNK; n0 < nend; n0 += A_NR)
                t[imin(A_MR, M - m0) - 1](y, a, w, bias, m0, n0);
    }
}

#else /* not x86: never selected */

void pare_qb_i4g_gemv_avx2_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)x, (void)w, (void)bias, (void)M;
}
void pare_qb_i4g_panel_avx2_(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows)
{
    (void)dst, (void)w, (void)n0, (void)rows;
}
void pare_qb_gemm_avx2_(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)a, (void)w, (void)bias, (void)M;
}
#endif
