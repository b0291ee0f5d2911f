/* main.c — the `pare` command: run a Lua experiment, print or plot a results table, show option
 * schemas and the build/machine description.
 *
 *     pare run experiments/x.lua key=value ...     exit 0 ok, 1 script error, 2 no such file, 3 syntax error
 *     pare table results/x.h5 [table] [--csv] [--labels] [--columns a,b] [--provenance]
 *     pare plot results/x.h5 --table T --x col --y col[,col] [--by col] [--kind k] [--logx] [--logy]
 *                            [--title text] [--xlabel text] [--ylabel text] [--out plots/name]
 *     pare help [name]      pare info      pare version
 *
 * Exit codes of the other commands: 0 ok, 1 a file or its content is bad (or gnuplot failed),
 * 2 bad usage (including plot text or an --out that cannot be used).
 * This is the only place that exits; everything below returns a status.
 */
#include <gsl/gsl_version.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/options.h"
#include "core/status.h"
#include "dist/dist.h"
#include "io/h5table.h"
#include "io/plot.h"
#include "io/table_fmt.h"
#include "io/version.h"
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "lua/lua_harness.h"
#include "lua/lua_util.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: pare <command> [arguments]\n"
    "\n"
    "  run FILE.lua [key=value ...]   run an experiment script (args in pare.args)\n"
    "  table FILE.h5 [TABLE] [--csv] [--labels] [--columns a,b,...] [--provenance]\n"
    "                                 print a results table (markdown; no TABLE: list them,\n"
    "                                 or print the only one)\n"
    "  plot FILE.h5 --table T --x COL --y COL[,COL...] [--by COL] [--kind lines|points|linespoints|bars]\n"
    "       [--logx] [--logy] [--title TEXT] [--xlabel TEXT] [--ylabel TEXT] [--out DIR/NAME]\n"
    "                                 write DIR/NAME.{dat,gp} and render .png/.svg with gnuplot\n"
    "                                 (DIR must exist; the default plots/FILE-T-COL creates plots/)\n"
    "  help [NAME]                    this text, or the options of a pass/task/model NAME\n"
    "  info                           version, commit, CPU, kernel backends, library versions\n"
    "  version                        the version\n";

static int usage_error(const char *fmt, const char *arg)
{
    if (fmt) {
        fprintf(stderr, "pare: ");
        fprintf(stderr, fmt, arg ? arg : "");
        fprintf(stderr, "\n\n");
    }
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static int fail(const char *cmd)
{
    fprintf(stderr, "pare %s: %s\n", cmd, pare_errmsg());
    return EXIT_FAIL;
}

/* Split "a,b,c" in place into at most max pointers; -1 if there are more (empty items are skipped). */
static int split_commas(char *s, const char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max) return -1;
        out[n++] = tok;
    }
    return n;
}

/* How many items split_commas would find in s. */
static int count_commas(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++)
        if (*p != ',' && (p == s || p[-1] == ',')) n++;
    return n;
}

/* The line under a table pasted into the docs: which commit, machine and day produced it, read from the
 * file's provenance attributes (h5table.h); an attribute the file lacks is left out. */
static void print_provenance(pare_h5_file *f, const char *path)
{
    static const char *const keys[] = {"git_commit", "date", "cpu_model", "cpu_features", "hostname"};
    char *v[5] = {0};
    for (int i = 0; i < 5; i++)
        if (pare_h5_attr_get(f, "/", keys[i], &v[i]) != PARE_OK) v[i] = NULL;
    printf("\n*%s: commit %s, %s, %s", path, v[0] ? v[0] : "unknown", v[1] ? v[1] : "date unknown",
           v[2] ? v[2] : "CPU unknown");
    if (v[3]) printf(" (%s)", v[3]);
    if (v[4]) printf(", host %s", v[4]);
    printf("*\n");
    for (int i = 0; i < 5; i++) free(v[i]);
}

