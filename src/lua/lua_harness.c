/* lua_harness.c — the harness half of the `pare` Lua module, and the `pare run` script runner.
 *
 * Implements: pare.experiment (a userdata over one HDF5 results file: table, record, rows, has,
 * columns, tables, set_seed, attr, plot, print, close), pare.table / pare.print_table / pare.plot
 * (on an experiment or a file path), pare.stats (median, mean, stddev, quantile, bootstrap_ci),
 * pare.clock, pare.version, pare.git_commit, lazy loading of lua/pare/NAME.lua as pare.NAME
 * (sweep, tap), and pare_lua_run_file (state setup, package.path, args, exit codes).
 *
 * Does not: compute anything about models (the engine's bindings, lua_engine.c, add those to the
 * same table), or format tables and plots itself (src/io does; this only converts Lua values).
 *
 * Memory rule (Lua errors longjmp): C buffers that live across calls which may raise are Lua
 * userdata (a "box" with a __gc), never bare malloc.
 */
#include "lua/lua_harness.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/timer.h"
#include "eval/stats.h"
#include "io/h5table.h"
#include "io/plot.h"
#include "io/sha256.h"
#include "io/table_fmt.h"
#include "io/version.h"
#include "kernels/gemm.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

#define EXP_MT "pare.experiment"
#define BOX_MT "pare.box"
#define REG_SCRIPT "pare.script" /* registry: path of the running script */
#define REG_PARAMS "pare.params" /* registry: its arguments as JSON text */
#define REG_ARGS "pare.args"     /* registry: the pare.args table */

/* ---- boxes: malloc'd results anchored in Lua so an error cannot leak them ---- */

typedef struct box {
    pare_table t;
    char *text;
    char **names; /* a pare_h5_*_names block */
} box;

static int box_gc(lua_State *L)
{
    box *b = luaL_checkudata(L, 1, BOX_MT);
    pare_table_free(&b->t);
    free(b->text);
    free(b->names);
    b->text = NULL;
    b->names = NULL;
    return 0;
}

static box *push_box(lua_State *L)
{
    box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BOX_MT);
    return b;
}

/* ---- experiments ---- */

typedef struct exp_schema { /* cached columns of one table */
    char name[PARE_COL_NAME_MAX];
    int ncols;
    pare_col *cols;
    struct exp_schema *next;
} exp_schema;

typedef struct pare_exp {
    pare_h5_file *f; /* NULL once closed */
    char name[PARE_COL_NAME_MAX];
    char path[PARE_PATH_MAX];
    char plots[PARE_PATH_MAX];
    exp_schema *schemas;
} pare_exp;

static void exp_close(pare_exp *e)
{
    while (e->schemas) {
        exp_schema *s = e->schemas;
        e->schemas = s->next;
        free(s->cols);
        free(s);
    }
    pare_h5_close(e->f);
    e->f = NULL;
}

static pare_exp *check_exp(lua_State *L, int idx)
{
    pare_exp *e = luaL_checkudata(L, idx, EXP_MT);
    if (!e->f) pare_lua_error(L, "experiment '%s' is closed", e->name);
    return e;
}

static const char *check_table_name(lua_State *L, int idx, const char *fn)
{
    const char *t = luaL_checkstring(L, idx);
    if (!pare_name_ok(t)) pare_lua_error(L, "%s: invalid table name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)", fn, t);
    return t;
}

/* The cached schema of a table, loading it from the file; NULL if the table does not exist. */
static exp_schema *exp_schema_get(lua_State *L, pare_exp *e, const char *table)
{
    for (exp_schema *s = e->schemas; s; s = s->next)
        if (!strcmp(s->name, table)) return s;
    if (!pare_h5_table_exists(e->f, table)) return NULL;
    exp_schema *s = calloc(1, sizeof *s);
    if (!s) pare_lua_error(L, "out of memory");
    pare_status st = pare_h5_table_info(e->f, table, &s->cols, &s->ncols, NULL);
    if (st != PARE_OK) {
        free(s);
        pare_lua_status_error(L, st);
    }
    snprintf(s->name, sizeof s->name, "%s", table);
    s->next = e->schemas;
    e->schemas = s;
    return s;
}

static void col_names(char *buf, size_t n, const pare_col *cols, int ncols)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int j = 0; j < ncols && used < n; j++) used += (size_t)snprintf(buf + used, n - used, j ? ", %s" : "%s", cols[j].name);
}

static int type_from_name(const char *s, pare_col_type *t)
{
    if (!strcmp(s, "int") || !strcmp(s, "int64") || !strcmp(s, "integer")) *t = PARE_COL_INT;
    else if (!strcmp(s, "float") || !strcmp(s, "float64") || !strcmp(s, "number")) *t = PARE_COL_FLOAT;
    else if (!strcmp(s, "string") || !strcmp(s, "str")) *t = PARE_COL_STR;
    else if (!strcmp(s, "bool") || !strcmp(s, "boolean")) *t = PARE_COL_BOOL;
    else return 0;
    return 1;
}

/* Push the declaration of `table` from the experiment's user value (or nil). */
static int push_decl(lua_State *L, int exp_idx, const char *table)
{
    lua_getiuservalue(L, exp_idx, 1);
    int t = lua_getfield(L, -1, table);
    lua_remove(L, -2);
    return t;
}

