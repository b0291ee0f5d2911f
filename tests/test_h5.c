/* test_h5.c — HDF5 result tables: round trip of every column type, units and labels, attributes,
 * reopening and appending (resume), a writer killed mid-run, bad files, markdown/CSV output,
 * SHA-256 vectors, and the statistics used by the latency benchmark. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/stats.h"
#include "io/h5table.h"
#include "io/sha256.h"
#include "io/table_fmt.h"
#include "tap.h"

static char dir[256];

static const pare_col cols[] = {
    {"bits", PARE_COL_INT, "", "weight bits"},
    {"acc", PARE_COL_FLOAT, "%", "accuracy"},
    {"method", PARE_COL_STR, "", ""},
    {"fused", PARE_COL_BOOL, "", ""},
};
enum { NCOLS = 4 };

static pare_status write_row(pare_h5_file *f, int64_t bits, double acc, const char *method, int fused)
{
    pare_cell row[NCOLS];
    row[0].i = bits;
    row[1].f = acc;
    row[2].s = (char *)method;
    row[3].b = (int8_t)fused;
    return pare_h5_append(f, "sweep", row);
}

static void test_round_trip(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sub/dir/rt.h5", dir);
    pare_h5_file *f;
    ok(pare_h5_open(&f, path, PARE_H5_APPEND) == PARE_OK, "create a results file with missing parent directories");
    ok(pare_h5_table_create(f, "sweep", cols, NCOLS) == PARE_OK, "create a table of int/float/string/bool columns");
    ok(pare_h5_table_create(f, "sweep", cols, NCOLS) == PARE_EINVAL, "creating it twice is an error");
    pare_col bad[2] = {{"a", PARE_COL_INT, "", ""}, {"a", PARE_COL_INT, "", ""}};
    ok(pare_h5_table_create(f, "dup", bad, 2) == PARE_EINVAL && strstr(pare_errmsg(), "'a'"), "a repeated column is refused, named");
    ok(pare_h5_table_create(f, "bad/name", cols, NCOLS) == PARE_EINVAL, "a table name with '/' is refused");
    ok(write_row(f, 4, 0.5, "int4 grouped", 1) == PARE_OK, "append row 1");
    ok(write_row(f, 8, 0.875, "héllo, \"quoted\" | piped", 0) == PARE_OK, "append row 2 (UTF-8, quotes, pipe)");
    pare_cell miss[NCOLS] = {pare_cell_missing(PARE_COL_INT), pare_cell_missing(PARE_COL_FLOAT), {.s = NULL}, {.b = 0}};
    ok(pare_h5_append(f, "sweep", miss) == PARE_OK, "append a row of missing values (NULL string allowed)");
    ok(pare_h5_attr_set_str(f, "/", "script", "x.lua") == PARE_OK && pare_h5_attr_set_i64(f, "/", "seed", 42) == PARE_OK &&
           pare_h5_attr_set_f64(f, "/", "alpha", 0.25) == PARE_OK,
       "root attributes of three types");
    ok(pare_h5_attr_set_str(f, "/", "script", "y.lua") == PARE_OK, "an attribute can be overwritten");
    pare_h5_close(f);

    ok(pare_h5_open(&f, path, PARE_H5_READ) == PARE_OK, "reopen read-only");
    pare_table t;
    ok(pare_h5_table_read(f, "sweep", &t) == PARE_OK, "read the table back");
    ok(t.nrows == 3 && t.ncols == NCOLS, "3 rows, 4 columns (got %lld, %d)", (long long)t.nrows, t.ncols);
    int names_ok = 1;
    for (int j = 0; j < t.ncols && j < NCOLS; j++) names_ok &= !strcmp(t.cols[j].name, cols[j].name) && t.cols[j].type == cols[j].type;
    ok(names_ok, "column names, order and types survive");
    ok(!strcmp(t.cols[1].unit, "%") && !strcmp(t.cols[1].label, "accuracy") && !strcmp(t.cols[0].label, "weight bits") &&
           t.cols[2].unit[0] == '\0',
       "units and labels survive");
    ok(t.cells[0].i == 4 && t.cells[1].f == 0.5 && !strcmp(t.cells[2].s, "int4 grouped") && t.cells[3].b == 1, "row 1 values");
    ok(t.cells[4].i == 8 && t.cells[5].f == 0.875 && !strcmp(t.cells[6].s, "héllo, \"quoted\" | piped") && t.cells[7].b == 0,
       "row 2 values (UTF-8 string intact)");
    ok(pare_cell_is_missing(PARE_COL_INT, t.cells[8]) && isnan(t.cells[9].f) && t.cells[10].s && t.cells[10].s[0] == '\0',
       "missing values read back as INT64_MIN, NaN, \"\"");
    char *md = NULL, *csv = NULL;
    pare_table_fmt mfmt = {.style = PARE_TABLE_MARKDOWN};
    pare_table_fmt cfmt = {.style = PARE_TABLE_CSV};
    ok(pare_table_format(&md, &t, &mfmt) == PARE_OK && md && strstr(md, "| bits | acc ") && strstr(md, "0.875") &&
           strstr(md, "piped") && strstr(md, "\\|"),
       "markdown output (header, %%.4g numbers, escaped pipe)");
    ok(pare_table_format(&csv, &t, &cfmt) == PARE_OK && csv && strstr(csv, "bits,acc,method,fused\n") &&
           strstr(csv, "8,0.875,\"héllo, \"\"quoted\"\" | piped\",false"),
       "CSV output with RFC 4180 quoting");
    free(md);
    free(csv);
    const char *only[] = {"nope"};
    pare_table_fmt badfmt = {.columns = only, .ncolumns = 1};
    ok(pare_table_format(&md, &t, &badfmt) == PARE_EINVAL && strstr(pare_errmsg(), "'nope'"), "an unknown column to print is named");
    pare_table_free(&t);
    pare_table_free(&t);
    ok(1, "pare_table_free is safe twice");
    char *v = NULL;
    ok(pare_h5_attr_get(f, "/", "script", &v) == PARE_OK && !strcmp(v, "y.lua"), "string attribute reads back (overwritten)");
    free(v);
    ok(pare_h5_attr_get(f, "/", "seed", &v) == PARE_OK && !strcmp(v, "42"), "integer attribute reads back as text");
    free(v);
    ok(pare_h5_attr_get(f, "/", "absent", &v) == PARE_EINVAL, "an absent attribute is an error, not a crash");
    char **names;
    int n;
    ok(pare_h5_table_names(f, &names, &n) == PARE_OK && n == 1 && !strcmp(names[0], "sweep"), "the file lists one table");
    free(names);
    ok(write_row(f, 1, 1, "x", 0) == PARE_EINVAL, "appending to a read-only file is refused");
    pare_h5_close(f);
}

static void test_resume_and_crash(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/crash.h5", dir);
    pid_t pid = fork();
    if (pid == 0) {
        pare_h5_file *f;
        if (pare_h5_open(&f, path, PARE_H5_APPEND) != PARE_OK || pare_h5_table_create(f, "sweep", cols, NCOLS) != PARE_OK) _exit(3);
        for (int i = 0; i < 3; i++)
            if (write_row(f, i, i * 0.1, "child", i & 1) != PARE_OK) _exit(4);
        _exit(1); /* a crash: no close, no atexit handlers */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "the writer died without closing the file (exit %d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    pare_h5_file *f;
    pare_status s = pare_h5_open(&f, path, PARE_H5_APPEND);
    ok(s == PARE_OK, "the interrupted file reopens for writing%s%s", s ? ": " : "", s ? pare_errmsg() : "");
    if (s != PARE_OK) return;
    pare_col *c;
    int nc;
    int64_t rows = -1;
    s = pare_h5_table_info(f, "sweep", &c, &nc, &rows);
    ok(s == PARE_OK && rows == 3, "all 3 flushed rows are there (got %lld)", (long long)rows);
    free(c);
    ok(write_row(f, 3, 0.3, "parent", 1) == PARE_OK && write_row(f, 4, 0.4, "parent", 0) == PARE_OK, "appending continues");
    pare_h5_close(f);
    ok(pare_h5_open(&f, path, PARE_H5_READ) == PARE_OK, "reopen after resuming");
    pare_table t;
    ok(pare_h5_table_read(f, "sweep", &t) == PARE_OK && t.nrows == 5, "5 rows after resuming");
    int seq = 1;
    for (int64_t r = 0; r < t.nrows; r++) seq &= t.cells[r * t.ncols].i == r;
    ok(seq && !strcmp(t.cells[2 * t.ncols + 2].s, "child") && !strcmp(t.cells[3 * t.ncols + 2].s, "parent"),
       "rows in order: 3 from the crashed writer, then 2 from the resumed one");
    pare_table_free(&t);
    pare_h5_close(f);
}

