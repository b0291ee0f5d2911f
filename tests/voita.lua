-- voita.lua — Voita et al. 2019's head gates and head confidence from Lua (docs/pruning-heads.md): m:head_gates
-- attaches hard-concrete gates, m:train adds their L0 penalty and closes gates under a large lambda, a gated
-- model saves and loads with its gates, m:prune_gated_heads returns a plain smaller model with the same
-- translations and the kept counts per encoder / decoder / cross-attention; m:head_confidence; the errors.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("translate", {seed = 2, n_train = 400, n_test = 40})
local m = pare.model{kind = "encdec", vocab = task.vocab, src_vocab = task.src_vocab, max_T = task.T, src_max_T = task.S,
                     d = 16, heads = 4, layers = 1, ffn = 32, seed = 1}
m:train(task, {steps = 30, batch = 16, lr = 3e-3, warmup = 5, seed = 1})

local g = m:head_gates{lambda = 0.01, gate_lr = 0.2}
local v0, pen0 = g:gate_values()
tap.ok(#v0 == 3 and v0[1].kind == "enc" and v0[2].kind == "dec" and v0[3].kind == "cross" and v0[3].name == "dec.0.xattn",
       "gate_values: three gated layers, enc / dec / cross")
tap.ok(v0[1].scores[1] == 1 and v0[3].scores[4] == 1, "gates start open (init = 3: z = 1)")
tap.is(g:evaluate(task).loss, m:evaluate(task).loss, "open gates leave the model unchanged")
tap.is_close(pen0, 0.01 * 12 * 1 / (1 + math.exp(-(3 - 2 / 3 * math.log(0.1 / 1.1)))), 1e-6, 1e-6,
             "penalty = lambda * sum P(z != 0) over 12 heads")

g:train(task, {steps = 40, batch = 16, lr = 1e-3, warmup = 0, seed = 2})
local v1, pen1 = g:gate_values()
local closed = 0
for _, l in ipairs(v1) do for _, z in ipairs(l.scores) do if z == 0 then closed = closed + 1 end end end
tap.ok(pen1 < pen0 and closed >= 3 and closed < 12, string.format("training under lambda = 0.01 closes gates (%d of 12 closed, penalty %.3f -> %.3f)",
                                                    closed, pen0, pen1))

local path = os.tmpname()
g:save(path)
local back = pare.load(path)
os.remove(path)
local vb = back:gate_values()
tap.ok(#vb == 3 and vb[2].scores[1] == v1[2].scores[1], "save -> load keeps the gates")
tap.is(back:evaluate(task).loss, g:evaluate(task).loss, "save -> load: the same loss")

local p, kept = g:prune_gated_heads()
local open = {enc = 0, dec = 0, cross = 0}
for _, l in ipairs(v1) do for _, z in ipairs(l.scores) do if z > 0 then open[l.kind] = open[l.kind] + 1 end end end
tap.ok(kept.enc == open.enc and kept.dec == open.dec and kept.cross == open.cross,
       string.format("kept heads enc/dec/cross %d/%d/%d = the open gates", kept.enc, kept.dec, kept.cross))
tap.is_close(p:evaluate(task).loss, g:evaluate(task).loss, 1e-4, 1e-4, "the pruned model computes what the gated one does")
tap.ok(p:info().params < m:info().params, "and is smaller")
tap.raises(function() p:gate_values() end, "no gated layer", "a pruned model has no gates")

local conf = m:head_confidence(task, {n = 20})
tap.ok(#conf == 3 and #conf[2].scores == 4 and conf[2].scores[1] > 0 and conf[2].scores[1] <= 1,
       "head_confidence: per layer, per head, in (0, 1]")

tap.raises(function() m:head_gates{lambda = -1} end, "lambda", "a negative lambda is refused")
tap.raises(function() m:head_gates{layers = "nothing.*"} end, "matches no attention layer", "layers matching nothing")
tap.raises(function() m:head_gates{lamda = 1} end, "lamda", "an unknown option is named")
tap.raises(function() g:head_gates{} end, "already carries", "gating a gated model")
local s = pare.prune_schedule{schedule = "oneshot", sparsity = 0.5, start = 2}
tap.raises(function() g:train(task, {steps = 2}, s) end, "prune schedule", "gates and a prune schedule do not combine")
tap.done()
