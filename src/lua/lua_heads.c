/* lua_heads.c — m:head_importance(task [, opts]): the importance of every attention head (Michel et al.
 * 2019; compress/prune/heads.h), for head-pruning loops written in Lua (experiments/sixteen_heads.lua).
 *
 *     local imp = m:head_importance(task, {n = 256})
 *     for _, layer in ipairs(imp) do print(layer.name, table.concat(layer.scores, " ")) end
 *     -- layer.name "enc.0.attn", layer.heads 4, layer.scores {0.71, 0.12, ...} (head 0 first)
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "compress/prune/heads.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

static int model_head_importance(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    const char *split = "train";
    lua_Integer first = 1, n = 256, batch = 1;
    int normalize = 1;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            if (!strcmp(k, "split")) split = luaL_checkstring(L, -1);
            else if (!strcmp(k, "first")) first = luaL_checkinteger(L, -1);
            else if (!strcmp(k, "n")) n = luaL_checkinteger(L, -1);
            else if (!strcmp(k, "batch")) batch = luaL_checkinteger(L, -1);
            else if (!strcmp(k, "normalize")) normalize = lua_toboolean(L, -1);
            else pare_lua_error(L, "head_importance: unknown option '%s' (valid: split, first, n, batch, normalize)", k);
            lua_pop(L, 1);
        }
    }
    const pare_dataset *d = pare_lua_check_range(L, 2, split, "head_importance", first, &n);
    if (batch < 1) pare_lua_error(L, "head_importance: batch=%d must be >= 1", (int)batch);
    pare_head_scores s;
    pare_status st = pare_head_importance(m, d, first - 1, n, batch, normalize, &s);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, s.n, 0);
    for (int l = 0; l < s.n; l++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, m->nodes[s.node[l]].name), lua_setfield(L, -2, "name");
        lua_pushinteger(L, s.heads[l]), lua_setfield(L, -2, "heads");
        lua_createtable(L, s.heads[l], 0);
        for (int h = 0; h < s.heads[l]; h++) lua_pushnumber(L, s.score[l * s.hmax + h]), lua_rawseti(L, -2, h + 1);
        lua_setfield(L, -2, "scores");
        lua_rawseti(L, -2, l + 1);
    }
    pare_head_scores_free(&s);
    return 1;
}

void pare_lua_register_heads(lua_State *L)
{
    static const luaL_Reg methods[] = {{"head_importance", model_head_importance}, {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
