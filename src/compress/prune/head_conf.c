/* head_conf.c — head confidence (Voita et al. 2019, §4.1): the mean over tokens of a head's largest
 * attention weight, from the attention probabilities that pare_capture copies out ("<node>#att", per
 * example (H, Tq, Tk)). heads.h has the definition. Voita et al.'s LRP relevance, the measure the
 * paper prunes by, is head_lrp.c; confidence is the cheaper one it reports beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/arena.h"
#include "core/tensor.h"
#include "heads.h"

pare_status pare_head_confidence(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                 pare_head_scores *out)
{
    memset(out, 0, sizeof *out);
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "head confidence: examples %lld..%lld are outside %s (0..%lld)", (long long)first,
                         (long long)(first + n - 1), d->name, (long long)d->n - 1);
    int na = 0, hmax = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION || m->nodes[i].op == PARE_OP_CROSS_ATTENTION) {
            na++;
            if (m->nodes[i].a.heads > hmax) hmax = m->nodes[i].a.heads;
        }
    if (!na) return pare_fail(PARE_EINVAL, "head confidence: the model has no attention layers");
    out->n = na, out->hmax = hmax;
    out->node = calloc((size_t)na, sizeof *out->node);
    out->heads = calloc((size_t)na, sizeof *out->heads);
    out->score = calloc((size_t)na * (size_t)hmax, sizeof *out->score);
    char(*names)[PARE_NAME_MAX + 8] = calloc((size_t)na, sizeof *names);
    const char **np = calloc((size_t)na, sizeof *np);
    pare_captured *cap = calloc((size_t)na, sizeof *cap);
    pare_status st = out->node && out->heads && out->score && names && np && cap
                         ? PARE_OK
                         : pare_fail(PARE_ENOMEM, "head confidence: out of memory");
    int l = 0;
    for (int64_t i = 0; st == PARE_OK && i < m->nnodes; i++) {
        const pare_node *a = &m->nodes[i];
        if (a->op != PARE_OP_ATTENTION && a->op != PARE_OP_CROSS_ATTENTION) continue;
        out->node[l] = i, out->heads[l] = a->a.heads;
        snprintf(names[l], sizeof names[l], "%s#att", a->name);
        np[l] = names[l];
        l++;
    }
    if (st == PARE_OK) st = pare_capture((pare_model *)m, d, first, n, batch, np, na, cap);
    for (l = 0; st == PARE_OK && l < na; l++) {
        const pare_value *v = &m->values[m->nodes[out->node[l]].out];
        int src_q = v->rows == PARE_ROWS_SRC; /* an encoder layer: queries are source positions */
        int cross = m->nodes[out->node[l]].op == PARE_OP_CROSS_ATTENTION;
        int64_t H = out->heads[l], Tq = src_q ? d->S : d->T, Tk = src_q || cross ? d->S : d->T;
        int64_t per = H * Tq * Tk;
        if (cap[l].rows * cap[l].cols != n * per) {
            st = pare_fail(PARE_EINVAL, "head confidence: %s holds %lld values, not %lld x (%lld, %lld, %lld)", np[l],
                           (long long)(cap[l].rows * cap[l].cols), (long long)n, (long long)H, (long long)Tq, (long long)Tk);
            break;
        }
        double *s = out->score + (size_t)l * (size_t)hmax;
        int64_t count = 0;
        for (int64_t e = 0; e < n; e++) {
            int64_t len = src_q ? d->src_lengths[first + e] : d->lengths[first + e];
            if (len > Tq) len = Tq;
            count += len;
            for (int64_t h = 0; h < H; h++)
                for (int64_t t = 0; t < len; t++) {
                    const float *p = cap[l].data + e * per + (h * Tq + t) * Tk;
                    float mx = p[0];
                    for (int64_t k = 1; k < Tk; k++)
                        if (p[k] > mx) mx = p[k];
                    s[h] += mx;
                }
        }
        for (int64_t h = 0; h < H; h++) s[h] = count ? s[h] / (double)count : 0;
    }
    for (l = 0; cap && l < na; l++) pare_free(cap[l].data);
    free(names), free(np), free(cap);
    if (st != PARE_OK) pare_head_scores_free(out);
    return st;
}
