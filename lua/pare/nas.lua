-- pare.nas — architecture search: HAT's weight-sharing SuperTransformer with a latency predictor and an
-- evolutionary search under a latency constraint (Wang et al. 2020), and Evolved-Transformer-style evolution
-- over a cell with progressive dynamic hurdles (So et al. 2019). docs/nas.md.
--
--   local nas = require "pare.nas"
--   local sup = nas.supernet{task = task, d = 64, layers = 4, heads = 4, ffn = 256,
--                            space = {layers = {1, 2, 3, 4}, heads = {1, 2, 4}, ffn = {64, 128, 256}}}
--   sup:train(task, {steps = 2000, sample = "sandwich"})
--   local sub = sup:extract{layers = 2, heads = {2, 4}, ffn = {64, 256}}     -- a plain pare model
--   local cfg = nas.sample(sup.space, nas.rng(1))
--   local pred = nas.fit_latency(rows, {kind = "linear"})                     -- rows: {cfg, latency_ms, flops}
--   local best = nas.evolve{space = sup.space, fitness = function(c) return sup:accuracy(c, val) end,
--                           constraint = function(c) return pred:predict(c) <= 2.0 end}
--   local et = nas.evolved{genes = {...}, fitness = function(g, stage, state) ... end, stages = {50, 150}}
--
-- The engine part (extraction, weight-shared training) is C: compress/nas/supernet.h, m:nas_* methods.
-- Here: sampling, the predictor, the two searches — plain Lua, deterministic for a seed (nas.rng).
-- Deliberately not here: HAT's elastic embedding width and the encoder-decoder space (supernet.h says why);
-- ET's search over the branch structure of a cell (pare's builders offer one block shape: the cell genes are
-- the options pare.model takes per model — heads, FFN width, activation, norm placement, attention kind).
local pare = require "pare"
local nas = {}

------------------------------------------------------------------------------------------------------
-- a small deterministic generator (xorshift64*, Lua 5.4 integers wrap): the same draws on every machine
------------------------------------------------------------------------------------------------------
local Rng = {}
Rng.__index = Rng

function nas.rng(seed)
  local s = math.tointeger(seed or 1) or 1
  local r = setmetatable({s = (s * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) | 1}, Rng)
  for _ = 1, 4 do r:next() end
  return r
end

function Rng:next()
  local x = self.s
  x = x ~ (x >> 12)
  x = x ~ (x << 25)
  x = x ~ (x >> 27)
  self.s = x
  return (x * 0x2545F4914F6CDD1D) >> 11 -- 53 bits, non-negative
end

