/* lm_corpus.c — the pretraining tasks on the Debian-text corpus (corpus.h), tokenized through a text
 * encoder (data/text_encoder.h) so that pare.task("mlm_corpus", {tokenizer = tok}) gives ids of tok's
 * vocabulary:
 *
 *   mlm_corpus  BERT's masked LM (Devlin et al. 2019, section 3.1 and appendix A.1). Each document's
 *               tokens are cut into pieces of at most max_len - 2 (pieces under 4 tokens are dropped);
 *               consecutive pieces are packed into rows [CLS] p1 [SEP] p2 [SEP] ... of at most max_len
 *               tokens (RoBERTa's FULL-SENTENCES packing: most fortunes are far shorter than a row, and
 *               padding would waste most of the compute; one token-type, no next-sentence prediction).
 *               Every non-special position is
 *               chosen with probability mask_prob (15%; at least one per row); a chosen token becomes
 *               [MASK] with probability mask_frac (80%), a random token with random_frac (10%: uniform
 *               over [1, vocab) without the [CLS], [SEP] and [MASK] ids), else stays (10%). Labels: the
 *               original id at chosen positions, -1 elsewhere (kind LM, for a tagger with head=mlm).
 *               Masks are drawn once, when the task is made (static masking, as BERT's original
 *               create_pretraining_data.py): `dupe` copies of the training rows, each with its own
 *               masks (BERT's dupe_factor), stand in for re-drawing per epoch. The test split has one
 *               fixed draw, so evaluations are comparable.
 *   clm_corpus  causal LM: the documents of a split (each followed by "\n\n") tokenized and concatenated
 *               into one stream, cut into windows of max_len tokens; the target at position t is the
 *               stream's next token (also past the window's end), -1 only at the stream's last token.
 *               Encoders that add [CLS]/[SEP] (WordPiece) have them stripped and [SEP] put between
 *               documents.
 *
 * Documents are held out by document: a seeded shuffle, the first test_frac of them test. Without an
 * encoder, clm_corpus uses the built-in word encoder (the training split's vocabulary); mlm_corpus needs
 * a tokenizer with a mask token.
 *
 * Entry points: pare_task_mlm_corpus, pare_task_clm_corpus (registry), pare_mlm_corpus_build,
 * pare_clm_corpus_build (with an encoder; task_impl.h).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "data/corpus.h"
#include "data/task_impl.h"
#include "data/text_encoder.h"

#define MIN_PIECE 4

/* The corpus of the options, its documents as NUL-terminated strings (text + off[i], with "\n\n"
 * appended when sep2) and the split: te[0..nte) test, tr[0..ntr) train (document indices). */
typedef struct corpus_split {
    pare_docs docs;
    char *text;
    int64_t *off;
    int64_t *te, *tr, nte, ntr;
} corpus_split;

static void split_free(corpus_split *c)
{
    pare_docs_free(&c->docs);
    pare_free(c->text), pare_free(c->off), pare_free(c->te);
    memset(c, 0, sizeof *c);
}

static pare_status split_make(corpus_split *c, const pare_options *o, int sep2)
{
    memset(c, 0, sizeof *c);
    pare_corpus_opts co = pare_corpus_defaults();
    co.sources = pare_opt_str(o, "sources");
    co.fortune_dir = pare_opt_str(o, "fortune_dir");
    co.doc_dir = pare_opt_str(o, "doc_dir");
    co.licenses_dir = pare_opt_str(o, "licenses_dir");
    co.max_bytes = (int64_t)pare_opt_num(o, "max_bytes");
    pare_corpus_stats stats;
    PARE_TRY(pare_corpus_read(&c->docs, &co, &stats));
    int64_t n = c->docs.n;
    if (n < 2) return split_free(c), pare_fail(PARE_EINVAL, "%s: the corpus has %lld document(s); a split needs 2",
                                               o->schema->name, (long long)n);
    c->text = pare_alloc(c->docs.nbytes + (size_t)n * 3 + 1);
    c->off = pare_alloc((size_t)n * sizeof(int64_t));
    if (!c->text || !c->off) return split_free(c), pare_fail(PARE_ENOMEM, "%s: out of memory", o->schema->name);
    size_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = pare_docs_at(&c->docs, i, &len);
        c->off[i] = (int64_t)used;
        memcpy(c->text + used, s, len);
        used += len;
        if (sep2) c->text[used++] = '\n', c->text[used++] = '\n';
        c->text[used++] = '\0';
    }
    pare_status st = pare_corpus_split(&c->te, &c->nte, n, (uint64_t)pare_opt_num(o, "seed"), pare_opt_num(o, "test_frac"));
    if (st != PARE_OK) return split_free(c), st;
    c->tr = c->te + c->nte, c->ntr = n - c->nte;
    return PARE_OK;
}

