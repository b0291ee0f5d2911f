/* lrp.h — layer-wise relevance propagation rules (Bach et al. 2015; Ding et al. 2017), the ε-rule through
 * the ops of a transformer, as head_lrp.c applies them to score attention heads (Voita et al. 2019, §4.2).
 *
 * Relevance R flows from an op's output back to its inputs. For an affine map z_j = Σ_i w_ji x_i + b_j the
 * ε-rule is
 *
 *     R_i = Σ_j  w_ji x_i / (z_j + ε·sign(z_j)) · R_j
 *
 * which conserves relevance up to the bias and ε: Σ_i R_i = Σ_j (z_j − b_j) / (z_j + ε·sign z_j) · R_j
 * (sign(0) = +1). The other ops are read as affine maps with their nonlinear factors held at the values of
 * the forward (Ali et al. 2022 for LayerNorm and attention):
 *   - LayerNorm: y = γ ⊙ (x − μ) · r + β with r = 1/√(var + eps) held constant: w_ji = γ_j r (δ_ij − 1/C);
 *   - a sum z = a + b (residual): R_a = a/(z ± ε) R, R_b = b/(z ± ε) R;
 *   - attention: out_t = Σ_k P_tk v_k per head with the probabilities P held constant: all relevance goes
 *     to the values, none to queries and keys;
 *   - elementwise activations (GELU, ReLU, tanh), dropout at inference: R passes unchanged.
 *
 * Every rule *adds* into R_in (a value read by several ops collects relevance from all of them), rows
 * are independent, and all arithmetic is in double.
 *
 * Deliberately not here: the αβ-rule, relevance of the attention probabilities (to queries and keys).
 */
#ifndef PARE_PRUNE_LRP_H
#define PARE_PRUNE_LRP_H

#include <stdint.h>

/* z + ε·sign(z), sign(0) = +1 */
static inline double pare_lrp_stab(double z, double eps) { return z >= 0 ? z + eps : z - eps; }

/* Linear: x (M, K), W (N, K) row-major, z (M, N) its output (bias included), Rz (M, N) → Rx (M, K) += */
void pare_lrp_linear(double *Rx, const double *Rz, const float *x, const float *W, const float *z, int64_t M,
                     int64_t N, int64_t K, double eps);
/* LayerNorm over C: x, y (M, C), gain (C), ln_eps the normalisation's ε (inside the square root), eps the
 * rule's stabiliser; Ry → Rx += */
void pare_lrp_layernorm(double *Rx, const double *Ry, const float *x, const float *y, const float *gain, int64_t M,
                        int64_t C, double ln_eps, double eps);
/* z = a + b elementwise, n elements: Rz → Ra +=, Rb += (either may be NULL: that share is dropped) */
void pare_lrp_add(double *Ra, double *Rb, const double *Rz, const float *a, const float *b, const float *z, int64_t n,
                  double eps);
/* Attention of one example: P (H, Tq, Tk) the probabilities, v the values (Tk rows, stride vstride, head h
 * at columns h·D..), out (Tq, H·D), Rout → Rv += (same layout as v). */
void pare_lrp_attention(double *Rv, const double *Rout, const float *P, const float *v, int64_t vstride,
                        const float *out, int64_t H, int64_t Tq, int64_t Tk, int64_t D, double eps);

#endif