static void test_bad_files(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/garbage.h5", dir);
    FILE *g = fopen(path, "wb");
    for (int i = 0; i < 4096; i++) fputc((i * 7919) & 0xff, g);
    fclose(g);
    pare_h5_file *f = NULL;
    pare_status s = pare_h5_open(&f, path, PARE_H5_READ);
    const char *msg = pare_errmsg();
    ok(s == PARE_EFORMAT && f == NULL && strstr(msg, path), "a garbage file is PARE_EFORMAT naming it: %s", msg);
    ok(pare_h5_open(&f, path, PARE_H5_APPEND) == PARE_EFORMAT, "and cannot be opened for appending either");
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    ok(pare_h5_open(&f, path, PARE_H5_READ) == PARE_EIO && strstr(pare_errmsg(), "missing.h5"), "a missing file is PARE_EIO naming it");
    ok(pare_h5_open(&f, dir, PARE_H5_READ) == PARE_EIO, "a directory is refused");
    /* A truncated real file: write one, then cut it in half. */
    snprintf(path, sizeof path, "%s/trunc.h5", dir);
    if (pare_h5_open(&f, path, PARE_H5_APPEND) == PARE_OK) {
        pare_h5_table_create(f, "sweep", cols, NCOLS);
        for (int i = 0; i < 50; i++) write_row(f, i, i, "row", 0);
        pare_h5_close(f);
    }
    FILE *h = fopen(path, "r+b");
    fseek(h, 0, SEEK_END);
    long size = ftell(h);
    fclose(h);
    if (truncate(path, size / 2) != 0) diag("truncate failed");
    f = NULL;
    s = pare_h5_open(&f, path, PARE_H5_READ);
    pare_table t;
    if (s == PARE_OK) {
        s = pare_h5_table_read(f, "sweep", &t);
        if (s == PARE_OK) pare_table_free(&t);
        pare_h5_close(f);
    }
    msg = pare_errmsg();
    ok(s != PARE_OK, "a truncated file gives an error status, not a crash (%s)", msg);
}

