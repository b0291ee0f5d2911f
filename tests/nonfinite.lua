-- nonfinite.lua — NaN and Inf reach no Lua result as a good-looking number (issue 10, defect 3): pare.load
-- refuses a checkpoint whose weights were patched to NaN / Inf (the error names the tensor and the element),
-- m:fidelity of a model against itself is exact, attention fidelity rows carry a nonfinite count, and
-- pare.stats medians and quantiles of data holding a NaN are NaN. (Evaluation, fidelity and training with
-- NaN parameters or logits are tested from C, which can write into a model: tests/test_nonfinite.c.)
local pare = require "pare"
local tap = pare.tap
pare.set_threads(2)

local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end
local function isnan(x) return x ~= x end

local task = pare.task("recall", {n_train = 32, n_test = 16})
local m = pare.model{vocab = task.vocab, max_T = task.T, d = 16, heads = 2, layers = 1, classes = task.classes}

-- the data offset of a tensor in a safetensors file: 8-byte header length, JSON header, data block
local function tensor_offset(bytes, name)
  local hlen = string.unpack("<I8", bytes)
  local header = bytes:sub(9, 8 + hlen)
  local entry = header:match('"' .. name:gsub("%.", "%%.") .. '"%s*:%s*(%b{})')
  local begin = entry and entry:match('"data_offsets"%s*:%s*%[%s*(%d+)')
  return begin and 8 + hlen + tonumber(begin)
end

local function patched(path, name, k, value)
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  local off = tensor_offset(bytes, name)
  if not off then return nil end
  local out = os.tmpname()
  f = assert(io.open(out, "wb"))
  local at = off + 4 * k
  f:write(bytes:sub(1, at), string.pack("<f", value), bytes:sub(at + 5))
  f:close()
  return out
end

local ckpt = os.tmpname()
m:save(ckpt)
tap.ok(pcall(pare.load, ckpt), "the clean checkpoint loads")
for _, c in ipairs{{"enc.0.ffn.up.weight", 5, 0 / 0, "NaN", "%(0, 5%)"}, {"head.bias", 1, 1 / 0, "Inf", "%[1%]"},
                   {"enc.0.ln1.weight", 3, -1 / 0, "Inf", "%[3%]"}} do
  local bad = patched(ckpt, c[1], c[2], c[3])
  if not bad then
    tap.ok(false, "found " .. c[1] .. " in the checkpoint")
  else
    local e = err(function() return pare.load(bad) end)
    tap.like(e, "nonfinite%.lua:%d+: cannot load '.*': tensor '" .. c[1]:gsub("%.", "%%.") .. "' holds " .. c[4] .. " at " .. c[5],
             "pare.load refuses " .. c[4] .. " in " .. c[1] .. ": " .. e)
    os.remove(bad)
  end
end
os.remove(ckpt)

local f = m:fidelity(m, task)
tap.ok(f.cosine > 0.9999 and f.max_abs_err == 0 and f.agreement == 1, "a model against itself: exact fidelity")
local r = m:attention_fidelity(task, {specs = {"full", "longformer:window=2"}, n = 4})
tap.ok(r[1].nonfinite == 0 and r[2].nonfinite == 0 and not isnan(r[2].rel_err), "attention fidelity rows: nonfinite = 0")

tap.ok(isnan(pare.stats.median{1, 0 / 0, 3, 2, 5}), "pare.stats.median of data with a NaN is NaN (was 2)")
tap.ok(isnan(pare.stats.quantile({1, 0 / 0, 3}, 0.9)), "pare.stats.quantile of data with a NaN is NaN")
tap.is(pare.stats.median{1, 3, 2}, 2, "median without NaN unchanged")
tap.done()
