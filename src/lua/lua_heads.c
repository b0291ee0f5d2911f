/* lua_heads.c — structured-pruning importance from Lua: m:head_importance(task [, opts]), the importance of
 * every attention head (Michel et al. 2019; compress/prune/heads.h), for head-pruning loops written in Lua
 * (experiments/sixteen_heads.lua); m:neuron_importance and m:layer_importance (compress/prune/structured.h);
 * Voita et al. 2019's hard-concrete head gates (m:head_gates, m:gate_values, m:prune_gated_heads; m:train
 * adds their L0 penalty), head confidence (m:head_confidence; experiments/voita_heads.lua) and LRP head
 * relevance (m:head_relevance{split, first, n, batch, eps, normalize}; compress/prune/head_lrp.c).
 *
 *     local imp = m:head_importance(task, {n = 256})
 *     for _, layer in ipairs(imp) do print(layer.name, table.concat(layer.scores, " ")) end
 *     -- layer.name "enc.0.attn", layer.heads 4, layer.scores {0.71, 0.12, ...} (head 0 first)
 *     local nimp = m:neuron_importance(task, {criterion = "taylor", layers = "*.ffn.up", n = 128})
 *     -- {{name = "enc.0.ffn.up", neurons = 64, scores = {...}}, ...}; criterion "magnitude" takes task = nil
 *     local limp = m:layer_importance(task, {n = 128})
 *     -- {base = L, {name = "enc.0", score = L(without enc.0) - L}, ...}
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "core/options.h"
#include "graph/graph.h"

#include "compress/prune/heads.h"
#include "compress/prune/structured.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

static int normalize_opt(lua_State *L, const char *k, void *ud)
{
    if (strcmp(k, "normalize")) return 0;
    *(int *)ud = lua_toboolean(L, -1);
    return 1;
}

static int model_head_importance(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    pare_lua_range r = {"train", 1, 256, 1};
    int normalize = 1;
    pare_lua_range_opts(L, 3, "head_importance", &r, normalize_opt, &normalize, "normalize");
    lua_Integer first = r.first, n = r.n, batch = r.batch;
    const pare_dataset *d = pare_lua_check_range(L, 2, r.split, "head_importance", first, &n);
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

/* Options of m:neuron_importance / m:layer_importance: split, first, n, batch (and layers, criterion when
 * neurons); the dataset range resolved against the task at index 2 (NULL when the task is nil). */
typedef struct imp_opts { const char *layers, *criterion; const pare_dataset *d; int64_t first, n, batch; } imp_opts;

static int imp_more(lua_State *L, const char *k, void *ud)
{
    imp_opts *r = ud;
    if (!strcmp(k, "layers")) r->layers = luaL_checkstring(L, -1);
    else if (!strcmp(k, "criterion")) r->criterion = luaL_checkstring(L, -1);
    else return 0;
    return 1;
}

static imp_opts check_imp_opts(lua_State *L, const char *fn, int neurons, lua_Integer batch)
{
    imp_opts r = {"*.ffn.up", "taylor", NULL, 0, 0, batch};
    pare_lua_range g = {"train", 1, 128, batch};
    pare_lua_range_opts(L, 3, fn, &g, neurons ? imp_more : NULL, &r, neurons ? "layers, criterion" : "");
    lua_Integer first = g.first, n = g.n;
    batch = g.batch;
    if (neurons && strcmp(r.criterion, "taylor") && strcmp(r.criterion, "magnitude"))
        pare_lua_error(L, "%s: criterion='%s' (valid: taylor, magnitude)", fn, r.criterion);
    if (neurons && !strcmp(r.criterion, "magnitude") && lua_isnoneornil(L, 2)) return r;
    r.d = pare_lua_check_range(L, 2, g.split, fn, first, &n);
    r.first = first - 1, r.n = n, r.batch = batch;
    return r;
}

