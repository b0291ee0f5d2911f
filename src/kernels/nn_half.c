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
 * The embedding lookup, the positions' add and the softmax kernels (bottom of the file) move rows through f32 chunks
 * on the stack (ROWCHUNK values) or, for the softmax, one f32 row per thread slot of the caller's work; the softmax
 * of a row is pare_softmax_rows of nn.c, the very function the f32 op runs.
 *
 * Deliberately not here: f16 kernels, backward (nn_half.h says why); AVX512-BF16's vcvtneps2bf16 (it flushes
 * subnormals, so its bits differ from the reference below 2^-126).
 */
#include "kernels/nn_half.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/cast.h"
#include "kernels/fuse_ops.h"
#include "kernels/nn.h"
#include "kernels/nn_internal.h"

/* Elements below which a loop stays on one thread (memory-bound: a few µs). GELU and tanh compute more. */
#define HALF_PAR 65536
#define HALF_PAR_ACT 16384

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

/* The exact GELU as one loop, like the tanh form: nn.c's pare_gelu_erf_forward is x · nn_normcdf(x) term for term.
 * (Calling the f32 kernel on 1024-value tiles cost ~18 µs per tile in its nested parallel region: 94 ms for
 * BERT-base's twelve 128 × 3072 GELUs against 7 ms in f32.) */
