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

/* ---- fast conversions (cast.h): the scalar loops' bits, vectorised ----
 *
 * bf16 from f32: r = (u + 0x7fff + ((u >> 16) & 1)) >> 16, NaN → (u >> 16) | 0x40, in 16 (AVX-512) or 8
 * (AVX2) lanes. f16: F16C's vcvtps2ph with round-to-nearest-even (IEEE: subnormals and overflow to ±Inf as
 * the scalar loop), NaNs rewritten to sign | 0x7e00 as the scalar loop writes them. The vector bodies are
 * compiled for their ISA only (target attributes) and chosen from pare_cpu_get() at each call. */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "core/cpu.h"
#define CAST_X86 1

__attribute__((target("avx512f,avx512bw"))) static inline __m512i bf16_bits_512(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, q); /* 16-bit results in 32-bit lanes */
}

__attribute__((target("avx512f,avx512bw"))) static int64_t to_bf16_512(uint16_t *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(bf16_bits_512(_mm512_loadu_ps(x + i))));
    return i;
}

__attribute__((target("avx512f,avx512bw"))) static int64_t round_bf16_512(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(bf16_bits_512(_mm512_loadu_ps(x + i)), 16)));
    return i;
}

__attribute__((target("avx512f,avx512bw"))) static int64_t from_bf16_512(float *y, const uint16_t *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
    }
    return i;
}

__attribute__((target("avx2"))) static inline __m256i bf16_bits_256(__m256 x)
{
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    return _mm256_blendv_epi8(r, q, nan);
}

__attribute__((target("avx2"))) static int64_t to_bf16_256(uint16_t *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_bits_256(_mm256_loadu_ps(x + i)), b = bf16_bits_256(_mm256_loadu_ps(x + i + 8));
        /* packus interleaves 128-bit halves: a0-3 b0-3 a4-7 b4-7; the permute puts them in order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    return i;
}

__attribute__((target("avx2"))) static int64_t round_bf16_256(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(bf16_bits_256(_mm256_loadu_ps(x + i)), 16)));
    return i;
}

__attribute__((target("avx2"))) static int64_t from_bf16_256(float *y, const uint16_t *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
    }
    return i;
}

/* 8 halves from 8 floats, NaNs as the scalar loop writes them (sign | 0x7e00). */
__attribute__((target("avx,f16c"))) static inline __m128i f16_bits_8(__m256 x)
{
    __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT);
    __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
    __m128i nan = _mm_cmpgt_epi16(mag, _mm_set1_epi16(0x7c00)); /* mag <= 0x7fff: the signed compare is right */
    __m128i q = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7e00));
    return _mm_or_si128(_mm_andnot_si128(nan, h), _mm_and_si128(nan, q));
}

__attribute__((target("avx,f16c"))) static int64_t to_f16_f16c(uint16_t *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(y + i), f16_bits_8(_mm256_loadu_ps(x + i)));
    return i;
}

__attribute__((target("avx,f16c"))) static int64_t round_f16_f16c(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(f16_bits_8(_mm256_loadu_ps(x + i))));
    return i;
}

__attribute__((target("avx,f16c"))) static int64_t from_f16_f16c(float *y, const uint16_t *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    return i;
}
#endif

void pare_cast_to_half_fast(uint16_t *out, pare_dtype ot, const float *inp, int64_t n)
{
    int64_t i = 0;
#ifdef CAST_X86
    const pare_cpu *c = pare_cpu_get();
    if (ot == PARE_BF16) i = c->avx512bw ? to_bf16_512(out, inp, n) : c->avx2 ? to_bf16_256(out, inp, n) : 0;
    else if (ot == PARE_F16 && c->f16c) i = to_f16_f16c(out, inp, n);
#endif
    for (; i < n; i++) out[i] = f32_to_half(inp[i], ot);
}

void pare_cast_from_half_fast(float *out, const uint16_t *inp, pare_dtype it, int64_t n)
{
    int64_t i = 0;
#ifdef CAST_X86
    const pare_cpu *c = pare_cpu_get();
    if (it == PARE_BF16) i = c->avx512bw ? from_bf16_512(out, inp, n) : c->avx2 ? from_bf16_256(out, inp, n) : 0;
    else if (it == PARE_F16 && c->f16c) i = from_f16_f16c(out, inp, n);
#endif
    for (; i < n; i++) out[i] = half_to_f32(inp[i], it);
}

void pare_cast_round_fast(float *out, const float *inp, pare_dtype dt, int64_t n)
{
    int64_t i = 0;
#ifdef CAST_X86
    const pare_cpu *c = pare_cpu_get();
    if (dt == PARE_BF16) i = c->avx512bw ? round_bf16_512(out, inp, n) : c->avx2 ? round_bf16_256(out, inp, n) : 0;
    else if (dt == PARE_F16 && c->f16c) i = round_f16_f16c(out, inp, n);
#endif
    for (; i < n; i++) out[i] = half_to_f32(f32_to_half(inp[i], dt), dt);
}
