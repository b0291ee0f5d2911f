-- attention_scaling.lua — every attention variant on its own (pare.attention_bench): forward and
-- forward+backward latency and measured peak memory of the intermediates against sequence length N,
-- for one head (H=1, D=64) and 12 heads × 64, B = 1, bidirectional. Where each variant overtakes full
-- attention, and log-log plots with O(N) and O(N²) guide lines. docs/attention-benchmarks.md.
--
--   pare run experiments/attention_scaling.lua [Ns=256,512,...,16384] [kinds=full,flash,...] [heads=1,12]
--       [D=64] [repeats=5] [small_repeats=15] [warmup=1] [threads=2] [mem_budget_gb=8] [budget_s=20]
--       [causal=0] [results_dir=results] [plots_dir=plots] [fresh=1]
--   On a shared machine run it with OMP_WAIT_POLICY=passive: spinning OpenMP threads turn every short
--   parallel region into a 4 ms scheduler quantum when another process holds the second core.
--
-- Tables (results/attention_scaling.h5):
--   scaling    one row per (causal, H, N, kind): spec, fwd_ms + 95% CI, step_ms (forward+backward) + CI,
--              bwd_ms, peak_mb (measured: VmHWM above the resident set before the call), formula_mb
--              (cache + one slot per thread), pairs, gflop_fwd, gflops_per_s, threads, runs, load,
--              complexity, skipped ("" or why: over the memory budget, an unsupported shape)
--   crossover  per variant and head count: the smallest N from which it is faster than full attention at
--              every larger N measured (forward; forward+backward), NaN if never; full's speed-up at the
--              largest N both ran
--   plot_h<H>  the plotted series (every kind, plus the guide lines), rewritten each run
-- Plots: plots/attention_scaling-{latency,step,memory}-h<H>.png, log-log.
-- Points already in the table are not rerun (resume); fresh=1 starts over. A point over mem_budget_gb
-- (by the formula) is recorded as skipped without running; budget_s bounds a point's time (at least 3
-- timed runs per series anyway). Wall time of the full grid: roughly 15–25 minutes on 2 cores.
local pare = require "pare"
local a = pare.args

