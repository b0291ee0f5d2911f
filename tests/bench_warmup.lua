-- bench_warmup.lua — the first measurement of a process agrees with the same measurement made right after
-- it (issue 10, defect 8), for pare.attention_bench and m:bench; and the warm-up is reported.
--
-- Before the fix, the first pare.attention_bench{spec = "full", T = 512, H = 4, D = 64} of a process
-- measured 8.0 ms (interval 7.96–8.01) and the identical call right after it 0.87 ms: one warm-up run did
-- not cover the process's cold start, and the cold phase is steady enough to give a tight interval. Now
-- warm-up runs continue for at least warmup_min_s and until the timings settle (src/eval/warmup.h).
--
-- How this stays honest but not flaky on a shared, loaded 2-core machine: every trial is a fresh
-- `pare run` process (only a fresh process has a cold start) that makes the call once and then 3 more
-- times. Two successive measurements on a loaded machine can differ by 3x (another process takes a core
-- for a while; seen at load 6), so the first is not compared with a fixed number but with the later ones
-- of its own process: a trial passes when the first median lies within [min/1.5, max·1.5] of the 3 later
-- medians — the band widens by itself when the machine is noisy, and a cold start like the one fixed
-- (first 9x every later one on a quiet machine) lies far outside it. The test asserts that at least 2 of
-- 3 trials pass, so one burst of someone else's load cannot fail it. Intervals are printed, not asserted
-- (bootstrap intervals of 15 samples are narrower than a shared machine's drift between two calls). No
-- absolute time is asserted.
local pare = require "pare"
local tap = pare.tap

local child = os.tmpname()
do
  local f = assert(io.open(child, "w"))
  f:write([[
local pare = require "pare"
pare.set_threads(2)
local o = {spec = "full", T = 512, H = 4, D = 64, repeats = 15, backward = false}
local m = pare.model{vocab = 32, max_T = 64, d = 64, heads = 4, layers = 2, classes = 2}
local function row(r, med, lo, hi)
  return string.format("%.6f %.6f %.6f %d %s %.6f", r[med], r[lo], r[hi], r.warmup_runs or -1,
                       tostring(r.warmup_stable), r.warmup_s or -1)
end
local a = {}
for i = 1, 4 do a[i] = row(pare.attention_bench(o), "fwd_ms", "fwd_lo_ms", "fwd_hi_ms") end
print("attn " .. table.concat(a, " "))
for i = 1, 4 do a[i] = row(m:bench{batch = 4, repeats = 15}, "median_ms", "ci_lo_ms", "ci_hi_ms") end
print("model " .. table.concat(a, " "))
]])
  f:close()
end

-- Under the sanitizers (make check sets PARE_SANITIZED=1) a first run also pays for ASan's shadow memory
-- and the suite runs two tests at a time: the first-versus-later comparison would measure those, not
-- pare's warm-up. It is skipped there (one trial still runs, for the warm-up report checks).
local sanitized = os.getenv("PARE_SANITIZED") == "1"
-- The 1-minute load average read after the trials, and the core count.
local load_text, cores = "?", 2
local function busy()
  local f = io.open("/proc/loadavg")
  if not f then return false end
  load_text = f:read("l"):match("^(%S+)") or "?"
  f:close()
  local n = io.popen("nproc 2>/dev/null")
  cores = tonumber(n and n:read("l") or "") or 2
  if n then n:close() end
  return (tonumber(load_text) or 0) > cores
end
local ntrials = sanitized and 1 or 3
local trials = {attn = {}, model = {}}
for t = 1, ntrials do
  local p = assert(io.popen("./" .. (os.getenv("PARE_BUILD") or "build") .. "/pare run " .. child .. " 2>&1"))
  for line in p:lines() do
    local w = {}
    for x in line:gmatch("%S+") do w[#w + 1] = x end
    if trials[w[1]] and #w == 25 then
      local calls = {}
      for i = 0, 3 do
        local k = 2 + 6 * i
        calls[#calls + 1] = {ms = tonumber(w[k]), lo = tonumber(w[k + 1]), hi = tonumber(w[k + 2]),
                             warmup_runs = tonumber(w[k + 3]), stable = w[k + 4], warmup_s = tonumber(w[k + 5])}
      end
      local first, lmin, lmax = calls[1].ms, math.huge, 0
      for i = 2, 4 do lmin, lmax = math.min(lmin, calls[i].ms), math.max(lmax, calls[i].ms) end
      local pass = first >= lmin / 1.5 and first <= lmax * 1.5
      table.insert(trials[w[1]], {pass = pass, first = calls[1], ratio = first / calls[2].ms})
      local txt = {}
      for i, c in ipairs(calls) do txt[i] = string.format("%.3f [%.3f, %.3f]", c.ms, c.lo, c.hi) end
      tap.diag(string.format("trial %d %s: first %s; later %s (ms); first/second %.2f; band [%.3f, %.3f]: %s; "
                             .. "first warm-up %d runs in %.2f s, stable %s", t, w[1], txt[1],
                             table.concat(txt, ", ", 2), first / calls[2].ms, lmin / 1.5, lmax * 1.5,
                             pass and "inside" or "OUTSIDE", calls[1].warmup_runs, calls[1].warmup_s, calls[1].stable))
    else
      tap.diag(line)
    end
  end
  p:close()
end
os.remove(child)

for _, what in ipairs{"attn", "model"} do
  local tr = trials[what]
  local name = what == "attn" and "pare.attention_bench full T=512 H=4 D=64" or "m:bench (d=64, 2 layers, batch 4)"
  if #tr ~= ntrials then
    tap.ok(false, name .. ": " .. ntrials .. " trials ran (got " .. #tr .. ")")
  else
    local passed = 0
    for _, r in ipairs(tr) do passed = passed + (r.pass and 1 or 0) end
    if sanitized then
      tap.skip("sanitizer build: ASan's first-run costs and prove -j2 distort the first-versus-later timing")
    elseif passed < 2 and busy() then
      -- at a load above the core count two-thread timings move 2-3x between calls (docs/benchmarks.md):
      -- a cold start cannot be told from someone else's load, so a miss there is not evidence either way
      tap.skip(string.format("%s: %d of 3 trials inside the band, but the machine was busy (load %s on %d cores)",
                             name, passed, load_text, cores))
    else
      tap.ok(passed >= 2, string.format("%s: the first measurement of a fresh process lies within the later ones' band "
                                      .. "(widened 1.5x) in %d of 3 trials (>= 2 needed)", name, passed))
    end
    local f = tr[1].first
    tap.ok(f.warmup_runs >= 1 and f.warmup_s >= 0.19 and (f.stable == "true" or f.stable == "false"),
           string.format("%s: the result reports its warm-up (%d runs, %.2f s >= warmup_min_s 0.2, stable %s)", name,
                         f.warmup_runs, f.warmup_s, f.stable))
  end
end

-- the warm-up options are validated and can switch the warm-up off (warmup = 0, warmup_max_s = 0)
local function err(f) local ok, e = pcall(f); return not ok and tostring(e) or "(no error)" end
tap.like(err(function() pare.attention_bench{spec = "flash", T = 256, warmup_min_s = 1, warmup_max_s = 0.5} end),
         "warmup_max_s", "warmup_max_s < warmup_min_s is an error naming it")
local cold = pare.attention_bench{spec = "flash", T = 256, H = 1, repeats = 1, warmup = 0, warmup_min_s = 0,
                                  warmup_max_s = 0, backward = false}
tap.is(cold.warmup_runs, 1, "warmup = 0, warmup_max_s = 0: only the memory run precedes the timed ones")
local m = pare.model{vocab = 16, max_T = 8, d = 16, heads = 2, layers = 1}
local b = m:bench{repeats = 2, warmup = 3, warmup_min_s = 0, warmup_max_s = 0}
tap.is(b.warmup_runs, 3, "m:bench: warmup = 3 runs are made even with warmup_max_s = 0")
tap.like(err(function() m:bench{warmup_tol = 0} end), "warmup_tol", "warmup_tol out of range names it")
tap.done()
