/* wq.h — Linear layers on weight-only quantized weights that the block formats (qblock.h) do not cover:
 * int8 / int3 / int2 groups with f32 activations, packed binary and ternary weights with add/subtract
 * kernels, and W4A8 (int4 weights × int8 per-token activations on VNNI).
 *
 *   y(M,N) = x(M,K) · Ŵ(N,K)^T + bias(N)        Ŵ = the dequantized weight; groups run along K
 *
 * | kind          | stored per weight          | per group (or row)        | activations            | bits/weight      |
 * |---------------|----------------------------|---------------------------|------------------------|------------------|
 * | PARE_WQ_I8    | u8 code u                  | fp16 s (+ u8 zero if asym)| f32                    | 8 + 16/g (+8/g)  |
 * | PARE_WQ_I3    | 3-bit code (2 + 1 planes)  | fp16 s (+ u8 zero if asym)| f32                    | 3 + 16/g (+8/g)  |
 * | PARE_WQ_I2    | 2-bit code, 4 per byte     | fp16 s (+ u8 zero if asym)| f32                    | 2 + 16/g (+8/g)  |
 * | PARE_WQ_BIN   | 1 bit: sign                | fp16 α per row            | f32, add / subtract    | 1 + 16/K         |
 * | PARE_WQ_TER   | 2 bits: + and − masks      | fp16 α per row            | f32, add / subtract    | 2 + 16/K         |
 * | PARE_WQ_W4A8  | 4-bit code, 2 per byte     | fp16 s                    | int8 per token (VNNI)  | 4 + 16/g         |
 *
 * Dequantized values (s, α the fp16 values as f32; z the zero point: stored when asymmetric, else the
 * code's midpoint 2^(b−1): 128, 4, 2 — so symmetric q = u − z lies in [−(2^(b−1)−1), 2^(b−1)−1] as pare's
 * rtn grid makes it, and −2^(b−1) is accepted too):
 *   I8, I3, I2   Ŵ = s·(u − z)            W4A8  Ŵ = s·(u − 8), u in [0,15]
 *   BIN          Ŵ = +α (bit 1) or −α (bit 0)      (XNOR-Net / BinaryBERT: α = mean |w| of the row, sign(0) = +1)
 *   TER          Ŵ = +α, −α or 0                    (TWN / TernaryBERT: Δ = 0.7·mean |w|, α = mean |w| over |w| > Δ)
 *
 * Storage: qs (N, row_bytes) with rows one after another; scale (N, K/group) fp16; zero (N, K/group) u8 or NULL.
 *   I8    K bytes, element k in byte k.
 *   I2    chunks of 64 elements in 16 bytes: element 16·i + l (i < 4, l < 16) in bits 2i, 2i+1 of byte l — one
 *         16-byte load widened to 32-bit lanes and shifted right by 2i holds 16 consecutive codes.
 *   I3    chunks of 64 elements in 24 bytes: the low two bits of each code as I2 (16 bytes), then four
 *         little-endian 16-bit words: bit l of word i = bit 2 of element 16·i + l's code (an AVX-512 mask).
 *         (llama.cpp's Q3_K also splits 2 + 1 bits; this layout is pare's own, not Q3_K's.)
 *   BIN   K/8 bytes: element k in bit k mod 8 of byte k/8 (bit l of the little-endian 16-bit word k/16).
 *   TER   per 16 elements two little-endian 16-bit words: P (bit l: element is +α), then M (−α); never both.
 *   W4A8  chunks of 64 elements in 32 bytes: byte j (j < 32) holds element j in its low nibble and element
 *         32 + j in its high nibble — one 32-byte load, masked and shifted, is 64 codes in natural order.
 * Shapes: K a multiple of 16 (I8, BIN, TER) or 64 (I3, I2, W4A8); group a multiple of 16 (32 for W4A8)
 * dividing K; BIN and TER have one α per row (group = K).
 *
 * W4A8's activations, per token (row of x): sx = absmax/127, qx = clamp(rint(x·127/absmax), ±127) (round half to
 * even), and per group the exact int32 sum S_g = Σ_{k in g} u·qx − 8·Σ_{k in g} qx = Σ q·qx; then
 *   acc = 0; for g in order: acc = fmaf(s_g, (float)S_g, acc);   y = fmaf(acc, sx, bias)
 * — the same operations in the same order in the reference and in every kernel, so W4A8 outputs are
 * bit-identical across kernels, not merely close. The f32-activation kinds sum in different orders (rounding-
 * bounded against the reference).
 *
 *     pare_wq_weight w;
 *     PARE_TRY(pare_wq_from_int(&w, PARE_WQ_I2, q, scale, NULL, N, K, 64));   // integers from rtn / gptq
 *     void *ws = aligned_alloc(64, pad64(pare_wq_workspace(&w, M)));          // may be 0 bytes (then NULL)
 *     PARE_TRY(pare_linear_wq(y, x, &w, bias, M, ws));
 *     pare_wq_free(&w);
 *
 * Kernels (chosen at run time from pare_cpu_get(); pare_wq_impl names the one that runs):
 *   f32 kinds, M <= PARE_WQ_GEMV_MAX_M   tiles of 4 rows × 4 tokens (AVX-512) or 4 × 2 (AVX2); 16 codes (AVX-512)
 *                                         or 8 (AVX2) widened and turned into s·u − s·z by one FMA, FMA with x; BIN / TER:
 *                                         no multiply at all — the bits are the masks of masked adds and
 *                                         subtracts (AVX-512 vaddps/vsubps{k}; AVX2 sign flips and ands), α
 *                                         applied once per row
 *   f32 kinds, larger M                  panels of rows dequantized into a per-thread f32 buffer, pare_sgemm
 *   W4A8                                 vpdpbusd (AVX512-VNNI) on the u8 codes × s8 activations, int32 per group,
 *                                         tiles of 4 rows × 4 tokens; vpmaddubsw + vpmaddwd on AVX2; plain C
 * OpenMP over N (output channels), with the current omp thread count.
 *
 * Deliberately not here: XNOR / popcount with binarized activations (the activations stay f32 here), asymmetric
 * W4A8, per-group α for BIN / TER, a backward kernel (fmt_wq.c trains BIN / TER by the straight-through estimator
 * with pare_sgemm on the dequantized weights), fused activations, repacked tile layouts, table-lookup decoding.
 */
