/* loss.h — the loss kernels beside cross-entropy (nn.h): mean squared error, KL divergence with a
 * temperature, soft-label cross-entropy and the cosine embedding loss. llm.c style: outputs first,
 * inputs const, sizes last; forward returns the scalar, backward ADDS into gradients.
 *
 * They are the terms of knowledge distillation:
 *   - Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (2015): soft targets
 *     softmax(t/T) from the teacher's logits, the student's softmax(s/T), the term scaled by T² so its
 *     gradient keeps its size as T changes, mixed with the hard-label loss;
 *   - Sanh et al., "DistilBERT" (2019): L = α_ce·KL(T) + α_mlm·CE + α_cos·(1 − cos(h_s, h_t));
 *   - Jiao et al., "TinyBERT" (2020): MSE between (projected) hidden states and between attention
 *     probabilities.
 *
 * Rows and padding: a loss sees M = B·T rows of N (or V) columns. lengths (B) marks the valid rows
 * (row b·T + t is valid iff t < lengths[b]); NULL = every row valid. Sequence-level rows (one per
 * sequence) pass T = 1, lengths = NULL. Every loss is the mean of a per-row loss over the valid rows,
 * written to losses (M) (0 for padded rows); no valid row gives 0 and no gradient.
 *
 *   MSE      row = Σ_j (a_j − b_j)² / N          mean = Σ over valid elements / (rows·N), as
 *                                                 torch.nn.functional.mse_loss(reduction="mean")
 *   KL       row = T² Σ_j p_j (log p_j − log q_j), p = softmax(t/T) (target logits t), q = softmax(s/T)
 *            mean over rows = torch's kl_div(log q, log p, log_target=True, reduction="batchmean")·T²
 *   KL rev.  row = T² Σ_j q_j (log q_j − log p_j): the same two distributions, the student's first
 *   soft CE  row = −Σ_j y_j log softmax(s)_j, y a (row-stochastic) probability target (soft labels)
 *   cosine   row = 1 − a·b / (|a| |b|); a row where |a| or |b| is below 1e-8 has cosine 0 (row loss 1)
 *            and no gradient: the direction of a zero vector is undefined, and 1/|a| would be huge
 *            (torch clamps the norms by eps instead, which gives the same loss and a gradient ~1e8).
 *
 * Gradients: d(mean)/d(input) for both arguments, so a "target" that is itself a trained value (a
 * learnt projection of the teacher's or student's hidden states) is trained too. Pass NULL for a
 * gradient that is not needed. dloss is d(total)/d(returned mean), the weight of the term.
 *
 * Sums over rows are done serially in double (the per-row values in parallel): the same bits for any
 * thread count, as pare_crossentropy_forward.
 *
 * Deliberately not here: reduction="sum" or "none" (the per-row losses are in `losses`), label
 * smoothing (a soft target), Huber/L1 losses.
 */
#ifndef PARE_LOSS_H
#define PARE_LOSS_H

#include <stdint.h>

/* losses (B·T); a, b (B·T, N). Returns the mean over valid elements. */
float pare_mse_forward(float *losses, const float *a, const float *b, const int32_t *lengths, int64_t B, int64_t T,
                       int64_t N);
/* da, db (B·T, N) += dloss · ±2 (a − b) / (rows·N); either may be NULL. */
void pare_mse_backward(float *da, float *db, const float *a, const float *b, const int32_t *lengths, float dloss,
                       int64_t B, int64_t T, int64_t N);

/* losses (B·T); s student logits (B·T, V), t target logits (B·T, V); temperature > 0. Returns the mean
 * over valid rows of T²·KL(softmax(t/T) || softmax(s/T)). */
float pare_kldiv_forward(float *losses, const float *s, const float *t, float temperature, const int32_t *lengths,
                         int64_t B, int64_t T, int64_t V);
/* ds (B·T, V) += dloss/rows · T (q − p);  dt += dloss/rows · T p ⊙ (log p − log q − KL_row/T²). */
void pare_kldiv_backward(float *ds, float *dt, const float *s, const float *t, float temperature,
                         const int32_t *lengths, float dloss, int64_t B, int64_t T, int64_t V);

/* The reverse direction, the student's distribution first: FastBERT's D_KL(p_s, p_t) (Liu et al. 2020), the
 * "reverse KL" of MiniLLM (Gu et al. 2024), mode-seeking where the forward KL is mass-covering.
 *   row = T² Σ_j q_j (log q_j − log p_j), q = softmax(s/T) (student logits s), p = softmax(t/T)
 * = torch's kl_div(log p, log q, log_target=True, reduction="batchmean")·T². Same arguments and conventions
 * as pare_kldiv_forward (s first, the target t second); returns the mean over valid rows. */
float pare_kldiv_reverse_forward(float *losses, const float *s, const float *t, float temperature, const int32_t *lengths,
                                 int64_t B, int64_t T, int64_t V);
/* ds (B·T, V) += dloss/rows · T q ⊙ (log q − log p − KL_row/T²);  dt += dloss/rows · T (p − q). */
void pare_kldiv_reverse_backward(float *ds, float *dt, const float *s, const float *t, float temperature,
                                 const int32_t *lengths, float dloss, int64_t B, int64_t T, int64_t V);

/* losses (B·T); s logits (B·T, V), y target probabilities (B·T, V). Returns the mean over valid rows. */
float pare_soft_xent_forward(float *losses, const float *s, const float *y, const int32_t *lengths, int64_t B,
                             int64_t T, int64_t V);
/* ds += dloss/rows · ((Σ_j y_j) softmax(s) − y);  dy += dloss/rows · (−log softmax(s)). */
void pare_soft_xent_backward(float *ds, float *dy, const float *s, const float *y, const int32_t *lengths, float dloss,
                             int64_t B, int64_t T, int64_t V);

/* losses (B·T); a, b (B·T, N). Returns the mean over valid rows of 1 − cos(a, b). */
float pare_cosine_forward(float *losses, const float *a, const float *b, const int32_t *lengths, int64_t B, int64_t T,
                          int64_t N);
/* da += dloss/rows · −(b/(|a||b|) − cos·a/|a|²), db likewise with a and b swapped. */
void pare_cosine_backward(float *da, float *db, const float *a, const float *b, const int32_t *lengths, float dloss,
                          int64_t B, int64_t T, int64_t N);

/* Valid rows among B·T (lengths NULL: B·T). */
int64_t pare_loss_rows(const int32_t *lengths, int64_t B, int64_t T);

#endif
