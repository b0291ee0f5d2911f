-- distilbert_table.lua — DistilBERT (Sanh et al. 2019; seeds 000, 001) in the small: the zoo's bert-mini
-- (4 layers × 256) fine-tuned on a text task is the teacher; the student keeps every other layer (0 and 2,
-- physically removed: pare.distill.every_other) and is trained with task-specific distillation —
--   L = α_ce·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + α_hard·CE(y, z_s) + α_cos·(1 − cos(h_s, h_t))
-- (h: the last layer's hidden states, every valid token; α_ce 5, α_hard 2, α_cos 1, T 2: DistilBERT's
-- training script) — beside the same student fine-tuned on the labels alone at the same budget. Rows:
--   teacher             bert-mini fine-tuned (steps)
--   student_ft          every_other(pretrained bert-mini) fine-tuned without a teacher (steps)
--   student_distil      every_other(pretrained bert-mini) distilled from the teacher (steps)
--   student_distil_tinit every_other(the fine-tuned teacher) distilled from the teacher (steps): the
--                       paper's initialisation from the teacher's own layers
-- with params, size, accuracy, the measured latency (m:bench, one thread, batch × max_len, the models
-- interleaved, lowest of `rounds` medians) and the ratios to the teacher; the "paper" table holds the
-- seeds' row (66 M vs 110 M parameters: 40% smaller; 97% of BERT-base's GLUE score; 60% faster).
-- DistilBERT's general (pre-training) distillation on the MLM corpus is not run: the student's body is
-- the pretrained teacher's every other layer, with no further pre-training.
--
--   pare run experiments/distilbert_table.lua [task=fortune_topic] [max_len=64] [steps=150] [lr=3e-4]
--        [batch=16] [T=2] [seed=1] [bench_batch=8] [rounds=3] [n_train=] [n_test=]
--   GLUE (files given, nothing downloaded; docs/glue.md): task=glue glue_dir=<glue_data> [glue_task=sst2]
--        [glue_split=dev] — the convention of zoo.subject_args; results in distilbert_table-glue-<task>.h5.
-- The accuracy column is accuracy on every task: GLUE's own metric for SST-2, MNLI, QNLI, RTE and WNLI, not
-- for CoLA (MCC) or MRPC and QQP (F1 beside accuracy), which m:evaluate does not report. STS-B (regression)
-- is refused: the recipe distils class distributions.
local pare = require "pare"
local zoo = require "pare.zoo"
local distill = require "pare.distill"
local a = pare.args

local task_name, max_len = a.task or "fortune_topic", tonumber(a.max_len) or 64
local steps, lr, batch = tonumber(a.steps) or 150, tonumber(a.lr) or 3e-4, tonumber(a.batch) or 16
local Tk, seed = tonumber(a.T) or 2, tonumber(a.seed) or 1
local task_opts, label = zoo.subject_args(a).task_opts or {}, task_name -- label: in the file names
if task_name == "glue" then
  if not a.glue_dir then
    error("distilbert_table: task=glue needs glue_dir=<a glue_data directory holding SST-2/train.tsv, ...> "
          .. "(and glue_task=cola|sst2|mrpc|qqp|mnli|qnli|rte|wnli, default sst2; docs/glue.md)", 0)
  end
  if task_opts.name == "stsb" then
    error("distilbert_table: glue_task=stsb is a regression task; the DistilBERT recipe distils class "
          .. "distributions (valid: cola, sst2, mrpc, qqp, mnli, qnli, rte, wnli)", 0)
  end
  task_opts.test_split = a.glue_split
  label = label .. "-" .. task_opts.name .. (a.glue_split and ("-" .. a.glue_split) or "")
elseif a.glue_task or a.glue_dir or a.glue_split then
  error("distilbert_table: glue_task=, glue_dir= and glue_split= need task=glue (task=" .. task_name .. ")", 0)
end
task_opts.n_train, task_opts.n_test = tonumber(a.n_train), tonumber(a.n_test)
local teacher, task, mlm, _, train = distill.zoo_teacher(task_name, {max_len = max_len, steps = steps, lr = lr, batch = batch,
                                                                    seed = seed, results_dir = a.results_dir,
                                                                    task_opts = task_opts})
-- the results file is opened once the task is read: a wrong file or split leaves none behind
local exp = pare.experiment("distilbert_table-" .. label, {seed = seed, dir = a.results_dir, plots = a.plots_dir,
                                                          fresh = tostring(a.fresh) == "1"})
local function pretrained_student()
  return (distill.every_other(zoo.classifier(mlm, {classes = task.classes, seed = seed, max_T = mlm:info().max_T})))
end

local rows = {
  {"teacher", function() return teacher end},
  {"student_ft", function()
    local s = pretrained_student()
    s:train(task, train)
    return s
  end},
  {"student_distil", function()
    local s = pretrained_student()
    local losses, hw = distill.distilbert_losses(s, teacher, {T = Tk})
    s:train(task, train, {teacher = teacher, hard_weight = hw, losses = losses})
    return s
  end},
  {"student_distil_tinit", function()
    local s = distill.every_other(teacher)
    local losses, hw = distill.distilbert_losses(s, teacher, {T = Tk})
    s:train(task, train, {teacher = teacher, hard_weight = hw, losses = losses})
    return s
  end},
}
local models, names, acc = {}, {}, {}
for i, r in ipairs(rows) do
  io.stderr:write(string.format("distilbert_table: %s\n", r[1]))
  models[i], names[i] = r[2](), r[1]
  acc[i] = models[i]:evaluate(task).accuracy
end
local prof = distill.profile(models, {batch = tonumber(a.bench_batch) or 8, T = max_len, rounds = tonumber(a.rounds) or 3})

exp:drop("table")
exp:table("table", {"model", "layers", "params", "size_mb", "accuracy", "retained", "params_ratio", "ms", "speedup",
                    units = {ms = "ms", size_mb = "MB"},
                    labels = {retained = "accuracy / teacher's", params_ratio = "params / teacher's",
                              speedup = "teacher's latency / model's"}})
for i, name in ipairs(names) do
  exp:record("table", {model = name, layers = models[i]:info().layers, params = prof[i].params, size_mb = prof[i].size_mb,
                       accuracy = acc[i], retained = acc[i] / acc[1], params_ratio = prof[i].params / prof[1].params,
                       ms = prof[i].ms, speedup = prof[1].ms / prof[i].ms, flops = prof[i].flops})
end
exp:drop("paper")
exp:table("paper", {"model", "params", "params_ratio", "retained", "speedup"})
exp:record("paper", {model = "BERT-base (seeds: Sanh et al. 2019)", params = 110000000, params_ratio = 1.0, retained = 1.0, speedup = 1.0})
exp:record("paper", {model = "DistilBERT (seeds: 40% smaller, 97% retained, 60% faster)", params = 66000000, params_ratio = 0.6,
                     retained = 0.97, speedup = 1.6})
pare.print_table(exp, "table", {columns = {"model", "layers", "params", "size_mb", "accuracy", "retained", "params_ratio",
                                           "ms", "speedup"}})
pare.print_table(exp, "paper", {columns = {"model", "params", "params_ratio", "retained", "speedup"}})
exp:plot{table = "table", x = "speedup", y = "accuracy", by = "model", kind = "points", name = "accuracy",
         title = string.format("DistilBERT recipe on %s: accuracy vs measured speed-up", label)}
