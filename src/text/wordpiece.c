/* wordpiece.c — BERT's WordPiece over the basic tokenizer's words (tokenization.py WordpieceTokenizer).
 *
 * Greedy longest-match-first: from the start of a word take the longest prefix in the vocabulary,
 * then the longest "##"-prefixed continuation, and so on; if some position has no match at all the
 * whole word becomes [UNK] (not only the unmatched part), as does a word of more than
 * max_input_chars_per_word code points. Matches end on code point boundaries.
 *
 * Entry point: pare_wordpiece_tokenize (text_internal.h).
 */
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"
#include "text/unicode.h"

typedef struct wp_ctx {
    const pare_tokenizer *t;
    pare_idvec *out;
    pare_buf sub; /* "##" + candidate */
    size_t *bounds;
    size_t bounds_cap;
    int missing_unk;
} wp_ctx;

static int wp_word(void *vctx, const char *s, size_t n)
{
    wp_ctx *c = vctx;
    const pare_tokenizer *t = c->t;
    size_t nc = 0; /* code points, and their end offsets */
    if (n + 1 > c->bounds_cap) {
        size_t *b = realloc(c->bounds, (n + 1) * sizeof *b);
        if (!b) return -1;
        c->bounds = b, c->bounds_cap = n + 1;
    }
    c->bounds[0] = 0;
    for (size_t i = 0; i < n;) {
        int len;
        pare_utf8_decode((const unsigned char *)s + i, n - i, &len);
        i += (size_t)len;
        c->bounds[++nc] = i;
    }
    int64_t start_n = c->out->n;
    int bad = nc > (size_t)t->wp.max_input_chars_per_word;
    for (size_t start = 0; start < nc && !bad;) {
        size_t end = nc;
        int32_t id = -1;
        for (; end > start; end--) {
            c->sub.n = 0;
            if (start > 0) pare_buf_add(&c->sub, "##", 2);
            pare_buf_add(&c->sub, s + c->bounds[start], c->bounds[end] - c->bounds[start]);
            if (c->sub.err) return -1;
            if (pare_strmap_get(&t->impl->vocab, c->sub.p, c->sub.n, &id)) break;
        }
        if (end == start) bad = 1;
        else pare_idvec_push(c->out, id), start = end;
    }
    if (bad) {
        c->out->n = start_n;
        if (t->unk < 0) return c->missing_unk = 1, -1;
        pare_idvec_push(c->out, t->unk);
    }
    return c->out->err ? -1 : 0;
}

pare_status pare_wordpiece_tokenize(const pare_tokenizer *t, pare_idvec *out, const char *s, size_t n)
{
    wp_ctx c = {.t = t, .out = out};
    int r = pare_bert_split(s, n, &t->wp, wp_word, &c);
    pare_buf_free(&c.sub);
    free(c.bounds);
    if (c.missing_unk) return pare_fail(PARE_EINVAL, "wordpiece: a word has no match and the vocabulary has no [UNK] token");
    if (r) return pare_fail(PARE_ENOMEM, "wordpiece: out of memory");
    return PARE_OK;
}
