/* gemm_i8.c — int8 weights (per channel, per tensor, or given integers), activation quantization (per
 * token, per tensor, static; symmetric or with a zero point), int8 GEMM, the int8 Linears (dynamic, and
 * the activation modes of gemm_i8.h with LLM.int8() outlier decomposition) and the exact int8 products
 * the int8 attention runs on.
 *
 * Scheme (LLM.int8()'s "vector-wise" quantization; Dettmers et al. 2022, and oneDNN's "Int8 computation
 * aspects" guide for the u8 shift):
 *   W[n,k] ≈ qw[n,k]·sw[n]      qw in [-127,127], sw[n] = max_k |W[n,k]| / 127     (once, offline)
 *   x[m,k] ≈ qx[m,k]·sx[m]      qx in [-127,127], sx[m] = max_k |x[m,k]| / 127     (each call)
 *   y[m,n] = (Σ_k qx[m,k]·qw[n,k]) · sx[m]·sw[n] + bias[n]
 *
 * The int32 product is oneDNN's. On CPUs with VNNI (vpdpbusd: u8 × s8 → s32) the activations are
 * written as u8 = qx + 128 straight out of the quantizer, and the product is oneDNN's int8 inner-product
 * primitive on weights reordered once at quantization (see "packed weights" below; dnnl_gemm_u8s8s32,
 * which repacks W per call, is the fallback). The shift is removed exactly in the dequantization pass:
 * Σ(qx+128)·qw − 128·colsum[n], colsum[n] = Σ_k qw[n,k] being stored with the weights. Without VNNI
 * oneDNN's int8 kernels (u8s8 AND s8s8) add pairs of products in saturating int16 (vpmaddubsw) and give
 * wrong sums on random data, so there we use our own exact kernel (int16 vpmaddwd on AVX2, plain C
 * otherwise). For K so large that the u8 shift could overflow int32, VNNI CPUs use dnnl_gemm_s8s8s32
 * (exact with VNNI). The choice is made at run time from oneDNN's effective ISA (pare_linear_i8_path).
 * The activation modes generalise the constant shift 128 to a zero point per row (see "activation
 * modes" below): every mode runs on the same GEMMs.
 *
 * Quantization and dequantization are one pass each over their rows, OpenMP-parallel over rows, with
 * AVX-512 versions chosen at run time (pare_cpu_get) and portable scalar versions otherwise. Both give
 * the same bits as the scalar references (gemm_ref.c; pare_linear_i8_act_ref at the end of this file):
 * same float operations, same rounding (round-half-even, then clamp).
 *
 * Deliberately not here: a hand-written VNNI micro-kernel (oneDNN's packed inner product reaches ~99%
 * of the measured vpdpbusd peak at BERT shapes, see docs/kernels.md), calibration (static scales come
 * from the caller), per-group scales, int4.
 *
 * Entry points: pare_i8_weight_quantize / _quantize_tensor / _from_int / _free / _bytes / _packed_bytes
 * / _impl, pare_quantize_rows_s8 (+ _checked), pare_gemm_s8s8s32, pare_linear_i8_workspace,
 * pare_linear_i8_dynamic, pare_linear_i8_path, pare_act_mode_name, pare_linear_i8_act_workspace,
 * pare_linear_i8_act (+ _ref); internal (gemm_internal.h): pare_i8_gemm_u8s8s32_, pare_i8_gemm_s8s8s32_,
 * pare_i8_quant_rows_strided_.
 */
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PARE_GEMM_X86 1
#endif

#include "core/cpu.h"
#include "kernels/gemm_internal.h"

/* Above this K the u8-shifted sums Σ(qx+128)·qw (|.| <= K·255·127) could leave int32. */
#define U8S8_MAX_K PARE_I8_U8S8_MAX_K
/* Rows·columns below which a pass is not worth waking the thread team. */
#define PAR_MIN_ELEMS 16384

/* the packed-weight inner product (defined below) */
static pare_onednn_ip *i8p_pack(const int8_t *q, int64_t N, int64_t K);
static int onednn_int8_exact(void);

/* ---- per-row kernels: generic ---- */

static uint32_t maxabs_bits_generic(const float *x, int64_t K)
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
 * fits int32 (dequant_row_wide otherwise). */
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

/* The same with the correction in int64: asymmetric codes with K > 66311, where Σ c·qw (|c| <= 255) may
 * leave int32 although acc and zz·colsum do not. (float) of the int64 sum rounds like (float) of an int32. */
