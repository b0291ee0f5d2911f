-- tests/nas.lua — pare.nas: the super-network from Lua (extraction, weight-shared training), the latency
-- predictor against a FLOP-only one on a synthetic latency with a known non-FLOP term (tests never assert a
-- time; the measured comparison is experiments/nas_pareto.lua's), HAT's evolution finds the exhaustive optimum
-- of a synthetic fitness under a constraint, progressive dynamic hurdles prune as specified, errors.
local tap = require "pare.tap"
local nas = require "pare.nas"

-- ---- the super-network from Lua ----
local task = pare.task("recall", {seed = 1, n_train = 4000, n_test = 400})
local sup = nas.supernet{task = task, d = 32, layers = 3, heads = 4, ffn = 128, seed = 1}
tap.is(nas.key(nas.largest(sup.space)), "l3 h4.4.4 f128.128.128", "default space: largest is the super-network")
tap.is(nas.key(nas.smallest(sup.space)), "l1 h1 f32", "default space: smallest is 1 layer, H/4 heads, F/4 neurons")
local cfg = {layers = 2, heads = {2, 4}, ffn = {32, 128}}
local sub = sup:extract(cfg)
local info = sub:info()
tap.is(info.attention_layers, 2, "extracted: 2 layers")
tap.is(table.concat(info.heads_per_layer, ","), "2,4", "extracted: heads 2,4")
tap.is(table.concat(info.ffn_per_layer, ","), "32,128", "extracted: ffn 32,128")
tap.ok(sub:nas_flops() < sup.model:nas_flops(), "the sub-network costs fewer FLOPs")
local same = sup:extract{layers = 3, heads = 4, ffn = 128}
local fid = same:fidelity(sup.model, task)
tap.ok(fid.max_abs_err == 0, string.format("the largest sub-network is the super-network (max |diff| %g)", fid.max_abs_err))

local chance = pare.baseline(task, "majority")
local r = sup:train(task, {steps = 400, lr = 3e-3, warmup = 40, sample = "sandwich", batch = 32})
tap.is(r.steps, 400, "trained 400 steps")
tap.is(r.largest + r.smallest + r.uniform, 400, string.format("sandwich: %d largest, %d smallest, %d uniform", r.largest,
                                                              r.smallest, r.uniform))
tap.ok(r.largest == 100 and r.smallest == 100, "sandwich: a quarter largest, a quarter smallest")
local acc_big = sup:accuracy(nas.largest(sup.space), task)
local acc_small = sup:accuracy(nas.smallest(sup.space), task)
local acc_mid = sup:accuracy(cfg, task)
tap.ok(acc_big > chance + 0.05 and acc_small > chance + 0.05 and acc_mid > chance + 0.05,
       string.format("every sub-network learnt through the shared weights: largest %.3f, smallest %.3f, l2 %.3f "
                     .. "(majority %.3f)", acc_big, acc_small, acc_mid, chance))

-- weight-shared training over a space of one configuration, the whole network, is m:train: the same batches,
-- dropout masks, clipping, schedule and AdamW, so the same weights bit for bit (the write-back adds nothing else)
do
  local function mk()
    return pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4,
                      layers = 2, ffn = 64, seed = 1, dropout = 0.1}
  end
  local x, y = mk(), mk()
  x:train(task, {steps = 40, lr = 2e-3, warmup = 10})
  y:nas_train(task, {layers = 2, heads = 4, ffn = 64}, {steps = 40, lr = 2e-3, warmup = 10})
  local f = x:fidelity(y, task)
  tap.ok(f.max_abs_err == 0, string.format("nas_train on the largest configuration only = m:train, bit for bit (max |diff| %g)",
                                           f.max_abs_err))
end

-- a sub-network extracted before more training keeps its weights (it shares the untouched blobs, copy-on-write)
do
  local keep = sup:extract(cfg)
  local before = keep:evaluate(task)
  sup:train(task, {steps = 5, lr = 1e-2, warmup = 0})
  local after = keep:evaluate(task)
  tap.ok(before.loss == after.loss, "training the super-network again leaves an extracted sub-network unchanged")
