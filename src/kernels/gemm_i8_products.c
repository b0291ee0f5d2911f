/* gemm_i8_products.c — the int32 products the int8 Linears and the int8 attention run on, exact on every
 * CPU: oneDNN's GEMMs where they are exact (VNNI), pare's own kernel where they are not (int16 vpmaddwd
 * on AVX2, plain C otherwise), and the weights packed once for oneDNN's int8 inner product (the VNNI
 * u8s8 path of pare_linear_i8_dynamic). pare_i8_onednn_exact_ is the one place that decides.
 *
 * Deliberately not here: pare's own VNNI micro-kernel (gemm_i8_vnni.c; the weight's packed copy holds
 * either its panels or this file's oneDNN packing, gemm_i8_weight.c), quantization and dequantization
 * (gemm_i8_rows.c), the choice of path per Linear (pare_linear_i8_path, gemm_i8.c).
 *
 * Entry points: pare_gemm_s8s8s32, pare_i8_weight_packed_bytes, pare_i8_weight_impl; internal:
 * pare_i8_gemm_u8s8s32_, pare_i8_gemm_s8s8s32_ (gemm_internal.h, for the int8 attention),
 * pare_i8_onednn_exact_, pare_i8_gemm_s8s8s32_exact_, pare_i8_pack_, pare_i8_packed_gemm_
 * (gemm_i8_internal.h).
 */
#include "kernels/gemm.h"

#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm_i8_internal.h"

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
int pare_i8_onednn_exact_(void)
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
dnnl_status_t pare_i8_gemm_s8s8s32_exact_(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K)
{
    if (!pare_i8_onednn_exact_()) {
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
    if (!pare_i8_onednn_exact_()) {
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
pare_onednn_ip *pare_i8_pack_(const int8_t *q, int64_t N, int64_t K)
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
int pare_i8_packed_gemm_(const pare_onednn_ip *p, int32_t *acc, const uint8_t *xu, int64_t M, void *spare,
                    size_t spare_bytes)
{
    return pare_onednn_ip_run(p, acc, xu, NULL, M, PARE_ONEDNN_POST_NONE, spare, spare_bytes, NULL) == PARE_OK ? 0 : -1;
}

size_t pare_i8_weight_packed_bytes(const pare_i8_weight *w)
{
    const pare_i8_packed *p = w ? w->packed : NULL;
    return !p ? 0 : p->panels ? p->panels->bytes : pare_onednn_ip_bytes(p->ip);
}

const char *pare_i8_weight_impl(const pare_i8_weight *w)
{
    if (!w || !w->q) return "none";
    pare_i8_path path = pare_linear_i8_path(w->K);
    const pare_i8_packed *p = w->packed;
    if (path == PARE_I8_PATH_U8S8 && p) return p->panels ? "pare:vnni-8x48" : pare_onednn_ip_impl(p->ip);
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
    dnnl_status_t st = pare_i8_gemm_s8s8s32_exact_(C, A, B, M, N, K);
    if (st != dnnl_success)
        return pare_fail(PARE_EINTERNAL, "gemm s8s8s32: oneDNN failed (status %d) for M=%lld N=%lld K=%lld", (int)st,
                         (long long)M, (long long)N, (long long)K);
    return PARE_OK;
}
