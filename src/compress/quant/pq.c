/* pq.c — product quantization and Quant-Noise, two passes:
 *
 *   pq           Linear weights product-quantized (Stock et al. 2020, "And the bit goes down"; the PQ of Fan et
 *                al. 2020): blocks of `block` inputs, one codebook of k centroids per layer by deterministic
 *                k-means (kernels/pq.h), uint8 codes; runs on the lookup-table kernel (graph/fmt_pq.c). A layer
 *                trained under Quant-Noise loses its quant_noise transform (its job is done).
 *   quant_noise  marks Linear layers for Quant-Noise training (Fan et al. 2020): a quant_noise weight transform
 *                (graph/tf_quantnoise.c) that, in each training forward, quantizes a random share p of the
 *                weight's blocks with the chosen quantizer (pq: nearest centroid of a codebook fitted here and
 *                refitted every `refresh` steps; int8 / int4: symmetric per channel) and passes gradients
 *                straight through. Train with m:train as usual; then apply pq (or rtn) to the trained model.
 *
 * Deliberately not here: iterative PQ (the paper's iPQ: quantize layer by layer, fine-tuning the rest and the
 * centroids in between), activation-weighted k-means, the "proxy" noise of zeroed blocks, and noise on
 * embeddings. Sizes: codes at 8 bits each whatever k (pq.h: no sub-byte packing), plus the codebook.
 */
#include "quant_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/transform.h"
#include "kernels/pq.h"

/* PARE_EINVAL naming `block` and the valid sizes (the divisors of K, up to 64) when block does not divide node's K;
 * naming k and its range when the layer has fewer blocks than k. */
static pare_status check_layer(const pare_model *m, int64_t node, const char *pass, int64_t block, int64_t k)
{
    const pare_param *w = &m->params[m->nodes[node].param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    if (K % block) {
        char valid[256] = "";
        size_t at = 0;
        for (int64_t v = 1; v <= K && v <= 64 && at < sizeof valid - 16; v++)
            if (K % v == 0) at += (size_t)snprintf(valid + at, sizeof valid - at, "%s%lld", at ? ", " : "", (long long)v);
        return pare_fail(PARE_EINVAL, "%s: block=%lld does not divide the %lld inputs of %s; valid blocks for it: %s", pass,
                         (long long)block, (long long)K, m->nodes[node].name, valid);
    }
    if (k > N * (K / block))
        return pare_fail(PARE_EINVAL, "%s: k=%lld centroids but %s has only %lld blocks of %lld; k must be in [1, %lld]", pass,
                         (long long)k, m->nodes[node].name, (long long)(N * (K / block)), (long long)block,
                         (long long)(N * (K / block)));
    return PARE_OK;
}

/* ---- pq ---- */

static const pare_opt_spec pq_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"block", PARE_OPT_INT, "8", 1, 1024, NULL, "inputs per block (subvector); must divide every selected layer's inputs"},
    {"k", PARE_OPT_INT, "256", 1, 256, NULL, "centroids per layer's codebook (codes are one byte each)"},
    {"iters", PARE_OPT_INT, "20", 0, 10000, NULL, "k-means (Lloyd) iterations after the k-means++ initialisation"},
    {"codebook", PARE_OPT_ENUM, "f32", 0, 0, "f32|f16", "how the centroids are stored"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "k-means++ seed (layer i uses seed + i)"},
};
static const pare_schema pq_schema = {"pq", "product quantization: blocks of inputs as one-byte codes into a k-means codebook per layer",
                                      pq_opts, (int)(sizeof pq_opts / sizeof pq_opts[0])};

static pare_status pq_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    int64_t block = pare_opt_int(o, "block"), k = pare_opt_int(o, "k");
    int iters = pare_opt_int(o, "iters"), f16 = !strcmp(pare_opt_str(o, "codebook"), "f16");
    uint64_t seed = (uint64_t)pare_opt_num(o, "seed");
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) st = check_layer(m, idx[i], "pq", block, k);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_param *w = qi_weight(m, idx[i]);
        pare_qlinear *q = pare_qlinear_new(PARE_FMT_PQ);
        if (!q) {
            st = PARE_ENOMEM;
            break;
        }
        st = pare_pq_quantize(&q->pq, w->blob->data, w->shape[0], w->shape[1], block, k, iters, seed + (uint64_t)i, f16, NULL);
        if (st != PARE_OK) {
            pare_qlinear_release(q);
            st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
            break;
        }
        const pare_transform *t = pare_node_transform(&m->nodes[idx[i]], PARE_TF_WEIGHT);
        int noised = t && t->kind == PARE_TF_QUANT_NOISE;
        if (noised) pare_node_detach(m, idx[i], PARE_TF_WEIGHT);
        q->bits = 8.0 * (double)pare_pq_bytes(&q->pq);
        snprintf(q->desc, sizeof q->desc, "pq block%lld k%lld %s a/f32 (lut)", (long long)block, (long long)k, f16 ? "f16" : "f32");
        snprintf(q->method, sizeof q->method, "kmeans iters=%d seed=%llu%s", iters, (unsigned long long)(seed + (uint64_t)i),
                 noised ? " after quant_noise" : "");
        pare_param_set_q(w, q);
    }
    free(idx);
    return st;
}
const pare_pass pare_pass_pq = {&pq_schema, pq_apply, 0};

