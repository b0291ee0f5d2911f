-- distill_compose.lua — distillation composed with the other families (issue 14), end to end through the
-- public Lua API, on distill_beats_scratch.lua's setting: majority of 5..21 bits, a 2 × 32 teacher trained on
-- 2000 labelled examples, students that may use 8 labels or the teacher on the 2000 inputs (unlabelled).
--   1. quantization-aware distillation: qat, then m:train with the teacher — the fake-quant transforms stay,
--      the KL term falls, qat_convert gives the int8 kernel at the QAT model's accuracy, and the QAT student
--      with a teacher beats the QAT student on its labels alone at the same budget (every seed);
--   2. a pruned student: the teacher under a magnitude mask, and physically pruned (heads, FFN neurons) then
--      masked, distilled from the unpruned teacher — the masks do not move and the masked weights stay exactly
--      zero (the weights baked by sparsify → dequantize hold as many zeros as the masks), the physically
--      pruned shapes stay, the accuracy recovers above the pruned model's before training;
--   3. distil then quantize: the distilled student through dynamic_int8 keeps its accuracy, saves and loads.
-- Measured when written (2 loaded cores; accuracies do not depend on the load) — in the diagnostics.
local pare = require "pare"
local distill = require "pare.distill"
local tap = pare.tap
pare.set_threads(2)

local ML = 21
local full = pare.task("majority", {seed = 3, n_train = 2000, n_test = 400, max_length = ML})
local few = pare.task("majority", {seed = 3, n_train = 8, n_test = 400, max_length = ML})
local T = full.T
local teacher = pare.model{vocab = full.vocab, max_T = T, classes = 2, d = 32, heads = 2, layers = 2, seed = 1}
teacher:train(full, {steps = 300, batch = 32, lr = 3e-3, warmup = 20})
local ta = teacher:evaluate(full).accuracy
tap.ok(ta >= 0.98, string.format("the teacher learns majority of up to %d bits (test accuracy %.4f)", ML, ta))

local function acc(m) return m:evaluate(full).accuracy end
local function student(seed)
  return pare.model{vocab = full.vocab, max_T = T, classes = 2, d = 16, heads = 2, layers = 1, seed = 10 + seed}
end
local function budget(seed) return {steps = 40, batch = 16, lr = 3e-3, warmup = 5, seed = seed} end
local function kd(m) -- the teacher's logits only (T²·KL at T = 4), no labels
  local losses, hw = distill.kd_losses(m, teacher, {T = 4, alpha = 0})
  return {teacher = teacher, hard_weight = hw, losses = losses}
end
local function term(r, op) -- the run's term of a loss op
  for _, t in ipairs(r.terms or {}) do if t.loss == op then return t end end
