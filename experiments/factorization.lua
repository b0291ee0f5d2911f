-- factorization.lua — truncated-SVD factorization of Linear weights (seed 003's "factorization"; the
-- lowrank pass): accuracy, fidelity, latency and size against the share of each layer's weights the two
-- factors keep, with and without a short fine-tuning of the factored model.
--
--   pare run experiments/factorization.lua [model=bert-mini|<hf dir>] [layers=*.ffn.*] [finetune=200]
--
-- ratio = 1 is the dense model. The default model is the ListOps encoder (d=128); model= takes a zoo model
-- or a Hugging Face directory (docs/zoo.md). Kronecker and tensor-train factorizations are not in pare yet.
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp, base, task = zoo.experiment("factorization", a, function() return zoo.listops{d = 128} end)
local layers = a.layers or "*.ffn.*"
local ft_steps = tonumber(a.finetune) or 200

exp:table("rank", measure.decl({"ratio", "finetuned", "params"}, nil,
                               {ratio = "share of each layer's weights kept by its factors", params = "parameters"}))
local ratios = {1, 0.75, 0.5, 0.35, 0.25, 0.15, 0.08}
pare.sweep(exp, "rank", {{"finetuned", {0, 1}}, {"ratio", ratios}}, function(p)
  if p.ratio == 1 and p.finetuned == 1 then return nil end -- the dense model is the reference, not re-trained
  local m = p.ratio < 1 and base:apply("lowrank", {layers = layers, ratio = p.ratio}) or base
  if p.finetuned == 1 then m:train(task, {steps = ft_steps, batch = 16, lr = 5e-4, warmup = 20, seed = 1}) end
  return measure.row(m, base, task, {params = m:info().params, bench = {batch = 8, repeats = 10}})
end)
pare.print_table(exp, "rank", {columns = {"finetuned", "ratio", "params", "accuracy", "cosine", "latency_ms", "size_mb"}})
exp:plot{table = "rank", name = "accuracy", x = "ratio", y = "accuracy", by = "finetuned",
         title = "Low-rank factorization: accuracy against the share of weights kept", xlabel = "share of weights kept (ratio)"}
exp:plot{table = "rank", name = "latency", x = "ratio", y = "latency_ms", by = "finetuned",
         title = "Low-rank factorization: latency", xlabel = "share of weights kept (ratio)"}
exp:close()
