/* qblock_k.c — the "ggml-block" kinds of qblock.h: llama.cpp's Q5_0, Q5_1 and the k-quants Q4_K, Q5_K, Q6_K,
 * plus the Q8_K activation blocks: quantizers, dequantizers, activation quantization, the plain-C integer
 * dot products, and the Linear driver that runs them (or the AVX2 / AVX-512 ones of qblock_k_x86.c).
 *
 * The quantizers reproduce ggml-quants.c's reference quantizers bit for bit (quantize_row_q5_0_ref,
 * _q5_1_ref, _q4_K_ref, _q5_K_ref, _q6_K_ref, _q8_K_ref, with the helpers nearest_int, make_qkx2_quants and
 * make_qx_quants, rmse_type 1, no importance weights): the same float operations in the same order, so
 * this file is compiled without FP contraction (the Makefile's -std=c11 implies -ffp-contract=off). The
 * blocks are kept as ggml lays them out (qblock.h); pare only adds the checks: NaN/Inf and fp16 overflow of
 * d / dmin / m are reported instead of written.
 *
 * The Linear (weights stay in their blocks; activations quantized per call):
 *   1. per row n, the blocks are unpacked into u (K unsigned bytes, natural order: Q4_K 0..15, Q5_* and Q5_K
 *      0..31, Q6_K 0..63), c (K/16 int16: the integer multiplier of each 16 elements: 1, sc_j, or Q6_K's
 *      int8 sc), mn (K/32 int16: Q4_K/Q5_K's 6-bit mins), fa (per block: d) and fb (per block: dmin or m);
 *   2. per token, the integer part P_b = Σ_{16-groups g of block b} c_g·Σ_{k in g} u_k·q_k (exact, int32:
 *      |P_b| < 2^31 for every kind) — the only part the SIMD kernels do;
 *   3. the float combination, in one order on every ISA:
 *        I_b = P_b − o·Σ_g c_g·bs_g   (o = 16 Q5_0, 32 Q6_K, else 0; bs_g = Σ_{k in g} q_k)
 *        y  = bias + Σ_b t_b,  t_b = (fa_b·d_b)·I_b  [Q5_1: + fb_b·s_b]  [Q4_K/Q5_K: − (fb_b·d_b)·Mn_b]
 *        the sum over b in block order for the k-quants; for Q5_0/Q5_1 (many short blocks) in eight running
 *        sums (block b into sum b mod 8) reduced as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), so that SIMD kernels
 *        can keep them in one register
 *        Mn_b = Σ_j mn_j·(bs_{2j} + bs_{2j+1}) over the 8 sub-blocks j of the super-block
 *      so the fast kernels give the reference's bits exactly.
 *
 * Deliberately not here: the importance-matrix quantizers (quantize_row_q4_K_impl with quant_weights), Q2_K,
 * Q3_K, the i-quants; repacked (interleaved-rows) layouts.
 *
 * Entry points: pare_qb_quantize_q8_k, pare_qb_ggml_type, pare_qb_kind_of_ggml, pare_qb_ggml_block,
 * pare_qb_ggml_row_bytes (qblock.h); the pare_qbk_*_ functions of qblock_internal.h.
 */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/qblock.h"
#include "kernels/qblock_internal.h"

/* ---- traits: one row per kind (the ggml-block kinds and the three older Q kinds, for GGUF) ---- */

typedef struct qbk_traits {
    int ggml_type; /* ggml's enum ggml_type, -1: none */
    int qb;        /* elements per block */
    int bytes;     /* bytes per block */
} qbk_traits;

