/* test_qblock_k.c — llama.cpp's Q5_0, Q5_1 and the k-quants Q4_K, Q5_K, Q6_K (and Q8_K activations) in the
 * block-quantized Linear (kernels/qblock.h, qblock_k.c, qblock_k_x86.c).
 *
 * The oracle: an independent transliteration, below, of ggml's reference code in ggml/src/ggml-quants.c
 * (llama.cpp / ggml-org, as vendored in ollama's ml/backend/ggml/ggml/src/ggml-quants.c, 2025):
 * quantize_row_q5_0_ref, _q5_1_ref, _q4_K_ref, _q5_K_ref, _q6_K_ref, _q8_K_ref with nearest_int,
 * make_qkx2_quants, make_qx_quants (rmse_type 1, qw NULL), get_scale_min_k4, and dequantize_row_q5_0,
 * _q5_1, _q4_K, _q5_K, _q6_K, written on ggml's block structs (block_q4_K etc., packed as ggml packs them).
 *
 * Checks:
 *   - bits per weight exactly 5.5 / 6.0 / 4.5 / 5.5 / 6.5625; ggml type ids and block sizes;
 *   - quantizer bytes identical to the oracle's blocks (pare_qb_to_ggml), on random rows at several scales,
 *     rows with outliers, and crafted blocks (all zero, constant, all positive, all negative, one spike,
 *     tiny values, exact ties of nearest_int);
 *   - pare_qb_quantize_q8_k byte-identical to quantize_row_q8_K_ref, ties included;
 *   - pare_qb_dequantize bit-identical to the oracle's dequantize_row_*;
 *   - pare_qb_from_ggml / to_ggml round trip byte-identical, and its size errors;
 *   - pare_linear_qb on every ISA this CPU has (avx512 = VNNI, avx2, scalar) at 1 and 2 threads, M in
 *     {1, 3, 17, 64}: bit-identical to pare_linear_qb_ref (the integer sums are exact on every path and the
 *     float combination has one order — qblock_k.c);
 *   - pare_linear_qb_ref against a double-precision Linear of the oracle's dequantized weights and the
 *     oracle's dequantized activations (x̂ = d_x·q_x; Q5_1 with ggml's fp16 block sums s_x): within
 *     (blocks + 8)·2^-22·Σ_k (|d·sc·u| + |dmin·m|)·|x̂_k| — the f32 rounding of pare's per-block products
 *     and of the oracle's dequantization, nothing more;
 *   - errors: K not a multiple of the block names K, NaN/Inf in W and x name row and column, scales beyond
 *     fp16 are reported; zero weights / zero tokens give the bias exactly.
 * No timing is asserted.
 */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/qblock.h"
#include "tap.h"
#include "test_rand.h"

/* ================= the oracle: ggml-quants.c, transliterated ================= */

#define QK_K 256
#define GGML_FP32_TO_FP16(x) pare_f32_to_f16(x)
#define GGML_FP16_TO_FP32(x) pare_f16_to_f32(x)
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