static void dequant_row_wide(float *y, const int32_t *acc, const int32_t *colsum, int32_t zz, const float *sw,
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

/* The row kernels for this CPU, picked once per call (pare_cpu_get caches the detection). */
typedef struct row_kernels {
    uint32_t (*maxabs_bits)(const float *x, int64_t K);
    void (*quant)(uint8_t *q, const float *x, int64_t K, float inv, int shift);
    void (*dequant)(float *y, const int32_t *acc, const int32_t *colsum, int32_t zz, const float *sw,
                    const float *bias, float sx, int64_t N);
    void (*minmax)(const float *x, int64_t K, float *mn, float *mx);
    void (*quant_range)(uint8_t *q, const float *x, int64_t K, float inv, int32_t lo, int32_t hi, int32_t add);
} row_kernels;

static row_kernels pick_row_kernels(void)
{
    row_kernels r = {maxabs_bits_generic, quant_row_generic, dequant_row_generic, minmax_generic, quant_range_generic};
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
static int64_t quantize_rows(uint8_t *q, float *scale, const float *x, int64_t M, int64_t K, int shift)
{
    row_kernels rk = pick_row_kernels();
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
    row_kernels rk = pick_row_kernels();
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
    quantize_rows((uint8_t *)q, scale, x, M, K, 0);
}

pare_status pare_quantize_rows_s8_checked(int8_t *q, float *scale, const float *x, int64_t M, int64_t K)
{
    if (M < 0 || K < 0) return pare_fail(PARE_EINVAL, "quantize rows: M=%lld K=%lld: must be >= 0", (long long)M, (long long)K);
    if (M == 0 || K == 0) return PARE_OK;
    if (!q || !scale || !x) return pare_fail(PARE_EINVAL, "quantize rows: NULL buffer");
    int64_t bad = quantize_rows((uint8_t *)q, scale, x, M, K, 0);
    if (bad < M)
        return pare_fail(PARE_ENUMERIC, "quantize rows: row %lld of %lld holds NaN or Inf", (long long)bad, (long long)M);
    return PARE_OK;
}

/* ---- weights ---- */

pare_status pare_i8_weight_quantize(pare_i8_weight *out, const float *W, int64_t N, int64_t K)
{
    if (!out) return pare_fail(PARE_EINVAL, "int8 weight quantize: out is NULL");
    memset(out, 0, sizeof *out);
    if (N < 1 || K < 1)
        return pare_fail(PARE_EINVAL, "int8 weight quantize: N=%lld K=%lld: both must be >= 1", (long long)N, (long long)K);
    if (!W) return pare_fail(PARE_EINVAL, "int8 weight quantize: W is NULL");
    if ((uint64_t)N > (uint64_t)INT64_MAX / (uint64_t)K)
        return pare_fail(PARE_EINVAL, "int8 weight quantize: N·K overflows (N=%lld K=%lld)", (long long)N, (long long)K);

    pare_i8_weight w = {.N = N, .K = K};
    void *p = NULL;
    if (posix_memalign(&p, 64, pare_i8_align64_((size_t)(N * K)))) goto nomem;
    w.q = p;
    w.scale = malloc((size_t)N * sizeof(float));
    w.colsum = malloc((size_t)N * sizeof(int32_t));
    if (!w.scale || !w.colsum) goto nomem;

    int64_t bad = N;
#pragma omp parallel for schedule(static) reduction(min : bad) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        const float *wr = W + n * K;
        uint32_t mx = maxabs_bits_generic(wr, K);
        if (mx >= PARE_I8_NONFINITE) {
            if (n < bad) bad = n;
            continue;
        }
        float inv;
        pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), &w.scale[n], &inv);
        int32_t cs = 0;
        for (int64_t k = 0; k < K; k++) {
            int8_t v = pare_i8_quant_(wr[k], inv);
            w.q[n * K + k] = v;
            cs += v;
        }
        w.colsum[n] = cs;
    }
    if (bad < N) {
        int64_t k = 0;
        while (k < K && isfinite(W[bad * K + k])) k++;
        pare_i8_weight_free(&w);
        return pare_fail(PARE_ENUMERIC, "int8 weight quantize: row %lld (of %lld) holds %s at column %lld",
                         (long long)bad, (long long)N, k < K && isnan(W[bad * K + k]) ? "NaN" : "Inf", (long long)k);
    }
    /* the VNNI u8s8 path runs on weights packed once (NULL if oneDNN cannot: dnnl_gemm_u8s8s32 then) */
    if (onednn_int8_exact() && K <= U8S8_MAX_K) w.packed = i8p_pack(w.q, N, K);
    *out = w;
    return PARE_OK;

nomem:
    pare_i8_weight_free(&w);
    return pare_fail(PARE_ENOMEM, "int8 weight quantize: out of memory for N=%lld K=%lld", (long long)N, (long long)K);
}

void pare_i8_weight_free(pare_i8_weight *w)
{
    if (!w) return;
    free(w->q);
    free(w->scale);
    free(w->colsum);
    pare_onednn_ip_free(w->packed);
    w->q = NULL;
    w->scale = NULL;
    w->colsum = NULL;
    w->packed = NULL;
}

/* q (N·K bytes) + scale (4·N): colsum is derived from q and packed is a cache, neither is stored. */
size_t pare_i8_weight_bytes(const pare_i8_weight *w)
{
    if (!w || !w->q) return 0;
    return (size_t)(w->N * w->K) + sizeof(float) * (size_t)w->N;
}

/* ---- exact int8 GEMM without VNNI ----
 * oneDNN's int8 GEMMs (u8s8 and s8s8 alike) are NOT exact on CPUs without VNNI: they add pairs of
 * u8·s8 products in saturating int16 (vpmaddubsw), and random int8 data saturates (measured with
 * oneDNN 2.6.3 limited to avx2 / avx512_core: most outputs wrong). So without VNNI we use our own
 * kernel: sign-extend to int16 and vpmaddwd (int16·int16 pairs summed exactly into int32), a 4×2
 * register tile of dot products over K. About half the VNNI rate per instruction, but exact. */

/* C rows [m0, m1) (row stride ldc) of A(M,K)·B(N,K)^T, A s8 or (a_u8) u8 with row stride lda, B s8 with
 * row stride ldb. */
static void gemm_i8_rows_generic(int32_t *C, int64_t ldc, const void *A, int64_t lda, int a_u8, const int8_t *B,
                                 int64_t ldb, int64_t m0, int64_t m1, int64_t N, int64_t K)
{
    for (int64_t m = m0; m < m1; m++)
        for (int64_t n = 0; n < N; n++) {
            int32_t s = 0;
            const uint8_t *au = (const uint8_t *)A + m * lda;
            const int8_t *as = (const int8_t *)A + m * lda, *b = B + n * ldb;
            if (a_u8)
                for (int64_t k = 0; k < K; k++) s += (int32_t)au[k] * (int32_t)b[k];
            else
                for (int64_t k = 0; k < K; k++) s += (int32_t)as[k] * (int32_t)b[k];
            C[m * ldc + n] = s;
        }
}

#ifdef PARE_GEMM_X86
__attribute__((target("avx2"))) static inline int32_t hsum_avx2(__m256i v)
{
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
    return _mm_cvtsi128_si32(x);
}

/* The rows kernel with AVX2: A widened to int16 by sign (s8) or zero (u8) extension — u8·s8 products fit
 * int16 operands of vpmaddwd as well. Rows and columns past the edge reuse the last one (computed, not
 * stored), so the tile is always 4×2. a_u8 is a constant in each of the two instances below. */
__attribute__((target("avx2"), always_inline)) static inline void
gemm_i8_rows_avx2_body(int32_t *C, int64_t ldc, const void *Av, int64_t lda, const int a_u8, const int8_t *B,
                       int64_t ldb, int64_t m0, int64_t m1, int64_t N, int64_t K)
{
    const uint8_t *A = Av;
    const int64_t K16 = K & ~(int64_t)15;
    for (int64_t m = m0; m < m1; m += 4) {
        const uint8_t *ap[4];
        for (int i = 0; i < 4; i++) ap[i] = A + (m + i < m1 ? m + i : m1 - 1) * lda;
        for (int64_t n = 0; n < N; n += 2) {
            const int8_t *bp0 = B + n * ldb, *bp1 = B + (n + 1 < N ? n + 1 : n) * ldb;
            __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                    c31 = c00;
            for (int64_t k = 0; k < K16; k += 16) {
                __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp0 + k)));
                __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp1 + k)));
                __m256i a;
#define PARE_LOAD_A(i)                                                                                    \
    (a_u8 ? _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(ap[i] + k)))           \
          : _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(ap[i] + k))))
#define PARE_MADD2(i)                                                                                     \
    a = PARE_LOAD_A(i);                                                                                   \
    c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(a, b0));                                        \
    c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(a, b1));
                PARE_MADD2(0)
                PARE_MADD2(1)
                PARE_MADD2(2)
                PARE_MADD2(3)
