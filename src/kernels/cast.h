/* cast.h — conversions of activations between the float dtypes (f32, bf16, f16): the numerics of the
 * graph's CAST op (graph.h, docs/dtypes.md), a forward / backward pair in the style of nn.h.
 *
 * Rounding is core/tensor.h's: round to nearest, ties to even; a finite f32 beyond a format's range
 * becomes ±Inf (f16 above 65504: the graph's check_finite mode names the node); NaN stays NaN. bf16 ↔ f16
 * goes through f32 (exact: both widen to f32 without rounding).
 *
 * Gradients are f32 whatever the value's dtype (the executor accumulates them there, exec.c). The
 * backward passes the gradient straight through the rounding — the derivative of the identity the cast
 * approximates, as every mixed-precision framework does — rounded to the input's dtype, as PyTorch's
 * `x.to(dtype)` backward returns a gradient of x's dtype: dinp += f32(round_it(dout)).
 *
 * Fast conversions (pare_cast_*_fast): the same bits as the scalar loops, for the 16-bit Linears
 * (kernels/gemm_half.h), which convert activations at every call. bf16 is integer arithmetic that the
 * compiler vectorises (PARE_HOT: AVX-512 / AVX2 / baseline clones); f16 uses F16C's vcvtps2ph (round to
 * nearest even, IEEE subnormals) where the CPU has it, with NaNs rewritten to the scalar loop's quiet NaN
 * (sign | 0x7e00), and the scalar loop elsewhere. tests/test_half.c checks them against the scalar loops:
 * every 16-bit pattern widened, and f32 inputs at every rounding boundary, subnormals, overflow and NaN.
 *
 * Deliberately not here: integer casts (int8 needs a scale: that is quantization, numfmt.h / the
 * formats), stochastic rounding, AVX512-BF16's vcvtneps2bf16 (it flushes subnormals to zero, so its bits
 * differ from the reference's below 2^-126).
 */
#ifndef PARE_CAST_H
#define PARE_CAST_H

#include <stdint.h>

#include "core/tensor.h"

/* out (n) of dtype ot = inp (n) of dtype it, converted; ot and it among f32, bf16, f16 (the graph checks;
 * other dtypes leave out untouched). out must not alias inp unless ot == it. */
void pare_cast_forward(void *out, pare_dtype ot, const void *inp, pare_dtype it, int64_t n);
/* dinp (n) += dout (n) rounded to dtype it (f32: added as is). */
void pare_cast_backward(float *dinp, const float *dout, pare_dtype it, int64_t n);

/* out (n) of ot (bf16 or f16) = inp (n) f32 rounded: the bits of pare_cast_forward, faster. Runs on the
 * calling thread (callers parallelise over rows; safe inside an OpenMP region). */
void pare_cast_to_half_fast(uint16_t *out, pare_dtype ot, const float *inp, int64_t n);
/* out (n) f32 = inp (n) of it (bf16 or f16) widened (exact); the calling thread. */
void pare_cast_from_half_fast(float *out, const uint16_t *inp, pare_dtype it, int64_t n);
/* out (n) = f32(round_dt(inp)): inp rounded onto dt's grid (bf16 or f16), kept in f32, as a cast to dt and
 * back; out may alias inp; the calling thread. */
void pare_cast_round_fast(float *out, const float *inp, pare_dtype dt, int64_t n);

#endif