end

-- ---- sampling is deterministic and stays in the space ----
local a, b = nas.rng(7), nas.rng(7)
local k1, k2, inside = {}, {}, true
for i = 1, 50 do
  local c1, c2 = nas.sample(sup.space, a), nas.sample(sup.space, b)
  k1[i], k2[i] = nas.key(c1), nas.key(c2)
  local ok = pcall(function() return sup:extract(c1) end)
  inside = inside and ok
end
tap.is(table.concat(k1, ";"), table.concat(k2, ";"), "nas.sample: the same seed draws the same configurations")
tap.ok(inside, "nas.sample: every draw extracts")

-- ---- latency predictor vs FLOP-only on a synthetic latency with a known non-FLOP term ----
-- latency = 2e-6 · FLOPs (pare's count of the extracted sub-network) + 0.4 ms (fixed: embedding, executor)
--         + 0.12 ms per layer + 0.03 ms per head (kernel overheads FLOPs do not see), with ±2% noise
local space = sup.space
local rng = nas.rng(3)
local rows = {}
for i = 1, 60 do
  local c = nas.sample(space, rng)
  local f = sup:extract(c):nas_flops()
  local h = 0
  for j = 1, c.layers do h = h + c.heads[j] end
  local lat = (2e-6 * f + 0.4 + 0.12 * c.layers + 0.03 * h) * (1 + 0.02 * (2 * rng:uniform() - 1))
  rows[i] = {cfg = c, flops = f, latency_ms = lat}
end
local train, held = {}, {}
for i, row in ipairs(rows) do if i <= 40 then train[#train + 1] = row else held[#held + 1] = row end end
local lin = nas.fit_latency(train, {kind = "linear"})
local mlp = nas.fit_latency(train, {kind = "mlp", epochs = 1500, seed = 1})
local flo = nas.fit_latency(train, {kind = "flops"})
local el, em, ef = lin:errors(held), mlp:errors(held), flo:errors(held)
tap.diag(string.format("held-out mean relative error: linear %.4f, mlp %.4f, flops-only %.4f", el.mean_rel, em.mean_rel,
                       ef.mean_rel))
tap.ok(el.mean_rel < ef.mean_rel / 2, "the linear predictor beats FLOP-only on held-out configurations by 2x or more")
tap.ok(em.mean_rel < ef.mean_rel, "the MLP predictor beats FLOP-only on held-out configurations")
tap.ok(el.mean_rel < 0.03, string.format("linear predictor within the 2%% noise level (%.4f)", el.mean_rel))
-- without a non-FLOP term FLOP-only is exact: the test can tell the two apart
local pure = {}
for i, row in ipairs(train) do pure[i] = {cfg = row.cfg, flops = row.flops, latency_ms = 3e-6 * row.flops} end
tap.ok(nas.fit_latency(pure, {kind = "flops"}):errors(pure).max_rel < 1e-9, "FLOP-only fits a pure FLOP latency exactly")

-- ---- HAT's evolution finds the exhaustive optimum of a synthetic fitness under a constraint ----
local sp = nas.check_space{layers = {1, 2, 3, 4}, heads = {1, 2, 4}, ffn = {16, 32, 64}}
local wh, wf = {1.0, 0.7, 0.45, 0.3}, {0.011, 0.009, 0.013, 0.01}
local function fitness(c)
  local s = 0.5 * c.layers
  for i = 1, c.layers do s = s + wh[i] * math.sqrt(c.heads[i]) + wf[i] * math.sqrt(c.ffn[i]) * 4 end
  return s
end
local function latency(c)
  local s = 0.3 * c.layers
  for i = 1, c.layers do s = s + 0.2 * c.heads[i] + 0.01 * c.ffn[i] end
  return s
end
local limit = 3.0
local best_f, best_k, feasible = -math.huge, nil, 0
for _, c in ipairs(nas.enumerate(sp)) do
  if latency(c) <= limit then
    feasible = feasible + 1
    if fitness(c) > best_f then best_f, best_k = fitness(c), nas.key(c) end
  end
end
local best, hist, evaluated = nas.evolve{space = sp, fitness = fitness, constraint = function(c) return latency(c) <= limit end,
                                         population = 30, parents = 8, mutations = 12, crossovers = 10, generations = 20, seed = 1}
tap.diag(string.format("exhaustive: %d of %d configurations feasible, optimum %s (%.4f); evolution found %s (%.4f) after %d "
                       .. "evaluations", feasible, #nas.enumerate(sp), best_k, best_f, nas.key(best.cfg), best.fitness, evaluated))
tap.is(nas.key(best.cfg), best_k, "evolution finds the known optimum")
tap.ok(latency(best.cfg) <= limit, "and it satisfies the constraint")
tap.ok(evaluated < feasible, string.format("with fewer evaluations (%d) than the feasible configurations (%d)", evaluated, feasible))
-- tiebreak: with a flat fitness, the lowest tiebreak value among the feasible wins
do
  local flat, low = nas.evolve{space = sp, fitness = function() return 1 end, constraint = function(c) return latency(c) <= limit end,
                               tiebreak = latency, population = 30, parents = 8, generations = 10, seed = 2}, math.huge
  for _, c in ipairs(nas.enumerate(sp)) do low = math.min(low, latency(c)) end
  tap.ok(math.abs(latency(flat.cfg) - low) < 1e-12, string.format("tiebreak: among equal fitness the lowest latency wins (%.2f)", low))
end
local mono = true
for i = 2, #hist do mono = mono and hist[i].best >= hist[i - 1].best end
tap.ok(mono, "the best fitness never falls across generations (parents survive)")

-- ---- progressive dynamic hurdles ----
local genes = {width = {1, 2, 3, 4, 5, 6}, act = {"gelu", "relu"}}
local calls = {}
local function staged(g, stage, state)
  state.n = (state.n or 0) + 1
  calls[#calls + 1] = {key = nas.genome_key(g, {"act", "width"}), stage = stage, n = state.n}
  return g.width + (g.act == "gelu" and 0.5 or 0) + stage -- later stages score higher
end
local stages = {10, 30, 60}
local eb, log, hurdles, steps = nas.evolved{genes = genes, fitness = staged, stages = stages, population = 6, tournament = 2,
                                            children = 20, hurdle_every = 4, seed = 2}
-- recompute what the hurdles must be from the log: h_k = mean stage-k fitness of the first candidates that reached
-- stage k, counted when the hurdle_every-th of them arrived
local function want_hurdle(k)
  local s, n = 0, 0
  for _, c in ipairs(log) do
    if #c.stage_fitness >= k and n < 4 then s, n = s + c.stage_fitness[k], n + 1 end
  end
  return n == 4 and s / 4 or nil
end
tap.ok(hurdles[1] ~= nil and math.abs(hurdles[1] - want_hurdle(1)) < 1e-12,
       string.format("hurdle 1 = mean stage-1 fitness of the first 4 candidates (%.3f)", hurdles[1] or -1))
local pruned_ok, passed, pruned, spent = true, 0, 0, 0
for _, c in ipairs(log) do
  spent = spent + stages[c.stages]
  for k = 1, c.stages - 1 do
    -- continuing past stage k needs the hurdle to exist (then) and to be met
    pruned_ok = pruned_ok and hurdles[k] ~= nil and c.stage_fitness[k] >= hurdles[k]
  end
  if c.candidate > 4 and c.stages == 1 then
    pruned_ok = pruned_ok and c.stage_fitness[1] < hurdles[1]
    pruned = pruned + 1
  end
  if c.stages > 1 then passed = passed + 1 end
end
tap.ok(pruned_ok, "a candidate goes on only when it meets the hurdle; after hurdle 1 exists, one below it stops at stage 1")
tap.ok(pruned > 0 and passed > 0, string.format("hurdles prune some (%d) and pass some (%d)", pruned, passed))
tap.is(steps, spent, string.format("steps spent = Σ the stage budget each candidate reached (%d)", steps))
tap.ok(#calls == (function() local n = 0 for _, c in ipairs(log) do n = n + c.stages end return n end)(),
       "fitness ran once per stage reached")
local cont = true
for _, c in ipairs(calls) do cont = cont and c.n == c.stage end
tap.ok(cont, "each candidate's state carries over from stage to stage")
if hurdles[2] then
  tap.ok(math.abs(hurdles[2] - want_hurdle(2)) < 1e-12, string.format("hurdle 2 = mean stage-2 fitness of the first 4 (%.3f)", hurdles[2]))
else
  tap.ok(false, "hurdle 2 was established")
end
tap.is(#log, 26, "population 6 + 20 children evaluated")
tap.ok(eb.genome.width == 6 and eb.genome.act == "gelu", "ET evolution finds the best genome (width 6, gelu)")

-- ---- errors name the option and the valid range ----
local function err(f) local ok, e = pcall(f) return not ok and tostring(e) or "" end
tap.like(err(function() sup:extract{layers = 4, heads = 1, ffn = 32} end), "layers = 4 is outside %[1, 3%]", "layers out of range")
tap.like(err(function() sup:extract{layers = 1, heads = 8, ffn = 32} end), "heads%[1%] = 8 is outside %[1, 4%]", "heads out of range")
tap.like(err(function() sup:extract{layers = 1, heads = 2, ffn = 500} end), "ffn%[1%] = 500 is outside %[1, 128%]", "ffn out of range")
tap.like(err(function() sup:extract{layers = 2, heads = {1}, ffn = 32} end), "heads has 1 entries; layers = 2 needs 2", "heads list length")
tap.like(err(function() sup:extract{layers = 1, heads = 1, ffn = 32, act = "relu"} end), "unknown key act", "unknown key")
tap.like(err(function() nas.supernet{task = task, d = 32, layers = 2, heads = 4, ffn = 64, space = {layers = {3}, heads = 1, ffn = 8}} end),
         "space.layers holds 3; valid: integers 1..2", "space outside the super-network")
tap.like(err(function() nas.check_space{layers = {1}, heads = {}, ffn = {8}} end), "space.heads is empty", "empty space")
tap.like(err(function() nas.check_space{layers = {1}, heads = {2}, ffn = {8}, act = {"relu"}} end),
         "unknown key act %(valid: layers, heads, ffn%)", "space key")
tap.like(err(function() sup:train(task, {steps = 1, sample = "bogus"}) end), "sample", "sample mode named")
local other = pare.task("listops", {seed = 1, n_train = 20, n_test = 10, max_length = 8, max_depth = 2})
tap.like(err(function() sup:train(other, {steps = 1}) end), "does not fit the super%-network", "a task that does not fit")
tap.like(err(function() nas.evolve{space = sp, fitness = fitness, population = 4, parents = 6} end),
         "parents = 6 is more than population = 4 %(valid: 1..4%)", "evolve: parents")
tap.like(err(function() nas.evolve{space = sp, fitness = fitness, mutation_prob = 2} end), "mutation_prob = 2 is outside %[0, 1%]",
         "evolve: mutation_prob")
tap.like(err(function() nas.evolve{space = sp, fitness = fitness, constraint = function() return false end} end),
         "no configuration out of 100 random draws satisfies the constraint", "evolve: impossible constraint")
tap.like(err(function() nas.evolved{genes = genes, fitness = staged, stages = {10, 5}} end), "stages%[2%] = 5", "evolved: stages")
tap.like(err(function() nas.evolved{genes = genes, fitness = staged, population = 2, tournament = 3} end),
         "tournament = 3 is more than population = 2 %(valid: 1..2%)", "evolved: tournament")
tap.like(err(function() nas.fit_latency(train, {kind = "cubic"}) end), "kind = cubic %(valid: linear, mlp, flops%)", "predictor kind")
tap.done()
