-- attn_config.lua — a model's attention given as Lua tables: resolved straight against the variant's
-- options, the same model as the equivalent string (config JSON, logits), per layer, with errors naming
-- the layer and the option; the dense default is the "full" variant (identical logits, capturable
-- probabilities, SmoothQuant's int8 products).
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("majority", {seed = 2, n_train = 256, n_test = 64, pad_to = 32})
local T = task.T
local function model(att, extra)
  local o = {vocab = task.vocab, max_T = T, classes = task.classes, d = 16, heads = 2, layers = 3, seed = 4,
             attention = att}
  for k, v in pairs(extra or {}) do o[k] = v end
  return pare.model(o)
end
local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end
local function same(a, b) return a:fidelity(b, task).max_abs_err == 0 end
local function layers(m) -- m:info().attention split into its layers
  local t = {}
  for spec in m:info().attention:gmatch("[^;]+") do t[#t + 1] = spec end
  return t
end

-- a table for every layer == the string it stands for
local lt = model({kind = "longformer", window = 5, global = 1})
local ls = model("longformer:window=5,global=1")
tap.is(lt:info().config, ls:info().config, "a table and its string give the same config JSON")
tap.ok(same(lt, ls), "and bit-identical logits")
tap.is(layers(lt)[3], "longformer:window=5,global=1", "every layer keeps the canonical spec")
tap.like(lt:info().config, '"attention": "longformer:window=5,global=1"', "the config records the canonical text")

-- keys in any order, numbers of any Lua type: one canonical spec (the variant's option order)
local bb = {kind = "bigbird", global = 1, random = 1, window = 3.0, block = 4}
local pl = model({{kind = "full"}, bb})
local ps = model("full;bigbird:block=4,window=3,random=1,global=1")
local info, pll = pl:info(), layers(pl)
tap.is(pll[1], "full", "per layer: layer 0 full")
tap.is(pll[2], "bigbird:block=4,window=3,random=1,global=1", "layer 1 in schema order, 3.0 written 3")
tap.ok(#pll == 3 and pll[3] == pll[2], "the last table repeats")
tap.is(info.config, ps:info().config, "per-layer tables and the per-layer string: the same config JSON")
tap.ok(same(pl, ps), "and bit-identical logits")
local again = model({{kind = "full"}, bb, bb, bb})
tap.is(again:info().config, info.config, "trailing repeats are dropped from the config")

-- a checkpoint of a table-built model loads as the same model
local path = os.tmpname()
pl:save(path)
local back = pare.load(path)
os.remove(path)
tap.ok(back:info().config == info.config and same(back, pl), "a checkpoint rebuilds it (same config, same logits)")

-- errors name the layer, the option and the valid choices
tap.like(err(function() model({{kind = "full"}, {kind = "bigbird", blok = 4}}) end), "layer 1.*'blok'.*valid: block",
         "an unknown option names the layer, the option and the valid keys")
tap.like(err(function() model({{kind = "full"}, {kind = "fixed", pattern = "nope"}}) end), "layer 1.*pattern.*strided",
         "a bad choice names the layer and lists the choices")
tap.like(err(function() model({kind = "longformer", window = {}}) end), "window.*table",
         "a value of the wrong Lua type names the option")
tap.like(err(function() model({{kind = "full"}, "bigbird"}) end), "attention%[2%]", "a list entry that is not a table")
tap.like(err(function() model({{kind = "full"}, {kind = "longformer", window = T + 8}}) end), "layer 1.*window",
         "an option that does not fit max_T names the layer and the option")
tap.like(err(function() model({{kind = "full"}, {window = 3}}) end), "layer 1.*kind", "a table without kind")

-- the dense default is the full variant
local dense, full = model(nil), model({kind = "full"})
tap.ok(same(dense, full) and same(dense, model("full")), "dense default == full (bit-identical logits)")
tap.is(dense:info().attention, "full;full;full", "the dense default is listed as full")
local cap = full:capture(task, {"enc.1.attn#att"}, {n = 2})
local p = cap["enc.1.attn#att"]
local s = 0
for j = 1, T do s = s + p.values[j] end
tap.ok(p.rows * p.cols == 2 * 2 * T * T and math.abs(s - 1) < 1e-5,
       string.format("attention = full keeps its probabilities capturable (a row sums to %.6f)", s))
tap.like(err(function() lt:capture(task, {"enc.1.attn#att"}, {n = 2}) end), "no value named",
         "a sparse variant has no dense probabilities to capture")

-- SmoothQuant's int8 batched products run inside the full variant
local CAL = {calib = task, calib_samples = 32, level = "O1"}
local function with(t, extra) local r = {} for k, v in pairs(t) do r[k] = v end for k, v in pairs(extra) do r[k] = v end return r end
local bmm = dense:apply("smoothquant", with(CAL, {quantize_bmm = true}))
local nobmm = dense:apply("smoothquant", with(CAL, {quantize_bmm = false}))
local fb, fn = bmm:fidelity(dense, task), nobmm:fidelity(dense, task)
tap.ok(fb.cosine > 0.99 and fn.cosine > 0.99, string.format("smoothquant with and without int8 BMMs track f32 (%.5f, %.5f)",
                                                           fb.cosine, fn.cosine))
tap.ok(bmm:fidelity(nobmm, task).max_abs_err > 0, "the int8 BMMs change the numbers: they ran")
tap.like(err(function() bmm:capture(task, {"enc.1.attn#att"}, {n = 2}) end), "int8 attention",
         "their probabilities are not captured at inference")
-- dynamic_int8's int8 attention (attention = "int8"): the same batched products, no calibration
local d8, d32 = dense:apply("dynamic_int8", {attention = "int8"}), dense:apply("dynamic_int8")
local f8, f32 = d8:fidelity(dense, task), d32:fidelity(dense, task)
tap.ok(f8.cosine > 0.999 and f8.agreement >= f32.agreement - 0.01 and d8:fidelity(d32, task).max_abs_err > 0,
       string.format("dynamic_int8 attention=int8 runs (differs from f32 attention) and keeps f32's function: cosine %.6f " ..
                     "(f32 attention %.6f), agreement %.3f (%.3f)", f8.cosine, f32.cosine, f8.agreement, f32.agreement))
tap.like(err(function() d8:capture(task, {"enc.1.attn#att"}, {n = 2}) end), "int8 attention",
         "dynamic_int8's int8 attention: probabilities not captured at inference either")
tap.like(err(function() dense:apply("dynamic_int8", {attention = "int8", bits = 4}) end), "needs bits=8",
         "attention=int8 with bits=4 is refused, naming bits")
tap.like(err(function() dense:apply("dynamic_int8", {attention = "int8", scheme = "torch"}) end), "fixes attention",
         "scheme=torch refuses attention=int8 (PyTorch's quantize_dynamic keeps attention in f32)")
tap.done()
