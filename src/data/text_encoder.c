/* text_encoder.c — text examples packed into datasets through the encoder interface, and the built-in
 * fallback word-level encoder (text_encoder.h documents both contracts).
 *
 * The word encoder exists so the text tasks run before a real tokenizer is plugged in; it is
 * deliberately plain (ASCII lower-casing, splitting on white space and punctuation, no subwords), and
 * deterministic: its vocabulary depends only on the examples, ties broken by byte order.
 *
 * Entry points: pare_text_dataset, pare_word_encoder_build, pare_word_encoder_free,
 * pare_word_encoder_iface, pare_word_split.
 */
#include "data/text_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

/* ---- packing examples through an encoder ---- */

static pare_status check_row(const char *name, int64_t i, const int32_t *ids, const int32_t *types, int64_t len,
                             int64_t max_len, int32_t vocab)
{
    if (len < 1 || len > max_len)
        return pare_fail(PARE_EINVAL, "%s: the encoder gave example %lld length %lld, outside [1, max_len=%lld]", name,
                         (long long)i, (long long)len, (long long)max_len);
    for (int64_t j = 0; j < len; j++) {
        if (ids[j] < 1 || ids[j] >= vocab)
            return pare_fail(PARE_EINVAL, "%s: the encoder gave example %lld token %d at %lld, outside [1, vocab=%d)",
                             name, (long long)i, ids[j], (long long)j, vocab);
        if (types[j] < 0 || types[j] > 1)
            return pare_fail(PARE_EINVAL, "%s: the encoder gave example %lld token type %d at %lld (0 or 1)", name,
                             (long long)i, types[j], (long long)j);
    }
    return PARE_OK;
}

pare_status pare_text_dataset_names(pare_dataset *d, const pare_text_encoder *enc)
{
    int32_t V = enc->vocab;
    char (*num)[16] = pare_alloc((size_t)V * sizeof *num);
    const char **names = pare_alloc((size_t)V * sizeof *names);
    if (!names || !num) {
        pare_free(names), pare_free(num);
        return pare_fail(PARE_ENOMEM, "%s: out of memory for %d token names", d->name, V);
    }
    for (int32_t v = 0; v < V; v++) {
        names[v] = enc->token_name ? enc->token_name(enc->self, v) : NULL;
        if (!names[v]) snprintf(num[v], sizeof num[v], "#%d", v), names[v] = num[v];
    }
    pare_status st = pare_dataset_set_vocab(d, names, V);
    pare_free(names), pare_free(num);
    return st;
}

pare_status pare_text_dataset(pare_dataset *d, const char *name, const pare_text_example *ex, int64_t n,
                              int32_t nclass, const pare_text_encoder *enc, int64_t max_len)
{
    memset(d, 0, sizeof *d);
    if (!enc || !enc->encode || enc->vocab < 2 || enc->pad_id != PARE_TOKEN_PAD)
        return pare_fail(PARE_EINVAL, "%s: the text encoder needs an encode function, vocab >= 2 and pad_id 0 (got %s, "
                         "%d, %d)", name, enc && enc->encode ? "one" : "none", enc ? enc->vocab : 0, enc ? enc->pad_id : 0);
    if (max_len < 2 || nclass < 1 || n < 0)
        return pare_fail(PARE_EINVAL, "%s: max_len=%lld (>= 2), nclass=%d (>= 1), n=%lld", name, (long long)max_len,
                         nclass, (long long)n);
    int32_t *ids = pare_alloc((size_t)max_len * 2 * sizeof(int32_t)), *types = ids ? ids + max_len : NULL;
    if (!ids) return pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    /* pass 1: the longest row and whether there are pairs (encoding twice keeps memory at one dataset) */
    int64_t T = 1, len;
    int pairs = 0;
    pare_status st = PARE_OK;
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        pairs |= ex[i].b != NULL;
        if (nclass == 1 && !isfinite(ex[i].score))
            st = pare_fail(PARE_EINVAL, "%s: example %lld has no score (a regression task needs one)", name, (long long)i);
        else if (nclass > 1 && (ex[i].label < -1 || ex[i].label >= nclass))
            st = pare_fail(PARE_EINVAL, "%s: example %lld has label %d outside [-1, %d)", name, (long long)i,
                           ex[i].label, nclass);
        if (st == PARE_OK) st = enc->encode(enc->self, ex[i].a, ex[i].b, max_len, ids, types, &len);
        if (st == PARE_OK) st = check_row(name, i, ids, types, len, max_len, enc->vocab);
        if (st == PARE_OK && len > T) T = len;
    }
    if (st == PARE_OK) st = pare_dataset_alloc(d, name, PARE_TASK_CLASSIFY, n, T, enc->vocab, nclass);
    if (st == PARE_OK) st = pare_dataset_alloc_extra(d, pairs, nclass == 1);
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        st = enc->encode(enc->self, ex[i].a, ex[i].b, max_len, ids, types, &len);
        if (st == PARE_OK && len > T)
            st = pare_fail(PARE_EINVAL, "%s: the encoder is not deterministic (example %lld)", name, (long long)i);
        if (st != PARE_OK) break;
        memcpy(d->tokens + i * T, ids, (size_t)len * sizeof(int32_t));
        if (pairs) memcpy(d->types + i * T, types, (size_t)len * sizeof(int32_t));
        d->lengths[i] = (int32_t)len;
        d->labels[i] = nclass == 1 ? 0 : ex[i].label;
        if (nclass == 1) d->targets[i] = ex[i].score;
    }
    if (st == PARE_OK) st = pare_text_dataset_names(d, enc);
    pare_free(ids);
    if (st != PARE_OK) pare_dataset_free(d);
    return st;
}

