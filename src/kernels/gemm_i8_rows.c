/* gemm_i8_rows.c — the per-row passes of the int8 Linears, and the per-token symmetric quantizer built on
 * them.
 *
 * Row kernels: max-abs (as float bits, so that one integer max also detects NaN and Inf), min/max,
 * quantization to int8 codes (with the u8 shift +128) or to codes in [lo, hi] plus an offset (the
 * activation modes' zero points), and the dequantization of int32 sums with the zero-point correction.
 * Each has a portable scalar version and an AVX-512 (F, or F+BW) one, picked at run time from pare_cpu_get
 * (pare_i8_row_kernels_pick_); every vector kernel gives the same bits as its scalar twin and as the
 * references (gemm_ref.c, gemm_i8_ref.c): same float operations, same rounding (round-half-even, then
 * clamp; the scalar helpers are gemm_internal.h's).
 *
 * Deliberately not here: how a mode chooses its scales (gemm_i8.c), the weights' quantization
 * (gemm_i8_weight.c), any product (gemm_i8_products.c).
 *
 * Entry points: pare_quantize_rows_s8 (+ _checked); internal: pare_i8_quant_rows_strided_ (gemm_internal.h,
 * for the int8 attention), pare_i8_row_kernels_pick_, pare_i8_quantize_rows_, pare_i8_maxabs_bits_generic_,
 * pare_i8_dequant_row_wide_ (gemm_i8_internal.h).
 */
#include "kernels/gemm.h"

#include <omp.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm_i8_internal.h"

/* ---- per-row kernels: generic ---- */

uint32_t pare_i8_maxabs_bits_generic_(const float *x, int64_t K)
{
    uint32_t mx = 0;
    for (int64_t k = 0; k < K; k++) {
        uint32_t b = pare_i8_absbits_(x[k]);
        mx = b > mx ? b : mx;
    }
    return mx;
}

/* q(K) = quant(x(K)) + shift, stored as bytes (int8 for shift 0, uint8 for shift 128). */
static void quant_row_generic(uint8_t *q, const float *x, int64_t K, float inv, int shift)
{
    for (int64_t k = 0; k < K; k++) q[k] = (uint8_t)(pare_i8_quant_(x[k], inv) + shift);
}

/* y(N) = (acc(N) − zz·colsum(N)) · (sx·sw(N)) + bias(N), zz the operand's zero point (128 for the u8
 * shift of symmetric codes; 0: colsum unused). acc may be y itself (the int32 sums written in place by the
 * packed path): each element is read before it is overwritten. The caller guarantees that acc − zz·colsum
 * fits int32 (pare_i8_dequant_row_wide_ otherwise). */
static void dequant_row_generic(float *y, const int32_t *acc, const int32_t *colsum, int32_t zz, const float *sw,
                                const float *bias, float sx, int64_t N)
{
    for (int64_t n = 0; n < N; n++) {
        int32_t a;
        memcpy(&a, &acc[n], sizeof a); /* acc may be y itself, read as int32 before y[n] is written */
        if (zz) a -= zz * colsum[n];
        float s = sx * sw[n];
        float v = (float)a * s;
        if (bias) v = v + bias[n];
        y[n] = v;
    }
}

/* The same with the correction in int64: asymmetric codes with K > U8S8_MAX_K (65793), where Σ c·qw
 * (|c| <= 255, |qw| <= 128) may leave int32 although acc and zz·colsum do not. (float) of the int64 sum rounds like (float) of an int32. */
void pare_i8_dequant_row_wide_(float *y, const int32_t *acc, const int32_t *colsum, int32_t zz, const float *sw,
                             const float *bias, float sx, int64_t N)
{
    for (int64_t n = 0; n < N; n++) {
        int32_t a;
        memcpy(&a, &acc[n], sizeof a);
        int64_t c = (int64_t)a - (int64_t)zz * colsum[n];
        float s = sx * sw[n];
        float v = (float)c * s;
        if (bias) v = v + bias[n];
        y[n] = v;
    }
}

/* min and max of a finite x(K), K >= 1 */
static void minmax_generic(const float *x, int64_t K, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    for (int64_t k = 1; k < K; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    *mn = lo, *mx = hi;
}

/* q(K) = clamp(round(x·inv), lo, hi) + add as bytes: the codes of gemm_internal.h (pare_i8_code_). */
static void quant_range_generic(uint8_t *q, const float *x, int64_t K, float inv, int32_t lo, int32_t hi, int32_t add)
{
    const float flo = (float)lo, fhi = (float)hi;
    for (int64_t k = 0; k < K; k++) q[k] = (uint8_t)(pare_i8_code_(x[k], inv, flo, fhi) + add);
}

/* ---- per-row kernels: AVX-512 ---- */
#ifdef PARE_GEMM_X86

static inline __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1u); }

