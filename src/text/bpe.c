/* bpe.c — GPT-2's byte-level BPE applied to one pre-token (encoder.py Encoder.bpe).
 *
 * A pre-token's bytes start as one symbol each (the ids of GPT-2's 256 byte symbols); repeatedly the
 * adjacent pair of lowest merge rank is found and every occurrence of it, left to right, is replaced
 * by the merged symbol, until no adjacent pair has a rank. Words are short (a few symbols), so this
 * O(len^2) loop is what GPT-2 does too; results are cached per pre-token (cleared at 2^20 entries),
 * which makes running text cost one hash look-up per word.
 *
 * Entry point: pare_bpe_tokenize (text_internal.h).
 */
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"

#define CACHE_MAX ((size_t)1 << 20)

typedef struct bpe_ctx {
    pare_tokenizer *t;
    pare_idvec *out;
    pare_idvec word;
} bpe_ctx;

static void bpe_merge(const pare_tokenizer_impl *im, pare_idvec *w)
{
    for (;;) {
        int32_t best = INT32_MAX, r;
        for (int64_t i = 0; i + 1 < w->n; i++)
            if (pare_u64map_get(&im->merge, (uint64_t)(uint32_t)w->p[i] << 32 | (uint32_t)w->p[i + 1], &r) && r < best)
                best = r;
        if (best == INT32_MAX) return;
        int32_t a = im->merge_a[best], b = im->merge_b[best], to = im->merge_to[best];
        int64_t j = 0;
        for (int64_t i = 0; i < w->n; i++) {
            if (i + 1 < w->n && w->p[i] == a && w->p[i + 1] == b) w->p[j++] = to, i++;
            else w->p[j++] = w->p[i];
        }
        w->n = j;
    }
}

static int cache_put(pare_tokenizer_impl *im, const char *s, size_t n, const pare_idvec *w)
{
    if (im->cache.count >= CACHE_MAX) {
        pare_strmap_free(&im->cache);
        im->cache_n = 0;
    }
    size_t need = im->cache_n + 1 + (size_t)w->n;
    if (need > im->cache_cap) {
        size_t cap = im->cache_cap ? im->cache_cap : 4096;
        while (cap < need) cap *= 2;
        int32_t *p = realloc(im->cache_ids, cap * sizeof *p);
        if (!p) return -1;
        im->cache_ids = p, im->cache_cap = cap;
    }
    if (pare_strmap_put(&im->cache, s, n, (int32_t)im->cache_n, NULL) < 0) return -1;
    im->cache_ids[im->cache_n] = (int32_t)w->n;
    memcpy(im->cache_ids + im->cache_n + 1, w->p, (size_t)w->n * sizeof *w->p);
    im->cache_n = need;
    return 0;
}

static int bpe_piece(void *vctx, const char *s, size_t n)
{
    bpe_ctx *c = vctx;
    pare_tokenizer_impl *im = c->t->impl;
    int32_t off;
    /* the cache offset is an int32: beyond 2^31 ids it is not used (the table would be cleared first) */
    if (pare_strmap_get(&im->cache, s, n, &off)) {
        for (int32_t k = 0; k < im->cache_ids[off]; k++) pare_idvec_push(c->out, im->cache_ids[off + 1 + k]);
        return c->out->err ? -1 : 0;
    }
    c->word.n = 0;
    for (size_t i = 0; i < n; i++) pare_idvec_push(&c->word, im->byte_id[(unsigned char)s[i]]);
    if (c->word.err) return -1;
    bpe_merge(im, &c->word);
    if (im->cache_n + (size_t)c->word.n + 1 < (size_t)INT32_MAX && cache_put(im, s, n, &c->word)) return -1;
    for (int64_t k = 0; k < c->word.n; k++) pare_idvec_push(c->out, c->word.p[k]);
    return c->out->err ? -1 : 0;
}

pare_status pare_bpe_tokenize(pare_tokenizer *t, pare_idvec *out, const char *s, size_t n)
{
    bpe_ctx c = {.t = t, .out = out};
    int r = pare_gpt2_split(s, n, bpe_piece, &c);
    free(c.word.p);
    return r ? pare_fail(PARE_ENOMEM, "bpe: out of memory") : PARE_OK;
}
