-- fusion_table.lua — what each fusion buys (issue 15, seed 000's list): forward latency of an encoder built
-- unfused (model option fused=false: separate Q, K, V Linears, attention as head split, Q·Kᵀ, div, mask,
-- softmax, P·V, head merge, Linear then GELU, Add then LayerNorm) with each rule of the fuse pass applied
-- alone, with all of them, and of the fused builder's graph (what pare builds by default), at batch 1 and 8,
-- T = 128, on a BERT-base-shaped encoder (12 × 768, 12 heads, FFN 3072, post-LN, GELU erf) and a small one
-- (4 × 256); ReLU variants of both measure linear_relu. Weights are random: latency does not depend on them.
--
-- The variants of one (model, act, batch) are timed interleaved: `rounds` rounds, each timing every variant
-- (m:bench, `repeats` forwards after `warmup`), so a shared machine's load falls on all of them alike. Two clocks:
-- cpu_ms, the median of the process's CPU time per forward (one thread: the time computed, not the time spent
-- waiting for a core — on a loaded machine the wall clock of the same graph varies 2×, this by a few %), and
-- latency_ms, the wall-clock median (latency_min_ms its fastest). speedup = the unfused graph's cpu_ms / the
-- row's; speedup_wall the same of the wall-clock medians. Both are ratios within one run: only those mean
-- anything on a shared machine. The load average (/proc/loadavg) is recorded with every row.
-- Table "ops": where the time goes, per op kind (m:bench's profiled forward, the median over the rounds), so
-- the time a rule removes (the GELU op, the head copies, the separate softmax) can be read beside what it
-- adds to the op that absorbs it. docs/fusion.md has a run's tables.
--
--   pare run experiments/fusion_table.lua [models=base,small] [batches=1,8] [T=128] [rounds=4] [repeats=2]
--        [warmup=1] [threads=1] [fresh=1]
local pare = require "pare"
local a = pare.args
local threads, T = tonumber(a.threads) or 1, tonumber(a.T) or 128
local rounds, repeats, warmup = tonumber(a.rounds) or 4, tonumber(a.repeats) or 2, tonumber(a.warmup) or 1
local batches = pare.numbers(a.batches, {1, 8})
local models = {}
for w in tostring(a.models or "base,small"):gmatch("[^,]+") do models[#models + 1] = w end
pare.set_threads(threads)

local shapes = {
  base = {d = 768, heads = 12, layers = 12, ffn = 3072, vocab = 30522},
  small = {d = 256, heads = 4, layers = 4, ffn = 1024, vocab = 8000},
}
local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return 0 / 0 end
  local l = tonumber(f:read("*l"):match("^(%S+)"))
  f:close()
  return l
end

local exp = pare.experiment("fusion_table", {fresh = tostring(a.fresh) == "1"})
exp:attr("threads", threads)
exp:attr("load_at_start", loadavg())
exp:table("latency", {"model", "act", "batch", "rules", "series", "cpu_ms", "speedup", "latency_ms", "latency_min_ms",
                      "speedup_wall", "samples", "nodes", "activation_mb", "gflop", "load", "threads",
                      units = {cpu_ms = "ms", latency_ms = "ms", latency_min_ms = "ms", activation_mb = "MB"},
                      labels = {speedup = "speed-up over the unfused graph (CPU time, same run)",
                                speedup_wall = "speed-up over the unfused graph (wall clock, same run)",
                                rules = "fuse rules", cpu_ms = "forward CPU time (median)",
                                latency_ms = "forward latency (median)", nodes = "graph nodes",
                                activation_mb = "planned activation memory"},
                      types = {speedup = "float", speedup_wall = "float", load = "float", gflop = "float",
                               activation_mb = "float", latency_ms = "float", latency_min_ms = "float", cpu_ms = "float"}})

exp:table("ops", {"model", "act", "batch", "rules", "op", "ms", "share", units = {ms = "ms"},
                  labels = {ms = "time in the op (profiled forward, median)", share = "share of the forward"},
                  types = {ms = "float", share = "float"}})

-- the rows of one (model, act): the unfused graph first (the speed-ups' denominator), all rules, then each rule
-- alone, and the fused builder's graph (the same as rules=qkv,attention: their spread is the noise floor)
local gelu_rules = {"none", "all", "linear_gelu", "add_layernorm", "qkv", "strided", "softmax", "attention", "builder"}
local relu_rules = {"none", "all", "linear_relu"}

for _, name in ipairs(models) do
  local s = shapes[name] or error("fusion_table: models=" .. name .. " (valid: base, small)")
  for _, act in ipairs{"gelu_erf", "relu"} do
    local function build(fused)
      return pare.model{kind = "encoder", vocab = s.vocab, max_T = T, d = s.d, heads = s.heads, layers = s.layers,
                        ffn = s.ffn, classes = 2, norm = "post", act = act, emb_norm = true, type_vocab = 2,
                        pooler = "tanh", fused = fused, seed = 1}
    end
    local unfused = build(false)
    for _, B in ipairs(batches) do
      if not exp:has("latency", {model = name, act = act, batch = B, rules = "none"}) then
        local variants, samples, cpu, info, opms = {}, {}, {}, {}, {}
        for k, rules in ipairs(act == "relu" and relu_rules or gelu_rules) do
          variants[k] = {rules = rules, m = rules == "none" and unfused or rules == "builder" and build(true)
                                           or unfused:apply("fuse", {rules = rules})}
          samples[k], cpu[k], opms[k] = {}, {}, {}
        end
        local load = loadavg()
        for _ = 1, rounds do
          for k, v in ipairs(variants) do
            local b = v.m:bench{batch = B, T = T, repeats = repeats, warmup = warmup, warmup_min_s = 0, warmup_max_s = 60}
            for _, ms in ipairs(b.samples_ms) do samples[k][#samples[k] + 1] = ms end
            for _, ms in ipairs(b.cpu_samples_ms) do cpu[k][#cpu[k] + 1] = ms end
            for op, ms in pairs(b.ms_by_op) do
              opms[k][op] = opms[k][op] or {}
              table.insert(opms[k][op], ms)
            end
            info[k] = b
          end
        end
        local function min(xs) local m = math.huge; for _, x in ipairs(xs) do m = math.min(m, x) end; return m end
        local base_med, base_cpu = pare.stats.median(samples[1]), pare.stats.median(cpu[1])
        for k, v in ipairs(variants) do
          local med, c = pare.stats.median(samples[k]), pare.stats.median(cpu[k])
          exp:record("latency", {model = name, act = act, batch = B, rules = v.rules,
                                 series = string.format("%s %s b%d", name, act, B), cpu_ms = c, speedup = base_cpu / c,
                                 latency_ms = med, latency_min_ms = min(samples[k]), speedup_wall = base_med / med,
                                 samples = #samples[k], nodes = v.m:info().nodes,
                                 activation_mb = info[k].activation_bytes / 1e6, gflop = info[k].flops / 1e9,
                                 load = load, threads = threads})
          local ops, total = {}, 0
          for op, xs in pairs(opms[k]) do ops[#ops + 1] = {op, pare.stats.median(xs)}; total = total + ops[#ops][2] end
          table.sort(ops, function(x, y) return x[1] < y[1] end)
          for _, o in ipairs(ops) do
            exp:record("ops", {model = name, act = act, batch = B, rules = v.rules, op = o[1], ms = o[2], share = o[2] / total})
          end
        end
      end
    end
  end
end

pare.print_table(exp, "latency", {columns = {"model", "act", "batch", "rules", "cpu_ms", "speedup", "latency_ms",
                                             "speedup_wall", "nodes", "activation_mb", "load"}})
-- one plot per model (four series each: the legend stays readable), from a small table of its speed-ups
for _, name in ipairs(models) do
  local t = "speedup_" .. name
  for _, r in ipairs(exp:rows("latency")) do
    local series = string.format("%s b%d", r.act, r.batch)
    if r.model == name and not exp:has(t, {rules = r.rules, series = series}) then
      exp:record(t, {rules = r.rules, series = series, speedup = r.speedup})
    end
  end
  exp:plot{table = t, name = "speedup-" .. name, x = "rules", y = "speedup", by = "series", kind = "bars",
           ylabel = "speed-up over the unfused graph (CPU time, same run)",
           title = string.format("Fusion, %s encoder: forward speed-up per fuse rule (T=%d, %d thread%s)", name, T,
                                 threads, threads > 1 and "s" or "")}
end