static const qbk_traits TRAITS[] = {
    [PARE_QB_I4G] = {-1, 0, 0},   [PARE_QB_I8G] = {-1, 0, 0},     [PARE_QB_Q8_0] = {8, 32, 34},
    [PARE_QB_Q4_0] = {2, 32, 18}, [PARE_QB_Q4_1] = {3, 32, 20},   [PARE_QB_Q5_0] = {6, 32, 22},
    [PARE_QB_Q5_1] = {7, 32, 24}, [PARE_QB_Q4_K] = {12, 256, 144}, [PARE_QB_Q5_K] = {13, 256, 176},
    [PARE_QB_Q6_K] = {14, 256, 210},
};
_Static_assert(sizeof TRAITS / sizeof TRAITS[0] == PARE_QB_COUNT, "one traits row per qblock kind");

int pare_qbk_is_(pare_qb_kind k) { return k >= PARE_QB_Q5_0 && k < PARE_QB_COUNT; }

int pare_qb_ggml_type(pare_qb_kind kind) { return (unsigned)kind < PARE_QB_COUNT ? TRAITS[kind].ggml_type : -1; }

pare_qb_kind pare_qb_kind_of_ggml(int t)
{
    for (int k = 0; k < PARE_QB_COUNT; k++)
        if (TRAITS[k].ggml_type >= 0 && TRAITS[k].ggml_type == t) return (pare_qb_kind)k;
    return PARE_QB_COUNT;
}

int pare_qb_ggml_block(pare_qb_kind kind, int *bytes)
{
    if ((unsigned)kind >= PARE_QB_COUNT) {
        if (bytes) *bytes = 0;
        return 0;
    }
    if (bytes) *bytes = TRAITS[kind].bytes;
    return TRAITS[kind].qb;
}

size_t pare_qb_ggml_row_bytes(pare_qb_kind kind, int64_t K)
{
    int bytes, qb = pare_qb_ggml_block(kind, &bytes);
    if (!qb || K <= 0 || K % qb) return 0;
    return (size_t)(K / qb) * (size_t)bytes;
}

/* ---- little helpers, as ggml spells them ---- */

