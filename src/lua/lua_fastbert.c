/* lua_fastbert.c — FastBERT from Lua (compress/distill/fastbert.h; docs/distillation-fastbert.md):
 *
 *     local fb = m:add_exits{hidden = 64, seed = 1}          -- a new model; m unchanged
 *     fb:train_exits(task, {steps = 300, batch = 32, lr = 1e-3}, {temperature = 1, kl = "student_teacher"})
 *     local r = fb:early_exit(task, {speed = 0.3, split = "test", n = 0, batch = 64})
 *     -- r.accuracy, r.seconds, r.mean_layer, r.L, r.pred[i], r.layer[i], r.entropy[i], r.logits (n·classes)
 *     fb:exits()   -- {"exit.0.head", "exit.1.head", ...}
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "compress/distill/fastbert.h"
#include "core/options.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

/* m:add_exits([opts]) -> a new model with a student classifier after every encoder layer but the last */
static int model_add_exits(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_options o;
    pare_lua_opts(L, 2, &pare_fastbert_exits_schema, &o);
    pare_model **slot = pare_lua_push_model_slot(L);
    pare_status st = pare_fastbert_add_exits(slot, m, &o);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

/* m:exits() -> the names of the exits' logits nodes, in layer order */
static int model_exits(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    int64_t ex[64];
    int n = 0;
    pare_status st = pare_fastbert_exits(m, ex, 64, &n, NULL);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, n, 0);
    for (int e = 0; e < n; e++) lua_pushstring(L, m->nodes[ex[e]].name), lua_rawseti(L, -2, e + 1);
    return 1;
}

/* m:train_exits(task, train_opts [, {temperature = T, kl = "student_teacher"|"teacher_student"}])
 * -> {steps, loss, seconds} */
static int model_train_exits(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    pare_options o, fo;
    pare_lua_opts(L, 3, &pare_train_schema, &o);
    pare_lua_opts(L, 4, &pare_fastbert_distill_schema, &fo);
    pare_fastbert_distill_opts dopts = pare_fastbert_distill_opts_of(&fo);
    const pare_dataset *d = pare_lua_check_split(L, 2, "train");
    pare_train_result r;
    pare_status st = pare_fastbert_distill(m, d, &o, &dopts, NULL, NULL, &r);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r.steps), lua_setfield(L, -2, "steps");
    lua_pushnumber(L, r.final_loss), lua_setfield(L, -2, "loss");
    lua_pushnumber(L, r.seconds), lua_setfield(L, -2, "seconds");
    return 1;
}

static int speed_opt(lua_State *L, const char *k, void *ud)
{
    if (strcmp(k, "speed")) return 0;
    if (!lua_isnumber(L, -1)) pare_lua_error(L, "early_exit: speed must be a number in [0, 1]");
    *(double *)ud = lua_tonumber(L, -1);
    return 1;
}

static void push_ints(lua_State *L, const int32_t *v, int64_t n, const char *key)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) lua_pushinteger(L, v[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, key);
}

static void push_floats(lua_State *L, const float *v, int64_t n, const char *key)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) lua_pushnumber(L, v[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, key);
}

/* m:early_exit(task [, {speed, split, first, n, batch}]) -> {accuracy, seconds, mean_layer, L, n, pred, layer,
 * entropy, logits}; pred are classes from 0, layer 1..L */
static int model_early_exit(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    pare_lua_range r = {"test", 1, 0, 64};
    double speed = 0;
    pare_lua_range_opts(L, 3, "early_exit", &r, speed_opt, &speed, "speed");
    lua_Integer first = r.first, n = r.n;
    const pare_dataset *d = pare_lua_check_range(L, 2, r.split, "early_exit", first, &n);
    pare_fastbert_result res;
    pare_status st = pare_fastbert_run(m, d, first - 1, n, r.batch, speed, &res);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 10);
    lua_pushnumber(L, res.accuracy), lua_setfield(L, -2, "accuracy");
    lua_pushnumber(L, res.seconds), lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, res.mean_layer), lua_setfield(L, -2, "mean_layer");
    lua_pushinteger(L, res.L), lua_setfield(L, -2, "L");
    lua_pushinteger(L, res.n), lua_setfield(L, -2, "n");
    lua_pushnumber(L, speed), lua_setfield(L, -2, "speed");
    push_ints(L, res.pred, res.n, "pred");
    push_ints(L, res.layer, res.n, "layer");
    push_floats(L, res.entropy, res.n, "entropy");
    push_floats(L, res.logits, res.n * res.nclass, "logits");
    pare_fastbert_result_free(&res);
    return 1;
}

void pare_lua_register_fastbert(lua_State *L)
{
    static const luaL_Reg methods[] = {{"add_exits", model_add_exits},
                                       {"exits", model_exits},
                                       {"train_exits", model_train_exits},
                                       {"early_exit", model_early_exit},
                                       {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
