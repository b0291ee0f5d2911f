/* plot.c — gnuplot data + script writer and runner (see plot.h for the layout of the files).
 *
 * The script is meant to be read and edited by people: settings first, one plot clause per series,
 * one loop rendering both formats. All user text goes through gp_quote() (single-quoted gnuplot
 * strings, where only '' is special) and every terminal is noenhanced, so '_' and '^' print as typed.
 */
#include "io/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *kind_names[] = {"lines", "points", "linespoints", "bars"};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == PARE_PLOT_KIND_COUNT, "plot kinds out of date");
static const char *kind_style[] = {"lines lw 2", "points pt 7", "linespoints lw 2 pt 7", "boxes"};
_Static_assert(sizeof kind_style / sizeof kind_style[0] == PARE_PLOT_KIND_COUNT, "plot kinds out of date");

pare_status pare_plot_kind_parse(const char *name, pare_plot_kind *kind)
{
    for (int k = 0; k < PARE_PLOT_KIND_COUNT; k++)
        if (name && !strcmp(name, kind_names[k])) {
            *kind = (pare_plot_kind)k;
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "plot kind '%s' is not known (valid: lines, points, linespoints, bars)", name ? name : "(null)");
}

/* ---- finding and running gnuplot ---- */

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int on_path(const char *cmd)
{
    if (strchr(cmd, '/')) return executable(cmd);
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[PARE_PATH_MAX];
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len > 0 && snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, cmd) < (int)sizeof buf && executable(buf)) return 1;
        if (!colon) break;
        p = colon + 1;
    }
    return 0;
}

const char *pare_gnuplot_command(void)
{
    const char *env = getenv("PARE_GNUPLOT");
    if (env) return env[0] && on_path(env) ? env : NULL;
    return on_path("gnuplot") ? "gnuplot" : NULL;
}

/* Run cmd with args, stdout to /dev/null unless capture is given (first line of stdout). Exit status or -1. */
static int run(const char *const argv[], char *capture, size_t n)
{
    int fd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (capture) {
        if (pipe(fd) != 0) return -1;
        posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
        posix_spawn_file_actions_addclose(&fa, fd[0]);
        posix_spawn_file_actions_addclose(&fa, fd[1]);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (capture) {
        close(fd[1]);
        if (e == 0) {
            size_t used = 0;
            ssize_t r;
            while (used + 1 < n && (r = read(fd[0], capture + used, n - 1 - used)) > 0) used += (size_t)r;
            capture[used] = '\0';
            char *nl = strchr(capture, '\n');
            if (nl) *nl = '\0';
            char sink[256];
            while (read(fd[0], sink, sizeof sink) > 0) {
            }
        }
        close(fd[0]);
    }
    if (e != 0) return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *pare_gnuplot_version(char *buf, size_t n)
{
    const char *cmd = pare_gnuplot_command();
    if (!cmd) return NULL;
    const char *argv[] = {cmd, "--version", NULL};
    if (run(argv, buf, n) != 0 || !buf[0]) return NULL;
    return buf;
}

/* ---- values ---- */

static int numeric(pare_col_type t) { return t == PARE_COL_INT || t == PARE_COL_FLOAT || t == PARE_COL_BOOL; }

static double num_of(pare_col_type t, pare_cell c)
{
    if (pare_cell_is_missing(t, c)) return NAN;
    return t == PARE_COL_INT ? (double)c.i : t == PARE_COL_FLOAT ? c.f : t == PARE_COL_BOOL ? (double)c.b : NAN;
}

/* Order of two cells of one column: numbers ascending, strings by bytes; missing last. */
static int cell_cmp(pare_col_type t, pare_cell a, pare_cell b)
{
    int ma = pare_cell_is_missing(t, a), mb = pare_cell_is_missing(t, b);
    if (ma || mb) return ma - mb;
    if (t == PARE_COL_STR) return strcmp(a.s, b.s);
    double x = num_of(t, a), y = num_of(t, b);
    return (x > y) - (x < y);
}

typedef struct sort_ctx {
    const pare_table *t;
    int col;
} sort_ctx;

static int row_cmp(const void *pa, const void *pb, void *pc)
{
    const sort_ctx *c = pc;
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    const pare_table *t = c->t;
    int r = cell_cmp(t->cols[c->col].type, t->cells[a * t->ncols + c->col], t->cells[b * t->ncols + c->col]);
    return r ? r : (a > b) - (a < b); /* stable */
}

/* Distinct values of column col, as row indices of their first occurrence; sorted unless keep_order. */
static int64_t distinct(const pare_table *t, int col, int keep_order, int64_t *out)
{
    int64_t n = 0;
    pare_col_type ty = t->cols[col].type;
    for (int64_t r = 0; r < t->nrows; r++) {
        pare_cell c = t->cells[r * t->ncols + col];
        if (pare_cell_is_missing(ty, c) && ty != PARE_COL_STR) continue;
        int seen = 0;
        for (int64_t k = 0; k < n && !seen; k++) seen = cell_cmp(ty, t->cells[out[k] * t->ncols + col], c) == 0;
        if (!seen) out[n++] = r;
    }
    if (!keep_order) {
        sort_ctx ctx = {t, col};
        qsort_r(out, (size_t)n, sizeof *out, row_cmp, &ctx);
    }
    return n;
}

/* ---- text ---- */

/* A single-quoted gnuplot string: ' doubled, control characters dropped. */
static void gp_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", f);
        else if ((unsigned char)*s >= 0x20) fputc(*s, f);
        else fputc(' ', f);
    }
    fputc('\'', f);
}

