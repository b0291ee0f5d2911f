/* qblock.h — Linear layers on block-quantized weights: int4 / int8 group-wise and llama.cpp's Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1 and the k-quants Q4_K, Q5_K, Q6_K.
 *
 *   y(M,N) = x(M,K) · Ŵ(N,K)^T + bias(N)        Ŵ = the dequantized weight; groups / blocks run along K
 *
 * | kind          | values               | per group / block          | activations          | bits/weight     |
 * |---------------|----------------------|----------------------------|----------------------|-----------------|
 * | PARE_QB_I4G   | int4, 2 per byte     | fp16 s (+ u8 zero if asym) | f32 (weight-only)    | 4 + 16/g (+8/g) |
 * | PARE_QB_I8G   | int8 in [-127,127]   | fp16 s                     | int8 per token       | 8 + 16/g        |
 * | PARE_QB_Q8_0  | int8, blocks of 32   | fp16 d                     | Q8_0 per block of 32 | 8.5             |
 * | PARE_QB_Q4_0  | 4-bit, blocks of 32  | fp16 d                     | Q8_0 per block of 32 | 4.5             |
 * | PARE_QB_Q4_1  | 4-bit, blocks of 32  | fp16 d, fp16 m             | Q8_1 per block of 32 | 5.0             |
 * | PARE_QB_Q5_0  | 5-bit, blocks of 32  | fp16 d                     | Q8_0 per block of 32 | 5.5             |
 * | PARE_QB_Q5_1  | 5-bit, blocks of 32  | fp16 d, fp16 m             | Q8_1 per block of 32 | 6.0             |
 * | PARE_QB_Q4_K  | 4-bit, super-blocks of 256 = 8×32 | fp16 d, dmin; 6-bit scale, min per 32 | Q8_K (256) | 4.5 |
 * | PARE_QB_Q5_K  | 5-bit, super-blocks of 256 = 8×32 | fp16 d, dmin; 6-bit scale, min per 32 | Q8_K (256) | 5.5 |
 * | PARE_QB_Q6_K  | 6-bit, super-blocks of 256 = 16×16 | fp16 d; int8 scale per 16           | Q8_K (256) | 6.5625 |
 *
 * Dequantized values (u = the stored nibble / byte, s, d, m the fp16 values as f32):
 *   I4G  sym  Ŵ = s·(u − 8), q = u − 8 in [-8,7] (the quantizer uses [-7,7])    asym  Ŵ = s·(u − z), u in [0,15]
 *   I8G       Ŵ = s·q                       Q8_0  Ŵ = d·q
 *   Q4_0      Ŵ = d·(u − 8)                 Q4_1  Ŵ = d·u + m
 *   Q5_0      Ŵ = d·(u − 16), u 5 bits      Q5_1  Ŵ = d·u + m
 *   Q4_K, Q5_K  Ŵ = d·sc_j·u − dmin·m_j  (sub-block j of 32; sc_j, m_j the 6-bit integers; u 4 / 5 bits)
 *   Q6_K        Ŵ = d·sc_j·(u − 32)        (sub-block j of 16; sc_j int8; u 6 bits)
 *
 * Storage (struct of arrays; every row of every array contiguous, rows one after another):
 *   qs     Q4_0, Q4_1: (N, K/2) bytes, llama.cpp's layout: in each run of 32 elements k0 … k0+31, byte k0/2 + j
 *          holds element k0+j in its low nibble and k0+16+j in its high nibble (j < 16).
 *          I4G: (N, K/2) bytes in chunks of 128 elements: element c·128 + 16·i + l (i < 8, l < 16) in byte
 *          64·c + 4·l + i/2, low nibble for even i — so that one 64-byte load shifted right by 4·i holds, in
 *          the low nibble of its 32-bit lanes, 16 consecutive elements (the kernel's table lookup ignores the
 *          upper bits). The last K mod 128 elements (0, 32, 64 or 96) follow in llama.cpp's 32-runs.
 *          8-bit kinds: (N, K) int8.
 *   scale  (N, K/group) fp16 bits: s (I4G, I8G) or d (Q kinds).
 *   min    (N, K/32) fp16 bits: m (Q4_1 only, else NULL).
 *   zero   (N, K/group) u8 zero points (I4G asymmetric only, else NULL).
 * For the Q kinds the bytes of block b of row n (d, [m,] qs) are exactly those of llama.cpp's block_q8_0 /
 * block_q4_0 / block_q4_1, just not interleaved; pare_qb_to_ggml writes the interleaved ggml blocks.
 * Q5_0, Q5_1 and the k-quants ("ggml-block kinds") are stored as ggml's blocks themselves: qs holds
 * (N, K/QB·block bytes), row after row, each block byte for byte ggml's block_q5_0 (22 bytes: d, qh[4],
 * qs[16]), block_q5_1 (24: d, m, qh[4], qs[16]), block_q4_K (144: d, dmin, scales[12], qs[128]), block_q5_K
 * (176: d, dmin, scales[12], qh[32], qs[128]), block_q6_K (210: ql[128], qh[64], scales[16], d); scale, min
 * and zero are NULL. QB = 32 (Q5_*) or 256 (k-quants); K must be a multiple of QB.
 *
 * Activation quantization (inside pare_linear_qb, per call):
 *   I8G   per token (row of x): sx = absmax/127, qx = clamp(rint(x·127/absmax), ±127) (round half to even);
 *         y = bias + sx · Σ_g s[n,g] · (Σ_{k in g} qx·q)
 *   Q*    per block of 32 exactly as llama.cpp's quantize_row_q8_0_ref / _q8_1_ref (deliberately reproduced:
 *         d = absmax/127 stored as fp16, qx = roundf(x·(1/d)) — round half AWAY from zero — and for Q8_1 also
 *         s = fp16(d·Σqx)); y = bias + Σ_b d_w·d_x·Σ q_w·q_x  (Q4_0: q_w = u − 8; Q4_1: + m_w·s_x)
 *   Q5_0/Q5_1  the same Q8_0 / Q8_1 activations; y = bias + Σ_b (d_w·d_x)·I_b (Q5_1: + m_w·s_x), I_b = Σ q_w·q_x
 *   k-quants   Q8_K per super-block of 256 as llama.cpp's quantize_row_q8_K_ref (iscale = −127/max with max the
 *              signed value of largest |x|, q = min(127, nearest_int(iscale·x)) — round half to even —, d = 1/iscale
 *              in f32, bsums = sums of 16 q); y = bias + Σ_b [(d_w·d_x)·I_b − (dmin_w·d_x)·Mn_b] with the exact
 *              integers I_b = Σ_j sc_j·Σ_{k in j} u·q_x (Q6_K: (u − 32)), Mn_b = Σ_j m_j·(bsums of sub-block j)
 * The integer dot products are exact (int32); only the float sums over groups / blocks differ in order
 * between the fast kernels and the references (for the ggml-block kinds not even that: their kernels compute
 * I_b, Mn_b with SIMD and combine them in the reference's order, so every ISA gives the same bits).
 *
 *     pare_qb_weight w;
 *     PARE_TRY(pare_qb_quantize(&w, PARE_QB_Q4_0, W, N, K, 0, 1));     // group/symmetric ignored for Q kinds
 *     void *ws = aligned_alloc(64, pad64(pare_qb_workspace(&w, M)));    // may be 0 bytes (then NULL is fine)
 *     PARE_TRY(pare_linear_qb(y, x, &w, bias, M, ws));
 *     pare_qb_free(&w);
 *
 * Kernels (chosen at run time from pare_cpu_get(); pare_qb_impl names the one that runs):
 *   I4G, M <= PARE_QB_I4G_GEMV_MAX_M   16 weights per vpermps from a per-group table s·(0..15 − z) (AVX-512),
 *                                       or shift / mask / cvt (AVX2), FMA with x; tiles of 4 rows × 4 tokens,
 *                                       rows of W streamed once, the next tile prefetched
 *   I4G, larger M                      panels of W (up to 384 rows) dequantized into a per-thread f32 buffer,
 *                                       pare_sgemm on each
 *   I8G, Q*                            vpdpbusd (AVX512-VNNI) on u8 weights × s8 activations, the +128 / +8
 *                                       offsets removed lane by lane; vpmaddubsw sign trick on AVX2; plain C
 * OpenMP over N (output channels), with the current omp thread count.
 *
 * Deliberately not here: Q2_K, Q3_K and the i-quants, importance-matrix quantizers (quantize_row_q4_K_impl's
 * imatrix path), calibration-aware scales (GPTQ / AWQ choose integers that
 * pare_qb_from_int takes), an own f32 GEMM micro-kernel for I4G panels (pare_sgemm, ~0.75–0.9× the packed
 * f32 Linear at M = 128), repacked / interleaved weight layouts, int4 weights with int8 activations (W4A8),
 * fused activations, a backward pass. docs/kernels-qblock.md has the measurements.
 */
