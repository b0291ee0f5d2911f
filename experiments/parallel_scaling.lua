-- parallel_scaling.lua — what MPI buys on this machine (issue 17, docs/distributed.md): data-parallel
-- training of a small encoder and a 40-point sweep, 1 rank against 2 ranks, each rank 1 thread.
--
--   pare run experiments/parallel_scaling.lua [steps=30] [batch=128] [d=128] [layers=2] [points=40]
--                                             [point_steps=25] [rounds=2] [mpirun=mpirun] [mpi_args="--bind-to core"]
--
-- Run it alone (not under mpirun): it starts its own measurements, alternating 1 rank and 2 ranks `rounds`
-- times (so a change in the machine's load hits both), each as
--   OMP_NUM_THREADS=1 [mpirun -n 2 --bind-to core] pare run parallel_scaling.lua part=dp|sweep ...
-- which record one row each into tables "dp" and "sweep" (the machine's 1-minute load average before and
-- after beside the numbers). Then it writes "scaling": the 2-rank/1-rank ratio per round and their median,
-- against the issue's targets (>= 1.8x tokens/s, >= 1.8x faster sweep), and "dp_model", a model of
-- data-parallel scaling to 8-64 ranks from the measured step time and gradient size (see below).
-- A rerun records new rounds next to the old ones (round numbers go on), so rounds can be added.
--
-- Memory per rank: "peak_growth_mb", how far a rank's peak resident set rose during its training run (m:train's
-- peak_growth_bytes), the mean over the ranks.
--
-- Tensor parallelism (part=tp, docs/distributed.md "Tensor parallelism"): the same encoder trained on the same
-- global batch, 1 rank the replicated model, 2 ranks each its shard (m:tensor_parallel: 2 of 4 heads, half the
-- FFN) running the whole batch; table "tp" with the f and g all-reduces per step (count, message size, time),
-- the parameters per rank and the memory growth, "tp_scaling" the 2-rank/1-rank ratios, and "tp_model" a model
-- of tensor-parallel scaling to 8-64 ranks from the measured step, the measured share of time in the split ops
-- (a profiled forward) and the message sizes (see below). parts=dp,sweep,tp (the default; add pp) chooses what the parent runs.
-- Pipeline parallelism and activation checkpointing (docs/distributed.md):
--   pare run experiments/parallel_scaling.lua parts=pp [pp_steps=10] [pp_batch=64] [pp_layers=4] [rounds=1]
-- runs part=pp (GPipe and 1F1B, micro_batches 1, 2, 4, 8, on 1 rank and on 2 ranks) into table "pp" (tokens/s,
-- the bubble per stage against (p-1)/(m+p-1), planned and resident memory per rank), "pp_model" (a model of
-- 8-64 stages from the measured per-micro-batch stage time and message size) and "checkpoint" (planned and
-- resident memory of an encoder at several depths with and without checkpointing, in this process).
local pare = require "pare"
local A = pare.args
local part = A.part
local steps, batch, d, layers = A.steps or 30, A.batch or 128, A.d or 128, A.layers or 2
local points, point_steps = A.points or 40, A.point_steps or 25

local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return 0 / 0 end
  local v = tonumber(f:read("l"):match("^(%S+)"))
  f:close()
  return v
end

local function encoder(task, seed)
  return pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = d, heads = 4, layers = layers,
                    seed = seed}
end