local function list(v, default, num)
  local out = {}
  for x in tostring(v or default):gmatch("[^,%s]+") do out[#out + 1] = num and math.tointeger(tonumber(x)) or x end
  return out
end
local Ns = list(a.Ns, "256,512,1024,2048,4096,8192,16384", true)
local heads = list(a.heads, "1,12", true)
local kinds = list(a.kinds, table.concat(require("pare.attn_specs").kinds(), ","))  -- every variant (not token_prune: attn_specs.not_swept)
local D = math.tointeger(tonumber(a.D) or 64)
local repeats, warmup = tonumber(a.repeats) or 5, tonumber(a.warmup) or 1
local small_repeats = tonumber(a.small_repeats) or 3 * repeats -- points with N <= 2048: cheap, noisier
local mem_budget_gb, budget_s = tonumber(a.mem_budget_gb) or 8, tonumber(a.budget_s) or 20
local causal = tostring(a.causal or 0) == "1" or a.causal == true
pare.set_threads(tonumber(a.threads) or 2)
for _, N in ipairs(Ns) do if not N or N < 1 then error("attention_scaling: Ns must be positive integers") end end
local valid = {}
for _, k in ipairs(pare.attention_kinds()) do valid[k] = true end
for _, k in ipairs(kinds) do
  if not valid[k] then error(string.format("attention_scaling: unknown kind '%s' (valid: %s)", k,
                                           table.concat(pare.attention_kinds(), ", "))) end
end

-- Default options per kind at length N (pare help <kind>): the paper's settings where they fit, scaled
-- to N where the method says so; returns the spec and the complexity label.
local function isqrt_pow2(N) -- the power of two nearest sqrt(N) from below, at least 16
  local s = 16
  while s * s * 4 <= N do s = s * 2 end
  return math.min(s, N)
end
local function spec_for(kind, N, H)
  if kind == "full" then return "full", "O(N^2)"
  elseif kind == "flash" then return "flash:q_tile=256,k_tile=256", "O(N^2) time, O(N) memory"
  elseif kind == "block" then return "block:blocks=2", "O(N^2/n), n=2"
  elseif kind == "fixed" then
    local l = isqrt_pow2(N)
    return string.format("fixed:pattern=fixed,stride=%d,summary=%d", l, math.min(8, l)), "O(N*sqrt(N)), l~sqrt(N)"
  elseif kind == "longformer" then
    return string.format("longformer:window=%d,global=1", math.min(256, N)), "O(N*w), w=256"
  elseif kind == "bigbird" then
    return string.format("bigbird:window=3,random=2,global=2,block=%d", math.min(64, N // 16)), "O(N*b*(w+r+g))"
  elseif kind == "longnet" then -- segments w0·2^i up to N with rates 2^i: Σ N·w/r² ≈ 2·N·w0, linear
    local w0 = math.min(512, N)
    local seg, rate, w, r = {}, {}, w0, 1
    while w <= N do seg[#seg + 1], rate[#rate + 1], w, r = w, r, w * 2, r * 2 end
    return string.format("longnet:segments=%s,rates=%s", table.concat(seg, ","), table.concat(rate, ",")),
           "O(N*w0), w0=512"
  elseif kind == "linear" then return "linear", "O(N*D^2)"
  elseif kind == "linformer" then return string.format("linformer:k=%d", math.min(256, N)), "O(N*k), k=256"
  elseif kind == "performer" then return "performer:features=128", "O(N*m*D), m=128"
  elseif kind == "reformer" then return "reformer:bucket=64,hashes=1", "O(N*b) + hashing O(N^2*D/b)"
  elseif kind == "axial" then return "axial", "O(N*sqrt(N))"
  elseif kind == "lsra" then return "lsra:kernel=7", "O(N^2)/2 (half the heads exact)"
  end
  return kind, "?"
end

local exp = pare.experiment("attention_scaling", {seed = 1, dir = a.results_dir, plots = a.plots_dir,
                                                   fresh = tostring(a.fresh) == "1"})
local function loadavg()
  local f = io.open("/proc/loadavg")
  local l = f and f:read("n") or -1
  if f then f:close() end
  return l
end
local NaN = 0 / 0
exp:table("scaling", {columns = {"causal", "H", "N", "kind", "spec", "D", "fwd_ms", "fwd_lo_ms", "fwd_hi_ms", "step_ms",
                                 "step_lo_ms", "step_hi_ms", "bwd_ms", "peak_mb", "peak_fwd_mb", "formula_mb", "pairs",
                                 "gflop_fwd", "gflops_per_s", "threads", "runs", "load", "complexity", "skipped"},
                      units = {N = "tokens", fwd_ms = "ms", fwd_lo_ms = "ms", fwd_hi_ms = "ms", step_ms = "ms",
                               step_lo_ms = "ms", step_hi_ms = "ms", bwd_ms = "ms", peak_mb = "MB",
                               peak_fwd_mb = "MB", formula_mb = "MB", gflop_fwd = "GFLOP", gflops_per_s = "GFLOP/s"},
                      labels = {N = "sequence length N", fwd_ms = "forward latency (median)",
                                step_ms = "forward+backward latency (median)", peak_mb = "measured peak intermediates",
                                formula_mb = "intermediates by the formula (cache + slots)"},
                      types = {fwd_ms = "float", fwd_lo_ms = "float", fwd_hi_ms = "float", step_ms = "float",
                               step_lo_ms = "float", step_hi_ms = "float", bwd_ms = "float", peak_mb = "float",
                               peak_fwd_mb = "float", formula_mb = "float", gflop_fwd = "float",
                               gflops_per_s = "float", load = "float"}})

pare.sweep(exp, "scaling", {{"causal", {causal}}, {"H", heads}, {"N", Ns}, {"kind", kinds}}, function(p)
  local spec, complexity = spec_for(p.kind, p.N, p.H)
  local row = {spec = spec, D = D, complexity = complexity, skipped = "", threads = pare.threads(), runs = 0,
               load = loadavg()}
  for _, k in ipairs{"fwd_ms", "fwd_lo_ms", "fwd_hi_ms", "step_ms", "step_lo_ms", "step_hi_ms", "bwd_ms", "peak_mb",
                     "peak_fwd_mb", "formula_mb", "gflop_fwd", "gflops_per_s"} do row[k] = NaN end
  row.pairs = 0
  if p.kind == "lsra" and p.H < 2 then
    row.skipped = "lsra needs H >= 2 (attention heads beside convolution heads)"
    return row
  end
  local ok, r = pcall(pare.attention_bench, {spec = spec, T = p.N, H = p.H, D = D, B = 1, causal = p.causal,
                                             backward = true, warmup = warmup, budget_s = budget_s,
                                             repeats = p.N <= 2048 and math.max(repeats, small_repeats) or repeats,
                                             mem_budget_gb = mem_budget_gb, seed = 1})
  if not ok then
    row.skipped = "error: " .. tostring(r):gsub("^[^:]*:%d+: ", "")
    io.stderr:write(string.format("attention_scaling: %s N=%d H=%d: %s\n", p.kind, p.N, p.H, row.skipped))
    return row
  end
  row.pairs, row.formula_mb, row.gflop_fwd, row.threads = r.pairs, r.formula_bytes / 1e6, r.flops_fwd / 1e9, r.threads
  if r.skipped then row.skipped = r.skipped; return row end
  row.fwd_ms, row.fwd_lo_ms, row.fwd_hi_ms = r.fwd_ms, r.fwd_lo_ms, r.fwd_hi_ms
  row.step_ms, row.step_lo_ms, row.step_hi_ms, row.bwd_ms = r.step_ms, r.step_lo_ms, r.step_hi_ms, r.bwd_ms
  row.peak_mb, row.peak_fwd_mb = r.peak_bytes / 1e6, r.peak_fwd_bytes / 1e6
  row.gflops_per_s = r.flops_fwd / (r.fwd_ms * 1e6)
  row.runs = r.runs_fwd
  return row
end)

-- Crossover against full attention, per head count (derived: rewritten each run)
local function finite(x) return type(x) == "number" and x == x and x > 0 end
local function rewrite(t) -- drop a derived table; without exp:drop, an existing one is kept as it is
  if exp.drop then exp:drop(t); return true end
  return exp:columns(t) == nil
end
local write_crossover = rewrite("crossover")
exp:table("crossover", {columns = {"causal", "H", "kind", "crossover_fwd_N", "crossover_step_N", "max_N_compared",
                                   "speedup_fwd", "speedup_step"},
                        types = {crossover_fwd_N = "float", crossover_step_N = "float", max_N_compared = "float",
                                 speedup_fwd = "float", speedup_step = "float"},
                        labels = {crossover_fwd_N = "smallest N from which it is faster than full (forward)",
                                  crossover_step_N = "the same for forward+backward",
                                  speedup_fwd = "full / variant forward at max_N_compared"}})
local by = {} -- by[H][kind][N] = row
for _, r in ipairs(exp:rows("scaling", {causal = causal})) do
  by[r.H] = by[r.H] or {}
  by[r.H][r.kind] = by[r.H][r.kind] or {}
  by[r.H][r.kind][r.N] = r
end
local function crossover(rows, full, key)
  local common = {}
  for N, r in pairs(rows) do
    if full[N] and finite(r[key]) and finite(full[N][key]) then common[#common + 1] = N end
  end
  table.sort(common)
  local cross = NaN
  for i = #common, 1, -1 do -- from the largest N down, while the variant stays faster
    local N = common[i]
    if rows[N][key] < full[N][key] then cross = N else break end
  end
  local top = common[#common]
  return cross, top, top and full[top][key] / rows[top][key] or NaN
end
for _, H in ipairs(heads) do
  local full = by[H] and by[H].full
  for _, kind in ipairs(kinds) do
    local rows = by[H] and by[H][kind]
    if full and rows and kind ~= "full" then
      local cf, top, sf = crossover(rows, full, "fwd_ms")
      local cs, _, ss = crossover(rows, full, "step_ms")
      if write_crossover then exp:record("crossover", {causal = causal, H = H, kind = kind, crossover_fwd_N = cf + 0.0,
                               crossover_step_N = cs + 0.0, max_N_compared = (top or NaN) + 0.0, speedup_fwd = sf,
                               speedup_step = ss}) end
    end
  end
end

-- Thirteen series and two guides on one plot: the generated gnuplot script is restyled (legend outside,
-- a point type per series so repeated colours stay apart, guides as grey dashes without points) and
-- rendered again. The .gp stays a plain script: edit and rerun it as any other.
local function restyle(gp, rendered)
  local f = io.open(gp)
  if not f then return end
  local text = f:read("a")
  f:close()
  local n = 0
  text = text:gsub("set key box opaque", "set key outside right top box opaque")
  text = text:gsub("pngcairo size 800,500", "pngcairo size 1000,560"):gsub("svg size 800,500", "svg size 1000,560")
  text = text:gsub("(set logscale y\n)", string.format("%%1set xrange [%g:%g]\n", Ns[1] / 1.25, Ns[#Ns] * 1.25))
  -- series names here are plain (kind names, "N^2 guide"): pare writes them single-quoted
  text = text:gsub("with linespoints lw 2 pt 7 title 'series=([^']*)'", function(series)
    if series:match("guide$") then
      return string.format("with lines dt %d lw 1.5 lc rgb 'gray40' title '%s'", series:match("N%^2") and 3 or 2,
                           series)
    end
    n = n + 1
    return string.format("with linespoints lw 2 pt %d title '%s'", (n - 1) % 12 + 1, series)
  end)
  f = io.open(gp, "w")
  f:write(text)
  f:close()
  if rendered then pare.render(gp) end
end

-- Plots: one table per head count with every kind and two guide lines (slopes 1 and 2 through the
-- geometric mean of all kinds at the middle N), log-log.
local mid = Ns[(#Ns + 1) // 2]
for _, H in ipairs(heads) do
  local t = "plot_h" .. H
  local write = rewrite(t)
  exp:table(t, {columns = {"series", "N", "fwd_ms", "step_ms", "peak_mb"},
                types = {fwd_ms = "float", step_ms = "float", peak_mb = "float"},
                units = {N = "tokens", fwd_ms = "ms", step_ms = "ms", peak_mb = "MB"}})
  local logsum, count = {fwd_ms = 0, step_ms = 0, peak_mb = 0}, {fwd_ms = 0, step_ms = 0, peak_mb = 0}
  for _, kind in ipairs(kinds) do
    for _, N in ipairs(Ns) do
      local r = by[H] and by[H][kind] and by[H][kind][N]
      if r and r.skipped == "" and write then
        exp:record(t, {series = kind, N = N, fwd_ms = r.fwd_ms, step_ms = r.step_ms, peak_mb = r.peak_mb})
        if N == mid then
          for k in pairs(logsum) do
            if finite(r[k]) then logsum[k], count[k] = logsum[k] + math.log(r[k]), count[k] + 1 end
          end
        end
      end
    end
  end
  for _, g in ipairs{{"O(N) guide", 1}, {"O(N^2) guide", 2}} do
    for _, N in ipairs(Ns) do
      local row = {series = g[1], N = N}
      for k in pairs(logsum) do
        row[k] = count[k] > 0 and math.exp(logsum[k] / count[k]) * (N / mid) ^ g[2] or NaN
      end
      if write then exp:record(t, row) end
    end
  end
  local what = H == 1 and "1 head x " .. D or H .. " heads x " .. D
  local th = pare.threads()
  local plots = {
    {"latency", "fwd_ms", string.format("Attention forward latency, %s, B=1, %d threads", what, th),
     "forward ms (median)"},
    {"step", "step_ms", string.format("Attention forward+backward latency, %s, B=1, %d threads", what, th),
     "forward+backward ms (median)"},
    {"memory", "peak_mb", string.format("Attention intermediates, measured peak, %s, B=1", what),
     "measured peak MB (VmHWM)"},
  }
  for _, pl in ipairs(plots) do
    local name = pl[1] .. "-h" .. H
    local _, rendered = exp:plot{table = t, name = name, x = "N", y = pl[2], by = "series", logx = true, logy = true,
                                 title = pl[3], xlabel = "sequence length N", ylabel = pl[4]}
    restyle(exp.plots_dir .. "/attention_scaling-" .. name .. ".gp", rendered)
  end
end

pare.print_table(exp, "scaling", {columns = {"H", "N", "kind", "fwd_ms", "step_ms", "peak_mb", "formula_mb", "skipped"}})
print()
pare.print_table(exp, "crossover", {format = {crossover_fwd_N = "%.0f", crossover_step_N = "%.0f",
                                               max_N_compared = "%.0f", speedup_fwd = "%.2f", speedup_step = "%.2f"}})
exp:close()
