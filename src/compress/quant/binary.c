/* binary.c — 1-bit and ternary weights on packed add / subtract kernels (kernels/wq.h):
 *
 *   binary   sign(w)·α per output channel, α = mean |w| of the row (XNOR-Net, Rastegari et al. 2016, its
 *            weight-binarization; BinaryBERT, Bai et al. 2021, binarizes BERT's weights the same way), sign(0) = +1;
 *            1 bit per weight + an fp16 α per row
 *   ternary  TWN (Li et al. 2016) as TernaryBERT (Zhang et al. 2020) uses it: Δ = 0.7·mean |w| per row,
 *            ±α where |w| > Δ with α = mean |w| there, else 0; 2 bits per weight + an fp16 α per row
 *
 * Activations stay f32: the kernels add x where the weight is +1 and subtract it where it is −1, then scale
 * by α once per output. A Linear whose K is not a multiple of 16 (the packed words) runs simulated (the same
 * values in f32 from numfmt's fake quantization), labelled so.
 *
 * Deliberately not here: binarized activations (XNOR / popcount), the papers' training recipes (BinaryBERT's
 * ternary-weight splitting, TernaryBERT's distillation-aware training): these passes are post-training;
 * fine-tune under fake_quant {w_format="binary"|"ternary"} first to recover accuracy (docs/quantization-binary.md).
 */
#include "quant_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"

static const pare_opt_spec sign_opts[] = {QI_LAYER_OPTS("*.*.*")};
static const pare_schema bin_schema = {"binary", "1-bit weights sign(w)·mean|w| per channel on add/subtract kernels (XNOR-Net / BinaryBERT)",
                                       sign_opts, (int)(sizeof sign_opts / sizeof sign_opts[0])};
static const pare_schema ter_schema = {"ternary", "ternary weights {-a,0,+a} per channel, TWN threshold 0.7·mean|w|, on add/subtract kernels",
                                       sign_opts, (int)(sizeof sign_opts / sizeof sign_opts[0])};

static pare_status set_sign(pare_model *m, int64_t node, pare_wq_kind kind)
{
    pare_param *w = qi_weight(m, node);
    const int64_t N = w->shape[0], K = w->shape[1];
    const char *name = pare_wq_kind_name(kind);
    if (pare_wq_check(kind, N, K, K, 1) != PARE_OK) { /* no packed layout for this K: simulated, labelled */
        pare_qspec s = {kind == PARE_WQ_BIN ? PARE_NF_BINARY : PARE_NF_TERNARY, 0, 1, PARE_GRAN_ROW, 0};
        float *Wq = pare_alloc(sizeof *Wq * (size_t)(N * K));
        if (!Wq) return pare_fail(PARE_ENOMEM, "out of memory (quantizing %s)", m->nodes[node].name);
        pare_status st = pare_fake_quant(Wq, w->blob->data, N, K, &s);
        if (st == PARE_OK) st = qi_set_sim(m, node, Wq, &s, pare_qspec_storage_bits(&s, N, K), 0, NULL, NULL, name);
        pare_free(Wq);
        return st == PARE_OK ? st : pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    }
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_WQ);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_wq_quantize_sign(&q->wq, kind, w->blob->data, N, K);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    }
    q->bits = 8.0 * (double)pare_wq_bytes(&q->wq);
    snprintf(q->desc, sizeof q->desc, "%s w/channel a/f32 add-sub (%s)", name, pare_wq_impl(&q->wq, 1));
    snprintf(q->method, sizeof q->method, "%s", kind == PARE_WQ_BIN ? "binary mean|w|" : "ternary twn 0.7");
    pare_param_set_q(w, q);
    return PARE_OK;
}

static pare_status sign_apply(pare_model *m, const pare_options *o, pare_wq_kind kind)
{
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) st = set_sign(m, idx[i], kind);
    free(idx);
    return st;
}

static pare_status bin_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    return sign_apply(m, o, PARE_WQ_BIN);
}
static pare_status ter_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    return sign_apply(m, o, PARE_WQ_TER);
}

const pare_pass pare_pass_binary = {&bin_schema, bin_apply, 0};
const pare_pass pare_pass_ternary = {&ter_schema, ter_apply, 0};
