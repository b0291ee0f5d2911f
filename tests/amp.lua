-- amp.lua — automatic mixed precision (issue 15; docs/amp.md) from Lua: the schema and pare.amp_policy(); a small
-- trained encoder under AMP keeps its accuracy and its logits within bf16 tolerance of f32 (pre-LN, post-LN, fused by
-- the fuse pass, unfused); policy tables edit the placement; invalid policies name the choices; m:info() reports the
-- casts; AMP after int8 leaves the int8 layers alone; training an AMP model is refused. The bf16 kernels themselves
-- are checked against their f32 references on bf16 inputs in C (tests/test_amp.c: exhaustive over the bf16 patterns).
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

tap.like(pare.schema_help("amp"), "policy", "schema_help lists policy")
tap.like(pare.schema_help("amp"), "dtype%s+enum%s+bf16%s+bf16|f16", "schema_help lists dtype=bf16|f16")
local pol = pare.amp_policy()
tap.ok(pol.linear == "lower" and pol.gelu == "follow" and pol.layernorm == "fp32" and pol.softmax == "fp32" and
       pol.add == "follow" and pol.bmm_qk == "lower" and pol.cast == nil, "pare.amp_policy(): the defaults by op")
tap.is(pare.amp_policy({gelu = "fp32"}).gelu, "fp32", "pare.amp_policy{gelu = 'fp32'} edits a copy")
tap.is(pare.amp_policy().gelu, "follow", "... and the defaults stay")
tap.like(tap.error_of(function() return pare.amp_policy({gelu = "warm"}) end), "lower, follow, fp32",
         "an invalid category names the choices")
tap.like(tap.error_of(function() return pare.amp_policy({gelux = "fp32"}) end), "valid: embedding, posadd, linear",
         "an invalid op lists the ops")

local task = pare.task("majority", {seed = 3, n_train = 512, n_test = 400, min_length = 5, max_length = 9})
local toks = {{1, 2, 3, 2, 1, 2, 3, 2}, {3, 2, 3, 1, 2}}
local function maxdiff(a, b)
  local d, s = 0, 0
  for i = 1, #a do d, s = math.max(d, math.abs(a[i] - b[i])), math.max(s, math.abs(b[i])) end
  return d, s
end

for _, form in ipairs({{norm = "pre", act = "gelu"}, {norm = "post", act = "gelu_erf"}, {norm = "post", act = "gelu_erf", fuse = true},
                       {norm = "post", act = "relu", fused = false}}) do
  local label = form.norm .. "-LN " .. form.act .. (form.fuse and " +fuse" or "") .. (form.fused == false and " unfused" or "")
  local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64,
                       seed = 1, norm = form.norm, act = form.act, fused = form.fused}
  m:train(task, {steps = 250, batch = 32, lr = 3e-3, warmup = 20, seed = 7})
  if form.fuse then m = m:apply("fuse") end
  local fp = m:evaluate(task)
  local a = m:apply("amp")
  local info = a:info()
  tap.like(info.dtypes, "bf16", label .. ": the AMP graph holds bf16 values (" .. info.dtypes .. ")")
  tap.ok(info.amp_casts and info.amp_casts.boundaries == info.amp_casts.folded + info.amp_casts.absorbed + info.amp_casts.casts,
         string.format("%s: m:info().amp_casts: %d boundaries = %d folded + %d absorbed + %d cast nodes", label,
                       info.amp_casts.boundaries, info.amp_casts.folded, info.amp_casts.absorbed, info.amp_casts.casts))
  tap.like(info.amp, "linear=lower", label .. ": m:info().amp names each op's category")
  local q = a:evaluate(task)
  tap.ok(math.abs(q.accuracy - fp.accuracy) <= 0.01,
         string.format("%s: AMP accuracy %.4f within a point of f32's %.4f", label, q.accuracy, fp.accuracy))
  local f = a:fidelity(m, task)
  tap.ok(f.cosine > 0.999 and f.agreement >= 0.99,
         string.format("%s: logits' cosine with f32 %.6f, agreement %.4f", label, f.cosine, f.agreement))
  -- bf16 tolerance: the logits move by what rounding activations to 8 significant bits moves them; the bf16
  -- pass (Linears alone) is the yardstick: AMP rounds a few more values (GELU outputs), of the same order
  local lf, la, lb = m:forward{tokens = toks}.logits.values, a:forward{tokens = toks}.logits.values,
                     m:apply("bf16"):forward{tokens = toks}.logits.values
  local d, s = maxdiff(la, lf)
  local db = maxdiff(lb, lf)
  tap.ok(d <= 0.05 * math.max(s, 1) and d <= 8 * db + 1e-6,
         string.format("%s: max |logit - f32| %.3g (|logit| <= %.3g; bf16 Linears alone %.3g)", label, d, s, db))
end

-- policy edits from Lua: GELU kept in fp32 gives fewer bf16 ops
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64, seed = 1,
                     norm = "pre"}
local a1, a2 = m:apply("amp"), m:apply("amp", {policy = {gelu = "fp32"}})
tap.like(a1:info().amp, "gelu=follow %(2, 2 in bf16%)", "default: both GELUs in bf16")
tap.like(a2:info().amp, "gelu=fp32 %(2, 0 in bf16%)", "policy = {gelu = 'fp32'}: the GELUs in f32")
tap.like(m:apply("amp", {policy = "gelu=fp32"}):info().amp, "gelu=fp32", "the policy as text works too")
tap.like(tap.error_of(function() return m:apply("amp", {policy = {gelu = "fp16"}}) end), "lower, follow, fp32",
         "a bad category in m:apply names the choices")
