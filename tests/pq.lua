-- pq.lua — product quantization and Quant-Noise through the Lua API (issue 18): quant_noise at p = 0 trains
-- exactly as plain training; at p > 0 it trains to a different model; a Quant-Noise model saves and loads
-- with its transform; pq's sizes in quant_report are the exact bits of codes and codebook; a pq model is not
-- trainable and says so; the passes' bad options are refused naming the option and the valid values.
-- Kernels, k-means and the transform's forward / backward against references: tests/test_pq.c.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 3, n_train = 600, n_test = 200})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, seed = 1}
m:train(task, {steps = 60, batch = 16, lr = 2e-3, warmup = 10, seed = 7})
local TR = {steps = 30, batch = 16, lr = 1e-3, warmup = 5, seed = 9}

-- p = 0 is plain training, bit for bit (no random number drawn, the same f32 path); p > 0 is not
local plain = m:clone()
plain:train(task, TR)
for _, qz in ipairs({"pq", "int4"}) do
  local n0 = m:apply("quant_noise", {p = 0, quantizer = qz, k = 16, block = 4})
  n0:train(task, TR)
  local f = n0:fidelity(plain, task)
  tap.ok(f.max_abs_err == 0 and f.agreement == 1, string.format("quant_noise %s p=0 trains exactly as plain training (max |logit diff| %g)", qz, f.max_abs_err))
end
local n1 = m:apply("quant_noise", {p = 0.2, quantizer = "pq", k = 16, block = 4, refresh = 10})
n1:train(task, TR)
local f1 = n1:fidelity(plain, task)
tap.ok(f1.max_abs_err > 0, string.format("quant_noise pq p=0.2 trains another model (max |logit diff| %.3g)", f1.max_abs_err))

-- the transform saves and loads with the model (its state and codebook are parameters)
local path = os.tmpname()
n1:save(path)
local back = pare.load(path)
os.remove(path)
local cont, contb = n1:clone(), back
cont:train(task, TR)
contb:train(task, TR)
local fb = contb:fidelity(cont, task)
tap.ok(fb.max_abs_err == 0, "a Quant-Noise model saves and loads with its transform, state and codebook: training on from "
       .. "either gives the same model")
local qb = back:apply("pq", {k = 16, block = 4})
tap.ok(qb:quant_report()[1].method:find("after quant_noise", 1, true), "the loaded model's layers still carry quant_noise")

-- pq: exact sizes (one byte per block + k·block codebook values), the transform removed after training
local q = n1:apply("pq", {k = 16, block = 4, codebook = "f16"})
local base = {}
for _, r in ipairs(m:quant_report()) do base[r.layer] = r.size_bytes / 4 end -- f32: the weight count
local exact, npq = true, 0
for _, r in ipairs(q:quant_report()) do
  if r.format == "pq f16" then
    npq = npq + 1
    local n = base[r.layer]
    exact = exact and r.size_bytes == n / 4 + 16 * 4 * 2 and math.abs(r.bits_per_weight - (n / 4 + 16 * 4 * 2) * 8 / n) < 1e-12
    exact = exact and r.method:find("after quant_noise", 1, true) ~= nil and not r.simulated
  end
end
tap.ok(npq == 8 and exact, string.format("pq: %d layers, each N·K/4 code bytes + 16·4 halves, not simulated, after quant_noise", npq))
tap.ok(not q:info().simulated, "a pq model runs on its own kernel (not simulated)")
tap.ok(q:evaluate(task).accuracy >= 0, "a pq model evaluates")
tap.like(tap.error_of(function() q:train(task, TR) end), "is stored as pq", "training a pq model is refused, naming the format")

-- bad options name the option and the valid values
local function e(o, pass) return tap.error_of(function() return m:apply(pass or "quant_noise", o) end) end
tap.like(e({quantizer = "int2"}), "'quantizer' = 'int2' is not a valid choice (valid: pq|int8|int4)", "quant_noise quantizer=int2", true)
tap.like(e({p = -0.1}), "'p' = -0.1 is out of range [0, 1]", "quant_noise p=-0.1", true)
tap.like(e({block = 3}), "block=3 does not divide the 32 inputs of enc.0.attn.qkv; valid blocks for it: 1, 2, 4, 8, 16, 32",
         "quant_noise block=3 lists the valid blocks", true)
tap.like(e({k = 0}, "pq"), "'k' = 0 is out of range [1, 256]", "pq k=0", true)
tap.like(e({codebook = "bf16"}, "pq"), "'codebook' = 'bf16' is not a valid choice (valid: f32|f16)", "pq codebook=bf16", true)
tap.like(e({rate = 0.1}), "rate", "quant_noise: an unknown option is named")
tap.done()
