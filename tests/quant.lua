-- quant.lua — every quantization pass on a small trained encoder: the f32-preserving rewrites keep the
-- function, every real kernel stays close to f32, the techniques do what their papers say on a model
-- with injected outliers, QAT trains and converts exactly, and bad options get clear errors.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 3, n_train = 2000, n_test = 400})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 2, seed = 1}
m:train(task, {steps = 1500, batch = 32, lr = 2e-3, warmup = 50, seed = 7})
local fp = m:evaluate(task)
tap.ok(fp.accuracy > 0.4, string.format("the f32 model learned something (%.3f)", fp.accuracy))

local function fid(q, ref) return q:fidelity(ref or m, task) end
local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end
local CAL = {calib = task, calib_samples = 64}
local function with(t, extra)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- outlier injection and SmoothQuant's smoothing leave the f32 function unchanged
local big = m:apply("inject_outliers", {factor = 40, channels = 3})
local f = fid(big)
tap.ok(f.agreement == 1 and f.cosine > 0.99999, string.format("inject_outliers: same f32 function (cosine %.7f, max err %.2g)", f.cosine, f.max_abs_err))
do -- applied again and again, the gains overflow: an error naming the parameter, not a model computing Inf
  local e, mm = nil, m
  for _ = 1, 12 do
    local ok, r = pcall(mm.apply, mm, "inject_outliers", {factor = 1e6, channels = 1})
    if not ok then e = tostring(r); break end
    mm = r
  end
  tap.like(e or "", "inject_outliers: factor=1e%+06 makes enc%.%d%.ln%d%.weight%[%d+%] Inf", "overflowing gains are refused, named")
end
tap.ok(big:info().outliers_injected and not m:info().outliers_injected, "info() records the injection")
local sm = big:apply("smoothquant", with(CAL, {level = "fp32", alpha = 0.5}))
f = fid(sm, big)
tap.ok(f.agreement == 1 and f.cosine > 0.99999, string.format("smoothquant level=fp32: same f32 function (cosine %.7f)", f.cosine))

-- W8A8 per-token dynamic int8 suffers from outliers; LLM.int8() and SmoothQuant recover
local function cos(q, ref) return fid(q, ref).cosine end
local tok_clean = cos(m:apply("dynamic_int8"))
local tok_big = cos(big:apply("dynamic_int8"), big)
local ten_big = cos(big:apply("dynamic_int8", {acts = "tensor", weights = "tensor"}), big)
local llm_big = cos(big:apply("llm_int8"), big)
local sq_big = cos(big:apply("smoothquant", with(CAL, {level = "O1", alpha = 0.5})), big)
local sq3_big = cos(big:apply("smoothquant", with(CAL, {level = "O3", alpha = 0.8})), big)
tap.diag(string.format("logit cosine vs f32: token %.5f (clean %.5f), tensor %.5f, llm.int8 %.5f, SQ-O1 %.5f, SQ-O3(a=.8) %.5f",
                       tok_big, tok_clean, ten_big, llm_big, sq_big, sq3_big))
tap.ok(tok_clean > 0.999, "dynamic int8 per token is close to f32 without outliers")
tap.ok(ten_big < tok_big, "with outliers per-tensor activations are worse than per-token")
tap.ok(llm_big > tok_big and llm_big > 0.999, "LLM.int8() beats plain int8 with outliers")
tap.ok(sq_big > ten_big, "SmoothQuant O1 beats per-tensor W8A8 with outliers")
tap.ok(sq3_big > ten_big, "SmoothQuant O3 beats per-tensor W8A8 with outliers")
local rep = big:apply("llm_int8"):quant_report()
tap.ok(rep[1].format == "int8" and rep[1].kernel:find("llm.int8", 1, true), "quant_report names the LLM.int8 kernel")
local q = big:apply("llm_int8")
q:evaluate(task)
local fr = q:quant_report()
local frac = 0
for _, r in ipairs(fr) do if r.layer:find("qkv") then frac = math.max(frac, r.outlier_fraction) end end
tap.ok(frac > 0 and frac < 0.2, string.format("LLM.int8 ran a few features in f32 on the qkv inputs (fraction %.3f)", frac))
local none = big:apply("llm_int8", {threshold = 1e9})
tap.ok(fid(none, big:apply("dynamic_int8")).max_abs_err == 0, "LLM.int8 with a huge threshold is plain per-token int8")

