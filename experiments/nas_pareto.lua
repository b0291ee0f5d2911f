-- nas_pareto.lua — hardware-aware architecture search (HAT, Wang et al. 2020; issue 16; docs/nas.md): a
-- weight-sharing super-network trained once, a latency predictor fitted on latencies pare measures here, an
-- evolutionary search under latency constraints, and the searched sub-transformers fine-tuned and measured
-- for real against hand-scaled baselines (fewer layers; narrower layers).
--
--   pare run experiments/nas_pareto.lua [task=recall] [d=64] [layers=4] [heads=4] [ffn=256] [steps=1500]
--        [sample=sandwich] [lr=2e-3] [measure=36] [targets=0.25,0.45,0.65] [ft_steps=300] [ft_lr=1e-3]
--        [batch=1] [repeats=10] [rounds=5] [generations=12] [population=30] [scratch=0] [threads=1] [seed=1] [fresh=1]
--        [et=1] [et_stages=300,1000] [et_population=6] [et_children=10] [et_tournament=3] [et_hurdle_every=4]
--
-- Baselines: the same sub-networks-by-hand (depth: l = 1..L at full width; width: all L layers at H/2, F/2 and
-- H/4, F/4) **extracted from the same super-network and fine-tuned the same way** (ft_steps at ft_lr) as the
-- searched ones: the comparison is between architectures, with training held equal. scratch=1 also trains
-- every final architecture from random weights for `steps` steps (the super-network's budget), column
-- accuracy_scratch.
-- Latency: m:bench at batch × the task's T, one thread, `repeats` timed forwards (median and bootstrap CI), in
-- `rounds` shuffled passes over the measured configurations (the median of the rounds is recorded).
-- Task options of recall from the command line: n_keys, n_values, n_pairs, min_pairs (harder: more of each).
-- The predictor is fitted on two thirds of the measured configurations and scored on the rest; the search
-- uses the linear predictor (the best of the three on held-out rows in our runs; see the `predictor` table).
-- Fitness during the search: accuracy with inherited weights on a validation set (the task regenerated with
-- seed + 100), never the test split; among equal accuracies the lower predicted latency wins.
--
-- Tables: supernet (training), latency (every measured configuration, its predictions), predictor (held-out
-- errors per kind), search (per constraint: the configuration found), models (the front: series searched /
-- depth / width, latency measured, accuracy inherited and fine-tuned). Plots: nas_pareto-front (accuracy vs
-- measured latency by series), nas_pareto-predictor (predicted vs measured latency by predictor).
local pare = require "pare"
local nas = require "pare.nas"
local a = pare.args

local function list(s, def)
  local out = {}
  for w in tostring(s or def):gmatch("[^,]+") do out[#out + 1] = tonumber(w) end
  return out
end
local o = {
  task = a.task or "recall", d = a.d or 64, layers = a.layers or 4, heads = a.heads or 4, ffn = a.ffn or 256,
  steps = a.steps or 1500, sample = a.sample or "sandwich", lr = a.lr or 2e-3, measure = a.measure or 36,
  targets = list(a.targets, "0.25,0.45,0.65"), ft_steps = a.ft_steps or 300, ft_lr = a.ft_lr or 1e-3,
  batch = a.batch or 1, repeats = a.repeats or 10, rounds = a.rounds or 5, generations = a.generations or 12, population = a.population or 30,
  scratch = tostring(a.scratch) == "1", seed = a.seed or 1,
}
pare.set_threads(tonumber(a.threads) or 1)

local task_opts = {
  recall = {seed = o.seed, n_train = 8000, n_test = 500, n_keys = a.n_keys or 8, n_values = a.n_values or 8,
            n_pairs = a.n_pairs or 8, min_pairs = a.min_pairs or 4},
  listops = {seed = o.seed, n_train = 20000, n_test = 1000, max_depth = 3, max_args = 4, max_length = 32},
}
local topts = task_opts[o.task]
if not topts then error(string.format("nas_pareto: task=%s (valid: recall, listops)", o.task)) end
local task = pare.task(o.task, topts)
local vopts = {}
for k, v in pairs(topts) do vopts[k] = v end
vopts.seed, vopts.n_train, vopts.n_test = o.seed + 100, 16, 500
local val = pare.task(o.task, vopts) -- the search's validation set: its test split, another seed

local exp = pare.experiment("nas_pareto", {seed = o.seed, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})

-- ---- 1. the super-network, trained once (cached) ----
local tkeys = {}
for k, v in pairs(topts) do tkeys[#tkeys + 1] = k .. v end
table.sort(tkeys)
local tag = string.format("%s-%s-d%d-l%d-h%d-f%d-steps%d-%s-lr%g-seed%d", o.task, table.concat(tkeys, "_"), o.d, o.layers,
                          o.heads, o.ffn, o.steps, o.sample, o.lr, o.seed)
local dir = a.results_dir and (a.results_dir .. "/models") or "results/models"
local path = string.format("%s/nas_pareto-supernet-%s.safetensors", dir, tag)
local sup
local f = io.open(path, "rb")
if f and tostring(a.fresh) ~= "1" then
  f:close()
  sup = nas.supernet{model = pare.load(path)}
  io.stderr:write("nas_pareto: loaded " .. path .. "\n")
else
  if f then f:close() end
  sup = nas.supernet{task = task, d = o.d, layers = o.layers, heads = o.heads, ffn = o.ffn, seed = o.seed}
  local r = sup:train(task, {steps = o.steps, lr = o.lr, warmup = math.min(100, o.steps // 10), sample = o.sample,
                             seed = o.seed})
  os.execute(string.format("mkdir -p '%s'", dir))
  sup.model:save(path)
  exp:record("supernet", {task = o.task, steps = r.steps, sample = o.sample, loss = r.loss, seconds = r.seconds,
                          largest = r.largest, smallest = r.smallest, uniform = r.uniform,
                          params = sup.model:info().params})
end
local space = sup.space
io.stderr:write(string.format("nas_pareto: space layers {%s} heads {%s} ffn {%s}\n", table.concat(space.layers, ","),
                              table.concat(space.heads, ","), table.concat(space.ffn, ",")))

-- ---- 2. latencies measured on this machine, and the predictors ----
local H, F, L = o.heads, o.ffn, o.layers
local baselines = {}
for l = 1, L do baselines[#baselines + 1] = {series = "depth", cfg = {layers = l, heads = H, ffn = F}} end
for _, k in ipairs{2, 4} do
  if H // k >= 1 and F // k >= 1 then
    baselines[#baselines + 1] = {series = "width", cfg = {layers = L, heads = H // k, ffn = F // k}}
  end
end
local function in_space(c)
  c = nas.config(c)
  local ok = {layers = {}, heads = {}, ffn = {}}
  for k, l in pairs(space) do for _, v in ipairs(l) do ok[k][v] = true end end
  if not ok.layers[c.layers] then return false end
  for i = 1, c.layers do if not ok.heads[c.heads[i]] or not ok.ffn[c.ffn[i]] then return false end end
  return true
end

local bench_opts = {batch = o.batch, T = task.T, repeats = o.repeats, seed = o.seed}
local function measure(c)
  local m <close> = sup:extract(c)
  local b = m:bench(bench_opts)
  return b.median_ms, b.ci_lo_ms, b.ci_hi_ms, b.flops, b.cpu_median_ms
end
-- Latencies of cfgs in `rounds` passes, each in a new shuffled order; a configuration's latency is the median of
-- its rounds' medians (the spread of the rounds is kept): a machine whose load drifts during the run then biases
-- no configuration. Returns one record per configuration, in order.
local med = pare.stats.median
local function measure_all(cfgs, rng, what)
  local per = {}
  for r = 1, o.rounds do
    local order = {}
    for i = 1, #cfgs do order[i] = i end
    for i = #order, 2, -1 do local j = rng:below(i); order[i], order[j] = order[j], order[i] end
    for n, i in ipairs(order) do
      local ms, lo, hi, flops, cpu = measure(cfgs[i])
      per[i] = per[i] or {ms = {}, lo = {}, hi = {}, cpu = {}, flops = flops}
      local q = per[i]
      q.ms[r], q.lo[r], q.hi[r], q.cpu[r] = ms, lo, hi, cpu
      io.stderr:write(string.format("\rnas_pareto: %s latencies, round %d/%d, %d/%d", what, r, o.rounds, n, #cfgs))
    end
  end
  io.stderr:write("\n")
  local out = {}
  for i, c in ipairs(cfgs) do
    local q, feat = per[i], nas.features(c)
    out[i] = {key = nas.key(c), layers = c.layers, heads_sum = feat[3], ffn_sum = feat[4], flops = q.flops,
              latency_ms = med(q.ms), latency_lo_ms = med(q.lo), latency_hi_ms = med(q.hi), cpu_ms = med(q.cpu),
              round_min_ms = math.min(table.unpack(q.ms)), round_max_ms = math.max(table.unpack(q.ms))}
  end
  return out
end

if #exp:rows("latency") == 0 then
  local rng = nas.rng(o.seed + 7)
  local cfgs, seen = {}, {}
  local function add(c)
    c = nas.config(c)
    if not seen[nas.key(c)] and in_space(c) then cfgs[#cfgs + 1], seen[nas.key(c)] = c, true end
  end
  add(nas.largest(space))
  add(nas.smallest(space))
  local tries = 0
  while #cfgs < o.measure and tries < 100 * o.measure do add(nas.sample(space, rng)); tries = tries + 1 end
  for i, row in ipairs(measure_all(cfgs, rng, "predictor")) do
    row.split = (i % 3 == 0) and "held_out" or "fit"
    exp:record("latency", row)
  end
end
local fit_rows, held_rows = {}, {}
local function cfg_of_key(k)
  local l, h, f = k:match("^l(%d+) h([%d.]+) f([%d.]+)$")
  local c = {layers = tonumber(l), heads = {}, ffn = {}}
  for v in h:gmatch("%d+") do c.heads[#c.heads + 1] = tonumber(v) end
  for v in f:gmatch("%d+") do c.ffn[#c.ffn + 1] = tonumber(v) end
  return c
end
for _, r in ipairs(exp:rows("latency")) do
  local row = {cfg = cfg_of_key(r.key), latency_ms = r.latency_ms, flops = r.flops}
  if r.split == "fit" then fit_rows[#fit_rows + 1] = row else held_rows[#held_rows + 1] = row end
end
local preds = {
  linear = nas.fit_latency(fit_rows, {kind = "linear"}),
  mlp = nas.fit_latency(fit_rows, {kind = "mlp", seed = o.seed}),
  flops = nas.fit_latency(fit_rows, {kind = "flops"}),
}
exp:drop("predictor")
exp:drop("predictions")
for _, kind in ipairs{"linear", "mlp", "flops"} do
  local e = preds[kind]:errors(held_rows)
  local ef = preds[kind]:errors(fit_rows)
  exp:record("predictor", {kind = kind, held_out = e.n, mean_rel_err = e.mean_rel, max_rel_err = e.max_rel, rmse_ms = e.rmse,
                           fit_mean_rel_err = ef.mean_rel})
  for _, r in ipairs(held_rows) do
    local c = nas.config(r.cfg)
    c.flops = r.flops
    exp:record("predictions", {predictor = kind, key = nas.key(r.cfg), latency_ms = r.latency_ms, predicted_ms = preds[kind]:predict(c)})
  end
end
local pred = preds.linear
exp:print("predictor", {columns = {"kind", "held_out", "mean_rel_err", "max_rel_err", "rmse_ms", "fit_mean_rel_err"}})

-- ---- 3. evolution under latency constraints (predicted), fitness = inherited-weight validation accuracy ----
local lat_min, lat_max = pred:predict(nas.smallest(space)), pred:predict(nas.largest(space))
local fit_cache = {}
local function fitness(c)
  local k = nas.key(c)
  if not fit_cache[k] then fit_cache[k] = sup:accuracy(c, val) end
  return fit_cache[k]
end
local found = {}
for _, t in ipairs(o.targets) do
  local limit = lat_min + t * (lat_max - lat_min)
  local rows = exp:rows("search", {target = t})
  if #rows == 0 then
    local best, hist, evaluated = nas.evolve{space = space, fitness = fitness, seed = o.seed,
                                             constraint = function(c) return pred:predict(c) <= limit end,
                                             tiebreak = function(c) return pred:predict(c) end,
                                             generations = o.generations, population = o.population}
    exp:record("search", {target = t, limit_ms = limit, key = nas.key(best.cfg), predicted_ms = pred:predict(best.cfg),
                          val_accuracy = best.fitness, evaluated = evaluated, generations = #hist})
    rows = exp:rows("search", {target = t})
  end
  found[#found + 1] = {series = "searched", cfg = cfg_of_key(rows[1].key), target = t, limit = rows[1].limit_ms}
end
exp:print("search", {columns = {"target", "limit_ms", "key", "predicted_ms", "val_accuracy", "evaluated"}})

-- ---- 4. every final architecture: fine-tuned from inherited weights, measured for real ----
local finals = {}
for _, x in ipairs(found) do finals[#finals + 1] = x end
for _, x in ipairs(baselines) do finals[#finals + 1] = x end
local names = {}
for i, x in ipairs(finals) do
  x.name = x.series == "searched" and string.format("searched@%g", x.target) or (x.series .. ":" .. nas.key(x.cfg))
  names[i] = x.name
end
local by_name = {}
for _, x in ipairs(finals) do by_name[x.name] = x end
-- the final architectures' latencies, measured together in shuffled rounds (fine-tuning changes no shape)
local lat_of = {}
for _, r in ipairs(exp:rows("final_latency")) do lat_of[r.key] = r end
local missing, seen_key = {}, {}
for _, x in ipairs(finals) do
  local k = nas.key(x.cfg)
  if not lat_of[k] and not seen_key[k] then missing[#missing + 1], seen_key[k] = nas.config(x.cfg), true end
end
if #missing > 0 then
  exp:drop("final_latency")
  local all, seen2 = {}, {}
  for _, x in ipairs(finals) do
    local k = nas.key(x.cfg)
    if not seen2[k] then all[#all + 1], seen2[k] = nas.config(x.cfg), true end
  end
  for _, row in ipairs(measure_all(all, nas.rng(o.seed + 11), "final")) do
    exp:record("final_latency", row)
    lat_of[row.key] = row
  end
end
exp:table("models", {
  columns = {"name", "series", "key", "layers", "params", "flops", "predicted_ms", "latency_ms", "round_min_ms",
             "round_max_ms", "accuracy_inherited", "accuracy"},
  units = {latency_ms = "ms", predicted_ms = "ms"},
  labels = {latency_ms = "measured latency (1 thread)", accuracy = "test accuracy after fine-tuning",
            accuracy_inherited = "test accuracy, inherited weights"}})
pare.sweep(exp, "models", {{"name", names}}, function(p)
  local x = by_name[p.name]
  local m = sup:extract(x.cfg)
  local acc0 = m:evaluate(task).accuracy
  m:train(task, {steps = o.ft_steps, lr = o.ft_lr, warmup = math.min(20, o.ft_steps // 10), seed = o.seed})
  local lt = lat_of[nas.key(x.cfg)]
  local row = {series = x.series, key = nas.key(x.cfg), layers = x.cfg.layers, params = m:info().params, flops = lt.flops,
               predicted_ms = pred:predict(x.cfg), latency_ms = lt.latency_ms, round_min_ms = lt.round_min_ms,
               round_max_ms = lt.round_max_ms, cpu_ms = lt.cpu_ms,
               accuracy_inherited = acc0, accuracy = m:evaluate(task).accuracy}
  if o.scratch then
    local c = nas.config(x.cfg)
    local s = pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = o.d,
                         heads = o.heads, layers = o.layers, ffn = o.ffn, seed = o.seed + 1}
    s = nas.supernet{model = s}:extract(c)
    s:train(task, {steps = o.steps, lr = o.lr, warmup = math.min(100, o.steps // 10), seed = o.seed})
    row.accuracy_scratch = s:evaluate(task).accuracy
  end
  return row
end)
exp:print("models", {columns = {"name", "params", "predicted_ms", "latency_ms", "accuracy_inherited", "accuracy"}})
exp:plot{table = "models", x = "latency_ms", y = "accuracy", by = "series", kind = "points", name = "front",
         title = "NAS: accuracy vs measured latency", xlabel = "latency (ms, 1 thread)", ylabel = "test accuracy"}
exp:plot{table = "predictions", x = "latency_ms", y = "predicted_ms", by = "predictor", kind = "points", name = "predictor",
         title = "latency predictors on held-out configurations", xlabel = "measured (ms)", ylabel = "predicted (ms)"}

-- ---- 5. Evolved-Transformer-style evolution over the block (cell) from scratch, with progressive dynamic hurdles ----
-- The genome is what pare's builder varies per model: depth, heads, FFN width, activation, norm placement and the
-- attention kind (those that run at this T without options). A candidate trains from random weights with a
-- constant learning rate after a short warm-up: et_stages[1] steps, then (if it meets the hurdle) on to
-- et_stages[2], ...; fitness = validation accuracy at the stage reached. et=0 skips this part.
if tostring(a.et or 1) ~= "0" and #exp:rows("evolved") == 0 then
  local genes = {layers = {1, 2, 3}, heads = {1, 2, 4}, ffn = {64, 128, 256}, act = {"gelu", "relu"}, norm = {"pre", "post"},
                 attention = {"full", "linear", "performer"}}
  local stages = list(a.et_stages, "300,1000")
  for i, v in ipairs(stages) do stages[i] = math.tointeger(v) end
  local function build(g)
    return pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = o.d, layers = g.layers,
                      heads = g.heads, ffn = g.ffn, act = g.act, norm = g.norm, attention = g.attention, seed = o.seed}
  end
  local function staged(g, stage, state)
    if stage == 1 then state.m = build(g) end
    local n = stages[stage] - (stage > 1 and stages[stage - 1] or 0)
    state.m:train(task, {steps = n, lr = o.lr, warmup = stage == 1 and math.min(50, n // 5) or 0, min_lr_ratio = 1,
                         seed = o.seed + stage})
    state.acc = state.m:evaluate(val).accuracy
    return state.acc
  end
  local best, log, hurdles, steps = nas.evolved{genes = genes, fitness = staged, stages = stages, seed = o.seed,
                                                population = a.et_population or 6, tournament = a.et_tournament or 3,
                                                children = a.et_children or 10, hurdle_every = a.et_hurdle_every or 4}
  for _, c in ipairs(log) do
    exp:record("evolved", {candidate = c.candidate, parent = c.parent, genome = c.genome, stages = c.stages,
                           steps = stages[c.stages], fitness = c.fitness, fitness_stage1 = c.stage_fitness[1]})
  end
  for k, h in ipairs(hurdles) do exp:record("hurdles", {stage = k, hurdle = h}) end
  -- the best genome, trained again from scratch for the last stage's budget, measured for real
  local m = build(best.genome)
  m:train(task, {steps = stages[#stages], lr = o.lr, warmup = math.min(50, stages[1] // 5), min_lr_ratio = 1, seed = o.seed + 1})
  local b = m:bench(bench_opts)
  exp:record("evolved_best", {genome = nas.genome_key(best.genome, {"act", "attention", "ffn", "heads", "layers", "norm"}),
                              val_fitness = best.fitness, stage = best.stage, candidates = #log, total_steps = steps,
                              full_budget_steps = #log * stages[#stages], accuracy = m:evaluate(task).accuracy,
                              latency_ms = b.median_ms, params = m:info().params})
end
if #exp:rows("evolved") > 0 then
  exp:print("evolved_best")
  exp:print("hurdles")
  exp:plot{table = "evolved", x = "candidate", y = "fitness", by = "stages", kind = "points", name = "evolved",
           title = "ET-style evolution: validation accuracy per candidate (by stages reached)", xlabel = "candidate",
           ylabel = "validation accuracy"}
end