__attribute__((target("avx512f"))) static uint32_t maxabs_bits_avx512(const float *x, int64_t K)
{
    const __m512i absm = _mm512_set1_epi32((int)PARE_I8_ABS_MASK);
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + k), absm));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + k + 16), absm));
        m2 = _mm512_max_epu32(m2, _mm512_and_si512(_mm512_loadu_si512(x + k + 32), absm));
        m3 = _mm512_max_epu32(m3, _mm512_and_si512(_mm512_loadu_si512(x + k + 48), absm));
    }
    m0 = _mm512_max_epu32(m0, m2), m1 = _mm512_max_epu32(m1, m3);
    for (; k + 16 <= K; k += 16) m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + k), absm));
    if (k < K) m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail_mask(K - k), x + k), absm));
    return (uint32_t)_mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1));
}

/* 16 floats -> 16 int32 holding clamp(round(x·inv)) + shift, ready to narrow to bytes (vpmovdb). */
__attribute__((target("avx512f"))) static inline __m512i quant16_avx512(__m512 v, __m512 inv, __m512i shift)
{
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    v = _mm512_roundscale_ps(_mm512_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(v), shift);
}

__attribute__((target("avx512f"))) static void quant_row_avx512(uint8_t *q, const float *x, int64_t K, float inv,
                                                                int shift)
{
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vsh = _mm512_set1_epi32(shift);
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512i a = quant16_avx512(_mm512_loadu_ps(x + k), vinv, vsh);
        __m512i b = quant16_avx512(_mm512_loadu_ps(x + k + 16), vinv, vsh);
        _mm_storeu_si128((__m128i *)(void *)(q + k), _mm512_cvtepi32_epi8(a));
        _mm_storeu_si128((__m128i *)(void *)(q + k + 16), _mm512_cvtepi32_epi8(b));
    }
    for (; k + 16 <= K; k += 16)
        _mm_storeu_si128((__m128i *)(void *)(q + k), _mm512_cvtepi32_epi8(quant16_avx512(_mm512_loadu_ps(x + k), vinv, vsh)));
    if (k < K) {
        __mmask16 t = tail_mask(K - k);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, t, quant16_avx512(_mm512_maskz_loadu_ps(t, x + k), vinv, vsh));
    }
}

/* The same quantization with AVX512-BW, 64 values per step: the clamp in float, the conversion with
 * embedded round-to-nearest-even (= nearbyint, whatever MXCSR says), four int32 vectors narrowed with
 * two saturating packs (no-ops after the clamp) and one lane permutation, the u8 shift as xor 0x80
 * (q + 128 = q ^ 0x80 for q in [-127, 127]). About 1.8× the avx512f kernel above (vpmovdb is slow). */
__attribute__((target("avx512f,avx512bw"))) static inline __m512i quant16_cvt_avx512(__m512 v, __m512 inv)
{
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, inv), lo), hi);
    return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

__attribute__((target("avx512f,avx512bw"))) static void quant_row_avx512bw(uint8_t *q, const float *x, int64_t K,
                                                                           float inv, int shift)
{
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vsh = _mm512_set1_epi8((char)shift);
    /* packs works per 128-bit lane: dword j of lane l holds elements 16j + 4l … 16j + 4l + 3 */
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
        __m512i a = quant16_cvt_avx512(_mm512_loadu_ps(x + k), vinv);
        __m512i b = quant16_cvt_avx512(_mm512_loadu_ps(x + k + 16), vinv);
        __m512i c = quant16_cvt_avx512(_mm512_loadu_ps(x + k + 32), vinv);
        __m512i d = quant16_cvt_avx512(_mm512_loadu_ps(x + k + 48), vinv);
        __m512i r = _mm512_packs_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
        _mm512_storeu_si512(q + k, _mm512_xor_si512(_mm512_permutexvar_epi32(perm, r), vsh));
    }
    for (; k < K; k += 16) {
        __mmask16 t = K - k >= 16 ? (__mmask16)0xffff : tail_mask(K - k);
        __m512i i = quant16_cvt_avx512(_mm512_maskz_loadu_ps(t, x + k), vinv);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, t, _mm512_xor_si512(i, _mm512_set1_epi32(shift)));
    }
}

