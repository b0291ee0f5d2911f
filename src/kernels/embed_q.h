/* embed_q.h — token-embedding lookups on quantized tables: the rows a batch selects are dequantized as they are
 * read, the rest of the table stays in its stored form (int8 with a scale per row, or qblock's groups and blocks).
 *
 *   out(M, C) = Ê[ids]            Ê = the table dequantized exactly as the dequantize pass does it:
 *   int8     Ê[v, c] = (float)q[v, c] · scale[v]          (one scale per row: a row of the table is an output
 *                                                          channel of a tied LM head, gemm.h pare_i8_weight)
 *   qblock   Ê[v, :] = pare_qb_dequantize of row v alone  (qblock.h: every row of every array is contiguous, so a
 *                                                          one-row view of the weight dequantizes one row)
 * So a quantized lookup equals dequantize-then-lookup bit for bit (tests/test_embed_q.c).
 *
 *     PARE_TRY(pare_embedding_qb(out, ids, &w, M));           // w (V, C): a pare_qb_weight of N = V rows
 *
 * Deliberately not here: the backward (a quantized table is not trained: train the f32 model, quantize after),
 * position tables (small, summed rather than looked up: they stay f32 or 16-bit), kinds without a row view
 * (pare_embedding_qb_supports).
 */
#ifndef PARE_EMBED_Q_H
#define PARE_EMBED_Q_H

#include <stdint.h>

#include "core/status.h"
#include "kernels/gemm.h"
#include "kernels/qblock.h"

/* out (M, C) = q[ids[m], :] · scale[ids[m]]; q (V, C) int8, scale (V). ids in [0, V) (the executor checks tokens). */
void pare_embedding_i8(float *out, const int32_t *ids, const int8_t *q, const float *scale, int64_t M, int64_t C);
/* 1 if pare_embedding_qb reads w's kind (a row view exists: int4_group, int8_group, q8_0, q4_0, q4_1). */
int pare_embedding_qb_supports(const pare_qb_weight *w);
/* out (M, w->K) = rows ids of w dequantized. PARE_EINVAL for a kind without a row view. */
pare_status pare_embedding_qb(float *out, const int32_t *ids, const pare_qb_weight *w, int64_t M);
/* Reference: the whole table dequantized (pare_qb_dequantize), then the rows copied. Returns -1 if out of memory. */
int pare_embedding_qb_ref(float *out, const int32_t *ids, const pare_qb_weight *w, int64_t M);

#endif
