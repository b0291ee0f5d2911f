/* gemm_half.h — the Linear on 16-bit float weights: bf16 and f16 storage, f32 accumulation.
 *
 *   y(M,N) = r(x)(M,K) · W(N,K)^T + bias(N)       W stored in dt (bf16 or f16), r(x) = x rounded to dt
 *
 * Both operands are values of dt (the weights stored so, the activations rounded inside the call, round to
 * nearest even), their products are exact in f32 (8- or 11-bit significands), and the sums are f32: what a
 * bf16 (or f16) GEMM with f32 accumulation computes. The output and the bias are f32.
 *
 *     pare_half_weight w;
 *     PARE_TRY(pare_half_weight_make(&w, W, N, K, PARE_BF16, 1));     // W (N,K) f32; w keeps its own copy
 *     size_t ws = pare_linear_half_workspace(&w, M);                  // scratch for M rows
 *     PARE_TRY(pare_linear_half(y, x, &w, bias, M, work, ws));
 *     pare_half_weight_free(&w);
 *
 * Kernels, chosen when the weight is made (pare_half_weight_impl says which, for provenance):
 *   onednn   oneDNN 2.6's inner product with dt src and weights, f32 dst and bias, on the weights packed
 *            once into its blocked layout (gemm_onednn.c, as the f32 and int8 Linears), where oneDNN runs dt's
 *            products in hardware: bf16 on AVX512-BF16 (vdpbf16ps: "brgemm:avx512_core_bf16") or AMX. On
 *            AVX-512 without BF16 oneDNN only emulates bf16 (its generic GEMM, 2.6× slower than the widen
 *            kernel there), and oneDNN 2.6 has no f16 inner product on the CPUs we know: both take the next
 *            path.
 *   widen    pare's portable kernel: x rounded onto dt's grid in f32, W widened to f32 a tile of rows at a
 *            time into the workspace, and the f32 GEMM (pare_sgemm) on each tile. The storage is 2 bytes
 *            per weight; the arithmetic is f32 on the same values (the "f16 storage, f32 compute" of a CPU
 *            without f16 arithmetic, and bf16 on a CPU without AVX-512).
 *   ref      pare_linear_half_ref: the same rounded values, products and sums in double, for tests.
 *
 * Numerics. Every path multiplies the same rounded values exactly and differs only in the order of its f32
 * additions, so against the reference (an almost exact sum) each element lies within the bound of any
 * summation order of K + 1 terms (Higham, Accuracy and Stability of Numerical Algorithms, §4.2):
 *   |y − y_ref| <= (K + 2) · 2^-24 · (Σ_k |r(x_k) W_k| + |bias|)  (+ K · 2^-126: vdpbf16ps flushes subnormal
 *   products to zero)
 * and in practice ~√K times less. tests/test_half.c asserts this bound for each kernel.
 *
 * Inputs: f32 activations (rounded inside), or activations already in the weights' dtype
 * (pare_linear_half_in16: a bf16 value of the graph into bf16 weights, read as they are).
 *
 * Training (mixed precision with f32 master weights, as PyTorch AMP / Megatron run bf16):
 *   backward   dx(M,K) += r(dy)(M,N) · W(N,K)         dW(N,K) += r(dy)^T · r(x)        dbias(N) += Σ_m dy
 *              r(dy) the output's gradient rounded to dt; W the stored 16-bit weights; r(x) the input rounded as
 *              forward rounded it; products exact in f32, sums in f32; the bias gradient from the f32 dy. dW is
 *              the gradient of the f32 master (the optimizer updates the master).
 *              onednn: two oneDNN matmuls on dt operands with an f32 destination and a sum post-op (it adds into
 *              the gradients), where oneDNN runs dt natively (bf16: "brg:avx512_core_bf16"); widen: the operands
 *              rounded / widened onto dt's grid in f32 and pare_sgemm; ref: the same rounded values in double.
 *   refresh    after an optimizer step: the stored weights rounded again from the updated master and oneDNN's
 *              packed copy reordered in place (no allocation), the same bits as a fresh make.
 *   Bound: as forward's, per element, with N + 1 terms for dx (the products and the value dx held) and M + 1 for
 *   dW; dbias is f32 with M + 1 terms.
 *
 * Deliberately not here: bf16 outputs, loss scaling (f16 training is refused above: graph/fmt_half.c), f16
 * arithmetic (AVX512-FP16), GELU post-ops.
 *
 * Entry points: pare_half_weight_make / _refresh / _free / _bytes / _packed_bytes / _impl, pare_linear_half_workspace,
 * pare_linear_half (the kernel chosen at make), pare_linear_half_in16 (16-bit input), pare_linear_half_widen (the
 * portable one, any weight), pare_linear_half_ref; pare_linear_half_backward / _backward_widen / _backward_ref /
 * _backward_impl.
 */
#ifndef PARE_GEMM_HALF_H
#define PARE_GEMM_HALF_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

struct pare_onednn_ip;

