/* train.c — learning a byte-level BPE or a WordPiece vocabulary from a corpus (pare_tokenizer_train).
 *
 * Both are the BPE algorithm of Sennrich et al. (2016) over a dictionary of pre-tokenized words with
 * their counts: every step merges the most frequent adjacent pair of symbols (ties: the pair with
 * the smaller ids, a fixed order, so runs are deterministic) until the vocabulary has vocab_size
 * entries or no pair occurs min_frequency times.
 *   - BPE (GPT-2): words are GPT-2 pre-tokens of each line (the newline included); the initial
 *     alphabet is the 256 bytes, so every byte string is encodable. Writes vocab.json + merges.txt.
 *   - WordPiece: words are BERT basic-tokenizer words; a word's first character is a symbol "c",
 *     the others "##c"; merging "x" + "##y" gives "xy", "##x" + "##y" gives "##xy". The result is
 *     the vocabulary only (vocab.txt; WordPiece matches greedily and needs no merge list). This is
 *     what Hugging Face's WordPieceTrainer does (frequency, not the likelihood score of Google's
 *     original WordPiece trainer, which was never published as code).
 *
 * Speed: pair counts are kept incrementally; each pair knows the words it occurs in, and a max-heap
 * with lazy deletion (an entry is re-checked against the live count when it reaches the top) finds
 * the best pair. A merge touches only the words containing it.
 */
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"
#include "text/unicode.h"

typedef struct heap_e { int64_t c; int32_t a, b; } heap_e;

typedef struct trainer {
    int wordpiece;
    const pare_wordpiece_opts *wp;
    pare_strmap words; /* word bytes -> index */
    int64_t *freq;     /* (n_words) */
    int64_t n_words, cap_words;
    /* symbols */
    pare_strmap symmap;
    char **sym;
    uint32_t *sym_len;
    int32_t n_sym, cap_sym;
    /* word symbol sequences: seq[start[w] .. start[w] + len[w]) */
    int32_t *seq, *start, *len;
    /* pairs */
    pare_u64map pairmap; /* (a << 32 | b) -> pair index */
    int64_t *pcount;
    int32_t **pw, *pw_n, *pw_cap; /* words containing the pair (may hold stale entries) */
    int32_t *ptouch;              /* last merge that touched the pair */
    int32_t *pa, *pb;             /* the pair's symbols */
    int32_t n_pairs, cap_pairs;
    heap_e *heap;
    int64_t n_heap, cap_heap;
    int oom;
} trainer;

static int grow(void **p, int64_t *cap, int64_t need, size_t el)
{
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * el);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

static int count_word(void *ctx, const char *s, size_t n)
{
    trainer *tr = ctx;
    int32_t idx;
    if (pare_strmap_get(&tr->words, s, n, &idx)) return tr->freq[idx]++, 0;
    if (tr->n_words >= INT32_MAX - 1 || grow((void **)&tr->freq, &tr->cap_words, tr->n_words + 1, sizeof *tr->freq)) return -1;
    if (pare_strmap_put(&tr->words, s, n, (int32_t)tr->n_words, NULL) < 0) return -1;
    tr->freq[tr->n_words++] = 1;
    return 0;
}

