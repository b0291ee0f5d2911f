-- pare.search — layer-wise searches over compression choices.
--
--   local search = require "pare.search"
--   local q, trace = search.greedy_layers(model, task, {
--       apply = function(m, layer) return m:apply("dynamic_int8", {layers = layer}) end,
--       tolerance = 0.01,                -- keep a layer compressed while accuracy >= base - tolerance
--       metric = function(m) return m:evaluate(task, {split = "test"}).accuracy end,   -- optional
--   })
--
-- The greedy search of seed 004 ("Efficient Transformers: post-training pruning and quantization"):
-- the Linear layers are visited in order; each is compressed on top of the layers kept so far and
-- kept if the metric stays within the tolerance of the uncompressed model's, otherwise left as it was.
-- trace: one entry per layer {layer, metric, kept}. `layers` (optional) limits the candidates to a
-- glob pattern (default: every Linear).
local search = {}

function search.greedy_layers(model, task, o)
  assert(type(o) == "table" and type(o.apply) == "function", "greedy_layers: o.apply(m, layer) is required")
  local metric = o.metric or function(m) return m:evaluate(task).accuracy end
  local tol = o.tolerance or 0.01
  local base = metric(model)
  local cur, trace = model, {}
  local kept_n = 0
  for _, layer in ipairs(model:layers(o.layers or "*")) do
    local is_linear = false
    for _, r in ipairs(model:quant_report()) do if r.layer == layer then is_linear = true end end
    if is_linear then
      local cand = o.apply(cur, layer)
      local v = metric(cand)
      local keep = v >= base - tol
      trace[#trace + 1] = {layer = layer, metric = v, kept = keep}
      if keep then cur, kept_n = cand, kept_n + 1 end
      if o.progress ~= false then
        io.stderr:write(string.format("greedy: %-20s %.4f %s\n", layer, v, keep and "kept" or "reverted"))
      end
    end
  end
  return cur, trace, base, kept_n
end

return search
