-- outlier_suppression.lua — issue 18's Lua-level checks on a small trained encoder with injected outliers:
-- Outlier Suppression's gamma migration keeps the f32 function, its static int8 model beats plain static int8
-- (and itself without gamma migration), the chosen ranges are reported, bad options are named; SmoothQuant's
-- int8 attention takes p_scale = row | fixed; llm_int8's outlier part in f16 (the paper) or f32.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 3, n_train = 2000, n_test = 400})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 2, seed = 1}
m:train(task, {steps = 500, batch = 32, lr = 2e-3, warmup = 50, seed = 7})
local big = m:apply("inject_outliers", {factor = 40, channels = 3})
local CAL = {calib = task, calib_samples = 64}
local function with(t, extra)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
local function fid(q, ref) return q:fidelity(ref, task) end
local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end

-- (a) gamma migration alone: the same f32 function (within float rounding)
local gm = big:apply("outlier_suppression", {quantize = false})
local f = fid(gm, big)
tap.ok(f.agreement == 1 and f.cosine > 0.99999 and f.max_abs_err < 1e-3,
       string.format("gamma migration: same f32 function (cosine %.9f, max err %.2g)", f.cosine, f.max_abs_err))
tap.ok(gm:quant_report()[1].format ~= "int8", "quantize=false leaves the Linears in f32")

-- (b) the full pass: static int8 on token-wise clipped ranges
local os_big = big:apply("outlier_suppression", CAL)
local c_os = fid(os_big, big).cosine
local c_nogm = fid(big:apply("outlier_suppression", with(CAL, {gamma_migration = false})), big).cosine
local c_static = fid(big:apply("static_int8", CAL), big).cosine
local c_mm = fid(big:apply("outlier_suppression", with(CAL, {clipping = "minmax"})), big).cosine
tap.diag(string.format("logit cosine vs f32 (outliers ×40): outlier_suppression %.6f, without gamma migration %.6f, "
                       .. "with min-max ranges %.6f, static_int8 min-max %.6f", c_os, c_nogm, c_mm, c_static))
tap.ok(c_os > c_static and c_os > 0.999, "outlier suppression beats plain static int8 on a model with outliers")
tap.ok(c_os > c_nogm, "gamma migration is what removes the injected outliers (they live in γ)")
local rep = os_big:quant_report()
tap.ok(rep[1].format == "int8" and rep[1].method:find("outlier_suppression token [", 1, true) and rep[1].method:find("alpha=", 1, true),
       "quant_report gives each layer's clipped range and the coarse quantile: " .. rep[1].method)
local fixed = big:apply("outlier_suppression", with(CAL, {alpha = 0.95, fine_steps = 0})):quant_report()
tap.ok(fixed[1].method:find("alpha=0.95 f=1.000", 1, true), "alpha and fine_steps = 0 fix the range: " .. fixed[1].method)
tap.like(err(function() big:apply("outlier_suppression", with(CAL, {alpha = 1.5})) end), "alpha", "alpha outside [0, 1] is named")
tap.like(err(function() big:apply("outlier_suppression", {}) end), "calib", "quantizing without calib says to give calib")

-- SmoothQuant's int8 attention: probabilities scaled per row (default) or by the fixed 1/255
local sq_row = big:apply("smoothquant", with(CAL, {level = "O1"}))
local sq_fix = big:apply("smoothquant", with(CAL, {level = "O1", p_scale = "fixed"}))
local cr, cf = fid(sq_row, big).cosine, fid(sq_fix, big).cosine
tap.ok(cr > 0.999 and cf > 0.99 and fid(sq_row, sq_fix).max_abs_err > 0,
       string.format("smoothquant p_scale row / fixed: different outputs, cosine %.6f / %.6f", cr, cf))
tap.like(err(function() big:apply("smoothquant", with(CAL, {p_scale = "col"})) end), "p_scale", "p_scale's choices are named")

-- LLM.int8(): the outlier part in f16 (default, the paper) or f32
local l16, l32 = big:apply("llm_int8"), big:apply("llm_int8", {outlier_dtype = "f32"})
local c16, c32, ctok = fid(l16, big).cosine, fid(l32, big).cosine, fid(big:apply("dynamic_int8"), big).cosine
tap.ok(c16 > ctok and c32 > ctok and c16 > 0.999, string.format("llm_int8 f16 / f32 outliers beat plain int8: cosine %.6f / %.6f (per token %.6f)", c16, c32, ctok))
tap.ok(fid(l16, l32).max_abs_err > 0, "the f16 outlier part computes something else than the f32 one")
local r16 = l16:quant_report()[1]
tap.ok(r16.method:find("outliers=f16", 1, true) and r16.kernel:find("f16", 1, true), "the report says f16: " .. r16.method .. " / " .. r16.kernel)
tap.like(err(function() big:apply("llm_int8", {outlier_dtype = "f8"}) end), "outlier_dtype", "outlier_dtype's choices are named")

-- the passes wrote private copies: the input model computes what it computed before
local again = m:apply("inject_outliers", {factor = 40, channels = 3})
tap.ok(fid(big, again).max_abs_err == 0, "the input model is unchanged by all of it (γ and W written in private copies)")
tap.done()