#undef PARE_MADD2
#undef PARE_LOAD_A
            }
            int32_t r[4][2] = {{hsum_avx2(c00), hsum_avx2(c01)},
                               {hsum_avx2(c10), hsum_avx2(c11)},
                               {hsum_avx2(c20), hsum_avx2(c21)},
                               {hsum_avx2(c30), hsum_avx2(c31)}};
            for (int i = 0; i < 4; i++)
                for (int64_t k = K16; k < K; k++) {
                    int32_t av = a_u8 ? (int32_t)ap[i][k] : (int32_t)(int8_t)ap[i][k];
                    r[i][0] += av * bp0[k];
                    r[i][1] += av * bp1[k];
                }
            for (int i = 0; i < 4 && m + i < m1; i++)
                for (int j = 0; j < 2 && n + j < N; j++) C[(m + i) * ldc + n + j] = r[i][j];
        }
    }
}

__attribute__((target("avx2"))) static void gemm_i8_rows_avx2(int32_t *C, int64_t ldc, const void *A, int64_t lda,
                                                              int a_u8, const int8_t *B, int64_t ldb, int64_t m0,
                                                              int64_t m1, int64_t N, int64_t K)
{
    if (a_u8)
        gemm_i8_rows_avx2_body(C, ldc, A, lda, 1, B, ldb, m0, m1, N, K);
    else
        gemm_i8_rows_avx2_body(C, ldc, A, lda, 0, B, ldb, m0, m1, N, K);
}
#endif

/* oneDNN's kernels are exact only with VNNI (see above); this is the one place that decides. */
static int onednn_int8_exact(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_vnni) == (unsigned)dnnl_cpu_isa_avx512_core_vnni ||
           (isa & (unsigned)dnnl_cpu_isa_avx2_vnni) == (unsigned)dnnl_cpu_isa_avx2_vnni;
}

/* C(M,N) = A(M,K)·B(N,K)^T exactly (A s8 or u8), by our kernel (for CPUs where oneDNN's is not exact). */
static void gemm_i8_portable(int32_t *C, int64_t ldc, const void *A, int64_t lda, int a_u8, const int8_t *B,
                             int64_t ldb, int64_t M, int64_t N, int64_t K)
{
    void (*rows)(int32_t *, int64_t, const void *, int64_t, int, const int8_t *, int64_t, int64_t, int64_t, int64_t,
                 int64_t) = gemm_i8_rows_generic;
#ifdef PARE_GEMM_X86
    if (pare_cpu_get()->avx2) rows = gemm_i8_rows_avx2;
#endif
    int64_t blocks = (M + 3) / 4;
#pragma omp parallel for schedule(static) if (M * N * K >= (int64_t)1 << 20 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) rows(C, ldc, A, lda, a_u8, B, ldb, 4 * b, 4 * b + 4 < M ? 4 * b + 4 : M, N, K);
}

static void gemm_s8s8s32_portable(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K)
{
    gemm_i8_portable(C, N, A, K, 0, B, K, M, N, K);
}

/* The exact s8·s8 → s32 product by the best available means. */
static dnnl_status_t gemm_s8s8s32_exact(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K)
{
    if (!onednn_int8_exact()) {
        gemm_s8s8s32_portable(C, A, B, M, N, K);
        return dnnl_success;
    }
    const int32_t co = 0;
    return dnnl_gemm_s8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, K, 0, B, K, 0, 0.0f, C, N, &co);
}

/* The two products of gemm_internal.h for the int8 attention (strided operands, exact on every path):
 * one body, A read as u8 (a_u8) or s8. */
static int gemm_i8_strided(int32_t *C, int64_t ldc, const void *A, int64_t lda, int a_u8, const int8_t *B, int64_t ldb,
                           int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) {
        for (int64_t m = 0; m < M; m++) memset(C + m * ldc, 0, (size_t)N * sizeof(int32_t));
        return 0;
    }
    if (!onednn_int8_exact()) {
        gemm_i8_portable(C, ldc, A, lda, a_u8, B, ldb, M, N, K);
        return 0;
    }
    const int32_t co = 0;
    return a_u8 ? (int)dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, ldc, &co)
                : (int)dnnl_gemm_s8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, ldc, &co);
}

int pare_i8_gemm_u8s8s32_(int32_t *C, int64_t ldc, const uint8_t *A, int64_t lda, const int8_t *B, int64_t ldb,
                          int64_t M, int64_t N, int64_t K)
{
    return gemm_i8_strided(C, ldc, A, lda, 1, B, ldb, M, N, K);
}

int pare_i8_gemm_s8s8s32_(int32_t *C, int64_t ldc, const int8_t *A, int64_t lda, const int8_t *B, int64_t ldb,
                          int64_t M, int64_t N, int64_t K)
{
    return gemm_i8_strided(C, ldc, A, lda, 0, B, ldb, M, N, K);
}

/* ---- packed weights: oneDNN's int8 inner product (the VNNI u8s8 path) ----
 *
 * dnnl_gemm_u8s8s32 repacks W into its panel layout on every call. pare_i8_weight_quantize instead
 * reorders q once into the blocked layout oneDNN's inner-product primitive asks for (format_tag_any,
 * s8 weights, u8 src, s32 dst, no scales: brgemm:avx512_core_vnni on AVX512-VNNI), and
 * pare_linear_i8_dynamic runs that primitive, writing the int32 sums straight into y, then dequantizes
 * y in place. Measured at M = 128 the primitive alone is ~8–12% faster than dnnl_gemm_u8s8s32 and the
 * whole Linear ~10% faster; at M = 4–16 it is 1.6–3× faster (docs/kernels.md).
 *
 * The packing, the primitive cache and the execution are gemm_onednn.c's packed inner product, shared
 * with the f32 packed Linear: one primitive per (M, thread count) — oneDNN plans its work split for the
 * OpenMP thread count seen at creation, 1 inside a parallel region — created on first use under a mutex
 * (JIT, ~0.1–1 ms), at most 32 of them, beyond which a call builds and drops its own. Execution uses a
 * user scratchpad (the unused accumulator part of the caller's workspace, or the stack), so one weight
 * may serve several threads at once. The handle holds no caller pointer. Nothing here is reported (the
 * calls pass no name to gemm_onednn.c): if anything fails, pare_linear_i8_dynamic falls back to
 * dnnl_gemm_u8s8s32 (same bits). */

static const pare_onednn_ip_types I8_TYPES = {dnnl_u8, dnnl_s8, dnnl_s32};