static inline float h2f(uint16_t h) { return pare_f16_to_f32(h); }
static inline int f16_ok(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

#define KMAX(a, b) ((a) > (b) ? (a) : (b))
#define KMIN(a, b) ((a) < (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

/* ggml's nearest_int: round half to even through the 1.5·2^23 trick, valid for |f| <= 4194303. */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* make_qkx2_quants: scale and min (returned as −min in *the_min) of n values x with weights, levels
 * L in [0, nmax]; a grid search over nstep+1 inverse scales (rmin + rdelta·is + nmax)/(max − min), each
 * refined by weighted least squares for scale and min. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)KMAX(0, KMIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = KMAX(0, KMIN(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* make_qx_quants with rmse_type 1 and no importance weights (w = x²): symmetric levels L − nmax in
 * [−nmax, nmax − 1], the scale searched over 18 inverse scales −(nmax + 0.1·is)/max. */
static float make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = KMAX(-nmax, KMIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = KMAX(-nmax, KMIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + KMAX(-nmax, KMIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ggml's get_scale_min_k4: 6-bit scale and min of sub-block j from the 12 packed bytes. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* ---- quantizers, one block each; 0 on success, 1 when d / dmin / m overflows fp16 ---- */

/* quantize_row_q5_0_ref (22 bytes: d, qh[4], qs[16]) */
static int quant_q5_0(uint8_t *y, const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -16;
    float id = d ? 1.0f / d : 0.0f;
    if (!isfinite(id)) id = 0.0f; /* pare: a block below ~1e-37 quantizes to 0 (ggml multiplies by Inf) */
    uint16_t hd = pare_f32_to_f16(d);
    if (!f16_ok(hd)) return 1;
    wr16(y, hd);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const float x0 = x[j] * id, x1 = x[16 + j] * id;
        const uint8_t xi0 = (uint8_t)KMIN(31, (int8_t)(x0 + 16.5f));
        const uint8_t xi1 = (uint8_t)KMIN(31, (int8_t)(x1 + 16.5f));
        y[6 + j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    for (int b = 0; b < 4; b++) y[2 + b] = (uint8_t)(qh >> (8 * b));
    return 0;
}

/* quantize_row_q5_1_ref (24 bytes: d, m, qh[4], qs[16]) */
static int quant_q5_1(uint8_t *y, const float *x)
{
    float min = 3.402823466e+38f, max = -3.402823466e+38f;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 5) - 1);
    float id = d ? 1.0f / d : 0.0f;
    if (!isfinite(id)) id = 0.0f;
    uint16_t hd = pare_f32_to_f16(d), hm = pare_f32_to_f16(min);
    if (!f16_ok(hd) || !f16_ok(hm)) return 1;
    wr16(y, hd), wr16(y + 2, hm);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
        const uint8_t xi0 = (uint8_t)(x0 + 0.5f), xi1 = (uint8_t)(x1 + 0.5f);
        y[8 + j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    for (int b = 0; b < 4; b++) y[4 + b] = (uint8_t)(qh >> (8 * b));
    return 0;
}

/* The shared part of quantize_row_q4_K_ref / _q5_K_ref: levels L (256, in [0, nmax]) and the header
 * (d, dmin, scales[12]) of one super-block. rmin/rdelta/nstep as ggml passes them to make_qkx2_quants. */
static int quant_k_header(uint8_t *hdr, uint8_t *L, const float *x, int nmax, float rmin, float rdelta, int nstep)
{
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep,
                                     false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t *sc = hdr + 4;
    memset(sc, 0, 12);
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = KMIN(63, ls);
        lm = KMIN(63, lm);
        if (j < 4) {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    uint16_t hd = pare_f32_to_f16(max_scale / 63.f), hm = pare_f32_to_f16(max_min / 63.f);
    if (!f16_ok(hd) || !f16_ok(hm)) return 1;
    wr16(hdr, hd), wr16(hdr + 2, hm);
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        scale_min_k4(j, sc, &s, &m);
        const float d = h2f(hd) * s;
        if (!d) continue;
        const float dm = h2f(hm) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)KMAX(0, KMIN(nmax, l));
        }
    }
    return 0;
}

/* quantize_row_q4_K_ref (144 bytes: d, dmin, scales[12], qs[128]) */
static int quant_q4_k(uint8_t *y, const float *x)
{
    uint8_t L[256];
    if (quant_k_header(y, L, x, 15, -1.f, 0.1f, 20)) return 1;
    uint8_t *q = y + 16;
    for (int j = 0; j < 256; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
    return 0;
}

/* quantize_row_q5_K_ref (176 bytes: d, dmin, scales[12], qh[32], qs[128]) */
static int quant_q5_k(uint8_t *y, const float *x)
{
    uint8_t L[256];
    if (quant_k_header(y, L, x, 31, -0.5f, 0.1f, 15)) return 1;
    uint8_t *qh = y + 16, *ql = y + 48;
    memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) l1 -= 16, qh[j] |= m1;
            if (l2 > 15) l2 -= 16, qh[j] |= m2;
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2), m2 = (uint8_t)(m2 << 2);
        ql += 32;
    }
    return 0;
}

/* quantize_row_q6_K_ref (210 bytes: ql[128], qh[64], scales[16] int8, d) */
static int quant_q6_k(uint8_t *y, const float *x)
{
    int8_t L[256];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
        const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
        scales[ib] = scale;
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, 210);
        return 0;
    }
    float iscale = -128.f / max_scale;
    uint16_t hd = pare_f32_to_f16(1 / iscale);
    if (!f16_ok(hd)) return 1;
    wr16(y + 208, hd);
    int8_t *sc = (int8_t *)(y + 192);
    for (int ib = 0; ib < 16; ++ib) sc[ib] = (int8_t)KMIN(127, nearest_int(iscale * scales[ib]));
    for (int j = 0; j < 16; ++j) {
        float d = h2f(hd) * sc[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = nearest_int(x[16 * j + ii] / d);
            l = KMAX(-32, KMIN(31, l));
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    uint8_t *ql = y, *qh = y + 128;
    for (int j = 0; j < 256; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
    return 0;
}

int64_t pare_qbk_quant_row_(pare_qb_kind kind, uint8_t *dst, const float *x, int64_t K)
{
    const int qb = TRAITS[kind].qb, bytes = TRAITS[kind].bytes;
    int (*fn)(uint8_t *, const float *) = kind == PARE_QB_Q5_0   ? quant_q5_0
                                          : kind == PARE_QB_Q5_1 ? quant_q5_1
                                          : kind == PARE_QB_Q4_K ? quant_q4_k
                                          : kind == PARE_QB_Q5_K ? quant_q5_k
                                                                 : quant_q6_k;
    for (int64_t b = 0; b < K / qb; b++)
        if (fn(dst + b * bytes, x + b * qb)) return b;
    return -1;
}

/* ---- Q8_K ---- */

pare_status pare_qb_quantize_q8_k(void *dst, const float *x, int64_t K)
{
    if (!dst || !x) return pare_fail(PARE_EINVAL, "qblock quantize_q8_k: dst or x is NULL");
    if (K < 0 || K % 256)
        return pare_fail(PARE_ESHAPE, "qblock quantize_q8_k: K=%lld: must be a multiple of 256", (long long)K);
    for (int64_t k = 0; k < K; k++)
        if (!isfinite(x[k]))
            return pare_fail(PARE_ENUMERIC, "qblock quantize_q8_k: x holds %s at %lld", isnan(x[k]) ? "NaN" : "Inf",
                             (long long)k);
    uint8_t *y = dst;
    int8_t q[256];
    int16_t bs[16];
    float d;
    for (int64_t b = 0; b < K / 256; b++) {
        pare_qbk_q8k_block_(q, bs, &d, x + b * 256);
        memcpy(y, &d, 4); /* little-endian hosts only: pare targets x86-64 */
        memcpy(y + 4, q, 256);
        for (int j = 0; j < 16; j++) wr16(y + 260 + 2 * j, (uint16_t)bs[j]);
        y += PARE_QB_Q8_K_BYTES;
    }
    return PARE_OK;
}

void pare_qbk_q8k_block_(int8_t *q, int16_t *bs, float *d, const float *x)
{
    float max = 0, amax = 0;
    for (int j = 0; j < 256; ++j) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (!amax) {
        *d = 0;
        memset(q, 0, 256);
        memset(bs, 0, 16 * sizeof *bs);
        return;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < 256; ++j) {
        int v = nearest_int(iscale * x[j]);
        q[j] = (int8_t)KMIN(127, v);
    }
    for (int j = 0; j < 16; ++j) {
        int sum = 0;
        for (int ii = 0; ii < 16; ++ii) sum += q[j * 16 + ii];
        bs[j] = (int16_t)sum;
    }
    *d = 1 / iscale;
}

/* ---- activations for the ggml-block kinds (qblock_internal.h: qbk_act) ---- */

int pare_qbk_act_row_(pare_qb_kind kind, int8_t *q, int16_t *bs, float *d, float *s, const float *x, int64_t K)
{
    for (int64_t k = 0; k < K; k++)
        if (!isfinite(x[k])) return 1;
    if (kind == PARE_QB_Q4_K || kind == PARE_QB_Q5_K || kind == PARE_QB_Q6_K) {
        for (int64_t b = 0; b < K / 256; b++) pare_qbk_q8k_block_(q + b * 256, bs + b * 16, d + b, x + b * 256);
        return 0;
    }
    /* quantize_row_q8_0_ref / _q8_1_ref, as qblock.c's act_row_canon, plus the sums of 16 */
    for (int64_t b = 0; b < K / 32; b++) {
        const float *v = x + b * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = KMAX(amax, fabsf(v[j]));
        const float dd = amax / ((1 << 7) - 1);
        float id = dd ? 1.0f / dd : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        uint16_t h = pare_f32_to_f16(dd);
        if (!f16_ok(h)) return 1;
        d[b] = h2f(h);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            q[b * 32 + j] = (int8_t)roundf(v[j] * id);
            sum += q[b * 32 + j];
        }
        for (int g = 0; g < 2; g++) {
            int t = 0;
            for (int j = 0; j < 16; j++) t += q[b * 32 + 16 * g + j];
            bs[2 * b + g] = (int16_t)t;
        }
        if (kind == PARE_QB_Q5_1) {
            uint16_t hs = pare_f32_to_f16((float)sum * dd);
            if (!f16_ok(hs)) return 1;
            s[b] = h2f(hs);
        }
    }
    return 0;
}

/* ---- unpacking a row ---- */

void pare_qbk_unpack_scales_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K)
{
    const int qb = TRAITS[kind].qb, bytes = TRAITS[kind].bytes;
    for (int64_t b = 0; b < K / qb; b++) {
        const uint8_t *blk = row + b * bytes;
        switch (kind) {
        case PARE_QB_Q5_0:
        case PARE_QB_Q5_1:
            r->fa[b] = h2f(rd16(blk));
            r->fb[b] = kind == PARE_QB_Q5_1 ? h2f(rd16(blk + 2)) : 0.0f;
            r->c[2 * b] = r->c[2 * b + 1] = 1;
            break;
        case PARE_QB_Q4_K:
        case PARE_QB_Q5_K:
            r->fa[b] = h2f(rd16(blk));
            r->fb[b] = h2f(rd16(blk + 2));
            for (int j = 0; j < 8; j++) {
                uint8_t s, m;
                scale_min_k4(j, blk + 4, &s, &m);
                r->c[b * 16 + 2 * j] = r->c[b * 16 + 2 * j + 1] = s;
                r->mn[b * 8 + j] = m;
            }
            break;
        case PARE_QB_Q6_K:
            r->fa[b] = h2f(rd16(blk + 208));
            r->fb[b] = 0.0f;
            for (int j = 0; j < 16; j++) r->c[b * 16 + j] = (int8_t)blk[192 + j];
            break;
        default: break;
        }
    }
}

/* The u values of one block in natural order (scalar; qblock_k_x86.c has the SIMD versions). */
static void unpack_block_u(uint8_t *u, pare_qb_kind kind, const uint8_t *blk)
{
    switch (kind) {
    case PARE_QB_Q5_0:
    case PARE_QB_Q5_1: {
        const int o = kind == PARE_QB_Q5_0 ? 2 : 4;
        const uint32_t qh = (uint32_t)blk[o] | (uint32_t)blk[o + 1] << 8 | (uint32_t)blk[o + 2] << 16 |
                            (uint32_t)blk[o + 3] << 24;
        const uint8_t *qs = blk + o + 4;
        for (int j = 0; j < 16; j++) {
            u[j] = (uint8_t)((qs[j] & 15) | ((qh >> j) & 1) << 4);
            u[j + 16] = (uint8_t)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
        }
        break;
    }
    case PARE_QB_Q4_K:
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                u[64 * j + l] = blk[16 + 32 * j + l] & 15;
                u[64 * j + 32 + l] = blk[16 + 32 * j + l] >> 4;
            }
        break;
    case PARE_QB_Q5_K: {
        const uint8_t *qh = blk + 16, *ql = blk + 48;
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                u[64 * j + l] = (uint8_t)((ql[32 * j + l] & 15) | ((qh[l] >> (2 * j)) & 1) << 4);
                u[64 * j + 32 + l] = (uint8_t)((ql[32 * j + l] >> 4) | ((qh[l] >> (2 * j + 1)) & 1) << 4);
            }
        break;
    }
    case PARE_QB_Q6_K:
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
            uint8_t *o = u + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (uint8_t)((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4);
                o[l + 32] = (uint8_t)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
                o[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
                o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
            }
        }
        break;
    default: break;
    }
}