/* Optional string field `key` of subtable `sub` of the table at idx, for column `col`. */
static void decl_attr(lua_State *L, int idx, const char *sub, const char *col, char *dst, size_t n)
{
    dst[0] = '\0';
    if (lua_getfield(L, idx, sub) == LUA_TTABLE) {
        if (lua_getfield(L, -1, col) == LUA_TSTRING) snprintf(dst, n, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Column type of a Lua value (for a table's first row). */
static pare_col_type type_of_value(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: return lua_isinteger(L, idx) ? PARE_COL_INT : PARE_COL_FLOAT;
    case LUA_TSTRING: return PARE_COL_STR;
    case LUA_TBOOLEAN: return PARE_COL_BOOL;
    default: return PARE_COL_TYPE_COUNT;
    }
}

/* Create `table` from its declaration (if any) and the first row at row_idx: declared columns first in
 * their order, then the row's other keys sorted. */
static exp_schema *exp_create_table(lua_State *L, pare_exp *e, int exp_idx, const char *table, int row_idx)
{
    row_idx = lua_absindex(L, row_idx);
    pare_col *cols = lua_newuserdatauv(L, PARE_TABLE_MAX_COLS * sizeof *cols, 0); /* anchored scratch */
    memset(cols, 0, PARE_TABLE_MAX_COLS * sizeof *cols);
    int n = 0;
    int has_decl = push_decl(L, exp_idx, table) == LUA_TTABLE;
    int decl = lua_gettop(L);
    if (has_decl) {
        lua_Integer nd = luaL_len(L, decl);
        for (lua_Integer i = 1; i <= nd; i++) {
            lua_geti(L, decl, i);
            const char *c = lua_tostring(L, -1);
            if (n >= PARE_TABLE_MAX_COLS) pare_lua_error(L, "table '%s': more than %d columns", table, PARE_TABLE_MAX_COLS);
            snprintf(cols[n].name, sizeof cols[n].name, "%s", c);
            char tname[32];
            decl_attr(L, decl, "types", c, tname, sizeof tname);
            lua_getfield(L, row_idx, c);
            if (tname[0]) type_from_name(tname, &cols[n].type);
            else if (!lua_isnil(L, -1)) cols[n].type = type_of_value(L, -1);
            else cols[n].type = PARE_COL_FLOAT;
            lua_pop(L, 2);
            n++;
        }
    }
    /* The row's other keys, sorted. */
    const char *extra[PARE_TABLE_MAX_COLS];
    int nextra = 0;
    lua_pushnil(L);
    while (lua_next(L, row_idx)) {
        char buf[64];
        if (lua_type(L, -2) != LUA_TSTRING)
            pare_lua_error(L, "exp:record('%s'): row keys must be column names; got the key %s", table,
                           pare_lua_describe(L, -2, buf, sizeof buf));
        const char *k = lua_tostring(L, -2);
        if (type_of_value(L, -1) == PARE_COL_TYPE_COUNT)
            pare_lua_error(L, "exp:record('%s'): column '%s' must be a number, string or boolean, got %s", table, k,
                           pare_lua_describe(L, -1, buf, sizeof buf));
        int declared = 0;
        for (int j = 0; j < n && !declared; j++) declared = !strcmp(cols[j].name, k);
        if (!declared) {
            if (n + nextra >= PARE_TABLE_MAX_COLS) pare_lua_error(L, "table '%s': more than %d columns", table, PARE_TABLE_MAX_COLS);
            extra[nextra++] = k; /* the string is held by the row table */
        }
        lua_pop(L, 1);
    }
    qsort(extra, (size_t)nextra, sizeof *extra, cmp_cstr);
    for (int i = 0; i < nextra; i++, n++) {
        snprintf(cols[n].name, sizeof cols[n].name, "%s", extra[i]);
        lua_getfield(L, row_idx, extra[i]);
        cols[n].type = type_of_value(L, -1);
        lua_pop(L, 1);
    }
    for (int j = 0; j < n; j++) {
        if (!pare_name_ok(cols[j].name))
            pare_lua_error(L, "exp:record('%s'): invalid column name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)", table, cols[j].name);
        if (has_decl) {
            decl_attr(L, decl, "units", cols[j].name, cols[j].unit, sizeof cols[j].unit);
            decl_attr(L, decl, "labels", cols[j].name, cols[j].label, sizeof cols[j].label);
        }
    }
    lua_pop(L, 1); /* decl */
    pare_status st = pare_h5_table_create(e->f, table, cols, n);
    if (st != PARE_OK) pare_lua_status_error(L, st);
    lua_pop(L, 1); /* cols scratch */
    return exp_schema_get(L, e, table);
}

/* Convert the row value at idx for column c into cell, or raise naming the column. */
static void to_cell(lua_State *L, int idx, const char *table, const pare_col *c, pare_cell *cell)
{
    char buf[96];
    int t = lua_type(L, idx);
    switch (c->type) {
    case PARE_COL_INT:
        if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
            cell->i = (int64_t)lua_tointeger(L, idx);
            return;
        }
        if (t == LUA_TNUMBER) {
            lua_Number v = lua_tonumber(L, idx);
            if (v == floor(v) && fabs(v) < 9.2e18) {
                cell->i = (int64_t)v;
                return;
            }
            pare_lua_error(L,
                           "exp:record('%s'): column '%s' holds integers (int64, set by its first row) but got %s; "
                           "declare it first with exp:table('%s', {types = {%s = 'float'}})",
                           table, c->name, pare_lua_describe(L, idx, buf, sizeof buf), table, c->name);
        }
        break;
    case PARE_COL_FLOAT:
        if (t == LUA_TNUMBER) {
            cell->f = lua_tonumber(L, idx);
            return;
        }
        break;
    case PARE_COL_STR:
        if (t == LUA_TSTRING) {
            cell->s = (char *)lua_tostring(L, idx);
            return;
        }
        break;
    case PARE_COL_BOOL:
        if (t == LUA_TBOOLEAN) {
            cell->b = (int8_t)lua_toboolean(L, idx);
            return;
        }
        break;
    default: break;
    }
    pare_lua_error(L, "exp:record('%s'): column '%s' is %s but got %s", table, c->name, pare_col_type_name(c->type),
                   pare_lua_describe(L, idx, buf, sizeof buf));
}

/* exp:record(table, row) */
static int l_exp_record(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = check_exp(L, 1);
    const char *table = check_table_name(L, 2, "exp:record");
    luaL_checktype(L, 3, LUA_TTABLE);
    exp_schema *s = exp_schema_get(L, e, table);
    if (!s) s = exp_create_table(L, e, 1, table, 3);
    pare_cell *cells = lua_newuserdatauv(L, (size_t)s->ncols * sizeof *cells, 0);
    for (int j = 0; j < s->ncols; j++) cells[j] = pare_cell_missing(s->cols[j].type);
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        char buf[64];
        if (lua_type(L, -2) != LUA_TSTRING)
            return pare_lua_error(L, "exp:record('%s'): row keys must be column names; got the key %s", table,
                                  pare_lua_describe(L, -2, buf, sizeof buf));
        const char *k = lua_tostring(L, -2);
        int j = 0;
        while (j < s->ncols && strcmp(s->cols[j].name, k)) j++;
        if (j == s->ncols) {
            char names[2048];
            col_names(names, sizeof names, s->cols, s->ncols);
            return pare_lua_error(L, "exp:record('%s'): unknown column '%s' (the table's columns, fixed by its first row: %s)", table, k,
                                  names);
        }
        to_cell(L, -1, table, &s->cols[j], &cells[j]);
        lua_pop(L, 1);
    }
    pare_status st = pare_h5_append(e->f, table, cells);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 0;
}

/* exp:table(name, {col, col, ..., units = {...}, labels = {...}, types = {...}}) */
static int l_exp_table(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = check_exp(L, 1);
    const char *table = check_table_name(L, 2, "exp:table");
    luaL_checktype(L, 3, LUA_TTABLE);
    /* {columns = {...}, units = ...} is the same as {..., units = ...}: normalise to the list form. */
    if (lua_getfield(L, 3, "columns") != LUA_TNIL) {
        if (!lua_istable(L, 4)) return pare_lua_error(L, "exp:table('%s'): columns must be a list of names", table);
        if (luaL_len(L, 3) > 0) return pare_lua_error(L, "exp:table('%s'): give the columns as a list or as columns = {...}, not both", table);
        lua_newtable(L);
        lua_Integer nc = luaL_len(L, 4);
        for (lua_Integer i = 1; i <= nc; i++) {
            lua_geti(L, 4, i);
            lua_rawseti(L, 5, i);
        }
        static const char *const fields[] = {"units", "labels", "types"};
        for (int i = 0; i < 3; i++) {
            lua_getfield(L, 3, fields[i]);
            lua_setfield(L, 5, fields[i]);
        }
        lua_replace(L, 3);
    }
    lua_settop(L, 3);
    /* Validate the declaration now, where the user wrote it. */
    lua_Integer n = luaL_len(L, 3);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 3, i);
        if (lua_type(L, -1) != LUA_TSTRING || !pare_name_ok(lua_tostring(L, -1)))
            return pare_lua_error(L, "exp:table('%s'): column %d must be a name (1-63 characters of A-Z a-z 0-9 _ . + -)", table, (int)i);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            if (strcmp(k, "units") && strcmp(k, "labels") && strcmp(k, "types"))
                return pare_lua_error(L, "exp:table('%s'): unknown field '%s' (valid: a list of columns or columns = {...}, units, labels, types)", table, k);
            if (!lua_istable(L, -1)) return pare_lua_error(L, "exp:table('%s'): '%s' must be a table {column = text}", table, k);
            if (!strcmp(k, "types")) {
                lua_pushnil(L);
                while (lua_next(L, -2)) {
                    pare_col_type t;
                    if (lua_type(L, -1) != LUA_TSTRING || !type_from_name(lua_tostring(L, -1), &t))
                        return pare_lua_error(L, "exp:table('%s'): types.%s must be 'int', 'float', 'string' or 'bool'", table,
                                              lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
                    lua_pop(L, 1);
                }
            }
        }
        lua_pop(L, 1);
    }
    exp_schema *s = exp_schema_get(L, e, table);
    if (s) {
        /* Resuming: the file's table wins; declared columns must be there; units/labels are refreshed. */
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 3, i);
            const char *c = lua_tostring(L, -1);
            int j = 0;
            while (j < s->ncols && strcmp(s->cols[j].name, c)) j++;
            if (j == s->ncols) {
                char names[2048];
                col_names(names, sizeof names, s->cols, s->ncols);
                return pare_lua_error(L, "exp:table('%s'): column '%s' is not in the existing table of %s (columns: %s); "
                                         "use another table or experiment name, or fresh = true",
                                      table, c, e->path, names);
            }
            lua_pop(L, 1);
        }
        for (int j = 0; j < s->ncols; j++) {
            char v[PARE_COL_LABEL_MAX], key[PARE_COL_NAME_MAX + 8];
            decl_attr(L, 3, "units", s->cols[j].name, v, PARE_COL_UNIT_MAX);
            snprintf(key, sizeof key, "unit:%s", s->cols[j].name);
            if (v[0] && strcmp(v, s->cols[j].unit) && pare_h5_attr_set_str(e->f, table, key, v) == PARE_OK)
                snprintf(s->cols[j].unit, sizeof s->cols[j].unit, "%.*s", PARE_COL_UNIT_MAX - 1, v);
            decl_attr(L, 3, "labels", s->cols[j].name, v, sizeof v);
            snprintf(key, sizeof key, "label:%s", s->cols[j].name);
            if (v[0] && strcmp(v, s->cols[j].label) && pare_h5_attr_set_str(e->f, table, key, v) == PARE_OK)
                snprintf(s->cols[j].label, sizeof s->cols[j].label, "%s", v);
        }
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, table);
    lua_settop(L, 1);
    return 1;
}

