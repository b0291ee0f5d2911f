/* lua_tp.c — tensor parallelism from Lua (dist/tp.h; docs/distributed.md "Tensor parallelism").
 *
 *     local m  = pare.model{..., seed = 3}          -- the same replicated model on every rank
 *     local tp = m:tensor_parallel()                 -- this rank's shard (ranks = pare.mpi.size(), rank = pare.mpi.rank())
 *     tp:train(task, {...})                          -- every rank the same options: the steps of one process
 *     m:tp_gather(tp)                                -- collective: tp's weights, whole, into m (then m:save(...))
 *     local g = tp:gradients(task, {first = 1, n = 8})  -- {loss =, grads = {[name] = {...}}, shapes = {[name] = {N, K}}}
 *     tp:tp_weights()                                -- {[name] = {...}}: every weight whole (gathered: collective)
 *     tp:tp_info()                                   -- {ranks =, rank =, split = {[name] = "replicated"|"rows"|"cols"},
 *                                                    --  comm = {allreduces =, bytes =, seconds =}: this process's so far}
 *
 * m:tensor_parallel{ranks = P, rank = r} makes any rank's shard (a shard of P ranks runs only under mpirun -n P;
 * making one is how the divisibility errors are checked alone). m:gradients works on any model: one training
 * forward and backward over examples [first, first + n) of split (1-based), gradients whole (gathered from the
 * shards: collective on a shard).
 *
 * Deliberately thin: parsing the tables, calling the engine, raising its message.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "data/task.h"
#include "dist/dist.h"
#include "dist/tp.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

static lua_Integer opt_int(lua_State *L, int t, const char *fn, const char *key, lua_Integer dflt)
{
    if (lua_isnoneornil(L, t)) return dflt;
    lua_getfield(L, t, key);
    int ok;
    lua_Integer v = lua_isnil(L, -1) ? (ok = 1, dflt) : lua_tointegerx(L, -1, &ok);
    if (!ok) pare_lua_error(L, "%s: %s must be an integer", fn, key);
    lua_pop(L, 1);
    return v;
}

static void only_keys(lua_State *L, int t, const char *fn, const char *const *keys)
{
    if (lua_isnoneornil(L, t)) return;
    luaL_checktype(L, t, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ok = 0;
        for (int i = 0; keys[i] && lua_type(L, -2) == LUA_TSTRING; i++) ok |= !strcmp(keys[i], lua_tostring(L, -2));
        if (!ok) {
            char valid[128] = "";
            for (int i = 0; keys[i]; i++) strcat(strcat(valid, i ? ", " : ""), keys[i]);
            pare_lua_error(L, "%s: unknown key %s (valid: %s)", fn,
                           lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2), valid);
        }
        lua_pop(L, 1);
    }
}

/* m:tensor_parallel([{ranks =, rank =}]) -> this rank's shard, a new model */
static int model_tensor_parallel(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    static const char *const keys[] = {"ranks", "rank", NULL};
    only_keys(L, 2, "tensor_parallel", keys);
    lua_Integer ranks = opt_int(L, 2, "tensor_parallel", "ranks", pare_dist_size());
    lua_Integer rank = opt_int(L, 2, "tensor_parallel", "rank", pare_dist_rank());
    if (ranks < 1 || ranks > 1 << 20 || rank < 0 || rank >= ranks)
        return pare_lua_error(L, "tensor_parallel: rank=%d of ranks=%d (rank in [0, ranks))", (int)rank, (int)ranks);
    pare_model **slot = pare_lua_push_model_slot(L);
    pare_status st = pare_tp_split(slot, m, (int)rank, (int)ranks);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

/* full:tp_gather(shard) -> full, with shard's weights whole (collective) */
static int model_tp_gather(lua_State *L)
{
    pare_model *full = pare_lua_check_model(L, 1), *tp = pare_lua_check_model(L, 2);
    pare_status st = pare_tp_gather(full, tp);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_settop(L, 1);
    return 1;
}

/* m:tp_info() -> {ranks =, rank =, split = {[name] = "replicated" | "rows" | "cols"}, comm = {allreduces =, bytes =,
 * seconds =}}; ranks 0 for a replicated model; comm: this process's f and g all-reduces so far (any model) */
static int model_tp_info(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    static const char *const kinds[] = {"replicated", "rows", "cols"};
    int P = pare_tp_ranks(m);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, P), lua_setfield(L, -2, "ranks");
    lua_pushinteger(L, P ? pare_tp_rank(m) : 0), lua_setfield(L, -2, "rank");
    lua_createtable(L, 0, (int)m->nparams);
    for (int64_t i = 0; i < m->nparams; i++) {
        lua_pushstring(L, kinds[P ? pare_tp_layout(m, i, NULL) : PARE_TP_REPLICATED]);
        lua_setfield(L, -2, m->params[i].name);
    }
    lua_setfield(L, -2, "split");
    pare_tp_comm c;
    pare_tp_comm_totals(&c);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, c.allreduces), lua_setfield(L, -2, "allreduces");
    lua_pushinteger(L, c.bytes), lua_setfield(L, -2, "bytes");
    lua_pushnumber(L, c.seconds), lua_setfield(L, -2, "seconds");
    lua_setfield(L, -2, "comm");
    return 1;
}

