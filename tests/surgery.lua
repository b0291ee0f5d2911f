-- surgery.lua — reshaping a model from Lua (issue 11: graph rewriting, shapes in checkpoints):
-- m:drop_heads / m:drop_neurons / m:remove return new models with per-layer shapes that run, train,
-- save and load back with logits bit-identical (max |a − b| = 0), and so do QAT models with their
-- scale parameters; the receiver never changes; misuse raises errors naming the node or argument.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local dir = os.getenv("TMPDIR") or "/tmp"
local base = string.format("%s/pare-surgery-%d-%d", dir, os.time(), math.random(1 << 30))
local files = {}
local function path(name)
  local p = base .. "-" .. name .. ".safetensors"
  files[#files + 1] = p
  return p
end

local task = pare.task("majority", {seed = 5, n_train = 256, n_test = 64, max_length = 9})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 32, heads = 4, layers = 3, ffn = 64, seed = 2}
m:train(task, {steps = 60, batch = 32, lr = 3e-3, warmup = 10})
local info0 = m:info()

-- round trip: the loaded model computes exactly the same logits and reports the same shapes
local function round_trip(model, name, what)
  local p = path(name)
  model:save(p)
  local back, meta = pare.load(p)
  local f = back:fidelity(model, task)
  tap.ok(f.max_abs_err == 0 and f.agreement == 1,
         string.format("%s: save -> load gives identical logits (max |a - b| = %g)", what, f.max_abs_err))
  local a, b = model:info(), back:info()
  tap.ok(a.params == b.params and table.concat(a.heads_per_layer, ",") == table.concat(b.heads_per_layer, ",") and
         table.concat(a.ffn_per_layer, ",") == table.concat(b.ffn_per_layer, ","),
         string.format("%s: same parameters (%d) and per-layer shapes (heads %s, ffn %s)", what, b.params,
                       table.concat(b.heads_per_layer, " "), table.concat(b.ffn_per_layer, " ")))
  return back, meta
end

-- ---- heads ----
local p = m:drop_heads("enc.1.attn", {0, 2})
local pi = p:info()
tap.is(table.concat(pi.heads_per_layer, ","), "4,2,4", "drop_heads: layer 1 keeps 2 of 4 heads")
tap.is(pi.params, info0.params - 2 * 8 * (3 * 33 + 32), "drop_heads: the parameter count falls by two heads of 8")
tap.is(table.concat(m:info().heads_per_layer, ","), "4,4,4", "the receiver keeps its heads")
tap.like(pi.applied, "drop_heads%(enc.1.attn:2%)", "the edit is recorded in applied")

-- ---- neurons, and a whole layer ----
local drop = {}
for i = 0, 23 do drop[#drop + 1] = i * 2 end
local q = p:drop_neurons("enc.0.ffn.up", drop)
tap.is(table.concat(q:info().ffn_per_layer, ","), "40,64,64", "drop_neurons: layer 0's FFN has 40 of 64 neurons")
local r = q:remove("enc.2.*")
tap.ok(r:info().layers == 2 and #r:info().heads_per_layer == 2, "remove: layer 2 is gone (2 layers left)")
local acc = r:evaluate(task).accuracy
tap.ok(acc >= 0 and acc <= 1, string.format("the edited model runs (accuracy %.3f)", acc))
local tr = r:train(task, {steps = 40, batch = 32, lr = 3e-3, warmup = 5})
tap.ok(tr.loss == tr.loss and tr.loss < 5, string.format("and trains (final loss %.3f)", tr.loss))

round_trip(m, "dense", "the unedited model")
round_trip(p, "heads", "2 heads dropped")
local back = round_trip(r, "hetero", "heads, neurons and a layer removed")
local again = back:drop_heads("enc.0.attn", {3})
tap.is(table.concat(again:info().heads_per_layer, ","), "3,2", "a loaded heterogeneous model can be edited further")

-- ---- QAT models keep their scale parameters ----
local qm = m:apply("qat", {calib = task, bits = 8})
qm:train(task, {steps = 10, batch = 32, lr = 1e-3, warmup = 2})
local qb = round_trip(qm, "qat", "QAT int8 (learned scales)")
tap.ok(qb:info().simulated and qb:quant_report()[1].method == "qat", "the loaded model still trains with QAT")
local q4 = m:apply("qat", {calib = task, bits = 4, learn_scales = false})
round_trip(q4, "qat4", "QAT int4 (fixed scales)")
local qp = qm:drop_neurons("enc.1.ffn.up", {1, 2, 3})
round_trip(qp, "qatpruned", "QAT with dropped neurons (the weight scales follow)")

-- ---- misuse ----
tap.like(err_of(m.drop_heads, m, "enc.0.ffn.up", {0}), "'enc.0.ffn.up' is not an attention node",
         "drop_heads on a Linear names it")
tap.like(err_of(m.drop_heads, m, "enc.0.attn", {"x"}), "heads%[1%] is not an integer", "a head that is not a number")
tap.like(err_of(m.drop_heads, m, "enc.0.attn", {0, 1, 2, 3}), "keep at least one", "dropping every head")
tap.like(err_of(m.drop_heads, m, "enc.0.attn", {4}), "its heads are 0..3", "a head out of range")
tap.like(err_of(m.drop_neurons, m, "enc.0.attn.out", {0}), "model width cannot", "the residual width is fixed")
tap.like(err_of(m.remove, m, "enc.7.*"), "no node matches", "remove with no match")
tap.like(err_of(m.remove, m, "head"), "logits", "removing the head")
tap.is(m:info().params, info0.params, "after all of it the receiver is unchanged")

for _, f in ipairs(files) do os.remove(f) end
tap.done()
