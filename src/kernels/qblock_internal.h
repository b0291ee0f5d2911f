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

/* Work (M·N·K) below which a kernel runs on one thread. */
#define QB_PAR_MIN_WORK ((int64_t)1 << 18)

#endif
