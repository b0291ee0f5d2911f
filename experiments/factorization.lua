-- factorization.lua — factorizations of Linear weights (seed 003's "factorization"): truncated SVD
-- (lowrank), sums of Kronecker products (kronecker) and tensor-train matrices (tensor_train). Accuracy,
-- fidelity, latency, size and parameters against each method's knob, with and without a short
-- fine-tuning of the factored model.
--
--   pare run experiments/factorization.lua [model=bert-mini|<hf dir>] [layers=*.ffn.*] [finetune=200]
--                                          [methods=lowrank,kronecker,tensor_train]
--
-- One row is the dense model (method=dense). level is the method's knob: lowrank's ratio (the share of
-- each layer's weights its two factors keep), kronecker's rank (Kronecker terms), tensor_train's rank (the cap on every
-- TT-rank, 3 cores). params_share is the whole model's parameters against the dense model's. The default
-- model is the ListOps encoder (d=128); model= takes a zoo model or a Hugging Face directory (docs/zoo.md).
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp, base, task = zoo.experiment("factorization", a, function() return zoo.listops{d = 128} end)
local layers = a.layers or "*.ffn.*"
local ft_steps = tonumber(a.finetune) or 200
local methods = {}
for w in (a.methods or "lowrank,kronecker,tensor_train"):gmatch("[^,]+") do methods[w] = true end
local dense_params = base:info().params

exp:table("rank", measure.decl({"method", "level", "finetuned", "series", "params", "params_share"}, nil,
                               {level = "the method's knob: lowrank ratio, kronecker terms, tensor_train rank cap",
                                params = "parameters", params_share = "parameters against the dense model's"}))
local levels = {lowrank = {0.75, 0.5, 0.35, 0.25, 0.15, 0.08}, kronecker = {2, 8, 32}, tensor_train = {4, 16}}
local function factor(method, level)
  if method == "lowrank" then return base:apply("lowrank", {layers = layers, ratio = level}) end
  if method == "kronecker" then return base:apply("kronecker", {layers = layers, rank = level}) end
  return base:apply("tensor_train", {layers = layers, rank = level, cores = 3})
end
-- the dense model: the reference every method is measured against (not re-trained)
pare.sweep(exp, "rank", {{"method", {"dense"}}, {"finetuned", {0}}, {"level", {1}}}, function(p)
  local params = base:info().params
  local row = measure.row(base, base, task, {params = params, bench = {batch = 8, repeats = 10}})
  row.params_share, row.series = 1, "dense"
  return row
end)
for _, method in ipairs{"lowrank", "kronecker", "tensor_train"} do
  if methods[method] then
    pare.sweep(exp, "rank", {{"method", {method}}, {"finetuned", {0, 1}}, {"level", levels[method]}}, function(p)
      local m = factor(method, p.level)
      if p.finetuned == 1 then m:train(task, {steps = ft_steps, batch = 16, lr = 5e-4, warmup = 20, seed = 1}) end
      local params = m:info().params
      local row = measure.row(m, base, task, {params = params, bench = {batch = 8, repeats = 10}})
      row.params_share = params / dense_params
      row.series = method .. (p.finetuned == 1 and " + fine-tune" or "")
      return row
    end)
  end
end
pare.print_table(exp, "rank", {columns = {"method", "level", "finetuned", "params", "params_share", "accuracy", "cosine",
                                          "latency_ms", "size_mb"}})
exp:plot{table = "rank", name = "accuracy", x = "params_share", y = "accuracy", by = "series",
         title = "Factorizations: accuracy against the parameters kept", xlabel = "parameters against the dense model"}
exp:plot{table = "rank", name = "latency", x = "params_share", y = "latency_ms", by = "series",
         title = "Factorizations: latency", xlabel = "parameters against the dense model"}
exp:close()
