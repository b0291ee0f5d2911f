-- lua_engine.lua — the engine's Lua API: options validated against schemas with the script's file
-- and line in every message; models, tasks and passes usable from Lua; clear errors for misuse.
local pare = require "pare"
local tap = pare.tap

local err_of = tap.error_of

local task = pare.task("majority", {seed = 3, n_train = 64, n_test = 32, max_length = 9})
tap.is(task.kind, "classify", "task kind")
tap.is(task.classes, 2, "task classes")
tap.ok(task.vocab >= 4 and task.T == 10, "task vocab and T")

-- option errors name the key, the valid keys or range, and the script line
-- (called from a Lua function, as in a script, so the position is the script's line)
local e = err_of(function() return pare.model{vocab = task.vocab, max_T = task.T, dd = 8} end)
tap.like(e or "", "lua_engine%.lua:%d+:", "unknown model option: message has file:line")
tap.like(e or "", "unknown option 'dd'", "names the unknown key")
tap.like(e or "", "heads", "lists the valid keys")
e = err_of(pare.model, {vocab = task.vocab, max_T = task.T, d = "wide"})
tap.like(e or "", "'d'", "wrong type names the key")
e = err_of(pare.model, {vocab = task.vocab, max_T = task.T, dropout = 1.5})
tap.like(e or "", "out of range %[0, 0%.95%]", "out-of-range value gives the range")
e = err_of(pare.model, {vocab = task.vocab})
tap.like(e or "", "'max_T' is required", "missing required option")
e = err_of(pare.task, "nosuchtask", {})
tap.like(e or "", "listops", "unknown task lists the valid ones")

local m = pare.model{vocab = task.vocab, max_T = task.T, classes = 2, d = 16, heads = 2, layers = 1, seed = 1}
tap.like(tostring(m), "pare%.Model%(encoder", "model tostring")
e = err_of(m.train, m, task, {steps = 10, lrr = 1})
tap.like(e or "", "unknown option 'lrr'", "train: unknown option")
e = err_of(m.train, m, task, {steps = 0})
tap.like(e or "", "'steps'", "train: steps out of range")
e = err_of(m.apply, m, "dynamic_int8", {layers = "nomatch.*"})
tap.like(e or "", "matches no Linear layer", "apply: a pattern that matches nothing")
e = err_of(m.apply, m, "quantise", {})
tap.like(e or "", "unknown technique 'quantise' %(valid: dynamic_int8", "apply: unknown technique lists valid ones")
e = err_of(m.evaluate, m, task, {split = "dev"})
tap.like(e or "", "train|test", "evaluate: bad split lists choices")

-- a task that does not fit the model
local big = pare.task("majority", {seed = 3, n_train = 8, n_test = 8, max_length = 15})
e = err_of(m.evaluate, m, big)
tap.like(e or "", "max_T", "sequence longer than max_T is an error naming max_T")
local lm = pare.task("copy_lm", {seed = 1, n_train = 8, n_test = 8, min_len = 2, max_len = 4})
e = err_of(m.evaluate, m, lm)
tap.like(e or "", "language%-modelling", "an LM task on a classifier is an error")

-- things that work
local r = m:train(task, {steps = 5, batch = 8})
tap.is(r.steps, 5, "train runs the asked steps")
-- running a model never writes into it: what m:info and m:quant_report say is the same before and after
local function flat(t)
  local keys, out = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    out[#out + 1] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ",") .. "}" or tostring(v))
  end
  return table.concat(out, " ")
end
local function report(mm)
  local rows = {}
  for i, row in ipairs(mm:quant_report()) do rows[i] = flat(row) end
  return table.concat(rows, "; ")
end
local info0, rep0 = flat(m:info()), report(m)
m:evaluate(task)
m:bench{batch = 2, repeats = 3, warmup = 1}
tap.is(flat(m:info()), info0, "m:info() is the same after evaluate and bench (executors own their packed weights)")
tap.is(report(m), rep0, "m:quant_report() likewise")
local ev = m:evaluate(task)
tap.ok(ev.accuracy >= 0 and ev.accuracy <= 1 and ev.n == 32, "evaluate returns accuracy over the test split")
local q = m:apply("dynamic_int8", {exclude = "head"})
tap.is(q:info().format, "mixed(int8+f32)", "exclude keeps the head in f32")
tap.is(m:info().format, "f32", "apply leaves its input unchanged")
tap.is(m:info().dtypes, "f32, u8, i32", "info().dtypes: f32 activations, u8 dropout masks, i32 inputs")
tap.ok(q:info().size_bytes < m:info().size_bytes, "int8 model is smaller")
local f = q:fidelity(m, task)
tap.ok(f.cosine > 0.99 and f.agreement > 0.9, string.format("int8 fidelity (cosine %.4f, agreement %.3f)", f.cosine, f.agreement))
local b = q:bench{batch = 2, repeats = 5, warmup = 1}
tap.ok(b.median_ms > 0 and b.ci_lo_ms <= b.median_ms and b.median_ms <= b.ci_hi_ms, "bench: median inside its interval")
tap.ok(b.flops > 0 and b.flops_by_op.linear and b.flops_by_op.attention, "bench: FLOPs by op")
tap.ok(b.planned_bytes > b.weight_bytes and b.measured_peak_bytes > 0, "bench: planned and measured memory")
e = err_of(m.bench, m, {T = task.T + 1})
tap.like(e or "", "max_T", "bench: T beyond max_T")
tap.like(pare.schema_help("dynamic_int8"), "quantized at run time", "schema help text")
-- checkpoints: m:save / pare.load give back the same model; int8 saves f32 masters and says so
local ckpt = os.tmpname()
m:save(ckpt)
local back, meta = pare.load(ckpt)
local ev_m, ev_back = m:evaluate(task), back:evaluate(task)
tap.is(ev_back.accuracy, ev_m.accuracy, "save/load: the loaded model evaluates the same (accuracy)")
tap.is(ev_back.loss, ev_m.loss, "save/load: the same loss")
tap.is(meta.format, "pare", "load: metadata format")
tap.like(meta.config, '"kind": "encoder"', "load: metadata carries the config")
q:save(ckpt)
local qb, qmeta = pare.load(ckpt)
tap.is(qmeta.applied, "dynamic_int8", "load: an int8 checkpoint records what had been applied")
tap.is(qb:info().format, q:info().format, "load: an int8 checkpoint loads in its stored form (docs/checkpoints.md)")
q:save(ckpt, {f32 = true})
tap.is(pare.load(ckpt):info().format, "f32", "load: an int8 checkpoint saved with {f32 = true} loads as f32")
os.remove(ckpt)
e = err_of(function() return m:save("/nonexistent-pare-dir/m.safetensors") end)
tap.like(e or "", "lua_engine%.lua:%d+:.*directory '/nonexistent%-pare%-dir' does not exist", "save: a missing directory is named")
e = err_of(pare.load, "/nonexistent-pare-dir/m.safetensors")
tap.like(e or "", "m%.safetensors: cannot open", "load: a missing file is named")
tap.done()
