/* table_fmt.c — markdown and CSV printing of result tables (see table_fmt.h). */
#include "io/table_fmt.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int pare_float_fmt_ok(const char *fmt)
{
    if (!fmt || fmt[0] != '%') return 0;
    const char *p = fmt + 1;
    while (*p && strchr("-+ #0", *p)) p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 3) p++, digits++;
    if (*p == '.') {
        p++;
        digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 2) p++, digits++;
    }
    return *p && strchr("efgEFG", *p) && p[1] == '\0';
}

const char *pare_cell_text(char *buf, size_t n, pare_col_type type, pare_cell c, const char *float_fmt)
{
    buf[0] = '\0';
    if (pare_cell_is_missing(type, c)) return buf;
    switch (type) {
    case PARE_COL_INT: snprintf(buf, n, "%lld", (long long)c.i); break;
    case PARE_COL_FLOAT:
        if (isinf(c.f)) snprintf(buf, n, "%s", c.f > 0 ? "inf" : "-inf");
        else snprintf(buf, n, pare_float_fmt_ok(float_fmt) ? float_fmt : "%.4g", c.f);
        break;
    case PARE_COL_STR: snprintf(buf, n, "%s", c.s); break;
    case PARE_COL_BOOL: snprintf(buf, n, "%s", c.b ? "true" : "false"); break;
    default: break;
    }
    return buf;
}

