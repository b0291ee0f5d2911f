-- lua_sweep.lua — pare.sweep: deterministic order, recording merged rows, resuming after an error.
local tap = require("pare.tap")

local tmp = os.tmpname()
os.remove(tmp)
local exp = pare.experiment("sweep", {dir = tmp, plots = tmp .. "/plots"})
local params = {alpha = {0, 0.5, 1}, bits = {4, 8}}

local ran = {}
local function body(p)
  ran[#ran + 1] = string.format("%g/%d", p.alpha, p.bits)
  if #ran == 4 and not _G.resumed then error("boom at point 4") end
  return {acc = p.alpha * p.bits, note = "ok"}
end

tap.is(type(pare.sweep), "function", "pare.sweep is loaded from lua/pare/sweep.lua")
local ok, err = pcall(pare.sweep, exp, "grid", params, body, {quiet = true})
tap.ok(not ok, "the sweep stops at the error")
tap.like(err, "boom at point 4", "the function's error propagates", true)
tap.is(table.concat(ran, " "), "0/4 0/8 0.5/4 0.5/8", "order: names sorted, last varies fastest")
tap.is(#exp:rows("grid"), 3, "three points recorded before the error")

_G.resumed = true
ran = {}
local nran, nskipped = pare.sweep(exp, "grid", params, body, {quiet = true})
tap.is(table.concat(ran, " "), "0.5/8 1/4 1/8", "the rerun runs only the remaining points")
tap.is(nran, 3, "3 run")
tap.is(nskipped, 3, "3 skipped")

local rows = exp:rows("grid")
tap.is(#rows, 6, "six rows in all")
local seen, dup = {}, false
for _, r in ipairs(rows) do
  local k = r.alpha .. "/" .. r.bits
  if seen[k] then dup = true end
  seen[k] = true
end
tap.ok(not dup, "each point exactly once")
tap.is(table.concat(exp:columns("grid"), ","), "alpha,bits,acc,note", "parameter columns come first")
local _, info = exp:columns("grid")
tap.is(info.alpha.type, "float64", "alpha values mixing 0 and 0.5 are recorded as float")
tap.is(info.bits.type, "int64", "bits stay integers")
tap.is(rows[6].acc, 8.0, "the row merges the function's result with the point")

ran = {}
nran = pare.sweep(exp, "grid", params, body, {quiet = true})
tap.is(nran, 0, "a complete sweep runs nothing")

-- ordered parameters and strings/booleans, and a nil return records nothing
ran = {}
local order = {}
pare.sweep(exp, "ordered", {{"method", {"b", "a"}}, {"fused", {true, false}}}, function(p)
  order[#order + 1] = p.method .. tostring(p.fused)
  if p.method == "a" and not p.fused then return nil end
  return {x = 1}
end, {quiet = true})
tap.is(table.concat(order, " "), "btrue bfalse atrue afalse", "a list of pairs keeps the given order")
tap.is(#exp:rows("ordered"), 3, "a nil result records nothing")
order = {}
pare.sweep(exp, "ordered", {{"method", {"b", "a"}}, {"fused", {true, false}}}, function(p)
  order[#order + 1] = p.method .. tostring(p.fused)
  return {x = 2}
end, {quiet = true})
tap.is(table.concat(order, " "), "afalse", "... so that point runs again next time")

tap.raises(function() pare.sweep(exp, "x", {a = {}}, body) end, "non-empty list", "an empty value list is an error")
tap.raises(function() pare.sweep(exp, "x", {a = {1}}, function() return 5 end, {quiet = true}) end, "return a row table",
           "a non-table result is an error")

-- pare.numbers: the list arguments sweeps take
local l = pare.numbers("1,2.5,4.0", {9})
tap.is(table.concat(l, " "), "1 2.5 4", "pare.numbers parses a comma-separated list")
tap.is(math.type(l[3]), "integer", "... whole numbers as integers")
tap.is(pare.numbers(nil, {9})[1], 9, "... an absent argument gives the default")
tap.raises(function() pare.numbers("1,x") end, "'x' in '1,x' is not a number", "... a non-number is an error naming it")

exp:close()
os.execute("rm -rf '" .. tmp .. "'")
tap.done()
