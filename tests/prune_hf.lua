-- prune_hf.lua — every pruning method of issue 13 on a Hugging Face-format BERT read with pare.load_hf (a
-- tiny BertForSequenceClassification directory written by m:save_hf of a BERT-shaped pare model: post-LN,
-- embedding LayerNorm, token types, a tanh pooler): m:prune (magnitude, snip, taylor; N:M; blocks), movement
-- pruning during fine-tuning, the sparsify pass, sparsegpt, prune_neurons / prune_heads / prune_layers,
-- head_importance and head_relevance, the lottery loop, lowrank and svd_prune. Each gives the requested
-- sparsity or shape, and the result saves and loads with identical logits (pare's checkpoint; save_hf where
-- Hugging Face has the form: dense weights with zeros, heads removed). The criteria themselves are
-- checked against references elsewhere (test_prune.c, test_sparsegpt.c, test_prune_struct.c, ...).
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local dir = string.format("%s/pare-prune-hf-%d-%d", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1 << 30))
os.execute(string.format("mkdir -p '%s'", dir))
local task = pare.task("majority", {seed = 4, n_train = 256, n_test = 64, min_length = 5, max_length = 12})
local src = pare.model{vocab = task.vocab, max_T = 16, classes = 2, d = 32, heads = 4, layers = 2, ffn = 64, norm = "post",
                       act = "gelu_erf", type_vocab = 2, emb_norm = true, pooler = "tanh", ln_eps = 1e-12, seed = 3}
src:train(task, {steps = 40, batch = 32, lr = 3e-3, warmup = 5})
src:save_hf(dir .. "/bert")
local m, info = pare.load_hf(dir .. "/bert")
tap.is(info.head, "BertForSequenceClassification", "load_hf reads the tiny BERT directory")
local dense = m:evaluate(task)
tap.ok(math.abs(dense.accuracy - src:evaluate(task).accuracy) < 1e-12,
       string.format("... and it predicts as the model written (accuracy %.3f)", dense.accuracy))

local n_ckpt = 0
-- p saves (pare checkpoint) and loads with bit-identical logits; with hf, also through save_hf / load_hf
local function roundtrip(p, what, hf)
  n_ckpt = n_ckpt + 1
  local path = string.format("%s/p%d.safetensors", dir, n_ckpt)
  p:save(path)
  local back = pare.load(path)
  local same = back:fidelity(p, task).max_abs_err == 0
  if hf then
    p:save_hf(string.format("%s/hf%d", dir, n_ckpt))
    local hb = pare.load_hf(string.format("%s/hf%d", dir, n_ckpt))
    local e = hb:fidelity(p, task).max_abs_err
    same = same and e <= 1e-5
    tap.ok(same, string.format("%s: saves and loads (pare: identical logits; save_hf -> load_hf: max |diff| %.2g)", what, e))
  else
    tap.ok(same, what .. ": saves and loads with identical logits")
  end
end

-- unstructured criteria and patterns: the sparsity asked for in every encoder Linear
local function exact(p, s, what)
  local good, worst = true, ""
  for name, l in pairs(p:sparsity("enc.*").layers) do
    if math.abs(l.zeros - math.floor(s * l.total + 0.5)) > 1 then good, worst = false, " (" .. name .. ")" end
  end
  tap.ok(good, string.format("%s: every encoder Linear at %.2f sparsity%s", what, s, worst))
end
for _, meth in ipairs{"magnitude", "snip", "taylor"} do
  local calib = meth ~= "magnitude" and task or nil
  local p = m:prune{method = meth, sparsity = 0.6, calib = calib, calib_samples = calib and 32 or nil}
  exact(p, 0.6, "m:prune " .. meth)
  if meth == "magnitude" then roundtrip(p, "magnitude 60%", true) end
end
local nm = m:prune{pattern = "nm", n = 2, m = 4}
tap.is(nm:sparsity("enc.*").sparsity, 0.5, "N:M 2:4 prunes exactly half")
local blk = m:prune{pattern = "block", block = "4x1", sparsity = 0.5}
exact(blk, 0.5, "block 4x1")