void pare_qbk_unpack_scalar_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K)
{
    const int qb = TRAITS[kind].qb, bytes = TRAITS[kind].bytes;
    pare_qbk_unpack_scales_(r, kind, row, K);
    for (int64_t b = 0; b < K / qb; b++) unpack_block_u(r->u + b * qb, kind, row + b * bytes);
}

static inline int qbk_offset(pare_qb_kind kind)
{
    return kind == PARE_QB_Q5_0 ? 16 : kind == PARE_QB_Q6_K ? 32 : 0;
}

void pare_qbk_dequant_row_(float *dst, pare_qb_kind kind, const uint8_t *row, int64_t K)
{
    const int qb = TRAITS[kind].qb, bytes = TRAITS[kind].bytes, o = qbk_offset(kind);
    uint8_t u[256];
    int16_t c[16], mn[8];
    float fa, fb;
    for (int64_t b = 0; b < K / qb; b++) {
        const uint8_t *blk = row + b * bytes;
        qbk_row r = {u, c, NULL, NULL, mn, &fa, &fb};
        pare_qbk_unpack_scales_(&r, kind, blk, qb);
        unpack_block_u(u, kind, blk);
        float *y = dst + b * qb;
        for (int k = 0; k < qb; k++) {
            switch (kind) {
            case PARE_QB_Q5_0: y[k] = (float)(u[k] - o) * fa; break;
            case PARE_QB_Q5_1: y[k] = (float)u[k] * fa + fb; break;
            /* ggml: d1 = d·sc, m1 = dmin·m; d1·u − m1 */
            case PARE_QB_Q4_K:
            case PARE_QB_Q5_K: y[k] = fa * (float)c[k / 16] * (float)u[k] - fb * (float)mn[k / 32]; break;
            /* ggml: d·sc·q */
            case PARE_QB_Q6_K: y[k] = fa * (float)c[k / 16] * (float)(u[k] - o); break;
            default: break;
            }
        }
    }
}

