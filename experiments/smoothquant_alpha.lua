-- smoothquant_alpha.lua — SmoothQuant's migration strength α from 0 (activations keep their outliers)
-- to 1 (all moved into the weights): accuracy and fidelity of W8A8 O1 and O3 on the ListOps encoder
-- with injected outliers. The paper's sweet spot is in the middle (0.4–0.6 for most models).
--
--   pare run experiments/smoothquant_alpha.lua [factor=100] [channels=4] [d=128] [model=bert-mini|<hf dir>]
--        [task=<classification task> | task=glue glue_task=sst2 glue_dir=<glue_data>]   (for a classifier model)
-- model= runs it on a zoo model (pare.zoo: bert-mini, gpt-mini, on held-out rows of its pretraining task)
-- or on a Hugging Face directory (pare.load_hf; docs/zoo.md); the default is the ListOps encoder.
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args
local exp, base, task = zoo.experiment("smoothquant_alpha", a, function() return zoo.listops{d = tonumber(a.d) or 128} end)
local big = base:apply("inject_outliers", {factor = tonumber(a.factor) or 100, channels = tonumber(a.channels) or 4})
local alphas = {}
for i = 0, 10 do alphas[#alphas + 1] = i / 10 end
exp:table("alpha", measure.decl({"level", "alpha"}))
pare.sweep(exp, "alpha", {{"level", {"O1", "O3"}}, {"alpha", alphas}}, function(p)
  local q = big:apply("smoothquant", {calib = task, calib_samples = a.model and 32 or 256, level = p.level, alpha = p.alpha})
  return measure.row(q, big, task, {bench = {batch = 8, repeats = 10}})
end)
pare.print_table(exp, "alpha", {columns = {"level", "alpha", "accuracy", "agreement", "cosine"}})
exp:plot{table = "alpha", name = "accuracy", x = "alpha", y = "accuracy", by = "level",
         title = "SmoothQuant: accuracy against migration strength α (outliers injected)", xlabel = "α"}
exp:plot{table = "alpha", name = "cosine", x = "alpha", y = "cosine", by = "level",
         title = "SmoothQuant: logit cosine with FP32 against α", xlabel = "α"}
exp:close()
