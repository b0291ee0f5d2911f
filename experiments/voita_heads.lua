-- voita_heads.lua — Voita et al. 2019, "Analyzing Multi-Head Self-Attention: Specialized Heads Do the Heavy
-- Lifting, the Rest Can Be Pruned" (seed 003's head-pruning table): hard-concrete L0 gates on every head of
-- a trained encoder-decoder, fine-tuned under the penalty λ Σ P(z ≠ 0) for several λ; the heads whose gate
-- closes are removed physically (m:prune_gated_heads) and the model is scored by BLEU — "pruned from a
-- trained model"; then a fresh model of the same head configuration is trained from scratch for as many
-- steps as the pruned model saw in all (steps + gate_steps) — "trained from scratch". Also each head's confidence (mean max attention
-- weight, the paper's second measure) on the base model beside its final gate.
--
--   pare run experiments/voita_heads.lua [lambdas=0.01,0.05,0.2,0.6] [steps=400] [gate_steps=200] [d=16]
--        [heads=4] [layers=2] [n_train=4000] [n_bleu=200] [seed=1]
--
-- The task is the synthetic translation task (docs/tasks.md) made harder than its default, so that BLEU
-- falls when heads go (the default is learnt to BLEU 100 by a 1-layer d=32 model that needs few of its
-- heads): every lexicon at its largest (16 nouns, verbs, adjectives), more adjectives, plural nouns and
-- number words (longer sentences with more agreement), and a small model (d=16) of 2 + 2 layers × 4 heads (8 / 8 / 8
-- heads in encoder self-, decoder self- and cross-attention, where the paper's Transformer-base has 48 / 48 /
-- 48). Its BLEU is synthetic translation, not WMT's.
local pare = require "pare"
local a = pare.args

local list = pare.numbers
local lambdas = list(a.lambdas, {0.01, 0.05, 0.2, 0.6})
local steps, gate_steps = tonumber(a.steps) or 400, tonumber(a.gate_steps) or 200
local d, heads, layers = tonumber(a.d) or 16, tonumber(a.heads) or 4, tonumber(a.layers) or 2
local n_bleu, seed = tonumber(a.n_bleu) or 200, tonumber(a.seed) or 1
local gate_lr = tonumber(a.gate_lr) or 0.05

local exp = pare.experiment("voita_heads", {seed = seed, dir = a.results_dir, plots = a.plots_dir, fresh = tostring(a.fresh) == "1"})
local task = pare.task("translate", {seed = seed, n_train = tonumber(a.n_train) or 4000, n_test = n_bleu,
                                     n_nouns = 16, n_verbs = 16, n_adjectives = 16,
                                     p_adjective = 0.6, p_plural = 0.5, p_number = 0.6, p_object = 0.8})
local arch = {kind = "encdec", vocab = task.vocab, src_vocab = task.src_vocab, max_T = task.T, src_max_T = task.S,
              d = d, heads = heads, layers = layers, enc_layers = layers, ffn = 2 * d, seed = seed}
local train_opts = {steps = steps, batch = 32, lr = 3e-3, warmup = 40, seed = seed}
local function bleu(m) return m:translate(task, {n = n_bleu}).bleu end

-- the base model, trained once and kept beside the results (a rerun with the same settings reuses it)
local key = string.format("d%d-h%d-l%d-s%d-n%d-seed%d", d, heads, layers, steps, task.n_train or 0, seed)
local base_path = (a.results_dir or "results") .. "/voita_heads-base-" .. key .. ".safetensors"
local okload, base = pcall(pare.load, base_path)
if not okload then
  base = pare.model(arch)
  base:train(task, train_opts)
  base:save(base_path)
end
local base_bleu = bleu(base)
local total = 3 * layers * heads
-- the control: the base model fine-tuned as long as the gated ones, without gates (the gated rows also get
-- gate_steps more training; this row says how much of their BLEU is that)
local ft_opts = {steps = gate_steps, batch = 32, lr = 1e-3, warmup = 0, seed = seed + 1}

-- head confidence of the base model (layer name -> {per head})
local conf = {}
for _, l in ipairs(base:head_confidence(task, {n = math.min(n_bleu, 200)})) do conf[l.name] = l.scores end

exp:table("gates", {"lambda", "heads_enc", "heads_dec", "heads_cross", "heads_kept", "bleu_gated", "bleu_pruned",
                    "penalty", "gone", types = {lambda = "float", bleu_gated = "float", bleu_pruned = "float", penalty = "float"},
                    labels = {bleu_pruned = "BLEU pruned from the trained model", gone = "heads removed, layer:h,h;..."}})
