/* glue.c — readers of GLUE's .tsv files as distributed: the task table (columns, labels, metrics,
 * splits), the glue_data/<TASK>/<split>.tsv layout, and one reader for every task (glue.h documents
 * the formats and the malformed-row policy).
 *
 * Columns are found by name in the header row rather than by position, so one table entry covers a
 * task's train, dev and test layouts (MNLI's train has 12 columns, its dev 16, its test 10; every
 * test file lacks the label). CoLA's train and dev have no header (source, label, author's mark,
 * sentence); its test file has one (index, sentence), recognised by its exact text.
 *
 * Deliberately not here: CSV quoting (GLUE's files are not quoted; a '"' is text), tokenisation, the
 * registry tasks (glue_task.c, fortune_text.c).
 *
 * Entry points: pare_glue_info_of, pare_glue_parse, pare_glue_metric_name, pare_glue_read,
 * pare_glue_path, pare_glue_read_dir, pare_glue_set_free.
 */
#include "data/glue.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "data/lra_files.h"

#define A PARE_GLUE_METRIC_ACCURACY
static const pare_glue_info glue_tasks[] = {
    [PARE_GLUE_COLA] = {"cola", "CoLA", NULL, NULL, NULL, 2, {"0", "1"}, {PARE_GLUE_METRIC_MCC}, "train|dev|test", "dev"},
    [PARE_GLUE_SST2] = {"sst2", "SST-2", "sentence", NULL, "label", 2, {"0", "1"}, {A}, "train|dev|test", "dev"},
    [PARE_GLUE_MRPC] = {"mrpc", "MRPC", "#1 String", "#2 String", "Quality", 2, {"0", "1"},
                        {PARE_GLUE_METRIC_F1, A}, "train|dev|test", "dev"},
    [PARE_GLUE_QQP] = {"qqp", "QQP", "question1", "question2", "is_duplicate", 2, {"0", "1"},
                       {PARE_GLUE_METRIC_F1, A}, "train|dev|test", "dev"},
    [PARE_GLUE_STSB] = {"stsb", "STS-B", "sentence1", "sentence2", "score", 1, {"score"},
                        {PARE_GLUE_METRIC_PEARSON, PARE_GLUE_METRIC_SPEARMAN}, "train|dev|test", "dev"},
    [PARE_GLUE_MNLI] = {"mnli", "MNLI", "sentence1", "sentence2", "gold_label", 3,
                        {"contradiction", "entailment", "neutral"}, {A},
                        "train|dev_matched|dev_mismatched|test_matched|test_mismatched", "dev_matched"},
    [PARE_GLUE_QNLI] = {"qnli", "QNLI", "question", "sentence", "label", 2, {"entailment", "not_entailment"}, {A},
                        "train|dev|test", "dev"},
    [PARE_GLUE_RTE] = {"rte", "RTE", "sentence1", "sentence2", "label", 2, {"entailment", "not_entailment"}, {A},
                       "train|dev|test", "dev"},
    [PARE_GLUE_WNLI] = {"wnli", "WNLI", "sentence1", "sentence2", "label", 2, {"0", "1"}, {A}, "train|dev|test", "dev"},
};
#undef A
_Static_assert(sizeof glue_tasks / sizeof glue_tasks[0] == PARE_GLUE_TASK_COUNT, "GLUE task table out of date");

static const char *const metric_names[] = {"", "accuracy", "f1", "mcc", "pearson", "spearman"};
_Static_assert(sizeof metric_names / sizeof metric_names[0] == PARE_GLUE_METRIC_COUNT, "metric names out of date");

const pare_glue_info *pare_glue_info_of(pare_glue_task t)
{
    return (unsigned)t < PARE_GLUE_TASK_COUNT ? &glue_tasks[t] : NULL;
}

const char *pare_glue_metric_name(pare_glue_metric m)
{
    return (unsigned)m < PARE_GLUE_METRIC_COUNT ? metric_names[m] : "";
}

pare_status pare_glue_parse(pare_glue_task *t, const char *name)
{
    for (int i = 0; name && i < PARE_GLUE_TASK_COUNT; i++)
        if (!strcasecmp(name, glue_tasks[i].name) || !strcasecmp(name, glue_tasks[i].dir)) {
            *t = (pare_glue_task)i;
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "no GLUE task '%s' (valid: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli)",
                     name ? name : "(null)");
}

/* split is one of the '|'-separated words of list. */
static int in_list(const char *list, const char *split)
{
    size_t n = strlen(split);
    for (const char *p = list; *p;) {
        size_t m = strcspn(p, "|");
        if (m == n && !strncmp(p, split, n)) return 1;
        p += m + (p[m] == '|');
    }
    return 0;
}

pare_status pare_glue_path(char *buf, size_t cap, const char *dir, pare_glue_task t, const char *split)
{
    const pare_glue_info *g = pare_glue_info_of(t);
    if (!g) return pare_fail(PARE_EINVAL, "GLUE task %d is out of range", (int)t);
    if (!split || !in_list(g->splits, split))
        return pare_fail(PARE_EINVAL, "%s: no split '%s' (valid: %s)", g->name, split ? split : "(null)", g->splits);
    if ((size_t)snprintf(buf, cap, "%s/%s/%s.tsv", dir, g->dir, split) >= cap)
        return pare_fail(PARE_EINVAL, "%s: path '%s/%s/%s.tsv' is too long", g->name, dir, g->dir, split);
    return PARE_OK;
}

