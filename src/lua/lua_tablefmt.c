/* lua_tablefmt.c — tables of a results file as markdown or CSV text.
 *
 * Implements: pare.table(exp_or_path [, table] [, opts]) → text, pare.print_table (the same, written
 * to stdout) and exp:print. Options pick and order columns, set headers and number formats, and
 * compute columns with format functions (function(row) → text).
 *
 * Does not: lay out the text (src/io/table_fmt.c does; this builds a view of the table and calls it).
 *
 * Entry points (lua_harness_internal.h): pare_lua_table, pare_lua_print_table, pare_lua_exp_print.
 */
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/h5table.h"
#include "io/table_fmt.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

/* Push row r of t as a Lua table {column = value}. */
static void push_row(lua_State *L, const pare_table *t, int64_t r)
{
    lua_createtable(L, 0, t->ncols);
    for (int j = 0; j < t->ncols; j++) {
        pare_lua_push_cell(L, t->cols[j].type, t->cells[r * t->ncols + j]);
        lua_setfield(L, -2, t->cols[j].name);
    }
}

/* pare.table(exp_or_path [, table] [, {columns = {...}, headers = {...}, labels = bool, fmt = "%.4g",
 *            format = {col = "%.2f" | function(row) return text end}, csv = bool}]) → text
 * A column listed in `columns` that the table lacks is computed by its format function. The
 * printed table is a "view": real columns borrow the read cells, computed ones point at Lua strings
 * anchored in a table on the stack, so nothing leaks if a format function raises. */