typedef uint16_t ggml_half;
#pragma pack(push, 1)
typedef struct { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; ggml_half d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
#pragma pack(pop)
_Static_assert(sizeof(block_q5_0) == 22 && sizeof(block_q5_1) == 24, "ggml block sizes");
_Static_assert(sizeof(block_q4_K) == 144 && sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210, "k sizes");
_Static_assert(sizeof(block_q8_K) == PARE_QB_Q8_K_BYTES, "q8_K size");

static inline int nearest_int(float fval)
{
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

static void quantize_row_q5_0_ref(const float *x, block_q5_0 *y, int64_t k)
{
    static const int qk = 32;
    const int nb = (int)(k / qk);
    for (int i = 0; i < nb; i++) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = GGML_FP32_TO_FP16(d);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[i * qk + 0 + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const uint8_t xi0 = MIN(31, (int8_t)(x0 + 16.5f));
            const uint8_t xi1 = MIN(31, (int8_t)(x1 + 16.5f));
            y[i].qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        memcpy(&y[i].qh, &qh, sizeof(qh));
    }
}

static void quantize_row_q5_1_ref(const float *x, block_q5_1 *y, int64_t k)
{
    const int qk = 32;
    const int nb = (int)(k / qk);
    for (int i = 0; i < nb; i++) {
        float min = 3.402823466e+38f, max = -3.402823466e+38f;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = GGML_FP32_TO_FP16(d);
        y[i].m = GGML_FP32_TO_FP16(min);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (x[i * qk + 0 + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            const uint8_t xi0 = (uint8_t)(x0 + 0.5f);
            const uint8_t xi1 = (uint8_t)(x1 + 0.5f);
            y[i].qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        memcpy(&y[i].qh, &qh, sizeof(y[i].qh));
    }
}

static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type, const float *qw)
{
    float max = 0;
    float amax = 0;
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
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            L[i] = nmax + MAX(-nmax, MIN(nmax - 1, l));
        }
        return 1 / iscale;
    }
    bool return_early = false;
    if (rmse_type < 0) {
        rmse_type = -rmse_type;
        return_early = true;
    }
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = l + nmax;
        float w = qw                ? qw[i]
                  : rmse_type == 1 ? x[i] * x[i]
                  : rmse_type == 2 ? 1
                  : rmse_type == 3 ? fabsf(x[i])
                                   : sqrtf(fabsf(x[i]));
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            float w = qw                ? qw[i]
                      : rmse_type == 1 ? x[i] * x[i]
                      : rmse_type == 2 ? 1
                      : rmse_type == 3 ? fabsf(x[i])
                                       : sqrtf(fabsf(x[i]));
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = nearest_int(iscale * x[i]);
                L[i] = nmax + MAX(-nmax, MIN(nmax - 1, l));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad)
{
    float min = x[0];
    float max = x[0];
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
        L[i] = MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        float w = weights[i];
        best_error += w * diff;
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
            l = MAX(0, MIN(nmax, l));
            Laux[i] = l;
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
                float w = weights[i];
                cur_error += w * diff;
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

static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static void quantize_row_q4_K_ref(const float *x, block_q4_K *y, int64_t k)
{
    const int nb = (int)(k / QK_K);
    uint8_t L[QK_K];
    uint8_t Laux[32];
    float weights[32];
    float mins[QK_K / 32];
    float scales[QK_K / 32];
    for (int i = 0; i < nb; i++) {
        float max_scale = 0;
        float max_min = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false);
            float scale = scales[j];
            if (scale > max_scale) max_scale = scale;
            float min = mins[j];
            if (min > max_min) max_min = min;
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(y[i].scales, 0, 12); /* ggml leaves them to the |= below on a zeroed allocation */
        for (int j = 0; j < QK_K / 32; ++j) {
            uint8_t ls = nearest_int(inv_scale * scales[j]);
            uint8_t lm = nearest_int(inv_min * mins[j]);
            ls = MIN(63, ls);
            lm = MIN(63, lm);
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                y[i].scales[j - 4] |= ((ls >> 4) << 6);
                y[i].scales[j - 0] |= ((lm >> 4) << 6);
            }
        }
        y[i].d = GGML_FP32_TO_FP16(max_scale / 63.f);
        y[i].dmin = GGML_FP32_TO_FP16(max_min / 63.f);
        uint8_t sc, m;
        for (int j = 0; j < QK_K / 32; ++j) {
            get_scale_min_k4(j, y[i].scales, &sc, &m);
            const float d = GGML_FP16_TO_FP32(y[i].d) * sc;
            if (!d) continue;
            const float dm = GGML_FP16_TO_FP32(y[i].dmin) * m;
            for (int ii = 0; ii < 32; ++ii) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                l = MAX(0, MIN(15, l));
                L[32 * j + ii] = l;
            }
        }
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; ++l) q[l] = L[j + l] | (L[j + l + 32] << 4);
            q += 32;
        }
        x += QK_K;
    }
}

static void quantize_row_q5_K_ref(const float *x, block_q5_K *y, int64_t k)
{
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K];
    float mins[QK_K / 32];
    float scales[QK_K / 32];
    float weights[32];
    uint8_t Laux[32];
    for (int i = 0; i < nb; i++) {
        float max_scale = 0;
        float max_min = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5f, 0.1f, 15, false);
            float scale = scales[j];
            if (scale > max_scale) max_scale = scale;
            float min = mins[j];
            if (min > max_min) max_min = min;
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(y[i].scales, 0, 12);
        for (int j = 0; j < QK_K / 32; ++j) {
            uint8_t ls = nearest_int(inv_scale * scales[j]);
            uint8_t lm = nearest_int(inv_min * mins[j]);
            ls = MIN(63, ls);
            lm = MIN(63, lm);
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                y[i].scales[j - 4] |= ((ls >> 4) << 6);
                y[i].scales[j - 0] |= ((lm >> 4) << 6);
            }
        }
        y[i].d = GGML_FP32_TO_FP16(max_scale / 63.f);
        y[i].dmin = GGML_FP32_TO_FP16(max_min / 63.f);
        uint8_t sc, m;
        for (int j = 0; j < QK_K / 32; ++j) {
            get_scale_min_k4(j, y[i].scales, &sc, &m);
            const float d = GGML_FP16_TO_FP32(y[i].d) * sc;
            if (!d) continue;
            const float dm = GGML_FP16_TO_FP32(y[i].dmin) * m;
            for (int ii = 0; ii < 32; ++ii) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                l = MAX(0, MIN(31, l));
                L[32 * j + ii] = l;
            }
        }
        uint8_t *qh = y[i].qh;
        uint8_t *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[n + j];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                int l2 = L[n + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
            ql += 32;
        }
        x += QK_K;
    }
}

