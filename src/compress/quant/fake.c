/* fake.c — simulated quantization and mixed precision by layer.
 *
 *   fake_quant  any element format of core/numfmt.h (int 2-16 bits, fp8 E4M3/E5M2, bf16, fp16, tf32,
 *               binary, ternary) at any granularity for weights, and optionally for activations (ranges
 *               from each batch). No kernel runs these: the Linear computes in f32 on dequantized
 *               values and every table labels the layer "simulated". It is how pare measures the
 *               accuracy of formats without kernels (per-channel activations, fp8, 3-bit...).
 *   mixed       a format per layer-name pattern, first match wins:
 *               spec = "enc.*.ffn.down=fp32, *=int8". Each format is one of the other passes (bf16 and fp16
 *               are the bf16 pass's real 16-bit format; tf32 and fp8 stay simulated).
 */
#include "quant_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#define FORMATS "int|fp8_e4m3|fp8_e5m2|bf16|fp16|tf32|binary|ternary|fp32"
static const pare_opt_spec fq_opts[] = {
    QI_LAYER_OPTS("*"),
    {"w_format", PARE_OPT_ENUM, "int", 0, 0, FORMATS, "weight element format"},
    {"w_bits", PARE_OPT_INT, "8", 2, 16, NULL, "w_format=int: weight bit-width"},
    {"w_gran", PARE_OPT_ENUM, "channel", 0, 0, "channel|tensor|group", "weight scale granularity"},
    {"w_group", PARE_OPT_INT, "128", 1, 1e9, NULL, "w_gran=group: group size along the input dimension"},
    {"w_symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "symmetric weight grid"},
    {"a_format", PARE_OPT_ENUM, "fp32", 0, 0, FORMATS, "activation element format (fp32: not quantized)"},
    {"a_bits", PARE_OPT_INT, "8", 2, 16, NULL, "a_format=int: activation bit-width"},
    {"a_gran", PARE_OPT_ENUM, "token", 0, 0, "token|tensor|column|group", "activation scale granularity (column: per input channel)"},
    {"a_group", PARE_OPT_INT, "128", 1, 1e9, NULL, "a_gran=group: group size"},
    {"a_symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "symmetric activation grid"},
};
static const pare_schema fq_schema = {"fake_quant", "simulated quantization of weights and activations in any format (labelled simulated)",
                                      fq_opts, (int)(sizeof fq_opts / sizeof fq_opts[0])};

static pare_status spec_of(pare_qspec *s, const pare_options *o, const char *p)
{
    char k[32];
    snprintf(k, sizeof k, "%s_format", p);
    PARE_TRY(pare_numfmt_parse(pare_opt_str(o, k), &s->fmt));
    snprintf(k, sizeof k, "%s_bits", p);
    s->bits = pare_opt_int(o, k);
    snprintf(k, sizeof k, "%s_gran", p);
    PARE_TRY(pare_qgran_parse(pare_opt_str(o, k), &s->gran));
    snprintf(k, sizeof k, "%s_group", p);
    s->group = s->gran == PARE_GRAN_GROUP ? pare_opt_int(o, k) : 0;
    snprintf(k, sizeof k, "%s_symmetric", p);
    s->symmetric = pare_opt_bool(o, k);
    return PARE_OK;
}

static pare_status fq_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_qspec ws = {0}, as = {0};
    pare_status st = spec_of(&ws, o, "w");
    if (st == PARE_OK) st = spec_of(&as, o, "a");
    int a_sim = as.fmt != PARE_NF_F32;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_param *w = qi_weight(m, idx[i]);
        int64_t N = w->shape[0], K = w->shape[1];
        if ((st = pare_qspec_check(&ws, N, K)) != PARE_OK || (a_sim && (st = pare_qspec_check(&as, 1, K)) != PARE_OK)) {
            st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
            break;
        }
        float *Wq = pare_alloc(sizeof *Wq * (size_t)(N * K));
        if (!Wq) st = pare_fail(PARE_ENOMEM, "out of memory");
        else if ((st = pare_fake_quant(Wq, w->blob->data, N, K, &ws)) != PARE_OK) st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
        else st = qi_set_sim(m, idx[i], Wq, &ws, pare_qspec_storage_bits(&ws, N, K), a_sim, &as, NULL, "fake_quant");
        pare_free(Wq);
    }
    free(idx);
    return st;
}
const pare_pass pare_pass_fake_quant = {&fq_schema, fq_apply, 0};

/* ---- mixed precision by layer ---- */
static const pare_opt_spec mx_opts[] = {
    {"spec", PARE_OPT_STRING, NULL, 0, 0, NULL,
     "comma-separated pattern=format, first match wins; formats: fp32, int8 (dynamic W8A8), int8_static, llm_int8, "
     "q8_0, q4_0, q4_1, int4_group, int8_group, wN or wNgG (RTN weight-only N bits, groups of G), bf16, fp16 (real "
     "16-bit kernels: the bf16 pass), fp8_e4m3, fp8_e5m2, tf32 (simulated)"},
};
static const pare_schema mx_schema = {"mixed", "mixed precision by layer: a format per layer-name pattern",
                                      mx_opts, (int)(sizeof mx_opts / sizeof mx_opts[0])};

