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
#include "kernels/gemm_i8_vnni.h"

/* Above this K the u8-shifted sums Σ(qx+128)·qw could leave int32. The weights may hold -128
 * (pare_i8_weight_from_int, PyTorch's qint8 scheme), so |.| <= K·255·128 and K <= (2^31 − 1)/32640 = 65793.
 * It was 66311 (K·255·127) while weights stopped at ±127; the int8 attention, whose operands still stop at
 * ±127, keeps that bound (PARE_I8_U8S8_MAX_K). The s8 path's bound PARE_I8_MAX_K = 131071 was already
 * derived with 128·128. */
#define U8S8_MAX_K ((int64_t)65793)
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
/* The dequantization kernel with the zero-point correction in int64 (asymmetric codes with K > U8S8_MAX_K). */
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

/* ---- the packed copy of a weight (pare_i8_weight.packed; gemm_i8_weight.c) ----
 * At most one of the two: pare's VNNI panels or oneDNN's reordered weights + primitive cache. */
typedef struct pare_i8_packed {
    pare_i8_panels *panels;
    pare_onednn_ip *ip;
} pare_i8_packed;
/* q (N,K) packed for the kernel pare_i8_kernel_set chose (NULL: no VNNI, K too large, or packing failed:
 * dnnl_gemm_u8s8s32 then). */
pare_i8_packed *pare_i8_packed_make_(const int8_t *q, int64_t N, int64_t K);
void pare_i8_packed_free_(pare_i8_packed *p);

/* ---- activation modes (gemm_i8.c) ---- */

/* PyTorch's activation parameters for quantize_dynamic's Linear (ATen quant_utils.h
 * ChooseQuantizationParams(min, max, qmin = 0, qmax = 127, preserve_sparsity = false): reduce_range
 * halves the u8 range), as torch 1.13 computes them:
 *   [min, max] extended to include 0; scale = (max − min)/127 in double; 0.1 if float(scale) is 0 or
 *   1/float(scale) is Inf; below 6.1e-5 raised to 6.1e-5 with min, max scaled alike; the zero point from
 *   whichever of (qmin, min), (qmax, max) has the smaller error, clamped, rounded half-even; scale kept
 *   as float. inv = 1.0f/scale in float, as torch quantizes (x·inv, round half-even, + z, clamp 0..255).
 * Verified against torch._choose_qparams_per_tensor(x, reduce_range=True) in tests/test_torch_quant.c. */
static inline void pare_i8_torch_asym_params_(float mn, float mx, float *scale, float *inv, int32_t *zero)
{
    const double qmin = 0, qmax = 127;
    mn = mn < 0.0f ? mn : 0.0f;
    mx = mx > 0.0f ? mx : 0.0f;
    double s = ((double)mx - (double)mn) / (qmax - qmin);
    if ((float)s == 0.0f || isinf(1.0f / (float)s)) s = 0.1;
    const float small = 6.1e-5f;
    if (s < small) {
        float org = (float)s; /* torch: float org_scale = scale */
        s = small;
        if (mn == 0.0f)
            mx = (float)(small * (qmax - qmin));
        else if (mx == 0.0f)
            mn = (float)(-small * (qmax - qmin));
        else {
            float amp = small / org;
            mn *= amp;
            mx *= amp;
        }
    }
    double zmin = qmin - mn / s, zmax = qmax - mx / s;
    double emin = fabs(qmin) - fabs(mn / s), emax = fabs(qmax) - fabs(mx / s);
    double z0 = emin < emax ? zmin : zmax;
    int32_t z = z0 < qmin ? (int32_t)qmin : z0 > qmax ? (int32_t)qmax : (int32_t)nearbyint(z0);
    *scale = (float)s;
    *inv = 1.0f / *scale;
    *zero = z;
}

/* The scheme of a NULL pare_i8_act: DYN_TOKEN, symmetric, no outliers. */
extern const pare_i8_act pare_i8_act_default_;

#endif
