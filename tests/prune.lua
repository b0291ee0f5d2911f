-- prune.lua — pruning from Lua (issue 13): m:prune for each one-shot method, pare.prune_schedule given to
-- m:train for every method and schedule, exact sparsity per layer, fine-tuning recovering accuracy that
-- pruning alone loses, group lasso in the loss, checkpoints of pruned models (identical logits), help and
-- errors. The criteria themselves are checked against reference loops in tests/test_prune.c.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 128, min_length = 9, max_length = 15})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 32, heads = 4, layers = 2, ffn = 64, seed = 2}
m:train(task, {steps = 150, batch = 32, lr = 3e-3, warmup = 10})
local dense = m:evaluate(task).accuracy
tap.ok(dense > 0.8, string.format("the dense model learns the task (accuracy %.3f)", dense))

-- exact sparsity, per layer and global, for the one-shot methods
local function exact(p, s, what)
  local good, worst = true, ""
  for name, l in pairs(p:sparsity().layers) do
    if name ~= "head" and math.abs(l.zeros - math.floor(s * l.total + 0.5)) > 1 then good, worst = false, name end
  end
  tap.ok(good, string.format("%s: every layer has round(%.2f * NK) zeros (to 1 weight)%s", what, s, worst))
end
for _, meth in ipairs{"magnitude", "snip", "taylor"} do
  local p = m:prune{method = meth, sparsity = 0.7, calib = meth ~= "magnitude" and task or nil,
                    calib_samples = meth ~= "magnitude" and 64 or nil}
  exact(p, 0.7, "m:prune " .. meth)
  tap.like(p:info().applied, "prune_" .. meth, meth .. ": recorded in applied")
end
local g = m:prune{sparsity = 0.7, scope = "global"}
tap.is(g:sparsity("enc.*").zeros, math.floor(0.7 * g:sparsity("enc.*").total + 0.5), "global: exactly round(0.7 * total) over the pruned layers")
tap.is(m:sparsity().zeros, 0, "the receiver stays dense")
local nm = m:prune{pattern = "nm", n = 2, m = 4}
tap.is(nm:sparsity("enc.*").sparsity, 0.5, "2:4 prunes exactly half")

-- pruning alone loses accuracy; fine-tuning under the masks gets it back
local p = m:prune{method = "magnitude", sparsity = 0.98, scope = "global"}
local before = p:evaluate(task).accuracy
local ft = p:prune{method = "lock"} -- pattern lock: a copy whose masks are the zeros (the same masks here)
ft:train(task, {steps = 80, batch = 32, lr = 2e-3, warmup = 5})
local after = ft:evaluate(task).accuracy
tap.ok(after > before, string.format("98%% global magnitude: fine-tuned %.3f > pruned only %.3f (dense %.3f)", after, before, dense))
tap.is(ft:sparsity().zeros, p:sparsity().zeros, "fine-tuning keeps every pruned weight at zero")

-- schedules through m:train, every method and schedule
local s = pare.prune_schedule{schedule = "gradual", sparsity = 0.8, initial_sparsity = 0, start = 5, every = 5, prunes = 4}
tap.is(s:target(4), nil, "gradual: no event before start")
tap.is_close(s:target(10), 0.8 * (1 - 0.75 ^ 3), 1e-12, 0, "gradual: the cubic at start + every")
tap.is(s:target(25), 0.8, "gradual: s_f at the last event")
for _, meth in ipairs{"magnitude", "snip", "taylor", "movement", "soft_movement"} do
  for _, sch in ipairs{"oneshot", "iterative", "gradual"} do
    local sc = pare.prune_schedule{method = meth, schedule = sch, sparsity = 0.6, start = 4, every = 4, prunes = 3, lambda = 2,
                                   score_lr = 0.2}
    local q = m:prune{method = "lock"}
    q:train(task, {steps = 20, batch = 16, lr = 1e-3, warmup = 2}, sc)
    local r = sc:report()
    local want = sch == "oneshot" and 1 or sch == "iterative" and 3 or 4
    local sp = q:sparsity("enc.*").sparsity
    if meth == "soft_movement" then
      tap.ok(r.prunes == want and sp > 0 and math.abs(sp - r.last_target) < 1e-9,
             string.format("%s %s: %d events, sparsity %.3f from the threshold", meth, sch, r.prunes, sp))
    else
      tap.ok(r.prunes == want and math.abs(sp - 0.6) < 1e-3,
             string.format("%s %s: %d events, final sparsity %.4f", meth, sch, r.prunes, sp))
    end
  end
end
-- soft movement: a larger lambda prunes more
local function soft(lambda)
  local sc = pare.prune_schedule{method = "soft_movement", schedule = "oneshot", start = 39, lambda = lambda, score_lr = 0.05}
  local q = m:prune{method = "lock"}
  q:train(task, {steps = 40, batch = 16, lr = 1e-3, warmup = 2}, sc)
  return q:sparsity("enc.*").sparsity
end
local s0, s4 = soft(0), soft(4)
tap.ok(s4 > s0, string.format("soft movement: lambda 4 prunes more (%.3f) than lambda 0 (%.3f)", s4, s0))

-- group lasso: a penalty in the loss, with no pruning
local gl = pare.prune_schedule{sparsity = 0, group_lasso = 1e-3, group = "4x1", start = 0, every = 1, prunes = 1}
local q = m:prune{method = "lock"}
local r = q:train(task, {steps = 10, batch = 16, lr = 1e-3, warmup = 2}, gl)
tap.ok(gl:report().penalty > 0 and q:sparsity().zeros == 0,
       string.format("group lasso: penalty %.4f in the loss, nothing pruned", gl:report().penalty))

-- checkpoints
local dir = os.getenv("TMPDIR") or "/tmp"
local path = string.format("%s/pare-prune-%d-%d.safetensors", dir, os.time(), math.random(1 << 30))
ft:save(path)
local back = pare.load(path)
local f = back:fidelity(ft, task)
tap.ok(f.max_abs_err == 0 and back:sparsity().zeros == ft:sparsity().zeros,
       string.format("a pruned, fine-tuned model saves and loads with identical logits (max |a - b| = %g) and masks", f.max_abs_err))
os.remove(path)

-- help and errors
tap.like(pare.schema_help("prune_magnitude"), "sparsity", "pare help prune_magnitude")
tap.like(pare.schema_help("prune_soft_movement"), "lambda", "pare help prune_soft_movement")
tap.like(pare.schema_help("prune_schedule"), "gradual", "pare help prune_schedule")
tap.like(err_of(function() return m:prune{method = "movement"} end), "prune_schedule", "m:prune movement points to the schedule")
tap.like(err_of(function() return m:prune{method = "random"} end), "valid: magnitude", "unknown method lists the valid ones")
tap.like(err_of(function() return m:prune{method = "snip"} end), "calib", "snip without calib data")
tap.like(err_of(function() return m:prune{sparsity = 2} end), "sparsity", "sparsity out of range names the option")
tap.like(err_of(function() return pare.prune_schedule{schedule = "cosine"} end), "oneshot|iterative|gradual", "unknown schedule lists the valid ones")
tap.like(err_of(function() return m:prune{method = "lock"}:train(task, {steps = 5}, pare.prune_schedule{start = 10}) end),
         "steps=5", "a schedule longer than the training run")
tap.done()