void pare_glue_set_free(pare_glue_set *s)
{
    if (!s) return;
    pare_free(s->ex);
    pare_free(s->text);
    memset(s, 0, sizeof *s);
}

/* ---- the reader ---- */

#define GLUE_MAX_LINE ((int64_t)16 << 20)
#define GLUE_MAX_COLS 64

/* Split s (NUL-terminated, modified) on tabs into col[0..GLUE_MAX_COLS); returns the column count
 * (which may exceed GLUE_MAX_COLS; only that many are stored). */
static int split_tabs(char *s, char **col)
{
    int nc = 0;
    col[nc++] = s;
    for (char *p = s; *p; p++)
        if (*p == '\t') {
            *p = '\0';
            if (nc < GLUE_MAX_COLS) col[nc] = p + 1;
            nc++;
        }
    return nc;
}

/* Where the fields are: column indices (-1 = absent) and the expected count. */
typedef struct layout { int ncol, a, b, label; } layout;

static int find_col(char **col, int nc, const char *name)
{
    for (int i = 0; i < nc && i < GLUE_MAX_COLS; i++)
        if (!strcmp(col[i], name)) return i;
    return -1;
}

/* The layout from the first line (col[0..nc), already split). *is_header = 0 when that line is data
 * (CoLA's train and dev). */
static pare_status header_layout(layout *l, int *is_header, char **col, int nc, const pare_glue_info *g,
                                 const char *path)
{
    *is_header = 1;
    if (!g->col_a) { /* CoLA */
        if (nc == 2 && !strcmp(col[0], "index") && !strcmp(col[1], "sentence")) {
            *l = (layout){2, 1, -1, -1};
            return PARE_OK;
        }
        *is_header = 0;
        *l = (layout){4, 3, -1, 1};
        return PARE_OK;
    }
    l->ncol = nc;
    l->a = find_col(col, nc, g->col_a);
    l->b = g->col_b ? find_col(col, nc, g->col_b) : -1;
    l->label = find_col(col, nc, g->col_label);
    if (l->a < 0 || (g->col_b && l->b < 0) || nc > GLUE_MAX_COLS) {
        char hdr[256];
        size_t used = 0;
        for (int i = 0; i < nc && i < GLUE_MAX_COLS && used < sizeof hdr; i++)
            used += (size_t)snprintf(hdr + used, sizeof hdr - used, i ? ", %s" : "%s", col[i]);
        return pare_fail(PARE_EFORMAT,
                         "%s:1: not a GLUE %s file: its header (%s) has no column '%s' (GLUE's %s/*.tsv name their "
                         "columns in the first row: %s%s%s, and %s except in test files)",
                         path, g->name, hdr, l->a < 0 ? g->col_a : g->col_b, g->dir, g->col_a, g->col_b ? ", " : "",
                         g->col_b ? g->col_b : "", g->col_label);
    }
    return PARE_OK;
}

/* Append s and its NUL to the text buffer; *off receives where it starts. */
static pare_status text_add(pare_sbuf *t, const char *s, size_t *off)
{
    size_t n = strlen(s);
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 65536;
        while (cap < t->n + n + 1) cap *= 2;
        char *ns = pare_alloc(cap);
        if (!ns) return pare_fail(PARE_ENOMEM, "out of memory for %zu bytes of text", cap);
        if (t->n) memcpy(ns, t->s, t->n);
        pare_free(t->s);
        t->s = ns, t->cap = cap;
    }
    *off = t->n;
    memcpy(t->s + t->n, s, n + 1);
    t->n += n + 1;
    return PARE_OK;
}

/* The label of one row; 0 with *why set when it is malformed. */
static int parse_label(const pare_glue_info *g, const char *s, int32_t *label, float *score, char *why, size_t cap)
{
    if (g->nclass == 1) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || *end || errno || !(v >= 0 && v <= 5)) {
            snprintf(why, cap, "score '%.40s' is not a number in [0, 5]", s);
            return 0;
        }
        *label = 0, *score = (float)v;
        return 1;
    }
    for (int32_t k = 0; k < g->nclass; k++)
        if (!strcmp(s, g->labels[k])) {
            *label = k, *score = NAN;
            return 1;
        }
    snprintf(why, cap, "label '%.40s' is not one of %s%s%s%s%s", s, g->labels[0], g->nclass > 1 ? ", " : "",
             g->nclass > 1 ? g->labels[1] : "", g->nclass > 2 ? ", " : "", g->nclass > 2 ? g->labels[2] : "");
    return 0;
}

/* Examples are collected with offsets into the text buffer (it moves as it grows), made pointers at the end. */
typedef struct pending { size_t a, b; int32_t label; float score; } pending;

