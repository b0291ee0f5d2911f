-- smoothquant_schemes.lua — seed 002's SmoothQuant comparison at small scale: W8A8 with per-tensor,
-- per-token and per-channel activation scales, ZeroQuant, LLM.int8(), SmoothQuant O1/O2/O3 and Outlier
-- Suppression (gamma migration + token-wise clipping, static W8A8) against FP32, on the embedded ListOps
-- encoder as trained and with LLM-like outlier channels injected (inject_outliers: same f32 function, a few
-- LayerNorm channels ×factor — in γ and β, where Outlier Suppression's gamma migration takes them out again).
--
--   pare run experiments/smoothquant_schemes.lua [factor=100] [channels=4] [alpha=0.5] [d=128] [fresh=1]
--   (every experiment takes results_dir=, plots_dir= and fresh=1 to start its results file anew)
--
-- results/smoothquant_schemes.h5 table "schemes"; plots/smoothquant_schemes-accuracy.png
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp = pare.experiment("smoothquant_schemes", {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local base, task = zoo.listops{d = tonumber(a.d) or 128}
local models = {clean = base, outliers = base:apply("inject_outliers", {factor = tonumber(a.factor) or 100,
                                                                   channels = tonumber(a.channels) or 4})}
local alpha = tonumber(a.alpha) or 0.5
local function sq(level) return function(m) return m:apply("smoothquant", {calib = task, calib_samples = 256, level = level, alpha = alpha}) end end
local schemes = {
  fp32 = function(m) return m end,
  w8a8_per_tensor = function(m) return m:apply("dynamic_int8", {weights = "tensor", acts = "tensor"}) end,
  w8a8_per_token = function(m) return m:apply("dynamic_int8", {weights = "channel", acts = "token"}) end,
  w8a8_per_channel = function(m) -- activation scales per input channel: no GEMM can apply them, so simulated
    return m:apply("fake_quant", {w_bits = 8, w_gran = "channel", a_format = "int", a_bits = 8, a_gran = "column"})
  end,
  zeroquant = function(m) return m:apply("zeroquant", {group = 32}) end,
  llm_int8 = function(m) return m:apply("llm_int8", {threshold = 6}) end, -- outlier part in f16, as the paper
  llm_int8_f32 = function(m) return m:apply("llm_int8", {threshold = 6, outlier_dtype = "f32"}) end,
  smoothquant_O1 = sq("O1"), smoothquant_O2 = sq("O2"), smoothquant_O3 = sq("O3"),
  outlier_suppression = function(m) return m:apply("outlier_suppression", {calib = task, calib_samples = 256}) end,
}
local order = {"fp32", "w8a8_per_tensor", "w8a8_per_token", "w8a8_per_channel", "zeroquant", "llm_int8", "llm_int8_f32",
               "smoothquant_O1", "smoothquant_O2", "smoothquant_O3", "outlier_suppression"}
exp:table("schemes", measure.decl({"model", "scheme"}))
pare.sweep(exp, "schemes", {{"model", {"clean", "outliers"}}, {"scheme", order}}, function(p)
  local ref = models[p.model]
  return measure.row(schemes[p.scheme](ref), ref, task, {bench = {batch = 8, repeats = 20}})
end)
pare.print_table(exp, "schemes", {columns = {"model", "scheme", "accuracy", "agreement", "cosine", "latency_ms", "size_mb", "simulated"}})
exp:plot{table = "schemes", name = "accuracy", x = "scheme", y = "accuracy", by = "model", kind = "bars",
         title = "W8A8 schemes on ListOps: accuracy, as trained and with injected outliers"}
exp:plot{table = "schemes", name = "cosine", x = "scheme", y = "cosine", by = "model", kind = "bars",
         title = "Logit cosine with FP32"}
exp:close()