static int strcmp_ptr(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static int32_t add_symbol(trainer *tr, const char *s, size_t n)
{
    int32_t id;
    if (pare_strmap_get(&tr->symmap, s, n, &id)) return id;
    if (tr->n_sym == tr->cap_sym) {
        int32_t c = tr->cap_sym ? tr->cap_sym * 2 : 1024;
        char **a = realloc(tr->sym, (size_t)c * sizeof *a);
        if (a) tr->sym = a;
        uint32_t *l = realloc(tr->sym_len, (size_t)c * sizeof *l);
        if (l) tr->sym_len = l;
        if (!a || !l) return tr->oom = 1, -1;
        tr->cap_sym = c;
    }
    char *c = malloc(n + 1);
    if (!c || pare_strmap_put(&tr->symmap, s, n, tr->n_sym, NULL) < 0) return free(c), tr->oom = 1, -1;
    memcpy(c, s, n), c[n] = 0;
    tr->sym[tr->n_sym] = c, tr->sym_len[tr->n_sym] = (uint32_t)n;
    return tr->n_sym++;
}

static int heap_less(const heap_e *x, const heap_e *y) /* x below y: smaller count, or equal and larger pair */
{
    if (x->c != y->c) return x->c < y->c;
    if (x->a != y->a) return x->a > y->a;
    return x->b > y->b;
}

static void heap_push(trainer *tr, heap_e e)
{
    if (grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof e)) {
        tr->oom = 1;
        return;
    }
    int64_t i = tr->n_heap++;
    while (i > 0 && heap_less(&tr->heap[(i - 1) / 2], &e)) tr->heap[i] = tr->heap[(i - 1) / 2], i = (i - 1) / 2;
    tr->heap[i] = e;
}

static heap_e heap_pop(trainer *tr)
{
    heap_e top = tr->heap[0], last = tr->heap[--tr->n_heap];
    int64_t i = 0, n = tr->n_heap;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&tr->heap[c], &tr->heap[c + 1])) c++;
        if (!heap_less(&last, &tr->heap[c])) break;
        tr->heap[i] = tr->heap[c], i = c;
    }
    if (n) tr->heap[i] = last;
    return top;
}

static int32_t pair_index(trainer *tr, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    int32_t p;
    if (pare_u64map_get(&tr->pairmap, key, &p)) return p;
    if (tr->n_pairs == tr->cap_pairs) {
        int32_t c = tr->cap_pairs ? tr->cap_pairs * 2 : 4096;
        int64_t *pc = realloc(tr->pcount, (size_t)c * sizeof *pc);
        if (pc) tr->pcount = pc;
        int32_t **pw = realloc(tr->pw, (size_t)c * sizeof *pw);
        if (pw) tr->pw = pw;
        int32_t *pn = realloc(tr->pw_n, (size_t)c * sizeof *pn);
        if (pn) tr->pw_n = pn;
        int32_t *pk = realloc(tr->pw_cap, (size_t)c * sizeof *pk);
        if (pk) tr->pw_cap = pk;
        int32_t *pt = realloc(tr->ptouch, (size_t)c * sizeof *pt);
        if (pt) tr->ptouch = pt;
        int32_t *qa = realloc(tr->pa, (size_t)c * sizeof *qa);
        if (qa) tr->pa = qa;
        int32_t *qb = realloc(tr->pb, (size_t)c * sizeof *qb);
        if (qb) tr->pb = qb;
        if (!pc || !pw || !pn || !pk || !pt || !qa || !qb) return tr->oom = 1, -1;
        tr->cap_pairs = c;
    }
    p = tr->n_pairs++;
    tr->pcount[p] = 0, tr->pw[p] = NULL, tr->pw_n[p] = tr->pw_cap[p] = 0, tr->ptouch[p] = -1, tr->pa[p] = a, tr->pb[p] = b;
    if (pare_u64map_put(&tr->pairmap, key, p)) return tr->oom = 1, -1;
    return p;
}

static void pair_add_word(trainer *tr, int32_t p, int32_t w)
{
    if (tr->pw_n[p] && tr->pw[p][tr->pw_n[p] - 1] == w) return;
    if (tr->pw_n[p] == tr->pw_cap[p]) {
        int32_t c = tr->pw_cap[p] ? tr->pw_cap[p] * 2 : 4;
        int32_t *q = realloc(tr->pw[p], (size_t)c * sizeof *q);
        if (!q) {
            tr->oom = 1;
            return;
        }
        tr->pw[p] = q, tr->pw_cap[p] = c;
    }
    tr->pw[p][tr->pw_n[p]++] = w;
}

