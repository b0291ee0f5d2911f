/* gemm_i8.c — the int8 Linears: pare_linear_i8_dynamic (per-token symmetric activations, gemm.h) and
 * pare_linear_i8_act (the activation modes of gemm_i8.h: per token, per tensor, static; symmetric or with
 * a zero point; LLM.int8() outlier decomposition), with the run-time choice of their int8 GEMM
 * (pare_linear_i8_path) and the dequantization pass they share.
 *
 * Scheme (LLM.int8()'s "vector-wise" quantization; Dettmers et al. 2022, and oneDNN's "Int8 computation
 * aspects" guide for the u8 shift):
 *   W[n,k] ≈ qw[n,k]·sw[n]      qw in [-127,127], sw[n] = max_k |W[n,k]| / 127     (once, offline)
 *   x[m,k] ≈ qx[m,k]·sx[m]      qx in [-127,127], sx[m] = max_k |x[m,k]| / 127     (each call)
 *   y[m,n] = (Σ_k qx[m,k]·qw[n,k]) · sx[m]·sw[n] + bias[n]
 *
 * On CPUs with VNNI (vpdpbusd: u8 × s8 → s32) the activations are written as u8 = qx + 128 straight out
 * of the quantizer, and the product runs on weights packed once at quantization: by default (AVX512-VNNI)
 * pare's own kernel (gemm_i8_vnni.c), which also dequantizes in its register tiles; else, or with
 * pare_i8_kernel_set(PARE_I8_KERNEL_ONEDNN), oneDNN's int8 inner-product primitive (see "packed weights"
 * in gemm_i8_products.c) followed by the dequantization pass below; dnnl_gemm_u8s8s32, which repacks W per
 * call, is the fallback. The shift is removed exactly in the
 * dequantization pass: Σ(qx+128)·qw − 128·colsum[n], colsum[n] = Σ_k qw[n,k] being stored with the
 * weights. Without VNNI oneDNN's int8 kernels (u8s8 AND s8s8) add pairs of products in saturating int16
 * (vpmaddubsw) and give wrong sums on random data, so there we use our own exact kernel
 * (gemm_i8_products.c: int16 vpmaddwd on AVX2, plain C otherwise). For K so large that the u8 shift could
 * overflow int32, VNNI CPUs use dnnl_gemm_s8s8s32 (exact with VNNI). The choice is made at run time from
 * oneDNN's effective ISA (pare_linear_i8_path). The activation modes generalise the constant shift 128 to
 * a zero point per row (see "activation modes" below): every mode runs on the same GEMMs.
 *
 * Quantization and dequantization are one pass each over their rows, OpenMP-parallel over rows, with
 * AVX-512 versions chosen at run time (gemm_i8_rows.c) and portable scalar versions otherwise. Both give
 * the same bits as the scalar references (gemm_ref.c, gemm_i8_ref.c): same float operations, same
 * rounding (round-half-even, then clamp).
 *
 * The rest of the int8 Linear lives beside this file (gemm_i8_internal.h lists them): the row kernels
 * and the per-token quantizer (gemm_i8_rows.c), the weights (gemm_i8_weight.c), the int32 products and
 * the packed weights (gemm_i8_products.c), the reference twin of pare_linear_i8_act (gemm_i8_ref.c).
 *
 * Deliberately not here: the row kernels, the weights and the products themselves (above), calibration
 * (static scales come from the caller), per-group scales, int4, backward.
 *
 * Entry points: pare_linear_i8_path, pare_i8_path_name, pare_linear_i8_workspace, pare_linear_i8_dynamic,
 * pare_act_mode_name, pare_linear_i8_act_workspace, pare_linear_i8_act; internal (gemm_i8_internal.h):
 * pare_i8_act_default_.
 */
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"

#include <string.h>

#include "core/cpu.h"
#include "core/tensor.h"
#include "kernels/fuse_ops.h"
#include "kernels/nn.h"
#include "kernels/gemm_i8_internal.h"

/* ---- dynamic int8 Linear ---- */

pare_i8_path pare_linear_i8_path(int64_t K)
{
    if (!pare_i8_onednn_exact_()) return PARE_I8_PATH_S8S8_MADD;
    return K > U8S8_MAX_K ? PARE_I8_PATH_S8S8 : PARE_I8_PATH_U8S8;
}