/* Push a cell as a Lua value; a missing integer is nil. */
static void push_cell(lua_State *L, pare_col_type t, pare_cell c)
{
    switch (t) {
    case PARE_COL_INT:
        if (c.i == INT64_MIN) lua_pushnil(L);
        else lua_pushinteger(L, (lua_Integer)c.i);
        break;
    case PARE_COL_FLOAT: lua_pushnumber(L, c.f); break;
    case PARE_COL_STR: lua_pushstring(L, c.s ? c.s : ""); break;
    case PARE_COL_BOOL: lua_pushboolean(L, c.b); break;
    default: lua_pushnil(L); break;
    }
}

/* Read table into a new box on the stack; returns NULL (box holds nothing) when the table is absent. */
static pare_table *read_box(lua_State *L, pare_h5_file *f, const char *table)
{
    box *b = push_box(L);
    if (!pare_h5_table_exists(f, table)) return NULL;
    pare_status st = pare_h5_table_read(f, table, &b->t);
    if (st != PARE_OK) pare_lua_status_error(L, st);
    return &b->t;
}

/* 1 if row r matches the nkeys values on the stack from index `first`, for columns colidx. */
static int row_matches(lua_State *L, const pare_table *t, int64_t r, int first, const int *colidx, int nkeys)
{
    for (int k = 0; k < nkeys; k++) {
        int j = colidx[k];
        pare_cell c = t->cells[r * t->ncols + j];
        int vi = first + k;
        int lt = lua_type(L, vi);
        switch (t->cols[j].type) {
        case PARE_COL_INT:
            if (lt != LUA_TNUMBER || c.i == INT64_MIN || (double)c.i != lua_tonumber(L, vi)) return 0;
            break;
        case PARE_COL_FLOAT:
            if (lt != LUA_TNUMBER || c.f != lua_tonumber(L, vi)) return 0;
            break;
        case PARE_COL_STR:
            if (lt != LUA_TSTRING || strcmp(c.s, lua_tostring(L, vi))) return 0;
            break;
        case PARE_COL_BOOL:
            if (lt != LUA_TBOOLEAN || (c.b != 0) != lua_toboolean(L, vi)) return 0;
            break;
        default: return 0;
        }
    }
    return 1;
}

/* Push the values of the filter table at idx in a fixed order and resolve their columns. Returns the
 * count; colidx filled. */
