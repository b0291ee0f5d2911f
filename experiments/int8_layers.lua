-- int8_layers.lua — which layers to quantize? A sweep of dynamic INT8 over layer patterns on a
-- trained recall model: accuracy, agreement with FP32, latency and size per pattern.
--   pare run experiments/int8_layers.lua [steps=1500] [model=bert-mini|gpt-mini|<hf dir>]
-- model= runs the sweep on a zoo model (pare.zoo) or a Hugging Face directory (pare.load_hf), measured on
-- held-out rows of its pretraining task (docs/zoo.md); the default trains a small recall encoder.
local pare = require "pare"
local a = pare.args
local exp = pare.experiment(a.model and ("int8_layers-" .. a.model:gsub("[^%w_-]", "_")) or "int8_layers", {seed = 1})
local task, base
if a.model then
  base, task = require("pare.zoo").subject(a.model, require("pare.zoo").subject_args(a))
else
  task = pare.task("recall", {seed = 1})
  base = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, layers = 2, seed = 1}
  base:train(task, {steps = tonumber(a.steps) or 1500, lr = 2e-3, warmup = 50})
end
local patterns = {"none", "*", "enc.*", "enc.*.attn.*", "enc.*.ffn.*", "head"}
if a.model and base:info().kind == "decoder" then patterns = {"none", "*", "dec.*", "dec.*.attn.*", "dec.*.ffn.*", "head"} end
pare.sweep(exp, "int8", {layers = patterns}, function(p)
  local m = p.layers == "none" and base or base:apply("dynamic_int8", {layers = p.layers})
  local b = m:bench{batch = 32, repeats = 20}
  return {accuracy = m:evaluate(task).accuracy, agreement = m:fidelity(base, task).agreement,
          latency_ms = b.median_ms, size_kb = m:info().size_bytes / 1e3, format = m:info().format}
end)
pare.print_table(exp, "int8")
exp:plot{table = "int8", x = "layers", y = "size_kb", kind = "bars", title = "Weight storage by quantized layers"}