/* A growable int32 array. */
typedef struct ivec { int32_t *v; int64_t n, cap; } ivec;

static int ivec_put(ivec *a, const int32_t *x, int64_t n)
{
    if (a->n + n > a->cap) {
        int64_t cap = a->cap ? a->cap : 1 << 16;
        while (cap < a->n + n) cap *= 2;
        int32_t *v = pare_alloc((size_t)cap * sizeof *v);
        if (!v) return -1;
        if (a->n) memcpy(v, a->v, (size_t)a->n * sizeof *v);
        pare_free(a->v);
        a->v = v, a->cap = cap;
    }
    memcpy(a->v + a->n, x, (size_t)n * sizeof *x);
    a->n += n;
    return 0;
}

/* Tokens of the documents idx[0..n) into *toks (specials stripped), document k's from starts[k]
 * (starts has n + 1 entries). */
static pare_status tokenize_docs(ivec *toks, int64_t *starts, const corpus_split *c, const int64_t *idx, int64_t n,
                                 const pare_text_encoder *enc, const char *name)
{
    int32_t *ids = NULL, *types = NULL;
    int64_t cap = 0;
    pare_status st = PARE_OK;
    for (int64_t k = 0; k < n && st == PARE_OK; k++) {
        starts[k] = toks->n;
        const char *s = c->text + c->off[idx[k]];
        int64_t max_len = (int64_t)strlen(s) + 8, len = 0; /* every token takes a byte, but the specials */
        if (max_len > cap) {
            pare_free(ids);
            cap = 2 * max_len;
            ids = pare_alloc((size_t)cap * 2 * sizeof(int32_t)), types = ids ? ids + cap : NULL;
            if (!ids) st = pare_fail(PARE_ENOMEM, "%s: out of memory tokenizing", name);
        }
        if (st == PARE_OK) st = enc->encode(enc->self, s, NULL, max_len, ids, types, &len);
        if (st != PARE_OK) break;
        int64_t a = 0, b = len;
        if (b > a && enc->cls_id > 0 && ids[a] == enc->cls_id) a++;
        if (b > a && enc->sep_id > 0 && ids[b - 1] == enc->sep_id) b--;
        for (int64_t j = a; j < b; j++)
            if (ids[j] < 1 || ids[j] >= enc->vocab) {
                st = pare_fail(PARE_EINVAL, "%s: the encoder gave token %d outside [1, vocab=%d) in document %lld", name,
                               ids[j], enc->vocab, (long long)idx[k]);
                break;
            }
        if (st == PARE_OK && ivec_put(toks, ids + a, b - a)) st = pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    }
    starts[n] = toks->n;
    pare_free(ids);
    return st;
}

/* ---- mlm_corpus ---- */

/* A random replacement: uniform over [1, vocab) without the special ids. */
static int32_t random_token(pare_rng *r, const pare_text_encoder *enc)
{
    for (;;) {
        int32_t t = 1 + (int32_t)pare_rng_below(r, (uint64_t)(enc->vocab - 1));
        if (t != enc->cls_id && t != enc->sep_id && t != enc->mask_id) return t;
    }
}

/* The rows of one split: pieces of every document packed into rows, `copies` times with fresh masks, at
 * most nmax rows (0: all). */
