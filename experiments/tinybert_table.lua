-- tinybert_table.lua — seed 003's TinyBERT table in shape (Jiao et al. 2020, Table 1: teacher, a small
-- student without distillation, BERT-PKD, DistilBERT, TinyBERT — params, FLOPs, speed-up, score per task)
-- with bert-mini (4 × 256, 4 heads) fine-tuned per task as the teacher and one small student shape for
-- every method: `layers` × `d` (default 2 × 128), 4 heads (the teacher's: TinyBERT's attention term compares
-- the heads one to one), FFN 4d, post-LayerNorm BERT layout, randomly initialised. Rows:
--   teacher       bert-mini fine-tuned (steps)
--   small         the student fine-tuned on the labels alone (steps)
--   pkd           Patient KD, skip map: (1 − α)·CE + α·T²·KL (α 0.5, T 5) + 2β·(1 − cos) of the [CLS] states
--                 (β 10), learnt projection to the teacher's width (pare.distill.pkd_losses)
--   distilbert    5·T²·KL (T 2) + 2·CE + 1·(1 − cos) of the last hidden states through a projection
--   tinybert      TinyBERT's two stages at the same total budget: steps/2 of intermediate-layer distillation
--                 (MSE of embeddings, hidden states through W_h and attention probabilities, uniform map
--                 g(m) = m·N/M), then steps/2 of prediction-layer distillation (T²·KL at T = 1)
-- FLOPs are one forward's (m:bench's count) and the speed-up the teacher's measured latency over the
-- model's (one thread, batch × max_len, the models interleaved, lowest of `rounds` medians). Left out:
-- TinyBERT's general distillation (pre-training stage on a corpus: every student starts from random weights
-- here) and its data augmentation (word replacement by GloVe/BERT: nothing is downloaded).
--
--   pare run experiments/tinybert_table.lua [tasks=fortune_topic,fortune_pair] [max_len=64] [steps=150]
--        [lr=3e-4] [student_lr=1e-3] [batch=16] [layers=2] [d=128] [seed=1] [bench_batch=8] [rounds=3]
local pare = require "pare"
local zoo = require "pare.zoo"
local distill = require "pare.distill"
local a = pare.args

local tasks = {}
for w in tostring(a.tasks or "fortune_topic,fortune_pair"):gmatch("[^,]+") do tasks[#tasks + 1] = w end
local max_len, steps, lr = tonumber(a.max_len) or 64, tonumber(a.steps) or 150, tonumber(a.lr) or 3e-4
local student_lr, batch, seed = tonumber(a.student_lr) or 1e-3, tonumber(a.batch) or 16, tonumber(a.seed) or 1
local SL, SD = tonumber(a.layers) or 2, tonumber(a.d) or 128
local exp = pare.experiment("tinybert_table", {seed = seed, dir = a.results_dir, plots = a.plots_dir,
                                               fresh = tostring(a.fresh) == "1"})
exp:table("table", {"task", "model", "layers", "d", "params", "gflops", "accuracy", "ms", "speedup",
                    units = {ms = "ms"}, types = {accuracy = "float", speedup = "float", ms = "float", gflops = "float"},
                    labels = {speedup = "teacher's latency / model's", gflops = "GFLOP per forward"}})

-- the recipes: each returns the trained student
local recipes = {
  {"small", function(s, teacher, task, tr) s:train(task, tr) end},
  {"pkd", function(s, teacher, task, tr)
    local l, hw = distill.pkd_losses(s, teacher, {strategy = "skip"})
    s:train(task, tr, {teacher = teacher, hard_weight = hw, losses = l})
  end},
  {"distilbert", function(s, teacher, task, tr)
    local l, hw = distill.distilbert_losses(s, teacher)
    s:train(task, tr, {teacher = teacher, hard_weight = hw, losses = l})
  end},
  {"tinybert", function(s, teacher, task, tr)
    local half = {}
    for k, v in pairs(tr) do half[k] = v end
    half.steps, half.warmup = math.max(1, tr.steps // 2), math.max(1, tr.steps // 20)
    local l1, hw1 = distill.tinybert_losses(s, teacher, {prediction = false, seq_len = max_len})
    s:train(task, half, {teacher = teacher, hard_weight = hw1, losses = l1})
    local l2, hw2 = distill.tinybert_losses(s, teacher, {attention = false, hidden = false, embedding = false, T = 1})
    s:train(task, half, {teacher = teacher, hard_weight = hw2, losses = l2})
  end},
}

for _, task_name in ipairs(tasks) do
  if not exp:has("table", {task = task_name, model = "tinybert"}) then
    local teacher, task, mlm, _, train = distill.zoo_teacher(task_name, {max_len = max_len, steps = steps, lr = lr, batch = batch,
                                                                        seed = seed, results_dir = a.results_dir})
    local cfg = zoo.body_options(teacher)
    cfg.kind, cfg.pooler, cfg.classes, cfg.seed = "encoder", "tanh", task.classes, seed
    cfg.layers, cfg.d, cfg.ffn = SL, SD, 4 * SD
    local models, names = {teacher}, {"teacher"}
    local str = {}
    for k, v in pairs(train) do str[k] = v end
    str.lr = student_lr
    for _, r in ipairs(recipes) do
      io.stderr:write(string.format("tinybert_table: %s on %s\n", r[1], task_name))
      local s = pare.model(cfg)
      r[2](s, teacher, task, str)
      models[#models + 1], names[#names + 1] = s, r[1]
    end
    local prof = distill.profile(models, {batch = tonumber(a.bench_batch) or 8, T = max_len, rounds = tonumber(a.rounds) or 3})
    for i, m in ipairs(models) do
      local info = m:info()
      exp:record("table", {task = task_name, model = names[i], layers = info.layers, d = info.d, params = prof[i].params,
                           gflops = prof[i].flops / 1e9, accuracy = m:evaluate(task).accuracy, ms = prof[i].ms,
                           speedup = prof[1].ms / prof[i].ms})
    end
  end
end
pare.print_table(exp, "table", {columns = {"task", "model", "layers", "d", "params", "gflops", "accuracy", "ms", "speedup"}})
exp:plot{table = "table", x = "model", y = "accuracy", by = "task", kind = "bars", name = "accuracy",
         title = string.format("TinyBERT's table in small: students %d × %d of bert-mini", SL, SD)}
