/* lua_plot.c — plots of a results table: gnuplot data and script files, rendered when gnuplot is there.
 *
 * Implements: exp:plot{table=, x=, y=, by=, kind=, logx=, logy=, title=, name=, xlabel=, ylabel=}
 * (files under the experiment's plots directory, named <experiment>-<name>) and pare.plot(exp_or_path,
 * {..., out = "plots/name"}). Both return the list of files written and whether they were rendered.
 *
 * Files: out = "dir/name" must name an existing directory (a typo should not make a tree of
 * folders); the experiment's plots directory (pare.experiment's plots=, default "plots") is pare's
 * own and is created. Text options are refused if they hold a NUL byte (a C string would cut it) or a
 * control character (see io/plot.h); a gnuplot that fails is a Lua error with gnuplot's message.
 *
 * Does not: write or run gnuplot itself (src/io/plot.c does; this turns the Lua spec into a
 * pare_plot_spec).
 *
 * pare.render(gp) runs gnuplot again on a .gp a script restyled (errors as above).
 *
 * Entry points (lua_harness_internal.h): pare_lua_exp_plot, pare_lua_plot, pare_lua_render.
 */
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "io/h5table.h"
#include "io/plot.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

/* Raise "fn: <kept message>" for a failed status. */
static int plot_error(lua_State *L, const char *fn) { return pare_lua_error(L, "%s: %s", fn, pare_errmsg()); }

/* The string option key of the spec (or NULL), refused if it holds a NUL byte: C would silently cut
 * the text there, so a name or title would not be what the script gave. */
static const char *opt_text(lua_State *L, int spec, const char *key, const char *fn)
{
    const char *v = pare_lua_opt_string(L, spec, key, NULL);
    if (v) {
        lua_getfield(L, spec, key);
        size_t len = lua_rawlen(L, -1);
        lua_pop(L, 1);
        if (strlen(v) != len) return pare_lua_error(L, "%s: %s holds a NUL byte (at byte %d); plot text cannot", fn, key, (int)strlen(v) + 1), NULL;
    }
    return v;
}

/* Plot table data according to the spec at idx into prefix; pushes the list of files and `rendered`. */
static int do_plot(lua_State *L, pare_h5_file *f, int spec, const char *prefix_dir, const char *stem, const char *fn)
{
    pare_lua_check_keys(L, spec, fn, "table|x|y|by|kind|logx|logy|title|name|xlabel|ylabel|out");
    const char *table = opt_text(L, spec, "table", fn);
    if (!table) {
        lua_pushnil(L);
        table = pare_lua_table_arg(L, f, lua_gettop(L), fn);
    }
    if (!pare_name_ok(table)) return pare_lua_error(L, "%s: invalid table name '%s'", fn, table);
    pare_plot_spec ps = {0};
    ps.x = opt_text(L, spec, "x", fn);
    if (!ps.x) return pare_lua_error(L, "%s: give x = 'column'", fn);
    /* y: one name or a list of any length; the pointers live in a userdata left on the stack (Lua
     * errors longjmp, so no malloc), the strings in the spec table. */
    const char **ys;
    int yt = lua_getfield(L, spec, "y");
    if (yt == LUA_TSTRING) {
        ys = lua_newuserdatauv(L, sizeof *ys, 0);
        ys[0] = lua_tostring(L, -2);
        ps.ny = 1;
    } else if (yt == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        if (n < 1 || n > INT_MAX / 2) return pare_lua_error(L, "%s: y must list at least one column", fn);
        ys = lua_newuserdatauv(L, (size_t)n * sizeof *ys, 0);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, -2, i) != LUA_TSTRING) return pare_lua_error(L, "%s: y[%d] must be a column name", fn, (int)i);
            ys[i - 1] = lua_tostring(L, -1);
            lua_pop(L, 1); /* the string stays alive in the y table */
        }
        ps.ny = (int)n;
    } else return pare_lua_error(L, "%s: give y = 'column' or y = {'col1', 'col2'}", fn);
    ps.y = ys; /* y and the userdata stay on the stack until do_plot returns */
    ps.by = opt_text(L, spec, "by", fn);
    ps.title = opt_text(L, spec, "title", fn);
    ps.xlabel = opt_text(L, spec, "xlabel", fn);
    ps.ylabel = opt_text(L, spec, "ylabel", fn);
    ps.logx = pare_lua_opt_bool(L, spec, "logx");
    ps.logy = pare_lua_opt_bool(L, spec, "logy");
    ps.source = pare_h5_path(f);
    const char *kind = pare_lua_opt_string(L, spec, "kind", "linespoints");
    pare_plot_kind k;
    if (pare_plot_kind_parse(kind, &k) != PARE_OK) return pare_lua_status_error(L, PARE_EINVAL);
    ps.kind = k;
    /* The files' prefix: out = "dir/name" wins (its directory must exist); else <plots>/<stem>-<name>,
     * with the plots directory created. */
    char prefix[PARE_PATH_MAX];
    const char *out = opt_text(L, spec, "out", fn);
    if (out) {
        if (pare_plot_check_out("out", out, 0) != PARE_OK) return plot_error(L, fn);
        snprintf(prefix, sizeof prefix, "%s", out);
    } else {
        char defname[PARE_COL_NAME_MAX * 3];
        const char *name = opt_text(L, spec, "name", fn);
        if (!name) {
            snprintf(defname, sizeof defname, "%s-%s", table, ys[0]);
            name = defname;
        }
        if (!pare_name_ok(name)) return pare_lua_error(L, "%s: invalid plot name '%s'; give name = 'short-name'", fn, name);
        if (snprintf(prefix, sizeof prefix, "%s/%s-%s", prefix_dir, stem, name) >= (int)sizeof prefix)
            return pare_lua_error(L, "%s: the plot path %s/%s-%s is too long", fn, prefix_dir, stem, name);
        ps.make_dirs = 1;
    }
    pare_table *t = pare_lua_read_box(L, f, table);
    if (!t) return pare_lua_error(L, "%s: %s has no table '%s'", fn, pare_h5_path(f), table);
    pare_plot_files files;
    pare_status st = pare_plot_write(t, &ps, prefix, &files);
    if (st != PARE_OK) return plot_error(L, fn);
    if (files.message[0]) fprintf(stderr, "%s\n", files.message);
    lua_createtable(L, 4, 0);
    lua_pushstring(L, files.dat);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, files.gp);
    lua_rawseti(L, -2, 2);
    if (files.rendered) {
        lua_pushstring(L, files.png);
        lua_rawseti(L, -2, 3);
        lua_pushstring(L, files.svg);
        lua_rawseti(L, -2, 4);
    }
    lua_pushboolean(L, files.rendered);
    return 2;
}

