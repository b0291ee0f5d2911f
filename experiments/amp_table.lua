-- amp_table.lua — automatic mixed precision against f32 and bf16 Linears (issue 15; docs/amp.md): for each model,
-- three variants — fp32, bf16 (the `bf16` pass: every Linear in bf16, everything else f32) and amp (the `amp` pass:
-- Linears in bf16, GELU / ReLU / tanh / adds / dropout following their input's dtype, LayerNorm / softmax / losses
-- in f32, casts placed and folded) — with accuracy, agreement and logits' cosine with fp32, forward latency (m:bench:
-- median wall clock and CPU time, the variants of a model interleaved over `rounds`), the executor's planned
-- activation bytes and the weights' bytes, and what the AMP pass placed (casts at category boundaries, folded,
-- absorbed, left as cast nodes).
--
-- Models: small encoders trained here on the majority task (post-LN with the erf GELU as BERT, pre-LN with the tanh
-- GELU as GPT-2, each once as built and once through the fuse pass), and the zoo's pretrained models (pare.zoo:
-- bert-mini, gpt-mini) when they are cached under results/models/ — a zoo model that is not built is skipped with a
-- note (building one takes far longer than this table; `pare run experiments/zoo.lua` or any zoo= experiment builds it).
--
--   OMP_NUM_THREADS=1 pare run experiments/amp_table.lua [zoo=bert-mini,gpt-mini] [rounds=3] [repeats=5] [batch=8]
--        [threads=1] [fresh=1]
local pare = require "pare"
local a = pare.args
local threads, rounds, repeats = tonumber(a.threads) or 1, tonumber(a.rounds) or 3, tonumber(a.repeats) or 5
local batch = tonumber(a.batch) or 8
local zoo_names = {}
for w in tostring(a.zoo or "bert-mini,gpt-mini"):gmatch("[^,]+") do zoo_names[#zoo_names + 1] = w end
pare.set_threads(threads)

local exp = pare.experiment("amp_table", {fresh = tostring(a.fresh) == "1", seed = 1})
exp:attr("threads", threads)
exp:table("amp", {"model", "variant", "accuracy", "agreement", "cosine", "latency_ms", "cpu_ms", "speedup_cpu",
                  "activation_mb", "weight_mb", "bf16_values", "boundaries", "folded", "absorbed", "casts", "T", "batch",
                  units = {latency_ms = "ms", cpu_ms = "ms", activation_mb = "MB", weight_mb = "MB"},
                  labels = {agreement = "argmax agreement with fp32", cosine = "logits' cosine with fp32",
                            cpu_ms = "forward CPU time (median)", latency_ms = "forward latency (median)",
                            speedup_cpu = "fp32 CPU time / the variant's (same run)",
                            activation_mb = "planned activation memory (executor)", weight_mb = "weight storage",
                            bf16_values = "nodes computing in bf16 (amp report)", boundaries = "category boundaries (amp)",
                            folded = "casts folded into producers", absorbed = "casts absorbed by consumers",
                            casts = "cast nodes left"},
                  types = {accuracy = "float", agreement = "float", cosine = "float", latency_ms = "float", cpu_ms = "float",
                           speedup_cpu = "float", activation_mb = "float", weight_mb = "float"}})
exp:table("skipped", {"model", "why"})

local function measure(name, base, task, T)
  if exp:has("amp", {model = name, variant = "fp32"}) then return end
  local variants = {{"fp32", base}, {"bf16", base:apply("bf16")}, {"amp", base:apply("amp")}}
  local wall, cpu, bench = {}, {}, {}
  for k in ipairs(variants) do wall[k], cpu[k] = {}, {} end
  for _ = 1, rounds do
    for k, v in ipairs(variants) do
      local b = v[2]:bench{batch = batch, T = T, repeats = repeats, warmup = 1, warmup_min_s = 0, warmup_max_s = 20}
      for _, ms in ipairs(b.samples_ms) do wall[k][#wall[k] + 1] = ms end
      for _, ms in ipairs(b.cpu_samples_ms) do cpu[k][#cpu[k] + 1] = ms end
      bench[k] = b
    end
  end
  local base_cpu = pare.stats.median(cpu[1])
  for k, v in ipairs(variants) do
    local m, kind = v[2], v[1]
    local f = k == 1 and {agreement = 1, cosine = 1} or m:fidelity(base, task)
    local info = m:info()
    local c = info.amp_casts or {}
    local nbf16 = 0
    if kind ~= "fp32" then
      for n in (info.amp or ""):gmatch("(%d+) in bf16") do nbf16 = nbf16 + tonumber(n) end
    end
    exp:record("amp", {model = name, variant = kind, accuracy = m:evaluate(task).accuracy, agreement = f.agreement,
                       cosine = f.cosine, latency_ms = pare.stats.median(wall[k]), cpu_ms = pare.stats.median(cpu[k]),
                       speedup_cpu = base_cpu / pare.stats.median(cpu[k]),
                       activation_mb = bench[k].activation_bytes / 1e6, weight_mb = bench[k].weight_bytes / 1e6,
                       bf16_values = nbf16, boundaries = c.boundaries or 0, folded = c.folded or 0,
                       absorbed = c.absorbed or 0, casts = c.casts or 0, T = T, batch = batch})
  end
end

-- small encoders, trained here (seconds): the majority task at T = 64
local task = pare.task("majority", {seed = 3, n_train = 1024, n_test = 512, min_length = 24, max_length = 64})
for _, s in ipairs({{name = "enc-post-erf", norm = "post", act = "gelu_erf"}, {name = "enc-pre-tanh", norm = "pre", act = "gelu"}}) do
  if not exp:has("amp", {model = s.name, variant = "fp32"}) then
    local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 128, heads = 4, layers = 2,
                         ffn = 512, seed = 1, norm = s.norm, act = s.act}
    m:train(task, {steps = 150, batch = 32, lr = 2e-3, warmup = 20, seed = 7})
    measure(s.name, m, task, task.T)
    measure(s.name .. "+fuse", m:apply("fuse"), task, task.T)
  end
end

-- zoo models, when cached
local zoo = require "pare.zoo"
for _, name in ipairs(zoo_names) do
  local dir = (os.getenv("PARE_ZOO_DIR") or "results/models") .. "/" .. name
  local f = io.open(dir .. "/pare.safetensors", "rb")
  if not f then
    if not exp:has("skipped", {model = name}) then
      exp:record("skipped", {model = name, why = "not built: no " .. dir .. "/pare.safetensors"})
    end
    io.stderr:write(string.format("amp_table: zoo model %s is not built (%s): skipped\n", name, dir))
  else
    f:close()
    local m, t = zoo.subject(name, {max_len = 64})
    measure(name, m, t, math.min(64, m:info().max_T))
  end
end

pare.print_table(exp, "amp", {columns = {"model", "variant", "accuracy", "agreement", "cosine", "cpu_ms", "speedup_cpu",
                                         "latency_ms", "activation_mb", "weight_mb", "boundaries", "folded", "absorbed",
                                         "casts"}})
if #exp:rows("skipped") > 0 then pare.print_table(exp, "skipped") end
exp:plot{table = "amp", name = "speedup", x = "model", y = "speedup_cpu", by = "variant", kind = "bars",
         ylabel = "fp32 CPU time / variant's (same run)",
         title = string.format("AMP vs bf16 Linears vs fp32: forward speed-up (batch %d, %d thread%s)", batch, threads,
                               threads > 1 and "s" or "")}
exp:plot{table = "amp", name = "activations", x = "model", y = "activation_mb", by = "variant", kind = "bars",
         ylabel = "planned activation memory (MB)", title = "AMP vs bf16 Linears vs fp32: activation memory"}
