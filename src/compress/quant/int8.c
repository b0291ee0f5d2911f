/* int8.c — the W8A8 passes on the real int8 kernel (kernels/gemm_i8.h):
 *
 *   dynamic_int8  weights per channel or per tensor; activations quantized at run time per token or per
 *                 tensor (symmetric or asymmetric); scheme = "torch": PyTorch 1.13 quantize_dynamic's
 *                 exact parameters (weights per tensor qint8 with max|W|/127.5 and codes down to −128,
 *                 activations per tensor u8 with reduce_range), on the same int8 kernels
 *   static_int8   activations with one scale (and zero point) per tensor fixed by calibration: min-max,
 *                 percentile, KL divergence or MSE search over observed inputs (calib.h)
 *   llm_int8      LLM.int8(): input features whose magnitude exceeds a threshold run in f16 (the paper;
 *                 outlier_dtype = "f32" keeps them in f32), the rest in int8 with per-token × per-channel
 *                 scales (Dettmers et al., 2022). The outlier columns of W are the int8 values dequantized
 *                 (then rounded to f16), as bitsandbytes does at inference: only the int8 form is stored
 *
 * At bits = 8 (the default) all three run int8 GEMMs with int32 accumulation; nothing is simulated.
 * dynamic_int8 and static_int8 also take bits = 2..7 for the PTQ-versus-QAT comparisons: no kernel runs
 * those, so the layers are simulated (fake-quantized on the same grids) and labelled so.
 */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Below 8 bits: weights fake-quantized per channel or tensor, activations per token / tensor
 * dynamically (a_qp NULL) or with the static grid a_qp. */
static pare_status set_low_bits(pare_model *m, int64_t node, int bits, int per_tensor, pare_qgran agran, int asym_act,
                                const pare_qparams *a_qp, const char *method)
{
    pare_param *w = qi_weight(m, node);
    int64_t N = w->shape[0], K = w->shape[1];
    pare_qspec ws = {PARE_NF_INT, bits, 1, per_tensor ? PARE_GRAN_TENSOR : PARE_GRAN_ROW, 0};
    pare_qspec as = {PARE_NF_INT, bits, !asym_act, agran, 0};
    float *Wq = malloc(sizeof *Wq * (size_t)(N * K));
    if (!Wq) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_fake_quant(Wq, w->blob->data, N, K, &ws);
    if (st == PARE_OK) st = qi_set_sim(m, node, Wq, &ws, pare_qspec_storage_bits(&ws, N, K), a_qp ? 2 : 1, &as, a_qp, method);
    else st = pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    free(Wq);
    return st;
}

