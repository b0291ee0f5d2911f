/* nn_attention.c — multi-head scaled dot-product softmax attention (Vaswani et al. 2017, §3.2) on a
 * packed qkv, f32: the fast forward/backward and the naive reference of nn.h.
 *
 * Fast path: for each (b, h) pair (OpenMP, one pair per task) the products Q·K^T, P·V and their
 * backward products are pare_sgemm calls on strided views of qkv (row stride 3C), no copies. Queries
 * go in blocks of ATT_QBLOCK rows; a block only computes the keys it can see (j < min(length, i1) when
 * causal), which halves the work of causal attention and skips padded keys. pare_sgemm is thus called
 * from inside an OpenMP region: each call runs on its own thread (oneDNN and OpenMP-built BLAS go
 * sequential there); with few (b, h) pairs and many cores the outer loop under-fills the machine.
 * Results are bit-identical for any thread count (one pair = one thread, fixed order inside).
 *
 * Masking: for query i of sequence b, key j is visible iff j < L_b (L_b = clamp(lengths[b], 0, T)) and,
 * when causal, j <= i. Padded queries (i >= L_b) still attend to the valid keys, so their outputs and
 * gradients are well defined. Invisible entries of att are exactly 0. A row with no visible key
 * (L_b = 0) has att 0 and output 0.
 *
 * Deliberately not here: dropout on att (use pare_dropout on the caller's side), flash-style tiling
 * without the (B,H,T,T) cache (src/attn/flash.c), additive bias masks.
 */
#include "kernels/nn.h"

#include <math.h>
#include <string.h>

#include "kernels/gemm.h"
#include "core/cpu.h"
#include "kernels/nn_internal.h"

#define ATT_QBLOCK 64

static int64_t att_len(const int32_t *lengths, int64_t b, int64_t T)
{
    if (!lengths) return T;
    int64_t L = lengths[b];
    return L < 0 ? 0 : L > T ? T : L;
}

/* Number of visible keys of query i: keys [0, att_kend) are visible. */
static inline int64_t att_kend(int64_t i, int64_t L, int causal)
{
    return causal && i + 1 < L ? i + 1 : L;
}

/* qkv (B,T,3C), out (B,T,C), att (B,H,T,T) */
PARE_HOT void pare_attention_forward(float *out, float *att, const float *qkv, const int32_t *lengths, int causal,
                            int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t D = C / H, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1) if (B * H > 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H, L = att_len(lengths, b, T);
        const float *q = qkv + b * T * C3 + h * D, *k = q + C, *v = q + 2 * C; /* (T,D), stride 3C */
        float *o = out + b * T * C + h * D;                                     /* (T,D), stride C */
        float *a = att + bh * T * T;                                            /* (T,T) */
        for (int64_t i0 = 0; i0 < T; i0 += ATT_QBLOCK) {
            const int64_t nq = i0 + ATT_QBLOCK < T ? ATT_QBLOCK : T - i0;
            const int64_t nk = att_kend(i0 + nq - 1, L, causal); /* keys any query of the block sees */
            float *ab = a + i0 * T;
            /* S(nq,nk) = scale · Q[i0:i0+nq] · K[0:nk]^T */
            if (nk > 0) pare_sgemm(0, 1, nq, nk, D, scale, q + i0 * C3, C3, k, C3, 0.0f, ab, T);
            for (int64_t r = 0; r < nq; r++) {
                float *s = ab + r * T;
                const int64_t ke = att_kend(i0 + r, L, causal);
                if (ke > 0) nn_softmax(s, s, ke);
                memset(s + ke, 0, (size_t)(T - ke) * sizeof(float));
            }
            /* O[i0:i0+nq] (nq,D) = P(nq,nk) · V[0:nk] */
            if (nk > 0)
                pare_sgemm(0, 0, nq, D, nk, 1.0f, ab, T, v, C3, 0.0f, o + i0 * C, C);
            else
                for (int64_t r = 0; r < nq; r++) memset(o + (i0 + r) * C, 0, (size_t)D * sizeof(float));
        }
    }
}

/* Differentiates, per (b,h) and query block, the forward's three lines:
 *   O = P·V          → dV += P^T·dO,  dP = dO·V^T
 *   P = softmax(S)   → dS = P ⊙ (dP − rowsum(P ⊙ dP))      (masked entries have P = 0, so dS = 0)
 *   S = scale·Q·K^T  → dQ += scale·dS·K,  dK += scale·dS^T·Q
 * scratch (B,H,T,T) holds dP, then dS. Each (b,h) writes only its own head's columns of dqkv. */