-- ---- a measurement, run by the parent below (alone, or under mpirun) ----
if part then
  pare.set_threads(1)
  local exp = pare.experiment("parallel_scaling")
  local ranks, round = pare.mpi.size(), A.round or 1
  local load0 = loadavg()
  if part == "dp" then
    local task = pare.task("recall", {seed = 1})
    local m = encoder(task, 1)
    m:train(task, {steps = 3, batch = batch, lr = 1e-3, warmup = 1}) -- warm-up (allocations, first touch)
    local r = m:train(task, {steps = steps, batch = batch, lr = 1e-3, warmup = 10, seed = 2})
    local ev = m:evaluate(task)
    -- memory per rank: how far each rank's peak resident set rose during the run (activations of its share,
    -- gradients, AdamW state, the all-reduce buffer), the mean over the ranks
    local grow = pare.mpi.allreduce_sum((r.peak_growth_bytes or 0) / 2^20) / ranks
    exp:record("dp", {round = round, ranks = ranks, steps = steps, batch = batch, T = task.T, d = d, layers = layers,
                      seconds = r.seconds, tokens_per_s = steps * batch * task.T / r.seconds,
                      step_ms = 1e3 * r.seconds / steps, comm_ms = 1e3 * r.comm_seconds / steps,
                      wait_ms = 1e3 * r.wait_seconds / steps,
                      grad_floats = m:info().params, loss = r.loss, accuracy = ev.accuracy, peak_growth_mb = grow,
                      load_before = load0, load_after = loadavg()})
  elseif part == "sweep" then
    -- a sweep of its own (a fresh file per measurement): `points` small trainings of different seeds
    local task = pare.task("recall", {seed = 1})
    local sx = pare.experiment("parallel_scaling_sweep" .. ranks, {fresh = true})
    local seeds = {}
    for i = 1, points do seeds[i] = i end
    local t0 = pare.clock()
    local ran = pare.sweep(sx, "points", {seed = seeds}, function(p)
      local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 1,
                           seed = p.seed}
      local r = m:train(task, {steps = point_steps, batch = 16, lr = 2e-3, warmup = 5, seed = p.seed})
      return {loss = r.loss}
    end, {quiet = true})
    local wall = pare.clock() - t0
    sx:close()
    exp:record("sweep", {round = round, ranks = ranks, points = ran, point_steps = point_steps, seconds = wall,
                         points_per_s = ran / wall, load_before = load0, load_after = loadavg()})
  elseif part == "tp" then
    -- tensor parallelism: every rank runs the whole batch on its shard; 1 rank runs the replicated model
    local task = pare.task("recall", {seed = 1})
    local m = encoder(task, 1)
    local phi = 0 / 0
    if ranks == 1 then
      -- the share of forward time in the ops a shard splits (Linears, attention, the FFN's activation; the head's
      -- Linear, replicated, is counted with them: 2·C·classes of ~24·C² FLOPs a token), from a profiled forward
      local b = m:bench{batch = batch, T = task.T, repeats = 5, warmup = 2}
      local split, all = 0, 0
      for op, ms in pairs(b.ms_by_op) do
        all = all + ms
        if op == "linear" or op == "attention" or op == "gelu" then split = split + ms end
      end
      phi = split / all
    else
      m = m:tensor_parallel() -- the replicated model is dropped: a rank holds its shard only
      collectgarbage()
    end
    m:train(task, {steps = 3, batch = batch, lr = 1e-3, warmup = 1}) -- warm-up (allocations, first touch)
    local c0 = m:tp_info().comm
    local r = m:train(task, {steps = steps, batch = batch, lr = 1e-3, warmup = 10, seed = 2})
    local c1 = m:tp_info().comm
    local ev = m:evaluate(task)
    local grow = pare.mpi.allreduce_sum((r.peak_growth_bytes or 0) / 2^20) / ranks
    local calls = c1.allreduces - c0.allreduces
    exp:record("tp", {round = round, ranks = ranks, steps = steps, batch = batch, T = task.T, d = d, layers = layers,
                      seconds = r.seconds, tokens_per_s = steps * batch * task.T / r.seconds,
                      step_ms = 1e3 * r.seconds / steps, comm_ms = 1e3 * (c1.seconds - c0.seconds) / steps,
                      allreduces_per_step = calls / steps, msg_kb = calls > 0 and (c1.bytes - c0.bytes) / calls / 1024 or 0,
                      params_per_rank = m:info().params, split_share = phi, loss = r.loss, accuracy = ev.accuracy,
                      peak_growth_mb = grow, load_before = load0, load_after = loadavg()})
  elseif part == "pp" then
    -- pipeline: an encoder of pp_layers layers split into `ranks` stages (1 rank: one stage, gradient accumulation)
    local task = pare.task("recall", {seed = 1})
    local pl, pb, ps = A.pp_layers or 4, A.pp_batch or 64, A.pp_steps or 10
    local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = d, heads = 4, layers = pl,
                         seed = 1, dropout = 0}
    local o = {batch = pb, lr = 1e-3, warmup = 2, pipeline = A.schedule, micro_batches = A.mb, checkpoint = A.ckpt == "true"}
    o.steps = 2
    m:train(task, o) -- warm-up (allocations, first touch)
    o.steps, o.seed = ps, 2
    local r = m:train(task, o)
    local p = r.pipeline
    local grow = pare.mpi.allreduce_sum((r.peak_growth_bytes or 0) / 2^20) / ranks
    local bmax, bsum, busy = 0, 0, 0
    for k = 1, p.stages do
      bmax, bsum = math.max(bmax, p.bubble[k]), bsum + p.bubble[k]
      busy = math.max(busy, p.stage_busy[k])
    end
    exp:record("pp", {round = round, ranks = ranks, schedule = p.schedule, micro_batches = p.micro_batches,
                      checkpoint = A.ckpt == "true", steps = ps, batch = pb, T = task.T, d = d, layers = pl,
                      tokens_per_s = ps * pb * task.T / r.seconds, step_ms = 1e3 * r.seconds / ps,
                      bubble_stage0 = p.bubble[1], bubble_last = p.bubble[p.stages], bubble_mean = bsum / p.stages,
                      bubble_theory = p.bubble_theory,
                      -- the slowest stage's forward+backward time per micro-batch, and the activation message size
                      stage_mb_ms = 1e3 * busy / (ps * p.micro_batches), msg_bytes = p.msg_bytes,
                      planned_mb_stage0 = p.stage_bytes[1] / 2^20, planned_mb_max = (function()
                        local x = 0
                        for k = 1, p.stages do x = math.max(x, p.stage_bytes[k]) end
                        return x / 2^20 end)(),
                      peak_growth_mb = grow, loss = r.loss, load_before = load0, load_after = loadavg()})
  else
    error("part must be dp, sweep, tp or pp")
  end
  return
