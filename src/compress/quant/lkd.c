/* lkd.c — ZeroQuant's layer-by-layer knowledge distillation (LKD; Yao et al. 2022, §4), an option of the
 * zeroquant pass (lkd_steps > 0). Each transformer layer k in turn is quantized and trained to reproduce
 * the original layer's output from the same input,
 *
 *     L_LKD,k = MSE( L_k · L_{k−1} ⋯ L_1(X),  L̂_k · L_{k−1} ⋯ L_1(X) )
 *
 * L̂_k the quantized layer: its Linears under ZeroQuant's fake quantization (int8 weights per group of
 * `group` inputs, int8 activations per token, straight-through gradients: graph/tf_fakequant.c) and the
 * layers before it the original ones. So for layer k a copy of the original model gets fake quantization
 * on layer k's selected Linears only, everything but their weights and biases frozen, and is trained
 * against the original model (the teacher, distill.c) with one MSE term on the layer's output — the last
 * node of the layer in graph order, e.g. "enc.3.add2" — and no label loss. The trained weights and biases
 * are copied back; the zeroquant pass then quantizes them (its kernel's scales follow the weights' max
 * per group, as the fixed fake-quant scales did). A selected Linear outside the numbered layers (a
 * pooler, a head) is its own "layer", its output the target. The data are calib's train split.
 * Deliberately not here: ZeroQuant's LKD without any original data (the paper also tries synthetic
 * inputs), learned quantization scales (the kernel's are max-based).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_internal.h"
#include "train/train.h"

/* The layer a node belongs to: "enc.3" for "enc.3.attn.qkv" (the first two name parts when the second is
 * a number), else the node's whole name. */
static void layer_of(const char *name, char *out, size_t n)
{
    const char *dot = strchr(name, '.');
    if (dot && dot[1] >= '0' && dot[1] <= '9') {
        const char *end = dot + 1;
        while (*end >= '0' && *end <= '9') end++;
        if (*end == '.' || !*end) {
            snprintf(out, n, "%.*s", (int)(end - name), name);
            return;
        }
    }
    snprintf(out, n, "%s", name);
}

/* The output value name of a layer: the last node named "<layer>.*" (or the node itself). */
static const char *layer_output(const pare_model *m, const char *layer)
{
    size_t L = strlen(layer);
    const char *last = NULL;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const char *nm = m->nodes[i].name;
        if (!strcmp(nm, layer) || (!strncmp(nm, layer, L) && nm[L] == '.')) last = m->values[m->nodes[i].out].name;
    }
    return last;
}

pare_status qi_zeroquant_lkd(pare_model *m, const int64_t *idx, int64_t n, int group, const pare_dataset *calib,
                             int64_t steps, double lr, int64_t batch, uint64_t seed)
{
    pare_model *teacher = pare_model_clone(m);
    if (!teacher) return pare_fail(PARE_ENOMEM, "zeroquant lkd: out of memory");
    unsigned char *done = calloc((size_t)n + 1, 1);
    pare_status st = done ? PARE_OK : pare_fail(PARE_ENOMEM, "zeroquant lkd: out of memory");
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        if (done[i]) continue;
        char layer[PARE_NAME_MAX], other[PARE_NAME_MAX];
        layer_of(m->nodes[idx[i]].name, layer, sizeof layer);
        const char *out = layer_output(m, layer);
        pare_model *s = pare_model_clone(teacher);
        if (!s || !out) {
            pare_model_free(s);
            st = !s ? pare_fail(PARE_ENOMEM, "zeroquant lkd: out of memory") : pare_fail(PARE_EINVAL, "zeroquant lkd: layer %s has no output", layer);
            break;
        }
        for (int64_t p = 0; p < s->nparams; p++) s->params[p].trainable = 0;
        /* this layer's selected Linears: fake-quantized, their weights and biases the only trainable values */
        for (int64_t j = i; st == PARE_OK && j < n; j++) {
            layer_of(m->nodes[idx[j]].name, other, sizeof other);
            if (strcmp(other, layer)) continue;
            done[j] = 1;
            const pare_node *nd = &s->nodes[idx[j]];
            for (int q = 0; q < nd->nparam; q++) s->params[nd->param[q]].trainable = 1;
            st = qi_attach_fake_quant(s, idx[j], 8, 0, group, 1, 0);
        }
        pare_distill_term term = {.op = PARE_OP_MSE, .weight = 1};
        snprintf(term.student, sizeof term.student, "%s", out);
        pare_distill d = {.teacher = teacher, .hard_weight = 0, .terms = &term, .nterms = 1};
        char sb[32], bb[32], lb[32], seb[32];
        snprintf(sb, sizeof sb, "%lld", (long long)steps), snprintf(bb, sizeof bb, "%lld", (long long)batch);
        snprintf(lb, sizeof lb, "%.9g", lr), snprintf(seb, sizeof seb, "%llu", (unsigned long long)seed);
        pare_kv kv[] = {{"steps", PARE_KV_STR, 0, sb}, {"batch", PARE_KV_STR, 0, bb}, {"lr", PARE_KV_STR, 0, lb},
                        {"seed", PARE_KV_STR, 0, seb}, {"warmup", PARE_KV_STR, 0, "0"}, {"weight_decay", PARE_KV_STR, 0, "0"}};
        pare_options o;
        pare_train_result r;
        if (st == PARE_OK) st = pare_opts_resolve(&o, &pare_train_schema, kv, (int)(sizeof kv / sizeof kv[0]));
        if (st == PARE_OK) st = pare_train_distill(s, calib, NULL, &o, &d, NULL, NULL, &r);
        if (st != PARE_OK) st = pare_fail_ctx(st, "zeroquant lkd: layer %s", layer);
        /* the trained weights and biases back into the model being quantized */
        for (int64_t j = i; st == PARE_OK && j < n; j++) {
            layer_of(m->nodes[idx[j]].name, other, sizeof other);
            if (strcmp(other, layer)) continue;
            const pare_node *nd = &m->nodes[idx[j]];
            for (int q = 0; st == PARE_OK && q < nd->nparam; q++) {
                pare_param *dst = &m->params[nd->param[q]];
                if ((st = pare_param_make_private(dst)) == PARE_OK)
                    memcpy(dst->blob->data, s->params[nd->param[q]].blob->data, sizeof(float) * (size_t)pare_param_numel(dst));
            }
        }
        pare_model_free(s);
    }
    free(done);
    pare_model_free(teacher);
    return st;
}