#ifndef PARE_QBLOCK_H
#define PARE_QBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pare_qb_kind { /* append-only */
    PARE_QB_I4G = 0,
    PARE_QB_I8G,
    PARE_QB_Q8_0,
    PARE_QB_Q4_0,
    PARE_QB_Q4_1,
    PARE_QB_Q5_0,
    PARE_QB_Q5_1,
    PARE_QB_Q4_K,
    PARE_QB_Q5_K,
    PARE_QB_Q6_K,
    PARE_QB_COUNT
} pare_qb_kind;

/* Block size of the llama.cpp formats; super-block size of the k-quants (ggml's QK_K). */
#define PARE_QB_QK 32
#define PARE_QB_QK_K 256
/* Bytes of one ggml block_q8_K: f32 d, int8 qs[256], int16 bsums[16]. */
#define PARE_QB_Q8_K_BYTES 292
/* Above this many tokens the I4G Linear dequantizes panels of W and runs pare_sgemm on them; up to it the
 * GEMV tiles (4 tokens × 4 rows) are faster (measured crossover M ≈ 32 at 768×768, higher for larger K). */
#define PARE_QB_I4G_GEMV_MAX_M 32

typedef struct pare_qb_weight {
    pare_qb_kind kind;
    int64_t N, K;      /* output, input features */
    int64_t group;     /* elements per scale along K; 32 for the Q kinds */
    int symmetric;     /* I4G: 1 symmetric, 0 with zero points; I8G, Q8_0, Q4_0: 1; Q4_1: 0 */
    uint8_t *qs;       /* (N, K/2) nibbles or (N, K) int8, or ggml blocks (N, K/QB·bytes), see above */
    uint16_t *scale;   /* (N, K/group) fp16; NULL for the ggml-block kinds */
    uint16_t *min;     /* (N, K/32) fp16, Q4_1 only */
    uint8_t *zero;     /* (N, K/group), I4G asymmetric only */
} pare_qb_weight;