pare_status pare_glue_read(pare_glue_set *s, const char *path, pare_glue_task t, int strict)
{
    memset(s, 0, sizeof *s);
    const pare_glue_info *g = pare_glue_info_of(t);
    if (!g) return pare_fail(PARE_EINVAL, "GLUE task %d is out of range", (int)t);
    FILE *f = fopen(path, "rb");
    if (!f)
        return pare_fail(PARE_EIO, "%s: cannot open: %s (expected GLUE's %s/<split>.tsv, splits %s)", path,
                         strerror(errno), g->dir, g->splits);
    s->task = t;
    snprintf(s->path, sizeof s->path, "%s", path);
    pare_sbuf line = {0}, text = {0};
    pending *pend = NULL;
    int64_t npend = 0, cap = 0;
    pare_status st = PARE_OK;
    layout l = {0};
    int have_layout = 0;
    char *col[GLUE_MAX_COLS], why[200];
    long long ln = 0;
    for (;;) {
        int r = pare_read_line(f, &line, GLUE_MAX_LINE, 1);
        ln++;
        if (r == 0) break;
        if (r == -1) { st = pare_fail(PARE_EFORMAT, "%s:%lld: line longer than %lld bytes", path, ln, (long long)GLUE_MAX_LINE); break; }
        if (r == -2) { st = pare_fail(PARE_ENOMEM, "%s:%lld: out of memory", path, ln); break; }
        if (r == -3) { st = pare_fail(PARE_EFORMAT, "%s:%lld: NUL byte: not a text file", path, ln); break; }
        char *p = line.s;
        if (ln == 1 && line.n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* UTF-8 byte order mark */
        if (!*p) continue;                                                   /* an empty line */
        int nc = split_tabs(p, col);
        if (!have_layout) {
            int is_header;
            if ((st = header_layout(&l, &is_header, col, nc, g, path)) != PARE_OK) break;
            have_layout = 1;
            s->labeled = l.label >= 0;
            if (is_header) continue;
        }
        s->rows++;
        why[0] = '\0';
        int32_t label = -1;
        float score = NAN;
        if (nc != l.ncol)
            snprintf(why, sizeof why, "expected %d tab-separated columns%s, found %d", l.ncol,
                     g->col_a ? " (as the header)" : " (CoLA: source, label, mark, sentence)", nc);
        else if (l.label >= 0)
            parse_label(g, col[l.label], &label, &score, why, sizeof why);
        if (why[0]) {
            if (strict) { st = pare_fail(PARE_EFORMAT, "%s:%lld: %s", path, ln, why); break; }
            if (s->skipped++ == 0) snprintf(s->first_skipped, sizeof s->first_skipped, "%s:%lld: %s", path, ln, why);
            continue;
        }
        if (npend == cap) {
            int64_t nc2 = cap ? 2 * cap : 1024;
            pending *np = pare_alloc((size_t)nc2 * sizeof *np);
            if (!np) { st = pare_fail(PARE_ENOMEM, "%s: out of memory for %lld examples", path, (long long)nc2); break; }
            if (npend) memcpy(np, pend, (size_t)npend * sizeof *np);
            pare_free(pend);
            pend = np, cap = nc2;
        }
        pending *e = &pend[npend];
        e->b = SIZE_MAX, e->label = label, e->score = score;
        if ((st = text_add(&text, col[l.a], &e->a)) != PARE_OK) break;
        if (l.b >= 0 && (st = text_add(&text, col[l.b], &e->b)) != PARE_OK) break;
        npend++;
    }
    if (st == PARE_OK && ferror(f)) st = pare_fail(PARE_EIO, "%s: read error: %s", path, strerror(errno));
    if (st == PARE_OK && s->skipped > 10 && s->skipped * 100 > s->rows)
        st = pare_fail(PARE_EFORMAT, "%s: %lld of %lld rows are malformed (more than 1%%): not a GLUE %s file? first: %s",
                       path, (long long)s->skipped, (long long)s->rows, g->name, s->first_skipped);
    if (st == PARE_OK && npend == 0)
        st = pare_fail(PARE_EFORMAT, "%s: no examples%s%s", path, s->skipped ? "; every row is malformed, first: " : "",
                       s->first_skipped);
    if (st == PARE_OK) {
        s->ex = pare_alloc((size_t)npend * sizeof *s->ex);
        if (!s->ex) st = pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    }
    if (st == PARE_OK) {
        s->text = text.s, text.s = NULL;
        s->n = npend;
        for (int64_t i = 0; i < npend; i++)
            s->ex[i] = (pare_text_example){s->text + pend[i].a, pend[i].b == SIZE_MAX ? NULL : s->text + pend[i].b,
                                           pend[i].label, pend[i].score};
    }
    fclose(f);
    pare_free(line.s), pare_free(text.s), pare_free(pend);
    if (st != PARE_OK) pare_glue_set_free(s);
    return st;
}

pare_status pare_glue_read_dir(pare_glue_set *s, const char *dir, pare_glue_task t, const char *split, int strict)
{
    char path[1024];
    memset(s, 0, sizeof *s);
    PARE_TRY(pare_glue_path(path, sizeof path, dir, t, split));
    return pare_glue_read(s, path, t, strict);
}
