/* lua_gguf.c — GGUF from Lua (io/gguf.h): m:save_gguf(path) writes a model (quantized blocks as ggml's),
 * pare.gguf_read(path [, {data = true}]) reads any GGUF v2/v3 file with pare's own reader.
 *
 *     m:apply("qblock", {format = "q4_k"}):save_gguf("enc-q4_k.gguf")
 *     local g = pare.gguf_read("enc-q4_k.gguf", {data = true})
 *     -- g.version 3, g.alignment 32, g.data_offset, g.metadata["general.architecture"] == "pare",
 *     -- g.metadata_types["general.alignment"] == "u32",
 *     -- g.tensors[i] = {name = "enc.0.ffn.up.weight", type = "q4_K", type_id = 12, dims = {256, 1024},
 *     --                 offset = ..., nbytes = ..., data = "<the bytes>" (with data = true)}
 * Metadata values: integers as Lua integers (u64 above 2^63 as floats), f32/f64 as numbers, bools, strings
 * (bytes as stored), arrays as sequences.
 *
 * Not here: loading a GGUF into a model.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <string.h>

#include "graph/graph.h"
#include "io/gguf.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

#define GGUF_MT "pare.GGUFHandle"

static int handle_gc(lua_State *L)
{
    pare_gguf **h = luaL_checkudata(L, 1, GGUF_MT);
    pare_gguf_close(*h);
    *h = NULL;
    return 0;
}

static void push_value(lua_State *L, const pare_gguf_value *v)
{
    luaL_checkstack(L, 4, "gguf metadata nesting");
    switch (v->type) {
    case PARE_GGUF_U8:
    case PARE_GGUF_U16:
    case PARE_GGUF_U32:
    case PARE_GGUF_U64:
        if (v->v.u > (uint64_t)LUA_MAXINTEGER) lua_pushnumber(L, (lua_Number)v->v.u);
        else lua_pushinteger(L, (lua_Integer)v->v.u);
        break;
    case PARE_GGUF_I8:
    case PARE_GGUF_I16:
    case PARE_GGUF_I32:
    case PARE_GGUF_I64: lua_pushinteger(L, (lua_Integer)v->v.i); break;
    case PARE_GGUF_F32:
    case PARE_GGUF_F64: lua_pushnumber(L, v->v.f); break;
    case PARE_GGUF_BOOL: lua_pushboolean(L, v->v.u != 0); break;
    case PARE_GGUF_STRING: lua_pushlstring(L, v->v.str.s, (size_t)v->v.str.len); break;
    case PARE_GGUF_ARRAY:
        lua_createtable(L, v->v.arr.n < 1u << 24 ? (int)v->v.arr.n : 0, 0);
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            push_value(L, &v->v.arr.items[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    default: lua_pushnil(L); break;
    }
}

static int l_gguf_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int data = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!k || strcmp(k, "data"))
                return pare_lua_error(L, "gguf_read: unknown option '%s' (valid: data)", k ? k : "?");
            data = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
    }
    pare_gguf **h = lua_newuserdatauv(L, sizeof *h, 0); /* anchored before the engine allocates */
    *h = NULL;
    luaL_setmetatable(L, GGUF_MT);
    pare_status st = pare_gguf_open(h, path);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    const pare_gguf *g = *h;
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, g->version), lua_setfield(L, -2, "version");
    lua_pushinteger(L, g->alignment), lua_setfield(L, -2, "alignment");
    lua_pushinteger(L, (lua_Integer)g->data_offset), lua_setfield(L, -2, "data_offset");
    lua_pushinteger(L, (lua_Integer)g->size), lua_setfield(L, -2, "size");
    lua_createtable(L, 0, (int)g->n_kv);
    lua_createtable(L, 0, (int)g->n_kv);
    for (int64_t i = 0; i < g->n_kv; i++) {
        push_value(L, &g->kv[i].value);
        lua_setfield(L, -3, g->kv[i].key);
        lua_pushstring(L, pare_gguf_vtype_name(g->kv[i].value.type));
        lua_setfield(L, -2, g->kv[i].key);
    }
    lua_setfield(L, -3, "metadata_types");
    lua_setfield(L, -2, "metadata");
    lua_createtable(L, (int)g->n_tensors, 0);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const pare_gguf_tensor *t = &g->tensors[i];
        lua_createtable(L, 0, 8);
        lua_pushstring(L, t->name), lua_setfield(L, -2, "name");
        lua_pushstring(L, pare_gguf_type_name(t->type)), lua_setfield(L, -2, "type");
        lua_pushinteger(L, t->type), lua_setfield(L, -2, "type_id");
        lua_createtable(L, (int)t->n_dims, 0);
        for (uint32_t d = 0; d < t->n_dims; d++) lua_pushinteger(L, (lua_Integer)t->dims[d]), lua_rawseti(L, -2, d + 1);
        lua_setfield(L, -2, "dims");
        lua_pushinteger(L, (lua_Integer)t->offset), lua_setfield(L, -2, "offset");
        lua_pushinteger(L, (lua_Integer)t->nbytes), lua_setfield(L, -2, "nbytes");
        if (data) {
            lua_pushlstring(L, (const char *)pare_gguf_tensor_data(g, i), (size_t)t->nbytes);
            lua_setfield(L, -2, "data");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "tensors");
    pare_gguf_close(*h);
    *h = NULL;
    return 1;
}

static int model_save_gguf(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    pare_status st = pare_gguf_save_model(m, path);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 0;
}

void pare_lua_register_gguf(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__gc", handle_gc}, {NULL, NULL}};
    luaL_newmetatable(L, GGUF_MT);
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
    static const luaL_Reg methods[] = {{"save_gguf", model_save_gguf}, {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
    lua_pushcfunction(L, l_gguf_read); /* into the pare table on top */
    lua_setfield(L, -2, "gguf_read");
}
