/* qblock_k_x86.c — the SIMD parts of the ggml-block kinds' Linear (qblock_k.c): unpacking a row of Q5_0 /
 * Q5_1 / Q4_K / Q5_K / Q6_K blocks into unsigned levels (AVX2), and the integer dot products
 * P_b = Σ_g c_g·Σ_{k in g} u_k·q_k per block (AVX2: vpmaddubsw + vpmaddwd with the multipliers; AVX-512:
 * vpmaddubsw + vpmaddwd on 512 bits, the multipliers expanded per pair of elements once per row). u <= 63 and |q| <= 128, so vpmaddubsw's int16 pair sums
 * (<= 2·63·128) never saturate and every int32 sum is exact: P_b is the plain-C value bit for bit, and the
 * float combination stays in qblock_k.c (one order for every ISA).
 *
 * Deliberately not here: interleaving several rows per pass (ggml's repacked Q4_K "x8" layouts), fusing the
 * unpack into the dot product (a row is unpacked once per call and reused by every token).
 *
 * Q5_0 / Q5_1 (blocks of 32, no multipliers) take a fused path, pare_qbk_dot32_*: the integer sums of 8
 * blocks at a time (one horizontal reduction for 8), then qblock_k.c's combination computed on 8 blocks with
 * the same elementwise float operations into 8 running sums (the reference's order for these kinds), so the
 * bits stay the reference's.
 *
 * The k-quants take pare_qbk_dotk_*: per super-block the integer sums and the offset / min sums (one
 * vpmaddwd of the 16 multipliers or mins with the activations' bsums), then qblock_k.c's float combination
 * for that block, operation for operation.
 *
 * Entry points (qblock_internal.h): pare_qbk_unpack_avx2_, pare_qbk_idot_avx2_, pare_qbk_idot_vnni_,
 * pare_qbk_dot32_avx2_, pare_qbk_dot32_vnni_, pare_qbk_dotk_avx2_, pare_qbk_dotk_vnni_.
 */
#include <string.h>

#include "kernels/qblock_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* ---- unpacking ---- */

/* 32 bytes: 0x10 where bit k of qh is set (ggml's bytes_from_bits_32, masked to bit 4). */
T2 static inline __m256i qh_bits(uint32_t qh)
{
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i t = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    t = _mm256_cmpeq_epi8(_mm256_and_si256(t, bit), bit);
    return _mm256_and_si256(t, _mm256_set1_epi8(0x10));
}

