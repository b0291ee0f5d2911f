/* wq_avx2.c — AVX2 kernels of the weight-only Linears (wq.h), the same tiles as wq_avx512.c on 8 lanes:
 * codes widened with vpmovzxbd and shifted (int3's third bit: the mask byte broadcast, shifted per lane by
 * vpsrlvd); binary flips the sign bit of x where the weight's bit is 0 and adds (no multiply), ternary adds
 * x under the P mask and subtracts it under M (masks from a broadcast byte compared with 1, 2, 4, …, 128);
 * W4A8 multiplies u8 codes by s8 activations with vpmaddubsw (pairs at most 2·15·127, no saturation) and
 * vpmaddwd by 1 into int32, reduced per group and corrected by 8·Σqx exactly as the VNNI kernel.
 *
 * f32 kinds in tiles of 4 rows × 2 tokens (8 accumulators of the 16 registers).
 *
 * Deliberately not here: AVX-VNNI (vpdpbusd on 256 bits), W4A8 multi-row tiles.
 *
 * Entry points (wq_internal.h): pare_wq_gemv_avx2_, pare_wq_panel_avx2_, pare_wq_w4a8_avx2_.
 */
#include <math.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/wq_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

T2 static INL __m256i load8u(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

/* lanes all-ones where bit l of byte b is set (l = lane) */
T2 static INL __m256i bitmask8(unsigned b)
{
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)b), bits), bits);
}

/* The 8 codes of elements k..k+7 (k a multiple of 8) as int32 lanes. */
T2 static INL __m256i dec8(const int kind, const uint8_t *row, int64_t k)
{
    if (kind == PARE_WQ_I8) return load8u(row + k);
    const int64_t c = k >> 6;
    const int r = (int)(k & 63), i = r >> 4, l0 = r & 15;
    const uint8_t *base = row + c * (kind == PARE_WQ_I2 ? 16 : 24);
    __m256i v = _mm256_and_si256(_mm256_srlv_epi32(load8u(base + l0), _mm256_set1_epi32(2 * i)), _mm256_set1_epi32(3));
    if (kind == PARE_WQ_I3) {
        const unsigned hb = base[16 + 2 * i + l0 / 8];
        v = _mm256_or_si256(v, _mm256_and_si256(bitmask8(hb), _mm256_set1_epi32(4)));
    }
    return v;
}

T2 static INL float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define NR 4 /* rows per tile */
#define MT 2 /* tokens per tile: 8 accumulators of the 16 registers */

/* the rows of a tile: rows past N repeat row N−1 (computed, not stored) */
static INL void tile_rows(const uint8_t **rp, int64_t *rn, const pare_wq_weight *w, int64_t n0)
{
    const int64_t rb = pare_wq_row_bytes(w);
    for (int r = 0; r < NR; r++) {
        rn[r] = n0 + r < w->N ? n0 + r : w->N - 1;
        rp[r] = w->qs + rn[r] * rb;
    }
}