/* q (N,K) reordered into the primitive's layout; NULL if oneDNN (or memory) fails. */
static pare_onednn_ip *i8p_pack(const int8_t *q, int64_t N, int64_t K)
{
    pare_onednn_ip *p = NULL;
    if (pare_onednn_ip_pack(&p, I8_TYPES, q, N, K, 0, NULL) != PARE_OK) return NULL;
    /* a reference implementation would be far slower than dnnl_gemm_u8s8s32: not worth keeping */
    if (!strncmp(pare_onednn_ip_impl(p), "ref", 3)) {
        pare_onednn_ip_free(p);
        return NULL;
    }
    return p;
}

/* acc(M,N) = xu(M,K) · q^T in int32 through the packed weights; spare (spare_bytes) may serve as
 * scratchpad. 0 on success, -1 if oneDNN failed (nothing is reported: the caller falls back to
 * dnnl_gemm_u8s8s32). */
static int i8p_gemm(const pare_onednn_ip *p, int32_t *acc, const uint8_t *xu, int64_t M, void *spare,
                    size_t spare_bytes)
{
    return pare_onednn_ip_run(p, acc, xu, NULL, M, PARE_ONEDNN_POST_NONE, spare, spare_bytes, NULL) == PARE_OK ? 0 : -1;
}

size_t pare_i8_weight_packed_bytes(const pare_i8_weight *w)
{
    return w ? pare_onednn_ip_bytes(w->packed) : 0;
}

const char *pare_i8_weight_impl(const pare_i8_weight *w)
{
    if (!w || !w->q) return "none";
    pare_i8_path path = pare_linear_i8_path(w->K);
    if (path == PARE_I8_PATH_U8S8 && w->packed) return pare_onednn_ip_impl(w->packed);
    return path == PARE_I8_PATH_U8S8   ? "gemm:u8s8s32"
           : path == PARE_I8_PATH_S8S8 ? "gemm:s8s8s32"
                                       : "pare:s8s8-madd";
}

/* ---- int8 GEMM ---- */

pare_status pare_gemm_s8s8s32(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K)
{
    if (M < 0 || N < 0 || K < 0)
        return pare_fail(PARE_EINVAL, "gemm s8s8s32: M=%lld N=%lld K=%lld: must be >= 0", (long long)M, (long long)N,
                         (long long)K);
    if (K > PARE_I8_MAX_K)
        return pare_fail(PARE_EINVAL, "gemm s8s8s32: K=%lld: int32 sums are exact only for K <= %lld", (long long)K,
                         (long long)PARE_I8_MAX_K);
    if (M == 0 || N == 0) return PARE_OK;
    if (!C || (K > 0 && (!A || !B))) return pare_fail(PARE_EINVAL, "gemm s8s8s32: NULL buffer");
    if (K == 0) {
        memset(C, 0, (size_t)(M * N) * sizeof(int32_t));
        return PARE_OK;
    }
    dnnl_status_t st = gemm_s8s8s32_exact(C, A, B, M, N, K);
    if (st != dnnl_success)
        return pare_fail(PARE_EINTERNAL, "gemm s8s8s32: oneDNN failed (status %d) for M=%lld N=%lld K=%lld", (int)st,
                         (long long)M, (long long)N, (long long)K);
    return PARE_OK;
}

/* ---- dynamic int8 Linear ---- */

pare_i8_path pare_linear_i8_path(int64_t K)
{
    if (!onednn_int8_exact()) return PARE_I8_PATH_S8S8_MADD;
    return K > U8S8_MAX_K ? PARE_I8_PATH_S8S8 : PARE_I8_PATH_U8S8;
}

const char *pare_i8_path_name(pare_i8_path p)
{
    static const char *names[] = {"u8s8-vnni", "s8s8-vnni", "s8s8-madd"};
    _Static_assert(sizeof names / sizeof names[0] == PARE_I8_PATH_COUNT, "one name per int8 path");
    return (unsigned)p < PARE_I8_PATH_COUNT ? names[p] : "?";
}

size_t pare_linear_i8_workspace(int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0 || K <= 0) return 64;
    return pare_i8_align64_((size_t)(M * K)) + pare_i8_align64_((size_t)M * sizeof(float)) +
           pare_i8_align64_((size_t)(M * N) * sizeof(int32_t));
}

/* The int8 product and the dequantization shared by every int8 Linear:
 *   y(M,N) = (Σ_k xq[m,k]·qw[n,k] − zz_m·colsum[n]) · (sx[m]·sw[n]) + bias[n]
 * xq (M,K) bytes, u8 (as_u8, the VNNI u8s8 path: packed inner product, else dnnl_gemm_u8s8s32) or s8
 * (exact s8s8: oneDNN with VNNI, pare's kernel without); zz_m = zrow[m], or zall if zrow is NULL; wide:
 * the correction in int64 (asymmetric codes with K > 66311). acc: (M,N) int32 of workspace. */
static pare_status i8_gemm_dequant(float *y, const uint8_t *xq, const float *sx, const int32_t *zrow, int32_t zall,
                                   const pare_i8_weight *w, const float *bias, int64_t M, int as_u8, int wide,
                                   int32_t *acc, const char *what)
{
    const int64_t N = w->N, K = w->K;
    /* The packed inner product writes the int32 sums straight into y (same size as acc; dequantized in
     * place below, one buffer less to stream through the caches); acc's room serves as its scratchpad.
     * x is read completely before this, so y may even be x. */
    int32_t *sums = acc;
    if (as_u8 && w->packed && i8p_gemm(w->packed, (int32_t *)(void *)y, xq, M, acc, (size_t)(M * N) * sizeof(int32_t)) == 0)
        sums = (int32_t *)(void *)y;
    else {
        const int32_t co = 0;
        dnnl_status_t st;
        if (as_u8)
            st = dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, xq, K, 0, w->q, K, 0, 0.0f, acc, N, &co);
        else
            st = gemm_s8s8s32_exact(acc, (const int8_t *)xq, w->q, M, N, K);
        if (st != dnnl_success)
            return pare_fail(PARE_EINTERNAL, "%s: oneDNN %s gemm failed (status %d) for M=%lld N=%lld K=%lld", what,
                             pare_i8_path_name(pare_linear_i8_path(K)), (int)st, (long long)M, (long long)N,
                             (long long)K);
    }

    row_kernels rk = pick_row_kernels();
    if (wide) rk.dequant = dequant_row_wide;
#pragma omp parallel for schedule(static) if (M * N >= PAR_MIN_ELEMS && M > 1)
    for (int64_t m = 0; m < M; m++)
        rk.dequant(y + m * N, sums + m * N, w->colsum, zrow ? zrow[m] : zall, w->scale, bias, sx[m], N);
    return PARE_OK;
}

