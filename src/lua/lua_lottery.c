/* lua_lottery.c — lottery-ticket primitives from Lua (compress/prune/lottery.h), added to the model's methods
 * and to the module by pare_lua_register_prune().
 *
 *   m:snapshot() -> snap                 a copy of m's trainable weights now (θ0 before training)
 *   pare.snapshot_at(k) -> snap          taken during the next m:train(task, opts, snap) after k updates
 *                                        (k = 0: before the first); late rewinding (Frankle et al. 2020)
 *   m:rewind(snap [, {keep_masks = true}]) -> m   weights back to the snapshot, in place, bit for bit; the
 *                                        masks stay (keep_masks = false: removed); AdamW state reset
 *   m:random_masks(like [, seed]) -> a new model: m with, per masked Linear of `like`, a random mask with as
 *                                        many zeros (the random-mask control)
 *   m:clone() -> a new model, the same weights and masks (shared until written)
 *   snap:taken(), snap:step() (k, or -1 for m:snapshot()), snap:params(), snap:numel(), snap:get(name) -> {floats}
 *
 * The loop of iterative magnitude pruning is lua/pare/lottery.lua (pare.lottery.run).
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "compress/prune/lottery.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

#define SNAP_MT "pare.Snapshot"

typedef struct lsnap { pare_snapshot_at a; } lsnap;

static const pare_opt_spec rewind_opts[] = {
    {"keep_masks", PARE_OPT_BOOL, "true", 0, 0, NULL, "keep the model's masks (the effective weights are snapshot ⊙ mask); false: remove them"},
};
static const pare_schema rewind_schema = {"rewind", "rewind a model's weights to a snapshot (lottery tickets)", rewind_opts, 1};

static lsnap *new_snap(lua_State *L, int64_t step)
{
    lsnap *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->a.step = step, s->a.snap = NULL;
    luaL_setmetatable(L, SNAP_MT);
    return s;
}

static int snap_gc(lua_State *L)
{
    lsnap *s = luaL_checkudata(L, 1, SNAP_MT);
    pare_snapshot_free(s->a.snap);
    s->a.snap = NULL;
    return 0;
}

static const pare_snapshot *check_taken(lua_State *L, int i, const char *what)
{
    lsnap *s = luaL_checkudata(L, i, SNAP_MT);
    if (!s->a.snap)
        pare_lua_error(L, "%s: the snapshot_at(%d) was not taken yet (give it to m:train(task, opts, snap), with "
                          "steps >= %d)", what, (int)s->a.step, (int)s->a.step); /* Lua's formatter: no %lld */
    return s->a.snap;
}

static int model_snapshot(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    lsnap *s = new_snap(L, -1);
    pare_status st = pare_snapshot_take(&s->a.snap, m);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

static int l_snapshot_at(lua_State *L)
{
    lua_Integer k = luaL_checkinteger(L, 1);
    if (k < 0) return pare_lua_error(L, "snapshot_at: step must be >= 0 (0: before the first update), got %d", (int)k);
    if (k > (1 << 30)) return pare_lua_error(L, "snapshot_at: step must be at most 2^30");
    new_snap(L, (int64_t)k);
    return 1;
}

static int model_rewind(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    const pare_snapshot *s = check_taken(L, 2, "rewind");
    pare_options o;
    pare_lua_opts(L, 3, &rewind_schema, &o);
    pare_status st = pare_rewind(m, s, pare_opt_bool(&o, "keep_masks"));
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushvalue(L, 1);
    return 1;
}

static int model_random_masks(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_model *like = pare_lua_check_model(L, 2);
    lua_Integer seed = luaL_optinteger(L, 3, 1);
    pare_model **slot = pare_lua_push_model_slot(L);
    if (!(*slot = pare_model_clone(m))) return pare_lua_status_error(L, PARE_ENOMEM);
    pare_status st = pare_random_masks(*slot, like, (uint64_t)seed);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

static int model_clone(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_model **slot = pare_lua_push_model_slot(L);
    if (!(*slot = pare_model_clone(m))) return pare_lua_status_error(L, PARE_ENOMEM);
    return 1;
}

static int snap_taken(lua_State *L)
{
    lsnap *s = luaL_checkudata(L, 1, SNAP_MT);
    lua_pushboolean(L, s->a.snap != NULL);
    return 1;
}

static int snap_step(lua_State *L)
{
    lsnap *s = luaL_checkudata(L, 1, SNAP_MT);
    lua_pushinteger(L, s->a.step);
    return 1;
}

static int snap_params(lua_State *L)
{
    lua_pushinteger(L, pare_snapshot_params(check_taken(L, 1, "snapshot:params")));
    return 1;
}

static int snap_numel(lua_State *L)
{
    lua_pushinteger(L, pare_snapshot_numel(check_taken(L, 1, "snapshot:numel")));
    return 1;
}

static int snap_get(lua_State *L)
{
    const pare_snapshot *s = check_taken(L, 1, "snapshot:get");
    const char *name = luaL_checkstring(L, 2);
    int64_t n;
    const float *v = pare_snapshot_get(s, name, &n);
    if (!v) return pare_lua_error(L, "snapshot:get: no parameter %s in the snapshot (%d held; names as in m:info())", name,
                                  (int)pare_snapshot_params(s));
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) lua_pushnumber(L, v[i]), lua_seti(L, -2, i + 1);
    return 1;
}

int pare_lua_lottery_hooks(lua_State *L, int idx, pare_train_hooks *h)
{
    lsnap *s = luaL_testudata(L, idx, SNAP_MT);
    if (!s) return 0;
    if (s->a.step < 0) pare_lua_error(L, "train: a snapshot from m:snapshot() is taken already; give pare.snapshot_at(k) to train");
    *h = pare_snapshot_hooks(&s->a);
    return 1;
}

void pare_lua_register_lottery(lua_State *L)
{
    static const luaL_Reg methods[] = {{"snapshot", model_snapshot}, {"rewind", model_rewind},
                                       {"random_masks", model_random_masks}, {"clone", model_clone}, {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
    static const luaL_Reg snap_meta[] = {{"__gc", snap_gc}, {"__close", snap_gc}, {NULL, NULL}};
    static const luaL_Reg snap_methods[] = {{"taken", snap_taken}, {"step", snap_step}, {"params", snap_params},
                                            {"numel", snap_numel}, {"get", snap_get}, {NULL, NULL}};
    luaL_newmetatable(L, SNAP_MT);
    luaL_setfuncs(L, snap_meta, 0);
    luaL_newlib(L, snap_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_snapshot_at);
    lua_setfield(L, -2, "snapshot_at"); /* into the pare table on top */
}