/* ---- the integer part, plain C ---- */

void pare_qbk_idot_scalar_(int32_t *P, const uint8_t *u, const int16_t *c, const int8_t *q, int64_t K, int qb)
{
    for (int64_t b = 0; b < K / qb; b++) {
        int32_t acc = 0;
        for (int g = 0; g < qb / 16; g++) {
            int32_t p = 0;
            const int64_t k0 = b * qb + 16 * g;
            for (int j = 0; j < 16; j++) p += (int32_t)u[k0 + j] * q[k0 + j];
            acc += (int32_t)c[k0 / 16] * p;
        }
        P[b] = acc;
    }
}

/* ---- the float combination: one order for every ISA ---- */

float pare_qbk_combine_(pare_qb_kind kind, const int32_t *P, const qbk_row *r, const int16_t *bs, const float *d,
                        const float *s, int64_t K)
{
    const int qb = TRAITS[kind].qb, ng = qb / 16, o = qbk_offset(kind);
    if (qb == 32) {
        /* Q5_0 / Q5_1: eight running sums, block b into sum b mod 8 (the blocks past the end, up to a multiple of
         * 8, add +0.0f), then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) — the order of the 8-lane SIMD kernels */
        float l[8] = {0};
        const int64_t nb = K / 32, nb8 = (nb + 7) / 8 * 8;
        for (int64_t b = 0; b < nb8; b++) {
            float v = 0.0f;
            if (b < nb) {
                int32_t I = P[b];
                if (o) I -= o * ((int32_t)r->c[2 * b] * bs[2 * b] + (int32_t)r->c[2 * b + 1] * bs[2 * b + 1]);
                v = (r->fa[b] * d[b]) * (float)I;
                if (kind == PARE_QB_Q5_1) v = v + r->fb[b] * s[b];
            }
            l[b % 8] += v;
        }
        return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    }
    float acc = 0.0f;
    for (int64_t b = 0; b < K / qb; b++) {
        int32_t I = P[b];
        if (o) {
            int32_t t = 0;
            for (int g = 0; g < ng; g++) t += (int32_t)r->c[b * ng + g] * bs[b * ng + g];
            I -= o * t;
        }
        float v = (r->fa[b] * d[b]) * (float)I;
        if (kind == PARE_QB_Q5_1) v = v + r->fb[b] * s[b];
        else if (kind == PARE_QB_Q4_K || kind == PARE_QB_Q5_K) {
            int32_t mn = 0;
            for (int j = 0; j < 8; j++) mn += (int32_t)r->mn[b * 8 + j] * (bs[b * 16 + 2 * j] + bs[b * 16 + 2 * j + 1]);
            v = v - (r->fb[b] * d[b]) * (float)mn;
        }
        acc += v;
    }
    return acc;
}