/* The initial symbols of every word; the alphabet sorted (bytes 0..255 for BPE) after the specials. */
static int init_symbols(trainer *tr, const char *const *specials, int n_specials)
{
    for (int i = 0; i < n_specials; i++) add_symbol(tr, specials[i], strlen(specials[i]));
    int64_t total = 0;
    for (size_t i = 0; i < tr->words.cap; i++) total += tr->words.e[i].k ? tr->words.e[i].n : 0;
    if (total >= INT32_MAX) return -1;
    tr->seq = malloc((size_t)(total + 1) * sizeof *tr->seq);
    tr->start = malloc((size_t)(tr->n_words + 1) * sizeof *tr->start), tr->len = malloc((size_t)(tr->n_words + 1) * sizeof *tr->len);
    if (!tr->seq || !tr->start || !tr->len) return -1;
    if (!tr->wordpiece) {
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            add_symbol(tr, &c, 1);
        }
    } else { /* collect the distinct initial symbols, sort them, then number them */
        pare_strmap seen = {0};
        pare_buf sb = {0};
        for (size_t i = 0; i < tr->words.cap; i++) {
            const pare_strmap_entry *e = &tr->words.e[i];
            for (size_t q = 0; e->k && q < e->n;) {
                int l;
                pare_utf8_decode((const unsigned char *)e->k + q, e->n - q, &l);
                sb.n = 0;
                if (q) pare_buf_add(&sb, "##", 2);
                pare_buf_add(&sb, e->k + q, (size_t)l);
                if (sb.err || pare_strmap_put(&seen, sb.p, sb.n, 0, NULL) < 0) tr->oom = 1;
                q += (size_t)l;
            }
        }
        pare_buf_free(&sb);
        char **all = malloc((seen.count + 1) * sizeof *all);
        size_t k = 0;
        if (!all) tr->oom = 1;
        for (size_t i = 0; all && i < seen.cap; i++)
            if (seen.e[i].k) all[k++] = seen.e[i].k;
        if (all) qsort(all, k, sizeof *all, strcmp_ptr);
        for (size_t i = 0; all && i < k; i++) add_symbol(tr, all[i], strlen(all[i]));
        free(all);
        pare_strmap_free(&seen);
    }
    if (tr->oom) return -1;
    int64_t off = 0;
    pare_buf sb = {0};
    for (size_t i = 0; i < tr->words.cap; i++) {
        const pare_strmap_entry *e = &tr->words.e[i];
        if (!e->k) continue;
        int32_t w = e->v;
        tr->start[w] = (int32_t)off, tr->len[w] = 0;
        for (size_t q = 0; q < e->n;) {
            int l = 1;
            if (tr->wordpiece) pare_utf8_decode((const unsigned char *)e->k + q, e->n - q, &l);
            sb.n = 0;
            if (tr->wordpiece && q) pare_buf_add(&sb, "##", 2);
            pare_buf_add(&sb, e->k + q, (size_t)l);
            int32_t id = -1;
            if (sb.err || !pare_strmap_get(&tr->symmap, sb.p, sb.n, &id)) tr->oom = 1;
            tr->seq[off++] = id, tr->len[w]++;
            q += (size_t)l;
        }
    }
    pare_buf_free(&sb);
    return tr->oom ? -1 : 0;
}

/* Count every adjacent pair of the word w (sign +1 or -1, times its frequency); with z >= 0, the
 * pairs holding z are new: remember w in their word lists and mark them for a heap push. */
