/* qat_pass.c — quantization-aware training (QAT) and the conversion that follows it.
 *
 *   qat          marks Linear layers for fake quantization during training (two fake_quant transforms per
 *                layer, graph/transform.h: the Linear op itself knows nothing of QAT): weights per output channel
 *                (or per group of inputs: `group`), activations per tensor (or per token, dynamic: `per_token`),
 *                symmetric `bits`-bit grids, straight-through gradients. Scales
 *                are parameters "<layer>.wscale" (N) and "<layer>.ascale" (1) holding log-scales,
 *                initialised from calibration (max |·| / qmax); learned by LSQ (learn_scales) or
 *                following the data (weights' max, activations' moving max) while training.
 *   qat_convert  turns a QAT model into real kernels: at 8 bits the int8 kernel with the learned weight
 *                scales and a static activation scale; below 8 bits the simulated form (no kernel runs
 *                W4A4), labelled so.
 */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "graph/transform.h"
#include "kernels/qat.h"

static const pare_opt_spec qat_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"bits", PARE_OPT_INT, "8", 2, 8, NULL, "bit-width of weights and activations"},
    {"learn_scales", PARE_OPT_BOOL, "true", 0, 0, NULL, "learn the scales (LSQ); false: they follow the data's max"},
    {"group", PARE_OPT_INT, "0", 0, 1e9, NULL,
     "weights: a scale per this many consecutive inputs of each output channel (ZeroQuant); 0: one per channel"},
    {"per_token", PARE_OPT_BOOL, "false", 0, 0, NULL,
     "activations: a scale per token, max |x| / qmax at every forward (ZeroQuant; never learned); false: one per tensor"},
    QI_CALIB_OPTS("32"),
};
static const pare_schema qat_schema = {"qat", "quantization-aware training: fake-quantized weights and activations with a straight-through estimator",
                                       qat_opts, (int)(sizeof qat_opts / sizeof qat_opts[0])};

pare_status qi_attach_fake_quant(pare_model *m, int64_t node, int bits, int learn, int group, int per_token, float amax)
{
    char name[PARE_NAME_MAX + 16];
    const pare_param *w = qi_weight(m, node);
    int64_t N = w->shape[0], K = w->shape[1], one = 1;
    if (group && K % group)
        return pare_fail(PARE_EINVAL, "qat: group=%d does not divide the input dimension %lld of %s", group, (long long)K,
                         m->nodes[node].name);
    int64_t R = group ? N * (K / group) : N, G = group ? group : K; /* a scale per row of the (R, G) view */
    float qmax = (float)((1 << (bits - 1)) - 1);
    snprintf(name, sizeof name, "%s.wscale", m->nodes[node].name);
    int pw = pare_model_add_param(m, name, 1, (int64_t[]){R, 1}, learn);
    snprintf(name, sizeof name, "%s.ascale", m->nodes[node].name);
    int pa = pare_model_add_param(m, name, 1, (int64_t[]){one, 1}, learn && !per_token);
    if (pw < 0 || pa < 0) return PARE_ENOMEM;
    const float *W = qi_weight(m, node)->blob->data;
    float *lw = m->params[pw].blob->data, *la = m->params[pa].blob->data;
    for (int64_t r = 0; r < R; r++) {
        float a = 0;
        for (int64_t k = 0; k < G; k++) a = fmaxf(a, fabsf(W[r * G + k]));
        lw[r] = logf(a > 0 ? a / qmax : 1.0f);
    }
    la[0] = logf(amax > 0 ? amax / qmax : 1.0f); /* unused per token: the scales follow each row */
    /* two fake-quant transforms (graph/transform.h) */
    pare_transform tw = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_WEIGHT, .bits = bits, .learn = learn, .group = group, .aux = {pw, -1}};
    pare_transform ta = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_INPUT, .bits = bits, .learn = learn && !per_token,
                         .per_token = per_token, .aux = {pa, -1}};
    PARE_TRY(pare_node_attach(m, node, &tw));
    return pare_node_attach(m, node, &ta);
}

static pare_status qat_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    int bits = pare_opt_int(o, "bits"), learn = pare_opt_bool(o, "learn_scales"), group = pare_opt_int(o, "group");
    int per_token = pare_opt_bool(o, "per_token");
    pare_calib c = {0};
    pare_status st = qi_calibrate(&c, m, ctx, o, idx, n, PARE_CALIB_MINMAX);
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        st = qi_attach_fake_quant(m, idx[i], bits, learn, group, per_token, fmaxf(-c.s[i].min, c.s[i].max));
    pare_calib_free(&c);
    free(idx);
    return st;
}
const pare_pass pare_pass_qat = {&qat_schema, qat_apply, 1};