static void quantize_row_q6_K_ref(const float *x, block_q6_K *y, int64_t k)
{
    const int64_t nb = k / QK_K;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int i = 0; i < nb; i++) {
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, NULL);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(block_q6_K));
            y[i].d = GGML_FP32_TO_FP16(0.f);
            x += QK_K;
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = GGML_FP32_TO_FP16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; ++j) {
            float d = GGML_FP16_TO_FP32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                l = MAX(-32, MIN(31, l));
                L[16 * j + ii] = l + 32;
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = q1 | (q3 << 4);
                ql[l + 32] = q2 | (q4 << 4);
                qh[l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                        ((L[j + l + 96] >> 4) << 6);
            }
            ql += 64;
            qh += 32;
        }
        x += QK_K;
    }
}

static void quantize_row_q8_K_ref(const float *x, block_q8_K *y, int64_t k)
{
    const int64_t nb = k / QK_K;
    for (int i = 0; i < nb; i++) {
        float max = 0;
        float amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums); /* ggml leaves them as they were */
            x += QK_K;
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = MIN(127, v);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = sum;
        }
        y[i].d = 1 / iscale;
        x += QK_K;
    }
}

static void dequantize_row_q5_0(const block_q5_0 *x, float *y, int64_t k)
{
    static const int qk = 32;
    const int nb = (int)(k / qk);
    for (int i = 0; i < nb; i++) {
        const float d = GGML_FP16_TO_FP32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < qk / 2; ++j) {
            const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
            const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
            y[i * qk + j + 0] = x0 * d;
            y[i * qk + j + qk / 2] = x1 * d;
        }
    }
}

static void dequantize_row_q5_1(const block_q5_1 *x, float *y, int64_t k)
{
    static const int qk = 32;
    const int nb = (int)(k / qk);
    for (int i = 0; i < nb; i++) {
        const float d = GGML_FP16_TO_FP32(x[i].d);
        const float m = GGML_FP16_TO_FP32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < qk / 2; ++j) {
            const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
            const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
            const int x1 = (x[i].qs[j] >> 4) | xh_1;
            y[i * qk + j + 0] = x0 * d + m;
            y[i * qk + j + qk / 2] = x1 * d + m;
        }
    }
}

