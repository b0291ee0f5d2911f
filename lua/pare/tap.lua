-- pare.tap — a tiny TAP producer for Lua tests run by `prove` (through `pare run`).
--
--   local tap = require("pare.tap")       -- or pare.tap
--   tap.ok(x > 0, "positive")
--   tap.is(got, 42, "the answer")
--   tap.is_close(y, 0.5, 1e-6, 1e-6, "half")     -- |got-want| <= atol + rtol*|want|
--   tap.like(msg, "unknown column", "message names the problem")   -- Lua pattern (plain=true for text)
--   tap.skip("needs h5py")                  -- an ok line with "# SKIP"
--   tap.skip_all("needs python3-numpy")     -- the whole file skipped (plan 1..0)
--   tap.done()                              -- prints 1..N, exits 1 if anything failed
local tap = {n = 0, failed = 0}

io.stdout:setvbuf("line")

local function line(ok, desc)
  tap.n = tap.n + 1
  if not ok then tap.failed = tap.failed + 1 end
  desc = tostring(desc or ""):gsub("\n", " ")
  io.stdout:write(string.format("%s %d - %s\n", ok and "ok" or "not ok", tap.n, desc))
  return ok
end

function tap.diag(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring(select(i, ...)) end
  for l in (table.concat(parts, " ") .. "\n"):gmatch("(.-)\n") do io.stdout:write("# " .. l .. "\n") end
end

function tap.ok(cond, desc)
  return line(cond and true or false, desc)
end

function tap.is(got, want, desc)
  local r = line(got == want, desc)
  if not r then tap.diag(string.format("got %s (%s), want %s (%s)", tostring(got), type(got), tostring(want), type(want))) end
  return r
end

function tap.isnt(got, unwanted, desc)
  local r = line(got ~= unwanted, desc)
  if not r then tap.diag(string.format("got %s, expected anything else", tostring(got))) end
  return r
end

function tap.is_close(got, want, atol, rtol, desc)
  atol, rtol = atol or 1e-9, rtol or 1e-9
  local ok = type(got) == "number" and got == got and math.abs(got - want) <= atol + rtol * math.abs(want)
  local r = line(ok, desc)
  if not r then tap.diag(string.format("got %s want %.9g (atol %g rtol %g)", tostring(got), want, atol, rtol)) end
  return r
end

function tap.like(got, pattern, desc, plain)
  local ok = type(got) == "string" and got:find(pattern, 1, plain) ~= nil
  local r = line(ok, desc)
  if not r then tap.diag(string.format("got %q\ndoes not match %q", tostring(got), pattern)) end
  return r
end

-- The message of the error f(...) raises, or nil when it raises none (for tap.like on the text).
function tap.error_of(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return nil end
  return tostring(err)
end

-- Run f under pcall; passes when it raises an error whose message matches pattern (plain text).
function tap.raises(f, text, desc)
  local ok, err = pcall(f)
  if ok then
    line(false, desc)
    tap.diag("no error was raised")
    return false
  end
  return tap.like(tostring(err), text, desc, true)
end

function tap.skip(why, count)
  for _ = 1, count or 1 do
    tap.n = tap.n + 1
    io.stdout:write(string.format("ok %d # SKIP %s\n", tap.n, why))
  end
end

-- the whole test cannot run here (a missing optional tool): a plan of 0 with the reason, and exit
function tap.skip_all(why)
  io.stdout:write(string.format("1..0 # SKIP %s\n", why))
  io.stdout:flush()
  os.exit(0, true)
end

function tap.done()
  io.stdout:write(string.format("1..%d\n", tap.n))
  io.stdout:flush()
  os.exit(tap.failed == 0 and 0 or 1, true)
end

return tap