/* "int4_group", "int8_group", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k" ("?" out of range). */
const char *pare_qb_kind_name(pare_qb_kind k);
/* PARE_EINVAL listing the valid names otherwise. */
pare_status pare_qb_kind_parse(const char *s, pare_qb_kind *k);

/* Round-to-nearest quantization of W (N,K) (row-major, like nn.Linear's weight).
 *   I4G  group: a multiple of 32 dividing K. symmetric: s = absmax/7, q = clamp(rint(w/s), ±7); asymmetric:
 *        the range [min(w,0), max(w,0)] in 15 steps, s = range/15, z = clamp(rint(−min/s), 0, 15),
 *        u = clamp(rint(w/s) + z, 0, 15). s is rounded UP to fp16 before q is chosen, so every element is
 *        within half a step s/2 of its dequantized value.
 *   I8G  group as I4G; symmetric only: s = absmax/127 (rounded up to fp16), q = clamp(rint(w/s), ±127).
 *   Q*   group and symmetric ignored (32; Q8_0/Q4_0 symmetric, Q4_1 not): llama.cpp's reference quantizers
 *        quantize_row_q8_0_ref / _q4_0_ref / _q4_1_ref bit for bit (their rounding: roundf, or +8.5 / +0.5
 *        truncated). K must be a multiple of 32.
 *   Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: quantize_row_q5_0_ref / _q5_1_ref / _q4_K_ref / _q5_K_ref / _q6_K_ref bit for
 *        bit (the k-quants with make_qkx2_quants / make_qx_quants and their scale searches, nearest_int's
 *        round half to even). K must be a multiple of 32 (Q5_*) or 256 (k-quants).
 * An all-zero group gets scale 0 and q = 0 (dequantizes to 0, never NaN).
 * Errors: PARE_EINVAL naming the option (group, symmetric, N, K) and the valid values; PARE_ESHAPE for K not
 * divisible by group / 32; PARE_ENUMERIC naming row and column for NaN/Inf in W, or row and group when a
 * scale does not fit fp16; PARE_ENOMEM. out is zeroed on failure (pare_qb_free is safe). */
pare_status pare_qb_quantize(pare_qb_weight *out, pare_qb_kind kind, const float *W, int64_t N, int64_t K,
                             int64_t group, int symmetric);

/* From integers chosen by an external algorithm (GPTQ, AWQ, ...): q (N,K), scale (N, K/group) f32 (rounded
 * to fp16), zero (N, K/group) or NULL. I4G with zero == NULL: symmetric, q in [-8,7]; with zero: asymmetric,
 * q in [0,15], zero in [0,255]. I8G: q in [-127,127], zero must be NULL. Other kinds: PARE_EINVAL.
 * PARE_EINVAL naming the first value out of range; PARE_ENUMERIC for a scale that is not finite or
 * overflows fp16. */
pare_status pare_qb_from_int(pare_qb_weight *out, pare_qb_kind kind, const int32_t *q, const float *scale,
                             const int32_t *zero, int64_t N, int64_t K, int64_t group);

void pare_qb_free(pare_qb_weight *w); /* safe twice, and on a zeroed struct */

