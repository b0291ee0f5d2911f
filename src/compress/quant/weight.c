/* weight.c — weight-only and group-wise passes:
 *
 *   rtn        round-to-nearest weights at 2..8 bits, per channel or per group (the baseline)
 *   gptq       GPTQ (Frantar et al., 2022): the same grids, values chosen column by column with the
 *              inverse-Hessian error compensation from calibration inputs (gptq.h)
 *   zeroquant  ZeroQuant (Yao et al., 2022): int8 group-wise weights, int8 per-token dynamic activations
 *   qblock     the block formats: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k (llama.cpp), int4_group, int8_group
 *
 * Storage: 4-bit weights with groups of a multiple of 32 run on the int4-group kernel (f32 activations,
 * weights dequantized in registers); 8, 3 and 2 bits on the weight-only kernels of kernels/wq.h (when K and
 * the group fit their layouts); act_bits = 8 with 4 bits on W4A8 (int8 per-token activations, VNNI); other
 * bit-widths have no kernel and run simulated (f32 on the dequantized weights), labelled so, with their exact
 * storage in the size column. GPTQ's Hessians come
 * from the f32 model's activations, all layers in one calibration pass (not layer-by-layer on the
 * already-quantized model as the paper's sequential variant).
 */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#define WO_OPTS                                                                                                 \
    QI_LAYER_OPTS("*.*.*"),                                                                                      \
    {"bits", PARE_OPT_INT, "4", 2, 8, NULL, "weight bit-width"},                                                \
    {"group", PARE_OPT_INT, "128", 0, 1e9, NULL, "group size along the input dimension (0: one scale per output channel)"}, \
    {"symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "symmetric grid (false: a zero point per group)"},         \
    {"act_bits", PARE_OPT_INT, "32", 8, 32, NULL, "activations: 32 f32 (weight-only), 8 int8 per token (bits=4: W4A8 on VNNI)"}

static const pare_opt_spec rtn_opts[] = {WO_OPTS, QI_TABLE_OPTS};
static const pare_schema rtn_schema = {"rtn", "weight-only round-to-nearest quantization (2-8 bits, per channel or group)",
                                       rtn_opts, (int)(sizeof rtn_opts / sizeof rtn_opts[0])};
static const pare_opt_spec gptq_opts[] = {
    WO_OPTS,
    {"act_order", PARE_OPT_BOOL, "false", 0, 0, NULL, "quantize columns in order of decreasing Hessian diagonal"},
    {"damp", PARE_OPT_FLOAT, "0.01", 0, 10, NULL, "dampening: this fraction of mean(diag H) added to the diagonal"},
    {"block", PARE_OPT_INT, "128", 1, 1e6, NULL, "lazy-batch block size (columns)"},
    QI_CALIB_OPTS("128"),
};
static const pare_schema gptq_schema = {"gptq", "GPTQ: weight-only quantization with inverse-Hessian error compensation",
                                        gptq_opts, (int)(sizeof gptq_opts / sizeof gptq_opts[0])};

static pare_status check_group(const pare_model *m, int64_t node, int64_t group)
{
    int64_t K = m->params[m->nodes[node].param[0]].shape[1];
    if (group && K % group)
        return pare_fail(PARE_EINVAL, "group=%lld does not divide the input dimension %lld of %s", (long long)group,
                         (long long)K, m->nodes[node].name);
    return PARE_OK;
}

static pare_status weight_only(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx, int gptq)
{
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    int bits = pare_opt_int(o, "bits"), sym = pare_opt_bool(o, "symmetric"), act_bits = pare_opt_int(o, "act_bits");
    int64_t group = pare_opt_int(o, "group"), nt = 0;
    pare_status st = PARE_OK;
    if (act_bits != 8 && act_bits != 32)
        st = pare_fail(PARE_EINVAL, "%s: act_bits=%d: valid: 32 (f32 activations) or 8 (int8 per token)", gptq ? "gptq" : "rtn",
                       act_bits);
    if (st == PARE_OK && !gptq) st = qi_select_tables(m, o, idx, n, idx + n, &nt); /* rtn: tables on the same grid */
    n += nt;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) st = check_group(m, idx[i], group);
    pare_calib c = {0};
    if (st == PARE_OK && gptq) st = qi_calibrate(&c, m, ctx, o, idx, n, PARE_CALIB_MINMAX | PARE_CALIB_HESSIAN);
    pare_gptq_opts go = {bits, group, sym, gptq ? pare_opt_bool(o, "act_order") : 0, gptq ? pare_opt_num(o, "damp") : 0,
                         gptq ? pare_opt_int(o, "block") : 128};
    char method[64];
    if (gptq) snprintf(method, sizeof method, "gptq%s damp=%g", go.act_order ? " act_order" : "", go.damp);
    else snprintf(method, sizeof method, "rtn");
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_param *w = qi_weight(m, idx[i]);
        int64_t N = w->shape[0], K = w->shape[1], ng = group ? K / group : 1;
        int32_t *q = malloc(sizeof *q * (size_t)(N * K)), *zero = malloc(sizeof *zero * (size_t)(N * ng));
        float *scale = malloc(sizeof *scale * (size_t)(N * ng)), *Wq = pare_alloc(sizeof *Wq * (size_t)(N * K));
        if (!q || !zero || !scale || !Wq) st = pare_fail(PARE_ENOMEM, "out of memory (quantizing %s)", m->nodes[idx[i]].name);
        else if (gptq) st = pare_gptq_quantize(q, scale, zero, Wq, w->blob->data, &c.s[i].H, N, K, &go, NULL);
        else st = pare_rtn_quantize(q, scale, zero, Wq, w->blob->data, N, K, bits, group, sym);
        if (st == PARE_OK) st = qi_set_weight_only(m, idx[i], q, scale, zero, Wq, bits, group, sym, act_bits, method);
        else st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
        free(q), free(zero), free(scale), pare_free(Wq);
    }
    pare_calib_free(&c);
    free(idx);
    return st;
}