const char *pare_i8_path_name(pare_i8_path p)
{
    static const char *names[] = {"u8s8-vnni", "s8s8-vnni", "s8s8-madd"};
    _Static_assert(sizeof names / sizeof names[0] == PARE_I8_PATH_COUNT, "one name per int8 path");
    return (unsigned)p < PARE_I8_PATH_COUNT ? names[p] : "?";
}

size_t pare_linear_i8_workspace(int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0 || K <= 0) return 64;
    return pare_i8_align64_((size_t)(M * K)) + pare_i8_align64_((size_t)M * sizeof(float)) +
           pare_i8_align64_((size_t)(M * N) * sizeof(int32_t));
}

/* The int8 product and the dequantization shared by every int8 Linear:
 *   y(M,N) = (Σ_k xq[m,k]·qw[n,k] − zz_m·colsum[n]) · (sx[m]·sw[n]) + bias[n]
 * xq (M,K) bytes, u8 (as_u8, the VNNI u8s8 path: packed inner product, else dnnl_gemm_u8s8s32) or s8
 * (exact s8s8: oneDNN with VNNI, pare's kernel without); zz_m = zrow[m], or zall if zrow is NULL; wide:
 * the correction in int64 (asymmetric codes with K > U8S8_MAX_K = 65793). acc: (M,N) int32 of workspace. */
static pare_status i8_gemm_dequant(float *y, const uint8_t *xq, const float *sx, const int32_t *zrow, int32_t zall,
                                   const pare_i8_weight *w, const float *bias, int64_t M, int as_u8, int wide,
                                   int epilogue, int32_t *acc, const char *what)
{
    const int64_t N = w->N, K = w->K;
    const pare_i8_packed *pk = w->packed;
    /* pare's VNNI kernel (gemm_i8_vnni.c): the product, the correction, the scales, the bias and the
     * activation in one pass over the register tiles; the same bits as the passes below */
    if (as_u8 && pk && pk->panels) {
        const pare_i8_vnni_epi epi = {sx, zrow, zall, w->colsum, w->scale, bias, epilogue,
                                      epilogue == PARE_EPILOGUE_GELU_ERF && pare_gelu_erf_avx512_active_()};
        (void)wide; /* the u8 path never needs the int64 correction (K <= U8S8_MAX_K) */
        pare_i8_vnni_gemm_(y, xq, K, M, pk->panels, &epi);
        return PARE_OK;
    }
    /* The packed inner product writes the int32 sums straight into y (same size as acc; dequantized in
     * place below, one buffer less to stream through the caches); acc's room serves as its scratchpad.
     * x is read completely before this, so y may even be x. */
    int32_t *sums = acc;
    if (as_u8 && pk && pk->ip && pare_i8_packed_gemm_(pk->ip, (int32_t *)(void *)y, xq, M, acc, (size_t)(M * N) * sizeof(int32_t)) == 0)
        sums = (int32_t *)(void *)y;
    else {
        const int32_t co = 0;
        dnnl_status_t st;
        if (as_u8)
            st = dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, xq, K, 0, w->q, K, 0, 0.0f, acc, N, &co);
        else
            st = pare_i8_gemm_s8s8s32_exact_(acc, (const int8_t *)xq, w->q, M, N, K);
        if (st != dnnl_success)
            return pare_fail(PARE_EINTERNAL, "%s: oneDNN %s gemm failed (status %d) for M=%lld N=%lld K=%lld", what,
                             pare_i8_path_name(pare_linear_i8_path(K)), (int)st, (long long)M, (long long)N,
                             (long long)K);
    }

    pare_i8_row_kernels rk = pare_i8_row_kernels_pick_();
    if (wide) rk.dequant = pare_i8_dequant_row_wide_;
#pragma omp parallel for schedule(static) if (M * N >= PAR_MIN_ELEMS && M > 1)
    for (int64_t m = 0; m < M; m++) {
        rk.dequant(y + m * N, sums + m * N, w->colsum, zrow ? zrow[m] : zall, w->scale, bias, sx[m], N);
        /* a fused activation (the fuse pass's Linear+GELU) on the row just written, while it is in cache */
        if (epilogue) pare_epilogue_forward(y + m * N, y + m * N, epilogue, N);
    }
    return PARE_OK;
}

