/* gemm.h — matrix products per storage format: f32 and int8 (with per-token × per-channel scales).
 *
 * Conventions (row-major everywhere; sizes are int64_t; outputs first, inputs const, sizes last):
 *   pare_sgemm:   C(M,N) = alpha · op(A)(M,K) · op(B)(K,N) + beta · C      (BLAS semantics, row-major)
 *   Linear:       y(M,N) = x(M,K) · W(N,K)^T + bias(N)                      (W stored like nn.Linear)
 *
 * Every fast kernel has a plain `_ref` twin that the tests compare against. The fast path is chosen at
 * run time (oneDNN's JIT dispatches on the CPU it finds; our own code checks pare_cpu_get()).
 */
#ifndef PARE_GEMM_H
#define PARE_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* ---- f32 ---- */
void pare_sgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void pare_sgemm_ref(int transa, int transb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* y(M,N) = x(M,K) · Ŵ(N,K)^T + bias(N) for a weight stored compressed (qblock's int4 groups, wq's kinds): Ŵ is
 * decoded panel by panel, decode(dst, w, n0, rows) writing rows n0..n0+rows of Ŵ (rows × K f32) into a slot of
 * the workspace ws (one slot of pmax × K floats per processor: pare_sgemm_panels_workspace), and each panel goes
 * through pare_sgemm. As few panels as fit pmax rows, their number a multiple of the team (equal shares), rows a
 * multiple of 16; inside the team each pare_sgemm runs on its calling thread (oneDNN sees omp_in_parallel()),
 * with a team of one the region is inactive and pare_sgemm may use the threads itself. bias may be NULL. */
typedef void (*pare_panel_decode)(float *dst, const void *w, int64_t n0, int64_t rows);
void pare_sgemm_panels(float *y, const float *x, const float *bias, int64_t M, int64_t N, int64_t K, int64_t pmax,
                       pare_panel_decode decode, const void *w, void *ws);
size_t pare_sgemm_panels_workspace(int64_t K, int64_t pmax);

/* y(M,N) = x(M,K) · W(N,K)^T + bias(N); bias may be NULL. */
void pare_linear_f32(float *y, const float *x, const float *W, const float *bias, int64_t M, int64_t N, int64_t K);
void pare_linear_f32_ref(float *y, const float *x, const float *W, const float *bias, int64_t M, int64_t N, int64_t K);
/* Backward of pare_linear_f32; adds into dx (M,K), dW (N,K), dbias (N); any of them may be NULL. */
void pare_linear_f32_backward(float *dx, float *dW, float *dbias, const float *dy, const float *x, const float *W,
                              int64_t M, int64_t N, int64_t K);

/* ---- f32 on packed weights (gemm_f32_packed.c) ----
 *
 * For inference: W (N,K) is reordered once into oneDNN's preferred blocked layout and the Linear runs
 * oneDNN's inner-product primitive on it with the bias (and optionally GELU) fused. Faster than
 * pare_linear_f32 at the BERT shapes (+5–25% at M = 128 on 1 thread, +30–130% on 2, 2× at M = 7; the same
 * at M = 1, which is memory-bound; docs/kernels.md).
 *
 *     pare_f32_packed *wp;
 *     PARE_TRY(pare_f32_weight_pack(&wp, W, N, K));          // once; W may be freed afterwards
 *     PARE_TRY(pare_linear_f32_packed(y, x, wp, bias, M));   // any M, any thread, any number of times
 *     pare_f32_packed_free(wp);
 *
 * The handle owns the packed copy (pare_f32_packed_bytes: N, K padded to the kernel's blocks) and a
 * mutex-guarded cache of primitives, one per (M, thread count, bias?, gelu?), created on first use
 * (~0.1–1 ms, JIT). It holds no caller pointer. Calls on one handle may run concurrently. */
typedef struct pare_f32_packed pare_f32_packed; /* opaque: reordered weights + per-M primitive cache */
/* PARE_EINVAL for N, K < 1 or W NULL; PARE_ENOMEM; PARE_EINTERNAL if oneDNN fails. */
pare_status pare_f32_weight_pack(pare_f32_packed **out, const float *W, int64_t N, int64_t K);
void pare_f32_packed_free(pare_f32_packed *p); /* NULL ok */
size_t pare_f32_packed_bytes(const pare_f32_packed *p);
void pare_f32_packed_shape(const pare_f32_packed *p, int64_t *N, int64_t *K);
/* oneDNN's implementation for the packed layout, e.g. "brgemm:avx512_core" (for provenance). */
const char *pare_f32_packed_impl(const pare_f32_packed *p);
/* The implementation packing (N, K) weights would give, without packing ("unknown" if none). */
const char *pare_f32_pack_impl_for(int64_t N, int64_t K, char *buf, size_t n);
/* y(M,N) = x(M,K) · W^T + bias; bias may be NULL; M = 0 does nothing. */
pare_status pare_linear_f32_packed(float *y, const float *x, const pare_f32_packed *w, const float *bias, int64_t M);
/* y(M,N) = gelu(x(M,K) · W^T + bias), GELU in its tanh form as pare_gelu_forward (oneDNN's
 * eltwise_gelu_tanh post-op; agrees with pare_gelu_forward to ~1e-6 relative). */
pare_status pare_linear_f32_packed_gelu(float *y, const float *x, const pare_f32_packed *w, const float *bias,
                                        int64_t M);
/* y(M,N) = act(x(M,K) · W^T + bias) with act the pare_epilogue (kernels/fuse_ops.h: none, GELU tanh, GELU erf,
 * ReLU) as oneDNN's eltwise post-op: the fused Linear+activation of the fuse pass (docs/fusion.md). */
pare_status pare_linear_f32_packed_act(float *y, const float *x, const pare_f32_packed *w, const float *bias, int64_t M,
                                       int epilogue);

/* ---- int8 ---- */

/* Weights quantized per output channel, symmetric: W[n,k] ≈ q[n,k] · scale[n], q in [-127, 127]. */
typedef struct pare_i8_weight {
    int8_t *q;          /* (N, K) */
    float *scale;       /* (N) */
    int32_t *colsum;    /* (N) Σ_k q[n,k], for the u8 zero-point compensation of VNNI kernels */
    void *packed;       /* kernel-private reordered copy + primitive cache (may be NULL; see below) */
    int64_t N, K;
} pare_i8_weight;

/* Quantize W (N,K) per output channel (max-abs, symmetric). Allocates; free with pare_i8_weight_free.
 * PARE_ENUMERIC (naming the row) if W holds NaN or Inf. */
pare_status pare_i8_weight_quantize(pare_i8_weight *out, const float *W, int64_t N, int64_t K);
void pare_i8_weight_free(pare_i8_weight *w); /* safe twice */
/* Bytes of storage the format needs (q + scale), as reported in size tables. */
size_t pare_i8_weight_bytes(const pare_i8_weight *w);

/* Per-token (per-row) symmetric quantization of activations: x[m,k] ≈ q[m,k] · scale[m]. */
void pare_quantize_rows_s8(int8_t *q, float *scale, const float *x, int64_t M, int64_t K);

/* C(M,N) = A(M,K) · B(N,K)^T in int32. */
pare_status pare_gemm_s8s8s32(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K);
void pare_gemm_s8s8s32_ref(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K);

/* Dynamic int8 Linear: activations quantized per token at run time, int8 GEMM with int32
 * accumulation, then y[m,n] = acc[m,n] · sx[m] · w->scale[n] + bias[n].
 * workspace: at least pare_linear_i8_workspace(M, N, K) bytes, 64-byte aligned. */
size_t pare_linear_i8_workspace(int64_t M, int64_t N, int64_t K);
pare_status pare_linear_i8_dynamic(float *y, const float *x, const pare_i8_weight *w, const float *bias, int64_t M,
                                   void *workspace);
void pare_linear_i8_dynamic_ref(float *y, const float *x, const pare_i8_weight *w, const float *bias, int64_t M);

/* ---- int8 additions (gemm_i8*.c: see gemm_i8_internal.h for which file holds what) ----
 *
 * Which int8 GEMM pare_linear_i8_dynamic (and pare_gemm_s8s8s32) use on this machine, chosen at run
 * time from oneDNN's effective ISA:
 *   PARE_I8_PATH_U8S8       VNNI: activations shifted to u8 by +128, oneDNN u8·s8 GEMM, the shift removed
 *                           exactly with -128·colsum in the dequantization pass (the fast path)
 *   PARE_I8_PATH_S8S8       VNNI, K too large for the shifted sums to fit int32: oneDNN s8·s8 GEMM
 *   PARE_I8_PATH_S8S8_MADD  no VNNI: oneDNN's int8 GEMMs saturate in int16 there, so pare's own exact
 *                           kernel (int16 vpmaddwd on AVX2, plain C otherwise) */
typedef enum pare_i8_path { /* append-only */
    PARE_I8_PATH_U8S8 = 0,
    PARE_I8_PATH_S8S8,
    PARE_I8_PATH_S8S8_MADD,
    PARE_I8_PATH_COUNT
} pare_i8_path;
pare_i8_path pare_linear_i8_path(int64_t K);
const char *pare_i8_path_name(pare_i8_path p); /* "u8s8-vnni", "s8s8-vnni", "s8s8-madd" */

/* Largest K for which int32 accumulation of int8 products is exact (K·128·128 < 2^31).
 * pare_gemm_s8s8s32 and pare_linear_i8_dynamic return PARE_EINVAL above it. */
#define PARE_I8_MAX_K ((int64_t)131071)

/* Per-token quantization that also returns the status: PARE_ENUMERIC naming the first row that holds
 * NaN or Inf (pare_quantize_rows_s8 instead gives such a row scale NaN and q = 0). */
pare_status pare_quantize_rows_s8_checked(int8_t *q, float *scale, const float *x, int64_t M, int64_t K);
/* Reference twin of pare_quantize_rows_s8 (scalar; bit-identical results). */
void pare_quantize_rows_s8_ref(int8_t *q, float *scale, const float *x, int64_t M, int64_t K);

/* Packed int8 weights. On the u8s8-vnni path pare_i8_weight_quantize also reorders q once (w->packed,
 * opaque, freed by pare_i8_weight_free; a weight may be used from several threads at once) for the
 * kernel gemm_i8.h's pare_i8_kernel_set chose: pare's own AVX512-VNNI kernel (48-column panels, the
 * dequantization fused; the default where the CPU has AVX512-VNNI) or the blocked layout of oneDNN's
 * int8 inner-product primitive (with a per-(M, threads) primitive cache). pare_linear_i8_dynamic then
 * runs that instead of dnnl_gemm_u8s8s32, which repacks W on every call; the same bits either way. If
 * packing is impossible, packed stays NULL and the GEMM path is used. q must not be changed after
 * quantization (the packed copy is derived from it). */
/* Bytes of the packed copy (0 if none): memory on top of pare_i8_weight_bytes. */
size_t pare_i8_weight_packed_bytes(const pare_i8_weight *w);
/* What pare_linear_i8_dynamic runs for w on this machine, for provenance: "pare:vnni-8x48" (pare's
 * kernel), oneDNN's implementation of the packed primitive (e.g. "brgemm:avx512_core_vnni"), else
 * "gemm:u8s8s32", "gemm:s8s8s32" or "pare:s8s8-madd". */
const char *pare_i8_weight_impl(const pare_i8_weight *w);

/* ---- threads and backends ---- */
void pare_set_num_threads(int n);
int pare_get_num_threads(void);
/* "onednn 2.6.3 (avx512_core_bf16), openblas 0.3.21" into buf. */
const char *pare_kernel_backends(char *buf, size_t n);

#endif
