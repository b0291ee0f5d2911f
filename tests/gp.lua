-- gp.lua — pare.stats.gp / pare.stats.ei (eval/gp.c, issue 16's Bayesian optimisation) against tests/gp_ref.py,
-- a numpy posterior written from Rasmussen & Williams with solve and slogdet: posterior mean and variance, the log
-- marginal likelihood, the hyperparameters the grid chooses, expected improvement; then the posterior's
-- properties (interpolation, variance at the data) and the errors.
local pare = require "pare"
local tap = pare.tap

local py = "/usr/bin/python3"
local probe = io.open(py, "r")
if not probe or not os.execute(py .. " -c 'import numpy' 2>/dev/null") then
  if probe then probe:close() end
  tap.skip_all("needs Debian's python3-numpy (/usr/bin/python3) for the reference posterior")
end
probe:close()

-- a deterministic toy: n points in [0, 1]^d of a smooth function plus a small ripple
local function toy(n, d, seed)
  local X, y, s = {}, {}, seed
  local function u() s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 end
  for i = 1, n do
    local x, f = {}, 0
    for j = 1, d do x[j] = u(); f = f + math.sin(3 * x[j] + j) end
    X[i], y[i] = x, f + 0.05 * math.cos(17 * i)
  end
  return X, y
end

local function reference(kernel, ell, noise, X, y, Xs, eis)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(string.format("%s %.17g %.17g\nX %d %d\n", kernel, ell, noise, #X, #X[1]))
  for _, r in ipairs(X) do for _, v in ipairs(r) do f:write(string.format("%.17g ", v)) end f:write("\n") end
  f:write(string.format("y %d\n", #y))
  for _, v in ipairs(y) do f:write(string.format("%.17g\n", v)) end
  f:write(string.format("Xs %d\n", #Xs))
  for _, r in ipairs(Xs) do for _, v in ipairs(r) do f:write(string.format("%.17g ", v)) end f:write("\n") end
  for _, e in ipairs(eis or {}) do f:write(string.format("ei %.17g %.17g %.17g %.17g\n", e[1], e[2], e[3], e[4])) end
  f:close()
  local p = assert(io.popen(py .. " tests/gp_ref.py " .. path))
  local out = {}
  for l in p:lines() do
    local k, rest = l:match("^(%S+)%s+(.*)$")
    local vals = {}
    for v in rest:gmatch("%S+") do vals[#vals + 1] = tonumber(v) end
    if k == "ei" then out.ei = out.ei or {}; out.ei[#out.ei + 1] = vals[1] else out[k] = vals end
  end
  p:close()
  os.remove(path)
  return out
end

local function max_rel(a, b, floor)
  local m = 0
  for i = 1, #b do m = math.max(m, math.abs(a[i] - b[i]) / math.max(math.abs(b[i]), floor or 1e-12)) end
  return m
end

local X, y = toy(14, 3, 7)
local Xs = toy(6, 3, 99)
for _, kernel in ipairs({"matern52", "rbf"}) do
  for _, hp in ipairs({{0.4, 1e-3}, {0, 0}}) do
    local what = string.format("%s, %s", kernel, hp[1] > 0 and "ℓ 0.4, noise 1e-3" or "ℓ and noise by likelihood")
    local g = pare.stats.gp(X, y, {kernel = kernel, lengthscale = hp[1], noise = hp[2]})
    local mean, var = g.predict(Xs)
    local ref = reference(kernel, hp[1], hp[2], X, y, Xs)
    tap.is_close(g.lengthscale, ref.ell[1], 0, 1e-12, what .. ": the length scale (" .. g.lengthscale .. ")")
    tap.is_close(g.noise, ref.noise[1], 0, 1e-12, what .. ": the noise (" .. g.noise .. ")")
    tap.is_close(g.lml, ref.lml[1], 1e-9, 1e-9, what .. ": log marginal likelihood " .. g.lml)
    tap.ok(max_rel(mean, ref.mean) < 1e-8, what .. ": posterior mean (max rel. error " .. max_rel(mean, ref.mean) .. ")")
    tap.ok(max_rel(var, ref.var, 1e-6) < 1e-6, what .. ": posterior variance (max rel. error " .. max_rel(var, ref.var, 1e-6) .. ")")
  end
end

-- the grid is not a formality: the chosen ℓ beats both ends on this smooth toy
local g = pare.stats.gp(X, y)
tap.ok(g.lengthscale > 0.03 and g.lengthscale < 3, "the likelihood picks an interior length scale (" .. g.lengthscale .. ")")
local g_lo = pare.stats.gp(X, y, {lengthscale = 0.03, noise = g.noise})
tap.ok(g.lml > g_lo.lml, string.format("its likelihood %.4g beats ℓ = 0.03's %.4g", g.lml, g_lo.lml))

-- near-noiseless: the posterior interpolates the data, with ~0 variance there and prior variance far away
local gi = pare.stats.gp(X, y, {lengthscale = 0.5, noise = 1e-6})
local m_at, v_at = gi.predict(X)
tap.ok(max_rel(m_at, y, 1e-3) < 1e-3, "noise 1e-6: the mean interpolates the observations")
local vmax = 0
for _, v in ipairs(v_at) do vmax = math.max(vmax, v) end
local far_m, far_v = gi.predict({{50, 50, 50}})
local sd = pare.stats.stddev(y) * math.sqrt((#y - 1) / #y)
tap.ok(vmax < 1e-3 * sd * sd, "and its variance there is ~0 (" .. vmax .. ")")
tap.is_close(far_v[1], sd * sd, 0, 1e-9, "far from the data the variance is the prior's (y's variance)")
tap.is_close(far_m[1], pare.stats.mean(y), 1e-9, 1e-9, "and the mean y's mean")

-- expected improvement
local eis = {{0.5, 0.2, 0.4, 0}, {0.1, 0.3, 0.4, 0.01}, {1.0, 1e-9, 0.4, 0}, {0.2, 0, 0.4, 0}, {-3, 2, 0.4, 0.05}}
local ref = reference("matern52", 0.4, 1e-3, X, y, Xs, eis)
local mx = 0
for i, e in ipairs(eis) do mx = math.max(mx, math.abs(pare.stats.ei(e[1], e[2], e[3], e[4]) - ref.ei[i])) end
tap.ok(mx < 1e-12, "expected improvement against the closed form (max abs error " .. mx .. ")")
tap.ok(pare.stats.ei(0.5, 0.2, 0.4) < pare.stats.ei(0.5, 0.4, 0.4), "more uncertainty, more expected improvement")

-- errors
local err_of = tap.error_of
tap.like(err_of(function() pare.stats.gp(X, y, {kernel = "cubic"}) end), "matern52|rbf", "an unknown kernel names the valid ones")
tap.like(err_of(function() pare.stats.gp({{0, 1}, {1}}, {1, 2}) end), "row 2 is not an array of 2 numbers", "ragged inputs name the row")
tap.like(err_of(function() pare.stats.gp(X, {1, 2}) end), "14 rows of inputs but 2 observations", "a count mismatch names both")
tap.like(err_of(function() pare.stats.gp({{0}, {1}}, {1, 0 / 0}) end), "observation 2 is", "NaN in y names the observation")
tap.like(err_of(function() g.predict({{0, 1}}) end), "rows have 2 inputs; the model was fitted on 3", "predicting on the wrong width")
tap.like(err_of(function() pare.stats.gp({{0}, {0}}, {1, 2}, {lengthscale = 1, noise = 1e-18}) end), "not positive definite",
         "a singular covariance at a given noise is an error naming both hyperparameters")
tap.done()
