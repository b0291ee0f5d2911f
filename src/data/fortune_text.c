/* fortune_text.c — two GLUE-like word-level tasks built from the fortune databases of Debian's
 * `fortunes` package (read at run time, never shipped), so the GLUE pipeline (encoder, datasets,
 * metrics) runs end to end on real English text without GLUE's files:
 *
 *   fortune_topic  single-segment classification: which category a fortune comes from (SST-2-like).
 *                  Default categories computers, men-women, politics, science, work: five topical
 *                  files with 580+ distinct fortunes each. Balanced by capping every class at the
 *                  smallest; the test split is drawn per class before the train split (disjoint).
 *   fortune_pair   sentence-pair classification: do two sentences come from the same fortune
 *                  (MRPC/QQP-like, label 1 = same). Only fortunes with at least two sentences of
 *                  min_words words are used; they are split into test and train pools by the seed, so no
 *                  fortune (hence no sentence) of a test pair is in a training pair. A positive takes two
 *                  distinct sentences of one fortune, a negative one sentence from each of two distinct
 *                  fortunes; the order within a pair is random; labels are exactly balanced.
 *   fortune_sts    sentence-pair regression (STS-B-like, scores in [0, 5]): sentence2 is sentence1 with
 *                  some of its w words replaced, position by position, by words of a sentence of another
 *                  fortune; q of them are kept (q uniform in 0..w) and the score is 5·q/w, a graded word
 *                  overlap. The same pools as fortune_pair (test fortunes disjoint from train fortunes).
 *
 * Sentences: the fortune's attribution (from a line starting with "--") is dropped, since the same
 * attribution ends many fortunes and would give pairs away; its white space is collapsed to single spaces, then it is cut after '.', '!' or
 * '?' (and any closing quotes or brackets) followed by a space. Abbreviations ("Mr. Smith") are cut
 * too: a deliberate simplification, the same for every seed.
 *
 * Deliberately not here: the fortune file reader (fortunes.c), encoders (text_encoder.c).
 *
 * Entry points: pare_task_fortune_topic, pare_task_fortune_pair, pare_task_fortune_sts (registry),
 * pare_fortune_topic_build, pare_fortune_pair_build, pare_fortune_sts_build (with an encoder; task_impl.h).
 */
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "data/lra_files.h"
#include "data/task_impl.h"
#include "data/text_encoder.h"

/* Documents idx[0..n) of docs as NUL-terminated strings in one buffer (*buf), single-segment examples. */
static pare_status docs_examples(pare_text_example **ex, char **buf, const pare_docs *docs, const int64_t *idx,
                                 int64_t n)
{
    size_t bytes = 1;
    for (int64_t i = 0; i < n; i++) bytes += (size_t)(docs->start[idx[i] + 1] - docs->start[idx[i]]) + 1;
    *ex = pare_alloc((size_t)(n ? n : 1) * sizeof **ex);
    *buf = pare_alloc(bytes);
    if (!*ex || !*buf) {
        pare_free(*ex), pare_free(*buf);
        *ex = NULL, *buf = NULL;
        return pare_fail(PARE_ENOMEM, "out of memory for %lld examples", (long long)n);
    }
    char *p = *buf;
    for (int64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = pare_docs_at(docs, idx[i], &len);
        memcpy(p, s, len);
        p[len] = '\0';
        (*ex)[i] = (pare_text_example){p, NULL, docs->label[idx[i]], NAN};
        p += len + 1;
    }
    return PARE_OK;
}