-- movement pruning during fine-tuning (a schedule given to m:train)
local mv = m:prune{method = "lock"}
local sc = pare.prune_schedule{method = "movement", schedule = "oneshot", sparsity = 0.5, start = 4}
mv:train(task, {steps = 8, batch = 16, lr = 1e-3, warmup = 2}, sc)
tap.ok(math.abs(mv:sparsity("enc.*").sparsity - 0.5) < 1e-3,
       string.format("movement (oneshot at step 4 of fine-tuning): sparsity %.4f", mv:sparsity("enc.*").sparsity))
roundtrip(mv, "movement-pruned")

-- the sparsify pass: the masked weights stored sparse, the same logits
local base = m:prune{sparsity = 0.8}
local sp = base:apply("sparsify", {format = "csr"})
tap.ok(sp:fidelity(base, task).max_abs_err < 1e-4 and sp:info().applied:find("sparsify") ~= nil,
       string.format("sparsify csr of 80%% magnitude: the masked model's logits (max |diff| %.2g)", sp:fidelity(base, task).max_abs_err))
roundtrip(sp, "sparsified")

-- SparseGPT
local sg = m:apply("sparsegpt", {sparsity = 0.5, calib = task, calib_samples = 32})
exact(sg, 0.5, "sparsegpt")
roundtrip(sg, "sparsegpt 50%", true)

-- structured: neurons, heads, layers (physically removed)
local p0 = m:info().params
local pn = m:apply("prune_neurons", {level = 0.5, criterion = "taylor", calib = task, calib_samples = 32})
local wide = pn:sparsity().layers["enc.0.ffn.up"]
tap.ok(pn:info().params < p0 and wide and wide.total == 32 * 32,
       string.format("prune_neurons 0.5: enc.0.ffn.up is 32 x 32 (%d -> %d parameters)", p0, pn:info().params))
roundtrip(pn, "neurons removed")
local ph = m:apply("prune_heads", {level = 0.5, criterion = "taylor", calib = task, calib_samples = 32})
tap.is(table.concat(ph:info().heads_per_layer, ","), "2,2", "prune_heads 0.5: 2 heads left per layer")
roundtrip(ph, "heads removed", true)
local pl = m:apply("prune_layers", {k = 1, calib = task, calib_samples = 32})
tap.is(#pl:layers("*.attn"), 1, "prune_layers k=1: one layer left")
roundtrip(pl, "a layer removed")

-- head scores
local imp, rel = m:head_importance(task, {n = 32}), m:head_relevance(task, {n = 32})
tap.ok(#imp == 2 and #rel == 2 and #imp[1].scores == 4 and #rel[2].scores == 4,
       "head_importance and head_relevance: 2 layers of 4 heads")

-- the lottery loop (one round, rewinding to step 2)
local run = pare.lottery.run(m, task, {rate = 0.4, rounds = 1, rewind = 2,
                                       train = {steps = 4, batch = 8, lr = 1e-3, warmup = 1}})
tap.ok(#run.rounds == 2 and math.abs(run.rounds[2].sparsity - 0.4) < 1e-2,
       string.format("lottery: round 1 at sparsity %.3f", run.rounds[2].sparsity))

-- factorization and SVD significance
local lr = m:apply("lowrank", {rank = 8})
tap.ok(lr:info().params < p0 and lr:fidelity(m, task).max_abs_err > 0,
       string.format("lowrank rank 8 on the FFN: %d -> %d parameters", p0, lr:info().params))
roundtrip(lr, "lowrank")
local sn = m:apply("svd_prune", {component = "neurons", level = 0.25})
tap.is(sn:sparsity().layers["enc.1.ffn.up"].total, 48 * 32, "svd_prune neurons 0.25: 48 of 64 neurons left")
local sh = m:apply("svd_prune", {component = "heads", level = 0.25})
tap.is(table.concat(sh:info().heads_per_layer, ","), "3,3", "svd_prune heads 0.25: 3 heads left per layer")
roundtrip(sh, "svd_prune heads", true)

os.execute(string.format("rm -rf '%s'", dir))
tap.done()
