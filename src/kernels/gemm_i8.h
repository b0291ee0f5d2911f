/* gemm_i8.h — the int8 Linear's activation-quantization modes (SmoothQuant O1–O3, PTQ static), LLM.int8()
 * outlier decomposition, per-tensor and given-integer weights (gemm_i8*.c), and int8 attention products
 * (nn_attention_i8.c). Extends gemm.h's int8 section; the dynamic per-token Linear there is the mode
 * PARE_ACT_DYN_TOKEN, symmetric, without outliers.
 *
 *     pare_i8_weight w;
 *     PARE_TRY(pare_i8_weight_quantize_tensor(&w, W, N, K));            // or _quantize / _from_int
 *     pare_i8_act a = {.mode = PARE_ACT_STATIC, .symmetric = 0, .scale = s, .zero = z};
 *     void *ws = aligned_alloc(64, pare_linear_i8_act_workspace(M, N, K, &a));
 *     PARE_TRY(pare_linear_i8_act(y, x, &w, NULL, bias, M, &a, ws, NULL));
 *
 * Every mode runs on the real int8 GEMM that pare_linear_i8_dynamic uses (oneDNN's packed u8s8 inner
 * product with VNNI, dnnl_gemm_s8s8s32 for large K, pare's exact kernel without VNNI) and is exact in
 * its integer part: the result equals the `_ref` twin's int64 sums bit for bit. docs/kernels-int8.md has
 * the math.
 *
 * Not here: int4, per-group scales, calibration itself (a static scale is the caller's: from observed
 * ranges, percentiles, SmoothQuant's migrated ranges), backward.
 */
#ifndef PARE_GEMM_I8_H
#define PARE_GEMM_I8_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "kernels/gemm.h"

/* ---- which u8·s8 kernel the int8 Linear runs on VNNI CPUs (issue 18) ----
 *
 * Weights are packed once, at quantization, for one kernel: pare's own AVX512-VNNI GEMM (gemm_i8_vnni.c:
 * panels of 48 columns, an 8×48 register tile, the dequantization fused into the tile) or oneDNN's int8
 * inner product. AUTO (the default): pare's where the CPU has AVX512-VNNI, oneDNN's otherwise (AVX-VNNI
 * only). The choice is process-wide and applies to weights quantized after it (those before keep
 * theirs); both give the same bits. PARE_I8_KERNEL=auto|pare|onednn in the environment sets it when
 * `pare` starts (the engine itself reads no environment). */
typedef enum pare_i8_kernel { /* append-only */
    PARE_I8_KERNEL_AUTO = 0,
    PARE_I8_KERNEL_PARE,
    PARE_I8_KERNEL_ONEDNN,
    PARE_I8_KERNEL_COUNT
} pare_i8_kernel;
/* Sets the kernel for weights quantized from now on; returns the previous setting (out of range: unchanged). */
pare_i8_kernel pare_i8_kernel_set(pare_i8_kernel k);
/* "auto", "pare", "onednn"; "?" out of range. */
const char *pare_i8_kernel_name(pare_i8_kernel k);
/* The kernel named s (one of the names above) into *k; PARE_EINVAL naming the valid ones otherwise. */
pare_status pare_i8_kernel_parse(const char *s, pare_i8_kernel *k);

/* ---- activation quantization of the int8 Linear ---- */

typedef enum pare_act_mode { /* append-only */
    PARE_ACT_DYN_TOKEN = 0,  /* scale per row of x at run time (pare_linear_i8_dynamic's behaviour) */
    PARE_ACT_DYN_TENSOR,     /* one scale for the whole x at run time */
    PARE_ACT_STATIC,         /* scale (and zero point) fixed by calibration, per tensor */
    PARE_ACT_MODE_COUNT
} pare_act_mode;