pare_status pare_fortune_topic_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                     const pare_text_encoder *enc)
{
    pare_docs docs;
    PARE_TRY(pare_fortunes_read(&docs, pare_opt_str(o, "dir"), pare_opt_str(o, "categories"), "fortune_topic"));
    int32_t C = docs.nclass;
    int64_t *cte = pare_alloc((size_t)C * sizeof(int64_t)), *ctr = pare_alloc((size_t)C * sizeof(int64_t));
    int64_t *ste = pare_alloc((size_t)(C + 1) * sizeof(int64_t)), *str = pare_alloc((size_t)(C + 1) * sizeof(int64_t));
    int64_t *te = NULL, *tr = NULL;
    pare_text_example *xte = NULL, *xtr = NULL;
    char *bte = NULL, *btr = NULL;
    pare_status st = PARE_OK;
    if (!cte || !ctr || !ste || !str) st = pare_fail(PARE_ENOMEM, "fortune_topic: out of memory");
    if (st == PARE_OK && C < 2)
        st = pare_fail(PARE_EINVAL, "fortune_topic: option categories names %d category; classification needs at least 2", C);
    if (st == PARE_OK)
        st = pare_docs_balance(cte, ctr, &docs, (int64_t)pare_opt_num(o, "n_train"), (int64_t)pare_opt_num(o, "n_test"),
                               pare_opt_num(o, "test_frac"), "fortune_topic");
    pare_rng part = pare_task_stream(o, 3), rtr, rte;
    pare_task_streams(o, &rtr, &rte);
    if (st == PARE_OK) st = pare_docs_partition(&te, ste, &tr, str, &docs, cte, ctr, &part);
    if (st == PARE_OK) {
        pare_shuffle_i64(te, &rte, ste[C]); /* interleave the classes */
        pare_shuffle_i64(tr, &rtr, str[C]);
        st = docs_examples(&xte, &bte, &docs, te, ste[C]);
    }
    if (st == PARE_OK) st = docs_examples(&xtr, &btr, &docs, tr, str[C]);
    if (st == PARE_OK)
        st = pare_text_task_splits(train, test, "fortune_topic", xtr, str[C], xte, ste[C], C, enc, o);
    pare_free(cte), pare_free(ctr), pare_free(ste), pare_free(str), pare_free(te), pare_free(tr);
    pare_free(xte), pare_free(xtr), pare_free(bte), pare_free(btr);
    pare_docs_free(&docs);
    return st;
}

/* ---- fortune_pair ---- */

/* Sentences of every usable fortune: sentence k is text + off[k]; fortune f owns sentences
 * first[f] .. first[f + 1]. */
typedef struct sentences {
    char *text;
    size_t *off;
    int64_t *first; /* (nf + 1) */
    int64_t ns, nf;
} sentences;

static void sentences_free(sentences *s) { pare_free(s->text), pare_free(s->off), pare_free(s->first); memset(s, 0, sizeof *s); }

static int64_t count_words(const char *s)
{
    int64_t n = 0;
    for (int in = 0; *s; s++) {
        int alnum = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9');
        if (*s == ' ') in = 0;
        else if (alnum && !in) in = 1, n++;
    }
    return n;
}

/* The length of s before its attribution: the first line whose text starts with "--" ("  -- Mark
 * Twain"). The same attribution ends many fortunes, so as a "sentence" it would give pairs away. */
static size_t before_attribution(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && s[i - 1] != '\n') continue;
        size_t j = i;
        while (j < len && (s[j] == ' ' || s[j] == '\t')) j++;
        if (j + 1 < len && s[j] == '-' && s[j + 1] == '-') return i;
    }
    return len;
}

