/* attn_half.c — attention's batched products on bf16 operands, f32 accumulation (attn_half.h).
 *
 * Layouts of the DPBF16 implementation (vdpbf16ps multiplies pairs of bf16 in each 32-bit lane and adds
 * both products into the lane's f32):
 *   keys kp:   [key block of 16][d pair][16 keys][2]   — lane = one key, pair = (k[2p], k[2p+1]); the keys
 *              padded with zeros to a multiple of 32 (two blocks per micro-tile), D to a multiple of 2;
 *   values vp: [key pair][column block of 16][16 columns][2] — lane = one column, pair = two keys; the keys
 *              padded to a multiple of 2, the columns to a multiple of 64 (four blocks per micro-tile);
 *   P:         each row rounded to bf16 (pare_cast_to_half_fast: the scalar cast's bits), zero-padded to an
 *              even length, read as 32-bit key pairs and broadcast.
 * Micro-kernels: S, QK_MR query rows × 32 keys (2·QK_MR accumulators); O, PV_MR rows × 64 columns (16
 * accumulators). Row remainders recompute the last row (nothing is stored for it twice), column
 * remainders compute on the zero padding and store with a mask.
 *
 * The WIDEN implementation: pack_k / pack_v widen to f32 rows (n, D); qk widens the query rows into the
 * scratch and runs pare_sgemm; pv rounds P onto the bf16 grid in the scratch (pare_cast_round_fast) and
 * runs pare_sgemm.
 *
 * Deliberately not here: AMX tiles, splitting D across calls, anything of the softmax.
 */
#include "kernels/attn_half.h"

#include <string.h>

#include "core/cpu.h"
#include "kernels/cast.h"
#include "kernels/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define ATTN16_X86 1
#include <immintrin.h>
#else
#define ATTN16_X86 0
#endif

#define QK_MR 6
#define PV_MR 4

static inline int64_t up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
static inline size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

int pare_attn16_has_dpbf16(void)
{
    const pare_cpu *c = pare_cpu_get();
    return ATTN16_X86 && c->avx512bf16 && c->avx512f && c->avx512bw && c->avx512vl;
}

pare_attn16_impl pare_attn16_resolve(pare_attn16_impl want)
{
    if (want == PARE_ATTN16_WIDEN) return PARE_ATTN16_WIDEN;
    return pare_attn16_has_dpbf16() ? PARE_ATTN16_DPBF16 : PARE_ATTN16_WIDEN;
}

const char *pare_attn16_impl_name(pare_attn16_impl im)
{
    static const char *const names[] = {[PARE_ATTN16_AUTO] = "auto", [PARE_ATTN16_DPBF16] = "dpbf16",
                                        [PARE_ATTN16_WIDEN] = "widen"};
    _Static_assert(sizeof names / sizeof names[0] == PARE_ATTN16_IMPL_COUNT, "attn16 impl names out of date");
    return (unsigned)im < PARE_ATTN16_IMPL_COUNT ? names[im] : "?";
}

size_t pare_attn16_kpack_bytes(int64_t n, int64_t D)
{
    return zmax((size_t)(up(n, 32) * up(D, 2)) * 2, (size_t)(n * D) * sizeof(float));
}

size_t pare_attn16_vpack_bytes(int64_t n, int64_t D)
{
    return zmax((size_t)(up(n, 2) * up(D, 64)) * 2, (size_t)(n * D) * sizeof(float));
}

size_t pare_attn16_scratch_bytes(int64_t nq, int64_t nk, int64_t D)
{
    size_t widen = zmax((size_t)(nq * D), (size_t)(nq * nk)) * sizeof(float);
    return zmax(widen, (size_t)(nq * up(nk, 2)) * 2);
}

/* ---- WIDEN ---- */

static void widen_rows(float *dst, const uint16_t *src, int64_t ld, int64_t n, int64_t D)
{
    for (int64_t r = 0; r < n; r++) pare_cast_from_half_fast(dst + r * D, src + r * ld, PARE_BF16, D);
}

/* ---- DPBF16 ---- */
#if ATTN16_X86
#define T16 __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))
#define T16_INLINE T16 static inline __attribute__((always_inline))

/* The bf16 pair (q[2p], q[2p+1]) as one 32-bit lane (element 2p in the low half, as vdpbf16ps pairs them). */
static inline uint32_t pair_at(const uint16_t *q, int64_t p)
{
    uint32_t u;
    memcpy(&u, q + 2 * p, sizeof u);
    return u;
}

