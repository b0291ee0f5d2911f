-- tinybert_ablation.lua — TinyBERT's ablations (Jiao et al. 2020, Tables 6 and 7, seed 003) in the small:
-- the recipe of experiments/tinybert_table.lua (bert-mini fine-tuned as the teacher; a layers × d
-- student, 4 heads, random init; steps/2 of intermediate-layer distillation, then steps/2 of
-- prediction-layer distillation) with one term dropped at a time, and with the three layer maps:
--   full            embedding + hidden + attention, then prediction (uniform map g(m) = m·N/M)
--   no_embedding    without the MSE of the embedding layer's output
--   no_hidden       without the MSE of the layers' outputs (through W_h)
--   no_attention    without the MSE of the attention probabilities
--   no_layers       without hidden and attention (TinyBERT's "w/o Trm")
--   no_prediction   stage 2 trains the head on the labels (cross-entropy) instead of the teacher's logits
--   map_top / map_bottom   full, with the student's layers mapped onto the teacher's last / first ones
--                   (2 of 4: top {3, 4}, bottom {1, 2}, uniform {2, 4})
--
--   pare run experiments/tinybert_ablation.lua [task=fortune_topic] [max_len=64] [steps=150] [lr=3e-4]
--        [student_lr=1e-3] [batch=16] [layers=2] [d=128] [seed=1]
local pare = require "pare"
local zoo = require "pare.zoo"
local distill = require "pare.distill"
local a = pare.args

local task_name, max_len = a.task or "fortune_topic", tonumber(a.max_len) or 64
local steps, lr, batch = tonumber(a.steps) or 150, tonumber(a.lr) or 3e-4, tonumber(a.batch) or 16
local student_lr, seed = tonumber(a.student_lr) or 1e-3, tonumber(a.seed) or 1
local SL, SD = tonumber(a.layers) or 2, tonumber(a.d) or 128
local exp = pare.experiment("tinybert_ablation-" .. task_name, {seed = seed, dir = a.results_dir, plots = a.plots_dir,
                                                                fresh = tostring(a.fresh) == "1"})
exp:table("ablation", {"variant", "accuracy", "map", types = {accuracy = "float"}})
local teacher, task, _, _, train = distill.zoo_teacher(task_name, {max_len = max_len, steps = steps, lr = lr, batch = batch,
                                                                  seed = seed, results_dir = a.results_dir})
local cfg = zoo.body_options(teacher)
cfg.kind, cfg.pooler, cfg.classes, cfg.seed = "encoder", "tanh", task.classes, seed
cfg.layers, cfg.d, cfg.ffn = SL, SD, 4 * SD
local half = {}
for k, v in pairs(train) do half[k] = v end
half.lr, half.steps, half.warmup = student_lr, math.max(1, steps // 2), math.max(1, steps // 20)
local N = #distill.structure(teacher).layers

local variants = {
  full = {}, no_embedding = {embedding = false}, no_hidden = {hidden = false}, no_attention = {attention = false},
  no_layers = {hidden = false, attention = false}, no_prediction = {pred = false},
  map_top = {map = "top"}, map_bottom = {map = "bottom"},
}
local order = {"full", "no_embedding", "no_hidden", "no_attention", "no_layers", "no_prediction", "map_top", "map_bottom"}
local full_acc
pare.sweep(exp, "ablation", {variant = order}, function(p)
  local v = variants[p.variant]
  local s = pare.model(cfg)
  local map = v.map or "uniform"
  local stage1 = {map = map, seq_len = max_len, prediction = false}
  for _, k in ipairs{"embedding", "hidden", "attention"} do if v[k] == false then stage1[k] = false end end
  if stage1.embedding ~= false or stage1.hidden ~= false or stage1.attention ~= false then
    local l1, hw1 = distill.tinybert_losses(s, teacher, stage1)
    s:train(task, half, {teacher = teacher, hard_weight = hw1, losses = l1})
  end
  if v.pred == false then
    s:train(task, half)
  else
    local l2, hw2 = distill.tinybert_losses(s, teacher, {attention = false, hidden = false, embedding = false, T = 1})
    s:train(task, half, {teacher = teacher, hard_weight = hw2, losses = l2})
  end
  return {accuracy = s:evaluate(task).accuracy, map = table.concat(distill.layer_map(SL, N, map), "/")}
end)
for _, r in ipairs(exp:rows("ablation")) do if r.variant == "full" then full_acc = r.accuracy end end
local rows = exp:rows("ablation")
exp:drop("summary")
exp:table("summary", {"variant", "accuracy", "delta", "map", types = {accuracy = "float", delta = "float"},
                      labels = {delta = "accuracy − full recipe's"}})
for _, name in ipairs(order) do
  for _, r in ipairs(rows) do
    if r.variant == name then
      exp:record("summary", {variant = name, accuracy = r.accuracy, delta = r.accuracy - (full_acc or 0 / 0), map = r.map})
    end
  end
end
pare.print_table(exp, "summary", {columns = {"variant", "map", "accuracy", "delta"}})
exp:plot{table = "summary", x = "variant", y = "accuracy", kind = "bars", name = "accuracy",
         title = string.format("TinyBERT ablation on %s (student %d × %d of bert-mini)", task_name, SL, SD)}