/* ---- the word encoder ---- */

#define WORD_MAX 64 /* longer words are cut to their first 63 bytes (both when counting and encoding) */

static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

/* The next word of s from *pos into w (lower-cased, NUL-terminated); its length, 0 at the end. */
static size_t next_word(const char *s, size_t *pos, char *w)
{
    size_t p = *pos, n = 0;
    while (s[p] && !((unsigned char)s[p] > ' ' && s[p] != 0x7f)) p++;
    if (!s[p]) return *pos = p, 0;
    if (!word_byte((unsigned char)s[p])) { /* punctuation: one token per character */
        w[0] = s[p], w[1] = '\0';
        *pos = p + 1;
        return 1;
    }
    for (; s[p] && word_byte((unsigned char)s[p]); p++)
        if (n + 1 < WORD_MAX) w[n++] = (s[p] >= 'A' && s[p] <= 'Z') ? (char)(s[p] - 'A' + 'a') : s[p];
    w[n] = '\0';
    *pos = p;
    return n;
}

int64_t pare_word_split(const char *s, char *buf, size_t bufcap, const char **out, int64_t cap)
{
    char w[WORD_MAX];
    size_t pos = 0, used = 0, l;
    int64_t k = 0;
    while ((l = next_word(s, &pos, w)) > 0) {
        if (k < cap && used + l + 1 <= bufcap) {
            memcpy(buf + used, w, l + 1);
            out[k] = buf + used;
            used += l + 1;
        } else if (k < cap) {
            out[k] = "";
        }
        k++;
    }
    return k;
}

/* A string → int table, open addressing over a pool of the strings. */
typedef struct wtab {
    int64_t *slot;  /* (cap) entry index or -1 */
    uint64_t cap;
    size_t *off;    /* (n) string offset in pool */
    int64_t *val;   /* (n) count, then id */
    int64_t n, ncap;
    char *pool;
    size_t used, pcap;
} wtab;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void wtab_free(wtab *t) { pare_free(t->slot), pare_free(t->off), pare_free(t->val), pare_free(t->pool); memset(t, 0, sizeof *t); }

