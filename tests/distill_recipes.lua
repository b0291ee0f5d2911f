-- distill_recipes.lua — pare.distill (lua/pare/distill.lua): layer maps (TinyBERT's g(m) = m·N/M, top,
-- bottom; PKD-skip and PKD-last), the layers found from the graph (pre-LN pare encoders, BERT-shaped
-- post-LN encoders, a load_hf BERT), every_other keeping layers 0, 2, 4, ... with their weights bit for
-- bit (the kept tensors' bytes in the checkpoints; the first layer's captured output on the same input),
-- each recipe's loss list running training steps on a tiny teacher/student, and errors naming the problem.
local pare = require "pare"
local distill = require "pare.distill"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of
local function list(t) return table.concat(t, ",") end

-- ---- maps ----
tap.is(list(distill.layer_map(4, 12, "uniform")), "3,6,9,12", "uniform 4 of 12: g(m) = m·N/M = 3, 6, 9, 12")
tap.is(list(distill.layer_map(6, 12)), "2,4,6,8,10,12", "uniform is the default: 6 of 12 = 2, 4, ..., 12")
tap.is(list(distill.layer_map(3, 4, "uniform")), "1,2,4", "uniform 3 of 4: floor(m·4/3) = 1, 2, 4")
tap.is(list(distill.layer_map(2, 4, "top")), "3,4", "top 2 of 4: the last two layers")
tap.is(list(distill.layer_map(2, 4, "bottom")), "1,2", "bottom 2 of 4: the first two layers")
tap.is(list(distill.layer_map(4, 4, "uniform")), "1,2,3,4", "a student as deep as its teacher: the identity")
tap.is(list(distill.pkd_map(6, 12, "skip")), "2,4,6,8,10", "PKD-skip 6 of 12: {2, 4, 6, 8, 10} (Sun et al.)")
tap.is(list(distill.pkd_map(6, 12, "last")), "7,8,9,10,11", "PKD-last 6 of 12: {7, ..., 11} (Sun et al.)")
tap.is(list(distill.pkd_map(2, 4, "skip")), "2", "PKD-skip 2 of 4: teacher layer 2")
tap.is(list(distill.pkd_map(2, 4, "last")), "3", "PKD-last 2 of 4: teacher layer 3")
tap.like(err_of(distill.layer_map, 2, 4, "middle") or "", "unknown kind 'middle' %(valid: uniform, top, bottom%)",
         "an unknown map kind lists the valid ones")
tap.like(err_of(distill.layer_map, 5, 4) or "", "5 layers cannot map onto a teacher of 4", "a student deeper than its teacher")
tap.like(err_of(distill.pkd_map, 2, 4, "first") or "", "valid: skip, last", "an unknown PKD strategy")

-- ---- layers found from the graph ----
local task = pare.task("majority", {seed = 3, n_train = 256, n_test = 64, max_length = 9})
local V, T = task.vocab, task.T
local teacher = pare.model{vocab = V, max_T = T, classes = 2, d = 32, heads = 2, layers = 4, ffn = 64, seed = 1}
teacher:train(task, {steps = 40, batch = 32, lr = 3e-3, warmup = 5})
local st = distill.structure(teacher)
tap.ok(#st.layers == 4 and st.layers[1].prefix == "enc.0" and st.layers[4].out == "enc.3.add2" and
       st.embedding == "emb.pos" and st.logits == "head" and st.layers[2].attn == "enc.1.attn" and st.layers[1].heads == 2,
       string.format("pre-LN encoder: 4 layers, outputs enc.l.add2, embedding %s, logits %s", st.embedding, st.logits))
local bert_opts = {vocab = V, max_T = T, classes = 2, d = 32, heads = 2, layers = 4, ffn = 64, norm = "post",
                   act = "gelu_erf", emb_norm = true, type_vocab = 2, pooler = "tanh", seed = 4}
local bert = pare.model(bert_opts)
local sb = distill.structure(bert)
tap.ok(#sb.layers == 4 and sb.layers[4].out == "enc.3.ln2" and sb.embedding == "emb.ln",
       string.format("BERT (post-LN): layer outputs enc.l.ln2 (%s), embedding %s", sb.layers[4].out, sb.embedding))