/* ---- dynamic ---- */
static const pare_opt_spec dyn_opts[] = {
    QI_LAYER_OPTS("*"),
    {"weights", PARE_OPT_ENUM, "channel", 0, 0, "channel|tensor", "weight scales: one per output channel, or one per tensor"},
    {"acts", PARE_OPT_ENUM, "token", 0, 0, "token|tensor", "activation scales computed at run time per token or per tensor"},
    {"act_symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "symmetric activations (false: a zero point per scale)"},
    {"bits", PARE_OPT_INT, "8", 2, 8, NULL, "bit-width of weights and activations (below 8: simulated)"},
    {"attention", PARE_OPT_ENUM, "f32", 0, 0, "f32|int8",
     "int8: attention's Q·Kᵀ and P·V on int8 as well (dynamic per-tensor q, k, v; probabilities' u8 scale per row), "
     "in the blocks whose qkv Linear is quantized; scheme=pare, bits=8 only"},
    {"scheme", PARE_OPT_ENUM, "pare", 0, 0, "pare|torch",
     "pare: the options above; torch: PyTorch quantize_dynamic's qint8 weights per tensor and reduce_range u8 "
     "activations per tensor (sets weights, acts, act_symmetric itself)"},
    QI_TABLE_OPTS,
};
static const pare_schema dyn_schema = {
    "dynamic_int8", "post-training dynamic INT8 (W8A8): int8 weights, activations quantized at run time",
    dyn_opts, (int)(sizeof dyn_opts / sizeof dyn_opts[0])};

static pare_status dyn_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    if (!strcmp(pare_opt_str(o, "scheme"), "torch")) {
        static const char *fixed[] = {"weights", "acts", "act_symmetric", "bits", "attention"};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            if (pare_opt_given(o, fixed[i]))
                return pare_fail(PARE_EINVAL, "dynamic_int8: scheme=\"torch\" fixes %s (PyTorch's scheme: weights per "
                                 "tensor, acts per tensor, asymmetric, 8 bits); leave it out", fixed[i]);
        PARE_TRY(qi_select(m, o, 1, &idx, &n));
        pare_i8_act a = {PARE_ACT_DYN_TENSOR, 0, 0, 0, 0, 1, 0};
        int64_t nt = 0;
        pare_status st = qi_select_tables(m, o, idx, n, idx + n, &nt); /* tables: the weights' form, a scale per tensor */
        n += nt;
        for (int64_t i = 0; st == PARE_OK && i < n; i++) st = qi_set_i8(m, idx[i], QI_W_TORCH, &a, "dynamic torch");
        free(idx);
        return st;
    }
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_i8_act a = {!strcmp(pare_opt_str(o, "acts"), "tensor") ? PARE_ACT_DYN_TENSOR : PARE_ACT_DYN_TOKEN,
                     pare_opt_bool(o, "act_symmetric"), 0, 0, 0, 0, 0};
    int per_tensor = !strcmp(pare_opt_str(o, "weights"), "tensor");
    int64_t nt = 0;
    pare_status st = qi_select_tables(m, o, idx, n, idx + n, &nt); /* tables: int8 rows, a scale per row (weights=channel) */
    n += nt;
    int bits = pare_opt_int(o, "bits"), attn8 = !strcmp(pare_opt_str(o, "attention"), "int8");
    if (st == PARE_OK && attn8 && bits != 8)
        st = pare_fail(PARE_EINVAL, "dynamic_int8: attention=\"int8\" needs bits=8 (got bits=%d): the int8 batched products "
                       "have no simulated narrower form", bits);
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        st = bits == 8 ? qi_set_i8(m, idx[i], per_tensor, &a, "dynamic")
                       : set_low_bits(m, idx[i], bits, per_tensor, a.mode == PARE_ACT_DYN_TENSOR ? PARE_GRAN_TENSOR : PARE_GRAN_ROW,
                                      !a.symmetric, NULL, "dynamic");
    if (st == PARE_OK && attn8) qi_mark_attention_i8(m, idx, n - nt, 0);
    free(idx);
    return st;
}
const pare_pass pare_pass_dynamic_int8 = {&dyn_schema, dyn_apply, 0};

