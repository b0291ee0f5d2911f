/* full.c — dense softmax attention (Vaswani et al. 2017, §3.2), the reference every other variant is
 * compared with: kind "full", no options. It is also the models' built-in dense attention (the one
 * dense implementation: an ATTENTION node without a variant runs this, pare_attn_config_default), so
 * what the graph relies on lives here: the cache is the probabilities (probs_cache: the graph plans it
 * as "<node>#att", capturable for distillation), and SmoothQuant's int8 batched products are its
 * inference forward_i8 (kernels/nn_attention_i8.c).
 *
 * The algorithm of kernels/nn_attention.c on attn.h's strided views: per (b, h) pair (OpenMP) and block
 * of FULL_QB queries, S = scale·Q·K^T over the keys the block can see (j < L, and j <= last query when
 * causal), a row softmax, O = P·V — pare_sgemm on strided views, no copies. The probabilities
 * (B,H,T,T) are the cache (masked entries exactly 0); backward differentiates the three lines with
 * dP and dS of one query block in the thread's slot (FULL_QB × T floats).
 *
 * The bf16 forward (full_forward_bf16) packs each pair's keys and values once and runs the same blocks with
 * bf16 products and f32 accumulation (kernels/attn_half.h), P rounded to bf16 before P·V.
 *
 * Cost: pairs = Σ_blocks rows × visible keys (T² bidirectional, ≈ T²/2 causal); memory B·H·T² floats.
 * Deliberately not here: tiling without the T² cache (flash.c), sparsity (pattern.c).
 */
#include "attn/attn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/cpu.h"
#include "attn/attn_internal.h"
#include "kernels/attn_half.h"
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "kernels/nn_internal.h"

#define FULL_QB 64

static const pare_schema full_schema = {
    "full", "dense softmax attention over all visible keys (the reference); cost and memory O(T²)", NULL, 0};

static pare_status full_init(pare_attn *a)
{
    a->state = NULL;
    return PARE_OK;
}

/* Visible keys of query i: [0, kend). */
static inline int64_t full_kend(int64_t i, int64_t L, int causal) { return causal && i + 1 < L ? i + 1 : L; }

PARE_HOT static pare_status full_forward(const pare_attn *a, const pare_attn_args *x)
{
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo;
    const float scale = 1.0f / sqrtf((float)D);
    float *att = x->cache; /* (B,H,T,T) */
    int64_t pairs = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : pairs) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T);
        const float *q = x->q + b * T * ld + h * D, *k = x->k + b * T * ld + h * D, *v = x->v + b * T * ld + h * D;
        float *o = x->out + b * T * ldo + h * D, *A = att + bh * T * T;
        for (int64_t i0 = 0; i0 < T; i0 += FULL_QB) {
            const int64_t nq = i0 + FULL_QB < T ? FULL_QB : T - i0, nk = full_kend(i0 + nq - 1, L, a->causal);
            float *ab = A + i0 * T;
            pairs += nq * nk;
            /* S (nq,nk) = scale · Q[i0:i0+nq] · K[0:nk]^T */
            if (nk > 0) pare_sgemm(0, 1, nq, nk, D, scale, q + i0 * ld, ld, k, ld, 0.0f, ab, T);
            for (int64_t r = 0; r < nq; r++) {
                float *s = ab + r * T;
                const int64_t ke = full_kend(i0 + r, L, a->causal);
                if (ke > 0) nn_softmax(s, s, ke);
                memset(s + ke, 0, (size_t)(T - ke) * sizeof(float));
            }
            /* O[i0:i0+nq] (nq,D) = P (nq,nk) · V[0:nk] */
            if (nk > 0)
                pare_sgemm(0, 0, nq, D, nk, 1.0f, ab, T, v, ld, 0.0f, o + i0 * ldo, ldo);
            else
                for (int64_t r = 0; r < nq; r++) memset(o + (i0 + r) * ldo, 0, (size_t)D * sizeof(float));
        }
    }
    if (x->pairs) *x->pairs = pairs;
    return PARE_OK;
}

