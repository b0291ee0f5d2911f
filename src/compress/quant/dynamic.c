/* dynamic.c — post-training dynamic INT8 quantization of Linear layers.
 *
 * Weights: int8 per output channel, symmetric (max-abs), quantized once here. Activations: int8 per
 * token, symmetric, quantized at run time by the kernel (kernels/gemm.h pare_linear_i8_dynamic), with
 * int32 accumulation and y = acc · s_x[token] · s_w[channel] + bias. This runs on the real int8 GEMM,
 * not a simulation. What it does not do: static activation scales, other granularities (issue 3).
 */
#include "compress/pass.h"

#include <stdlib.h>

static const pare_opt_spec opts[] = {
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over Linear layer names to quantize (e.g. \"enc.*.ffn.*\")"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to keep in f32 (\"\": none)"},
};
static const pare_schema schema = {
    "dynamic_int8",
    "post-training dynamic INT8: per-channel symmetric weights, per-token activations quantized at run time",
    opts, (int)(sizeof opts / sizeof opts[0])};

static pare_status apply(pare_model *m, const pare_options *o)
{
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n = 0;
    if (!idx) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), idx, &n);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        if (w->format != PARE_FMT_F32) continue; /* already quantized by an earlier pass */
        st = pare_i8_weight_quantize(&w->i8, w->blob->data, w->shape[0], w->shape[1]);
        if (st != PARE_OK) st = pare_fail_ctx(st, "dynamic_int8: layer %s", m->nodes[idx[i]].name);
        else w->format = PARE_FMT_I8_CHANNEL;
    }
    free(idx);
    return st;
}

const pare_pass pare_pass_dynamic_int8 = {&schema, apply};
