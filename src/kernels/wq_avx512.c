/* wq_avx512.c — AVX-512 kernels of the weight-only Linears (wq.h): GEMV tiles and panel dequantization for the
 * f32-activation kinds (int8 / int3 / int2 groups, binary, ternary), and W4A8's VNNI product. Selected at run
 * time by wq.c (pare_wq_isa_for_); compiled with target attributes only, never -march.
 *
 * f32 kinds. Tiles of one row × up to 4 tokens: 16 codes per step are widened to 32-bit lanes (int2 / int3: a
 * 16-byte load shifted right by 2i; int3's third bit is a 16-bit mask word added as +4 under the mask), turned
 * into s·u − s·z by one FMA with the group's constants (exact: fp16 s times a small integer), and FMA'd into
 * each token's accumulator. Binary and ternary do no multiplication until the end: the stored bit words ARE the
 * masks of vaddps{k} / vsubps{k} (binary: add where the bit is 1, subtract elsewhere; ternary: add under P,
 * subtract under M), and α multiplies the row's sum once.
 *
 * W4A8. vpdpbusd multiplies u8 by s8 in groups of 4 into int32 lanes: the weights are the u8 side (codes u = q + 8
 * as stored, 32 bytes unpacked by an and and a shift into 64 codes in natural order) and the activations the s8
 * side. Per group the int32 lanes are reduced exactly and 8·Σqx (wq.c, per token and group) subtracted, so each
 * group sum is the exact Σ q·qx; the float arithmetic after it is wq.h's, operation for operation. groups of 32:
 * each 64-byte step holds two groups, reduced as the two halves of the register.
 *
 * Deliberately not here: multi-row tiles (x stays in L1; one decode per 16 weights is shared by the tokens),
 * prefetching, AMX.
 *
 * Entry points (wq_internal.h): pare_wq_gemv_avx512_, pare_wq_panel_avx512_, pare_wq_w4a8_vnni_.
 */
#include <math.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/wq_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define T512F __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INL __attribute__((always_inline)) inline

static inline uint16_t ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* The 16 codes of elements k..k+15 (k a multiple of 16) of a row, as int32 lanes. */
T512F static INL __m512i dec16(const int kind, const uint8_t *row, int64_t k)
{
    if (kind == PARE_WQ_I8) return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(row + k)));
    const int64_t c = k >> 6;
    const int i = (int)((k & 63) >> 4);
    const uint8_t *base = row + c * (kind == PARE_WQ_I2 ? 16 : 24);
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)base));
    v = _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_set1_epi32(2 * i)), _mm512_set1_epi32(3));
    if (kind == PARE_WQ_I3) v = _mm512_mask_add_epi32(v, (__mmask16)ld16(base + 16 + 2 * i), v, _mm512_set1_epi32(4));
    return v;
}

T512F static INL float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

/* y[m0..m0+mr) of row n: integer kinds */
T512F static INL void tile_int(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t m0,
                               const int mr, int64_t n, const int kind)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const uint8_t *row = w->qs + n * pare_wq_row_bytes(w);
    const int mid = wq_mid((pare_wq_kind)kind);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t j = 0; j < ng; j++) {
        const float s = pare_f16_to_f32(w->scale[n * ng + j]);
        const float sz = s * (float)(w->zero ? w->zero[n * ng + j] : mid);
        const __m512 vs = _mm512_set1_ps(s), vsz = _mm512_set1_ps(sz);
        for (int64_t k = j * g; k < (j + 1) * g; k += 16) {
            const __m512 wv = _mm512_fmsub_ps(_mm512_cvtepi32_ps(dec16(kind, row, k)), vs, vsz);
            for (int t = 0; t < mr; t++)
                acc[t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + (m0 + t) * K + k), acc[t]);
        }
    }
    const float b = bias ? bias[n] : 0.0f;
    for (int t = 0; t < mr; t++) y[(m0 + t) * N + n] = hsum(acc[t]) + b;
}

