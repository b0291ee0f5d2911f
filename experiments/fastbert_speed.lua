-- fastbert_speed.lua — FastBERT (Liu et al. 2020, seed 003): accuracy against the measured speed-up of
-- early-exit inference as the `speed` threshold sweeps 0..1. A trained classifier gets a student
-- classifier after every encoder layer (m:add_exits), the students are self-distilled against the frozen
-- final classifier on the training split (m:train_exits; labels unused), then every test example leaves
-- at the first layer whose student's normalised entropy H(p)/log C is at most `speed` (m:early_exit: the
-- rows still running go on, the batch shrinks). The speed-up is the full model's wall time on the same
-- examples divided by the early-exit run's, both measured in this run, interleaved, median of `repeats`;
-- (speedup_min: of the fastest runs, less disturbed by a shared machine's load); beside it the layer
-- speed-up L / mean exit layer (what the FLOPs would give).
--
--   pare run experiments/fastbert_speed.lua [model=bert-mini|majority] [task=fortune_topic] [max_len=64]
--        [steps=200] [exit_steps=300] [hidden=64] [kl=student_teacher|teacher_student] [n=256] [batch=32] [repeats=3]
--        [threads=1] [speeds=0,0.1,...,1] [seed=1]
--
-- model=bert-mini (default): the zoo BERT (docs/zoo.md: 4 layers × 256, post-LayerNorm, tanh pooler)
-- fine-tuned on task (fortune_topic: a fortune's category, 5 classes); the zoo's cache directory is
-- results/models or $PARE_ZOO_DIR. model=majority: a small encoder (4 layers × 64) trained from scratch
-- on the synthetic majority task (seconds; for a quick look). The trained model with its exits is kept
-- beside the results, so a rerun with the same settings reuses it and resumes the sweep.
local pare = require "pare"
local zoo = require "pare.zoo"
local a = pare.args

local function list(s, default)
  if not s then return default end
  local out = {}
  for w in tostring(s):gmatch("[^,]+") do out[#out + 1] = tonumber(w) end
  return out
end
local model_name, task_name = a.model or "bert-mini", a.task or "fortune_topic"
local max_len, steps, exit_steps = tonumber(a.max_len) or 64, tonumber(a.steps) or 200, tonumber(a.exit_steps) or 300
local hidden, n, batch = tonumber(a.hidden) or 64, tonumber(a.n) or 256, tonumber(a.batch) or 32
local repeats, seed = tonumber(a.repeats) or 3, tonumber(a.seed) or 1
local threads = tonumber(a.threads) or 1 -- timing on one thread: a shared machine's load disturbs it least
local kl = a.kl or "student_teacher" -- the students' divergence: KL(p_s ‖ p_t) (FastBERT's) or KL(p_t ‖ p_s)
local speeds = list(a.speeds, {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1})

-- the paper's direction keeps the table's name; the other gets a file of its own (a rerun resumes its own rows)
local exp_name = "fastbert_speed-" .. model_name .. (kl == "student_teacher" and "" or "-" .. kl)
local exp = pare.experiment(exp_name, {seed = seed, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
exp:table("speed", {"speed", "accuracy", "speedup", "layer_speedup", "mean_layer",
                    units = {full_ms = "ms", exit_ms = "ms"},
                    labels = {speedup = "measured speed-up (full model time / early-exit time)",
                              accuracy = "test accuracy", layer_speedup = "L / mean exit layer"}})

-- the classifier and its exits, trained once and kept (a rerun with the same settings reuses them)
local key = string.format("%s-%s-len%d-s%d-seed%d", model_name, task_name, max_len, steps, seed)
local dir = a.results_dir or "results"
os.execute(string.format("mkdir -p '%s'", dir))
local base_path = dir .. "/fastbert-base-" .. key .. ".safetensors"
local fb_path = string.format("%s/fastbert-exits-%s-e%d-h%d-%s.safetensors", dir, key, exit_steps, hidden, kl)
local task, base, fb, mlm, tok
if model_name == "majority" then
  task = pare.task("majority", {seed = seed, n_train = 4000, n_test = 1000, max_length = 32})
elseif model_name == "bert-mini" then
  mlm, tok = zoo.pretrained("bert-mini", {any_recipe = true})
  task = pare.task(task_name, {tokenizer = tok, max_len = max_len, pad_to = 0})
else
  error("fastbert_speed: model=" .. model_name .. " (valid: bert-mini, majority)")
end
local ok1, b = pcall(pare.load, base_path)
if ok1 then
  base = b
  io.stderr:write("fastbert_speed: reusing " .. base_path .. "\n")
else
  if model_name == "majority" then
    base = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 4, ffn = 256,
                      seed = seed}
    base:train(task, {steps = steps, batch = 32, lr = 2e-3, warmup = 30, seed = seed})
  else
    local r = zoo.finetune({mlm, tok}, task_name, {steps = steps, batch = 16, lr = 3e-4, warmup = 20, seed = seed,
                                                    max_len = max_len, task = {max_len = max_len, pad_to = 0}})
    base = r.model
  end
  base:save(base_path)
end
local ok2, f = pcall(pare.load, fb_path)
if ok2 then
  fb = f
  io.stderr:write("fastbert_speed: reusing " .. fb_path .. "\n")
else
  fb = base:add_exits{hidden = hidden, seed = seed}
  local tr = fb:train_exits(task, {steps = exit_steps, batch = 16, lr = 3e-3, warmup = 20, seed = seed}, {kl = kl})
  io.stderr:write(string.format("fastbert_speed: exits self-distilled (kl = %s) in %.1f s, %.1f ms a step (KL loss %.4f)\n",
                                kl, tr.seconds, tr.seconds / tr.steps * 1e3, tr.loss))
  fb:save(fb_path)
end
local full_acc = base:early_exit(task, {n = n, batch = batch}).accuracy -- on the swept examples
io.stderr:write(string.format("fastbert_speed: %s on %s, %d test examples, full model accuracy %.4f\n", model_name,
                              model_name == "majority" and "majority" or task_name,
                              n > 0 and n or task.n_test or 0, full_acc))

local median = pare.stats.median
pare.set_threads(threads) -- training above ran on every core; the timed runs on `threads`
pare.sweep(exp, "speed", {speed = speeds}, function(p)
  local full_t, exit_t, r = {}, {}, nil
  local opts = {speed = p.speed, n = n, batch = batch}
  fb:early_exit(task, opts) -- warm-up of both
  base:early_exit(task, {n = n, batch = batch})
  for k = 1, repeats do -- interleaved, so a change of load hits both
    full_t[k] = base:early_exit(task, {n = n, batch = batch}).seconds
    r = fb:early_exit(task, opts)
    exit_t[k] = r.seconds
  end
  local counts = {}
  for l = 1, r.L do counts[l] = 0 end
  for _, l in ipairs(r.layer) do counts[l] = counts[l] + 1 end
  local shares = {}
  for l = 1, r.L do shares[l] = string.format("%.3f", counts[l] / r.n) end
  local fm, em = median(full_t), median(exit_t)
  return {accuracy = r.accuracy, full_accuracy = full_acc, speedup = fm / em,
          speedup_min = math.min(table.unpack(full_t)) / math.min(table.unpack(exit_t)), layer_speedup = r.L / r.mean_layer,
          mean_layer = r.mean_layer, full_ms = fm * 1e3, exit_ms = em * 1e3, n = r.n, exits = table.concat(shares, "/")}
end)

pare.print_table(exp, "speed", {columns = {"speed", "accuracy", "full_accuracy", "speedup", "speedup_min", "layer_speedup",
                                           "mean_layer", "full_ms", "exit_ms", "exits"}})
exp:plot{table = "speed", x = "speedup", y = "accuracy", name = "accuracy", title = "FastBERT: accuracy vs measured speed-up"}
exp:plot{table = "speed", x = "speed", y = {"speedup", "layer_speedup"}, name = "speedup", title = "FastBERT: speed-up vs speed"}