PARE_HOT void pare_gelu_erf_bf16(uint16_t *out, const uint16_t *inp, int64_t n)
{
    if (pare_gelu_erf_avx512_active_()) { /* where the f32 kernel runs act_avx512.c, the same span on widened tiles
                                            (serial: no nested region), so the bits stay the reference's */
        enum { TILE = 1024 };
        const int64_t nt = (n + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (n > HALF_PAR_ACT)
        for (int64_t t = 0; t < nt; t++) {
            float buf[TILE];
            const int64_t i0 = t * TILE, len = i0 + TILE <= n ? TILE : n - i0;
            for (int64_t i = 0; i < len; i++) buf[i] = widen(inp[i0 + i]);
            pare_gelu_erf_span_avx512_(buf, buf, len);
            for (int64_t i = 0; i < len; i++) out[i0 + i] = round_bf16(buf[i]);
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n > HALF_PAR_ACT)
    for (int64_t i = 0; i < n; i++) {
        float x = widen(inp[i]);
        out[i] = round_bf16(x * nn_normcdf(x));
    }
}
/* tanh as one loop over libm's tanhf, as nn.c's pare_tanh_forward (a call per element: no simd) */
PARE_HOT void pare_tanh_bf16(uint16_t *out, const uint16_t *inp, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > HALF_PAR_ACT)
    for (int64_t i = 0; i < n; i++) out[i] = round_bf16(tanhf(widen(inp[i])));
}

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

/* ---- embeddings, positions, softmax ---- */

#define ROWCHUNK 512 /* f32 values per stack chunk of a row (2 KB) */

/* t (n) f32 = src (n) of dtype dt; dst (n) of dtype dt = t (n) f32 (16-bit: kernels/cast.h's rounding) */
static void to_f32(float *t, const void *src, pare_dtype dt, int64_t n)
{
    if (dt == PARE_F32) memcpy(t, src, (size_t)n * sizeof *t);
    else pare_cast_from_half_fast(t, src, dt, n);
}
static void from_f32(void *dst, pare_dtype dt, const float *t, int64_t n)
{
    if (dt == PARE_F32) memcpy(dst, t, (size_t)n * sizeof *t);
    else pare_cast_to_half_fast(dst, dt, t, n);
}

void pare_embedding_half(void *out, pare_dtype ot, const int32_t *ids, const void *table, pare_dtype tt, float scale,
                         int64_t M, int64_t C)
{
    const size_t ob = pare_dtype_size(ot), tb = pare_dtype_size(tt);
    const int scaled = scale != 0 && scale != 1;
#pragma omp parallel for schedule(static) if (M * C > HALF_PAR)
    for (int64_t m = 0; m < M; m++) {
        const char *src = (const char *)table + (size_t)ids[m] * (size_t)C * tb;
        char *dst = (char *)out + (size_t)m * (size_t)C * ob;
        if (ot == tt && !scaled) { /* widening then rounding gives the same bits back: a copy */
            memcpy(dst, src, (size_t)C * ob);
            continue;
        }
        float t[ROWCHUNK];
        for (int64_t c0 = 0; c0 < C; c0 += ROWCHUNK) {
            const int64_t len = c0 + ROWCHUNK < C ? ROWCHUNK : C - c0;
            if (tt == PARE_F32 && !scaled) {
                from_f32(dst + (size_t)c0 * ob, ot, (const float *)(const void *)src + c0, len);
                continue;
            }
            to_f32(t, src + (size_t)c0 * tb, tt, len);
            if (scaled)
                for (int64_t j = 0; j < len; j++) t[j] *= scale; /* nn.c's pare_scale_inplace, element by element */
            from_f32(dst + (size_t)c0 * ob, ot, t, len);
        }
    }
}

/* one row: o (C) = x (C) + p (C), x and o of dtype it (f32 or bf16), p of dtype pt */
PARE_HOT static void posadd_row(void *o, const void *x, pare_dtype it, const void *p, pare_dtype pt, int64_t C)
{
    const size_t pb = pare_dtype_size(pt);
    float t[ROWCHUNK];
    for (int64_t c0 = 0; c0 < C; c0 += ROWCHUNK) {
        const int64_t len = c0 + ROWCHUNK < C ? ROWCHUNK : C - c0;
        const float *pf = (const float *)(const void *)((const char *)p + (size_t)c0 * pb);
        if (pt != PARE_F32) to_f32(t, (const char *)p + (size_t)c0 * pb, pt, len), pf = t;
        if (it == PARE_F32) {
            float *of = (float *)o + c0;
            const float *xf = (const float *)x + c0;
#pragma omp simd
            for (int64_t j = 0; j < len; j++) of[j] = xf[j] + pf[j];
        } else {
            uint16_t *oh = (uint16_t *)o + c0;
            const uint16_t *xh = (const uint16_t *)x + c0;
#pragma omp simd
            for (int64_t j = 0; j < len; j++) oh[j] = round_bf16(widen(xh[j]) + pf[j]);
        }
    }
}

void pare_posadd_half(void *out, const void *inp, pare_dtype it, const void *pos, pare_dtype pt, int64_t B, int64_t T,
                      int64_t C)
{
    const size_t ib = pare_dtype_size(it), pb = pare_dtype_size(pt);
#pragma omp parallel for schedule(static) if (B * T * C > HALF_PAR)
    for (int64_t bt = 0; bt < B * T; bt++)
        posadd_row((char *)out + (size_t)(bt * C) * ib, (const char *)inp + (size_t)(bt * C) * ib, it,
                   (const char *)pos + (size_t)((bt % T) * C) * pb, pt, C);
}

void pare_posadd_half_at(void *out, const void *inp, pare_dtype it, const void *pos, pare_dtype pt, const int64_t *at,
                         int64_t M, int64_t C)
{
    const size_t ib = pare_dtype_size(it), pb = pare_dtype_size(pt);
    for (int64_t r = 0; r < M; r++)
        posadd_row((char *)out + (size_t)(r * C) * ib, (const char *)inp + (size_t)(r * C) * ib, it,
                   (const char *)pos + (size_t)(at[r] * C) * pb, pt, C);
}

int pare_softmax_half_slots(void) { return omp_get_max_threads(); }
size_t pare_softmax_half_work_bytes(int64_t N) { return sizeof(float) * (size_t)N * (size_t)pare_softmax_half_slots(); }

void pare_softmax_half(void *out, pare_dtype ot, const void *inp, pare_dtype it, int64_t M, int64_t N, float *work,
                       int nslot)
{
    if (it == PARE_F32 && ot == PARE_F32) {
        pare_softmax_forward(out, inp, M, N);
        return;
    }
    const size_t ib = pare_dtype_size(it), ob = pare_dtype_size(ot);
#pragma omp parallel num_threads(nslot > 0 ? nslot : 1) if (M * N > HALF_PAR_ACT)
    {
        float *w = work + (size_t)omp_get_thread_num() * (size_t)N;
#pragma omp for schedule(static)
        for (int64_t m = 0; m < M; m++) {
            float *row = ot == PARE_F32 ? (float *)out + m * N : w;
            to_f32(row, (const char *)inp + (size_t)(m * N) * ib, it, N);
            pare_softmax_rows(row, row, 1, N);
            if (ot != PARE_F32) from_f32((char *)out + (size_t)(m * N) * ob, ot, row, N);
        }
    }
}

void pare_masked_softmax_half(void *P, pare_dtype ot, const void *S, pare_dtype it, float s, const int32_t *lengths,
                              int causal, int64_t B, int64_t H, int64_t T, float *work, int nslot)
{
    if (it == PARE_F32 && ot == PARE_F32) {
        pare_masked_softmax_forward(P, S, s, lengths, causal, B, H, T);
        return;
    }
    const size_t ib = pare_dtype_size(it), ob = pare_dtype_size(ot);
    const int64_t rows = B * H * T;
#pragma omp parallel num_threads(nslot > 0 ? nslot : 1) if (rows * T > HALF_PAR_ACT)
    {
        float *w = work + (size_t)omp_get_thread_num() * (size_t)T;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t b = r / (H * T), i = r % T;
            int64_t L = lengths ? lengths[b] : T;
            L = L < 0 ? 0 : L > T ? T : L;
            const int64_t ke = causal && i + 1 < L ? i + 1 : L; /* fuse_ops.c's kend */
            char *o = (char *)P + (size_t)(r * T) * ob;
            if (ke > 0) {
                to_f32(w, (const char *)S + (size_t)(r * T) * ib, it, ke);
                for (int64_t j = 0; j < ke; j++) w[j] = w[j] / s;
                pare_softmax_rows(w, w, 1, ke);
                from_f32(o, ot, w, ke);
            }
            memset(o + (size_t)ke * ob, 0, (size_t)(T - ke) * ob); /* +0 in every dtype */
        }
    }
}