/* Display width in characters of UTF-8 text (code points; good enough for padding). */
static int utf8_width(const char *s)
{
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void put_padded(FILE *out, const char *s, int width, int right)
{
    int pad = width - utf8_width(s);
    if (right)
        for (int i = 0; i < pad; i++) fputc(' ', out);
    fputs(s, out);
    if (!right)
        for (int i = 0; i < pad; i++) fputc(' ', out);
}

/* Markdown: '|' escaped, newlines as spaces. */
static char *md_escape(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(2 * n + 1), *q = o;
    if (!o) return NULL;
    for (; *s; s++) {
        if (*s == '|') *q++ = '\\';
        *q++ = (*s == '\n' || *s == '\r') ? ' ' : *s;
    }
    *q = '\0';
    return o;
}

static void csv_put(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

pare_status pare_table_write(FILE *out, const pare_table *t, const pare_table_fmt *fmt)
{
    pare_table_fmt def = {0};
    if (!fmt) fmt = &def;
    int n = fmt->columns ? fmt->ncolumns : t->ncols;
    if (n < 1) return pare_fail(PARE_EINVAL, "table '%s': no columns to print", t->name);
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return pare_fail(PARE_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        idx[k] = fmt->columns ? pare_table_col(t, fmt->columns[k]) : k;
        if (idx[k] < 0) {
            char names[2048];
            size_t used = 0;
            names[0] = '\0';
            for (int j = 0; j < t->ncols && used < sizeof names; j++)
                used += (size_t)snprintf(names + used, sizeof names - used, j ? ", %s" : "%s", t->cols[j].name);
            pare_status s = pare_fail(PARE_EINVAL, "table '%s' has no column '%s' (columns: %s)", t->name, fmt->columns[k], names);
            free(idx);
            return s;
        }
        const char *ff = fmt->formats ? fmt->formats[k] : NULL;
        if ((ff && !pare_float_fmt_ok(ff)) || (fmt->num_fmt && !pare_float_fmt_ok(fmt->num_fmt))) {
            pare_status s = pare_fail(PARE_EINVAL, "table '%s': format '%s' is not a single float conversion like %%.4g", t->name,
                                      ff && !pare_float_fmt_ok(ff) ? ff : fmt->num_fmt);
            free(idx);
            return s;
        }
    }
    int csv = fmt->style == PARE_TABLE_CSV;
    const char *numfmt = fmt->num_fmt ? fmt->num_fmt : csv ? NULL : "%.4g"; /* CSV: shortest exact */
    int64_t rows = t->nrows;
    /* All texts, header first: (rows+1, n). */
    char **text = calloc((size_t)(rows + 1) * (size_t)n, sizeof *text);
    int *width = calloc((size_t)n, sizeof *width);
    pare_status st = PARE_OK;
    if (!text || !width) {
        st = pare_fail(PARE_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++) {
        const pare_col *c = &t->cols[idx[k]];
        char h[PARE_COL_LABEL_MAX + PARE_COL_UNIT_MAX + 8];
        const char *given = fmt->headers ? fmt->headers[k] : NULL;
        if (given) snprintf(h, sizeof h, "%s", given);
        else if (fmt->use_labels && (c->label[0] || c->unit[0]))
            snprintf(h, sizeof h, "%s%s%s%s", c->label[0] ? c->label : c->name, c->unit[0] ? " (" : "", c->unit, c->unit[0] ? ")" : "");
        else snprintf(h, sizeof h, "%s", c->name);
        text[k] = csv ? strdup(h) : md_escape(h);
        for (int64_t r = 0; r < rows; r++) {
            char buf[512];
            const char *ff = fmt->formats && fmt->formats[k] ? fmt->formats[k] : numfmt;
            pare_cell cell = t->cells[r * t->ncols + idx[k]];
            if (!ff && c->type == PARE_COL_FLOAT && isfinite(cell.f)) {
                snprintf(buf, sizeof buf, "%.15g", cell.f);
                if (strtod(buf, NULL) != cell.f) snprintf(buf, sizeof buf, "%.17g", cell.f);
                text[(r + 1) * n + k] = strdup(buf);
                continue;
            }
            const char *s = c->type == PARE_COL_STR && !pare_cell_is_missing(c->type, t->cells[r * t->ncols + idx[k]])
                                ? t->cells[r * t->ncols + idx[k]].s
                                : pare_cell_text(buf, sizeof buf, c->type, t->cells[r * t->ncols + idx[k]], ff);
            text[(r + 1) * n + k] = csv ? strdup(s) : md_escape(s);
        }
    }
    for (int64_t i = 0; i < (rows + 1) * n; i++)
        if (!text[i]) {
            st = pare_fail(PARE_ENOMEM, "out of memory");
            goto done;
        }
    if (csv) {
        for (int64_t r = 0; r <= rows; r++) {
            for (int k = 0; k < n; k++) {
                if (k) fputc(',', out);
                csv_put(out, text[r * n + k]);
            }
            fputc('\n', out);
        }
        goto done;
    }
    for (int64_t i = 0; i < (rows + 1) * n; i++) {
        int w = utf8_width(text[i]);
        if (w > width[i % n]) width[i % n] = w;
    }
    for (int k = 0; k < n; k++)
        if (width[k] < 3) width[k] = 3;
    for (int64_t r = 0; r <= rows; r++) {
        fputc('|', out);
        for (int k = 0; k < n; k++) {
            int right = t->cols[idx[k]].type == PARE_COL_INT || t->cols[idx[k]].type == PARE_COL_FLOAT;
            fputc(' ', out);
            put_padded(out, text[r * n + k], width[k], right && r > 0);
            fputs(" |", out);
        }
        fputc('\n', out);
        if (r == 0) {
            fputc('|', out);
            for (int k = 0; k < n; k++) {
                int right = t->cols[idx[k]].type == PARE_COL_INT || t->cols[idx[k]].type == PARE_COL_FLOAT;
                fputc(' ', out);
                for (int i = 0; i < width[k] - right; i++) fputc('-', out);
                if (right) fputc(':', out);
                fputs(" |", out);
            }
            fputc('\n', out);
        }
    }
done:
    if (text)
        for (int64_t i = 0; i < (rows + 1) * n; i++) free(text[i]);
    free(text);
    free(width);
    free(idx);
    return st;
}

pare_status pare_table_format(char **out, const pare_table *t, const pare_table_fmt *fmt)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status s = pare_table_write(f, t, fmt);
    fclose(f);
    if (s != PARE_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    return PARE_OK;
}
