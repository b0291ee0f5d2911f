-- pare.zoo — models trained here, once, and cached as checkpoints under results/models/.
--
--   local zoo = require "pare.zoo"                        -- also pare.zoo after the require
--   local bert, tok, info = zoo("bert-mini")              -- a 4 × 256 BERT pretrained (MLM) on Debian text
--   local gpt, gtok = zoo("gpt-mini")                     -- a 4 × 256 GPT (causal LM), byte-level BPE
--   local clf = zoo.classifier(bert, {classes = 5})       -- BERT's body + a fresh pooler and head
--   local r = zoo.finetune("bert-mini", "fortune_topic")  -- fine-tuned accuracy, majority and bag-of-words
--   local model, task = zoo.listops{steps = 3000}         -- the demo's ListOps encoder
--
-- The pretrained models (docs/zoo.md): on first use the recipe runs — corpus (pare.corpus: fortunes,
-- copyright files, READMEs and licenses of the installed Debian packages, deduplicated), tokenizer
-- (trained by pare), pretraining, evaluation on held-out documents, save — and leaves in
-- results/models/<name>/: pare.safetensors (m:save, graph included), the tokenizer's files, for BERT also
-- config.json + model.safetensors (m:save_hf: load_hf reads the directory), recipe.txt and report.txt.
-- A later call loads them; a different recipe (or rebuild = true) builds again. Nothing is downloaded.
local pare = require "pare"
local zoo = {}