end
local function methods(m) -- the quantization method of every Linear layer
  local out = {}
  for _, q in ipairs(m:quant_report()) do out[#out + 1] = q.layer .. "=" .. tostring(q.method) end
  return out
end
local function qat_layers(m) -- the layers under fake quantization (qat leaves the head in f32 by default)
  local out = {}
  for _, q in ipairs(m:quant_report()) do
    if tostring(q.method):match("^qat") then out[#out + 1] = q.layer end
  end
  return table.concat(out, ",")
end

-- ---- 1. quantization-aware distillation ----
local CAL = {calib = full, calib_samples = 64, bits = 8}
local lines, all_ok, fp_distilled = {}, true, nil
for seed = 1, 3 do
  local q_kd = student(seed):apply("qat", CAL)
  local nodes, under = #q_kd:layers(), qat_layers(q_kd)
  local r = q_kd:train(full, budget(seed), kd(q_kd))
  local q_lab = student(seed):apply("qat", CAL)
  q_lab:train(few, budget(seed))
  local a_kd, a_lab = acc(q_kd), acc(q_lab)
  tap.ok(a_kd >= a_lab + 0.04, string.format("seed %d: QAT with the teacher %.4f vs QAT on its 8 labels %.4f (+%.1f points)",
                                             seed, a_kd, a_lab, 100 * (a_kd - a_lab)))
  all_ok = all_ok and a_kd >= a_lab + 0.04
  lines[#lines + 1] = string.format("%.4f/%.4f", a_lab, a_kd)
  if seed == 1 then
    local kl = term(r, "kl_div")
    tap.ok(kl and kl.last < 0.75 * kl.first and r.window == 4,
           string.format("QAT + teacher: the KL term falls %.4f -> %.4f (mean of the first and last %d steps)",
                         kl and kl.first or 0 / 0, kl and kl.last or 0 / 0, r.window))
    local ce = term(r, "cross_entropy")
    tap.ok(ce and ce.weight == 0 and ce.last < ce.first,
           string.format("... and the cross-entropy on the labels it never saw (weight %s) falls too: %.4f -> %.4f",
                         ce and ce.weight or "?", ce and ce.first or 0 / 0, ce and ce.last or 0 / 0))
    tap.ok(under ~= "" and qat_layers(q_kd) == under and q_kd:info().simulated and #q_kd:layers() == nodes,
           "after distillation the model still runs under its QAT transforms (simulated, no distillation node left): "
           .. table.concat(methods(q_kd), " "))
    local conv = q_kd:apply("qat_convert")
    local f = conv:fidelity(q_kd, full)
    local fmt_ok, nq = true, 0
    for _, rep in ipairs(conv:quant_report()) do
      if under:find(rep.layer, 1, true) then fmt_ok, nq = fmt_ok and rep.format == "int8", nq + 1 end
    end
    fmt_ok = fmt_ok and nq == select(2, under:gsub(",", "")) + 1
    local a_conv = acc(conv)
    tap.ok(fmt_ok and not conv:info().simulated and math.abs(a_conv - a_kd) <= 0.01 and f.agreement >= 0.99,
           string.format("qat_convert: the int8 kernel, accuracy %.4f vs the QAT model's %.4f, agreement %.4f",
                         a_conv, a_kd, f.agreement))
    -- the same student in f32 with the same teacher and budget: the reference of the QAT one
    fp_distilled = student(seed)
    fp_distilled:train(full, budget(seed), kd(fp_distilled))
    tap.diag(string.format("seed 1: f32 student distilled %.4f, QAT student distilled %.4f, converted %.4f",
                           acc(fp_distilled), a_kd, a_conv))
  end
end
tap.ok(all_ok, "QAT on 8 labels / QAT with the teacher per seed: " .. table.concat(lines, " "))

-- ---- 2. a pruned student ----
local files = {}
local function tmp(name)
  local p = string.format("%s/pare-distill-compose-%d-%s", os.getenv("TMPDIR") or "/tmp", math.random(1 << 30), name)
  files[#files + 1] = p
  return p
end
-- the tensors of a safetensors file whose name ends in ".mask": name -> raw bytes (read without the engine)
local function masks(m)
  local path = tmp("masks.safetensors")
  m:save(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  local n = string.unpack("<I8", s)
  local out, count = {}, 0
  for name, a, b in s:sub(9, 8 + n):gmatch('"([^"]+)":%s*{[^}]-"data_offsets":%s*%[(%d+),%s*(%d+)%]') do
    if name:match("%.mask$") then out[name], count = s:sub(8 + n + tonumber(a) + 1, 8 + n + tonumber(b)), count + 1 end
  end
  return out, count
end
-- per layer: the masks' zeros and the exact zeros of the weights the model computes with (masks baked by
-- sparsify into CSR, then back to plain f32 by dequantize)
local function zeros_match(m)
  local baked = m:apply("sparsify"):apply("dequantize")
  local sm, sb = m:sparsity(), baked:sparsity()
  local bad, n = nil, 0
  for name, l in pairs(sm.layers) do
    n = n + 1
    if l.zeros ~= (sb.layers[name] or {}).zeros then bad = name end
  end
  return bad == nil and n > 0 and sm.zeros > 0, bad, sm.zeros, sb.zeros
end

local function pruned_case(what, p, check_shape)
  local a0 = acc(p)
  local m0, nmask = masks(p)
  local sp0 = p:sparsity()
  local r = p:train(full, budget(1), kd(p))
  local a1 = acc(p)
  local m1 = masks(p)
  local same = nmask > 0
  for name, bytes in pairs(m0) do same = same and m1[name] == bytes end
  tap.ok(same and p:sparsity().zeros == sp0.zeros,
         string.format("%s: the %d masks are byte for byte those before training (%d zeros)", what, nmask, sp0.zeros))
  local ok, bad, zm, zb = zeros_match(p)
  tap.ok(ok, string.format("%s: the weights it computes with are exactly zero where masked (%d zeros baked, %d masked%s)",
                           what, zb, zm, bad and ", first differing layer " .. bad or ""))
  local kl = term(r, "kl_div")
  tap.ok(kl and kl.last < kl.first, string.format("%s: the KL term falls %.4f -> %.4f", what, kl and kl.first or 0 / 0,
                                                 kl and kl.last or 0 / 0))
  tap.ok(a1 >= a0 + 0.1, string.format("%s: accuracy recovers %.4f -> %.4f distilled from the unpruned teacher (%.4f)",
                                       what, a0, a1, ta))
  if check_shape then check_shape(p) end
  return a0, a1
end

pruned_case("magnitude 98%", teacher:prune{method = "magnitude", sparsity = 0.98})
local phys = teacher:apply("prune_heads", {level = 0.5, criterion = "magnitude"})
                    :apply("prune_neurons", {level = 0.75, criterion = "magnitude"})
local pinfo = phys:info()
local tinfo = teacher:info()
tap.ok(pinfo.params < tinfo.params and table.concat(pinfo.heads_per_layer, ",") == "1,1" and
       table.concat(pinfo.ffn_per_layer, ",") == "32,32",
       string.format("heads and FFN neurons physically pruned: %d -> %d parameters, heads %s, FFN %s", tinfo.params,
                     pinfo.params, table.concat(pinfo.heads_per_layer, ","), table.concat(pinfo.ffn_per_layer, ",")))
pruned_case("heads 1 of 2 + FFN 32 of 128 + magnitude 95%", phys:prune{method = "magnitude", sparsity = 0.95}, function(p)
  local i = p:info()
  tap.ok(i.params == pinfo.params and table.concat(i.heads_per_layer, ",") == "1,1" and
         table.concat(i.ffn_per_layer, ",") == "32,32",
         string.format("the physically pruned student keeps its shapes after distillation (%d parameters)", i.params))
end)

-- ---- 3. distil then quantize ----
local s = fp_distilled
local a_s = acc(s)
local q8 = s:apply("dynamic_int8")
local a_q = acc(q8)
local fmt8 = true
for _, rep in ipairs(q8:quant_report()) do fmt8 = fmt8 and rep.format == "int8" end
tap.ok(fmt8 and math.abs(a_q - a_s) <= 0.01, string.format("distil then dynamic_int8: accuracy %.4f vs the f32 student's %.4f, "
                                                           .. "%.4f MB vs %.4f MB", a_q, a_s, q8:info().size_mb, s:info().size_mb))
-- a checkpoint holds the int8 weights as they are stored (docs/checkpoints.md): loaded, the same model
local path = tmp("int8.safetensors")
q8:save(path)
local back, meta = pare.load(path)
local fb = back:fidelity(q8, full)
tap.ok(meta.applied == "dynamic_int8" and fb.max_abs_err == 0 and back:quant_report()[1].format == "int8" and acc(back) == a_q,
       string.format("the distilled int8 student saves and loads as int8 (applied = %s, max |Δ| %g of the logits)",
                     meta.applied, fb.max_abs_err))

for _, p in ipairs(files) do os.remove(p) end
tap.done()
