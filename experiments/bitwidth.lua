-- bitwidth.lua — accuracy and size against weight bit-width (8, 6, 4, 3, 2) for round-to-nearest and
-- GPTQ, per channel and with groups of 32/64/128, and the llama.cpp block formats; weight-only,
-- activations f32; then W4A8 (rtn 4-bit weights, int8 per-token activations) and binary / ternary
-- weights, post-training and after 300 steps of quantization-aware fine-tuning (qat_steps=N). Size in MB
-- and bits per weight are exact (values, scales, zero points). Kernels: 4-bit rows with groups on the int4-group kernel, 8/3/2 bits on kernels/wq.h's
-- int8 / int3 / int2 kernels, W4A8 on VNNI, binary / ternary on the add/subtract kernels; 6-bit rows have
-- no kernel and are simulated and say so (the `simulated` column).
--
--   pare run experiments/bitwidth.lua [d=128] [qat_steps=300]
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp = pare.experiment("bitwidth", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local base, task = zoo.listops{d = tonumber(a.d) or 128}
local function bpw(m)
  local bits, n = 0, 0
  for _, r in ipairs(m:quant_report()) do
    if r.layer ~= "head" then bits, n = bits + r.bits_per_weight * r.size_bytes * 8 / r.bits_per_weight, n + r.size_bytes * 8 / r.bits_per_weight end
  end
  return bits / n
end
exp:table("bits", measure.decl({"method", "group", "bits", "series", "bits_per_weight"}, nil,
                               {bits_per_weight = "stored bits per weight of the quantized layers (exact)"}))
pare.sweep(exp, "bits", {{"method", {"rtn", "gptq"}}, {"group", {0, 32, 64, 128}}, {"bits", {8, 6, 4, 3, 2}}}, function(p)
  local o = {bits = p.bits, group = p.group}
  if p.method == "gptq" then o.calib, o.calib_samples = task, 256 end
  local q = base:apply(p.method, o)
  local row = measure.row(q, base, task, {bench = {batch = 8, repeats = 10}})
  row.bits_per_weight = bpw(q)
  row.series = p.method .. (p.group == 0 and " per-channel" or " g" .. p.group)
  return row
end)
pare.sweep(exp, "bits", {{"method", {"q8_0", "q4_1", "q4_0"}}, {"group", {32}}, {"bits", {0}}}, function(p)
  local q = base:apply("qblock", {format = p.method})
  local row = measure.row(q, base, task, {bench = {batch = 8, repeats = 15}})
  row.bits_per_weight = bpw(q)
  row.series = "llama.cpp"
  return row
end)
pare.sweep(exp, "bits", {{"method", {"rtn w4a8"}}, {"group", {0, 32, 64, 128}}, {"bits", {4}}}, function(p)
  local q = base:apply("rtn", {bits = 4, group = p.group, act_bits = 8})
  local row = measure.row(q, base, task, {bench = {batch = 8, repeats = 10}})
  row.bits_per_weight = bpw(q)
  row.series = "W4A8"
  return row
end)
for _, c in ipairs{{"binary", 1}, {"ternary", 2}} do
  pare.sweep(exp, "bits", {{"method", {c[1]}}, {"group", {0}}, {"bits", {c[2]}}}, function(p)
    local q = base:apply(p.method)
    local row = measure.row(q, base, task, {bench = {batch = 8, repeats = 10}})
    row.bits_per_weight = bpw(q)
    row.series = "binary/ternary (PTQ)"
    return row
  end)
  -- quantization-aware fine-tuning on the packed kernels (straight-through estimator, re-quantized every step)
  pare.sweep(exp, "bits", {{"method", {c[1] .. " qat"}}, {"group", {0}}, {"bits", {c[2]}}}, function(p)
    local q = base:apply(c[1])
    q:train(task, {steps = tonumber(a.qat_steps) or 300, batch = 32, lr = 5e-4, warmup = 20, seed = 1})
    local row = measure.row(q, base, task, {bench = {batch = 8, repeats = 10}})
    row.bits_per_weight = bpw(q)
    row.series = "binary/ternary (QAT)"
    return row
  end)
end
pare.print_table(exp, "bits", {columns = {"method", "group", "bits", "bits_per_weight", "accuracy", "cosine", "size_mb", "simulated"}})
exp:plot{table = "bits", name = "accuracy", x = "bits_per_weight", y = "accuracy", by = "series",
         title = "Accuracy against stored bits per weight (RTN, GPTQ, llama.cpp blocks, W4A8, binary/ternary)", xlabel = "bits per weight"}
exp:plot{table = "bits", name = "agreement", x = "bits_per_weight", y = "agreement", by = "series",
         title = "Top-1 agreement with FP32 against stored bits per weight", xlabel = "bits per weight"}
exp:plot{table = "bits", name = "size", x = "bits_per_weight", y = "size_mb", by = "series",
         title = "Model size against bits per weight", xlabel = "bits per weight"}
exp:close()
