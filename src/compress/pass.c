/* pass.c — pass registry, pare_apply, and layer selection by name patterns. */
#include "pass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pare_pass *const passes[] = {
    [PARE_PASS_DYNAMIC_INT8] = &pare_pass_dynamic_int8,
    [PARE_PASS_STATIC_INT8] = &pare_pass_static_int8,
    [PARE_PASS_LLM_INT8] = &pare_pass_llm_int8,
    [PARE_PASS_SMOOTHQUANT] = &pare_pass_smoothquant,
    [PARE_PASS_INJECT_OUTLIERS] = &pare_pass_inject_outliers,
    [PARE_PASS_ZEROQUANT] = &pare_pass_zeroquant,
    [PARE_PASS_RTN] = &pare_pass_rtn,
    [PARE_PASS_GPTQ] = &pare_pass_gptq,
    [PARE_PASS_QBLOCK] = &pare_pass_qblock,
    [PARE_PASS_FAKE_QUANT] = &pare_pass_fake_quant,
    [PARE_PASS_MIXED] = &pare_pass_mixed,
    [PARE_PASS_QAT] = &pare_pass_qat,
    [PARE_PASS_QAT_CONVERT] = &pare_pass_qat_convert,
    [PARE_PASS_LOWRANK] = &pare_pass_lowrank,
    [PARE_PASS_SVD_PRUNE] = &pare_pass_svd_prune,
    [PARE_PASS_PRUNE_MAGNITUDE] = &pare_pass_prune_magnitude,
    [PARE_PASS_PRUNE_SNIP] = &pare_pass_prune_snip,
    [PARE_PASS_PRUNE_TAYLOR] = &pare_pass_prune_taylor,
    [PARE_PASS_PATTERN_LOCK] = &pare_pass_pattern_lock,
    [PARE_PASS_SPARSIFY] = &pare_pass_sparsify,
    [PARE_PASS_PRUNE_NEURONS] = &pare_pass_prune_neurons,
    [PARE_PASS_PRUNE_HEADS] = &pare_pass_prune_heads,
    [PARE_PASS_PRUNE_LAYERS] = &pare_pass_prune_layers,
    [PARE_PASS_SPARSEGPT] = &pare_pass_sparsegpt,
    [PARE_PASS_DEQUANTIZE] = &pare_pass_dequantize,
    [PARE_PASS_KRONECKER] = &pare_pass_kronecker,
    [PARE_PASS_TENSOR_TRAIN] = &pare_pass_tensor_train,
    [PARE_PASS_PRUNE_TOKENS] = &pare_pass_prune_tokens,
    [PARE_PASS_BF16] = &pare_pass_bf16,
    [PARE_PASS_FUSE] = &pare_pass_fuse,
    [PARE_PASS_AMP] = &pare_pass_amp,
    [PARE_PASS_BINARY] = &pare_pass_binary,
    [PARE_PASS_TERNARY] = &pare_pass_ternary,
    [PARE_PASS_PQ] = &pare_pass_pq,
    [PARE_PASS_QUANT_NOISE] = &pare_pass_quant_noise,
    [PARE_PASS_OUTLIER_SUPPRESSION] = &pare_pass_outlier_suppression,
};
_Static_assert(sizeof passes / sizeof passes[0] == PARE_PASS_COUNT, "pass registry out of date with pare_pass_id");

int pare_pass_count(void) { return PARE_PASS_COUNT; }
const pare_pass *pare_pass_at(int i) { return i >= 0 && i < pare_pass_count() ? passes[i] : NULL; }

const pare_pass *pare_pass_find(const char *name)
{
    char list[1024] = "";
    size_t used = 0;
    for (int i = 0; i < pare_pass_count(); i++) {
        if (!strcmp(passes[i]->schema->name, name)) return passes[i];
        used += (size_t)snprintf(list + used, sizeof list - used, i ? ", %s" : "%s", passes[i]->schema->name);
        if (used >= sizeof list) used = sizeof list - 1;
    }
    pare_fail(PARE_EINVAL, "unknown technique '%s' (valid: %s)", name, list);
    return NULL;
}

pare_status pare_apply(pare_model **out, const pare_model *in, const char *name, const pare_kv *kv, int nkv)
{
    return pare_apply_ctx(out, in, name, kv, nkv, NULL);
}

pare_status pare_apply_ctx(pare_model **out, const pare_model *in, const char *name, const pare_kv *kv, int nkv,
                           const pare_pass_ctx *ctx)
{
    *out = NULL;
    const pare_pass *p = pare_pass_find(name);
    if (!p) return PARE_EINVAL;
    pare_options o;
    PARE_TRY(pare_opts_resolve(&o, p->schema, kv, nkv));
    pare_pass_ctx none = {0};
    if (!ctx) ctx = &none;
    if (p->needs_calib && !ctx->calib)
        return pare_fail(PARE_EINVAL, "%s needs calibration data: give calib=<task> (its train split is used)", name);
    pare_model *m = pare_model_clone(in);
    if (!m) return PARE_ENOMEM;
    pare_status st = p->apply(m, &o, ctx);
    if (st != PARE_OK) {
        pare_model_free(m);
        return st;
    }
    size_t used = strlen(m->applied);
    snprintf(m->applied + used, sizeof m->applied - used, "%s%s", used ? "+" : "", name);
    *out = m;
    return PARE_OK;
}

pare_status pare_select_linears(const pare_model *m, const char *layers, const char *exclude, int64_t *idx, int64_t *n)
{
    *n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_LINEAR || !pare_name_match(layers, nd->name)) continue;
        if (exclude && *exclude && pare_name_match(exclude, nd->name)) continue;
        idx[(*n)++] = i;
    }
    if (*n) return PARE_OK;
    char list[1024] = "";
    size_t used = 0;
    for (int64_t i = 0; i < m->nnodes && used < sizeof list - 1; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR)
            used += (size_t)snprintf(list + used, sizeof list - used, used ? ", %s" : "%s", m->nodes[i].name);
    return pare_fail(PARE_EINVAL, "layers='%s'%s%s%s matches no Linear layer (the model's: %s)", layers,
                     exclude && *exclude ? " exclude='" : "", exclude && *exclude ? exclude : "",
                     exclude && *exclude ? "'" : "", list);
}
