-- train_pipeline.lua — m:train's checkpoint, pipeline and micro_batches options in one process (no MPI: the
-- pipeline is one stage, i.e. gradient accumulation over the micro-batches): checkpointing trains bit for bit
-- as without it with a smaller planned memory; GPipe and 1F1B over 4 micro-batches train as one batch within
-- float reassociation (an LM too, whose micro-batches hold different numbers of target tokens); misuse is a
-- clear error. The 2-rank pipeline is tests/t_mpi_pp.sh.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(1)

local task = pare.task("recall", {seed = 1})
local toks = {}
for b = 1, 4 do
  local row = {}
  for t = 1, task.T do row[t] = (b * 7 + t * 3) % task.vocab end
  toks[b] = row
end
local function run(opts, dropout)
  local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 2, layers = 3, seed = 3,
                       dropout = dropout or 0}
  opts.steps, opts.batch, opts.lr, opts.warmup, opts.seed = 8, 16, 3e-3, 2, 7
  local r = m:train(task, opts)
  return r, m:forward{tokens = toks}.logits.values
end
local function maxdiff(x, y)
  local d = 0
  for i = 1, #x do d = math.max(d, math.abs(x[i] - y[i])) end
  return d
end

local r0, l0 = run({}, 0.1)
local r1, l1 = run({checkpoint = true}, 0.1)
tap.is(r1.loss, r0.loss, "checkpoint=true: the training loss is bit for bit the plain run's (dropout 0.1)")
tap.ok(maxdiff(l0, l1) == 0, "checkpoint=true: the trained weights give bit-identical logits")
tap.ok(r1.planned_bytes < r0.planned_bytes and r1.recomputed_nodes > 0,
       string.format("checkpoint=true plans %d bytes instead of %d and recomputes %d nodes a step", r1.planned_bytes,
                     r0.planned_bytes, r1.recomputed_nodes))

-- with a teacher: the distillation's loss nodes ("distill.<i>.*", a block of their own) and a projection
local teacher = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 2, layers = 2, seed = 8}
local function drun(ck)
  local s = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 16, heads = 2, layers = 2, seed = 2,
                       dropout = 0.1}
  local r = s:train(task, {steps = 6, batch = 16, lr = 3e-3, warmup = 2, seed = 5, checkpoint = ck},
                    {teacher = teacher, hard_weight = 0.5, losses = {{loss = "kl_div", student = "head", temperature = 2},
                     {loss = "mse", student = "enc.0.add2", teacher = "enc.1.add2", project = true, weight = 0.1}}})
  return r, s:forward{tokens = toks}.logits.values
end
local dr0, dl0 = drun(false)
local dr1, dl1 = drun(true)
tap.ok(dr0.loss == dr1.loss and maxdiff(dl0, dl1) == 0 and dr1.recomputed_nodes > 0,
       string.format("checkpoint=true under distillation (KL on the head, projected MSE of hidden states): bit for bit "
                     .. "(loss %.9g vs %.9g)", dr1.loss, dr0.loss))

local p0, q0 = run({}, 0)
for _, s in ipairs{"gpipe", "1f1b"} do
  local r, l = run({pipeline = s, micro_batches = 4}, 0)
  tap.ok(math.abs(r.loss - p0.loss) < 1e-5 and maxdiff(l, q0) < 1e-4,
         string.format("pipeline=%s, 4 micro-batches, one process: loss %.7f vs %.7f, logits max |diff| %.2g", s, r.loss,
                       p0.loss, maxdiff(l, q0)))
  tap.ok(r.pipeline and r.pipeline.stages == 1 and r.pipeline.schedule == s and r.pipeline.bubble_theory == 0,
         "pipeline=" .. s .. ": r.pipeline reports one stage and its schedule")
end

local lm = pare.task("copy_lm", {seed = 1})
local function lmrun(opts)
  local d = pare.model{kind = "decoder", vocab = lm.vocab, max_T = lm.T, d = 32, heads = 2, layers = 2, seed = 4, dropout = 0}
  opts.steps, opts.batch, opts.lr, opts.warmup, opts.seed = 8, 12, 3e-3, 2, 9
  return d:train(lm, opts).loss
end
local a, b = lmrun{}, lmrun{pipeline = "1f1b", micro_batches = 3}
tap.ok(math.abs(a - b) < 1e-5, string.format("decoder, 3 micro-batches of different target counts: loss %.7f vs %.7f", b, a))

local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 16, heads = 2, layers = 1, seed = 3}
local e = tap.error_of(function() m:train(task, {steps = 1, batch = 10, pipeline = "gpipe", micro_batches = 4}) end)
tap.ok(e and e:find("batch=10 is not a multiple of micro_batches=4", 1, true), "batch not a multiple: " .. tostring(e))
e = tap.error_of(function() m:train(task, {steps = 1, batch = 8, micro_batches = 4}) end)
tap.ok(e and e:find("needs a pipeline", 1, true), "micro_batches without a pipeline: " .. tostring(e))
e = tap.error_of(function() m:train(task, {steps = 1, batch = 8, pipeline = "gpipe", eval_every = 1}) end)
tap.ok(e and e:find("does not evaluate during the run", 1, true), "evaluation during a pipeline run: " .. tostring(e))
tap.done()