/* Split every fortune; keep those with >= 2 sentences of >= min_words words (only those sentences). */
static pare_status split_sentences(sentences *out, const pare_docs *docs, int64_t min_words)
{
    memset(out, 0, sizeof *out);
    size_t cap = docs->nbytes + (size_t)docs->n + 1;
    out->text = pare_alloc(cap);
    out->off = pare_alloc(cap / 2 * sizeof(size_t) + sizeof(size_t)); /* a kept sentence takes >= 2 bytes */
    out->first = pare_alloc((size_t)(docs->n + 1) * sizeof(int64_t));
    if (!out->text || !out->off || !out->first) return sentences_free(out), pare_fail(PARE_ENOMEM, "fortune_pair: out of memory");
    size_t used = 0;
    out->first[0] = 0;
    for (int64_t d = 0; d < docs->n; d++) {
        size_t len, used0 = used;
        int64_t ns0 = out->ns;
        const char *s = pare_docs_at(docs, d, &len);
        len = before_attribution(s, len);
        size_t start = used;
        int space = 1; /* collapse white space; drop it at sentence starts */
        for (size_t i = 0; i <= len; i++) {
            char c = i < len ? s[i] : '\0';
            int ws = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
            if (ws) {
                if (!space) out->text[used++] = ' ', space = 1;
            } else if (c) {
                out->text[used++] = c, space = 0;
            }
            /* a sentence ends at the end, or at a space after [.!?] and closing quotes/brackets */
            int end = !c;
            if (ws && used > start + 1) {
                size_t q = used - 2; /* the character before the space just written */
                while (q > start && (out->text[q] == '"' || out->text[q] == '\'' || out->text[q] == ')' || out->text[q] == ']'))
                    q--;
                end = out->text[q] == '.' || out->text[q] == '!' || out->text[q] == '?';
            }
            if (!end) continue;
            size_t e = used;
            while (e > start && out->text[e - 1] == ' ') e--;
            out->text[e] = '\0';
            if (e > start && count_words(out->text + start) >= min_words) {
                out->off[out->ns++] = start;
                used = e + 1;
            } else {
                used = start;
            }
            start = used, space = 1;
        }
        if (out->ns - ns0 >= 2) {
            out->first[++out->nf] = out->ns;
        } else {
            out->ns = ns0, used = used0; /* fewer than two sentences: drop the fortune */
        }
    }
    return PARE_OK;
}

/* n pairs from the fortunes pool[0..m) (exactly balanced labels), as examples pointing into s->text. */
static pare_status make_pairs(pare_text_example **ex, const sentences *s, const int64_t *pool, int64_t m, int64_t n,
                              pare_rng *r)
{
    *ex = pare_alloc((size_t)(n ? n : 1) * sizeof **ex);
    int64_t *lab = pare_alloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!*ex || !lab) return pare_free(*ex), pare_free(lab), *ex = NULL, pare_fail(PARE_ENOMEM, "fortune_pair: out of memory");
    for (int64_t i = 0; i < n; i++) lab[i] = i < n / 2;
    pare_shuffle_i64(lab, r, n);
    for (int64_t i = 0; i < n; i++) {
        int64_t f = pool[pare_rng_below(r, (uint64_t)m)], g = f, ka, kb;
        int64_t nf = s->first[f + 1] - s->first[f];
        ka = s->first[f] + (int64_t)pare_rng_below(r, (uint64_t)nf);
        if (lab[i]) {
            kb = s->first[f] + (int64_t)pare_rng_below(r, (uint64_t)(nf - 1));
            kb += kb >= ka;
        } else {
            int64_t j = (int64_t)pare_rng_below(r, (uint64_t)(m - 1));
            g = pool[j];
            if (g == f) g = pool[m - 1]; /* the pool without f: index m-1 stands in for f's slot */
            kb = s->first[g] + (int64_t)pare_rng_below(r, (uint64_t)(s->first[g + 1] - s->first[g]));
        }
        if (pare_rng_below(r, 2)) { int64_t t = ka; ka = kb, kb = t; }
        (*ex)[i] = (pare_text_example){s->text + s->off[ka], s->text + s->off[kb], (int32_t)lab[i], NAN};
    }
    pare_free(lab);
    return PARE_OK;
}

/* ---- fortune_sts ---- */

/* The words of s (single spaces between them, as split_sentences leaves them): starts and lengths, at most
 * max; returns how many. */
static int64_t words_of(const char *s, const char **w, size_t *len, int64_t max)
{
    int64_t n = 0;
    while (*s && n < max) {
        const char *e = strchr(s, ' ');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l) w[n] = s, len[n++] = l;
        s += l + (e != NULL);
    }
    return n;
}

