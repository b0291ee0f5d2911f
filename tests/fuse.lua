-- fuse.lua — the unfused graph (fused=false) and the fuse pass from Lua: the unfused model trains to what the
-- fused one reaches from the same initialisation, saves and loads, fuses back into the same function (each rule
-- and all), and the quantization passes run after fusion (dynamic int8, SmoothQuant with its LayerNorm folding
-- on fused Add+LayerNorm). docs/fusion.md; tests/test_fuse.c checks the ops and rules in C.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local task = pare.task("recall", {seed = 3, n_train = 1200, n_test = 300})
local opts = {vocab = task.vocab, max_T = task.T, classes = task.classes, d = 32, heads = 4, layers = 2, seed = 1,
              norm = "post", act = "gelu_erf"}
local function model(fused)
  local o = {fused = fused}
  for k, v in pairs(opts) do o[k] = v end
  return pare.model(o)
end
local train = {steps = 200, batch = 32, lr = 3e-3, warmup = 20, seed = 7}
local u, f = model(false), model(true)
u:train(task, train)
f:train(task, train)
local au, af = u:evaluate(task).accuracy, f:evaluate(task).accuracy
tap.ok(au > 0.2, string.format("the unfused model learns (accuracy %.3f; chance 1/%d)", au, task.classes))
tap.ok(math.abs(au - af) <= 0.02, string.format("unfused and fused training from one initialisation reach the same accuracy "
                                               .. "(%.3f vs %.3f)", au, af))

local function err(fn) local ok, e = pcall(fn); return not ok and tostring(e) or "(no error)" end

-- save and load the unfused model
local path = os.tmpname()
u:save(path)
local back = pare.load(path)
os.remove(path)
local fb = back:fidelity(u, task)
tap.ok(fb.max_abs_err == 0, string.format("the unfused model saves and loads (max |a - b| = %g)", fb.max_abs_err))

-- every rule, and all of them, keep the trained function
for _, rules in ipairs{"qkv", "strided", "softmax", "attention", "linear_gelu", "add_layernorm", "all"} do
  local m = u:apply("fuse", {rules = rules})
  local fd = m:fidelity(u, task)
  tap.ok(fd.agreement == 1 and fd.max_abs_err < 1e-4,
         string.format("fuse rules=%s: the same function (agreement %.3f, max |a - b| %.1e)", rules, fd.agreement, fd.max_abs_err))
end
local all = u:apply("fuse", {rules = "all"})
tap.ok(all:info().applied:match("fuse"), "info().applied records the pass")
tap.like(err(function() u:apply("fuse", {rules = "qkv,dropout"}) end), "'dropout' is not a rule", "an unknown rule is refused")
tap.like(err(function() u:apply("fuse", {rulez = "all"}) end), "rulez", "an unknown option is refused")

-- a fused model keeps training (through the fused ops' backward)
local before = all:evaluate(task).accuracy
all:train(task, {steps = 60, batch = 32, lr = 1e-3, warmup = 5, seed = 8})
tap.ok(all:evaluate(task).accuracy >= before - 0.05, "the fused model fine-tunes")

-- quantization after fusion
local fused = u:apply("fuse", {rules = "all"})
local q = fused:apply("dynamic_int8", {layers = "*"})
local fq = q:fidelity(fused, task)
tap.ok(fq.agreement > 0.9, string.format("dynamic_int8 after fuse stays close (agreement %.3f)", fq.agreement))
local sq = fused:apply("smoothquant", {calib = task, calib_samples = 64, level = "fp32", alpha = 0.5})
local fs = sq:fidelity(fused, task)
tap.ok(fs.agreement == 1 and fs.cosine > 0.99999,
       string.format("smoothquant's smoothing folds into fused Add+LayerNorm gains: same f32 function (cosine %.7f)", fs.cosine))
local sq8 = fused:apply("smoothquant", {calib = task, calib_samples = 64, level = "O1", alpha = 0.5})
tap.ok(sq8:fidelity(fused, task).agreement > 0.9, "smoothquant W8A8 (int8 batched products) on the fused graph")

tap.done()