#ifndef PARE_WQ_H
#define PARE_WQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pare_wq_kind { /* append-only */
    PARE_WQ_I8 = 0,
    PARE_WQ_I3,
    PARE_WQ_I2,
    PARE_WQ_BIN,
    PARE_WQ_TER,
    PARE_WQ_W4A8,
    PARE_WQ_COUNT
} pare_wq_kind;

/* Above this many tokens the f32 kinds dequantize panels of W and run pare_sgemm on them. */
#define PARE_WQ_GEMV_MAX_M 32

typedef struct pare_wq_weight {
    pare_wq_kind kind;
    int64_t N, K;      /* output, input features */
    int64_t group;     /* elements per scale along K (K for BIN / TER) */
    int symmetric;     /* 1: z implied (2^(b−1)); 0: zero points stored (I8, I3, I2 only) */
    uint8_t *qs;       /* (N, pare_wq_row_bytes) codes, see the top of this file */
    uint16_t *scale;   /* (N, K/group) fp16: s, or α */
    uint8_t *zero;     /* (N, K/group) u8 zero points, asymmetric only */
} pare_wq_weight;

/* "int8_wo", "int3", "int2", "binary", "ternary", "w4a8" ("?" out of range). */
const char *pare_wq_kind_name(pare_wq_kind k);
/* Bits of one stored code: 8, 3, 2, 1, 2, 4. */
int pare_wq_kind_bits(pare_wq_kind k);
/* Bytes of one row of qs. */
int64_t pare_wq_row_bytes(const pare_wq_weight *w);

/* PARE_OK if (kind, N, K, group, symmetric) can be stored, else PARE_EINVAL / PARE_ESHAPE saying which
 * constraint fails (the passes ask first and fall back to the simulated form, labelled, when it does not fit). */
pare_status pare_wq_check(pare_wq_kind kind, int64_t N, int64_t K, int64_t group, int symmetric);

