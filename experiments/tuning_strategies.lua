-- tuning_strategies.lua — every tuning strategy of pare.tune (issue 16) on the same space, objective and budget:
-- a per-layer choice of weight format for every Linear of a small trained encoder, the smallest model whose
-- accuracy stays within a tolerance of fp32's with confidence. Records each trial (table "tuning", one row per
-- trial, resumable), each strategy's outcome (table "strategies": trials to reach the target, the best size found,
-- its accuracy and configuration) and the Pareto front of everything tried (table "front", plot "pareto").
--
--   pare run experiments/tuning_strategies.lua [minimize=size_mb|latency_ms] [steps=600] [d=64] [layers=2]
--        [choices=w2,q4_0,int8,fp32] [trials=40] [tolerance=0.01] [confidence=0.9]
--        [strategies=basic,mse,hawq,greedy,random,bayesian,exhaustive] [fresh=0]
--
-- The model: a 2 × 64 encoder trained on ListOps for 600 steps (zoo.encoder, cached; accuracy ~0.35, where 2-bit
-- weights cost ~5 points and 4-bit nothing — a task on which the small encoder's layers differ in sensitivity).
-- The space: every Linear gets one of `choices` (the `mixed` pass's formats; the first is the most compressed, the
-- last the fallback), 4^9 = 262144 configurations for the default two layers and the head. The cost is the weights' size in MB
-- (exact: each format's bits); basic, mse, hawq and greedy move between the first and the last choice only (INC's
-- fallback), exhaustive, random and bayesian over every choice. seed 004's comparison of its greedy search with
-- INC is the basic and greedy rows. minimize=latency_ms minimises the measured forward latency instead (batch 8, 1
-- thread's worth of m:bench, 5 timed forwards per trial; noisy on a shared machine) over formats with real kernels,
-- choices=q4_0,int8,bf16,fp32 by default (w2 is simulated: its latency is not a 2-bit kernel's), into
-- results/tuning_strategies_latency.h5. Every trial records both columns.
local pare = require "pare"
local tune = require "pare.tune"
local zoo = require "pare.zoo"
local a = pare.args

local function list(s, def)
  local t = {}
  for x in tostring(s or def):gmatch("[^,]+") do t[#t + 1] = x end
  return t
end
local minimize = a.minimize or "size_mb"
if minimize ~= "size_mb" and minimize ~= "latency_ms" then error("tuning_strategies: minimize=" .. minimize .. ": size_mb or latency_ms") end
local by_latency = minimize == "latency_ms"
local choices = list(a.choices, by_latency and "q4_0,int8,bf16,fp32" or "w2,q4_0,int8,fp32")
local strategies = list(a.strategies, "basic,mse,hawq,greedy,random,bayesian,exhaustive")
local trials = tonumber(a.trials) or 40
local tol, conf = tonumber(a.tolerance) or 0.01, tonumber(a.confidence) or 0.9

local model, task = zoo.encoder("listops", {
  task = {seed = 1, n_train = 4000, n_test = 1000, max_depth = 3, max_args = 4, max_length = 64}, steps = tonumber(a.steps) or 600,
  d = tonumber(a.d) or 64, layers = tonumber(a.layers) or 2, heads = 4})
local exp = pare.experiment(by_latency and "tuning_strategies_latency" or "tuning_strategies", {fresh = tostring(a.fresh) == "1"})

local linears = {}
for _, r in ipairs(model:quant_report()) do linears[#linears + 1] = r.layer end
local space = tune.layer_space(linears, choices)

local function evaluate(m) return m:evaluate(task, {per_example = true}) end
local base = evaluate(model)
local function build(cfg)
  local spec = {}
  for _, l in ipairs(linears) do spec[#spec + 1] = l .. "=" .. cfg[l] end
  return model:apply("mixed", {spec = table.concat(spec, ",")})
end
local function cost(m)
  local info = m:info()
  local b = m:bench{batch = 8, repeats = 5, warmup = 1, warmup_min_s = 0, warmup_max_s = 0.3}
  return {size_mb = info.size_bytes / 1e6, latency_ms = b.median_ms, simulated = info.simulated and 1 or 0}
end
io.stderr:write(string.format("tuning_strategies: fp32 accuracy %.4f on %d test examples, %d layers, %d choices each\n",
                              base.accuracy, #base.correct, #linears, #choices))

-- MSE sensitivities (INC's mse strategy): each layer's output with every layer in the first choice
local all = {}
for _, l in ipairs(linears) do all[l] = choices[1] end
local sens = tune.mse_sensitivity(model, build(all), task, linears)
-- HAWQ-V2's (the hawq strategy): average Hessian trace × ‖Q(W) − W‖², traces from 16 Hutchinson samples on 256
-- training examples
local hawq = tune.hawq_sensitivity(model, build(all), task, linears, {samples = 16, n = 256, batch = 32})

if not exp:columns("strategies") then
  exp:table("strategies", {"strategy", "minimize", "trials", "reached", "best_trial", "best_size_mb", "best_latency_ms",
                           "best_accuracy", "best_delta_lo", "fp32_accuracy", "fp32_size_mb", "fp32_latency_ms", "tolerance",
                           "confidence", "best_config"})
end
local done = {}
for _, r in ipairs(exp:rows("strategies")) do done[r.strategy] = true end
local fp32_cost = cost(model)
local fp32_mb = fp32_cost.size_mb
for _, s in ipairs(strategies) do
  if not done[s] then
    local best, run = tune.run{space = space, strategy = s, build = build, evaluate = evaluate, cost = cost,
                               baseline_result = base, sensitivity = {mse = sens, hawq = hawq}, seed = 1,
                               objective = {tolerance = tol, confidence = conf, minimize = minimize},
                               budget = {trials = trials}, history = {exp = exp, table = "tuning"}}
    local bx = best and best.extra or {}
    exp:record("strategies", {strategy = s, minimize = minimize, trials = #run.trials, reached = run.reached or -1,
                              best_trial = best and best.trial or -1, best_size_mb = bx.size_mb or 0 / 0,
                              best_latency_ms = bx.latency_ms or 0 / 0,
                              best_accuracy = best and best.accuracy or 0 / 0, best_delta_lo = best and best.delta_lo or 0 / 0,
                              fp32_accuracy = base.accuracy, fp32_size_mb = fp32_mb, fp32_latency_ms = fp32_cost.latency_ms,
                              tolerance = tol, confidence = conf, best_config = best and best.key or ""})
  end
end

-- the Pareto front of every trial (accuracy up, size down), by strategy
local rows = exp:rows("tuning")
table.sort(rows, function(x, y) if x[minimize] ~= y[minimize] then return x[minimize] < y[minimize] end return x.accuracy > y.accuracy end)
if exp:columns("front") then exp:drop("front") end
local top = -1
for _, r in ipairs(rows) do
  if r.accuracy > top then
    top = r.accuracy
    exp:record("front", {size_mb = r.size_mb, latency_ms = r.latency_ms, accuracy = r.accuracy, strategy = r.strategy,
                         config = r.config})
  end
end
exp:print("strategies")
local xlabel = by_latency and "forward latency, batch 8 (ms)" or "weights (MB)"
exp:plot{table = "tuning", name = "pareto", x = minimize, y = "accuracy", by = "strategy", kind = "points",
         title = string.format("Tuning strategies: every trial (fp32 %.3f, %.2f MB, %.2f ms; tolerance %g at %g confidence)",
                               base.accuracy, fp32_mb, fp32_cost.latency_ms, tol, conf),
         xlabel = xlabel, ylabel = "test accuracy"}
exp:plot{table = "front", name = "front", x = minimize, y = "accuracy", kind = "linespoints",
         title = "Pareto front of all trials", xlabel = xlabel, ylabel = "test accuracy"}
exp:close()