__attribute__((target("avx512f"))) static inline __m512 dequant16_avx512(__m512i a, __m512 sx, __m512 sw)
{
    return _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sx, sw));
}

__attribute__((target("avx512f"))) static void dequant_row_avx512(float *y, const int32_t *acc, const int32_t *colsum,
                                                                  int32_t zz, const float *sw, const float *bias,
                                                                  float sx, int64_t N)
{
    const __m512 vsx = _mm512_set1_ps(sx);
    const __m512i vzz = _mm512_set1_epi32(zz);
    int64_t n = 0;
    for (; n + 16 <= N; n += 16) {
        __m512i a = _mm512_loadu_si512(acc + n);
        if (zz) a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_loadu_si512(colsum + n), vzz));
        __m512 v = dequant16_avx512(a, vsx, _mm512_loadu_ps(sw + n));
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + n));
        _mm512_storeu_ps(y + n, v);
    }
    if (n < N) {
        __mmask16 t = tail_mask(N - n);
        __m512i a = _mm512_maskz_loadu_epi32(t, acc + n);
        if (zz) a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(t, colsum + n), vzz));
        __m512 v = dequant16_avx512(a, vsx, _mm512_maskz_loadu_ps(t, sw + n));
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(t, bias + n));
        _mm512_mask_storeu_ps(y + n, t, v);
    }
}

__attribute__((target("avx512f"))) static void minmax_avx512(const float *x, int64_t K, float *mn, float *mx)
{
    __m512 l0 = _mm512_set1_ps(x[0]), l1 = l0, h0 = l0, h1 = l0;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512 a = _mm512_loadu_ps(x + k), b = _mm512_loadu_ps(x + k + 16);
        l0 = _mm512_min_ps(l0, a), h0 = _mm512_max_ps(h0, a);
        l1 = _mm512_min_ps(l1, b), h1 = _mm512_max_ps(h1, b);
    }
    for (; k < K; k += 16) {
        __mmask16 t = K - k >= 16 ? (__mmask16)0xffff : tail_mask(K - k);
        __m512 a = _mm512_mask_loadu_ps(_mm512_set1_ps(x[0]), t, x + k); /* the tail repeats x[0] */
        l0 = _mm512_min_ps(l0, a), h0 = _mm512_max_ps(h0, a);
    }
    *mn = _mm512_reduce_min_ps(_mm512_min_ps(l0, l1));
    *mx = _mm512_reduce_max_ps(_mm512_max_ps(h0, h1));
}

/* quant_range_generic with AVX512-BW, 64 values per step as quant_row_avx512bw: clamp in float (lo, hi
 * are integers, so clamping before the rounding conversion equals clamping after), add in int32, narrow
 * with a saturating pack to int16 and then to u8 (packus) or s8 (packs) — no-ops, the values being in
 * range already — and one lane permutation. */
__attribute__((target("avx512f,avx512bw"))) static inline __m512i code16_avx512(__m512 v, __m512 inv, __m512 lo,
                                                                                __m512 hi, __m512i add)
{
    v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, inv), lo), hi);
    return _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), add);
}

__attribute__((target("avx512f,avx512bw"))) static void quant_range_avx512bw(uint8_t *q, const float *x, int64_t K,
                                                                             float inv, int32_t lo, int32_t hi,
                                                                             int32_t add)
{
    const __m512 vinv = _mm512_set1_ps(inv), vlo = _mm512_set1_ps((float)lo), vhi = _mm512_set1_ps((float)hi);
    const __m512i vadd = _mm512_set1_epi32(add);
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const int as_u8 = lo + add >= 0; /* bytes in [0, 255]; else in [-128, 127] */
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
        __m512i a = code16_avx512(_mm512_loadu_ps(x + k), vinv, vlo, vhi, vadd);
        __m512i b = code16_avx512(_mm512_loadu_ps(x + k + 16), vinv, vlo, vhi, vadd);
        __m512i c = code16_avx512(_mm512_loadu_ps(x + k + 32), vinv, vlo, vhi, vadd);
        __m512i d = code16_avx512(_mm512_loadu_ps(x + k + 48), vinv, vlo, vhi, vadd);
        __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);
        __m512i r = as_u8 ? _mm512_packus_epi16(ab, cd) : _mm512_packs_epi16(ab, cd);
        _mm512_storeu_si512(q + k, _mm512_permutexvar_epi32(perm, r));
    }
    for (; k < K; k += 16) {
        __mmask16 t = K - k >= 16 ? (__mmask16)0xffff : tail_mask(K - k);
        __m512i i = code16_avx512(_mm512_maskz_loadu_ps(t, x + k), vinv, vlo, vhi, vadd);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, t, i); /* truncation keeps the byte of either type */
    }
}
#endif


