/* lua_util.h — helpers shared by the Lua bindings (harness and engine): errors that name the
 * script file and line, Lua tables turned into validated option structs, schema lookup.
 *
 * Errors raised here carry luaL_where(L, 1): the Lua line that called the binding, so a user
 * reading "experiments/x.lua:12: smoothquant: unknown option 'alpah' (valid: alpha, ...)" knows
 * where to look. Lua errors longjmp: call these only when no unanchored memory is held.
 *
 *     static int l_apply(lua_State *L) {
 *         pare_options o;
 *         pare_lua_opts(L, 3, schema, &o);           // raises on unknown key / bad type / range
 *         pare_status s = pare_apply(..., &o);
 *         if (s != PARE_OK) return pare_lua_status_error(L, s);
 *         ...
 *     }
 */
#ifndef PARE_LUA_UTIL_H
#define PARE_LUA_UTIL_H

#include <lua.h>
#include <stddef.h>

#include "core/options.h"
#include "core/status.h"

/* Raise "file:line: <formatted message>". Never returns (typed int for `return pare_lua_error(...)`). */
int pare_lua_error(lua_State *L, const char *fmt, ...) PARE_PRINTF(2, 3);
/* Raise "file:line: <pare_errmsg()>" for a failed status. */
int pare_lua_status_error(lua_State *L, pare_status s);

/* Convert the Lua table at idx (or nil: 0 pairs) into kv[0..max), sorted by key so messages are
 * deterministic. Keys must be strings; values numbers, strings or booleans; anything else raises an
 * error naming `what` and the key. Strings point into Lua strings owned by the table: valid while the
 * table is alive and unmodified. Returns the count. */
int pare_lua_tokv(lua_State *L, int idx, pare_kv *kv, int max, const char *what);
/* The same, naming the schema in messages (s may be NULL). */
int pare_lua_table_to_kv(lua_State *L, int idx, pare_kv *kv, int max, const pare_schema *s);
/* pare_lua_tokv + pare_opts_resolve: fills out or raises "file:line: <schema>: unknown option 'x'
 * (valid: a, b, c)" and the like. */
void pare_lua_opts(lua_State *L, int idx, const pare_schema *s, pare_options *out);
/* Push the resolved options as a Lua table {key = value} (numbers, booleans, strings). */
void pare_lua_push_opts(lua_State *L, const pare_options *o);
/* Push an array of the schema's keys, in schema order. */
void pare_lua_push_keys(lua_State *L, const pare_schema *s);

/* A Lua value at idx as text for messages ("0.5", "'abc'", "true", "a table"). */
const char *pare_lua_describe(lua_State *L, int idx, char *buf, size_t n);

/* Registered schemas (passes, tasks, models), provided by the engine. The harness links without the
 * engine through weak defaults that know no schema: lookup returns NULL, names writes "". A strong
 * definition must live in an object file that is linked anyway (e.g. lua_engine.c), since a weak
 * definition already satisfies the linker and it will not pull another archive member for it. */
const pare_schema *pare_schema_lookup(const char *name);
/* "dynamic_int8, smoothquant, ..." into buf; returns buf. */
const char *pare_schema_names(char *buf, size_t n);

#endif