static void dequantize_row_q4_K(const block_q4_K *x, float *y, int64_t k)
{
    const int nb = (int)(k / QK_K);
    for (int i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = GGML_FP16_TO_FP32(x[i].d);
        const float min = GGML_FP16_TO_FP32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

static void dequantize_row_q5_K(const block_q5_K *x, float *y, int64_t k)
{
    const int64_t nb = k / QK_K;
    for (int i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = GGML_FP16_TO_FP32(x[i].d);
        const float min = GGML_FP16_TO_FP32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

static void dequantize_row_q6_K(const block_q6_K *x, float *y, int64_t k)
{
    const int64_t nb = k / QK_K;
    for (int i = 0; i < nb; i++) {
        const float d = GGML_FP16_TO_FP32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ================= helpers ================= */

static const pare_qb_kind KINDS[] = {PARE_QB_Q5_0, PARE_QB_Q5_1, PARE_QB_Q4_K, PARE_QB_Q5_K, PARE_QB_Q6_K};
#define NKINDS 5
static const char *const ISAS[] = {"avx512", "avx2", "scalar"};

static int errmsg_has(const char *s) { return strstr(pare_errmsg(), s) != NULL; }
static int qb_of(pare_qb_kind k) { return pare_qb_ggml_block(k, NULL); }

/* The oracle's blocks of W (N,K), row after row; returns the bytes written. */
static size_t oracle_blocks(uint8_t *dst, pare_qb_kind kind, const float *W, int64_t N, int64_t K)
{
    int bytes;
    const int qb = pare_qb_ggml_block(kind, &bytes);
    const size_t rb = (size_t)(K / qb) * (size_t)bytes;
    for (int64_t n = 0; n < N; n++) {
        void *y = dst + (size_t)n * rb;
        const float *x = W + n * K;
        switch (kind) {
        case PARE_QB_Q5_0: quantize_row_q5_0_ref(x, y, K); break;
        case PARE_QB_Q5_1: quantize_row_q5_1_ref(x, y, K); break;
        case PARE_QB_Q4_K: quantize_row_q4_K_ref(x, y, K); break;
        case PARE_QB_Q5_K: quantize_row_q5_K_ref(x, y, K); break;
        case PARE_QB_Q6_K: quantize_row_q6_K_ref(x, y, K); break;
        default: break;
        }
    }
    return rb * (size_t)N;
}

static void oracle_dequant(float *W, pare_qb_kind kind, const uint8_t *blocks, int64_t N, int64_t K)
{
    const size_t rb = pare_qb_ggml_row_bytes(kind, K);
    for (int64_t n = 0; n < N; n++) {
        const void *x = blocks + (size_t)n * rb;
        float *y = W + n * K;
        switch (kind) {
        case PARE_QB_Q5_0: dequantize_row_q5_0(x, y, K); break;
        case PARE_QB_Q5_1: dequantize_row_q5_1(x, y, K); break;
        case PARE_QB_Q4_K: dequantize_row_q4_K(x, y, K); break;
        case PARE_QB_Q5_K: dequantize_row_q5_K(x, y, K); break;
        case PARE_QB_Q6_K: dequantize_row_q6_K(x, y, K); break;
        default: break;
        }
    }
}

/* Weights with what the searches must get right: rows at several scales, outliers, crafted blocks. */
static float *make_weights(int64_t N, int64_t K)
{
    float *W = randn(N * K, 0.05f);
    for (int64_t n = 0; n < N; n++) {
        float *r = W + n * K;
        switch (n % 12) {
        case 1: for (int64_t k = 0; k < K; k++) r[k] *= 40.0f; break;
        case 2: for (int64_t k = 0; k < K; k++) r[k] = 0.0f; break;                          /* all zero */
        case 3: for (int64_t k = 0; k < K; k++) r[k] = 0.75f; break;                         /* constant */
        case 4: for (int64_t k = 0; k < K; k++) r[k] = fabsf(r[k]) + 0.01f; break;           /* positive */
        case 5: for (int64_t k = 0; k < K; k++) r[k] = -fabsf(r[k]) - 0.02f; break;          /* negative */
        case 6: r[(n * 37) % K] = 3.0f; r[(n * 11 + 5) % K] = -2.0f; break;                  /* spikes */
        case 7: for (int64_t k = 0; k < K; k++) r[k] *= 1e-5f; break;                        /* tiny */
        case 8: for (int64_t k = 0; k < K; k++) r[k] = (float)((k * 7) % 33 - 16) * 0.125f; break; /* on a grid */
        case 9: for (int64_t k = 0; k < K / 2; k++) r[k] = 0.0f; break;                      /* half zero */
        case 10: for (int64_t k = 0; k < K; k++) r[k] = (float)(k % 5) * 0.5f - 1.0f; break; /* ties */
        default: break;
        }
    }
    return W;
}

/* ================= tests ================= */

static void test_traits(void)
{
    static const double bpw[NKINDS] = {5.5, 6.0, 4.5, 5.5, 6.5625};
    static const int type[NKINDS] = {6, 7, 12, 13, 14}, qbs[NKINDS] = {32, 32, 256, 256, 256};
    float *W = randn(8 * 512, 1.0f);
    for (int i = 0; i < NKINDS; i++) {
        pare_qb_weight w;
        pare_status st = pare_qb_quantize(&w, KINDS[i], W, 8, 512, 0, 1);
        ok(st == PARE_OK && pare_qb_bits_per_weight(&w) == bpw[i] && w.scale == NULL,
           "%s: %.4f bits per weight exactly (%s)", pare_qb_kind_name(KINDS[i]), pare_qb_bits_per_weight(&w),
           st ? pare_errmsg() : "");
        ok(pare_qb_ggml_type(KINDS[i]) == type[i] && pare_qb_kind_of_ggml(type[i]) == KINDS[i] &&
               qb_of(KINDS[i]) == qbs[i],
           "%s: ggml type %d, blocks of %d", pare_qb_kind_name(KINDS[i]), type[i], qbs[i]);
        pare_qb_free(&w);
    }
    ok(pare_qb_ggml_type(PARE_QB_I4G) == -1 && pare_qb_kind_of_ggml(10) == PARE_QB_COUNT &&
           pare_qb_ggml_type(PARE_QB_Q8_0) == 8 && pare_qb_ggml_type(PARE_QB_Q4_0) == 2,
       "int4_group has no ggml type; Q2_K (10) is not a pare kind; Q8_0 8, Q4_0 2");
    free(W);
}

static void test_bytes(void)
{
    const int64_t N = 36, K = 768;
    float *W = make_weights(N, K);
    for (int i = 0; i < NKINDS; i++) {
        pare_qb_weight w;
        pare_status st = pare_qb_quantize(&w, KINDS[i], W, N, K, 0, 1);
        if (!ok(st == PARE_OK, "%s: quantize %lldx%lld", pare_qb_kind_name(KINDS[i]), (long long)N, (long long)K)) {
            diag("%s", pare_errmsg());
            continue;
        }
        size_t n = pare_qb_bytes(&w);
        uint8_t *want = xalloc(n), *got = xalloc(n);
        size_t wn = oracle_blocks(want, KINDS[i], W, N, K);
        st = pare_qb_to_ggml(got, n, &w);
        size_t first = n;
        for (size_t j = 0; j < n && first == n; j++)
            if (got[j] != want[j]) first = j;
        ok(st == PARE_OK && wn == n && first == n,
           "%s: blocks byte-identical to ggml's quantize_row_%s_ref (%zu bytes%s)", pare_qb_kind_name(KINDS[i]),
           pare_qb_kind_name(KINDS[i]), n, first < n ? ", first difference below" : "");
        if (first < n) diag("byte %zu (row %zu): got %02x want %02x", first, first / pare_qb_ggml_row_bytes(w.kind, K),
                            got[first], want[first]);

        /* dequantization: bit-identical to dequantize_row_* */
        float *D = xalloc((size_t)(N * K) * sizeof(float)), *Dw = xalloc((size_t)(N * K) * sizeof(float));
        pare_qb_dequantize(D, &w);
        oracle_dequant(Dw, KINDS[i], want, N, K);
        ok(!memcmp(D, Dw, (size_t)(N * K) * sizeof(float)), "%s: dequantize bit-identical to ggml's dequantize_row",
           pare_qb_kind_name(KINDS[i]));
        /* an honest error figure: relative RMS error on the N(0, 0.05²) rows */
        double se = 0, ss = 0;
        for (int64_t j = 0; j < N * K; j++)
            if ((j / K) % 12 == 0 || (j / K) % 12 == 11) se += (W[j] - D[j]) * (double)(W[j] - D[j]), ss += W[j] * (double)W[j];
        diag("%s: relative RMS error on Gaussian rows %.4f", pare_qb_kind_name(KINDS[i]), sqrt(se / ss));

        /* from_ggml round trip */
        pare_qb_weight w2;
        st = pare_qb_from_ggml(&w2, KINDS[i], want, n, N, K);
        ok(st == PARE_OK && pare_qb_bytes(&w2) == n && !memcmp(w2.qs, w.qs, n), "%s: from_ggml round trip",
           pare_qb_kind_name(KINDS[i]));
        pare_qb_free(&w2);
        ok(pare_qb_from_ggml(&w2, KINDS[i], want, n - 1, N, K) == PARE_EINVAL && errmsg_has("need exactly") &&
               w2.qs == NULL,
           "%s: from_ggml checks the size (%s)", pare_qb_kind_name(KINDS[i]), pare_errmsg());
        ok(pare_qb_to_ggml(got, n - 1, &w) == PARE_EINVAL, "%s: to_ggml checks the size", pare_qb_kind_name(KINDS[i]));
        free(D);
        free(Dw);
        free(want);
        free(got);
        pare_qb_free(&w);
    }
    /* the older Q kinds through from_ggml too */
    pare_qb_weight a, b;
    pare_qb_quantize(&a, PARE_QB_Q4_1, W, N, K, 0, 0);
    size_t n = pare_qb_bytes(&a);
    uint8_t *g1 = xalloc(n), *g2 = xalloc(n);
    pare_qb_to_ggml(g1, n, &a);
    ok(pare_qb_from_ggml(&b, PARE_QB_Q4_1, g1, n, N, K) == PARE_OK && pare_qb_to_ggml(g2, n, &b) == PARE_OK &&
           !memcmp(g1, g2, n),
       "q4_1: to_ggml → from_ggml → to_ggml byte-identical");
    pare_qb_free(&a);
    pare_qb_free(&b);
    free(g1);
    free(g2);
    free(W);
}

static void test_q8_k(void)
{
    const int64_t K = 256 * 6;
    float *x = randn(K, 1.0f);
    for (int64_t k = 256; k < 512; k++) x[k] = 0.0f;                                   /* zero block */
    for (int64_t k = 512; k < 768; k++) x[k] = k == 600 ? -127.0f : (float)(k % 9) - 4.5f; /* iscale = 1: ties */
    for (int64_t k = 768; k < 1024; k++) x[k] = k == 800 ? 127.0f : (float)(k % 7) * 0.5f + 0.5f; /* −1: ties */
    for (int64_t k = 1024; k < 1280; k++) x[k] *= 1e-30f;                              /* tiny */
    block_q8_K want[6];
    uint8_t got[6 * PARE_QB_Q8_K_BYTES];
    memset(want, 0, sizeof want);
    quantize_row_q8_K_ref(x, want, K);
    ok(pare_qb_quantize_q8_k(got, x, K) == PARE_OK && !memcmp(got, want, sizeof got),
       "q8_K: bytes identical to quantize_row_q8_K_ref (ties, zero and tiny blocks)");
    ok(pare_qb_quantize_q8_k(got, x, 300) == PARE_ESHAPE && errmsg_has("K=300"), "q8_K: K=300 rejected (%s)",
       pare_errmsg());
    x[700] = NAN;
    ok(pare_qb_quantize_q8_k(got, x, K) == PARE_ENUMERIC && errmsg_has("700"), "q8_K: NaN named (%s)", pare_errmsg());
    free(x);
}

/* The oracle's Linear in double: Σ_k Ŵ[n,k]·x̂[m,k], x̂ the oracle's dequantized activations (Q8_0 / Q8_1 as
 * ggml's quantize_row_q8_0/1_ref, Q8_K as above); *mag = Σ_k (|d·sc·u| + |dmin·m|)·|x̂_k| from Ŵ's parts. */
static double oracle_dot(double *mag, pare_qb_kind kind, const float *Wd, const float *Wabs, const float *x, int64_t K)
{
    double acc = 0, a = 0;
    if (qb_of(kind) == 256) {
        block_q8_K blk;
        for (int64_t b = 0; b < K / 256; b++) {
            quantize_row_q8_K_ref(x + b * 256, &blk, 256);
            for (int j = 0; j < 256; j++) {
                double xh = (double)blk.d * blk.qs[j];
                acc += (double)Wd[b * 256 + j] * xh;
                a += (double)Wabs[b * 256 + j] * fabs(xh);
            }
        }
    } else {
        for (int64_t b = 0; b < K / 32; b++) {
            const float *v = x + b * 32;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = MAX(amax, fabsf(v[j]));
            const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
            const double dh = pare_f16_to_f32(pare_f32_to_f16(d));
            int sum = 0;
            double dot = 0;
            for (int j = 0; j < 32; j++) {
                int q = (int)roundf(v[j] * id);
                sum += q;
                dot += (double)Wd[b * 32 + j] * dh * q;
                a += (double)Wabs[b * 32 + j] * fabs(dh * q);
            }
            if (kind == PARE_QB_Q5_1) {
                /* ggml's Q8_1 carries s = fp16(d·Σq); the m·Σx̂ part of the dot is m·s (Wd holds d·u only) */
                double s = pare_f16_to_f32(pare_f32_to_f16((float)sum * d));
                acc += dot + (double)Wabs[K + b] * s;
                a += fabs((double)Wabs[K + b] * s);
            } else acc += dot;
        }
    }
    *mag = a;
    return acc;
}

typedef struct lin_case { pare_qb_kind kind; int64_t N, K; } lin_case;

static void test_linear_case(lin_case c)
{
    const int64_t N = c.N, K = c.K, Ms[] = {1, 3, 17, 64};
    float *W = make_weights(N, K), *bias = randn(N, 0.5f);
    pare_qb_weight w;
    if (!ok(pare_qb_quantize(&w, c.kind, W, N, K, 0, 1) == PARE_OK, "%s %lldx%lld quantize", pare_qb_kind_name(c.kind),
            (long long)N, (long long)K))
        return;
    /* the oracle's parts of Ŵ: Wd = Ŵ; Wabs = |d·sc·u| + |dmin·m| per element (Q5_1: |d·u|, then m per block) */
    uint8_t *blocks = xalloc(pare_qb_bytes(&w));
    oracle_blocks(blocks, c.kind, W, N, K);
    float *Wd = xalloc((size_t)(N * K) * sizeof(float)), *Wabs = xalloc((size_t)(N * (K + K / 32)) * sizeof(float));
    oracle_dequant(Wd, c.kind, blocks, N, K);
    int bytes;
    const int qb = pare_qb_ggml_block(c.kind, &bytes);
    for (int64_t n = 0; n < N; n++) {
        const uint8_t *row = blocks + (size_t)n * pare_qb_ggml_row_bytes(c.kind, K);
        float *wa = Wabs + n * (K + K / 32);
        for (int64_t b = 0; b < K / qb; b++) {
            const uint8_t *blk = row + b * bytes;
            for (int j = 0; j < qb; j++) {
                const int64_t k = b * qb + j;
                float e = fabsf(Wd[n * K + k]);
                if (c.kind == PARE_QB_Q4_K || c.kind == PARE_QB_Q5_K) {
                    const block_q4_K *h = (const block_q4_K *)(const void *)blk; /* d, dmin, scales: same prefix */
                    uint8_t sc, m;
                    get_scale_min_k4(j / 32, h->scales, &sc, &m);
                    float mm = GGML_FP16_TO_FP32(h->dmin) * m;
                    e = fabsf(Wd[n * K + k] + mm) + mm;
                } else if (c.kind == PARE_QB_Q5_1) {
                    const block_q5_1 *h = (const block_q5_1 *)(const void *)blk;
                    e = fabsf(Wd[n * K + k] - GGML_FP16_TO_FP32(h->m));
                    wa[K + b] = GGML_FP16_TO_FP32(h->m);
                }
                wa[k] = e;
            }
        }
        /* for Q5_1 oracle_dot wants Wd without m: d·u; the m part enters through s */
        if (c.kind == PARE_QB_Q5_1)
            for (int64_t k = 0; k < K; k++) Wd[n * K + k] -= wa[K + k / 32];
    }
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
        const int64_t M = Ms[mi];
        float *x = randn(M * K, 1.0f), *yr = xalloc((size_t)(M * N) * sizeof(float)),
              *y = xalloc((size_t)(M * N) * sizeof(float));
        if (M > 2) for (int64_t k = 0; k < K; k++) x[2 * K + k] *= 1e-3f;
        pare_linear_qb_ref(yr, x, &w, bias, M);
        /* the reference against the oracle */
        double worst = 0;
        int64_t wi = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double mag;
                double want = oracle_dot(&mag, c.kind, Wd + n * K, Wabs + n * (K + K / 32), x + m * K, K) + bias[n];
                double bound = (double)(K / qb + 8) * ldexp(1.0, -22) * mag + 4 * ldexp(1.0, -24) * fabs(want) + 1e-30;
                double r = fabs(yr[m * N + n] - want) / bound;
                if (r > worst || r != r) worst = r, wi = m * N + n;
            }
        ok(worst <= 1.0, "%s N=%lld K=%lld M=%lld: reference within f32 rounding of the oracle's double Linear "
           "(worst %.3g of the bound at %lld)", pare_qb_kind_name(c.kind), (long long)N, (long long)K, (long long)M,
           worst, (long long)wi);
        void *ws = xalloc(pare_qb_workspace(&w, M));
        for (int ii = 0; ii < 3; ii++) {
            if (pare_qb_set_isa(ISAS[ii]) != PARE_OK) {
                diag("%s: not on this CPU", ISAS[ii]);
                continue;
            }
            for (int th = 1; th <= 2; th++) {
                omp_set_num_threads(th);
                memset(y, 0xff, (size_t)(M * N) * sizeof(float));
                pare_status st = pare_linear_qb(y, x, &w, bias, M, ws);
                ok(st == PARE_OK && !memcmp(y, yr, (size_t)(M * N) * sizeof(float)),
                   "%s N=%lld K=%lld M=%lld %s (%s) %d thread(s): bit-identical to the reference",
                   pare_qb_kind_name(c.kind), (long long)N, (long long)K, (long long)M, ISAS[ii], pare_qb_impl(&w), th);
            }
        }
        pare_qb_set_isa("auto");
        free(ws);
        free(x);
        free(y);
        free(yr);
    }
    free(blocks);
    free(Wd);
    free(Wabs);
    free(W);
    free(bias);
    pare_qb_free(&w);
}

static void test_linear(void)
{
    const lin_case cases[] = {
        {PARE_QB_Q5_0, 37, 256}, {PARE_QB_Q5_0, 12, 96},  {PARE_QB_Q5_1, 37, 256}, {PARE_QB_Q5_1, 12, 96},
        {PARE_QB_Q4_K, 37, 512}, {PARE_QB_Q4_K, 5, 256},  {PARE_QB_Q5_K, 37, 512}, {PARE_QB_Q5_K, 5, 768},
        {PARE_QB_Q6_K, 37, 512}, {PARE_QB_Q6_K, 5, 768},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_linear_case(cases[i]);
    omp_set_num_threads(2);
}

static void test_errors(void)
{
    const int64_t N = 6, K = 512, M = 4;
    float *W = randn(N * K, 1.0f), *x = randn(M * K, 1.0f), *bias = randn(N, 1.0f);
    float y[M * N];
    pare_qb_weight w;
    ok(pare_qb_quantize(&w, PARE_QB_Q4_K, W, N, 384, 0, 1) == PARE_ESHAPE && errmsg_has("K=384") &&
           errmsg_has("256"),
       "q4_k: K=384 rejected naming K and 256 (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_Q5_0, W, N, 48, 0, 1) == PARE_ESHAPE && errmsg_has("K=48"),
       "q5_0: K=48 rejected (%s)", pare_errmsg());
    for (int i = 0; i < NKINDS; i++) {
        pare_qb_kind k = KINDS[i];
        W[3 * K + 300] = NAN;
        ok(pare_qb_quantize(&w, k, W, N, K, 0, 1) == PARE_ENUMERIC && errmsg_has("row 3") && errmsg_has("column 300"),
           "%s: NaN in W named (%s)", pare_qb_kind_name(k), pare_errmsg());
        W[3 * K + 300] = 1e9f;
        ok(pare_qb_quantize(&w, k, W, N, K, 0, 1) == PARE_ENUMERIC && errmsg_has("row 3") && errmsg_has("fp16"),
           "%s: a scale beyond fp16 is reported (%s)", pare_qb_kind_name(k), pare_errmsg());
        W[3 * K + 300] = 0.5f;
        ok(pare_qb_quantize(&w, k, W, N, K, 0, 1) == PARE_OK, "%s quantize", pare_qb_kind_name(k));
        void *ws = xalloc(pare_qb_workspace(&w, M));
        x[2 * K + 17] = INFINITY;
        ok(pare_linear_qb(y, x, &w, bias, M, ws) == PARE_ENUMERIC && errmsg_has("row 2") && errmsg_has("column 17"),
           "%s: Inf in x named (%s)", pare_qb_kind_name(k), pare_errmsg());
        float yr[M * N];
        pare_linear_qb_ref(yr, x, &w, bias, M);
        ok(isnan(yr[2 * N]) && !isnan(yr[N]), "%s: the reference gives NaN for that row only", pare_qb_kind_name(k));
        x[2 * K + 17] = 0.25f;
        ok(pare_linear_qb(y, x, &w, bias, M, NULL) == PARE_EINVAL && errmsg_has("workspace"),
           "%s: NULL workspace rejected", pare_qb_kind_name(k));
        float *xz = xalloc((size_t)(M * K) * sizeof(float));
        int good = pare_linear_qb(y, xz, &w, bias, M, ws) == PARE_OK;
        for (int64_t j = 0; j < M * N; j++) good &= y[j] == bias[j % N];
        ok(good, "%s: zero tokens give exactly the bias", pare_qb_kind_name(k));
        pare_qb_free(&w);
        float *Wz = xalloc((size_t)(N * K) * sizeof(float));
        pare_qb_quantize(&w, k, Wz, N, K, 0, 1);
        good = pare_linear_qb(y, x, &w, bias, M, ws) == PARE_OK;
        for (int64_t j = 0; j < M * N; j++) good &= y[j] == bias[j % N];
        ok(good, "%s: zero weights give exactly the bias", pare_qb_kind_name(k));
        pare_qb_free(&w);
        free(Wz);
        free(xz);
        free(ws);
    }
    free(W);
    free(x);
    free(bias);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 20261207);
    test_traits();
    test_bytes();
    test_q8_k();
    test_linear();
    test_errors();
    return tap_done();
}