/* y[m0..m0+mr) of row n: binary / ternary, adds and subtracts under the stored masks, α once */
T512F static INL void tile_sign(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t m0,
                                const int mr, int64_t n, const int kind)
{
    const int64_t N = w->N, K = w->K;
    const uint8_t *row = w->qs + n * pare_wq_row_bytes(w);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t k = 0; k < K; k += 16) {
        __mmask16 p, q;
        if (kind == PARE_WQ_BIN) p = (__mmask16)ld16(row + k / 8), q = (__mmask16)~p;
        else p = (__mmask16)ld16(row + k / 4), q = (__mmask16)ld16(row + k / 4 + 2);
        for (int t = 0; t < mr; t++) {
            const __m512 xv = _mm512_loadu_ps(x + (m0 + t) * K + k);
            acc[t] = _mm512_mask_add_ps(acc[t], p, acc[t], xv);
            acc[t] = _mm512_mask_sub_ps(acc[t], q, acc[t], xv);
        }
    }
    const float a = pare_f16_to_f32(w->scale[n]), b = bias ? bias[n] : 0.0f;
    for (int t = 0; t < mr; t++) y[(m0 + t) * N + n] = a * hsum(acc[t]) + b;
}

T512F static INL void row_all(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M, int64_t n,
                              const int kind)
{
    int64_t m0 = 0;
    for (; m0 + 4 <= M; m0 += 4)
        if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) tile_sign(y, x, w, bias, m0, 4, n, kind);
        else tile_int(y, x, w, bias, m0, 4, n, kind);
    const int r = (int)(M - m0);
#define WQ_REST(R)                                                                                                    \
    if (r == R) {                                                                                                     \
        if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) tile_sign(y, x, w, bias, m0, R, n, kind);                    \
        else tile_int(y, x, w, bias, m0, R, n, kind);                                                                 \
    }
    WQ_REST(1) WQ_REST(2) WQ_REST(3)
#undef WQ_REST
}

#define WQ_GEMV_KIND(name, KIND)                                                                                      \
    T512F static void name(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)          \
    {                                                                                                                 \
        const int64_t N = w->N;                                                                                       \
        _Pragma("omp parallel for schedule(static) if (M * N * w->K >= WQ_PAR_MIN_WORK)")                            \
        for (int64_t n = 0; n < N; n++) row_all(y, x, w, bias, M, n, KIND);                                          \
    }
WQ_GEMV_KIND(gemv_i8, PARE_WQ_I8)
WQ_GEMV_KIND(gemv_i3, PARE_WQ_I3)
WQ_GEMV_KIND(gemv_i2, PARE_WQ_I2)
WQ_GEMV_KIND(gemv_bin, PARE_WQ_BIN)
WQ_GEMV_KIND(gemv_ter, PARE_WQ_TER)
#undef WQ_GEMV_KIND

void pare_wq_gemv_avx512_(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)
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

T512F static INL void panel_row(float *dst, const pare_wq_weight *w, int64_t n, const int kind)
{
    const int64_t K = w->K, g = w->group, ng = K / g;
    const uint8_t *row = w->qs + n * pare_wq_row_bytes(w);
    if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) {
        const float a = pare_f16_to_f32(w->scale[n]);
        const __m512 pa = _mm512_set1_ps(a), na = _mm512_set1_ps(-a);
        for (int64_t k = 0; k < K; k += 16) {
            __m512 v;
            if (kind == PARE_WQ_BIN) v = _mm512_mask_blend_ps((__mmask16)ld16(row + k / 8), na, pa);
            else v = _mm512_mask_mov_ps(_mm512_maskz_mov_ps((__mmask16)ld16(row + k / 4), pa), (__mmask16)ld16(row + k / 4 + 2), na);
            _mm512_storeu_ps(dst + k, v);
        }
        return;
    }
    const int mid = wq_mid((pare_wq_kind)kind);
    for (int64_t j = 0; j < ng; j++) {
        const float s = pare_f16_to_f32(w->scale[n * ng + j]);
        const __m512 vs = _mm512_set1_ps(s), vsz = _mm512_set1_ps(s * (float)(w->zero ? w->zero[n * ng + j] : mid));
        for (int64_t k = j * g; k < (j + 1) * g; k += 16)
            _mm512_storeu_ps(dst + k, _mm512_fmsub_ps(_mm512_cvtepi32_ps(dec16(kind, row, k)), vs, vsz));
    }
}