end

-- ---- the parent: alternate 1 and 2 ranks, then the ratios ----
if pare.mpi.active() then error("parallel_scaling.lua starts mpirun itself: run it alone (pare run ...)") end
-- the pare that runs this script: <repo>/<PARE_BUILD or build>/pare, the repo from package.path (pare run puts
-- <repo>/lua first); pare=PATH overrides
local repo = package.path:match("^([^;]*)/lua/%?%.lua") or "."
local exe = A.pare or (repo .. "/" .. (os.getenv("PARE_BUILD") or "build") .. "/pare")
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local mpirun = A.mpirun or "mpirun"
-- one core per rank: unbound (--bind-to none) or oversubscribed ranks made OpenMPI's shared-memory all-reduce of
-- 1.6 MB take 13-16 ms instead of 0.3 ms on this machine (measured; docs/distributed.md)
local mpi_args = A.mpi_args or "--bind-to core"
local common = string.format("steps=%d batch=%d d=%d layers=%d points=%d point_steps=%d", steps, batch, d, layers,
                             points, point_steps)
local function run(ranks, which, round)
  local cmd = string.format("OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive PARE_PROGRESS=0 %s%s run %s part=%s round=%d %s",
    ranks > 1 and string.format("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %s -n %d %s ", mpirun, ranks,
                                mpi_args) or "",
    sh(exe), sh(arg[0]), which, round, common)
  io.stderr:write(string.format("parallel_scaling: round %d, %s on %d rank%s\n", round, which, ranks, ranks > 1 and "s" or ""))
  local ok = os.execute(cmd .. " </dev/null")
  if not ok then error("parallel_scaling: failed: " .. cmd) end
