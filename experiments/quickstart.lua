-- quickstart.lua — the demo: train a small encoder on Long Range Arena ListOps, quantize it to INT8
-- (dynamic: per-channel weights, per-token activations, real int8 kernel) and measure both formats;
-- then the same latency/size comparison on a BERT-base-shaped encoder (12 × 768, untrained:
-- latency and size do not depend on the weights' values, accuracy would, so it is not reported).
--
--   pare run experiments/quickstart.lua [steps=3000] [threads=2] [bert=1] [repeats=30] [d=64] [layers=2]
--                                       [results_dir=results] [plots_dir=plots]
--
-- Writes results/quickstart.h5 (tables "formats": the trained model; "bert_shape": BERT-base latency)
-- and plots/quickstart-{accuracy,latency,bert-latency}.png.
local pare = require "pare"
local a = pare.args
local steps = tonumber(a.steps) or 3000
local threads = tonumber(a.threads) or 2
local repeats = tonumber(a.repeats) or 30
local bert = tostring(a.bert or 1) ~= "0" and a.bert ~= false
local d, layers = tonumber(a.d) or 64, tonumber(a.layers) or 2
pare.set_threads(threads)

local exp = pare.experiment("quickstart", {fresh = true, seed = 1, dir = a.results_dir or "results",
                                          plots = a.plots_dir or "plots"})
local decl = {
  columns = {"model", "format", "kernel", "accuracy", "fidelity_cos", "agreement", "latency_ms", "latency_lo_ms",
             "latency_hi_ms", "batch", "T", "size_mb", "planned_mb", "peak_mb", "gflops", "threads"},
  units = {latency_ms = "ms", latency_lo_ms = "ms", latency_hi_ms = "ms", size_mb = "MB", planned_mb = "MB",
           peak_mb = "MB", gflops = "GFLOP"},
  labels = {accuracy = "test accuracy", latency_ms = "forward latency", size_mb = "weights",
            planned_mb = "planned memory (weights, packed copies, activations)",
            peak_mb = "measured peak (resident weights + RSS growth during the run)", fidelity_cos = "logit cosine vs fp32",
            agreement = "top-1 agreement with fp32"},
}
exp:table("formats", decl)
exp:table("bert_shape", decl)

local function record(tbl, name, fmt, m, acc, fid, b)
  exp:record(tbl, {
    model = name, format = fmt, kernel = m:info().kernel, -- e.g. "int8 brgemm:avx512_core_vnni": a real int8 kernel
    accuracy = acc or 0/0, fidelity_cos = fid and fid.cosine or 0/0, agreement = fid and fid.agreement or 0/0,
    latency_ms = b.median_ms, latency_lo_ms = b.ci_lo_ms, latency_hi_ms = b.ci_hi_ms, batch = b.batch, T = b.T,
    size_mb = m:info().size_bytes / 1e6, planned_mb = b.planned_bytes / 1e6, peak_mb = b.measured_peak_bytes / 1e6,
    gflops = b.flops / 1e9, threads = b.threads,
  })
end

-- 1. A small encoder trained on ListOps.
local task = pare.task("listops", {seed = 1, n_train = 20000, n_test = 1000, max_depth = 3, max_args = 4,
                                   max_length = 64})
local model = pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes,
                         d = d, heads = 4, layers = layers, seed = 1}
io.stderr:write(string.format("quickstart: training %s on ListOps (%d examples, T=%d) for %d steps\n",
                              tostring(model), task.n_train, task.T, steps))
model:train(task, {steps = steps, batch = 32, lr = 2e-3, warmup = 100, seed = 1})
local q = model:apply("dynamic_int8")
for _, v in ipairs{{"fp32", model}, {"int8", q}} do
  local fmt, m = v[1], v[2]
  local acc = m:evaluate(task).accuracy
  local fid = m:fidelity(model, task)
  local b = m:bench{batch = 8, repeats = repeats}
  record("formats", string.format("listops-encoder-%dx%d", layers, d), fmt, m, acc, fid, b)
end

-- 2. BERT-base shape: 12 layers, 768 wide, 12 heads, FFN 3072, sequence 128, batch 1.
if bert then
  io.stderr:write("quickstart: timing a BERT-base-shaped encoder (fp32 and int8)\n")
  local big = pare.model{kind = "encoder", vocab = 30522, max_T = 128, classes = 2, d = 768, heads = 12,
                         layers = 12, ffn = 3072, seed = 1}
  local bq = big:apply("dynamic_int8")
  for _, v in ipairs{{"fp32", big}, {"int8", bq}} do
    local b = v[2]:bench{batch = 1, T = 128, repeats = math.max(10, repeats // 3)}
    record("bert_shape", "bert-base-shape (untrained)", v[1], v[2], nil, nil, b)
  end
  big, bq = nil, nil
  collectgarbage()
end

local show = {
  columns = {"model", "format", "accuracy", "agreement", "latency", "size_mb", "planned_mb", "peak_mb"},
  headers = {"model", "format", "accuracy", "agrees w/ fp32", "latency ms (median, 95% CI)", "size MB", "planned MB",
             "peak MB"},
  format = {latency = function(r)
    return string.format("%.3f (%.3f–%.3f) ×%d", r.latency_ms, r.latency_lo_ms, r.latency_hi_ms, r.batch)
  end},
}
print(string.format("\nListOps encoder (%d layers × %d), trained here; latency of a batch of 8:", layers, d))
pare.print_table(exp, "formats", show)
exp:plot{table = "formats", name = "accuracy", x = "format", y = "accuracy", kind = "bars",
         title = "ListOps test accuracy: fp32 vs dynamic int8"}
exp:plot{table = "formats", name = "latency", x = "format", y = "latency_ms", kind = "bars",
         title = "ListOps encoder forward latency (median, batch 8)"}
if bert then
  print("\nBERT-base shape (12 × 768, 12 heads, FFN 3072), sequence 128, batch 1:")
  pare.print_table(exp, "bert_shape", show)
  exp:plot{table = "bert_shape", name = "bert-latency", x = "format", y = "latency_ms", kind = "bars",
           title = "BERT-base-shaped encoder forward latency (median, T=128, batch 1)"}
end
print("\nresults: " .. exp.path .. "   plots: " .. exp.plots_dir .. "/quickstart-*.png (scripts beside them)")
exp:close()
