/* plot.h — gnuplot plots of result tables: a .dat, a readable .gp beside it, then .png and .svg.
 *
 * pare_plot_write(t, spec, "plots/x-acc") writes
 *     plots/x-acc.dat   one data block per series (gnuplot `index`), with a comment naming it
 *     plots/x-acc.gp    a gnuplot script a user can restyle and rerun (`gnuplot plots/x-acc.gp`);
 *                       it finds its .dat beside itself and renders .png (pngcairo 800x500) and .svg
 * and runs gnuplot on the script when gnuplot is on PATH (or $PARE_GNUPLOT names it; an empty
 * $PARE_GNUPLOT means "no gnuplot"). Without gnuplot the .gp and .dat are still written and
 * files->message says how to render them.
 *
 * A series is one y column for one distinct value of the `by` column (sorted). A numeric x is
 * plotted as numbers (rows sorted by x); a string x, or kind BARS, makes categories: one tick per
 * distinct x (sorted numerically or in order of first appearance for strings); bars are clustered.
 * Rows whose x or y is missing are left out. User text (titles, labels, category names) is quoted
 * for gnuplot and printed verbatim (noenhanced), never interpreted.
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
} pare_plot_spec;

#define PARE_PATH_MAX 4096

typedef struct pare_plot_files {
    char dat[PARE_PATH_MAX], gp[PARE_PATH_MAX], png[PARE_PATH_MAX], svg[PARE_PATH_MAX];
    int rendered;      /* 1 if gnuplot ran and wrote png and svg */
    char message[PARE_PATH_MAX + 128]; /* "" or why nothing was rendered and how to render */
} pare_plot_files;

/* Write prefix.dat and prefix.gp (creating directories) and render with gnuplot if available.
 * PARE_EINVAL naming the column if x, y or by is not a column (or y/x is a string where a number is
 * needed); PARE_EIO naming the file if it cannot be written. A gnuplot that fails is not an error:
 * rendered stays 0 and message says so. */
pare_status pare_plot_write(const pare_table *t, const pare_plot_spec *spec, const char *prefix, pare_plot_files *files);
/* "lines" | "points" | "linespoints" | "bars" → kind; PARE_EINVAL listing them otherwise. */
pare_status pare_plot_kind_parse(const char *name, pare_plot_kind *kind);
/* The gnuplot command to run ("gnuplot" or $PARE_GNUPLOT) if it can be found, else NULL. */
const char *pare_gnuplot_command(void);
/* "gnuplot 5.4 patchlevel 4" into buf, or NULL when gnuplot is not available. */
const char *pare_gnuplot_version(char *buf, size_t n);

#endif