static int model_neuron_importance(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    imp_opts o = check_imp_opts(L, "neuron_importance", 1, 1);
    pare_neuron_scores s;
    pare_status st = pare_neuron_importance(m, o.layers, strcmp(o.criterion, "taylor") ? PARE_NEURON_MAGNITUDE : PARE_NEURON_TAYLOR,
                                            o.d, o.first, o.n, o.batch, &s);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, s.n, 0);
    for (int l = 0; l < s.n; l++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, m->nodes[s.node[l]].name), lua_setfield(L, -2, "name");
        lua_pushinteger(L, s.width[l]), lua_setfield(L, -2, "neurons");
        lua_createtable(L, (int)s.width[l], 0);
        for (int64_t j = 0; j < s.width[l]; j++) lua_pushnumber(L, s.score[l][j]), lua_rawseti(L, -2, j + 1);
        lua_setfield(L, -2, "scores");
        lua_rawseti(L, -2, l + 1);
    }
    pare_neuron_scores_free(&s);
    return 1;
}

static int model_layer_importance(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    imp_opts o = check_imp_opts(L, "layer_importance", 0, 32);
    pare_layer_scores s;
    pare_status st = pare_layer_importance(m, o.d, o.first, o.n, o.batch, &s);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, s.n, 1);
    lua_pushnumber(L, s.base), lua_setfield(L, -2, "base");
    for (int l = 0; l < s.n; l++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, s.prefix[l]), lua_setfield(L, -2, "name");
        lua_pushnumber(L, s.score[l]), lua_setfield(L, -2, "score");
        lua_rawseti(L, -2, l + 1);
    }
    pare_layer_scores_free(&s);
    return 1;
}

/* {name, heads, kind, scores = {...}} per layer of s */
static void push_scores(lua_State *L, const pare_model *m, const pare_head_scores *s)
{
    static const char *const kinds[] = {"enc", "dec", "cross"};
    lua_createtable(L, s->n, 0);
    for (int l = 0; l < s->n; l++) {
        const pare_node *a = s->node[l] >= 0 ? &m->nodes[s->node[l]] : NULL;
        int kind = !a ? 0 : a->op == PARE_OP_CROSS_ATTENTION ? 2 : strncmp(a->name, "dec.", 4) == 0 ? 1 : 0;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, a ? a->name : "?"), lua_setfield(L, -2, "name");
        lua_pushstring(L, kinds[kind]), lua_setfield(L, -2, "kind");
        lua_pushinteger(L, s->heads[l]), lua_setfield(L, -2, "heads");
        lua_createtable(L, s->heads[l], 0);
        for (int h = 0; h < s->heads[l]; h++) lua_pushnumber(L, s->score[l * s->hmax + h]), lua_rawseti(L, -2, h + 1);
        lua_setfield(L, -2, "scores");
        lua_rawseti(L, -2, l + 1);
    }
}

/* A new pare.Model userdata holding NULL (anchored before the engine allocates); fill ->m after. */
static pare_model **push_empty_model(lua_State *L)
{
    pare_model **out = lua_newuserdatauv(L, sizeof *out, 0);
    *out = NULL;
    luaL_setmetatable(L, "pare.Model");
    return out;
}

/* m:head_gates{lambda=, init=, layers=} -> a copy of m with a gate on every selected layer's heads */
static int model_head_gates(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_options o;
    pare_lua_opts(L, 2, &pare_head_gates_schema, &o);
    pare_model **out = push_empty_model(L);
    pare_model *c = pare_model_clone(m);
    if (!c) return pare_lua_status_error(L, PARE_ENOMEM);
    *out = c;
    pare_status st = pare_head_gates_attach(c, pare_opt_num(&o, "lambda"), pare_opt_num(&o, "gate_lr"), pare_opt_num(&o, "init"),
                                            pare_opt_str(&o, "layers"));
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    size_t used = strlen(c->applied);
    snprintf(c->applied + used, sizeof c->applied - used, "%shead_gates(%g)", used ? "+" : "", pare_opt_num(&o, "lambda"));
    return 1;
}

