-- fastbert.lua — FastBERT (compress/distill/fastbert.h): student exits added to a trained classifier,
-- self-distilled against its own final classifier, and early-exit inference whose batch shrinks as
-- examples leave. Checked against independent Lua computations: softmax entropies and KL divergences
-- (both directions: the option kl) from captured logits, the full model's own logits, example-by-example
-- runs, a saved and loaded copy.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local err_of = tap.error_of

local task = pare.task("majority", {seed = 5, n_train = 512, n_test = 96, max_length = 9})
local C = 2
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = C, d = 32, heads = 2, layers = 3, seed = 2}
m:train(task, {steps = 250, batch = 32, lr = 3e-3, warmup = 20})
local acc = m:evaluate(task).accuracy
tap.ok(acc >= 0.9, string.format("the backbone learns the task (%.3f)", acc))

local nodes0 = #m:layers()
local fb = m:add_exits{hidden = 16, seed = 3}
local ex = fb:exits()
tap.is(#ex, 2, "one exit after each of the first L-1 = 2 layers")
tap.is(ex[1], "exit.0.head", "exits are named by layer")
tap.ok(#m:layers() == nodes0 and #m:exits() == 0, "the model given is unchanged")

-- independent references from captured logits
local names = {"exit.0.head", "exit.1.head", "head"}
local function probs(z, i)
  local a, b = z[2 * i - 1], z[2 * i]
  local mx = math.max(a, b)
  local ea, eb = math.exp(a - mx), math.exp(b - mx)
  return ea / (ea + eb), eb / (ea + eb)
end
local function entropy(z, i) -- H(p)/log C, plain Lua in double
  local p, q = probs(z, i)
  local h = 0
  if p > 0 then h = h - p * math.log(p) end
  if q > 0 then h = h - q * math.log(q) end
  return math.min(1, math.max(0, h / math.log(C)))
end
local function kls(zs, zt, i) -- KL(p_t ‖ p_s) and KL(p_s ‖ p_t) of example i, student logits zs, teacher's zt
  local t1, t2 = probs(zt, i)
  local s1, s2 = probs(zs, i)
  return t1 * math.log(t1 / s1) + t2 * math.log(t2 / s2), s1 * math.log(s1 / t1) + s2 * math.log(s2 / t2)
end
local function mean_kl(cap, ex_name) -- KL(p_exit ‖ p_final), the trained objective (the default kl) at T = 1
  local s, n = 0, cap.head.rows
  for i = 1, n do
    local _, rev = kls(cap[ex_name].values, cap.head.values, i)
    s = s + rev
  end
  return s / n
end

-- ---- self-distillation ----
local before = fb:capture(task, names, {batch = 64})
local kl0 = {mean_kl(before, "exit.0.head"), mean_kl(before, "exit.1.head")}
local r = fb:train_exits(task, {steps = 200, batch = 32, lr = 3e-3, warmup = 10}, {temperature = 1})
tap.ok(r.steps == 200, "train_exits runs its steps")
local cap = fb:capture(task, names, {batch = 64})
for e = 1, 2 do
  local k1 = mean_kl(cap, ex[e])
  tap.ok(k1 < kl0[e] * 0.5, string.format("self-distillation lowers %s's KL to the final classifier (%.4f -> %.4f)", ex[e], kl0[e], k1))
end
local same = true
for i, v in ipairs(cap.head.values) do same = same and v == before.head.values[i] end
tap.ok(same, "the backbone and final classifier are frozen (final logits bit-identical)")
local mcap = m:capture(task, "head", {batch = 64})
same = true
for i, v in ipairs(mcap.head.values) do same = same and v == cap.head.values[i] end
tap.ok(same, "the model with exits computes the original model's logits")

-- ---- the direction of the divergence: kl = "student_teacher" (the default, FastBERT's) or "teacher_student" ----
-- With steps = 1 and batch = 1 the reported loss is the first step's: Σ over the exits of the KL on one
-- sampled example (the same one for the same seed), before any update. It must be the student-first sum by
-- default and the teacher-first one with kl = "teacher_student", for one example of the training split.
local fr, ff, fx = m:add_exits{hidden = 16, seed = 3}, m:add_exits{hidden = 16, seed = 3}, m:add_exits{hidden = 16, seed = 3}
local tcap = fr:capture(task, names, {split = "train", batch = 64})
local one = {steps = 1, batch = 1, lr = 1e-3}
local l_rev = fr:train_exits(task, one).loss
local l_fwd = ff:train_exits(task, one, {kl = "teacher_student"}).loss
local l_exp = fx:train_exits(task, one, {kl = "student_teacher", temperature = 1}).loss
local found
for i = 1, tcap.head.rows do
  local f, r = 0, 0
  for e = 1, 2 do
    local a, b = kls(tcap[ex[e]].values, tcap.head.values, i)
    f, r = f + a, r + b
  end
  if math.abs(r - l_rev) < 1e-4 * (1 + r) and math.abs(f - l_fwd) < 1e-4 * (1 + f) then found = i; break end
end
tap.ok(found ~= nil, string.format("first step: loss %.5f = Σ KL(p_s ‖ p_t) by default, %.5f = Σ KL(p_t ‖ p_s) with "
                                   .. "kl = teacher_student, on one training example (%s)", l_rev, l_fwd, tostring(found)))
tap.ok(math.abs(l_rev - l_fwd) > 1e-3, "the two directions give different losses")
tap.ok(l_exp == l_rev, "kl = \"student_teacher\" is the default")

-- ---- speed 0: the full model exactly ----
local r0 = fb:early_exit(task, {speed = 0, batch = 64})
local exact, last = true, true
for i = 1, r0.n do
  last = last and r0.layer[i] == 3
  local a, b = mcap.head.values[2 * i - 1], mcap.head.values[2 * i]
  exact = exact and r0.logits[2 * i - 1] == a and r0.logits[2 * i] == b and r0.pred[i] == (b > a and 1 or 0)
end
tap.ok(last and r0.mean_layer == 3, "speed 0: every example exits at the last layer")
tap.ok(exact, "speed 0: the full model's logits and predictions exactly")
tap.ok(math.abs(r0.accuracy - m:evaluate(task).accuracy) < 1e-12, "speed 0: the full model's accuracy")
local rb = m:early_exit(task, {speed = 0.5})
tap.ok(rb.mean_layer == 3 and rb.accuracy == r0.accuracy, "a model without exits runs whole (the baseline)")

-- ---- speed 1: everyone leaves at the first exit ----
local r1 = fb:early_exit(task, {speed = 1})
local first = true
for i = 1, r1.n do first = first and r1.layer[i] == 1 and r1.pred[i] == ((cap[ex[1]].values[2 * i] > cap[ex[1]].values[2 * i - 1]) and 1 or 0) end
tap.ok(first and r1.mean_layer == 1, "speed 1: every example exits at the first layer, with that exit's prediction")

-- ---- the exit decision against an independent entropy ----
local hs = {}
for i = 1, cap.head.rows do hs[#hs + 1] = entropy(cap[ex[1]].values, i) end
table.sort(hs)
local speed = hs[math.floor(#hs / 2)] + 1e-4 -- about half leave at the first exit
local rs = fb:early_exit(task, {speed = speed, batch = 64})
local match, worst, seen = true, 0, {}
for i = 1, rs.n do
  local want = 3
  for e = 1, 2 do
    if entropy(cap[ex[e]].values, i) <= speed then want = e; break end
  end
  seen[rs.layer[i]] = true
  match = match and rs.layer[i] == want
  local z = want == 3 and cap.head.values or cap[ex[want]].values
  worst = math.max(worst, math.abs(rs.entropy[i] - entropy(z, i)))
end
tap.ok(match, string.format("exit layers match H(p)/log C <= speed from captured logits (speed %.4f)", speed))
tap.ok(seen[1] and (seen[2] or seen[3]), "the threshold splits the examples among layers (the test can fail)")
tap.ok(worst < 1e-5, string.format("reported entropies match (worst %.2g)", worst))

-- ---- batched (shrinking groups) equals example by example ----
local r_one = fb:early_exit(task, {speed = speed, batch = 1})
local r_odd = fb:early_exit(task, {speed = speed, batch = 7})
local agree = true
for i = 1, rs.n do
  agree = agree and r_one.pred[i] == rs.pred[i] and r_one.layer[i] == rs.layer[i] and r_odd.pred[i] == rs.pred[i]
    and r_odd.layer[i] == rs.layer[i]
end
tap.ok(agree, "batches of 64 and 7 give example-by-example's predictions and exit layers")
local part = fb:early_exit(task, {speed = speed, first = 11, n = 20, batch = 8})
agree = part.n == 20
for i = 1, 20 do agree = agree and part.pred[i] == rs.pred[10 + i] and part.layer[i] == rs.layer[10 + i] end
tap.ok(agree, "a range of examples gives the same decisions")

-- ---- checkpoints ----
local path = os.tmpname()
fb:save(path)
local back = pare.load(path)
os.remove(path)
local bcap = back:capture(task, names, {batch = 64})
same = #back:exits() == 2
for _, k in ipairs(names) do
  for i, v in ipairs(cap[k].values) do same = same and bcap[k].values[i] == v end
end
tap.ok(same, "the model with exits saves and loads bit-identically (every exit's logits)")
local rl = back:early_exit(task, {speed = speed})
agree = true
for i = 1, rl.n do agree = agree and rl.layer[i] == rs.layer[i] and rl.pred[i] == rs.pred[i] end
tap.ok(agree, "the loaded model exits where the saved one does")

-- ---- other shapes: post-LayerNorm (BERT) with mean pooling, students without a hidden layer ----
local pm = pare.model{vocab = task.vocab, max_T = task.T, classes = C, d = 16, heads = 2, layers = 2, seed = 4,
                      norm = "post", pool = "mean", pooler = "tanh"}
local pfb = pm:add_exits{hidden = 0}
tap.ok(#pfb:exits() == 1 and #pfb:layers("exit.*.ln") == 0 and #pfb:layers("exit.*.dense") == 0,
       "post-LayerNorm, hidden = 0: one exit, no LayerNorm or dense layer of its own")
tap.ok(#fb:layers("exit.*.ln") == 2 and #fb:layers("exit.*.dense") == 2, "pre-LayerNorm: each exit normalises first")
local pr = pfb:early_exit(task, {speed = 0})
local pc = pm:capture(task, "head", {batch = 64})
exact = true
for i = 1, pr.n * C do exact = exact and pr.logits[i] == pc.head.values[i] end
tap.ok(exact, "post-LayerNorm, mean pooling: speed 0 is the full model exactly")

-- ---- misuse ----
local e = err_of(fb.early_exit, fb, task, {speed = 1.5})
tap.like(e or "", "speed = 1.5 is outside [0, 1]", "speed above 1 is refused, naming it", true)
e = err_of(fb.early_exit, fb, task, {speed = -0.1})
tap.like(e or "", "speed = -0.1 is outside", "negative speed is refused", true)
e = err_of(fb.early_exit, fb, task, {speed = "fast"})
tap.like(e or "", "speed must be a number", "a speed that is not a number", true)
e = err_of(fb.early_exit, fb, task, {sped = 0.2})
tap.like(e or "", "unknown option 'sped'", "unknown early_exit option", true)
e = err_of(m.add_exits, m, {hiden = 3})
tap.like(e or "", "hiden", "unknown add_exits option named", true)
e = err_of(m.add_exits, m, {hidden = -1})
tap.like(e or "", "hidden", "out-of-range hidden named", true)
e = err_of(fb.add_exits, fb)
tap.like(e or "", "exits already", "exits twice", true)
local dec = pare.model{kind = "decoder", vocab = 12, max_T = 8, d = 16, heads = 2, layers = 2}
e = err_of(dec.add_exits, dec)
tap.like(e or "", "causal LM", "a causal LM is refused", true)
e = err_of(dec.early_exit, dec, task, {speed = 0.2})
tap.like(e or "", "early_exit: the model (kind decoder)", "early exit of a causal LM is refused", true)
local reg = pare.model{vocab = task.vocab, max_T = task.T, head = "regression", d = 16, heads = 2, layers = 2}
e = err_of(reg.add_exits, reg)
tap.like(e or "", "regression head", "a regression head is refused", true)
local one = pare.model{vocab = task.vocab, max_T = task.T, classes = C, d = 16, heads = 2, layers = 1}
e = err_of(one.add_exits, one)
tap.like(e or "", "at least 2", "a single-layer model is refused", true)
e = err_of(m.train_exits, m, task, {steps = 2})
tap.like(e or "", "has no exits", "train_exits without exits", true)
e = err_of(fb.train_exits, fb, task, {steps = 2}, {temperature = 0})
tap.like(e or "", "'temperature' = 0 is out of range", "temperature 0", true)
e = err_of(fb.train_exits, fb, task, {steps = 2}, {kl = "sideways"})
tap.like(e or "", "student_teacher|teacher_student", "an unknown kl direction, naming the valid ones", true)
e = err_of(fb.train_exits, fb, task, {steps = 2}, {temperatur = 2})
tap.like(e or "", "temperatur", "an unknown train_exits option", true)
tap.done()
