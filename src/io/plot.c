/* plot.c — gnuplot data + script writer and runner (see plot.h for the layout of the files and the
 * quoting rules).
 *
 * The script is meant to be read and edited by people: settings first, one plot clause per series,
 * one loop rendering both formats. Every string written into it goes through gp_quote() (single-quoted
 * gnuplot strings, where only '' is special, or double-quoted with octal escapes where gnuplot cannot
 * read the doubled quotes back), comments through gp_comment(), .dat strings through dat_quote();
 * every terminal is noenhanced, so '_' and '^' print as typed. gnuplot runs with its
 * stdin on /dev/null and its stderr captured: its messages become the error, or the warnings in
 * files->message.
 *
 * Does not: choose file names (callers do; they name their options in messages through
 * pare_plot_check_text/_out), or read the HDF5 file (it takes a pare_table).
 *
 * Entry points: pare_plot_write, pare_plot_check_text, pare_plot_check_out, pare_plot_kind_parse,
 * pare_gnuplot_command, pare_gnuplot_version.
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

/* Append data to the last n-1 bytes kept in buf (used of them), so a long output keeps its end. */
static void keep_tail(char *buf, size_t n, size_t *used, const char *data, size_t len, int *cut)
{
    if (len > n - 1) {
        data += len - (n - 1);
        len = n - 1;
        *cut = 1;
    }
    if (*used + len > n - 1) {
        size_t drop = *used + len - (n - 1);
        memmove(buf, buf + drop, *used - drop);
        *used -= drop;
        *cut = 1;
    }
    memcpy(buf + *used, data, len);
    *used += len;
    buf[*used] = '\0';
}

enum { RUN_NOT_STARTED = -1, RUN_SIGNAL = 1000 };

/* Run argv[0] (found on PATH) with stdin from /dev/null. What it writes to file descriptor
 * capture_fd (1 or 2) is kept in out (its last n-1 bytes, NUL-terminated; *cut set if more came);
 * stdout goes to /dev/null when not captured, stderr is inherited when not captured. Returns the
 * exit status, RUN_SIGNAL + signal number, or RUN_NOT_STARTED. */
static int run(const char *const argv[], int capture_fd, char *out, size_t n, int *cut)
{
    int fd[2] = {-1, -1};
    out[0] = '\0';
    *cut = 0;
    if (pipe(fd) != 0) return RUN_NOT_STARTED;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (capture_fd != 1) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd[1], capture_fd);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (e == 0) {
        size_t used = 0;
        char chunk[4096];
        for (;;) {
            ssize_t r = read(fd[0], chunk, sizeof chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            keep_tail(out, n, &used, chunk, (size_t)r, cut);
        }
    }
    close(fd[0]);
    if (e != 0) return RUN_NOT_STARTED;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return RUN_NOT_STARTED;
    if (WIFSIGNALED(status)) return RUN_SIGNAL + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : RUN_NOT_STARTED;
}

