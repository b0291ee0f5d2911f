/* nn_half.c — the bf16 elementwise kernels of nn_half.h (AMP's "follow" ops) and the widen / round loops
 * around the f32 ops that read or write 16-bit values.
 *
 * Each fast kernel is one loop that the compiler vectorises in each PARE_HOT clone: widening a bf16 is a
 * shift into the high half of an f32 lane; rounding is cast.c's integer formula
 *     r = (u + 0x7fff + ((u >> 16) & 1)) >> 16,   NaN → (u >> 16) | 0x40
 * written without branches, so the bits are pare_f32_to_bf16's. The f32 arithmetic between is the
 * expression of nn.c's kernel, term for term (-std=c11 contracts no a·b + c into an FMA, in any clone), so
 * the result is round(f32 kernel(widen(x))) exactly. Parallel over fixed element ranges: the bits never
 * depend on the thread count.
 *
 * Deliberately not here: f16 kernels, backward (nn_half.h says why); AVX512-BF16's vcvtneps2bf16 (it flushes
 * subnormals, so its bits differ from the reference below 2^-126).
 */
#include "kernels/nn_half.h"

#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/cast.h"
#include "kernels/nn.h"
#include "kernels/nn_internal.h"

/* Elements below which a loop stays on one thread (memory-bound: a few µs). GELU and tanh compute more. */
#define HALF_PAR 65536
#define HALF_PAR_ACT 16384
/* Widened values per tile of the kernels that call an f32 kernel of nn.h (4 KB of f32 on the stack). */
#define TILE 1024

#define GELU_K 0.7978845608028654f /* sqrt(2/pi): nn.c's constants */
#define GELU_A 0.044715f

NN_INLINE float widen(uint16_t h)
{
    union { uint32_t u; float f; } c = {(uint32_t)h << 16};
    return c.f;
}

NN_INLINE uint16_t round_bf16(float x)
{
    union { float f; uint32_t u; } c = {x};
    const uint32_t u = c.u;
    const uint32_t nan = 0u - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, q = (u >> 16) | 0x40u;
    return (uint16_t)((nan & q) | (~nan & r));
}

PARE_HOT void pare_gelu_bf16(uint16_t *out, const uint16_t *inp, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > HALF_PAR_ACT)
    for (int64_t i = 0; i < n; i++) {
        float x = widen(inp[i]);
        out[i] = round_bf16(0.5f * x * (1.0f + nn_tanhf(GELU_K * (x + GELU_A * x * x * x))));
    }
}

/* out = max(x, 0) on the bits: x > 0 <=> 0 < h <= 0x7f80 (positive, +Inf included, NaN and ±0 excluded), as
 * nn.c's `x > 0 ? x : 0` */
PARE_HOT void pare_relu_bf16(uint16_t *out, const uint16_t *inp, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > HALF_PAR)
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = inp[i];
        out[i] = (uint16_t)(h & (0u - (uint32_t)((h >= 1u) & (h <= 0x7f80u))));
    }
}

PARE_HOT void pare_add_bf16(uint16_t *out, const uint16_t *a, const uint16_t *b, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > HALF_PAR)
    for (int64_t i = 0; i < n; i++) out[i] = round_bf16(widen(a[i]) + widen(b[i]));
}

/* Tiles of TILE values: widened into f32 on the stack, the f32 kernel f over them (one thread: a tile is below
 * its parallel threshold), rounded back. */
PARE_HOT static void widen_tile(float *t, const uint16_t *h, int64_t len)
{
#pragma omp simd
    for (int64_t j = 0; j < len; j++) t[j] = widen(h[j]);
}

PARE_HOT static void round_tile(uint16_t *h, const float *t, int64_t len)
{
#pragma omp simd
    for (int64_t j = 0; j < len; j++) h[j] = round_bf16(t[j]);
}