/* y(M,N) = dequant(quant(x)(M,K) · w->q(N,K)^T) + bias(N); see the top of this file. */
pare_status pare_linear_i8_dynamic(float *y, const float *x, const pare_i8_weight *w, const float *bias, int64_t M,
                                   void *workspace)
{
    if (!w || !w->q || !w->scale || !w->colsum) return pare_fail(PARE_EINVAL, "linear int8: weight is not quantized");
    const int64_t N = w->N, K = w->K;
    if (M < 0) return pare_fail(PARE_EINVAL, "linear int8: M=%lld: must be >= 0", (long long)M);
    if (M == 0) return PARE_OK;
    if (!y || !x) return pare_fail(PARE_EINVAL, "linear int8: NULL input or output");
    if (!workspace || (uintptr_t)workspace % sizeof(float))
        return pare_fail(PARE_EINVAL, "linear int8: workspace is NULL or misaligned (need pare_linear_i8_workspace(M,N,K)"
                                      " bytes, 64-byte aligned)");
    if (K > PARE_I8_MAX_K)
        return pare_fail(PARE_EINVAL, "linear int8: K=%lld: int32 sums are exact only for K <= %lld", (long long)K,
                         (long long)PARE_I8_MAX_K);

    pare_i8_path path = pare_linear_i8_path(K);
    int shift = path == PARE_I8_PATH_U8S8 ? 128 : 0;
    uint8_t *xq = workspace;                                                     /* (M,K) */
    float *sx = (float *)(void *)((char *)workspace + pare_i8_align64_((size_t)(M * K)));  /* (M) */
    int32_t *acc = (int32_t *)(void *)((char *)sx + pare_i8_align64_((size_t)M * sizeof(float))); /* (M,N) */

    int64_t bad = quantize_rows(xq, sx, x, M, K, shift);
    if (bad < M)
        return pare_fail(PARE_ENUMERIC, "linear int8: input row %lld (of %lld) holds NaN or Inf", (long long)bad,
                         (long long)M);
    (void)N;
    return i8_gemm_dequant(y, xq, sx, NULL, shift, w, bias, M, shift != 0, 0, acc, "linear int8");
}

/* ---- weights: per tensor, from given integers (gemm_i8.h) ---- */

/* w->q (64-byte aligned), scale, colsum for N×K; on failure w is freed and PARE_ENOMEM returned. */
static pare_status weight_alloc(pare_i8_weight *w, int64_t N, int64_t K, const char *what)
{
    memset(w, 0, sizeof *w);
    w->N = N, w->K = K;
    void *p = NULL;
    if (posix_memalign(&p, 64, pare_i8_align64_((size_t)(N * K)))) p = NULL;
    w->q = p;
    w->scale = malloc((size_t)N * sizeof(float));
    w->colsum = malloc((size_t)N * sizeof(int32_t));
    if (w->q && w->scale && w->colsum) return PARE_OK;
    pare_i8_weight_free(w);
    return pare_fail(PARE_ENOMEM, "%s: out of memory for N=%lld K=%lld", what, (long long)N, (long long)K);
}

/* colsum from q, and the packed copy for the u8s8 path (as pare_i8_weight_quantize). */
static void weight_finish(pare_i8_weight *w)
{
    const int64_t N = w->N, K = w->K;
#pragma omp parallel for schedule(static) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        int32_t cs = 0;
        for (int64_t k = 0; k < K; k++) cs += w->q[n * K + k];
        w->colsum[n] = cs;
    }
    if (onednn_int8_exact() && K <= U8S8_MAX_K) w->packed = i8p_pack(w->q, N, K);
}

static pare_status weight_check_shape(const void *out, const void *in, int64_t N, int64_t K, const char *what)
{
    if (!out) return pare_fail(PARE_EINVAL, "%s: out is NULL", what);
    if (N < 1 || K < 1)
        return pare_fail(PARE_EINVAL, "%s: N=%lld K=%lld: both must be >= 1", what, (long long)N, (long long)K);
    if (!in) return pare_fail(PARE_EINVAL, "%s: input is NULL", what);
    if ((uint64_t)N > (uint64_t)INT64_MAX / (uint64_t)K)
        return pare_fail(PARE_EINVAL, "%s: N·K overflows (N=%lld K=%lld)", what, (long long)N, (long long)K);
    return PARE_OK;
}

pare_status pare_i8_weight_quantize_tensor(pare_i8_weight *out, const float *W, int64_t N, int64_t K)
{
    const char *what = "int8 weight quantize (per tensor)";
    if (out) memset(out, 0, sizeof *out);
    PARE_TRY(weight_check_shape(out, W, N, K, what));
    uint32_t mx = 0;
    int64_t bad = N;
#pragma omp parallel for schedule(static) reduction(max : mx) reduction(min : bad) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        uint32_t b = maxabs_bits_generic(W + n * K, K);
        if (b >= PARE_I8_NONFINITE && n < bad) bad = n;
        mx = b > mx ? b : mx;
    }
    if (bad < N) {
        int64_t k = 0;
        while (k < K && isfinite(W[bad * K + k])) k++;
        return pare_fail(PARE_ENUMERIC, "%s: row %lld (of %lld) holds %s at column %lld", what, (long long)bad,
                         (long long)N, k < K && isnan(W[bad * K + k]) ? "NaN" : "Inf", (long long)k);
    }
    pare_i8_weight w;
    PARE_TRY(weight_alloc(&w, N, K, what));
    float scale, inv;
    pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), &scale, &inv);
#pragma omp parallel for schedule(static) if (N * K >= PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) w.q[n * K + k] = pare_i8_quant_(W[n * K + k], inv);
        w.scale[n] = scale;
    }
    weight_finish(&w);
    *out = w;
    return PARE_OK;
}

pare_status pare_i8_weight_from_int(pare_i8_weight *out, const int8_t *q, const float *scale, int64_t N, int64_t K)
{
    const char *what = "int8 weight from integers";
    if (out) memset(out, 0, sizeof *out);
    PARE_TRY(weight_check_shape(out, q, N, K, what));
    if (!scale) return pare_fail(PARE_EINVAL, "%s: scale is NULL", what);
    for (int64_t n = 0; n < N; n++) {
        if (!isfinite(scale[n]))
            return pare_fail(PARE_ENUMERIC, "%s: scale[%lld] is %s: scales must be finite and >= 0", what,
                             (long long)n, isnan(scale[n]) ? "NaN" : "Inf");
        if (scale[n] < 0.0f)
            return pare_fail(PARE_EINVAL, "%s: scale[%lld] = %g: scales must be finite and >= 0", what, (long long)n,
                             (double)scale[n]);
    }
    const int8_t *hit = memchr(q, 0x80, (size_t)(N * K));
    if (hit) {
        int64_t i = hit - q;
        return pare_fail(PARE_EINVAL, "%s: q[%lld,%lld] = -128: int8 weights must be in [-127, 127]", what,
                         (long long)(i / K), (long long)(i % K));
    }
    pare_i8_weight w;
    PARE_TRY(weight_alloc(&w, N, K, what));
    memcpy(w.q, q, (size_t)(N * K));
    memcpy(w.scale, scale, (size_t)N * sizeof(float));
    weight_finish(&w);
    *out = w;
    return PARE_OK;
}

