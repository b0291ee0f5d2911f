/* lua_util.c — shared helpers of the Lua bindings (see lua_util.h). */
#include "lua/lua_util.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pare_lua_error(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    luaL_where(L, 1);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap); /* Lua's own formatter: %s %d %f %p %c %U %% only */
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

int pare_lua_status_error(lua_State *L, pare_status s)
{
    const char *msg = pare_errmsg();
    luaL_where(L, 1);
    lua_pushstring(L, msg && msg[0] ? msg : pare_status_name(s));
    lua_concat(L, 2);
    return lua_error(L);
}

const char *pare_lua_describe(lua_State *L, int idx, char *buf, size_t n)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) snprintf(buf, n, "%lld", (long long)lua_tointeger(L, idx));
        else snprintf(buf, n, "%.17g", lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: snprintf(buf, n, "'%s'", lua_tostring(L, idx)); break;
    case LUA_TBOOLEAN: snprintf(buf, n, "%s", lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNIL: snprintf(buf, n, "nil"); break;
    default: snprintf(buf, n, "a %s", luaL_typename(L, idx)); break;
    }
    return buf;
}

static int kv_cmp(const void *a, const void *b) { return strcmp(((const pare_kv *)a)->key, ((const pare_kv *)b)->key); }

int pare_lua_tokv(lua_State *L, int idx, pare_kv *kv, int max, const char *what)
{
    idx = lua_absindex(L, idx);
    if (lua_isnoneornil(L, idx)) return 0;
    if (!lua_istable(L, idx)) return pare_lua_error(L, "%s: options must be a table of key = value, got a %s", what, luaL_typename(L, idx));
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char buf[64];
        if (lua_type(L, -2) != LUA_TSTRING)
            return pare_lua_error(L, "%s: options must be key = value pairs; got the key %s", what, pare_lua_describe(L, -2, buf, sizeof buf));
        const char *key = lua_tostring(L, -2);
        if (n >= max) return pare_lua_error(L, "%s: too many options (at most %d)", what, max);
        kv[n].key = key;
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER:
            kv[n].kind = PARE_KV_NUM;
            kv[n].num = lua_tonumber(L, -1);
            kv[n].str = NULL;
            break;
        case LUA_TBOOLEAN:
            kv[n].kind = PARE_KV_BOOL;
            kv[n].num = lua_toboolean(L, -1);
            kv[n].str = NULL;
            break;
        case LUA_TSTRING:
            kv[n].kind = PARE_KV_STR;
            kv[n].str = lua_tostring(L, -1);
            kv[n].num = 0;
            break;
        default:
            return pare_lua_error(L, "%s: option '%s' must be a number, string or boolean, got %s", what, key,
                                  pare_lua_describe(L, -1, buf, sizeof buf));
        }
        n++;
        lua_pop(L, 1);
    }
    qsort(kv, (size_t)n, sizeof *kv, kv_cmp);
    return n;
}

int pare_lua_table_to_kv(lua_State *L, int idx, pare_kv *kv, int max, const pare_schema *s)
{
    return pare_lua_tokv(L, idx, kv, max, s ? s->name : "options");
}

void pare_lua_opts(lua_State *L, int idx, const pare_schema *s, pare_options *out)
{
    pare_kv kv[PARE_MAX_OPTS];
    int n = pare_lua_tokv(L, idx, kv, PARE_MAX_OPTS, s->name);
    pare_status st = pare_opts_resolve(out, s, kv, n);
    if (st != PARE_OK) pare_lua_status_error(L, st);
}

void pare_lua_push_opts(lua_State *L, const pare_options *o)
{
    const pare_schema *s = o->schema;
    lua_createtable(L, 0, s->nopts);
    for (int i = 0; i < s->nopts; i++) {
        const pare_opt_spec *spec = &s->opts[i];
        const pare_optval *v = &o->v[i];
        switch (spec->type) {
        case PARE_OPT_INT: lua_pushinteger(L, (lua_Integer)v->num); break;
        case PARE_OPT_FLOAT: lua_pushnumber(L, v->num); break;
        case PARE_OPT_BOOL: lua_pushboolean(L, v->num != 0); break;
        default: lua_pushstring(L, v->str); break;
        }
        lua_setfield(L, -2, spec->key);
    }
}

void pare_lua_push_keys(lua_State *L, const pare_schema *s)
{
    lua_createtable(L, s->nopts, 0);
    for (int i = 0; i < s->nopts; i++) {
        lua_pushstring(L, s->opts[i].key);
        lua_rawseti(L, -2, i + 1);
    }
}

__attribute__((weak)) const pare_schema *pare_schema_lookup(const char *name)
{
    (void)name;
    return NULL;
}

__attribute__((weak)) const char *pare_schema_names(char *buf, size_t n)
{
    if (n) buf[0] = '\0';
    return buf;
}
