/* qblock_internal.h — private to src/kernels/qblock*.c: the instruction-set choice, the quantized
 * activations handed from the quantizers to the kernels, the workspace layout, and the entry points of
 * the per-ISA kernel files (qblock_avx512.c, qblock_avx2.c). Nothing here is public API.
 */
#ifndef PARE_QBLOCK_INTERNAL_H
#define PARE_QBLOCK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qblock.h"

typedef enum qb_isa { QB_ISA_SCALAR = 0, QB_ISA_AVX2, QB_ISA_AVX512 } qb_isa;

/* The instruction set for w's kernel: the best the CPU has (under pare_qb_set_isa's cap); the int8 kinds
 * need VNNI for QB_ISA_AVX512. */
qb_isa pare_qb_isa_for_(const pare_qb_weight *w);

static inline size_t qb_align64(size_t n) { return (n + 63) & ~(size_t)63; }
static inline int64_t qb_ngroups(const pare_qb_weight *w) { return w->K / w->group; }
static inline int64_t qb_row_bytes(const pare_qb_weight *w)
{
    if (w->kind >= PARE_QB_Q5_0) return (int64_t)pare_qb_ggml_row_bytes(w->kind, w->K); /* ggml blocks */
    return w->kind == PARE_QB_I8G || w->kind == PARE_QB_Q8_0 ? w->K : w->K / 2;
}

/* Quantized activations (M tokens). Two layouts:
 *
 * canonical (the references, the scalar and AVX2 kernels):
 *   q    (M, K) int8, qx in natural order
 *   d    Q kinds: (M, K/32) d_x (the fp16 value, as f32); I8G: (M) sx
 *   s    Q4_1: (M, K/32) s_x = fp16(d·Σqx) as f32
 *
 * VNNI (qblock_avx512.c), Q kinds: per token, one 192-byte record per pair of blocks (2p, 2p+1); an odd
 * last block gets a record of its own with its partner zero:
 *   [0,64)    the 64 qx bytes: Q8_0 natural (block 2p, then 2p+1); Q4_0/Q4_1 in 16-byte chunks ordered
 *             (2p: 0-15, 2p+1: 0-15, 2p: 16-31, 2p+1: 16-31), the order in which the kernel unpacks the
 *             nibbles of two blocks with one shift
 *   [64,128)  16 f32: d_x of the block that each int32 lane of the dot product belongs to
 *   [128,192) 16 int32: −c·(sum of the lane's 4 qx), c = 128 (Q8_0: weights enter vpdpbusd as u = q+128)
 *             or 8 (Q4_0: u = q+8); 0 for Q4_1 — the lane-wise offset correction, so that every int32
 *             lane holds its exact partial dot product
 *   s16  Q4_1: (M, nb16) s_x, zero-padded to a multiple of 16 blocks
 * VNNI, I8G: q (M, K) natural, d (M) sx, corr (M, K/group) 64-byte vectors of 16 int32: −128·(sum of each
 *   lane's qx over the group) for the lanes of the group's 64-byte steps. */
typedef struct qb_act {
    int8_t *q;
    float *d;
    float *s;
    uint8_t *rec;
    float *s16;
    int32_t *corr;
    int64_t rec_stride; /* bytes per token of rec */
    int64_t s16_stride; /* floats per token of s16 */
} qb_act;

#define QB_REC_BYTES 192

/* Workspace layout for w, M tokens on the given ISA: fills a (pointers into ws, or offsets when ws is NULL)
 * and returns the bytes needed. */
size_t pare_qb_act_layout_(qb_act *a, const pare_qb_weight *w, int64_t M, qb_isa isa, void *ws);

/* Rows of W per dequantized panel (I4G, M > PARE_QB_I4G_GEMV_MAX_M). */
int64_t pare_qb_i4g_panel_rows_(int64_t K);

/* ---- scalar (qblock.c): canonical activations; also what the references use ---- */
/* Returns the first row that holds NaN/Inf or whose fp16 scale overflows, or M. */
int64_t pare_qb_act_canon_(qb_act *a, const float *x, const pare_qb_weight *w, int64_t M);

/* ---- AVX-512 (qblock_avx512.c) ---- */
void pare_qb_i4g_gemv_avx512_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M);
void pare_qb_i4g_panel_avx512_(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows);
int64_t pare_qb_act_vnni_(qb_act *a, const float *x, const pare_qb_weight *w, int64_t M);
void pare_qb_gemm_vnni_(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M);