/* Apply one format to one Linear, through the pass that implements it. */
static pare_status apply_format(pare_model *m, const char *layer, const char *fmt, const pare_pass_ctx *ctx)
{
    pare_kv kv[4];
    int nkv = 0;
    char bits[8], group[16];
    const pare_pass *p = NULL;
    kv[nkv++] = (pare_kv){"layers", PARE_KV_STR, 0, layer};
    if (!strcmp(fmt, "fp32")) return PARE_OK;
    if (!strcmp(fmt, "int8")) p = &pare_pass_dynamic_int8;
    else if (!strcmp(fmt, "int8_static")) p = &pare_pass_static_int8;
    else if (!strcmp(fmt, "llm_int8")) p = &pare_pass_llm_int8;
    else if (!strcmp(fmt, "q8_0") || !strcmp(fmt, "q4_0") || !strcmp(fmt, "q4_1") || !strcmp(fmt, "int4_group") ||
             !strcmp(fmt, "int8_group")) {
        p = &pare_pass_qblock;
        kv[nkv++] = (pare_kv){"format", PARE_KV_STR, 0, fmt};
    } else if (!strcmp(fmt, "bf16") || !strcmp(fmt, "fp16")) { /* the real 16-bit format (half.c) */
        p = &pare_pass_bf16;
        kv[nkv++] = (pare_kv){"dtype", PARE_KV_STR, 0, !strcmp(fmt, "bf16") ? "bf16" : "f16"};
    } else if (!strcmp(fmt, "tf32") || !strcmp(fmt, "fp8_e4m3") || !strcmp(fmt, "fp8_e5m2")) {
        p = &pare_pass_fake_quant;
        kv[nkv++] = (pare_kv){"w_format", PARE_KV_STR, 0, fmt};
        kv[nkv++] = (pare_kv){"a_format", PARE_KV_STR, 0, fmt};
    } else if (fmt[0] == 'w' && isdigit((unsigned char)fmt[1])) {
        int b = 0;
        long g = 0;
        char tail = 0;
        int k = sscanf(fmt, "w%dg%ld%c", &b, &g, &tail);
        if (k < 1 || (k == 1 && strchr(fmt, 'g')) || k == 3)
            return pare_fail(PARE_EINVAL, "spec: format '%s' is not wN or wNgG", fmt);
        p = &pare_pass_rtn;
        snprintf(bits, sizeof bits, "%d", b), snprintf(group, sizeof group, "%ld", k == 2 ? g : 0L);
        kv[nkv++] = (pare_kv){"bits", PARE_KV_STR, 0, bits};
        kv[nkv++] = (pare_kv){"group", PARE_KV_STR, 0, group};
    } else
        return pare_fail(PARE_EINVAL, "spec: unknown format '%s' (valid: fp32, int8, int8_static, llm_int8, q8_0, q4_0, "
                                      "q4_1, int4_group, int8_group, wN, wNgG, bf16, fp16, tf32, fp8_e4m3, fp8_e5m2)", fmt);
    pare_options o;
    PARE_TRY(pare_opts_resolve(&o, p->schema, kv, nkv));
    if (p->needs_calib && !ctx->calib)
        return pare_fail(PARE_EINVAL, "spec: format %s needs calibration data: give calib=<task>", fmt);
    return p->apply(m, &o, ctx);
}

static pare_status mx_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    enum { MAXE = 32 };
    char buf[PARE_OPT_STR_MAX], *pat[MAXE], *fmt[MAXE];
    int ne = 0;
    snprintf(buf, sizeof buf, "%s", pare_opt_str(o, "spec"));
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) return pare_fail(PARE_EINVAL, "spec: '%s' is not pattern=format", tok);
        if (ne == MAXE) return pare_fail(PARE_EINVAL, "spec: more than %d entries", MAXE);
        *eq = 0;
        char *e = eq - 1;
        while (e > tok && isspace((unsigned char)*e)) *e-- = 0;
        char *f = eq + 1;
        while (isspace((unsigned char)*f)) f++;
        for (e = f + strlen(f); e > f && isspace((unsigned char)e[-1]);) *--e = 0;
        pat[ne] = tok, fmt[ne] = f, ne++;
    }
    if (!ne) return pare_fail(PARE_EINVAL, "spec is empty: give pattern=format entries");
    int *used = calloc((size_t)ne, sizeof *used);
    if (!used) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < m->nnodes; i++) {
        if (m->nodes[i].op != PARE_OP_LINEAR) continue;
        for (int e = 0; e < ne; e++)
            if (pare_name_match(pat[e], m->nodes[i].name)) {
                used[e] = 1;
                st = apply_format(m, m->nodes[i].name, fmt[e], ctx);
                break;
            }
    }
    for (int e = 0; st == PARE_OK && e < ne; e++)
        if (!used[e]) st = pare_fail(PARE_EINVAL, "spec: pattern '%s' matches no Linear layer (or only layers an earlier entry took)", pat[e]);
    free(used);
    return st;
}
const pare_pass pare_pass_mixed = {&mx_schema, mx_apply, 0};