static pare_status rtn_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx) { return weight_only(m, o, ctx, 0); }
static pare_status gptq_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx) { return weight_only(m, o, ctx, 1); }
const pare_pass pare_pass_rtn = {&rtn_schema, rtn_apply, 0};
const pare_pass pare_pass_gptq = {&gptq_schema, gptq_apply, 1};

/* ---- the block formats (zeroquant is int8_group by another name) ---- */
pare_status qi_set_qblock(pare_model *m, int64_t node, pare_qb_kind kind, int64_t group, int sym, const char *method)
{
    pare_param *w = qi_weight(m, node);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_QBLOCK);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_qb_quantize(&q->qb, kind, w->blob->data, w->shape[0], w->shape[1], group, sym);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    }
    q->bits = 8.0 * (double)pare_qb_bytes(&q->qb);
    if (kind == PARE_QB_I4G || kind == PARE_QB_I8G)
        snprintf(q->desc, sizeof q->desc, "%s%lld%s a/%s (%s)", kind == PARE_QB_I4G ? "int4 w/group" : "int8 w/group",
                 (long long)group, sym ? "" : " asym", kind == PARE_QB_I4G ? "f32" : "int8 token", pare_qb_impl(&q->qb));
    else snprintf(q->desc, sizeof q->desc, "%s a/q8 blocks (%s)", pare_qb_kind_name(kind), pare_qb_impl(&q->qb));
    snprintf(q->method, sizeof q->method, "%s", method);
    pare_param_set_q(w, q);
    return PARE_OK;
}

static const pare_opt_spec qb_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"format", PARE_OPT_ENUM, "q4_0", 0, 0, "q4_0|q4_1|q8_0|q5_0|q5_1|q4_k|q5_k|q6_k|int4_group|int8_group",
     "storage format (q*_0/q*_1: llama.cpp blocks of 32; q*_k: k-quant super-blocks of 256)"},
    {"group", PARE_OPT_INT, "32", 1, 1e9, NULL, "int4_group/int8_group: group size along the input dimension"},
    {"symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "int4_group: symmetric (false: a zero point per group)"},
    QI_TABLE_OPTS,
};
static const pare_schema qb_schema = {"qblock", "block-quantized weights on their own kernels (llama.cpp Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, k-quants Q4_K/Q5_K/Q6_K, int4/int8 groups)",
                                      qb_opts, (int)(sizeof qb_opts / sizeof qb_opts[0])};

static pare_status qb_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_qb_kind kind;
    pare_status st = pare_qb_kind_parse(pare_opt_str(o, "format"), &kind);
    int64_t group = kind == PARE_QB_I4G || kind == PARE_QB_I8G ? pare_opt_int(o, "group") : pare_qb_ggml_block(kind, NULL), nt = 0;
    if (st == PARE_OK) st = qi_select_tables(m, o, idx, n, idx + n, &nt); /* tables: blocks along each row */
    n += nt;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        int64_t K = qi_weight(m, idx[i])->shape[1];
        if (group && K % group && kind != PARE_QB_I4G && kind != PARE_QB_I8G)
            st = pare_fail(PARE_EINVAL, "format=%s needs the input dimension to be a multiple of %lld; %s has %lld",
                           pare_qb_kind_name(kind), (long long)group, m->nodes[idx[i]].name, (long long)K);
        else st = check_group(m, idx[i], group);
    }
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        st = qi_set_qblock(m, idx[i], kind, group, pare_opt_bool(o, "symmetric"), "rtn");
    free(idx);
    return st;
}
const pare_pass pare_pass_qblock = {&qb_schema, qb_apply, 0};

static const pare_opt_spec zq_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"group", PARE_OPT_INT, "64", 1, 1e9, NULL, "weight group size along the input dimension"},
    {"lkd_steps", PARE_OPT_INT, "0", 0, 1e9, NULL,
     "layer-by-layer distillation (LKD): training steps per layer against the original model on calib (0: off)"},
    {"lkd_lr", PARE_OPT_FLOAT, "1e-4", 0, 1, NULL, "LKD peak learning rate (AdamW, no warm-up, cosine decay)"},
    {"lkd_batch", PARE_OPT_INT, "16", 1, 4096, NULL, "LKD batch size"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "LKD batch order"},
};
static const pare_schema zq_schema = {"zeroquant", "ZeroQuant: int8 group-wise weights with int8 per-token dynamic activations",
                                      zq_opts, (int)(sizeof zq_opts / sizeof zq_opts[0])};
static pare_status zq_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int64_t *idx, n, lkd = pare_opt_int(o, "lkd_steps");
    if (lkd > 0 && (!ctx || !ctx->calib))
        return pare_fail(PARE_EINVAL, "zeroquant: lkd_steps=%lld distils each layer on data: give calib = a task (its train "
                         "split)", (long long)lkd);
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    int64_t group = pare_opt_int(o, "group");
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) st = check_group(m, idx[i], group);
    if (st == PARE_OK && lkd > 0)
        st = qi_zeroquant_lkd(m, idx, n, (int)group, ctx->calib, lkd, pare_opt_num(o, "lkd_lr"), pare_opt_int(o, "lkd_batch"),
                              (uint64_t)pare_opt_num(o, "seed"));
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        st = qi_set_qblock(m, idx[i], PARE_QB_I8G, group, 1, lkd > 0 ? "zeroquant+lkd" : "zeroquant");
    free(idx);
    return st;
}
const pare_pass pare_pass_zeroquant = {&zq_schema, zq_apply, 0};
