-- torch_ref.lua — the PyTorch side of `make bench` (bench/torch_ref.py, docs/benchmarks.md) and the JSON reader it
-- is read with (lua/pare/json.lua).
-- 1. pare.json: objects, arrays, numbers (integers stay integers), escapes and surrogate pairs, NaN/Infinity as
--    Python writes them, and errors naming the position for bad input. Needs nothing but pare.
-- 2. With Debian's torch (/usr/bin/python3 -c 'import torch'; skipped without it, `make test` does not need torch):
--    the torch module computes pare's bench encoder. A small encoder built with the bench's options (pre-LN, learned
--    positions, cls pooling; GELU in the tanh form and in the erf form) is trained a few steps and saved with m:save;
--    torch_ref.py loads that checkpoint and its fp32 logits must equal pare's to 1e-6 of their largest magnitude (a
--    bound that tells the two GELU forms apart); its bf16 (model.to(torch.bfloat16)) and int8 (quantize_dynamic)
--    logits must stay near pare's f32 ones (not the same arithmetic: a loose bound, a check of the wiring). A short
--    timing run must print one bench line per format and batch, --serve must answer its commands in order, and a
--    torch that cannot be imported must give a skip line and exit status 3, not a traceback.
local pare = require "pare"
local tap = pare.tap
local json = pare.json
pare.set_threads(2)

-- 1. the JSON reader
local v = json.decode('{"line":"bench","batch":8,"median_ms":12.5,"ok":true,"no":false,"z":null,' ..
                      '"s":[1,2.5,-3e2],"t":"a\\"b\\\\c\\u00e9\\ud83d\\ude00\\n","o":{"k":[]}}')