static pare_status mlm_split(pare_dataset *d, const char *name, const corpus_split *c, const int64_t *idx, int64_t n,
                             const pare_text_encoder *enc, const pare_options *o, int64_t copies, int64_t nmax, pare_rng *r)
{
    int64_t max_len = (int64_t)pare_opt_num(o, "max_len");
    int has_cls = enc->cls_id > 0, has_sep = enc->sep_id > 0;
    int64_t P = max_len - has_cls - has_sep; /* the longest piece */
    double pm = pare_opt_num(o, "mask_prob"), fm = pare_opt_num(o, "mask_frac"), fr = pare_opt_num(o, "random_frac");
    ivec toks = {0}, seg = {0}, rowseg = {0}; /* seg: (start, len) pairs; rowseg: first segment of each row */
    int64_t *starts = pare_alloc((size_t)(n + 1) * sizeof(int64_t));
    if (!starts) return pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    pare_status st = tokenize_docs(&toks, starts, c, idx, n, enc, name);
    if (st == PARE_OK && toks.n > INT32_MAX) /* pieces are kept as int32 offsets */
        st = pare_fail(PARE_EINVAL, "%s: %lld tokens; at most %d (use max_bytes)", name, (long long)toks.n, INT32_MAX);
    int64_t T = 1, used = max_len; /* tokens of the row being packed */
    for (int64_t k = 0; k < n && st == PARE_OK; k++)
        for (int64_t a = starts[k]; a < starts[k + 1] && st == PARE_OK; a += P) {
            int64_t len = starts[k + 1] - a < P ? starts[k + 1] - a : P;
            if (len < MIN_PIECE) continue;
            int32_t sl[2] = {(int32_t)a, (int32_t)len}, nseg = (int32_t)(seg.n / 2);
            if (used + len + has_sep > max_len) { /* a new row */
                if (ivec_put(&rowseg, &nseg, 1)) st = pare_fail(PARE_ENOMEM, "%s: out of memory", name);
                used = has_cls;
            }
            used += len + has_sep;
            if (used > T) T = used;
            if (st == PARE_OK && ivec_put(&seg, sl, 2)) st = pare_fail(PARE_ENOMEM, "%s: out of memory", name);
        }
    int32_t end = (int32_t)(seg.n / 2);
    if (st == PARE_OK && ivec_put(&rowseg, &end, 1)) st = pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    int64_t rows = rowseg.n - 1, total = rows * copies;
    if (nmax > 0 && total > nmax) total = nmax;
    if (st == PARE_OK && total < 1)
        st = pare_fail(PARE_EINVAL, "%s: no rows (the documents give no piece of %d tokens)", name, MIN_PIECE);
    if (st == PARE_OK) st = pare_dataset_alloc(d, name, PARE_TASK_LM, total, T, enc->vocab, enc->vocab);
    for (int64_t i = 0; i < total && st == PARE_OK; i++) {
        int64_t rw = i % rows, j = 0;
        int32_t *row = d->tokens + i * T, *lab = d->labels + i * T;
        if (has_cls) row[j++] = enc->cls_id;
        int64_t chosen = 0, first = j;
        for (int32_t g = rowseg.v[rw]; g < rowseg.v[rw + 1]; g++) {
            int64_t a = seg.v[2 * g], len = seg.v[2 * g + 1];
            memcpy(row + j, toks.v + a, (size_t)len * sizeof(int32_t));
            for (int64_t q = j; q < j + len; q++) /* [CLS] and [SEP] are never chosen */
                if (pare_rng_uniform(r) < pm) lab[q] = row[q], chosen++;
            j += len;
            if (has_sep) row[j++] = enc->sep_id;
        }
        d->lengths[i] = (int32_t)j;
        if (!chosen) { /* at least one scored position per row: the first piece's */
            int64_t q = first + (int64_t)pare_rng_below(r, (uint64_t)seg.v[2 * rowseg.v[rw] + 1]);
            lab[q] = row[q];
        }
        for (int64_t q = first; q < j; q++) {
            if (lab[q] < 0) continue;
            double u = pare_rng_uniform(r);
            if (u < fm) row[q] = enc->mask_id;
            else if (u < fm + fr) row[q] = random_token(r, enc);
        }
    }
    if (st == PARE_OK) st = pare_text_dataset_names(d, enc);
    pare_free(toks.v), pare_free(seg.v), pare_free(rowseg.v), pare_free(starts);
    return st;
}

