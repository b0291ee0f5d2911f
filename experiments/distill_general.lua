-- distill_general.lua — general (pre-training-stage) distillation before the task stage (issue 14: DistilBERT's
-- and TinyBERT's general distillation), on generated topical text (pare.distill.topic_corpus: nothing
-- downloaded; tests/distill_general.lua's setting). Per generated text: a 2 × d_t masked-LM teacher is
-- pretrained on the text (pretrain_steps) and fine-tuned on fortune_topic over the same files with `labels`
-- labelled documents (mean pooling); students then get `task_steps` steps of task-specific distillation
-- (DistilBERT's losses: 5·T²KL + 2·CE + cos) from the fine-tuned teacher on those labelled inputs — with or
-- without a general stage of `general_steps` on the unlabelled text before. Rows (model):
--   teacher                 the fine-tuned teacher
--   task_only               a 1 × d_s student from random weights: task stage only
--   tinybert_general        the same student after TinyBERT's general stage (MSE of embeddings, hidden states
--                           through W_h, attention probabilities), then the task stage
--   tinybert_general_labels the same general stage, then fine-tuning on the labels alone (no teacher)
--   distilbert_general      the same student after DistilBERT's general stage (5·T²KL of the MLM logits + 2·MLM
--                           + cos of the last hidden states, through W_h), then the task stage
--   every_other_task_only   DistilBERT's initialisation: the teacher's every other layer (1 × d_t), task stage only
--   every_other_general     the same after DistilBERT's general stage, then the task stage
-- Columns: text seed, student seed, params, accuracy, the general stage's seconds and its terms early and late.
--
--   pare run experiments/distill_general.lua [texts=1,2,3] [seeds=1,2] [labels=20] [pretrain_steps=600]
--        [general_steps=300] [task_steps=60] [d_t=64] [d_s=32] [threads=1] [fresh=1]
local pare = require "pare"
local zoo = require "pare.zoo"
local distill = require "pare.distill"
local a = pare.args

