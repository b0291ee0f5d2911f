-- dp.lua — run by tests/t_mpi.sh, once alone and once under mpirun -n 2: trains an encoder (recall,
-- one label per sequence) and a decoder (copy_lm, a target per token, so the ranks' shares of the loss
-- differ) for a few steps with the same global batch, then writes (rank 0 only) the training losses and
-- the logits of a fixed batch, one number a line, to out=FILE. The shell test compares the two files.
local pare = require "pare"
pare.set_threads(1)
local out = assert(pare.args.out, "give out=FILE")
local steps = pare.args.steps or 20
local lines = {}
local function put(v) lines[#lines + 1] = string.format("%.9g", v) end

local task = pare.task("recall", {seed = 1})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 2, layers = 2, seed = 3}
local r = m:train(task, {steps = steps, batch = 16, lr = 2e-3, warmup = 5, seed = 7})
put(r.loss)
put(r.ranks)
local toks = {}
for b = 1, 4 do
  local row = {}
  for t = 1, task.T do row[t] = (b * 7 + t * 3) % task.vocab end
  toks[b] = row
end
for _, v in ipairs(m:forward{tokens = toks}.logits.values) do put(v) end

local lm = pare.task("copy_lm", {seed = 1})
local d = pare.model{kind = "decoder", vocab = lm.vocab, max_T = lm.T, d = 32, heads = 2, layers = 1, seed = 4}
local rd = d:train(lm, {steps = steps, batch = 12, lr = 3e-3, warmup = 5, seed = 9})
put(rd.loss)
local dt = {}
for b = 1, 2 do
  local row = {}
  for t = 1, lm.T do row[t] = (b * 5 + t) % lm.vocab end
  dt[b] = row
end
for _, v in ipairs(d:forward{tokens = dt}.logits.values) do put(v) end

-- a checkpoint is written once: rank 0 saves, the others skip (each rank names its own path here, so the
-- shell test can see which ranks wrote)
if pare.args.ckpt then m:save(pare.args.ckpt .. "." .. pare.mpi.rank()) end

if pare.mpi.rank() == 0 then
  local f = assert(io.open(out, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end
