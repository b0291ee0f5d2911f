/* dequantize.c — the `dequantize` pass: quantized Linear weights back to f32, with the values the quantized
 * kernel multiplies by (int8: q·scale per output channel; groups and blocks: pare_qb_dequantize; simulated:
 * its dequantized copy; sparse: the master, which holds exactly what the layout stores). The result is an f32
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
};
static const pare_schema schema = {"dequantize",
                                   "quantized Linear weights back to f32 on their quantization grid (quantize, then prune)",
                                   opts, (int)(sizeof opts / sizeof opts[0])};

static pare_status apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n = 0, done = 0;
    if (!idx) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), idx, &n);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        if (w->format == PARE_FMT_F32) continue;
        const pare_qlinear *q = w->q;
        int64_t N = w->shape[0], K = w->shape[1];
        if ((st = pare_param_make_private(w)) != PARE_OK) break;
        float *W = w->blob->data; /* (N, K) */
        switch (w->format) {
        case PARE_FMT_I8_CHANNEL:
            for (int64_t r = 0; r < N; r++)
                for (int64_t k = 0; k < K; k++) W[r * K + k] = (float)q->i8.q[r * K + k] * q->i8.scale[r];
            break;
        case PARE_FMT_QBLOCK: pare_qb_dequantize(W, &q->qb); break;
        case PARE_FMT_SIMULATED: memcpy(W, q->w_sim, sizeof(float) * (size_t)(N * K)); break;
        case PARE_FMT_SPARSE: break; /* the master is the stored weight (sparsify baked the mask into it) */
        case PARE_FMT_HALF: /* the 16-bit values, widened exactly */
            for (int64_t r = 0; r < N; r++) pare_cast_from_half_fast(W + r * K, q->hw.w + r * K, q->hw.dtype, K);
            break;
        case PARE_FMT_PQ: pare_pq_dequantize(W, &q->pq); break; /* the centroids, exactly */
        default:
            st = pare_fail(PARE_EINVAL, "dequantize: layer %s is stored as %s, which this pass does not know", m->nodes[idx[i]].name,
                           pare_format_label(w));
        }
        if (st != PARE_OK) break;
        pare_param_set_q(w, NULL);
        done++;
    }
    free(idx);
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "dequantize: no selected Linear layer is quantized (all are f32 already)");
    return st;
}

const pare_pass pare_pass_dequantize = {&schema, apply, 0};