#define STS_MAX_WORDS 256 /* words of sentence1 that take part; the rest are kept as they are */

/* n pairs from the fortunes pool[0..m): a sentence, and a copy with q of its w words kept and the others
 * replaced by words of another fortune's sentence (score 5·q/w). The second sentences are written into
 * *buf (one allocation); the first point into s->text. */
static pare_status make_sts(pare_text_example **ex, char **buf, const sentences *s, const int64_t *pool, int64_t m,
                            int64_t n, pare_rng *r)
{
    size_t longest = 0;
    for (int64_t k = 0; k < s->ns; k++) {
        size_t l = strlen(s->text + s->off[k]);
        if (l > longest) longest = l;
    }
    /* a copy is at most w words of at most `longest` bytes each, plus spaces */
    size_t per = (size_t)STS_MAX_WORDS * (longest + 1) + longest + 2, used = 0;
    *ex = pare_alloc((size_t)(n ? n : 1) * sizeof **ex);
    *buf = pare_alloc(per * (size_t)(n ? n : 1) < ((size_t)1 << 31) ? per * (size_t)(n ? n : 1) : 0);
    size_t *at = pare_alloc((size_t)(n ? n : 1) * sizeof(size_t));
    if (!*ex || !*buf || !at) {
        pare_free(*ex), pare_free(*buf), pare_free(at);
        *ex = NULL, *buf = NULL;
        return pare_fail(PARE_ENOMEM, "fortune_sts: out of memory for %lld pairs", (long long)n);
    }
    const char *wa[STS_MAX_WORDS], *wb[STS_MAX_WORDS];
    size_t la[STS_MAX_WORDS], lb[STS_MAX_WORDS];
    int keep[STS_MAX_WORDS];
    for (int64_t i = 0; i < n; i++) {
        int64_t f = pool[pare_rng_below(r, (uint64_t)m)];
        int64_t j = (int64_t)pare_rng_below(r, (uint64_t)(m - 1)), g = pool[j];
        if (g == f) g = pool[m - 1]; /* the pool without f */
        int64_t ka = s->first[f] + (int64_t)pare_rng_below(r, (uint64_t)(s->first[f + 1] - s->first[f]));
        int64_t kb = s->first[g] + (int64_t)pare_rng_below(r, (uint64_t)(s->first[g + 1] - s->first[g]));
        const char *a = s->text + s->off[ka];
        int64_t w = words_of(a, wa, la, STS_MAX_WORDS), nb = words_of(s->text + s->off[kb], wb, lb, STS_MAX_WORDS);
        int64_t q = (int64_t)pare_rng_below(r, (uint64_t)w + 1);
        for (int64_t k = 0; k < w; k++) keep[k] = k < q;
        for (int64_t k = w - 1; k > 0; k--) { /* which q positions are kept: a uniform subset */
            int64_t t = (int64_t)pare_rng_below(r, (uint64_t)k + 1), x = keep[k];
            keep[k] = keep[t], keep[t] = (int)x;
        }
        char *out = *buf + used;
        size_t o = 0;
        for (int64_t k = 0; k < w; k++) {
            const char *src = wa[k];
            size_t l = la[k];
            if (!keep[k]) {
                int64_t d = (int64_t)pare_rng_below(r, (uint64_t)nb);
                src = wb[d], l = lb[d];
            }
            if (o) out[o++] = ' ';
            memcpy(out + o, src, l);
            o += l;
        }
        out[o] = '\0';
        at[i] = used;
        used += o + 1;
        (*ex)[i] = (pare_text_example){a, NULL, 0, (float)(5.0 * (double)q / (double)w)};
    }
    for (int64_t i = 0; i < n; i++) (*ex)[i].b = *buf + at[i];
    pare_free(at);
    return PARE_OK;
}

