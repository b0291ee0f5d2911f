-- pare.tune — accuracy-driven tuning: search a space of compression choices for the cheapest configuration
-- whose accuracy stays within a tolerance of the baseline's (issue 16; docs/tuning.md). Intel Neural Compressor's
-- strategies (basic, exhaustive, random, bayesian, mse, hawq) and seed 004's greedy layer search, over one space,
-- one objective, one budget, with the history in an HDF5 table so that a run resumes and plots like any sweep.
--
--   local tune = require "pare.tune"
--   local best, run = tune.run{
--     space = {{"alpha", {0.25, 0.5, 0.75}},                      -- options: a name and its choices
--              table.unpack(tune.layer_space(m:layers("*.ffn.*"), {"int8", "f32"}))},  -- per-layer: compressed first,
--     build = function(cfg) ... return model end,                 --   the fallback last
--     evaluate = function(model) return model:evaluate(task, {per_example = true}) end,  -- {accuracy, correct}
--     cost = function(model, cfg) return {latency_ms = ..., size_mb = ...} end,   -- optional: default m:bench, m:info
--     baseline = fp32,                                            -- evaluated once, the accuracy reference
--     objective = {tolerance = 0.01, relative = false, confidence = 0.9, minimize = "latency_ms"},
--     strategy = "basic",  budget = {trials = 40, seconds = 0},  seed = 1,
--     history = {exp = exp, table = "tuning"},                    -- optional: one row per trial, resumable
--   }
--   best: {config, accuracy, cost, trial, ...} of the cheapest accepted trial (nil when none was accepted);
--   run: {trials = {...}, baseline = {accuracy}, reached = trial number of the first acceptance or nil, stopped}.
--
-- Acceptance is statistical when evaluate returns per-example correctness (`correct`, 1/0 per example, for the
-- candidate and the baseline on the same examples): the paired differences d_i = c_i − b_i are bootstrapped
-- (pare.stats.bootstrap_ci of the mean, seeded) and a candidate passes when the one-sided lower bound of the mean
-- difference at `confidence` is >= −tolerance (× the baseline's accuracy when relative): "within tolerance with
-- confidence", not on a point estimate. confidence = 0, or an evaluate without `correct`, uses the point estimate
-- (recorded as such). The cost to minimise is one column (`minimize = "latency_ms"`) or a weighted sum of columns
-- ({latency_ms = 1, size_mb = 0.2}); rejected trials never become best.
--
-- Strategies (tune.strategies lists them):
--   basic       INC's: every option combination with all layers compressed; then per op type (the layer name
--               without its "enc.N." prefix) all its layers fall back at once; then each layer alone; then layers
--               fall back cumulatively in order of their single-fallback accuracy, best first. Stops at the first
--               accepted trial (as INC does); needs layer dims.
--   exhaustive  every configuration, in order (the last dim varying fastest).
--   random      configurations drawn without replacement (seeded).
--   bayesian    a Gaussian process each for accuracy and cost over the configurations mapped to [0, 1]^d
--               (pare.stats.gp), after `init` random trials (default max(3, d + 1)); next: the untried configuration
--               maximising EI(cost) × P(accuracy passes) (constrained EI, Gardner et al. 2014).
--   mse         INC's MSE strategy: all layers compressed; layers fall back cumulatively in decreasing order of
--               sensitivity.mse (from o.sensitivity, or tune.mse_sensitivity's output MSE of each layer).
--   hawq        the same ordered by sensitivity.hawq (HAWQ-V2's Tr(H)/n · ‖Q(W) − W‖² per layer: tune.hawq_sensitivity).
--   greedy      seed 004's: layers visited in order, each compressed on top of those kept; kept when accepted.
-- The budget stops any strategy: trials (evaluations, cached ones included) and seconds (0: no limit).
local pare = require "pare"

local tune = {}
tune.strategies = {"basic", "exhaustive", "random", "bayesian", "mse", "hawq", "greedy"}

local STOP = setmetatable({}, {__tostring = function() return "tune: budget exhausted" end})

-- Per-layer dims: each layer a dim whose first choice is the most compressed and whose last is the fallback.
function tune.layer_space(layers, choices)
  assert(type(layers) == "table" and type(choices) == "table" and #choices >= 2,
         "tune.layer_space(layers, choices): a list of layer names and at least two choices (compressed ... fallback)")
  local dims = {}
  for _, l in ipairs(layers) do dims[#dims + 1] = {l, choices, layer = true} end
  return dims
end

-- The op type of a layer, for basic's op-type fallback: "enc.3.ffn.up" -> "ffn.up".
function tune.op_type(name) return (name:gsub("^[%a_]+%.%d+%.", "")) end

local function fmt(v) return math.type(v) == "float" and string.format("%g", v) or tostring(v) end

local function key_of(dims, cfg)
  local parts = {}
  for i, d in ipairs(dims) do parts[i] = d[1] .. "=" .. fmt(cfg[d[1]]) end
  return table.concat(parts, " ")
end

local function check_space(space)
  if type(space) ~= "table" or #space == 0 then error("tune: space must be a non-empty list of {name, {choices...}}", 3) end
  local seen = {}
  for i, d in ipairs(space) do
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "table" or #d[2] == 0 then
      error(string.format("tune: space[%d] must be {name, {choices...}} with at least one choice", i), 3)
    end
    if seen[d[1]] then error(string.format("tune: space has '%s' twice", d[1]), 3) end
    seen[d[1]] = true
    for j, v in ipairs(d[2]) do
      local t = type(v)
      if t ~= "number" and t ~= "string" and t ~= "boolean" then
        error(string.format("tune: choice %d of '%s' is a %s; use numbers, strings or booleans", j, d[1], t), 3)
      end
    end
  end
end

-- The cost of a trial's columns under the objective.
local function cost_of(obj, row)
  if type(obj.minimize) == "string" then return row[obj.minimize] end
  local c = 0
  for k, w in pairs(obj.minimize) do c = c + w * row[k] end
  return c
end

-- Mean of the paired differences and its one-sided lower bound at `confidence`.
local function paired(c, b, confidence, seed)
  local d, s = {}, 0
  for i = 1, #b do d[i] = c[i] - b[i]; s = s + d[i] end
  local mean = s / #b
  if not confidence or confidence <= 0 then return mean, mean end
  local lo = pare.stats.bootstrap_ci(d, {stat = "mean", level = 2 * confidence - 1, resamples = 2000, seed = seed})
  return mean, lo
end

function tune.run(o)
  assert(type(o) == "table", "tune.run{...}: options table required")
  check_space(o.space)
  if type(o.build) ~= "function" then error("tune: build = function(config) -> model is required", 2) end
  if type(o.evaluate) ~= "function" then error("tune: evaluate = function(model) -> {accuracy [, correct]} is required", 2) end
  local strategy = o.strategy or "basic"
  local known = {}
  for _, s in ipairs(tune.strategies) do known[s] = true end
  if not known[strategy] then
    error(string.format("tune: strategy '%s' is not one of %s", tostring(strategy), table.concat(tune.strategies, ", ")), 2)
  end
  local obj = o.objective or {}
  obj = {tolerance = obj.tolerance or 0.01, relative = obj.relative or false, confidence = obj.confidence or 0.9,
         minimize = obj.minimize or "latency_ms"}
  if type(obj.minimize) ~= "string" and type(obj.minimize) ~= "table" then
    error("tune: objective.minimize must be a column name or {column = weight, ...}", 2)
  end
  if not (obj.confidence == 0 or (obj.confidence >= 0.75 and obj.confidence < 1)) then
    error(string.format("tune: objective.confidence %s must be 0 (point estimate) or in [0.75, 1) (a one-sided bound at c is "
                        .. "the two-sided bootstrap interval at 2c - 1)", tostring(obj.confidence)), 2)
  end
  local budget = o.budget or {}
  local max_trials, max_s = budget.trials or math.huge, budget.seconds or 0
  local seed = o.seed or 1
  local dims = o.space
  local cost_fn = o.cost or function(m)
    local b = m:bench({batch = 8, repeats = 10})
    return {latency_ms = b.median_ms, size_mb = m:info().size_bytes / 1e6}
  end

  -- baseline
  local base = o.baseline_result
  if not base then
    if not o.baseline then error("tune: baseline = model (or baseline_result = {accuracy, correct}) is required", 2) end
    base = o.evaluate(o.baseline)
  end
  local tol = obj.relative and obj.tolerance * base.accuracy or obj.tolerance

  -- history: rows already in the table are results (a rerun resumes)
  local cache, hist = {}, o.history
  local cols = {"trial", "strategy", "config", "accuracy", "delta", "delta_lo", "accepted", "acceptance", "cost", "elapsed_s"}
  if hist then
    assert(hist.exp and hist.table, "tune: history = {exp = pare.experiment(...), table = name}")
    if hist.exp:columns(hist.table) then
      for _, r in ipairs(hist.exp:rows(hist.table)) do
        if r.strategy == strategy then cache[r.config] = r end
      end
    end
  end

  local run = {trials = {}, baseline = {accuracy = base.accuracy}, tolerance = tol, strategy = strategy}
  local t0, best = pare.clock(), nil
  local quiet = o.quiet

  local function try(cfg)
    for _, d in ipairs(dims) do
      if cfg[d[1]] == nil then error("tune: a strategy gave a configuration without '" .. d[1] .. "'", 2) end
    end
    if #run.trials >= max_trials or (max_s > 0 and pare.clock() - t0 >= max_s) then error(STOP) end
    local key = key_of(dims, cfg)
    local r = cache[key]
    if r then
      r = {accuracy = r.accuracy, delta = r.delta, delta_lo = r.delta_lo, accepted = r.accepted == 1 or r.accepted == true,
           acceptance = r.acceptance, cost = r.cost, cached = true, extra = r}
    else
      local m = o.build(cfg)
      local e = o.evaluate(m)
      r = {accuracy = e.accuracy}
      if e.correct and base.correct and obj.confidence > 0 then
        if #e.correct ~= #base.correct then
          error(string.format("tune: evaluate gave %d per-example results, the baseline %d", #e.correct, #base.correct))
        end
        r.delta, r.delta_lo = paired(e.correct, base.correct, obj.confidence, seed)
        r.acceptance = string.format("bootstrap %g", obj.confidence)
      else
        r.delta = e.accuracy - base.accuracy
        r.delta_lo, r.acceptance = r.delta, "point"
      end
      r.accepted = r.delta_lo >= -tol - 1e-12
      local c = cost_fn(m, cfg)
      r.extra = c
      r.cost = cost_of(obj, c)
    end
    r.config, r.key, r.trial = cfg, key, #run.trials + 1
    run.trials[#run.trials + 1] = r
    if r.accepted and not run.reached then run.reached = r.trial end
    if r.accepted and (not best or r.cost < best.cost) then best = r end
    if hist and not r.cached then
      local row = {trial = r.trial, strategy = strategy, config = key, accuracy = r.accuracy, delta = r.delta,
                   delta_lo = r.delta_lo, accepted = r.accepted and 1 or 0, acceptance = r.acceptance, cost = r.cost,
                   elapsed_s = pare.clock() - t0}
      for k, v in pairs(r.extra) do if row[k] == nil and type(v) ~= "table" then row[k] = v end end
      for _, d in ipairs(dims) do row["d_" .. d[1]] = fmt(cfg[d[1]]) end
      hist.exp:record(hist.table, row)
    end
    if not quiet then
      io.stderr:write(string.format("[tune %s %d] acc %.4f (Δ %+.4f, lower %+.4f) %s cost %.4g%s  %s\n", strategy, r.trial,
                                    r.accuracy, r.delta, r.delta_lo, r.accepted and "pass" or "fail", r.cost,
                                    r.cached and " (from history)" or "", key))
    end
    return r
  end

  local ctx = {dims = dims, try = try, obj = obj, seed = seed, o = o, run = run}
  local ok, err = pcall(tune.strategy_fns[strategy], ctx)
  if not ok and err ~= STOP then error(err, 0) end
  run.stopped = (not ok) and "budget" or "done"
  run.best = best
  return best, run
end

-- ---- strategies ----

local function layer_dims(ctx, who)
  local L, opts = {}, {}
  for _, d in ipairs(ctx.dims) do
    if d.layer then L[#L + 1] = d else opts[#opts + 1] = d end
  end
  if #L == 0 then error("tune: strategy '" .. who .. "' needs per-layer dims (tune.layer_space)", 0) end
  return L, opts
end

-- every combination of dims (the last varying fastest), calling f(cfg) until it returns true
local function each_combination(dims, base, f)
  local idx = {}
  for i = 1, #dims do idx[i] = 1 end
  while true do
    local cfg = {}
    for k, v in pairs(base or {}) do cfg[k] = v end
    for i, d in ipairs(dims) do cfg[d[1]] = d[2][idx[i]] end
    if f(cfg) then return true end
    local i = #dims
    while i >= 1 do
      idx[i] = idx[i] + 1
      if idx[i] <= #dims[i][2] then break end
      idx[i] = 1
      i = i - 1
    end
    if i < 1 then return false end
  end
end

local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end

-- cumulative fallback of layers in `order` on top of cfg, stopping at the first accepted trial
local function cumulative(ctx, cfg, order)
  cfg = copy(cfg)
  for _, d in ipairs(order) do
    cfg[d[1]] = d[2][#d[2]]
    if ctx.try(copy(cfg)).accepted then return true end
  end
  return false
end

-- the cumulative fallback of the layer dims L on top of cfg in decreasing score(d, i) (ties: space order), the order
-- recorded in run.fallback_order
local function fallback_in_order(ctx, cfg, L, score)
  local order = {}
  for i, d in ipairs(L) do order[i] = {d = d, s = score(d, i), i = i} end
  table.sort(order, function(a, b) if a.s ~= b.s then return a.s > b.s end return a.i < b.i end)
  local ds = {}
  ctx.run.fallback_order = {}
  for i, x in ipairs(order) do ds[i], ctx.run.fallback_order[i] = x.d, x.d[1] end
  cumulative(ctx, cfg, ds)
end

local S = {}
tune.strategy_fns = S

function S.exhaustive(ctx) each_combination(ctx.dims, nil, function(cfg) ctx.try(cfg) end) end

local function lcg(seed)
  local s = seed % 2147483648
  return function(n) s = (s * 1103515245 + 12345) % 2147483648; return 1 + (s // 65536) % n end
end

local function space_size(dims)
  local n = 1
  for _, d in ipairs(dims) do n = n * #d[2] end
  return n
end

local function random_cfg(dims, rnd)
  local cfg = {}
  for _, d in ipairs(dims) do cfg[d[1]] = d[2][rnd(#d[2])] end
  return cfg
end

function S.random(ctx)
  local rnd, seen, total = lcg(ctx.seed), {}, space_size(ctx.dims)
  local n = 0
  while n < total do
    local cfg = random_cfg(ctx.dims, rnd)
    local k = key_of(ctx.dims, cfg)
    if not seen[k] then seen[k] = true; n = n + 1; ctx.try(cfg) end
  end
end

function S.basic(ctx)
  local L, opts = layer_dims(ctx, "basic")
  local all = {}
  for _, d in ipairs(L) do all[d[1]] = d[2][1] end
  -- stage 1: option combinations, every layer compressed
  local best_opt, best_acc
  if each_combination(opts, all, function(cfg)
    local r = ctx.try(cfg)
    if not best_acc or r.accuracy > best_acc then best_opt, best_acc = cfg, r.accuracy end
    return r.accepted
  end) then return end
  -- stage 2: op-type-wise fallback
  local types, order = {}, {}
  for _, d in ipairs(L) do
    local t = tune.op_type(d[1])
    if not types[t] then types[t] = {}; order[#order + 1] = t end
    table.insert(types[t], d)
  end
  if #order > 1 then
    for _, t in ipairs(order) do
      local cfg = copy(best_opt)
      for _, d in ipairs(types[t]) do cfg[d[1]] = d[2][#d[2]] end
      if ctx.try(cfg).accepted then return end
    end
  end
  -- stage 3: each layer alone, then cumulatively by its single-fallback accuracy
  local single = {}
  for i, d in ipairs(L) do
    local cfg = copy(best_opt)
    cfg[d[1]] = d[2][#d[2]]
    local r = ctx.try(cfg)
    if r.accepted then return end
    single[i] = r.accuracy
  end
  fallback_in_order(ctx, best_opt, L, function(_, i) return single[i] end)
end

local function by_sensitivity(kind)
  return function(ctx)
    local L, opts = layer_dims(ctx, kind)
    local sens = ctx.o.sensitivity and ctx.o.sensitivity[kind]
    if type(sens) == "function" then sens = sens(L) end
    if type(sens) ~= "table" then
      error(string.format("tune: strategy '%s' needs sensitivity = {%s = {[layer] = score} or function(dims)}%s", kind, kind,
                          kind == "mse" and " (tune.mse_sensitivity computes it)" or " (tune.hawq_sensitivity computes it)"), 0)
    end
    local cfg = {}
    for _, d in ipairs(opts) do cfg[d[1]] = d[2][1] end
    for _, d in ipairs(L) do
      cfg[d[1]] = d[2][1]
      if type(sens[d[1]]) ~= "number" then error(string.format("tune: sensitivity.%s has no score for '%s'", kind, d[1]), 0) end
    end
    if ctx.try(copy(cfg)).accepted then return end
    fallback_in_order(ctx, cfg, L, function(d) return sens[d[1]] end)
  end
end
S.mse = by_sensitivity("mse")
S.hawq = by_sensitivity("hawq")

function S.greedy(ctx)
  local L, opts = layer_dims(ctx, "greedy")
  local cfg = {}
  for _, d in ipairs(opts) do cfg[d[1]] = d[2][1] end
  for _, d in ipairs(L) do cfg[d[1]] = d[2][#d[2]] end -- start uncompressed
  for _, d in ipairs(L) do
    local c = copy(cfg)
    c[d[1]] = d[2][1]
    if ctx.try(c).accepted then cfg = c end
  end
end

-- configuration -> point in [0, 1]^d (a choice's index spread over [0, 1]; one choice: 0)
local function encode(dims, cfg)
  local x = {}
  for i, d in ipairs(dims) do
    local n, j = #d[2], 1
    for k, v in ipairs(d[2]) do if v == cfg[d[1]] then j = k end end
    x[i] = n > 1 and (j - 1) / (n - 1) or 0
  end
  return x
end

function S.bayesian(ctx)
  local dims, o = ctx.dims, ctx.o
  local total = space_size(dims)
  local init = o.init or math.max(3, #dims + 1)
  local rnd, seen, X, acc, cost = lcg(ctx.seed), {}, {}, {}, {}
  local function observe(cfg)
    local r = ctx.try(cfg)
    seen[key_of(dims, cfg)] = true
    X[#X + 1], acc[#acc + 1], cost[#cost + 1] = encode(dims, cfg), r.accuracy, r.cost
  end
  while #X < math.min(init, total) do
    local cfg = random_cfg(dims, rnd)
    if not seen[key_of(dims, cfg)] then observe(cfg) end
  end
  -- candidates: the whole space when small, else a seeded sample of it
  local cands = {}
  if total <= 4096 then
    each_combination(dims, nil, function(cfg) cands[#cands + 1] = cfg end)
  else
    for _ = 1, 2048 do cands[#cands + 1] = random_cfg(dims, rnd) end
  end
  local need = ctx.run.baseline.accuracy - ctx.run.tolerance
  while #X < total do
    local ga, gc = pare.stats.gp(X, acc), pare.stats.gp(X, cost)
    local best_cost = math.huge
    for i = 1, #X do
      if ctx.run.trials[i] and ctx.run.trials[i].accepted then best_cost = math.min(best_cost, cost[i]) end
    end
    local pts, which = {}, {}
    for _, cfg in ipairs(cands) do
      if not seen[key_of(dims, cfg)] then pts[#pts + 1] = encode(dims, cfg); which[#which + 1] = cfg end
    end
    if #pts == 0 then break end
    local ma, va = ga.predict(pts)
    local mc, vc = gc.predict(pts)
    local bi, bs = 1, -1
    for i = 1, #pts do
      local sa = math.sqrt(va[i])
      local pfeas = sa > 0 and pare.stats.normcdf((ma[i] - need) / sa) or (ma[i] >= need and 1 or 0)
      -- no feasible point yet: maximise the probability of feasibility alone (Gardner et al.'s first phase)
      local score = best_cost < math.huge and pare.stats.ei(mc[i], math.sqrt(vc[i]), best_cost, 0) * pfeas or pfeas
      if score > bs then bi, bs = i, score end
    end
    observe(which[bi])
  end
end

-- INC's MSE sensitivity: each layer's output in the fully compressed model against the baseline's, as a mean
-- squared error relative to the baseline output's mean square (so wide and narrow layers compare), over the first
-- n examples of task's split (m:capture).
function tune.mse_sensitivity(baseline, compressed, task, layers, opts)
  opts = opts or {}
  local names = {}
  for i, l in ipairs(layers) do names[i] = type(l) == "table" and l[1] or l end
  local cap = {split = opts.split or "train", first = 1, n = opts.n or 64}
  local a, b = baseline:capture(task, names, cap), compressed:capture(task, names, cap)
  local s = {}
  for _, n in ipairs(names) do
    local x, y, e, p = a[n].values, b[n].values, 0, 0
    for i = 1, #x do e = e + (x[i] - y[i])^2; p = p + x[i]^2 end
    s[n] = p > 0 and e / p or e
  end
  return s
end

-- HAWQ-V2's sensitivity: the average Hessian trace of each layer's weights in the baseline (m:hessian_trace,
-- Hutchinson's estimator) times the squared norm of the compression's weight perturbation ‖Q(W) − W‖² (the compressed
-- model's `dequantize` copy against the baseline, m:weight_error). opts: hessian_trace's (samples, n, batch, split,
-- eps, seed). Returns {[layer] = score}, and the traces and errors for the record.
function tune.hawq_sensitivity(baseline, compressed, task, layers, opts)
  opts = opts or {}
  local want = {}
  for _, l in ipairs(layers) do want[type(l) == "table" and l[1] or l] = true end
  local o = {layers = "*"}
  for k, v in pairs(opts) do o[k] = v end
  local traces = baseline:hessian_trace(task, o)
  local err = compressed:apply("dequantize"):weight_error(baseline)
  local s, tr = {}, {}
  for _, r in ipairs(traces) do
    if want[r.layer] then
      tr[r.layer] = r.trace / r.numel
      s[r.layer] = tr[r.layer] * (err[r.layer] or 0)
    end
  end
  for l in pairs(want) do
    if not s[l] then error("tune.hawq_sensitivity: no Linear named '" .. l .. "' in the baseline", 2) end
  end
  return s, tr, err
end

return tune