/* Exact storage bytes: values + scales + zero points / mins. */
size_t pare_qb_bytes(const pare_qb_weight *w);
/* 8·bytes/(N·K): 4.5, 5.0, 8.5 for Q4_0, Q4_1, Q8_0; 4 + 16/g (+8/g asym) for I4G; 8 + 16/g for I8G. */
double pare_qb_bits_per_weight(const pare_qb_weight *w);

/* W (N,K) = Ŵ in f32. */
void pare_qb_dequantize(float *W, const pare_qb_weight *w);

/* Q kinds and ggml-block kinds: the rows as llama.cpp blocks (ggml's block_q8_0 / _q4_0 / _q4_1 / _q5_0 /
 * _q5_1 / _q4_K / _q5_K / _q6_K, little-endian), pare_qb_bytes(w) bytes. PARE_EINVAL for other kinds or
 * dst_bytes too small. */
pare_status pare_qb_to_ggml(void *dst, size_t dst_bytes, const pare_qb_weight *w);
/* The inverse for the ggml-block kinds and Q8_0 / Q4_0 / Q4_1: a weight (N,K) from N·K/QB ggml blocks
 * (src_bytes must be exactly pare_qb_ggml_row_bytes(kind, K)·N). PARE_EINVAL naming the mismatch. */
pare_status pare_qb_from_ggml(pare_qb_weight *out, pare_qb_kind kind, const void *src, size_t src_bytes, int64_t N,
                              int64_t K);
/* ggml's type id of a Q / ggml-block kind (Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q4_K 12, Q5_K 13, Q6_K 14);
 * -1 for int4_group / int8_group (no ggml type). */
int pare_qb_ggml_type(pare_qb_kind kind);
/* The kind of ggml type id t, or PARE_QB_COUNT. */
pare_qb_kind pare_qb_kind_of_ggml(int t);
/* Elements per block (32 or 256) and bytes per block of a Q / ggml-block kind; 0 for the others. */
int pare_qb_ggml_block(pare_qb_kind kind, int *bytes);
/* Bytes of one row of K elements in ggml blocks (0 if K is not a multiple of the block). */
size_t pare_qb_ggml_row_bytes(pare_qb_kind kind, int64_t K);

/* llama.cpp's quantize_row_q8_K_ref: x (K) into K/256 ggml block_q8_K (PARE_QB_Q8_K_BYTES each, little-endian;
 * an all-zero block gets d = 0, qs = 0, bsums = 0). PARE_ESHAPE for K not a multiple of 256, PARE_ENUMERIC
 * naming the element for NaN/Inf. */
pare_status pare_qb_quantize_q8_k(void *dst, const float *x, int64_t K);

/* Bytes of workspace pare_linear_qb needs for M tokens (64-byte aligned buffer from the caller); 0 when
 * none (then workspace may be NULL). For I4G with M > PARE_QB_I4G_GEMV_MAX_M this holds one panel per
 * processor (omp_get_num_procs()); pare_linear_qb never runs more threads than that. */
size_t pare_qb_workspace(const pare_qb_weight *w, int64_t M);

/* y(M,N) = x(M,K)·Ŵ^T + bias (bias may be NULL). PARE_EINVAL for an unquantized weight, M < 0, NULL or
 * misaligned buffers; PARE_ENUMERIC naming the row of x that holds NaN/Inf or whose Q8 scale overflows
 * fp16 (activation-quantized kinds only; I4G lets NaN propagate like the f32 Linear). */
pare_status pare_linear_qb(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M,
                           void *workspace);
/* Plain C, single thread, the same math as pare_linear_qb (activation quantization included). A row of x
 * holding NaN/Inf gives NaN outputs; if it cannot allocate its buffers it fills y with NaN. */
void pare_linear_qb_ref(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M);

/* Which kernel pare_linear_qb runs for w on this CPU (under the current pare_qb_set_isa): "i4g-avx512",
 * "i4g-avx2", "i8g-vnni512", "i8g-avx2", "q-vnni512", "q-avx2", "k-vnni512", "k-avx2" (the ggml-block kinds),
 * "scalar"; "none" for an unquantized w. */
const char *pare_qb_impl(const pare_qb_weight *w);

/* Cap the instruction set the qblock kernels may use, for testing the fallbacks and for comparisons:
 * "auto" (the best the CPU has), "avx512", "avx2", "scalar". Process-wide; set it while no pare_linear_qb
 * call is running. PARE_EINVAL for an unknown name, PARE_ENOTSUP if the CPU lacks it ("avx512" needs
 * AVX512F/BW/VL — the int8 kinds use it only with AVX512-VNNI too, else AVX2; "avx2" needs AVX2/FMA/F16C).
 * The kernels never read the environment; test and bench programs map PARE_QB_FORCE=avx512|avx2|scalar
 * onto this call. */
pare_status pare_qb_set_isa(const char *isa);

#endif