/* ---- workspace and the Linear ---- */

/* Per-thread scratch: u (K), c (K/16 int16), c2 (K/2 int16), mn2 (K/16 int16), mn (K/32 int16), fa, fb (K/32 f32),
 * P (K/32 int32). */
size_t pare_qbk_scratch_bytes_(int64_t K)
{
    return qb_align64((size_t)K) + 2 * qb_align64((size_t)K / 16 * 2) + qb_align64((size_t)K) + qb_align64((size_t)K / 32 * 2) +
           2 * qb_align64((size_t)K / 32 * 4) + qb_align64((size_t)K / 32 * 4);
}

size_t pare_qbk_act_bytes_(int64_t M, int64_t K)
{
    return qb_align64((size_t)(M * K)) + qb_align64((size_t)(M * K / 16) * 2) + 2 * qb_align64((size_t)(M * K / 32) * 4);
}

static int nprocs(void)
{
    int p = omp_get_num_procs();
    return p < 1 ? 1 : p;
}

size_t pare_qbk_workspace_(const pare_qb_weight *w, int64_t M)
{
    return pare_qbk_act_bytes_(M, w->K) + (size_t)nprocs() * pare_qbk_scratch_bytes_(w->K);
}

static void carve_row(qbk_row *r, int32_t **P, char *p, int64_t K)
{
    r->u = (uint8_t *)p, p += qb_align64((size_t)K);
    r->c = (int16_t *)(void *)p, p += qb_align64((size_t)K / 16 * 2);
    r->c2 = (int16_t *)(void *)p, p += qb_align64((size_t)K);
    r->mn2 = (int16_t *)(void *)p, p += qb_align64((size_t)K / 16 * 2);
    r->mn = (int16_t *)(void *)p, p += qb_align64((size_t)K / 32 * 2);
    r->fa = (float *)(void *)p, p += qb_align64((size_t)K / 32 * 4);
    r->fb = (float *)(void *)p, p += qb_align64((size_t)K / 32 * 4);
    *P = (int32_t *)(void *)p;
}

