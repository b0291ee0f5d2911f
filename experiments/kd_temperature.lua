-- kd_temperature.lua — Hinton et al. 2015's logit distillation (seeds 000, 001, 003): a small student's test
-- accuracy against the softmax temperature T ∈ {1, 2, 4, 8} and the hard-label weight α ∈ {0, 0.5, 0.9}
--   L = α·CE(y, z_s) + (1 − α)·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))
-- beside the same student trained from scratch (α = 1, no teacher) at the same budget (steps, batch, lr,
-- seed, initial weights). pare.distill.kd_losses builds the term.
--
--   pare run experiments/kd_temperature.lua [task=listops|majority] [n=2000] [steps=300] [batch=32]
--        [d=32] [layers=1] [temps=1,2,4,8] [alphas=0,0.5,0.9] [seeds=1] [lr=3e-3]
--
-- task=listops (default): the teacher is the zoo's cached ListOps encoder (2 layers × 128, 3000 steps on
-- 20000 examples: zoo.listops{d = 128}, trained on first use); the student (layers × d, 2 heads) sees
-- the first n training examples, with their labels for the CE term and the teacher's logits on the same
-- inputs. task=majority: a 2 × 32 teacher trained here (300 steps on 2000 examples of 5..21 bits), the
-- student on n examples (use n=8 or so: majority is easy). seeds=1,2,3 repeats every point per seed.
local pare = require "pare"
local zoo = require "pare.zoo"
local distill = require "pare.distill"
local a = pare.args

local list = pare.numbers
local task_name = a.task or "listops"
local n, steps, batch = tonumber(a.n) or 2000, tonumber(a.steps) or 300, tonumber(a.batch) or 32
local d, layers, lr = tonumber(a.d) or 32, tonumber(a.layers) or 1, tonumber(a.lr) or 3e-3
local temps, alphas, seeds = list(a.temps, {1, 2, 4, 8}), list(a.alphas, {0, 0.5, 0.9}), list(a.seeds, {1})

local teacher, full, task
if task_name == "listops" then
  local topts = {seed = 1, n_train = 20000, n_test = 1000, max_depth = 3, max_args = 4, max_length = 64}
  teacher, full = zoo.listops{d = 128, task = topts}
  local small = {}
  for k, v in pairs(topts) do small[k] = v end
  small.n_train = n
  task = pare.task("listops", small)
elseif task_name == "majority" then
  full = pare.task("majority", {seed = 3, n_train = 2000, n_test = 400, max_length = 21})
  teacher = pare.model{vocab = full.vocab, max_T = full.T, classes = 2, d = 32, heads = 2, layers = 2, seed = 1}
  teacher:train(full, {steps = 300, batch = 32, lr = 3e-3, warmup = 20})
  task = pare.task("majority", {seed = 3, n_train = n, n_test = 400, max_length = 21})
else
  error("kd_temperature: task=" .. task_name .. " (valid: listops, majority)")
end
local teacher_acc = teacher:evaluate(task).accuracy

local exp = pare.experiment("kd_temperature-" .. task_name, {seed = 1, dir = a.results_dir, plots = a.plots_dir,
                                                             fresh = tostring(a.fresh) == "1"})
exp:table("kd", {"method", "T", "alpha", "seed", "accuracy", types = {T = "float", alpha = "float", accuracy = "float"},
                 labels = {accuracy = "student test accuracy", T = "temperature T"}})

local function student(seed)
  return pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = d, heads = 2, layers = layers,
                    seed = 100 + seed}
end
local function budget(seed) return {steps = steps, batch = batch, lr = lr, warmup = math.max(1, steps // 10), seed = seed} end

-- the scratch row: T and alpha recorded as 0 and 1 (labels only)
pare.sweep(exp, "kd", {{"seed", seeds}, {"method", {"scratch"}}, {"T", {0}}, {"alpha", {1.0}}}, function(p)
  local s = student(p.seed)
  local r = s:train(task, budget(p.seed))
  return {accuracy = s:evaluate(task).accuracy, teacher_accuracy = teacher_acc, loss = r.loss, params = s:info().params}
end)
pare.sweep(exp, "kd", {{"seed", seeds}, {"method", {"kd"}}, {"T", temps}, {"alpha", alphas}}, function(p)
  local s = student(p.seed)
  local losses, hw = distill.kd_losses(s, teacher, {T = p.T, alpha = p.alpha})
  local r = s:train(task, budget(p.seed), {teacher = teacher, hard_weight = hw, losses = losses})
  return {accuracy = s:evaluate(task).accuracy, teacher_accuracy = teacher_acc, loss = r.loss, params = s:info().params}
end)

pare.print_table(exp, "kd", {columns = {"method", "T", "alpha", "seed", "accuracy", "teacher_accuracy", "params"}})
-- one line per α over T (the mean over the seeds), and the scratch student as its own series (at every T)
local rows = exp:rows("kd")
local sums, order = {}, {}
local function add(series, T, acc)
  local k = series .. "@" .. T
  if not sums[k] then sums[k] = {series = series, T = T, s = 0, n = 0}; order[#order + 1] = k end
  sums[k].s, sums[k].n = sums[k].s + acc, sums[k].n + 1
end
for _, r in ipairs(rows) do
  if r.method == "kd" then add(string.format("alpha=%g", r.alpha), r.T, r.accuracy)
  else for _, t in ipairs(temps) do add("scratch", t, r.accuracy) end end
end
local plot_rows = {}
for _, k in ipairs(order) do
  local v = sums[k]
  plot_rows[#plot_rows + 1] = {series = v.series, T = v.T, accuracy = v.s / v.n, seeds = v.n}
end
exp:drop("plot")
exp:table("plot", {"series", "T", "accuracy", "seeds", types = {T = "float", accuracy = "float"},
                   labels = {accuracy = "student test accuracy (mean over seeds)", T = "temperature T"}})
for _, r in ipairs(plot_rows) do exp:record("plot", r) end
pare.print_table(exp, "plot", {columns = {"series", "T", "accuracy", "seeds"}})
exp:plot{table = "plot", x = "T", y = "accuracy", by = "series", name = "accuracy", logx = true,
         title = string.format("KD on %s: student (%d × %d) accuracy vs T; teacher %.3f", task_name, layers, d, teacher_acc)}
