-- lua_harness.lua — the experiment API: provenance, record/rows/has, column types and their errors,
-- declared tables, markdown tables, plots, reading the file with h5py. Run: build/pare run tests/lua_harness.lua
local tap = require("pare.tap")

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))
local results, plots = tmp .. "/results", tmp .. "/plots"

tap.is(type(pare), "table", "the global pare exists")
tap.is(require("pare"), pare, "require 'pare' returns the same module")
tap.is(type(pare.args), "table", "pare.args is a table")
tap.like(pare.version, "^%d+%.%d+%.%d+$", "pare.version looks like x.y.z")

local exp = pare.experiment("harness", {dir = results, plots = plots})
tap.is(exp.path, results .. "/harness.h5", "results/<name>.h5 under the given dir")
local f = io.open(exp.path, "rb")
tap.ok(f ~= nil, "the file exists (directories created)")
if f then f:close() end

-- provenance
exp:set_seed(1234)
local attrs = exp:attrs()
for _, k in ipairs({"pare_version", "git_commit", "script", "script_sha256", "params", "seed", "cpu_model", "cpu_features",
                    "kernel_backends", "date", "hostname"}) do
  tap.ok(attrs[k] ~= nil, "provenance attribute '" .. k .. "' is present")
end
tap.like(attrs.script or "", "lua_harness%.lua$", "script names this test")
tap.like(attrs.script_sha256 or "", "^" .. string.rep("%x", 64) .. "$", "script_sha256 is 64 hex digits")
tap.like(attrs.date or "", "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", "date is ISO 8601 UTC")
tap.is(attrs.seed, "1234", "exp:set_seed is recorded")
tap.is(attrs.pare_version, pare.version, "pare_version matches pare.version")

