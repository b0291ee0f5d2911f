-- sixteen_heads.lua — Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?": remove
-- attention heads in order of importance (|∂L/∂ξ_h| over training examples, normalised per layer;
-- m:head_importance) and in random order, 10% of all heads more at each step, and measure the accuracy,
-- latency and size of the physically smaller model (m:drop_heads). The paper finds that about 40% of
-- BERT's heads go at a cost of at most 1 point; here the summary table gives that share for each order.
--
--   pare run experiments/sixteen_heads.lua [model=bert-mini|<hf dir>] [task=...] [n=256] [randoms=3]
--
-- Orders: importance (scores once, on the unpruned model), importance_iter (scores recomputed on the
-- pruned model before each step, as the paper's iterative variant), relevance (Voita et al. 2019's LRP
-- relevance of the top-1 logit, m:head_relevance, once on the unpruned model), random1..randomK (seeded
-- permutations). Every layer keeps at least one head (m:drop_heads removes heads, not whole layers), so
-- the last step removes what that allows. The default model is the ListOps encoder (d=128, 2 layers ×
-- 4 heads); model= runs it on a zoo model or a Hugging Face directory (docs/zoo.md).
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp, base, task = zoo.experiment("sixteen_heads", a, function() return zoo.listops{d = 128} end)
local n_score = tonumber(a.n) or 256
local randoms = tonumber(a.randoms) or 3

