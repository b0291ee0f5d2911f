-- pare.measure — the columns every compression row records, measured the same way everywhere.
--
--   local measure = require "pare.measure"
--   exp:record("schemes", measure.row(q, fp32_model, task, {scheme = "llm_int8", bench = {batch = 8}}))
--
-- Returns a table with: accuracy (test split), agreement (top-1 with the reference), cosine and
-- max_abs_err (logits against the reference), latency_ms / latency_lo_ms / latency_hi_ms (median and
-- 95% bootstrap interval of the forward at bench.batch, bench.repeats), size_mb (weights as stored,
-- exactly), kernel (what the Linear layers ran on), simulated (1 when any layer is fake-quantized:
-- its latency is then not the format's), outliers (1 when outliers were injected), plus every field
-- of `extra` (the sweep point's parameters). bench = false skips the latency columns (NaN).
local measure = {}

measure.columns = {"accuracy", "agreement", "cosine", "max_abs_err", "latency_ms", "latency_lo_ms", "latency_hi_ms",
                   "size_mb", "kernel", "simulated", "outliers"}
measure.units = {latency_ms = "ms", latency_lo_ms = "ms", latency_hi_ms = "ms", size_mb = "MB"}
measure.labels = {accuracy = "test accuracy", agreement = "top-1 agreement with fp32", cosine = "logit cosine vs fp32",
                  max_abs_err = "max |logit error| vs fp32", latency_ms = "forward latency (median)",
                  size_mb = "weights as stored", kernel = "kernel of the Linear layers",
                  simulated = "1: fake-quantized (simulated) layers, latency not the format's",
                  outliers = "1: outlier channels injected"}

function measure.row(m, ref, task, extra)
  extra = extra or {}
  local info = m:info()
  local r = {accuracy = m:evaluate(task).accuracy}
  local f = m:fidelity(ref, task)
  r.agreement, r.cosine, r.max_abs_err = f.agreement, f.cosine, f.max_abs_err
  r.latency_ms, r.latency_lo_ms, r.latency_hi_ms = 0 / 0, 0 / 0, 0 / 0
  if extra.bench ~= false then
    local b = m:bench(extra.bench or {batch = 8, repeats = 20})
    r.latency_ms, r.latency_lo_ms, r.latency_hi_ms = b.median_ms, b.ci_lo_ms, b.ci_hi_ms
  end
  info = m:info() -- after a run the f32 kernels are packed and named
  r.size_mb = info.size_bytes / 1e6
  r.kernel = info.kernel
  r.simulated = info.simulated and 1 or 0
  r.outliers = info.outliers_injected and 1 or 0
  for k, v in pairs(extra) do if k ~= "bench" then r[k] = v end end
  return r
end

-- A table declaration: the sweep's own columns first, then measure.columns.
function measure.decl(first, more_units, more_labels)
  local cols = {}
  for _, c in ipairs(first) do cols[#cols + 1] = c end
  for _, c in ipairs(measure.columns) do cols[#cols + 1] = c end
  local units, labels = {}, {}
  for k, v in pairs(measure.units) do units[k] = v end
  for k, v in pairs(measure.labels) do labels[k] = v end
  for k, v in pairs(more_units or {}) do units[k] = v end
  for k, v in pairs(more_labels or {}) do labels[k] = v end
  return {columns = cols, units = units, labels = labels}
end

return measure
