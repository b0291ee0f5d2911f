-- lkd.lua — ZeroQuant's scheme under QAT (fake quantization with group-wise weights and per-token activations) and
-- its layer-by-layer distillation (zeroquant lkd_steps): the simulated scheme agrees with the real int8_group kernel,
-- qat_convert of an untrained group-wise QAT model is zeroquant's model bit for bit, LKD lowers the quantized model's
-- logit error against the f32 model, the group-wise QAT model saves and loads, and misuse is refused by name.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 256})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 64, heads = 2, layers = 2, seed = 1}
m:train(task, {steps = 200, batch = 32, lr = 2e-3, warmup = 20})

local function logits(x) return x:capture(task, "head").head.values end
local function mse(a, b)
  local s = 0
  for i, v in ipairs(a) do s = s + (v - b[i]) ^ 2 end
  return s / #a
end
local ref = logits(m)

-- ---- ZeroQuant's scheme under QAT ----
local zq = m:apply("zeroquant", {group = 32})
local qat = m:apply("qat", {group = 32, per_token = true, learn_scales = false, calib = task, calib_samples = 32})
local zl, ql = logits(zq), logits(qat)
local worst = 0
for i, v in ipairs(zl) do worst = math.max(worst, math.abs(v - ql[i])) end
tap.ok(worst < 2e-3, string.format("fake quantization (int8 groups of 32, int8 per token) agrees with the int8_group kernel "
       .. "(max |Δlogit| %.2g)", worst))
local conv = qat:apply("qat_convert")
tap.is(conv:quant_report()[1].format, zq:quant_report()[1].format, "qat_convert of group-wise QAT gives zeroquant's format")
local cl, same = logits(conv), true
for i, v in ipairs(zl) do same = same and v == cl[i] end
tap.ok(same, "untrained, it is zeroquant's model bit for bit")
local path = os.tmpname()
qat:save(path)
local back = pare.load(path)
os.remove(path)
local bl, same2 = logits(back), true
for i, v in ipairs(ql) do same2 = same2 and v == bl[i] end
tap.ok(same2, "a group-wise, per-token QAT model saves and loads (same logits)")

-- ---- LKD ----
local lk = m:apply("zeroquant", {group = 32, lkd_steps = 30, calib = task, seed = 2})
local e0, e1 = mse(logits(zq), ref), mse(logits(lk), ref)
tap.ok(e1 < e0, string.format("LKD (30 steps per layer) lowers the logits' mean squared error against f32: %.3g -> %.3g", e0, e1))
tap.is(lk:quant_report()[1].method, "zeroquant+lkd", "quant_report names the method")
tap.ok(lk:quant_report()[1].format == zq:quant_report()[1].format, "the same int8_group kernel runs")
tap.ok(mse(logits(m), ref) == 0, "the input model is unchanged")

-- ---- errors ----
tap.like(err_of(m.apply, m, "zeroquant", {lkd_steps = 5}), "lkd_steps=5 distils each layer on data: give calib", "LKD without data")
tap.like(err_of(m.apply, m, "qat", {group = 48, calib = task}), "group=48 does not divide the input dimension 64", "a group not dividing K")
local qlearn = m:apply("qat", {group = 32, per_token = true, learn_scales = true, calib = task})
tap.like(err_of(qlearn.apply, qlearn, "qat_convert"), "converts only as ZeroQuant's kernel", "learned group scales do not convert")
tap.done()
