/* gemm_internal.h — private to src/kernels/gemm*.c and nn_attention_i8.c:
 *   - the scalar int8 scale/rounding helpers shared by the int8 kernels and their references (gemm_i8*.c,
 *     gemm_ref.c, nn_attention_i8.c): the fast and the reference paths must compute the scales with the
 *     very same float operations, so that their quantized activations agree bit for bit;
 *   - the exact int8 GEMMs with leading dimensions that the int8 attention runs (gemm_i8_products.c), and
 *     its per-row quantizer (gemm_i8_rows.c);
 *   - the oneDNN packed inner product (gemm_onednn.c) that both packed-weight Linears run on
 *     (gemm_f32_packed.c, the u8s8 path of gemm_i8_products.c).
 */
#ifndef PARE_GEMM_INTERNAL_H
#define PARE_GEMM_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <dnnl.h>

#include "core/status.h"

/* Bits of |x| for a float: compare as unsigned integers to get max-abs; any value >= 0x7f800000 is
 * Inf or NaN, so one integer max both finds the largest magnitude and detects non-finite input. */
#define PARE_I8_ABS_MASK 0x7fffffffu
#define PARE_I8_NONFINITE 0x7f800000u

static inline uint32_t pare_i8_absbits_(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & PARE_I8_ABS_MASK;
}