/* ---- AVX2 (qblock_avx2.c) ---- */
void pare_qb_i4g_gemv_avx2_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M);
void pare_qb_i4g_panel_avx2_(float *dst, const pare_qb_weight *w, int64_t n0, int64_t rows);
void pare_qb_gemm_avx2_(float *y, const qb_act *a, const pare_qb_weight *w, const float *bias, int64_t M);

/* ---- the ggml-block kinds: Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (qblock_k.c; SIMD parts in qblock_k_x86.c) ---- */

/* One row of W unpacked (qblock_k.c's header comment): u (K) unsigned levels in natural order, c (K/16)
 * integer multiplier per 16 elements, mn (K/32) Q4_K/Q5_K mins, fa / fb (one per block) d and dmin / m. */
typedef struct qbk_row {
    uint8_t *u;
    int16_t *c;
    int16_t *c2;   /* (K/2) c of each pair of elements (the SIMD unpack fills it for the k-quants) */
    int16_t *mn2;  /* (K/16) Q4_K/Q5_K: the min m_j of each 16-group (SIMD unpack) */
    int16_t *mn;
    float *fa;
    float *fb;
} qbk_row;

int pare_qbk_is_(pare_qb_kind k);
/* Quantizes one row into its ggml blocks; -1 on success, else the block whose d / dmin / m overflows fp16. */
int64_t pare_qbk_quant_row_(pare_qb_kind kind, uint8_t *dst, const float *x, int64_t K);
void pare_qbk_dequant_row_(float *dst, pare_qb_kind kind, const uint8_t *row, int64_t K);
/* One Q8_K block: q (256), bs (16), d. */
void pare_qbk_q8k_block_(int8_t *q, int16_t *bs, float *d, const float *x);
/* A token's activations: q (K), bs (K/16), d and s (per block: K/32 for Q5_*, K/256 for the k-quants);
 * 1 if the row holds NaN/Inf or a fp16 scale / sum overflows. */
int pare_qbk_act_row_(pare_qb_kind kind, int8_t *q, int16_t *bs, float *d, float *s, const float *x, int64_t K);
void pare_qbk_unpack_scales_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K);
void pare_qbk_unpack_scalar_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K);
/* P[b] = Σ_{16-groups g of block b} c_g·Σ_{k in g} u_k·q_k, blocks of qb (32 or 256) elements. */
void pare_qbk_idot_scalar_(int32_t *P, const uint8_t *u, const int16_t *c, const int8_t *q, int64_t K, int qb);
float pare_qbk_combine_(pare_qb_kind kind, const int32_t *P, const qbk_row *r, const int16_t *bs, const float *d,
                        const float *s, int64_t K);
size_t pare_qbk_workspace_(const pare_qb_weight *w, int64_t M);
/* The Linear on isa; returns M, or the first row of x that is NaN/Inf or overflows a fp16 activation scale. */
int64_t pare_qbk_linear_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M, void *ws,
                         qb_isa isa);
void pare_qbk_linear_ref_(float *y, const float *x, const pare_qb_weight *w, const float *bias, int64_t M);
/* qblock_k_x86.c */
void pare_qbk_unpack_avx2_(qbk_row *r, pare_qb_kind kind, const uint8_t *row, int64_t K);
void pare_qbk_idot_avx2_(int32_t *P, const uint8_t *u, const int16_t *c, const int8_t *q, int64_t K, int qb);
void pare_qbk_idot_vnni_(int32_t *P, const uint8_t *u, const int16_t *c, const int8_t *q, int64_t K, int qb);
/* k-quants: idot and combine fused (u, c2, mn2 / c, fa, fb of r), bit-identical to them. */
float pare_qbk_dotk_avx2_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                          int64_t K);
float pare_qbk_dotk_vnni_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                          int64_t K);
/* Q5_0 / Q5_1: idot and combine fused (fa, fb and u of r only; c unused), bit-identical to them. */
float pare_qbk_dot32_avx2_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                           const float *s, int64_t K);
float pare_qbk_dot32_vnni_(pare_qb_kind kind, const qbk_row *r, const int8_t *q, const int16_t *bs, const float *d,
                           const float *s, int64_t K);

/* Work (M·N·K) below which a kernel runs on one thread. */
#define QB_PAR_MIN_WORK ((int64_t)1 << 18)

#endif
