-- lottery_ticket.lua — winning tickets against their two controls at several sparsities (issue 13; Frankle &
-- Carbin 2019, Figures 3-4; late rewinding: Frankle et al. 2020). Iterative magnitude pruning (IMP) prunes
-- `rate` of the remaining weights of every encoder Linear per round (sparsity 1 − (1 − rate)^r: 0, 50, 75,
-- 87.5, 93.75% at rate 0.5), rewinds the survivors to θ_k (k = 0: the initialisation) and retrains with the
-- same budget. At every round three models train under the same options:
--   ticket       the IMP mask, weights rewound to θ_k (the winning ticket)
--   reinit       the same mask on a fresh initialisation (another seed): does the init matter?
--   random_mask  as many zeros per layer as the ticket at random places, weights θ_k: does the mask matter?
-- Rows: one per (seed, rewind, arm, round) with sparsity reached and test accuracy; a summary table (the mean
-- over seeds) and a plot per rewind point.
--
--   pare run experiments/lottery_ticket.lua [rate=0.5] [rounds=4] [steps=300] [lr=3e-3] [rewinds=0,20]
--        [seeds=1,2] [scope=layer|global] [d=32] [max_len=96] [model=bert-mini] [task=fortune_topic] [fresh=1]
-- The default: the `text` task (which fortune file, 4 classes, bytes, T = 96) on a 2 × 32 encoder trained from
-- scratch. model= takes a zoo model (pare.zoo: a pretrained BERT's body + a fresh head, as Chen et al. 2020's
-- "lottery tickets for pre-trained BERT"): θ0 is then the pretrained weights, reinit a random init of the
-- same configuration, task= a text classification task of its tokenizer (default fortune_topic).
local pare = require "pare"
local zoo = require "pare.zoo"
local lottery = pare.lottery
local a = pare.args

local list = pare.numbers
local rate, rounds = tonumber(a.rate) or 0.5, math.tointeger(tonumber(a.rounds) or 4)
local rewinds, seeds = list(a.rewinds, {0, 20}), list(a.seeds, {1, 2})
local scope = a.scope or "layer"
local topts = {steps = math.tointeger(tonumber(a.steps) or (a.model and 200 or 300)), batch = a.model and 16 or 32,
               lr = tonumber(a.lr) or (a.model and 1e-4 or 3e-3), warmup = 20}
pare.set_threads(tonumber(a.threads) or 1)

local exp = zoo.experiment("lottery_ticket", a)

-- init(seed): the model whose weights are θ0; fresh(seed): a random initialisation of the same configuration
local task, init, fresh
if a.model then
  local mlm, tok = zoo.pretrained(a.model, {any_recipe = true})
  local max_T = mlm:info().max_T or 128
  task = pare.task(a.task or "fortune_topic", {tokenizer = tok, max_len = math.min(tonumber(a.max_len) or 128, max_T), pad_to = 0})
  init = function(seed) return (zoo.classifier(mlm, {classes = task.classes, seed = seed, max_T = max_T})) end
  fresh = function(seed)
    local cfg = zoo.body_options(mlm)
    cfg.kind, cfg.pooler, cfg.classes, cfg.seed, cfg.max_T = "encoder", "tanh", task.classes, seed + 1000, max_T
    return pare.model(cfg)
  end
else
  task = pare.task(a.task or "text", {seed = 1, max_len = tonumber(a.max_len) or 96})
  local d = tonumber(a.d) or 32
  local function build(seed)
    return pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = d, heads = 4, layers = 2,
                      ffn = 2 * d, seed = seed}
  end
  init, fresh = build, function(seed) return build(seed + 1000) end
end

exp:table("runs", {columns = {"seed", "rewind", "arm", "round", "target", "sparsity", "accuracy", "dense_accuracy"},
                   types = {target = "float", sparsity = "float", accuracy = "float", dense_accuracy = "float"},
                   labels = {rewind = "k: weights rewound to step k (0: init)", arm = "ticket | reinit | random_mask",
                             sparsity = "sparsity reached (encoder Linears)", target = "1 - (1 - rate)^round"}})