/* ---- quant_noise ---- */

static const pare_opt_spec qn_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"p", PARE_OPT_FLOAT, "0.1", 0, 1, NULL, "noise rate: the share of blocks quantized in each training forward"},
    {"quantizer", PARE_OPT_ENUM, "pq", 0, 0, "pq|int8|int4", "the noise: pq (nearest centroid) or symmetric per-channel int8 / int4"},
    {"block", PARE_OPT_INT, "8", 1, 1024, NULL, "inputs per block (the unit of the noise; PQ's subvector)"},
    {"k", PARE_OPT_INT, "256", 1, 256, NULL, "pq: centroids of the layer's codebook"},
    {"iters", PARE_OPT_INT, "20", 0, 10000, NULL, "pq: k-means iterations fitting the first codebook"},
    {"refresh", PARE_OPT_INT, "100", 0, 1e9, NULL, "pq: refit the codebook (5 Lloyd iterations) every this many training steps (0: never)"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "pq: k-means++ seed (layer i uses seed + i); the noise uses the training seed"},
};
static const pare_schema qn_schema = {"quant_noise", "Quant-Noise training: a random share p of each weight's blocks quantized per forward, straight-through gradient",
                                      qn_opts, (int)(sizeof qn_opts / sizeof qn_opts[0])};

static pare_status qn_attach(pare_model *m, int64_t node, float p, int bits, int64_t block, int64_t k, int iters,
                             int64_t refresh, uint64_t seed)
{
    char name[PARE_NAME_MAX + 16];
    const pare_node *nd = &m->nodes[node];
    const pare_transform *have = pare_node_transform(nd, PARE_TF_WEIGHT);
    if (have)
        return pare_fail(PARE_EINVAL, "quant_noise: %s's weight already has a %s transform; one transform per operand (remove it "
                         "or exclude the layer)", nd->name, pare_tf_name(have->kind));
    int64_t N = qi_weight(m, node)->shape[0], K = qi_weight(m, node)->shape[1], nb = N * (K / block);
    snprintf(name, sizeof name, "%s.qnoise", nd->name);
    if (pare_model_find_param(m, name) >= 0)
        return pare_fail(PARE_EINVAL, "quant_noise: %s already has a parameter %s (applied twice?)", nd->name, name);
    int ps = pare_model_add_param(m, name, 1, (int64_t[]){4 + nb, 1}, 0), pc = -1;
    if (ps < 0) return PARE_ENOMEM;
    float *st = m->params[ps].blob->data;
    st[0] = p, st[1] = (float)refresh;
    if (!bits) {
        snprintf(name, sizeof name, "%s.qnoise_cb", nd->name);
        pc = pare_model_add_param(m, name, 2, (int64_t[]){k, block}, 0);
        if (pc < 0) return PARE_ENOMEM;
        uint8_t *as = malloc((size_t)nb);
        if (!as) return pare_fail(PARE_ENOMEM, "quant_noise: out of memory");
        pare_status s = pare_kmeans(m->params[pc].blob->data, as, NULL, qi_weight(m, node)->blob->data, nb, block, k, iters, seed);
        free(as);
        if (s != PARE_OK) return pare_fail_ctx(s, "quant_noise: layer %s", nd->name);
    }
    pare_transform t = {.kind = PARE_TF_QUANT_NOISE, .operand = PARE_TF_WEIGHT, .bits = bits, .group = (int)block, .aux = {ps, pc}};
    return pare_node_attach(m, node, &t);
}

static pare_status qn_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    const char *qz = pare_opt_str(o, "quantizer");
    int bits = !strcmp(qz, "int8") ? 8 : !strcmp(qz, "int4") ? 4 : 0;
    int64_t block = pare_opt_int(o, "block"), k = bits ? 1 : pare_opt_int(o, "k");
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++) st = check_layer(m, idx[i], "quant_noise", block, k);
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        st = qn_attach(m, idx[i], (float)pare_opt_num(o, "p"), bits, block, k, pare_opt_int(o, "iters"),
                       pare_opt_int(o, "refresh"), (uint64_t)pare_opt_num(o, "seed") + (uint64_t)i);
    free(idx);
    return st;
}
const pare_pass pare_pass_quant_noise = {&qn_schema, qn_apply, 0};