pare_i8_row_kernels pare_i8_row_kernels_pick_(void)
{
    pare_i8_row_kernels r = {pare_i8_maxabs_bits_generic_, quant_row_generic, dequant_row_generic, minmax_generic, quant_range_generic};
#ifdef PARE_GEMM_X86
    const pare_cpu *cpu = pare_cpu_get();
    if (cpu->avx512f) {
        r.maxabs_bits = maxabs_bits_avx512, r.quant = quant_row_avx512, r.dequant = dequant_row_avx512;
        r.minmax = minmax_avx512;
    }
    if (cpu->avx512f && cpu->avx512bw) r.quant = quant_row_avx512bw, r.quant_range = quant_range_avx512bw;
#endif
    return r;
}

/* q(M,K) (+shift), scale(M) from x(M,K). Returns the first row holding NaN/Inf (its scale is NaN, its
 * q zero), or M if all rows are finite. Each thread takes a contiguous block of rows and finds the
 * max-abs of row m+1 before it quantizes row m: quantizing a row waits on its max-abs (a reduction and
 * a division), and with the next row's max-abs issued first that latency overlaps the quantization
 * (−25% time at K = 768, x in L2). x is read once from memory; the second read of a row hits L1. */
int64_t pare_i8_quantize_rows_(uint8_t *q, float *scale, const float *x, int64_t M, int64_t K, int shift)
{
    pare_i8_row_kernels rk = pare_i8_row_kernels_pick_();
    int64_t bad = M;
#pragma omp parallel reduction(min : bad) if (M * K >= PAR_MIN_ELEMS && M > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t m0 = M * t / nt, m1 = M * (t + 1) / nt;
        uint32_t next = m0 < m1 ? rk.maxabs_bits(x + m0 * K, K) : 0;
        for (int64_t m = m0; m < m1; m++) {
            uint32_t mx = next;
            if (m + 1 < m1) next = rk.maxabs_bits(x + (m + 1) * K, K);
            if (mx >= PARE_I8_NONFINITE) {
                scale[m] = NAN;
                memset(q + m * K, shift, (size_t)K);
                if (m < bad) bad = m;
                continue;
            }
            float inv;
            pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), &scale[m], &inv);
            rk.quant(q + m * K, x + m * K, K, inv, shift);
        }
    }
    return bad;
}

int64_t pare_i8_quant_rows_strided_(int8_t *q, float *scale, const float *x, int64_t ldx, int64_t M, int64_t K)
{
    pare_i8_row_kernels rk = pare_i8_row_kernels_pick_();
    int64_t bad = M;
    for (int64_t m = 0; m < M; m++) {
        uint32_t mx = rk.maxabs_bits(x + m * ldx, K);
        if (mx >= PARE_I8_NONFINITE) {
            scale[m] = NAN;
            memset(q + m * K, 0, (size_t)K);
            if (m < bad) bad = m;
            continue;
        }
        float inv;
        pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), &scale[m], &inv);
        rk.quant((uint8_t *)q + m * K, x + m * ldx, K, inv, 0);
    }
    return bad;
}

void pare_quantize_rows_s8(int8_t *q, float *scale, const float *x, int64_t M, int64_t K)
{
    if (M <= 0 || K <= 0) return;
    pare_i8_quantize_rows_((uint8_t *)q, scale, x, M, K, 0);
}

pare_status pare_quantize_rows_s8_checked(int8_t *q, float *scale, const float *x, int64_t M, int64_t K)
{
    if (M < 0 || K < 0) return pare_fail(PARE_EINVAL, "quantize rows: M=%lld K=%lld: must be >= 0", (long long)M, (long long)K);
    if (M == 0 || K == 0) return PARE_OK;
    if (!q || !scale || !x) return pare_fail(PARE_EINVAL, "quantize rows: NULL buffer");
    int64_t bad = pare_i8_quantize_rows_((uint8_t *)q, scale, x, M, K, 0);
    if (bad < M)
        return pare_fail(PARE_ENUMERIC, "quantize rows: row %lld of %lld holds NaN or Inf", (long long)bad, (long long)M);
    return PARE_OK;
}