tap.like(tap.error_of(function() return m:apply("amp", {policy = {[1] = "x"}}) end), "amp policy: entries must be",
         "a policy that is not op = category is refused")
tap.like(tap.error_of(function() return m:apply("amp", {layers = "nothing.*"}) end), "matches no node",
         "a layers glob matching nothing is refused")
local ex = m:apply("amp", {exclude = "enc.1.*"})
tap.like(ex:info().amp, "gelu=follow %(2, 1 in bf16%)", "exclude = 'enc.1.*': one GELU left in f32")
-- int8 first, then AMP: the int8 Linears stay int8
local q = m:apply("dynamic_int8", {layers = "enc.0.*"}):apply("amp")
tap.like(q:info().amp, "4 left alone", "int8 then amp: the 4 int8 Linears of layer 0 are left alone")
tap.like(q:info().format, "int8", "... and still int8 (format " .. q:info().format .. ")")
-- f16: Linears in f16, the follow ops stay f32 (no f16 kernels)
local h = m:apply("amp", {dtype = "f16"})
tap.like(h:info().amp, "gelu=follow %(2, 0 in f16%)", "dtype = f16: GELUs stay f32 (no f16 kernel)")
tap.ok(h:fidelity(m, task).cosine > 0.999, "dtype = f16: logits follow f32")
-- training is refused
tap.like(tap.error_of(function() return a1:train(task, {steps = 1}) end), "bf16", "training an AMP model is refused")
-- attention: bf16 where its variant has a bf16 forward (full, flash and the tile engine's), f32 where not
local vt = pare.task("majority", {seed = 4, n_train = 32, n_test = 32, max_length = 16})
for _, kind in ipairs({"full", "flash", "linear", "performer"}) do
  local mv = pare.model{vocab = vt.vocab, max_T = 17, classes = 2, d = 32, heads = 2, layers = 1, seed = 1, attention = kind}
  local ok, av = pcall(function() return mv:apply("amp") end)
  local bf = kind == "full" or kind == "flash"
  tap.ok(ok and av:info().amp:find(bf and "attention=lower %(1, 1 in bf16%)" or "attention=lower %(1, f32: no bf16 kernel%)") ~= nil,
         string.format("amp on %s attention: %s", kind, bf and "bf16 qkv" or "stays f32 (no bf16 kernel)"))
  if ok and bf then tap.ok(av:fidelity(mv, vt).cosine > 0.9999, "  and its logits follow f32's") end
end
-- checkpoints keep the placement
local path = os.tmpname()
a1:save(path)
local back = pare.load(path)
os.remove(path)
local l1, l2 = a1:forward{tokens = toks}.logits.values, back:forward{tokens = toks}.logits.values
local same = #l1 == #l2
for i = 1, #l1 do same = same and l1[i] == l2[i] end
tap.ok(same and back:info().dtypes == a1:info().dtypes, "a saved AMP model loads with its dtypes and the same logits")
-- embeddings and softmax in the policy (docs/amp.md): fp32 by default; embedding=lower with posadd=follow makes the
-- embeddings' sum bf16 up to the first LayerNorm (which widens it); a bf16 table with embedding=follow likewise; the
-- unfused graph's softmax=lower computes in bf16 only where a reader takes bf16 (bmm_pv reads f32: folded back)
do
  local mb = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64,
                        seed = 1, type_vocab = 2, emb_norm = true}
  local pol0 = pare.amp_policy()
  tap.ok(pol0.embedding == "fp32" and pol0.posadd == "fp32" and pol0.softmax == "fp32" and pol0.masked_softmax == "fp32",
         "defaults: embedding, posadd, softmax fp32 (as PyTorch autocast)")
  tap.like(mb:apply("amp"):info().amp, "embedding=fp32 %(2, 0 in bf16%)", "default amp: the lookups write f32")
  local lf = mb:forward{tokens = toks}.logits.values
  for _, c in ipairs({{pol = {embedding = "lower", posadd = "follow"}, m = mb, what = "embedding=lower"},
                      {pol = {embedding = "follow", posadd = "follow"}, m = mb:apply("bf16", {embeddings = true, layers = ""}),
                       what = "bf16 tables, embedding=follow"}}) do
    local a = c.m:apply("amp", {policy = c.pol})
    local info = a:info()
    tap.like(info.amp, "embedding=%w+ %(2, 2 in bf16%), posadd=follow %(1, 1 in bf16%)",
             c.what .. ": both lookups and the positions' add in bf16")
    local d, s = maxdiff(a:forward{tokens = toks}.logits.values, lf)
    tap.ok(d <= 0.05 * math.max(s, 1), string.format("%s: logits within bf16 tolerance of f32 (max |diff| %.3g)", c.what, d))
  end
  tap.like(mb:apply("amp", {policy = {embedding = "follow"}}):info().amp, "embedding=follow %(2, 0 in bf16%)",
           "embedding=follow on f32 tables: f32 (it follows its table)")
  local un = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, ffn = 64,
                        seed = 1, fused = false}
  local a = un:apply("amp", {policy = {softmax = "lower"}})
  tap.like(a:info().dtypes, "bf16", "unfused + softmax=lower: the pass places and checks the graph")
  local d = maxdiff(a:forward{tokens = toks}.logits.values, un:forward{tokens = toks}.logits.values)
  tap.ok(d < 0.05, string.format("unfused + softmax=lower runs (max |logit - f32| %.3g)", d))
end
tap.done()
