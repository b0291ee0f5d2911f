-- lottery.lua — lottery tickets from Lua (issue 13): m:snapshot, pare.snapshot_at(k) given to m:train,
-- m:rewind (in place, masks kept or removed), m:random_masks, m:clone, and pare.lottery's loop and controls:
-- masks accumulate to 1 − (1 − p)^k, each round's ticket is its θ_k under the masks, the reinit control keeps
-- the masks on fresh weights, the random-mask control keeps the per-layer counts; errors. The primitives are
-- checked bit for bit in tests/test_lottery.c.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(1)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 256, n_test = 64, min_length = 5, max_length = 9})
local cfg = {vocab = task.vocab, max_T = task.T, classes = 2, d = 16, heads = 2, layers = 1, ffn = 32, seed = 2}
local m = pare.model(cfg)
local topts = {steps = 12, batch = 16, lr = 3e-3, warmup = 2}

-- a snapshot, training, rewinding
local s0 = m:snapshot()
tap.ok(s0:taken() and s0:step() == -1 and s0:params() > 4, string.format("m:snapshot(): %d parameters, %d floats", s0:params(), s0:numel()))
local w0 = s0:get("enc.0.ffn.up.weight")
local t = m:clone()
local at = pare.snapshot_at(4)
tap.ok(not at:taken(), "snapshot_at(4) is not taken before training")
t:train(task, topts, at)
tap.ok(at:taken() and at:step() == 4, "snapshot_at(4) taken during m:train")
local w4 = at:get("enc.0.ffn.up.weight")
local differ = false
for i = 1, #w0 do if w0[i] ~= w4[i] then differ = true end end
tap.ok(differ and #w4 == #w0, "θ4 differs from θ0")
tap.is(m:snapshot():get("enc.0.ffn.up.weight")[7], w0[7], "m:clone() + training left m unchanged")

local p = t:prune{sparsity = 0.5}
local z = p:sparsity("enc.*").zeros
local r = p:clone():rewind(s0)
local back = r:snapshot():get("enc.0.ffn.up.weight")
local same = true
for i = 1, #w0 do if back[i] ~= w0[i] then same = false end end
tap.ok(same, "m:rewind(s0): the masters are θ0 again, bit for bit")
tap.is(r:sparsity("enc.*").zeros, z, "rewind keeps the masks by default")
tap.is(p:clone():rewind(at, {keep_masks = false}):sparsity("enc.*").zeros, 0, "keep_masks = false removes them")
tap.ok(r:fidelity(p:clone():rewind(s0), task).max_abs_err == 0, "two rewinds of one ticket to one snapshot give identical logits")

-- controls
local rm = p:random_masks(p, 5)
local lay_ok = true
for name, l in pairs(p:sparsity().layers) do
  if rm:sparsity().layers[name].zeros ~= l.zeros then lay_ok = false end
end
tap.ok(lay_ok, "m:random_masks(like): every layer has like's number of zeros")
tap.ok(rm:fidelity(p, task).max_abs_err > 0, "at other places (the logits differ)")

-- the loop: masks accumulate
local rounds = {}
local run = pare.lottery.run(m, task, {rate = 0.4, rounds = 3, rewind = 2, train = topts,
                                       on_round = function(x) rounds[#rounds + 1] = x.round end})
tap.is(#run.rounds, 4, "lottery.run: round 0 (dense) and 3 pruning rounds")
tap.is(table.concat(rounds, ","), "0,1,2,3", "on_round called for each")
local acc_ok = true
for k, x in ipairs(run.rounds) do
  local want = 1 - 0.6 ^ (k - 1)
  local sp = x.model:sparsity("enc.*")
  for name, l in pairs(x.model:sparsity("enc.*").layers) do
    if math.abs(l.zeros - want * l.total) > 1 then acc_ok = false end
  end
  if math.abs(x.target - want) > 1e-12 or math.abs(sp.sparsity - x.sparsity) > 1e-12 then acc_ok = false end
end
tap.ok(acc_ok, "round k has per-layer sparsity 1 − 0.6^k (to one weight): " ..
       string.format("%.3f %.3f %.3f %.3f", run.rounds[1].sparsity, run.rounds[2].sparsity, run.rounds[3].sparsity, run.rounds[4].sparsity))
tap.ok(run.snap:step() == 2 and run.snap:taken(), "late rewinding: the snapshot is θ2")
local x3 = run.rounds[4]
local ticket0 = x3.mask:clone():rewind(run.snap)
local th = ticket0:snapshot():get("enc.0.ffn.up.weight")
local w2 = run.snap:get("enc.0.ffn.up.weight")
same = true
for i = 1, #w2 do if th[i] ~= w2[i] then same = false end end
tap.ok(same, "the round's ticket before retraining is θ2 under its masks")

local fresh = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 16, heads = 2, layers = 1, ffn = 32, seed = 77}
local ri = pare.lottery.reinit(x3.mask, fresh, task, topts)
tap.is(ri:sparsity("enc.*").zeros, x3.mask:sparsity("enc.*").zeros, "reinit control: the ticket's masks")
local rmask = pare.lottery.random_mask(x3.mask, run.snap, task, topts, 3)
tap.is(rmask:sparsity("enc.*").zeros, x3.mask:sparsity("enc.*").zeros, "random-mask control: the ticket's counts")
tap.ok(ri:evaluate(task).accuracy >= 0 and rmask:evaluate(task).accuracy >= 0, "both controls train and evaluate")

-- errors
tap.like(err_of(function() return m:clone():rewind(pare.snapshot_at(3)) end), "not taken yet", "rewinding to a snapshot_at that was not taken")
tap.like(err_of(function() return m:clone():rewind(s0, {keep_mask = true}) end), "keep_masks", "an unknown rewind option lists the valid ones")
tap.like(err_of(function() return m:clone():train(task, {steps = 3}, pare.snapshot_at(5)) end), "steps=3", "snapshot_at past the run")
tap.like(err_of(function() return m:clone():train(task, {steps = 3}, s0) end), "snapshot_at", "m:snapshot() given to train")
local other = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 8, heads = 2, layers = 1, ffn = 32, seed = 2}
tap.like(err_of(function() return other:rewind(s0) end), "in the snapshot", "rewinding another configuration names the parameter")
tap.like(err_of(function() return pare.snapshot_at(-1) end), ">= 0", "a negative step")
tap.done()