tap.ok(type(v) == "table", "an object decodes to a table")
tap.is(v.line, "bench", "string member")
tap.is(math.type(v.batch), "integer", "a number without fraction or exponent is an integer")
tap.is(v.median_ms, 12.5, "fractional number")
tap.ok(v.ok == true and v.no == false, "booleans")
tap.is(v.z, json.null, "null is json.null")
tap.ok(#v.s == 3 and v.s[1] == 1 and v.s[2] == 2.5 and v.s[3] == -300.0, "array of numbers, exponent")
tap.is(v.t, 'a"b\\c\u{e9}\u{1F600}\n', "escapes, \\u and a surrogate pair as UTF-8")
tap.ok(type(v.o) == "table" and type(v.o.k) == "table" and #v.o.k == 0, "nested object and empty array")
local w = json.decode("[NaN, Infinity, -Infinity]")
tap.ok(w and w[1] ~= w[1] and w[2] == math.huge and w[3] == -math.huge, "NaN, Infinity, -Infinity (Python's json)")
tap.is(json.decode("  7 "), 7, "a bare number with blanks around it")
for _, bad in ipairs({{'{"a":01}', "bad number"}, {'{"a":1,}', "expected a string key"}, {"[1 2]", "expected ','"},
                      {'"abc', "unterminated string"}, {"1.", "bad number"}, {'{"a":1} x', "trailing text"},
                      {"", "unexpected end"}, {'"\\x"', "bad escape"}, {'"\\ud800"', "unpaired surrogate"},
                      {"[" .. string.rep("[", 300) .. "]", "nested too deeply"}}) do
  local got, err = json.decode(bad[1])
  tap.ok(got == nil and type(err) == "string" and err:find(bad[2], 1, true) and err:find("character", 1, true),
         string.format("%q is refused: %s", bad[1]:sub(1, 20), tostring(err)))
end
local _, nerr = json.decode(42)
tap.like(nerr, "takes a string", "a non-string argument is refused with a message")

-- 2. the torch module against pare
local py = "/usr/bin/python3"
if not os.execute(py .. " -c 'import torch' >/dev/null 2>&1") then
  tap.skip("needs Debian's python3-torch (/usr/bin/python3 -c 'import torch') for bench/torch_ref.py", 9)
  tap.done()
end

local function lines_of(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local got, other = {}, {}
  for line in p:lines() do
    local o = line:match("^{") and json.decode(line)
    if type(o) == "table" and o.line then
      got[o.line] = got[o.line] or {}
      table.insert(got[o.line], o)
    else
      other[#other + 1] = line
    end
  end
  local ok, _, code = p:close()
  return got, ok and 0 or code, table.concat(other, "\n")
end

-- a few training steps first, so that biases and LayerNorm gains are not the builder's 0 and 1 (a swapped name
-- would go unseen on them); both activations (gelu: the tanh form, bench.lua's section 2; gelu_erf: BERT's, its
-- PyTorch section's default)
local task = pare.task("majority", {seed = 3, n_train = 256, n_test = 64, min_length = 5, max_length = 9})
local L, C, H, F, V, Tmax = 2, 64, 4, 128, task.vocab, task.T
local toks, rows = {}, {}
for b = 1, 2 do
  toks[b] = {}
  for t = 1, Tmax - 1 do toks[b][t] = (b * 7 + t * 5) % V end
  rows[b] = table.concat(toks[b], ",")
end
for _, act in ipairs({"gelu", "gelu_erf"}) do
  local m = pare.model{kind = "encoder", vocab = V, max_T = Tmax, classes = task.classes, d = C, heads = H, layers = L,
                       ffn = F, seed = 5, act = act}
  m:train(task, {steps = 60, batch = 32, lr = 1e-2, seed = 7})
  local path = os.tmpname()
  m:save(path)
  local want = m:forward{tokens = toks}.logits.values
  local cmd = string.format("%s bench/torch_ref.py --threads 2 --layers %d --d %d --heads %d --ffn %d --vocab %d "
                            .. "--max-T %d --classes %d --T %d --act %s --weights '%s' --forward '%s' --formats %s", py,
                            L, C, H, F, V, Tmax, task.classes, Tmax - 1, act, path, table.concat(rows, ";"),
                            act == "gelu" and "fp32,bf16,int8" or "fp32")
  local got, code, other = lines_of(cmd)
  os.remove(path)
  tap.is(code, 0, act .. ": torch_ref.py --forward on pare's checkpoint exits 0")
  if code ~= 0 then tap.diag(other) end
  local by = {}
  for _, o in ipairs(got.logits or {}) do by[o.format] = o end
  local scale = 0
  for _, x in ipairs(want) do scale = math.max(scale, math.abs(x)) end
  local function worst(o)
    if not o or #o.values ~= #want then return math.huge, 0 end
    local d, at = 0, 0
    for i = 1, #want do
      if math.abs(o.values[i] - want[i]) > d then d, at = math.abs(o.values[i] - want[i]), i end
    end
    return d, at
  end
  -- 1e-6 of the largest logit: the two sides differ by f32 rounding (~1e-7 here), and a torch module with the other
  -- GELU form differs by ~3e-6, so this bound tells them apart
  local d, at = worst(by.fp32)
  tap.ok(d <= 1e-6 * scale, string.format("%s fp32: torch's logits equal pare's (worst |diff| %.3g at %d, scale %.3g)",
                                          act, d, at, scale))
  if act == "gelu" then
    d = worst(by.bf16)
    tap.ok(d <= 0.1 * scale, string.format("bf16 (model.to(torch.bfloat16)): near pare's f32 logits (worst %.3g, scale "
                                           .. "%.3g)", d, scale))
    d = worst(by.int8)
    tap.ok(d <= 0.1 * scale, string.format("int8 (quantize_dynamic): near pare's f32 logits (worst %.3g, scale %.3g)", d,
                                           scale))
  end
end

-- a short timing run: one bench line per format and batch, with the fields bench.lua reads
local got, code, other = lines_of(py .. " bench/torch_ref.py --threads 1 --layers 1 --d 32 --heads 2 --ffn 64 --vocab 50 "
                            .. "--T 8 --batch 1,2 --repeats 3 --warmup 1 --warmup-min-s 0 --warmup-max-s 0.05")
local n, fields = 0, true
for _, o in ipairs(got.bench or {}) do
  n = n + 1
  fields = fields and type(o.median_ms) == "number" and o.median_ms > 0 and #o.samples_ms == 3 and o.threads == 1
           and o.ci_lo_ms <= o.median_ms and o.median_ms <= o.ci_hi_ms
end
tap.ok(code == 0 and n == 6 and fields, string.format("timing run: %d bench lines (want 6: 3 formats x 2 batches) with "
                                                       .. "median, interval and samples", n))
if code ~= 0 then tap.diag(other) end

-- --serve: one measurement per command line, a bad command answered with an error line, the process going on
got, code, other = lines_of("printf 'bench int8 2 2 1 1\\nbench fp64 1 1 1 1\\nbench bf16 1 3 0 2\\nquit\\n' | " .. py
                            .. " bench/torch_ref.py --serve --layers 1 --d 32 --heads 2 --ffn 64 --vocab 50 --T 8"
                            .. " --warmup-min-s 0 --warmup-max-s 0.05")
local b = got.bench or {}
tap.ok(code == 0 and got.ready and #b == 2 and b[1].format == "int8" and b[1].batch == 2 and b[1].repeats == 2
       and b[2].format == "bf16" and b[2].repeats == 3 and got.error and got.error[1].reason:find("fp64", 1, true),
       "--serve: two measurements in command order, the bad command named in an error line")
if code ~= 0 then tap.diag(other) end

-- without torch (python -S: no site packages): a skip line and exit status 3
got, code = lines_of(py .. " -S bench/torch_ref.py --info")
tap.ok(code == 3 and got.skip and got.skip[1].reason:find("torch", 1, true),
       "a python without torch: a skip line naming torch, exit status 3")
tap.done()
