-- tp_check.lua — run by tests/t_mpi_tp.sh, once alone (mode=full: the replicated models, one process) and once
-- under mpirun -n 2 (mode=tp: each rank's shard, m:tensor_parallel). For an encoder (pre-norm), a post-norm
-- encoder with a pooler and dropout 0.1 (every rank draws the one process's masks) and a causal decoder it writes (rank 0) to out=FILE, one "tag value" a line:
--   <model>.logits     the logits of a fixed batch
--   <model>.loss, <model>.grad.<param>   the loss and every parameter's gradient on 8 training examples
--                      (whole: gathered from the shards in mode=tp)
--   <model>.trained.loss, <model>.trained.logits, <model>.trained.<param>   after `steps` AdamW steps (clipping
--                      on: the global norm over the shards), the final loss, logits and every weight (gathered
--                      into a replicated model with m:tp_gather in mode=tp)
-- The shell test compares the two files tensor by tensor.
local pare = require "pare"
pare.set_threads(1)
local out = assert(pare.args.out, "give out=FILE")
local mode = pare.args.mode or "full"
local steps = tonumber(pare.args.steps or 6)
local lines = {}
local function put(tag, v) lines[#lines + 1] = string.format("%s %.9g", tag, v) end
local function put_all(tag, vs) for _, v in ipairs(vs) do put(tag, v) end end
local function sorted_keys(t)
  local k = {}
  for n in pairs(t) do k[#k + 1] = n end
  table.sort(k)
  return k
end

local function check(name, task, opts, batch)
  local m = pare.model(opts)
  local run = m
  if mode == "tp" then
    run = m:tensor_parallel()
    local info = run:tp_info()
    assert(info.ranks == pare.mpi.size() and info.rank == pare.mpi.rank(), "tp_info ranks/rank")
  end
  local toks = {}
  for b = 1, 3 do
    local row = {}
    for t = 1, task.T do row[t] = (b * 7 + t * 3) % task.vocab end
    toks[b] = row
  end
  put_all(name .. ".logits", run:forward{tokens = toks}.logits.values)
  local g = run:gradients(task, {first = 1, n = 8})
  put(name .. ".loss", g.loss)
  for _, p in ipairs(sorted_keys(g.grads)) do put_all(name .. ".grad." .. p, g.grads[p]) end
  local r = run:train(task, {steps = steps, batch = batch, lr = 3e-3, warmup = 2, seed = 7, clip = 0.5})
  put(name .. ".trained.loss", r.loss)
  put_all(name .. ".trained.logits", run:forward{tokens = toks}.logits.values)
  local whole = m
  if mode == "tp" then whole = pare.model(opts):tp_gather(run) end
  local w = whole:tp_weights() -- every weight, whole (a replicated model's own)
  for _, p in pairs(run:tp_weights()) do assert(p) end -- a shard's, gathered: the same (checked below)
  for _, p in ipairs(sorted_keys(w)) do put_all(name .. ".trained." .. p, w[p]) end
end

local rec = pare.task("recall", {seed = 1})
check("enc", rec, {vocab = rec.vocab, max_T = rec.T, classes = rec.classes, d = 32, heads = 4, layers = 2, seed = 3}, 16)
check("post", rec, {vocab = rec.vocab, max_T = rec.T, classes = rec.classes, d = 32, heads = 2, layers = 1, ffn = 48,
                    norm = "post", pooler = "tanh", act = "gelu_erf", dropout = 0.1, seed = 5}, 16)
local lm = pare.task("copy_lm", {seed = 1})
check("dec", lm, {kind = "decoder", vocab = lm.vocab, max_T = lm.T, d = 32, heads = 4, layers = 2, seed = 4}, 12)

if pare.mpi.rank() == 0 then
  local f = assert(io.open(out, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end
