/* wq_avx512.c — AVX-512 kernels of the weight-only Linears (wq.h): GEMV tiles and panel dequantization for the
 * f32-activation kinds (int8 / int3 / int2 groups, binary, ternary), and W4A8's VNNI product. Selected at run
 * time by wq.c (pare_wq_isa_for_); compiled with target attributes only, never -march.
 *
 * f32 kinds. Tiles of 4 rows × up to 4 tokens (16 accumulators, 16 independent FMA chains): 16 codes per step are widened to 32-bit lanes (int2 / int3: a
 * 16-byte load shifted right by 2i; int3's third bit is a 16-bit mask word added as +4 under the mask), turned
 * into s·u − s·z by one FMA with the group's constants (exact: fp16 s times a small integer), and FMA'd into
 * each token's accumulator. Binary and ternary do no multiplication until the end: the stored bit words ARE the
 * masks of vaddps{k} / vsubps{k} (binary: add where the bit is 1, subtract elsewhere; ternary: add under P,
 * subtract under M), and α multiplies the row's sum once.
 *
 * W4A8. vpdpbusd multiplies u8 by s8 in groups of 4 into int32 lanes: the weights are the u8 side (codes u = q + 8
 * as stored, 32 bytes unpacked by an and and a shift into 64 codes in natural order) and the activations the s8
 * side. Per group the int32 lanes are reduced exactly and 8·Σqx (wq.c, per token and group) subtracted, so each
 * group sum is the exact Σ q·qx; the float arithmetic after it is wq.h's, operation for operation (fmaf per token
 * in the lanes of a 4-wide vfmadd). Groups of 32: each 64-byte step holds two groups; the codes of the other half
 * are masked to 0. Tiles of 4 rows × 4 tokens; per group and token the 4 rows' sums are reduced together into
 * one 4-lane vector. With more than 4 tokens a row tile's codes are unpacked once into a per-thread buffer.
 *
 * Deliberately not here: prefetching, AMX, an own GEMM micro-kernel for large M (panels go to pare_sgemm).
 *
 * Entry points (wq_internal.h): pare_wq_gemv_avx512_, pare_wq_panel_avx512_, pare_wq_w4a8_vnni_.
 */
#include <math.h>
#include <stdlib.h>
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

#define NR 4 /* rows per tile */

/* the rows of a tile: rows past N repeat row N−1 (computed, not stored) */
static INL void tile_rows(const uint8_t **rp, int64_t *rn, const pare_wq_weight *w, int64_t n0)
{
    const int64_t rb = pare_wq_row_bytes(w);
    _Pragma("GCC unroll 4")
    for (int r = 0; r < NR; r++) {
        rn[r] = n0 + r < w->N ? n0 + r : w->N - 1;
        rp[r] = w->qs + rn[r] * rb;
    }
}

