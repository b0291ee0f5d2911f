/* lua_harness.c — the `pare` Lua module's table, the `pare run` script runner, and the helpers the
 * harness files share.
 *
 * Implements: luaopen_pare (the module table: pare.experiment, pare.table, pare.print_table,
 * pare.plot, pare.stats, pare.clock, pare.version, pare.git_commit, pare.args, lazy loading of
 * lua/pare/NAME.lua as pare.NAME — sweep, tap — then the engine's functions), pare_lua_run_file
 * (state setup, package.path, args, exit codes), and the shared helpers of lua_harness_internal.h:
 * boxes, option tables, table names, cells, and the file behind "an experiment or a path".
 *
 * The rest of the harness lives beside it, one concept a file: lua_experiment.c (pare.experiment and
 * its methods, provenance), lua_tablefmt.c (pare.table, pare.print_table, exp:print), lua_plot.c
 * (pare.plot, exp:plot), lua_stats.c (pare.stats).
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/timer.h"
#include "io/h5table.h"
#include "io/version.h"
#include "lua/lua_engine.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

/* ---- boxes: malloc'd results anchored in Lua so an error cannot leak them ---- */

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

box *pare_lua_push_box(lua_State *L)
{
    box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BOX_MT);
    return b;
}

/* ---- small helpers shared by the harness files ---- */

const char *pare_lua_check_table_name(lua_State *L, int idx, const char *fn)
{
    const char *t = luaL_checkstring(L, idx);
    if (!pare_name_ok(t)) pare_lua_error(L, "%s: invalid table name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)", fn, t);
    return t;
}

void pare_lua_col_names(char *buf, size_t n, const pare_col *cols, int ncols)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int j = 0; j < ncols && used < n; j++) used += (size_t)snprintf(buf + used, n - used, j ? ", %s" : "%s", cols[j].name);
}

/* Push a cell as a Lua value; a missing integer is nil. */
void pare_lua_push_cell(lua_State *L, pare_col_type t, pare_cell c)
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
pare_table *pare_lua_read_box(lua_State *L, pare_h5_file *f, const char *table)
{
    box *b = pare_lua_push_box(L);
    if (!pare_h5_table_exists(f, table)) return NULL;
    pare_status st = pare_h5_table_read(f, table, &b->t);
    if (st != PARE_OK) pare_lua_status_error(L, st);
    return &b->t;
}

/* Push an array of names from a pare_h5_*_names result, boxed while converting. */
int pare_lua_push_names(lua_State *L, pare_status st, char **names, int n)
{
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    box *b = pare_lua_push_box(L);
    b->names = names;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

const char *pare_lua_opt_string(lua_State *L, int idx, const char *key, const char *def)
{
    if (lua_isnoneornil(L, idx)) return def;
    int t = lua_getfield(L, idx, key);
    const char *v = t == LUA_TNIL ? def : lua_tostring(L, -1);
    if (t != LUA_TNIL && t != LUA_TSTRING) pare_lua_error(L, "option '%s' must be a string", key);
    lua_pop(L, 1); /* the string stays alive in the options table */
    return v;
}

int pare_lua_opt_bool(lua_State *L, int idx, const char *key)
{
    if (lua_isnoneornil(L, idx)) return 0;
    lua_getfield(L, idx, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Reject keys of the options table at idx that are not in valid ("a|b|c"). */
void pare_lua_check_keys(lua_State *L, int idx, const char *fn, const char *valid)
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

/* Close the file opened by pare_lua_file_arg for a path (now, not at the next garbage collection, so other
 * processes can open it at once). Anchors are the only plain userdata with a __gc of anchor_gc. */
void pare_lua_close_anchors(lua_State *L)
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

pare_h5_file *pare_lua_file_arg(lua_State *L, int idx, const char *fn)
{
    if (luaL_testudata(L, idx, EXP_MT)) return pare_lua_check_exp(L, idx)->f;
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
const char *pare_lua_table_arg(lua_State *L, pare_h5_file *f, int idx, const char *fn)
{
    if (!lua_isnoneornil(L, idx)) return pare_lua_check_table_name(L, idx, fn);
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_table_names(f, &names, &n);
    pare_lua_push_names(L, st, names, n);
    if (n == 1) return names[0]; /* held by the box under the array */
    char list[2048];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < n && used < sizeof list; i++) used += (size_t)snprintf(list + used, sizeof list - used, i ? ", %s" : "%s", names[i]);
    pare_lua_error(L, "%s: %s has %s tables; name one (tables: %s)", fn, pare_h5_path(f), n ? "several" : "no", n ? list : "none");
    return NULL;
}

/* ---- the module ---- */

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

static const luaL_Reg pare_funcs[] = {{"experiment", pare_lua_experiment}, {"table", pare_lua_table},
                                      {"print_table", pare_lua_print_table}, {"plot", pare_lua_plot}, {"render", pare_lua_render},
                                      {"clock", l_clock},                   {NULL, NULL}};

int luaopen_pare(lua_State *L)
{
    pare_lua_open_experiment(L);
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);

    luaL_newlib(L, pare_funcs);
    pare_lua_push_stats(L);
    lua_setfield(L, -2, "stats");
    pare_lua_push_mpi(L);
    lua_setfield(L, -2, "mpi");
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