/* y[m0..m0+mr) × [n0, n0+4): integer kinds */
T2 static INL void tile_int(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t m0,
                            const int mr, int64_t n0, const int kind)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const uint8_t *rp[NR];
    int64_t rn[NR];
    tile_rows(rp, rn, w, n0);
    const int mid = wq_mid((pare_wq_kind)kind);
    __m256 acc[NR][MT];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < NR; r++)
        _Pragma("GCC unroll 2")
        for (int t = 0; t < MT; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t j = 0; j < ng; j++) {
        float s[NR], sz[NR];
        _Pragma("GCC unroll 4")
        for (int r = 0; r < NR; r++) {
            s[r] = pare_f16_to_f32(w->scale[rn[r] * ng + j]);
            sz[r] = s[r] * (float)(w->zero ? w->zero[rn[r] * ng + j] : mid);
        }
        for (int64_t k = j * g; k < (j + 1) * g; k += 8) {
            __m256 wv[NR];
            _Pragma("GCC unroll 4")
            for (int r = 0; r < NR; r++)
                wv[r] = _mm256_fmsub_ps(_mm256_cvtepi32_ps(dec8(kind, rp[r], k)), _mm256_set1_ps(s[r]), _mm256_set1_ps(sz[r]));
            _Pragma("GCC unroll 2")
            for (int t = 0; t < mr; t++) {
                const __m256 xv = _mm256_loadu_ps(x + (m0 + t) * K + k);
                _Pragma("GCC unroll 4")
                for (int r = 0; r < NR; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < NR && n0 + r < N; r++) {
        const float b = bias ? bias[n0 + r] : 0.0f;
        for (int t = 0; t < mr; t++) y[(m0 + t) * N + n0 + r] = hsum8(acc[r][t]) + b;
    }
}

/* y[m0..m0+mr) × [n0, n0+4): binary (sign flips, adds) / ternary (masked adds and subtracts), α once */
T2 static INL void tile_sign(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t m0,
                             const int mr, int64_t n0, const int kind)
{
    const int64_t N = w->N, K = w->K;
    const uint8_t *rp[NR];
    int64_t rn[NR];
    tile_rows(rp, rn, w, n0);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256 acc[NR][MT];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < NR; r++)
        _Pragma("GCC unroll 2")
        for (int t = 0; t < MT; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) {
        __m256 p[NR], q[NR];
        const int h = (int)((k & 15) >> 3);
        _Pragma("GCC unroll 4")
        for (int r = 0; r < NR; r++) {
            if (kind == PARE_WQ_BIN) p[r] = _mm256_andnot_ps(_mm256_castsi256_ps(bitmask8(rp[r][k / 8])), sign), q[r] = p[r];
            else {
                const uint8_t *base = rp[r] + (k / 16) * 4;
                p[r] = _mm256_castsi256_ps(bitmask8(base[h])), q[r] = _mm256_castsi256_ps(bitmask8(base[2 + h]));
            }
        }
        _Pragma("GCC unroll 2")
        for (int t = 0; t < mr; t++) {
            const __m256 xv = _mm256_loadu_ps(x + (m0 + t) * K + k);
            _Pragma("GCC unroll 4")
            for (int r = 0; r < NR; r++) {
                if (kind == PARE_WQ_BIN) acc[r][t] = _mm256_add_ps(acc[r][t], _mm256_xor_ps(xv, p[r])); /* p: the flip */
                else acc[r][t] = _mm256_sub_ps(_mm256_add_ps(acc[r][t], _mm256_and_ps(xv, p[r])), _mm256_and_ps(xv, q[r]));
            }
        }
    }
    for (int r = 0; r < NR && n0 + r < N; r++) {
        const float a = pare_f16_to_f32(w->scale[n0 + r]), b = bias ? bias[n0 + r] : 0.0f;
        for (int t = 0; t < mr; t++) y[(m0 + t) * N + n0 + r] = a * hsum8(acc[r][t]) + b;
    }
}

T2 static INL void rows_all(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M, int64_t n0,
                            const int kind)
{
    const int sign = kind == PARE_WQ_BIN || kind == PARE_WQ_TER;
    int64_t m0 = 0;
    for (; m0 + MT <= M; m0 += MT)
        if (sign) tile_sign(y, x, w, bias, m0, MT, n0, kind);
        else tile_int(y, x, w, bias, m0, MT, n0, kind);
    if (m0 < M) {
        if (sign) tile_sign(y, x, w, bias, m0, 1, n0, kind);
        else tile_int(y, x, w, bias, m0, 1, n0, kind);
    }
}

#define WQ_GEMV_KIND(name, KIND)                                                                                      \
    T2 static void name(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)             \
    {                                                                                                                 \
        const int64_t nt = (w->N + NR - 1) / NR;                                                                      \
        _Pragma("omp parallel for schedule(static) if (M * w->N * w->K >= WQ_PAR_MIN_WORK)")                         \
        for (int64_t i = 0; i < nt; i++) rows_all(y, x, w, bias, M, i * NR, KIND);                                   \
    }
WQ_GEMV_KIND(gemv_i8, PARE_WQ_I8)
WQ_GEMV_KIND(gemv_i3, PARE_WQ_I3)
WQ_GEMV_KIND(gemv_i2, PARE_WQ_I2)
WQ_GEMV_KIND(gemv_bin, PARE_WQ_BIN)
WQ_GEMV_KIND(gemv_ter, PARE_WQ_TER)
#undef WQ_GEMV_KIND

void pare_wq_gemv_avx2_(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)
{
    switch (w->kind) {
    case PARE_WQ_I8: gemv_i8(y, x, w, bias, M); break;
    case PARE_WQ_I3: gemv_i3(y, x, w, bias, M); break;
    case PARE_WQ_I2: gemv_i2(y, x, w, bias, M); break;
    case PARE_WQ_BIN: gemv_bin(y, x, w, bias, M); break;
    case PARE_WQ_TER: gemv_ter(y, x, w, bias, M); break;
    default: break;
    }
}

T2 static INL void panel_row(float *dst, const pare_wq_weight *w, int64_t n, const int kind)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    const uint8_t *row = w->qs + n * pare_wq_row_bytes(w);
    if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) {
        const float a = pare_f16_to_f32(w->scale[n]);
        const __m256 pa = _mm256_set1_ps(a), na = _mm256_set1_ps(-a);
        for (int64_t k = 0; k < K; k += 8) {
            __m256 v;
            if (kind == PARE_WQ_BIN) v = _mm256_blendv_ps(na, pa, _mm256_castsi256_ps(bitmask8(row[k / 8])));
            else {
                const uint8_t *base = row + (k / 16) * 4;
                const int h = (int)((k & 15) >> 3);
                v = _mm256_or_ps(_mm256_and_ps(pa, _mm256_castsi256_ps(bitmask8(base[h]))),
                                 _mm256_and_ps(na, _mm256_castsi256_ps(bitmask8(base[2 + h]))));
            }
            _mm256_storeu_ps(dst + k, v);
        }
        return;
    }
    const int mid = wq_mid((pare_wq_kind)kind);
    for (int64_t j = 0; j < ng; j++) {
        const float s = pare_f16_to_f32(w->scale[n * ng + j]);
        const __m256 vs = _mm256_set1_ps(s), vsz = _mm256_set1_ps(s * (float)(w->zero ? w->zero[n * ng + j] : mid));
        for (int64_t k = j * g; k < (j + 1) * g; k += 8)
            _mm256_storeu_ps(dst + k, _mm256_fmsub_ps(_mm256_cvtepi32_ps(dec8(kind, row, k)), vs, vsz));
    }
}

