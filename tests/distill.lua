-- distill.lua — losses against another model's outputs from Lua: m:capture returns named values
-- (hidden states, logits, attention probabilities) that match across batch sizes and ranges; m:train
-- with a teacher (KL on the logits with temperature, MSE on hidden states through a learnt projection, MSE on
-- attention probabilities, cosine on pooled [CLS] rows)
-- teaches a student with no hard labels at all, is deterministic, gives the model back with its own
-- graph, leaves the teacher unchanged; and misuse raises errors that name the problem.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 128, max_length = 9})
local T = task.T
local teacher = pare.model{vocab = task.vocab, max_T = T, classes = 2, d = 32, heads = 2, layers = 2, seed = 1}
teacher:train(task, {steps = 300, batch = 32, lr = 3e-3, warmup = 20})
local te = teacher:evaluate(task)
tap.ok(te.accuracy >= 0.95, string.format("the teacher learns the task (%.3f)", te.accuracy))

-- ---- capture ----
local names = {"enc.0.add2", "head", "enc.1.attn#att"}
local cap = teacher:capture(task, names, {n = 10, batch = 4})
tap.ok(cap["enc.0.add2"].rows == 10 * T and cap["enc.0.add2"].cols == 32 and #cap["enc.0.add2"].values == 10 * T * 32,
       "hidden states: (n·T, d) rows")
tap.ok(cap.head.rows == 10 and cap.head.cols == 2, "logits: (n, classes)")
tap.ok(cap["enc.1.attn#att"].rows == 10 * T * T and cap["enc.1.attn#att"].cols == 2, "attention probabilities: n·T·T rows × H")
local att, rowsum_ok = cap["enc.1.attn#att"].values, true
for q = 0, T - 1 do -- example 1, head 1: every query's probabilities over the keys sum to 1
  local s = 0
  for k = 1, T do s = s + att[q * T + k] end
  rowsum_ok = rowsum_ok and math.abs(s - 1) < 1e-5
end
tap.ok(rowsum_ok, "attention probabilities of a query sum to 1")
local big = teacher:capture(task, names, {n = 10, batch = 64})
local part = teacher:capture(task, "head", {first = 4, n = 3})
local same, worst = true, 0
for _, k in ipairs(names) do
  for i, v in ipairs(cap[k].values) do worst = math.max(worst, math.abs(v - big[k].values[i])) end
end
tap.ok(worst < 1e-5, string.format("batch 4 and batch 64 capture the same values (max |Δ| %.2g)", worst))
for i = 1, 6 do same = same and math.abs(part.head.values[i] - cap.head.values[6 + i]) < 1e-5 end
tap.ok(same and part.head.rows == 3, "first = 4, n = 3 is rows 4..6 of the whole capture")
tap.ok(teacher:fidelity(teacher, task).agreement == 1, "capture leaves the model usable")

-- ---- a student taught by the teacher alone (no hard labels) ----
local function student() return pare.model{vocab = task.vocab, max_T = T, classes = 2, d = 16, heads = 2, layers = 1, seed = 2} end
local losses = {
  {loss = "kl_div", student = "head", temperature = 2},
  {loss = "mse", student = "enc.0.add2", teacher = "enc.1.add2", project = true, weight = 0.1},
}
local s = student()
local layers0, params0 = #s:layers(), s:info().params
local before = s:fidelity(teacher, task).agreement
local TRAIN = {steps = 300, batch = 32, lr = 3e-3, warmup = 20, seed = 5}
local r = s:train(task, TRAIN, {teacher = teacher, hard_weight = 0, losses = losses})
local after = s:fidelity(teacher, task).agreement
tap.ok(after >= 0.95 and after > before, string.format("KL(T=2) + MSE of hidden states, no hard labels: agreement with the "
       .. "teacher %.3f (untrained %.3f), accuracy %.3f, loss %.4f", after, before, s:evaluate(task).accuracy, r.loss))
