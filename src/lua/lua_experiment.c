/* lua_experiment.c — pare.experiment: a userdata over one HDF5 results file, and its provenance.
 *
 * Implements: pare.experiment(name [, {dir, plots, seed, fresh}]) and the methods exp:table (declare
 * columns, units, labels, types), exp:record (append a row; the first row fixes the columns),
 * exp:rows, exp:has, exp:columns, exp:tables, exp:set_seed, exp:attr, exp:attrs, exp:close, the
 * fields exp.name / path / plots_dir / closed, and the provenance attributes written when a file is
 * opened (date, script and its SHA-256, params, version, git commit, CPU, kernels, host).
 *
 * Under mpirun (more than one rank, src/dist/dist.h) rank 0 is the one writer: pare.experiment is a
 * collective there (rank 0 opens the file, then the others open it read-only as followers, whose
 * writing methods and exp:print / exp:plot do nothing, since every rank runs the same script).
 *
 * Does not: print or plot (exp:print is in lua_tablefmt.c, exp:plot in lua_plot.c; both are listed
 * in the method table here), or touch HDF5 directly (src/io/h5table.c does).
 *
 * Entry points (lua_harness_internal.h): pare_lua_open_experiment (the metatable, from luaopen_pare),
 * pare_lua_experiment (pare.experiment), pare_lua_check_exp.
 */
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "dist/dist.h"
#include "io/h5table.h"
#include "io/sha256.h"
#include "io/version.h"
#include "kernels/gemm.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

static pare_status exp_close(pare_exp *e)
{
    while (e->schemas) {
        exp_schema *s = e->schemas;
        e->schemas = s->next;
        free(s->cols);
        free(s);
    }
    pare_status st = pare_h5_close(e->f);
    e->f = NULL;
    return st;
}

pare_exp *pare_lua_check_exp(lua_State *L, int idx)
{
    pare_exp *e = luaL_checkudata(L, idx, EXP_MT);
    if (!e->f) pare_lua_error(L, "experiment '%s' is closed", e->name);
    if (e->follower) { /* rank 0 replaces the file after every row: read the newest one */
        pare_h5_close(e->f);
        e->f = NULL;
        pare_status s = pare_h5_open(&e->f, e->path, PARE_H5_READ);
        if (s != PARE_OK) pare_lua_status_error(L, s);
    }
    return e;
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
    pare_exp *e = pare_lua_check_exp(L, 1);
    const char *table = pare_lua_check_table_name(L, 2, "exp:record");
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
            pare_lua_col_names(names, sizeof names, s->cols, s->ncols);
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
    pare_exp *e = pare_lua_check_exp(L, 1);
    const char *table = pare_lua_check_table_name(L, 2, "exp:table");
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
                pare_lua_col_names(names, sizeof names, s->cols, s->ncols);
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
        pare_status st = pare_h5_commit(e->f);
        if (st != PARE_OK) return pare_lua_status_error(L, st);
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, table);
    lua_settop(L, 1);
    return 1;
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
            pare_lua_col_names(names, sizeof names, t->cols, t->ncols);
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
    pare_exp *e = pare_lua_check_exp(L, 1);
    const char *table = pare_lua_check_table_name(L, 2, "exp:rows");
    pare_table *t = pare_lua_read_box(L, e->f, table);
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
            pare_lua_push_cell(L, t->cols[j].type, t->cells[r * t->ncols + j]);
            lua_setfield(L, -2, t->cols[j].name);
        }
        lua_rawseti(L, out, ++n);
    }
    return 1;
}

/* exp:drop(table) → true if it existed: remove a table, e.g. a summary derived from other tables that a
 * resumed run rewrites whole. */
