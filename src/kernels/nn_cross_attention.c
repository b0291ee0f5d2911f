/* nn_cross_attention.c — encoder-decoder (cross) attention, f32: the kernel models run and its naive
 * reference (nn.h: pare_cross_attention_*).
 *
 * Vaswani et al. 2017, "Attention Is All You Need", §3.2.3: in the "encoder-decoder attention" layers
 * the queries come from the previous decoder layer and the keys and values from the encoder's output.
 * For query i of sequence b and head h, with L_b = clamp(src_lengths[b], 0, S):
 *     att[b,h,i,j] = softmax_j<L_b (q_i · k_j / sqrt(D)),   out_i = Σ_j att[b,h,i,j] v_j
 * Keys j >= L_b (source padding) get probability exactly 0; there is no causal mask (the whole source
 * is known before decoding starts). A source of length 0 gives att 0 and out 0.
 * Cost: 4·B·T·S·C multiply-adds forward (scores and the weighted sum), twice that backward.
 *
 * Deliberately not here: sparse or linear variants over the source, dropout on att, a fused kv
 * projection (the graph's Linear does it once per layer), int8 products.
 */
#include <math.h>
#include <stddef.h>

#include "kernels/nn.h"

static int64_t src_len(const int32_t *src_lengths, int64_t b, int64_t S)
{
    if (!src_lengths) return S;
    int64_t L = src_lengths[b];
    return L < 0 ? 0 : L > S ? S : L;
}

void pare_cross_attention_forward(float *out, float *att, const float *q, const float *kv, const int32_t *src_lengths,
                                  int64_t B, int64_t T, int64_t S, int64_t C, int64_t H)
{
    const int64_t D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2) if (B * H * T * S * D > 32768)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = src_len(src_lengths, b, S);
            for (int64_t i = 0; i < T; i++) {
                const float *qi = q + (b * T + i) * C + h * D;
                float *a = att + ((b * H + h) * T + i) * S, *o = out + (b * T + i) * C + h * D;
                float mx = -INFINITY, sum = 0.0f;
                for (int64_t j = 0; j < L; j++) {
                    const float *kj = kv + (b * S + j) * 2 * C + h * D;
                    float s = 0.0f;
                    for (int64_t d = 0; d < D; d++) s += qi[d] * kj[d];
                    a[j] = s * scale;
                    if (a[j] > mx) mx = a[j];
                }
                for (int64_t j = 0; j < L; j++) sum += a[j] = expf(a[j] - mx);
                for (int64_t j = L; j < S; j++) a[j] = 0.0f;
                for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                for (int64_t j = 0; j < L; j++) {
                    a[j] /= sum;
                    const float *vj = kv + (b * S + j) * 2 * C + C + h * D;
                    for (int64_t d = 0; d < D; d++) o[d] += a[j] * vj[d];
                }
            }
        }
}

/* Backward of the forward above, from its probabilities att:
 *     dv_j += Σ_i att_ij dout_i                       (out_i = Σ_j att_ij v_j)
 *     dp_ij = dout_i · v_j,  ds_ij = att_ij (dp_ij − Σ_j' att_ij' dp_ij')   (softmax)
 *     dq_i += scale Σ_j ds_ij k_j,  dk_j += scale Σ_i ds_ij q_i              (s_ij = scale q_i · k_j)
 * Parallel over (b, h): each pair owns its slices of dq and dkv, so nothing is written twice at once. */
void pare_cross_attention_backward(float *dq, float *dkv, const float *dout, const float *att, const float *datt,
                                   const float *q, const float *kv, const int32_t *src_lengths, int64_t B, int64_t T,
                                   int64_t S, int64_t C, int64_t H)
{
    const int64_t D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2) if (B * H * T * S * D > 32768)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = src_len(src_lengths, b, S);
            for (int64_t i = 0; i < T; i++) {
                const float *a = att + ((b * H + h) * T + i) * S, *go = dout + (b * T + i) * C + h * D;
                const float *da = datt ? datt + ((b * H + h) * T + i) * S : NULL; /* a loss on att itself */
                const float *qi = q + (b * T + i) * C + h * D;
                float dot = 0.0f; /* Σ_j att_ij dp_ij */
                for (int64_t j = 0; j < L; j++) {
                    const float *vj = kv + (b * S + j) * 2 * C + C + h * D;
                    float dp = da ? da[j] : 0.0f;
                    for (int64_t d = 0; d < D; d++) dp += go[d] * vj[d];
                    dot += a[j] * dp;
                }
                for (int64_t j = 0; j < L; j++) {
                    const float *kj = kv + (b * S + j) * 2 * C + h * D, *vj = kj + C;
                    float dp = da ? da[j] : 0.0f;
                    for (int64_t d = 0; d < D; d++) dp += go[d] * vj[d];
                    const float ds = a[j] * (dp - dot) * scale;
                    float *dk = dkv ? dkv + (b * S + j) * 2 * C + h * D : NULL;
                    if (dk)
                        for (int64_t d = 0; d < D; d++) {
                            dk[d] += ds * qi[d];
                            dk[C + d] += a[j] * go[d]; /* dv */
                        }
                    if (dq)
                        for (int64_t d = 0; d < D; d++) dq[(b * T + i) * C + h * D + d] += ds * kj[d];
                }
            }
        }
}

/* The definition in plain loops with double accumulation, for tests. */
void pare_cross_attention_forward_ref(float *out, float *att, const float *q, const float *kv,
                                      const int32_t *src_lengths, int64_t B, int64_t T, int64_t S, int64_t C, int64_t H)
{
    const int64_t D = C / H;
    const double scale = 1.0 / sqrt((double)D);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const int64_t L = src_len(src_lengths, b, S);
                float *a = att + ((b * H + h) * T + i) * S;
                double mx = -INFINITY, sum = 0.0, s[L > 0 ? L : 1];
                for (int64_t j = 0; j < L; j++) {
                    double dotp = 0.0;
                    for (int64_t d = 0; d < D; d++)
                        dotp += (double)q[(b * T + i) * C + h * D + d] * (double)kv[(b * S + j) * 2 * C + h * D + d];
                    s[j] = dotp * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < L; j++) sum += s[j] = exp(s[j] - mx);
                for (int64_t j = 0; j < S; j++) a[j] = j < L ? (float)(s[j] / sum) : 0.0f;
                for (int64_t d = 0; d < D; d++) {
                    double o = 0.0;
                    for (int64_t j = 0; j < L; j++) o += s[j] / sum * (double)kv[(b * S + j) * 2 * C + C + h * D + d];
                    out[(b * T + i) * C + h * D + d] = (float)o;
                }
            }
}