exp:table("heads", {"lambda", "layer", "kind", "head", "confidence", "z", types = {lambda = "float", confidence = "float", z = "float"}})
pare.sweep(exp, "gates", {{"lambda", lambdas}}, function(p)
  local g = base:head_gates{lambda = p.lambda, gate_lr = gate_lr}
  g:train(task, ft_opts)
  local values, penalty = g:gate_values()
  local gone = {}
  for _, l in ipairs(values) do
    local hs = {}
    for h, z in ipairs(l.scores) do
      if z == 0 then hs[#hs + 1] = tostring(h - 1) end
      if not exp:has("heads", {lambda = p.lambda, layer = l.name, head = h - 1}) then
        exp:record("heads", {lambda = p.lambda, layer = l.name, kind = l.kind, head = h - 1, confidence = conf[l.name][h], z = z})
      end
    end
    if #hs > 0 then gone[#gone + 1] = l.name .. ":" .. table.concat(hs, ",") end
  end
  local bleu_gated = bleu(g)
  local pruned, kept = g:prune_gated_heads()
  return {heads_enc = kept.enc, heads_dec = kept.dec, heads_cross = kept.cross, heads_kept = kept.enc + kept.dec + kept.cross,
          bleu_gated = bleu_gated, bleu_pruned = bleu(pruned), penalty = penalty, gone = table.concat(gone, ";")}
end)

-- the same head configurations trained from scratch: a fresh model with the same heads dropped (a layer whose
-- gates all closed keeps one head, as the pruned model does), trained for steps + gate_steps: the total the
-- pruned model saw
local scratch_opts = {steps = steps + gate_steps, batch = 32, lr = 3e-3, warmup = 40, seed = seed}
exp:table("scratch", {"lambda", "heads_kept", "bleu_scratch", types = {lambda = "float", bleu_scratch = "float"}})
local gates_rows = exp:rows("gates")
local lam_list = {}
for _, r in ipairs(gates_rows) do lam_list[#lam_list + 1] = r.lambda end
pare.sweep(exp, "scratch", {{"lambda", lam_list}}, function(p)
  local row
  for _, r in ipairs(gates_rows) do if r.lambda == p.lambda then row = r end end
  local m = pare.model(arch)
  for spec in row.gone:gmatch("[^;]+") do
    local layer, hs = spec:match("([^:]+):(.*)")
    local drop = {}
    for h in hs:gmatch("[^,]+") do drop[#drop + 1] = tonumber(h) end
    if #drop == heads then table.remove(drop, 1) end -- keep one
    m = m:drop_heads(layer, drop)
  end
  m:train(task, scratch_opts)
  return {heads_kept = row.heads_kept, bleu_scratch = bleu(m)}
end)

-- seed 003's table: heads (e/d/d-e) against BLEU, pruned from a trained model vs trained from scratch
exp:table("table", {"config", "lambda", "heads", "heads_kept", "bleu_from_trained", "bleu_from_scratch",
                    types = {lambda = "float", bleu_from_trained = "float", bleu_from_scratch = "float"}})
exp:table("bleu", {"source", "heads_kept", "bleu", types = {bleu = "float"}})
local per = layers * heads
-- the full configuration at the same budgets as the pruned rows: the base model fine-tuned gate_steps more
-- without gates (from trained), and a full model trained steps + gate_steps from scratch
if not exp:has("table", {config = "baseline"}) then
  local ft = pare.load(base_path)
  ft:train(task, ft_opts)
  local full = pare.model(arch)
  full:train(task, scratch_opts)
  local ft_bleu, full_bleu = bleu(ft), bleu(full)
  exp:record("table", {config = "base model (steps only)", lambda = 0.0, heads = string.format("%d/%d/%d", per, per, per),
                       heads_kept = total, bleu_from_trained = base_bleu, bleu_from_scratch = base_bleu})
  exp:record("table", {config = "baseline", lambda = 0.0, heads = string.format("%d/%d/%d", per, per, per), heads_kept = total,
                       bleu_from_trained = ft_bleu, bleu_from_scratch = full_bleu})
  exp:record("bleu", {source = "trained", heads_kept = total, bleu = ft_bleu})
  exp:record("bleu", {source = "scratch", heads_kept = total, bleu = full_bleu})
end
local scratch = {}
for _, r in ipairs(exp:rows("scratch")) do scratch[r.lambda] = r.bleu_scratch end
for _, r in ipairs(gates_rows) do
  if not exp:has("table", {config = "sparse heads", lambda = r.lambda}) then
    exp:record("table", {config = "sparse heads", lambda = r.lambda, heads = string.format("%d/%d/%d", r.heads_enc, r.heads_dec,
                         r.heads_cross), heads_kept = r.heads_kept, bleu_from_trained = r.bleu_pruned,
                         bleu_from_scratch = scratch[r.lambda] or 0 / 0})
    exp:record("bleu", {source = "trained", heads_kept = r.heads_kept, bleu = r.bleu_pruned})
    exp:record("bleu", {source = "scratch", heads_kept = r.heads_kept, bleu = scratch[r.lambda] or 0 / 0})
  end
end
pare.print_table(exp, "table", {columns = {"config", "lambda", "heads", "bleu_from_trained", "bleu_from_scratch"}})
exp:plot{table = "bleu", name = "bleu", x = "heads_kept", y = "bleu", by = "source",
         title = "Voita et al. head pruning: BLEU against heads kept (synthetic translation)", xlabel = "attention heads kept (enc + dec + cross)"}
exp:plot{table = "heads", name = "confidence", x = "confidence", y = "z", by = "lambda",
         title = "Final gate z against the head's confidence in the base model", xlabel = "head confidence (mean max attention weight)"}
exp:close()