/* ---- static ---- */
static const pare_opt_spec st_opts[] = {
    QI_LAYER_OPTS("*"),
    {"weights", PARE_OPT_ENUM, "channel", 0, 0, "channel|tensor", "weight scales: one per output channel, or one per tensor"},
    {"method", PARE_OPT_ENUM, "minmax", 0, 0, "minmax|percentile|kl|mse", "how each layer's activation range is chosen from calibration"},
    {"percentile", PARE_OPT_FLOAT, "99.99", 50, 100, NULL, "method=percentile: the percentile of |x| kept"},
    {"act_symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "symmetric activations (false: u8 with a zero point)"},
    {"bits", PARE_OPT_INT, "8", 2, 8, NULL, "bit-width of weights and activations (below 8: simulated)"},
    QI_CALIB_OPTS("128"),
    QI_TABLE_OPTS,
};
static const pare_schema st_schema = {
    "static_int8", "post-training static INT8 (W8A8): activation scales fixed by calibration",
    st_opts, (int)(sizeof st_opts / sizeof st_opts[0])};

/* The static activation grid of one layer from its calibrated range. */
pare_i8_act qi_static_act(float lo, float hi, int symmetric)
{
    pare_i8_act a = {PARE_ACT_STATIC, symmetric, 1, 0, 0, 0, 0};
    if (symmetric) {
        float t = fmaxf(fabsf(lo), fabsf(hi));
        a.scale = t > 0 ? t / 127.0f : 1.0f;
    } else {
        lo = fminf(lo, 0), hi = fmaxf(hi, 0);
        a.scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
        long z = lrintf(-lo / a.scale);
        a.zero = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
    }
    return a;
}

static pare_status st_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_calib_method meth;
    pare_status st = pare_calib_method_parse(pare_opt_str(o, "method"), &meth);
    pare_calib c = {0};
    if (st == PARE_OK)
        st = qi_calibrate(&c, m, ctx, o, idx, n, meth == PARE_CALIB_M_MINMAX ? PARE_CALIB_MINMAX : PARE_CALIB_HIST);
    int sym = pare_opt_bool(o, "act_symmetric"), per_tensor = !strcmp(pare_opt_str(o, "weights"), "tensor");
    int bits = pare_opt_int(o, "bits");
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        float lo, hi;
        st = pare_calib_range(&lo, &hi, &c.s[i], meth, pare_opt_num(o, "percentile"), bits, sym, NULL);
        if (st != PARE_OK) break;
        char method[64];
        snprintf(method, sizeof method, "static %s [%.4g, %.4g]", pare_calib_method_name(meth), (double)lo, (double)hi);
        if (bits == 8) {
            pare_i8_act a = qi_static_act(lo, hi, sym);
            st = qi_set_i8(m, idx[i], per_tensor, &a, method);
        } else {
            pare_qparams qp;
            st = pare_qparams_make(&qp, lo, hi, bits, sym);
            if (st == PARE_OK) st = set_low_bits(m, idx[i], bits, per_tensor, PARE_GRAN_TENSOR, !sym, &qp, method);
        }
    }
    /* the tables have no activations to calibrate: their int8 rows (the lookup reads them), the weights' grid */
    int64_t nt = 0;
    if (st == PARE_OK) st = qi_select_tables(m, o, idx, n, idx + n, &nt);
    for (int64_t i = n; st == PARE_OK && i < n + nt; i++) {
        pare_i8_act a = {PARE_ACT_DYN_TOKEN, 1, 0, 0, 0, 0, 0};
        st = bits == 8 ? qi_set_i8(m, idx[i], per_tensor, &a, "static (table)")
                       : set_low_bits(m, idx[i], bits, per_tensor, PARE_GRAN_ROW, 0, NULL, "static (table)");
    }
    pare_calib_free(&c);
    free(idx);
    return st;
}
const pare_pass pare_pass_static_int8 = {&st_schema, st_apply, 1};

/* ---- LLM.int8() ---- */
static const pare_opt_spec llm_opts[] = {
    QI_LAYER_OPTS("*"),
    {"threshold", PARE_OPT_FLOAT, "6.0", 0, 1e30, NULL, "input features with any |x| above this run in floating point (0: none)"},
    {"outlier_dtype", PARE_OPT_ENUM, "f16", 0, 0, "f16|f32", "the outlier part's x and W: f16 (the paper: f16 operands, f32 accumulation) or f32"},
};
static const pare_schema llm_schema = {
    "llm_int8", "LLM.int8(): mixed-precision decomposition — outlier features in f16 (or f32), the rest int8 per token × channel",
    llm_opts, (int)(sizeof llm_opts / sizeof llm_opts[0])};

static pare_status llm_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    float t = (float)pare_opt_num(o, "threshold");
    /* threshold 0 would send every feature to f32; express "no decomposition" as an infinite threshold */
    const int f16 = !strcmp(pare_opt_str(o, "outlier_dtype"), "f16");
    pare_i8_act a = {PARE_ACT_DYN_TOKEN, 1, 0, 0, t > 0 ? t : INFINITY, 0, f16};
    char method[64];
    snprintf(method, sizeof method, "llm.int8 threshold=%g outliers=%s", (double)t, f16 ? "f16" : "f32");
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) st = qi_set_i8(m, idx[i], 0, &a, method);
    free(idx);
    return st;
}
const pare_pass pare_pass_llm_int8 = {&llm_schema, llm_apply, 0};
