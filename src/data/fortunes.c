/* fortunes.c — the reader of Debian's fortune databases (package `fortunes`, /usr/share/games/fortunes/
 * <category>: texts separated by lines "%"), read at run time for the text, text_lm and retrieval tasks;
 * we never ship the corpus.
 *
 * Each fortune is the text between separators without leading blank lines and trailing white space;
 * a text repeated within one category is kept once, one found in two or more of the chosen categories
 * is dropped (its label would be ambiguous).
 *
 * Deliberately not here: the .dat / .u8 files beside the texts (strfile's index; we read the texts
 * themselves), any split or encoding (the tasks do that with lra_files.c's helpers).
 *
 * Entry points: pare_fortunes_read, pare_fortune_categories.
 */
#include "data/lra_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "data/lra_files_internal.h"

/* ---- fortunes ---- */

static int fortune_keep(const char *name) { return !pare_lra_ends_with_(name, ".dat") && !pare_lra_ends_with_(name, ".u8"); }

pare_status pare_fortune_categories(char *buf, size_t cap, const char *dir)
{
    pare_name_list l;
    int err = 0;
    if (cap) buf[0] = '\0';
    if (pare_lra_list_files_(&l, dir, "", fortune_keep, &err) != PARE_OK)
        return pare_fail(PARE_EIO, "%s: cannot open: %s", dir, strerror(err));
    size_t used = 0;
    for (int64_t i = 0; i < l.n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %s" : "%s", l.v[i]);
    pare_lra_names_free_(&l);
    return PARE_OK;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Split one fortune file into raw (label cat), trimming leading blank lines and trailing space. */
static pare_status fortune_split(pare_docs *raw, const char *text, size_t len, int32_t cat)
{
    size_t p = 0, begin = 0;
    while (p <= len) {
        size_t e = p;
        while (e < len && text[e] != '\n') e++;
        int sep = (e - p == 1 && text[p] == '%') || (e - p == 2 && text[p] == '%' && text[p + 1] == '\r');
        if (sep || e >= len) {
            size_t end = sep ? p : len, b = begin;
            while (b < end && (text[b] == '\n' || text[b] == '\r')) b++;
            while (end > b &&
                   (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' ' || text[end - 1] == '\t'))
                end--;
            if (end > b) PARE_TRY(pare_docs_add(raw, text + b, end - b, cat));
            begin = e + 1;
        }
        p = e + 1;
    }
    return PARE_OK;
}

/* Resolve the category list: names into l (in the given order), validated against dir. */
static pare_status fortune_names(pare_name_list *l, const char *dir, const char *categories, const char *task)
{
    char avail[4096];
    memset(l, 0, sizeof *l);
    if (!pare_lra_is_dir_(dir))
        return pare_fail(
            PARE_EIO,
            "%s: fortune directory '%s' not found (%s): install the corpus with `apt-get install fortunes`, "
            "or point option dir at a directory of fortune files",
            task, dir, strerror(errno));
    int err = 0;
    if (!strcmp(categories, "all")) {
        if (pare_lra_list_files_(l, dir, "", fortune_keep, &err) != PARE_OK)
            return pare_fail(PARE_EIO, "%s: cannot read the fortune directory '%s': %s", task, dir, strerror(err));
        if (l->n == 0)
            return pare_fail(PARE_EFORMAT, "%s: no fortune files in '%s': install them with `apt-get install fortunes`",
                             task, dir);
        return PARE_OK;
    }
    for (const char *p = categories; *p;) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        size_t n = strcspn(p, ", ");
        char name[128], path[PARE_OPT_STR_MAX + 160];
        snprintf(name, sizeof name, "%.*s", (int)(n < 127 ? n : 127), p);
        p += n;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (strchr(name, '/') || name[0] == '.' || !fortune_keep(name) || !pare_lra_is_file_(path)) {
            pare_fortune_categories(avail, sizeof avail, dir);
            pare_lra_names_free_(l);
            return pare_fail(PARE_EINVAL, "%s: no fortune category '%s' in %s (available: %s); the full set comes with "
                                          "`apt-get install fortunes`", task, name, dir, avail[0] ? avail : "none");
        }
        for (int64_t i = 0; i < l->n; i++)
            if (!strcmp(l->v[i], name)) {
                pare_lra_names_free_(l);
                return pare_fail(PARE_EINVAL, "%s: category '%s' is listed twice in option categories", task, name);
            }
        if (l->n == l->cap) {
            int64_t cap = l->cap ? 2 * l->cap : 16;
            char **nv = realloc(l->v, (size_t)cap * sizeof(char *));
            if (!nv) return pare_lra_names_free_(l), pare_fail(PARE_ENOMEM, "%s: out of memory", task);
            l->v = nv, l->cap = cap;
        }
        if (!(l->v[l->n] = strdup(name))) return pare_lra_names_free_(l), pare_fail(PARE_ENOMEM, "%s: out of memory", task);
        l->n++;
    }
    if (l->n == 0)
        return pare_fail(PARE_EINVAL, "%s: option categories lists no category (give 'a,b,c' or 'all')", task);
    if (l->n > 4096)
        return pare_lra_names_free_(l), pare_fail(PARE_EINVAL, "%s: too many categories (%lld)", task, (long long)l->n);
    return PARE_OK;
}

pare_status pare_fortunes_read(pare_docs *d, const char *dir, const char *categories, const char *task)
{
    memset(d, 0, sizeof *d);
    pare_name_list l;
    PARE_TRY(fortune_names(&l, dir, categories, task));
    pare_docs raw = {0};
    int64_t *first = NULL, *slot = NULL;
    uint8_t *multi = NULL;
    pare_status st = PARE_OK;
    char path[PARE_OPT_STR_MAX + 160];
    for (int64_t c = 0; c < l.n && st == PARE_OK; c++) {
        char *text = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", dir, l.v[c]);
        if ((st = pare_lra_read_all_(&text, &len, path)) != PARE_OK) break;
        int64_t before = raw.n;
        st = fortune_split(&raw, text, len, (int32_t)c);
        pare_free(text);
        if (st == PARE_OK && raw.n == before)
            st = pare_fail(PARE_EFORMAT, "%s: %s: no fortunes in the file (expected texts separated by lines '%%')",
                           task, path);
    }
    if (st != PARE_OK) goto done;
    /* Deduplicate: slot table of first occurrences (exact byte comparison). */
    uint64_t cap = 1024;
    while (cap < 2 * (uint64_t)raw.n) cap *= 2;
    slot = pare_alloc(cap * sizeof(int64_t));
    first = pare_alloc((size_t)raw.n * sizeof(int64_t));
    multi = pare_calloc((size_t)raw.n);
    d->class_name = pare_calloc((size_t)l.n * sizeof *d->class_name);
    if (!slot || !first || !multi || !d->class_name) {
        st = pare_fail(PARE_ENOMEM, "%s: out of memory", task);
        goto done;
    }
    for (uint64_t i = 0; i < cap; i++) slot[i] = -1;
    for (int64_t i = 0; i < raw.n; i++) {
        size_t li, lj;
        const char *si = pare_docs_at(&raw, i, &li);
        uint64_t h = hash_bytes(si, li) & (cap - 1);
        for (;; h = (h + 1) & (cap - 1)) {
            int64_t j = slot[h];
            if (j < 0) { slot[h] = first[i] = i; break; }
            const char *sj = pare_docs_at(&raw, j, &lj);
            if (li == lj && !memcmp(si, sj, li)) {
                first[i] = j;
                if (raw.label[j] != raw.label[i]) multi[j] = 1;
                break;
            }
        }
    }
    for (int64_t i = 0; i < raw.n && st == PARE_OK; i++) {
        if (first[i] != i || multi[i]) continue;
        size_t li;
        const char *si = pare_docs_at(&raw, i, &li);
        st = pare_docs_add(d, si, li, raw.label[i]);
    }
    d->nclass = (int32_t)l.n;
    for (int64_t c = 0; c < l.n; c++) snprintf(d->class_name[c], sizeof d->class_name[c], "%s", l.v[c]);
done:
    pare_lra_names_free_(&l), pare_docs_free(&raw), pare_free(slot), pare_free(first), pare_free(multi);
    if (st != PARE_OK) pare_docs_free(d);
    return st;
}
