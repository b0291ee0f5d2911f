-- bf16.lua — the bf16 pass (issue 15; docs/mixed-precision.md): Linear layers stored in bf16 or f16 on a real kernel.
-- Its schema and option errors; info / quant_report / size (2 bytes per weight, exactly); the same function as the
-- simulated (fake_quant) 16-bit layers up to the order of f32 additions; close to f32 on a trained model (accuracy
-- within a point); a subset of layers; checkpoints that come back bit for bit in 16 bits; dequantize; f16 training and
-- masked layers refused with the reason (bf16 training: tests/bf16_train.lua). The kernels themselves are checked in C (tests/test_half.c).
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

tap.like(pare.schema_help("bf16"), "dtype%s+enum%s+bf16%s+bf16|f16", "schema_help lists dtype=bf16|f16")
tap.like(pare.schema_help("bf16"), "layers", "schema_help lists layers")

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 400, min_length = 5, max_length = 9})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64,
                     seed = 1}
m:train(task, {steps = 300, batch = 32, lr = 3e-3, warmup = 20, seed = 7})
local fp = m:evaluate(task)
tap.ok(fp.accuracy > 0.7, string.format("the f32 model learned (%.3f)", fp.accuracy))

tap.like(tap.error_of(function() return m:apply("bf16", {dtype = "f8"}) end), "bf16|f16", "a bad dtype lists bf16|f16")
tap.like(tap.error_of(function() return m:apply("bf16", {layers = "nothing.*"}) end), "matches no Linear layer",
         "a pattern matching nothing is refused")

-- the Linear weights' element count, for the exact size accounting
local linear_numel = 0
for _, r in ipairs(m:quant_report()) do linear_numel = linear_numel + r.size_bytes // 4 end
local toks = {{1, 2, 3, 2, 1, 2, 3, 2}, {3, 2, 3, 1, 2}}
local function logits(mm) return mm:forward{tokens = toks}.logits.values end
local function maxdiff(a, b)
  local d, s = 0, 0
  for i = 1, #a do d, s = math.max(d, math.abs(a[i] - b[i])), math.max(s, math.abs(b[i])) end
  return d, s
end