tap.ok(#s:layers() == layers0 and s:info().params == params0, "the student comes back with its own graph (no projection, no loss nodes)")
local te2 = teacher:evaluate(task)
tap.ok(te2.accuracy == te.accuracy and te2.loss == te.loss, "the teacher is unchanged")
local s2 = student()
local r2 = s2:train(task, TRAIN, {teacher = teacher, hard_weight = 0, losses = losses})
tap.is(r2.loss, r.loss, "same seeds: identical distillation loss")
local s3 = student()
local r3 = s3:train(task, {steps = 20, batch = 16, eval_every = 10, seed = 5},
                    {teacher = teacher, hard_weight = 0.5, losses = {{loss = "cosine", student = "ln_f", project = true},
                                                                     {loss = "soft_cross_entropy", student = "head", teacher = "loss#probs"}}})
tap.ok(r3.best_eval_accuracy >= 0 and r3.steps == 20, "evaluation during a distillation run, cosine and soft cross-entropy terms")

-- ---- TinyBERT's attention term: MSE between attention probabilities ----
local function gap(a, b)
  local s2 = 0
  for i, v in ipairs(a) do s2 = s2 + (v - b[i]) ^ 2 end
  return s2 / #a
end
local t_att = teacher:capture(task, "enc.0.attn#att", {n = 64})["enc.0.attn#att"].values
local sa = student()
local gap0 = gap(sa:capture(task, "enc.0.attn#att", {n = 64})["enc.0.attn#att"].values, t_att)
sa:train(task, {steps = 150, batch = 32, lr = 3e-3, warmup = 10, seed = 5},
         {teacher = teacher, hard_weight = 0,
          losses = {{loss = "mse", student = "enc.0.attn#att", weight = 100}}})
local gap1 = gap(sa:capture(task, "enc.0.attn#att", {n = 64})["enc.0.attn#att"].values, t_att)
tap.ok(gap1 < 0.01 * gap0, string.format("the attention term alone pulls the student's probabilities to the teacher's "
       .. "(mean squared gap %.3g -> %.3g)", gap0, gap1))

-- ---- BERT-PKD's term: cosine between the [CLS] rows of hidden states ----
local function cls_cos(st)
  local a, b = st:capture(task, "enc.0.add2", {n = 32})["enc.0.add2"], teacher:capture(task, "enc.1.add2", {n = 32})["enc.1.add2"]
  local d, tot = a.cols, 0
  for e = 0, 31 do
    local dot, na, nb, base = 0, 0, 0, e * T * d  -- row e·T: the sequence's first token
    for c = 1, d do
      local x, y = a.values[base + c], b.values[base + c]
      dot, na, nb = dot + x * y, na + x * x, nb + y * y
    end
    tot = tot + dot / math.sqrt(na * nb)
  end
  return tot / 32
end
local sp = pare.model{vocab = task.vocab, max_T = T, classes = 2, d = 32, heads = 2, layers = 1, seed = 2}
local cos0 = cls_cos(sp)
sp:train(task, {steps = 150, batch = 32, lr = 3e-3, warmup = 10, seed = 5},
         {teacher = teacher, hard_weight = 0, losses = {{loss = "cosine", student = "enc.0.add2", teacher = "enc.1.add2", pool = "cls"}}})
local cos1 = cls_cos(sp)
tap.ok(cos1 > 0.9 and cos1 > cos0, string.format("pool = \"cls\": the [CLS] states align with the teacher's (mean cosine %.3f -> %.3f)",
       cos0, cos1))
tap.ok(#sp:layers() == layers0, "the pooled term's nodes are cut off after the run")

-- ---- errors ----
local function dist(l) return {teacher = teacher, losses = {l}} end
local e = err_of(function() return s:train(task, {steps = 2}, dist({loss = "kl", student = "head"})) end)
tap.like(e or "", "distill_loss: option 'loss'.*kl_div|kl_div_reverse|mse|cosine|soft_cross_entropy", "unknown loss lists the valid ones")
tap.like(e or "", "distill%.lua:%d+:", "with the script's line")
e = err_of(s.train, s, task, {steps = 2}, dist({loss = "mse", student = "enc.5.add2"}))
tap.like(e or "", "no value named 'enc.5.add2'", "unknown student value")
e = err_of(s.train, s, task, {steps = 2}, dist({loss = "mse", student = "head", teacher = "nope"}))
tap.like(e or "", "teacher has no value named 'nope'", "unknown teacher value")
e = err_of(s.train, s, task, {steps = 2}, dist({loss = "cosine", student = "enc.0.add2"}))
tap.like(e or "", "16 columns.*32.*project = true", "widths differ without a projection: says how to fix it")
e = err_of(s.train, s, task, {steps = 2}, dist({loss = "kl_div", student = "head", tempurature = 2}))
tap.like(e or "", "unknown option 'tempurature'", "a misspelt term option")
e = err_of(s.train, s, task, {steps = 2}, {teacher = s, losses = {{loss = "kl_div", student = "head"}}})
tap.like(e or "", "its own teacher", "a model cannot teach itself")
e = err_of(s.train, s, task, {steps = 2}, {teacher = teacher, losses = {}})
tap.like(e or "", "list of loss tables", "no losses")
e = err_of(s.train, s, task, {steps = 2}, {teacher = task, losses = losses})
tap.like(e or "", "distill.teacher must be a model", "a teacher that is not a model")
e = err_of(s.train, s, task, {steps = 2}, {teacher = teacher, losses = losses, hard_wieght = 1})
tap.like(e or "", "unknown option 'hard_wieght'", "a misspelt distill option")
local short = pare.model{vocab = task.vocab, max_T = T - 2, classes = 2, d = 16, heads = 2, layers = 1, seed = 1}
e = err_of(s.train, s, task, {steps = 2}, {teacher = short, losses = losses})
tap.like(e or "", "distill: the teacher: dataset 'majority/train' has sequences of 10 tokens", "a teacher that does not fit the task")
tap.ok(#s:layers() == layers0, "failed runs leave the model's graph as it was")
e = err_of(teacher.capture, teacher, task, {"enc.9.add2"})
tap.like(e or "", "no value named 'enc.9.add2'", "capture: unknown value")
e = err_of(teacher.capture, teacher, task, "head", {first = 200})
tap.like(e or "", "past the 128 examples", "capture: a range past the split")
e = err_of(teacher.capture, teacher, task, "enc.0.drop1#mask")
tap.like(e or "", "not an f32 value", "capture: a dropout mask")
e = err_of(s.train, s, task, {steps = 2}, dist({loss = "cosine", student = "head", pool = "cls"}))
tap.like(e or "", "pool = cls needs per%-token values", "pool on a per-sequence value")
e = err_of(sp.train, sp, task, {steps = 2}, dist({loss = "mse", student = "enc.0.drop1#mask", teacher = "enc.0.drop1#mask"}))
tap.like(e or "", "backward cache, which carries no gradient", "a dropout mask is not a distillation value")
tap.done()