/* y(M,N) = dequant(quant(x)(M,K) · w->q(N,K)^T) + bias(N); see the top of this file. */
pare_status pare_linear_i8_dynamic(float *y, const float *x, const pare_i8_weight *w, const float *bias, int64_t M,
                                   void *workspace)
{
    if (!w || !w->q || !w->scale || !w->colsum) return pare_fail(PARE_EINVAL, "linear int8: weight is not quantized");
    const int64_t N = w->N, K = w->K;
    if (M < 0) return pare_fail(PARE_EINVAL, "linear int8: M=%lld: must be >= 0", (long long)M);
    if (M == 0) return PARE_OK;
    if (!y || !x) return pare_fail(PARE_EINVAL, "linear int8: NULL input or output");
    if (!workspace || (uintptr_t)workspace % sizeof(float))
        return pare_fail(PARE_EINVAL, "linear int8: workspace is NULL or misaligned (need pare_linear_i8_workspace(M,N,K)"
                                      " bytes, 64-byte aligned)");
    if (K > PARE_I8_MAX_K)
        return pare_fail(PARE_EINVAL, "linear int8: K=%lld: int32 sums are exact only for K <= %lld", (long long)K,
                         (long long)PARE_I8_MAX_K);

    pare_i8_path path = pare_linear_i8_path(K);
    int shift = path == PARE_I8_PATH_U8S8 ? 128 : 0;
    uint8_t *xq = workspace;                                                     /* (M,K) */
    float *sx = (float *)(void *)((char *)workspace + pare_i8_align64_((size_t)(M * K)));  /* (M) */
    int32_t *acc = (int32_t *)(void *)((char *)sx + pare_i8_align64_((size_t)M * sizeof(float))); /* (M,N) */

    int64_t bad = pare_i8_quantize_rows_(xq, sx, x, M, K, shift);
    if (bad < M)
        return pare_fail(PARE_ENUMERIC, "linear int8: input row %lld (of %lld) holds NaN or Inf", (long long)bad,
                         (long long)M);
    (void)N;
    return i8_gemm_dequant(y, xq, sx, NULL, shift, w, bias, M, shift != 0, 0, 0, acc, "linear int8");
}

/* ---- the int8 Linear's activation modes (gemm_i8.h) ----
 *
 * Each mode turns x into codes c[m,k] = clamp(round(x[m,k]·inv), lo, hi) (gemm_internal.h) with a scale
 * per row (DYN_TOKEN) or one for all rows, and hands the GEMM the bytes c + add; the dequantization
 * subtracts add·colsum[n], so the integer result is exactly Σ_k c[m,k]·qw[n,k]:
 *
 *   scheme        lo, hi          add on the u8 path (VNNI)    add on the s8 path (large K, no VNNI)
 *   symmetric     −127, 127       128                          0
 *   asymmetric    −z, 255 − z     z   (the byte is the u8 q)   z − 128
 *
 * y[m,n] = (Σ_k byte·qw − add·colsum[n])·(sx[m]·sw[n]) + bias[n]
 * (torch_qparams: DYN_TENSOR asymmetric with PyTorch's scale and zero point, whose codes lie in [−z, 127 − z]
 * up to rounding; the clamp stays [−z, 255 − z], as torch clamps the u8 to 0..255) — the existing dequantization pass with
 * the zero point per row instead of the constant 128. Its int32 arithmetic is exact for K <= 65793 (the
 * u8s8 bound with weights down to −128); beyond, asymmetric codes (|c| <= 255) are corrected in int64 (pare_i8_dequant_row_wide_).
 *
 * LLM.int8(): the columns whose max |x| exceeds the threshold are zeroed in a copy of x that the mode
 * quantizes (so the scales come from the other columns), gathered into (M, nO) and multiplied with the
 * gathered columns of W_f32 by pare_sgemm, OUTLIER_CHUNK columns at a time, added onto y. With outlier_f16
 * both gathered operands are rounded to f16 first (the paper's fp16 outlier product): the products of two
 * f16 values are exact in f32 (11 + 11 significant bits <= 24), so pare_sgemm computes f16 products with f32
 * accumulation — what cuBLAS's fp16 GEMM with 32-bit compute does for bitsandbytes. */