int64_t pare_qbk_linear_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M, void *ws,
                         qb_isa isa)
{
    const pare_qb_kind kind = w->kind;
    const int64_t N = w->N, K = w->K, qb = TRAITS[kind].qb;
    const size_t rb = (size_t)(K / qb) * (size_t)TRAITS[kind].bytes;
    char *p = ws;
    int8_t *q = (int8_t *)p;
    p += qb_align64((size_t)(M * K));
    int16_t *bs = (int16_t *)(void *)p;
    p += qb_align64((size_t)(M * K / 16) * 2);
    float *d = (float *)(void *)p;
    p += qb_align64((size_t)(M * K / 32) * 4);
    float *s = (float *)(void *)p;
    p += qb_align64((size_t)(M * K / 32) * 4);
    const int64_t nd = K / 32; /* per-token stride of d and s (K/256 used for the k-quants) */

    int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (M * K >= QB_PAR_MIN_WORK / 4 && M > 1)
    for (int64_t m = 0; m < M; m++)
        if (pare_qbk_act_row_(kind, q + m * K, bs + m * (K / 16), d + m * nd, s + m * nd, x + m * K, K) && m < bad)
            bad = m;
    if (bad < M) return bad;

    void (*unpack)(qbk_row *, pare_qb_kind, const uint8_t *, int64_t) = pare_qbk_unpack_scalar_;
    void (*idot)(int32_t *, const uint8_t *, const int16_t *, const int8_t *, int64_t, int) = pare_qbk_idot_scalar_;
    float (*dot32)(pare_qb_kind, const qbk_row *, const int8_t *, const int16_t *, const float *, const float *,
                   int64_t) = NULL;
    if (isa >= QB_ISA_AVX2) unpack = pare_qbk_unpack_avx2_, idot = pare_qbk_idot_avx2_;
    if (isa == QB_ISA_AVX512) idot = pare_qbk_idot_vnni_;
    if (isa >= QB_ISA_AVX2 && qb == 32) dot32 = isa == QB_ISA_AVX512 ? pare_qbk_dot32_vnni_ : pare_qbk_dot32_avx2_;
    float (*dotk)(pare_qb_kind, const qbk_row *, const int8_t *, const int16_t *, const float *, int64_t) = NULL;
    if (isa >= QB_ISA_AVX2 && qb == 256) dotk = isa == QB_ISA_AVX512 ? pare_qbk_dotk_vnni_ : pare_qbk_dotk_avx2_;
    const int procs = nprocs();
    int nth = omp_get_max_threads();
    if (nth > procs) nth = procs;
    const size_t slot = pare_qbk_scratch_bytes_(K);
#pragma omp parallel num_threads(nth) if (nth > 1 && M * N * K >= QB_PAR_MIN_WORK)
    {
        qbk_row r;
        int32_t *P;
        carve_row(&r, &P, p + (size_t)omp_get_thread_num() * slot, K);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            unpack(&r, kind, w->qs + (size_t)n * rb, K);
            for (int64_t m = 0; m < M; m++) {
                float v;
                if (dot32) v = dot32(kind, &r, q + m * K, bs + m * (K / 16), d + m * nd, s + m * nd, K);
                else if (dotk) v = dotk(kind, &r, q + m * K, bs + m * (K / 16), d + m * nd, K);
                else {
                    idot(P, r.u, isa >= QB_ISA_AVX2 ? r.c2 : r.c, q + m * K, K, (int)qb);
                    v = pare_qbk_combine_(kind, P, &r, bs + m * (K / 16), d + m * nd, s + m * nd, K);
                }
                y[m * N + n] = bias ? v + bias[n] : v;
            }
        }
    }
    return M;
}

