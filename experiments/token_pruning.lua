-- token_pruning.lua — token pruning, physically (issue 13; docs/pruning-tokens.md): accuracy against the
-- tokens kept and the measured forward latency. The zoo's bert-mini (4 × 256, post-LN, [CLS] pooler) is
-- fine-tuned on fortune_topic; each schedule of per-layer shares (m:prune_tokens{keep = ...}: between layers
-- the tokens that received least attention are dropped, later layers run on fewer rows) is measured as
-- pruned and after a short fine-tuning with the schedule in place (PoWER-BERT's re-training step).
--
--   pare run experiments/token_pruning.lua [schedules=1;0.9;0.8;0.7|1;0.7;0.5;0.3|1;0.5;0.3;0.2|1;0.3;0.2;0.1]
--        [base_steps=200] [ft_steps=40] [max_len=64] [repeats=20] [T=128] [threads=N] [fresh=1]
-- The fine-tuned base model is cached in results/models/ (fresh=1 fine-tunes again).
--
-- Columns: schedule (the shares, "1" for the dense model), row_share (Σ_l T'_l / (L · T): the token rows the
-- layers run on, T' = ceil(keep_l · T)), flop_share (forward FLOPs at batch 1 × T against the dense model's),
-- latency_ms / latency_share (bench at batch 1 × T: every position a token, the case token pruning shortens
-- most), accuracy (test split, pruned as is), accuracy_ft (after ft_steps of fine-tuning), agreement (top-1
-- with the dense model, as pruned). The task's examples are cut at max_len tokens and padded to the longest;
-- a share keeps min(length, T') of a sequence, so short sequences lose fewer tokens than the shares say; the
-- latency rows are full-length inputs at T. On a shared machine the latency columns scatter; the pairs of
-- build/bench/bench_tokens (thread CPU time beside wall time) are the steadier figure (docs/pruning-tokens.md).
local pare = require "pare"
local zoo, measure = require "pare.zoo", require "pare.measure"
local a = pare.args

local schedules = {"1"}
for s in tostring(a.schedules or "1;0.9;0.8;0.7|1;0.7;0.5;0.3|1;0.5;0.3;0.2|1;0.3;0.2;0.1"):gmatch("[^|]+") do
  schedules[#schedules + 1] = s
end
local base_steps, ft_steps = tonumber(a.base_steps) or 200, tonumber(a.ft_steps) or 40
local repeats, T = tonumber(a.repeats) or 20, tonumber(a.T) or 128
if a.threads then pare.set_threads(tonumber(a.threads)) end
local max_len = tonumber(a.max_len) or 64 -- the task's tokens per example (its batches pad to the longest)

local exp = zoo.experiment("token_pruning", a)
-- the fine-tuned classifier is cached beside the zoo's models (fine-tuning is most of a first run's time)
local dir = a.results_dir and (a.results_dir .. "/models") or "results/models"
local cached = string.format("%s/token_pruning-bert-mini-fortune_topic-max_len=%d-steps=%d.safetensors", dir, max_len,
                             base_steps)
local base, task
local f = io.open(cached, "rb")
if f and tostring(a.fresh) ~= "1" then
  f:close()
  local _, tok = zoo.pretrained("bert-mini")
  base = pare.load(cached)
  task = pare.task("fortune_topic", {max_len = max_len, pad_to = 0, tokenizer = tok})
  io.stderr:write(string.format("token_pruning: loaded %s\n", cached))
else
  if f then f:close() end
  local fine = zoo.finetune("bert-mini", "fortune_topic", {steps = base_steps, task = {max_len = max_len}})
  base, task = fine.model, fine.task
  os.execute(string.format("mkdir -p '%s'", dir))
  base:save(cached)
  io.stderr:write(string.format("token_pruning: bert-mini fine-tuned on fortune_topic, accuracy %.4f (majority %.4f)\n",
                                fine.accuracy, fine.majority))
end

local L = #base:layers("*.attn")
local function shares(s)
  local k = {}
  for w in s:gmatch("[^;]+") do k[#k + 1] = tonumber(w) end
  local out = {}
  for l = 1, L do out[l] = k[math.min(l, #k)] end
  return out
end
local function row_share(s)
  local sum = 0
  for _, k in ipairs(shares(s)) do sum = sum + (k >= 1 and T or math.ceil(k * T - 1e-6)) end
  return sum / (L * T)
end
local bench = {batch = 1, T = T, repeats = repeats}
local dense_bench = base:bench(bench)

exp:table("tokens", {
  columns = {"schedule", "row_share", "flop_share", "latency_ms", "latency_lo_ms", "latency_hi_ms", "latency_share",
             "accuracy", "accuracy_ft", "agreement"},
  units = {latency_ms = "ms", latency_lo_ms = "ms", latency_hi_ms = "ms"},
  labels = {row_share = "token rows the layers run on (share of L*T)", flop_share = "forward FLOPs / dense",
            latency_share = "latency / dense (same run)", accuracy = "test accuracy, pruned as is",
            accuracy_ft = "test accuracy after fine-tuning with the schedule", agreement = "top-1 agreement with dense"}})

pare.sweep(exp, "tokens", {{"schedule", schedules}}, function(p)
  local m = p.schedule == "1" and base or base:prune_tokens{keep = p.schedule}
  local b = m:bench(bench)
  local r = {row_share = row_share(p.schedule), flop_share = b.flops / dense_bench.flops, latency_ms = b.median_ms,
             latency_lo_ms = b.ci_lo_ms or 0 / 0, latency_hi_ms = b.ci_hi_ms or 0 / 0,
             latency_share = b.median_ms / dense_bench.median_ms, accuracy = m:evaluate(task).accuracy,
             agreement = m:fidelity(base, task).agreement}
  if p.schedule == "1" then
    r.accuracy_ft = r.accuracy
  else
    m:train(task, {steps = ft_steps, batch = 16, lr = 1e-4, warmup = math.max(1, ft_steps // 10), seed = 1})
    r.accuracy_ft = m:evaluate(task).accuracy
  end
  return r
end)

pare.print_table(exp, "tokens", {columns = {"schedule", "row_share", "flop_share", "latency_ms", "latency_share",
                                            "accuracy", "accuracy_ft", "agreement"}})
exp:plot{table = "tokens", name = "accuracy", x = "row_share", y = {"accuracy", "accuracy_ft"},
         title = string.format("Token pruning (bert-mini, fortune_topic): accuracy vs token rows kept (T=%d)", T),
         xlabel = "token rows the layers run on (share of L*T)", ylabel = "test accuracy"}
exp:plot{table = "tokens", name = "latency", x = "row_share", y = {"latency_share", "flop_share"},
         title = string.format("Token pruning (bert-mini): latency and FLOPs vs rows kept (batch 1 x %d)", T),
         xlabel = "token rows the layers run on (share of L*T)", ylabel = "share of the dense model"}
exp:close()
