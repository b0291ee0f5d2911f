-- pp.lua — run by tests/t_mpi_pp.sh, alone (pipeline=none: plain training) and under mpirun -n 2 (pipeline=gpipe
-- or 1f1b, micro_batches=mb): trains an encoder (recall, one label per sequence) and a decoder (copy_lm, a
-- target per token, so micro-batches' shares of the loss differ) for a few AdamW steps with the same global
-- batch and no dropout, then an encoder-decoder (translate), then writes (rank 0 only) the training losses, the
-- logits of a fixed batch after training and the encoder-decoder's test loss and accuracy, one number a line, to
-- out=FILE; the per-stage bubbles and bytes go to stdout. The shell test
-- compares the files.
local pare = require "pare"
pare.set_threads(1)
local out = assert(pare.args.out, "give out=FILE")
local pipe = pare.args.pipeline or "none"
local mb = tonumber(pare.args.mb or 4)
local steps = tonumber(pare.args.steps or 10)
local layers = tonumber(pare.args.layers or 2)
local lines = {}
local function put(v) lines[#lines + 1] = string.format("%.9g", v) end
local function opts(t)
  if pipe ~= "none" then t.pipeline = pipe; t.micro_batches = mb end
  if pare.args.checkpoint then t.checkpoint = true end
  return t
end

local task = pare.task("recall", {seed = 1})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 2, layers = layers,
                     seed = 3, dropout = 0}
local r = m:train(task, opts{steps = steps, batch = 16, lr = 2e-3, warmup = 3, seed = 7})
put(r.loss)
local toks = {}
for b = 1, 4 do
  local row = {}
  for t = 1, task.T do row[t] = (b * 7 + t * 3) % task.vocab end
  toks[b] = row
end
for _, v in ipairs(m:forward{tokens = toks}.logits.values) do put(v) end

local lm = pare.task("copy_lm", {seed = 1})
local d = pare.model{kind = "decoder", vocab = lm.vocab, max_T = lm.T, d = 32, heads = 2, layers = layers, seed = 4,
                     dropout = 0, tie_head = pare.args.tie == "true"}
local rd = d:train(lm, opts{steps = steps, batch = 12, lr = 3e-3, warmup = 3, seed = 9})
put(rd.loss)
local dt = {}
for b = 1, 2 do
  local row = {}
  for t = 1, lm.T do row[t] = (b * 5 + t) % lm.vocab end
  dt[b] = row
end
for _, v in ipairs(d:forward{tokens = dt}.logits.values) do put(v) end

-- an encoder-decoder: the encoder's output (read by every decoder block) and the decoder's embeddings cross the
-- boundary between stage 0 (enc.0, enc.ln_f, the decoder's embeddings) and stage 1 (dec.0, the head)
local tr = pare.task("translate", {seed = 1, n_train = 200, n_test = 40})
local e = pare.model{kind = "encdec", vocab = tr.vocab, src_vocab = tr.src_vocab, max_T = tr.T, src_max_T = tr.S, d = 32,
                     heads = 4, layers = 1, ffn = 64, seed = 1, dropout = 0}
local re = e:train(tr, opts{steps = steps, batch = 16, lr = 3e-3, warmup = 3, seed = 3})
put(re.loss)
local ev = e:evaluate(tr)
put(ev.loss)
put(ev.accuracy)

if r.pipeline then
  local p = r.pipeline
  print(string.format("rank %d stage %d of %d schedule %s m %d bubble %s theory %.4f bytes %s", pare.mpi.rank(), p.stage,
                      p.stages, p.schedule, p.micro_batches, table.concat(p.bubble, ","), p.bubble_theory,
                      table.concat(p.stage_bytes, ",")))
end
if pare.mpi.rank() == 0 then
  local f = assert(io.open(out, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end
