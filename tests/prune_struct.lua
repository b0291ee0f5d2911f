-- prune_struct.lua — structured pruning from Lua (issue 13): the prune_neurons / prune_heads / prune_layers
-- passes on a trained encoder (physically smaller: parameters and FLOPs fall), m:neuron_importance and
-- m:layer_importance (the layer score against m:remove + m:evaluate computed here), fine-tuning after
-- pruning, a checkpoint of a pruned model, simulated token pruning (attention = "...;token_prune:keep=k")
-- on the trained weights, help and errors. The criteria are checked against finite differences and zeroed
-- dense models in tests/test_prune_struct.c and tests/test_token_prune.c.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 128, min_length = 9, max_length = 15})
local cfg = {vocab = task.vocab, max_T = task.T, classes = 2, d = 32, heads = 4, layers = 3, ffn = 64, seed = 2}
local m = pare.model(cfg)
m:train(task, {steps = 150, batch = 32, lr = 3e-3, warmup = 10})
local dense = m:evaluate(task)
tap.ok(dense.accuracy > 0.8, string.format("the dense model learns the task (accuracy %.3f)", dense.accuracy))
local function flops(x) return x:bench{batch = 1, repeats = 1, warmup = 0, warmup_min_s = 0, warmup_max_s = 0}.flops end
local f0, p0 = flops(m), m:info().params

-- neurons
local nimp = m:neuron_importance(task, {n = 64})
tap.is(#nimp, 3, "neuron_importance: one entry per FFN layer")
tap.ok(nimp[1].name == "enc.0.ffn.up" and nimp[1].neurons == 64 and #nimp[1].scores == 64, "... named, 64 scores each")
local mag = m:neuron_importance(nil, {criterion = "magnitude", layers = "enc.1.ffn.up"})
tap.ok(#mag == 1 and mag[1].scores[1] > 0, "criterion=magnitude needs no task")
local pn = m:apply("prune_neurons", {level = 0.5, criterion = "taylor", calib = task, calib_samples = 64})
local an = pn:evaluate(task)
tap.ok(pn:info().params < p0 and flops(pn) < f0,
       string.format("prune_neurons level=0.5: %d -> %d parameters, %.3g -> %.3g FLOPs; accuracy %.3f (dense %.3f)", p0,
                     pn:info().params, f0, flops(pn), an.accuracy, dense.accuracy))
tap.is(pn:info().applied, "prune_neurons", "recorded in applied")

-- heads
local ph = m:apply("prune_heads", {level = 0.5, criterion = "taylor", calib = task, calib_samples = 64})
tap.ok(ph:info().params < p0, string.format("prune_heads level=0.5: accuracy %.3f", ph:evaluate(task).accuracy))

-- layers: score == loss without the layer - loss, over the test split
local limp = m:layer_importance(task, {split = "test", n = 0})
local worst = 0
for i, l in ipairs(limp) do
  local want = m:remove(l.name .. ".*"):evaluate(task).loss - dense.loss
  worst = math.max(worst, math.abs(want - l.score))
end
tap.ok(#limp == 3 and math.abs(limp.base - dense.loss) < 1e-6 and worst < 1e-6,
       string.format("layer_importance: L(m:remove(layer)) - L(m) over the test split (max |diff| %.2g)", worst))
local pl = m:apply("prune_layers", {k = 1, calib = task, calib_samples = 128})
local nlayers = 0
for _, name in ipairs(pl:layers("*.attn")) do nlayers = nlayers + 1 end
tap.is(nlayers, 2, "prune_layers k=1 leaves 2 layers")

-- fine-tuning recovers, and the pruned model saves and loads with identical logits
local both = m:apply("prune_heads", {level = 0.5}):apply("prune_neurons", {level = 0.75})
local before = both:evaluate(task).accuracy
both:train(task, {steps = 60, batch = 32, lr = 2e-3, warmup = 5})
local after = both:evaluate(task).accuracy
tap.ok(after >= before - 0.02, string.format("heads 50%% + neurons 75%% removed: %.3f, fine-tuned %.3f", before, after))
local path = string.format("%s/pare-struct-%d-%d.safetensors", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1 << 30))
both:save(path)
local back = pare.load(path)
tap.is(back:fidelity(both, task).max_abs_err, 0, "a structured-pruned model saves and loads with identical logits")
os.remove(path)

-- tokens (simulated): the trained weights under token_prune attention in layers 1 and 2
local function with_attention(spec)
  local c = {}
  for k, v in pairs(cfg) do c[k] = v end
  c.attention = spec
  local t = pare.model(c)
  t:transfer_from(m)
  return t
end
local t1 = with_attention("full;token_prune:keep=1")
tap.ok(t1:fidelity(m, task).max_abs_err < 1e-4, "token_prune keep=1 is the dense model")
local t5 = with_attention("full;token_prune:keep=0.7;token_prune:keep=0.4")
local a5 = t5:evaluate(task).accuracy
tap.ok(t5:fidelity(m, task).max_abs_err > 1e-3 and flops(t5) > f0,
       string.format("keep 0.7 then 0.4: accuracy %.3f (dense %.3f); simulated: FLOPs %.3g >= dense %.3g", a5,
                     dense.accuracy, flops(t5), f0))

-- help and errors
tap.like(pare.schema_help("prune_neurons"), "criterion", "pare help prune_neurons")
tap.like(pare.schema_help("prune_layers"), "calib", "pare help prune_layers")
tap.like(pare.schema_help("token_prune"), "SIMULATED", "pare help token_prune says simulated")
tap.like(err_of(function() m:apply("prune_neurons", {criterion = "taylor"}) end), "calib", "taylor without calib")
tap.like(err_of(function() m:apply("prune_layers", {k = 3, calib = task}) end), "k=3", "k = every layer")
tap.like(err_of(function() m:neuron_importance(task, {criterion = "l1"}) end), "valid: taylor, magnitude", "a bad criterion")
tap.like(err_of(function() m:layer_importance(task, {layers = "x"}) end), "unknown option 'layers'", "a bad option")
tap.done()