/* y[m0..m0+mr) × [n0, n0+4): integer kinds. 16 accumulators (4 rows × 4 tokens) keep 16 FMA chains in flight. */
T512F static INL void tile_int(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t m0,
                               const int mr, int64_t n0, const int kind)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const uint8_t *rp[NR];
    int64_t rn[NR];
    tile_rows(rp, rn, w, n0);
    const int mid = wq_mid((pare_wq_kind)kind);
    __m512 acc[NR][4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < NR; r++)
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t j = 0; j < ng; j++) {
        __m512 vs[NR], vsz[NR];
        _Pragma("GCC unroll 4")
        for (int r = 0; r < NR; r++) {
            const float s = pare_f16_to_f32(w->scale[rn[r] * ng + j]);
            vs[r] = _mm512_set1_ps(s);
            vsz[r] = _mm512_set1_ps(s * (float)(w->zero ? w->zero[rn[r] * ng + j] : mid));
        }
        for (int64_t k = j * g; k < (j + 1) * g; k += 16) {
            __m512 wv[NR];
            _Pragma("GCC unroll 4")
            for (int r = 0; r < NR; r++) wv[r] = _mm512_fmsub_ps(_mm512_cvtepi32_ps(dec16(kind, rp[r], k)), vs[r], vsz[r]);
            _Pragma("GCC unroll 4")
            for (int t = 0; t < mr; t++) {
                const __m512 xv = _mm512_loadu_ps(x + (m0 + t) * K + k);
                _Pragma("GCC unroll 4")
                for (int r = 0; r < NR; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < NR && n0 + r < N; r++) {
        const float b = bias ? bias[n0 + r] : 0.0f;
        _Pragma("GCC unroll 4")
        for (int t = 0; t < mr; t++) y[(m0 + t) * N + n0 + r] = hsum(acc[r][t]) + b;
    }
}

/* y[m0..m0+mr) × [n0, n0+4): binary / ternary, adds and subtracts under the stored masks, α once */
T512F static INL void tile_sign(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t m0,
                                const int mr, int64_t n0, const int kind)
{
    const int64_t N = w->N, K = w->K;
    const uint8_t *rp[NR];
    int64_t rn[NR];
    tile_rows(rp, rn, w, n0);
    __m512 acc[NR][4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < NR; r++)
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
        __mmask16 p[NR], q[NR];
        _Pragma("GCC unroll 4")
        for (int r = 0; r < NR; r++) {
            if (kind == PARE_WQ_BIN) p[r] = (__mmask16)ld16(rp[r] + k / 8), q[r] = (__mmask16)~p[r];
            else p[r] = (__mmask16)ld16(rp[r] + k / 4), q[r] = (__mmask16)ld16(rp[r] + k / 4 + 2);
        }
        _Pragma("GCC unroll 4")
        for (int t = 0; t < mr; t++) {
            const __m512 xv = _mm512_loadu_ps(x + (m0 + t) * K + k);
            _Pragma("GCC unroll 4")
            for (int r = 0; r < NR; r++) {
                acc[r][t] = _mm512_mask_add_ps(acc[r][t], p[r], acc[r][t], xv);
                acc[r][t] = _mm512_mask_sub_ps(acc[r][t], q[r], acc[r][t], xv);
            }
        }
    }
    for (int r = 0; r < NR && n0 + r < N; r++) {
        const float a = pare_f16_to_f32(w->scale[n0 + r]), b = bias ? bias[n0 + r] : 0.0f;
        _Pragma("GCC unroll 4")
        for (int t = 0; t < mr; t++) y[(m0 + t) * N + n0 + r] = a * hsum(acc[r][t]) + b;
    }
}

T512F static INL void rows_all(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M, int64_t n0,
                               const int kind)
{
    int64_t m0 = 0;
    for (; m0 + 4 <= M; m0 += 4)
        if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) tile_sign(y, x, w, bias, m0, 4, n0, kind);
        else tile_int(y, x, w, bias, m0, 4, n0, kind);
    const int r = (int)(M - m0);
#define WQ_REST(R)                                                                                                    \
    if (r == R) {                                                                                                     \
        if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) tile_sign(y, x, w, bias, m0, R, n0, kind);                   \
        else tile_int(y, x, w, bias, m0, R, n0, kind);                                                                \
    }
    WQ_REST(1) WQ_REST(2) WQ_REST(3)
#undef WQ_REST
}

#define WQ_GEMV_KIND(name, KIND)                                                                                      \
    T512F static void name(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M)          \
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

/* [Σa, Σb, Σc, Σd]: the four int32 horizontal sums at once (exact in any order) */
T512 static INL __m128i hsum4i(__m512i a, __m512i b, __m512i c, __m512i d)
{
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    const __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* y[m0..m0+mr) × [n0, n0+4). Per group: int32 lanes accumulate over the group's 64-element steps (a group of 32:
 * the step's other half of the codes masked to 0); at the group's end the 4 rows' lanes of a token are reduced
 * together into one 4-lane vector (lane r: row n0 + r), 8·Σqx subtracted, and acc = fmaf(s, S, acc) runs for the 4
 * rows in the lanes of one vfmadd (the same rounding as fmaf). pre: ub holds the 4 rows' codes unpacked (natural
 * order, one byte each) instead of the packed rows. */