static void pack_k_dp(uint16_t *kp, const uint16_t *k, int64_t ld, int64_t n, int64_t D)
{
    const int64_t D2 = up(D, 2) / 2, full = D / 2, nb = up(n, 32) / 16;
    memset(kp, 0, (size_t)(nb * D2 * 32) * 2);
    uint32_t *kp32 = (uint32_t *)kp; /* [block][pair][16 keys]: a 16 × D2 transpose of bf16 pairs per block */
    for (int64_t j = 0; j < n; j++) {
        uint32_t *dst = kp32 + (j / 16) * D2 * 16 + (j % 16);
        const uint16_t *src = k + j * ld;
        for (int64_t p = 0; p < full; p++) dst[p * 16] = pair_at(src, p);
        if (full < D2) dst[full * 16] = src[D - 1];
    }
}

static void pack_v_dp(uint16_t *vp, const uint16_t *v, int64_t ld, int64_t n, int64_t D)
{
    const int64_t Dp = up(D, 64), n2 = up(n, 2);
    memset(vp, 0, (size_t)(n2 * Dp) * 2);
    for (int64_t j = 0; j < n; j++) {
        uint16_t *dst = vp + (j / 2) * Dp * 2 + (j & 1);
        const uint16_t *src = v + j * ld;
        for (int64_t d = 0; d < D; d++) dst[d * 2] = src[d];
    }
}

static inline __mmask16 cols_mask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* S rows [0, mr) × keys [0, nc) (nc <= 32) of one micro-tile; kb points at its first key block. */
T16_INLINE void qk_tile(float *S, int64_t lds, const uint16_t *q, int64_t ldq, int mr, const uint16_t *kb, int64_t D,
                        int64_t nc, float scale)
{
    const int64_t D2 = up(D, 2) / 2, full = D / 2;
    const uint16_t *row[QK_MR];
    #pragma GCC unroll 8
    for (int r = 0; r < QK_MR; r++) row[r] = q + (r < mr ? r : mr - 1) * ldq;
    __m512 acc[QK_MR][2];
    #pragma GCC unroll 8
    for (int r = 0; r < QK_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t *b1base = kb + D2 * 32;
    for (int64_t p = 0; p < full; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(kb + p * 32), b1 = (__m512bh)_mm512_loadu_si512(b1base + p * 32);
        #pragma GCC unroll 8
        for (int r = 0; r < QK_MR; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)pair_at(row[r], p));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
    if (full < D2) { /* D odd: the last channel alone, its pair's high half 0 */
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(kb + full * 32),
                       b1 = (__m512bh)_mm512_loadu_si512(b1base + full * 32);
        #pragma GCC unroll 8
        for (int r = 0; r < QK_MR; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)row[r][D - 1]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
    const __m512 sc = _mm512_set1_ps(scale);
    const __mmask16 m0 = cols_mask(nc), m1 = cols_mask(nc - 16 > 0 ? nc - 16 : 0);
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(S + r * lds, m0, _mm512_mul_ps(acc[r][0], sc));
        if (m1) _mm512_mask_storeu_ps(S + r * lds + 16, m1, _mm512_mul_ps(acc[r][1], sc));
    }
}

T16 static void qk_dp(float *S, int64_t lds, const uint16_t *q, int64_t ldq, int64_t nq, const uint16_t *kp,
                      int64_t nk, int64_t D, float scale)
{
    const int64_t D2 = up(D, 2) / 2;
    for (int64_t j0 = 0; j0 < nk; j0 += 32) {
        const uint16_t *kb = kp + (j0 / 16) * D2 * 32;
        const int64_t nc = nk - j0 < 32 ? nk - j0 : 32;
        for (int64_t i0 = 0; i0 < nq; i0 += QK_MR) {
            const int mr = (int)(nq - i0 < QK_MR ? nq - i0 : QK_MR);
            qk_tile(S + i0 * lds + j0, lds, q + i0 * ldq, ldq, mr, kb, D, nc, scale);
        }
    }
}

/* o rows [0, mr) × columns [c0, c0 + 64) ∩ [0, D) of one micro-tile: beta·o + Σ_pairs p16 · vp. */
T16_INLINE void pv_tile(float *o, int64_t ldo, float beta, const uint32_t *p16, int64_t ldp2, int mr, const uint16_t *vp,
                        int64_t n2, int64_t Dp, int64_t c0, int64_t D)
{
    const uint32_t *row[PV_MR];
    #pragma GCC unroll 8
    for (int r = 0; r < PV_MR; r++) row[r] = p16 + (r < mr ? r : mr - 1) * ldp2;
    __m512 acc[PV_MR][4];
    #pragma GCC unroll 8
    for (int r = 0; r < PV_MR; r++)
        #pragma GCC unroll 8
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    const uint16_t *vb = vp + c0 * 2;
    for (int64_t p = 0; p < n2; p++, vb += Dp * 2) {
        __m512bh b[4];
        #pragma GCC unroll 8
        for (int c = 0; c < 4; c++) b[c] = (__m512bh)_mm512_loadu_si512(vb + c * 32);
        #pragma GCC unroll 8
        for (int r = 0; r < PV_MR; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)row[r][p]);
            #pragma GCC unroll 8
            for (int c = 0; c < 4; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
        }
    }
    #pragma GCC unroll 8
    for (int c = 0; c < 4; c++) {
        const int64_t left = D - c0 - 16 * c;
        if (left <= 0) break;
        const __mmask16 m = cols_mask(left);
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            float *dst = o + r * ldo + c0 + 16 * c;
            __m512 y = acc[r][c];
            if (beta != 0.0f) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, dst));
            _mm512_mask_storeu_ps(dst, m, y);
        }
    }
}