const char *pare_gnuplot_version(char *buf, size_t n)
{
    const char *cmd = pare_gnuplot_command();
    if (!cmd) return NULL;
    const char *argv[] = {cmd, "--version", NULL};
    int cut;
    if (run(argv, 1, buf, n, &cut) != 0 || !buf[0]) return NULL;
    buf[strcspn(buf, "\n")] = '\0';
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

static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* s for a message: control characters as \n \r \t or \xHH, cut at about n bytes. */
static const char *shown(char *buf, size_t n, const char *s)
{
    size_t used = 0;
    static const char hex[] = "0123456789abcdef";
    for (; *s && used + 8 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (!is_control(c)) buf[used++] = (char)c;
        else if (c == '\n' || c == '\r' || c == '\t') buf[used++] = '\\', buf[used++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        else buf[used++] = '\\', buf[used++] = 'x', buf[used++] = hex[c >> 4], buf[used++] = hex[c & 15];
    }
    if (*s) buf[used++] = '.', buf[used++] = '.', buf[used++] = '.';
    buf[used] = '\0';
    return buf;
}

pare_status pare_plot_check_text(const char *what, const char *text)
{
    if (!text) return PARE_OK;
    for (const char *p = text; *p; p++)
        if (is_control((unsigned char)*p)) {
            char b[200], c[16];
            return pare_fail(PARE_EINVAL,
                             "%s '%s': control characters are refused in plot text and names (here %s at byte %zu): "
                             "a newline would end the gnuplot command the text is written in, and the others have "
                             "no glyph in a PNG and are not allowed in an SVG",
                             what, shown(b, sizeof b, text), shown(c, sizeof c, (char[]){*p, 0}), (size_t)(p - text) + 1);
        }
    return PARE_OK;
}

/* s as one shell word (for the "rerun with" hints): as is when plain, else single-quoted. */
static const char *shell_word(char *buf, size_t n, const char *s)
{
    int plain = s[0] != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./+,:=@%-", *p) != NULL;
    if (plain) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    size_t used = 0;
    buf[used++] = '\'';
    for (; *s && used + 6 < n; s++) {
        if (*s == '\'') memcpy(buf + used, "'\\''", 4), used += 4;
        else buf[used++] = *s;
    }
    buf[used++] = '\'';
    buf[used] = '\0';
    return buf;
}

/* path as a command argument: gnuplot reads an argument starting with '-' as an option and one
 * starting with '<' as a shell command to run (mkdir the first), so anything but a plain start gets
 * "./". */
static const char *path_arg(char *buf, size_t n, const char *path)
{
    unsigned char c = (unsigned char)path[0];
    int plain = c == '/' || c == '.' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    snprintf(buf, n, "%s%s", plain ? "" : "./", path);
    return buf;
}

pare_status pare_plot_check_out(const char *what, const char *prefix, int make_dirs)
{
    char b[200];
    size_t len = prefix ? strlen(prefix) : 0;
    if (len == 0) return pare_fail(PARE_EINVAL, "%s: empty; give a file prefix such as plots/NAME", what);
    if (prefix[len - 1] == '/')
        return pare_fail(PARE_EINVAL, "%s '%s': names a directory; give a file prefix in it, such as %sNAME", what,
                         shown(b, sizeof b, prefix), b);
    if (len + 8 >= PARE_PATH_MAX) return pare_fail(PARE_EINVAL, "%s '%s': too long (at most %d bytes)", what, shown(b, sizeof b, prefix), PARE_PATH_MAX - 9);
    PARE_TRY(pare_plot_check_text(what, prefix));
    if (make_dirs) return PARE_OK;
    char dir[PARE_PATH_MAX];
    const char *slash = strrchr(prefix, '/');
    if (!slash) return PARE_OK; /* the working directory */
    snprintf(dir, sizeof dir, "%.*s", slash == prefix ? 1 : (int)(slash - prefix), prefix);
    struct stat st;
    char a[PARE_PATH_MAX + 2], q[PARE_PATH_MAX + 64];
    if (stat(dir, &st) != 0 && errno == ENOENT)
        return pare_fail(PARE_EIO,
                         "%s '%s': directory '%s' does not exist; create it first:  mkdir -p %s  "
                         "(pare creates only its own default plots directory)",
                         what, prefix, dir, shell_word(q, sizeof q, path_arg(a, sizeof a, dir)));
    if (stat(dir, &st) != 0) return pare_fail(PARE_EIO, "%s '%s': directory '%s': %s", what, prefix, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return pare_fail(PARE_EIO, "%s '%s': '%s' is not a directory", what, prefix, dir);
    return PARE_OK;
}

/* A gnuplot string constant that reads back as exactly s (control characters, which can only come
 * from table data, become spaces) and of which nothing is ever interpreted:
 *  - 'text', with any ' doubled, when gnuplot's scanner reads that back: inside single quotes
 *    nothing else is special (no backslash escapes, no `command`, no @macro);
 *  - else "text" with \\ for a backslash and octal escapes for ' " ` @. gnuplot 5.4's scanner ends a
 *    single-quoted string at a doubled quote that opens it or follows another one ('''a' and
 *    'a''''b' do not parse). Inside double quotes gnuplot would run a `command`, and its macro pass
 *    counts every bare ' as a quote, so none of these may appear as themselves.
 * Checked against gnuplot 5.4 by tests/t_plot_names.sh. */
static void gp_quote(FILE *f, const char *s)
{
    int single = s[0] != '\'' && !strstr(s, "''");
    fputc(single ? '\'' : '"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_control(c)) fputc(' ', f);
        else if (single && c == '\'') fputs("''", f);
        else if (single) fputc(c, f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c == '\'' || c == '"' || c == '`' || c == '@') fprintf(f, "\\%03o", c);
        else fputc(c, f);
    }
    fputc(single ? '\'' : '"', f);
}

/* Text inside a '#' comment of the .gp (or .dat): on one line, and not ending in '\', which would
 * make gnuplot read the next line as part of the comment. */
static void gp_comment(FILE *f, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) fputc(is_control((unsigned char)s[i]) ? '?' : s[i], f);
    if (n > 0 && s[n - 1] == '\\') fputc(' ', f);
}

/* A double-quoted string in the .dat: gnuplot ends it at the first '"' and then decodes backslash
 * escapes, so '\' is written \\ and '"' and control characters as octal escapes (\042). */
static void dat_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\') fputs("\\\\", f);
        else if (c == '"' || is_control(c)) fprintf(f, "\\%03o", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void col_title(char *buf, size_t n, const pare_col *c)
{
    snprintf(buf, n, "%s%s%s%s", c->label[0] ? c->label : c->name, c->unit[0] ? " (" : "", c->unit, c->unit[0] ? ")" : "");
}

/* A cell as text: strings as they are (not copied, never cut), numbers into buf. */
static const char *value_text(char *buf, size_t n, pare_col_type t, pare_cell c)
{
    if (pare_cell_is_missing(t, c)) return t == PARE_COL_STR ? "" : "NaN";
    if (t == PARE_COL_STR) return c.s;
    if (t == PARE_COL_BOOL) return c.b ? "true" : "false";
    if (t == PARE_COL_INT) snprintf(buf, n, "%lld", (long long)c.i);
    else snprintf(buf, n, "%.6g", c.f);
    return buf;
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
    char names[2048], b[200];
    size_t used = 0;
    names[0] = '\0';
    for (int j = 0; j < t->ncols && used < sizeof names; j++)
        used += (size_t)snprintf(names + used, sizeof names - used, j ? ", %s" : "%s", t->cols[j].name);
    return pare_fail(PARE_EINVAL, "plot of table '%s': %s column '%s' does not exist (columns: %s)", t->name, role,
                     name ? shown(b, sizeof b, name) : "(none given)", names);
}

/* The gnuplot messages for an error: the end of what it printed, from a line start, so the kept
 * message (about 1 KB) still has the line gnuplot complains about. */
static const char *gnuplot_tail(const char *err, size_t keep)
{
    size_t n = strlen(err);
    if (n <= keep) return err;
    const char *p = err + n - keep, *nl = strchr(p, '\n');
    return nl && nl[1] ? nl + 1 : p;
}

static void describe_exit(char *buf, size_t n, int rc)
{
    if (rc == RUN_NOT_STARTED) snprintf(buf, n, "could not be started");
    else if (rc >= RUN_SIGNAL) snprintf(buf, n, "killed by signal %d", rc - RUN_SIGNAL);
    else snprintf(buf, n, "exit %d", rc);
}

/* ---- the writer ---- */

pare_status pare_plot_render(pare_plot_files *files)
{
    pare_status st = PARE_OK;
    char arg[PARE_PATH_MAX + 2], hint[PARE_PATH_MAX + 256];
    shell_word(hint, sizeof hint, path_arg(arg, sizeof arg, files->gp));
    files->rendered = 0;
    files->message[0] = '\0';
    const char *cmd = pare_gnuplot_command();
    if (!cmd) {
        snprintf(files->message, sizeof files->message, "gnuplot not found: render with  gnuplot %s  (apt-get install gnuplot-nox)",
                 hint);
        return st;
    }
    remove(files->png);
    remove(files->svg);
    const char *argv[] = {cmd, arg, NULL};
    char err[4096];
    int cut;
    int rc = run(argv, 2, err, sizeof err, &cut);
    size_t elen = strlen(err);
    while (elen > 0 && (err[elen - 1] == '\n' || err[elen - 1] == ' ')) err[--elen] = '\0';
    char how[64], who[PARE_PATH_MAX + 16];
    describe_exit(how, sizeof how, rc);
    snprintf(who, sizeof who, strcmp(cmd, "gnuplot") ? "gnuplot (%s)" : "%s", cmd);
    const char *missing = access(files->png, R_OK) != 0 ? files->png : access(files->svg, R_OK) != 0 ? files->svg : NULL;
    if (rc != 0 || missing) {
        remove(files->png); /* half a render is not a plot */
        remove(files->svg);
        if (rc != 0)
            st = pare_fail(PARE_EINTERNAL, "%s failed on %s (%s)%s%s", who, files->gp, how, err[0] ? ", saying:\n" : " without a message",
                           gnuplot_tail(err, 640));
        else
            st = pare_fail(PARE_EINTERNAL, "%s exited 0 on %s but did not write %s%s%s", who, files->gp, missing,
                           err[0] ? "; it said:\n" : "", gnuplot_tail(err, 640));
        return st;
    }
    files->rendered = 1;
    if (err[0]) {
        /* Each warning once: the script renders twice (png, svg) and gnuplot repeats itself. */
        size_t used = (size_t)snprintf(files->message, sizeof files->message, "gnuplot warnings on %s:%s", files->gp, cut ? "\n..." : "");
        for (char *line = strtok(err, "\n"); line && used < sizeof files->message; line = strtok(NULL, "\n")) {
            size_t len = strlen(line);
            int seen = 0;
            for (const char *p = strstr(files->message, line); p && !seen; p = strstr(p + 1, line))
                seen = p[-1] == '\n' && (p[len] == '\n' || p[len] == '\0');
            if (!seen) used += (size_t)snprintf(files->message + used, sizeof files->message - used, "\n%s", line);
        }
    }
    return st;
}

pare_status pare_plot_write(const pare_table *t, const pare_plot_spec *s, const char *prefix, pare_plot_files *files)
{
    memset(files, 0, sizeof *files);
    if (s->ny < 1) return pare_fail(PARE_EINVAL, "plot of table '%s': no y column given", t->name);
    if ((unsigned)s->kind >= PARE_PLOT_KIND_COUNT) return pare_fail(PARE_EINVAL, "plot of table '%s': bad plot kind", t->name);
    PARE_TRY(pare_plot_check_out("plot path", prefix, s->make_dirs));
    PARE_TRY(pare_plot_check_text("title", s->title));
    PARE_TRY(pare_plot_check_text("xlabel", s->xlabel));
    PARE_TRY(pare_plot_check_text("ylabel", s->ylabel));
    int xc, byc = -1;
    PARE_TRY(find_col(t, s->x, "x", &xc));
    if (s->by) PARE_TRY(find_col(t, s->by, "by", &byc));
    int *yc = malloc((size_t)s->ny * sizeof *yc);
    int64_t *groups = malloc((size_t)(t->nrows + 1) * sizeof *groups);
    int64_t *cats = malloc((size_t)(t->nrows + 1) * sizeof *cats);
    int64_t *rows = malloc((size_t)(t->nrows + 1) * sizeof *rows);
    char **titles = NULL;
    int64_t nseries = 0;
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
    /* Something to plot: a row with an x (any category counts) and a number in some y. Else gnuplot
     * would stop on an empty range, with a message about ranges rather than about the table. */
    int64_t points = 0;
    for (int64_t r = 0; r < t->nrows && !points; r++) {
        if (!categorical && isnan(num_of(t->cols[xc].type, t->cells[r * t->ncols + xc]))) continue;
        if (categorical && t->cols[xc].type != PARE_COL_STR && pare_cell_is_missing(t->cols[xc].type, t->cells[r * t->ncols + xc]))
            continue;
        for (int k = 0; k < s->ny && !points; k++) points = !isnan(num_of(t->cols[yc[k]].type, t->cells[r * t->ncols + yc[k]]));
    }
    if (!points) {
        st = pare_fail(PARE_EINVAL, "plot of table '%s': nothing to plot: no row (of %lld) has both an x ('%s') and a y", t->name,
                       (long long)t->nrows, s->x);
        goto done;
    }
    int64_t ngroups = byc >= 0 ? distinct(t, byc, 0, groups) : 1;
    if (ngroups == 0) ngroups = 1, byc = -1;
    int64_t ncats = categorical ? distinct(t, xc, t->cols[xc].type == PARE_COL_STR, cats) : 0;
    nseries = ngroups * s->ny;

    snprintf(files->dat, sizeof files->dat, "%s.dat", prefix);
    snprintf(files->gp, sizeof files->gp, "%s.gp", prefix);
    snprintf(files->png, sizeof files->png, "%s.png", prefix);
    snprintf(files->svg, sizeof files->svg, "%s.svg", prefix);
    if (s->make_dirs && (st = pare_make_parent_dirs(files->gp)) != PARE_OK) goto done;

    /* Series titles (also written into the .dat as comments). */
    titles = calloc((size_t)nseries, sizeof *titles);
    if (!titles) {
        st = pare_fail(PARE_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t g = 0; g < ngroups; g++)
        for (int k = 0; k < s->ny; k++) {
            char ytitle[512], nb[64];
            col_title(ytitle, sizeof ytitle, &t->cols[yc[k]]);
            const char *gval = byc >= 0 ? value_text(nb, sizeof nb, t->cols[byc].type, t->cells[groups[g] * t->ncols + byc]) : "";
            int len;
            char **out = &titles[g * s->ny + k];
            if (byc >= 0 && s->ny > 1) len = asprintf(out, "%s, %s=%s", ytitle, t->cols[byc].name, gval);
            else if (byc >= 0) len = asprintf(out, "%s=%s", t->cols[byc].name, gval);
            else len = asprintf(out, "%s", ytitle);
            if (len < 0) {
                *out = NULL;
                st = pare_fail(PARE_ENOMEM, "out of memory");
                goto done;
            }
        }

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

    /* ---- .dat ---- */
    fputs("# ", dat);
    gp_comment(dat, base_name(files->dat));
    fprintf(dat, " — written by pare from table '%s'", t->name);
    if (s->source) {
        fputs(" of ", dat);
        gp_comment(dat, s->source);
    }
    fprintf(dat, "\n# one block per series (gnuplot `index`); columns: %s\n", categorical ? "category-index category y" : "x y");
    for (int64_t g = 0; g < ngroups; g++)
        for (int k = 0; k < s->ny; k++) {
            int64_t si = g * s->ny + k;
            if (si) fputs("\n\n", dat);
            fprintf(dat, "# series %lld: ", (long long)si);
            gp_comment(dat, titles[si]);
            fputc('\n', dat);
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
                    num_text(yb, sizeof yb, y);
                    fprintf(dat, "%lld ", (long long)c);
                    dat_quote(dat, value_text(xb, sizeof xb, t->cols[xc].type, t->cells[cats[c] * t->ncols + xc]));
                    fprintf(dat, " %s\n", yb);
                }
            }
        }

    /* ---- .gp ---- */
    const char *stem = base_name(prefix);
    char xlabel[512], ylabel[512], title[1024];
    const char *xl = s->xlabel, *yl = s->ylabel, *tl = s->title;
    if (!xl) col_title(xlabel, sizeof xlabel, &t->cols[xc]), xl = xlabel;
    if (!yl && s->ny == 1) col_title(ylabel, sizeof ylabel, &t->cols[yc[0]]), yl = ylabel;
    else if (!yl) {
        int same = 1;
        for (int k = 1; k < s->ny; k++) same &= !strcmp(t->cols[yc[k]].unit, t->cols[yc[0]].unit);
        yl = same ? t->cols[yc[0]].unit : "";
    }
    if (!tl) {
        size_t used = (size_t)snprintf(title, sizeof title, "%s: ", t->name);
        for (int k = 0; k < s->ny && used < sizeof title; k++)
            used += (size_t)snprintf(title + used, sizeof title - used, k ? ", %s" : "%s", s->y[k]);
        if (used < sizeof title) snprintf(title + used, sizeof title - used, " vs %s", s->x);
        tl = title;
    }
    char arg[PARE_PATH_MAX + 2], hint[PARE_PATH_MAX + 256];
    shell_word(hint, sizeof hint, path_arg(arg, sizeof arg, files->gp));
    fputs("# ", gp);
    gp_comment(gp, base_name(files->gp));
    fprintf(gp, " — written by pare from table '%s'", t->name);
    if (s->source) {
        fputs(" of ", gp);
        gp_comment(gp, s->source);
    }
    fputs(".\n# Restyle freely, then rerun:   gnuplot ", gp);
    gp_comment(gp, hint);
    fputs("\n# It reads ", gp);
    gp_comment(gp, stem);
    fputs(".dat and writes ", gp);
    gp_comment(gp, stem);
    fputs(".png and ", gp);
    gp_comment(gp, stem);
    fputs(".svg, all beside this script.\n\n", gp);
    fputs("# The directory of this script (ARG0), so it runs from any working directory. It always starts\n"
          "# with ./ or / : gnuplot would run a file name starting with < or | as a shell command.\n", gp);
    fputs("here = ARG0\ni = strlen(here)\nwhile (i > 0 && here[i:i] ne \"/\") { i = i - 1 }\n", gp);
    fputs("dir = (i > 0) ? here[1:i] : \"./\"\n", gp);
    fputs("if (dir[1:1] ne \"/\" && dir[1:2] ne \"./\") { dir = \"./\" . dir }\n", gp);
    fputs("data = dir . ", gp);
    gp_quote(gp, stem);
    fputs(" . '.dat'\n\nset title ", gp);
    gp_quote(gp, tl);
    fputs("\nset xlabel ", gp);
    gp_quote(gp, xl);
    fputs("\nset ylabel ", gp);
    gp_quote(gp, yl);
    fputs("\nset grid\nset key box opaque\nset datafile missing 'NaN'\n", gp);
    if (s->logx && !categorical) fputs("set logscale x\n", gp);
    if (s->logy) fputs("set logscale y\n", gp);
    double w = 0.8 / (double)nseries;
    if (categorical) {
        fprintf(gp, "set xrange [-0.7:%lld.7]\n", (long long)(ncats - 1)); /* bars span ±0.4: keep a margin */
        fputs("set xtics rotate by -30\n", gp);
        /* The tick labels here rather than from the .dat's column 2 (xtic(2)): single-quoted, they
         * reach the image exactly, whatever escapes a gnuplot version decodes in data files. */
        fputs("set xtics ( \\\n", gp);
        for (int64_t c = 0; c < ncats; c++) {
            char nb[64];
            fputs("    ", gp);
            gp_quote(gp, value_text(nb, sizeof nb, t->cols[xc].type, t->cells[cats[c] * t->ncols + xc]));
            fprintf(gp, " %lld%s", (long long)c, c + 1 < ncats ? ", \\\n" : " \\\n");
        }
        fputs(")\n", gp);
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
    fputs("    set output dir . ", gp);
    gp_quote(gp, stem);
    fputs(" . '.' . fmt\n", gp);
    fputs("    plot \\\n", gp);
    for (int64_t si = 0; si < nseries; si++) {
        fprintf(gp, "        data index %lld ", (long long)si);
        if (!categorical) fputs("using 1:2", gp);
        else if (s->kind == PARE_PLOT_BARS) fprintf(gp, "using ($1 %+.4f):3:(%.4f)", -0.4 + w * ((double)si + 0.5), w);
        else fputs("using 1:3", gp);
        fprintf(gp, " with %s title ", kind_style[s->kind]);
        gp_quote(gp, titles[si]);
        fputs(si + 1 < nseries ? ", \\\n" : "\n", gp);
    }
    fputs("    set output\n}\n", gp);
    int e1 = fclose(dat), e2 = fclose(gp);
    dat = gp = NULL;
    if (e1 || e2) {
        st = pare_fail(PARE_EIO, "%s: write error", e1 ? files->dat : files->gp);
        goto done;
    }

    st = pare_plot_render(files);
done:
    if (dat) fclose(dat);
    if (gp) fclose(gp);
    if (titles)
        for (int64_t si = 0; si < nseries; si++) free(titles[si]);
    free(titles);
    free(yc);
    free(groups);
    free(cats);
    free(rows);
    return st;
}