/* Outlier columns per f32 product (bounds the gathered W_f32 block in the workspace). */
#define OUTLIER_CHUNK 64

const pare_i8_act pare_i8_act_default_ = {PARE_ACT_DYN_TOKEN, 1, 0.0f, 0, 0.0f, 0, 0};

const char *pare_act_mode_name(pare_act_mode m)
{
    static const char *names[] = {"dynamic_token", "dynamic_tensor", "static"};
    _Static_assert(sizeof names / sizeof names[0] == PARE_ACT_MODE_COUNT, "one name per activation mode");
    return (unsigned)m < PARE_ACT_MODE_COUNT ? names[m] : "?";
}

static pare_status act_check(const pare_i8_act *a, const char *what)
{
    if ((unsigned)a->mode >= PARE_ACT_MODE_COUNT)
        return pare_fail(PARE_EINVAL,
                         "%s: mode=%d: must be one of %d (dynamic_token), %d (dynamic_tensor), %d (static)", what,
                         (int)a->mode, PARE_ACT_DYN_TOKEN, PARE_ACT_DYN_TENSOR, PARE_ACT_STATIC);
    if (!(a->outlier_threshold >= 0.0f)) /* +Inf is allowed: decomposition on, no feature ever an outlier */
        return pare_fail(PARE_EINVAL, "%s: outlier_threshold=%g: must be > 0 (LLM.int8(); +inf: never an outlier) or 0 "
                         "(off)", what, (double)a->outlier_threshold);
    if (a->torch_qparams && (a->mode != PARE_ACT_DYN_TENSOR || a->symmetric || a->outlier_threshold > 0.0f))
        return pare_fail(PARE_EINVAL, "%s: torch_qparams needs mode=%d (dynamic_tensor), symmetric=0 and no outlier "
                         "threshold (PyTorch's dynamic scheme is per tensor asymmetric); got mode=%d symmetric=%d "
                         "outlier_threshold=%g", what, PARE_ACT_DYN_TENSOR, (int)a->mode, a->symmetric,
                         (double)a->outlier_threshold);
    if (a->outlier_f16 != 0 && a->outlier_f16 != 1)
        return pare_fail(PARE_EINVAL, "%s: outlier_f16=%d: must be 0 (outlier part in f32) or 1 (in f16)", what,
                         a->outlier_f16);
    if (a->mode == PARE_ACT_STATIC) {
        if (!(a->scale > 0.0f) || !isfinite(a->scale) || !isfinite(1.0f / a->scale))
            return pare_fail(PARE_EINVAL, "%s: static scale=%g: must be finite and > 0 (with 1/scale finite)", what,
                             (double)a->scale);
        if (a->symmetric && a->zero != 0)
            return pare_fail(PARE_EINVAL, "%s: static symmetric scheme with zero=%d: must be 0 (or set symmetric=0)",
                             what, (int)a->zero);
        if (!a->symmetric && (a->zero < 0 || a->zero > 255))
            return pare_fail(PARE_EINVAL, "%s: static asymmetric zero=%d: must be in [0, 255]", what, (int)a->zero);
    }
    return PARE_OK;
}

/* The workspace of pare_linear_i8_act, each part at a 64-byte offset:
 *   xq (M,K) bytes | sx (M) f32 | zz (M) int32 | acc (M,N) int32
 *   and with LLM.int8(): xm (M,K) f32 (x with the outlier columns zeroed, then the gathered x[:,O]) |
 *   col (K) uint32 (column max-abs bits, then the outlier indices) | wo (N, OUTLIER_CHUNK) f32 */
typedef struct act_ws {
    uint8_t *xq;
    float *sx;
    int32_t *zz, *acc;
    float *xm, *wo;
    uint32_t *col;
} act_ws;

