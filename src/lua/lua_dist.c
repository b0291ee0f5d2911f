/* lua_dist.c — pare.mpi: which rank a script is among how many, a few collectives for scripts, and the
 * work-queue calls lua/pare/sweep.lua uses to spread a sweep's points over the ranks (src/dist/dist.h).
 *
 *     if pare.mpi.rank() == 0 then print("I write the results") end
 *     local total = pare.mpi.allreduce_sum(my_count)       -- every rank gets the sum
 *     local cfg = pare.mpi.bcast(rank0_text)               -- rank 0's value everywhere
 *
 * Public: available (this build has MPI), library, rank(), size(), active() (size > 1), barrier(),
 * bcast(v [, root]) for nil/boolean/number/string, allreduce_sum(number or list of numbers) in double,
 * local_mode([on]) (read, or set and return the previous), data_parallel().
 * Private to sweep.lua (underscored): _queue_begin, _queue_take, _queue_rows, _queue_drained,
 * _queue_end, _queue_ask.
 *
 * Does not: serialise tables (sweep.lua packs its rows with string.pack), or run anything on its own.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

static int l_rank(lua_State *L) { lua_pushinteger(L, pare_dist_rank()); return 1; }
static int l_size(lua_State *L) { lua_pushinteger(L, pare_dist_size()); return 1; }
static int l_active(lua_State *L) { lua_pushboolean(L, pare_dist_size() > 1); return 1; }
static int l_data_parallel(lua_State *L) { lua_pushboolean(L, pare_dist_data_parallel()); return 1; }

static int l_barrier(lua_State *L)
{
    pare_status st = pare_dist_barrier();
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 0;
}

static int l_local_mode(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_pushboolean(L, pare_dist_local());
        return 1;
    }
    lua_pushboolean(L, pare_dist_set_local(lua_toboolean(L, 1)));
    return 1;
}

/* bcast(v [, root = 0]): v as one tagged string: "-" nil, "b0"/"b1", "i<int>", "f<%a>", "s<bytes>" */
static int l_bcast(lua_State *L)
{
    int root = (int)luaL_optinteger(L, 2, 0);
    if (root < 0 || root >= pare_dist_size())
        return pare_lua_error(L, "pare.mpi.bcast: root %d is not a rank (size %d)", root, pare_dist_size());
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int t = lua_type(L, 1);
    if (pare_dist_rank() == root) {
        if (t == LUA_TNONE || t == LUA_TNIL) luaL_addchar(&b, '-');
        else if (t == LUA_TBOOLEAN) luaL_addstring(&b, lua_toboolean(L, 1) ? "b1" : "b0");
        else if (t == LUA_TNUMBER && lua_isinteger(L, 1)) {
            lua_pushfstring(L, "i%I", (LUAI_UACINT)lua_tointeger(L, 1));
            luaL_addvalue(&b);
        } else if (t == LUA_TNUMBER) {
            char num[64];
            snprintf(num, sizeof num, "f%a", lua_tonumber(L, 1));
            luaL_addstring(&b, num);
        } else if (t == LUA_TSTRING) {
            size_t n;
            const char *s = lua_tolstring(L, 1, &n);
            luaL_addchar(&b, 's');
            luaL_addlstring(&b, s, n);
        } else
            return pare_lua_error(L, "pare.mpi.bcast: a %s cannot be sent; give nil, a boolean, a number or a string",
                                  lua_typename(L, t));
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    char *buf = (char *)s;
    pare_status st = pare_dist_bcast_bytes(&buf, &len, root);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    if (buf != s) { /* received: a malloc'd copy, anchored as a Lua string before anything can raise */
        lua_pushlstring(L, buf, len);
        free(buf);
        s = lua_tolstring(L, -1, &len);
    }
    switch (len ? s[0] : '-') {
    case 'b': lua_pushboolean(L, s[1] == '1'); break;
    case 'i': lua_pushinteger(L, (lua_Integer)strtoll(s + 1, NULL, 10)); break;
    case 'f': lua_pushnumber(L, strtod(s + 1, NULL)); break;
    case 's': lua_pushlstring(L, s + 1, len - 1); break;
    default: lua_pushnil(L);
    }
    return 1;
}

/* allreduce_sum(x): x a number (returns a number) or a list of numbers (returns a new list), in double */
static int l_allreduce_sum(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        double v = lua_tonumber(L, 1);
        pare_status st = pare_dist_allreduce_sum_f64(&v, 1);
        if (st != PARE_OK) return pare_lua_status_error(L, st);
        lua_pushnumber(L, v);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(double), 0); /* anchored */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        if (lua_type(L, -1) != LUA_TNUMBER) return pare_lua_error(L, "pare.mpi.allreduce_sum: item %d is not a number", (int)i);
        v[i - 1] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    pare_status st = pare_dist_allreduce_sum_f64(v, n);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushnumber(L, v[i - 1]);
        lua_seti(L, -2, i);
    }
    return 1;
}