-- heads as {layer, head (0-based, in the unpruned model), score}
local function scored(m, method)
  local out = {}
  for _, l in ipairs(m[method or "head_importance"](m, task, {n = n_score})) do
    for h, s in ipairs(l.scores) do out[#out + 1] = {layer = l.name, head = h - 1, score = s} end
  end
  return out
end
local all = scored(base)
local by_relevance = scored(base, "head_relevance")
local per_layer, total = {}, #all
for _, h in ipairs(all) do per_layer[h.layer] = (per_layer[h.layer] or 0) + 1 end

-- the model without the heads in `gone` ({layer = {head = true}}, heads numbered as in the unpruned model)
local function without(gone)
  local m = base
  for layer, set in pairs(gone) do
    local list = {}
    for h in pairs(set) do list[#list + 1] = h end
    table.sort(list)
    if #list > 0 then m = m:drop_heads(layer, list) end
  end
  return m
end

-- take heads from `order` (a list of heads) until `k` are gone, each layer keeping one
local function take(order, gone, count, k)
  for _, h in ipairs(order) do
    if count >= k then break end
    gone[h.layer] = gone[h.layer] or {}
    local n_gone = 0
    for _ in pairs(gone[h.layer]) do n_gone = n_gone + 1 end
    if not gone[h.layer][h.head] and n_gone < per_layer[h.layer] - 1 then
      gone[h.layer][h.head] = true
      count = count + 1
    end
  end
  return count
end

local function sorted_by_score(list)
  table.sort(list, function(x, y) if x.score ~= y.score then return x.score < y.score end
    return x.layer < y.layer or (x.layer == y.layer and x.head < y.head) end)
  return list
end

-- steps: the heads removed after each 10% of all heads (rounded; fewer steps on a small model), up to what
-- keeping one head per layer allows
local nlayers = 0
for _ in pairs(per_layer) do nlayers = nlayers + 1 end
local steps, seen = {}, {}
for s = 0, 10 do
  local k = math.min(math.floor(s * total / 10 + 0.5), total - nlayers)
  if not seen[k] then seen[k], steps[#steps + 1] = true, k end
end
local orders = {"importance", "importance_iter", "relevance"}
for r = 1, randoms do orders[#orders + 1] = "random" .. r end

-- The heads gone when k are removed in an order (deterministic, so a resumed run rebuilds the same sets).
local iter_cache = {[0] = {}}
local function gone_at(order, k)
  if order == "importance" or order == "relevance" then
    local gone, copy = {}, {}
    for i, h in ipairs(order == "importance" and all or by_relevance) do copy[i] = h end
    take(sorted_by_score(copy), gone, 0, k)
    return gone
  elseif order == "importance_iter" then
    local prev_k = 0
    for _, t in ipairs(steps) do
      if t > k then break end
      if not iter_cache[t] then
        local prev = iter_cache[prev_k]
        local gone, count = {}, 0
        for l, set in pairs(prev) do gone[l] = {} for h in pairs(set) do gone[l][h] = true count = count + 1 end end
        -- rescore the pruned model; map its renumbered heads back to the unpruned model's numbers
        local m, list = without(prev), {}
        for _, l in ipairs(m:head_importance(task, {n = n_score})) do
          local kept = {}
          for h = 0, per_layer[l.name] - 1 do if not (prev[l.name] or {})[h] then kept[#kept + 1] = h end end
          for i, sc in ipairs(l.scores) do list[#list + 1] = {layer = l.name, head = kept[i], score = sc} end
        end
        take(sorted_by_score(list), gone, count, t)
        iter_cache[t] = gone
      end
      prev_k = t
    end
    return iter_cache[k]
  else
    local seed = tonumber(order:match("%d+"))
    local perm = {}
    for i, h in ipairs(all) do perm[i] = h end
    local state = seed * 2654435761 % 4294967296
    for i = #perm, 2, -1 do -- Fisher-Yates with a small LCG: the same permutation on every machine
      state = (state * 1103515245 + 12345) % 2147483648
      local j = state % i + 1
      perm[i], perm[j] = perm[j], perm[i]
    end
    local gone = {}
    take(perm, gone, 0, k)
    return gone
  end
end

exp:table("heads", measure.decl({"order", "heads_removed", "heads_kept", "share_removed"}, nil,
                                {share_removed = "share of heads removed"}))
pare.sweep(exp, "heads", {{"order", orders}, {"heads_removed", steps}}, function(p)
  local gone = gone_at(p.order, p.heads_removed)
  local removed = 0
  for _, set in pairs(gone) do for _ in pairs(set) do removed = removed + 1 end end
  assert(removed == p.heads_removed, "sixteen_heads: the order removed " .. removed .. " heads, not " .. p.heads_removed)
  local m = without(gone)
  return measure.row(m, base, task, {heads_kept = total - removed,
                                      share_removed = removed / total, bench = {batch = 8, repeats = 10}})
end)

-- the share removable at a cost of at most 1 point, per order
local rows = exp:rows("heads")
local base_acc
for _, r in ipairs(rows) do if r.heads_removed == 0 and r.order == "importance" then base_acc = r.accuracy end end
exp:table("summary", {"order", "removable_share", "base_accuracy", "accuracy_at_removable",
                      labels = {removable_share = "largest share of heads removed with accuracy >= base - 0.01"}})
for _, o in ipairs(orders) do
  if not exp:has("summary", {order = o}) then
    local best, acc = 0.0, base_acc
    for _, r in ipairs(rows) do
      if r.order == o and r.accuracy >= base_acc - 0.01 and r.share_removed > best then best, acc = r.share_removed, r.accuracy end
    end
    exp:record("summary", {order = o, removable_share = best, base_accuracy = base_acc, accuracy_at_removable = acc})
  end
end
pare.print_table(exp, "heads", {columns = {"order", "heads_removed", "share_removed", "accuracy", "latency_ms", "size_mb"}})
pare.print_table(exp, "summary", {columns = {"order", "removable_share", "base_accuracy", "accuracy_at_removable"}})
exp:plot{table = "heads", name = "accuracy", x = "share_removed", y = "accuracy", by = "order",
         title = "Head pruning: accuracy against the share of heads removed", xlabel = "share of heads removed"}
exp:plot{table = "heads", name = "latency", x = "share_removed", y = "latency_ms", by = "order",
         title = "Head pruning: latency of the smaller model", xlabel = "share of heads removed"}
exp:close()
