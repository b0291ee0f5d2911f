-- bf16_train_step.lua — the time of one training step in f32 and in bf16 with f32 master weights (issue 15;
-- docs/mixed-precision.md "Training in bf16") on a BERT-small-shaped encoder (4 layers × 256, 4 heads, FFN 1024) at
-- batch 8 × 128 tokens. f32 and bf16 alternate round by round on the same machine (a shared machine's load then hits
-- both alike). A round is two m:train calls, of 1 and of 1 + `steps` steps: the difference of their process CPU times
-- over `steps` is the step alone (each call also builds its executor and gradients, the same in both), in CPU time
-- (with one thread, the time the step ran, whatever else the machine runs); the wall time per step is the longer
-- call's loop time (r.seconds, which excludes the set-up) over its steps. A first round warms up (oneDNN's
-- primitives, page faults) and is not recorded.
--
--   OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 pare run experiments/bf16_train_step.lua [rounds=5] [steps=5] [threads=1]
--                                                                               [results_dir=results]
--
-- OMP_THREAD_LIMIT: the full attention's backward asks OpenMP for as many threads as its workspace has slots, not at
-- most the thread count (src/attn/attn.c pare_attn_threads), which a bf16 model's larger workspace turns into 16
-- threads on a 1-thread run; the limit keeps the measurement at the threads asked for.
--
-- Writes results/bf16_train_step.h5, table "steps" (one row per round and format) and prints the medians and their
-- ratio.
local pare = require "pare"
local a = pare.args
local rounds, steps, threads = tonumber(a.rounds) or 5, tonumber(a.steps) or 5, tonumber(a.threads) or 1
pare.set_threads(threads)

local exp = pare.experiment("bf16_train_step", {fresh = true, seed = 1, dir = a.results_dir or "results"})
exp:table("steps", {
  columns = {"format", "round", "steps", "batch", "T", "cpu_ms_per_step", "wall_ms_per_step", "loss", "threads", "kernel"},
  units = {cpu_ms_per_step = "ms", wall_ms_per_step = "ms"},
  labels = {cpu_ms_per_step = "process CPU time per training step", wall_ms_per_step = "wall time per training step"},
})

-- 128 tokens per sequence (CLS + 127 bits); the task's content does not change the time of a step
local task = pare.task("majority", {seed = 1, n_train = 2000, n_test = 100, min_length = 101, max_length = 127})
local function bert_small()
  return pare.model{kind = "encoder", vocab = task.vocab, max_T = task.T, classes = task.classes, d = 256, heads = 4,
                    layers = 4, ffn = 1024, seed = 1}
end
local models = {f32 = bert_small(), bf16 = bert_small():apply("bf16")}
local order = {"f32", "bf16"}
local per = {f32 = {}, bf16 = {}}
io.stderr:write(string.format("bf16_train_step: %s, batch 8 x %d, %d rounds of %d steps, %d thread(s)\n",
                              tostring(models.f32), task.T, rounds, steps, threads))
for r = 0, rounds do
  for _, f in ipairs(order) do
    local m = models[f]
    local opts = {steps = 1, batch = 8, lr = 1e-4, warmup = 0, seed = 1 + r}
    local c0 = os.clock()
    m:train(task, opts)
    local c1 = os.clock()
    opts.steps = 1 + steps
    local res = m:train(task, opts)
    local cpu = ((os.clock() - c1) - (c1 - c0)) * 1e3 / steps
    if r > 0 then
      per[f][#per[f] + 1] = cpu
      exp:record("steps", {format = f, round = r, steps = steps, batch = 8, T = task.T, cpu_ms_per_step = cpu,
                           wall_ms_per_step = res.seconds * 1e3 / res.steps, loss = res.loss, threads = threads,
                           kernel = m:info().kernel})
    end
  end
end
local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end
local ratios, lo, hi = {}, math.huge, 0
for r = 1, rounds do
  ratios[r] = per.f32[r] / per.bf16[r]
  lo, hi = math.min(lo, ratios[r]), math.max(hi, ratios[r])
end
local rounds_txt = {}
for r = 1, rounds do rounds_txt[r] = string.format("%.1f/%.1f", per.f32[r], per.bf16[r]) end
print(string.format("step time, CPU ms per step, f32/bf16 by round: %s", table.concat(rounds_txt, " ")))
local m32, m16, mr = median(per.f32), median(per.bf16), median(ratios)
print(string.format("medians: f32 %.1f ms, bf16 %.1f ms; speed-up (median of the rounds' ratios) %.2fx (%.2f-%.2f)", m32,
                    m16, mr, lo, hi))
