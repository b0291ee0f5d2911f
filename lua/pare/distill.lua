-- pare.distill — knowledge-distillation recipes on top of m:train(task, opts, {teacher, losses}) (docs/distillation.md).
--
--   local distill = require "pare.distill"                 -- also pare.distill
--   local s = distill.every_other(teacher)                 -- DistilBERT's student: layers 0, 2, 4, ... kept
--   local losses, hw = distill.distilbert_losses(s, teacher, {T = 2})
--   s:train(task, {steps = 500}, {teacher = teacher, hard_weight = hw, losses = losses})
--   distill.layer_map(4, 12, "uniform")                    -- {3, 6, 9, 12}: TinyBERT's g(m) = m·N/M
--   distill.tinybert_losses(s, teacher, {map = "uniform", T = 1})
--   distill.pkd_losses(s, teacher, {strategy = "skip"})    -- Patient KD: [CLS] cosine per mapped layer
--   distill.general(s_mlm, t_mlm, mlm_task, {recipe = "tinybert", steps = 300})  -- general (pre-training) stage
--   distill.topic_corpus(dir)                              -- generated topical text as fortune files
--
-- The node names come from the model's graph (m:layers()): a layer is the prefix "<stack>.<l>" of a
-- self-attention node "<stack>.<l>.attn" (enc.0, enc.1, ...; dec.* for a decoder), its output is the
-- last node of the prefix in graph order (enc.l.add2 for pre-LN blocks, enc.l.ln2 for BERT's post-LN
-- ones), the embedding layer's output is the node just before the first layer's first node (emb.pos,
-- BERT's emb.ln) and the logits are "head". The same code serves pare.model encoders, zoo BERTs and
-- load_hf BERTs. Each *_losses returns the list of loss terms and the hard_weight of the recipe.
local pare = require "pare"
local distill = {}

local function fail(fmt, ...) error("pare.distill: " .. string.format(fmt, ...), 3) end

local function is_model(m) return type(m) == "userdata" and type(m.layers) == "function" end

-- The layers of a model: {stack = "enc", embedding = NAME, logits = NAME, layers = {{index = l (the number
-- in the name), prefix = "enc.l", attn = "enc.l.attn", out = NAME, heads = H}, ...} in graph order}.
-- o.stack: which stack ("enc", "dec") when the model has several (default: the first one in the graph).
function distill.structure(m, o)
  if not is_model(m) then fail("structure: a model is needed, got %s", type(m)) end
  o = o or {}
  local names = m:layers()
  local info = m:info()
  local stack = o.stack
  local layers, by_prefix = {}, {}
  local first_pos
  for pos, n in ipairs(names) do
    local st, l = n:match("^([%w_]+)%.(%d+)%.attn$")
    if st and (stack == nil or st == stack) then
      stack = stack or st
      local prefix = st .. "." .. l
      if not by_prefix[prefix] then
        local L = {index = tonumber(l), prefix = prefix, attn = n}
        layers[#layers + 1], by_prefix[prefix] = L, L
      end
    end
  end
  if #layers == 0 then
    fail("structure: the model has no self-attention layer%s (nodes named '<stack>.<l>.attn')",
         o.stack and (" in stack '" .. o.stack .. "'") or "")
  end
  for pos, n in ipairs(names) do
    local prefix = n:match("^([%w_]+%.%d+)%.")
    local L = prefix and by_prefix[prefix]
    if L then
      L.out = n -- the last node of the prefix in graph order
      first_pos = first_pos or pos
    end
  end
  local heads = info.heads_per_layer or {}
  for i, L in ipairs(layers) do L.heads = heads[i] or info.heads end
  local emb = first_pos and first_pos > 1 and names[first_pos - 1] or nil
  local logits
  for _, n in ipairs(names) do if n == "head" then logits = n end end
  return {stack = stack, embedding = emb, logits = logits, layers = layers, d = info.d}
end

-- DistilBERT's student (Sanh et al. 2019): the teacher with every other layer physically removed — the
-- layers at positions 0, 2, 4, ... of its stack are kept with their weights bit for bit, the others
-- removed (m:remove, each removed layer's input taking its output's place). o.keep = "even" (default) or
-- "odd" (positions 1, 3, ...); o.stack as distill.structure. Returns the new model and the list of kept
-- layer prefixes.
function distill.every_other(teacher, o)
  o = o or {}
  local keep = o.keep or "even"
  if keep ~= "even" and keep ~= "odd" then fail("every_other: keep = '%s' (valid: even, odd)", tostring(keep)) end
  local s = distill.structure(teacher, o)
  if #s.layers < 2 then fail("every_other: the teacher has %d layer; at least 2 are needed", #s.layers) end
  local m, kept = teacher, {}
  for i, L in ipairs(s.layers) do
    local even = (i - 1) % 2 == 0
    if even == (keep == "even") then kept[#kept + 1] = L.prefix else m = m:remove(L.prefix .. ".*") end
  end
  return m, kept
end

-- Which teacher layer (1..N) each student layer m = 1..M learns from:
--   uniform: g(m) = m·N/M (TinyBERT; rounded down when M does not divide N)
--   top:     g(m) = N − M + m (the last M layers)
--   bottom:  g(m) = m (the first M layers)
function distill.layer_map(M, N, kind)
  kind = kind or "uniform"
  if math.type(M) ~= "integer" or math.type(N) ~= "integer" or M < 1 or N < 1 then
    fail("layer_map: M and N must be positive integers (got %s, %s)", tostring(M), tostring(N))
  end
  if M > N then fail("layer_map: a student of %d layers cannot map onto a teacher of %d", M, N) end
  local map = {}
  for m = 1, M do
    if kind == "uniform" then map[m] = m * N // M
    elseif kind == "top" then map[m] = N - M + m
    elseif kind == "bottom" then map[m] = m
    else fail("layer_map: unknown kind '%s' (valid: uniform, top, bottom)", tostring(kind)) end
  end
  return map
end

-- Patient KD's map (Sun et al. 2019): the student's first M − 1 layers (its last is taught by the
-- prediction loss) learn from teacher layers
--   skip: every (N/M)-th: g(m) = m·N/M (12 → 6: {2, 4, 6, 8, 10})
--   last: the last M − 1 below the top: g(m) = N − M + m (12 → 6: {7, 8, 9, 10, 11})
function distill.pkd_map(M, N, strategy)
  strategy = strategy or "skip"
  if strategy ~= "skip" and strategy ~= "last" then
    fail("pkd_map: unknown strategy '%s' (valid: skip, last)", tostring(strategy))
  end
  local map = distill.layer_map(M, N, strategy == "skip" and "uniform" or "top")
  map[M] = nil
  return map
end

local function resolve_map(o, M, N, what)
  local map = o.map or "uniform"
  if type(map) == "string" then return distill.layer_map(M, N, map) end
  if type(map) ~= "table" or #map ~= M then
    fail("%s: map must be uniform|top|bottom or a list of %d teacher layers (1..%d)", what, M, N)
  end
  for m, n in ipairs(map) do
    if math.type(n) ~= "integer" or n < 1 or n > N then
      fail("%s: map[%d] = %s is not a teacher layer (1..%d)", what, m, tostring(n), N)
    end
  end
  return map
end

local function check_opts(o, valid, what)
  for k in pairs(o) do
    if not valid[k] then
      local ks = {}
      for v in pairs(valid) do ks[#ks + 1] = v end
      table.sort(ks)
      fail("%s: unknown option '%s' (valid: %s)", what, tostring(k), table.concat(ks, ", "))
    end
  end
end

local function pair(student, teacher, o, what)
  if not is_model(student) or not is_model(teacher) then fail("%s: student and teacher must be models", what) end
  local ss, ts = distill.structure(student, {stack = o.stack}), distill.structure(teacher, {stack = o.stack})
  return ss, ts
end

-- TinyBERT (Jiao et al. 2020): MSE on the embedding layer's output, on each mapped layer's output (with
-- the learnt W_h when the widths differ), on each mapped layer's attention probabilities (weight
-- att_weight, default T_seq² with T_seq = o.seq_len or the student's max_T: the probabilities are
-- O(1/T_seq)), and T²·KL of the logits at temperature T (TinyBERT's soft cross-entropy up to a constant).
-- o: map (uniform|top|bottom or a list), attention, hidden, embedding, prediction (booleans, default true),
-- T (1), att_weight, hidden_weight (1), pred_weight (1), seq_len. The recipe uses no hard labels
-- (hard_weight 0). Heads must match for the attention term (attention = false otherwise).
function distill.tinybert_losses(student, teacher, o)
  o = o or {}
  check_opts(o, {map = 1, attention = 1, hidden = 1, embedding = 1, prediction = 1, T = 1, att_weight = 1,
                 hidden_weight = 1, pred_weight = 1, seq_len = 1, stack = 1}, "tinybert_losses")
  local ss, ts = pair(student, teacher, o, "tinybert_losses")
  local M, N = #ss.layers, #ts.layers
  local map = resolve_map(o, M, N, "tinybert_losses")
  local on = function(k) return o[k] == nil or o[k] == true end
  local proj = ss.d ~= ts.d
  local T = o.T or 1
  local seq = o.seq_len or student:info().max_T
  local att_w = o.att_weight or seq * seq
  local hw = o.hidden_weight or 1
  local losses = {}
  if on("embedding") then
    if not ss.embedding or not ts.embedding then fail("tinybert_losses: no embedding output found (embedding = false skips the term)") end
    losses[#losses + 1] = {loss = "mse", student = ss.embedding, teacher = ts.embedding, project = proj, weight = hw}
  end
  for m, n in ipairs(map) do
    local sl, tl = ss.layers[m], ts.layers[n]
    if on("hidden") then
      losses[#losses + 1] = {loss = "mse", student = sl.out, teacher = tl.out, project = proj, weight = hw}
    end
    if on("attention") then
      if sl.heads ~= tl.heads then
        fail("tinybert_losses: the attention term needs the same heads: student %s has %d, teacher %s has %d "
             .. "(attention = false skips the term)", sl.attn, sl.heads, tl.attn, tl.heads)
      end
      losses[#losses + 1] = {loss = "mse", student = sl.attn .. "#att", teacher = tl.attn .. "#att", weight = att_w}
    end
  end
  if on("prediction") then
    if not ss.logits then fail("tinybert_losses: the student has no 'head' (prediction = false skips the term)") end
    losses[#losses + 1] = {loss = "kl_div", student = ss.logits, teacher = ts.logits, temperature = T,
                           weight = o.pred_weight or 1}
  end
  if #losses == 0 then fail("tinybert_losses: every term is switched off") end
  return losses, 0
end

-- Patient KD (Sun et al. 2019): L = (1 − α)·CE + α·T²·KL(z_t/T ‖ z_s/T) + β·Σ_m ‖ĥ_s,m − ĥ_t,g(m)‖² over the
-- [CLS] states of the mapped layers (ĥ = h/‖h‖; = 2β·(1 − cos): the cosine loss with pool = "cls", weight 2β).
-- o: strategy (skip|last), alpha (0.5), T (5), beta (10).
function distill.pkd_losses(student, teacher, o)
  o = o or {}
  check_opts(o, {strategy = 1, alpha = 1, T = 1, beta = 1, stack = 1}, "pkd_losses")
  local ss, ts = pair(student, teacher, o, "pkd_losses")
  local M, N = #ss.layers, #ts.layers
  if M > N then fail("pkd_losses: a student of %d layers cannot map onto a teacher of %d", M, N) end
  local map = distill.pkd_map(M, N, o.strategy)
  local alpha, beta = o.alpha or 0.5, o.beta or 10
  local proj = ss.d ~= ts.d
  local losses = {{loss = "kl_div", student = ss.logits, teacher = ts.logits, temperature = o.T or 5, weight = alpha}}
  for m, n in ipairs(map) do
    losses[#losses + 1] = {loss = "cosine", student = ss.layers[m].out, teacher = ts.layers[n].out, pool = "cls",
                           project = proj, weight = 2 * beta}
  end
  return losses, 1 - alpha
end

-- DistilBERT's losses for task-specific distillation (Sanh et al. 2019): α_ce·T²·KL of the logits at
-- temperature T, α_cos·(1 − cos) between the student's and the teacher's last hidden states (every valid
-- token), and the student's own loss (α_hard, their MLM loss's place). Defaults are the paper's
-- training script's: α_ce 5, α_hard 2, α_cos 1, T 2. Returns losses, hard_weight (= α_hard).
function distill.distilbert_losses(student, teacher, o)
  o = o or {}
  check_opts(o, {T = 1, alpha_ce = 1, alpha_cos = 1, alpha_hard = 1, stack = 1}, "distilbert_losses")
  local ss, ts = pair(student, teacher, o, "distilbert_losses")
  local losses = {{loss = "kl_div", student = ss.logits, teacher = ts.logits, temperature = o.T or 2,
                   weight = o.alpha_ce or 5}}
  local a_cos = o.alpha_cos or 1
  if a_cos > 0 then
    losses[#losses + 1] = {loss = "cosine", student = ss.layers[#ss.layers].out, teacher = ts.layers[#ts.layers].out,
                           project = ss.d ~= ts.d, weight = a_cos}
  end
  return losses, o.alpha_hard or 2
end

-- Hinton's logit distillation: (α = hard_weight)·CE + (1 − α)·T²·KL.
function distill.kd_losses(student, teacher, o)
  o = o or {}
  check_opts(o, {T = 1, alpha = 1}, "kd_losses")
  local alpha = o.alpha or 0.5
  return {{loss = "kl_div", student = "head", teacher = "head", temperature = o.T or 2, weight = 1 - alpha}}, alpha
end

-- General (pre-training-stage) distillation: the student learns the teacher's language model on unlabelled
-- text, before any task. Both models are masked LMs (a tagger with head = "mlm": zoo.pretrained("bert-mini")'s
-- model, pare.model{kind = "tagger", head = "mlm", ...}) and `corpus` is their masked-LM task — a task of kind
-- "lm" (pare.task("mlm_corpus", {tokenizer = tok, ...})) or the options to make one (a table with a tokenizer).
-- o.recipe:
--   distilbert (default): α_ce·T²·KL of the MLM logits + α_mlm·(the student's MLM loss on the masked tokens)
--                         + α_cos·(1 − cos) of the last hidden states (Sanh et al. 2019; α 5, 2, 1, T 2)
--   tinybert:             TinyBERT's general distillation: MSE of the embeddings, of the mapped layers' hidden
--                         states (through a learnt W_h when the widths differ) and attention probabilities; no
--                         prediction-layer term, no labels (Jiao et al. 2020)
-- Recipe options as distilbert_losses (T, alpha_ce, alpha_cos; alpha_mlm is its alpha_hard) or tinybert_losses
-- (map, attention, hidden, embedding, att_weight, hidden_weight; seq_len defaults to the corpus's T); training
-- options as m:train's (steps 500, batch 32, lr 5e-4, warmup steps/10, seed 1, ...). The student is trained in
-- place; the task-specific stage follows on its body (zoo.classifier(student, {classes = ...}) then m:train with a
-- recipe's losses against the fine-tuned teacher). Returns m:train's result (r.terms: each term early and late),
-- the loss terms and the hard weight used.
local train_keys = {steps = 1, batch = 1, lr = 1, warmup = 1, min_lr_ratio = 1, weight_decay = 1, beta1 = 1, beta2 = 1,
                    eps = 1, clip = 1, seed = 1, eval_every = 1}
local general_keys = {distilbert = {T = 1, alpha_ce = 1, alpha_cos = 1, alpha_mlm = 1},
                      tinybert = {map = 1, attention = 1, hidden = 1, embedding = 1, att_weight = 1, hidden_weight = 1,
                                  seq_len = 1}}
function distill.general(student, teacher, corpus, o)
  o = o or {}
  local recipe = o.recipe or "distilbert"
  local rk = general_keys[recipe]
  if not rk then fail("general: unknown recipe '%s' (valid: distilbert, tinybert)", tostring(recipe)) end
  local valid = {recipe = 1}
  for k in pairs(train_keys) do valid[k] = 1 end
  for k in pairs(rk) do valid[k] = 1 end
  check_opts(o, valid, "general (recipe " .. recipe .. ")")
  if not is_model(student) or not is_model(teacher) then fail("general: student and teacher must be models") end
  for what, m in pairs({student = student, teacher = teacher}) do
    local kind = m:info().kind
    if kind ~= "tagger" or not m:info().config:find('"head": "mlm"', 1, true) then
      fail("general: the %s is a model of kind '%s'; general distillation trains masked LMs (a tagger with head = "
           .. "\"mlm\": the zoo's pretrained model, not its classifier), the task-specific stage comes after", what, tostring(kind))
    end
  end
  local task = corpus
  if type(corpus) == "table" then
    if not corpus.tokenizer then fail("general: corpus options need a tokenizer (pare.task(\"mlm_corpus\", {tokenizer = tok, ...}))") end
    task = pare.task("mlm_corpus", corpus)
  end
  if type(task) ~= "userdata" or task.kind ~= "lm" then
    fail("general: corpus must be a masked-LM task (kind \"lm\": pare.task(\"mlm_corpus\", ...)) or its options, not %s",
         type(task) == "userdata" and ("a task of kind " .. tostring(task.kind)) or type(task))
  end
  local losses, hw
  if recipe == "distilbert" then
    losses, hw = distill.distilbert_losses(student, teacher, {T = o.T, alpha_ce = o.alpha_ce, alpha_cos = o.alpha_cos,
                                                              alpha_hard = o.alpha_mlm})
  else
    losses, hw = distill.tinybert_losses(student, teacher, {map = o.map, attention = o.attention, hidden = o.hidden,
                                                            embedding = o.embedding, att_weight = o.att_weight,
                                                            hidden_weight = o.hidden_weight, seq_len = o.seq_len or task.T,
                                                            prediction = false})
  end
  local steps = o.steps or 500
  local tr = {steps = steps, batch = o.batch or 32, lr = o.lr or 5e-4, warmup = o.warmup or math.max(1, steps // 10),
              seed = o.seed or 1}
  for k in pairs(train_keys) do if o[k] ~= nil and tr[k] == nil then tr[k] = o[k] end end
  local r = student:train(task, tr, {teacher = teacher, hard_weight = hw, losses = losses})
  return r, losses, hw
end

-- A generated topical text, written as fortune files so that the text tasks read it (nothing downloaded):
-- `topics` files topic1..topicK in `dir`, each of `docs` documents of 8..16 pseudo-words (2–3 syllables); a
-- word is, with probability `p_topic`, one of its topic's `topic_words` and otherwise one of `shared_words`
-- common to every topic. A masked LM learns which topic a document is about from its context, and
-- fortune_topic on the files asks for it:
--   local c = distill.topic_corpus("/tmp/t")
--   pare.task("mlm_corpus", {tokenizer = tok, sources = "fortunes", fortune_dir = c.dir})
--   pare.task("fortune_topic", {tokenizer = tok, dir = c.dir, categories = c.categories})
-- o: topics (5), topic_words (20), shared_words (60), docs (600 per topic), p_topic (0.6), seed (1). Same
-- options, same files. Returns {dir, categories = "topic1,...", words = distinct words}.
function distill.topic_corpus(dir, o)
  o = o or {}
  check_opts(o, {topics = 1, topic_words = 1, shared_words = 1, docs = 1, p_topic = 1, seed = 1}, "topic_corpus")
  local K, WT, WS, D = o.topics or 5, o.topic_words or 20, o.shared_words or 60, o.docs or 600
  local pt = o.p_topic or 0.6
  for k, v in pairs({topics = K, topic_words = WT, shared_words = WS, docs = D}) do
    if math.type(v) ~= "integer" or v < 1 or v > 100000 then fail("topic_corpus: %s = %s (an integer in 1..100000)", k, tostring(v)) end
  end
  if K < 2 then fail("topic_corpus: topics = %d (at least 2: they are the classes)", K) end
  if type(pt) ~= "number" or pt < 0 or pt > 1 then fail("topic_corpus: p_topic = %s (in [0, 1])", tostring(pt)) end
  local state = (o.seed or 1) % 2147483648 -- a generator of its own: the text does not depend on Lua's math.random
  local function rand()
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  end
  local function pick(n) return 1 + math.floor(rand() * n) end
  local cons, vows = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"}, {"a", "e", "i", "o", "u"}
  local seen, nwords = {}, 0
  local function word()
    for _ = 1, 1000 do
      local w = {}
      for i = 1, 1 + pick(2) do w[i] = cons[pick(#cons)] .. vows[pick(#vows)] end
      w = table.concat(w)
      if not seen[w] then
        seen[w], nwords = true, nwords + 1
        return w
      end
    end
    fail("topic_corpus: %d words are more than the 2–3-syllable pseudo-words allow", K * WT + WS)
  end
  local shared, topics = {}, {}
  for i = 1, WS do shared[i] = word() end
  for k = 1, K do
    topics[k] = {}
    for i = 1, WT do topics[k][i] = word() end
  end
  os.execute(string.format("mkdir -p '%s'", dir))
  local cats = {}
  for k = 1, K do
    cats[k] = "topic" .. k
    local path = dir .. "/" .. cats[k]
    local f, err = io.open(path, "w")
    if not f then fail("topic_corpus: cannot write %s: %s", path, tostring(err)) end
    for _ = 1, D do
      local ws = {}
      for i = 1, 7 + pick(9) do ws[i] = rand() < pt and topics[k][pick(WT)] or shared[pick(WS)] end
      f:write(table.concat(ws, " "), "\n%\n")
    end
    f:close()
  end
  return {dir = dir, categories = table.concat(cats, ","), words = nwords}
end

-- Size and speed of several models, measured the same way: {params, size_mb, flops (one forward of batch ×
-- T), ms (the lowest of `rounds` medians of m:bench, the models interleaved round by round so that a
-- change of a shared machine's load hits all of them)}. o: batch (8), T (the models' max_T), repeats (10),
-- rounds (3), threads (1: timing on one thread, restored after).
function distill.profile(models, o)
  o = o or {}
  local threads0 = pare.threads()
  pare.set_threads(o.threads or 1)
  local out = {}
  for i, m in ipairs(models) do
    local info = m:info()
    out[i] = {params = info.params, size_mb = info.size_mb, ms = math.huge}
  end
  local ok, err = pcall(function()
    for _ = 1, o.rounds or 3 do
      for i, m in ipairs(models) do
        local b = m:bench{batch = o.batch or 8, T = o.T or 0, repeats = o.repeats or 10}
        out[i].ms, out[i].flops = math.min(out[i].ms, b.median_ms), b.flops
      end
    end
  end)
  pare.set_threads(threads0)
  if not ok then error(err, 2) end
  return out
end

-- The experiments' teacher: the zoo's bert-mini fine-tuned on a text task, kept beside the results so that
-- every distillation experiment with the same settings reuses it. o: max_len (64), steps (150), lr (3e-4),
-- batch (16), seed (1), results_dir ("results"), task_opts (more options of the task, e.g. GLUE's
-- {name = "sst2", dir = "glue_data"}: docs/glue.md; they are part of the cache key). Returns teacher, task,
-- pretrained MLM, tokenizer, the training options used (the students' budget).
function distill.zoo_teacher(task_name, o)
  o = o or {}
  local zoo = require "pare.zoo"
  local max_len, steps, seed = o.max_len or 64, o.steps or 150, o.seed or 1
  local mlm, tok = zoo.pretrained("bert-mini", {any_recipe = true})
  local topts, extra = {}, {}
  for k, v in pairs(o.task_opts or {}) do
    if k == "tokenizer" or k == "max_len" or k == "pad_to" then
      fail("zoo_teacher: task_opts.%s is set by zoo_teacher (use o.max_len)", k)
    end
    topts[k], extra[#extra + 1] = v, k .. "=" .. tostring(v)
  end
  topts.tokenizer, topts.max_len, topts.pad_to = tok, max_len, 0
  local task = pare.task(task_name, topts)
  local train = {steps = steps, batch = o.batch or 16, lr = o.lr or 3e-4, warmup = math.max(1, steps // 10), seed = seed}
  local dir = o.results_dir or "results"
  os.execute(string.format("mkdir -p '%s'", dir))
  -- the task options in the file name: a readable name (GLUE's task) and a hash of them all (a directory path
  -- would not fit), so that another glue_data directory or n_train gets its own teacher
  local tag = task_name
  if #extra > 0 then
    table.sort(extra)
    local h = 2166136261 -- FNV-1a, 32 bits
    for c in table.concat(extra, "\n"):gmatch(".") do h = ((h ~ c:byte()) * 16777619) & 0xffffffff end
    tag = string.format("%s%s-o%08x", task_name, topts.name and ("-" .. tostring(topts.name)) or "", h)
  end
  local path = string.format("%s/distill-teacher-bert-mini-%s-len%d-s%d-lr%g-seed%d.safetensors", dir, tag, max_len,
                             steps, train.lr, seed)
  local ok, teacher = pcall(pare.load, path)
  if ok then
    io.stderr:write("pare.distill: reusing the teacher " .. path .. "\n")
  else
    teacher = zoo.classifier(mlm, {classes = task.classes, seed = seed, max_T = mlm:info().max_T})
    io.stderr:write(string.format("pare.distill: fine-tuning bert-mini on %s (%d steps) as the teacher\n", tag, steps))
    teacher:train(task, train)
    teacher:save(path)
  end
  return teacher, task, mlm, tok, train
end

pare.distill = distill
return distill