static int push_filter(lua_State *L, const pare_table *t, int idx, int *colidx, const char *fn)
{
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) return pare_lua_error(L, "%s: filter keys must be column names", fn);
        const char *k = lua_tostring(L, -1);
        int j = pare_table_col(t, k);
        if (j < 0) {
            char names[2048];
            col_names(names, sizeof names, t->cols, t->ncols);
            return pare_lua_error(L, "%s('%s'): unknown column '%s' (columns: %s)", fn, t->name, k, names);
        }
        if (n >= PARE_TABLE_MAX_COLS) return pare_lua_error(L, "%s: too many keys", fn);
        colidx[n++] = j;
    }
    luaL_checkstack(L, n + 4, "too many filter keys");
    for (int k = 0; k < n; k++) lua_getfield(L, idx, t->cols[colidx[k]].name);
    return n;
}

/* exp:rows(table [, {key = value}]) → array of row tables (only matching rows when a filter is given) */
static int l_exp_rows(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = check_exp(L, 1);
    const char *table = check_table_name(L, 2, "exp:rows");
    pare_table *t = read_box(L, e->f, table);
    if (!t) {
        lua_newtable(L);
        return 1;
    }
    int colidx[PARE_TABLE_MAX_COLS];
    int first = lua_gettop(L) + 1;
    int nk = push_filter(L, t, 3, colidx, "exp:rows");
    lua_createtable(L, (int)t->nrows, 0);
    int out = lua_gettop(L), n = 0;
    for (int64_t r = 0; r < t->nrows; r++) {
        if (nk && !row_matches(L, t, r, first, colidx, nk)) continue;
        lua_createtable(L, 0, t->ncols);
        for (int j = 0; j < t->ncols; j++) {
            push_cell(L, t->cols[j].type, t->cells[r * t->ncols + j]);
            lua_setfield(L, -2, t->cols[j].name);
        }
        lua_rawseti(L, out, ++n);
    }
    return 1;
}

/* exp:has(table, {key = value, ...}) → boolean */
static int l_exp_has(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = check_exp(L, 1);
    const char *table = check_table_name(L, 2, "exp:has");
    luaL_checktype(L, 3, LUA_TTABLE);
    pare_table *t = read_box(L, e->f, table);
    if (!t) {
        lua_pushboolean(L, 0);
        return 1;
    }
    int colidx[PARE_TABLE_MAX_COLS];
    int first = lua_gettop(L) + 1;
    int nk = push_filter(L, t, 3, colidx, "exp:has");
    int found = 0;
    for (int64_t r = 0; r < t->nrows && !found; r++) found = row_matches(L, t, r, first, colidx, nk);
    lua_pushboolean(L, found);
    return 1;
}

/* exp:columns(table) → array of names (file first, else the declaration), or nil; and a table
 * {name = {type=, unit=, label=}} when the table exists. */
static int l_exp_columns(lua_State *L)
{
    lua_settop(L, 2);
    pare_exp *e = check_exp(L, 1);
    const char *table = check_table_name(L, 2, "exp:columns");
    exp_schema *s = exp_schema_get(L, e, table);
    if (s) {
        lua_createtable(L, s->ncols, 0);
        lua_createtable(L, 0, s->ncols);
        for (int j = 0; j < s->ncols; j++) {
            lua_pushstring(L, s->cols[j].name);
            lua_rawseti(L, -3, j + 1);
            lua_createtable(L, 0, 3);
            lua_pushstring(L, pare_col_type_name(s->cols[j].type));
            lua_setfield(L, -2, "type");
            lua_pushstring(L, s->cols[j].unit);
            lua_setfield(L, -2, "unit");
            lua_pushstring(L, s->cols[j].label);
            lua_setfield(L, -2, "label");
            lua_setfield(L, -2, s->cols[j].name);
        }
        return 2;
    }
    if (push_decl(L, 1, table) != LUA_TTABLE) return 1; /* nil */
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -2, i);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* Push an array of names from a pare_h5_*_names result, boxed while converting. */
static int push_names(lua_State *L, pare_status st, char **names, int n)
{
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    box *b = push_box(L);
    b->names = names;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_exp_tables(lua_State *L)
{
    pare_exp *e = check_exp(L, 1);
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_table_names(e->f, &names, &n);
    return push_names(L, st, names, n);
}

static void set_attr_value(lua_State *L, pare_h5_file *f, const char *key, int idx)
{
    pare_status st;
    if (lua_isinteger(L, idx)) st = pare_h5_attr_set_i64(f, "/", key, (int64_t)lua_tointeger(L, idx));
    else if (lua_type(L, idx) == LUA_TNUMBER) st = pare_h5_attr_set_f64(f, "/", key, lua_tonumber(L, idx));
    else if (lua_type(L, idx) == LUA_TSTRING) st = pare_h5_attr_set_str(f, "/", key, lua_tostring(L, idx));
    else if (lua_type(L, idx) == LUA_TBOOLEAN) st = pare_h5_attr_set_str(f, "/", key, lua_toboolean(L, idx) ? "true" : "false");
    else {
        pare_lua_error(L, "attribute '%s': value must be a number, string or boolean", key);
        return;
    }
    if (st != PARE_OK) pare_lua_status_error(L, st);
}

/* exp:set_seed(n) */
static int l_exp_set_seed(lua_State *L)
{
    lua_settop(L, 2);
    pare_exp *e = check_exp(L, 1);
    luaL_checknumber(L, 2);
    set_attr_value(L, e->f, "seed", 2);
    lua_settop(L, 1);
    return 1;
}

/* exp:attr(key) → value (string) or nil; exp:attr(key, value) sets a file attribute. */
static int l_exp_attr(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = check_exp(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3)) {
        set_attr_value(L, e->f, key, 3);
        lua_settop(L, 1);
        return 1;
    }
    char *v = NULL;
    if (pare_h5_attr_get(e->f, "/", key, &v) != PARE_OK) {
        lua_pushnil(L);
        return 1;
    }
    box *b = push_box(L);
    b->text = v;
    lua_pushstring(L, v);
    return 1;
}

/* exp:attrs() → {key = text} of all root attributes */
static int l_exp_attrs(lua_State *L)
{
    pare_exp *e = check_exp(L, 1);
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_attr_names(e->f, "/", &names, &n);
    push_names(L, st, names, n);
    int arr = lua_gettop(L);
    lua_newtable(L);
    for (int i = 1; i <= n; i++) {
        lua_geti(L, arr, i);
        char *v = NULL;
        if (pare_h5_attr_get(e->f, "/", lua_tostring(L, -1), &v) == PARE_OK) {
            box *b = push_box(L);
            b->text = v;
            lua_pushstring(L, v);
            lua_remove(L, -2);
            lua_setfield(L, -3, lua_tostring(L, -2));
        }
        lua_pop(L, 1);
    }
    return 1;
}

static int l_exp_close(lua_State *L)
{
    pare_exp *e = luaL_checkudata(L, 1, EXP_MT);
    exp_close(e);
    return 0;
}