/* The entry of w, added with value 0 when absent (add = 1); -1 when absent (add = 0) or out of memory (*oom). */
static int64_t wtab_get(wtab *t, const char *w, int add, int *oom)
{
    if (add && (uint64_t)(t->n + 1) * 2 > t->cap) { /* grow: rehash */
        uint64_t cap = t->cap ? 2 * t->cap : 4096;
        int64_t *ns = pare_alloc(cap * sizeof(int64_t));
        if (!ns) return *oom = 1, -1;
        for (uint64_t i = 0; i < cap; i++) ns[i] = -1;
        for (int64_t e = 0; e < t->n; e++) {
            uint64_t h = hash_str(t->pool + t->off[e]) & (cap - 1);
            while (ns[h] >= 0) h = (h + 1) & (cap - 1);
            ns[h] = e;
        }
        pare_free(t->slot);
        t->slot = ns, t->cap = cap;
    }
    if (!t->cap) return -1;
    uint64_t h = hash_str(w) & (t->cap - 1);
    for (; t->slot[h] >= 0; h = (h + 1) & (t->cap - 1))
        if (!strcmp(t->pool + t->off[t->slot[h]], w)) return t->slot[h];
    if (!add) return -1;
    size_t l = strlen(w) + 1;
    if (t->n == t->ncap) {
        int64_t nc = t->ncap ? 2 * t->ncap : 4096;
        size_t *no = pare_alloc((size_t)nc * sizeof *no);
        int64_t *nv = pare_alloc((size_t)nc * sizeof *nv);
        if (!no || !nv) return pare_free(no), pare_free(nv), *oom = 1, -1;
        if (t->n) memcpy(no, t->off, (size_t)t->n * sizeof *no), memcpy(nv, t->val, (size_t)t->n * sizeof *nv);
        pare_free(t->off), pare_free(t->val);
        t->off = no, t->val = nv, t->ncap = nc;
    }
    if (t->used + l > t->pcap) {
        size_t pc = t->pcap ? 2 * t->pcap : 65536;
        while (pc < t->used + l) pc *= 2;
        char *np = pare_alloc(pc);
        if (!np) return *oom = 1, -1;
        if (t->used) memcpy(np, t->pool, t->used);
        pare_free(t->pool);
        t->pool = np, t->pcap = pc;
    }
    memcpy(t->pool + t->used, w, l);
    t->off[t->n] = t->used, t->val[t->n] = 0;
    t->used += l;
    t->slot[h] = t->n;
    return t->n++;
}

struct pare_word_encoder {
    wtab words;         /* word → id (val) */
    const char **names; /* (vocab) */
    int32_t vocab;
    int32_t *wa, *wb;   /* scratch: word ids of a and b */
    int64_t scratch;
};

void pare_word_encoder_free(pare_word_encoder *w)
{
    if (!w) return;
    wtab_free(&w->words);
    pare_free(w->names), pare_free(w->wa), pare_free(w->wb);
    pare_free(w);
}

static const char *word_specials[PARE_WORD_FIRST] = {"[PAD]", "[CLS]", "[SEP]", "[UNK]"};

/* A counted word; the vocabulary order is: more frequent first, then bytewise. */
typedef struct wcount { int64_t count; const char *w; } wcount;
static int by_count(const void *x, const void *y)
{
    const wcount *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->w, b->w);
}

