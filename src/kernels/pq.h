/* pq.h — product quantization (PQ) of a Linear weight, and the Linear layer that runs on it.
 *
 * Jégou, Douze & Schmid 2011 ("Product quantization for nearest neighbor search") as Stock et al. 2020 ("And
 * the bit goes down") and Fan et al. 2020 ("Training with Quantization Noise for Extreme Model Compression")
 * apply it to weights: the weight W (N, K) is cut into N·K/d subvectors of d consecutive input features,
 * W[n, j·d .. j·d + d), j < K/d; one codebook of k centroids (k, d) per layer is learned by k-means over them,
 * and each subvector is stored as the uint8 index of its nearest centroid.
 *
 *     Ŵ[n, j·d + e] = C[codes[n, j], e]                      codes (N, K/d) uint8, C (k, d) f32 or f16
 *     bytes = N·K/d (codes) + k·d·4 (f32 codebook) or k·d·2 (f16)          bits/weight = 8·bytes / (N·K)
 *
 * The Linear kernel is a lookup-table GEMM (what PQ's "asymmetric distance computation" does for search):
 *
 *     for each activation row x (K):  T[j, c] = Σ_e x[j·d + e] · C[c, e]       (K/d, k): K·k multiply-adds
 *                                    y[n]    = bias[n] + Σ_j T[j, codes[n, j]] N·K/d table reads
 *
 * Why the table and not decode-in-registers: the table is built once per row and shared by all N outputs, so
 * a row costs K·k + N·K/d operations against the dense N·K — fewer whenever N > k·d/(d − 1) (BERT-base's
 * 768 × 3072 at k = 256, d = 8: 2.7× fewer), and the weight read per row is N·K/d bytes of codes instead of
 * N·K f32. Decoding into registers would do the dense N·K FMAs on top of the gathers. For small N (the tiny
 * test models, N < k) the table costs more than the dense product; it is still the kernel, for a single path
 * whose numbers are the format's. The sums run in another order than the reference's, so the two agree to
 * rounding (tests/test_pq.c bounds it by K·ε·Σ|x·Ŵ|), not bit for bit.
 *
 * k-means (pare_kmeans): our own, not GSL's (GSL has none) — Lloyd's algorithm with a seeded k-means++
 * initialisation (Arthur & Vassilvitskii 2007) and a fixed number of iterations, so the same seed gives the
 * same codebook on every machine and thread count: distances and sums in double, ties to the lowest index,
 * an empty cluster re-seeded with the point farthest from its centroid. The sum of squared errors never
 * grows from one iteration to the next (each step — means for fixed assignments, nearest centroids for fixed
 * means, re-seeding an empty cluster on a point — cannot increase it); err[] records it.
 *
 *     pare_pq_weight w;
 *     PARE_TRY(pare_pq_quantize(&w, W, N, K, 8, 256, 20, 1, 0, NULL));   // d = 8, k = 256, 20 iters, seed 1, f32
 *     void *ws = pare_alloc(pare_pq_workspace(&w, M));
 *     PARE_TRY(pare_linear_pq(y, x, &w, bias, M, ws));                  // y (M, N)
 *     pare_pq_free(&w);
 *
 * Deliberately not here: codes packed below 8 bits (k ≤ 16 would fit 4), activation-weighted k-means (Stock et
 * al.'s ||x(W − Ŵ)||, which needs calibration inputs), codebooks per column block, a backward pass (train the f32
 * model under Quant-Noise, then quantize), SIMD gathers of the table (plain C; the compiler vectorises the table).
 */
#ifndef PARE_KERNELS_PQ_H
#define PARE_KERNELS_PQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define PARE_PQ_MAX_K 256

typedef struct pare_pq_weight {
    int64_t N, K;      /* the weight's shape (N, K) */
    int64_t d;         /* block: input features per subvector; divides K */
    int64_t k;         /* centroids, 1..256 */
    int f16;           /* 1: the codebook is stored as fp16 (cb16), 0: f32 (cb) */
    uint8_t *codes;    /* (N, K/d) */
    float *cb;         /* (k, d) f32 codebook, NULL when f16 */
    uint16_t *cb16;    /* (k, d) fp16 bits, NULL when f32 */
} pare_pq_weight;

/* k-means of the n points X (n, d) into k centroids (k, d), assign (n) the index of each point's centroid.
 * k-means++ from seed, then `iters` Lloyd iterations; err (iters + 1) if not NULL: the sum of squared errors
 * after the initial assignment and after each iteration (non-increasing). PARE_EINVAL for k outside
 * [1, min(n, 256)], d < 1 or iters < 0; PARE_ENOMEM. */
pare_status pare_kmeans(float *centroids, uint8_t *assign, double *err, const float *X, int64_t n, int64_t d, int64_t k,
                        int iters, uint64_t seed);
/* The same iterations from the centroids given (k, d) instead of k-means++ (a warm start: Quant-Noise refreshing
 * its codebook as the weights train); err (iters + 1) as above. */
pare_status pare_kmeans_from(float *centroids, uint8_t *assign, double *err, const float *X, int64_t n, int64_t d,
                             int64_t k, int iters);
/* Nearest centroid of each point (ties: the lowest index); returns the sum of squared errors. */
double pare_pq_assign(uint8_t *assign, const float *X, int64_t n, int64_t d, const float *centroids, int64_t k);

/* Product-quantize W (N, K): blocks of d inputs, k centroids, k-means with iters and seed; f16: store the
 * codebook in fp16 (codes then re-assigned to the rounded centroids). err as pare_kmeans's (may be NULL).
 * PARE_EINVAL, naming the value, when d does not divide K, k is outside [1, min(N·K/d, 256)]. */
pare_status pare_pq_quantize(pare_pq_weight *out, const float *W, int64_t N, int64_t K, int64_t d, int64_t k, int iters,
                             uint64_t seed, int f16, double *err);
void pare_pq_free(pare_pq_weight *w); /* safe twice */
/* The codebook as f32 (k, d): w->cb, or the f16 values widened into buf (k·d floats). */
const float *pare_pq_codebook(const pare_pq_weight *w, float *buf);
/* Ŵ (N, K), the dequantized weight. */
void pare_pq_dequantize(float *W, const pare_pq_weight *w);
/* Bytes stored: codes plus codebook (exact). */
size_t pare_pq_bytes(const pare_pq_weight *w);

/* y (M, N) = x (M, K) · Ŵ^T + bias (may be NULL): the lookup-table kernel. ws: pare_pq_workspace bytes. */
size_t pare_pq_workspace(const pare_pq_weight *w, int64_t M);
pare_status pare_linear_pq(float *y, const float *x, const pare_pq_weight *w, const float *bias, int64_t M, void *ws);
/* The reference: Ŵ dequantized, then the naive f32 Linear (pare_linear_f32_ref). */
pare_status pare_linear_pq_ref(float *y, const float *x, const pare_pq_weight *w, const float *bias, int64_t M);

#endif
