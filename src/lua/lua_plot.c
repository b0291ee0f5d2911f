/* lua_plot.c — plots of a results table: gnuplot data and script files, rendered when gnuplot is there.
 *
 * Implements: exp:plot{table=, x=, y=, by=, kind=, logx=, logy=, title=, name=, xlabel=, ylabel=}
 * (files under the experiment's plots directory, named <experiment>-<name>) and pare.plot(exp_or_path,
 * {..., out = "plots/name"}). Both return the list of files written and whether they were rendered.
 *
 * Does not: write or run gnuplot itself (src/io/plot.c does; this turns the Lua spec into a
 * pare_plot_spec).
 *
 * Entry points (lua_harness_internal.h): pare_lua_exp_plot, pare_lua_plot.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "io/h5table.h"
#include "io/plot.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

/* Plot table data according to the spec at idx into prefix; pushes the list of files and `rendered`. */
static int do_plot(lua_State *L, pare_h5_file *f, int spec, const char *prefix_dir, const char *stem, const char *fn)
{
    pare_lua_check_keys(L, spec, fn, "table|x|y|by|kind|logx|logy|title|name|xlabel|ylabel|out");
    const char *table = pare_lua_opt_string(L, spec, "table", NULL);
    if (!table) {
        lua_pushnil(L);
        table = pare_lua_table_arg(L, f, lua_gettop(L), fn);
    }
    if (!pare_name_ok(table)) return pare_lua_error(L, "%s: invalid table name '%s'", fn, table);
    pare_plot_spec ps = {0};
    const char *ys[32];
    ps.x = pare_lua_opt_string(L, spec, "x", NULL);
    if (!ps.x) return pare_lua_error(L, "%s: give x = 'column'", fn);
    int yt = lua_getfield(L, spec, "y");
    if (yt == LUA_TSTRING) {
        ys[0] = lua_tostring(L, -1);
        ps.ny = 1;
    } else if (yt == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        if (n < 1 || n > 32) return pare_lua_error(L, "%s: y must list 1 to 32 columns", fn);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            ys[i - 1] = lua_tostring(L, -1);
            if (!ys[i - 1]) return pare_lua_error(L, "%s: y[%d] must be a column name", fn, (int)i);
            lua_pop(L, 1);
        }
        ps.ny = (int)n;
    } else return pare_lua_error(L, "%s: give y = 'column' or y = {'col1', 'col2'}", fn);
    lua_pop(L, 1); /* y stays alive in spec */
    ps.y = ys;
    ps.by = pare_lua_opt_string(L, spec, "by", NULL);
    ps.title = pare_lua_opt_string(L, spec, "title", NULL);
    ps.xlabel = pare_lua_opt_string(L, spec, "xlabel", NULL);
    ps.ylabel = pare_lua_opt_string(L, spec, "ylabel", NULL);
    ps.logx = pare_lua_opt_bool(L, spec, "logx");
    ps.logy = pare_lua_opt_bool(L, spec, "logy");
    ps.source = pare_h5_path(f);
    const char *kind = pare_lua_opt_string(L, spec, "kind", "linespoints");
    pare_plot_kind k;
    if (pare_plot_kind_parse(kind, &k) != PARE_OK) return pare_lua_status_error(L, PARE_EINVAL);
    ps.kind = k;
    /* The files' prefix: out = "dir/name" wins; else <plots>/<stem>-<name>. */
    char prefix[PARE_PATH_MAX];
    const char *out = pare_lua_opt_string(L, spec, "out", NULL);
    if (out) snprintf(prefix, sizeof prefix, "%s", out);
    else {
        char defname[PARE_COL_NAME_MAX * 3];
        const char *name = pare_lua_opt_string(L, spec, "name", NULL);
        if (!name) {
            snprintf(defname, sizeof defname, "%s-%s", table, ys[0]);
            name = defname;
        }
        if (!pare_name_ok(name)) return pare_lua_error(L, "%s: invalid plot name '%s'; give name = 'short-name'", fn, name);
        snprintf(prefix, sizeof prefix, "%s/%s-%s", prefix_dir, stem, name);
    }
    pare_table *t = pare_lua_read_box(L, f, table);
    if (!t) return pare_lua_error(L, "%s: %s has no table '%s'", fn, pare_h5_path(f), table);
    pare_plot_files files;
    pare_status st = pare_plot_write(t, &ps, prefix, &files);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
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
    if (luaL_testudata(L, 1, EXP_MT)) return do_plot(L, f, 2, ((pare_exp *)lua_touserdata(L, 1))->plots, stem, "pare.plot");
    int nret = do_plot(L, f, 2, "plots", stem, "pare.plot");
    pare_lua_close_anchors(L);
    return nret;
}

