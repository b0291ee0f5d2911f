-- quant_ckpt.lua — quantized checkpoints from Lua: m:save writes the stored form (int8, blocks), pare.load gives
-- the same model (bit-identical logits, the same size column, applied kept), {masters = true} adds the f32
-- masters, {f32 = true} writes the older form, bad options are named; and the Python reader docs/checkpoints.md
-- shows (tests/ckpt_q_ref.py, numpy only) dequantizes the stored forms to pare's dequantize pass, bit for bit.
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)
if not os.execute("/usr/bin/python3 -c 'import numpy' 2>/dev/null") then
  tap.skip_all("needs Debian's python3-numpy (/usr/bin/python3) for the documented Python reader")
end

local task = pare.task("recall", {seed = 3, n_train = 300, n_test = 100})
local m = pare.model{vocab = task.vocab, max_T = task.T, classes = task.classes, d = 64, heads = 4, layers = 2, seed = 1}
m:train(task, {steps = 60, batch = 32, lr = 2e-3, seed = 7})
local dir = string.format("%s/pare-qckpt-%d-%d", os.getenv("TMPDIR") or "/tmp", os.time(), math.random(1 << 30))
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function size(p) local f = assert(io.open(p, "rb")); local n = f:seek("end"); f:close(); return n end

local cases = {
  {"dynamic_int8", {}}, {"static_int8", {calib = task, calib_samples = 32, act_symmetric = false}},
  {"qblock", {format = "q8_0"}}, {"qblock", {format = "q4_0"}}, {"qblock", {format = "q4_1"}},
  {"qblock", {format = "int8_group", group = 32}},
}
for i, c in ipairs(cases) do
  local q = m:apply(c[1], c[2])
  local p, pm, pf = dir .. "/q" .. i .. ".safetensors", dir .. "/qm" .. i .. ".safetensors", dir .. "/qf" .. i .. ".safetensors"
  q:save(p)
  q:save(pm, {masters = true})
  q:save(pf, {f32 = true})
  local back, meta = pare.load(p)
  local what = c[1] .. (c[2].format and (" " .. c[2].format) or "")
  tap.ok(back:fidelity(q, task).max_abs_err == 0 and back:info().size_bytes == q:info().size_bytes and
         back:info().applied == q:info().applied and meta.applied == c[1],
         string.format("%s: saved and loaded, bit-identical logits, %d bytes, applied %s", what, back:info().size_bytes, meta.applied))
  tap.ok(size(p) < 0.45 * size(pf) and pare.load(pm):fidelity(q, task).max_abs_err == 0 and pare.load(pf):info().format == "f32",
         string.format("%s: file %d bytes vs %d with masters, %d f32 (model size %d)", what, size(p), size(pm), size(pf),
                       q:info().size_bytes))
  -- the documented Python reader against pare's dequantize
  local deq = dir .. "/d" .. i .. ".safetensors"
  q:apply("dequantize"):save(deq, {f32 = true})
  local py = io.popen(string.format("/usr/bin/python3 tests/ckpt_q_ref.py '%s' '%s' 2>&1", p, deq))
  local out = py:read("a")
  local okr = py:close()
  tap.ok(okr and out:match("checked (%d+)") and tonumber(out:match("checked (%d+)")) > 0,
         string.format("%s: the Python reader of docs/checkpoints.md dequantizes %s weights to pare's values, bit for bit",
                       what, out:match("checked (%d+)") or ("none: " .. out)))
end
tap.like(tap.error_of(function() m:save(dir .. "/x.safetensors", {master = true}) end), "master", "an unknown save option is named")
-- a checkpoint written by pare at commit f068a61 (before the eps / gelu_erf / pos_offset / dtype node attributes):
-- still loads, as f32
local okold, old = pcall(pare.load, "tests/data/checkpoint_f068a61.safetensors")
tap.ok(okold and old:info().format == "f32" and old:info().params == 190,
       "an old checkpoint (commit f068a61, no eps/gelu_erf/pos_offset/dtype attributes) loads: " .. tostring(okold and old or old))
os.execute("rm -rf '" .. dir .. "'")
tap.done()