/* ---- the int8 Linear's activation modes (gemm_i8.h) ----
 *
 * Each mode turns x into codes c[m,k] = clamp(round(x[m,k]·inv), lo, hi) (gemm_internal.h) with a scale
 * per row (DYN_TOKEN) or one for all rows, and hands the GEMM the bytes c + add; the dequantization
 * subtracts add·colsum[n], so the integer result is exactly Σ_k c[m,k]·qw[n,k]:
 *
 *   scheme        lo, hi          add on the u8 path (VNNI)    add on the s8 path (large K, no VNNI)
 *   symmetric     −127, 127       128                          0
 *   asymmetric    −z, 255 − z     z   (the byte is the u8 q)   z − 128
 *
 * y[m,n] = (Σ_k byte·qw − add·colsum[n])·(sx[m]·sw[n]) + bias[n] — the existing dequantization pass with
 * the zero point per row instead of the constant 128. Its int32 arithmetic is exact for K <= 66311 (the
 * u8s8 bound); beyond, asymmetric codes (|c| <= 255) are corrected in int64 (dequant_row_wide).
 *
 * LLM.int8(): the columns whose max |x| exceeds the threshold are zeroed in a copy of x that the mode
 * quantizes (so the scales come from the other columns), gathered into (M, nO) and multiplied with the
 * gathered columns of W_f32 by pare_sgemm, OUTLIER_CHUNK columns at a time, added onto y. */

/* Outlier columns per f32 product (bounds the gathered W_f32 block in the workspace). */
#define OUTLIER_CHUNK 64

static const pare_i8_act ACT_DEFAULT = {PARE_ACT_DYN_TOKEN, 1, 0.0f, 0, 0.0f};

const char *pare_act_mode_name(pare_act_mode m)
{
    static const char *names[] = {"dynamic_token", "dynamic_tensor", "static"};
    _Static_assert(sizeof names / sizeof names[0] == PARE_ACT_MODE_COUNT, "one name per activation mode");
    return (unsigned)m < PARE_ACT_MODE_COUNT ? names[m] : "?";
}

static pare_status act_check(const pare_i8_act *a, const char *what)
{
    if ((unsigned)a->mode >= PARE_ACT_MODE_COUNT)
        return pare_fail(PARE_EINVAL,
                         "%s: mode=%d: must be one of %d (dynamic_token), %d (dynamic_tensor), %d (static)", what,
                         (int)a->mode, PARE_ACT_DYN_TOKEN, PARE_ACT_DYN_TENSOR, PARE_ACT_STATIC);
    if (!(a->outlier_threshold >= 0.0f)) /* +Inf is allowed: decomposition on, no feature ever an outlier */
        return pare_fail(PARE_EINVAL, "%s: outlier_threshold=%g: must be > 0 (LLM.int8(); +inf: never an outlier) or 0 "
                         "(off)", what, (double)a->outlier_threshold);
    if (a->mode == PARE_ACT_STATIC) {
        if (!(a->scale > 0.0f) || !isfinite(a->scale) || !isfinite(1.0f / a->scale))
            return pare_fail(PARE_EINVAL, "%s: static scale=%g: must be finite and > 0 (with 1/scale finite)", what,
                             (double)a->scale);
        if (a->symmetric && a->zero != 0)
            return pare_fail(PARE_EINVAL, "%s: static symmetric scheme with zero=%d: must be 0 (or set symmetric=0)",
                             what, (int)a->zero);
        if (!a->symmetric && (a->zero < 0 || a->zero > 255))
            return pare_fail(PARE_EINVAL, "%s: static asymmetric zero=%d: must be in [0, 255]", what, (int)a->zero);
    }
    return PARE_OK;
}

/* The workspace of pare_linear_i8_act, each part at a 64-byte offset:
 *   xq (M,K) bytes | sx (M) f32 | zz (M) int32 | acc (M,N) int32
 *   and with LLM.int8(): xm (M,K) f32 (x with the outlier columns zeroed, then the gathered x[:,O]) |
 *   col (K) uint32 (column max-abs bits, then the outlier indices) | wo (N, OUTLIER_CHUNK) f32 */
typedef struct act_ws {
    uint8_t *xq;
    float *sx;
    int32_t *zz, *acc;
    float *xm, *wo;
    uint32_t *col;
} act_ws;

static size_t act_ws_layout(act_ws *l, void *base, int64_t M, int64_t N, int64_t K, int outliers)
{
    size_t o = 0, parts[7] = {pare_i8_align64_((size_t)(M * K)), pare_i8_align64_((size_t)M * 4),
                              pare_i8_align64_((size_t)M * 4), pare_i8_align64_((size_t)(M * N) * 4),
                              outliers ? pare_i8_align64_((size_t)(M * K) * 4) : 0,
                              outliers ? pare_i8_align64_((size_t)K * 4) : 0,
                              outliers ? pare_i8_align64_((size_t)N * OUTLIER_CHUNK * 4) : 0};
    void *at[7];
    for (int i = 0; i < 7; i++) {
        at[i] = base ? (char *)base + o : NULL;
        o += parts[i];
    }
    if (l) *l = (act_ws){at[0], at[1], at[2], at[3], at[4], at[6], at[5]};
    return o ? o : 64;
}

size_t pare_linear_i8_act_workspace(int64_t M, int64_t N, int64_t K, const pare_i8_act *a)
{
    if (M <= 0 || N <= 0 || K <= 0) return 64;
    if (!a) a = &ACT_DEFAULT;
    return act_ws_layout(NULL, NULL, M, N, K, a->outlier_threshold > 0.0f);
}

