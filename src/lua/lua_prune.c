/* lua_prune.c — pruning from Lua (compress/prune/prune.h), added to the model's methods and to the module
 * by pare_lua_register_engine().
 *
 *   m:prune{method = "magnitude", sparsity = 0.8, scope = "global", pattern = "unstructured", n = 2, m = 4,
 *           block = "4x1", layers = "*", exclude = "head", calib = task}
 *     -> a new model with masks: method magnitude | snip | taylor (calib = <task> for the last two: its train
 *        split) | sparsegpt (calib = <task>; the `sparsegpt` pass: OBS-updated weights + masks; its own options:
 *        pattern = "unstructured"|"nm"|"2:4"|"4:8", blocksize, damp, no scope) | lock (the zeros become masks:
 *        pattern_lock). The same as m:apply("prune_<method>", {...}) (m:apply("sparsegpt", ...)).
 *   pare.prune_schedule{method = "movement", schedule = "gradual", sparsity = 0.9, every = 10, prunes = 10, ...}
 *     -> a schedule (`pare help prune_schedule`), given to training: m:train(task, opts, schedule) or
 *        m:train(task, opts, distill, schedule). Methods: s:target(step) (the sparsity of the event at step,
 *        or nil), s:report() -> {prunes, last_target, penalty}.
 *   Lottery tickets (m:snapshot, m:rewind, m:random_masks, m:clone, pare.snapshot_at): lua_lottery.c, registered
 *   from here; m:train's schedule argument also takes a pare.snapshot_at.
 *   m:sparsity([layers]) -> {zeros, total, sparsity, layers = {[name] = {zeros, total, sparsity}, ...}} over Linear weights
 *     (masks, or exact zeros of unmasked weights).
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "compress/prune/prune.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

#define SCHED_MT "pare.PruneSchedule"

typedef struct lsched { pare_prune_sched *s; } lsched;

static int model_prune(lua_State *L)
{
    pare_lua_check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "method");
    const char *meth = lua_isnil(L, -1) ? "magnitude" : lua_tostring(L, -1);
    if (!meth) return pare_lua_error(L, "prune: method must be a string (magnitude, snip, taylor, sparsegpt, lock)");
    char pass[64];
    if (!strcmp(meth, "movement") || !strcmp(meth, "soft_movement"))
        return pare_lua_error(L, "prune: method=%s scores weights during fine-tuning: use m:train(task, opts, "
                                 "pare.prune_schedule{method = \"%s\", ...}) (pare help prune_schedule)", meth, meth);
    if (!strcmp(meth, "lock")) strcpy(pass, "pattern_lock");
    else if (!strcmp(meth, "sparsegpt")) strcpy(pass, "sparsegpt");
    else if (!strcmp(meth, "magnitude") || !strcmp(meth, "snip") || !strcmp(meth, "taylor"))
        snprintf(pass, sizeof pass, "prune_%s", meth);
    else return pare_lua_error(L, "prune: unknown method '%s' (valid: magnitude, snip, taylor, sparsegpt, lock; movement and "
                                  "soft_movement through pare.prune_schedule)", meth);
    lua_pop(L, 1);
    /* the options without method, through m:apply */
    lua_newtable(L);
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), "method")) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, t);
    }
    lua_getfield(L, 1, "apply");
    lua_pushvalue(L, 1);
    lua_pushstring(L, pass);
    lua_pushvalue(L, t);
    lua_call(L, 3, 1);
    return 1;
}

static lsched *check_sched(lua_State *L, int i)
{
    lsched *s = luaL_checkudata(L, i, SCHED_MT);
    if (!s->s) pare_lua_error(L, "prune schedule: already freed");
    return s;
}

static int sched_gc(lua_State *L)
{
    lsched *s = luaL_checkudata(L, 1, SCHED_MT);
    pare_prune_sched_free(s->s);
    s->s = NULL;
    return 0;
}

static int l_prune_schedule(lua_State *L)
{
    pare_options o;
    pare_lua_opts(L, 1, &pare_prune_sched_schema, &o);
    lsched *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->s = NULL;
    luaL_setmetatable(L, SCHED_MT);
    pare_status st = pare_prune_sched_new(&s->s, &o);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

static int sched_target(lua_State *L)
{
    lsched *s = check_sched(L, 1);
    double t = pare_prune_sched_target(s->s, (int64_t)luaL_checkinteger(L, 2));
    if (t < 0) lua_pushnil(L);
    else lua_pushnumber(L, t);
    return 1;
}

static int sched_report(lua_State *L)
{
    lsched *s = check_sched(L, 1);
    pare_prune_sched_report r = pare_prune_sched_get_report(s->s);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r.prunes), lua_setfield(L, -2, "prunes");
    lua_pushnumber(L, r.last_target), lua_setfield(L, -2, "last_target");
    lua_pushnumber(L, r.penalty), lua_setfield(L, -2, "penalty");
    return 1;
}

int pare_lua_prune_hooks(lua_State *L, int idx, pare_train_hooks *h)
{
    lsched *s = luaL_testudata(L, idx, SCHED_MT);
    if (!s) return pare_lua_lottery_hooks(L, idx, h); /* or a pare.snapshot_at */
    if (!s->s) pare_lua_error(L, "prune schedule: already freed");
    *h = pare_prune_sched_hooks(s->s);
    return 1;
}

static int model_sparsity(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    const char *layers = luaL_optstring(L, 2, "");
    pare_sparsity all = pare_prune_sparsity(m, layers);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, all.zeros), lua_setfield(L, -2, "zeros");
    lua_pushinteger(L, all.total), lua_setfield(L, -2, "total");
    lua_pushnumber(L, all.total ? (double)all.zeros / (double)all.total : 0), lua_setfield(L, -2, "sparsity");
    lua_newtable(L);
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_LINEAR || (*layers && !pare_name_match(layers, nd->name))) continue;
        pare_sparsity one = pare_prune_sparsity(m, nd->name);
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, one.zeros), lua_setfield(L, -2, "zeros");
        lua_pushinteger(L, one.total), lua_setfield(L, -2, "total");
        lua_pushnumber(L, one.total ? (double)one.zeros / (double)one.total : 0), lua_setfield(L, -2, "sparsity");
        lua_setfield(L, -2, nd->name);
    }
    lua_setfield(L, -2, "layers");
    return 1;
}

void pare_lua_register_prune(lua_State *L)
{
    static const luaL_Reg methods[] = {{"prune", model_prune}, {"sparsity", model_sparsity}, {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
    static const luaL_Reg sched_meta[] = {{"__gc", sched_gc}, {"__close", sched_gc}, {NULL, NULL}};
    static const luaL_Reg sched_methods[] = {{"target", sched_target}, {"report", sched_report}, {NULL, NULL}};
    luaL_newmetatable(L, SCHED_MT);
    luaL_setfuncs(L, sched_meta, 0);
    luaL_newlib(L, sched_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_prune_schedule);
    lua_setfield(L, -2, "prune_schedule"); /* into the pare table on top */
    pare_lua_register_lottery(L);
}
