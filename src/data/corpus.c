/* corpus.c — the English pretraining corpus of Debian-installed text (corpus.h): source files listed
 * in path order, cleaned line by line, paragraphs deduplicated over the whole corpus.
 *
 * Entry points: pare_corpus_defaults, pare_corpus_read.
 */
#include "data/corpus.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "core/rng.h"
#include <math.h>

const char *const pare_corpus_source_names[PARE_CORPUS_SOURCE_COUNT] = {"fortunes", "copyright", "readme", "licenses"};

pare_corpus_opts pare_corpus_defaults(void)
{
    return (pare_corpus_opts){.sources = "all", .fortune_dir = "/usr/share/games/fortunes", .doc_dir = "/usr/share/doc",
                              .licenses_dir = "/usr/share/common-licenses", .min_words = 4, .min_bytes = 32, .max_bytes = 0};
}

/* ---- a set of 64-bit paragraph hashes (open addressing; 0 is the empty slot) ---- */
typedef struct hset { uint64_t *slot; size_t cap, n; } hset;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* 1 if h was new (and is now in the set), 0 if present, -1 out of memory. */
static int hset_add(hset *s, uint64_t h)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4096;
        uint64_t *slot = calloc(cap, sizeof *slot);
        if (!slot) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = s->slot[i] & (cap - 1);
                while (slot[j]) j = (j + 1) & (cap - 1);
                slot[j] = s->slot[i];
            }
        free(s->slot);
        s->slot = slot, s->cap = cap;
    }
    size_t j = h & (s->cap - 1);
    while (s->slot[j]) {
        if (s->slot[j] == h) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slot[j] = h, s->n++;
    return 1;
}

/* ---- file lists ---- */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct paths { char **p; size_t n, cap; } paths;

static int paths_add(paths *ps, const char *s)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 256;
        char **p = realloc(ps->p, cap * sizeof *p);
        if (!p) return -1;
        ps->p = p, ps->cap = cap;
    }
    return (ps->p[ps->n] = strdup(s)) ? (int)(ps->n++, 0) : -1;
}

