/* plot.h — gnuplot plots of result tables: a .dat, a readable .gp beside it, then .png and .svg.
 *
 * pare_plot_write(t, spec, "plots/x-acc") writes
 *     plots/x-acc.dat   one data block per series (gnuplot `index`), with a comment naming it
 *     plots/x-acc.gp    a gnuplot script a user can restyle and rerun (`gnuplot plots/x-acc.gp`);
 *                       it finds its .dat beside itself and renders .png (pngcairo 800x500) and .svg
 * and runs gnuplot on the script when gnuplot is on PATH (or $PARE_GNUPLOT names it; an empty
 * $PARE_GNUPLOT means "no gnuplot"). Without gnuplot the .gp and .dat are still written and
 * files->message says how to render them. A gnuplot that fails is an error carrying its message.
 *
 * A series is one y column for one distinct value of the `by` column (sorted). A numeric x is
 * plotted as numbers (rows sorted by x); a string x, or kind BARS, makes categories: one tick per
 * distinct x (sorted numerically or in order of first appearance for strings); bars are clustered.
 * Rows whose x or y is missing are left out.
 *
 * Text and names are never interpreted by gnuplot. Every string in the .gp is single-quoted (where
 * gnuplot gives no meaning to anything but a doubled '': no backslash escapes, no `command`
 * substitution, no @macros), terminals are noenhanced (so _ ^ { } print as typed), and the file names
 * the script opens always start with "./" or "/" (gnuplot runs a name starting with < or | as a shell
 * command). Strings in the .dat are double-quoted, with \ written \\ and " and control characters
 * as octal escapes (\042), which gnuplot decodes.
 *
 * Control characters (bytes 1-31 and 127: newline, tab, escape...) are refused in the text and
 * names a caller gives (title, labels, the output prefix): a newline would end the gnuplot command
 * line inside a string, and the others have no glyph in a PNG and are not allowed in SVG (XML).
 * Text taken from the table (column labels and units, string values naming series and categories)
 * has them shown as spaces in the .gp instead (exact, escaped, in the .dat): a table is plotted as
 * it is. In .gp comments they are shown as '?'.
 *
 *     const char *y[] = {"acc"};
 *     pare_plot_spec s = {.x = "bits", .y = y, .ny = 1, .by = "method", .kind = PARE_PLOT_LINESPOINTS};
 *     pare_plot_files out;
 *     PARE_TRY(pare_plot_write(&t, &s, "plots/x-acc", &out));
 */
#ifndef PARE_PLOT_H
#define PARE_PLOT_H

#include <stddef.h>

#include "core/status.h"
#include "io/h5table.h"

typedef enum pare_plot_kind {
    PARE_PLOT_LINES = 0,
    PARE_PLOT_POINTS,
    PARE_PLOT_LINESPOINTS,
    PARE_PLOT_BARS,
    PARE_PLOT_KIND_COUNT
} pare_plot_kind;

typedef struct pare_plot_spec {
    const char *x;
    const char *const *y; /* (ny) */
    int ny;
    const char *by;       /* NULL = one series per y column */
    pare_plot_kind kind;
    int logx, logy;
    const char *title;    /* NULL = "<table>: y vs x" */
    const char *xlabel;   /* NULL = the column's "label (unit)" or name */
    const char *ylabel;   /* NULL = likewise for a single y; the shared unit for several */
    const char *source;   /* NULL, or the results file named in the .gp header comment */
    int make_dirs;        /* 1: create the prefix's missing directories (pare's own default plots
                             directory); 0: they must exist (a prefix the user named: a typo in it
                             should not silently make a tree of folders) */
} pare_plot_spec;

#ifndef PARE_PATH_MAX
#define PARE_PATH_MAX 4096
#endif

typedef struct pare_plot_files {
    char dat[PARE_PATH_MAX], gp[PARE_PATH_MAX], png[PARE_PATH_MAX], svg[PARE_PATH_MAX];
    int rendered;      /* 1 if gnuplot ran and wrote png and svg */
    char message[PARE_PATH_MAX + 4096]; /* "" or a note for the user: gnuplot is missing and how to
                                           render, or the warnings gnuplot printed while rendering */
} pare_plot_files;

/* Write prefix.dat and prefix.gp and render with gnuplot if available. PARE_EINVAL naming the
 * column if x, y or by is not a column (or y/x is a string where a number is needed), naming the
 * field ("title", "xlabel", "ylabel", "plot path") whose text is refused (see above), or if no row has
 * both x and y; PARE_EIO naming the file if it cannot be written or its directory is missing and
 * spec->make_dirs is 0; PARE_EINTERNAL with gnuplot's own messages if gnuplot fails or does not write
 * the .png and .svg (the .dat and .gp stay, for a look at them). */
pare_status pare_plot_write(const pare_table *t, const pare_plot_spec *spec, const char *prefix, pare_plot_files *files);
/* Run gnuplot on files->gp (its .png and .svg named in files), as pare_plot_write does: after a
 * user or a script restyled the .gp. Same outcomes: rendered, a message when gnuplot is missing, or
 * PARE_EINTERNAL with gnuplot's messages. */
pare_status pare_plot_render(pare_plot_files *files);
/* PARE_EINVAL if text holds a control character; what names its option in the message ("--title"). */
pare_status pare_plot_check_text(const char *what, const char *text);
/* PARE_EINVAL if prefix is empty, ends in '/', is too long or holds a control character; PARE_EIO if
 * its directory does not exist (or is not a directory) and !make_dirs, the message naming that
 * directory and saying how to create it. what names the option ("--out"). Creates nothing. */
pare_status pare_plot_check_out(const char *what, const char *prefix, int make_dirs);
/* "lines" | "points" | "linespoints" | "bars" → kind; PARE_EINVAL listing them otherwise. */
pare_status pare_plot_kind_parse(const char *name, pare_plot_kind *kind);
/* The gnuplot command to run ("gnuplot" or $PARE_GNUPLOT) if it can be found, else NULL. */
const char *pare_gnuplot_command(void);
/* "gnuplot 5.4 patchlevel 4" into buf, or NULL when gnuplot is not available. */
const char *pare_gnuplot_version(char *buf, size_t n);

#endif
