-- wq.lua — the weight-only kernels of kernels/wq.h on quant.lua's encoder (the same task, model and training):
-- rtn at 8, 3 and 2 bits and W4A8 (rtn act_bits=8) run on their kernels, not simulated; binary and ternary
-- passes; exact bits per weight; each kernel model computes what its dequantized f32 twin computes (the
-- dequantize pass gives the same weights in f32); accuracy against f32; layouts that do not fit stay simulated
-- and say so; bad options get clear errors.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 3, n_train = 2000, n_test = 400})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 2, seed = 1}
m:train(task, {steps = 1500, batch = 32, lr = 2e-3, warmup = 50, seed = 7})
local fp = m:evaluate(task)
tap.ok(fp.accuracy > 0.4, string.format("the f32 model learned something (%.3f)", fp.accuracy))

local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end

-- every selected Linear in `format`, on a kernel, with exactly want_bits(K, layer) bits per weight
local function check_layers(q, format, want_bits, what)
  local okf, okb, worst, n = true, true, "", 0
  for _, r in ipairs(q:quant_report()) do
    if r.format ~= "f32" then -- the classifier head ("head") is not selected by "*.*.*"
      n = n + 1
      if r.format ~= format or r.simulated then okf = false; worst = r.layer .. " is " .. r.format end
      local want = want_bits(r)
      if math.abs(r.bits_per_weight - want) > 1e-9 then okb = false; worst = string.format("%s: %.6f bits, want %.6f", r.layer, r.bits_per_weight, want) end
    end
  end
  tap.ok(okf and n == 8 and not q:info().simulated, string.format("%s: the 8 encoder Linears on the %s kernel %s", what, format, worst))
  tap.ok(okb, what .. ": exact bits per weight " .. worst)
end

