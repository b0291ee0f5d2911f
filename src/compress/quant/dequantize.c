/* dequantize.c — the `dequantize` pass: quantized Linear weights back to f32, with the values the quantized
 * kernel multiplies by (int8: q·scale per output channel; groups and blocks: pare_qb_dequantize; simulated:
 * its dequantized copy; sparse: the master, which holds exactly what the layout stores), and quantized embedding
 * tables (the quantization passes' `embeddings` option) the same way. The result is an f32
 * model whose weights lie on the quantization grid, so the f32-only machinery runs on a quantized model: the
 * reverse composition "quantize, then prune" (prune the grid values by magnitude, then sparsify int8=true or
 * dynamic_int8 again, which gives back the same integers: docs/pruning.md). Activation quantization is
 * dropped with the format (the model computes in f32). Deliberately not here: keeping the activations'
 * quantization (static scales, LLM.int8 outlier columns) — they belong to the format that is removed. */
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/format.h"
#include "kernels/cast.h"

static const pare_opt_spec opts[] = {
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over Linear layer names to dequantize"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to leave as they are (\"\": none)"},
    {"embeddings", PARE_OPT_BOOL, "true", 0, 0, NULL, "also the quantized embedding tables (layers = \"\": only them)"},
};
static const pare_schema schema = {"dequantize",
                                   "quantized Linear weights back to f32 on their quantization grid (quantize, then prune)",
                                   opts, (int)(sizeof opts / sizeof opts[0])};

/* w back to f32 on its grid; `who` names it in messages (a Linear node or an embedding node). */
static pare_status dequantize_param(pare_param *w, const char *who)
{
    const pare_qlinear *q = w->q;
    int64_t N = w->shape[0], K = w->shape[1];
    PARE_TRY(pare_param_make_private(w));
    float *W = w->blob->data; /* (N, K) */
    switch (w->format) {
    case PARE_FMT_I8_CHANNEL:
        for (int64_t r = 0; r < N; r++)
            for (int64_t k = 0; k < K; k++) W[r * K + k] = (float)q->i8.q[r * K + k] * q->i8.scale[r];
        break;
    case PARE_FMT_QBLOCK: pare_qb_dequantize(W, &q->qb); break;
    case PARE_FMT_WQ: pare_wq_dequantize(W, &q->wq); break;
    case PARE_FMT_PQ: pare_pq_dequantize(W, &q->pq); break;
    case PARE_FMT_SIMULATED: memcpy(W, q->w_sim, sizeof(float) * (size_t)(N * K)); break;
    case PARE_FMT_SPARSE: break; /* the master is the stored weight (sparsify baked the mask into it) */
    case PARE_FMT_HALF: /* the 16-bit values, widened exactly */
        for (int64_t r = 0; r < N; r++) pare_cast_from_half_fast(W + r * K, q->hw.w + r * K, q->hw.dtype, K);
        break;
    default:
        return pare_fail(PARE_EINVAL, "dequantize: %s is stored as %s, which this pass does not know", who, pare_format_label(w));
    }
    pare_param_set_q(w, NULL);
    return PARE_OK;
}

static pare_status apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n = 0, done = 0;
    if (!idx) return pare_fail(PARE_ENOMEM, "out of memory");
    const char *layers = pare_opt_str(o, "layers");
    pare_status st = *layers ? pare_select_linears(m, layers, pare_opt_str(o, "exclude"), idx, &n) : PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        if (w->format == PARE_FMT_F32) continue;
        char who[PARE_NAME_MAX + 8];
        snprintf(who, sizeof who, "layer %s", m->nodes[idx[i]].name);
        if ((st = dequantize_param(w, who)) == PARE_OK) done++;
    }
    /* quantized embedding tables (the quantization passes' `embeddings` option): the values the lookup read */
    for (int64_t i = 0; st == PARE_OK && pare_opt_bool(o, "embeddings") && i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_EMBEDDING || nd->nparam < 1 || m->params[nd->param[0]].format == PARE_FMT_F32) continue;
        char who[PARE_NAME_MAX + 16];
        snprintf(who, sizeof who, "embedding %s", nd->name);
        if ((st = dequantize_param(&m->params[nd->param[0]], who)) == PARE_OK) done++;
    }
    free(idx);
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "dequantize: no selected Linear layer or table is quantized (all are f32 already)");
    return st;
}

const pare_pass pare_pass_dequantize = {&schema, apply, 0};
