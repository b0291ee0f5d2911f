-- ptq_vs_qat.lua — FP32, PTQ dynamic, PTQ static (each calibration method) and QAT (learned LSQ scales
-- and data-following scales) at 8 and 4 bits, weights and activations. 8-bit rows run on the int8
-- kernel; 4-bit rows are simulated (no W4A4 kernel) and say so.
--
--   pare run experiments/ptq_vs_qat.lua [qat_steps=400] [d=128]
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp = pare.experiment("ptq_vs_qat", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local base, task = zoo.listops{d = tonumber(a.d) or 128}
local qat_steps = tonumber(a.qat_steps) or 400
local function static(meth) return function(m, bits)
  return m:apply("static_int8", {calib = task, calib_samples = 256, method = meth, bits = bits}) end end
local function qat(learn) return function(m, bits)
  local q = m:apply("qat", {calib = task, bits = bits, learn_scales = learn})
  q:train(task, {steps = qat_steps, batch = 32, lr = 3e-4, warmup = 20, seed = 3})
  return q:apply("qat_convert") end end
local methods = {
  fp32 = function(m) return m end,
  ptq_dynamic = function(m, bits) return m:apply("dynamic_int8", {bits = bits}) end,
  ptq_static_minmax = static("minmax"), ptq_static_percentile = static("percentile"),
  ptq_static_kl = static("kl"), ptq_static_mse = static("mse"),
  qat_lsq = qat(true), qat_fixed = qat(false),
}
exp:table("ptq_qat", measure.decl({"bits", "method"}))
pare.sweep(exp, "ptq_qat", {{"bits", {8, 4}}, {"method", {"fp32", "ptq_dynamic", "ptq_static_minmax",
  "ptq_static_percentile", "ptq_static_kl", "ptq_static_mse", "qat_lsq", "qat_fixed"}}}, function(p)
  return measure.row(methods[p.method](base, p.bits), base, task, {bench = {batch = 8, repeats = 15}})
end)
pare.print_table(exp, "ptq_qat", {columns = {"bits", "method", "accuracy", "agreement", "cosine", "latency_ms", "simulated"}})
exp:plot{table = "ptq_qat", name = "accuracy", x = "method", y = "accuracy", by = "bits", kind = "bars",
         title = "PTQ vs QAT on ListOps (W and A at 8 and 4 bits)"}
exp:close()