static void test_sha256(void)
{
    char hex[65];
    pare_sha256_hex(hex, "", 0);
    ok(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('')");
    pare_sha256_hex(hex, "abc", 3);
    ok(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256('abc')");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    pare_sha256_hex(hex, m, strlen(m));
    ok(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256 of the 448-bit vector");
}

static void test_stats(void)
{
    double x[] = {5, 1, 4, 2, 3}, y[] = {4, 1, 3, 2};
    is_close(pare_stats_median(x, 5), 3, 0, 0, "median of an odd count");
    is_close(pare_stats_median(y, 4), 2.5, 0, 0, "median of an even count");
    ok(x[0] == 5 && x[1] == 1, "the input is not reordered");
    is_close(pare_stats_mean(x, 5), 3, 1e-12, 0, "mean");
    is_close(pare_stats_stddev(x, 5), sqrt(2.5), 1e-12, 0, "sample standard deviation");
    ok(isnan(pare_stats_median(x, 0)) && isnan(pare_stats_stddev(x, 1)), "empty median and n=1 stddev are NaN");
    double z[100], lo, hi, lo2, hi2;
    for (int i = 0; i < 100; i++) z[i] = i;
    ok(pare_stats_bootstrap_ci(z, 100, 0.95, 2000, 1, &lo, &hi) == PARE_OK, "bootstrap CI of the median");
    ok(lo < 49.5 && hi > 49.5 && lo > 30 && hi < 70, "it brackets the median: [%g, %g]", lo, hi);
    pare_stats_bootstrap_ci(z, 100, 0.95, 2000, 1, &lo2, &hi2);
    ok(lo == lo2 && hi == hi2, "same seed, same interval");
    ok(pare_stats_bootstrap_ci_stat(z, 100, PARE_STAT_MEAN, 0.9, 500, 7, &lo, &hi) == PARE_OK && lo < 49.5 && hi > 49.5,
       "bootstrap CI of the mean");
    z[3] = NAN;
    ok(pare_stats_bootstrap_ci(z, 100, 0.95, 2000, 1, &lo, &hi) == PARE_ENUMERIC, "NaN input is an error");
    ok(pare_stats_bootstrap_ci(z, 0, 0.95, 2000, 1, &lo, &hi) == PARE_EINVAL, "no values is an error");
    ok(pare_stats_bootstrap_ci(x, 5, 1.5, 2000, 1, &lo, &hi) == PARE_EINVAL, "a level outside (0,1) is an error");
}

int main(void)
{
    tap_plan_lazy();
    snprintf(dir, sizeof dir, "/tmp/pare-test-h5-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    test_round_trip();
    test_resume_and_crash();
    test_bad_files();
    test_sha256();
    test_stats();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) diag("could not remove %s", dir);
    return tap_done();
}