T512 static INL void w4a8_tile(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t m0,
                               const int mr, int64_t n0, const int pre, const uint8_t *ub)
{
    const int64_t N = w->N, K = w->K, g = w->group, ng = K / g;
    const uint8_t *rp[NR];
    int64_t rn[NR];
    tile_rows(rp, rn, w, n0);
    const int64_t step = g < 64 ? 32 : 64;
    __m128 acc[4];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < 4; t++) acc[t] = _mm_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t j = 0; j < ng; j++) {
        __m512i is[NR][4];
        _Pragma("GCC unroll 4")
        for (int r = 0; r < NR; r++)
            _Pragma("GCC unroll 4")
            for (int t = 0; t < 4; t++) is[r][t] = zero;
        for (int64_t k = j * g; k < (j + 1) * g; k += step) {
            const int64_t k64 = k & ~(int64_t)63;
            __m512i u[NR];
            _Pragma("GCC unroll 4")
            for (int r = 0; r < NR; r++) {
                u[r] = pre ? _mm512_load_si512((const void *)(ub + r * K + k64)) : w4_unpack(rp[r] + k64 / 2);
                if (step == 32) u[r] = _mm512_maskz_mov_epi8((k & 32) ? 0xffffffff00000000ull : 0x00000000ffffffffull, u[r]);
            }
            _Pragma("GCC unroll 4")
            for (int t = 0; t < mr; t++) {
                const __m512i xq = _mm512_loadu_si512((const void *)(a->qx + (m0 + t) * K + k64));
                _Pragma("GCC unroll 4")
                for (int r = 0; r < NR; r++) is[r][t] = _mm512_dpbusd_epi32(is[r][t], u[r], xq);
            }
        }
        const __m128 sv = _mm_setr_ps(pare_f16_to_f32(w->scale[rn[0] * ng + j]), pare_f16_to_f32(w->scale[rn[1] * ng + j]),
                                      pare_f16_to_f32(w->scale[rn[2] * ng + j]), pare_f16_to_f32(w->scale[rn[3] * ng + j]));
        _Pragma("GCC unroll 4")
        for (int t = 0; t < mr; t++) {
            const __m128i S = _mm_sub_epi32(hsum4i(is[0][t], is[1][t], is[2][t], is[3][t]),
                                            _mm_set1_epi32(8 * a->xs[(m0 + t) * ng + j]));
            acc[t] = _mm_fmadd_ps(sv, _mm_cvtepi32_ps(S), acc[t]);
        }
    }
    float b4[4] = {0, 0, 0, 0};
    for (int r = 0; r < NR && n0 + r < N; r++) b4[r] = bias ? bias[n0 + r] : 0.0f;
    const __m128 bv = _mm_loadu_ps(b4);
    _Pragma("GCC unroll 4")
    for (int t = 0; t < mr; t++) {
        const __m128 o = _mm_fmadd_ps(acc[t], _mm_set1_ps(a->sx[m0 + t]), bv);
        if (n0 + NR <= N) _mm_storeu_ps(y + (m0 + t) * N + n0, o);
        else _mm_mask_storeu_ps(y + (m0 + t) * N + n0, (__mmask8)((1u << (N - n0)) - 1u), o);
    }
}

/* The 4 rows of a tile unpacked into ub (4, K): u8 codes in natural order. */
T512 static INL void w4a8_unpack_rows(uint8_t *ub, const pare_wq_weight *w, int64_t n0)
{
    const uint8_t *rp[NR];
    int64_t rn[NR];
    tile_rows(rp, rn, w, n0);
    for (int r = 0; r < NR; r++)
        for (int64_t k = 0; k < w->K; k += 64) _mm512_store_si512((void *)(ub + r * w->K + k), w4_unpack(rp[r] + k / 2));
}

/* One row tile n0 for every token. Not inlined into the OpenMP region below: clang outlines a parallel region
 * into a function without the target attribute, and AVX-512 code inlined there fails in its backend (clang 14:
 * "Do not know how to split the result of this operator"). */
T512 __attribute__((noinline)) static void w4a8_rows(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias,
                                                     int64_t M, int64_t n0, uint8_t *ub)
{
    int64_t m0 = 0;
    if (ub) {
        w4a8_unpack_rows(ub, w, n0);
        for (; m0 + 4 <= M; m0 += 4) w4a8_tile(y, a, w, bias, m0, 4, n0, 1, ub);
    }
    for (; m0 + 4 <= M; m0 += 4) w4a8_tile(y, a, w, bias, m0, 4, n0, 0, NULL);
    switch (M - m0) {
    case 1: w4a8_tile(y, a, w, bias, m0, 1, n0, 0, NULL); break;
    case 2: w4a8_tile(y, a, w, bias, m0, 2, n0, 0, NULL); break;
    case 3: w4a8_tile(y, a, w, bias, m0, 3, n0, 0, NULL); break;
    default: break;
    }
}

void pare_wq_w4a8_vnni_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M)
{
    const int64_t nt = (w->N + NR - 1) / NR;
    const int pre = M > 4; /* several token tiles share each row tile: unpack its codes once */
#pragma omp parallel if (M * w->N * w->K >= WQ_PAR_MIN_WORK)
    {
        uint8_t *ub = NULL;
        if (pre && posix_memalign((void **)&ub, 64, (size_t)(NR * w->K))) ub = NULL;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < nt; i++) w4a8_rows(y, a, w, bias, M, i * NR, ub);
        free(ub);
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