T512F void pare_wq_panel_avx512_(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows)
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

/* 64 codes of a 64-element chunk (32 bytes) in natural order, as u8. */
T512 static INL __m512i w4_unpack(const uint8_t *p)
{
    const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)p), lo4 = _mm256_set1_epi8(0x0f);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(b, lo4)),
                              _mm256_and_si256(_mm256_srli_epi16(b, 4), lo4), 1);
}

T512 static INL int32_t hsum256i(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

T512 static INL void w4a8_tile(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t m0,
                               const int mr, int64_t n)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const uint8_t *row = w->qs + n * (K / 2);
    const uint16_t *sc = w->scale + n * ng;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (g == 32) {
        for (int64_t c = 0; c < K / 64; c++) {
            const __m512i u = w4_unpack(row + c * 32);
            const float s0 = pare_f16_to_f32(sc[2 * c]), s1 = pare_f16_to_f32(sc[2 * c + 1]);
            for (int t = 0; t < mr; t++) {
                const int64_t m = m0 + t;
                const __m512i v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u,
                                                      _mm512_loadu_si512((const void *)(a->qx + m * K + c * 64)));
                const int32_t S0 = hsum256i(_mm512_castsi512_si256(v)) - 8 * a->xs[m * ng + 2 * c];
                const int32_t S1 = hsum256i(_mm512_extracti64x4_epi64(v, 1)) - 8 * a->xs[m * ng + 2 * c + 1];
                acc[t] = fmaf(s0, (float)S0, acc[t]);
                acc[t] = fmaf(s1, (float)S1, acc[t]);
            }
        }
    } else {
        for (int64_t j = 0; j < ng; j++) {
            __m512i is[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
            for (int64_t k = j * g; k < (j + 1) * g; k += 64) {
                const __m512i u = w4_unpack(row + k / 2);
                for (int t = 0; t < mr; t++)
                    is[t] = _mm512_dpbusd_epi32(is[t], u, _mm512_loadu_si512((const void *)(a->qx + (m0 + t) * K + k)));
            }
            const float s = pare_f16_to_f32(sc[j]);
            for (int t = 0; t < mr; t++)
                acc[t] = fmaf(s, (float)(_mm512_reduce_add_epi32(is[t]) - 8 * a->xs[(m0 + t) * ng + j]), acc[t]);
        }
    }
    const float b = bias ? bias[n] : 0.0f;
    for (int t = 0; t < mr; t++) y[(m0 + t) * N + n] = fmaf(acc[t], a->sx[m0 + t], b);
}

T512 void pare_wq_w4a8_vnni_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N;
#pragma omp parallel for schedule(static) if (M * N * w->K >= WQ_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++) {
        int64_t m0 = 0;
        for (; m0 + 4 <= M; m0 += 4) w4a8_tile(y, a, w, bias, m0, 4, n);
        switch (M - m0) {
        case 1: w4a8_tile(y, a, w, bias, m0, 1, n); break;
        case 2: w4a8_tile(y, a, w, bias, m0, 2, n); break;
        case 3: w4a8_tile(y, a, w, bias, m0, 3, n); break;
        default: break;
        }
    }
}

#else /* not x86: never selected (pare_wq_isa_for_ answers scalar) */
void pare_wq_gemv_avx512_(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)x, (void)w, (void)bias, (void)M;
}
void pare_wq_panel_avx512_(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows)
{
    (void)dst, (void)w, (void)n0, (void)rows;
}
void pare_wq_w4a8_vnni_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M)
{
    (void)y, (void)a, (void)w, (void)bias, (void)M;
}
#endif