local function list(s, default)
  local out = {}
  for w in tostring(s or default):gmatch("[^,]+") do out[#out + 1] = tonumber(w) end
  return out
end
local texts, seeds = list(a.texts, "1,2,3"), list(a.seeds, "1,2")
local labels, pretrain_steps = tonumber(a.labels) or 20, tonumber(a.pretrain_steps) or 600
local general_steps, task_steps = tonumber(a.general_steps) or 300, tonumber(a.task_steps) or 60
local d_t, d_s = tonumber(a.d_t) or 64, tonumber(a.d_s) or 32
pare.set_threads(tonumber(a.threads) or 1)
local exp = pare.experiment("distill_general", {seed = seeds[1], dir = a.results_dir, plots = a.plots_dir,
                                                fresh = tostring(a.fresh) == "1"})
exp:table("runs", {"text", "seed", "model", "params", "accuracy", "general_s", "general_terms",
                   types = {accuracy = "float", general_s = "float"}, units = {general_s = "s"},
                   labels = {general_s = "seconds of the general stage", general_terms = "its terms: first -> last"}})

local tmp = string.format("%s/pare-distill-general-exp-%d", os.getenv("TMPDIR") or "/tmp", math.random(1 << 30))
for _, text in ipairs(texts) do
  if not exp:has("runs", {text = text, seed = seeds[#seeds], model = "every_other_general"}) then
    local dir = tmp .. "-" .. text
    local c = distill.topic_corpus(dir, {seed = text})
    local tok = pare.train_tokenizer{kind = "wordpiece", vocab_size = 2000,
                                     text = pare.corpus{sources = "fortunes", fortune_dir = dir, split = "train", test_frac = 0.05}.text}
    local mlm = pare.task("mlm_corpus", {tokenizer = tok, sources = "fortunes", fortune_dir = dir, max_len = 32, test_frac = 0.05,
                                         dupe = 2})
    local task = pare.task("fortune_topic", {tokenizer = tok, dir = dir, categories = c.categories, max_len = 24,
                                             n_train = labels, n_test = 500, pad_to = 0})
    local function mlm_model(d, layers, seed)
      return pare.model{kind = "tagger", head = "mlm", tie_head = true, vocab = mlm.vocab, d = d, heads = 2, layers = layers,
                        ffn = 4 * d, norm = "post", act = "gelu_erf", emb_norm = true, type_vocab = 2, ln_eps = 1e-12,
                        max_T = 32, seed = seed}
    end
    io.stderr:write(string.format("distill_general: text %d, pretraining the teacher (%d steps)\n", text, pretrain_steps))
    local teacher_lm = mlm_model(d_t, 2, 1)
    teacher_lm:train(mlm, {steps = pretrain_steps, batch = 32, lr = 2e-3, warmup = 30})
    local teacher = zoo.classifier(teacher_lm, {classes = task.classes, seed = 1, pool = "mean"})
    teacher:train(task, {steps = 100, batch = 16, lr = 1e-3, warmup = 10})
    local function classifier(lm, seed) return (zoo.classifier(lm, {classes = task.classes, seed = seed, pool = "mean"})) end
    local function task_stage(s, seed)
      local l, hw = distill.distilbert_losses(s, teacher)
      s:train(task, {steps = task_steps, batch = 16, lr = 1e-3, warmup = math.max(1, task_steps // 10), seed = seed},
              {teacher = teacher, hard_weight = hw, losses = l})
      return s
    end
    local function labels_only(s, seed)
      s:train(task, {steps = task_steps, batch = 16, lr = 1e-3, warmup = math.max(1, task_steps // 10), seed = seed})
      return s
    end
    local function general(s, recipe, seed)
      local r = distill.general(s, teacher_lm, mlm, {recipe = recipe, steps = general_steps, lr = 2e-3, seed = seed})
      local parts = {}
      for _, t in ipairs(r.terms) do parts[#parts + 1] = string.format("%s %.3g->%.3g", t.name, t.first, t.last) end
      return s, r.seconds, table.concat(parts, "; ")
    end
    local function record(seed, name, m, secs, terms)
      exp:record("runs", {text = text, seed = seed, model = name, params = m:info().params, accuracy = m:evaluate(task).accuracy,
                          general_s = secs or 0.0, general_terms = terms or ""})
    end
    for _, seed in ipairs(seeds) do
      io.stderr:write(string.format("distill_general: text %d, seed %d\n", text, seed))
      record(seed, "teacher", teacher)
      record(seed, "task_only", task_stage(classifier(mlm_model(d_s, 1, 100 + seed), seed), seed))
      local s, secs, terms = general(mlm_model(d_s, 1, 100 + seed), "tinybert", seed)
      record(seed, "tinybert_general", task_stage(classifier(s, seed), seed), secs, terms)
      record(seed, "tinybert_general_labels", labels_only(classifier(s, seed), seed), secs, terms)
      s, secs, terms = general(mlm_model(d_s, 1, 100 + seed), "distilbert", seed)
      record(seed, "distilbert_general", task_stage(classifier(s, seed), seed), secs, terms)
      record(seed, "every_other_task_only", task_stage(classifier(distill.every_other(teacher_lm), seed), seed))
      s, secs, terms = general(distill.every_other(teacher_lm), "distilbert", seed)
      record(seed, "every_other_general", task_stage(classifier(s, seed), seed), secs, terms)
    end
    os.execute("rm -rf '" .. dir .. "'")
  end
end

-- the mean over texts and seeds per model
exp:drop("summary")
exp:table("summary", {"model", "params", "accuracy", "min_accuracy", "max_accuracy", "runs", "general_s",
                      types = {accuracy = "float", min_accuracy = "float", max_accuracy = "float", general_s = "float"},
                      labels = {accuracy = "test accuracy (mean over texts and seeds)"}})
local by, order = {}, {}
for _, r in ipairs(exp:rows("runs")) do
  local b = by[r.model]
  if not b then
    b = {n = 0, sum = 0, min = math.huge, max = -math.huge, secs = 0, params = r.params}
    by[r.model], order[#order + 1] = b, r.model
  end
  b.n, b.sum, b.secs = b.n + 1, b.sum + r.accuracy, b.secs + r.general_s
  b.min, b.max = math.min(b.min, r.accuracy), math.max(b.max, r.accuracy)
end
for _, name in ipairs(order) do
  local b = by[name]
  exp:record("summary", {model = name, params = b.params, accuracy = b.sum / b.n, min_accuracy = b.min, max_accuracy = b.max,
                         runs = b.n, general_s = b.secs / b.n})
end
pare.print_table(exp, "runs", {columns = {"text", "seed", "model", "accuracy", "general_s", "general_terms"}})
pare.print_table(exp, "summary", {columns = {"model", "params", "accuracy", "min_accuracy", "max_accuracy", "runs", "general_s"}})
exp:plot{table = "summary", x = "model", y = "accuracy", kind = "bars", name = "accuracy",
         title = string.format("general distillation, then the task stage (%d labels, %d task steps)", labels, task_steps)}