-- dynamic_int8 scheme = "torch": PyTorch quantize_dynamic's parameters on the int8 kernel (the parameters and a
-- Linear's outputs are checked against torch itself in tests/test_torch_quant.c)
local tq = m:apply("dynamic_int8", {scheme = "torch"})
local tr = tq:quant_report()
local tcos = cos(tq)
tap.diag(string.format("logit cosine vs f32: scheme=torch %.5f, pare's default %.5f", tcos, tok_clean))
tap.ok(tr[1].format == "int8" and tr[1].kernel:find("w/torch a/tensor asym torch", 1, true) and not tq:info().simulated,
       "scheme=torch runs on the int8 kernel, labelled: " .. tostring(tr[1].kernel))
tap.ok(tcos > 0.99, string.format("scheme=torch stays close to f32 (logit cosine %.5f)", tcos))
tap.like(err(function() m:apply("dynamic_int8", {scheme = "torch", acts = "token"}) end), 'scheme="torch" fixes acts',
         "scheme=torch refuses an activation granularity of its own")

-- static int8: every calibration method runs on the real kernel and stays close
for _, meth in ipairs{"minmax", "percentile", "kl", "mse"} do
  local s = m:apply("static_int8", with(CAL, {method = meth}))
  local c = fid(s).cosine
  tap.ok(c > 0.99 and s:info().format == "int8", string.format("static_int8 method=%s: cosine %.5f", meth, c))
end
local asym = m:apply("static_int8", with(CAL, {act_symmetric = false}))
tap.ok(fid(asym).cosine > 0.99, "static_int8 asymmetric activations")
local sr = m:apply("static_int8", with(CAL, {method = "kl"})):quant_report()
tap.like(sr[1].method, "static kl %[", "quant_report gives each layer's calibrated range")

-- weight-only: RTN and GPTQ; 4 bits on the int4-group kernel, 8/3/2 bits on kernels/wq.h's (tests/wq.lua), others simulated
local r4 = m:apply("rtn", {bits = 4, group = 32})
tap.ok(r4:quant_report()[1].format == "int4_group" and not r4:info().simulated, "rtn 4-bit runs on the int4 group kernel")
tap.is_close(r4:quant_report()[1].bits_per_weight, 4.5, 1e-9, 0, "int4 group 32: 4.5 bits per weight (fp16 scales)")
local r3 = m:apply("rtn", {bits = 3, group = 32})
tap.ok(r3:quant_report()[1].format == "int3" and not r3:info().simulated, "rtn 3-bit runs on the int3 kernel")
tap.ok(m:apply("rtn", {bits = 5, group = 32}):info().simulated, "rtn 5-bit is simulated and says so")
local g3 = m:apply("gptq", with(CAL, {bits = 3, group = 32}))
local e_rtn, e_gptq = fid(r3).cosine, fid(g3).cosine
tap.ok(e_gptq > e_rtn, string.format("GPTQ beats RTN at 3 bits (cosine %.5f vs %.5f)", e_gptq, e_rtn))

-- block formats and ZeroQuant on their kernels
for _, fmt in ipairs{{"q8_0", 8.5}, {"q4_0", 4.5}, {"q4_1", 5.0}} do
  local b = m:apply("qblock", {format = fmt[1]})
  local rr = b:quant_report()[1]
  tap.ok(rr.format == fmt[1] and math.abs(rr.bits_per_weight - fmt[2]) < 1e-9 and fid(b).cosine > (fmt[2] > 8 and 0.999 or 0.97),
         string.format("%s: %.2f bits per weight, cosine %.5f", fmt[1], rr.bits_per_weight, fid(b).cosine))
