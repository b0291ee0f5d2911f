-- llm_int8_threshold.lua — LLM.int8(): accuracy, and the fraction of input features run in floating
-- point, against the outlier threshold (default 6.0), with and without injected outliers.
--
--   pare run experiments/llm_int8_threshold.lua [factor=100] [channels=4] [d=128]
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp = pare.experiment("llm_int8_threshold", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local base, task = zoo.listops{d = tonumber(a.d) or 128}
local models = {clean = base, outliers = base:apply("inject_outliers", {factor = tonumber(a.factor) or 100,
                                                                   channels = tonumber(a.channels) or 4})}
local decl = measure.decl({"model", "threshold", "fp_fraction"}, nil,
                          {fp_fraction = "input features run in f32 (mean over layers and calls)"})
exp:table("threshold", decl)
pare.sweep(exp, "threshold", {{"model", {"clean", "outliers"}}, {"threshold", {0.5, 1, 2, 3, 4, 6, 8, 12, 20, 1e9}}}, function(p)
  local q = models[p.model]:apply("llm_int8", {threshold = p.threshold})
  local row = measure.row(q, models[p.model], task, {bench = {batch = 8, repeats = 15}})
  local s, n = 0, 0
  for _, r in ipairs(q:quant_report()) do if r.outlier_fraction then s, n = s + r.outlier_fraction, n + 1 end end
  row.fp_fraction = n > 0 and s / n or 0
  return row
end)
pare.print_table(exp, "threshold", {columns = {"model", "threshold", "fp_fraction", "accuracy", "cosine", "latency_ms"}})
exp:plot{table = "threshold", name = "accuracy", x = "threshold", y = "accuracy", by = "model", logx = true,
         title = "LLM.int8(): accuracy against the outlier threshold"}
exp:plot{table = "threshold", name = "fp-fraction", x = "threshold", y = "fp_fraction", by = "model", logx = true,
         title = "LLM.int8(): fraction of features kept in floating point"}
exp:close()
