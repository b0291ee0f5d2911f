/* token_select.c — the kernels of token_select.h: significance by attention received, top-k with [CLS]
 * kept, gather forward and scatter backward. Deliberately not here: learned thresholds (LTP), per-layer
 * retention searched by soft masks (PoWER-BERT's configuration search): the retention is given. */
#include "token_select.h"

#include <stdlib.h>
#include <string.h>

typedef struct scored { double s; int64_t j; } scored;

static int by_score_desc(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return (x->j > y->j) - (x->j < y->j); /* ties to the lower index */
}

size_t pare_token_select_work_bytes(int64_t Tp) { return (size_t)Tp * (sizeof(scored) + 1) + 64; }

void pare_token_select_forward(float *out, float *idx, const float *x, const float *att, const int32_t *lengths,
                               int64_t B, int64_t Tp, int64_t Tk, int64_t H, int64_t C, void *work)
{
    scored *sc = work;                               /* (Tp) */
    unsigned char *kept = (unsigned char *)(sc + Tp); /* (Tp) */
    for (int64_t b = 0; b < B; b++) {
        const int64_t L = lengths ? lengths[b] : Tp, k = L < Tk ? L : Tk;
        for (int64_t j = 0; j < L; j++) sc[j].s = 0, sc[j].j = j;
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < L; i++) {
                const float *p = att + ((b * H + h) * Tp + i) * Tp;
                for (int64_t j = 0; j < L; j++) sc[j].s += p[j];
            }
        memset(kept, 0, (size_t)Tp);
        kept[0] = 1;                                  /* [CLS] */
        qsort(sc + 1, (size_t)(L - 1), sizeof *sc, by_score_desc);
        for (int64_t r = 1; r < k; r++) kept[sc[r].j] = 1;
        float *o = out + b * Tk * C, *ix = idx + b * Tk;
        int64_t t = 0;
        for (int64_t j = 0; j < L && t < k; j++)
            if (kept[j]) {
                memcpy(o + t * C, x + (b * Tp + j) * C, sizeof(float) * (size_t)C);
                ix[t++] = (float)j;
            }
        for (; t < Tk; t++) {
            memset(o + t * C, 0, sizeof(float) * (size_t)C);
            ix[t] = -1.0f;
        }
    }
}

void pare_token_select_backward(float *dx, const float *dout, const float *idx, int64_t B, int64_t Tp, int64_t Tk,
                                int64_t C)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < Tk; t++) {
            const int64_t j = (int64_t)idx[b * Tk + t];
            if (j < 0) continue;
            float *d = dx + (b * Tp + j) * C;
            const float *g = dout + (b * Tk + t) * C;
            for (int64_t c = 0; c < C; c++) d[c] += g[c];
        }
}