end

-- the rows of table t, none when the file has no such table yet
local function table_rows(exp, t)
  for _, n in ipairs(exp:tables()) do if n == t then return exp:rows(t) end end
  return {}
end
-- ---- only=pp: pipeline parallelism and checkpointing (a section of its own; see the top) ----
local function pp_parent()
  local pexp = pare.experiment("parallel_scaling")
  local n0 = 0
  for _, r in ipairs(table_rows(pexp, "pp")) do if r.round > n0 then n0 = r.round end end
  pexp:close()
  local pl, pb, ps = A.pp_layers or 4, A.pp_batch or 64, A.pp_steps or 10
  for round = n0 + 1, n0 + (A.rounds or 1) do
    for _, mb in ipairs({1, 2, 4, 8}) do
      for _, sched in ipairs({"gpipe", "1f1b"}) do
        for _, ranks in ipairs(round % 2 == 1 and {1, 2} or {2, 1}) do
          local cmd = string.format("OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive PARE_PROGRESS=0 %s%s run %s part=pp round=%d "
            .. "d=%d schedule=%s mb=%d pp_layers=%d pp_batch=%d pp_steps=%d",
            ranks > 1 and string.format("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %s -n %d %s ", mpirun,
                                        ranks, mpi_args) or "", sh(exe), sh(arg[0]), round, d, sched, mb, pl, pb, ps)
          io.stderr:write(string.format("parallel_scaling: round %d, pp %s m=%d on %d rank%s\n", round, sched, mb, ranks,
                                        ranks > 1 and "s" or ""))
          if not os.execute(cmd .. " </dev/null") then error("parallel_scaling: failed: " .. cmd) end
        end
      end
    end
  end
  local exp = pare.experiment("parallel_scaling")
  -- A model of pipeline scaling to 8-64 stages (not a measurement). An encoder of L = 64 layers like the measured
  -- one, P stages of L/P layers, m micro-batches: a micro-batch's forward+backward on a stage takes
  --   t_s = (L/P) · t_layer + t_msg,   t_msg = 2 · (bytes / bandwidth + latency)   (activations on, gradients back)
  -- and a step (m + P - 1) · t_s (the GPipe/1F1B critical path: P - 1 fill/drain slots), against m · L · t_layer
  -- on one rank; t_layer is the measured 1-rank stage time per micro-batch over its layers, at m = 8; the network
  -- (10 Gbit/s, 20 us) is assumed, as for dp_model. Memory per stage: GPipe keeps m micro-batches' activations of
  -- L/P layers, 1F1B at most P (stage 0), from the measured planned bytes.
  exp:drop("pp_model")
  exp:table("pp_model", {"stages", "micro_batches", "speedup", "efficiency", "bubble", "step_ms", "msg_ms",
                         "gpipe_act_mb", "onef1b_act_mb", units = {step_ms = "ms", msg_ms = "ms"}})
  local t_layer, bytes, act_layer = {}, nil, {}
  for _, r in ipairs(exp:rows("pp")) do
    if r.ranks == 1 and r.micro_batches == 8 and not r.checkpoint then
      t_layer[#t_layer + 1] = r.stage_mb_ms / r.layers
      act_layer[#act_layer + 1] = r.planned_mb_stage0 / (r.schedule == "gpipe" and 8 or 1) / r.layers
    end
    if r.ranks == 2 then bytes = r.msg_bytes end
  end
  if #t_layer > 0 and bytes then
    local tl, al, L, bw, lat = pare.stats.median(t_layer), pare.stats.median(act_layer), 64, 1.25e9, 20e-6
    local msg = 2 * (bytes / bw + lat) * 1e3
    for _, P in ipairs({1, 2, 4, 8, 16, 32, 64}) do
      for _, m in ipairs(4 * P == 8 and {8} or {8, 4 * P}) do
        local ts = L / P * tl + (P > 1 and msg or 0)
        local step, one = (m + P - 1) * ts, m * L * tl
        exp:record("pp_model", {stages = P, micro_batches = m, speedup = one / step, efficiency = one / step / P,
                                bubble = (P - 1) / (m + P - 1), step_ms = step, msg_ms = P > 1 and msg or 0.0,
                                gpipe_act_mb = m * L / P * al, onef1b_act_mb = math.min(m, P) * L / P * al})
      end
    end
  end
  -- Activation checkpointing: an encoder of d and 2..16 layers at batch pp_batch, trained a few steps with and
  -- without; planned = the executor's figure (activations, their gradients, caches), growth = the process's
  -- peak resident set during the run.
  exp:drop("checkpoint")
  exp:table("checkpoint", {"layers", "planned_mb", "planned_mb_ckpt", "ratio", "growth_mb", "growth_mb_ckpt", "step_ms",
                           "step_ms_ckpt", "load", units = {planned_mb = "MiB", growth_mb = "MiB", step_ms = "ms"}})
  pare.set_threads(1)
  local task = pare.task("recall", {seed = 1})
  pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = d, heads = 4, layers = 2, seed = 1}
    :train(task, {steps = 3, batch = pb, lr = 1e-3, warmup = 1}) -- warm-up (allocations, first touch)
  for _, L in ipairs({2, 4, 8, 16}) do
    local row = {layers = L}
    for _, ck in ipairs({false, true}) do
      local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = d, heads = 4, layers = L,
                           seed = 1, dropout = 0}
      local r = m:train(task, {steps = 5, batch = pb, lr = 1e-3, warmup = 1, checkpoint = ck})
      local sfx = ck and "_ckpt" or ""
      row["planned_mb" .. sfx] = r.planned_bytes / 2^20
      row["growth_mb" .. sfx] = (r.peak_growth_bytes or 0.0) / 2^20
      row["step_ms" .. sfx] = 1e3 * r.seconds / 5
    end
    row.ratio, row.load = row.planned_mb_ckpt / row.planned_mb, loadavg()
    exp:record("checkpoint", row)
  end
  exp:print("pp", {columns = {"round", "ranks", "schedule", "micro_batches", "tokens_per_s", "step_ms", "bubble_stage0",
                              "bubble_last", "bubble_theory", "planned_mb_stage0", "planned_mb_max", "peak_growth_mb",
                              "load_before", "load_after"}})
  exp:print("pp_model")
  exp:print("checkpoint")
  exp:close()