for _, seed in ipairs(seeds) do
  for _, k in ipairs(rewinds) do
    if not exp:has("runs", {seed = seed, rewind = k, arm = "random_mask", round = rounds}) then
      io.stderr:write(string.format("lottery_ticket: seed %d, rewind to step %d\n", seed, k))
      local t = {steps = topts.steps, batch = topts.batch, lr = topts.lr, warmup = topts.warmup, seed = seed}
      local dense
      lottery.run(init(seed), task, {rate = rate, rounds = rounds, rewind = k, scope = scope, train = t,
        on_round = function(r)
          dense = dense or r.accuracy
          local row = {seed = seed, rewind = k, round = r.round, target = r.target, dense_accuracy = dense}
          local function rec(arm, m)
            row.arm, row.sparsity, row.accuracy = arm, m:sparsity("enc.*").sparsity, m:evaluate(task).accuracy
            if not exp:has("runs", {seed = seed, rewind = k, arm = arm, round = r.round}) then exp:record("runs", row) end
            io.stderr:write(string.format("  round %d  %-11s sparsity %.4f  accuracy %.4f\n", r.round, arm, row.sparsity, row.accuracy))
          end
          rec("ticket", r.model)
          if r.round == 0 then
            rec("reinit", r.model) -- the dense model is its own control
            rec("random_mask", r.model)
          else
            rec("reinit", lottery.reinit(r.mask, fresh(seed), task, t))
            rec("random_mask", lottery.random_mask(r.mask, r.snap, task, t, seed))
          end
        end})
    end
  end
end

-- the mean over seeds, one row per (rewind, arm, round)
local acc = {}
for _, r in ipairs(exp:rows("runs")) do
  local key = string.format("%d|%s|%d", r.rewind, r.arm, r["round"])
  local e = acc[key] or {rewind = r.rewind, arm = r.arm, round = r["round"], n = 0, sparsity = 0, accuracy = 0, min = 1, max = 0}
  e.n, e.sparsity, e.accuracy = e.n + 1, e.sparsity + r.sparsity, e.accuracy + r.accuracy
  e.min, e.max = math.min(e.min, r.accuracy), math.max(e.max, r.accuracy)
  acc[key] = e
end
local keys = {}
for key in pairs(acc) do keys[#keys + 1] = key end
table.sort(keys, function(x, y)
  local a1, b1 = acc[x], acc[y]
  if a1.rewind ~= b1.rewind then return a1.rewind < b1.rewind end
  if a1.arm ~= b1.arm then return a1.arm < b1.arm end
  return a1.round < b1.round
end)
exp:drop("summary") -- derived from runs: rebuilt on every run (a resumed run may have added seeds)
exp:table("summary", {columns = {"rewind", "arm", "round", "sparsity", "accuracy", "accuracy_min", "accuracy_max", "seeds", "curve"},
                      types = {sparsity = "float", accuracy = "float", accuracy_min = "float", accuracy_max = "float"},
                      labels = {accuracy = "test accuracy, mean over seeds"}})
for _, key in ipairs(keys) do
  local e = acc[key]
  local row = {rewind = e.rewind, arm = e.arm, round = e.round, sparsity = e.sparsity / e.n, accuracy = e.accuracy / e.n,
               accuracy_min = e.min, accuracy_max = e.max, seeds = e.n, curve = string.format("%s (k=%d)", e.arm, e.rewind)}
  exp:record("summary", row)
end
pare.print_table(exp, "summary", {columns = {"rewind", "arm", "round", "sparsity", "accuracy", "accuracy_min", "accuracy_max", "seeds"}})
exp:plot{table = "summary", name = "accuracy", x = "sparsity", y = "accuracy", by = "curve",
         title = string.format("Lottery tickets (IMP, rate %.2f/round, %d steps): ticket vs reinit vs random mask", rate, topts.steps),
         xlabel = "sparsity of the encoder Linears", ylabel = "test accuracy (mean over seeds)"}
exp:close()
