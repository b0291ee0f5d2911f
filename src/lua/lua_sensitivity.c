/* lua_sensitivity.c — per-layer sensitivity measures for tuning (issue 16, docs/tuning.md), as model methods:
 *
 *   m:hessian_trace(task [, {layers = "*", samples = 16, split = "train", n = 128, batch = 32, eps = 1e-2, seed = 1}])
 *       -> {{layer, trace, stderr, numel}, ...} in graph order: Hutchinson estimates of Tr(H) of the loss per Linear
 *          weight (eval/hessian.h)
 *   m:weight_error(ref [, layers = "*"]) -> {[layer] = Σ (W_m − W_ref)²}: the f32 masters of m's Linears against
 *          ref's (give a quantized model's `dequantize` copy as m to get ‖Q(W) − W‖²)
 *
 * Does not: compute (eval/hessian.c does); combine them (tune.hawq_sensitivity does: Tr(H)/n · ‖Q(W) − W‖²).
 *
 * Entry point (lua_engine.h): pare_lua_register_sensitivity, called by pare_lua_register_engine after the model's
 * metatable exists.
 */
#include <lauxlib.h>
#include <lua.h>

#include "core/options.h"
#include "eval/hessian.h"
#include "graph/format.h"
#include "graph/graph.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

static const pare_opt_spec trace_opts[] = {
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over Linear layer names"},
    {"samples", PARE_OPT_INT, "16", 1, 100000, NULL, "Rademacher vectors (each costs two gradient passes)"},
    {"split", PARE_OPT_STRING, "train", 0, 0, NULL, "the task's split whose first n examples define the loss"},
    {"n", PARE_OPT_INT, "128", 1, 1e9, NULL, "examples"},
    {"batch", PARE_OPT_INT, "32", 1, 1e6, NULL, "batch size (full batches only)"},
    {"eps", PARE_OPT_FLOAT, "0.01", 1e-6, 0.5, NULL, "finite-difference step, a share of each layer's weight rms"},
    {"seed", PARE_OPT_INT, "1", 0, 4294967295.0, NULL, "seed of the Rademacher vectors"},
};
static const pare_schema trace_schema = {"hessian_trace", "Hutchinson Hessian traces per Linear weight (docs/tuning.md)",
                                         trace_opts, (int)(sizeof trace_opts / sizeof trace_opts[0])};

static int model_hessian_trace(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_options o;
    pare_lua_opts(L, 3, &trace_schema, &o);
    const pare_dataset *d = pare_lua_check_split(L, 2, pare_opt_str(&o, "split"));
    pare_hessian_spec sp = {pare_opt_str(&o, "layers"), (int)pare_opt_int(&o, "samples"), pare_opt_int(&o, "n"),
                            pare_opt_int(&o, "batch"), pare_opt_num(&o, "eps"), (uint64_t)pare_opt_int(&o, "seed")};
    pare_hessian_result r;
    pare_status st = pare_hessian_trace(m, d, &sp, &r);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, (int)r.n, 0);
    for (int64_t i = 0; i < r.n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushstring(L, r.name[i]), lua_setfield(L, -2, "layer");
        lua_pushnumber(L, r.trace[i]), lua_setfield(L, -2, "trace");
        lua_pushnumber(L, r.stderr_[i]), lua_setfield(L, -2, "stderr");
        lua_pushinteger(L, r.numel[i]), lua_setfield(L, -2, "numel");
        lua_rawseti(L, -2, i + 1);
    }
    pare_hessian_result_free(&r);
    return 1;
}

static int model_weight_error(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1), *ref = pare_lua_check_model(L, 2);
    const char *pat = luaL_optstring(L, 3, "*");
    lua_newtable(L);
    int found = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_LINEAR || !pare_name_match(pat, nd->name)) continue;
        const int64_t j = pare_model_find_node(ref, nd->name);
        const pare_node *rn = j >= 0 && ref->nodes[j].op == PARE_OP_LINEAR ? &ref->nodes[j] : NULL;
        const pare_param *a = &m->params[nd->param[0]];
        if (!rn) return pare_lua_error(L, "weight_error: the reference has no Linear %s", nd->name);
        const pare_param *b = &ref->params[rn->param[0]];
        if (a->shape[0] != b->shape[0] || a->shape[1] != b->shape[1])
            return pare_lua_error(L, "weight_error: %s is %lld x %lld here, %lld x %lld in the reference", nd->name,
                                  (long long)a->shape[0], (long long)a->shape[1], (long long)b->shape[0], (long long)b->shape[1]);
        if (a->format != PARE_FMT_F32 || b->format != PARE_FMT_F32)
            return pare_lua_error(L, "weight_error: %s is stored as %s here and %s in the reference; compare f32 weights "
                                  "(m:apply(\"dequantize\") gives a quantized model's values in f32)", nd->name,
                                  pare_format_label(a), pare_format_label(b));
        double s = 0;
        for (int64_t k = 0; k < pare_param_numel(a); k++) {
            double e = (double)a->blob->data[k] - b->blob->data[k];
            s += e * e;
        }
        lua_pushnumber(L, s), lua_setfield(L, -2, nd->name);
        found++;
    }
    if (!found) return pare_lua_error(L, "weight_error: layers '%s' matches no Linear (m:layers() lists them)", pat);
    return 1;
}

void pare_lua_register_sensitivity(lua_State *L)
{
    static const luaL_Reg methods[] = {{"hessian_trace", model_hessian_trace}, {"weight_error", model_weight_error}, {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