void pare_qbk_linear_ref_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M)
{
    const int64_t N = w->N, K = w->K, qb = TRAITS[w->kind].qb;
    const size_t rb = (size_t)(K / qb) * (size_t)TRAITS[w->kind].bytes;
    void *ws = NULL;
    if (posix_memalign(&ws, 64, pare_qbk_act_bytes_(1, K) + pare_qbk_scratch_bytes_(K))) ws = NULL;
    char *p = ws;
    for (int64_t m = 0; m < M && ws; m++) {
        int8_t *q = (int8_t *)p;
        int16_t *bs = (int16_t *)(void *)(p + qb_align64((size_t)K));
        float *d = (float *)(void *)(p + qb_align64((size_t)K) + qb_align64((size_t)K / 16 * 2));
        float *s = d + qb_align64((size_t)K / 32 * 4) / 4;
        qbk_row r;
        int32_t *P;
        carve_row(&r, &P, p + pare_qbk_act_bytes_(1, K), K);
        int bad = pare_qbk_act_row_(w->kind, q, bs, d, s, x + m * K, K);
        for (int64_t n = 0; n < N; n++) {
            float v = NAN;
            if (!bad) {
                pare_qbk_unpack_scalar_(&r, w->kind, w->qs + (size_t)n * rb, K);
                pare_qbk_idot_scalar_(P, r.u, r.c, q, K, (int)qb);
                v = pare_qbk_combine_(w->kind, P, &r, bs, d, s, K);
            }
            y[m * N + n] = bias ? v + bias[n] : v;
        }
    }
    if (!ws)
        for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
    free(ws);
}
