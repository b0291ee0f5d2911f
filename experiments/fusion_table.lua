-- fusion_table.lua — what each fusion buys (issue 15, seed 000's list): forward latency of an encoder built
-- unfused (model option fused=false: separate Q, K, V Linears, attention as head split, Q·Kᵀ, div, mask,
-- softmax, P·V, head merge, Linear then GELU, Add then LayerNorm) with each rule of the fuse pass applied
-- alone, with all of them, and of the fused builder's graph (what pare builds by default), at batch 1 and 8,
-- T = 128, on a BERT-base-shaped encoder (12 × 768, 12 heads, FFN 3072, post-LN, GELU erf) and a small one.
-- ReLU variants of both measure linear_relu. speedup = the unfused graph's median latency / the row's, both
-- measured in this run, so only ratios within one run mean anything on a shared machine; the load average
-- (/proc/loadavg) is recorded with every row and as a file attribute. Weights are random: latency does not
-- depend on their values. docs/fusion.md has a run's table.
--
--   pare run experiments/fusion_table.lua [models=base,small] [batches=1,8] [T=128] [repeats=5] [threads=1]
--        [fresh=1]
local pare = require "pare"
local a = pare.args
local threads, T, repeats = tonumber(a.threads) or 1, tonumber(a.T) or 128, tonumber(a.repeats) or 5
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
exp:table("latency", {"model", "act", "batch", "rules", "series", "latency_ms", "latency_lo_ms", "latency_hi_ms", "speedup",
                      "nodes", "activation_mb", "gflop", "load", "threads",
                      units = {latency_ms = "ms", latency_lo_ms = "ms", latency_hi_ms = "ms", activation_mb = "MB"},
                      labels = {speedup = "speed-up over the unfused graph (same run)", rules = "fuse rules",
                                latency_ms = "forward latency (median)", nodes = "graph nodes",
                                activation_mb = "planned activation memory"},
                      types = {speedup = "float", load = "float", gflop = "float", activation_mb = "float"}})

-- the rows of one (model, act): the unfused graph first (the speed-ups' denominator), then each rule alone,
-- all of them, and the fused builder
local gelu_rules = {"none", "qkv", "strided", "softmax", "attention", "linear_gelu", "add_layernorm", "all", "builder"}
local relu_rules = {"none", "linear_relu", "all", "builder"}

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
      local base_ms -- the unfused graph's latency in this group: measured first, or read back on a resumed run
      for _, r in ipairs(exp:has("latency", {model = name, act = act, batch = B, rules = "none"}) and exp:rows("latency") or {}) do
        if r.model == name and r.act == act and r.batch == B and r.rules == "none" then base_ms = r.latency_ms end
      end
      for _, rules in ipairs(act == "relu" and relu_rules or gelu_rules) do
        if not exp:has("latency", {model = name, act = act, batch = B, rules = rules}) then
          local m = rules == "none" and unfused or rules == "builder" and build(true) or unfused:apply("fuse", {rules = rules})
          local load = loadavg()
          local b = m:bench{batch = B, T = T, repeats = repeats, warmup = 2, warmup_min_s = 0.5, warmup_max_s = 5}
          if rules == "none" then base_ms = b.median_ms end
          exp:record("latency", {model = name, act = act, batch = B, rules = rules,
                                 series = string.format("%s %s b%d", name, act, B),
                                 latency_ms = b.median_ms, latency_lo_ms = b.ci_lo_ms, latency_hi_ms = b.ci_hi_ms,
                                 speedup = base_ms / b.median_ms, nodes = m:info().nodes,
                                 activation_mb = b.activation_bytes / 1e6, gflop = b.flops / 1e9, load = load,
                                 threads = threads})
        end
      end
    end
  end
end

pare.print_table(exp, "latency", {columns = {"model", "act", "batch", "rules", "latency_ms", "speedup", "nodes",
                                             "activation_mb", "load"}})
exp:plot{table = "latency", name = "speedup", x = "rules", y = "speedup", by = "series", kind = "bars",
         title = string.format("Fusion: speed-up over the unfused graph (forward, T=%d, %d thread%s)", T, threads,
                               threads > 1 and "s" or "")}
