/* gemm_internal.h — helpers shared by the int8 kernels and their references (gemm_i8.c, gemm_ref.c).
 * Private to src/kernels/gemm*.c: the fast and the reference paths must compute the scales with the
 * very same float operations, so that their quantized activations agree bit for bit.
 */
#ifndef PARE_GEMM_INTERNAL_H
#define PARE_GEMM_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bits of |x| for a float: compare as unsigned integers to get max-abs; any value >= 0x7f800000 is
 * Inf or NaN, so one integer max both finds the largest magnitude and detects non-finite input. */
#define PARE_I8_ABS_MASK 0x7fffffffu
#define PARE_I8_NONFINITE 0x7f800000u

static inline uint32_t pare_i8_absbits_(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & PARE_I8_ABS_MASK;
}

static inline float pare_i8_bits_float_(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* From a finite max-abs, the scale (x ≈ q·scale) and its multiplier (q = round(x·inv)).
 * An all-zero row — or one so tiny that 127/maxabs overflows (< ~1e-36) — gets scale 1 and inv 0:
 * q = 0 everywhere, which is exact for zeros and off by less than 1e-36 otherwise. */
static inline void pare_i8_scale_from_maxabs_(float maxabs, float *scale, float *inv)
{
    float v = 127.0f / maxabs;
    if (maxabs > 0.0f && isfinite(v)) {
        *scale = maxabs / 127.0f;
        *inv = v;
    } else {
        *scale = 1.0f;
        *inv = 0.0f;
    }
}

/* q = clamp(round-half-even(x·inv), -127, 127): the scalar form every vector path must match. */
static inline int8_t pare_i8_quant_(float x, float inv)
{
    float r = nearbyintf(x * inv);
    r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
    return (int8_t)r;
}

/* Workspace of pare_linear_i8_dynamic, each part at a 64-byte offset:
 *   xq   (M,K) int8 or uint8     sx (M) f32     acc (M,N) int32 */
static inline size_t pare_i8_align64_(size_t n) { return (n + 63) & ~(size_t)63; }

#endif