pare_status pare_word_encoder_build(pare_word_encoder **out, const pare_text_example *ex, int64_t n, int32_t max_vocab,
                                    int32_t min_count)
{
    *out = NULL;
    if (max_vocab < PARE_WORD_FIRST + 1 || min_count < 1)
        return pare_fail(PARE_EINVAL, "word encoder: vocab=%d must be >= %d and min_count=%d >= 1", max_vocab,
                         PARE_WORD_FIRST + 1, min_count);
    wtab counts = {0};
    int oom = 0;
    char w[WORD_MAX];
    for (int64_t i = 0; i < n && !oom; i++)
        for (int seg = 0; seg < 2 && !oom; seg++) {
            const char *s = seg ? ex[i].b : ex[i].a;
            size_t pos = 0;
            while (s && next_word(s, &pos, w) > 0) {
                int64_t e = wtab_get(&counts, w, 1, &oom);
                if (e < 0) break;
                counts.val[e]++;
            }
        }
    wcount *order = oom ? NULL : pare_alloc((size_t)(counts.n ? counts.n : 1) * sizeof *order);
    pare_word_encoder *we = order ? pare_calloc(sizeof *we) : NULL;
    if (!we) {
        pare_free(order), wtab_free(&counts);
        return pare_fail(PARE_ENOMEM, "word encoder: out of memory for %lld words", (long long)counts.n);
    }
    for (int64_t e = 0; e < counts.n; e++) order[e] = (wcount){counts.val[e], counts.pool + counts.off[e]};
    qsort(order, (size_t)counts.n, sizeof *order, by_count);
    int64_t keep = 0;
    while (keep < counts.n && keep < max_vocab - PARE_WORD_FIRST && order[keep].count >= min_count) keep++;
    we->vocab = (int32_t)(PARE_WORD_FIRST + keep);
    we->names = pare_alloc((size_t)we->vocab * sizeof *we->names);
    pare_status st = we->names ? PARE_OK : pare_fail(PARE_ENOMEM, "word encoder: out of memory");
    for (int64_t k = 0; k < keep && st == PARE_OK; k++) {
        int64_t e = wtab_get(&we->words, order[k].w, 1, &oom);
        if (e < 0) st = pare_fail(PARE_ENOMEM, "word encoder: out of memory");
        else we->words.val[e] = PARE_WORD_FIRST + k;
    }
    if (st == PARE_OK) {
        for (int k = 0; k < PARE_WORD_FIRST; k++) we->names[k] = word_specials[k];
        for (int64_t e = 0; e < we->words.n; e++) we->names[we->words.val[e]] = we->words.pool + we->words.off[e];
    }
    pare_free(order), wtab_free(&counts);
    if (st != PARE_OK) return pare_word_encoder_free(we), st;
    *out = we;
    return PARE_OK;
}

/* The word ids of s, at most cap of them, into ids; returns how many. */
static int64_t words_of(pare_word_encoder *we, const char *s, int32_t *ids, int64_t cap)
{
    char w[WORD_MAX];
    size_t pos = 0;
    int64_t k = 0;
    int oom = 0;
    while (k < cap && s && next_word(s, &pos, w) > 0) {
        int64_t e = wtab_get(&we->words, w, 0, &oom);
        ids[k++] = e < 0 ? PARE_WORD_UNK : (int32_t)we->words.val[e];
    }
    return k;
}

static pare_status word_encode(void *self, const char *a, const char *b, int64_t max_len, int32_t *ids, int32_t *types,
                               int64_t *len)
{
    pare_word_encoder *we = self;
    if (we->scratch < max_len) {
        pare_free(we->wa), pare_free(we->wb);
        we->wa = pare_alloc((size_t)max_len * sizeof(int32_t));
        we->wb = pare_alloc((size_t)max_len * sizeof(int32_t));
        we->scratch = we->wa && we->wb ? max_len : 0;
        if (!we->scratch) return pare_fail(PARE_ENOMEM, "word encoder: out of memory for max_len %lld", (long long)max_len);
    }
    int64_t budget = max_len - (b ? 3 : 2);
    if (budget < 0) budget = 0;
    int64_t la = words_of(we, a, we->wa, budget), lb = b ? words_of(we, b, we->wb, budget) : 0;
    while (la + lb > budget) { /* longest_first: the longer loses its last word (b on a tie) */
        if (la > lb) la--;
        else lb--;
    }
    int64_t k = 0;
    ids[k] = PARE_WORD_CLS, types[k++] = 0;
    for (int64_t i = 0; i < la; i++) ids[k] = we->wa[i], types[k++] = 0;
    if (k < max_len) ids[k] = PARE_WORD_SEP, types[k++] = 0;
    for (int64_t i = 0; b && i < lb; i++) ids[k] = we->wb[i], types[k++] = 1;
    if (b && k < max_len) ids[k] = PARE_WORD_SEP, types[k++] = 1;
    *len = k;
    return PARE_OK;
}

static const char *word_name(void *self, int32_t id)
{
    pare_word_encoder *we = self;
    return id >= 0 && id < we->vocab ? we->names[id] : NULL;
}

pare_text_encoder pare_word_encoder_iface(pare_word_encoder *w)
{
    return (pare_text_encoder){.self = w, .encode = word_encode, .token_name = word_name, .vocab = w->vocab, .pad_id = 0,
                               .cls_id = PARE_WORD_CLS, .sep_id = PARE_WORD_SEP};
}