-- ---- every_other: DistilBERT's student ----
local files = {}
local function tmp(name)
  local p = string.format("%s/pare-distill-recipes-%d-%s", os.getenv("TMPDIR") or "/tmp", math.random(1 << 30), name)
  files[#files + 1] = p
  return p
end
-- the tensors of a safetensors file: name -> raw bytes (read independently of the engine)
local function tensors(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  local n = string.unpack("<I8", s)
  local header, out = s:sub(9, 8 + n), {}
  for name, a, b in header:gmatch('"([^"]+)":%s*{[^}]-"data_offsets":%s*%[(%d+),%s*(%d+)%]') do
    out[name] = s:sub(8 + n + tonumber(a) + 1, 8 + n + tonumber(b))
  end
  return out
end

local function check_every_other(model, what, layers_in, want_kept)
  local s, kept = distill.every_other(model)
  tap.is(list(kept), want_kept, what .. ": kept layers " .. want_kept)
  local ss = distill.structure(s)
  tap.ok(#ss.layers == #kept and s:info().layers == #kept, string.format("%s: the student has %d layers (graph and info)",
         what, #ss.layers))
  local pt, ps = tmp(what .. "-t.safetensors"), tmp(what .. "-s.safetensors")
  model:save(pt)
  s:save(ps)
  local tt, ts = tensors(pt), tensors(ps)
  local nt, ns, same, stray = 0, 0, true, {}
  local keep = {}
  for _, p in ipairs(kept) do keep[p] = true end
  for name, bytes in pairs(tt) do
    local prefix = name:match("^(enc%.%d+)%.")
    if not prefix or keep[prefix] then
      nt = nt + 1
      if ts[name] ~= bytes then same = false end
    end
  end
  for name in pairs(ts) do
    ns = ns + 1
    local prefix = name:match("^(enc%.%d+)%.")
    if prefix and not keep[prefix] then stray[#stray + 1] = name end
  end
  tap.ok(same and nt == ns and nt > 0 and #stray == 0,
         string.format("%s: the student's %d tensors are the teacher's kept ones byte for byte (no removed layer's: %s)",
                       what, ns, #stray == 0 and "none" or stray[1]))
  local first = ss.layers[1].out
  local a = model:capture(task, first, {n = 16})[first].values
  local b = s:capture(task, first, {n = 16})[first].values
  local worst = 0
  for i, v in ipairs(a) do worst = math.max(worst, math.abs(v - b[i])) end
  tap.ok(#a == #b and worst == 0, string.format("%s: layer 0's output on the same input is bit-identical (max |Δ| %g)",
         what, worst))
  local ev = s:evaluate(task)
  tap.ok(ev.accuracy >= 0 and ev.loss == ev.loss, string.format("%s: the student runs (accuracy %.3f)", what, ev.accuracy))
  return s
end
local student = check_every_other(teacher, "pre-LN 4 layers", 4, "enc.0,enc.2")
local five = pare.model{vocab = V, max_T = T, classes = 2, d = 16, heads = 2, layers = 5, seed = 2}
check_every_other(five, "pre-LN 5 layers", 5, "enc.0,enc.2,enc.4")
check_every_other(bert, "BERT post-LN", 4, "enc.0,enc.2")
-- a load_hf BERT: save_hf then load_hf, the same names
local hfdir = tmp("hf")
local okhf, ehf = pcall(function() bert:save_hf(hfdir) end)
if okhf then
  local hb = pare.load_hf(hfdir)
  local hs = check_every_other(hb, "load_hf BERT", 4, "enc.0,enc.2")
  tap.is(hs:info().params, bert:remove("enc.1.*"):remove("enc.3.*"):info().params, "load_hf BERT: as many parameters as the zoo-shaped student")
else
  tap.ok(false, "save_hf of a BERT-shaped classifier: " .. tostring(ehf))
end
local s_odd, kept_odd = distill.every_other(teacher, {keep = "odd"})
tap.is(list(kept_odd), "enc.1,enc.3", "keep = \"odd\": layers 1 and 3")
tap.like(err_of(distill.every_other, teacher, {keep = "all"}) or "", "keep = 'all' %(valid: even, odd%)", "every_other: a bad keep")
local one = pare.model{vocab = V, max_T = T, classes = 2, d = 16, heads = 2, layers = 1, seed = 2}
tap.like(err_of(distill.every_other, one) or "", "1 layer; at least 2", "every_other: a one-layer teacher")

-- ---- the recipes' loss lists train ----
local small = pare.model{vocab = V, max_T = T, classes = 2, d = 16, heads = 2, layers = 2, seed = 7} -- narrower: W_h
local layers0 = #small:layers()
local function run(name, losses, hw, s)
  s = s or small
  local ok, r = pcall(s.train, s, task, {steps = 3, batch = 16, lr = 1e-3, seed = 1},
                      {teacher = teacher, hard_weight = hw, losses = losses})
  tap.ok(ok and r.steps == 3 and r.loss == r.loss and r.loss > 0 and #s:layers() == layers0,
         string.format("%s: %d terms, hard_weight %g, three steps (loss %s)", name, #losses, hw, ok and string.format("%.4f", r.loss) or tostring(r)))
end
local l, hw = distill.tinybert_losses(small, teacher, {map = "uniform", T = 1, seq_len = T})
tap.is(#l, 1 + 2 + 2 + 1, "TinyBERT 2 of 4: embedding + 2 hidden + 2 attention + prediction terms")
tap.ok(l[2].student == "enc.0.add2" and l[2].teacher == "enc.1.add2" and l[4].student == "enc.1.add2" and
       l[4].teacher == "enc.3.add2" and l[3].student == "enc.0.attn#att" and l[3].teacher == "enc.1.attn#att" and
       l[2].project == true and l[3].weight == T * T and l[1].student == "emb.pos" and l[6].loss == "kl_div" and hw == 0,
       "TinyBERT uniform: student layer m ↔ teacher layer 2m, W_h where widths differ, attention weight T_seq²")
run("TinyBERT", l, hw)
local lt = distill.tinybert_losses(small, teacher, {map = "top", attention = false, embedding = false, prediction = false})
tap.ok(#lt == 2 and lt[1].teacher == "enc.2.add2" and lt[2].teacher == "enc.3.add2", "TinyBERT top, hidden terms only")
run("TinyBERT (hidden only, top map)", lt, 0)
local lp, hwp = distill.pkd_losses(small, teacher, {strategy = "skip", alpha = 0.7, T = 5, beta = 10})
tap.ok(#lp == 2 and lp[2].pool == "cls" and lp[2].loss == "cosine" and lp[2].teacher == "enc.1.add2" and lp[2].weight == 20 and
       math.abs(hwp - 0.3) < 1e-12 and lp[1].temperature == 5, "PKD-skip 2 of 4: [CLS] cosine to teacher layer 2 (weight 2β), α-mix")
run("PKD-skip", lp, hwp)
local lpl = distill.pkd_losses(small, teacher, {strategy = "last"})
tap.is(lpl[2].teacher, "enc.2.add2", "PKD-last 2 of 4: teacher layer 3")
local ld, hwd = distill.distilbert_losses(student, teacher)
tap.ok(#ld == 2 and ld[1].temperature == 2 and ld[1].weight == 5 and ld[2].loss == "cosine" and ld[2].student == "enc.2.add2" and
       ld[2].teacher == "enc.3.add2" and not ld[2].project and hwd == 2, "DistilBERT: 5·T²KL (T = 2) + 1·cos(last hidden) + 2·CE")
layers0 = #student:layers()
run("DistilBERT on the every-other student", ld, hwd, student)
layers0 = #small:layers()
local lk, hwk = distill.kd_losses(small, teacher, {T = 4, alpha = 0.1})
tap.ok(lk[1].temperature == 4 and math.abs(lk[1].weight - 0.9) < 1e-12 and hwk == 0.1, "Hinton KD: α·CE + (1 − α)·T²KL")
run("Hinton KD", lk, hwk)

-- ---- profile: size and speed measured the same way ----
local prof = distill.profile({teacher, student}, {batch = 2, repeats = 2, rounds = 1})
tap.ok(prof[1].params == teacher:info().params and prof[2].params == student:info().params and prof[2].params < prof[1].params and
       prof[2].flops < prof[1].flops and prof[1].flops > 0 and prof[1].ms > 0 and prof[2].ms > 0 and pare.threads() == 2,
       string.format("profile: params %d -> %d, FLOPs %d -> %d, the threads restored", prof[1].params, prof[2].params,
                     prof[1].flops, prof[2].flops))

-- ---- errors ----
local h1 = pare.model{vocab = V, max_T = T, classes = 2, d = 16, heads = 1, layers = 2, seed = 7}
tap.like(err_of(distill.tinybert_losses, h1, teacher) or "",
         "the same heads: student enc.0.attn has 1, teacher enc.1.attn has 2 %(attention = false skips the term%)",
         "TinyBERT with different heads names both and the way out")
tap.ok(#distill.tinybert_losses(h1, teacher, {attention = false}) == 4, "... and attention = false drops the term")
tap.like(err_of(distill.tinybert_losses, small, teacher, {mapping = "top"}) or "", "unknown option 'mapping' %(valid: .*map",
         "a misspelt option lists the valid ones")
tap.like(err_of(distill.tinybert_losses, small, teacher, {map = {1, 9}}) or "", "map%[2%] = 9 is not a teacher layer %(1..4%)",
         "an explicit map with a layer the teacher lacks")
tap.like(err_of(distill.pkd_losses, teacher, small) or "", "4 layers cannot map onto a teacher of 2", "PKD: student deeper than teacher")
tap.like(err_of(distill.structure, task) or "", "a model is needed", "structure of something that is not a model")

for _, p in ipairs(files) do os.remove(p); os.execute("rm -rf '" .. p .. "'") end
tap.done()