static const pare_opt_spec qc_opts[] = {QI_LAYER_OPTS("*")};
static const pare_schema qc_schema = {"qat_convert", "convert a QAT-trained model to its quantized kernels (int8 at 8 bits; simulated below)",
                                      qc_opts, (int)(sizeof qc_opts / sizeof qc_opts[0])};

static pare_status qc_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n, done = 0;
    PARE_TRY(qi_select(m, o, 0, &idx, &n));
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_node *nd = &m->nodes[idx[i]];
        const pare_transform *tw = pare_node_transform(nd, PARE_TF_WEIGHT), *ta = pare_node_transform(nd, PARE_TF_INPUT);
        if (!tw || !ta || tw->kind != PARE_TF_FAKE_QUANT || ta->kind != PARE_TF_FAKE_QUANT) continue;
        pare_param *w = qi_weight(m, idx[i]);
        int64_t N = w->shape[0], K = w->shape[1];
        int bits = tw->bits, qmax = (1 << (bits - 1)) - 1, learn = tw->learn, pw = tw->aux[0], pa = ta->aux[0];
        if (tw->group || ta->per_token) { /* ZeroQuant's scheme: its kernel, int8 groups × int8 tokens */
            if (bits != 8 || !tw->group || !ta->per_token || learn)
                st = pare_fail(PARE_EINVAL, "qat_convert: %s was trained with %s%s weights and %s activations at %d bits; "
                               "group-wise QAT converts only as ZeroQuant's kernel: 8 bits, group > 0, per_token, fixed "
                               "scales (learn_scales = false)", nd->name, tw->group ? "group-wise" : "per-channel",
                               learn ? " learned" : "", ta->per_token ? "per-token" : "per-tensor", bits);
            else st = qi_set_qblock(m, idx[i], PARE_QB_I8G, tw->group, 1, "qat zeroquant");
            m->params[pw].trainable = m->params[pa].trainable = 0;
            pare_node_detach(m, idx[i], PARE_TF_WEIGHT);
            pare_node_detach(m, idx[i], PARE_TF_INPUT);
            done++;
            continue;
        }
        const float *lw = m->params[pw].blob->data;
        float sa = expf(m->params[pa].blob->data[0]);
        float *scale = malloc(sizeof *scale * (size_t)N), *Wq = pare_alloc(sizeof *Wq * (size_t)(N * K));
        int8_t *q8 = malloc((size_t)(N * K));
        if (!scale || !Wq || !q8) st = pare_fail(PARE_ENOMEM, "out of memory");
        for (int64_t r = 0; st == PARE_OK && r < N; r++) {
            scale[r] = expf(lw[r]);
            for (int64_t k = 0; k < K; k++) {
                float v = nearbyintf(w->blob->data[r * K + k] / scale[r]);
                v = v < -qmax ? (float)-qmax : v > qmax ? (float)qmax : v;
                q8[r * K + k] = (int8_t)v;
                Wq[r * K + k] = v * scale[r];
            }
        }
        char method[48];
        snprintf(method, sizeof method, "qat %s", learn ? "lsq" : "fixed");
        if (st == PARE_OK && bits == 8) {
            pare_i8_act a = {PARE_ACT_STATIC, 1, sa, 0, 0, 0, 0};
            st = qi_set_i8_from_int(m, idx[i], q8, scale, &a, method);
        } else if (st == PARE_OK) {
            pare_qspec ws = {PARE_NF_INT, bits, 1, PARE_GRAN_ROW, 0}, as = {PARE_NF_INT, bits, 1, PARE_GRAN_TENSOR, 0};
            pare_qparams qp = {sa, 0, -qmax, qmax};
            st = qi_set_sim(m, idx[i], Wq, &ws, pare_qspec_storage_bits(&ws, N, K), 2, &as, &qp, method);
        }
        free(scale), free(q8), pare_free(Wq);
        m->params[pw].trainable = m->params[pa].trainable = 0; /* kept for the record */
        pare_node_detach(m, idx[i], PARE_TF_WEIGHT);
        pare_node_detach(m, idx[i], PARE_TF_INPUT);
        done++;
    }
    free(idx);
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "qat_convert: no selected layer was trained with qat (apply \"qat\" and train first)");
    return st;
}
const pare_pass pare_pass_qat_convert = {&qc_schema, qc_apply, 0};