static int l_exp_tostring(lua_State *L)
{
    pare_exp *e = luaL_checkudata(L, 1, EXP_MT);
    lua_pushfstring(L, "experiment '%s' (%s%s)", e->name, e->path, e->f ? "" : ", closed");
    return 1;
}

/* ---- provenance ---- */

static void iso8601_utc(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static pare_status write_provenance(lua_State *L, pare_exp *e, int created)
{
    char buf[1024], hex[65];
    const char *script = NULL, *params = "{}";
    if (lua_getfield(L, LUA_REGISTRYINDEX, REG_SCRIPT) == LUA_TSTRING) script = lua_tostring(L, -1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, REG_PARAMS) == LUA_TSTRING) params = lua_tostring(L, -1);
    pare_h5_file *f = e->f;
    iso8601_utc(buf, sizeof buf);
    if (created) PARE_TRY(pare_h5_attr_set_str(f, "/", "created", buf));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "date", buf));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "experiment", e->name));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "pare_version", pare_version()));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "git_commit", pare_git_commit()));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "script", script ? script : "(none)"));
    if (script && pare_sha256_file(hex, script) == PARE_OK) PARE_TRY(pare_h5_attr_set_str(f, "/", "script_sha256", hex));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "params", params));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "cpu_model", pare_cpu_get()->model));
    PARE_TRY(pare_h5_attr_set_str(f, "/", "cpu_features", pare_cpu_features_str(buf, (int)sizeof buf)));
    buf[0] = '\0';
    PARE_TRY(pare_h5_attr_set_str(f, "/", "kernel_backends", pare_kernel_backends(buf, sizeof buf)));
    if (gethostname(buf, sizeof buf) != 0) snprintf(buf, sizeof buf, "unknown");
    buf[sizeof buf - 1] = '\0';
    PARE_TRY(pare_h5_attr_set_str(f, "/", "hostname", buf));
    lua_pop(L, 2);
    return PARE_OK;
}

static const char *opt_string(lua_State *L, int idx, const char *key, const char *def)
{
    if (lua_isnoneornil(L, idx)) return def;
    int t = lua_getfield(L, idx, key);
    const char *v = t == LUA_TNIL ? def : lua_tostring(L, -1);
    if (t != LUA_TNIL && t != LUA_TSTRING) pare_lua_error(L, "option '%s' must be a string", key);
    lua_pop(L, 1); /* the string stays alive in the options table */
    return v;
}

static int opt_bool(lua_State *L, int idx, const char *key)
{
    if (lua_isnoneornil(L, idx)) return 0;
    lua_getfield(L, idx, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Reject keys of the options table at idx that are not in valid ("a|b|c"). */
static void check_keys(lua_State *L, int idx, const char *fn, const char *valid)
{
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        if (k) {
            size_t kl = strlen(k);
            for (const char *p = valid; *p && !ok;) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t)(bar - p) : strlen(p);
                ok = len == kl && !strncmp(p, k, len);
                p = bar ? bar + 1 : p + len;
            }
        }
        if (!ok) {
            char list[256];
            snprintf(list, sizeof list, "%s", valid);
            for (char *c = list; *c; c++)
                if (*c == '|') *c = ',';
            pare_lua_error(L, "%s: unknown option '%s' (valid: %s)", fn, k ? k : "(not a name)", list);
        }
    }
}

/* pare.experiment(name [, {dir = "results", plots = "plots", seed = n, fresh = false}]) */
static int l_experiment(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    if (!pare_name_ok(name))
        return pare_lua_error(L, "pare.experiment: invalid name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)", name);
    check_keys(L, 2, "pare.experiment", "dir|plots|seed|fresh");
    const char *dir = opt_string(L, 2, "dir", "results");
    const char *plots = opt_string(L, 2, "plots", "plots");
    int fresh = opt_bool(L, 2, "fresh");
    pare_exp *e = lua_newuserdatauv(L, sizeof *e, 1);
    memset(e, 0, sizeof *e);
    luaL_setmetatable(L, EXP_MT);
    lua_newtable(L); /* declarations */
    lua_setiuservalue(L, -2, 1);
    int exp_idx = lua_gettop(L);
    snprintf(e->name, sizeof e->name, "%s", name);
    if (snprintf(e->path, sizeof e->path, "%s/%s.h5", dir, name) >= (int)sizeof e->path ||
        snprintf(e->plots, sizeof e->plots, "%s", plots) >= (int)sizeof e->plots)
        return pare_lua_error(L, "pare.experiment: path too long");
    if (fresh && remove(e->path) != 0 && errno != ENOENT)
        return pare_lua_error(L, "pare.experiment: cannot remove %s: %s", e->path, strerror(errno));
    struct stat st;
    int created = stat(e->path, &st) != 0;
    pare_status s = pare_h5_open(&e->f, e->path, PARE_H5_APPEND);
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    if ((s = write_provenance(L, e, created)) != PARE_OK) return pare_lua_status_error(L, s);
    /* The seed: given here, else from the script's args. */
    int has_seed = lua_istable(L, 2) && lua_getfield(L, 2, "seed") != LUA_TNIL;
    if (!has_seed) {
        lua_settop(L, exp_idx);
        has_seed = lua_getfield(L, LUA_REGISTRYINDEX, REG_ARGS) == LUA_TTABLE && lua_getfield(L, -1, "seed") != LUA_TNIL;
    }
    if (has_seed) {
        if (lua_type(L, -1) != LUA_TNUMBER && lua_type(L, -1) != LUA_TSTRING)
            return pare_lua_error(L, "pare.experiment: seed must be a number");
        set_attr_value(L, e->f, "seed", lua_gettop(L));
    }
    lua_settop(L, exp_idx);
    return 1;
}

/* exp.name, exp.path, exp.plots_dir, then methods */
static int l_exp_index(lua_State *L)
{
    pare_exp *e = luaL_checkudata(L, 1, EXP_MT);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "name")) lua_pushstring(L, e->name);
    else if (!strcmp(k, "path")) lua_pushstring(L, e->path);
    else if (!strcmp(k, "plots_dir")) lua_pushstring(L, e->plots);
    else if (!strcmp(k, "closed")) lua_pushboolean(L, e->f == NULL);
    else {
        luaL_getmetatable(L, EXP_MT);
        lua_getfield(L, -1, "__methods");
        lua_getfield(L, -1, k);
    }
    return 1;
}

/* ---- tables from an experiment or a path ---- */

/* The file behind arg idx: an experiment (borrowed) or a path (opened read-only, closed by a box-like
 * userdata). Pushes one value (the anchor) in the path case. */
typedef struct file_anchor {
    pare_h5_file *f;
} file_anchor;

static int anchor_gc(lua_State *L)
{
    file_anchor *a = lua_touserdata(L, 1);
    pare_h5_close(a->f);
    a->f = NULL;
    return 0;
}