T16 static void pv_dp(float *o, int64_t ldo, float beta, const uint32_t *p16, int64_t ldp2, int64_t nq,
                      const uint16_t *vp, int64_t n2, int64_t D)
{
    const int64_t Dp = up(D, 64);
    for (int64_t c0 = 0; c0 < D; c0 += 64)
        for (int64_t i0 = 0; i0 < nq; i0 += PV_MR) {
            const int mr = (int)(nq - i0 < PV_MR ? nq - i0 : PV_MR);
            pv_tile(o + i0 * ldo, ldo, beta, p16 + i0 * ldp2, ldp2, mr, vp, n2, Dp, c0, D);
        }
}
#endif /* ATTN16_X86 */

/* ---- entry points ---- */

void pare_attn16_pack_k(pare_attn16_impl im, void *kp, const uint16_t *k, int64_t ld, int64_t n, int64_t D)
{
#if ATTN16_X86
    if (pare_attn16_resolve(im) == PARE_ATTN16_DPBF16) {
        pack_k_dp(kp, k, ld, n, D);
        return;
    }
#endif
    (void)im;
    widen_rows(kp, k, ld, n, D);
}

void pare_attn16_pack_v(pare_attn16_impl im, void *vp, const uint16_t *v, int64_t ld, int64_t n, int64_t D)
{
#if ATTN16_X86
    if (pare_attn16_resolve(im) == PARE_ATTN16_DPBF16) {
        pack_v_dp(vp, v, ld, n, D);
        return;
    }
#endif
    (void)im;
    widen_rows(vp, v, ld, n, D);
}

void pare_attn16_qk(pare_attn16_impl im, float *S, int64_t lds, const uint16_t *q, int64_t ldq, int64_t nq,
                    const void *kp, int64_t nk, int64_t D, float scale, void *scratch)
{
    if (nq <= 0 || nk <= 0) return;
#if ATTN16_X86
    if (pare_attn16_resolve(im) == PARE_ATTN16_DPBF16) {
        qk_dp(S, lds, q, ldq, nq, kp, nk, D, scale);
        return;
    }
#endif
    (void)im;
    float *qw = scratch; /* (nq, D) */
    widen_rows(qw, q, ldq, nq, D);
    pare_sgemm(0, 1, nq, nk, D, scale, qw, D, kp, D, 0.0f, S, lds);
}

void pare_attn16_pv(pare_attn16_impl im, float *o, int64_t ldo, float beta, const float *P, int64_t ldp, int64_t nq,
                    const void *vp, int64_t nk, int64_t D, void *scratch)
{
    if (nq <= 0) return;
    if (nk <= 0) {
        if (beta == 0.0f)
            for (int64_t r = 0; r < nq; r++) memset(o + r * ldo, 0, (size_t)D * sizeof(float));
        return;
    }
#if ATTN16_X86
    if (pare_attn16_resolve(im) == PARE_ATTN16_DPBF16) {
        const int64_t n2 = up(nk, 2) / 2;
        uint16_t *p16 = scratch; /* (nq, 2·n2) bf16: each row rounded, an odd tail padded with 0 */
        for (int64_t r = 0; r < nq; r++) {
            pare_cast_to_half_fast(p16 + r * 2 * n2, PARE_BF16, P + r * ldp, nk);
            if (nk & 1) p16[r * 2 * n2 + nk] = 0;
        }
        pv_dp(o, ldo, beta, (const uint32_t *)p16, n2, nq, vp, n2, D);
        return;
    }
#endif
    (void)im;
    float *pr = scratch; /* (nq, nk): P on the bf16 grid */
    for (int64_t r = 0; r < nq; r++) pare_cast_round_fast(pr + r * nk, P + r * ldp, PARE_BF16, nk);
    pare_sgemm(0, 0, nq, D, nk, 1.0f, pr, nk, vp, D, beta, o, ldo);
}