/* The two pair tasks over sentences of one fortune: fortune_pair (same fortune or not, 2 classes) and
 * fortune_sts (a second sentence sharing some of the first's words, a score; buffers hold its text).
 * Test and train come from disjoint pools of fortunes. */
static pare_status pair_task_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                   const pare_text_encoder *enc, const char *name, int sts)
{
    pare_docs docs;
    PARE_TRY(pare_fortunes_read(&docs, pare_opt_str(o, "dir"), pare_opt_str(o, "categories"), name));
    sentences s;
    pare_status st = split_sentences(&s, &docs, (int64_t)pare_opt_num(o, "min_words"));
    pare_docs_free(&docs);
    if (st != PARE_OK) return st;
    int64_t *pool = pare_alloc((size_t)(s.nf ? s.nf : 1) * sizeof(int64_t));
    pare_text_example *xte = NULL, *xtr = NULL;
    char *bte = NULL, *btr = NULL;
    int64_t nte = (int64_t)(pare_opt_num(o, "test_frac") * (double)s.nf), ntr = s.nf - nte;
    int64_t n_test = (int64_t)pare_opt_num(o, "n_test"), n_train = (int64_t)pare_opt_num(o, "n_train");
    if (!pool) st = pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    else if (nte < 2 || ntr < 2)
        st = pare_fail(PARE_EINVAL, "%s: %lld fortunes of the categories have two or more sentences of "
                       "min_words=%d words; test_frac=%g leaves %lld test and %lld train fortunes (each pool needs 2): "
                       "choose more categories, a lower min_words or another test_frac", name, (long long)s.nf,
                       pare_opt_int(o, "min_words"), pare_opt_num(o, "test_frac"), (long long)nte, (long long)ntr);
    if (st == PARE_OK) {
        for (int64_t f = 0; f < s.nf; f++) pool[f] = f;
        pare_rng part = pare_task_stream(o, 3), rtr, rte;
        pare_task_streams(o, &rtr, &rte);
        pare_shuffle_i64(pool, &part, s.nf); /* test pool first, then train: disjoint fortunes */
        st = sts ? make_sts(&xte, &bte, &s, pool, nte, n_test, &rte) : make_pairs(&xte, &s, pool, nte, n_test, &rte);
        if (st == PARE_OK)
            st = sts ? make_sts(&xtr, &btr, &s, pool + nte, ntr, n_train, &rtr)
                     : make_pairs(&xtr, &s, pool + nte, ntr, n_train, &rtr);
    }
    if (st == PARE_OK) st = pare_text_task_splits(train, test, name, xtr, n_train, xte, n_test, sts ? 1 : 2, enc, o);
    pare_free(pool), pare_free(xte), pare_free(xtr), pare_free(bte), pare_free(btr);
    sentences_free(&s);
    return st;
}

pare_status pare_fortune_sts_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                   const pare_text_encoder *enc)
{
    return pair_task_build(train, test, o, enc, "fortune_sts", 1);
}

pare_status pare_fortune_pair_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                    const pare_text_encoder *enc)
{
    return pair_task_build(train, test, o, enc, "fortune_pair", 0);
}

/* ---- registry ---- */

static pare_status fortune_topic_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    return pare_fortune_topic_build(train, test, o, NULL);
}

static pare_status fortune_pair_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    return pare_fortune_pair_build(train, test, o, NULL);
}

static pare_status fortune_sts_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    return pare_fortune_sts_build(train, test, o, NULL);
}

#define ENCODER_OPTS                                                                                               \
    {"max_len", PARE_OPT_INT, "64", 4, 1e6, NULL, "tokens per example incl. [CLS] and [SEP]: longer ones are truncated"}, \
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: the longest example)"},                        \
    {"vocab", PARE_OPT_INT, "8000", 5, 1e7, NULL, "built-in word encoder: most frequent words of the train split kept"}, \
    {"min_count", PARE_OPT_INT, "2", 1, 1e9, NULL, "built-in word encoder: words seen fewer times become [UNK]"}

