/* nn_attention.c — multi-head scaled dot-product softmax attention (Vaswani et al. 2017, §3.2) on a
 * packed qkv, f32: the naive reference of nn.h (pare_attention_forward_ref).
 *
 * The fast kernel is the "full" attention variant (src/attn/full.c): one dense implementation, run by
 * every model's ATTENTION node and tested against this reference (tests/test_nn.c, tests/test_attn.c).
 *
 * Masking: for query i of sequence b, key j is visible iff j < L_b (L_b = clamp(lengths[b], 0, T)) and,
 * when causal, j <= i. Padded queries (i >= L_b) still attend to the valid keys, so their outputs and
 * gradients are well defined. Invisible entries of att are exactly 0. A row with no visible key
 * (L_b = 0) has att 0 and output 0.
 *
 * Deliberately not here: any fast path (src/attn/full.c, flash.c), dropout on att, additive bias masks.
 */
#include "kernels/nn.h"

#include <math.h>

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