-- record / rows / has
exp:record("t", {method = "fp32", bits = 32, acc = 0.91, fused = false})
exp:record("t", {method = "int8", bits = 8, acc = 0.905, fused = true})
exp:record("t", {method = "int4", bits = 4})  -- acc and fused missing
local cols, info = exp:columns("t")
tap.is(table.concat(cols, ","), "acc,bits,fused,method", "undeclared columns are sorted by name")
tap.is(info.bits.type, "int64", "integers are int64")
tap.is(info.acc.type, "float64", "floats are float64")
tap.is(info.method.type, "string", "strings are strings")
tap.is(info.fused.type, "bool", "booleans are bool")
local rows = exp:rows("t")
tap.is(#rows, 3, "three rows read back")
tap.is(rows[1].method, "fp32", "string value")
tap.is(math.type(rows[2].bits), "integer", "int64 reads back as a Lua integer")
tap.is(rows[2].bits, 8, "int value")
tap.is(rows[2].acc, 0.905, "float value")
tap.is(rows[2].fused, true, "bool value")
tap.ok(rows[3].acc ~= rows[3].acc, "a missing float is NaN")
tap.is(rows[3].fused, false, "a missing bool is false")
tap.ok(exp:has("t", {method = "int8"}), "has: one key")
tap.ok(exp:has("t", {method = "int8", bits = 8}), "has: two keys")
tap.ok(not exp:has("t", {method = "int8", bits = 4}), "has: no match")
tap.ok(exp:has("t", {bits = 8.0}), "has: 8.0 matches an int64 8")
tap.ok(not exp:has("nothing", {a = 1}), "has on a missing table is false")
tap.is(#exp:rows("nothing"), 0, "rows of a missing table is empty")
tap.is(#exp:rows("t", {fused = true}), 1, "rows with a filter")
tap.raises(function() exp:has("t", {colour = "red"}) end, "unknown column 'colour'", "has with an unknown column names it")

-- errors name the column and the script line
local ok, err = pcall(function() exp:record("t", {method = 3}) end)
tap.ok(not ok, "a number for a string column is an error")
tap.like(err, "column 'method' is string", "... naming the column and its type", true)
tap.like(err, "lua_harness.lua:%d+:", "... and this file and line")
tap.raises(function() exp:record("t", {colour = "red"}) end, "unknown column 'colour'", "an unknown column is an error")
tap.raises(function() exp:record("t", {bits = 4.5}) end, "column 'bits' holds integers", "4.5 into an int64 column is an error")
tap.raises(function() exp:record("t", {fused = 1}) end, "column 'fused' is bool", "1 into a bool column is an error")
tap.raises(function() exp:record("t", {acc = {}}) end, "column 'acc' is float64", "a table value is an error")
tap.raises(function() exp:record("bad/name", {a = 1}) end, "invalid table name", "a bad table name is an error")
tap.raises(function() pare.experiment("../escape") end, "invalid name", "a bad experiment name is an error")
tap.raises(function() pare.experiment("x", {dri = "r"}) end, "unknown option 'dri'", "a misspelt option is an error")
exp:record("t", {bits = 2.0, method = "int2"})
tap.is(exp:rows("t")[4].bits, 2, "2.0 is accepted into an int64 column")
tap.is(#exp:rows("t"), 4, "failed records added no rows")

-- declared tables: column order, units, labels, types
exp:table("lat", {"model", "batch", "ms", units = {ms = "ms"}, labels = {ms = "latency"}, types = {ms = "float"}})
exp:record("lat", {model = "tiny", batch = 1, ms = 2, extra = "z"})
exp:record("lat", {model = "tiny", batch = 8, ms = 3.5, extra = "y"})
local lc, linfo = exp:columns("lat")
tap.is(table.concat(lc, ","), "model,batch,ms,extra", "declared columns first, in order, then the rest")
tap.is(linfo.ms.type, "float64", "a declared type wins over the first value (2 → float64)")
tap.is(linfo.ms.unit, "ms", "unit stored")
tap.is(linfo.ms.label, "latency", "label stored")

-- markdown
local md = pare.table(exp, "lat")
tap.like(md, "| model | batch | ms  | extra |\n| ----- | ----: | --: | ----- |\n", "markdown header and alignment row", true)
tap.like(md, "| tiny  |     8 | 3.5 | y     |", "markdown row, numbers right-aligned", true)
local md2 = pare.table(exp, "lat", {columns = {"batch", "ms"}, labels = true})
tap.like(md2, "latency (ms)", "labels = true uses label (unit) headers", true)
tap.ok(not md2:find("model", 1, true), "columns selects columns")
local md3 = pare.table(exp, "t", {columns = {"method", "acc"}, headers = {acc = "top-1"}, formats = {acc = "%.2f"}})
tap.like(md3, "top-1", "headers renames a column", true)
tap.like(md3, "0.91 |", "formats per column", true)
tap.raises(function() pare.table(exp, "t", {columns = {"nope"}}) end, "no column 'nope'", "an unknown column to print is named")
tap.raises(function() pare.table(exp) end, "several tables", "no table name with several tables asks for one")
exp:table("lat2", {columns = {"ms", "lo", "hi"}, units = {ms = "ms"}})
exp:record("lat2", {ms = 1.5, lo = 1.25, hi = 1.75})
tap.is(table.concat(exp:columns("lat2"), ","), "ms,lo,hi", "exp:table also takes columns = {...}")
local md4 = pare.table(exp, "lat2", {columns = {"ms", "ci"}, headers = {"median", "95% CI"},
                                     format = {ci = function(r) return string.format("%.2f-%.2f", r.lo, r.hi) end}})
tap.like(md4, "| median | 95% CI    |\n", "headers as a list, parallel to columns", true)
tap.like(md4, "|    1.5 | 1.25-1.75 |", "a computed column from a format function", true)
local csv = pare.table(exp.path, "lat", {csv = true})
tap.like(csv, "model,batch,ms,extra\ntiny,1,2,z\n", "CSV from a path", true)

-- plots
local files, rendered = exp:plot{table = "lat", x = "batch", y = "ms", by = "model", name = "lat",
                                 title = "it's a \"title\" with ` and $x and \\n"}
tap.is(files[1], plots .. "/harness-lat.dat", "plot writes <plots>/<experiment>-<name>.dat")
tap.is(files[2], plots .. "/harness-lat.gp", "... and .gp")
local gp = io.open(files[2]):read("a")
tap.like(gp, "set title 'it''s a \"title\" with ` and $x and \\n'", "the title is quoted for gnuplot", true)
tap.like(gp, "pngcairo size 800,500", "the script renders png at 800x500", true)
tap.like(gp, "set terminal svg", "and svg", true)
tap.like(gp, "set ylabel 'latency (ms)'", "ylabel defaults to label (unit)", true)
local dat = io.open(files[1]):read("a")
tap.like(dat, "\n1 2\n8 3.5\n", "the data block holds the table's points, sorted by x", true)
local have_gnuplot = os.execute("command -v gnuplot >/dev/null 2>&1")
if have_gnuplot then
  tap.ok(rendered and files[3] == plots .. "/harness-lat.png", "gnuplot rendered the png")
  local png = io.open(plots .. "/harness-lat.png", "rb")
  tap.is(png and png:read(4), "\x89PNG", "it is a PNG")
  tap.ok(io.open(plots .. "/harness-lat.svg") ~= nil, "and the svg")
  -- a restyled script renders again through pare.render; a broken one is an error with gnuplot's words
  os.remove(plots .. "/harness-lat.png")
  tap.ok(pare.render(files[2]) == true and io.open(plots .. "/harness-lat.png") ~= nil, "pare.render renders a .gp again")
  local g = io.open(files[2], "a"); g:write("\nplot nonsense(\n"); g:close()
  tap.raises(function() pare.render(files[2]) end, "invalid expression", "pare.render: a gnuplot failure is an error with its message")
  tap.raises(function() pare.render(plots .. "/x.png") end, "not a .gp file", "pare.render wants a .gp")
else
  tap.skip("gnuplot not installed", 6)
end
tap.raises(function() exp:plot{table = "lat", x = "batch", y = "nope"} end, "y column 'nope' does not exist", "a bad y column is named")
tap.raises(function() exp:plot{table = "lat", x = "batch", y = "ms", kind = "pie"} end, "plot kind 'pie'", "a bad kind is named")
tap.raises(function() exp:plot{table = "lat", x = "batch", yy = "ms"} end, "unknown option 'yy'", "a misspelt plot option is named")
local bars = exp:plot{table = "t", x = "method", y = "acc", kind = "bars"}
tap.like(bars[2], "harness%-t%-acc%.gp$", "default plot name is <table>-<y>")

-- h5py reads the file
exp:close()
exp:close()
tap.ok(true, "close is safe twice")
tap.raises(function() exp:record("t", {bits = 1}) end, "is closed", "using a closed experiment is an error")
local pf = pare.plot(results .. "/harness.h5", {table = "lat", x = "batch", y = "ms", out = plots .. "/frompath"})
tap.is(pf[2], plots .. "/frompath.gp", "pare.plot works on a file path (out = prefix)")
local py
for _, cand in ipairs({"/usr/bin/python3", "python3"}) do
  if os.execute(cand .. " -c 'import h5py' >/dev/null 2>&1") then py = cand; break end
end
if py then
  local script = tmp .. "/check.py"
  local s = io.open(script, "w")
  s:write(string.format([[
import h5py, math, sys
f = h5py.File(%q, "r")
t = f["t"]
assert list(t.dtype.names) == ["acc", "bits", "fused", "method"], t.dtype.names
assert t.dtype["fused"].kind == "b", t.dtype["fused"]
assert t[1]["bits"] == 8 and abs(t[1]["acc"] - 0.905) < 1e-12
m = t[0]["method"]
m = m.decode() if isinstance(m, bytes) else m
assert m == "fp32", m
assert bool(t[1]["fused"]) is True
assert math.isnan(t[2]["acc"])
assert f["lat"].attrs["unit:ms"] in ("ms", b"ms")
a = f.attrs["pare_version"]
assert (a.decode() if isinstance(a, bytes) else a) == %q
print("h5py ok")
]], results .. "/harness.h5", pare.version))
  s:close()
  tap.ok(os.execute(py .. " " .. script), "h5py reads the table: names, types, bool, strings, NaN, attributes")
else
  tap.skip("python3-h5py not installed")
end
if os.execute("command -v h5dump >/dev/null 2>&1") then
  local p = io.popen("h5dump -d /t '" .. results .. "/harness.h5' 2>&1")
  local out = p:read("a")
  p:close()
  tap.like(out, '"int8"', "h5dump prints the strings", true)
else
  tap.skip("h5dump not installed")
end

os.execute("rm -rf '" .. tmp .. "'")
tap.done()