/* How x is quantized. Symmetric: q in [-127, 127], x^ = s·q, s = max|x|/127 (dynamic).
 * Asymmetric: q in [0, 255], x^ = s·(q − z), the range [min, max] extended to include 0, s = (max − min)/255,
 * z = clamp(round(−min/s), 0, 255) — per row for DYN_TOKEN, per tensor for DYN_TENSOR; given for STATIC.
 * STATIC: values outside [s·(lo − z), s·(hi − z)] saturate (lo, hi = −127, 127 or 0, 255); a symmetric
 * static scheme needs zero = 0, an asymmetric one 0 <= zero <= 255; scale finite and > 0.
 * outlier_threshold > 0: LLM.int8() — each call, the input features j with max_m |x[m,j]| > threshold run
 * in floating point on the caller's f32 weights (+inf: the decomposition's bookkeeping without outliers, the
 * same bits as 0); 0: off; NaN or < 0: PARE_EINVAL. outlier_f16 = 1 rounds both operands of that part to
 * f16 first (round to nearest even); a value beyond f16's range (|v| >= 65520) is PARE_ENUMERIC naming it.
 * torch_qparams nonzero (DYN_TENSOR asymmetric without outliers only, else PARE_EINVAL): the scale and zero
 * point are PyTorch quantize_dynamic's (ChooseQuantizationParams with reduce_range: u8 range 0..127, scale
 * (max − min)/127, inv = 1/scale; gemm_i8_internal.h pare_i8_torch_asym_params_) instead of pare's 0..255. */
typedef struct pare_i8_act {
    pare_act_mode mode;
    int symmetric;           /* nonzero: symmetric; 0: asymmetric (u8 with zero point) */
    float scale;             /* PARE_ACT_STATIC only */
    int32_t zero;            /* PARE_ACT_STATIC only */
    float outlier_threshold; /* > 0: LLM.int8() decomposition; 0: off */
    int torch_qparams;       /* nonzero: PyTorch's dynamic per-tensor parameters (reduce_range); see above */
    int outlier_f16;         /* LLM.int8()'s outlier part: 1 x[:,O] and W[:,O] rounded to f16 (the paper's 16-bit
                                part: f16 operands, their products exact in f32, f32 accumulation), 0 in f32 */
} pare_i8_act;

/* "dynamic_token", "dynamic_tensor", "static"; "?" out of range. */
const char *pare_act_mode_name(pare_act_mode m);

/* Per-tensor weights: one scale absmax(W)/127 for every output channel (SmoothQuant O1–O3). Same struct,
 * packing and errors as pare_i8_weight_quantize (PARE_ENUMERIC naming the row of a NaN/Inf). */
pare_status pare_i8_weight_quantize_tensor(pare_i8_weight *out, const float *W, int64_t N, int64_t K);
/* From int8 values already chosen (GPTQ, PyTorch's qint8 and the like): q (N,K) in [-128, 127], scale (N)
 * finite >= 0. Copies; packs like pare_i8_weight_quantize. PARE_EINVAL for a negative scale (naming the
 * position), PARE_ENUMERIC for a non-finite scale. -128 is accepted: every product path stays exact
 * (gemm_i8_internal.h U8S8_MAX_K, docs/kernels-int8.md). */
pare_status pare_i8_weight_from_int(pare_i8_weight *out, const int8_t *q, const float *scale, int64_t N, int64_t K);

/* PyTorch's quantize_dynamic weights (torch 1.13, default_weight_observer: per tensor, symmetric qint8):
 * scale = max(max|W| / 127.5, FLT_EPSILON) in float, q = clamp(round-half-even(W·(1/scale)), -128, 127),
 * zero point 0 — so -128 appears where W = -max|W|. The same struct as pare_i8_weight_quantize_tensor
 * (one scale repeated per row); PARE_ENUMERIC naming the row of a NaN/Inf. */
pare_status pare_i8_weight_quantize_torch(pare_i8_weight *out, const float *W, int64_t N, int64_t K);