for _, dt in ipairs({"bf16", "f16"}) do
  local h = m:apply("bf16", {dtype = dt})
  local info = h:info()
  tap.is(info.format, dt, dt .. ": info().format")
  tap.like(info.kernel, dt .. " w%+a, f32 accumulation %(", dt .. ": info().kernel says what runs: " .. info.kernel)
  tap.ok(not info.simulated, dt .. ": not simulated")
  tap.is(m:info().size_bytes - info.size_bytes, 2 * linear_numel,
         string.format("%s: size_bytes smaller by exactly 2 bytes per Linear weight (%d weights)", dt, linear_numel))
  local rep, all = h:quant_report(), true
  for _, r in ipairs(rep) do
    all = all and r.format == dt and r.bits_per_weight == 16 and r.method == dt and not r.simulated
  end
  tap.ok(all and #rep > 0, string.format("%s: quant_report: %d layers, 16 bits per weight, method %s", dt, #rep, dt))
  -- the simulated 16-bit rows compute the same values (rounded weights and activations); only the order of the
  -- f32 sums differs: a few f32 ulps of the logits' magnitude
  local nf = dt == "f16" and "fp16" or "bf16"
  local sim = m:apply("fake_quant", {w_format = nf, a_format = nf})
  local d, s = maxdiff(logits(h), logits(sim))
  tap.ok(d <= 1e-5 * math.max(s, 1), string.format("%s: logits == fake_quant %s w+a up to f32 sums (max |diff| %.2g, |logit| <= %.2g)",
                                                   dt, nf, d, s))
  local q = h:evaluate(task)
  tap.ok(math.abs(q.accuracy - fp.accuracy) <= 0.01,
         string.format("%s: accuracy %.4f within a point of f32's %.4f", dt, q.accuracy, fp.accuracy))
  local f = h:fidelity(m, task)
  tap.ok(f.cosine > 0.999, string.format("%s: logits' cosine with f32 %.6f, agreement %.4f", dt, f.cosine, f.agreement))
  -- checkpoints: the dtype is saved beside the f32 masters and the same 16-bit weights rebuilt
  local path = os.tmpname()
  h:save(path)
  local back, meta = pare.load(path)
  os.remove(path)
  tap.is(back:info().format, dt, dt .. ": a checkpoint comes back in " .. dt)
  tap.is(meta.applied, "bf16", dt .. ": the checkpoint records the pass")
  local lb, lh = logits(back), logits(h)
  local same = #lb == #lh
  for i = 1, #lb do same = same and lb[i] == lh[i] end
  tap.ok(same, dt .. ": the loaded model's logits are bit-identical")
  -- dequantize: f32 weights on the 16-bit grid (activations back in f32), the same as fake_quant of the weights only
  local deq = h:apply("dequantize")
  local wsim = m:apply("fake_quant", {w_format = nf})
  d, s = maxdiff(logits(deq), logits(wsim))
  tap.ok(deq:info().format == "f32" and d <= 1e-5 * math.max(s, 1),
         string.format("%s: dequantize gives the 16-bit values back in f32 (max |diff| to fake_quant w-only %.2g)", dt, d))
  -- training: bf16 trains its f32 masters (tests/bf16_train.lua); f16 is refused, naming the format and the way out
  if dt == "f16" then
    tap.like(tap.error_of(function() return h:train(task, {steps = 1}) end),
             "stored as f16, which pare does not train: f16 training needs loss scaling.*dtype = \"bf16\"",
             "f16: training refused, naming the format, the reason and the option")
  else
    tap.ok(pcall(h.train, h, task, {steps = 1}), "bf16: one training step runs (tests/bf16_train.lua trains)")
  end
end

-- a subset of layers; the rest stay f32; a second application skips layers already in 16 bits
local part = m:apply("bf16", {layers = "enc.*.ffn.*"})
tap.is(part:info().format, "mixed(f32+bf16)", "layers=enc.*.ffn.*: the FFN in bf16, the rest f32")
local both = part:apply("bf16", {dtype = "f16"})
tap.is(both:info().format, "mixed(f16+bf16)", "a second pass takes only the layers still f32")

-- the mixed pass's bf16 / fp16 entries now run on the real format
local mixed = m:apply("mixed", {spec = "enc.*.ffn.*=fp16, *=bf16"})
tap.is(mixed:info().format, "mixed(bf16+f16)", "mixed spec bf16 / fp16: the real 16-bit format")
tap.ok(not mixed:info().simulated, "mixed 16-bit: not simulated")

-- a layer under a pruning mask: refused (the mask would be ignored), as the other quantizers do
local pruned = m:apply("prune_magnitude", {sparsity = 0.5})
tap.like(tap.error_of(function() return pruned:apply("bf16") end), "pruning mask.*Bake it", "a masked layer is refused")
-- embedding tables in bf16 (embeddings = true): 2 bytes per table entry, the lookups widen rows; checkpoints rebuild the
-- same bits; training refreshes the tables from their f32 masters (docs/mixed-precision.md "Embeddings and softmax")
do
  local mb = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64,
                        seed = 1, type_vocab = 2, emb_norm = true}
  local h, e = mb:apply("bf16"), mb:apply("bf16", {embeddings = true})
  local tables = (task.vocab + task.T + 2) * 32
  tap.is(h:info().size_bytes - e:info().size_bytes, 2 * tables,
         string.format("embeddings = true: size_bytes smaller by exactly 2 bytes per table entry (%d entries)", tables))
  local t = mb:apply("bf16", {embeddings = true, layers = ""})
  tap.is(mb:info().size_bytes - t:info().size_bytes, 2 * tables, "embeddings = true, layers = \"\": the tables alone")
  local sin = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 1, ffn = 64,
                         seed = 1, pos = "sinusoidal"}
  tap.is(sin:info().size_bytes - sin:apply("bf16", {embeddings = true, layers = ""}):info().size_bytes, 2 * task.vocab * 32,
         "a fixed (sinusoidal) position table stays f32 (recomputed, counted 0): only the token table shrinks")
  local d, s = maxdiff(logits(e), logits(h))
  tap.ok(d <= 0.02 * math.max(s, 1) and d > 0,
         string.format("bf16 tables move the logits by bf16 rounding of the embeddings (max |diff| %.3g, |logit| <= %.3g)", d, s))
  local path = os.tmpname()
  e:save(path)
  local back = pare.load(path)
  os.remove(path)
  local lb, le = logits(back), logits(e)
  local same = #lb == #le
  for i = 1, #lb do same = same and lb[i] == le[i] end
  tap.ok(same and back:info().size_bytes == e:info().size_bytes,
         "a checkpoint with bf16 tables comes back bit for bit (logits and size)")
  -- training: the masters train, refresh rounds them into the tables; a reload from the masters gives the same logits
  local tr = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64,
                        seed = 1}:apply("bf16", {embeddings = true})
  local before = logits(tr)
  tr:train(task, {steps = 20, batch = 16, lr = 3e-3, seed = 7})
  local after = logits(tr)
  path = os.tmpname()
  tr:save(path)
  local tb = pare.load(path)
  os.remove(path)
  local la, moved = logits(tb), false
  same = true
  for i = 1, #after do same, moved = same and la[i] == after[i], moved or after[i] ~= before[i] end
  tap.ok(moved and same, "bf16 tables train through their f32 masters: after 20 steps the tables are the masters rounded "
         .. "(a reload from the masters gives bit-identical logits)")
  local f16 = mb:apply("bf16", {embeddings = true, dtype = "f16"})
  tap.like(tap.error_of(function() return f16:train(task, {steps = 1}) end), "stored as f16, which pare does not train",
           "f16 tables: training refused, as for f16 Linears")
end
tap.done()