/* m:tp_weights() -> {[name] = {...}}: every parameter whole (a shard's gathered: collective), row-major */
static int model_tp_weights(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    lua_createtable(L, 0, (int)m->nparams);
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        int64_t shape[2] = {p->shape[0], p->ndim > 1 ? p->shape[1] : 1};
        if (pare_tp_ranks(m)) pare_tp_full_shape(m, i, shape);
        int64_t n = shape[0] * shape[1];
        float *full = malloc(sizeof *full * (size_t)n);
        pare_status st = !full ? pare_fail(PARE_ENOMEM, "tp_weights: out of memory")
                         : pare_tp_ranks(m) ? pare_tp_full_param(m, i, 0, full)
                                            : (memcpy(full, p->blob->data, sizeof *full * (size_t)n), PARE_OK);
        if (st != PARE_OK) {
            free(full);
            return pare_lua_status_error(L, st);
        }
        lua_createtable(L, (int)n, 0);
        for (int64_t k = 0; k < n; k++) lua_pushnumber(L, full[k]), lua_rawseti(L, -2, k + 1);
        free(full);
        lua_setfield(L, -2, p->name);
    }
    return 1;
}

/* m:gradients(task, [{split = "train", first = 1, n = 8}]) -> {loss =, grads = {[name] = {...}}, shapes = {[name] = {N, K}}}
 * Trainable parameters only; whole tensors (a shard's are gathered: collective). */
static int model_gradients(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    static const char *const keys[] = {"split", "first", "n", NULL};
    only_keys(L, 3, "gradients", keys);
    const char *split = "train";
    if (!lua_isnoneornil(L, 3)) {
        lua_getfield(L, 3, "split");
        if (!lua_isnil(L, -1)) split = luaL_checkstring(L, -1); /* anchored by the options table */
        lua_pop(L, 1);
    }
    const pare_dataset *d = pare_lua_check_split(L, 2, split);
    lua_Integer first = opt_int(L, 3, "gradients", "first", 1), n = opt_int(L, 3, "gradients", "n", 8);
    float loss = 0;
    pare_status st = pare_tp_batch_gradients(m, d, (int64_t)first - 1, (int64_t)n, &loss);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, loss), lua_setfield(L, -2, "loss");
    lua_newtable(L); /* grads */
    lua_newtable(L); /* shapes */
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad) continue;
        int64_t shape[2] = {p->shape[0], p->ndim > 1 ? p->shape[1] : 1};
        if (pare_tp_ranks(m)) pare_tp_full_shape(m, i, shape);
        float *full = malloc(sizeof *full * (size_t)(shape[0] * shape[1]));
        st = full ? (pare_tp_ranks(m) ? pare_tp_full_param(m, i, 1, full) : PARE_OK)
                  : pare_fail(PARE_ENOMEM, "gradients: out of memory");
        if (st == PARE_OK && !pare_tp_ranks(m)) memcpy(full, p->grad, sizeof *full * (size_t)(shape[0] * shape[1]));
        if (st != PARE_OK) {
            free(full);
            return pare_lua_status_error(L, st);
        }
        lua_createtable(L, (int)(shape[0] * shape[1]), 0);
        for (int64_t k = 0; k < shape[0] * shape[1]; k++) lua_pushnumber(L, full[k]), lua_rawseti(L, -2, k + 1);
        free(full);
        lua_setfield(L, -3, p->name);
        lua_createtable(L, 2, 0);
        lua_pushinteger(L, shape[0]), lua_rawseti(L, -2, 1);
        lua_pushinteger(L, shape[1]), lua_rawseti(L, -2, 2);
        lua_setfield(L, -2, p->name);
    }
    lua_setfield(L, -3, "shapes");
    lua_setfield(L, -2, "grads");
    return 1;
}

void pare_lua_register_tp(lua_State *L)
{
    static const luaL_Reg methods[] = {{"tensor_parallel", model_tensor_parallel}, {"tp_gather", model_tp_gather},
                                       {"tp_info", model_tp_info},                 {"gradients", model_gradients},
                                       {"tp_weights", model_tp_weights},           {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
