/* table_fmt.h — printing a pare_table as markdown or CSV.
 *
 * Markdown is padded so it reads well in a terminal and renders in any markdown viewer; numeric
 * columns are right-aligned. Floats use "%.4g" unless a format is given; missing values (NaN,
 * INT64_MIN, "") print empty. CSV follows RFC 4180 quoting and prints floats exactly (the shortest
 * of %.15g / %.17g that reads back to the same double).
 *
 *     pare_table_fmt fmt = {.style = PARE_TABLE_MARKDOWN};
 *     pare_table_write(stdout, &t, &fmt);
 */
#ifndef PARE_TABLE_FMT_H
#define PARE_TABLE_FMT_H

#include <stdio.h>

#include "core/status.h"
#include "io/h5table.h"

typedef enum pare_table_style { PARE_TABLE_MARKDOWN = 0, PARE_TABLE_CSV, PARE_TABLE_STYLE_COUNT } pare_table_style;

typedef struct pare_table_fmt {
    pare_table_style style;
    const char *const *columns; /* (ncolumns) names to print, in this order; NULL = all */
    int ncolumns;
    const char *const *headers; /* (ncolumns, or t->ncols when columns is NULL); NULL or a NULL entry = default */
    const char *const *formats; /* likewise: printf float format per column ("%.2f"); NULL entry = num_fmt */
    const char *num_fmt;        /* float format, default "%.4g" (CSV: exact) */
    int use_labels;             /* default header = "label (unit)" when the column has them */
} pare_table_fmt;

/* Write the table. PARE_EINVAL naming the column if a requested column does not exist or a format is
 * not a single float conversion (%[flags][width][.prec]{e,f,g,E,G}). */
pare_status pare_table_write(FILE *out, const pare_table *t, const pare_table_fmt *fmt);
/* The same into a malloc'd string. */
pare_status pare_table_format(char **text, const pare_table *t, const pare_table_fmt *fmt);
/* One cell as text (missing → ""); float_fmt NULL = "%.4g". Returns buf. */
const char *pare_cell_text(char *buf, size_t n, pare_col_type type, pare_cell c, const char *float_fmt);
/* 1 if fmt is a single printf float conversion safe to pass to snprintf with one double. */
int pare_float_fmt_ok(const char *fmt);

#endif