static int cmd_table(int argc, char **argv)
{
    const char *path = NULL, *table = NULL;
    char *columns = NULL;
    int provenance = 0;
    pare_table_fmt fmt = {0};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) fmt.style = PARE_TABLE_CSV;
        else if (!strcmp(argv[i], "--provenance")) provenance = 1;
        else if (!strcmp(argv[i], "--labels")) fmt.use_labels = 1;
        else if (!strcmp(argv[i], "--columns") && i + 1 < argc) columns = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) return usage_error("table: unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else if (!table) table = argv[i];
        else return usage_error("table: unexpected argument '%s'", argv[i]);
    }
    if (!path) return usage_error("table: give a results file", NULL);
    pare_h5_file *f;
    if (pare_h5_open(&f, path, PARE_H5_READ) != PARE_OK) return fail("table");
    int rc = EXIT_OK;
    char **names = NULL;
    int n = 0;
    if (!table) {
        if (pare_h5_table_names(f, &names, &n) != PARE_OK) {
            rc = fail("table");
            goto done;
        }
        if (n == 1) table = names[0];
        else {
            printf("%s: %d table%s\n", path, n, n == 1 ? "" : "s");
            for (int i = 0; i < n; i++) {
                pare_col *cols;
                int nc;
                int64_t rows = 0;
                if (pare_h5_table_info(f, names[i], &cols, &nc, &rows) == PARE_OK) {
                    printf("  %-24s %6lld rows  ", names[i], (long long)rows);
                    for (int j = 0; j < nc; j++) printf("%s%s", j ? ", " : "", cols[j].name);
                    printf("\n");
                    free(cols);
                } else printf("  %-24s (unreadable: %s)\n", names[i], pare_errmsg());
            }
            goto done;
        }
    }
    if (!pare_h5_table_exists(f, table)) {
        fprintf(stderr, "pare table: %s has no table '%s'\n", path, table);
        rc = EXIT_FAIL;
        goto done;
    }
    pare_table t;
    if (pare_h5_table_read(f, table, &t) != PARE_OK) {
        rc = fail("table");
        goto done;
    }
    const char *cols[PARE_TABLE_MAX_COLS];
    if (columns) {
        fmt.columns = cols;
        fmt.ncolumns = split_commas(columns, cols, PARE_TABLE_MAX_COLS);
        if (fmt.ncolumns < 0) {
            fprintf(stderr, "pare table: --columns lists more than %d columns, the most a table has\n", PARE_TABLE_MAX_COLS);
            pare_table_free(&t);
            rc = EXIT_USAGE;
            goto done;
        }
    }
    if (pare_table_write(stdout, &t, &fmt) != PARE_OK) rc = fail("table");
    else if (provenance) print_provenance(f, path);
    pare_table_free(&t);
done:
    free(names);
    pare_h5_close(f);
    return rc;
}

static int cmd_plot(int argc, char **argv)
{
    const char *path = NULL, *table = NULL, *out = NULL;
    char *ylist = NULL;
    pare_plot_spec s = {0};
    s.kind = PARE_PLOT_LINESPOINTS;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--table") && has) table = argv[++i];
        else if (!strcmp(a, "--x") && has) s.x = argv[++i];
        else if (!strcmp(a, "--y") && has) ylist = argv[++i];
        else if (!strcmp(a, "--by") && has) s.by = argv[++i];
        else if (!strcmp(a, "--title") && has) s.title = argv[++i];
        else if (!strcmp(a, "--xlabel") && has) s.xlabel = argv[++i];
        else if (!strcmp(a, "--ylabel") && has) s.ylabel = argv[++i];
        else if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--kind") && has) {
            if (pare_plot_kind_parse(argv[++i], &s.kind) != PARE_OK) return usage_error("plot: %s", pare_errmsg());
        } else if (!strcmp(a, "--logx")) s.logx = 1;
        else if (!strcmp(a, "--logy")) s.logy = 1;
        else if (a[0] == '-' && a[1]) return usage_error("plot: unknown option or missing value: '%s'", a);
        else if (!path) path = a;
        else return usage_error("plot: unexpected argument '%s'", a);
    }
    if (!path) return usage_error("plot: give a results file", NULL);
    if (!s.x || !ylist) return usage_error("plot: give --x COL and --y COL[,COL...]", NULL);
    /* Text and the output prefix are checked before anything is read, naming the option. An --out
     * the user gives must have its directory already (a typo should not make a tree of folders);
     * the default plots/ directory is pare's own and is created. */
    if (pare_plot_check_text("--title", s.title) != PARE_OK || pare_plot_check_text("--xlabel", s.xlabel) != PARE_OK ||
        pare_plot_check_text("--ylabel", s.ylabel) != PARE_OK || (out && pare_plot_check_out("--out", out, 0) != PARE_OK)) {
        fprintf(stderr, "pare plot: %s\n", pare_errmsg());
        return EXIT_USAGE;
    }
    s.make_dirs = out == NULL;
    int ny = count_commas(ylist); /* no limit on y columns but memory */
    const char **ys = malloc((size_t)(ny > 0 ? ny : 1) * sizeof *ys);
    if (!ys) {
        fprintf(stderr, "pare plot: out of memory\n");
        return EXIT_FAIL;
    }
    s.ny = split_commas(ylist, ys, ny);
    s.y = ys;
    s.source = path;
    if (s.ny < 1) {
        free(ys);
        return usage_error("plot: --y lists no column", NULL);
    }
    pare_h5_file *f;
    if (pare_h5_open(&f, path, PARE_H5_READ) != PARE_OK) {
        free(ys);
        return fail("plot");
    }
    int rc = EXIT_OK;
    char **names = NULL;
    int n = 0;
    if (!table) {
        if (pare_h5_table_names(f, &names, &n) != PARE_OK) {
            rc = fail("plot");
            goto done;
        }
        if (n != 1) {
            fprintf(stderr, "pare plot: %s has %d tables; name one with --table\n", path, n);
            rc = EXIT_USAGE;
            goto done;
        }
        table = names[0];
    }
    char prefix[PARE_PATH_MAX];
    if (out) snprintf(prefix, sizeof prefix, "%s", out);
    else {
        /* plots/<file>-<table>-<y>: the file's name up to its first dot, control characters as '_'
         * (pare chose this name, so it should not be refused for a strange results file name). */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        int stem = (int)strcspn(base, ".");
        if (snprintf(prefix, sizeof prefix, "plots/%.*s-%s-%s", stem, base, table, ys[0]) >= (int)sizeof prefix) {
            fprintf(stderr, "pare plot: the default plot name for %s is too long; give --out\n", path);
            rc = EXIT_USAGE;
            goto done;
        }
        for (char *p = prefix; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '_';
    }
    pare_table t;
    if (!pare_h5_table_exists(f, table)) {
        fprintf(stderr, "pare plot: %s has no table '%s'\n", path, table);
        rc = EXIT_FAIL;
        goto done;
    }
    if (pare_h5_table_read(f, table, &t) != PARE_OK) {
        rc = fail("plot");
        goto done;
    }
    pare_plot_files files;
    if (pare_plot_write(&t, &s, prefix, &files) != PARE_OK) rc = fail("plot");
    else {
        printf("%s\n%s\n", files.dat, files.gp);
        if (files.rendered) printf("%s\n%s\n", files.png, files.svg);
        if (files.message[0]) fprintf(stderr, "%s\n", files.message);
    }
    pare_table_free(&t);
done:
    free(names);
    free(ys);
    pare_h5_close(f);
    return rc;
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        char names[4096];
        names[0] = '\0';
        pare_schema_names(names, sizeof names);
        fputs(usage_text, stdout);
        printf("\n  pare help NAME for NAME in: %s\n", names[0] ? names : "(none registered)");
        return EXIT_OK;
    }
    const pare_schema *s = pare_schema_lookup(argv[0]);
    if (s) {
        pare_schema_print(stdout, s);
        return EXIT_OK;
    }
    static const char *const commands[] = {"run", "table", "plot", "help", "info", "version"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[0], commands[i])) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
    char names[4096];
    names[0] = '\0';
    pare_schema_names(names, sizeof names);
    fprintf(stderr, "pare help: unknown pass, task or model '%s'; valid: %s\n", argv[0], names[0] ? names : "(none registered)");
    return EXIT_USAGE;
}

