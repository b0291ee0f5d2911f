-- paper_ptq_tables.lua — seed 004's quantization tables at small scale: Table 2 (accuracy with no
-- quantization, 8-bit and 16-bit), Table 4 (inference time) and Table 5 (model size), each for the
-- paper's greedy layer-wise search ("greedy": quantize Linear layers one at a time, keep a layer when
-- accuracy stays within `tolerance` of FP32) and for quantizing every layer at once ("all", what a
-- whole-model tool such as Intel Neural Compressor's default does). 8-bit is dynamic INT8 on the int8
-- kernel; 16-bit is 16-bit float weights and activations on the real kernel of the bf16 pass: bf16 by default
-- (what Intel Neural Compressor's mixed precision uses on a CPU; oneDNN's bf16 inner product where the CPU
-- has AVX512-BF16), or half=f16 (f16 storage, f32 arithmetic on the same values on CPUs without f16
-- arithmetic). Nothing in these tables is simulated any more (the simulated column says so, row by row).
--
-- The paper's model is BERT, whose activations have outlier features; by default the embedded encoder gets
-- them injected (inject_outliers, factor 100: same f32 function; every row says outliers = 1).
--
--   pare run experiments/paper_ptq_tables.lua [tolerance=0.01] [outliers=1] [factor=100] [d=128] [half=bf16|f16]
local pare = require "pare"
local zoo, measure, search = require "pare.zoo", require "pare.measure", require "pare.search"
local a = pare.args
local exp = pare.experiment("paper_ptq_tables", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local trained, task = zoo.listops{d = tonumber(a.d) or 128}
-- BERT has activation outliers, a small ListOps encoder does not: inject them (same f32 function) unless outliers=0
local base = tonumber(a.outliers or 1) ~= 0 and trained:apply("inject_outliers", {factor = tonumber(a.factor) or 100, channels = 4}) or trained
local tol = tonumber(a.tolerance) or 0.01
local half = a.half or "bf16"
local fmt = {
  ["8-bit"] = function(m, layer) return m:apply("dynamic_int8", {layers = layer}) end,
  ["16-bit"] = function(m, layer) return m:apply("bf16", {layers = layer, dtype = half}) end,
}
exp:table("greedy_trace", {"level", "layer", "accuracy", "kept"})
exp:table("tables", measure.decl({"level", "selection", "layers_quantized"}))
pare.sweep(exp, "tables", {{"level", {"none", "8-bit", "16-bit"}}, {"selection", {"greedy", "all"}}}, function(p)
  local q, n = base, 0
  if p.level ~= "none" and p.selection == "all" then q, n = fmt[p.level](base, "*"), #base:quant_report()
  elseif p.level ~= "none" then
    local trace
    q, trace, _, n = search.greedy_layers(base, task, {apply = fmt[p.level], tolerance = tol})
    for _, t in ipairs(trace) do
      exp:record("greedy_trace", {level = p.level, layer = t.layer, accuracy = t.metric, kept = t.kept and 1 or 0})
    end
  end
  local row = measure.row(q, base, task, {bench = {batch = 8, repeats = 20}})
  row.layers_quantized = n
  return row
end)
print("Table 2 — accuracy; Table 4 — inference time; Table 5 — size:")
pare.print_table(exp, "tables", {columns = {"level", "selection", "layers_quantized", "accuracy", "latency_ms", "size_mb", "simulated"}})
print("Greedy layer search:")
pare.print_table(exp, "greedy_trace")
exp:plot{table = "tables", name = "accuracy", x = "level", y = "accuracy", by = "selection", kind = "bars",
         title = "Seed 004 Table 2: accuracy against quantization level"}
exp:plot{table = "tables", name = "latency", x = "level", y = "latency_ms", by = "selection", kind = "bars",
         title = "Seed 004 Table 4: inference time (16-bit = " .. half .. ")"}
exp:plot{table = "tables", name = "size", x = "level", y = "size_mb", by = "selection", kind = "bars",
         title = "Seed 004 Table 5: model size"}
exp:close()
