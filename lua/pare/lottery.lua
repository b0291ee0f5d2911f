-- pare.lottery — iterative magnitude pruning with rewinding (Frankle & Carbin 2019, "The Lottery Ticket
-- Hypothesis"; Frankle et al. 2020 for rewinding to an early step k), and its two controls, on the engine's
-- primitives: m:snapshot / pare.snapshot_at(k), m:prune{method = "magnitude"}, m:rewind, m:random_masks.
--
--   local lottery = pare.lottery
--   local m = pare.model{...}                       -- untrained: its weights are θ0
--   local run = lottery.run(m, task, {rate = 0.5, rounds = 4, rewind = 0, train = {steps = 300, lr = 3e-3}})
--   for _, r in ipairs(run.rounds) do print(r.round, r.sparsity, r.accuracy) end
--   local t = run.rounds[3]                         -- sparsity 1 − 0.5³ = 87.5%
--   local reinit = lottery.reinit(t.mask, fresh, task, {steps = 300})    -- same mask, θ0 of another model
--   local rmask = lottery.random_mask(t.mask, run.snap, task, {steps = 300}, 7)  -- same counts, random places
--
-- run(m, task, opts) trains m's copy dense (round 0), then for round r = 1..rounds: prunes the trained
-- model to 1 − (1 − rate)^r with magnitude (already pruned weights count lowest, so masks accumulate and each
-- round removes `rate` of what is left), rewinds the weights to θ_k under the new masks, retrains with the
-- same options. m is not changed. opts: rate (0.2), rounds (3), scope ("layer" | "global"), layers ("*"),
-- exclude ("head"), rewind (k, 0: to θ0), train (m:train options; steps must be >= rewind), on_round
-- (function(r) called with each round's record). Returns {snap = θ_k, rounds = {{round, target, sparsity,
-- accuracy, mask = the pruned model before rewinding (trained weights, the round's masks), model = the
-- retrained ticket, snap = θ_k}, ...}}; round 0 is the dense run (mask = nil).
-- Learning rate and optimizer: each retraining is a fresh m:train (its warm-up and decay run again, AdamW
-- restarts at zero: pare_rewind resets it), as the papers' rewinding of weights, not of the schedule.
local lottery = {}

local function prune_opts(o, target)
  return {method = "magnitude", sparsity = target, scope = o.scope or "layer", layers = o.layers, exclude = o.exclude}
end

function lottery.target(rate, r) return 1 - (1 - rate) ^ r end

function lottery.run(m, task, o)
  o = o or {}
  local rate, rounds, k = o.rate or 0.2, o.rounds or 3, o.rewind or 0
  assert(type(o.train) == "table", "lottery.run: opts.train (the m:train options) is required")
  assert(rate > 0 and rate < 1, "lottery.run: rate must be in (0, 1) (the share of remaining weights pruned per round)")
  assert(math.type(rounds) == "integer" and rounds >= 0, "lottery.run: rounds must be an integer >= 0")
  local snap = pare.snapshot_at(k)
  local w = m:clone()
  w:train(task, o.train, snap)
  local out = {snap = snap, rounds = {}}
  local function record(r)
    out.rounds[#out.rounds + 1] = r
    if o.on_round then o.on_round(r) end
  end
  record{snap = snap, round = 0, target = 0, sparsity = w:sparsity("enc.*").sparsity, accuracy = w:evaluate(task).accuracy, model = w}
  for r = 1, rounds do
    local target = lottery.target(rate, r)
    local mask = w:prune(prune_opts(o, target))
    w = mask:clone():rewind(snap)
    w:train(task, o.train)
    record{snap = snap, round = r, target = target, sparsity = w:sparsity("enc.*").sparsity, accuracy = w:evaluate(task).accuracy,
           mask = mask, model = w}
  end
  return out
end

-- The random-reinitialization control: the ticket's masks on the weights of `fresh` (a model of the same
-- configuration, another seed, untrained), trained with topts. Returns the trained model.
function lottery.reinit(mask, fresh, task, topts)
  local q = mask:clone():rewind(fresh:snapshot())
  q:train(task, topts)
  return q
end

-- The random-mask control: as many zeros per layer as the ticket, at random places, on the weights of snap
-- (the ticket's own θ_k), trained with topts. Returns the trained model.
function lottery.random_mask(mask, snap, task, topts, seed)
  local q = mask:random_masks(mask, seed or 1):rewind(snap)
  q:train(task, topts)
  return q
end

return lottery