/* exp:plot{table=, x=, y=, by=, kind=, logx=, logy=, title=, name=, xlabel=, ylabel=} */
int pare_lua_exp_plot(lua_State *L)
{
    lua_settop(L, 2);
    pare_exp *e = pare_lua_check_exp(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    return do_plot(L, e->f, 2, e->plots, e->name, "exp:plot");
}

/* pare.plot(path_or_exp, {... as exp:plot, plus out = "plots/name"}) */
int pare_lua_plot(lua_State *L)
{
    lua_settop(L, 2);
    pare_h5_file *f = pare_lua_file_arg(L, 1, "pare.plot");
    luaL_checktype(L, 2, LUA_TTABLE);
    char stem[PARE_COL_NAME_MAX];
    const char *p = pare_h5_path(f), *slash = strrchr(p, '/');
    snprintf(stem, sizeof stem, "%s", slash ? slash + 1 : p);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    for (char *c = stem; *c; c++) /* pare names this file: a strange results file name is not refused */
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '_';
    if (luaL_testudata(L, 1, EXP_MT)) return do_plot(L, f, 2, ((pare_exp *)lua_touserdata(L, 1))->plots, stem, "pare.plot");
    int nret = do_plot(L, f, 2, "plots", stem, "pare.plot");
    pare_lua_close_anchors(L);
    return nret;
}


/* pare.render("plots/x-acc.gp"): render a (restyled) gnuplot script to its .png and .svg. Returns
 * true when rendered, false (with the note on stderr) when gnuplot is not available. */
int pare_lua_render(lua_State *L)
{
    size_t n;
    const char *gp = luaL_checklstring(L, 1, &n);
    if (strlen(gp) != n) return pare_lua_error(L, "pare.render: the path holds a NUL byte");
    if (n < 4 || strcmp(gp + n - 3, ".gp")) return pare_lua_error(L, "pare.render: '%s' is not a .gp file", gp);
    pare_plot_files files;
    memset(&files, 0, sizeof files);
    if (n - 3 + 5 > sizeof files.gp) return pare_lua_error(L, "pare.render: path too long");
    snprintf(files.gp, sizeof files.gp, "%s", gp);
    snprintf(files.png, sizeof files.png, "%.*s.png", (int)(n - 3), gp);
    snprintf(files.svg, sizeof files.svg, "%.*s.svg", (int)(n - 3), gp);
    if (pare_plot_render(&files) != PARE_OK) return plot_error(L, "pare.render");
    if (files.message[0]) fprintf(stderr, "%s\n", files.message);
    lua_pushboolean(L, files.rendered);
    return 1;
}
