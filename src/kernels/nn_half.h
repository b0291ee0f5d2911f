/* nn_half.h — the elementwise layer kernels on bf16 values: what automatic mixed precision runs for the ops
 * that "follow" their input's dtype (docs/amp.md): GELU (tanh and erf forms), ReLU, tanh, the residual add.
 * Dropout at inference is the identity (a copy, or nothing: executors alias it away) and needs no kernel.
 * Plus the conversions around the f32 ops that may read or write a 16-bit value (LayerNorm, the Linear's
 * output): pare_half_widen / pare_half_round, parallel over fixed ranges.
 *
 * Numerics: each element is widened to f32 (exact), computed in f32 by the same expression as the f32
 * kernel of nn.h, and rounded back to bf16, round to nearest even, NaN kept quiet — the bits of
 * core/tensor.h's pare_f32_to_bf16 and kernels/cast.c. So out = round_bf16(f32_kernel(widen(x))) bit for bit:
 * ReLU and dropout are exact (a bf16 value stays one), the add is one rounding of the f32 sum of two bf16
 * values, GELU and tanh one rounding of the f32 kernel's result (tests/test_amp.c checks every one against
 * its reference below, and the references against the f32 kernels).
 *
 *     uint16_t *h = ...;               // (n) bf16 bits
 *     pare_gelu_bf16(h, h, n);         // in place is allowed: elementwise
 *
 * Fast and reference are separate entries: pare_X_bf16 (PARE_HOT clones: AVX-512, AVX2, baseline; the
 * widening and rounding are integer lane arithmetic; each is one loop over nn.c's expression — GELU erf on
 * nn_normcdf, tanh on libm's tanhf — so a change to nn.c's kernel must be made here too: the references below
 * call nn.c and the tests compare every bf16 pattern), pare_X_bf16_ref (scalar casts
 * of core/tensor.h around the f32 kernel of nn.h on the whole array).
 *
 * Embeddings and softmax (docs/mixed-precision.md "Embeddings and softmax in bf16"): the lookup of a table stored
 * in f32, bf16 or f16 (the 16-bit tables of the bf16 pass's `embeddings` option) writing f32 or 16-bit rows; the
 * positions' add on an f32 or bf16 input with an f32 or 16-bit table; the softmax and the masked softmax of the
 * unfused attention reading f32 or bf16 scores and writing f32 or bf16 probabilities, max and sum in f32. Same
 * rule as above: widen (exact), the f32 computation of the f32 kernel, one rounding:
 *   embedding   out = round(widen(table[id]) · scale)                 (scale 1: exact when out and table share a dtype)
 *   posadd      out = round(widen(x) + widen(pos[t]))                 (one rounding of the f32 sum)
 *   softmax     out = round(pare_softmax_forward(widen(x)))           (the f32 kernel itself, on widened rows)
 *   masked      out = round(pare_softmax_forward(widen(x) / s)) over a row's visible keys, 0 beyond them
 * The softmax kernels widen rows into `work`, one row of f32 per slot (nslot slots, a thread each): the bits never
 * depend on the thread count.
 *
 * Deliberately not here: f16 follow kernels (no follow op runs in f16: AMP keeps them f32 when the lower dtype is
 * f16; the embedding lookup is the exception, since it only moves an f16 table's values), backward (bf16 values are
 * for inference: training refuses them, naming the node; a 16-bit *table* trains through its f32 master, the
 * format's refresh), LayerNorm's statistics in 16 bits (they stay f32: AMP's "fp32" category).
 */
#ifndef PARE_NN_HALF_H
#define PARE_NN_HALF_H

#include <stdint.h>

#include "core/tensor.h"

/* out (n) = GELU(inp (n)), tanh form (nn.h pare_gelu_forward), bf16 in and out; out may be inp. */
void pare_gelu_bf16(uint16_t *out, const uint16_t *inp, int64_t n);
/* out (n) = GELU(inp (n)), exact erf form (nn.h pare_gelu_erf_forward). */
void pare_gelu_erf_bf16(uint16_t *out, const uint16_t *inp, int64_t n);
/* out (n) = max(inp, 0) (exact: -0 and NaN as nn.h pare_relu_forward gives them). */
void pare_relu_bf16(uint16_t *out, const uint16_t *inp, int64_t n);
/* out (n) = tanh(inp (n)) (nn.h pare_tanh_forward). */
void pare_tanh_bf16(uint16_t *out, const uint16_t *inp, int64_t n);
/* out (n) = round(a + b), the sum in f32 of two bf16 values; out may be a or b. */
void pare_add_bf16(uint16_t *out, const uint16_t *a, const uint16_t *b, int64_t n);