static void count_pairs(trainer *tr, int32_t w, int sign, int32_t z, int32_t merge, int32_t **touched, int64_t *n_touched,
                        int64_t *cap_touched)
{
    const int32_t *s = tr->seq + tr->start[w];
    for (int32_t i = 0; i + 1 < tr->len[w] && !tr->oom; i++) {
        int32_t p = pair_index(tr, s[i], s[i + 1]);
        if (p < 0) return;
        tr->pcount[p] += sign * tr->freq[w];
        if (z >= 0 && (s[i] == z || s[i + 1] == z)) {
            pair_add_word(tr, p, w);
            if (tr->ptouch[p] != merge) {
                tr->ptouch[p] = merge;
                if (grow((void **)touched, cap_touched, *n_touched + 1, sizeof **touched)) tr->oom = 1;
                else (*touched)[(*n_touched)++] = p;
            }
        }
    }
}

static void trainer_free(trainer *tr)
{
    pare_strmap_free(&tr->words), pare_strmap_free(&tr->symmap), pare_u64map_free(&tr->pairmap);
    for (int32_t i = 0; i < tr->n_sym; i++) free(tr->sym[i]);
    for (int32_t p = 0; p < tr->n_pairs; p++) free(tr->pw[p]);
    free(tr->sym), free(tr->sym_len), free(tr->freq), free(tr->seq), free(tr->start), free(tr->len);
    free(tr->pcount), free(tr->pw), free(tr->pw_n), free(tr->pw_cap), free(tr->ptouch), free(tr->heap);
    free(tr->pa), free(tr->pb);
}

static const char *const bert_specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
static const char *const gpt2_specials[] = {"<|endoftext|>"};
static const char *const roberta_specials[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};

pare_train_opts pare_train_defaults(pare_tok_kind kind)
{
    pare_train_opts o = {0};
    o.kind = kind, o.vocab_size = 8000, o.min_frequency = 2, o.wp = pare_wordpiece_defaults();
    o.style = kind == PARE_TOK_WORDPIECE ? PARE_TOK_STYLE_BERT : PARE_TOK_STYLE_GPT2;
    return o;
}

/* Feed text[0..n) line by line (each with its newline for BPE) to the pre-tokenizer. */
static int feed(trainer *tr, const char *text, size_t n)
{
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - text) + 1 : n;
        int r = tr->wordpiece ? pare_bert_split(text + i, e - i, tr->wp, count_word, tr)
                              : pare_gpt2_split(text + i, e - i, count_word, tr);
        if (r) return r;
        i = e;
    }
    return 0;
}

/* The tokenizer from the trained symbols and merges (m: a, b, result triples). */
static pare_status build(pare_tokenizer *t, trainer *tr, const pare_train_opts *o, const int32_t *m, int32_t n_merges)
{
    memset(t, 0, sizeof *t);
    t->kind = o->kind;
    t->wp = o->wp;
    PARE_TRY(pare_tok_alloc(t, tr->n_sym));
    pare_status st = PARE_OK;
    pare_buf sb = {0};
    int n_spec = o->kind == PARE_TOK_WORDPIECE ? 5 : o->style == PARE_TOK_STYLE_ROBERTA ? 5 : 1;
    for (int32_t i = 0; i < tr->n_sym && st == PARE_OK; i++) {
        sb.n = 0;
        if (o->kind == PARE_TOK_BPE && i >= n_spec) pare_bpe_to_symbols(&sb, tr->sym[i], tr->sym_len[i]);
        else pare_buf_add(&sb, tr->sym[i], tr->sym_len[i]);
        st = sb.err ? pare_fail(PARE_ENOMEM, "train: out of memory") : pare_tok_set(t, i, sb.p, sb.n, "train");
    }
    pare_buf_free(&sb);
    if (st == PARE_OK && o->kind == PARE_TOK_BPE) {
        pare_tokenizer_impl *im = t->impl;
        size_t k = (size_t)n_merges + 1;
        im->merge_a = malloc(k * sizeof(int32_t)), im->merge_b = malloc(k * sizeof(int32_t)), im->merge_to = malloc(k * sizeof(int32_t));
        if (!im->merge_a || !im->merge_b || !im->merge_to) st = pare_fail(PARE_ENOMEM, "train: out of memory");
        for (int32_t r = 0; st == PARE_OK && r < n_merges; r++) {
            im->merge_a[r] = m[3 * r], im->merge_b[r] = m[3 * r + 1], im->merge_to[r] = m[3 * r + 2];
            if (pare_u64map_put(&im->merge, (uint64_t)(uint32_t)m[3 * r] << 32 | (uint32_t)m[3 * r + 1], r))
                st = pare_fail(PARE_ENOMEM, "train: out of memory");
            im->n_merges = r + 1;
        }
        if (st == PARE_OK) st = pare_tok_bytes(t, "train");
    }
    if (st == PARE_OK) st = pare_tok_finish(t, o->kind == PARE_TOK_WORDPIECE ? PARE_TOK_STYLE_BERT : o->style);
    if (st != PARE_OK) pare_tokenizer_free(t);
    return st;
}