static size_t act_ws_layout(act_ws *l, void *base, int64_t M, int64_t N, int64_t K, int outliers)
{
    size_t o = 0, parts[7] = {pare_i8_align64_((size_t)(M * K)), pare_i8_align64_((size_t)M * 4),
                              pare_i8_align64_((size_t)M * 4), pare_i8_align64_((size_t)(M * N) * 4),
                              outliers ? pare_i8_align64_((size_t)(M * K) * 4) : 0,
                              outliers ? pare_i8_align64_((size_t)K * 4) : 0,
                              outliers ? pare_i8_align64_((size_t)N * OUTLIER_CHUNK * 4) : 0};
    void *at[7];
    for (int i = 0; i < 7; i++) {
        at[i] = base ? (char *)base + o : NULL;
        o += parts[i];
    }
    if (l) *l = (act_ws){at[0], at[1], at[2], at[3], at[4], at[6], at[5]};
    return o ? o : 64;
}

size_t pare_linear_i8_act_workspace(int64_t M, int64_t N, int64_t K, const pare_i8_act *a)
{
    if (M <= 0 || N <= 0 || K <= 0) return 64;
    if (!a) a = &pare_i8_act_default_;
    return act_ws_layout(NULL, NULL, M, N, K, a->outlier_threshold > 0.0f);
}

