-- quant_noise.lua — Fan et al. 2020 ("Training with Quantization Noise for Extreme Model Compression"), Table 1's
-- shape at small scale: for each quantizer (scalar int8 / int4 per channel, product quantization at two block /
-- codebook sizes) the size of the encoder's Linear weights in bits per weight and the test accuracy of
--   ptq          the trained f32 model quantized as it is,
--   finetune     the f32 model fine-tuned `steps` more steps without noise, then quantized (the control: the
--                same extra training as the next row, so the difference is the noise's, not the steps'),
--   quant_noise  fine-tuned the same steps under Quant-Noise with that quantizer at rate p, then quantized;
-- a sweep of the noise rate p for one PQ setting (block 8, k 32) over three fine-tuning seeds; and the paper's own
-- protocol for that setting, Quant-Noise from the first training step (p = 0: plain training, then PQ).
-- The model is quant.lua's / ptq_vs_qat.lua's ListOps encoder from pare.zoo (trained once, cached).
-- Scalar rows run simulated (rtn at 8 / 4 bits per channel has no kernel), PQ rows on pq's lookup-table kernel;
-- the sizes are exact either way. No latency here (bench = false): the size and accuracy are the question.
--
--   pare run experiments/quant_noise.lua [steps=300] [p=0.1] [rates=0,0.05,0.1,0.2,0.5,1] [seeds=3,4,5]
--                                        [scratch=0,0.1,0.5,1] [d=64]
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp = pare.experiment("quant_noise", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local base, task = zoo.listops{d = tonumber(a.d) or 64}
local steps, p_main = tonumber(a.steps) or 300, tonumber(a.p) or 0.1
local rates = pare.numbers(a.rates, {0, 0.05, 0.1, 0.2, 0.5, 1})
local seeds = pare.numbers(a.seeds, {3, 4, 5})
local scratch_rates = pare.numbers(a.scratch, {0, 0.1, 0.5, 1})
local FT = {steps = steps, batch = 32, lr = 5e-4, warmup = 20, seed = 3}

-- quantizer name -> how the finished model is quantized, and the noise that imitates it
local quantizers = {
  {name = "int8", quantize = function(m) return m:apply("rtn", {bits = 8, group = 0}) end, noise = {quantizer = "int8", block = 8}},
  {name = "int4", quantize = function(m) return m:apply("rtn", {bits = 4, group = 0}) end, noise = {quantizer = "int4", block = 8}},
  {name = "pq_b4_k64", quantize = function(m) return m:apply("pq", {block = 4, k = 64, codebook = "f16"}) end,
   noise = {quantizer = "pq", block = 4, k = 64}},
  {name = "pq_b8_k32", quantize = function(m) return m:apply("pq", {block = 8, k = 32, codebook = "f16"}) end,
   noise = {quantizer = "pq", block = 8, k = 32}},
}

-- bits per weight over the quantized Linears (the encoder's; the embeddings and the head stay f32)
local count = {}
for _, r in ipairs(base:quant_report()) do count[r.layer] = r.size_bytes / 4 end
local function bits_per_weight(m)
  local bits, n = 0, 0
  for _, r in ipairs(m:quant_report()) do
    if r.layer:match("^enc%.") then bits, n = bits + r.bits_per_weight * count[r.layer], n + count[r.layer] end
  end
  return bits / n
end

local tuned -- the f32 model fine-tuned without noise, made once
local function finetuned()
  if not tuned then
    tuned = base:clone()
    tuned:train(task, FT)
  end
  return tuned
end
local function noised(q, p)
  local o = {p = p}
  for k, v in pairs(q.noise) do o[k] = v end
  local m = base:apply("quant_noise", o)
  m:train(task, FT)
  return m
end

local function row(m, extra)
  extra.bench = false
  local r = measure.row(m, base, task, extra)
  r.bits_per_weight = bits_per_weight(m)
  r.compression = 32 / r.bits_per_weight
  return r
end

local decl = measure.decl({"quantizer", "method", "p", "bits_per_weight", "compression"}, nil,
                          {bits_per_weight = "bits per weight (encoder Linears, exact)", compression = "32 / bits per weight"})
decl.types = {p = "float", bits_per_weight = "float", compression = "float"}
exp:table("table1", decl)
local function once(key, make)
  if exp:has("table1", key) then return end
  local r = make()
  for k, v in pairs(key) do r[k] = v end
  exp:record("table1", r)
  io.stderr:write(string.format("quant_noise: %-10s %-12s bits/weight %6.3f accuracy %.4f\n", key.quantizer, key.method,
                                r.bits_per_weight, r.accuracy))
end
once({quantizer = "none", method = "fp32"}, function() return row(base, {p = 0.0}) end)
once({quantizer = "none", method = "finetune"}, function() return row(finetuned(), {p = 0.0}) end)
for _, q in ipairs(quantizers) do
  once({quantizer = q.name, method = "ptq"}, function() return row(q.quantize(base), {p = 0.0}) end)
  once({quantizer = q.name, method = "finetune"}, function() return row(q.quantize(finetuned()), {p = 0.0}) end)
  once({quantizer = q.name, method = "quant_noise"}, function() return row(q.quantize(noised(q, p_main)), {p = p_main}) end)
end

-- the noise rate, for pq_b8_k32, over fine-tuning seeds (one seed's differences of 0.01-0.02 are within the noise
-- of 1000 test examples)
local rate_q = quantizers[4]
exp:table("rate", measure.decl({"seed", "p", "bits_per_weight"}))
pare.sweep(exp, "rate", {{"seed", seeds}, {"p", rates}}, function(pt)
  local o = {p = pt.p}
  for k, v in pairs(rate_q.noise) do o[k] = v end
  local m = base:apply("quant_noise", o)
  local ft = {}
  for k, v in pairs(FT) do ft[k] = v end
  ft.seed = pt.seed
  m:train(task, ft)
  return row(rate_q.quantize(m), {})
end)

-- the paper's protocol: Quant-Noise from the first step of training (the zoo encoder's recipe, 3000 steps), then PQ
exp:table("scratch", measure.decl({"p", "bits_per_weight"}))
pare.sweep(exp, "scratch", {{"p", scratch_rates}}, function(pt)
  local m = pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = tonumber(a.d) or 64,
                       heads = 4, layers = 2, seed = 1}
  if pt.p > 0 then
    local o = {p = pt.p}
    for k, v in pairs(rate_q.noise) do o[k] = v end
    m = m:apply("quant_noise", o)
  end
  m:train(task, {steps = 3000, batch = 32, lr = 2e-3, warmup = 100, seed = 1}) -- zoo.encoder's recipe
  local r = row(rate_q.quantize(m), {})
  local f = m:evaluate(task)
  r.accuracy_f32 = f.accuracy
  return r
end)

pare.print_table(exp, "table1", {columns = {"quantizer", "method", "p", "bits_per_weight", "compression", "accuracy",
                                            "agreement", "simulated"}})
pare.print_table(exp, "rate", {columns = {"seed", "p", "bits_per_weight", "accuracy", "agreement"}})
pare.print_table(exp, "scratch", {columns = {"p", "bits_per_weight", "accuracy", "accuracy_f32", "agreement"}})
exp:plot{table = "table1", name = "size", x = "bits_per_weight", y = "accuracy", by = "method", kind = "points", logx = true,
         title = "ListOps encoder: accuracy against bits per weight (PTQ, fine-tuned, Quant-Noise)"}
exp:plot{table = "rate", name = "rate", x = "p", y = "accuracy", by = "seed", kind = "linespoints",
         title = "Quant-Noise rate p before PQ (block 8, k 32, f16 codebook)"}
exp:plot{table = "scratch", name = "scratch", x = "p", y = "accuracy", kind = "linespoints",
         title = "Quant-Noise from the first step, then PQ (block 8, k 32, f16 codebook)"}
exp:close()