static void by_tiles(uint16_t *out, const uint16_t *inp, int64_t n, void (*f)(float *, const float *, int64_t))
{
    const int64_t ntile = (n + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (n > HALF_PAR_ACT)
    for (int64_t k = 0; k < ntile; k++) {
        float t[TILE];
        const int64_t i0 = k * TILE, len = i0 + TILE < n ? TILE : n - i0;
        widen_tile(t, inp + i0, len);
        f(t, t, len);
        round_tile(out + i0, t, len);
    }
}

/* The exact GELU as one loop, like the tanh form: nn.c's pare_gelu_erf_forward is x · nn_normcdf(x) term for term.
 * (Calling it on tiles, as tanh below does, cost ~18 µs per 1024-value tile in its nested parallel region:
 * 94 ms for BERT-base's twelve 128 × 3072 GELUs against 7 ms in f32.) */
PARE_HOT void pare_gelu_erf_bf16(uint16_t *out, const uint16_t *inp, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > HALF_PAR_ACT)
    for (int64_t i = 0; i < n; i++) {
        float x = widen(inp[i]);
        out[i] = round_bf16(x * nn_normcdf(x));
    }
}
void pare_tanh_bf16(uint16_t *out, const uint16_t *inp, int64_t n) { by_tiles(out, inp, n, pare_tanh_forward); }

/* ---- references: scalar casts around the f32 kernels of nn.h ---- */

static float *widen_ref(const uint16_t *h, int64_t n)
{
    float *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (t)
        for (int64_t i = 0; i < n; i++) t[i] = pare_bf16_to_f32(h[i]);
    return t;
}

static int unary_ref(uint16_t *out, const uint16_t *inp, int64_t n, void (*f)(float *, const float *, int64_t))
{
    float *t = widen_ref(inp, n);
    if (!t) return -1;
    f(t, t, n);
    for (int64_t i = 0; i < n; i++) out[i] = pare_f32_to_bf16(t[i]);
    free(t);
    return 0;
}

int pare_gelu_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n) { return unary_ref(out, inp, n, pare_gelu_forward); }
int pare_gelu_erf_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n)
{
    return unary_ref(out, inp, n, pare_gelu_erf_forward);
}
int pare_relu_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n) { return unary_ref(out, inp, n, pare_relu_forward); }
int pare_tanh_bf16_ref(uint16_t *out, const uint16_t *inp, int64_t n) { return unary_ref(out, inp, n, pare_tanh_forward); }

int pare_add_bf16_ref(uint16_t *out, const uint16_t *a, const uint16_t *b, int64_t n)
{
    float *ta = widen_ref(a, n), *tb = widen_ref(b, n);
    if (!ta || !tb) {
        free(ta), free(tb);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) out[i] = pare_f32_to_bf16(ta[i] + tb[i]);
    free(ta), free(tb);
    return 0;
}

/* ---- widening and rounding of whole values (LayerNorm's input and output, the Linear's output) ---- */

#define CHUNK 16384

void pare_half_widen(float *out, const void *inp, pare_dtype t, int64_t n)
{
    if (t == PARE_F32) {
        if ((const void *)out != inp) memcpy(out, inp, (size_t)n * sizeof *out);
        return;
    }
    const uint16_t *h = inp;
    const int64_t nchunk = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > HALF_PAR)
    for (int64_t k = 0; k < nchunk; k++) {
        const int64_t i0 = k * CHUNK, len = i0 + CHUNK < n ? CHUNK : n - i0;
        pare_cast_from_half_fast(out + i0, h + i0, t, len);
    }
}

void pare_half_round(void *out, pare_dtype t, const float *inp, int64_t n)
{
    if (t == PARE_F32) {
        if (out != (const void *)inp) memcpy(out, inp, (size_t)n * sizeof *inp);
        return;
    }
    uint16_t *h = out;
    const int64_t nchunk = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > HALF_PAR)
    for (int64_t k = 0; k < nchunk; k++) {
        const int64_t i0 = k * CHUNK, len = i0 + CHUNK < n ? CHUNK : n - i0;
        pare_cast_to_half_fast(h + i0, t, inp + i0, len);
    }
}