/* cmax(K) = max_m |x[m,k]| as bits (>= PARE_I8_NONFINITE: the column holds NaN or Inf). */
PARE_HOT static void colmax_bits(uint32_t *cmax, const float *x, int64_t M, int64_t K)
{
    const int64_t CB = 256, nb = (K + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (M * K >= PAR_MIN_ELEMS && nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t k0 = b * CB, k1 = k0 + CB < K ? k0 + CB : K;
        for (int64_t k = k0; k < k1; k++) cmax[k] = 0;
        for (int64_t m = 0; m < M; m++) {
            const float *r = x + m * K;
            for (int64_t k = k0; k < k1; k++) {
                uint32_t v = pare_i8_absbits_(r[k]);
                cmax[k] = v > cmax[k] ? v : cmax[k];
            }
        }
    }
}

static int64_t first_nonfinite_row(const float *x, int64_t M, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        if (pare_i8_maxabs_bits_generic_(x + m * K, K) >= PARE_I8_NONFINITE) return m;
    return M;
}

/* xq (M,K) bytes, sx (M), zz (M) for scheme a on the u8 (as_u8) or s8 operand path. Returns the first row
 * holding NaN or Inf (nothing useful written then), or M. */
static int64_t act_quantize(uint8_t *xq, float *sx, int32_t *zz, const float *x, int64_t M, int64_t K,
                            const pare_i8_act *a, int as_u8)
{
    const int sym = a->symmetric != 0;
    const int32_t shift = sym ? (as_u8 ? 128 : 0) : (as_u8 ? 0 : -128); /* add = z + shift (z = 0 symmetric) */
    pare_i8_row_kernels rk = pare_i8_row_kernels_pick_();
    const int par = M * K >= PAR_MIN_ELEMS && M > 1;

    if (a->mode == PARE_ACT_DYN_TOKEN && sym) { /* pare_linear_i8_dynamic's quantizer */
        int64_t bad = pare_i8_quantize_rows_(xq, sx, x, M, K, shift);
        for (int64_t m = 0; m < M; m++) zz[m] = shift;
        return bad;
    }
    if (a->mode == PARE_ACT_DYN_TOKEN) { /* asymmetric, per row */
        int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (par)
        for (int64_t m = 0; m < M; m++) {
            const float *r = x + m * K;
            if (rk.maxabs_bits(r, K) >= PARE_I8_NONFINITE) {
                if (m < bad) bad = m;
                continue;
            }
            float mn, mx, inv;
            int32_t z;
            rk.minmax(r, K, &mn, &mx);
            pare_i8_asym_params_(mn, mx, &sx[m], &inv, &z);
            rk.quant_range(xq + m * K, r, K, inv, -z, 255 - z, z + shift);
            zz[m] = z + shift;
        }
        return bad;
    }

    /* one scale for all rows: from the whole x (DYN_TENSOR) or given (STATIC) */
    float scale, inv;
    int32_t z = 0;
    if (a->mode == PARE_ACT_DYN_TENSOR) {
        uint32_t amax = 0;
        float mn = 0.0f, mx = 0.0f;
        int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(max : amax, mx) reduction(min : bad, mn) if (par)
        for (int64_t m = 0; m < M; m++) {
            const float *r = x + m * K;
            uint32_t b = rk.maxabs_bits(r, K);
            if (b >= PARE_I8_NONFINITE) {
                if (m < bad) bad = m;
                continue;
            }
            amax = b > amax ? b : amax;
            if (!sym) {
                float lo, hi;
                rk.minmax(r, K, &lo, &hi);
                mn = lo < mn ? lo : mn;
                mx = hi > mx ? hi : mx;
            }
        }
        if (bad < M) return bad;
        if (sym)
            pare_i8_scale_from_maxabs_(pare_i8_bits_float_(amax), &scale, &inv);
        else if (a->torch_qparams)
            pare_i8_torch_asym_params_(mn, mx, &scale, &inv, &z);
        else
            pare_i8_asym_params_(mn, mx, &scale, &inv, &z);
    } else {
        scale = a->scale, inv = 1.0f / a->scale, z = sym ? 0 : a->zero;
    }
    const int32_t lo = sym ? -127 : -z, hi = sym ? 127 : 255 - z, add = z + shift;
    const int check = a->mode == PARE_ACT_STATIC; /* DYN_TENSOR checked every row above */
    int64_t bad = M;
#pragma omp parallel for schedule(static) reduction(min : bad) if (par)
    for (int64_t m = 0; m < M; m++) {
        const float *r = x + m * K;
        if (check && rk.maxabs_bits(r, K) >= PARE_I8_NONFINITE) {
            if (m < bad) bad = m;
            continue;
        }
        rk.quant_range(xq + m * K, r, K, inv, lo, hi, add);
        sx[m] = scale;
        zz[m] = add;
    }
    return bad;
}

pare_status pare_linear_i8_act(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                               const float *bias, int64_t M, const pare_i8_act *a, void *workspace,
                               int64_t *n_outliers)
{
    return pare_linear_i8_act_epilogue(y, x, w, W_f32, bias, M, a, workspace, n_outliers, 0);
}

pare_status pare_linear_i8_act_epilogue(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                                        const float *bias, int64_t M, const pare_i8_act *a, void *workspace,
                                        int64_t *n_outliers, int epilogue)
{
    const char *what = "linear int8 act";
    if (n_outliers) *n_outliers = 0;
    if (!a) a = &pare_i8_act_default_;
    PARE_TRY(act_check(a, what));
    if (!w || !w->q || !w->scale || !w->colsum) return pare_fail(PARE_EINVAL, "%s: weight is not quantized", what);
    const int64_t N = w->N, K = w->K;
    if (M < 0) return pare_fail(PARE_EINVAL, "%s: M=%lld: must be >= 0", what, (long long)M);
    if (M == 0) return PARE_OK;
    if (!y || !x) return pare_fail(PARE_EINVAL, "%s: NULL input or output", what);
    const int outliers = a->outlier_threshold > 0.0f;
    if (!workspace || (uintptr_t)workspace % sizeof(float))
        return pare_fail(PARE_EINVAL, "%s: workspace is NULL or misaligned (need pare_linear_i8_act_workspace(M,N,K,a)"
                                      " bytes, 64-byte aligned)", what);
    if (K > PARE_I8_MAX_K)
        return pare_fail(PARE_EINVAL, "%s: K=%lld: int32 sums are exact only for K <= %lld", what, (long long)K,
                         (long long)PARE_I8_MAX_K);

    const int as_u8 = pare_linear_i8_path(K) == PARE_I8_PATH_U8S8;
    const int wide = !a->symmetric && K > U8S8_MAX_K;
    act_ws l;
    act_ws_layout(&l, workspace, M, N, K, outliers);

    /* LLM.int8(): the outlier columns, and x with them zeroed for the int8 part */
    const float *xin = x;
    int64_t nO = 0;
    int32_t *idx = (int32_t *)(void *)l.col;
    if (outliers) {
        colmax_bits(l.col, x, M, K);
        for (int64_t k = 0; k < K; k++)
            if (l.col[k] >= PARE_I8_NONFINITE) {
                int64_t bad = first_nonfinite_row(x, M, K);
                return pare_fail(PARE_ENUMERIC, "%s: input row %lld (of %lld) holds NaN or Inf", what, (long long)bad,
                                 (long long)M);
            }
        const uint32_t tb = pare_i8_absbits_(a->outlier_threshold);
        for (int64_t k = 0; k < K; k++) /* in place: idx[nO] overwrites col[nO], nO <= k, already read */
            if (l.col[k] > tb) idx[nO++] = (int32_t)k;
        if (nO > 0) {
#pragma omp parallel for schedule(static) if (M * K >= PAR_MIN_ELEMS && M > 1)
            for (int64_t m = 0; m < M; m++) {
                memcpy(l.xm + m * K, x + m * K, (size_t)K * sizeof(float));
                for (int64_t j = 0; j < nO; j++) l.xm[m * K + idx[j]] = 0.0f;
            }
            xin = l.xm;
        }
    }

    int64_t bad = act_quantize(l.xq, l.sx, l.zz, xin, M, K, a, as_u8);
    if (bad < M)
        return pare_fail(PARE_ENUMERIC, "%s: input row %lld (of %lld) holds NaN or Inf", what, (long long)bad,
                         (long long)M);

    /* x[:,O] (M,nO) into xm (its masked copy is consumed), before y — which may be x — is written; in f16
     * with outlier_f16 (an outlier beyond f16's range is an error, not an Inf in y) */
    const int f16 = a->outlier_f16;
    if (nO > 0)
        for (int64_t m = 0; m < M; m++)
            for (int64_t j = 0; j < nO; j++) {
                const float v = x[m * K + idx[j]];
                l.xm[m * nO + j] = f16 ? pare_f16_to_f32(pare_f32_to_f16(v)) : v;
                if (f16 && isinf(l.xm[m * nO + j]))
                    return pare_fail(PARE_ENUMERIC, "%s: LLM.int8() outlier x[%lld, %lld] = %g is beyond f16's range "
                                     "(|v| < 65520): use the f32 outlier part (outlier_f16 = 0)", what, (long long)m,
                                     (long long)idx[j], (double)v);
            }

    if (epilogue < 0 || epilogue >= PARE_EPILOGUE_COUNT)
        return pare_fail(PARE_EINVAL, "%s: epilogue %d is not one of pare_epilogue", what, epilogue);
    /* the activation goes in the dequantization pass, unless LLM.int8()'s f32 columns are still to be added */
    PARE_TRY(i8_gemm_dequant(y, l.xq, l.sx, l.zz, 0, w, bias, M, as_u8, wide, nO > 0 ? 0 : epilogue, l.acc, what));

    /* y += x[:,O] · W_f32[:,O]^T, OUTLIER_CHUNK columns at a time */
    for (int64_t c0 = 0; c0 < nO; c0 += OUTLIER_CHUNK) {
        const int64_t nc = c0 + OUTLIER_CHUNK < nO ? OUTLIER_CHUNK : nO - c0;
        int64_t wbad = INT64_MAX; /* n·K + k of the first weight beyond f16's range */
#pragma omp parallel for schedule(static) reduction(min : wbad) if (N * nc >= PAR_MIN_ELEMS)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < nc; j++) {
                const float v = W_f32 ? W_f32[n * K + idx[c0 + j]] : (float)w->q[n * K + idx[c0 + j]] * w->scale[n];
                l.wo[n * nc + j] = f16 ? pare_f16_to_f32(pare_f32_to_f16(v)) : v;
                if (f16 && isinf(l.wo[n * nc + j]) && n * K + idx[c0 + j] < wbad) wbad = n * K + idx[c0 + j];
            }
        if (wbad != INT64_MAX)
            return pare_fail(PARE_ENUMERIC, "%s: LLM.int8() outlier weight W[%lld, %lld] is beyond f16's range "
                             "(|v| < 65520): use the f32 outlier part (outlier_f16 = 0)", what, (long long)(wbad / K),
                             (long long)(wbad % K));
        pare_sgemm(0, 1, M, N, nc, 1.0f, l.xm + c0, nO, l.wo, nc, 1.0f, y, N);
    }
    if (nO > 0 && epilogue) pare_epilogue_forward(y, y, epilogue, M * N);
    if (n_outliers) *n_outliers = nO;
    return PARE_OK;
}