/* cmax(K) = max_m |x[m,k]| as bits (>= PARE_I8_NONFINITE: the column holds NaN or Inf). */
PARE_HOT static void colmax_bits(uint32_t *cmax, const float *x, int64_t M, int64_t K)
{
    const int64_t CB = 256, nb = (K + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (M * K >= PAR_MIN_ELEMS && nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t k0 = b * CB, k1 = k0 + CB < K ? k0 + CB : K;
        for (int64_t k = k0; k < k1; k++) cmax[k] = 0;
        for (int64_t m = 0; m < M; m++) {
            const float *r = x + m * K;
            for (int64_t k = k0; k < k1; k++) {
                uint32_t v = pare_i8_absbits_(r[k]);
                cmax[k] = v > cmax[k] ? v : cmax[k];
            }
        }
    }
}

static int64_t first_nonfinite_row(const float *x, int64_t M, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        if (maxabs_bits_generic(x + m * K, K) >= PARE_I8_NONFINITE) return m;
    return M;
}

/* xq (M,K) bytes, sx (M), zz (M) for scheme a on the u8 (as_u8) or s8 operand path. Returns the first row
 * holding NaN or Inf (nothing useful written then), or M. */
static int64_t act_quantize(uint8_t *xq, float *sx, int32_t *zz, const float *x, int64_t M, int64_t K,
                            const pare_i8_act *a, int as_u8)
{
    const int sym = a->symmetric != 0;
    const int32_t shift = sym ? (as_u8 ? 128 : 0) : (as_u8 ? 0 : -128); /* add = z + shift (z = 0 symmetric) */
    row_kernels rk = pick_row_kernels();
    const int par = M * K >= PAR_MIN_ELEMS && M > 1;

    if (a->mode == PARE_ACT_DYN_TOKEN && sym) { /* pare_linear_i8_dynamic's quantizer */
        int64_t bad = quantize_rows(xq, sx, x, M, K, shift);
        for (int64_t m = 0; m < M; m++) zz[m] = shift;
        return bad;
    }
    if (a->mode == PARE_ACT_DYN_TOKEN) { /* asymmetric, per row */
        int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (par)
        for (int64_t m = 0; m < M; m++) {
            const float *r = x + m * K;
            if (rk.maxabs_bits(r, K) >= PARE_I8_NONFINITE) {
                if (m < bad) bad = m;
                continue;
            }
            float mn, mx, inv;
            int32_t z;
            rk.minmax(r, K, &mn, &mx);
            pare_i8_asym_params_(mn, mx, &sx[m], &inv, &z);
            rk.quant_range(xq + m * K, r, K, inv, -z, 255 - z, z + shift);
            zz[m] = z + shift;
        }
        return bad;
    }

    /* one scale for all rows: from the whole x (DYN_TENSOR) or given (STATIC) */
    float scale, inv;
    int32_t z = 0;
    if (a->mode == PARE_ACT_DYN_TENSOR) {
        uint32_t amax = 0;
        float mn = 0.0f, mx = 0.0f;
        int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(max : amax, mx) reduction(min : bad, mn) if (par)
        for (int64_t m = 0; m < M; m++) {
            const float *r = x + m * K;
            uint32_t b = rk.maxabs_bits(r, K);
            if (b >= PARE_I8_NONFINITE) {
                if (m < bad) bad = m;
                continue;
            }
            amax = b > amax ? b : amax;
            if (!sym) {
                float lo, hi;
                rk.minmax(r, K, &lo, &hi);
                mn = lo < mn ? lo : mn;
                mx = hi > mx ? hi : mx;
            }
        }
        if (bad < M) return bad;
        if (sym)
            pare_i8_scale_from_maxabs_(pare_i8_bits_float_(amax), &scale, &inv);
        else
            pare_i8_asym_params_(mn, mx, &scale, &inv, &z);
    } else {
        scale = a->scale, inv = 1.0f / a->scale, z = sym ? 0 : a->zero;
    }
    const int32_t lo = sym ? -127 : -z, hi = sym ? 127 : 255 - z, add = z + shift;
    const int check = a->mode == PARE_ACT_STATIC; /* DYN_TENSOR checked every row above */
    int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (par)
    for (int64_t m = 0; m < M; m++) {
        const float *r = x + m * K;
        if (check && rk.maxabs_bits(r, K) >= PARE_I8_NONFINITE) {
            if (m < bad) bad = m;
            continue;
        }
        rk.quant_range(xq + m * K, r, K, inv, lo, hi, add);
        sx[m] = scale;
        zz[m] = add;
    }
    return bad;
}

pare_status pare_linear_i8_act(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                               const float *bias, int64_t M, const pare_i8_act *a, void *workspace,
                               int64_t *n_outliers)
{
    const char *what = "linear int8 act";
    if (n_outliers) *n_outliers = 0;
    if (!a) a = &ACT_DEFAULT;
    PARE_TRY(act_check(a, what));
    if (!w || !w->q || !w->scale || !w->colsum) return pare_fail(PARE_EINVAL, "%s: weight is not quantized", what);
    const int64_t N = w->N, K = w->K;
    if (M < 0) return pare_fail(PARE_EINVAL, "%s: M=%lld: must be >= 0", what, (long long)M);
    if (M == 0) return PARE_OK;
    if (!y || !x) return pare_fail(PARE_EINVAL, "%s: NULL input or output", what);
    const int outliers = a->outlier_threshold > 0.0f;
    if (!workspace || (uintptr_t)workspace % sizeof(float))
        return pare_fail(PARE_EINVAL, "%s: workspace is NULL or misaligned (need pare_linear_i8_act_workspace(M,N,K,a)"
                                      " bytes, 64-byte aligned)", what);
    if (K > PARE_I8_MAX_K)
        return pare_fail(PARE_EINVAL, "%s: K=%lld: int32 sums are exact only for K <= %lld", what, (long long)K,
                         (long long)PARE_I8_MAX_K);

    const int as_u8 = pare_linear_i8_path(K) == PARE_I8_PATH_U8S8;
    const int wide = !a->symmetric && K > U8S8_MAX_K;
    act_ws l;
    act_ws_layout(&l, workspace, M, N, K, outliers);

    /* LLM.int8(): the outlier columns, and x with them zeroed for the int8 part */
    const float *xin = x;
    int64_t nO = 0;
    int32_t *idx = (int32_t *)(void *)l.col;
    if (outliers) {
        colmax_bits(l.col, x, M, K);
        for (int64_t k = 0; k < K; k++)
            if (l.col[k] >= PARE_I8_NONFINITE) {
                int64_t bad = first_nonfinite_row(x, M, K);
                return pare_fail(PARE_ENUMERIC, "%s: input row %lld (of %lld) holds NaN or Inf", what, (long long)bad,
                                 (long long)M);
            }
        const uint32_t tb = pare_i8_absbits_(a->outlier_threshold);
        for (int64_t k = 0; k < K; k++) /* in place: idx[nO] overwrites col[nO], nO <= k, already read */
            if (l.col[k] > tb) idx[nO++] = (int32_t)k;
        if (nO > 0) {
#pragma omp parallel for schedule(static) if (M * K >= PAR_MIN_ELEMS && M > 1)
            for (int64_t m = 0; m < M; m++) {
                memcpy(l.xm + m * K, x + m * K, (size_t)K * sizeof(float));
                for (int64_t j = 0; j < nO; j++) l.xm[m * K + idx[j]] = 0.0f;
            }
            xin = l.xm;
        }
    }

    int64_t bad = act_quantize(l.xq, l.sx, l.zz, xin, M, K, a, as_u8);
    if (bad < M)
        return pare_fail(PARE_ENUMERIC, "%s: input row %lld (of %lld) holds NaN or Inf", what, (long long)bad,
                         (long long)M);

    /* x[:,O] (M,nO) into xm (its masked copy is consumed), before y — which may be x — is written */
    if (nO > 0)
        for (int64_t m = 0; m < M; m++)
            for (int64_t j = 0; j < nO; j++) l.xm[m * nO + j] = x[m * K + idx[j]];

    PARE_TRY(i8_gemm_dequant(y, l.xq, l.sx, l.zz, 0, w, bias, M, as_u8, wide, l.acc, what));

    /* y += x[:,O] · W_f32[:,O]^T, OUTLIER_CHUNK columns at a time */
    for (int64_t c0 = 0; c0 < nO; c0 += OUTLIER_CHUNK) {
        const int64_t nc = c0 + OUTLIER_CHUNK < nO ? OUTLIER_CHUNK : nO - c0;
#pragma omp parallel for schedule(static) if (N * nc >= PAR_MIN_ELEMS)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < nc; j++) l.wo[n * nc + j] = W_f32 ? W_f32[n * K + idx[c0 + j]] : (float)w->q[n * K + idx[c0 + j]] * w->scale[n];
        pare_sgemm(0, 1, M, N, nc, 1.0f, l.xm + c0, nO, l.wo, nc, 1.0f, y, N);
    }
    if (n_outliers) *n_outliers = nO;
    return PARE_OK;
}

/* ---- reference twin of pare_linear_i8_act ----
 * Scalar, no threads: the same scale helpers and code function (gemm_internal.h) as the fast path, int64
 * sums of the codes, the dequantization in the same float order; the f32 part of LLM.int8() in double,
 * added onto the int8 part's float result. */
void pare_linear_i8_act_ref(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                            const float *bias, int64_t M, const pare_i8_act *a, int64_t *n_outliers)
{
    if (!a) a = &ACT_DEFAULT;
    const int64_t N = w->N, K = w->K;
    const int sym = a->symmetric != 0;
    int16_t *c = malloc((size_t)(M * K) * sizeof(int16_t) + 1);
    float *xm = malloc((size_t)(M * K) * sizeof(float) + 1), *sx = malloc((size_t)M * sizeof(float) + 1);
    uint8_t *O = calloc((size_t)K + 1, 1), *rowbad = calloc((size_t)M + 1, 1);
    int64_t nO = 0;
    if (n_outliers) *n_outliers = 0;
    if (!c || !xm || !sx || !O || !rowbad) { /* a test helper: out of memory is not worth a status here */
        for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
        goto done;
    }
    memcpy(xm, x, (size_t)(M * K) * sizeof(float));
    if (a->outlier_threshold > 0.0f)
        for (int64_t k = 0; k < K; k++) {
            float mx = 0.0f;
            for (int64_t m = 0; m < M; m++) mx = fabsf(x[m * K + k]) > mx ? fabsf(x[m * K + k]) : mx;
            if (mx > a->outlier_threshold) {
                O[k] = 1, nO++;
                for (int64_t m = 0; m < M; m++) xm[m * K + k] = 0.0f;
            }
        }
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) rowbad[m] |= !isfinite(xm[m * K + k]);

    /* the scale(s) and code bounds */
    float gscale = 1.0f, ginv = 0.0f;
    int32_t gz = 0;
    if (a->mode == PARE_ACT_DYN_TENSOR) {
        uint32_t amax = 0;
        float mn = 0.0f, mx = 0.0f;
        for (int64_t i = 0; i < M * K; i++) {
            if (rowbad[i / K]) continue;
            uint32_t b = pare_i8_absbits_(xm[i]);
            amax = b > amax ? b : amax;
            mn = xm[i] < mn ? xm[i] : mn;
            mx = xm[i] > mx ? xm[i] : mx;
        }
        if (sym)
            pare_i8_scale_from_maxabs_(pare_i8_bits_float_(amax), &gscale, &ginv);
        else
            pare_i8_asym_params_(mn, mx, &gscale, &ginv, &gz);
    } else if (a->mode == PARE_ACT_STATIC) {
        gscale = a->scale, ginv = 1.0f / a->scale, gz = sym ? 0 : a->zero;
    }
    for (int64_t m = 0; m < M; m++) {
        const float *r = xm + m * K;
        float s = gscale, inv = ginv;
        int32_t z = gz;
        if (rowbad[m]) {
            sx[m] = NAN;
            for (int64_t k = 0; k < K; k++) c[m * K + k] = 0;
            continue;
        }
        if (a->mode == PARE_ACT_DYN_TOKEN) {
            uint32_t amax = 0;
            float mn = r[0], mx = r[0];
            for (int64_t k = 0; k < K; k++) {
                uint32_t b = pare_i8_absbits_(r[k]);
                amax = b > amax ? b : amax;
                mn = r[k] < mn ? r[k] : mn;
                mx = r[k] > mx ? r[k] : mx;
            }
            if (sym)
                pare_i8_scale_from_maxabs_(pare_i8_bits_float_(amax), &s, &inv), z = 0;
            else
                pare_i8_asym_params_(mn, mx, &s, &inv, &z);
        }
        const float lo = sym ? -127.0f : (float)-z, hi = sym ? 127.0f : (float)(255 - z);
        for (int64_t k = 0; k < K; k++) c[m * K + k] = (int16_t)pare_i8_code_(r[k], inv, lo, hi);
        sx[m] = s;
    }

    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (int64_t)c[m * K + k] * w->q[n * K + k];
            float s = sx[m] * w->scale[n];
            float v = (float)acc * s;
            if (bias) v = v + bias[n];
            if (nO > 0) {
                double f = v;
                for (int64_t k = 0; k < K; k++)
                    if (O[k])
                        f += (double)x[m * K + k] * (W_f32 ? W_f32[n * K + k] : (double)((float)w->q[n * K + k] * w->scale[n]));
                v = (float)f;
            }
            y[m * N + n] = v;
        }
    if (n_outliers) *n_outliers = nO;
done:
    free(c), free(xm), free(sx), free(O), free(rowbad);
}