function Rng:uniform() return self:next() / 9007199254740992.0 end -- [0, 1)
function Rng:below(n) return 1 + self:next() % n end               -- 1..n
function Rng:pick(list) return list[self:below(#list)] end

------------------------------------------------------------------------------------------------------
-- configurations and spaces
------------------------------------------------------------------------------------------------------
local function as_list(v) return type(v) == "table" and v or {v} end

-- A space {layers = {...}, heads = {...}, ffn = {...}} checked: lists of positive integers; with blocks
-- (m:nas_blocks()) every choice within the super-network. Errors name the key and the valid range.
function nas.check_space(space, blocks)
  if type(space) ~= "table" then error("nas: space must be a table {layers = {...}, heads = {...}, ffn = {...}}", 3) end
  for k in pairs(space) do
    if k ~= "layers" and k ~= "heads" and k ~= "ffn" then
      error(string.format("nas: space has an unknown key %s (valid: layers, heads, ffn)", tostring(k)), 3)
    end
  end
  local out = {}
  for _, k in ipairs{"layers", "heads", "ffn"} do
    local l = as_list(space[k])
    if #l == 0 then error(string.format("nas: space.%s is empty (give at least one choice)", k), 3) end
    local hi = blocks and (k == "layers" and blocks.layers or math.min(table.unpack(blocks[k]))) or math.huge
    for _, v in ipairs(l) do
      if math.type(v) ~= "integer" or v < 1 or v > hi then
        error(string.format("nas: space.%s holds %s; valid: integers 1..%s", k, tostring(v),
                            hi == math.huge and "inf" or tostring(hi)), 3)
      end
    end
    local c = {table.unpack(l)}
    table.sort(c)
    out[k] = c
  end
  return out
end

-- A configuration drawn uniformly from space (HAT's sampling): layers, then each kept layer's heads and FFN.
function nas.sample(space, rng)
  local l = rng:pick(space.layers)
  local c = {layers = l, heads = {}, ffn = {}}
  for i = 1, l do c.heads[i], c.ffn[i] = rng:pick(space.heads), rng:pick(space.ffn) end
  return c
end

local function extreme(space, pick)
  local l = pick(space.layers)
  local c = {layers = l, heads = {}, ffn = {}}
  for i = 1, l do c.heads[i], c.ffn[i] = pick(space.heads), pick(space.ffn) end
  return c
end
function nas.largest(space) return extreme(space, function(t) return math.max(table.unpack(t)) end) end
function nas.smallest(space) return extreme(space, function(t) return math.min(table.unpack(t)) end) end

-- A configuration with heads and ffn as lists of `layers` entries (a number stands for every layer).
function nas.config(c)
  local out = {layers = c.layers, heads = {}, ffn = {}}
  for i = 1, c.layers do
    out.heads[i] = type(c.heads) == "table" and c.heads[i] or c.heads
    out.ffn[i] = type(c.ffn) == "table" and c.ffn[i] or c.ffn
  end
  return out
end
nas.copy = nas.config

-- "l3 h4.2.4 f256.64.128": a configuration as a key (tables, caches).
function nas.key(c)
  c = nas.config(c)
  return string.format("l%d h%s f%s", c.layers, table.concat(c.heads, "."), table.concat(c.ffn, "."))
end

-- Every configuration of a space (small spaces only: tests, exhaustive baselines).
function nas.enumerate(space, limit)
  limit = limit or 100000
  local out = {}
  local function rec(c, i)
    if #out > limit then error(string.format("nas.enumerate: more than %d configurations", limit), 3) end
    if i > c.layers then out[#out + 1] = nas.copy(c); return end
    for _, h in ipairs(space.heads) do
      for _, f in ipairs(space.ffn) do
        c.heads[i], c.ffn[i] = h, f
        rec(c, i + 1)
      end
    end
    c.heads[i], c.ffn[i] = nil, nil
  end
  for _, l in ipairs(space.layers) do rec({layers = l, heads = {}, ffn = {}}, 1) end
  return out
end

------------------------------------------------------------------------------------------------------
-- the super-network
------------------------------------------------------------------------------------------------------
local Super = {}
Super.__index = Super

local model_keys = {d = 64, layers = 4, heads = 4, ffn = 0, act = "gelu", norm = "pre", pos = "learned", pool = "cls",
                    dropout = 0, seed = 1}

-- nas.supernet{task = t (or vocab, max_T, classes), d, layers, heads, ffn, act, norm, pos, pool, dropout, seed,
-- kind = "encoder", space = {...}} or nas.supernet{model = m, space = {...}} (an existing model as the super-network).
-- The default space: every depth 1..L, heads {H/4, H/2, H} (those ≥ 1), FFN {F/4, F/2, F}.
function nas.supernet(o)
  if type(o) ~= "table" then error("nas.supernet: give a table of options", 2) end
  local m = o.model
  if not m then
    local t = o.task
    local cfg = {kind = o.kind or "encoder", vocab = o.vocab or (t and t.vocab), max_T = o.max_T or (t and t.T),
                 classes = o.classes or (t and t.classes)}
    if not cfg.vocab or not cfg.max_T then error("nas.supernet: give task = a task, or vocab and max_T", 2) end
    for k, v in pairs(model_keys) do cfg[k] = o[k] == nil and v or o[k] end
    if cfg.kind ~= "encoder" then cfg.classes = nil end
    m = pare.model(cfg)
  end
  local b = m:nas_blocks()
  local space = o.space
  if not space then
    local H, F = math.min(table.unpack(b.heads)), math.min(table.unpack(b.ffn))
    local hs, fs, ls, seen = {}, {}, {}, {}
    for _, h in ipairs{H // 4, H // 2, H} do if h >= 1 and not seen["h" .. h] then hs[#hs + 1], seen["h" .. h] = h, true end end
    for _, f in ipairs{F // 4, F // 2, F} do if f >= 1 and not seen["f" .. f] then fs[#fs + 1], seen["f" .. f] = f, true end end
    for l = 1, b.layers do ls[#ls + 1] = l end
    space = {layers = ls, heads = hs, ffn = fs}
  end
  return setmetatable({model = m, blocks = b, space = nas.check_space(space, b)}, Super)
end

-- Weight-shared training (m:nas_train; `pare help nas_train`): opts steps, batch, lr, warmup, ..., sample.
-- Engine errors carry the line that called the binding (here): re-raise them at the caller's line.
local function relay(ok, ...)
  if ok then return ... end
  error((tostring((...)):gsub("^[^:]*nas%.lua:%d+: ", "")), 3)
end
function Super:train(task, opts)
  local r = relay(pcall(self.model.nas_train, self.model, task, self.space, opts or {})) -- not a tail call: level 3
  return r
end
function Super:extract(c)
  local m = relay(pcall(self.model.nas_extract, self.model, c))
  return m
end
function Super:sample(rng) return nas.sample(self.space, rng) end

-- Accuracy of sub-network c with inherited weights on a split of task (evaluate's options: split, batch).
function Super:accuracy(c, task, opts)
  local sub <close> = relay(pcall(self.model.nas_extract, self.model, c))
  return sub:evaluate(task, opts).accuracy
end

------------------------------------------------------------------------------------------------------
-- latency predictor (HAT §3.3): features of a configuration, a model fitted on measured latencies
------------------------------------------------------------------------------------------------------

-- Features of c: 1, layers, Σ heads, Σ FFN neurons (the kept layers'). Every FLOP count of a block stack at a
-- fixed (B, T) is a linear function of these, so FLOP-only is a special case of the linear model; what the
-- linear model adds is an intercept (embedding, head, executor overhead) and its own price per layer, per
-- head and per neuron, where the kernels' efficiency differs from their FLOPs.
function nas.features(c)
  c = nas.config(c)
  local h, f = 0, 0
  for i = 1, c.layers do h, f = h + c.heads[i], f + c.ffn[i] end
  return {1, c.layers, h, f}
end

-- Least squares by the normal equations with a small ridge (λ relative to the diagonal), solved by
-- Gaussian elimination with partial pivoting. X: list of feature rows, y: targets. Returns the weights.
local function lstsq(X, y, ridge)
  local p = #X[1]
  local A, b = {}, {}
  for i = 1, p do
    A[i], b[i] = {}, 0
    for j = 1, p do A[i][j] = 0 end
  end
  for n = 1, #X do
    local x = X[n]
    for i = 1, p do
      b[i] = b[i] + x[i] * y[n]
      for j = 1, p do A[i][j] = A[i][j] + x[i] * x[j] end
    end
  end
  for i = 1, p do A[i][i] = A[i][i] * (1 + (ridge or 1e-9)) + 1e-12 end
  for c = 1, p do
    local piv = c
    for r = c + 1, p do if math.abs(A[r][c]) > math.abs(A[piv][c]) then piv = r end end
    A[c], A[piv], b[c], b[piv] = A[piv], A[c], b[piv], b[c]
    for r = c + 1, p do
      local f = A[r][c] / A[c][c]
      for k = c, p do A[r][k] = A[r][k] - f * A[c][k] end
      b[r] = b[r] - f * b[c]
    end
  end
  local w = {}
  for i = p, 1, -1 do
    local s = b[i]
    for k = i + 1, p do s = s - A[i][k] * w[k] end
    w[i] = s / A[i][i]
  end
  return w
end
nas.lstsq = lstsq

local Pred = {}
Pred.__index = Pred

function Pred:predict(c)
  if self.kind == "flops" then return self.w * (c.flops or self.flops_of(c)) end
  local x = self.featurize(c)
  if self.kind == "linear" then
    local s = 0
    for i = 1, #x do s = s + self.w[i] * x[i] end
    return s
  end
  -- mlp: standardised features -> tanh hidden layer -> linear output, in standardised latency units
  local z = {}
  for i = 2, #x do z[i - 1] = (x[i] - self.mu[i]) / self.sd[i] end
  local out = self.b2
  for j = 1, #self.W1 do
    local a = self.b1[j]
    for i = 1, #z do a = a + self.W1[j][i] * z[i] end
    out = out + self.W2[j] * math.tanh(a)
  end
  return out * self.ysd + self.ymu
end

-- Errors of a predictor on rows {cfg = c, latency_ms = y [, flops]}: mean and max relative error, RMSE.
function Pred:errors(rows)
  local sum, mx, se = 0, 0, 0
  for _, r in ipairs(rows) do
    local c = nas.copy(r.cfg)
    c.flops = r.flops
    local e = self:predict(c) - r.latency_ms
    sum, mx, se = sum + math.abs(e) / r.latency_ms, math.max(mx, math.abs(e) / r.latency_ms), se + e * e
  end
  return {mean_rel = sum / #rows, max_rel = mx, rmse = math.sqrt(se / #rows), n = #rows}
end

-- Fit a latency predictor on rows {cfg = c, latency_ms = y, flops = f}:
--   kind = "linear" (default): least squares on nas.features (or o.features(c));
--   kind = "mlp": HAT's choice, one tanh hidden layer of o.hidden (8) units, full-batch Adam for o.epochs (3000)
--                 on standardised features, seeded by o.seed;
--   kind = "flops": latency = w · FLOPs, the one coefficient by least squares through the origin (rows need
--                   flops; predicting needs c.flops or o.flops_of(c)).
function nas.fit_latency(rows, o)
  o = o or {}
  local kind = o.kind or "linear"
  if kind ~= "linear" and kind ~= "mlp" and kind ~= "flops" then
    error(string.format("nas.fit_latency: kind = %s (valid: linear, mlp, flops)", tostring(kind)), 2)
  end
  if #rows < 2 then error("nas.fit_latency: needs at least 2 measured configurations", 2) end
  local p = setmetatable({kind = kind, featurize = o.features or nas.features, flops_of = o.flops_of}, Pred)
  if kind == "flops" then
    local sxy, sxx = 0, 0
    for _, r in ipairs(rows) do
      if not r.flops then error("nas.fit_latency: kind = flops needs rows with flops", 2) end
      sxy, sxx = sxy + r.flops * r.latency_ms, sxx + r.flops * r.flops
    end
    p.w = sxy / sxx
    return p
  end
  local X, y = {}, {}
  for i, r in ipairs(rows) do X[i], y[i] = p.featurize(r.cfg), r.latency_ms end
  if kind == "linear" then
    p.w = lstsq(X, y, o.ridge)
    return p
  end
  -- mlp
  local nf, H = #X[1], o.hidden or 8
  p.mu, p.sd = {}, {}
  for i = 2, nf do
    local s, ss = 0, 0
    for n = 1, #X do s, ss = s + X[n][i], ss + X[n][i] ^ 2 end
    p.mu[i] = s / #X
    p.sd[i] = math.sqrt(math.max(ss / #X - p.mu[i] ^ 2, 1e-12))
  end
  local ys, yss = 0, 0
  for n = 1, #y do ys, yss = ys + y[n], yss + y[n] ^ 2 end
  p.ymu, p.ysd = ys / #y, math.sqrt(math.max(yss / #y - (ys / #y) ^ 2, 1e-12))
  local Z, t = {}, {}
  for n = 1, #X do
    Z[n] = {}
    for i = 2, nf do Z[n][i - 1] = (X[n][i] - p.mu[i]) / p.sd[i] end
    t[n] = (y[n] - p.ymu) / p.ysd
  end
  local rng = nas.rng(o.seed or 1)
  local d = nf - 1
  local function normal() return math.sqrt(-2 * math.log(1 - rng:uniform())) * math.cos(2 * math.pi * rng:uniform()) end
  p.W1, p.b1, p.W2, p.b2 = {}, {}, {}, 0
  for j = 1, H do
    p.W1[j], p.b1[j], p.W2[j] = {}, 0, normal() / math.sqrt(H)
    for i = 1, d do p.W1[j][i] = normal() / math.sqrt(d) end
  end
  -- Adam over the flat parameter list
  local params = {}
  for j = 1, H do
    for i = 1, d do params[#params + 1] = {p.W1[j], i} end
    params[#params + 1] = {p.b1, j}
    params[#params + 1] = {p.W2, j}
  end
  params[#params + 1] = {p, "b2"}
  local mom, vel = {}, {}
  for k = 1, #params do mom[k], vel[k] = 0, 0 end
  local lr, b1, b2, eps = o.lr or 0.01, 0.9, 0.999, 1e-8
  local gW1, gb1, gW2 = {}, {}, {}
  for step = 1, o.epochs or 3000 do
    for j = 1, H do
      gW1[j], gb1[j], gW2[j] = gW1[j] or {}, 0, 0
      for i = 1, d do gW1[j][i] = 0 end
    end
    local gb2 = 0
    for n = 1, #Z do
      local z, a = Z[n], {}
      local out = p.b2
      for j = 1, H do
        local s = p.b1[j]
        for i = 1, d do s = s + p.W1[j][i] * z[i] end
        a[j] = math.tanh(s)
        out = out + p.W2[j] * a[j]
      end
      local e = 2 * (out - t[n]) / #Z
      gb2 = gb2 + e
      for j = 1, H do
        gW2[j] = gW2[j] + e * a[j]
        local da = e * p.W2[j] * (1 - a[j] * a[j])
        gb1[j] = gb1[j] + da
        for i = 1, d do gW1[j][i] = gW1[j][i] + da * z[i] end
      end
    end
    local grads = {}
    for j = 1, H do
      for i = 1, d do grads[#grads + 1] = gW1[j][i] end
      grads[#grads + 1] = gb1[j]
      grads[#grads + 1] = gW2[j]
    end
    grads[#grads + 1] = gb2
    local c1, c2 = 1 - b1 ^ step, 1 - b2 ^ step
    for k, pr in ipairs(params) do
      local g = grads[k] + (o.weight_decay or 1e-4) * (pr[2] == "b2" and 0 or pr[1][pr[2]])
      mom[k] = b1 * mom[k] + (1 - b1) * g
      vel[k] = b2 * vel[k] + (1 - b2) * g * g
      pr[1][pr[2]] = pr[1][pr[2]] - lr * (mom[k] / c1) / (math.sqrt(vel[k] / c2) + eps)
    end
  end
  return p
end

------------------------------------------------------------------------------------------------------
-- HAT's evolutionary search under a constraint
------------------------------------------------------------------------------------------------------

-- Mutate c: the depth with probability prob (a new depth's extra layers drawn at random), and each layer's
-- heads and FFN width with probability prob (redrawn from the space).
function nas.mutate(c, space, rng, prob)
  local m = nas.copy(c)
  if rng:uniform() < prob then
    m.layers = rng:pick(space.layers)
    for i = c.layers + 1, m.layers do m.heads[i], m.ffn[i] = rng:pick(space.heads), rng:pick(space.ffn) end
    for i = m.layers + 1, c.layers do m.heads[i], m.ffn[i] = nil, nil end
  end
  for i = 1, m.layers do
    if rng:uniform() < prob then m.heads[i] = rng:pick(space.heads) end
    if rng:uniform() < prob then m.ffn[i] = rng:pick(space.ffn) end
  end
  return m
end

-- Crossover of a and b: the depth from one of them, each gene from either (a layer one parent lacks takes
-- the other's).
function nas.crossover(a, b, rng)
  local c = {layers = rng:uniform() < 0.5 and a.layers or b.layers, heads = {}, ffn = {}}
  for i = 1, c.layers do
    local pa, pb = a.heads[i] and a or b, b.heads[i] and b or a
    local src = rng:uniform() < 0.5 and pa or pb
    c.heads[i] = src.heads[i]
    src = rng:uniform() < 0.5 and pa or pb
    c.ffn[i] = src.ffn[i]
  end
  return c
end

-- nas.evolve{space, fitness = fn(c) -> number (higher better), constraint = fn(c) -> true if allowed (nil: all),
--   population = 30, parents = 8, mutations = 12, crossovers = 10, mutation_prob = 0.3, generations = 15,
--   seed = 1, tries = 100 (draws per child to satisfy the constraint), init = {configs} (extra initial members),
--   tiebreak = fn(c) -> number (among equal fitness the lower wins, e.g. the predicted latency; nil: none)}
-- -> best {cfg, fitness}, history {{generation, best, mean, evaluated}}, evaluated (distinct configurations).
-- HAT §3.4: a population of random valid configurations; each generation the top `parents` survive and
-- `mutations` + `crossovers` children (each redrawn until it satisfies the constraint) fill the population.
-- Parents are distinct configurations, and a child already in the population is redrawn (up to 10 times):
-- without that the population collapses onto copies of one configuration within a few generations.
-- Fitness is cached per configuration (nas.key).
function nas.evolve(o)
  local space = o.space
  local P, K = o.population or 30, o.parents or 8
  local NM, NC = o.mutations or 12, o.crossovers or 10
  local prob, G, tries = o.mutation_prob or 0.3, o.generations or 15, o.tries or 100
  for k, v in pairs{population = P, parents = K, generations = G} do
    if math.type(v) ~= "integer" or v < 1 then error(string.format("nas.evolve: %s = %s must be an integer >= 1", k, tostring(v)), 2) end
  end
  if K > P then error(string.format("nas.evolve: parents = %d is more than population = %d (valid: 1..%d)", K, P, P), 2) end
  if prob < 0 or prob > 1 then error(string.format("nas.evolve: mutation_prob = %g is outside [0, 1]", prob), 2) end
  if type(o.fitness) ~= "function" then error("nas.evolve: fitness must be a function(cfg) -> number", 2) end
  local ok = o.constraint or function() return true end
  local rng = nas.rng(o.seed or 1)
  local cache, evaluated = {}, 0
  local function fit(c)
    local k = nas.key(c)
    if cache[k] == nil then cache[k] = o.fitness(c); evaluated = evaluated + 1 end
    return cache[k]
  end
  local function valid_child(make)
    for _ = 1, tries do
      local c = make()
      if ok(c) then return c end
    end
    return nil
  end
  local pop = {}
  for _, c in ipairs(o.init or {}) do if ok(c) then pop[#pop + 1] = nas.copy(c) end end
  while #pop < P do
    local c = valid_child(function() return nas.sample(space, rng) end)
    if not c then error(string.format("nas.evolve: no configuration out of %d random draws satisfies the constraint", tries), 2) end
    pop[#pop + 1] = c
  end
  local history, best = {}, nil
  for g = 1, G do
    local scored = {}
    for _, c in ipairs(pop) do
      scored[#scored + 1] = {cfg = c, fitness = fit(c), key = nas.key(c), tie = o.tiebreak and o.tiebreak(c) or 0}
    end
    table.sort(scored, function(a, b)
      if a.fitness ~= b.fitness then return a.fitness > b.fitness end
      if a.tie ~= b.tie then return a.tie < b.tie end
      return a.key < b.key
    end)
    local mean = 0
    for _, s in ipairs(scored) do mean = mean + s.fitness end
    local top = scored[1]
    if not best or top.fitness > best.fitness or (top.fitness == best.fitness and top.tie < best.tie) then
      best = {cfg = top.cfg, fitness = top.fitness, tie = top.tie}
    end
    history[#history + 1] = {generation = g, best = scored[1].fitness, mean = mean / #scored, evaluated = evaluated}
    if g == G then break end
    local parents, seen = {}, {}
    for _, sc in ipairs(scored) do -- the top K distinct configurations
      if #parents < K and not seen[sc.key] then parents[#parents + 1], seen[sc.key] = sc.cfg, true end
    end
    pop = {}
    for i = 1, #parents do pop[i] = parents[i] end
    -- children: valid, and new to the population when a few draws can make them so (diversity)
    local function child(make)
      local c
      for _ = 1, 10 do
        c = valid_child(make)
        if not c or not seen[nas.key(c)] then break end
      end
      if c then seen[nas.key(c)] = true; pop[#pop + 1] = c end
    end
    for _ = 1, NM do child(function() return nas.mutate(rng:pick(parents), space, rng, prob) end) end
    for _ = 1, NC do child(function() return nas.crossover(rng:pick(parents), rng:pick(parents), rng) end) end
  end
  return best, history, evaluated
end

------------------------------------------------------------------------------------------------------
-- Evolved-Transformer-style evolution: tournament selection, one-gene mutations, progressive dynamic hurdles
------------------------------------------------------------------------------------------------------

-- nas.evolved{genes = {name = {choices...}, ...}, fitness = fn(genome, stage, state) -> number, stages = {s1, s2, ...},
--   population = 8, tournament = 3, children = 16, hurdle_every = 4, seed = 1, init = {genomes}}
-- fitness trains the candidate up to stages[stage] cumulative steps and returns its fitness there; `state` is a
-- table kept per candidate across its stages (the model being trained). Regularised evolution (So et al. 2019
-- §3, after Real et al. 2019): the population is a queue; each child is a one-gene mutation of the best of
-- `tournament` members drawn at random; it joins the queue and the oldest member leaves.
-- Progressive dynamic hurdles (So et al. §4): every candidate is trained to stage 1; once `hurdle_every`
-- candidates have been evaluated at the last established stage k, hurdle h_k is set to the mean fitness of
-- the candidates that reached stage k so far, and from then on a candidate continues to stage k + 1 only if
-- its stage-k fitness is at least h_k. A candidate's fitness is the one at the last stage it reached.
-- -> best {genome, fitness, stage}, log {{candidate, genome (key), parent, stage_fitness = {...}, stages, fitness}},
--    hurdles {h_1, ...}, steps (total training steps spent).
local function genome_key(g, names)
  local parts = {}
  for _, n in ipairs(names) do parts[#parts + 1] = n .. "=" .. tostring(g[n]) end
  return table.concat(parts, " ")
end
nas.genome_key = genome_key

function nas.evolved(o)
  if type(o.genes) ~= "table" then error("nas.evolved: genes must be a table {name = {choices...}}", 2) end
  if type(o.fitness) ~= "function" then error("nas.evolved: fitness must be a function(genome, stage, state) -> number", 2) end
  local stages = o.stages or {1}
  if #stages < 1 then error("nas.evolved: stages must list at least one training budget", 2) end
  for i, s in ipairs(stages) do
    if math.type(s) ~= "integer" or s < 1 or (i > 1 and s <= stages[i - 1]) then
      error(string.format("nas.evolved: stages[%d] = %s: stages are increasing step counts >= 1", i, tostring(s)), 2)
    end
  end
  local names = {}
  for n, ch in pairs(o.genes) do
    if type(ch) ~= "table" or #ch < 1 then error(string.format("nas.evolved: genes.%s must be a non-empty list", n), 2) end
    names[#names + 1] = n
  end
  table.sort(names)
  local P, S, N = o.population or 8, o.tournament or 3, o.children or 16
  local every = o.hurdle_every or 4
  if S > P then error(string.format("nas.evolved: tournament = %d is more than population = %d (valid: 1..%d)", S, P, P), 2) end
  if every < 1 then error(string.format("nas.evolved: hurdle_every = %s must be >= 1", tostring(every)), 2) end
  local rng = nas.rng(o.seed or 1)
  local hurdles, reached, steps = {}, {}, 0 -- reached[k]: fitness values of the candidates that reached stage k
  local log, best = {}, nil
  for k = 1, #stages do reached[k] = {} end
  local function mean(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s / #t end

  local function run(g, parent)
    local state, fits = {}, {}
    local k = 1
    while true do
      fits[k] = o.fitness(g, k, state)
      steps = steps + stages[k] - (k > 1 and stages[k - 1] or 0)
      reached[k][#reached[k] + 1] = fits[k]
      -- establish the next hurdle once enough candidates were evaluated at the last stage with none
      local nh = #hurdles
      if nh < #stages - 1 and k == nh + 1 and #reached[k] >= every then
        hurdles[nh + 1] = mean(reached[nh + 1])
      end
      if k == #stages or not hurdles[k] or fits[k] < hurdles[k] then break end
      k = k + 1
    end
    local c = {candidate = #log + 1, genome = genome_key(g, names), parent = parent, stage_fitness = fits, stages = k,
               fitness = fits[k], g = g}
    log[#log + 1] = c
    if not best or c.fitness > best.fitness or (c.fitness == best.fitness and c.stages > best.stage) then
      best = {genome = g, fitness = c.fitness, stage = k, candidate = c.candidate}
    end
    return c
  end

  local function random_genome()
    local g = {}
    for _, n in ipairs(names) do g[n] = rng:pick(o.genes[n]) end
    return g
  end
  local function mutate(g)
    local movable = {}
    for _, n in ipairs(names) do if #o.genes[n] > 1 then movable[#movable + 1] = n end end
    local c = {}
    for k, v in pairs(g) do c[k] = v end
    if #movable == 0 then return c end
    local n = rng:pick(movable)
    local others = {}
    for _, v in ipairs(o.genes[n]) do if v ~= g[n] then others[#others + 1] = v end end
    c[n] = rng:pick(others)
    return c
  end

  local queue = {}
  for _, g in ipairs(o.init or {}) do if #queue < P then queue[#queue + 1] = run(g, 0) end end
  while #queue < P do queue[#queue + 1] = run(random_genome(), 0) end
  for _ = 1, N do
    local champ
    for _ = 1, S do
      local c = queue[rng:below(#queue)]
      if not champ or c.fitness > champ.fitness then champ = c end
    end
    local child = run(mutate(champ.g), champ.candidate)
    table.remove(queue, 1)
    queue[#queue + 1] = child
  end
  for _, c in ipairs(log) do c.g = nil end
  return best, log, hurdles, steps
end

pare.nas = nas
return nas