T2 void pare_qbk_unpack_avx2_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K)
{
    if (kind == PARE_QB_Q5_0 || kind == PARE_QB_Q5_1) {
        /* d (and m) only: the Q5 dot products (pare_qbk_dot32_*) take no multipliers (c = 1) */
        const int bytes = kind == PARE_QB_Q5_0 ? 22 : 24;
        for (int64_t b = 0; b < K / 32; b++) {
            uint16_t h[2];
            memcpy(h, row + b * bytes, 4);
            r->fa[b] = _cvtsh_ss(h[0]);
            r->fb[b] = kind == PARE_QB_Q5_1 ? _cvtsh_ss(h[1]) : 0.0f;
        }
    } else {
        pare_qbk_unpack_scales_(r, kind, row, K);
        /* c of every pair of elements, for vpmaddwd after vpmaddubsw: 8 copies of each group's multiplier */
        for (int64_t g = 0; g < K / 16; g++)
            _mm_storeu_si128((__m128i *)(void *)(r->c2 + 8 * g), _mm_set1_epi16(r->c[g]));
        if (kind != PARE_QB_Q6_K)
            for (int64_t g = 0; g < K / 16; g++) r->mn2[g] = r->mn[g / 2];
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1), m30 = _mm256_set1_epi8(0x30);
    uint8_t *u = r->u;
    switch (kind) {
    case PARE_QB_Q5_0:
    case PARE_QB_Q5_1: {
        const int bytes = kind == PARE_QB_Q5_0 ? 22 : 24, o = kind == PARE_QB_Q5_0 ? 2 : 4;
        for (int64_t b = 0; b < K / 32; b++) {
            const uint8_t *blk = row + b * bytes;
            uint32_t qh;
            memcpy(&qh, blk + o, 4);
            __m128i qs = _mm_loadu_si128((const __m128i *)(const void *)(blk + o + 4));
            __m256i v = _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs);
            v = _mm256_or_si256(_mm256_and_si256(v, m4), qh_bits(qh));
            _mm256_storeu_si256((__m256i *)(void *)(u + 32 * b), v);
        }
        break;
    }
    case PARE_QB_Q4_K:
        for (int64_t b = 0; b < K / 256; b++) {
            const uint8_t *qs = row + b * 144 + 16;
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * j));
                _mm256_storeu_si256((__m256i *)(void *)(u + 256 * b + 64 * j), _mm256_and_si256(v, m4));
                _mm256_storeu_si256((__m256i *)(void *)(u + 256 * b + 64 * j + 32),
                                    _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            }
        }
        break;
    case PARE_QB_Q5_K:
        for (int64_t b = 0; b < K / 256; b++) {
            const uint8_t *blk = row + b * 176;
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 16));
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 48 + 32 * j));
                __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j)), m1);
                __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j + 1)), m1);
                __m256i lo = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_slli_epi16(h0, 4));
                __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_slli_epi16(h1, 4));
                _mm256_storeu_si256((__m256i *)(void *)(u + 256 * b + 64 * j), lo);
                _mm256_storeu_si256((__m256i *)(void *)(u + 256 * b + 64 * j + 32), hi);
            }
        }
        break;
    case PARE_QB_Q6_K:
        for (int64_t b = 0; b < K / 256; b++) {
            const uint8_t *blk = row + b * 210;
            for (int h = 0; h < 2; h++) {
                __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 * h));
                __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 * h + 32));
                __m256i qh = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 128 + 32 * h));
                uint8_t *o = u + 256 * b + 128 * h;
                __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
                __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
                __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
                __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                             _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
                _mm256_storeu_si256((__m256i *)(void *)(o + 0), q1);
                _mm256_storeu_si256((__m256i *)(void *)(o + 32), q2);
                _mm256_storeu_si256((__m256i *)(void *)(o + 64), q3);
                _mm256_storeu_si256((__m256i *)(void *)(o + 96), q4);
            }
        }
        break;
    default: pare_qbk_unpack_scalar_(r, kind, row, K); break;
    }
}

/* ---- integer dot products ---- */

T2 static inline int32_t hsum_i32x8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The k-quants (qb = 256); c2 = the multiplier of each pair of elements (pare_qbk_unpack_avx2_). */
T2 void pare_qbk_idot_avx2_(int32_t *P, const uint8_t *u, const int16_t *c2, const int8_t *q, int64_t K, int qb)
{
    for (int64_t b = 0; b < K / qb; b++) {
        __m256i acc = _mm256_setzero_si256();
        for (int64_t k = b * qb; k < b * qb + qb; k += 32) {
            __m256i uv = _mm256_loadu_si256((const __m256i *)(const void *)(u + k));
            __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)(q + k));
            __m256i t = _mm256_maddubs_epi16(uv, qv); /* 16 int16, one per pair: lanes 0-7 group k/16, 8-15 the next */
            __m256i cv = _mm256_loadu_si256((const __m256i *)(const void *)(c2 + k / 2));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(t, cv));
        }
        P[b] = hsum_i32x8(acc);
    }
}

/* The same with 512-bit AVX512BW (the name says VNNI: the ISA tier it runs on; vpdpbusd would need a
 * vpmulld per step for the multipliers, vpmaddubsw + vpmaddwd fold them in). */
T512 void pare_qbk_idot_vnni_(int32_t *P, const uint8_t *u, const int16_t *c2, const int8_t *q, int64_t K, int qb)
{
    for (int64_t b = 0; b < K / qb; b++) {
        __m512i acc = _mm512_setzero_si512();
        for (int64_t k = b * qb; k < b * qb + qb; k += 64) {
            __m512i uv = _mm512_loadu_si512((const void *)(u + k));
            __m512i qv = _mm512_loadu_si512((const void *)(q + k));
            __m512i t = _mm512_maddubs_epi16(uv, qv);
            __m512i cv = _mm512_loadu_si512((const void *)(c2 + k / 2));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(t, cv));
        }
        P[b] = _mm512_reduce_add_epi32(acc);
    }
}

