-- train.lua — a model learns a synthetic long-range task (associative recall) to >= 95% test
-- accuracy; dynamic INT8 keeps it within one point; training is deterministic by seed; a decoder
-- learns a causal copy task.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 1})
local function fresh()
  return pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 2, seed = 1}
end
local TRAIN = {steps = 1500, batch = 32, lr = 2e-3, warmup = 50, seed = 7}

local m = fresh()
local r = m:train(task, TRAIN)
local fp = m:evaluate(task)
tap.ok(fp.accuracy >= 0.95, string.format("encoder learns associative recall to >= 95%% (%.3f after %d steps, %.1fs)",
                                          fp.accuracy, r.steps, r.seconds))
tap.ok(r.loss < 0.2, string.format("training loss fell (%.4f)", r.loss))

local q = m:apply("dynamic_int8")
local qa = q:evaluate(task)
tap.ok(math.abs(qa.accuracy - fp.accuracy) <= 0.01,
       string.format("dynamic INT8 within 1 point of FP32 (%.3f vs %.3f)", qa.accuracy, fp.accuracy))
local fid = q:fidelity(m, task)
tap.ok(fid.agreement >= 0.99, string.format("INT8 top-1 agreement with FP32 %.4f, logit cosine %.5f", fid.agreement, fid.cosine))
tap.ok(q:info().size_bytes < 0.5 * m:info().size_bytes + 4 * m:info().params / 8,
       string.format("INT8 weights: %d bytes vs %d", q:info().size_bytes, m:info().size_bytes))

-- determinism: same seeds, same numbers
local m2 = fresh()
local r2 = m2:train(task, TRAIN)
local fp2 = m2:evaluate(task)
tap.is(fp2.accuracy, fp.accuracy, "same seed: identical accuracy")
tap.is(fp2.loss, fp.loss, "same seed: identical test loss")
tap.is(r2.loss, r.loss, "same seed: identical training loss")
local m3 = fresh()
local r3 = m3:train(task, {steps = 100, batch = 32, lr = 2e-3, warmup = 50, seed = 8})
local m3b = fresh()
local r3b = m3b:train(task, {steps = 100, batch = 32, lr = 2e-3, warmup = 50, seed = 7})
tap.isnt(r3.loss, r3b.loss, "another batch seed: a different run")

-- early stop at a target accuracy
local m4 = fresh()
local r4 = m4:train(task, {steps = 3000, batch = 32, lr = 2e-3, warmup = 50, target_accuracy = 0.5})
tap.ok(r4.steps < 3000 and r4.best_eval_accuracy >= 0.5,
       string.format("target_accuracy stops early (%d steps, eval %.3f)", r4.steps, r4.best_eval_accuracy))

-- a decoder learns a causal copy task (LM path: per-token targets, causal mask)
local lm = pare.task("copy_lm", {seed = 1})
local d = pare.model{kind = "decoder", vocab = lm.vocab, max_T = lm.T, d = 32, heads = 4, layers = 2, seed = 1}
d:train(lm, {steps = 600, batch = 32, lr = 3e-3, warmup = 40})
local de = d:evaluate(lm)
tap.ok(de.accuracy >= 0.95, string.format("decoder learns copy_lm (token accuracy %.3f, perplexity %.3f)", de.accuracy, de.perplexity))
local dq = d:apply("dynamic_int8"):evaluate(lm)
tap.ok(math.abs(dq.accuracy - de.accuracy) <= 0.01, string.format("decoder INT8 within 1 point (%.3f)", dq.accuracy))
-- a copy made after a training (surgery or clone) keeps its weights when the original trains again: the second
-- m:train makes the shared weights private before writing (it used to do so only with the first gradients)
do
  local t = pare.task("majority", {seed = 1, n_train = 64, n_test = 64, max_length = 8})
  local o = pare.model{vocab = t.vocab, max_T = 9, classes = 2, d = 16, heads = 4, layers = 1, seed = 1}
  o:train(t, {steps = 5, batch = 16})
  local cut, copy = o:drop_heads("enc.0.attn", {3}), o:clone()
  local l_cut, l_copy = cut:evaluate(t).loss, copy:evaluate(t).loss
  o:train(t, {steps = 5, batch = 16, lr = 1e-2})
  tap.ok(cut:evaluate(t).loss == l_cut and copy:evaluate(t).loss == l_copy and o:evaluate(t).loss ~= l_copy,
         "training a model again leaves the copies made since (drop_heads, clone) as they were")
end

tap.done()