/* Close the file opened by file_arg for a path (now, not at the next garbage collection, so other
 * processes can open it at once). Anchors are the only plain userdata with a __gc of anchor_gc. */
static void close_anchors(lua_State *L)
{
    for (int i = 1; i <= lua_gettop(L); i++)
        if (lua_type(L, i) == LUA_TUSERDATA && lua_getmetatable(L, i)) {
            lua_getfield(L, -1, "__gc");
            int is_anchor = lua_tocfunction(L, -1) == anchor_gc;
            lua_pop(L, 2);
            if (is_anchor) {
                file_anchor *a = lua_touserdata(L, i);
                pare_h5_close(a->f);
                a->f = NULL;
            }
        }
}

static pare_h5_file *file_arg(lua_State *L, int idx, const char *fn)
{
    if (luaL_testudata(L, idx, EXP_MT)) return check_exp(L, idx)->f;
    if (lua_type(L, idx) != LUA_TSTRING) {
        pare_lua_error(L, "%s: expected an experiment or a file path, got a %s", fn, luaL_typename(L, idx));
        return NULL;
    }
    file_anchor *a = lua_newuserdatauv(L, sizeof *a, 0);
    a->f = NULL;
    lua_newtable(L);
    lua_pushcfunction(L, anchor_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    pare_status st = pare_h5_open(&a->f, lua_tostring(L, idx), PARE_H5_READ);
    if (st != PARE_OK) pare_lua_status_error(L, st);
    return a->f;
}

/* The table name at idx, or the file's only table. */
static const char *table_arg(lua_State *L, pare_h5_file *f, int idx, const char *fn)
{
    if (!lua_isnoneornil(L, idx)) return check_table_name(L, idx, fn);
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_table_names(f, &names, &n);
    push_names(L, st, names, n);
    if (n == 1) return names[0]; /* held by the box under the array */
    char list[2048];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < n && used < sizeof list; i++) used += (size_t)snprintf(list + used, sizeof list - used, i ? ", %s" : "%s", names[i]);
    pare_lua_error(L, "%s: %s has %s tables; name one (tables: %s)", fn, pare_h5_path(f), n ? "several" : "no", n ? list : "none");
    return NULL;
}

/* Push row r of t as a Lua table {column = value}. */
static void push_row(lua_State *L, const pare_table *t, int64_t r)
{
    lua_createtable(L, 0, t->ncols);
    for (int j = 0; j < t->ncols; j++) {
        push_cell(L, t->cols[j].type, t->cells[r * t->ncols + j]);
        lua_setfield(L, -2, t->cols[j].name);
    }
}

/* pare.table(exp_or_path [, table] [, {columns = {...}, headers = {...}, labels = bool, fmt = "%.4g",
 *            format = {col = "%.2f" | function(row) return text end}, csv = bool}]) → text
 * A column listed in `columns` that the table lacks is computed by its format function. The
 * printed table is a "view": real columns borrow the read cells, computed ones point at Lua strings
 * anchored in a table on the stack, so nothing leaks if a format function raises. */
