/* embed_q.c — quantized token-embedding lookups (embed_q.h): a row view of the stored table, dequantized. */
#include "embed_q.h"

#include <stdlib.h>
#include <string.h>

void pare_embedding_i8(float *out, const int32_t *ids, const int8_t *q, const float *scale, int64_t M, int64_t C)
{
#pragma omp parallel for schedule(static) if (M * C > 65536)
    for (int64_t m = 0; m < M; m++) {
        const int8_t *r = q + (int64_t)ids[m] * C;
        const float s = scale[ids[m]];
        float *o = out + m * C;
        for (int64_t c = 0; c < C; c++) o[c] = (float)r[c] * s;
    }
}

/* Bytes of one row of qs (0: no row view for this kind). */
static int64_t qs_row_bytes(const pare_qb_weight *w)
{
    switch (w->kind) {
    case PARE_QB_I4G: case PARE_QB_Q4_0: case PARE_QB_Q4_1: return w->K / 2;
    case PARE_QB_I8G: case PARE_QB_Q8_0: return w->K;
    case PARE_QB_Q5_0: case PARE_QB_Q5_1: case PARE_QB_Q4_K: case PARE_QB_Q5_K: case PARE_QB_Q6_K: /* ggml's blocks */
        return (int64_t)pare_qb_ggml_row_bytes(w->kind, w->K);
    default: return 0;
    }
}

int pare_embedding_qb_supports(const pare_qb_weight *w) { return qs_row_bytes(w) > 0; }

/* Row v of w as a weight of one row (pointers into w's arrays). */
static pare_qb_weight row_view(const pare_qb_weight *w, int64_t v)
{
    const int64_t ng = w->K / w->group;
    pare_qb_weight r = *w;
    r.N = 1;
    r.qs = w->qs + v * qs_row_bytes(w);
    if (w->scale) r.scale = w->scale + v * ng; /* (the ggml-block kinds keep their scales inside qs) */
    if (w->min) r.min = w->min + v * (w->K / PARE_QB_QK);
    if (w->zero) r.zero = w->zero + v * ng;
    return r;
}

pare_status pare_embedding_qb(float *out, const int32_t *ids, const pare_qb_weight *w, int64_t M)
{
    if (!pare_embedding_qb_supports(w))
        return pare_fail(PARE_EINVAL, "embedding lookup: a %s table has no row view (int4_group, int8_group, q8_0, q4_0, "
                         "q4_1, q5_0, q5_1, q4_k, q5_k, q6_k have)", pare_qb_kind_name(w->kind));
    const int64_t C = w->K;
#pragma omp parallel for schedule(static) if (M * C > 65536)
    for (int64_t m = 0; m < M; m++) {
        pare_qb_weight r = row_view(w, ids[m]);
        pare_qb_dequantize(out + m * C, &r);
    }
    return PARE_OK;
}

int pare_embedding_qb_ref(float *out, const int32_t *ids, const pare_qb_weight *w, int64_t M)
{
    float *t = malloc(sizeof *t * (size_t)(w->N * w->K));
    if (!t) return -1;
    pare_qb_dequantize(t, w);
    for (int64_t m = 0; m < M; m++) memcpy(out + m * w->K, t + (int64_t)ids[m] * w->K, sizeof *t * (size_t)w->K);
    free(t);
    return 0;
}