static const pare_opt_spec topic_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "which fortunes form the test split, and the order"},
    {"dir", PARE_OPT_STRING, PARE_FORTUNE_DIR, 0, 0, NULL, "directory of fortune files (Debian package fortunes)"},
    {"categories", PARE_OPT_STRING, "computers,men-women,politics,science,work", 0, 0, NULL,
     "comma-separated fortune files = classes, in label order, or 'all'"},
    {"n_train", PARE_OPT_INT, "0", 0, 1e8, NULL, "training examples, balanced (0: all that remain after the test split)"},
    {"n_test", PARE_OPT_INT, "0", 0, 1e8, NULL, "test examples, balanced (0: test_frac of the smallest category, per class)"},
    {"test_frac", PARE_OPT_FLOAT, "0.2", 0, 1, NULL, "share of the smallest category held out per class (when n_test is 0)"},
    ENCODER_OPTS,
};
static const pare_schema topic_schema = {
    "fortune_topic", "word-level: which category a fortune comes from ([CLS] fortune [SEP]; balanced; GLUE-style stand-in)",
    topic_opts, (int)(sizeof topic_opts / sizeof topic_opts[0])};
const pare_task_desc pare_task_fortune_topic = {&topic_schema, fortune_topic_make};

static const pare_opt_spec pair_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "which fortunes are held out, and the pairs"},
    {"dir", PARE_OPT_STRING, PARE_FORTUNE_DIR, 0, 0, NULL, "directory of fortune files (Debian package fortunes)"},
    {"categories", PARE_OPT_STRING, "all", 0, 0, NULL, "comma-separated fortune files to draw from, or 'all'"},
    {"n_train", PARE_OPT_INT, "4000", 2, 1e8, NULL, "training pairs (half of them from one fortune)"},
    {"n_test", PARE_OPT_INT, "1000", 2, 1e8, NULL, "test pairs (half of them from one fortune)"},
    {"test_frac", PARE_OPT_FLOAT, "0.2", 0, 1, NULL, "share of the usable fortunes held out for the test pairs"},
    {"min_words", PARE_OPT_INT, "3", 1, 1000, NULL, "a sentence counts when it has at least this many words"},
    ENCODER_OPTS,
};
static const pare_schema pair_schema = {
    "fortune_pair",
    "word-level pairs: [CLS] s1 [SEP] s2 [SEP], label 1 if both sentences come from the same fortune (balanced)",
    pair_opts, (int)(sizeof pair_opts / sizeof pair_opts[0])};
const pare_task_desc pare_task_fortune_pair = {&pair_schema, fortune_pair_make};

static const pare_opt_spec sts_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "which fortunes are held out, and the pairs"},
    {"dir", PARE_OPT_STRING, PARE_FORTUNE_DIR, 0, 0, NULL, "directory of fortune files (Debian package fortunes)"},
    {"categories", PARE_OPT_STRING, "all", 0, 0, NULL, "comma-separated fortune files to draw from, or 'all'"},
    {"n_train", PARE_OPT_INT, "4000", 2, 1e8, NULL, "training pairs"},
    {"n_test", PARE_OPT_INT, "1000", 2, 1e8, NULL, "test pairs"},
    {"test_frac", PARE_OPT_FLOAT, "0.2", 0, 1, NULL, "share of the usable fortunes held out for the test pairs"},
    {"min_words", PARE_OPT_INT, "3", 1, 1000, NULL, "a sentence counts when it has at least this many words"},
    ENCODER_OPTS,
};
static const pare_schema sts_schema = {
    "fortune_sts",
    "word-level pair regression (STS-B-like): [CLS] s1 [SEP] s2 [SEP], s2 = s1 with words replaced by another "
    "fortune's, score 5 x the share of s1's words kept",
    sts_opts, (int)(sizeof sts_opts / sizeof sts_opts[0])};
const pare_task_desc pare_task_fortune_sts = {&sts_schema, fortune_sts_make};
