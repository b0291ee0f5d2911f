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
 * Deliberately not here: integer casts (int8 needs a scale: that is quantization, numfmt.h / the
 * formats), stochastic rounding, SIMD conversion (F16C / AVX512-BF16) — the scalar loops are the
 * reference; a fast path would be a separate entry tested against them.
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

#endif