-- K of a layer from its name (d = 64, the FFN's inner size 256)
local function K_of(r) return r.layer:find("ffn.down", 1, true) and 256 or 64 end

-- a kernel model against its dequantized f32 twin: the same function up to f32 summation order
local function same_function(q, what)
  local twin = q:apply("dequantize")
  local f = q:fidelity(twin, task)
  tap.ok(f.agreement == 1 and f.cosine > 0.999999, string.format("%s computes its dequantized weights' function (cosine %.8f, max err %.2g)",
         what, f.cosine, f.max_abs_err))
end

local rows = {}
local function row(name, q)
  local f = q:fidelity(m, task)
  local acc = q:evaluate(task).accuracy
  rows[#rows + 1] = string.format("%-28s acc %.4f (f32 %.4f)  cosine %.5f  %s", name, acc, fp.accuracy, f.cosine, q:quant_report()[1].kernel)
  return f, acc
end

-- rtn 8 / 3 / 2 bits, per group and per channel, symmetric and not
for _, c in ipairs{{8, 32, true, "int8_wo"}, {8, 0, true, "int8_wo"}, {3, 32, true, "int3"}, {3, 64, false, "int3"},
                   {2, 32, true, "int2"}, {2, 0, false, "int2"}} do
  local bits, group, sym, fmt = c[1], c[2], c[3], c[4]
  local q = m:apply("rtn", {bits = bits, group = group, symmetric = sym})
  local what = string.format("rtn %d-bit group %d%s", bits, group, sym and "" or " asym")
  check_layers(q, fmt, function(r)
    local g = group > 0 and group or K_of(r)
    return bits + 16 / g + (sym and 0 or 8 / g)
  end, what)
  same_function(q, what)
  local f = row(what, q)
  if bits == 8 then tap.ok(f.cosine > 0.9999, string.format("%s: cosine to f32 %.6f > 0.9999", what, f.cosine)) end
end

-- GPTQ's integers run on the same kernels
local g3 = m:apply("gptq", {bits = 3, group = 32, calib = task, calib_samples = 64})
check_layers(g3, "int3", function() return 3.5 end, "gptq 3-bit group 32")

-- W4A8: int4 weights, int8 per-token activations on VNNI
local w4 = m:apply("rtn", {bits = 4, group = 32, act_bits = 8})
check_layers(w4, "w4a8", function() return 4.5 end, "rtn 4-bit act_bits=8 (W4A8)")
local rep = w4:quant_report()[1]
tap.like(rep.kernel, "int4 w/group32 a/int8 token %(", "W4A8's kernel column names the int8 tokens and the kernel: " .. rep.kernel)
local fw, aw = row("rtn 4-bit g32 W4A8", w4)
local f4, a4 = row("rtn 4-bit g32 weight-only", m:apply("rtn", {bits = 4, group = 32}))
tap.ok(fw.cosine > 0.99 and math.abs(aw - fp.accuracy) < 0.05,
       string.format("W4A8 stays close to f32 (cosine %.5f, accuracy %.4f vs %.4f; weight-only int4: %.5f, %.4f)", fw.cosine, aw, fp.accuracy, f4.cosine, a4))
local w4c = m:apply("rtn", {bits = 4, group = 0, act_bits = 8})
check_layers(w4c, "w4a8", function(r) return 4 + 16 / K_of(r) end, "W4A8 per channel")
tap.ok(m:apply("rtn", {bits = 3, group = 32, act_bits = 8}):info().simulated, "act_bits=8 with 3-bit weights: simulated and labelled")

-- binary and ternary
local bin, ter = m:apply("binary"), m:apply("ternary")
check_layers(bin, "binary", function(r) return 1 + 16 / K_of(r) end, "binary")
check_layers(ter, "ternary", function(r) return 2 + 16 / K_of(r) end, "ternary")
same_function(bin, "binary")
same_function(ter, "ternary")
local fb = row("binary (PTQ)", bin)
local ft = row("ternary (PTQ)", ter)
tap.ok(ft.cosine > fb.cosine, string.format("ternary keeps more of the function than binary (cosine %.4f vs %.4f)", ft.cosine, fb.cosine))
-- quantization-aware fine-tuning: the forward on the packed weights, the straight-through estimator into the f32
-- masters, binarized / ternarized again after every step
for _, c in ipairs{{"ternary"}, {"binary"}} do
  local q = m:apply(c[1]) -- its f32 masters: m's weights until the first step writes them (copy on write)
  local a0 = q:evaluate(task).accuracy
  local tr = q:train(task, {steps = 100, batch = 32, lr = 5e-4, warmup = 10, seed = 7})
  local a1 = q:evaluate(task).accuracy
  tap.ok(tr.loss == tr.loss and q:quant_report()[1].format == c[1] and not q:info().simulated and a1 > a0,
         string.format("%s QAT (100 steps, STE): still %s on its kernel, accuracy %.4f -> %.4f (f32 %.4f)", c[1], q:quant_report()[1].format, a0, a1, fp.accuracy))
  rows[#rows + 1] = string.format("%-28s acc %.4f (PTQ %.4f)", c[1] .. " + 100 QAT steps", a1, a0)
end
tap.ok(m:evaluate(task).accuracy == fp.accuracy, "QAT of the quantized copies left the f32 model as it was")
tap.like(err(function() m:apply("rtn", {bits = 3, group = 32}):train(task, {steps = 1}) end), "does not train", "int3 weights: training refused, with the way out")
local part = m:apply("ternary", {layers = "enc.*.ffn.*"})
local n_ter, n_f32 = 0, 0
for _, r in ipairs(part:quant_report()) do
  if r.format == "ternary" then n_ter = n_ter + 1 elseif r.format == "f32" then n_f32 = n_f32 + 1 end
end
tap.ok(n_ter == 4 and n_f32 > 0, string.format("ternary layers= selects (%d ternary, %d f32)", n_ter, n_f32))

-- layouts that do not fit stay simulated, labelled
tap.ok(m:apply("rtn", {bits = 2, group = 8}):info().simulated, "rtn 2-bit group 8 (not a multiple of 16): simulated and labelled")
tap.ok(m:apply("rtn", {bits = 6, group = 32}):info().simulated, "rtn 6-bit: no kernel, simulated and labelled")

-- errors
tap.like(err(function() m:apply("rtn", {bits = 4, act_bits = 16}) end), "act_bits=16", "act_bits other than 8 / 32: named")
tap.like(err(function() m:apply("binary", {layers = "nothing.*"}) end), "nothing", "binary: unmatched layers named")
tap.like(err(function() m:apply("ternary", {bits = 2}) end), "bits", "ternary: an unknown option named")

for _, r in ipairs(rows) do tap.diag(r) end
tap.done()
