-- distill_compose.lua — distillation composed with quantization and pruning (issue 14): each row one way
-- of making the teacher's knowledge fit a smaller or cheaper model, on tests/distill_compose.lua's setting
-- scaled by the arguments. The teacher (2 × 32 by default) is trained on every label of the task; the
-- students may use `labels` labelled examples (default 8: the teacher's value is labelling the inputs the
-- students have no label for) or the teacher run on every training input (unlabelled: T²·KL at T = kd_T,
-- no labels). Every student trains `steps` steps of `batch` at `lr`. Rows:
--   teacher            the teacher (f32)
--   student            a 1 × d_s student trained on its `labels` labels
--   student_distil     the same student distilled from the teacher
--   student_qat        the student under QAT (qat, int8 LSQ) trained on its labels, converted (qat_convert)
--   qat_teacher        the QAT student distilled from the teacher — quantization-aware distillation (simulated)
--   qat_teacher_int8   qat_teacher converted to the int8 kernel (qat_convert)
--   distil_int8        student_distil through dynamic_int8 (distil, then quantize)
--   pruned             the teacher under a `sparsity` magnitude mask, no training (runs dense: masks are not speed)
--   pruned_labels      pruned, fine-tuned on its labels alone
--   pruned_distil      pruned, distilled from the unpruned teacher (the masks stay)
--   pruned_distil_csr  pruned_distil stored sparse (sparsify: CSR where it pays) — the size and speed of the masks
--   struct             the teacher with half its heads and 3/4 of its FFN neurons physically removed (magnitude
--                      criteria) and a `struct_sparsity` magnitude mask on top, no training
--   struct_distil      struct distilled from the unpruned teacher
-- Columns: params, size (MB, as stored for running), format, sparsity of the Linear weights, accuracy (mean
-- over the seeds; per seed in the "runs" table), latency (one thread, batch × T, the models interleaved,
-- lowest of `rounds` medians, on the first seed's models) and the speed-up over the teacher.
--
--   pare run experiments/distill_compose.lua [labels=8] [steps=40] [batch=16] [lr=3e-3] [kd_T=4]
--        [seeds=1,2,3] [max_length=21] [d_t=32] [d_s=16] [sparsity=0.98] [struct_sparsity=0.95]
--        [bench_batch=8] [rounds=3] [fresh=1]
local pare = require "pare"
local distill = require "pare.distill"
local a = pare.args

local labels, steps, batch = tonumber(a.labels) or 8, tonumber(a.steps) or 40, tonumber(a.batch) or 16
local lr, kd_T, ML = tonumber(a.lr) or 3e-3, tonumber(a.kd_T) or 4, tonumber(a.max_length) or 21
local d_t, d_s = tonumber(a.d_t) or 32, tonumber(a.d_s) or 16
local sparsity, struct_sparsity = tonumber(a.sparsity) or 0.98, tonumber(a.struct_sparsity) or 0.95
local seeds = {}
for w in tostring(a.seeds or "1,2,3"):gmatch("[^,]+") do seeds[#seeds + 1] = tonumber(w) end
local name = string.format("distill_compose-labels%d", labels)
local exp = pare.experiment(name, {seed = seeds[1], dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})

local full = pare.task("majority", {seed = 3, n_train = 2000, n_test = 400, max_length = ML})
local few = pare.task("majority", {seed = 3, n_train = labels, n_test = 400, max_length = ML})
local T = full.T
local teacher = pare.model{vocab = full.vocab, max_T = T, classes = 2, d = d_t, heads = 2, layers = 2, seed = 1}
teacher:train(full, {steps = 300, batch = 32, lr = 3e-3, warmup = 20})

local function kd(m)
  local losses, hw = distill.kd_losses(m, teacher, {T = kd_T, alpha = 0})
  return {teacher = teacher, hard_weight = hw, losses = losses}
end
local CAL = {calib = full, calib_samples = 64, bits = 8}

-- each row: a function of the seed returning the model
local function rows_for(seed)
  local budget = {steps = steps, batch = batch, lr = lr, warmup = math.max(1, steps // 8), seed = seed}
  local function student() return pare.model{vocab = full.vocab, max_T = T, classes = 2, d = d_s, heads = 2, layers = 1,
                                             seed = 10 + seed} end
  local made = {}
  local function labelled(m) m:train(few, budget) return m end
  local function distilled(m) m:train(full, budget, kd(m)) return m end
  local function pruned() return teacher:prune{method = "magnitude", sparsity = sparsity} end
  local function struct()
    return teacher:apply("prune_heads", {level = 0.5, criterion = "magnitude"})
                  :apply("prune_neurons", {level = 0.75, criterion = "magnitude"})
                  :prune{method = "magnitude", sparsity = struct_sparsity}
  end
  return {
    {"teacher", function() return teacher end},
    {"student", function() return labelled(student()) end},
    {"student_distil", function() made.sd = distilled(student()) return made.sd end},
    {"student_qat", function() return labelled(student():apply("qat", CAL)):apply("qat_convert") end},
    {"qat_teacher", function() made.qt = distilled(student():apply("qat", CAL)) return made.qt end},
    {"qat_teacher_int8", function() return made.qt:apply("qat_convert") end},
    {"distil_int8", function() return made.sd:apply("dynamic_int8") end},
    {"pruned", function() return pruned() end},
    {"pruned_labels", function() return labelled(pruned()) end},
    {"pruned_distil", function() made.pd = distilled(pruned()) return made.pd end},
    {"pruned_distil_csr", function() return made.pd:apply("sparsify") end},
    {"struct", function() return struct() end},
    {"struct_distil", function() return distilled(struct()) end},
  }
end

exp:drop("runs")
exp:table("runs", {"seed", "model", "accuracy", types = {accuracy = "float"}})
local acc_sum, order, first_models = {}, {}, {}
for si, seed in ipairs(seeds) do
  for _, r in ipairs(rows_for(seed)) do
    io.stderr:write(string.format("distill_compose: seed %d, %s\n", seed, r[1]))
    local m = r[2]()
    local acc = m:evaluate(full).accuracy
    exp:record("runs", {seed = seed, model = r[1], accuracy = acc})
    if si == 1 then order[#order + 1], first_models[#first_models + 1] = r[1], m end
    acc_sum[r[1]] = (acc_sum[r[1]] or 0) + acc
  end
end
local prof = distill.profile(first_models, {batch = tonumber(a.bench_batch) or 8, T = T, rounds = tonumber(a.rounds) or 3})

exp:drop("table")
exp:table("table", {"model", "params", "size_mb", "format", "sparsity", "accuracy", "ms", "speedup",
                    units = {ms = "ms", size_mb = "MB"}, types = {accuracy = "float", sparsity = "float", ms = "float",
                                                                 speedup = "float", size_mb = "float"},
                    labels = {accuracy = "test accuracy (mean over the seeds)", speedup = "teacher's latency / model's",
                              sparsity = "zeros of the Linear weights"}})
for i, nm in ipairs(order) do
  local m, info = first_models[i], first_models[i]:info()
  local sp = m:sparsity()
  if tostring(info.format):find("csr") then sp = m:apply("dequantize"):sparsity() end -- CSR stores no zeros to count
  exp:record("table", {model = nm, params = prof[i].params, size_mb = prof[i].size_mb, format = info.format,
                       sparsity = sp.total > 0 and sp.zeros / sp.total or 0, accuracy = acc_sum[nm] / #seeds, ms = prof[i].ms,
                       speedup = prof[1].ms / prof[i].ms})
end
pare.print_table(exp, "table", {columns = {"model", "params", "size_mb", "format", "sparsity", "accuracy", "ms", "speedup"}})
exp:plot{table = "table", x = "model", y = "accuracy", kind = "bars", name = "accuracy",
         title = string.format("distillation composed with QAT and pruning (students with %d labels + the teacher)", labels)}
