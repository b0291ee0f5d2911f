/* token_select.h — physical token pruning between layers (PoWER-BERT, Goyal et al. 2020, "PoWER-BERT:
 * Accelerating BERT Inference via Progressive Word-vector Elimination", with a static retention
 * configuration): score each token by the attention it received, keep [CLS] and the best, gather their
 * rows into a shorter sequence.
 *
 * Shapes (letters of core/tensor.h): Tp positions per sequence before the select, Tk after (Tk <= Tp),
 * H heads of the attention whose probabilities score the tokens, C channels.
 *
 *   significance  s[b, j] = Σ_h Σ_{i < L} P[b, h, i, j]       j < L = lengths[b] (the valid tokens at Tp)
 *   kept          k_b = min(L, Tk) tokens: token 0 ([CLS]) and the k_b − 1 highest s among 1..L−1 (ties to
 *                 the lower index), in their original order
 *   out[b, t]     = x[b, idx[b, t]] for t < k_b, zero rows after (padding: the next layer's lengths are
 *                 min(L, Tk), graph op TOKEN_LENGTHS)
 *
 * Backward: the selection is piecewise constant in P (gradient 0 almost everywhere), so dx[b, idx[t]] +=
 * dout[b, t] (a scatter); nothing flows into P.
 */
#ifndef PARE_TOKEN_SELECT_H
#define PARE_TOKEN_SELECT_H

#include <stddef.h>
#include <stdint.h>

/* Scratch bytes of pare_token_select_forward at Tp. */
size_t pare_token_select_work_bytes(int64_t Tp);
/* out (B, Tk, C); idx (B, Tk): the source position of each kept row as a float (exact below 2^24), −1 for
 * padding rows; x (B, Tp, C); att (B, H, Tp, Tp) softmax probabilities (rows of padded queries ignored);
 * lengths (B) in [1, Tp]; work: pare_token_select_work_bytes(Tp). */
void pare_token_select_forward(float *out, float *idx, const float *x, const float *att, const int32_t *lengths,
                               int64_t B, int64_t Tp, int64_t Tk, int64_t H, int64_t C, void *work);
/* dx (B, Tp, C) += the rows of dout (B, Tk, C) at their source positions (idx from the forward). */
void pare_token_select_backward(float *dx, const float *dout, const float *idx, int64_t B, int64_t Tp, int64_t Tk,
                                int64_t C);

#endif