static void paths_free(paths *ps)
{
    for (size_t i = 0; i < ps->n; i++) free(ps->p[i]);
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

static int is_regular(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_readme(const char *name)
{
    size_t n = strlen(name);
    if (strncmp(name, "README", 6) != 0) return 0;
    return !(n > 3 && !strcmp(name + n - 3, ".gz")) && !(n > 4 && !strcmp(name + n - 4, ".bz2")) &&
           !(n > 3 && !strcmp(name + n - 3, ".xz")) && !(n > 5 && !strcmp(name + n - 5, ".html"));
}

/* The files of one source, sorted. copyright/readme: one level of package directories under doc_dir. */
static pare_status list_source(paths *out, int src, const pare_corpus_opts *o)
{
    const char *dir = src == PARE_CORPUS_LICENSES ? o->licenses_dir : o->doc_dir;
    DIR *d = opendir(dir);
    if (!d) return PARE_OK; /* a missing directory: no documents from it */
    struct dirent *e;
    char path[4096];
    int fail = 0;
    while (!fail && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (src == PARE_CORPUS_LICENSES) {
            if (is_regular(path)) fail = paths_add(out, path);
            continue;
        }
        DIR *pd = opendir(path);
        if (!pd) continue;
        struct dirent *f;
        char file[4096 + 256];
        while (!fail && (f = readdir(pd))) {
            int want = src == PARE_CORPUS_COPYRIGHT ? !strcmp(f->d_name, "copyright") : is_readme(f->d_name);
            if (!want) continue;
            snprintf(file, sizeof file, "%s/%s", path, f->d_name);
            if (is_regular(file)) fail = paths_add(out, file);
        }
        closedir(pd);
    }
    closedir(d);
    if (fail) return pare_fail(PARE_ENOMEM, "corpus: out of memory listing %s", dir);
    qsort(out->p, out->n, sizeof *out->p, cmp_str);
    return PARE_OK;
}

/* ---- cleaning ---- */
/* 1 if the trimmed line s[0..n) looks like English prose (corpus.h). */
static int prose_line(const char *s, size_t n, int min_words)
{
    if (n == 0) return 0;
    size_t letters = 0, spaces = 0;
    int words = 0, in = 0, letter_word = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '@') return 0;
        if (c == ':' && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/') return 0;
        int alpha = (c | 32) >= 'a' && (c | 32) <= 'z';
        letters += alpha, spaces += c == ' ';
        if (c == ' ' || c == '\t') {
            words += in && letter_word, in = 0, letter_word = 0;
        } else {
            in = 1, letter_word |= alpha;
        }
    }
    words += in && letter_word;
    if (words < min_words || 10 * (letters + spaces) < 7 * n) return 0;
    /* a DEP-5 field: "Files:", "Upstream-Name:", "License: GPL-2+" */
    size_t k = 0;
    while (k < n && (((s[k] | 32) >= 'a' && (s[k] | 32) <= 'z') || s[k] == '-')) k++;
    if (k > 0 && k < n && s[k] == ':') return 0;
    return 1;
}

typedef struct cleaner {
    hset seen;
    pare_sbuf doc, para; /* the document so far; the paragraph being collected */
    int64_t dups;
} cleaner;

static int sbuf_put(pare_sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = pare_alloc(cap);
        if (!p) return -1;
        if (b->n) memcpy(p, b->s, b->n);
        pare_free(b->s);
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

/* End the current paragraph: keep it in the document unless its collapsed text was seen before. */
static int end_paragraph(cleaner *c)
{
    if (c->para.n == 0) return 0;
    int fresh = hset_add(&c->seen, fnv1a(c->para.s, c->para.n));
    if (fresh < 0) return -1;
    if (fresh) {
        for (size_t i = 0; i < c->para.n; i++) /* the lines were joined by spaces: give them back their own */
            if (c->para.s[i] == '\x01') c->para.s[i] = '\n';
        if ((c->doc.n && sbuf_put(&c->doc, "\n", 1)) || sbuf_put(&c->doc, c->para.s, c->para.n)) return -1;
        if (sbuf_put(&c->doc, "\n", 1)) return -1;
    } else c->dups++;
    c->para.n = 0;
    return 0;
}

/* Clean file text s[0..n) into c->doc (reset first). */
static pare_status clean_text(cleaner *c, const char *s, size_t n, int min_words)
{
    c->doc.n = 0, c->para.n = 0;
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        size_t a = i, b = e;
        while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) b--;
        i = e + 1;
        if (b == a || (b - a == 1 && s[a] == '.')) {
            if (end_paragraph(c)) return pare_fail(PARE_ENOMEM, "corpus: out of memory");
            continue;
        }
        if (!prose_line(s + a, b - a, min_words)) continue;
        /* collapse inner runs of white space; lines of a paragraph joined by \x01 (becomes \n) */
        if (c->para.n && sbuf_put(&c->para, "\x01", 1)) return pare_fail(PARE_ENOMEM, "corpus: out of memory");
        for (size_t k = a; k < b; k++) {
            int ws = s[k] == ' ' || s[k] == '\t';
            if (ws && k > a && (s[k - 1] == ' ' || s[k - 1] == '\t')) continue;
            if (sbuf_put(&c->para, ws ? " " : s + k, 1)) return pare_fail(PARE_ENOMEM, "corpus: out of memory");
        }
    }
    if (end_paragraph(c)) return pare_fail(PARE_ENOMEM, "corpus: out of memory");
    return PARE_OK;
}

static pare_status read_file(pare_sbuf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    b->n = 0;
    if (!f) return PARE_OK; /* unreadable: skipped */
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        if (sbuf_put(b, buf, got)) {
            fclose(f);
            return pare_fail(PARE_ENOMEM, "corpus: out of memory reading %s", path);
        }
    fclose(f);
    /* NUL bytes (binary files named README): not text */
    if (memchr(b->s ? b->s : "", '\0', b->n)) b->n = 0;
    return PARE_OK;
}

static pare_status parse_sources(int *want, const char *list)
{
    memset(want, 0, sizeof *want * PARE_CORPUS_SOURCE_COUNT);
    if (!strcmp(list, "all")) {
        for (int s = 0; s < PARE_CORPUS_SOURCE_COUNT; s++) want[s] = 1;
        return PARE_OK;
    }
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int s = 0; s < PARE_CORPUS_SOURCE_COUNT; s++)
            if (strlen(pare_corpus_source_names[s]) == n && !strncmp(p, pare_corpus_source_names[s], n)) want[s] = found = 1;
        if (!found)
            return pare_fail(PARE_EINVAL, "corpus: unknown source '%.*s' (valid: all, fortunes, copyright, readme, licenses)",
                             (int)n, p);
        p += n + (p[n] == ',');
    }
    return PARE_OK;
}