/* ---- k-quants: integer sums and combination fused, one super-block at a time ----
 * Per super-block: P = Σ c·u·q (as idot), T = Σ_g mn2_g·bs_g (Q4_K/Q5_K: the Mn of qblock_k.c) or Σ_g c_g·bs_g
 * (Q6_K: the offset sum), both exact int32 (one vpmaddwd of 16 int16 pairs), then qblock_k.c's float
 * combination for the block, operation for operation. */

T2 static inline float dotk_combine(pare_qb_kind kind, int32_t P, int32_t T, float fa, float fb, float d)
{
    if (kind == PARE_QB_Q6_K) return (fa * d) * (float)(P - 32 * T);
    float v = (fa * d) * (float)P;
    return v - (fb * d) * (float)T;
}

T2 float pare_qbk_dotk_avx2_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                             int64_t K)
{
    const int16_t *tw = kind == PARE_QB_Q6_K ? r->c : r->mn2;
    float acc = 0.0f;
    for (int64_t b = 0; b < K / 256; b++) {
        __m256i a = _mm256_setzero_si256();
        for (int64_t k = b * 256; k < b * 256 + 256; k += 32) {
            __m256i t = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(r->u + k)),
                                             _mm256_loadu_si256((const __m256i *)(const void *)(q + k)));
            a = _mm256_add_epi32(a, _mm256_madd_epi16(t, _mm256_loadu_si256((const __m256i *)(const void *)(r->c2 + k / 2))));
        }
        __m256i tt = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(tw + 16 * b)),
                                       _mm256_loadu_si256((const __m256i *)(const void *)(bs + 16 * b)));
        acc += dotk_combine(kind, hsum_i32x8(a), hsum_i32x8(tt), r->fa[b], r->fb[b], d[b]);
    }
    return acc;
}

T512 float pare_qbk_dotk_vnni_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs,
                               const float *d, int64_t K)
{
    const int16_t *tw = kind == PARE_QB_Q6_K ? r->c : r->mn2;
    float acc = 0.0f;
    for (int64_t b = 0; b < K / 256; b++) {
        __m512i a = _mm512_setzero_si512();
        for (int64_t k = b * 256; k < b * 256 + 256; k += 64) {
            __m512i t = _mm512_maddubs_epi16(_mm512_loadu_si512((const void *)(r->u + k)),
                                             _mm512_loadu_si512((const void *)(q + k)));
            a = _mm512_add_epi32(a, _mm512_madd_epi16(t, _mm512_loadu_si512((const void *)(r->c2 + k / 2))));
        }
        __m256i tt = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(tw + 16 * b)),
                                       _mm256_loadu_si256((const __m256i *)(const void *)(bs + 16 * b)));
        acc += dotk_combine(kind, _mm512_reduce_add_epi32(a), hsum_i32x8(tt), r->fa[b], r->fb[b], d[b]);
    }
    return acc;
}

/* ---- Q5_0 / Q5_1: integer sums of 8 blocks at a time, combined in the reference's order ---- */

/* The 8 int32 lanes of v0..v7 summed: lane j of the result = Σ v_j (blocks b..b+7). */
T2 static inline __attribute__((always_inline)) __m256i reduce8(const __m256i *v)
{
    __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    __m256i a = _mm256_hadd_epi32(h01, h23), c = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20), _mm256_permute2x128_si256(a, c, 0x31));
}

/* qblock_k.c's combine for Q5_0 / Q5_1, 8 blocks per step: I = P − o·(bs_{2b} + bs_{2b+1}), v = (fa·d)·I
 * [+ fb·s], products elementwise as in the scalar code, block b added to running sum b mod 8 (one register),
 * reduced at the end in the reference's tree. */