/* From integers chosen by an external algorithm (rtn, gptq): q (N,K), scale (N, K/group) f32 (rounded to nearest
 * fp16), zero (N, K/group) or NULL (symmetric). I8, I3, I2, W4A8 only. Symmetric q in [−2^(b−1), 2^(b−1)−1];
 * asymmetric q in [0, 2^b − 1] and zero in [0, 255] (I8) or [0, 2^b − 1]. W4A8: symmetric only.
 * PARE_EINVAL naming the first value out of range; PARE_ENUMERIC for a scale not finite or beyond fp16. */
pare_status pare_wq_from_int(pare_wq_weight *out, pare_wq_kind kind, const int32_t *q, const float *scale,
                             const int32_t *zero, int64_t N, int64_t K, int64_t group);

/* BIN / TER from f32 weights W (N,K), one α per row: binary α = mean |w|, bit = (w >= 0); ternary (TWN)
 * Δ = 0.7·mean |w| (in double), ±α where |w| > Δ with α the mean |w| there, else 0. α rounded to nearest fp16.
 * PARE_ENUMERIC naming row and column for NaN/Inf in W; PARE_EINVAL / PARE_ESHAPE as pare_wq_check. */
pare_status pare_wq_quantize_sign(pare_wq_weight *out, pare_wq_kind kind, const float *W, int64_t N, int64_t K);

void pare_wq_free(pare_wq_weight *w); /* safe twice, and on a zeroed struct */

/* Exact storage bytes: codes + scales + zero points. */
size_t pare_wq_bytes(const pare_wq_weight *w);
double pare_wq_bits_per_weight(const pare_wq_weight *w);

/* The integer code of element (n, k) (I8/I3/I2/W4A8: u; BIN: 0/1; TER: −1, 0, +1), decoded one element at a time
 * from the layout by plain C: what the tests read the layout through. */
int pare_wq_code(const pare_wq_weight *w, int64_t n, int64_t k);
/* W (N,K) = Ŵ in f32. */
void pare_wq_dequantize(float *W, const pare_wq_weight *w);

/* Bytes of workspace pare_linear_wq needs for M tokens (64-byte aligned buffer from the caller); 0 when none. */
size_t pare_wq_workspace(const pare_wq_weight *w, int64_t M);

/* y(M,N) = x(M,K)·Ŵ^T + bias (bias may be NULL). PARE_EINVAL for an unquantized weight, M < 0, NULL or misaligned
 * buffers; PARE_ENUMERIC naming the row of x that holds NaN/Inf (W4A8 only; the f32 kinds let NaN propagate). */
pare_status pare_linear_wq(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M,
                           void *workspace);
/* Plain C, single thread: the f32 kinds as Σ_k x·Ŵ in double (rounded to f32 once); W4A8 with the exact
 * arithmetic described above. A NaN/Inf row of x gives NaN outputs (W4A8); if it cannot allocate it fills y
 * with NaN. */
void pare_linear_wq_ref(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M);
/* W4A8 only: the exact per-group integer sums S (M, N, K/group) = Σ_{k in g} q·qx and the token scales sx (M)
 * of the reference's activation quantization (for tests). PARE_EINVAL for another kind. */
pare_status pare_wq_w4a8_sums_ref(int32_t *S, float *sx, const float *x, const pare_wq_weight *w, int64_t M);

/* Which kernel pare_linear_wq runs for w (M tokens) on this CPU (under pare_wq_set_isa): "wq-avx512",
 * "wq-avx2", "w4a8-vnni512", "w4a8-avx2", "scalar" (+ "+sgemm" for the f32 kinds' panel path); "none". */
const char *pare_wq_impl(const pare_wq_weight *w, int64_t M);

/* Cap the instruction set: "auto", "avx512", "avx2", "scalar" (as pare_qb_set_isa; W4A8 uses AVX-512 only with
 * AVX512-VNNI). PARE_EINVAL for an unknown name, PARE_ENOTSUP if the CPU lacks it. Process-wide; tests and
 * benches map PARE_WQ_FORCE onto it. */
pare_status pare_wq_set_isa(const char *isa);

#endif
