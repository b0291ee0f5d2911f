/* gemm_i8.c — int8 weights (per-channel), per-token activation quantization, int8 GEMM and the dynamic
 * int8 Linear.
 *
 * Scheme (LLM.int8()'s "vector-wise" quantization without the outlier split; Dettmers et al. 2022,
 * and oneDNN's "Int8 computation aspects" guide for the u8 shift):
 *   W[n,k] ≈ qw[n,k]·sw[n]      qw in [-127,127], sw[n] = max_k |W[n,k]| / 127     (once, offline)
 *   x[m,k] ≈ qx[m,k]·sx[m]      qx in [-127,127], sx[m] = max_k |x[m,k]| / 127     (each call)
 *   y[m,n] = (Σ_k qx[m,k]·qw[n,k]) · sx[m]·sw[n] + bias[n]
 *
 * The int32 product is oneDNN's. On CPUs with VNNI (vpdpbusd: u8 × s8 → s32) the activations are
 * written as u8 = qx + 128 straight out of the quantizer, and the product is oneDNN's int8 inner-product
 * primitive on weights reordered once at quantization (see "packed weights" below; dnnl_gemm_u8s8s32,
 * which repacks W per call, is the fallback). The shift is removed exactly in the dequantization pass: Σ(qx+128)·qw − 128·colsum[n], colsum[n] =
 * Σ_k qw[n,k] being stored with the weights. Without VNNI oneDNN's int8 kernels (u8s8 AND s8s8) add
 * pairs of products in saturating int16 (vpmaddubsw) and give wrong sums on random data, so there we
 * use our own exact kernel (int16 vpmaddwd on AVX2, plain C otherwise). For K so large that the u8
 * shift could overflow int32, VNNI CPUs use dnnl_gemm_s8s8s32 (exact with VNNI). The choice is made at
 * run time from oneDNN's effective ISA (pare_linear_i8_path).
 *
 * Quantization and dequantization are one pass each over their rows, OpenMP-parallel over rows, with
 * AVX-512 versions chosen at run time (pare_cpu_get) and portable scalar versions otherwise. Both give
 * the same bits as the scalar references in gemm_ref.c (same float operations, same rounding:
 * round-half-even, then clamp to ±127).
 *
 * Deliberately not here: a hand-written VNNI micro-kernel (oneDNN's packed inner product reaches ~99%
 * of the measured vpdpbusd peak at BERT shapes, see docs/kernels.md), static activation scales,
 * asymmetric schemes, outlier splitting, int4.
 *
 * Entry points: pare_i8_weight_quantize / _free / _bytes / _packed_bytes / _impl, pare_quantize_rows_s8
 * (+ _checked), pare_gemm_s8s8s32, pare_linear_i8_workspace, pare_linear_i8_dynamic, pare_linear_i8_path.
 */
#include "kernels/gemm.h"

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
#define U8S8_MAX_K ((int64_t)66311)
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

/* y(N) = (acc(N) − 128·colsum(N) if colsum) · (sx·sw(N)) + bias(N). acc may be y itself (the int32 sums
 * written in place by the packed path): each element is read before it is overwritten. */
static void dequant_row_generic(float *y, const int32_t *acc, const int32_t *colsum, const float *sw,
                                const float *bias, float sx, int64_t N)
{
    for (int64_t n = 0; n < N; n++) {
        int32_t a;
        memcpy(&a, &acc[n], sizeof a); /* acc may be y itself, read as int32 before y[n] is written */
        if (colsum) a -= 128 * colsum[n];
        float s = sx * sw[n];
        float v = (float)a * s;
        if (bias) v = v + bias[n];
        y[n] = v;
    }
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
                                                                  const float *sw, const float *bias, float sx,
                                                                  int64_t N)
{
    const __m512 vsx = _mm512_set1_ps(sx);
    int64_t n = 0;
    for (; n + 16 <= N; n += 16) {
        __m512i a = _mm512_loadu_si512(acc + n);
        if (colsum) a = _mm512_sub_epi32(a, _mm512_slli_epi32(_mm512_loadu_si512(colsum + n), 7));
        __m512 v = dequant16_avx512(a, vsx, _mm512_loadu_ps(sw + n));
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + n));
        _mm512_storeu_ps(y + n, v);
    }
    if (n < N) {
        __mmask16 t = tail_mask(N - n);
        __m512i a = _mm512_maskz_loadu_epi32(t, acc + n);
        if (colsum) a = _mm512_sub_epi32(a, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(t, colsum + n), 7));
        __m512 v = dequant16_avx512(a, vsx, _mm512_maskz_loadu_ps(t, sw + n));
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(t, bias + n));
        _mm512_mask_storeu_ps(y + n, t, v);
    }
}
#endif

/* The row kernels for this CPU, picked once per call (pare_cpu_get caches the detection). */
typedef struct row_kernels {
    uint32_t (*maxabs_bits)(const float *x, int64_t K);
    void (*quant)(uint8_t *q, const float *x, int64_t K, float inv, int shift);
    void (*dequant)(float *y, const int32_t *acc, const int32_t *colsum, const float *sw, const float *bias, float sx,
                    int64_t N);
} row_kernels;