static int cmd_info(void)
{
    char buf[1024];
    const pare_cpu *cpu = pare_cpu_get();
    printf("pare %s\n", pare_version());
    printf("commit:   %s\n", pare_git_commit());
    printf("cpu:      %s (%d logical cores)\n", cpu->model, cpu->logical_cores);
    printf("features: %s\n", pare_cpu_features_str(buf, (int)sizeof buf));
    buf[0] = '\0';
    printf("kernels:  %s\n", pare_kernel_backends(buf, sizeof buf));
    printf("lua:      %s\n", LUA_RELEASE);
    printf("hdf5:     %s\n", pare_h5_libversion(buf, sizeof buf));
    printf("gsl:      %s\n", gsl_version);
    printf("mpi:      %s\n", pare_dist_library());
    const char *gp = pare_gnuplot_version(buf, sizeof buf);
    printf("gnuplot:  %s\n", gp ? gp : "not found (plots are written as .gp/.dat; apt-get install gnuplot-nox to render)");
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage_error(NULL, NULL);
    const char *cmd = argv[1];
    /* PARE_I8_KERNEL=auto|pare|onednn: the int8 Linear's u8s8 kernel (docs/kernels-int8.md) */
    const char *i8k = getenv("PARE_I8_KERNEL");
    if (i8k && *i8k) {
        pare_i8_kernel k;
        if (pare_i8_kernel_parse(i8k, &k) != PARE_OK) return fail("PARE_I8_KERNEL");
        pare_i8_kernel_set(k);
    }
    if (!strcmp(cmd, "run")) {
        if (argc < 3) return usage_error("run: give a script", NULL);
        /* under mpirun: MPI_Init here, MPI_Finalize only after a script that ended well (a failed rank
         * exits without it, which makes MPI end the whole job instead of leaving the others waiting) */
        if (pare_dist_init() != PARE_OK) return fail("run");
        int rc = pare_lua_run_file(argv[2], argc - 3, argv + 3);
        if (rc == EXIT_OK) pare_dist_finalize();
        return rc;
    }
    if (!strcmp(cmd, "table")) return cmd_table(argc - 2, argv + 2);
    if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return cmd_help(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info();
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("pare %s (%s)\n", pare_version(), pare_git_commit());
        return EXIT_OK;
    }
    return usage_error("unknown command '%s'", cmd);
}