static int l_exp_drop(lua_State *L)
{
    pare_exp *e = pare_lua_check_exp(L, 1);
    const char *table = pare_lua_check_table_name(L, 2, "exp:drop");
    if (!pare_h5_table_exists(e->f, table)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    pare_status st = pare_h5_table_drop(e->f, table);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

/* exp:has(table, {key = value, ...}) → boolean */
static int l_exp_has(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = pare_lua_check_exp(L, 1);
    const char *table = pare_lua_check_table_name(L, 2, "exp:has");
    luaL_checktype(L, 3, LUA_TTABLE);
    pare_table *t = pare_lua_read_box(L, e->f, table);
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
    pare_exp *e = pare_lua_check_exp(L, 1);
    const char *table = pare_lua_check_table_name(L, 2, "exp:columns");
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

static int l_exp_tables(lua_State *L)
{
    pare_exp *e = pare_lua_check_exp(L, 1);
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_table_names(e->f, &names, &n);
    return pare_lua_push_names(L, st, names, n);
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
    if (st == PARE_OK) st = pare_h5_commit(f);
    if (st != PARE_OK) pare_lua_status_error(L, st);
}

/* exp:set_seed(n) */
static int l_exp_set_seed(lua_State *L)
{
    lua_settop(L, 2);
    pare_exp *e = pare_lua_check_exp(L, 1);
    luaL_checknumber(L, 2);
    set_attr_value(L, e->f, "seed", 2);
    lua_settop(L, 1);
    return 1;
}

/* exp:attr(key) → value (string) or nil; exp:attr(key, value) sets a file attribute. */
static int l_exp_attr(lua_State *L)
{
    lua_settop(L, 3);
    pare_exp *e = pare_lua_check_exp(L, 1);
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
    box *b = pare_lua_push_box(L);
    b->text = v;
    lua_pushstring(L, v);
    return 1;
}

/* exp:attrs() → {key = text} of all root attributes */
static int l_exp_attrs(lua_State *L)
{
    pare_exp *e = pare_lua_check_exp(L, 1);
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_attr_names(e->f, "/", &names, &n);
    pare_lua_push_names(L, st, names, n);
    int arr = lua_gettop(L);
    lua_newtable(L);
    for (int i = 1; i <= n; i++) {
        lua_geti(L, arr, i);
        char *v = NULL;
        if (pare_h5_attr_get(e->f, "/", lua_tostring(L, -1), &v) == PARE_OK) {
            box *b = pare_lua_push_box(L);
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
    if (exp_close(e) != PARE_OK) return pare_lua_status_error(L, PARE_EIO); /* the message is kept */
    return 0;
}

/* __gc: nothing to raise to; what a commit at collection fails to save was never recorded as done. */
static int l_exp_gc(lua_State *L)
{
    exp_close(luaL_checkudata(L, 1, EXP_MT));
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
    if (script && pare_sha256_file(hex, script) == PARE_OK) {
        char *old = NULL; /* resuming a file another version of the script wrote: say so once */
        if (!created && pare_h5_attr_get(f, "/", "script_sha256", &old) == PARE_OK && strcmp(old, hex) != 0)
            fprintf(stderr, "pare: %s was written by another version of %s; its rows are kept and sweeps skip "
                            "them (pare.experiment(name, {fresh = true}) starts over)\n", e->path, script);
        free(old);
        PARE_TRY(pare_h5_attr_set_str(f, "/", "script_sha256", hex));
    }
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

/* pare.experiment(name [, {dir = "results", plots = "plots", seed = n, fresh = false}]) */
int pare_lua_experiment(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    if (!pare_name_ok(name))
        return pare_lua_error(L, "pare.experiment: invalid name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)", name);
    pare_lua_check_keys(L, 2, "pare.experiment", "dir|plots|seed|fresh");
    const char *dir = pare_lua_opt_string(L, 2, "dir", "results");
    const char *plots = pare_lua_opt_string(L, 2, "plots", "plots");
    int fresh = pare_lua_opt_bool(L, 2, "fresh");
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
    /* under mpirun: rank 0 opens (and creates) the file first, the others follow it read-only */
    int collective = pare_dist_size() > 1 && !pare_dist_local();
    if (collective && pare_dist_rank() > 0) {
        pare_status s = pare_dist_barrier();
        if (s == PARE_OK) s = pare_h5_open(&e->f, e->path, PARE_H5_READ);
        if (s != PARE_OK) return pare_lua_status_error(L, s);
        e->follower = 1;
        lua_settop(L, exp_idx);
        return 1;
    }
    struct stat st;
    int created = fresh || stat(e->path, &st) != 0;
    pare_status s = pare_h5_open(&e->f, e->path, fresh ? PARE_H5_FRESH : PARE_H5_APPEND);
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    if ((s = write_provenance(L, e, created)) != PARE_OK || (s = pare_h5_commit(e->f)) != PARE_OK) return pare_lua_status_error(L, s);
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
    if (collective && (s = pare_dist_barrier()) != PARE_OK) return pare_lua_status_error(L, s);
    return 1;
}

/* A follower's writing methods: nothing (rank 0 does it); exp:attr(k) still reads. */
static int l_follower_noop(lua_State *L)
{
    (void)L;
    return 0;
}
static int l_follower_attr(lua_State *L) { return lua_gettop(L) >= 3 ? 0 : l_exp_attr(L); }

/* exp.name, exp.path, exp.plots_dir, then methods */
static int l_exp_index(lua_State *L)
{
    pare_exp *e = luaL_checkudata(L, 1, EXP_MT);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "name")) lua_pushstring(L, e->name);
    else if (!strcmp(k, "path")) lua_pushstring(L, e->path);
    else if (!strcmp(k, "plots_dir")) lua_pushstring(L, e->plots);
    else if (!strcmp(k, "closed")) lua_pushboolean(L, e->f == NULL);
    else if (!strcmp(k, "follower")) lua_pushboolean(L, e->follower);
    else if (e->follower && (!strcmp(k, "record") || !strcmp(k, "table") || !strcmp(k, "drop") || !strcmp(k, "set_seed") ||
                             !strcmp(k, "plot") || !strcmp(k, "print")))
        lua_pushcfunction(L, l_follower_noop);
    else if (e->follower && !strcmp(k, "attr"))
        lua_pushcfunction(L, l_follower_attr);
    else {
        luaL_getmetatable(L, EXP_MT);
        lua_getfield(L, -1, "__methods");
        lua_getfield(L, -1, k);
    }
    return 1;
}

static const luaL_Reg exp_methods[] = {
    {"record", l_exp_record},   {"table", l_exp_table},   {"drop", l_exp_drop},   {"rows", l_exp_rows},           {"has", l_exp_has},
    {"columns", l_exp_columns}, {"tables", l_exp_tables}, {"set_seed", l_exp_set_seed},   {"attr", l_exp_attr},
    {"attrs", l_exp_attrs},     {"plot", pare_lua_exp_plot}, {"print", pare_lua_exp_print}, {"close", l_exp_close},
    {NULL, NULL}};

/* Register the experiment metatable (methods under __index, __gc/__close that are safe twice). */
void pare_lua_open_experiment(lua_State *L)
{
    if (luaL_newmetatable(L, EXP_MT)) {
        lua_pushcfunction(L, l_exp_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_exp_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_exp_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_exp_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, exp_methods);
        lua_setfield(L, -2, "__methods");
    }
    lua_pop(L, 1);
}
