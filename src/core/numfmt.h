/* numfmt.h — numeric formats (tf32, OCP FP8 E4M3 / E5M2), the integer quantization grid every pare
 * quantizer uses, and the simulated ("fake") quantizer: quantize then dequantize an f32 matrix.
 *
 * What it is: the one definition of each element format and of the int grid, scalar conversions
 * (round to nearest even), per-unit parameters (tensor / row / column / group), fake quantization,
 * and the exact storage cost of a format. What it is not: a packed storage layout or a low-precision
 * kernel (the real int8 GEMM is kernels/gemm.h); no stochastic rounding, no learned scales (GPTQ/AWQ
 * passes compute their own parameters and call pare_fake_quant_params). docs/quantization-formats.md
 * describes every format, rounding and saturation rule and how storage bits are counted.
 *
 *     pare_qspec s = {.fmt = PARE_NF_INT, .bits = 4, .symmetric = 1, .gran = PARE_GRAN_GROUP, .group = 128};
 *     PARE_TRY(pare_fake_quant(Wq, W, N, K, &s));      // W (N, K) -> Wq (N, K) on the int4 grid, per 128
 *     double bits = pare_qspec_storage_bits(&s, N, K);  // 4·N·K + 16·N·K/128
 *     char buf[64]; pare_qspec_str(&s, buf, sizeof buf); // "int4 sym group128"
 *
 * Matrices are row-major (rows, cols): a weight W (N, K) — a row is an output channel — or
 * activations X (M, K) — a row is a token.
 */
#ifndef PARE_NUMFMT_H
#define PARE_NUMFMT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* ---- element conversions (round to nearest, ties to even) ---- */

/* x rounded to TF32 (8-bit exponent, 10-bit mantissa, kept in an f32): the low 13 mantissa bits are
 * rounded away, ties to even; subnormals likewise; rounding past the largest finite value gives ±Inf;
 * ±Inf and NaN are returned unchanged. */
float pare_tf32_round(float x);

/* OCP FP8 E4M3 ("e4m3fn"): S.EEEE.MMM, bias 7, no Inf, NaN = S.1111.111, max ±448, subnormals down to
 * 2^-9. Saturating: |x| > 448 (including ±Inf) -> ±448; NaN -> sign|0x7f. Sign kept (-0 -> 0x80). */
uint8_t pare_f32_to_e4m3(float x);
float pare_e4m3_to_f32(uint8_t b);
/* OCP FP8 E5M2: S.EEEEE.MM, bias 15, IEEE-like (Inf = S.11111.00, NaN = S.11111.{01,10,11}), max ±57344,
 * subnormals down to 2^-16. Saturating for finite input: |x| > 57344 -> ±57344; ±Inf stays ±Inf;
 * NaN -> sign|0x7e. */
uint8_t pare_f32_to_e5m2(float x);
float pare_e5m2_to_f32(uint8_t b);

#define PARE_E4M3_MAX 448.0f
#define PARE_E5M2_MAX 57344.0f

/* ---- the integer grid ----
 *
 * symmetric, b bits:  qmax = 2^(b-1)-1, q in [-qmax, qmax], scale = absmax/qmax, zero = 0
 *                     (absmax = max(|lo|, |hi|)).
 * asymmetric, b bits: [lo, hi] first extended to contain 0; q in [0, 2^b-1], scale = (hi-lo)/(2^b-1),
 *                     zero = nearbyint(-lo/scale) clamped to [0, 2^b-1].
 * x^ = scale·(q - zero). An all-zero range gives scale = 1, zero = 0 (so x = 0 -> q = 0 -> 0).
 * A scale that would underflow to 0 is raised to the smallest positive float (FLT_TRUE_MIN).
 * bits must be in 2..16 (1-bit symmetric has no levels; binary/ternary are separate formats). */
typedef struct pare_qparams {
    float scale;      /* > 0 */
    int32_t zero;     /* in [qmin, qmax]; 0 when symmetric */
    int32_t qmin, qmax;
} pare_qparams;

/* PARE_EINVAL for bits outside 2..16 or lo > hi; PARE_ENUMERIC for a non-finite lo or hi. */
pare_status pare_qparams_make(pare_qparams *qp, float lo, float hi, int bits, int symmetric);

/* q = clamp(nearbyint(x/scale) + zero, qmin, qmax), ties to even under the default rounding mode.
 * NaN gives qmin (callers reject NaN first; pare_fake_quant does). */
static inline int32_t pare_qround(float x, const pare_qparams *qp)
{
    float v = nearbyintf(x / qp->scale) + (float)qp->zero;
    if (!(v >= (float)qp->qmin)) return qp->qmin;
    if (v > (float)qp->qmax) return qp->qmax;
    return (int32_t)v;
}

/* x^ = scale·(q - zero). */
static inline float pare_qdequant(int32_t q, const pare_qparams *qp) { return qp->scale * (float)(q - qp->zero); }

/* ---- formats and granularities of simulated quantization ---- */

typedef enum pare_numfmt { /* append-only */
    PARE_NF_F32 = 0,
    PARE_NF_TF32,
    PARE_NF_BF16,
    PARE_NF_F16,
    PARE_NF_E4M3,
    PARE_NF_E5M2,
    PARE_NF_INT,
    PARE_NF_BINARY,
    PARE_NF_TERNARY,
    PARE_NF_COUNT
} pare_numfmt;

