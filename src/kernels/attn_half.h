/* attn_half.h — the two batched products of attention on bf16 operands with f32 accumulation (issue 15):
 * S = scale · Q·Kᵀ and O = β·O + bf16(P)·V, for the bf16 forwards of src/attn (full.c, pattern.c).
 *
 *     pare_attn16_impl im = pare_attn16_resolve(PARE_ATTN16_AUTO);   // vdpbf16ps here, widen elsewhere
 *     pare_attn16_pack_k(im, kp, k, ld, nk, D);                       // keys once per head (or per tile)
 *     pare_attn16_pack_v(im, vp, v, ld, nk, D);
 *     pare_attn16_qk(im, S, lds, q, ld, nq, kp, nk, D, scale, scratch);   // S (nq, nk) f32
 *     ... softmax of S in f32, in place ...
 *     pare_attn16_pv(im, o, ldo, 0.0f, S, lds, nq, vp, nk, D, scratch);   // o (nq, D) f32 = bf16(P)·V
 *
 * Numerics (both implementations): q, k, v are bf16 (8-bit significands), so every product q_d·k_d and
 * bf16(p_j)·v_j is exact in f32; the products are summed in f32 (in an order that differs between the
 * implementations), S is then multiplied by scale in f32. P is rounded to bf16 (round to nearest even, the
 * bits of core/tensor.h's scalar cast) before P·V: what oneDNN's and PyTorch's bf16 attention do.
 *
 * Implementations, chosen at run time (pare_attn16_resolve):
 *   PARE_ATTN16_DPBF16 — AVX512-BF16's vdpbf16ps on keys and values packed in pairs ("VNNI" layout:
 *     two consecutive elements of the contracted dimension in one 32-bit lane), register-blocked
 *     micro-kernels (functions compiled with target("avx512bf16,...")). vdpbf16ps treats subnormal inputs
 *     and results as 0 (DAZ/FTZ), so it may differ from exact products below 2^-126.
 *   PARE_ATTN16_WIDEN — portable: keys, values and the query rows widened to f32 (exact), P rounded onto
 *     the bf16 grid and kept in f32, the products by pare_sgemm: the same values, f32 arithmetic.
 *
 * Buffers: kp / vp hold pack_k / pack_v of n keys (pare_attn16_kpack_bytes / _vpack_bytes, either
 * implementation); a pack of n keys serves any prefix nk <= n. scratch: pare_attn16_scratch_bytes(nq, nk, D).
 * Every function runs on the calling thread (callers parallelise over (b, h) pairs).
 *
 * Deliberately not here: f16 operands (no f16 arithmetic on these CPUs), a bf16 output, backward (the
 * graph widens a bf16 qkv and runs the f32 backward: graph/ops.c), the softmax (f32, in the callers).
 */
#ifndef PARE_ATTN_HALF_H
#define PARE_ATTN_HALF_H

#include <stddef.h>
#include <stdint.h>

typedef enum pare_attn16_impl {
    PARE_ATTN16_AUTO = 0, /* DPBF16 where the CPU has AVX512-BF16 (+F, BW, VL), else WIDEN */
    PARE_ATTN16_DPBF16,   /* vdpbf16ps micro-kernels */
    PARE_ATTN16_WIDEN,    /* bf16 widened to f32, pare_sgemm */
    PARE_ATTN16_IMPL_COUNT
} pare_attn16_impl;

/* AUTO → the best for this CPU; DPBF16 on a CPU without AVX512-BF16 → WIDEN (the caller may compare to
 * detect it); WIDEN → WIDEN. */
pare_attn16_impl pare_attn16_resolve(pare_attn16_impl want);
/* "dpbf16" / "widen" / "auto". */
const char *pare_attn16_impl_name(pare_attn16_impl im);
/* 1 if this CPU can run PARE_ATTN16_DPBF16. */
int pare_attn16_has_dpbf16(void);

size_t pare_attn16_kpack_bytes(int64_t n, int64_t D);
size_t pare_attn16_vpack_bytes(int64_t n, int64_t D);
size_t pare_attn16_scratch_bytes(int64_t nq, int64_t nk, int64_t D);

/* kp = the n keys k (n, D) bf16 with row stride ld (elements), packed for pare_attn16_qk. */
void pare_attn16_pack_k(pare_attn16_impl im, void *kp, const uint16_t *k, int64_t ld, int64_t n, int64_t D);
/* vp = the n values v (n, D) bf16 with row stride ld, packed for pare_attn16_pv. */
void pare_attn16_pack_v(pare_attn16_impl im, void *vp, const uint16_t *v, int64_t ld, int64_t n, int64_t D);
/* S (nq, nk), row stride lds = scale · Q·Kᵀ: q (nq, D) bf16 with row stride ldq, kp a pack of >= nk keys. */
void pare_attn16_qk(pare_attn16_impl im, float *S, int64_t lds, const uint16_t *q, int64_t ldq, int64_t nq,
                    const void *kp, int64_t nk, int64_t D, float scale, void *scratch);
/* o (nq, D), row stride ldo = beta·o + bf16(P)·V: P (nq, nk) f32 with row stride ldp (read only), vp a pack of
 * >= nk keys; beta 0 (o is not read) or 1. */
void pare_attn16_pv(pare_attn16_impl im, float *o, int64_t ldo, float beta, const float *P, int64_t ldp, int64_t nq,
                    const void *vp, int64_t nk, int64_t D, void *scratch);

#endif