/* The references: scalar widening (pare_bf16_to_f32), the f32 kernel of nn.h on the whole array, scalar
 * rounding (pare_f32_to_bf16). They allocate an f32 copy (n); return -1 when out of memory, else 0. */
int pare_gelu_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n);
int pare_gelu_erf_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n);
int pare_relu_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n);
int pare_tanh_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n);
int pare_add_bf16_ref(uint16_t *out, const uint16_t *a, const uint16_t *b, int64_t n);

/* out (n) f32 = inp (n) of dtype t (f32: copied, bf16 / f16: widened, exact); parallel over fixed ranges. */
void pare_half_widen(float *out, const void *inp, pare_dtype t, int64_t n);
/* out (n) of dtype t (f32: copied, bf16 / f16: rounded as kernels/cast.h) = inp (n) f32; parallel. */
void pare_half_round(void *out, pare_dtype t, const float *inp, int64_t n);

/* ---- embeddings and softmax ---- */

/* out (M, C) of dtype ot (f32, bf16, f16) = table[ids] (V, C) of dtype tt (f32, bf16, f16) · scale (scale 0: 1).
 * ids are trusted (the executor checked them against V). Parallel over rows. */
void pare_embedding_half(void *out, pare_dtype ot, const int32_t *ids, const void *table, pare_dtype tt, float scale,
                         int64_t M, int64_t C);
/* out (B·T, C) of dtype it = inp (B·T, C) of dtype it (f32 or bf16) + pos (T, C) of dtype pt (f32, bf16, f16), row t of
 * pos added to row (b, t); out may be inp. */
void pare_posadd_half(void *out, const void *inp, pare_dtype it, const void *pos, pare_dtype pt, int64_t B, int64_t T,
                      int64_t C);
/* The same on M rows with explicit positions: row r gets pos row at[r] (incremental decoding). */
void pare_posadd_half_at(void *out, const void *inp, pare_dtype it, const void *pos, pare_dtype pt, const int64_t *at,
                         int64_t M, int64_t C);
/* Scratch the softmax kernels want: nslot rows of N floats, nslot = the threads that may run (omp_get_max_threads). */
int pare_softmax_half_slots(void);
size_t pare_softmax_half_work_bytes(int64_t N);
/* out (M, N) of dtype ot (f32 or bf16) = softmax of inp (M, N) of dtype it (f32 or bf16) along N, computed by the f32
 * kernel pare_softmax_forward on widened rows and rounded once. work: nslot · N floats; out may not alias inp unless
 * both have one dtype. */
void pare_softmax_half(void *out, pare_dtype ot, const void *inp, pare_dtype it, int64_t M, int64_t N, float *work,
                       int nslot);
/* P (B,H,T,T) of dtype ot = softmax(S / s + mask) of S (B,H,T,T) of dtype it, the mask of fuse_ops.h's
 * pare_masked_softmax_forward (keys j < L_b, and j <= i when causal; lengths NULL: all T), masked entries 0. Each
 * row: its visible keys widened and divided by s (f32), pare_softmax_forward over them, rounded. work: nslot · T floats. */
void pare_masked_softmax_half(void *P, pare_dtype ot, const void *S, pare_dtype it, float s, const int32_t *lengths,
                              int causal, int64_t B, int64_t H, int64_t T, float *work, int nslot);

/* References: scalar casts (core/tensor.h) around the f32 kernels (nn.h, fuse_ops.h) on whole arrays; they allocate
 * f32 copies; -1 when out of memory, else 0. The masked one runs fuse_ops.h's f32 masked kernel. */
int pare_embedding_half_ref(void *out, pare_dtype ot, const int32_t *ids, const void *table, pare_dtype tt, float scale,
                            int64_t M, int64_t C);
int pare_posadd_half_ref(void *out, const void *inp, pare_dtype it, const void *pos, pare_dtype pt, int64_t B, int64_t T,
                         int64_t C);
int pare_softmax_half_ref(void *out, pare_dtype ot, const void *inp, pare_dtype it, int64_t M, int64_t N);
int pare_masked_softmax_half_ref(void *P, pare_dtype ot, const void *S, pare_dtype it, float s, const int32_t *lengths,
                                 int causal, int64_t B, int64_t H, int64_t T);

#endif