typedef enum pare_qgran { /* append-only */
    PARE_GRAN_TENSOR = 0, /* one unit for the whole matrix */
    PARE_GRAN_ROW,        /* one per row: output channel of W (N, K), token of X (M, K); named "channel" */
    PARE_GRAN_COLUMN,     /* one per column: input channel / feature */
    PARE_GRAN_GROUP,      /* `group` consecutive elements of a row; group divides cols */
    PARE_GRAN_COUNT
} pare_qgran;

/* "fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "int", "binary", "ternary" ("?" if out of range). */
const char *pare_numfmt_name(pare_numfmt f);
/* Also accepts "f32", "f16", "e4m3", "e5m2". PARE_EINVAL listing the valid names otherwise. */
pare_status pare_numfmt_parse(const char *s, pare_numfmt *f);
/* "tensor", "channel", "column", "group". */
const char *pare_qgran_name(pare_qgran g);
/* Also accepts "row" and "token" for PARE_GRAN_ROW. PARE_EINVAL listing the valid names otherwise. */
pare_status pare_qgran_parse(const char *s, pare_qgran *g);

typedef struct pare_qspec {
    pare_numfmt fmt;
    int bits;        /* PARE_NF_INT: 2..16; ignored otherwise */
    int symmetric;   /* PARE_NF_INT: nonzero = symmetric; ignored otherwise */
    pare_qgran gran; /* INT, FP8 (scale = absmax/fmt_max per unit), BINARY, TERNARY; ignored for fp32/tf32/bf16/fp16 */
    int64_t group;   /* PARE_GRAN_GROUP: elements per group, must divide cols */
} pare_qspec;

/* Check s against a (rows, cols) matrix; the message names the option and the valid values
 * ("bits=1: must be in 2..16 for int", "group=48 does not divide cols=100"). rows, cols >= 0. */
pare_status pare_qspec_check(const pare_qspec *s, int64_t rows, int64_t cols);
/* "int4 sym group128", "int8 asym channel", "fp8_e4m3 tensor", "ternary column", "bf16"; returns buf. */
const char *pare_qspec_str(const pare_qspec *s, char *buf, size_t n);
/* The inverse of pare_qspec_str: a format name (int<bits>, fp8_e4m3, ...) followed by optional words
 * "sym"/"asym", a granularity, "group<G>". Defaults: symmetric, per tensor. PARE_EINVAL naming the word. */
pare_status pare_qspec_parse(pare_qspec *s, const char *str);

/* Number of parameter units of a (rows, cols) matrix: 1, rows, cols or rows·cols/group; 0 for
 * fp32/tf32/bf16/fp16 (no parameters). Assumes pare_qspec_check passed. */
int64_t pare_qspec_units(const pare_qspec *s, int64_t rows, int64_t cols);
/* The unit element (r, c) belongs to (0 <= result < pare_qspec_units). */
static inline int64_t pare_qspec_unit_of(const pare_qspec *s, int64_t cols, int64_t r, int64_t c)
{
    switch (s->gran) {
    case PARE_GRAN_ROW: return r;
    case PARE_GRAN_COLUMN: return c;
    case PARE_GRAN_GROUP: return r * (cols / s->group) + c / s->group;
    default: return 0;
    }
}

/* out (rows, cols) = dequant(quant(x (rows, cols))); out may alias x. Parameters come from each unit's
 * min/max (INT; absmax when symmetric), absmax (FP8: scale = absmax/fmt_max; x/scale is converted with
 * saturation), mean |x| (BINARY: out = sign(x)·mean|x|, sign(0) = +1) or TWN statistics (TERNARY:
 * delta = 0.7·mean|x|, alpha = mean of |x| over |x| > delta, out = alpha·sign(x) where |x| > delta,
 * else 0). fp32 copies; tf32/bf16/fp16 round each element.
 * PARE_ENUMERIC naming the (row, col) of the first NaN/Inf (out untouched); PARE_EINVAL from
 * pare_qspec_check; PARE_ENOMEM. */
pare_status pare_fake_quant(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s);
/* Same with given parameters (static quantization), INT only: qp[pare_qspec_units(s, rows, cols)],
 * each with scale > 0 finite and qmin <= zero <= qmax. */
pare_status pare_fake_quant_params(float *out, const float *x, int64_t rows, int64_t cols, const pare_qspec *s,
                                   const pare_qparams *qp);
/* The min-max parameters pare_fake_quant uses, into qp[pare_qspec_units(s, rows, cols)]. INT only. */
pare_status pare_qspec_params_minmax(pare_qparams *qp, const float *x, int64_t rows, int64_t cols,
                                     const pare_qspec *s);

/* Exact storage bits of a (rows, cols) weight under s: element bits plus per-unit parameters.
 *   fp32, tf32: 32 per element (tf32 is a compute format, stored as f32); bf16, fp16: 16
 *   fp8:     8 per element + 16 (fp16 scale) per unit
 *   int:     bits per element + 16 (fp16 scale) per unit, + bits (zero point) per unit when asymmetric
 *   binary:  1 per element + 16 (fp16 alpha) per unit; ternary: 2 per element + 16 per unit
 * -1 if pare_qspec_check fails (message kept). */
double pare_qspec_storage_bits(const pare_qspec *s, int64_t rows, int64_t cols);

#endif