typedef struct pare_half_weight {
    pare_dtype dtype;              /* PARE_BF16 or PARE_F16 */
    uint16_t *w;                   /* (N, K) row-major: the stored weights */
    struct pare_onednn_ip *packed; /* w in oneDNN's blocked layout + primitive cache, or NULL: the widen kernel */
    int64_t N, K;
} pare_half_weight;

/* W (N,K) f32 rounded to dt (PARE_BF16 or PARE_F16) into out; with pack, also packed for oneDNN's inner
 * product when oneDNN has one for dt on this CPU (else out->packed stays NULL and the widen kernel runs).
 * PARE_EINVAL for a bad dtype or N, K < 1; PARE_ENUMERIC naming the element when W holds NaN or ±Inf, or a
 * value beyond dt's range (f16: |w| > 65504); PARE_ENOMEM. On failure out is left empty (free is safe). */
pare_status pare_half_weight_make(pare_half_weight *out, const float *W, int64_t N, int64_t K, pare_dtype dt, int pack);
/* The stored weights made again from W (N,K) f32 (the updated master): rounded into the same memory and, when packed,
 * reordered into oneDNN's packed copy in place; the same bits as pare_half_weight_make(W) would give. No checks of W
 * (a non-finite master rounds to NaN / Inf: the next forward's loss says so). PARE_EINTERNAL if oneDNN fails. */
pare_status pare_half_weight_refresh(pare_half_weight *w, const float *W);
void pare_half_weight_free(pare_half_weight *w); /* safe twice, and on a zeroed struct */
/* Bytes of the stored weights: 2·N·K. */
size_t pare_half_weight_bytes(const pare_half_weight *w);
/* Bytes of oneDNN's packed copy (0 without one): memory beside the stored weights. */
size_t pare_half_weight_packed_bytes(const pare_half_weight *w);
/* What pare_linear_half runs for w: oneDNN's implementation ("brgemm:avx512_core_bf16") or "pare:widen". */
const char *pare_half_weight_impl(const pare_half_weight *w);

/* Scratch bytes pare_linear_half needs for M rows (the rounded activations, oneDNN's scratchpad or the
 * widened weight tiles of each thread). */
size_t pare_linear_half_workspace(const pare_half_weight *w, int64_t M);
/* y (M,N) f32 = r(x) (M,K) · W^T + bias (N, may be NULL); M = 0 does nothing. work: ws bytes, 64-byte
 * aligned, at least pare_linear_half_workspace(w, M) (a smaller one: PARE_EINVAL). y must not alias x. */
pare_status pare_linear_half(float *y, const float *x, const pare_half_weight *w, const float *bias, int64_t M,
                             void *work, size_t ws);
/* y (M,N) f32 = xh (M,K) · W^T + bias with xh already in w's dtype (a bf16 activation value into bf16 weights):
 * nothing to round, the same result as pare_linear_half on the widened xh. Same workspace rule. */
pare_status pare_linear_half_in16(float *y, const uint16_t *xh, const pare_half_weight *w, const float *bias, int64_t M,
                                  void *work, size_t ws);
/* The widen kernel on any weight (packed or not), same workspace rule. */
pare_status pare_linear_half_widen(float *y, const float *x, const pare_half_weight *w, const float *bias, int64_t M,
                                   void *work, size_t ws);
/* Reference: the same rounded values, sums in double. */
void pare_linear_half_ref(float *y, const float *x, const pare_half_weight *w, const float *bias, int64_t M);

/* Backward of pare_linear_half, adding into the gradients (each may be NULL: not wanted):
 *   dx (M,K) += r(dy) (M,N) · W (N,K)      dw (N,K) += r(dy)^T · r(x) (M,K)      dbias (N) += Σ_m dy[m, :]
 * x is the forward's input: f32 x (rounded here) or xh already in w's dtype (give exactly one; neither is read
 * without dw). oneDNN's bf16 matmuls where it runs dt natively, else the widen path; its scratch (2 or 4 bytes per
 * element of dy and x, and W widened on the widen path) is allocated per call. PARE_ENOMEM (nothing added) without
 * it; PARE_EINVAL for bad arguments. Any thread count; the result does not depend on it beyond f32 summation order. */
pare_status pare_linear_half_backward(float *dx, float *dw, float *dbias, const float *dy, const float *x, const uint16_t *xh,
                                      const pare_half_weight *w, int64_t M);
/* The widen path on any weight: the rounded operands in f32, pare_sgemm. */
pare_status pare_linear_half_backward_widen(float *dx, float *dw, float *dbias, const float *dy, const float *x,
                                            const uint16_t *xh, const pare_half_weight *w, int64_t M);
/* Reference: the same rounded operands, sums in double (each sum then added to the gradient in double); no scratch. */
void pare_linear_half_backward_ref(float *dx, float *dw, float *dbias, const float *dy, const float *x, const uint16_t *xh,
                                   const pare_half_weight *w, int64_t M);
/* What pare_linear_half_backward runs for w at M rows: oneDNN's matmul implementation ("brg:avx512_core_bf16") or
 * "pare:widen"; writes buf. */
const char *pare_linear_half_backward_impl(const pare_half_weight *w, int64_t M, char *buf, size_t n);

#endif
