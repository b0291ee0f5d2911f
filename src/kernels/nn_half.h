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
 * widening and rounding are integer lane arithmetic; GELU erf and tanh call the f32 kernels of nn.h on
 * tiles of 1024 widened values, so they get whatever those kernels become), pare_X_bf16_ref (scalar casts
 * of core/tensor.h around the f32 kernel of nn.h on the whole array).
 *
 * Deliberately not here: f16 (no follow op runs in f16: AMP keeps them f32 when the lower dtype is f16),
 * backward (bf16 values are for inference: training refuses them, naming the node), LayerNorm's statistics
 * in 16 bits (they stay f32: AMP's "fp32" category), softmax (likewise).
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

#endif