pare_status pare_mlm_corpus_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                  const pare_text_encoder *enc)
{
    if (!enc || enc->mask_id <= 0)
        return pare_fail(PARE_EINVAL, "mlm_corpus: needs tokenizer = a pare.tokenizer with a mask token ([MASK]), e.g. "
                         "pare.train_tokenizer{kind = \"wordpiece\", ...}%s", enc ? " (this one has none)" : "");
    if (pare_opt_num(o, "mask_frac") + pare_opt_num(o, "random_frac") > 1)
        return pare_fail(PARE_EINVAL, "mlm_corpus: mask_frac + random_frac = %g exceeds 1",
                         pare_opt_num(o, "mask_frac") + pare_opt_num(o, "random_frac"));
    corpus_split c;
    PARE_TRY(split_make(&c, o, 0));
    pare_rng rtr, rte;
    pare_task_streams(o, &rtr, &rte);
    pare_status st = mlm_split(test, "mlm_corpus/test", &c, c.te, c.nte, enc, o, 1, (int64_t)pare_opt_num(o, "n_test"), &rte);
    if (st == PARE_OK)
        st = mlm_split(train, "mlm_corpus/train", &c, c.tr, c.ntr, enc, o, (int64_t)pare_opt_num(o, "dupe"),
                       (int64_t)pare_opt_num(o, "n_train"), &rtr);
    int64_t T = 0;
    if (st == PARE_OK) st = pare_task_pad_len(o, train->T > test->T ? train->T : test->T, &T);
    if (st == PARE_OK) st = pare_dataset_repad(train, T);
    if (st == PARE_OK) st = pare_dataset_repad(test, T);
    split_free(&c);
    return st;
}

static pare_status mlm_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    return pare_mlm_corpus_build(train, test, o, NULL);
}

/* ---- clm_corpus ---- */

static pare_status clm_split(pare_dataset *d, const char *name, const corpus_split *c, const int64_t *idx, int64_t n,
                             const pare_text_encoder *enc, int64_t T, int64_t nmax)
{
    ivec toks = {0};
    int64_t *starts = pare_alloc((size_t)(n + 1) * sizeof(int64_t));
    if (!starts) return pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    pare_status st = PARE_OK;
    if (enc->sep_id > 0) { /* [SEP] between documents: tokenize one by one */
        int64_t two[2];
        for (int64_t k = 0; k < n && st == PARE_OK; k++) {
            st = tokenize_docs(&toks, two, c, idx + k, 1, enc, name);
            if (st == PARE_OK && ivec_put(&toks, &enc->sep_id, 1)) st = pare_fail(PARE_ENOMEM, "%s: out of memory", name);
        }
    } else st = tokenize_docs(&toks, starts, c, idx, n, enc, name);
    int64_t rows = toks.n / T;
    if (nmax > 0 && rows > nmax) rows = nmax;
    if (st == PARE_OK && rows < 1)
        st = pare_fail(PARE_EINVAL, "%s: %lld tokens make no window of max_len=%lld", name, (long long)toks.n, (long long)T);
    if (st == PARE_OK) st = pare_dataset_alloc(d, name, PARE_TASK_LM, rows, T, enc->vocab, enc->vocab);
    for (int64_t i = 0; i < rows && st == PARE_OK; i++) {
        memcpy(d->tokens + i * T, toks.v + i * T, (size_t)T * sizeof(int32_t));
        d->lengths[i] = (int32_t)T;
        for (int64_t t = 0; t < T; t++) d->labels[i * T + t] = i * T + t + 1 < toks.n ? toks.v[i * T + t + 1] : -1;
    }
    if (st == PARE_OK) st = pare_text_dataset_names(d, enc);
    pare_free(toks.v), pare_free(starts);
    return st;
}

pare_status pare_clm_corpus_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                  const pare_text_encoder *enc)
{
    corpus_split c;
    PARE_TRY(split_make(&c, o, 1));
    pare_word_encoder *w = NULL;
    pare_text_encoder own;
    pare_status st = PARE_OK;
    if (!enc) { /* the built-in word encoder, on the training documents */
        pare_text_example *ex = pare_alloc((size_t)c.ntr * sizeof *ex);
        if (!ex) st = pare_fail(PARE_ENOMEM, "clm_corpus: out of memory");
        for (int64_t k = 0; st == PARE_OK && k < c.ntr; k++) ex[k] = (pare_text_example){c.text + c.off[c.tr[k]], NULL, 0, NAN};
        if (st == PARE_OK)
            st = pare_word_encoder_build(&w, ex, c.ntr, (int32_t)pare_opt_num(o, "vocab"), (int32_t)pare_opt_num(o, "min_count"));
        pare_free(ex);
        if (st == PARE_OK) own = pare_word_encoder_iface(w), enc = &own;
    }
    int64_t T = (int64_t)pare_opt_num(o, "max_len");
    if (st == PARE_OK) st = clm_split(test, "clm_corpus/test", &c, c.te, c.nte, enc, T, (int64_t)pare_opt_num(o, "n_test"));
    if (st == PARE_OK) st = clm_split(train, "clm_corpus/train", &c, c.tr, c.ntr, enc, T, (int64_t)pare_opt_num(o, "n_train"));
    if (st == PARE_OK) st = pare_task_pad_len(o, T, &T);
    if (st == PARE_OK) st = pare_dataset_repad(train, T);
    if (st == PARE_OK) st = pare_dataset_repad(test, T);
    pare_word_encoder_free(w);
    split_free(&c);
    return st;
}