static int l_table(lua_State *L)
{
    lua_settop(L, 3);
    pare_h5_file *f = file_arg(L, 1, "pare.table");
    const char *table = table_arg(L, f, 2, "pare.table");
    const int o = 3;
    int has_o = lua_istable(L, o);
    check_keys(L, o, "pare.table", "columns|headers|labels|fmt|format|formats|csv");
    pare_table *t = read_box(L, f, table);
    if (!t) return pare_lua_error(L, "pare.table: %s has no table '%s'", pare_h5_path(f), table);
    pare_table_fmt fmt = {0};
    int n = t->ncols;
    int colsidx = 0, fmtidx = 0, hdridx = 0;
    if (has_o) {
        fmt.style = opt_bool(L, o, "csv") ? PARE_TABLE_CSV : PARE_TABLE_MARKDOWN;
        fmt.use_labels = opt_bool(L, o, "labels");
        fmt.num_fmt = opt_string(L, o, "fmt", NULL);
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
                col_names(names, sizeof names, t->cols, t->ncols);
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
    box *b = push_box(L);
    pare_status st = pare_table_format(&b->text, &view, &fmt);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushstring(L, b->text);
    close_anchors(L);
    return 1;
}

static int l_print_table(lua_State *L)
{
    lua_pushcfunction(L, l_table);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

/* ---- plots ---- */

/* Plot table data according to the spec at idx into prefix; pushes the list of files and `rendered`. */
static int do_plot(lua_State *L, pare_h5_file *f, int spec, const char *prefix_dir, const char *stem, const char *fn)
{
    check_keys(L, spec, fn, "table|x|y|by|kind|logx|logy|title|name|xlabel|ylabel|out");
    const char *table = opt_string(L, spec, "table", NULL);
    if (!table) {
        lua_pushnil(L);
        table = table_arg(L, f, lua_gettop(L), fn);
    }
    if (!pare_name_ok(table)) return pare_lua_error(L, "%s: invalid table name '%s'", fn, table);
    pare_plot_spec ps = {0};
    const char *ys[32];
    ps.x = opt_string(L, spec, "x", NULL);
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
    ps.by = opt_string(L, spec, "by", NULL);
    ps.title = opt_string(L, spec, "title", NULL);
    ps.xlabel = opt_string(L, spec, "xlabel", NULL);
    ps.ylabel = opt_string(L, spec, "ylabel", NULL);
    ps.logx = opt_bool(L, spec, "logx");
    ps.logy = opt_bool(L, spec, "logy");
    ps.source = pare_h5_path(f);
    const char *kind = opt_string(L, spec, "kind", "linespoints");
    pare_plot_kind k;
    if (pare_plot_kind_parse(kind, &k) != PARE_OK) return pare_lua_status_error(L, PARE_EINVAL);
    ps.kind = k;
    /* The files' prefix: out = "dir/name" wins; else <plots>/<stem>-<name>. */
    char prefix[PARE_PATH_MAX];
    const char *out = opt_string(L, spec, "out", NULL);
    if (out) snprintf(prefix, sizeof prefix, "%s", out);
    else {
        char defname[PARE_COL_NAME_MAX * 3];
        const char *name = opt_string(L, spec, "name", NULL);
        if (!name) {
            snprintf(defname, sizeof defname, "%s-%s", table, ys[0]);
            name = defname;
        }
        if (!pare_name_ok(name)) return pare_lua_error(L, "%s: invalid plot name '%s'; give name = 'short-name'", fn, name);
        snprintf(prefix, sizeof prefix, "%s/%s-%s", prefix_dir, stem, name);
    }
    pare_table *t = read_box(L, f, table);
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
static int l_exp_plot(lua_State *L)
{
    lua_settop(L, 2);
    pare_exp *e = check_exp(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    return do_plot(L, e->f, 2, e->plots, e->name, "exp:plot");
}

/* pare.plot(path_or_exp, {... as exp:plot, plus out = "plots/name"}) */
static int l_plot(lua_State *L)
{
    lua_settop(L, 2);
    pare_h5_file *f = file_arg(L, 1, "pare.plot");
    luaL_checktype(L, 2, LUA_TTABLE);
    char stem[PARE_COL_NAME_MAX];
    const char *p = pare_h5_path(f), *slash = strrchr(p, '/');
    snprintf(stem, sizeof stem, "%s", slash ? slash + 1 : p);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    if (luaL_testudata(L, 1, EXP_MT)) return do_plot(L, f, 2, ((pare_exp *)lua_touserdata(L, 1))->plots, stem, "pare.plot");
    int nret = do_plot(L, f, 2, "plots", stem, "pare.plot");
    close_anchors(L);
    return nret;
}

/* exp:print(table [, opts]) */
static int l_exp_print(lua_State *L)
{
    check_exp(L, 1);
    return l_print_table(L);
}

/* ---- stats ---- */

/* The numbers of the array at idx, in an anchored userdata. */
static double *check_numbers(lua_State *L, int idx, size_t *n, const char *fn)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    double *x = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *x, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int isnum;
        x[i - 1] = lua_tonumberx(L, -1, &isnum);
        if (!isnum) {
            char buf[64];
            pare_lua_error(L, "%s: element %d is %s, not a number", fn, (int)i, pare_lua_describe(L, -1, buf, sizeof buf));
        }
        lua_pop(L, 1);
    }
    *n = (size_t)len;
    return x;
}

static int l_stats_median(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.median");
    lua_pushnumber(L, pare_stats_median(x, n));
    return 1;
}

static int l_stats_mean(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.mean");
    lua_pushnumber(L, pare_stats_mean(x, n));
    return 1;
}

static int l_stats_stddev(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.stddev");
    lua_pushnumber(L, pare_stats_stddev(x, n));
    return 1;
}

static int l_stats_quantile(lua_State *L)
{
    lua_settop(L, 2);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.quantile");
    double q = luaL_checknumber(L, 2);
    if (!(q >= 0 && q <= 1)) return pare_lua_error(L, "pare.stats.quantile: q must be in [0, 1]");
    lua_pushnumber(L, pare_stats_quantile(x, n, q));
    return 1;
}

static const pare_opt_spec bootstrap_opts[] = {
    {"level", PARE_OPT_FLOAT, "0.95", 0.5, 0.9999, NULL, "confidence level of the interval"},
    {"resamples", PARE_OPT_INT, "2000", 10, 1e7, NULL, "number of bootstrap resamples"},
    {"seed", PARE_OPT_INT, "1", 0, 4294967295.0, NULL, "seed of GSL's mt19937"},
    {"stat", PARE_OPT_ENUM, "median", 0, 0, "median|mean", "statistic whose interval is estimated"},
};
static const pare_schema bootstrap_schema = {"bootstrap_ci", "percentile bootstrap confidence interval", bootstrap_opts,
                                             (int)(sizeof bootstrap_opts / sizeof bootstrap_opts[0])};

/* pare.stats.bootstrap_ci(t [, {level=0.95, resamples=2000, seed=1, stat="median"}]) → lo, hi */
static int l_stats_bootstrap(lua_State *L)
{
    lua_settop(L, 2);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.bootstrap_ci");
    pare_options o;
    pare_lua_opts(L, 2, &bootstrap_schema, &o);
    double lo, hi;
    pare_stat stat = pare_opt_num(&o, "stat") == 0 ? PARE_STAT_MEDIAN : PARE_STAT_MEAN;
    pare_status st = pare_stats_bootstrap_ci_stat(x, n, stat, pare_opt_num(&o, "level"), pare_opt_int(&o, "resamples"),
                                             (unsigned long)pare_opt_num(&o, "seed"), &lo, &hi);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushnumber(L, lo);
    lua_pushnumber(L, hi);
    return 2;
}

static int l_clock(lua_State *L)
{
    lua_pushnumber(L, (double)pare_now_ns() * 1e-9);
    return 1;
}

/* __index of the module: pare.<name> loads lua/pare/<name>.lua on first use (pare.sweep, pare.tap). */
static int l_module_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    const char *k = lua_tostring(L, 2);
    if (!pare_name_ok(k)) return 0;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushfstring(L, "pare.%s", k);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1)) return 0; /* no such helper: plain nil */
    lua_getglobal(L, "require");
    lua_pushfstring(L, "pare.%s", k);
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, k); /* rawset not needed: __newindex is not defined */
    return 1;
}

static const luaL_Reg exp_methods[] = {
    {"record", l_exp_record}, {"table", l_exp_table},       {"rows", l_exp_rows},   {"has", l_exp_has},
    {"columns", l_exp_columns}, {"tables", l_exp_tables}, {"set_seed", l_exp_set_seed}, {"attr", l_exp_attr},
    {"attrs", l_exp_attrs},   {"plot", l_exp_plot},         {"print", l_exp_print}, {"close", l_exp_close},
    {NULL, NULL}};

static const luaL_Reg stats_funcs[] = {{"median", l_stats_median},     {"mean", l_stats_mean},
                                       {"stddev", l_stats_stddev},     {"quantile", l_stats_quantile},
                                       {"bootstrap_ci", l_stats_bootstrap}, {NULL, NULL}};

static const luaL_Reg pare_funcs[] = {{"experiment", l_experiment}, {"table", l_table}, {"print_table", l_print_table},
                                      {"plot", l_plot},             {"clock", l_clock}, {NULL, NULL}};