/* A double-quoted token in the .dat file (gnuplot data files have no escape for '"'). */
static void dat_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) fputc(*s == '"' ? '\'' : (unsigned char)*s < 0x20 ? ' ' : *s, f);
    fputc('"', f);
}

static void col_title(char *buf, size_t n, const pare_col *c)
{
    snprintf(buf, n, "%s%s%s%s", c->label[0] ? c->label : c->name, c->unit[0] ? " (" : "", c->unit, c->unit[0] ? ")" : "");
}

static void value_text(char *buf, size_t n, pare_col_type t, pare_cell c)
{
    if (pare_cell_is_missing(t, c)) snprintf(buf, n, "%s", t == PARE_COL_STR ? "" : "NaN");
    else if (t == PARE_COL_STR) snprintf(buf, n, "%s", c.s);
    else if (t == PARE_COL_BOOL) snprintf(buf, n, "%s", c.b ? "true" : "false");
    else if (t == PARE_COL_INT) snprintf(buf, n, "%lld", (long long)c.i);
    else snprintf(buf, n, "%.6g", c.f);
}

static void num_text(char *buf, size_t n, double v)
{
    if (isnan(v)) snprintf(buf, n, "NaN");
    else snprintf(buf, n, "%.17g", v);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static pare_status find_col(const pare_table *t, const char *name, const char *role, int *col)
{
    *col = name ? pare_table_col(t, name) : -1;
    if (*col >= 0) return PARE_OK;
    char names[2048];
    size_t used = 0;
    names[0] = '\0';
    for (int j = 0; j < t->ncols && used < sizeof names; j++)
        used += (size_t)snprintf(names + used, sizeof names - used, j ? ", %s" : "%s", t->cols[j].name);
    return pare_fail(PARE_EINVAL, "plot of table '%s': %s column '%s' does not exist (columns: %s)", t->name, role,
                     name ? name : "(none given)", names);
}

/* ---- the writer ---- */

pare_status pare_plot_write(const pare_table *t, const pare_plot_spec *s, const char *prefix, pare_plot_files *files)
{
    memset(files, 0, sizeof *files);
    if (s->ny < 1) return pare_fail(PARE_EINVAL, "plot of table '%s': no y column given", t->name);
    if ((unsigned)s->kind >= PARE_PLOT_KIND_COUNT) return pare_fail(PARE_EINVAL, "plot of table '%s': bad plot kind", t->name);
    if (strlen(prefix) + 8 >= PARE_PATH_MAX) return pare_fail(PARE_EINVAL, "%s: plot path too long", prefix);
    int xc, byc = -1;
    PARE_TRY(find_col(t, s->x, "x", &xc));
    if (s->by) PARE_TRY(find_col(t, s->by, "by", &byc));
    int *yc = malloc((size_t)s->ny * sizeof *yc);
    int64_t *groups = malloc((size_t)(t->nrows + 1) * sizeof *groups);
    int64_t *cats = malloc((size_t)(t->nrows + 1) * sizeof *cats);
    int64_t *rows = malloc((size_t)(t->nrows + 1) * sizeof *rows);
    FILE *dat = NULL, *gp = NULL;
    pare_status st = PARE_OK;
    if (!yc || !groups || !cats || !rows) {
        st = pare_fail(PARE_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < s->ny; k++) {
        if ((st = find_col(t, s->y[k], "y", &yc[k])) != PARE_OK) goto done;
        if (!numeric(t->cols[yc[k]].type)) {
            st = pare_fail(PARE_EINVAL, "plot of table '%s': y column '%s' is a string; y must be numeric", t->name, s->y[k]);
            goto done;
        }
    }
    int categorical = s->kind == PARE_PLOT_BARS || !numeric(t->cols[xc].type);
    int64_t ngroups = byc >= 0 ? distinct(t, byc, 0, groups) : 1;
    if (ngroups == 0) ngroups = 1, byc = -1;
    int64_t ncats = categorical ? distinct(t, xc, t->cols[xc].type == PARE_COL_STR, cats) : 0;
    int64_t nseries = ngroups * s->ny;

    snprintf(files->dat, sizeof files->dat, "%s.dat", prefix);
    snprintf(files->gp, sizeof files->gp, "%s.gp", prefix);
    snprintf(files->png, sizeof files->png, "%s.png", prefix);
    snprintf(files->svg, sizeof files->svg, "%s.svg", prefix);
    if ((st = pare_make_parent_dirs(files->gp)) != PARE_OK) goto done;
    dat = fopen(files->dat, "w");
    if (!dat) {
        st = pare_fail(PARE_EIO, "%s: cannot write: %s", files->dat, strerror(errno));
        goto done;
    }
    gp = fopen(files->gp, "w");
    if (!gp) {
        st = pare_fail(PARE_EIO, "%s: cannot write: %s", files->gp, strerror(errno));
        goto done;
    }

    /* Series titles (also written into the .dat as comments). */
    char **titles = calloc((size_t)nseries, sizeof *titles);
    if (!titles) {
        st = pare_fail(PARE_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t g = 0; g < ngroups; g++)
        for (int k = 0; k < s->ny; k++) {
            char ytitle[256], gval[256], buf[600];
            col_title(ytitle, sizeof ytitle, &t->cols[yc[k]]);
            if (byc >= 0) value_text(gval, sizeof gval, t->cols[byc].type, t->cells[groups[g] * t->ncols + byc]);
            if (byc >= 0 && s->ny > 1) snprintf(buf, sizeof buf, "%s, %s=%s", ytitle, t->cols[byc].name, gval);
            else if (byc >= 0) snprintf(buf, sizeof buf, "%s=%s", t->cols[byc].name, gval);
            else snprintf(buf, sizeof buf, "%s", ytitle);
            titles[g * s->ny + k] = strdup(buf);
        }

    /* ---- .dat ---- */
    fprintf(dat, "# %s — written by pare from table '%s'%s%s\n", base_name(files->dat), t->name, s->source ? " of " : "",
            s->source ? s->source : "");
    fprintf(dat, "# one block per series (gnuplot `index`); columns: %s\n", categorical ? "category-index category y" : "x y");
    for (int64_t g = 0; g < ngroups; g++)
        for (int k = 0; k < s->ny; k++) {
            int64_t si = g * s->ny + k;
            if (si) fputs("\n\n", dat);
            fprintf(dat, "# series %lld: %s\n", (long long)si, titles[si] ? titles[si] : "");
            int64_t n = 0;
            for (int64_t r = 0; r < t->nrows; r++) {
                if (byc >= 0 && cell_cmp(t->cols[byc].type, t->cells[r * t->ncols + byc], t->cells[groups[g] * t->ncols + byc]))
                    continue;
                rows[n++] = r;
            }
            char xb[64], yb[64];
            if (!categorical) {
                sort_ctx ctx = {t, xc};
                qsort_r(rows, (size_t)n, sizeof *rows, row_cmp, &ctx);
                for (int64_t i = 0; i < n; i++) {
                    double x = num_of(t->cols[xc].type, t->cells[rows[i] * t->ncols + xc]);
                    double y = num_of(t->cols[yc[k]].type, t->cells[rows[i] * t->ncols + yc[k]]);
                    if (isnan(x) || isnan(y)) continue;
                    num_text(xb, sizeof xb, x);
                    num_text(yb, sizeof yb, y);
                    fprintf(dat, "%s %s\n", xb, yb);
                }
            } else {
                for (int64_t c = 0; c < ncats; c++) {
                    double y = NAN;
                    for (int64_t i = 0; i < n && isnan(y); i++)
                        if (!cell_cmp(t->cols[xc].type, t->cells[rows[i] * t->ncols + xc], t->cells[cats[c] * t->ncols + xc]))
                            y = num_of(t->cols[yc[k]].type, t->cells[rows[i] * t->ncols + yc[k]]);
                    char label[512];
                    value_text(label, sizeof label, t->cols[xc].type, t->cells[cats[c] * t->ncols + xc]);
                    num_text(yb, sizeof yb, y);
                    fprintf(dat, "%lld ", (long long)c);
                    dat_quote(dat, label);
                    fprintf(dat, " %s\n", yb);
                }
            }
        }

    /* ---- .gp ---- */
    const char *stem = base_name(prefix);
    char xlabel[256], ylabel[256], title[600];
    if (s->xlabel) snprintf(xlabel, sizeof xlabel, "%s", s->xlabel);
    else col_title(xlabel, sizeof xlabel, &t->cols[xc]);
    if (s->ylabel) snprintf(ylabel, sizeof ylabel, "%s", s->ylabel);
    else if (s->ny == 1) col_title(ylabel, sizeof ylabel, &t->cols[yc[0]]);
    else {
        int same = 1;
        for (int k = 1; k < s->ny; k++) same &= !strcmp(t->cols[yc[k]].unit, t->cols[yc[0]].unit);
        snprintf(ylabel, sizeof ylabel, "%s", same ? t->cols[yc[0]].unit : "");
    }
    if (s->title) snprintf(title, sizeof title, "%s", s->title);
    else {
        size_t used = (size_t)snprintf(title, sizeof title, "%s: ", t->name);
        for (int k = 0; k < s->ny && used < sizeof title; k++)
            used += (size_t)snprintf(title + used, sizeof title - used, k ? ", %s" : "%s", s->y[k]);
        if (used < sizeof title) snprintf(title + used, sizeof title - used, " vs %s", s->x);
    }
    fprintf(gp, "# %s — written by pare from table '%s'%s%s.\n", base_name(files->gp), t->name, s->source ? " of " : "",
            s->source ? s->source : "");
    fprintf(gp, "# Restyle freely, then rerun:   gnuplot %s\n", files->gp);
    fprintf(gp, "# It reads %s.dat and writes %s.png and %s.svg, all beside this script.\n\n", stem, stem, stem);
    fputs("# The directory of this script (ARG0), so it runs from any working directory.\n", gp);
    fputs("here = ARG0\ni = strlen(here)\nwhile (i > 0 && here[i:i] ne \"/\") { i = i - 1 }\n", gp);
    fputs("dir = (i > 0) ? here[1:i] : \"\"\n", gp);
    fprintf(gp, "data = dir . '%s.dat'\n\n", stem);
    fputs("set title ", gp);
    gp_quote(gp, title);
    fputs("\nset xlabel ", gp);
    gp_quote(gp, xlabel);
    fputs("\nset ylabel ", gp);
    gp_quote(gp, ylabel);
    fputs("\nset grid\nset key box opaque\nset datafile missing 'NaN'\n", gp);
    if (s->logx && !categorical) fputs("set logscale x\n", gp);
    if (s->logy) fputs("set logscale y\n", gp);
    double w = 0.8 / (double)nseries;
    if (categorical) {
        fprintf(gp, "set xrange [-0.7:%lld.7]\n", (long long)(ncats - 1)); /* bars span ±0.4: keep a margin */
        fputs("set xtics rotate by -30\n", gp);
    }
    if (s->kind == PARE_PLOT_BARS) {
        fputs("set style fill solid 0.8 border -1\n", gp);
        if (!s->logy) fputs("set yrange [0:*]\n", gp);
        fputs("set offsets 0, 0, graph 0.15, 0   # headroom above the bars for the key\n", gp);
        if (nseries == 1) fputs("unset key   # one series: the y label says what it is\n", gp);
    }
    fputs("\ndo for [fmt in \"png svg\"] {\n", gp);
    fputs("    if (fmt eq \"png\") { set terminal pngcairo size 800,500 noenhanced }\n", gp);
    fputs("    if (fmt eq \"svg\") { set terminal svg size 800,500 noenhanced background rgb 'white' }\n", gp);
    fprintf(gp, "    set output dir . '%s.' . fmt\n", stem);
    fputs("    plot \\\n", gp);
    for (int64_t si = 0; si < nseries; si++) {
        fprintf(gp, "        data index %lld ", (long long)si);
        if (!categorical) fputs("using 1:2", gp);
        else if (s->kind == PARE_PLOT_BARS)
            fprintf(gp, "using ($1 %+.4f):3:(%.4f)%s", -0.4 + w * ((double)si + 0.5), w, si == 0 ? ":xtic(2)" : "");
        else fprintf(gp, "using 1:3%s", si == 0 ? ":xtic(2)" : "");
        fprintf(gp, " with %s title ", kind_style[s->kind]);
        gp_quote(gp, titles[si] ? titles[si] : "");
        fputs(si + 1 < nseries ? ", \\\n" : "\n", gp);
    }
    fputs("    set output\n}\n", gp);
    for (int64_t si = 0; si < nseries; si++) free(titles[si]);
    free(titles);
    int e1 = fclose(dat), e2 = fclose(gp);
    dat = gp = NULL;
    if (e1 || e2) {
        st = pare_fail(PARE_EIO, "%s: write error", e1 ? files->dat : files->gp);
        goto done;
    }

    /* ---- render ---- */
    const char *cmd = pare_gnuplot_command();
    if (!cmd) {
        snprintf(files->message, sizeof files->message, "gnuplot not found: render with  gnuplot %s  (apt-get install gnuplot-nox)",
                 files->gp);
    } else {
        remove(files->png);
        remove(files->svg);
        const char *argv[] = {cmd, files->gp, NULL};
        int rc = run(argv, NULL, 0);
        files->rendered = rc == 0 && access(files->png, R_OK) == 0 && access(files->svg, R_OK) == 0;
        if (!files->rendered)
            snprintf(files->message, sizeof files->message, "gnuplot failed on %s (exit %d): see its messages above", files->gp, rc);
    }
done:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    free(yc);
    free(groups);
    free(cats);
    free(rows);
    return st;
}