static row_kernels pick_row_kernels(void)
{
    row_kernels r = {maxabs_bits_generic, quant_row_generic, dequant_row_generic};
#ifdef PARE_GEMM_X86
    const pare_cpu *cpu = pare_cpu_get();
    if (cpu->avx512f) r = (row_kernels){maxabs_bits_avx512, quant_row_avx512, dequant_row_avx512};
    if (cpu->avx512f && cpu->avx512bw) r.quant = quant_row_avx512bw;
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

static void gemm_s8_rows_generic(int32_t *C, const int8_t *A, const int8_t *B, int64_t m0, int64_t m1, int64_t N,
                                 int64_t K)
{
    for (int64_t m = m0; m < m1; m++)
        for (int64_t n = 0; n < N; n++) {
            int32_t s = 0;
            for (int64_t k = 0; k < K; k++) s += (int32_t)A[m * K + k] * (int32_t)B[n * K + k];
            C[m * N + n] = s;
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

/* C rows [m0, m1) of A(M,K)·B(N,K)^T. Rows and columns past the edge reuse the last one (computed,
 * not stored), so the tile is always 4×2. */
__attribute__((target("avx2"))) static void gemm_s8_rows_avx2(int32_t *C, const int8_t *A, const int8_t *B, int64_t m0,
                                                              int64_t m1, int64_t N, int64_t K)
{
    const int64_t K16 = K & ~(int64_t)15;
    for (int64_t m = m0; m < m1; m += 4) {
        const int8_t *ap[4];
        for (int i = 0; i < 4; i++) ap[i] = A + (m + i < m1 ? m + i : m1 - 1) * K;
        for (int64_t n = 0; n < N; n += 2) {
            const int8_t *bp0 = B + n * K, *bp1 = B + (n + 1 < N ? n + 1 : n) * K;
            __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                    c31 = c00;
            for (int64_t k = 0; k < K16; k += 16) {
                __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp0 + k)));
                __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(bp1 + k)));
                __m256i a;
#define PARE_MADD2(i)                                                                            \
    a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(ap[i] + k)));     \
    c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(a, b0));                               \
    c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(a, b1));
                PARE_MADD2(0)
                PARE_MADD2(1)
                PARE_MADD2(2)
                PARE_MADD2(3)
#undef PARE_MADD2
            }
            int32_t r[4][2] = {{hsum_avx2(c00), hsum_avx2(c01)},
                               {hsum_avx2(c10), hsum_avx2(c11)},
                               {hsum_avx2(c20), hsum_avx2(c21)},
                               {hsum_avx2(c30), hsum_avx2(c31)}};
            for (int i = 0; i < 4; i++)
                for (int64_t k = K16; k < K; k++) {
                    r[i][0] += (int32_t)ap[i][k] * bp0[k];
                    r[i][1] += (int32_t)ap[i][k] * bp1[k];
                }
            for (int i = 0; i < 4 && m + i < m1; i++)
                for (int j = 0; j < 2 && n + j < N; j++) C[(m + i) * N + n + j] = r[i][j];
        }
    }
}
#endif

/* oneDNN's kernels are exact only with VNNI (see above); this is the one place that decides. */
static int onednn_int8_exact(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_vnni) == (unsigned)dnnl_cpu_isa_avx512_core_vnni ||
           (isa & (unsigned)dnnl_cpu_isa_avx2_vnni) == (unsigned)dnnl_cpu_isa_avx2_vnni;
}

/* C(M,N) = A(M,K)·B(N,K)^T exactly, by our kernel (for CPUs where oneDNN's is not exact). */
static void gemm_s8s8s32_portable(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K)
{
    void (*rows)(int32_t *, const int8_t *, const int8_t *, int64_t, int64_t, int64_t, int64_t) = gemm_s8_rows_generic;
#ifdef PARE_GEMM_X86
    if (pare_cpu_get()->avx2) rows = gemm_s8_rows_avx2;
#endif
    int64_t blocks = (M + 3) / 4;
#pragma omp parallel for schedule(static) if (M * N * K >= (int64_t)1 << 20 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) rows(C, A, B, 4 * b, 4 * b + 4 < M ? 4 * b + 4 : M, N, K);
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

    /* The packed inner product writes the int32 sums straight into y (same size as acc; dequantized in
     * place below, one buffer less to stream through the caches); acc's room serves as its scratchpad.
     * x is read completely above, so y may even be x. */
    int32_t *sums = acc;
    if (shift && w->packed && i8p_gemm(w->packed, (int32_t *)(void *)y, xq, M, acc, (size_t)(M * N) * sizeof(int32_t)) == 0)
        sums = (int32_t *)(void *)y;
    else {
        const int32_t co = 0;
        dnnl_status_t st;
        if (shift)
            st = dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, xq, K, 0, w->q, K, 0, 0.0f, acc, N, &co);
        else
            st = gemm_s8s8s32_exact(acc, (const int8_t *)xq, w->q, M, N, K);
        if (st != dnnl_success)
            return pare_fail(PARE_EINTERNAL, "linear int8: oneDNN %s gemm failed (status %d) for M=%lld N=%lld K=%lld",
                             pare_i8_path_name(path), (int)st, (long long)M, (long long)N, (long long)K);
    }

    row_kernels rk = pick_row_kernels();
    const int32_t *colsum = shift ? w->colsum : NULL;
#pragma omp parallel for schedule(static) if (M * N >= PAR_MIN_ELEMS && M > 1)
    for (int64_t m = 0; m < M; m++) rk.dequant(y + m * N, sums + m * N, colsum, w->scale, bias, sx[m], N);
    return PARE_OK;
}