int luaopen_pare(lua_State *L)
{
    if (luaL_newmetatable(L, EXP_MT)) {
        lua_pushcfunction(L, l_exp_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_exp_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_exp_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_exp_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, exp_methods);
        lua_setfield(L, -2, "__methods");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);

    luaL_newlib(L, pare_funcs);
    luaL_newlib(L, stats_funcs);
    lua_setfield(L, -2, "stats");
    lua_pushstring(L, pare_version());
    lua_setfield(L, -2, "version");
    lua_pushstring(L, pare_git_commit());
    lua_setfield(L, -2, "git_commit");
    if (lua_getfield(L, LUA_REGISTRYINDEX, REG_ARGS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_setfield(L, -2, "args");
    lua_newtable(L);
    lua_pushcfunction(L, l_module_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    int top = lua_gettop(L);
    pare_lua_register_engine(L);
    lua_settop(L, top);
    return 1;
}

/* ---- the runner ---- */

/* Append s[0..n) to a JSON text in the luaL_Buffer, as a quoted string. */
static void json_string(luaL_Buffer *b, const char *s, size_t n)
{
    luaL_addchar(b, '"');
    for (const char *end = s + n; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            luaL_addstring(b, esc);
        } else luaL_addchar(b, (char)c);
    }
    luaL_addchar(b, '"');
}

static int is_key(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* Push the Lua value of an argument's text: a number if it looks like one, true/false, else the string. */
static void push_arg_value(lua_State *L, const char *v)
{
    if (!strcmp(v, "true")) lua_pushboolean(L, 1);
    else if (!strcmp(v, "false")) lua_pushboolean(L, 0);
    else if (lua_stringtonumber(L, v) == 0) lua_pushstring(L, v);
}

static int cmp_args(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct run_ctx {
    const char *script;
    int nargs;
    char **args;
    int code;
} run_ctx;

/* package.path: <repo>/lua/?.lua;<repo>/lua/?/init.lua;<script dir>/?.lua;./lua/?.lua;./lua/?/init.lua;<default> */
static void set_package_path(lua_State *L, const char *script)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char exe[PARE_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0'; /* build/ */
            char repo[PARE_PATH_MAX + 4], real[PARE_PATH_MAX];
            snprintf(repo, sizeof repo, "%s/..", exe);
            const char *r = realpath(repo, real) ? real : repo;
            lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", r, r);
            luaL_addvalue(&b);
        }
    }
    const char *slash = strrchr(script, '/');
    if (slash) lua_pushfstring(L, "%s/?.lua;", lua_pushlstring(L, script, (size_t)(slash - script)));
    else lua_pushstring(L, "./?.lua;");
    if (slash) lua_remove(L, -2);
    luaL_addvalue(&b);
    luaL_addstring(&b, "./lua/?.lua;./lua/?/init.lua;");
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_remove(L, -2);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_getglobal(L, "package");
    lua_insert(L, -2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Everything that touches Lua runs here, under lua_pcall, so an out-of-memory cannot panic. */
static int run_protected(lua_State *L)
{
    run_ctx *c = lua_touserdata(L, 1);
    luaL_openlibs(L);
    set_package_path(L, c->script);

    /* pare.args, arg, and the provenance of this run */
    lua_newtable(L);
    int args = lua_gettop(L);
    lua_createtable(L, c->nargs, 1);
    int argt = lua_gettop(L);
    lua_pushstring(L, c->script);
    lua_rawseti(L, argt, 0);
    char **sorted = lua_newuserdatauv(L, (size_t)(c->nargs + 1) * sizeof *sorted, 0);
    int npos = 0;
    for (int i = 0; i < c->nargs; i++) {
        const char *a = c->args[i];
        lua_pushstring(L, a);
        lua_rawseti(L, argt, i + 1);
        const char *eq = strchr(a, '=');
        sorted[i] = c->args[i];
        if (eq && is_key(a, (size_t)(eq - a))) {
            lua_pushlstring(L, a, (size_t)(eq - a));
            push_arg_value(L, eq + 1);
            lua_settable(L, args);
        } else {
            push_arg_value(L, a);
            lua_rawseti(L, args, ++npos);
        }
    }
    lua_pushvalue(L, argt);
    lua_setglobal(L, "arg");
    lua_pushvalue(L, args);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_ARGS);
    lua_pushstring(L, c->script);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_SCRIPT);
    /* params: {"key": value, ..., "_positional": [...]} with keys sorted */
    qsort(sorted, (size_t)c->nargs, sizeof *sorted, cmp_args);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '{');
    int first = 1;
    for (int i = 0; i < c->nargs; i++) {
        const char *a = sorted[i], *eq = strchr(a, '=');
        if (!eq || !is_key(a, (size_t)(eq - a))) continue;
        if (!first) luaL_addstring(&b, ", ");
        first = 0;
        json_string(&b, a, (size_t)(eq - a));
        luaL_addstring(&b, ": ");
        int isnum = lua_stringtonumber(L, eq + 1) != 0;
        if (isnum) lua_pop(L, 1);
        if (isnum || !strcmp(eq + 1, "true") || !strcmp(eq + 1, "false")) luaL_addstring(&b, eq + 1);
        else json_string(&b, eq + 1, strlen(eq + 1));
    }
    if (npos) {
        if (!first) luaL_addstring(&b, ", ");
        luaL_addstring(&b, "\"_positional\": [");
        int k = 0;
        for (int i = 0; i < c->nargs; i++) {
            const char *a = c->args[i], *eq = strchr(a, '=');
            if (eq && is_key(a, (size_t)(eq - a))) continue;
            if (k++) luaL_addstring(&b, ", ");
            json_string(&b, a, strlen(a));
        }
        luaL_addchar(&b, ']');
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_PARAMS);

    /* require "pare" works, and the global is there */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_pare);
    lua_setfield(L, -2, "pare");
    lua_pop(L, 1);
    luaL_requiref(L, "pare", luaopen_pare, 1);
    lua_pop(L, 1);

    lua_pushcfunction(L, msghandler);
    int h = lua_gettop(L);
    int st = luaL_loadfile(L, c->script);
    if (st != LUA_OK) {
        fprintf(stderr, "pare: %s\n", lua_tostring(L, -1));
        c->code = st == LUA_ERRSYNTAX ? PARE_RUN_SYNTAX : st == LUA_ERRFILE ? PARE_RUN_NOFILE : PARE_RUN_ERROR;
        return 0;
    }
    st = lua_pcall(L, 0, 0, h);
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "pare: %s\n", msg ? msg : "(error without a message)");
        c->code = PARE_RUN_ERROR;
        return 0;
    }
    c->code = PARE_RUN_OK;
    return 0;
}

int pare_lua_run_file(const char *script, int nargs, char **args)
{
    FILE *probe = fopen(script, "r");
    if (!probe) {
        fprintf(stderr, "pare run: %s: %s\n", script, strerror(errno));
        return PARE_RUN_NOFILE;
    }
    fclose(probe);
    struct stat st;
    if (stat(script, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "pare run: %s: is a directory, not a Lua script\n", script);
        return PARE_RUN_NOFILE;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "pare run: cannot create a Lua state (out of memory)\n");
        return PARE_RUN_ERROR;
    }
    run_ctx c = {script, nargs, args, PARE_RUN_ERROR};
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "pare run: %s\n", msg ? msg : "error while setting up Lua");
        c.code = PARE_RUN_ERROR;
    }
    fflush(stdout);
    lua_close(L); /* closes experiments still open (__gc) */
    return c.code;
}
