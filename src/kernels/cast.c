/* cast.c — the f32 / bf16 / f16 conversions of cast.h: one loop per pair, parallel over fixed element
 * ranges (each element is independent, so results never depend on the thread count). */
#include "kernels/cast.h"

#include <string.h>

/* Elements below which a loop stays on one thread (memory-bound: a few µs of work). */
#define CAST_PAR 65536

static float half_to_f32(uint16_t h, pare_dtype t) { return t == PARE_BF16 ? pare_bf16_to_f32(h) : pare_f16_to_f32(h); }
static uint16_t f32_to_half(float x, pare_dtype t) { return t == PARE_BF16 ? pare_f32_to_bf16(x) : pare_f32_to_f16(x); }
static int is_half(pare_dtype t) { return t == PARE_BF16 || t == PARE_F16; }

void pare_cast_forward(void *out, pare_dtype ot, const void *inp, pare_dtype it, int64_t n)
{
    if (ot == it && pare_dtype_is_float(ot)) {
        if (out != inp) memcpy(out, inp, (size_t)n * pare_dtype_size(ot));
    } else if (it == PARE_F32 && is_half(ot)) {
        const float *x = inp;
        uint16_t *y = out;
#pragma omp parallel for schedule(static) if (n > CAST_PAR)
        for (int64_t i = 0; i < n; i++) y[i] = f32_to_half(x[i], ot);
    } else if (is_half(it) && ot == PARE_F32) {
        const uint16_t *x = inp;
        float *y = out;
#pragma omp parallel for schedule(static) if (n > CAST_PAR)
        for (int64_t i = 0; i < n; i++) y[i] = half_to_f32(x[i], it);
    } else if (is_half(it) && is_half(ot)) { /* bf16 <-> f16 through f32 (widening is exact) */
        const uint16_t *x = inp;
        uint16_t *y = out;
#pragma omp parallel for schedule(static) if (n > CAST_PAR)
        for (int64_t i = 0; i < n; i++) y[i] = f32_to_half(half_to_f32(x[i], it), ot);
    }
}

void pare_cast_backward(float *dinp, const float *dout, pare_dtype it, int64_t n)
{
    if (it == PARE_F32) {
#pragma omp parallel for schedule(static) if (n > CAST_PAR)
        for (int64_t i = 0; i < n; i++) dinp[i] += dout[i];
    } else if (is_half(it)) {
#pragma omp parallel for schedule(static) if (n > CAST_PAR)
        for (int64_t i = 0; i < n; i++) dinp[i] += half_to_f32(f32_to_half(dout[i], it), it);
    }
}