/* Bytes of workspace pare_linear_i8_act needs (a NULL: the default scheme, DYN_TOKEN symmetric). */
size_t pare_linear_i8_act_workspace(int64_t M, int64_t N, int64_t K, const pare_i8_act *a);
/* y(M,N) = dequant(int8 GEMM of quant(x)(M,K) and w->q(N,K)) + bias(N) [+ x[:,O]·W_f32[:,O]^T].
 * W_f32 (N,K): the weights the outlier columns use when a->outlier_threshold > 0; NULL: their int8
 * values dequantized (q·scale), as bitsandbytes does at inference, so only the int8 form is stored.
 * a NULL: DYN_TOKEN symmetric without outliers. workspace: pare_linear_i8_act_workspace(M, N, K, a)
 * bytes, 64-byte aligned (4 required). n_outliers (may be NULL) receives the number of input features
 * that ran in f32 in this call (0 without decomposition). y may be x (N == K).
 * Errors: PARE_EINVAL (bad scheme, naming the field and the valid values; NULL buffers; K > PARE_I8_MAX_K;
 * ), PARE_ENUMERIC naming the row of x that holds NaN or Inf (every
 * mode), PARE_EINTERNAL if oneDNN fails. */
pare_status pare_linear_i8_act(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                               const float *bias, int64_t M, const pare_i8_act *a, void *workspace,
                               int64_t *n_outliers);
/* The same with an activation (kernels/fuse_ops.h pare_epilogue: GELU tanh/erf, ReLU) applied to each output row
 * in the dequantization pass, while the row is in cache: int8 GEMM + dequantize + GELU in one kernel, the fuse
 * pass's Linear+GELU on int8 weights (with LLM.int8() outlier columns, after their floating-point part instead). */
pare_status pare_linear_i8_act_epilogue(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                                        const float *bias, int64_t M, const pare_i8_act *a, void *workspace,
                                        int64_t *n_outliers, int epilogue);
/* Reference twin: scalar quantization with the same float operations, int64 sums, the floating-point part of
 * LLM.int8() in double (its operands rounded to f16 first with outlier_f16). Assumes valid arguments; a row of
 * x holding NaN/Inf gives NaN outputs. */
void pare_linear_i8_act_ref(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                            const float *bias, int64_t M, const pare_i8_act *a, int64_t *n_outliers);

/* ---- int8 attention (nn_attention_i8.c) ---- */

/* The scale of the softmax probabilities P on their u8 grid. */
typedef enum pare_attn_p_scale { /* append-only */
    PARE_ATTN_P_ROW = 0,         /* per query row: max_j P[i,j]/255 (the row's largest probability maps to 255) */
    PARE_ATTN_P_FIXED,           /* 1/255 for every row (SmoothQuant's grid; flat rows of long T round to 0) */
    PARE_ATTN_P_COUNT
} pare_attn_p_scale;

/*
 *
 * Inference-only twin of the dense f32 attention (attn/full.c; its definition pare_attention_forward_ref in nn.h: packed qkv (B,T,3C), lengths (B) or NULL, causal,
 * scale 1/sqrt(D), masked softmax, out (B,T,C)) with both batched products in int8 (SmoothQuant's
 * "BMM" quantization): Q, K per token symmetric; S = Q·K^T in int32; softmax in f32; P in u8 with a scale
 * per query row (max_j P/255; p_scale PARE_ATTN_P_ROW) or the fixed 1/255 (PARE_ATTN_P_FIXED); V per channel (per column of the head) symmetric over the valid keys; O = P·V in int32.
 * workspace: pare_attention_i8_workspace(B, T, C, H) bytes, 64-byte aligned (a slot per (b,h) pair).
 * Errors: PARE_EINVAL (p_scale out of range; shapes: C % H, T <= 66311 (its operands stay in [-127, 127]); NULL buffers), PARE_ENUMERIC naming the batch, token
 * and part (q/k/v) of a NaN/Inf that the result depends on, PARE_EINTERNAL if oneDNN fails. */
size_t pare_attention_i8_workspace(int64_t B, int64_t T, int64_t C, int64_t H);
pare_status pare_attention_forward_i8(float *out, const float *qkv, const int32_t *lengths, int causal,
                                      pare_attn_p_scale p_scale, int64_t B, int64_t T, int64_t C, int64_t H,
                                      void *workspace);
/* Reference twin: the same quantization and float operations, int64 triple loops. */
void pare_attention_forward_i8_ref(float *out, const float *qkv, const int32_t *lengths, int causal,
                                   pare_attn_p_scale p_scale, int64_t B, int64_t T, int64_t C, int64_t H);

#endif