pare_status pare_corpus_read(pare_docs *d, const pare_corpus_opts *o, pare_corpus_stats *stats)
{
    memset(d, 0, sizeof *d);
    memset(stats, 0, sizeof *stats);
    int want[PARE_CORPUS_SOURCE_COUNT];
    PARE_TRY(parse_sources(want, o->sources));
    d->class_name = pare_calloc(sizeof *d->class_name * PARE_CORPUS_SOURCE_COUNT);
    if (!d->class_name) return pare_fail(PARE_ENOMEM, "corpus: out of memory");
    d->nclass = PARE_CORPUS_SOURCE_COUNT;
    for (int s = 0; s < PARE_CORPUS_SOURCE_COUNT; s++) snprintf(d->class_name[s], 64, "%s", pare_corpus_source_names[s]);

    cleaner c = {0};
    pare_sbuf file = {0};
    paths ps = {0};
    pare_status st = PARE_OK;
    int64_t total = 0;
    int full = 0;
    if (want[PARE_CORPUS_FORTUNES]) {
        pare_docs f = {0};
        st = pare_fortunes_read(&f, o->fortune_dir, "all", "corpus");
        for (int64_t i = 0; st == PARE_OK && i < f.n && !full; i++) {
            size_t len;
            const char *s = pare_docs_at(&f, i, &len);
            stats->raw_bytes[PARE_CORPUS_FORTUNES] += (int64_t)len;
            if ((int64_t)len < 1) continue;
            int fresh = hset_add(&c.seen, fnv1a(s, len));
            if (fresh < 0) st = pare_fail(PARE_ENOMEM, "corpus: out of memory");
            else if (!fresh) c.dups++;
            else st = pare_docs_add(d, s, len, PARE_CORPUS_FORTUNES);
            if (st == PARE_OK && fresh > 0) {
                stats->docs[PARE_CORPUS_FORTUNES]++, stats->bytes[PARE_CORPUS_FORTUNES] += (int64_t)len;
                total += (int64_t)len;
                full = o->max_bytes > 0 && total >= o->max_bytes;
            }
        }
        if (st == PARE_OK) {
            char cats[4096];
            if (pare_fortune_categories(cats, sizeof cats, o->fortune_dir) == PARE_OK)
                for (const char *p = cats; *p; p++) stats->files[PARE_CORPUS_FORTUNES] += *p == ',';
            stats->files[PARE_CORPUS_FORTUNES]++;
        }
        pare_docs_free(&f);
    }
    for (int src = PARE_CORPUS_COPYRIGHT; st == PARE_OK && src < PARE_CORPUS_SOURCE_COUNT && !full; src++) {
        if (!want[src]) continue;
        paths_free(&ps);
        st = list_source(&ps, src, o);
        for (size_t i = 0; st == PARE_OK && i < ps.n && !full; i++) {
            if ((st = read_file(&file, ps.p[i])) != PARE_OK || file.n == 0) continue;
            stats->files[src]++, stats->raw_bytes[src] += (int64_t)file.n;
            if ((st = clean_text(&c, file.s, file.n, o->min_words)) != PARE_OK) break;
            if ((int64_t)c.doc.n < o->min_bytes) continue;
            if ((st = pare_docs_add(d, c.doc.s, c.doc.n, src)) != PARE_OK) break;
            stats->docs[src]++, stats->bytes[src] += (int64_t)c.doc.n;
            total += (int64_t)c.doc.n;
            full = o->max_bytes > 0 && total >= o->max_bytes;
        }
    }
    stats->dup_paragraphs = c.dups;
    paths_free(&ps);
    free(c.seen.slot);
    pare_free(c.doc.s), pare_free(c.para.s), pare_free(file.s);
    if (st == PARE_OK && d->n == 0)
        st = pare_fail(PARE_EFORMAT, "corpus: no text found in the sources '%s' (fortunes in %s, docs in %s)", o->sources,
                       o->fortune_dir, o->doc_dir);
    if (st != PARE_OK) pare_docs_free(d);
    return st;
}

pare_status pare_corpus_split(int64_t **order, int64_t *n_test, int64_t n, uint64_t seed, double test_frac)
{
    *order = NULL, *n_test = 0;
    if (n < 2) return pare_fail(PARE_EINVAL, "corpus: %lld document(s); a split needs 2", (long long)n);
    int64_t *o = pare_alloc((size_t)n * sizeof *o);
    if (!o) return pare_fail(PARE_ENOMEM, "corpus: out of memory");
    for (int64_t i = 0; i < n; i++) o[i] = i;
    pare_rng base;
    pare_rng_seed(&base, seed);
    pare_rng part = pare_rng_split(&base, 3);
    pare_shuffle_i64(o, &part, n);
    int64_t k = (int64_t)floor(test_frac * (double)n);
    *n_test = k < 1 ? 1 : k > n - 1 ? n - 1 : k;
    *order = o;
    return PARE_OK;
}