int pare_lua_table(lua_State *L)
{
    lua_settop(L, 3);
    pare_h5_file *f = pare_lua_file_arg(L, 1, "pare.table");
    const char *table = pare_lua_table_arg(L, f, 2, "pare.table");
    const int o = 3;
    int has_o = lua_istable(L, o);
    pare_lua_check_keys(L, o, "pare.table", "columns|headers|labels|fmt|format|formats|csv");
    pare_table *t = pare_lua_read_box(L, f, table);
    if (!t) return pare_lua_error(L, "pare.table: %s has no table '%s'", pare_h5_path(f), table);
    pare_table_fmt fmt = {0};
    int n = t->ncols;
    int colsidx = 0, fmtidx = 0, hdridx = 0;
    if (has_o) {
        fmt.style = pare_lua_opt_bool(L, o, "csv") ? PARE_TABLE_CSV : PARE_TABLE_MARKDOWN;
        fmt.use_labels = pare_lua_opt_bool(L, o, "labels");
        fmt.num_fmt = pare_lua_opt_string(L, o, "fmt", NULL);
        if (lua_getfield(L, o, "columns") == LUA_TTABLE) {
            colsidx = lua_gettop(L);
            n = (int)luaL_len(L, colsidx);
            if (n < 1 || n > PARE_TABLE_MAX_COLS) return pare_lua_error(L, "pare.table: columns must list 1 to %d names", PARE_TABLE_MAX_COLS);
        }
        int ft = lua_getfield(L, o, "format"), ft2 = lua_getfield(L, o, "formats");
        if (ft != LUA_TNIL && ft2 != LUA_TNIL) return pare_lua_error(L, "pare.table: give format or formats, not both");
        if (ft2 != LUA_TNIL) lua_remove(L, -2);
        else lua_pop(L, 1);
        if (lua_istable(L, -1)) fmtidx = lua_gettop(L);
        else if (!lua_isnil(L, -1)) return pare_lua_error(L, "pare.table: format must be a table {column = \"%%.3f\" or function(row)}");
        if (lua_getfield(L, o, "headers") == LUA_TTABLE) hdridx = lua_gettop(L);
    }
    int64_t rows = t->nrows;
    pare_col *vcols = lua_newuserdatauv(L, (size_t)n * sizeof *vcols, 0);
    pare_cell *vcells = lua_newuserdatauv(L, (size_t)(rows > 0 ? rows : 1) * (size_t)n * sizeof *vcells, 0);
    const char **vformats = lua_newuserdatauv(L, (size_t)n * sizeof *vformats, 0);
    const char **vheaders = lua_newuserdatauv(L, (size_t)n * sizeof *vheaders, 0);
    lua_newtable(L); /* keeps computed strings alive */
    int keep = lua_gettop(L), nkeep = 0;
    for (int k = 0; k < n; k++) {
        const char *name;
        if (colsidx) {
            lua_geti(L, colsidx, k + 1);
            name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (!name) return pare_lua_error(L, "pare.table: columns[%d] must be a name", k + 1);
            lua_pop(L, 1); /* held by the columns table */
        } else name = t->cols[k].name;
        int j = pare_table_col(t, name);
        int fv = LUA_TNIL;
        if (fmtidx) fv = lua_getfield(L, fmtidx, name);
        else lua_pushnil(L);
        vformats[k] = NULL;
        if (fv == LUA_TFUNCTION || j < 0) {
            if (fv != LUA_TFUNCTION) {
                char names[2048];
                pare_lua_col_names(names, sizeof names, t->cols, t->ncols);
                return pare_lua_error(L, "pare.table: table '%s' has no column '%s' (columns: %s); to compute one, give format = {%s = function(row) ... end}",
                                      t->name, name, names, name);
            }
            memset(&vcols[k], 0, sizeof vcols[k]);
            snprintf(vcols[k].name, sizeof vcols[k].name, "%s", name);
            vcols[k].type = PARE_COL_STR;
            for (int64_t r = 0; r < rows; r++) {
                lua_pushvalue(L, -1);
                push_row(L, t, r);
                lua_call(L, 1, 1);
                if (lua_type(L, -1) == LUA_TNUMBER) {
                    char num[64];
                    pare_cell c = {.f = lua_tonumber(L, -1)};
                    pare_cell_text(num, sizeof num, PARE_COL_FLOAT, c, fmt.num_fmt);
                    lua_pop(L, 1);
                    lua_pushstring(L, num);
                } else if (lua_isnil(L, -1)) {
                    lua_pop(L, 1);
                    lua_pushliteral(L, "");
                } else if (lua_type(L, -1) != LUA_TSTRING) {
                    return pare_lua_error(L, "pare.table: format.%s returned a %s; return a string or number", name, luaL_typename(L, -1));
                }
                vcells[r * n + k].s = (char *)lua_tostring(L, -1);
                lua_rawseti(L, keep, ++nkeep);
            }
        } else {
            vcols[k] = t->cols[j];
            for (int64_t r = 0; r < rows; r++) vcells[r * n + k] = t->cells[r * t->ncols + j];
            if (fv == LUA_TSTRING) vformats[k] = lua_tostring(L, -1); /* held by the format table */
            else if (fv != LUA_TNIL) return pare_lua_error(L, "pare.table: format.%s must be a printf format like \"%%.3f\" or a function(row)", name);
        }
        lua_pop(L, 1);
        vheaders[k] = NULL;
        if (hdridx) {
            if (luaL_len(L, hdridx) > 0) lua_geti(L, hdridx, k + 1);
            else lua_getfield(L, hdridx, name);
            if (lua_type(L, -1) == LUA_TSTRING) vheaders[k] = lua_tostring(L, -1); /* held by the headers table */
            lua_pop(L, 1);
        }
    }
    pare_table view = {.ncols = n, .cols = vcols, .nrows = rows, .cells = vcells};
    snprintf(view.name, sizeof view.name, "%s", t->name);
    fmt.headers = vheaders;
    fmt.formats = vformats;
    box *b = pare_lua_push_box(L);
    pare_status st = pare_table_format(&b->text, &view, &fmt);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushstring(L, b->text);
    pare_lua_close_anchors(L);
    return 1;
}

int pare_lua_print_table(lua_State *L)
{
    lua_pushcfunction(L, pare_lua_table);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

/* exp:print(table [, opts]) */
int pare_lua_exp_print(lua_State *L)
{
    pare_lua_check_exp(L, 1);
    return pare_lua_print_table(L);
}