local function key_of(name, o)
  local ks = {}
  for k in pairs(o) do ks[#ks + 1] = k end
  table.sort(ks)
  local parts = {name}
  for _, k in ipairs(ks) do parts[#parts + 1] = k .. "=" .. tostring(o[k]) end
  return (table.concat(parts, "-"):gsub("[^%w%.=_-]", "_"))
end

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function read_file(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- Train (or load) an encoder on a task. o: task options in o.task, model options d, layers, heads,
-- steps, lr, batch, seed; o.dir (default "results/models").
function zoo.encoder(task_name, o)
  o = o or {}
  local topts = o.task or {}
  local task = pare.task(task_name, topts)
  local spec = {d = o.d or 64, layers = o.layers or 2, heads = o.heads or 4, steps = o.steps or 3000,
                lr = o.lr or 2e-3, batch = o.batch or 32, seed = o.seed or 1}
  local kt = {}
  for k, v in pairs(spec) do kt[k] = v end
  for k, v in pairs(topts) do kt["task_" .. k] = v end
  local dir = o.dir or "results/models"
  local path = string.format("%s/%s.safetensors", dir, key_of(task_name, kt))
  if file_exists(path) then
    local m = pare.load(path)
    io.stderr:write(string.format("zoo: loaded %s\n", path))
    return m, task, path
  end
  local m = pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = spec.d,
                       heads = spec.heads, layers = spec.layers, seed = spec.seed}
  io.stderr:write(string.format("zoo: training %s on %s for %d steps (cached afterwards in %s)\n", tostring(m), task_name,
                                spec.steps, path))
  m:train(task, {steps = spec.steps, batch = spec.batch, lr = spec.lr, warmup = 100, seed = spec.seed})
  os.execute(string.format("mkdir -p '%s'", dir))
  m:save(path)
  return m, task, path
end

-- The embedded default: the demo's ListOps encoder.
function zoo.listops(o)
  o = o or {}
  o.task = o.task or {seed = 1, n_train = 20000, n_test = 1000, max_depth = 3, max_args = 4, max_length = 64}
  return zoo.encoder("listops", o)
end

------------------------------------------------------------------------------------------------------
-- Pretrained models
------------------------------------------------------------------------------------------------------

-- The BERT body's options, shared by the MLM model and the classifiers made from it.
local bert_body = {d = 256, heads = 4, layers = 4, ffn = 1024, norm = "post", act = "gelu_erf", emb_norm = true,
                   type_vocab = 2, ln_eps = 1e-12, max_T = 128}

-- Recipes. Steps are sized so that `make zoo` (both models) takes about 30 minutes on 2 idle cores
-- (docs/zoo.md has the measurement); corpus = pare.corpus options, task = the pretraining task's.
zoo.recipes = {
  ["bert-mini"] = {
    objective = "mlm", task = "mlm_corpus", seed = 1,
    corpus = {sources = "all", test_frac = 0.02, max_bytes = 0},
    tokenizer = {kind = "wordpiece", vocab_size = 8000},
    model = {kind = "tagger", head = "mlm", tie_head = true},
    pretrain = {max_len = 128, dupe = 2},
    train = {steps = 2200, batch = 16, lr = 5e-4, warmup = 200},
    finetune = {steps = 200, batch = 16, lr = 3e-4, warmup = 20, max_len = 128},
  },
  ["gpt-mini"] = {
    objective = "clm", task = "clm_corpus", seed = 1,
    corpus = {sources = "all", test_frac = 0.02, max_bytes = 0},
    tokenizer = {kind = "bpe", vocab_size = 8000},
    model = {kind = "decoder", d = 256, heads = 4, layers = 4, ffn = 1024, norm = "pre", act = "gelu", tie_head = true,
             head_bias = false, max_T = 128},
    pretrain = {max_len = 128},
    train = {steps = 1800, batch = 16, lr = 5e-4, warmup = 180},
  },
}
for k, v in pairs(bert_body) do zoo.recipes["bert-mini"].model[k] = v end

local function merge(base, over)
  local out = {}
  for k, v in pairs(base) do out[k] = type(v) == "table" and merge(v, {}) or v end
  for k, v in pairs(over or {}) do
    if type(v) == "table" and type(out[k]) == "table" then out[k] = merge(out[k], v) else out[k] = v end
  end
  return out
end

-- A recipe as text, keys sorted: what the cache compares (fine-tuning settings are not part of the build).
local function serialize(t, indent)
  indent = indent or ""
  local ks = {}
  for k in pairs(t) do if not (indent == "" and k == "finetune") then ks[#ks + 1] = k end end
  table.sort(ks)
  local lines = {}
  for _, k in ipairs(ks) do
    local v = t[k]
    if type(v) == "table" then
      lines[#lines + 1] = indent .. k .. ":"
      lines[#lines + 1] = serialize(v, indent .. "  ")
    else
      lines[#lines + 1] = string.format("%s%s = %s", indent, k, tostring(v))
    end
  end
  return table.concat(lines, "\n")
end

local function clock_text(s)
  s = math.floor(s + 0.5)
  return string.format("%dm%02ds", s // 60, s % 60)
end

-- Phase lines: "[zoo bert-mini] 3/6 pretraining ... (build 1m02s)"
local function phases(name, total)
  local t0 = os.time()
  local n = 0
  return function(what)
    n = n + 1
    io.stderr:write(string.format("[zoo %s] phase %d/%d: %s  (build so far %s)\n", name, n, total, what,
                                  clock_text(os.difftime(os.time(), t0))))
  end, function() return os.difftime(os.time(), t0) end
end

-- Build a pretrained model into dir following recipe r; returns model, tokenizer, report table.
local function build(name, r, dir)
  local phase, elapsed = phases(name, 6)
  os.execute(string.format("mkdir -p '%s'", dir))
  phase("corpus (pare.corpus: Debian-installed English text, deduplicated)")
  local copts = merge(r.corpus, {split = "train", seed = r.seed})
  local corpus = pare.corpus(copts)
  local src = {}
  for _, s in ipairs({"fortunes", "copyright", "readme", "licenses"}) do
    local c = corpus.sources[s]
    src[#src + 1] = string.format("%s: %d files, %d bytes read, %d documents, %d bytes kept", s, c.files, c.raw_bytes,
                                  c.docs, c.bytes)
  end
  io.stderr:write("  " .. table.concat(src, "\n  ") .. "\n")
  phase(string.format("tokenizer (%s, %d tokens, trained on the %d training documents)", r.tokenizer.kind,
                      r.tokenizer.vocab_size, corpus.docs))
  local tok = pare.train_tokenizer(merge(r.tokenizer, {text = corpus.text, out = dir}))
  corpus = nil
  collectgarbage()
  phase(string.format("pretraining data (%s: tokenize, %s)", r.task, r.objective == "mlm" and "mask" or "windows"))
  local topts = merge(r.pretrain, {seed = r.seed, tokenizer = tok})
  for k, v in pairs(r.corpus) do topts[k] = v end
  local task = pare.task(r.task, topts)
  io.stderr:write(string.format("  %d training rows, %d test rows, T = %d, vocab %d\n", task.n_train, task.n_test,
                                task.T, task.vocab))
  local mopts = merge(r.model, {vocab = task.vocab, seed = r.seed})
  local m = pare.model(mopts)
  phase(string.format("pretraining %s (%d steps of %d rows)", tostring(m), r.train.steps, r.train.batch))
  local tr = m:train(task, merge(r.train, {seed = r.seed}))
  phase("evaluation on the held-out documents")
  local ev = m:evaluate(task, {batch = 32})
  local report = {
    name = name, objective = r.objective, steps = tr.steps, train_seconds = tr.seconds, train_loss = tr.loss,
    steps_per_second = tr.steps / tr.seconds, test_rows = task.n_test, train_rows = task.n_train,
    test_tokens_scored = ev.n, accuracy = ev.accuracy, loss = ev.loss, perplexity = ev.perplexity,
    vocab = task.vocab, params = m:info().params,
  }
  io.stderr:write(string.format("  %s: held-out %s accuracy %.4f, perplexity %.2f over %d tokens\n", name,
                                r.objective == "mlm" and "masked-token" or "next-token", ev.accuracy, ev.perplexity, ev.n))
  phase("save")
  m:save(dir .. "/pare.safetensors")
  local ok_hf, err = pcall(function() m:save_hf(dir) end)
  report.save_hf = ok_hf and "yes" or ("no: " .. tostring(err))
  report.build_seconds = elapsed()
  local lines = {}
  local ks = {}
  for k in pairs(report) do ks[#ks + 1] = k end
  table.sort(ks)
  for _, k in ipairs(ks) do
    local v = report[k]
    lines[#lines + 1] = k .. " = " .. (math.type(v) == "float" and string.format("%.17g", v) or tostring(v))
  end
  write_file(dir .. "/report.txt", table.concat(lines, "\n") .. "\n")
  write_file(dir .. "/recipe.txt", serialize(r) .. "\n") -- last: its presence marks a finished build
  io.stderr:write(string.format("[zoo %s] built in %s, cached in %s\n", name, clock_text(elapsed()), dir))
  return m, tok, report
end

local function read_report(path)
  local t = {}
  for line in (read_file(path) or ""):gmatch("[^\n]+") do
    local k, v = line:match("^(%S+) = (.*)$")
    if k then t[k] = tonumber(v) or v end
  end
  return t
end

-- zoo.pretrained(name, {dir = "results/models", recipe = {overrides}, rebuild = false, any_recipe = false}); the
-- environment variable PARE_ZOO_DIR changes the default directory; any_recipe loads a cached build whatever
-- its recipe (a shorter `make zoo steps=N` build, say).
--   -> model, tokenizer, info {dir, built (true when built by this call), report = {...}}
function zoo.pretrained(name, o)
  o = o or {}
  local base = zoo.recipes[name]
  if not base then
    local names = {}
    for k in pairs(zoo.recipes) do names[#names + 1] = k end
    table.sort(names)
    error(string.format("pare.zoo: no model named '%s' (valid: %s)", tostring(name), table.concat(names, ", ")), 2)
  end
  local r = merge(base, o.recipe)
  local dir = (o.dir or os.getenv("PARE_ZOO_DIR") or "results/models") .. "/" .. name
  local cached = read_file(dir .. "/recipe.txt")
  local same = cached and (cached == serialize(r) .. "\n" or o.any_recipe)
  if same and not o.rebuild and file_exists(dir .. "/pare.safetensors") then
    local m = pare.load(dir .. "/pare.safetensors")
    local tok = pare.tokenizer(dir)
    io.stderr:write(string.format("zoo: loaded %s from %s\n", name, dir))
    return m, tok, {dir = dir, built = false, report = read_report(dir .. "/report.txt")}
  end
  if cached and not o.rebuild then
    io.stderr:write(string.format("zoo: %s in %s was built with another recipe: building again\n", name, dir))
  end
  os.remove(dir .. "/recipe.txt")
  local m, tok, report = build(name, r, dir)
  return m, tok, {dir = dir, built = true, report = report}
end

-- The layer prefixes ("enc.0", "enc.2", ...) of a model's self-attention layers, as a set.
local function layer_prefixes(m)
  local out = {}
  for _, n in ipairs(m:layers()) do
    local p = n:match("^([%w_]+%.%d+)%.attn$")
    if p then out[p] = true end
  end
  return out
end

-- A classifier with the MLM model's body: an encoder with BERT's pooler (tanh) and a fresh head of
-- `classes`, every parameter whose name and shape match copied from mlm (m:transfer_from). Layers removed
-- from mlm (m:remove, pare.distill.every_other: its config still counts them) are removed from the
-- classifier too, so that the kept layers keep their names and get their weights; a body whose heads or
-- FFN neurons were pruned is not followed (those shapes differ: the tensors stay fresh, counted in
-- transfer.shape_mismatch). o: classes (required), seed, and any model option to override; returns model,
-- transfer report.
function zoo.classifier(mlm, o)
  local cfg = zoo.body_options(mlm)
  for k, v in pairs(o or {}) do cfg[k] = v end
  cfg.kind, cfg.pooler = "encoder", cfg.pooler or "tanh"
  local clf = pare.model(cfg)
  local have = layer_prefixes(mlm)
  if next(have) then
    for p in pairs(layer_prefixes(clf)) do
      if not have[p] then clf = clf:remove(p .. ".*") end
    end
  end
  return clf, clf:transfer_from(mlm)
end

-- The options of a model's body (everything but kind, head and classes) from its config record.
local body_keys = {"vocab", "max_T", "d", "heads", "layers", "ffn", "pos", "act", "dropout", "norm", "ln_eps",
                   "type_vocab", "emb_norm", "pos_offset", "attention"}
function zoo.body_options(m)
  local cfg, out = m:info().config, {}
  for _, k in ipairs(body_keys) do
    local v = cfg:match('"' .. k .. '": ("[^"]*")') or cfg:match('"' .. k .. '": ([^,}]+)')
    if v then
      if v:sub(1, 1) == '"' then v = v:sub(2, -2)
      elseif v == "true" or v == "false" then v = v == "true"
      else v = tonumber(v) end
      if v ~= "" then out[k] = v end
    end
  end
  return out
end

-- Fine-tune a zoo BERT on a text task (fortune_topic, fortune_pair, glue...): returns {accuracy,
-- majority, bow, scratch (the same model from random weights, when o.scratch), transfer, task}. A regression
-- task (glue stsb: task.kind "regression") gets head=regression and returns {pearson, spearman, mse,
-- scratch (its pearson), transfer, task} instead: the classification baselines do not apply.
-- model: a zoo name, or {model, tokenizer}. o: task options in o.task; steps, batch, lr, warmup, seed;
-- o.dir and o.recipe as zoo.pretrained.
function zoo.finetune(model, task_name, o)
  o = o or {}
  local m, tok
  if type(model) == "string" then
    local r = merge(zoo.recipes[model] or {}, o.recipe)
    m, tok = zoo.pretrained(model, {dir = o.dir, recipe = o.recipe})
    o = merge(r.finetune or {}, o)
  else
    m, tok = model[1], model[2]
  end
  local max_T = m:info().max_T or 128
  local topts = merge({max_len = math.min(o.max_len or 128, max_T), pad_to = 0}, o.task)
  topts.tokenizer = tok
  local task = pare.task(task_name, topts)
  local train = {steps = o.steps or 200, batch = o.batch or 16, lr = o.lr or 3e-4, warmup = o.warmup or 20,
                 seed = o.seed or 1}
  local regression = task.kind == "regression"
  local head = regression and {head = "regression"} or {classes = task.classes}
  local clf, transfer = zoo.classifier(m, merge(head, {seed = o.seed or 1, max_T = max_T}))
  clf:train(task, train)
  local out
  if regression then
    local e = clf:evaluate(task)
    out = {pearson = e.pearson, spearman = e.spearman, mse = e.mse, transfer = transfer, task = task, model = clf}
  else
    out = {accuracy = clf:evaluate(task).accuracy, majority = pare.baseline(task, "majority"),
           bow = pare.baseline(task, "bow"), transfer = transfer, task = task, model = clf}
  end
  if o.scratch then -- the same architecture from random weights: what pretraining buys
    local s = pare.model(merge(zoo.body_options(m), merge(head, {kind = "encoder", pooler = "tanh", seed = o.seed or 1})))
    s:train(task, train)
    local e = s:evaluate(task)
    out.scratch = regression and e.pearson or e.accuracy
  end
  return out
end

-- A model to study and a task to measure it on, for an experiment's model= argument (docs/zoo.md):
--   a zoo name ("bert-mini", "gpt-mini"): the cached model and its pretraining task's held-out rows
--   through its tokenizer (masked-token or next-token accuracy);
--   a Hugging Face directory (pare.load_hf + its tokenizer): an MLM (tagger) is measured on mlm_corpus,
--   a decoder on clm_corpus, a sequence classifier on o.task (default fortune_topic), whose classes
--   must be the head's.
-- LM test splits are cut to about 32 M logits (o.n_test overrides), which fidelity holds twice; o.corpus:
-- options of the corpus tasks (sources, max_bytes, ...).
-- Returns model, task, tokenizer.
-- The task options an experiment's own arguments give (pare.args): task=<name> for a classifier, and for
-- task=glue, glue_task=<sst2|cola|...> glue_dir=<a downloaded glue_data directory>.
function zoo.subject_args(a)
  local o = {task = a.task}
  if a.task == "glue" then o.task_opts = {name = a.glue_task or "sst2", dir = a.glue_dir} end
  return o
end

function zoo.subject(spec, o)
  o = o or {}
  local m, tok
  if zoo.recipes[spec] then
    m, tok = zoo.pretrained(spec, {dir = o.dir, any_recipe = true}) -- whatever build is cached
  else
    m = pare.load_hf(spec)
    tok = pare.tokenizer(spec)
  end
  local info = m:info()
  local T = math.min(info.max_T, o.max_len or 128)
  local task
  if info.kind == "encoder" then
    local name = o.task or "fortune_topic"
    task = pare.task(name, merge({tokenizer = tok, max_len = T}, o.task_opts))
    if task.classes ~= info.classes then
      error(string.format("model %s classifies %d classes; task %s has %d (choose a task= of its own)", spec,
                          info.classes, name, task.classes), 2)
    end
  else
    local n = o.n_test or math.max(4, 32000000 // (T * info.vocab))
    local topts = merge({tokenizer = tok, max_len = T, n_test = n, n_train = 4 * n, seed = 1}, o.corpus)
    if info.kind == "tagger" and not tok.mask then
      error(string.format("model %s is a masked LM but its tokenizer has no mask token", spec), 2)
    end
    task = pare.task(info.kind == "tagger" and "mlm_corpus" or "clm_corpus", topts)
  end
  return m, task, tok
end

-- An experiment with a model= argument (pare.args a): its results file, named after the experiment and
-- the model ("sixteen_heads-bert-mini"; results_dir=, plots_dir=, fresh=1 honoured), and, when default is
-- given, the model and task to study: zoo.subject for a.model, else default() (the experiment's own).
--   local exp, base, task = zoo.experiment("sixteen_heads", pare.args, function() return zoo.listops{d = 128} end)
function zoo.experiment(name, a, default)
  local full = a.model and (name .. "-" .. a.model:gsub("[^%w_-]", "_")) or name
  local exp = pare.experiment(full, {seed = 1, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
  if not default then return exp end
  local base, task
  if a.model then base, task = zoo.subject(a.model, zoo.subject_args(a)) else base, task = default() end
  return exp, base, task
end

-- The recipe of a zoo model with overrides applied (as a build would use it).
function zoo.recipe_of(name, over) return merge(zoo.recipes[name] or {}, over) end

setmetatable(zoo, {__call = function(_, name, o) return zoo.pretrained(name, o) end})
pare.zoo = zoo
return zoo