/* ---- references ---- */

static float *widen_any_ref(const void *src, pare_dtype dt, int64_t n)
{
    float *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (!t) return NULL;
    for (int64_t i = 0; i < n; i++)
        t[i] = dt == PARE_F32 ? ((const float *)src)[i]
             : dt == PARE_BF16 ? pare_bf16_to_f32(((const uint16_t *)src)[i]) : pare_f16_to_f32(((const uint16_t *)src)[i]);
    return t;
}
static void round_any_ref(void *dst, pare_dtype dt, const float *t, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == PARE_F32) ((float *)dst)[i] = t[i];
        else ((uint16_t *)dst)[i] = dt == PARE_BF16 ? pare_f32_to_bf16(t[i]) : pare_f32_to_f16(t[i]);
    }
}

int pare_embedding_half_ref(void *out, pare_dtype ot, const int32_t *ids, const void *table, pare_dtype tt, float scale,
                            int64_t M, int64_t C)
{
    int64_t V = 0;
    for (int64_t m = 0; m < M; m++) V = ids[m] + 1 > V ? ids[m] + 1 : V;
    float *t = widen_any_ref(table, tt, V * C), *o = malloc((size_t)(M * C > 0 ? M * C : 1) * sizeof *o);
    if (!t || !o) {
        free(t), free(o);
        return -1;
    }
    pare_embedding_forward(o, ids, t, M, C);
    if (scale != 0 && scale != 1) pare_scale_inplace(o, scale, M * C);
    round_any_ref(out, ot, o, M * C);
    free(t), free(o);
    return 0;
}

int pare_posadd_half_ref(void *out, const void *inp, pare_dtype it, const void *pos, pare_dtype pt, int64_t B, int64_t T,
                         int64_t C)
{
    float *x = widen_any_ref(inp, it, B * T * C), *p = widen_any_ref(pos, pt, T * C);
    if (!x || !p) {
        free(x), free(p);
        return -1;
    }
    pare_posadd_forward(x, x, p, B, T, C);
    round_any_ref(out, it, x, B * T * C);
    free(x), free(p);
    return 0;
}

int pare_softmax_half_ref(void *out, pare_dtype ot, const void *inp, pare_dtype it, int64_t M, int64_t N)
{
    float *x = widen_any_ref(inp, it, M * N);
    if (!x) return -1;
    pare_softmax_forward(x, x, M, N);
    round_any_ref(out, ot, x, M * N);
    free(x);
    return 0;
}

int pare_masked_softmax_half_ref(void *P, pare_dtype ot, const void *S, pare_dtype it, float s, const int32_t *lengths,
                                 int causal, int64_t B, int64_t H, int64_t T)
{
    float *x = widen_any_ref(S, it, B * H * T * T), *p = malloc((size_t)(B * H * T * T > 0 ? B * H * T * T : 1) * sizeof *p);
    if (!x || !p) {
        free(x), free(p);
        return -1;
    }
    pare_masked_softmax_forward(p, x, s, lengths, causal, B, H, T);
    round_any_ref(P, ot, p, B * H * T * T);
    free(x), free(p);
    return 0;
}