end
local zq = m:apply("zeroquant", {group = 32})
tap.ok(zq:quant_report()[1].format == "int8_group" and fid(zq).cosine > 0.999, "zeroquant: int8 groups with per-token activations")

-- simulated formats: error grows as precision falls
local c16 = fid(m:apply("fake_quant", {w_format = "bf16", a_format = "bf16"})).cosine
local c8 = fid(m:apply("fake_quant", {w_format = "fp8_e4m3", a_format = "fp8_e4m3", w_gran = "tensor", a_gran = "tensor"})).cosine
local c2 = fid(m:apply("fake_quant", {w_bits = 2})).cosine
tap.ok(c16 > c8 and c8 > c2, string.format("bf16 %.6f > fp8 %.6f > int2 %.6f", c16, c8, c2))

-- mixed precision by layer
local mx = m:apply("mixed", {spec = "*.ffn.down=fp32, *=int8"})
local fmts = {}
for _, r in ipairs(mx:quant_report()) do fmts[r.layer] = r.format end
tap.ok(fmts["enc.0.ffn.down"] == "f32" and fmts["enc.0.ffn.up"] == "int8" and fmts["head"] == "int8", "mixed: first matching pattern decides")
tap.like(err(function() m:apply("mixed", {spec = "*=int7"}) end), "unknown format 'int7'", "mixed: unknown format named")
tap.like(err(function() m:apply("mixed", {spec = "nothing.*=int8"}) end), "pattern 'nothing.*' matches no", "mixed: unmatched pattern named")

-- QAT: trains with fake quantization, then converts to the int8 kernel computing the same function
local qm = m:apply("qat", with(CAL, {bits = 8}))
local before = qm:evaluate(task)
local tr = qm:train(task, {steps = 100, batch = 32, lr = 5e-4, warmup = 10})
tap.ok(tr.loss == tr.loss and tr.loss < 5, string.format("QAT fine-tunes (loss %.4f)", tr.loss))
local conv = qm:apply("qat_convert")
local fc = conv:fidelity(qm, task)
local cr = conv:quant_report()
tap.ok(cr[1].format == "int8" and cr[1].method == "qat lsq" and not conv:info().simulated, "qat_convert: the int8 kernel")
tap.ok(fc.agreement >= 0.995 and fc.cosine > 0.9999,
       string.format("converted int8 model computes the QAT forward (agreement %.4f, cosine %.6f)", fc.agreement, fc.cosine))
tap.ok(math.abs(conv:evaluate(task).accuracy - before.accuracy) < 0.1, "QAT accuracy stays near its start")
local q4 = m:apply("qat", with(CAL, {bits = 4, learn_scales = false}))
q4:train(task, {steps = 50, batch = 32, lr = 5e-4, warmup = 10})
tap.ok(q4:apply("qat_convert"):info().simulated, "4-bit QAT converts to the simulated form (no W4A4 kernel)")

-- bad input: clear errors naming the option
tap.like(err(function() m:apply("smoothquant", with(CAL, {alpha = 1.5})) end), "alpha", "alpha outside [0, 1]")
tap.like(err(function() m:apply("rtn", {bits = 9}) end), "bits", "bits out of range")
tap.like(err(function() m:apply("rtn", {bits = 4, group = 48}) end), "group=48 does not divide", "group must divide K")
tap.like(err(function() m:apply("static_int8") end), "calib", "static_int8 without calibration data")
tap.like(err(function() m:apply("static_int8", {calib = task, calib_samples = 10 ^ 6}) end), "calib_samples=1000000",
         "more calibration samples than the set holds")
tap.like(err(function() m:apply("dynamic_int8", {layers = "nope*"}) end), "matches no Linear", "a pattern that matches nothing")
tap.like(err(function() m:apply("smoothquant", {calib = "x"}) end), "calib must be a task", "calib of the wrong type")
tap.ok(m:info().format == "f32" and m:evaluate(task).accuracy == fp.accuracy, "the f32 model is unchanged by all of it")
tap.done()
