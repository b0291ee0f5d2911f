/* qat.h — fake quantization for quantization-aware training: forward on an integer grid, backward by
 * the straight-through estimator, with the LSQ gradient for learned scales (Esser et al., 2020).
 *
 *   forward   y = s · clamp(round(x / s), qmin, qmax)                (round half to even)
 *   backward  dx += dy where qmin ≤ x/s ≤ qmax, else 0                (STE with clipping)
 *             ds += g · Σ dy · (round(x/s) − x/s  inside,  qmin or qmax  outside)   (LSQ)
 *
 * Scales are per row (per output channel of W, per_row = 1) or one per tensor (per_row = 0).
 * What it does not do: asymmetric grids (QAT here is symmetric), per-token activation scales.
 */
#ifndef PARE_QAT_H
#define PARE_QAT_H

#include <stdint.h>

void pare_fq_forward(float *y, const float *x, const float *scale, int per_row, int64_t rows, int64_t cols, int qmin,
                     int qmax);
/* dx and dscale may be NULL (not needed); both are added into. */
void pare_fq_backward(float *dx, float *dscale, const float *dy, const float *x, const float *scale, int per_row,
                      int64_t rows, int64_t cols, int qmin, int qmax, float g);
/* Fixed (data-following) scales for QAT: wscale[n] = max|W[n,:]| / qmax; ascale = an exponential moving
 * average (momentum 0.9; the first call sets it) of max|x| / qmax. A zero row gets scale 1. */
/* The two halves of pare_fq_observe: the weights' scales (N), and the activations' moving scale (1) over
 * len values. */
void pare_fq_observe_weight(float *wscale, const float *W, int64_t N, int64_t K, int bits);
void pare_fq_observe_act(float *ascale, const float *x, int64_t len, int bits);
void pare_fq_observe(float *wscale, float *ascale, const float *W, const float *x, int64_t M, int64_t N, int64_t K,
                     int bits);
#endif