T2 void pare_wq_panel_avx2_(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst + r * w->K;
        switch (w->kind) {
        case PARE_WQ_I8: panel_row(d, w, n0 + r, PARE_WQ_I8); break;
        case PARE_WQ_I3: panel_row(d, w, n0 + r, PARE_WQ_I3); break;
        case PARE_WQ_I2: panel_row(d, w, n0 + r, PARE_WQ_I2); break;
        case PARE_WQ_BIN: panel_row(d, w, n0 + r, PARE_WQ_BIN); break;
        case PARE_WQ_TER: panel_row(d, w, n0 + r, PARE_WQ_TER); break;
        default: break;
        }
    }
}

/* ---- W4A8 ---- */

T2 static INL int32_t hsum8i(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* int32 lanes of Σ u·qx over 32 elements: u (u8 codes) × q (s8) */
T2 static INL __m256i dot32(__m256i u, const int8_t *q)
{
    const __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)(const void *)q));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

T2 static INL void w4a8_tile(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t m0,
                             const int mr, int64_t n)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const uint8_t *row = w->qs + n * (K / 2);
    const uint16_t *sc = w->scale + n * ng;
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    /* groups are walked 32 elements at a time; a group of 32 is one half of a chunk */
    for (int64_t j = 0; j < ng; j++) {
        __m256i is[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int64_t k = j * g; k < (j + 1) * g; k += 32) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(row + (k / 64) * 32));
            const __m256i u = (k & 32) ? _mm256_and_si256(_mm256_srli_epi16(b, 4), lo4) : _mm256_and_si256(b, lo4);
            for (int t = 0; t < mr; t++) is[t] = _mm256_add_epi32(is[t], dot32(u, a->qx + (m0 + t) * K + k));
        }
        const float s = pare_f16_to_f32(sc[j]);
        for (int t = 0; t < mr; t++)
            acc[t] = fmaf(s, (float)(hsum8i(is[t]) - 8 * a->xs[(m0 + t) * ng + j]), acc[t]);
    }
    const float b = bias ? bias[n] : 0.0f;
    for (int t = 0; t < mr; t++) y[(m0 + t) * N + n] = fmaf(acc[t], a->sx[m0 + t], b);
}

/* Row n for every token. Not inlined into the OpenMP loop below: clang outlines a parallel region into a function
 * without the target attribute, and AVX2 code inlined there fails in its backend (clang 14). */
T2 __attribute__((noinline)) static void w4a8_row(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias,
                                                  int64_t M, int64_t n)
{
    int64_t m0 = 0;
    for (; m0 + 4 <= M; m0 += 4) w4a8_tile(y, a, w, bias, m0, 4, n);
    switch (M - m0) {
    case 1: w4a8_tile(y, a, w, bias, m0, 1, n); break;
    case 2: w4a8_tile(y, a, w, bias, m0, 2, n); break;
    case 3: w4a8_tile(y, a, w, bias, m0, 3, n); break;
    default: break;
    }
}

void pare_wq_w4a8_avx2_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N;
#pragma omp parallel for schedule(static) if (M * N * w->K >= WQ_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++) w4a8_row(y, a, w, bias, M, n);
}

#else
void pare_wq_gemv_avx2_(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)x, (void)w, (void)bias, (void)M;
}
void pare_wq_panel_avx2_(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows)
{
    (void)dst, (void)w, (void)n0, (void)rows;
}
void pare_wq_w4a8_avx2_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)a, (void)w, (void)bias, (void)M;
}
#endif