static pare_status clm_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    return pare_clm_corpus_build(train, test, o, NULL);
}

/* ---- schemas ---- */
#define CORPUS_OPTS                                                                                                      \
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "held-out documents and the masks"},                        \
    {"sources", PARE_OPT_STRING, "all", 0, 0, NULL, "comma list of fortunes, copyright, readme, licenses (or all)"},     \
    {"fortune_dir", PARE_OPT_STRING, "/usr/share/games/fortunes", 0, 0, NULL, "fortune files (Debian's fortunes)"},    \
    {"doc_dir", PARE_OPT_STRING, "/usr/share/doc", 0, 0, NULL, "package documentation: */copyright and */README*"},      \
    {"licenses_dir", PARE_OPT_STRING, "/usr/share/common-licenses", 0, 0, NULL, "license texts"},                        \
    {"max_bytes", PARE_OPT_INT, "0", 0, 1e12, NULL, "stop reading the corpus after this many bytes (0: all)"},           \
    {"test_frac", PARE_OPT_FLOAT, "0.02", 0, 0.9, NULL, "fraction of the documents held out for the test split"},       \
    {"n_train", PARE_OPT_INT, "0", 0, 1e9, NULL, "at most this many training rows (0: all)"},                            \
    {"n_test", PARE_OPT_INT, "0", 0, 1e9, NULL, "at most this many test rows (0: all)"},                                 \
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: the longest row)"}

static const pare_opt_spec mlm_opts[] = {
    CORPUS_OPTS,
    {"max_len", PARE_OPT_INT, "128", 8, 1e6, NULL, "tokens per row incl. [CLS] and [SEP]"},
    {"mask_prob", PARE_OPT_FLOAT, "0.15", 0.001, 1, NULL, "fraction of the tokens chosen for prediction"},
    {"mask_frac", PARE_OPT_FLOAT, "0.8", 0, 1, NULL, "of the chosen, the fraction replaced by [MASK]"},
    {"random_frac", PARE_OPT_FLOAT, "0.1", 0, 1, NULL, "of the chosen, the fraction replaced by a random token"},
    {"dupe", PARE_OPT_INT, "1", 1, 1000, NULL, "copies of the training rows, each with its own masks (BERT's dupe_factor)"},
};
static const pare_schema mlm_schema = {
    "mlm_corpus", "BERT's masked LM (15% chosen: 80% [MASK], 10% random, 10% kept) on English text of Debian packages; "
    "needs tokenizer =", mlm_opts, (int)(sizeof mlm_opts / sizeof mlm_opts[0])};
const pare_task_desc pare_task_mlm_corpus = {&mlm_schema, mlm_make};

static const pare_opt_spec clm_opts[] = {
    CORPUS_OPTS,
    {"max_len", PARE_OPT_INT, "128", 2, 1e6, NULL, "tokens per window"},
    {"vocab", PARE_OPT_INT, "8000", 5, 1e7, NULL, "without a tokenizer: the built-in word encoder's vocabulary"},
    {"min_count", PARE_OPT_INT, "2", 1, 1e9, NULL, "without a tokenizer: rarer words become [UNK]"},
};
static const pare_schema clm_schema = {
    "clm_corpus", "causal LM (next token) on English text of Debian packages, windows of max_len tokens",
    clm_opts, (int)(sizeof clm_opts / sizeof clm_opts[0])};
const pare_task_desc pare_task_clm_corpus = {&clm_schema, clm_make};