/* ---- the sweep's queue (sweep.lua) ---- */

/* _queue_begin(todo, desc, total, quiet): todo a list of point numbers, desc their names */
static int l_queue_begin(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1), total = luaL_checkinteger(L, 3);
    int quiet = lua_toboolean(L, 4);
    size_t cnt = (size_t)(n ? n : 1);
    int64_t *todo = lua_newuserdatauv(L, cnt * sizeof *todo, 0);
    const char **desc = lua_newuserdatauv(L, cnt * sizeof *desc, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        todo[i - 1] = (int64_t)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
        lua_geti(L, 2, i); /* the strings stay anchored in the table */
        desc[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    pare_status st = pare_dist_queue_begin(todo, n, desc, total, quiet);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 0;
}

static int l_queue_take(lua_State *L)
{
    int64_t k = pare_dist_queue_take();
    if (k < 0) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)k);
    return 1;
}

/* _queue_rows(): a list of {k =, rank =, text =} received since the last call */
static int l_queue_rows(lua_State *L)
{
    pare_dist_row *rows;
    int64_t n;
    pare_status st = pare_dist_queue_rows(&rows, &n);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    /* copy into Lua first, free after: lua_createtable can raise only on memory, where a leak is moot */
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, (lua_Integer)rows[i].k), lua_setfield(L, -2, "k");
        lua_pushinteger(L, rows[i].rank), lua_setfield(L, -2, "rank");
        lua_pushlstring(L, rows[i].text, rows[i].len), lua_setfield(L, -2, "text");
        lua_seti(L, -2, (lua_Integer)(i + 1));
    }
    for (int64_t i = 0; i < n; i++) free(rows[i].text);
    free(rows);
    return 1;
}

static int l_queue_drained(lua_State *L) { lua_pushboolean(L, pare_dist_queue_drained()); return 1; }
static int l_queue_end(lua_State *L) { (void)L; pare_dist_queue_end(); return 0; }

/* _queue_ask(done_k or -1, row text or nil) -> next point or nil */
static int l_queue_ask(lua_State *L)
{
    int64_t done = (int64_t)luaL_checkinteger(L, 1), next;
    size_t len = 0;
    const char *row = lua_isnoneornil(L, 2) ? NULL : luaL_checklstring(L, 2, &len);
    pare_status st = pare_dist_queue_ask(done, row, len, &next);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    if (next < 0) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)next);
    return 1;
}

static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    if (s > 0) {
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void pare_lua_push_mpi(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"rank", l_rank},           {"size", l_size},
        {"active", l_active},       {"barrier", l_barrier},
        {"bcast", l_bcast},         {"allreduce_sum", l_allreduce_sum},
        {"local_mode", l_local_mode}, {"data_parallel", l_data_parallel},
        {"_queue_begin", l_queue_begin}, {"_queue_take", l_queue_take},
        {"_queue_rows", l_queue_rows},   {"_queue_drained", l_queue_drained},
        {"_queue_end", l_queue_end},     {"_queue_ask", l_queue_ask},
        {"_sleep", l_sleep},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_pushboolean(L, pare_dist_available());
    lua_setfield(L, -2, "available");
    lua_pushstring(L, pare_dist_library());
    lua_setfield(L, -2, "library");
}