/* ---- bf16 forward (kernels/attn_half.h) ----
 * The same blocks, softmax and cache (the f32 probabilities, before any rounding: what distillation captures
 * and backward reads); S = scale·Q·Kᵀ on bf16 q, k with f32 accumulation, O = bf16(P)·V. The L valid keys and
 * values of a (b, h) pair are packed once into the thread's slot, then every query block reads a prefix. */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t full_slot_bf16(const pare_attn *a)
{
    const int64_t T = a->T, D = a->D;
    return align64(pare_attn16_kpack_bytes(T, D)) + align64(pare_attn16_vpack_bytes(T, D)) +
           align64(pare_attn16_scratch_bytes(FULL_QB, T, D));
}

PARE_HOT static pare_status full_forward_bf16(const pare_attn *a, const pare_attn_args *x)
{
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = full_slot_bf16(a), kpb = align64(pare_attn16_kpack_bytes(T, D)),
                 vpb = align64(pare_attn16_vpack_bytes(T, D));
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    const pare_attn16_impl im = pare_attn16_resolve((pare_attn16_impl)x->impl16);
    float *att = x->cache; /* (B,H,T,T) */
    int64_t pairs = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) reduction(+ : pairs) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T);
        const uint16_t *q = x->q16 + b * T * ld + h * D, *k = x->k16 + b * T * ld + h * D,
                       *v = x->v16 + b * T * ld + h * D;
        float *o = x->out + b * T * ldo + h * D, *A = att + bh * T * T;
        char *kp = (char *)x->work + slot * (size_t)omp_get_thread_num(), *vp = kp + kpb, *scr = vp + vpb;
        pare_attn16_pack_k(im, kp, k, ld, L, D);
        pare_attn16_pack_v(im, vp, v, ld, L, D);
        for (int64_t i0 = 0; i0 < T; i0 += FULL_QB) {
            const int64_t nq = i0 + FULL_QB < T ? FULL_QB : T - i0, nk = full_kend(i0 + nq - 1, L, a->causal);
            float *ab = A + i0 * T;
            pairs += nq * nk;
            /* S (nq,nk) = scale · Q[i0:i0+nq] · K[0:nk]^T */
            pare_attn16_qk(im, ab, T, q + i0 * ld, ld, nq, kp, nk, D, scale, scr);
            for (int64_t r = 0; r < nq; r++) {
                float *s = ab + r * T;
                const int64_t ke = full_kend(i0 + r, L, a->causal);
                if (ke > 0) nn_softmax(s, s, ke);
                memset(s + ke, 0, (size_t)(T - ke) * sizeof(float));
            }
            /* O[i0:i0+nq] (nq,D) = bf16(P) (nq,nk) · V[0:nk] (zeros when nk = 0) */
            pare_attn16_pv(im, o + i0 * ldo, ldo, 0.0f, ab, T, nq, vp, nk, D, scr);
        }
    }
    if (x->pairs) *x->pairs = pairs;
    return PARE_OK;
}

/* Per (b,h) and query block, the forward's lines backwards:
 *   O = P·V          → dV += P^T·dO,  dP = dO·V^T (+ dprobs: a loss on P itself, attn.h)
 *   P = softmax(S)   → dS = P ⊙ (dP − rowsum(P ⊙ dP))
 *   S = scale·Q·K^T  → dQ += scale·dS·K,  dK += scale·dS^T·Q */