/* m:gate_values() -> per gated layer {name, kind, heads, scores = deterministic gates z} */
static int model_gate_values(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_head_scores s;
    pare_status st = pare_head_gates_values(m, &s);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    push_scores(L, m, &s);
    pare_head_scores_free(&s);
    lua_pushnumber(L, pare_head_gates_penalty(m, 0));
    return 2;
}

/* m:prune_gated_heads() -> plain model, {enc=, dec=, cross=} heads with z > 0 */
static int model_prune_gated_heads(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_model **out = push_empty_model(L);
    int64_t kept[3];
    pare_status st = pare_head_gates_prune(out, m, kept);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    size_t used = strlen((*out)->applied);
    snprintf((*out)->applied + used, sizeof (*out)->applied - used, "%sprune_gated_heads", used ? "+" : "");
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, kept[0]), lua_setfield(L, -2, "enc");
    lua_pushinteger(L, kept[1]), lua_setfield(L, -2, "dec");
    lua_pushinteger(L, kept[2]), lua_setfield(L, -2, "cross");
    return 2;
}

/* m:head_confidence(task [, {split, first, n, batch}]) -> per layer {name, kind, heads, scores} */
static int model_head_confidence(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    pare_lua_range r = {"test", 1, 256, 32};
    pare_lua_range_opts(L, 3, "head_confidence", &r, NULL, NULL, "");
    lua_Integer first = r.first, n = r.n, batch = r.batch;
    const pare_dataset *d = pare_lua_check_range(L, 2, r.split, "head_confidence", first, &n);
    pare_head_scores s;
    pare_status st = pare_head_confidence(m, d, first - 1, n, batch, &s);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    push_scores(L, m, &s);
    pare_head_scores_free(&s);
    return 1;
}

/* m:head_relevance(task [, {split, first, n, batch, eps, normalize}]) -> per layer {name, kind, heads, scores}
 * (Voita et al. 2019's LRP relevance; the shape of m:head_importance's answer) */
typedef struct rel_opts { double eps; int normalize; } rel_opts;

static int rel_more(lua_State *L, const char *k, void *ud)
{
    rel_opts *o = ud;
    if (!strcmp(k, "normalize")) o->normalize = lua_toboolean(L, -1);
    else if (!strcmp(k, "eps")) {
        o->eps = luaL_checknumber(L, -1);
        char num[32];
        snprintf(num, sizeof num, "%g", o->eps);
        if (!(o->eps >= 0)) pare_lua_error(L, "head_relevance: eps=%s must be >= 0", num);
    } else return 0;
    return 1;
}

static int model_head_relevance(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    luaL_checkany(L, 2);
    pare_lua_range r = {"train", 1, 256, 16};
    rel_opts o = {1e-6, 1};
    pare_lua_range_opts(L, 3, "head_relevance", &r, rel_more, &o, "eps, normalize");
    lua_Integer first = r.first, n = r.n, batch = r.batch;
    const pare_dataset *d = pare_lua_check_range(L, 2, r.split, "head_relevance", first, &n);
    pare_head_scores s;
    pare_status st = pare_head_relevance(m, d, first - 1, n, batch, o.eps, o.normalize, &s);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    push_scores(L, m, &s);
    pare_head_scores_free(&s);
    return 1;
}

void pare_lua_register_heads(lua_State *L)
{
    static const luaL_Reg methods[] = {{"head_importance", model_head_importance},
                                       {"neuron_importance", model_neuron_importance},
                                       {"layer_importance", model_layer_importance},
                                       {"head_gates", model_head_gates},
                                       {"gate_values", model_gate_values},
                                       {"prune_gated_heads", model_prune_gated_heads},
                                       {"head_confidence", model_head_confidence},
                                       {"head_relevance", model_head_relevance},
                                       {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
