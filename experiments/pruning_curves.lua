-- pruning_curves.lua — accuracy against sparsity for every unstructured pruning method and schedule (issue 13;
-- the seeds' "accuracy vs sparsity" plots): magnitude (per layer and global), SNIP, first-order Taylor,
-- movement and soft movement, each one-shot, iterative and gradual (Zhu & Gupta's cubic), all with the same
-- fine-tuning budget under the masks; one-shot without fine-tuning as the floor. SparseGPT (second-order,
-- OBS weight updates from the calibration Hessian) is a one-shot pass, not a criterion of the schedules: its
-- rows are schedule=none (the pass alone) and schedule=oneshot (the pass, then the same fine-tuning budget
-- under its masks); it has no iterative or gradual rows. Every row also has the
-- measure columns (latency, size as stored) and sparse_mb, what the kept weights plus a 1-bit mask per
-- weight would take (an estimate: a masked model runs the dense f32 kernel, so its latency is the dense
-- model's until a sparse format stores it).
--
--   pare run experiments/pruning_curves.lua [sparsities=0.5,0.8,0.9] [ft_steps=60] [lr=1e-3] [repeats=5]
--        [methods=magnitude,magnitude_global,snip,taylor,movement,soft_movement,sparsegpt]
--        [schedules=oneshot,iterative,gradual]
--        [lambdas=4,5,6,7,8] [model=bert-mini|<hf dir>] [task=<classification task>] [d=64] [base_steps=1500] [fresh=1]
--        [zoo=bert-mini [task=fortune_topic] [zoo_steps=200]]
-- model= runs it on a zoo model or a Hugging Face directory (pare.zoo.subject, as smoothquant_alpha.lua);
-- zoo= on the zoo BERT fine-tuned on a text classification task (zoo.finetune's recipe: a fresh pooler and
-- head, zoo_steps steps; the classifier is cached as results/models/<zoo>-<task>-ft<steps>.safetensors and
-- the results go to pruning_curves-<zoo>-<task>.h5);
-- the default is a small ListOps encoder trained here once (cached under results/models/).
-- Soft movement has no sparsity knob: its rows sweep lambda (one value per requested sparsity, in order) and
-- record the sparsity reached; `target` holds the requested sparsity for every other method.
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args

local function list(s, default, num)
  if not s then return default end
  local out = {}
  for w in tostring(s):gmatch("[^,]+") do out[#out + 1] = num and tonumber(w) or w end
  return out
end
local sparsities = list(a.sparsities, {0.5, 0.8, 0.9}, true)
local methods = list(a.methods, {"magnitude", "magnitude_global", "snip", "taylor", "movement", "soft_movement", "sparsegpt"})
local schedules = list(a.schedules, {"oneshot", "iterative", "gradual"})
local ft_steps, lr = tonumber(a.ft_steps) or 60, tonumber(a.lr) or 1e-3
local repeats = tonumber(a.repeats) or 5
-- soft movement's lambda for the i-th sparsity (larger prunes more; see docs/pruning.md)
local lambdas = list(a.lambdas, {4, 5, 6, 7, 8}, true)

local exp, base, task
if a.zoo then
  -- the zoo BERT fine-tuned once on a text task (the pretrained body as cached: no rebuild for a recipe change)
  local tname, zsteps = a.task or "fortune_topic", tonumber(a.zoo_steps) or 200
  exp = zoo.experiment("pruning_curves", {model = a.zoo .. "-" .. tname, results_dir = a.results_dir,
                                          plots_dir = a.plots_dir, fresh = a.fresh})
  local body, tok = zoo.pretrained(a.zoo, {any_recipe = true})
  local fo = zoo.recipe_of(a.zoo).finetune or {}
  local path = string.format("%s/%s-%s-ft%d.safetensors", os.getenv("PARE_ZOO_DIR") or "results/models", a.zoo, tname, zsteps)
  local f = io.open(path, "rb")
  if f then
    f:close()
    base = pare.load(path)
    task = pare.task(tname, {tokenizer = tok, max_len = math.min(fo.max_len or 128, body:info().max_T), pad_to = 0})
  else
    local r = zoo.finetune({body, tok}, tname, {steps = zsteps, batch = fo.batch, lr = fo.lr, warmup = fo.warmup,
                                                max_len = fo.max_len})
    base, task = r.model, r.task
    base:save(path)
  end
else
  exp, base, task = zoo.experiment("pruning_curves", a, function()
    return zoo.encoder("listops", {d = tonumber(a.d) or 64, layers = 2, steps = tonumber(a.base_steps) or 1500,
                                   task = {seed = 1, n_train = 4000, n_test = 500, max_depth = 3, max_args = 4,
                                           max_length = 32}})
  end)
end
local big = a.model or a.zoo
local calib_samples = big and 32 or 128
local bench = {batch = 8, repeats = repeats}
local ft = {steps = ft_steps, batch = big and 8 or 32, lr = lr, warmup = math.max(1, ft_steps // 10)}

-- what the kept weights + a 1-bit mask would take, in MB (the pruned layers only; the rest as stored)
local function sparse_mb(m, size_mb)
  local bytes = size_mb * 1e6
  for _, l in pairs(m:sparsity().layers) do
    if l.zeros > 0 then bytes = bytes - 4 * l.zeros + l.total / 8 end
  end
  return bytes / 1e6
end

exp:table("curves", measure.decl({"method", "schedule", "target", "sparsity", "lambda", "finetuned", "sparse_mb", "curve"},
                                 {sparse_mb = "MB"},
                                 {sparsity = "sparsity reached (pruned layers)", target = "sparsity requested",
                                  sparse_mb = "kept weights + 1-bit mask (estimate)"}))

local dense_acc = base:evaluate(task).accuracy
io.stderr:write(string.format("pruning_curves: dense accuracy %.4f\n", dense_acc))

local all_schedules = {}
for _, sch in ipairs(schedules) do all_schedules[#all_schedules + 1] = sch end
all_schedules[#all_schedules + 1] = "none" -- one-shot without fine-tuning (the passes; not for movement)
local index_of = {}
for i, s in ipairs(sparsities) do index_of[s] = i end

pare.sweep(exp, "curves", {{"method", methods}, {"schedule", all_schedules}, {"target", sparsities}}, function(p)
  local meth, sch, s = p.method, p.schedule, p.target
  local crit = meth == "magnitude_global" and "magnitude" or meth
  local scope = meth == "magnitude_global" and "global" or "layer"
  if sch == "none" and (crit == "movement" or crit == "soft_movement") then return nil end -- needs fine-tuning
  if crit == "sparsegpt" and sch ~= "none" and sch ~= "oneshot" then return nil end -- a one-shot pass only
  local m, lambda = nil, 0 / 0
  if crit == "sparsegpt" then
    m = base:prune{method = "sparsegpt", sparsity = s, calib = task, calib_samples = calib_samples}
    if sch == "oneshot" then m:train(task, ft) end -- fine-tuning under its masks
  elseif sch == "none" then
    m = base:prune{method = crit, sparsity = s, scope = scope, calib = crit ~= "magnitude" and task or nil,
                   calib_samples = crit ~= "magnitude" and calib_samples or nil}
  else
    -- magnitude may prune at step 0; the gradient criteria and movement first gather a quarter of the run's
    -- gradients. The events end by three quarters of the run, leaving the rest to fine-tune at the final mask.
    local start = crit == "magnitude" and 0 or ft_steps // 4
    local span = math.max(1, (3 * ft_steps) // 4 - start)
    local o = {method = crit, schedule = sch, sparsity = s, scope = scope, start = start}
    if sch == "iterative" then
      o.prunes = 4
      o.every = math.max(1, span // (o.prunes - 1))
    elseif sch == "gradual" then
      o.prunes = 6
      o.every = math.max(1, span // o.prunes)
    end
    if crit == "soft_movement" then
      -- scores move by about score_lr per step in rms units: 1/ft_steps makes lambda mean the same for any run length
      lambda = lambdas[index_of[s]] or lambdas[#lambdas]
      o.sparsity, o.scope, o.lambda, o.score_lr = nil, nil, lambda, 1 / ft_steps
    end
    m = base:prune{method = "lock"} -- a copy (its masks are the model's zeros: none)
    m:train(task, ft, pare.prune_schedule(o))
  end
  local r = measure.row(m, base, task, {bench = bench})
  r.lambda = lambda
  r.sparsity = m:sparsity("enc.*").sparsity
  r.finetuned = sch == "none" and 0 or 1
  r.sparse_mb = sparse_mb(m, r.size_mb)
  r.curve = meth .. "/" .. sch
  return r
end)

pare.print_table(exp, "curves", {columns = {"method", "schedule", "target", "sparsity", "accuracy", "agreement",
                                            "latency_ms", "size_mb", "sparse_mb"}})
-- one plot per schedule, one curve per method (tables by_<schedule>, derived from curves; a rerun adds only
-- the rows they lack)
local present = {}
for _, r in ipairs(exp:rows("curves")) do
  local t = "by_" .. r.schedule
  present[r.schedule] = true
  if not exp:has(t, {method = r.method, target = r.target}) then
    exp:record(t, {method = r.method, target = r.target, sparsity = r.sparsity, accuracy = r.accuracy,
                   latency_ms = r.latency_ms, sparse_mb = r.sparse_mb})
  end
end
local what = {oneshot = "one-shot, then fine-tuning", iterative = "iterative (4 rounds)", gradual = "gradual (cubic, 6 steps)",
              none = "one-shot, no fine-tuning"}
for _, sch in ipairs(all_schedules) do
  if present[sch] then
    exp:plot{table = "by_" .. sch, name = "accuracy-" .. sch, x = "sparsity", y = "accuracy", by = "method",
             title = string.format("Pruning, %s: accuracy vs sparsity (dense %.3f, %d steps)",
                                   what[sch] or sch, dense_acc, ft_steps),
             xlabel = "sparsity of the pruned layers", ylabel = "test accuracy"}
  end
end
if present.gradual then
  exp:plot{table = "by_gradual", name = "latency", x = "sparsity", y = "latency_ms", by = "method",
           title = "Pruning: forward latency (masked layers run the dense kernel)", xlabel = "sparsity"}
end
exp:close()
