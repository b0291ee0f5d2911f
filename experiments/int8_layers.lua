-- int8_layers.lua — which layers to quantize? A sweep of dynamic INT8 over layer patterns on a
-- trained recall model: accuracy, agreement with FP32, latency and size per pattern.
--   pare run experiments/int8_layers.lua [steps=1500]
local pare = require "pare"
local exp = pare.experiment("int8_layers", {seed = 1})
local task = pare.task("recall", {seed = 1})
local base = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, layers = 2, seed = 1}
base:train(task, {steps = tonumber(pare.args.steps) or 1500, lr = 2e-3, warmup = 50})
pare.sweep(exp, "int8", {layers = {"none", "*", "enc.*", "enc.*.attn.*", "enc.*.ffn.*", "head"}}, function(p)
  local m = p.layers == "none" and base or base:apply("dynamic_int8", {layers = p.layers})
  local b = m:bench{batch = 32, repeats = 20}
  return {accuracy = m:evaluate(task).accuracy, agreement = m:fidelity(base, task).agreement,
          latency_ms = b.median_ms, size_kb = m:info().size_bytes / 1e3, format = m:info().format}
end)
pare.print_table(exp, "int8")
exp:plot{table = "int8", x = "layers", y = "size_kb", kind = "bars", title = "Weight storage by quantized layers"}
