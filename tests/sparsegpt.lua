-- sparsegpt.lua — the sparsegpt pass on a small trained model (issue 13): m:prune{method = "sparsegpt"} and
-- m:apply("sparsegpt") give the same model, exact sparsity (per block of columns), N:M masks that the sparsify
-- pass stores as N:M, outputs closer to the dense model's than magnitude pruning's at the same sparsity,
-- checkpoints, help and errors. The algorithm itself is checked against a column-by-column OBS reference in
-- tests/test_sparsegpt.c.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 128, min_length = 9, max_length = 15})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 32, heads = 4, layers = 2, ffn = 64, seed = 2}
m:train(task, {steps = 120, batch = 32, lr = 3e-3, warmup = 10})
local dense = m:evaluate(task).accuracy
tap.ok(dense > 0.75, string.format("the dense model learns the task (accuracy %.3f)", dense))

local base = {method = "sparsegpt", calib = task, calib_samples = 64}
local function with(t)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(t) do o[k] = v end
  return o
end

-- 50%: every pruned layer exactly half (its N is even, so round(0.5 * N * b) is exact in every block)
local p = m:prune(with{sparsity = 0.5})
local good, worst = true, ""
for name, l in pairs(p:sparsity().layers) do
  if name ~= "head" and l.zeros * 2 ~= l.total then good, worst = false, name end
  if name == "head" and l.zeros ~= 0 then good, worst = false, "head" end
end
tap.ok(good, "sparsegpt 50%: every encoder layer exactly half zeros, the head left dense " .. worst)
tap.like(p:info().applied, "sparsegpt", "recorded in applied")
tap.is(m:sparsity().zeros, 0, "the receiver stays dense")
local q = m:apply("sparsegpt", {calib = task, calib_samples = 64, sparsity = 0.5})
tap.is(q:fidelity(p, task).max_abs_err, 0, "m:apply(\"sparsegpt\") = m:prune{method = \"sparsegpt\"}")

-- better than magnitude at the same sparsity: closer to the dense model's outputs
for _, s in ipairs{0.7, 0.9} do
  local sg = m:prune(with{sparsity = s})
  local mg = m:prune{method = "magnitude", sparsity = s}
  local zs, zm = sg:sparsity("enc.*").zeros, mg:sparsity("enc.*").zeros
  local fs, fm = sg:fidelity(m, task), mg:fidelity(m, task)
  tap.ok(math.abs(zs - zm) <= 8 and 1 - fs.cosine < 1 - fm.cosine and fs.max_abs_err < fm.max_abs_err,
         string.format("%.0f%%: logits closer to dense than magnitude's: 1 - cosine %.3g < %.3g, max |d| %.3g < %.3g; zeros %d vs %d; "
                       .. "accuracy %.3f vs %.3f", 100 * s, 1 - fs.cosine, 1 - fm.cosine, fs.max_abs_err, fm.max_abs_err, zs, zm,
                       sg:evaluate(task).accuracy, mg:evaluate(task).accuracy))
end

-- N:M, converted by sparsify
for _, pat in ipairs{"2:4", "4:8"} do
  local nm = m:prune(with{pattern = pat})
  tap.is(nm:sparsity("enc.*").sparsity, 0.5, pat .. ": exactly half pruned")
  local sp = nm:apply("sparsify", {format = "nm", pattern = pat, exclude = "head"})
  local f = sp:fidelity(nm, task)
  tap.ok(f.agreement == 1 and f.cosine > 0.99999,
         string.format("%s: sparsify format=nm takes every layer (no group with more than n kept) and computes the same (cosine %.7f)",
                       pat, f.cosine))
end
local nm = m:prune(with{pattern = "nm", n = 1, m = 4})
tap.is(nm:sparsity("enc.*").sparsity, 0.75, "pattern=nm n=1 m=4: three quarters pruned")
local u = m:prune(with{sparsity = 0.8, blocksize = 16})
local us = u:apply("sparsify", {format = "csr", min_sparsity = 0.7, exclude = "head"})
tap.ok(us:fidelity(u, task).cosine > 0.99999, "80% unstructured: stored CSR by sparsify, the same function")

-- pruning an already pruned model keeps its zeros
local again = p:prune(with{sparsity = 0.7})
local kept = true
for name, l in pairs(again:sparsity().layers) do
  if name ~= "head" and l.zeros < p:sparsity().layers[name].zeros then kept = false end
end
tap.ok(kept and math.abs(again:sparsity("enc.*").sparsity - 0.7) < 0.01,
       string.format("50%% then 70%%: %.4f sparse, no layer lost a zero", again:sparsity("enc.*").sparsity))

-- checkpoints
local dir = os.getenv("TMPDIR") or "/tmp"
local path = string.format("%s/pare-sparsegpt-%d-%d.safetensors", dir, os.time(), math.random(1 << 30))
p:save(path)
local back = pare.load(path)
local f = back:fidelity(p, task)
tap.ok(f.max_abs_err == 0 and back:sparsity().zeros == p:sparsity().zeros,
       string.format("a sparsegpt model saves and loads with identical logits (max |a - b| = %g) and masks", f.max_abs_err))
os.remove(path)

-- help and errors
tap.like(pare.schema_help("sparsegpt"), "blocksize", "pare help sparsegpt lists blocksize")
tap.like(err_of(function() return m:prune{method = "sparsegpt"} end), "needs calibration data", "no calib data")
tap.like(err_of(function() return m:prune(with{pattern = "block"}) end), "unstructured|nm|2:4|4:8", "a bad pattern lists the valid ones")
tap.like(err_of(function() return m:prune(with{pattern = "nm", n = 2, m = 5}) end), "m=5 does not divide the input dimension of enc",
         "m not dividing K names the layer")
tap.like(err_of(function() return m:prune(with{pattern = "nm", n = 4, m = 4}) end), "n=4 must be less than m=4", "n >= m")
tap.like(err_of(function() return m:prune(with{scope = "global"}) end), "scope", "no scope option (SparseGPT is layer-wise)")
tap.like(err_of(function() return m:prune(with{sparsity = 2}) end), "sparsity", "sparsity out of range names the option")
tap.like(err_of(function() return m:prune(with{calib_samples = 100000}) end), "calib_samples", "too many calibration samples")
local rq = m:apply("rtn", {bits = 8, group = 0})
tap.like(err_of(function() return rq:prune(with{}) end), "stored as", "a quantized layer is refused, naming its format")
tap.done()