end
if A.only == "pp" then A.parts = "pp" end -- the former spelling

local function last_round()
  local exp = pare.experiment("parallel_scaling")
  local n = 0
  for _, t in ipairs({"dp", "sweep", "tp"}) do
    for _, r in ipairs(table_rows(exp, t)) do if r.round > n then n = r.round end end
  end
  exp:close()
  return n
end
local first = last_round() + 1
local parts, pp = {}, false
for w in (A.parts or "dp,sweep,tp"):gmatch("[^,%s]+") do
  if w == "pp" then pp = true else parts[#parts + 1] = w end
end
if pp then pp_parent() end -- its own rounds and tables (above)
if #parts == 0 then return end
for round = first, first + (A.rounds or 2) - 1 do
  for _, which in ipairs(parts) do
    local order = round % 2 == 1 and {1, 2} or {2, 1} -- alternate which goes first
    for _, ranks in ipairs(order) do run(ranks, which, round) end
  end
end

local exp = pare.experiment("parallel_scaling")
exp:drop("scaling")
exp:table("scaling", {"what", "round", "ratio", "target", "met", "load", units = {load = "1-min load avg"}})
local summary = {}
for _, spec in ipairs({{"dp", "tokens_per_s", "dp tokens/s, 2 ranks / 1 rank"}, {"sweep", "points_per_s", "sweep speed, 2 ranks / 1 rank"}}) do
  local t, col, what = spec[1], spec[2], spec[3]
  local by = {}
  for _, r in ipairs(table_rows(exp, t)) do
    by[r.round] = by[r.round] or {}
    by[r.round][r.ranks] = r
  end
  local ratios = {}
  for round, rr in pairs(by) do
    if rr[1] and rr[2] then
      local ratio = rr[2][col] / rr[1][col]
      ratios[#ratios + 1] = ratio
      local load = math.max(rr[1].load_before, rr[1].load_after, rr[2].load_before, rr[2].load_after)
      exp:record("scaling", {what = what, round = round, ratio = ratio, target = 1.8, met = ratio >= 1.8, load = load})
    end
  end
  if #ratios > 0 then -- (parts= may have left this part out)
    local med = pare.stats.median(ratios)
    exp:record("scaling", {what = what .. " (median)", round = 0, ratio = med, target = 1.8, met = med >= 1.8,
                           load = loadavg()})
  end
  summary[t] = by
end

-- A model of data-parallel scaling to 8-64 ranks (not a measurement): a step on N ranks takes
--   t(N) = t_compute · (1/N) + t_allreduce(N),  t_allreduce = 2(N-1)/N · bytes / bandwidth + 2(N-1) · latency
-- (a ring all-reduce, Patarasuk & Yuan 2009) with t_compute the measured 1-rank step, bytes the gradient in
-- float32, and a cluster network of 10 Gbit/s (1.25 GB/s) and 20 us per message: both assumptions, columns
-- of the table. The per-rank batch shrinks with N (B/N rows), so a real step also loses kernel efficiency,
-- which this model ignores (an upper bound on the speed-up).
exp:drop("dp_model")
exp:table("dp_model", {"ranks", "speedup", "efficiency", "step_ms", "allreduce_ms", "bandwidth_GBps", "latency_us",
                       units = {step_ms = "ms", allreduce_ms = "ms"}})
local one, grad_floats = {}, nil
for _, rr in pairs(summary.dp or {}) do
  if rr[1] then one[#one + 1] = rr[1].step_ms; grad_floats = rr[1].grad_floats end
end
if #one > 0 then
  local t1 = pare.stats.median(one)
  local bytes, bw, lat = 4 * grad_floats, 1.25e9, 20e-6
  for _, n in ipairs({1, 2, 4, 8, 16, 32, 64}) do
    local ar = n > 1 and (2 * (n - 1) / n * bytes / bw + 2 * (n - 1) * lat) * 1e3 or 0.0
    local tn = t1 / n + ar
    exp:record("dp_model", {ranks = n, speedup = t1 / tn, efficiency = t1 / tn / n, step_ms = tn, allreduce_ms = ar,
                            bandwidth_GBps = bw / 1e9, latency_us = lat * 1e6})
  end
end
-- ---- tensor parallelism: the ratios, and a model of its scaling ----
-- A model of tensor-parallel scaling to 8-64 ranks (not a measurement): every rank computes the whole batch
-- through the replicated ops and its 1/N of the split ones, and each block does 2 all-reduces of the (B·T, C)
-- activations forward and 2 of their gradients backward (4·layers a step, measured: allreduces_per_step):
--   t(N) = t1 · ((1 − φ) + φ / N) + 4·layers · (2(N−1)/N · bytes / bandwidth + 2(N−1) · latency)
-- with t1 the measured 1-rank step, φ the measured share of forward time in the split ops (backward assumed to
-- split alike), bytes = B·T·C·4, and the two networks' bandwidth and latency as assumptions (columns): a 10
-- Gbit/s, 20 us cluster network, as dp_model, and a 100 GB/s, 2 us link within a node (NVLink-class), where
-- Megatron-LM keeps its tensor-parallel groups. Memory per rank: the split parameters / N plus the replicated.
local tp_by = {}
for _, r in ipairs(table_rows(exp, "tp")) do
  tp_by[r.round] = tp_by[r.round] or {}
  tp_by[r.round][r.ranks] = r
end
if next(tp_by) then
  exp:drop("tp_scaling")
  exp:table("tp_scaling", {"round", "tokens_ratio", "step_ms_1", "step_ms_2", "comm_ms_2", "params_ratio", "mem_ratio",
                           "load", units = {load = "1-min load avg"}})
  local one, t1s, phis = nil, {}, {}
  for round, rr in pairs(tp_by) do
    if rr[1] then one = rr[1]; t1s[#t1s + 1] = rr[1].step_ms; phis[#phis + 1] = rr[1].split_share end
    if rr[1] and rr[2] then
      exp:record("tp_scaling", {round = round, tokens_ratio = rr[2].tokens_per_s / rr[1].tokens_per_s,
                                step_ms_1 = rr[1].step_ms, step_ms_2 = rr[2].step_ms, comm_ms_2 = rr[2].comm_ms,
                                params_ratio = rr[2].params_per_rank / rr[1].params_per_rank,
                                mem_ratio = rr[2].peak_growth_mb / rr[1].peak_growth_mb,
                                load = math.max(rr[1].load_before, rr[1].load_after, rr[2].load_before, rr[2].load_after)})
    end
  end
  if one then
    exp:drop("tp_model")
    exp:table("tp_model", {"network", "ranks", "speedup", "efficiency", "step_ms", "comm_ms", "params_per_rank",
                           "bandwidth_GBps", "latency_us", "split_share", units = {step_ms = "ms", comm_ms = "ms"}})
    local t1, phi = pare.stats.median(t1s), pare.stats.median(phis)
    local task_T = one.T
    local bytes, calls = one.batch * task_T * one.d * 4, 4 * one.layers
    -- parameters: the split ones (qkv, out, up, down weights; qkv and up biases) and the replicated rest
    local C, F = one.d, 4 * one.d
    local split_params = one.layers * (3 * C * C + 3 * C + C * C + F * C + F + C * F)
    local repl_params = one.params_per_rank - split_params
    for _, net in ipairs({{"10Gbit/s cluster", 1.25e9, 20e-6}, {"100GB/s node link", 100e9, 2e-6}}) do
      for _, n in ipairs({1, 2, 4, 8, 16, 32, 64}) do
        local comm = n > 1 and calls * (2 * (n - 1) / n * bytes / net[2] + 2 * (n - 1) * net[3]) * 1e3 or 0.0
        local tn = t1 * ((1 - phi) + phi / n) + comm
        exp:record("tp_model", {network = net[1], ranks = n, speedup = t1 / tn, efficiency = t1 / tn / n, step_ms = tn,
                                comm_ms = comm, params_per_rank = repl_params + split_params / n,
                                bandwidth_GBps = net[2] / 1e9, latency_us = net[3] * 1e6, split_share = phi})
      end
    end
  end
end

if #table_rows(exp, "dp") > 0 then exp:print("dp", {columns = {"round", "ranks", "tokens_per_s", "step_ms", "comm_ms", "wait_ms", "peak_growth_mb", "loss",
                            "load_before", "load_after"}}) end
if #table_rows(exp, "sweep") > 0 then
  exp:print("sweep", {columns = {"round", "ranks", "points", "seconds", "points_per_s", "load_before", "load_after"}})
end
if #table_rows(exp, "scaling") > 0 then exp:print("scaling") end
if #table_rows(exp, "dp_model") > 0 then exp:print("dp_model") end
if next(tp_by) then
  exp:print("tp", {columns = {"round", "ranks", "tokens_per_s", "step_ms", "comm_ms", "allreduces_per_step", "msg_kb",
                              "params_per_rank", "peak_growth_mb", "split_share", "loss", "load_before", "load_after"}})
  exp:print("tp_scaling")
  exp:print("tp_model")
end
