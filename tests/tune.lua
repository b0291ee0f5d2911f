-- tune.lua — pare.tune's strategies on synthetic spaces with cheap, known objectives (issue 16): no model is
-- built; a configuration's "model" is the configuration itself, its accuracy a known function of it, expressed as
-- per-example correctness (the baseline's answers with some examples flipped), its cost a known function.
-- Checks: exhaustive, random and Bayesian find the known optimum; Bayesian in fewer trials than the space; basic
-- follows INC's order step by step on a constructed example; mse/hawq fall back in sensitivity order; greedy keeps
-- exactly the harmless layers; the bootstrap acceptance rejects what the point estimate would pass; budgets stop;
-- a run resumes from its HDF5 history without re-evaluating; bad options give errors naming the choices.
local pare = require "pare"
local tap = pare.tap
local tune = require "pare.tune"

local N = 400
local base = {accuracy = 0.9, correct = {}}
for i = 1, N do base.correct[i] = i <= 0.9 * N and 1 or 0 end

-- a result whose accuracy drops by `drop` from the baseline's: the first round(drop·N) correct examples flipped
local function result(drop)
  local k = math.floor(drop * N + 0.5)
  local c = {}
  for i = 1, N do c[i] = (base.correct[i] == 1 and i > k) and 1 or 0 end
  return {accuracy = 0.9 - k / N, correct = c}
end

-- ---- a 3 × 4 × 2 option grid: accuracy drop and cost are known; the optimum is unique ----
local grid = {{"bits", {2, 4, 8}}, {"alpha", {0.2, 0.4, 0.6, 0.8}}, {"gran", {"tensor", "channel"}}}
local function drop_of(c)
  local d = ({[2] = 0.08, [4] = 0.006, [8] = 0.0})[c.bits] + math.abs(c.alpha - 0.6) * 0.05 + (c.gran == "tensor" and 0.004 or 0)
  return d
end
local function cost_of(c) return c.bits * 10 + (c.gran == "channel" and 3 or 0) + c.alpha end
-- the optimum by enumeration, in the test: cheapest with drop <= tolerance at the point estimate (flips rounded)
local tol = 0.02
local want, want_cost
for _, b in ipairs(grid[1][2]) do for _, a in ipairs(grid[2][2]) do for _, g in ipairs(grid[3][2]) do
  local c = {bits = b, alpha = a, gran = g}
  local r = result(drop_of(c))
  if 0.9 - r.accuracy <= tol + 1e-12 and (not want_cost or cost_of(c) < want_cost) then want, want_cost = c, cost_of(c) end
end end end

local evals = 0
local function synth(strategy, extra)
  evals = 0
  local o = {space = grid, strategy = strategy, baseline_result = base, quiet = true,
             build = function(c) return c end,
             evaluate = function(c) evals = evals + 1; return result(drop_of(c)) end,
             cost = function(c) return {latency_ms = cost_of(c)} end,
             objective = {tolerance = tol, confidence = 0}}
  for k, v in pairs(extra or {}) do o[k] = v end
  return tune.run(o)
end

local function same(a, b) return a.bits == b.bits and a.alpha == b.alpha and a.gran == b.gran end
local function show(c) return c and string.format("bits=%s alpha=%s gran=%s", c.bits, c.alpha, c.gran) or "none" end

local best, run = synth("exhaustive")
tap.ok(best and same(best.config, want), "exhaustive finds the optimum " .. show(want) .. " (got " .. show(best and best.config) .. ")")
tap.is(#run.trials, 24, "exhaustive tries all 24 configurations")
tap.is(run.stopped, "done", "and stops because it is done")
best, run = synth("random", {seed = 5})
tap.ok(best and same(best.config, want), "random (all 24 drawn) finds it")
local seen = {}
for _, t in ipairs(run.trials) do seen[t.key] = (seen[t.key] or 0) + 1 end
local dup = false
for _, v in pairs(seen) do dup = dup or v > 1 end
tap.ok(#run.trials == 24 and not dup, "random draws without replacement")
local _, run2 = synth("random", {seed = 5})
local same_order = true
for i, t in ipairs(run.trials) do same_order = same_order and run2.trials[i].key == t.key end
tap.ok(same_order, "random is reproducible for a seed")
best, run = synth("bayesian", {budget = {trials = 16}})
tap.ok(best and same(best.config, want), "bayesian finds the optimum within 16 of the 24 (" .. show(best and best.config) .. ")")
tap.ok(best and best.trial <= 16, string.format("bayesian: first acceptable at trial %s, the optimum at trial %s of 16", tostring(run.reached), tostring(best and best.trial)))
best, run = synth("exhaustive", {budget = {trials = 5}})
tap.is(#run.trials, 5, "a budget of 5 trials stops after 5")
tap.is(run.stopped, "budget", "and says so")

-- ---- statistical acceptance: a drop of 1.5 points against a tolerance of 2 ----
local function accept(conf, drop)
  local _, r = tune.run{space = {{"x", {1}}}, strategy = "exhaustive", baseline_result = base, quiet = true,
                        build = function(c) return c end, evaluate = function() return result(drop) end,
                        cost = function() return {latency_ms = 1} end, objective = {tolerance = 0.02, confidence = conf}}
  return r.trials[1]
end
local pt, bs = accept(0, 0.015), accept(0.95, 0.015)
tap.ok(pt.accepted, "point estimate: a 1.5-point drop passes a 2-point tolerance")
tap.ok(not bs.accepted and bs.delta_lo < -0.02,
       string.format("bootstrap at 95%%: its lower bound %.4f is beyond -0.02, so it fails", bs.delta_lo))
tap.ok(accept(0.95, 0.0).accepted, "bootstrap at 95%: no drop passes")
tap.is(bs.acceptance, "bootstrap 0.95", "the trial records how it was accepted")

-- ---- basic: INC's order on four layers of two op types ----
local layers = {"enc.0.attn", "enc.0.ffn", "enc.1.attn", "enc.1.ffn"}
local harm = {["enc.0.attn"] = 0.004, ["enc.0.ffn"] = 0.03, ["enc.1.attn"] = 0.012, ["enc.1.ffn"] = 0.005}
local lspace = {{"scheme", {"minmax", "kl"}}}
for _, d in ipairs(tune.layer_space(layers, {"int8", "f32"})) do lspace[#lspace + 1] = d end
local function ldrop(c)
  local d = c.scheme == "kl" and -0.003 or 0
  for l, h in pairs(harm) do if c[l] == "int8" then d = d + h end end
  return math.max(d, 0)
end
local function lrun(strategy, extra)
  local o = {space = lspace, strategy = strategy, baseline_result = base, quiet = true, build = function(c) return c end,
             evaluate = function(c) return result(ldrop(c)) end,
             cost = function(c) local n = 0 for _, l in ipairs(layers) do n = n + (c[l] == "f32" and 1 or 0) end return {latency_ms = n} end,
             objective = {tolerance = 0.01, confidence = 0}}
  for k, v in pairs(extra or {}) do o[k] = v end
  return tune.run(o)
end
best, run = lrun("basic")
local keys = {}
for i, t in ipairs(run.trials) do keys[i] = t.key end
local function k(s, a0, f0, a1, f1)
  return string.format("scheme=%s enc.0.attn=%s enc.0.ffn=%s enc.1.attn=%s enc.1.ffn=%s", s, a0, f0, a1, f1)
end
local expect = {
  k("minmax", "int8", "int8", "int8", "int8"), k("kl", "int8", "int8", "int8", "int8"),    -- stage 1: options
  k("kl", "f32", "int8", "f32", "int8"), k("kl", "int8", "f32", "int8", "f32"),            -- stage 2: op types
  k("kl", "f32", "int8", "int8", "int8"), k("kl", "int8", "f32", "int8", "int8"),          -- stage 3: each alone
  k("kl", "int8", "int8", "f32", "int8"), k("kl", "int8", "int8", "int8", "f32"),
  k("kl", "int8", "f32", "int8", "int8"), k("kl", "int8", "f32", "f32", "int8"),           -- cumulative, by accuracy
}
local match = #keys == #expect
for i = 1, math.max(#keys, #expect) do
  if keys[i] ~= expect[i] then match = false; tap.diag(string.format("trial %d: got %s, want %s", i, tostring(keys[i]), tostring(expect[i]))) end
end
tap.ok(match, "basic: options, op-type fallback, single fallbacks, cumulative fallback by single accuracy — INC's order")
tap.ok(best and best.key == expect[10], "basic stops at the first accepted configuration")
tap.is(table.concat(run.fallback_order, ","), "enc.0.ffn,enc.1.attn,enc.1.ffn,enc.0.attn", "its fallback order is by harm")

-- mse / hawq: cumulative fallback in decreasing sensitivity
local sens = {["enc.0.attn"] = 0.1, ["enc.0.ffn"] = 5, ["enc.1.attn"] = 2, ["enc.1.ffn"] = 0.5}
best, run = lrun("mse", {sensitivity = {mse = sens}})
tap.is(table.concat(run.fallback_order, ","), "enc.0.ffn,enc.1.attn,enc.1.ffn,enc.0.attn", "mse falls back in decreasing sensitivity")
tap.is(run.trials[2].key, k("minmax", "int8", "f32", "int8", "int8"), "its first fallback is the most sensitive layer")
tap.ok(best and best.accepted, "and ends accepted")
best, run = lrun("hawq", {sensitivity = {hawq = function(dims) local s = {} for i, d in ipairs(dims) do s[d[1]] = i end return s end}})
tap.is(table.concat(run.fallback_order, ","), "enc.1.ffn,enc.1.attn,enc.0.ffn,enc.0.attn", "hawq takes its order from a function too")
tap.like(tap.error_of(function() lrun("mse") end), "sensitivity = {mse =", "mse without sensitivities says what it needs")

-- greedy: compress layer by layer, keep while accepted (harm 0.004, then +0.03 fails, +0.012 → 0.016 fails, +0.005 ok)
best, run = lrun("greedy")
local kept = {}
for _, l in ipairs(layers) do if best and best.config[l] == "int8" then kept[#kept + 1] = l end end
tap.is(table.concat(kept, ","), "enc.0.attn,enc.1.ffn", "greedy keeps exactly the layers whose compression stays within tolerance")
tap.is(#run.trials, 4, "one trial per layer")

-- ---- history: resumable ----
local dir = string.format("%s/pare-tune-%d-%d", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1 << 30))
os.execute("mkdir -p '" .. dir .. "'")
local exp = pare.experiment("tune_test", {dir = dir, fresh = true})
synth("exhaustive", {budget = {trials = 7}, history = {exp = exp, table = "tuning"}})
tap.is(evals, 7, "a first run of 7 trials evaluates 7")
exp:close()
local exp2 = pare.experiment("tune_test", {dir = dir})
best, run = synth("exhaustive", {history = {exp = exp2, table = "tuning"}})
tap.is(evals, 17, "the rerun evaluates only the 17 missing")
local cached = 0
for _, t in ipairs(run.trials) do cached = cached + (t.cached and 1 or 0) end
tap.is(cached, 7, "and takes 7 from the history")
tap.ok(best and same(best.config, want), "and still finds the optimum")
tap.is(#exp2:rows("tuning"), 24, "the table has one row per configuration")

-- ---- the built-in sensitivities on a real (tiny) model ----
local task = pare.task("majority", {seed = 2, n_train = 64, n_test = 32, max_length = 8})
local m = pare.model{vocab = task.vocab, max_T = 9, classes = 2, d = 16, heads = 2, layers = 1, seed = 3}
m:train(task, {steps = 30, batch = 16, lr = 3e-3, seed = 1})
local tr = m:hessian_trace(task, {samples = 8, n = 32, batch = 16})
local names, pos = {}, 0
for _, r in ipairs(tr) do names[#names + 1] = r.layer; pos = pos + (r.layer == "head" and r.trace > 0 and 1 or 0) end
local linears = {}
for _, r in ipairs(m:quant_report()) do linears[#linears + 1] = r.layer end
tap.is(table.concat(names, ","), table.concat(linears, ","), "hessian_trace: one row per Linear, in graph order")
tap.is(pos, 1, "the head's trace is positive (cross-entropy is convex in the last layer)")
local q = m:apply("mixed", {spec = "enc.0.ffn.up=w2,*=fp32"})
local err = q:apply("dequantize"):weight_error(m)
tap.ok(err["enc.0.ffn.up"] > 0 and err["enc.0.ffn.down"] == 0, "weight_error: the quantized layer moved, the others not")
local hs = tune.hawq_sensitivity(m, q, task, linears, {samples = 4, n = 32, batch = 16})
tap.ok(hs["enc.0.ffn.up"] > 0 and hs["enc.0.attn.qkv"] == 0, "hawq_sensitivity: Tr(H)/n · ‖Q(W) − W‖², zero where nothing moved")
tap.like(tap.error_of(function() m:hessian_trace(task, {layers = "nope.*"}) end), "matches no Linear", "a bad pattern is named")
tap.like(tap.error_of(function() q:weight_error(m) end), "compare f32 weights", "weight_error on a quantized model says what to do")

-- ---- errors ----
local err_of = tap.error_of
tap.like(err_of(function() synth("annealing") end), "basic, exhaustive, random, bayesian, mse, hawq, greedy", "an unknown strategy lists them")
tap.like(err_of(function() synth("basic") end), "needs per%-layer dims", "basic without layer dims says so")
tap.like(err_of(function() tune.run{space = {{"a", {}}}, build = print, evaluate = print, baseline_result = base} end),
         "at least one choice", "an empty dim is an error")
tap.like(err_of(function() synth("exhaustive", {objective = {confidence = 0.5}}) end), "0.75, 1", "a confidence below 0.75 is refused")
tap.done()
