/* lua_gp.c — pare.stats.gp and pare.stats.ei: the Gaussian process of eval/gp.h for Lua (tune.lua's Bayesian
 * strategy, and anyone's surrogate models).
 *
 *     local g = pare.stats.gp(X, y [, {kernel = "matern52", lengthscale = 0, noise = 0}])  -- X: rows of numbers
 *     g.lengthscale, g.noise, g.lml, g.kernel                 -- the hyperparameters used (0: chosen by likelihood)
 *     local mean, var = g.predict(Xs)                          -- arrays, one entry per row of Xs
 *     local ei = pare.stats.ei(mean, sd, best [, xi = 0])      -- expected improvement below best (minimisation)
 *     pare.stats.normcdf(z)                                    -- Φ(z)
 *
 * Does not: compute (eval/gp.c does); choose points (tune.lua does).
 *
 * Entry point (lua_harness_internal.h): pare_lua_gp_register (adds gp and ei to the table on top of the stack).
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/gp.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

#define GP_MT "pare.gp"

/* The rows of the array of arrays at idx as a row-major (n, d) double array in an anchored userdata (pushed). */
static double *check_rows(lua_State *L, int idx, int *n, int *d, int want_d, const char *fn)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 1) pare_lua_error(L, "%s: needs at least one row of inputs", fn);
    lua_geti(L, idx, 1);
    if (!lua_istable(L, -1)) pare_lua_error(L, "%s: row 1 is not an array of numbers", fn);
    lua_Integer dd = luaL_len(L, -1);
    lua_pop(L, 1);
    if (dd < 1) pare_lua_error(L, "%s: row 1 is empty", fn);
    if (want_d > 0 && dd != want_d) pare_lua_error(L, "%s: rows have %d inputs; the model was fitted on %d", fn, (int)dd, want_d);
    if (len > 20000 || dd > 10000) pare_lua_error(L, "%s: %d rows of %d inputs is too large (20000 × 10000 at most)", fn, (int)len, (int)dd);
    double *x = lua_newuserdatauv(L, (size_t)len * (size_t)dd * sizeof *x, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        if (!lua_istable(L, -1) || luaL_len(L, -1) != dd)
            pare_lua_error(L, "%s: row %d is not an array of %d numbers (as row 1)", fn, (int)i, (int)dd);
        for (lua_Integer j = 1; j <= dd; j++) {
            lua_geti(L, -1, j);
            int isnum;
            x[(i - 1) * dd + j - 1] = lua_tonumberx(L, -1, &isnum);
            if (!isnum) {
                char buf[64];
                pare_lua_error(L, "%s: row %d, input %d is %s, not a number", fn, (int)i, (int)j, pare_lua_describe(L, -1, buf, sizeof buf));
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    *n = (int)len, *d = (int)dd;
    return x;
}

static int gp_gc(lua_State *L)
{
    pare_gp **g = luaL_checkudata(L, 1, GP_MT);
    pare_gp_free(*g);
    *g = NULL;
    return 0;
}

/* g.predict(Xs) → mean, var (upvalue 1: the gp userdata) */
static int gp_predict(lua_State *L)
{
    pare_gp **g = luaL_checkudata(L, lua_upvalueindex(1), GP_MT);
    int m, d;
    double *xs = check_rows(L, 1, &m, &d, (*g)->d, "gp.predict");
    double *out = lua_newuserdatauv(L, 2 * (size_t)m * sizeof *out, 0);
    pare_status st = pare_gp_predict(*g, xs, m, out, out + m);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, m, 0);
        for (int i = 0; i < m; i++) lua_pushnumber(L, out[k * m + i]), lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

static const pare_opt_spec gp_opts[] = {
    {"kernel", PARE_OPT_ENUM, "matern52", 0, 0, "matern52|rbf", "covariance function"},
    {"lengthscale", PARE_OPT_FLOAT, "0", 0, 1e6, NULL, "length scale over inputs in [0, 1]; 0: chosen by marginal likelihood"},
    {"noise", PARE_OPT_FLOAT, "0", 0, 1e3, NULL, "noise variance as a share of y's variance; 0: chosen by marginal likelihood"},
};
static const pare_schema gp_schema = {"gp", "Gaussian-process regression (docs/tuning.md)", gp_opts,
                                      (int)(sizeof gp_opts / sizeof gp_opts[0])};

/* pare.stats.gp(X, y [, opts]) → {predict = fn, lengthscale, noise, lml, kernel, n, d} */
static int l_gp(lua_State *L)
{
    lua_settop(L, 3);
    int n, d;
    double *X = check_rows(L, 1, &n, &d, 0, "pare.stats.gp");
    luaL_checktype(L, 2, LUA_TTABLE);
    if (luaL_len(L, 2) != n) pare_lua_error(L, "pare.stats.gp: %d rows of inputs but %d observations", n, (int)luaL_len(L, 2));
    double *y = lua_newuserdatauv(L, (size_t)n * sizeof *y, 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        int isnum;
        y[i] = lua_tonumberx(L, -1, &isnum);
        if (!isnum) pare_lua_error(L, "pare.stats.gp: observation %d is not a number", i + 1);
        lua_pop(L, 1);
    }
    pare_options o;
    pare_lua_opts(L, 3, &gp_schema, &o);
    pare_gp_spec spec = {(pare_gp_kernel)(int)pare_opt_num(&o, "kernel"), pare_opt_num(&o, "lengthscale"), pare_opt_num(&o, "noise")};
    pare_gp **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = NULL;
    luaL_setmetatable(L, GP_MT);
    pare_status st = pare_gp_fit(ud, X, y, n, d, &spec);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    int udi = lua_gettop(L);
    lua_createtable(L, 0, 7);
    lua_pushvalue(L, udi);
    lua_pushcclosure(L, gp_predict, 1);
    lua_setfield(L, -2, "predict");
    lua_pushnumber(L, (*ud)->lengthscale), lua_setfield(L, -2, "lengthscale");
    lua_pushnumber(L, (*ud)->noise), lua_setfield(L, -2, "noise");
    lua_pushnumber(L, (*ud)->lml), lua_setfield(L, -2, "lml");
    lua_pushstring(L, pare_gp_kernel_name((*ud)->kernel)), lua_setfield(L, -2, "kernel");
    lua_pushinteger(L, n), lua_setfield(L, -2, "n");
    lua_pushinteger(L, d), lua_setfield(L, -2, "d");
    return 1;
}

/* pare.stats.ei(mean, sd, best [, xi]) → expected improvement below best */
static int l_ei(lua_State *L)
{
    double mean = luaL_checknumber(L, 1), sd = luaL_checknumber(L, 2), best = luaL_checknumber(L, 3), xi = luaL_optnumber(L, 4, 0);
    if (!(sd >= 0)) return pare_lua_error(L, "pare.stats.ei: sd %g must be >= 0", sd);
    lua_pushnumber(L, pare_gp_ei(mean, sd, best, xi));
    return 1;
}

/* pare.stats.normcdf(z) → Φ(z), the standard normal CDF (erfc in double) */
static int l_normcdf(lua_State *L)
{
    lua_pushnumber(L, 0.5 * erfc(-luaL_checknumber(L, 1) / M_SQRT2));
    return 1;
}

void pare_lua_gp_register(lua_State *L)
{
    if (luaL_newmetatable(L, GP_MT)) {
        lua_pushcfunction(L, gp_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_gp), lua_setfield(L, -2, "gp");
    lua_pushcfunction(L, l_ei), lua_setfield(L, -2, "ei");
    lua_pushcfunction(L, l_normcdf), lua_setfield(L, -2, "normcdf");
}
