/* gemm_i8_internal.h — private to the files of the int8 Linear, what one of them defines and another
 * calls. They were one file (gemm_i8.c) and are split along its sections:
 *   gemm_i8.c           the int8 Linears: dynamic per token, the activation modes, LLM.int8()
 *   gemm_i8_rows.c      per-row kernels (generic, AVX-512) and the per-token quantizer
 *   gemm_i8_weight.c    int8 weights: per channel, per tensor, from given integers
 *   gemm_i8_products.c  the exact int32 products: pare's kernel without VNNI, oneDNN's GEMMs, packed weights
 *   gemm_i8_ref.c       the reference twin of pare_linear_i8_act
 * Not for callers (gemm.h, gemm_i8.h) nor for the int8 attention, which uses gemm_internal.h's strided
 * products and quantizer. The scalar helpers the fast paths share with the references are gemm_internal.h's.
 */
#ifndef PARE_GEMM_I8_INTERNAL_H
#define PARE_GEMM_I8_INTERNAL_H

#include <stdint.h>

#include <dnnl.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PARE_GEMM_X86 1
#endif

#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "kernels/gemm_internal.h"

/* Above this K the u8-shifted sums Σ(qx+128)·qw (|.| <= K·255·127) could leave int32. */
#define U8S8_MAX_K PARE_I8_U8S8_MAX_K
/* Rows·columns below which a pass is not worth waking the thread team. */
#define PAR_MIN_ELEMS 16384

/* ---- row kernels and the per-token quantizer (gemm_i8_rows.c) ---- */

/* The row kernels for this CPU, picked once per call (pare_cpu_get caches the detection). */
typedef struct pare_i8_row_kernels {
    uint32_t (*maxabs_bits)(const float *x, int64_t K);
    void (*quant)(uint8_t *q, const float *x, int64_t K, float inv, int shift);
    void (*dequant)(float *y, const int32_t *acc, const int32_t *colsum, int32_t zz, const float *sw,
                    const float *bias, float sx, int64_t N);
    void (*minmax)(const float *x, int64_t K, float *mn, float *mx);
    void (*quant_range)(uint8_t *q, const float *x, int64_t K, float inv, int32_t lo, int32_t hi, int32_t add);
} pare_i8_row_kernels;

pare_i8_row_kernels pare_i8_row_kernels_pick_(void);
/* max_k |x[k]| of x(K) as float bits, scalar (>= PARE_I8_NONFINITE: x holds NaN or Inf). */
uint32_t pare_i8_maxabs_bits_generic_(const float *x, int64_t K);
/* The dequantization kernel with the zero-point correction in int64 (asymmetric codes with K > 66311). */
void pare_i8_dequant_row_wide_(float *y, const int32_t *acc, const int32_t *colsum, int32_t zz, const float *sw,
                               const float *bias, float sx, int64_t N);
/* q(M,K) (+shift: 0 int8, 128 u8), scale(M) from x(M,K), OpenMP over rows. Returns the first row holding
 * NaN/Inf (its scale NaN, its q zero), or M. */
int64_t pare_i8_quantize_rows_(uint8_t *q, float *scale, const float *x, int64_t M, int64_t K, int shift);

/* ---- products and packed weights (gemm_i8_products.c) ---- */

/* 1 if oneDNN's int8 GEMMs are exact on this CPU (VNNI), else 0 (pare's kernel is used then). */
int pare_i8_onednn_exact_(void);
/* C(M,N) = A(M,K)·B(N,K)^T, s8·s8 → s32, exact, by the best available means. */
dnnl_status_t pare_i8_gemm_s8s8s32_exact_(int32_t *C, const int8_t *A, const int8_t *B, int64_t M, int64_t N,
                                          int64_t K);
/* q (N,K) reordered for oneDNN's int8 inner product; NULL if oneDNN (or memory) fails. */
pare_onednn_ip *pare_i8_pack_(const int8_t *q, int64_t N, int64_t K);
/* acc(M,N) = xu(M,K)·q^T through the packed weights; 0, or -1 if oneDNN failed (nothing reported). */
int pare_i8_packed_gemm_(const pare_onednn_ip *p, int32_t *acc, const uint8_t *xu, int64_t M, void *spare,
                         size_t spare_bytes);

/* ---- activation modes (gemm_i8.c) ---- */

/* The scheme of a NULL pare_i8_act: DYN_TOKEN, symmetric, no outliers. */
extern const pare_i8_act pare_i8_act_default_;

#endif
