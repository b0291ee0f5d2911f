-- stsb.lua — GLUE's STS-B fine-tunes end to end (issue 12): a small STS-B-format directory written here
-- (sentence pairs whose score is their word overlap: sentence2 keeps k of sentence1's six words and replaces
-- the others by words sentence1 never uses, score = 5·k/6), pare.task("glue", {name = "stsb"}), a tiny
-- encoder with head=regression trained 150 steps: Pearson on the dev split rises from about 0 to
-- well above it, evaluation reports pearson/spearman/mse (no accuracy), a checkpoint gives the same numbers,
-- and a classifier given STS-B (or the regression model given a classification task) is refused naming both.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/STS-B' '" .. dir .. "/SST-2'"))
local function write(path, text)
  local f = assert(io.open(dir .. "/" .. path, "wb"))
  f:write(text)
  f:close()
end

-- a deterministic generator (Lua's math.random is seeded per run otherwise)
local state = 12345
local function rnd(n)
  state = (state * 1103515245 + 12345) % 2147483648
  return state % n + 1
end
local shared, other = {}, {}
for i = 1, 24 do shared[i] = "w" .. i end
for i = 1, 24 do other[i] = "x" .. i end
local HDR = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
local function split(n)
  local rows = {HDR}
  for i = 1, n do
    local a, b = {}, {}
    for j = 1, 6 do a[j] = shared[rnd(#shared)] end
    local k = rnd(7) - 1 -- words kept: 0..6
    for j = 1, 6 do b[j] = j <= k and a[j] or other[rnd(#other)] end
    for j = 6, 2, -1 do -- shuffle sentence2 so position says nothing
      local r = rnd(j)
      b[j], b[r] = b[r], b[j]
    end
    rows[#rows + 1] = string.format("%d\tmain-captions\tMSRvid\t2012test\t%04d\tnone\tnone\t%s .\t%s .\t%.3f\n", i - 1, i,
                                    table.concat(a, " "), table.concat(b, " "), 5 * k / 6)
  end
  return table.concat(rows)
end
write("STS-B/train.tsv", split(400))
write("STS-B/dev.tsv", split(150))
write("SST-2/train.tsv", "sentence\tlabel\na good film\t1\na bad film\t0\n")
write("SST-2/dev.tsv", "sentence\tlabel\na good one\t1\n")

local t = pare.task("glue", {name = "stsb", dir = dir, min_count = 1})
tap.ok(t.kind == "regression" and t.classes == 1 and t.n_train == 400 and t.n_test == 150,
       string.format("glue stsb: a regression task, %d train / %d dev pairs, T %d, vocab %d", t.n_train, t.n_test, t.T, t.vocab))
tap.ok(t.chance ~= t.chance, "a regression task has no majority-class chance rate (NaN)")
tap.raises(function() return pare.baseline(t, "bow") end, "regression task", "the classification baselines refuse STS-B")

local function model(extra)
  local o = {vocab = t.vocab, max_T = t.T, d = 32, heads = 4, layers = 1, type_vocab = 2, pool = "mean", seed = 3}
  for k, v in pairs(extra) do o[k] = v end
  return pare.model(o)
end
local m = model{head = "regression"}
local e0 = m:evaluate(t)
tap.ok(e0.accuracy == nil and e0.perplexity == nil and e0.pearson and e0.spearman and e0.mse and e0.loss == e0.mse
       and e0.n == 150, string.format("evaluate: pearson %.3f, spearman %.3f, mse %.3f; no accuracy", e0.pearson,
                                      e0.spearman, e0.mse))
local r = m:train(t, {steps = 150, batch = 32, lr = 3e-3, warmup = 20, eval_every = 50})
tap.ok(r.best_eval_accuracy == nil and r.best_eval_pearson and r.steps == 150,
       string.format("train: best_eval_pearson %.3f (no best_eval_accuracy)", r.best_eval_pearson or 0 / 0))
local e1 = m:evaluate(t)
tap.diag(string.format("dev pearson %.3f -> %.3f, spearman %.3f -> %.3f, mse %.3f -> %.3f", e0.pearson, e1.pearson,
                       e0.spearman, e1.spearman, e0.mse, e1.mse))
tap.ok(e1.pearson > 0.6 and e1.pearson > e0.pearson + 0.4,
       string.format("fine-tuned on STS-B: dev Pearson %.3f (before %.3f)", e1.pearson, e0.pearson))
tap.ok(e1.spearman > 0.5 and e1.mse < e0.mse, string.format("spearman %.3f, mse %.3f < %.3f", e1.spearman, e1.mse, e0.mse))

-- a checkpoint evaluates to the same numbers, bit for bit
local path = dir .. "/stsb.safetensors"
m:save(path)
local back = pare.load(path)
local e2 = back:evaluate(t)
tap.ok(e2.pearson == e1.pearson and e2.spearman == e1.spearman and e2.mse == e1.mse,
       "the saved and loaded regression model scores the same pearson, spearman and mse")
tap.like(back:info().config, '"head": "regression"', "its config keeps head=regression")

-- mixing kinds: errors name the task and the head
local c = model{classes = 2}
tap.raises(function() return c:evaluate(t) end, "classification head of 2 classes",
           "a classifier given STS-B names both")
tap.raises(function() return c:train(t, {steps = 1}) end, "head=regression", "and says what to build")
local s = pare.task("glue", {name = "sst2", dir = dir, min_count = 1, pad_to = t.T})
tap.raises(function() return m:evaluate(s) end, "is a classification task (2 classes) but the model has a regression head",
           "a regression model given SST-2 names both")
tap.raises(function() return m:train(t, {steps = 1, target_accuracy = 0.5}) end, "no accuracy",
           "target_accuracy with a regression model is refused")
tap.raises(function() return pare.model{vocab = 10, max_T = 8, kind = "decoder", head = "regression"} end,
           "head=regression scores a whole sequence", "head=regression on a decoder is refused")

os.execute("rm -rf '" .. dir .. "'")
tap.done()