#define DOT32_BODY(BLOCKSUM)                                                                                      \
    const int64_t nb = K / 32;                                                                                    \
    const __m256i ones = _mm256_set1_epi16(1);                                                                    \
    __m256 accv = _mm256_setzero_ps();                                                                            \
    for (int64_t b = 0; b < nb; b += 8) {                                                                         \
        const int cnt = nb - b < 8 ? (int)(nb - b) : 8;                                                           \
        __m256i t[8];                                                                                             \
        if (cnt == 8) {                                                                                           \
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++)                                                   \
                t[j] = BLOCKSUM(_mm256_loadu_si256((const __m256i *)(const void *)(r->u + 32 * (b + j))),          \
                                _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * (b + j))));            \
        } else {                                                                                                  \
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++)                                                   \
                t[j] = j < cnt ? BLOCKSUM(_mm256_loadu_si256((const __m256i *)(const void *)(r->u + 32 * (b + j))), \
                                          _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * (b + j))))   \
                               : _mm256_setzero_si256();                                                          \
        }                                                                                                         \
        __m256i I = reduce8(t);                                                                                   \
        const __m256i lm = _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
        if (kind == PARE_QB_Q5_0) {                                                                               \
            __m256i bsv = _mm256_maskload_epi32((const int *)(const void *)(bs + 2 * b), lm);                     \
            I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_madd_epi16(bsv, ones), 4));                          \
        }                                                                                                         \
        __m256 fa = _mm256_maskload_ps(r->fa + b, lm), dv = _mm256_maskload_ps(d + b, lm);                        \
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(fa, dv), _mm256_cvtepi32_ps(I));                                   \
        if (kind == PARE_QB_Q5_1)                                                                                 \
            v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_maskload_ps(r->fb + b, lm), _mm256_maskload_ps(s + b, lm))); \
        v = _mm256_and_ps(v, _mm256_castsi256_ps(lm)); /* blocks past the end: +0.0f, as the reference */         \
        accv = _mm256_add_ps(accv, v);                                                                            \
    }                                                                                                             \
    float l[8];                                                                                                   \
    _mm256_storeu_ps(l, accv);                                                                                    \
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));

T2 static inline __attribute__((always_inline)) __m256i blocksum_avx2(__m256i uv, __m256i qv)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(uv, qv), _mm256_set1_epi16(1));
}

T512 static inline __attribute__((always_inline)) __m256i blocksum_vnni(__m256i uv, __m256i qv)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), uv, qv);
}

T2 float pare_qbk_dot32_avx2_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                              const float *s, int64_t K)
{
    DOT32_BODY(blocksum_avx2)
}

T512 float pare_qbk_dot32_vnni_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs,
                                const float *d, const float *s, int64_t K)
{
    DOT32_BODY(blocksum_vnni)
}

#else

float pare_qbk_dotk_avx2_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                          int64_t K)
{
    (void)kind, (void)r, (void)q, (void)bs, (void)d, (void)K;
    return 0.0f; /* never called: qblock_k.c takes it on x86 only */
}
float pare_qbk_dotk_vnni_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                          int64_t K)
{
    (void)kind, (void)r, (void)q, (void)bs, (void)d, (void)K;
    return 0.0f;
}

float pare_qbk_dot32_avx2_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                           const float *s, int64_t K)
{
    (void)kind, (void)r, (void)q, (void)bs, (void)d, (void)s, (void)K;
    return 0.0f; /* never called: qblock_k.c takes it on x86 only */
}
float pare_qbk_dot32_vnni_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                           const float *s, int64_t K)
{
    (void)kind, (void)r, (void)q, (void)bs, (void)d, (void)s, (void)K;
    return 0.0f;
}

void pare_qbk_unpack_avx2_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K)
{
    pare_qbk_unpack_scalar_(r, kind, row, K);
}
void pare_qbk_idot_avx2_(int32_t *P, const uint8_t *u, const int16_t *c, const int8_t *q, int64_t K, int qb)
{
    pare_qbk_idot_scalar_(P, u, c, q, K, qb);
}
void pare_qbk_idot_vnni_(int32_t *P, const uint8_t *u, const int16_t *c, const int8_t *q, int64_t K, int qb)
{
    pare_qbk_idot_scalar_(P, u, c, q, K, qb);
}

#endif