pare_status pare_tokenizer_train(pare_tokenizer *t, const pare_train_opts *o, const char *const *files, int nfiles,
                                 const char *text, int64_t ntext)
{
    memset(t, 0, sizeof *t);
    if (o->kind < 0 || o->kind >= PARE_TOK_KIND_COUNT) return pare_fail(PARE_EINVAL, "train: kind must be wordpiece or bpe");
    if (o->kind == PARE_TOK_BPE && o->style != PARE_TOK_STYLE_GPT2 && o->style != PARE_TOK_STYLE_ROBERTA)
        return pare_fail(PARE_EINVAL, "train: style '%s' for BPE: valid are gpt2, roberta",
                         o->style >= 0 && o->style < PARE_TOK_STYLE_COUNT ? pare_tok_style_names[o->style] : "?");
    int n_spec = o->kind == PARE_TOK_WORDPIECE ? 5 : o->style == PARE_TOK_STYLE_ROBERTA ? 5 : 1;
    const char *const *specials = o->kind == PARE_TOK_WORDPIECE ? bert_specials
                                  : o->style == PARE_TOK_STYLE_ROBERTA ? roberta_specials
                                                                       : gpt2_specials;
    if (o->kind == PARE_TOK_BPE && o->vocab_size < 256 + n_spec)
        return pare_fail(PARE_EINVAL, "train: vocab_size=%d is below the %d special tokens + 256 bytes of byte-level BPE",
                         (int)o->vocab_size, n_spec);
    if (o->vocab_size < n_spec + 1) return pare_fail(PARE_EINVAL, "train: vocab_size=%d is too small", (int)o->vocab_size);
    if (o->min_frequency < 1) return pare_fail(PARE_EINVAL, "train: min_frequency=%lld must be >= 1", (long long)o->min_frequency);
    trainer tr = {0};
    tr.wordpiece = o->kind == PARE_TOK_WORDPIECE;
    tr.wp = &o->wp;
    pare_status st = PARE_OK;
    for (int f = 0; f < nfiles && st == PARE_OK; f++) {
        char *buf;
        size_t n;
        st = pare_text_read_file(files[f], &buf, &n, "a training corpus");
        if (st == PARE_OK && feed(&tr, buf, n)) st = pare_fail(PARE_ENOMEM, "train: out of memory counting %s", files[f]);
        free(buf);
    }
    if (st == PARE_OK && text && feed(&tr, text, ntext < 0 ? strlen(text) : (size_t)ntext))
        st = pare_fail(PARE_ENOMEM, "train: out of memory counting the text");
    if (st == PARE_OK && init_symbols(&tr, specials, n_spec)) st = pare_fail(PARE_ENOMEM, "train: out of memory");
    int32_t *merges = NULL, *touched = NULL;
    int64_t n_merges = 0, cap_merges = 0, n_touched = 0, cap_touched = 0;
    for (int32_t w = 0; st == PARE_OK && w < tr.n_words && !tr.oom; w++) {
        const int32_t *s = tr.seq + tr.start[w];
        for (int32_t i = 0; i + 1 < tr.len[w] && !tr.oom; i++) {
            int32_t p = pair_index(&tr, s[i], s[i + 1]);
            if (p >= 0) tr.pcount[p] += tr.freq[w], pair_add_word(&tr, p, w);
        }
    }
    for (int32_t p = 0; st == PARE_OK && p < tr.n_pairs && !tr.oom; p++) heap_push(&tr, (heap_e){tr.pcount[p], tr.pa[p], tr.pb[p]});
    pare_buf nb = {0};
    while (st == PARE_OK && !tr.oom && tr.n_sym < o->vocab_size && tr.n_heap > 0) {
        heap_e top = heap_pop(&tr);
        int32_t p = pair_index(&tr, top.a, top.b);
        if (p < 0) break;
        if (tr.pcount[p] != top.c) { /* stale: re-queue with the live count */
            if (tr.pcount[p] > 0) heap_push(&tr, (heap_e){tr.pcount[p], top.a, top.b});
            continue;
        }
        if (top.c < o->min_frequency) break;
        nb.n = 0;
        pare_buf_add(&nb, tr.sym[top.a], tr.sym_len[top.a]);
        const char *bs = tr.sym[top.b];
        size_t bl = tr.sym_len[top.b];
        if (tr.wordpiece && bl >= 2 && bs[0] == '#' && bs[1] == '#') bs += 2, bl -= 2;
        pare_buf_add(&nb, bs, bl);
        int32_t z = nb.err ? -1 : add_symbol(&tr, nb.p, nb.n);
        if (z < 0 || grow((void **)&merges, &cap_merges, 3 * (n_merges + 1), sizeof *merges)) {
            tr.oom = 1;
            break;
        }
        int32_t mi = (int32_t)n_merges++;
        merges[3 * mi] = top.a, merges[3 * mi + 1] = top.b, merges[3 * mi + 2] = z;
        /* take the pair's word list: the words it is merged in */
        int32_t *wl = tr.pw[p], nwl = tr.pw_n[p];
        tr.pw[p] = NULL, tr.pw_n[p] = tr.pw_cap[p] = 0;
        n_touched = 0;
        for (int32_t q = 0; q < nwl && !tr.oom; q++) {
            int32_t w = wl[q];
            int32_t *s = tr.seq + tr.start[w], L = tr.len[w], hit = 0;
            for (int32_t i = 0; i + 1 < L && !hit; i++) hit = s[i] == top.a && s[i + 1] == top.b;
            if (!hit) continue; /* stale entry, or a duplicate already merged */
            count_pairs(&tr, w, -1, -1, mi, NULL, NULL, NULL);
            int32_t j = 0;
            for (int32_t i = 0; i < L; i++) {
                if (i + 1 < L && s[i] == top.a && s[i + 1] == top.b) s[j++] = z, i++;
                else s[j++] = s[i];
            }
            tr.len[w] = j;
            count_pairs(&tr, w, +1, z, mi, &touched, &n_touched, &cap_touched);
        }
        free(wl);
        for (int64_t k = 0; k < n_touched && !tr.oom; k++) {
            int32_t tp = touched[k]; /* only pairs holding z can have grown: they get a fresh heap entry */
            if (tr.pcount[tp] > 0) heap_push(&tr, (heap_e){tr.pcount[tp], tr.pa[tp], tr.pb[tp]});
        }
        if (o->progress && n_merges % 1000 == 0) o->progress(o->progress_ctx, tr.n_sym, o->vocab_size);
    }
    pare_buf_free(&nb);
    if (tr.oom && st == PARE_OK) st = pare_fail(PARE_ENOMEM, "train: out of memory");
    if (st == PARE_OK) st = build(t, &tr, o, merges, (int32_t)n_merges);
    free(merges), free(touched);
    trainer_free(&tr);
    return st;
}