PARE_HOT void pare_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                             const int32_t *lengths, int causal, int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t D = C / H, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1) if (B * H > 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H, L = att_len(lengths, b, T);
        const float *q = qkv + b * T * C3 + h * D, *k = q + C, *v = q + 2 * C; /* (T,D), stride 3C */
        float *dq = dqkv + b * T * C3 + h * D, *dk = dq + C, *dv = dq + 2 * C;  /* (T,D), stride 3C */
        const float *dO = dout + b * T * C + h * D;                            /* (T,D), stride C */
        const float *a = att + bh * T * T;                                     /* (T,T) */
        float *sc = scratch + bh * T * T;                                      /* (T,T) */
        for (int64_t i0 = 0; i0 < T; i0 += ATT_QBLOCK) {
            const int64_t nq = i0 + ATT_QBLOCK < T ? ATT_QBLOCK : T - i0;
            const int64_t nk = att_kend(i0 + nq - 1, L, causal);
            if (nk == 0) continue;
            const float *ab = a + i0 * T;
            float *db = sc + i0 * T;
            /* dV[0:nk] += P^T · dO[i0:i0+nq] */
            pare_sgemm(1, 0, nk, D, nq, 1.0f, ab, T, dO + i0 * C, C, 1.0f, dv, C3);
            /* dP (nq,nk) = dO[i0:i0+nq] · V[0:nk]^T */
            pare_sgemm(0, 1, nq, nk, D, 1.0f, dO + i0 * C, C, v, C3, 0.0f, db, T);
            for (int64_t r = 0; r < nq; r++) {
                const float *p = ab + r * T;
                float *d = db + r * T, s = 0.0f;
                const int64_t ke = att_kend(i0 + r, L, causal);
#pragma omp simd reduction(+ : s)
                for (int64_t j = 0; j < ke; j++) s += p[j] * d[j];
#pragma omp simd
                for (int64_t j = 0; j < ke; j++) d[j] = p[j] * (d[j] - s);
                for (int64_t j = ke; j < nk; j++) d[j] = 0.0f;
            }
            /* dQ[i0:i0+nq] += scale · dS · K[0:nk] */
            pare_sgemm(0, 0, nq, D, nk, scale, db, T, k, C3, 1.0f, dq + i0 * C3, C3);
            /* dK[0:nk] += scale · dS^T · Q[i0:i0+nq] */
            pare_sgemm(1, 0, nk, D, nq, scale, db, T, q + i0 * C3, C3, 1.0f, dk, C3);
        }
    }
}

/* scale · q_i · k_j of head h of sequence b, in double. */
static double ref_score(const float *qkv, int64_t b, int64_t h, int64_t i, int64_t j, int64_t T, int64_t C,
                        int64_t D, double scale)
{
    const float *q = qkv + (b * T + i) * 3 * C + h * D, *k = qkv + (b * T + j) * 3 * C + C + h * D;
    double s = 0.0;
    for (int64_t d = 0; d < D; d++) s += (double)q[d] * (double)k[d];
    return s * scale;
}

/* The definition, plain loops per query with double accumulation (scores recomputed, no scratch). */
void pare_attention_forward_ref(float *out, float *att, const float *qkv, const int32_t *lengths, int causal,
                                int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t D = C / H, C3 = 3 * C;
    const double scale = 1.0 / sqrt((double)D);
    for (int64_t b = 0; b < B; b++) {
        const int64_t L = att_len(lengths, b, T);
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const int64_t ke = att_kend(i, L, causal); /* visible keys: j < ke */
                float *a = att + ((b * H + h) * T + i) * T;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < ke; j++) {
                    double s = ref_score(qkv, b, h, i, j, T, C, D, scale);
                    if (s > mx) mx = s;
                }
                for (int64_t j = 0; j < ke; j++) sum += exp(ref_score(qkv, b, h, i, j, T, C, D, scale) - mx);
                for (int64_t j = 0; j < T; j++) a[j] = 0.0f;
                for (int64_t d0 = 0; d0 < D; d0 += 64) { /* head channels in slices of 64 doubles */
                    const int64_t nd = d0 + 64 < D ? 64 : D - d0;
                    double o[64] = {0};
                    for (int64_t j = 0; j < ke; j++) {
                        const double p = exp(ref_score(qkv, b, h, i, j, T, C, D, scale) - mx) / sum;
                        const float *v = qkv + (b * T + j) * C3 + 2 * C + h * D + d0;
                        for (int64_t d = 0; d < nd; d++) o[d] += p * (double)v[d];
                    }
                    for (int64_t d = 0; d < nd; d++) out[(b * T + i) * C + h * D + d0 + d] = (float)o[d];
                }
                for (int64_t j = 0; j < ke; j++) a[j] = (float)(exp(ref_score(qkv, b, h, i, j, T, C, D, scale) - mx) / sum);
            }
    }
}