static inline float pare_i8_bits_float_(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* From a finite max-abs, the scale (x ≈ q·scale) and its multiplier (q = round(x·inv)).
 * An all-zero row — or one so tiny that 127/maxabs overflows (< ~1e-36) — gets scale 1 and inv 0:
 * q = 0 everywhere, which is exact for zeros and off by less than 1e-36 otherwise. */
static inline void pare_i8_scale_from_maxabs_(float maxabs, float *scale, float *inv)
{
    float v = 127.0f / maxabs;
    if (maxabs > 0.0f && isfinite(v)) {
        *scale = maxabs / 127.0f;
        *inv = v;
    } else {
        *scale = 1.0f;
        *inv = 0.0f;
    }
}

/* q = clamp(round-half-even(x·inv), -127, 127): the scalar form every vector path must match. */
static inline int8_t pare_i8_quant_(float x, float inv)
{
    float r = nearbyintf(x * inv);
    r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
    return (int8_t)r;
}

/* ---- activation codes of the int8 Linear's modes (gemm_i8*.c, gemm_i8.h) ----
 *
 * Every mode writes an activation as a "code" c = clamp(round-half-even(x·inv), lo, hi) with integer
 * bounds: symmetric [-127, 127]; asymmetric [-z, 255 - z] for the zero point z (so c + z is the u8 value
 * q of x^ = s·(q − z)). The byte handed to the GEMM is c + add, and the dequantization subtracts
 * add·colsum, so the integer result is always Σ_k c[m,k]·qw[n,k] whatever the operand type (u8 or s8). */
static inline int32_t pare_i8_code_(float x, float inv, float lo, float hi)
{
    float r = nearbyintf(x * inv);
    r = r > hi ? hi : r < lo ? lo : r;
    return (int32_t)r;
}

/* Asymmetric parameters from a finite range [mn, mx], first extended to include 0: scale = (max − min)/255,
 * inv = 255/(max − min) (in double, then rounded: no overflow for any finite range), zero point
 * z = clamp(round(−min·inv), 0, 255). An empty range (all zeros) or one so tiny that inv overflows
 * gets scale 1, inv 0, z 0: every code is 0 (exact for zeros, off by < 1e-36 otherwise). */
static inline void pare_i8_asym_params_(float mn, float mx, float *scale, float *inv, int32_t *zero)
{
    if (!(mn < 0.0f)) mn = 0.0f;
    if (!(mx > 0.0f)) mx = 0.0f;
    double range = (double)mx - (double)mn;
    float v = range > 0.0 ? (float)(255.0 / range) : 0.0f;
    if (range > 0.0 && isfinite(v) && v > 0.0f) {
        *scale = (float)(range / 255.0);
        *inv = v;
        float z = nearbyintf(-mn * v);
        *zero = z < 0.0f ? 0 : z > 255.0f ? 255 : (int32_t)z;
    } else {
        *scale = 1.0f;
        *inv = 0.0f;
        *zero = 0;
    }
}

/* Exact int8 products for callers outside the int8 Linear's files (the int8 attention), safe to call from inside an
 * OpenMP region (oneDNN and pare's kernel then run on the calling thread):
 *   C(M,N) (row stride ldc) = A(M,K) (row stride lda) · B(N,K)^T (row stride ldb), int32,
 * A u8 (u8s8, K <= 66311 so that 255·127·K fits int32) or s8 (s8s8, K <= PARE_I8_MAX_K); B s8.
 * oneDNN's GEMM with VNNI, pare's exact kernel without (see gemm_i8_products.c). Returns 0 or the oneDNN status. */
int pare_i8_gemm_u8s8s32_(int32_t *C, int64_t ldc, const uint8_t *A, int64_t lda, const int8_t *B, int64_t ldb,
                          int64_t M, int64_t N, int64_t K);
int pare_i8_gemm_s8s8s32_(int32_t *C, int64_t ldc, const int8_t *A, int64_t lda, const int8_t *B, int64_t ldb,
                          int64_t M, int64_t N, int64_t K);
/* Per-row symmetric quantization of x (M rows of K at row stride ldx) into q (M,K) contiguous and scale (M),
 * the same bits as pare_quantize_rows_s8 (its row kernels), on the calling thread. Returns the first row
 * holding NaN or Inf (its scale NaN, q 0), or M. */
int64_t pare_i8_quant_rows_strided_(int8_t *q, float *scale, const float *x, int64_t ldx, int64_t M, int64_t K);
/* Largest K of the u8s8 product (255·127·K < 2^31). */
#define PARE_I8_U8S8_MAX_K ((int64_t)66311)

/* Workspace of pare_linear_i8_dynamic, each part at a 64-byte offset:
 *   xq   (M,K) int8 or uint8     sx (M) f32     acc (M,N) int32 */
static inline size_t pare_i8_align64_(size_t n) { return (n + 63) & ~(size_t)63; }

/* ---- oneDNN packed inner product (gemm_onednn.c) ----
 *
 *   dst(M,N) = post(src(M,K) · W(N,K)^T + bias(N))
 *
 * W reordered once into the layout oneDNN's inner-product primitive prefers; primitives cached per
 * (M, thread count, bias?, post-op) in the handle; one handle may be run from several threads at once.
 * `what` names the caller in error messages (pare_fail); NULL: report nothing, only return the status. */

/* The process's oneDNN CPU engine, created once; NULL if oneDNN cannot create it. */
dnnl_engine_t pare_onednn_engine(void);

typedef enum pare_onednn_post { /* append-only */
    PARE_ONEDNN_POST_NONE = 0,
    PARE_ONEDNN_POST_GELU, /* eltwise_gelu_tanh */
    PARE_ONEDNN_POST_GELU_ERF, /* eltwise_gelu_erf */
    PARE_ONEDNN_POST_RELU,     /* eltwise_relu, slope 0 */
} pare_onednn_post;

/* Data types: f32/f32/f32 (the f32 Linear), u8/s8/s32 (the int8 Linear). A bias is always f32. */
typedef struct pare_onednn_ip_types {
    dnnl_data_type_t src, wei, dst;
} pare_onednn_ip_types;

typedef struct pare_onednn_ip pare_onednn_ip; /* opaque: packed W + primitive cache */

/* W (N,K) row-major of type types.wei, N, K >= 1, copied into the preferred layout; bias_hint: ask for
 * the layout of the primitive with a bias (the usual call). */
pare_status pare_onednn_ip_pack(pare_onednn_ip **out, pare_onednn_ip_types types, const void *W, int64_t N, int64_t K,
                                int bias_hint, const char *what);
/* The same handle's weights replaced by W (N,K) row-major of the same type and shape, reordered into the packed copy
 * in place (no allocation; the primitives cached stay valid): bf16 training refreshes its weights after each optimizer
 * step so. Not while another thread runs p. */
pare_status pare_onednn_ip_repack(pare_onednn_ip *p, const void *W, const char *what);
void pare_onednn_ip_free(pare_onednn_ip *p); /* NULL ok */
size_t pare_onednn_ip_bytes(const pare_onednn_ip *p);   /* the packed copy, padding included */
void pare_onednn_ip_shape(const pare_onednn_ip *p, int64_t *N, int64_t *K);
const char *pare_onednn_ip_impl(const pare_onednn_ip *p); /* e.g. "brgemm:avx512_core"; "" if unknown */
/* The implementation oneDNN would choose for (N, K) weights, without packing any: "unknown" if none. */
const char *pare_onednn_ip_impl_for(pare_onednn_ip_types types, int64_t N, int64_t K, char *buf, size_t n);
/* dst (M,N) = post(src (M,K) · W^T + bias (N)), M >= 1; bias may be NULL. spare (spare_bytes) is caller
 * memory the call may use as oneDNN's scratchpad (NULL, 0: none; else the stack or the heap). */
pare_status pare_onednn_ip_run(const pare_onednn_ip *p, void *dst, const void *src, const float *bias, int64_t M,
                               pare_onednn_post post, void *spare, size_t spare_bytes, const char *what);

#endif
