-- prune_heads.lua — m:head_importance from Lua (Michel et al. 2019; the numbers themselves are checked
-- against finite differences in test_prune_heads.c): one entry per attention layer in node order, scores
-- normalised per layer, the scores of a model with heads dropped, and the errors naming the option.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 5, n_train = 128, n_test = 32, max_length = 9})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 32, heads = 4, layers = 3, ffn = 64, seed = 2}
m:train(task, {steps = 40, batch = 32, lr = 3e-3, warmup = 10})

local imp = m:head_importance(task, {n = 32})
tap.is(#imp, 3, "one entry per attention layer")
tap.is(imp[1].name .. " " .. imp[3].name, "enc.0.attn enc.2.attn", "in node order, named by the attention nodes")
local unit = true
for _, l in ipairs(imp) do
  local s2 = 0
  for _, s in ipairs(l.scores) do s2 = s2 + s * s end
  unit = unit and #l.scores == 4 and l.heads == 4 and math.abs(s2 - 1) < 1e-9
end
tap.ok(unit, "4 scores per layer with unit L2 norm (normalize = true)")
local raw = m:head_importance(task, {n = 32, normalize = false})
tap.ok(math.abs(raw[2].scores[1] / raw[2].scores[2] - imp[2].scores[1] / imp[2].scores[2]) < 1e-9,
       "normalize = false keeps the ratios within a layer")
local p = m:drop_heads("enc.1.attn", {0, 2})
local pi = p:head_importance(task, {n = 32, batch = 8})
tap.is(pi[2].heads .. " " .. #pi[2].scores, "2 2", "a model with heads dropped is scored on the heads it has")
tap.like(err_of(m.head_importance, m, task, {first = 0}), "first=0 is outside 1..128", "first out of range")
tap.like(err_of(m.head_importance, m, task, {n = -1}), "n=%-1 must be >= 0", "negative n")
tap.like(err_of(m.head_importance, m, task, {batch = 0}), "batch=0 must be >= 1", "batch 0")
tap.like(err_of(m.head_importance, m, task, {spilt = "test"}), "unknown option 'spilt'", "a misspelt option is named")
tap.like(err_of(m.head_importance, m, task, {split = "dev"}), "split='dev'", "an unknown split is named")

-- m:head_relevance (Voita et al.'s LRP; numbers checked against numpy in test_head_lrp.c): the same shape
local rel = m:head_relevance(task, {n = 16, batch = 8})
local shape, sums = #rel == 3, true
for i, l in ipairs(rel) do
  local s = 0
  for _, v in ipairs(l.scores) do s = s + v end
  shape = shape and l.name == imp[i].name and l.heads == 4 and #l.scores == 4
  sums = sums and (math.abs(s - 1) < 1e-9 or s <= 0)
end
tap.ok(shape, "head_relevance: one entry per attention layer, named and sized as head_importance's")
tap.ok(sums, "head_relevance: each layer's scores sum to 1")
local rraw = m:head_relevance(task, {n = 16, normalize = false, eps = 1e-3})
tap.ok(rraw[1].scores[1] ~= rel[1].scores[1], "normalize = false gives the raw mean relevance")
tap.is(#p:head_relevance(task, {n = 4})[2].scores, 2, "head_relevance on a model with heads dropped")
tap.like(err_of(m.head_relevance, m, task, {eps = -1}), "eps=%-1 must be >= 0", "head_relevance: a negative eps")
tap.like(err_of(m.head_relevance, m, task, {epsilon = 1}), "unknown option 'epsilon'.*eps, normalize",
         "head_relevance: a misspelt option is named with the valid ones")
tap.done()