PARE_HOT static pare_status full_backward(const pare_attn *a, const pare_attn_args *x)
{
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo, ldd = x->ldd;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = (size_t)FULL_QB * (size_t)T * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    const float *att = x->cache;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T);
        const float *q = x->q + b * T * ld + h * D, *k = x->k + b * T * ld + h * D, *v = x->v + b * T * ld + h * D;
        float *dq = x->dq + b * T * ldd + h * D, *dk = x->dk + b * T * ldd + h * D, *dv = x->dv + b * T * ldd + h * D;
        const float *dO = x->dout + b * T * ldo + h * D, *A = att + bh * T * T;
        float *db = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num()); /* (FULL_QB, T) */
        for (int64_t i0 = 0; i0 < T; i0 += FULL_QB) {
            const int64_t nq = i0 + FULL_QB < T ? FULL_QB : T - i0, nk = full_kend(i0 + nq - 1, L, a->causal);
            if (nk == 0) continue;
            const float *ab = A + i0 * T;
            pare_sgemm(1, 0, nk, D, nq, 1.0f, ab, T, dO + i0 * ldo, ldo, 1.0f, dv, ldd);  /* dV += P^T dO */
            pare_sgemm(0, 1, nq, nk, D, 1.0f, dO + i0 * ldo, ldo, v, ld, 0.0f, db, T);    /* dP = dO V^T */
            for (int64_t r = 0; r < nq; r++) {
                const float *p = ab + r * T;
                float *d = db + r * T, s = 0.0f;
                const int64_t ke = full_kend(i0 + r, L, a->causal);
                if (x->dprobs) { /* a loss on P itself: dP += dL/dP */
                    const float *dp = x->dprobs + bh * T * T + (i0 + r) * T;
#pragma omp simd
                    for (int64_t j = 0; j < ke; j++) d[j] += dp[j];
                }
#pragma omp simd reduction(+ : s)
                for (int64_t j = 0; j < ke; j++) s += p[j] * d[j];
#pragma omp simd
                for (int64_t j = 0; j < ke; j++) d[j] = p[j] * (d[j] - s);
                for (int64_t j = ke; j < nk; j++) d[j] = 0.0f;
            }
            pare_sgemm(0, 0, nq, D, nk, scale, db, T, k, ld, 1.0f, dq + i0 * ldd, ldd);   /* dQ += scale dS K */
            pare_sgemm(1, 0, nk, D, nq, scale, db, T, q + i0 * ld, ld, 1.0f, dk, ldd);    /* dK += scale dS^T Q */
        }
    }
    return PARE_OK;
}

static void full_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const int64_t T = a->T, D = a->D;
    int64_t per = 0;
    for (int64_t i0 = 0; i0 < T; i0 += FULL_QB) {
        const int64_t nq = i0 + FULL_QB < T ? FULL_QB : T - i0;
        per += nq * full_kend(i0 + nq - 1, T, a->causal);
    }
    c->pairs = B * a->H * per;
    c->flops_fwd = c->pairs * (4 * D + 5);  /* QK^T, PV; max, exp, sum, scale */
    c->flops_bwd = c->pairs * (8 * D + 4);  /* dV, dP, dQ, dK; dS */
    c->cache_bytes = (size_t)(B * a->H * T * T) * sizeof(float);
    c->slot_bytes = (size_t)FULL_QB * (size_t)T * sizeof(float);
}

/* SmoothQuant's W8A8 BMMs (inference): the kernel reads the packed qkv the graph passes
 * (pare_attn_forward_i8 checked the layout). */
static pare_status full_forward_i8(const pare_attn *a, const pare_attn_args *x)
{
    return pare_attention_forward_i8(x->out, x->q, x->lengths, a->causal,
                                     x->i8_p_fixed ? PARE_ATTN_P_FIXED : PARE_ATTN_P_ROW, x->B, a->T, a->H * a->D, a->H,
                                     x->work);
}

static size_t full_work_i8_bytes(const pare_attn *a, int64_t B)
{
    return pare_attention_i8_workspace(B, a->T, a->H * a->D, a->H);
}

const pare_attn_variant pare_attn_full = {
    .schema = &full_schema,
    .can_be_causal = 1,
    .causal_note = "keys after the query masked",
    .init = full_init,
    .forward = full_forward,
    .backward = full_backward,
    .cost = full_cost,
    .probs_cache = 1,
    .forward_i8 = full_forward_i8,
    .work_i8_bytes = full_work_i8_bytes,
    .forward_bf16 = full_forward_bf16,
    .slot_bf16_bytes = full_slot_bf16,
};

pare_attn_config pare_attn_full_default = {.refs = -1, .v = &pare_attn_full, .opts = {.schema = &full_schema},
                                           .spec = "full"};
